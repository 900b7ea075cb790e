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

// {"low_bytes", "high_bytes", "basis"}; only "basis" where no measured band applies.
Json UncertaintyJson(const Uncertainty& u) {
  Json j;
  if (u.low && u.high) {
    j["low_bytes"] = u.low->value();
    j["high_bytes"] = u.high->value();
  }
  j["basis"] = u.basis;
  return j;
}

}  // namespace

std::string RenderEstimateJson(const Estimate& e) { return RenderEstimateJson(e, {}); }

Json EstimateDoc(const Estimate& e, const EstimateExtras& x);

std::string RenderEstimateJson(const Estimate& e, const EstimateExtras& x) {
  // Names read from files may hold invalid UTF-8: replaced, never thrown on.
  return EstimateDoc(e, x).dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

Json EstimateDoc(const Estimate& e, const EstimateExtras& x) {
  Json j;
  j["schema"] = "vramfit.estimate/1";
  j["model"] = {{"id", e.model_id},
                {"params", e.params},
                {"active_params", e.active_params},
                {"weight_bytes", e.weight_bytes.value()},
                {"kv_bytes_per_token", e.kv_bytes_per_token.value()},
                {"state_bytes_per_sequence", e.state_bytes_per_sequence.value()}};
  Json w = Json::object();
  for (const auto& [key, v] : e.workload) {
    const std::string& k = key;  // clang 14 cannot capture a structured binding in a lambda
    std::visit([&](const auto& x) { w[k] = x; }, v);
  }
  j["workload"] = w;
  j["devices"] = Json::array();
  for (const DeviceEstimate& d : e.devices) {
    Json dj;
    dj["name"] = d.name;
    dj["gpu"] = d.gpu ? Json(d.gpu->name) : Json(nullptr);
    dj["capacity_bytes"] = d.gpu ? Json(d.gpu->capacity.value()) : Json(nullptr);
    if (d.gpu && !d.gpu->detected.empty()) {
      // --gpu local: what this machine reported (other processes' memory is
      // also the other_processes component).
      dj["detected"] = {{"source", d.gpu->detected},
                        {"name", d.gpu->detected_name},
                        {"in_use_bytes", d.gpu->in_use_known ? Json(d.gpu->in_use.value()) : Json(nullptr)}};
    }
    dj["total_bytes"] = d.total.value();
    dj["reserved_peak_bytes"] = OptBytes(d.reserved_peak);
    dj["allocated_peak_bytes"] = OptBytes(d.allocated_peak);
    dj["peak_phase"] = d.peak_phase;
    // The device whose start-up check failed does not fit, whatever its total.
    const bool failed_here = e.failure && e.failure->device == d.name;
    dj["fits"] = d.gpu ? Json(d.total <= d.gpu->capacity && !failed_here) : Json(nullptr);
    const size_t i = j["devices"].size();
    const Uncertainty* band = i < x.uncertainty.size() ? &x.uncertainty[i] : nullptr;
    const std::string verdict = DeviceVerdict(e, d, band);
    dj["verdict"] = verdict.empty() ? Json(nullptr) : Json(verdict);
    if (band) dj["uncertainty"] = UncertaintyJson(*band);
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
  // "fits" | "tight" | "does not fit" (null without a GPU), beside "fits".
  const std::string verdict = EstimateVerdict(e, x.uncertainty);
  j["verdict"] = verdict.empty() ? Json(nullptr) : Json(verdict);
  // The band of the device with the largest total (the one "total_bytes" is).
  for (size_t i = 0; i < e.devices.size() && i < x.uncertainty.size(); ++i) {
    if (e.devices[i].total == e.total) {
      j["uncertainty"] = UncertaintyJson(x.uncertainty[i]);
      break;
    }
  }
  if (e.failure) {
    j["failure"] = {{"kind", e.failure->kind}, {"message", e.failure->message}, {"device", e.failure->device}};
  }
  j["notes"] = e.notes;
  if (!e.launch_flags.empty()) {
    // launch_argv: the whole command (command words, then the flags' tokens).
    std::vector<std::string> argv = e.launch_command;
    for (std::string& t : LaunchArgv(e.launch_flags)) argv.push_back(std::move(t));
    j["launch_flags"] = e.launch_flags;
    j["launch_command"] = e.launch_command;
    j["launch_argv"] = argv;
  }
  if (!x.fixes.empty()) {
    Json fixes = Json::array();
    for (const Fix& f : x.fixes) {
      Json settings = Json::object();
      for (const auto& [k, v] : f.settings) settings[k] = v;
      fixes.push_back({{"change", f.change}, {"settings", settings}, {"total_bytes", f.total.value()},
                       {"saves_bytes", f.saves.value()}, {"fits", f.fits}, {"changes", f.changes},
                       {"costs", f.costs}, {"cost", f.cost}});
    }
    j["fixes"] = fixes;
  }
  if (x.throughput) {
    j["throughput"] = {{"decode_tokens_per_s", x.throughput->decode_tokens_per_s},
                       {"decode_batch_tokens_per_s", x.throughput->decode_batch_tokens_per_s},
                       {"prefill_tokens_per_s", x.throughput->prefill_tokens_per_s > 0
                                                    ? Json(x.throughput->prefill_tokens_per_s)
                                                    : Json(nullptr)},
                       {"assumptions", x.throughput->note}};
  }
  return j;
}

std::vector<std::string> LaunchArgv(const std::vector<std::string>& flags) {
  // Words split on spaces, as a POSIX shell splits them: '...' quotes a
  // word (a llama.cpp -ot regex), a backslash outside quotes escapes the
  // next character ('\'' inside a quoted word).
  std::vector<std::string> argv;
  for (const std::string& f : flags) {
    std::string word;
    bool in_word = false, quoted = false;
    for (size_t i = 0; i < f.size(); ++i) {
      const char c = f[i];
      if (quoted) {
        if (c == '\'') quoted = false;
        else word += c;
      } else if (c == '\'') {
        quoted = in_word = true;
      } else if (c == '\\' && i + 1 < f.size()) {
        word += f[++i];
        in_word = true;
      } else if (c == ' ') {
        if (in_word) argv.push_back(std::move(word));
        word.clear();
        in_word = false;
      } else {
        word += c;
        in_word = true;
      }
    }
    if (in_word) argv.push_back(std::move(word));
  }
  return argv;
}

std::string RenderLaunchJson(const Estimate& e, std::string_view runtime) {
  Json j;
  j["schema"] = "vramfit.launch/1";
  j["runtime"] = std::string(runtime);
  std::vector<std::string> argv = e.launch_command;
  for (std::string& t : LaunchArgv(e.launch_flags)) argv.push_back(std::move(t));
  j["command"] = e.launch_command;
  j["flags"] = e.launch_flags;
  j["argv"] = argv;
  j["fits"] = e.fits ? Json(*e.fits) : Json(nullptr);
  return j.dump(2) + "\n";
}

std::string RenderInspectJson(const Inspection& in) {
  const Model& m = *in.model;
  const ModelSpec& s = m.spec;
  const Inventory& inv = m.inventory;
  Json j;
  j["schema"] = "vramfit.inspect/1";
  Json file = nullptr;
  if (in.from_file) {
    Json list = Json::array();
    for (const FileTensor& t : m.file_tensors) {
      list.push_back({{"name", t.name}, {"role", RoleName(t.role)}, {"layer", t.layer >= 0 ? Json(t.layer) : Json(nullptr)},
                      {"dtype", Name(t.dtype)}, {"shape", t.shape}, {"bytes", t.bytes}});
    }
    Json dtypes = Json::array(), roles = Json::array();
    for (const auto& [d, r] : in.file_by_dtype) {
      dtypes.push_back({{"dtype", Name(d)}, {"tensors", r.tensors}, {"elements", r.elements}, {"bytes", r.bytes}});
    }
    for (const auto& [role, r] : in.file_by_role) {
      roles.push_back({{"role", RoleName(role)}, {"tensors", r.tensors}, {"elements", r.elements}, {"bytes", r.bytes}});
    }
    file = {{"format", m.file_format}, {"tensor_count", m.file_tensors.size()}, {"elements", in.file_all.elements},
            {"weight_bytes", in.weight_bytes.value()}, {"by_dtype", dtypes}, {"by_role", roles}, {"tensors", list}};
  }
  j["model"] = {{"id", s.id},
                {"params", inv.params},
                {"active_params", inv.active_params},
                {"weight_bytes", in.weight_bytes.value()},
                {"kv_bytes_per_token", in.kv_bytes_per_token.value()},
                {"state_bytes_per_sequence", in.state_bytes_per_sequence.value()},
                {"layer_pattern", in.layer_pattern}};
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
    Json layer = {{"attention", l.attention == LayerAttention::kSliding ? "sliding"
                                : l.attention == LayerAttention::kNone  ? "none"
                                                                        : "full"},
                  {"moe", l.moe}};
    // Hybrid stacks only (pure-attention output unchanged): the recurrent
    // mixer, and "mlp": false for layers without an MLP.
    if (l.HasRecurrent()) layer["recurrent"] = RecurrentName(l.recurrent);
    if (!l.mlp) layer["mlp"] = false;
    layers.push_back(layer);
  }
  j["layers"] = layers;
  Json roles = Json::object();
  for (size_t r = 0; r < kRoleCount; ++r) {
    if (inv.params_by_role[r] > 0) roles[RoleName(static_cast<Role>(r))] = inv.params_by_role[r];
  }
  j["params_by_role"] = roles;
  j["published_params"] = s.published_params > 0 ? Json(s.published_params) : Json(nullptr);
  j["topology"] = TopologyName(s.topology);
  j["head"] = s.topology == Topology::kDecoder ? Json(nullptr) : Json(HeadName(s.head));
  j["base_params"] = inv.base_params;
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
  for (const auto& [d, b] : in.kv_by_dtype) kv[Name(d)] = b.value();
  j["kv_bytes_per_token_by_dtype"] = kv;
  j["file"] = file;
  if (s.attn_kind == AttnKind::kMla) j["kv_bytes_per_token_expanded"] = in.kv_bytes_per_token_expanded.value();
  j["notes"] = in.notes;
  // Names read from files may hold invalid UTF-8: replaced, never thrown on.
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
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
    // Figures the catalog does not know are null, never 0.
    const auto known = [](double v) { return v > 0 ? Json(v) : Json(nullptr); };
    j["gpus"].push_back({{"name", g->name},
                         {"vendor", g->vendor},
                         {"capacity_bytes", g->capacity.value()},
                         {"ram_bytes", g->ram.value() > 0 ? Json(g->ram.value()) : Json(nullptr)},
                         {"unified_memory", g->unified_memory},
                         {"bandwidth_gb_s", known(g->bandwidth_gb_s)},
                         {"bf16_dense_tflops", known(g->bf16_tflops)},
                         {"fp16_dense_tflops", known(g->fp16_tflops)},
                         {"compute_capability", g->compute_capability.empty() ? Json(nullptr)
                                                                               : Json(g->compute_capability)},
                         {"memory_source", g->memory_source},
                         {"specs_source", g->specs_source},
                         {"aliases", g->aliases}});
  }
  return j.dump(2) + "\n";
}

std::string RenderErrorJson(const Error& e) {
  Json j;
  j["schema"] = "vramfit.error/1";
  j["error"] = {{"kind", ErrorKindName(e.kind)}, {"message", e.message}};
  // Messages quote untrusted input, which may not be UTF-8: replaced, never thrown on.
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace vramfit
