// JSON documents: vramfit.estimate/1, vramfit.inspect/1, catalog listings.
#include <nlohmann/json.hpp>

#include "vramfit/quant.h"
#include "vramfit/render.h"

namespace vramfit {

using Json = nlohmann::ordered_json;

namespace {

Json ComponentJson(const Component& c) {
  Json j;
  j["name"] = c.name;
  j["bytes"] = c.bytes.value();
  if (!c.formula.empty()) j["formula"] = c.formula;
  j["children"] = Json::array();
  for (const Component& ch : c.children) j["children"].push_back(ComponentJson(ch));
  return j;
}

Json OptBytes(const std::optional<Bytes>& b) { return b ? Json(b->value()) : Json(nullptr); }

}  // namespace

std::string RenderEstimateJson(const Estimate& e) {
  Json j;
  j["schema"] = "vramfit.estimate/1";
  j["model"] = {{"id", e.model_id},
                {"params", e.params},
                {"active_params", e.active_params},
                {"weight_bytes", e.weight_bytes.value()},
                {"kv_bytes_per_token", e.kv_bytes_per_token.value()}};
  Json w = Json::object();
  for (const auto& [k, v] : e.workload) {
    std::visit([&](const auto& x) { w[k] = x; }, v);
  }
  j["workload"] = w;
  j["devices"] = Json::array();
  for (const DeviceEstimate& d : e.devices) {
    Json dj;
    dj["name"] = d.name;
    dj["gpu"] = d.gpu ? Json(d.gpu->name) : Json(nullptr);
    dj["capacity_bytes"] = d.gpu ? Json(d.gpu->capacity.value()) : Json(nullptr);
    dj["total_bytes"] = d.total.value();
    dj["reserved_peak_bytes"] = OptBytes(d.reserved_peak);
    dj["allocated_peak_bytes"] = OptBytes(d.allocated_peak);
    dj["peak_phase"] = d.peak_phase;
    dj["fits"] = d.gpu ? Json(d.total <= d.gpu->capacity) : Json(nullptr);
    dj["components"] = Json::array();
    for (const Component& c : d.components) dj["components"].push_back(ComponentJson(c));
    j["devices"].push_back(dj);
  }
  Json host;
  host["total_bytes"] = Total(e.host).value();
  host["components"] = Json::array();
  for (const Component& c : e.host) host["components"].push_back(ComponentJson(c));
  j["host"] = host;
  j["kv_cache"] = {{"capacity_tokens", e.kv_capacity_tokens ? Json(*e.kv_capacity_tokens) : Json(nullptr)},
                   {"max_concurrency", e.kv_max_concurrency ? Json(*e.kv_max_concurrency) : Json(nullptr)}};
  j["total_bytes"] = e.total.value();
  j["fits"] = e.fits ? Json(*e.fits) : Json(nullptr);
  j["notes"] = e.notes;
  if (!e.launch_flags.empty()) j["launch_flags"] = e.launch_flags;
  return j.dump(2) + "\n";
}

std::string RenderInspectJson(const Model& m, const std::vector<std::string>& notes) {
  const ModelSpec& s = m.spec;
  const Inventory& inv = m.inventory;
  Json j;
  j["schema"] = "vramfit.inspect/1";
  Bytes weights;
  for (const TensorGroup& g : inv.groups) weights += TensorBytes(g, WeightFormat{}, s.torch_dtype) * g.count;
  const KvLayout layout = KvLayout::kLatent;
  j["model"] = {{"id", s.id},
                {"params", inv.params},
                {"active_params", inv.active_params},
                {"weight_bytes", weights.value()},
                {"kv_bytes_per_token", KvBytesPerToken(s, s.torch_dtype, layout).value()}};
  j["architecture"] = {{"architecture", s.architecture},
                       {"model_type", s.model_type},
                       {"torch_dtype", Name(s.torch_dtype)},
                       {"hidden_size", s.hidden_size},
                       {"num_hidden_layers", s.num_hidden_layers},
                       {"num_attention_heads", s.num_attention_heads},
                       {"num_key_value_heads", s.num_key_value_heads},
                       {"head_dim", s.head_dim},
                       {"intermediate_size", s.intermediate_size},
                       {"vocab_size", s.vocab_size},
                       {"max_position_embeddings", s.max_position_embeddings},
                       {"tie_word_embeddings", s.tie_word_embeddings},
                       {"sliding_window", s.sliding_window > 0 ? Json(s.sliding_window) : Json(nullptr)},
                       {"num_experts", s.num_experts},
                       {"num_experts_per_tok", s.num_experts_per_tok},
                       {"attention", s.attn_kind == AttnKind::kMla ? "mla" : "standard"}};
  Json layers = Json::array();
  for (const LayerSpec& l : s.layers) {
    layers.push_back({{"attention", l.attention == LayerAttention::kSliding ? "sliding" : "full"},
                      {"moe", l.moe}});
  }
  j["layers"] = layers;
  Json roles = Json::object();
  for (int r = 0; r < 11; ++r) {
    if (inv.params_by_role[r] > 0) roles[RoleName(static_cast<Role>(r))] = inv.params_by_role[r];
  }
  j["params_by_role"] = roles;
  j["published_params"] = s.published_params > 0 ? Json(s.published_params) : Json(nullptr);
  j["extra_params"] = inv.extra_params;
  Json tensors = Json::array();
  for (const auto* list : {&inv.groups, &inv.extra}) {
    for (const TensorGroup& g : *list) {
      tensors.push_back({{"name", g.name},
                         {"role", RoleName(g.role)},
                         {"shape", g.cols == 1 ? Json::array({g.rows}) : Json::array({g.rows, g.cols})},
                         {"count", g.count},
                         {"params", g.elements()},
                         {"main_model", list == &inv.groups}});
    }
  }
  j["tensors"] = tensors;
  Json kv = Json::object();
  for (DType d : {DType::kF32, DType::kBF16, DType::kF8E4M3, DType::kQ8_0, DType::kQ4_0}) {
    kv[Name(d)] = KvBytesPerToken(s, d, KvLayout::kLatent).value();
  }
  j["kv_bytes_per_token_by_dtype"] = kv;
  if (s.attn_kind == AttnKind::kMla) {
    j["kv_bytes_per_token_expanded"] = KvBytesPerToken(s, s.torch_dtype, KvLayout::kExpanded).value();
  }
  j["notes"] = notes;
  return j.dump(2) + "\n";
}

std::string RenderModelsJson(const std::vector<const CatalogModel*>& models) {
  Json j;
  j["schema"] = "vramfit.models/1";
  j["models"] = Json::array();
  for (const CatalogModel* m : models) {
    j["models"].push_back({{"id", m->id},
                           {"also", m->also},
                           {"aliases", m->aliases},
                           {"display", m->display},
                           {"exact_params", m->exact_params > 0 ? Json(m->exact_params) : Json(nullptr)}});
  }
  return j.dump(2) + "\n";
}

std::string RenderGpusJson(const std::vector<const GpuSpec*>& gpus) {
  Json j;
  j["schema"] = "vramfit.gpus/1";
  j["gpus"] = Json::array();
  for (const GpuSpec* g : gpus) {
    j["gpus"].push_back({{"name", g->name},
                         {"vendor", g->vendor},
                         {"capacity_bytes", g->capacity.value()},
                         {"bandwidth_gb_s", g->bandwidth_gb_s},
                         {"bf16_dense_tflops", g->bf16_tflops},
                         {"aliases", g->aliases}});
  }
  return j.dump(2) + "\n";
}

std::string RenderErrorJson(const Error& e) {
  Json j;
  j["schema"] = "vramfit.error/1";
  j["error"] = {{"kind", ErrorKindName(e.kind)}, {"message", e.message}};
  return j.dump(2) + "\n";
}

}  // namespace vramfit
