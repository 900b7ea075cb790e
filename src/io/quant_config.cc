// quantization_config of the scaled checkpoint formats and the per-module
// rules of every method. Each layout below is what the library writes (and
// vLLM's loader expects); sources in docs/formats.md, "Checkpoint formats".
#include "quant_config.h"

#include <fmt/format.h>

#include "spec_limits.h"

namespace vramfit::io {
namespace {

using Rule = CheckpointQuant::ModuleRule;

// Longest rule list read (the 405B FP8 checkpoint lists ~500 modules).
constexpr size_t kMaxRules = 20000;
constexpr size_t kMaxPattern = 1024;

Error Bad(const std::string& where, const std::string& what) {
  return Unsupported(fmt::format("{}: {}", where, what));
}

// A list of module-name strings under `key` (absent or null: none).
Status ReadNames(const Json& q, const std::string& where, const char* key, Rule::Match match,
                 CheckpointQuant* c) {
  auto it = q.find(key);
  if (it == q.end() || it->is_null()) return {};
  if (!it->is_array()) return Corrupt(fmt::format("{}: key '{}': expected a list of module names", where, key));
  if (it->size() > kMaxRules) return Corrupt(fmt::format("{}: key '{}': more than {} entries", where, key, kMaxRules));
  for (const Json& v : *it) {
    if (!v.is_string()) return Corrupt(fmt::format("{}: key '{}': {} is not a string", where, key, Preview(v)));
    Rule r;
    r.pattern = v.get<std::string>();
    if (r.pattern.size() > kMaxPattern) return Corrupt(fmt::format("{}: key '{}': an entry over {} characters", where, key, kMaxPattern));
    r.match = match;
    // compressed-tensors: "re:" marks a regex (compressed_tensors/utils/match.py).
    if (match == Rule::Match::kExact && r.pattern.rfind("re:", 0) == 0) {
      r.pattern = r.pattern.substr(3);
      r.match = Rule::Match::kRegex;
    }
    r.dense = true;
    r.source = key;
    c->rules.push_back(std::move(r));
  }
  return {};
}

// GPTQModel / AutoRound `dynamic`: {"-:re": {}, "+:re": {"bits": 8, ...}, "re": {...}}.
Status ReadDynamic(const Json& q, const std::string& where, CheckpointQuant* c) {
  auto it = q.find("dynamic");
  if (it == q.end() || it->is_null()) return {};
  if (!it->is_object()) return Corrupt(fmt::format("{}: key 'dynamic': expected an object", where));
  if (it->size() > kMaxRules) return Corrupt(fmt::format("{}: key 'dynamic': more than {} entries", where, kMaxRules));
  for (auto e = it->begin(); e != it->end(); ++e) {
    Rule r;
    r.source = "dynamic";
    r.match = Rule::Match::kRegex;
    r.unordered = true;
    const std::string& k = e.key();
    if (k.size() > kMaxPattern) return Corrupt(fmt::format("{}: key 'dynamic': a pattern over {} characters", where, kMaxPattern));
    if (k.rfind("-:", 0) == 0) {
      r.pattern = k.substr(2);
      r.dense = true;
    } else {
      r.pattern = k.rfind("+:", 0) == 0 ? k.substr(2) : k;
      if (!e.value().is_object()) return Corrupt(fmt::format("{}: dynamic '{}': expected an object", where, k.substr(0, 60)));
      for (auto o = e.value().begin(); o != e.value().end(); ++o) {
        const std::string& ok = o.key();
        if (ok != "bits" && ok != "group_size" && ok != "sym" && ok != "desc_act" && ok != "damp_percent") {
          return Bad(where, fmt::format("dynamic '{}': override '{}' is not modelled", k.substr(0, 60), ok));
        }
        if (ok == "bits" || ok == "group_size") {
          if (!o.value().is_number_integer()) return Corrupt(fmt::format("{}: dynamic '{}': '{}' is not an integer", where, k.substr(0, 60), ok));
          const int64_t v = o.value().get<int64_t>();
          const IntRange range = ok == "bits" ? IntRange{1, kMaxQuantBits} : IntRange{-1, kMaxDim};
          if (!range.Contains(v) || v == 0) return Corrupt(fmt::format("{}: dynamic '{}': {} = {} is out of range", where, k.substr(0, 60), ok, v));
          (ok == "bits" ? r.bits : r.group_size) = v;
        }
      }
      // bits 16 keeps the module unquantized (AutoRound's convention).
      if (r.bits >= 16) r.dense = true;
    }
    c->rules.push_back(std::move(r));
  }
  return {};
}

// AutoRound extra_config: {"model.layers.0.mlp.down_proj": {"bits": 16, ...}}.
Status ReadExtraConfig(const Json& q, const std::string& where, CheckpointQuant* c) {
  auto it = q.find("extra_config");
  if (it == q.end() || it->is_null()) return {};
  if (!it->is_object()) return Corrupt(fmt::format("{}: key 'extra_config': expected an object", where));
  if (it->size() > kMaxRules) return Corrupt(fmt::format("{}: key 'extra_config': more than {} entries", where, kMaxRules));
  for (auto e = it->begin(); e != it->end(); ++e) {
    Rule r;
    r.source = "extra_config";
    r.match = Rule::Match::kExact;
    r.pattern = e.key().substr(0, kMaxPattern);
    if (!e.value().is_object()) return Corrupt(fmt::format("{}: extra_config '{}': expected an object", where, r.pattern.substr(0, 60)));
    for (auto o = e.value().begin(); o != e.value().end(); ++o) {
      if (o.key() == "bits" || o.key() == "group_size") {
        if (!o.value().is_number_integer()) return Corrupt(fmt::format("{}: extra_config '{}': '{}' is not an integer", where, r.pattern.substr(0, 60), o.key()));
        const int64_t v = o.value().get<int64_t>();
        if (v < -1 || v == 0 || v > kMaxDim) return Corrupt(fmt::format("{}: extra_config '{}': {} = {} is out of range", where, r.pattern.substr(0, 60), o.key(), v));
        (o.key() == "bits" ? r.bits : r.group_size) = v;
      } else if (o.key() == "data_type" && o.value().is_string() && o.value().get<std::string>() != "int") {
        if (o.value().get<std::string>() == "float" || o.value().get<std::string>() == "fp") r.dense = true;
        else return Bad(where, fmt::format("extra_config '{}': data_type '{}' is not modelled", r.pattern.substr(0, 60), o.value().get<std::string>()));
      }
    }
    if (r.bits >= 16) r.dense = true;
    if (r.bits > 8 && !r.dense) return Bad(where, fmt::format("extra_config '{}': bits {} is not modelled", r.pattern.substr(0, 60), r.bits));
    c->rules.push_back(std::move(r));
  }
  return {};
}

struct Args {  // one compressed-tensors QuantizationArgs
  int64_t bits = 0;
  std::string type, strategy;
  int64_t group_size = 0;
  bool symmetric = true, dynamic = false;
  int64_t block_rows = 0, block_cols = 0;
  std::string actorder;
};

Result<Args> ReadArgs(const Json& a, const std::string& where) {
  Args r;
  if (!a.is_object()) return Corrupt(fmt::format("{}: expected an object", where));
  auto str = [&](const char* k) -> std::string {
    auto it = a.find(k);
    return it != a.end() && it->is_string() ? it->get<std::string>() : "";
  };
  auto it = a.find("num_bits");
  if (it == a.end() || !it->is_number_integer()) return Corrupt(fmt::format("{}: 'num_bits' is missing", where));
  r.bits = it->get<int64_t>();
  r.type = str("type");
  r.strategy = str("strategy");
  if (auto g = a.find("group_size"); g != a.end() && g->is_number_integer()) r.group_size = g->get<int64_t>();
  if (auto s = a.find("symmetric"); s != a.end() && s->is_boolean()) r.symmetric = s->get<bool>();
  if (auto d = a.find("dynamic"); d != a.end()) r.dynamic = d->is_boolean() ? d->get<bool>() : d->is_string();
  if (auto b = a.find("block_structure"); b != a.end() && b->is_array() && b->size() == 2 &&
                                          (*b)[0].is_number_integer() && (*b)[1].is_number_integer()) {
    r.block_rows = (*b)[0].get<int64_t>();
    r.block_cols = (*b)[1].get<int64_t>();
  }
  r.actorder = str("actorder");
  return r;
}

// compressed-tensors: format + one config group of Linear targets.
Status ReadCompressedTensors(const Json& q, const std::string& where, DType dtype, CheckpointQuant* c,
                             std::vector<std::string>* notes) {
  std::string format;
  if (auto f = q.find("format"); f != q.end() && f->is_string()) format = f->get<std::string>();
  if (auto sp = q.find("sparsity_config"); sp != q.end() && sp->is_object() && !sp->empty()) {
    auto sf = sp->find("format");
    if (sf == sp->end() || !sf->is_string() || sf->get<std::string>() != "dense") {
      return Bad(where, "compressed-tensors sparsity_config (sparse weights) is not modelled");
    }
  }
  auto groups = q.find("config_groups");
  if (groups == q.end() || !groups->is_object() || groups->size() != 1) {
    return Bad(where, "compressed-tensors: exactly one config_groups entry is modelled");
  }
  const Json& g = groups->begin().value();
  const std::string gw = where + ": config_groups." + groups->begin().key();
  if (!g.is_object()) return Corrupt(gw + ": expected an object");
  auto targets = g.find("targets");
  if (targets == g.end() || *targets != Json::array({"Linear"})) {
    return Bad(gw, "targets other than [\"Linear\"] are not modelled");
  }
  auto wit = g.find("weights");
  if (wit == g.end() || wit->is_null()) return Bad(gw, "activation-only quantization is not modelled");
  Result<Args> w = ReadArgs(*wit, gw + ".weights");
  if (!w.ok()) return w.error();
  std::optional<Args> in;
  if (auto ia = g.find("input_activations"); ia != g.end() && !ia->is_null()) {
    Result<Args> a = ReadArgs(*ia, gw + ".input_activations");
    if (!a.ok()) return a.error();
    in = *a;
  }
  if (auto oa = g.find("output_activations"); oa != g.end() && !oa->is_null()) {
    return Bad(gw, "output_activations quantization is not modelled");
  }
  c->all_linear = true;
  // Scales are stored in the model dtype (initialize.py: observed dtype).
  c->scale_dtype = dtype;
  const int64_t sb = Info(dtype).block_bytes;
  if (w->type == "float" && w->bits == 4 && w->strategy == "tensor_group" && w->group_size == 16) {
    // nvfp4-pack-quantized: weight_packed u8, weight_scale e4m3 per 16,
    // weight_global_scale fp32 [1]; input_global_scale fp32 [1] with W4A4.
    c->method = "nvfp4";
    c->bits = 4;
    c->act_scale_bytes = in ? 4 : 0;
    if (in && !(in->type == "float" && in->bits == 4)) return Bad(gw, "NVFP4 weights with non-fp4 activations are not modelled");
  } else if (w->bits == 8 && (w->type == "float" || w->type == "int") &&
             (w->strategy == "channel" || w->strategy == "tensor" || (w->type == "float" && w->strategy == "block"))) {
    c->method = w->type == "float" ? "fp8" : "int8";
    c->bits = 8;
    c->scale_per_row = w->strategy == "channel";
    if (w->strategy == "block") {
      if (w->block_rows <= 0 || w->block_cols <= 0 || w->block_rows > kMaxDim || w->block_cols > kMaxDim) {
        return Corrupt(gw + ".weights: block_structure must be two positive integers");
      }
      c->block_rows = w->block_rows;
      c->block_cols = w->block_cols;
    }
    if (!w->symmetric) {
      if (w->type == "float") return Bad(gw, "asymmetric fp8 weights are not modelled");
      c->zero_point = true;  // weight_zero_point int8, shaped like the scale
    }
    if (in && !in->dynamic) {
      // Static activation scale: input_scale [1] in the model dtype (+ an
      // int8 input_zero_point when asymmetric).
      if (in->strategy != "tensor") return Bad(gw, "static input_activations other than per tensor are not modelled");
      c->act_scale_bytes = sb + (in->symmetric ? 0 : 1);
    }
  } else {
    return Bad(gw, fmt::format("compressed-tensors weights {} {}-bit '{}' (format '{}') are not modelled",
                               w->type, w->bits, w->strategy, format));
  }
  if (auto kv = q.find("kv_cache_scheme"); kv != q.end() && !kv->is_null() && notes) {
    notes->push_back("quantization_config kv_cache_scheme: the per-layer k_scale/v_scale tensors (a few bytes) are not counted in weights");
  }
  return ReadNames(q, where, "ignore", Rule::Match::kExact, c);
}

// modelopt (TensorRT Model Optimizer): quant_algo NVFP4 or FP8, flat or
// under "quantization" (hf_quant_config.json's layout).
Status ReadModelopt(const Json& top, const std::string& where, CheckpointQuant* c,
                    std::vector<std::string>* notes) {
  const Json* q = &top;
  if (auto n = top.find("quantization"); n != top.end() && n->is_object()) q = &*n;
  std::string algo;
  if (auto a = q->find("quant_algo"); a != q->end() && a->is_string()) algo = a->get<std::string>();
  c->all_linear = true;
  if (algo == "NVFP4") {
    // weight u8 [out, in/2]; weight_scale e4m3 [out, in/16]; weight_scale_2
    // fp32 []; input_scale fp32 [] (vLLM ModelOptNvFp4LinearMethod).
    c->method = "nvfp4";
    c->bits = 4;
    c->act_scale_bytes = 4;
    if (auto gs = q->find("group_size"); gs != q->end() && (!gs->is_number_integer() || gs->get<int64_t>() != 16)) {
      return Bad(where, "modelopt NVFP4 with group_size other than 16 is not modelled");
    }
  } else if (algo == "FP8") {
    // weight e4m3; weight_scale fp32 []; input_scale fp32 [].
    c->method = "fp8";
    c->bits = 8;
    c->scale_dtype = DType::kF32;
    c->act_scale_bytes = 4;
  } else {
    return Bad(where, fmt::format("modelopt quant_algo '{}' is not modelled (NVFP4, FP8 are)", algo.substr(0, 40)));
  }
  if (auto kv = q->find("kv_cache_quant_algo"); kv != q->end() && !kv->is_null() && notes) {
    notes->push_back("quantization_config kv_cache_quant_algo: the per-layer k_scale/v_scale tensors (a few bytes) are not counted in weights");
  }
  VRAMFIT_TRY(ReadNames(*q, where, "exclude_modules", Rule::Match::kGlob, c));
  return ReadNames(*q, where, "ignore", Rule::Match::kGlob, c);
}

}  // namespace

Status ReadScaledQuantConfig(const Json& q, const std::string& where, DType dtype,
                             CheckpointQuant* c, std::vector<std::string>* notes) {
  const std::string m = c->method;
  if (m == "compressed-tensors") return ReadCompressedTensors(q, where, dtype, c, notes);
  if (m == "modelopt") return ReadModelopt(q, where, c, notes);
  if (m == "fbgemm_fp8") {
    // FbgemmFp8Linear: weight e4m3 [out, in], weight_scale fp32 [out, 1].
    // Its input_scale_ub (fp32 [1], made from activation_scale_ub at load,
    // not stored) is 4 bytes per linear and not counted.
    c->method = "fp8";
    c->bits = 8;
    c->scale_per_row = true;
    c->scale_dtype = DType::kF32;
    return ReadNames(q, where, "modules_to_not_convert", Rule::Match::kHfKey, c);
  }
  if (m == "gptq" || m == "auto-round" || m == "autoround" || m == "intel/auto-round") {
    if (m != "gptq") {
      std::string pf;
      if (auto p = q.find("packing_format"); p != q.end() && p->is_string()) pf = p->get<std::string>();
      if (pf.find("awq") != std::string::npos) c->method = "awq";
      else if (pf.empty() || pf.find("gptq") != std::string::npos) c->method = "gptq";
      else return Bad(where, fmt::format("AutoRound packing_format '{}' is not modelled", pf.substr(0, 40)));
      VRAMFIT_TRY(ReadExtraConfig(q, where, c));
    } else {
      c->method = "gptq";
    }
    if (auto lh = q.find("lm_head"); lh != q.end() && lh->is_boolean() && lh->get<bool>()) {
      return Bad(where, "a quantized lm_head (lm_head: true) is not modelled");
    }
    if (auto mb = q.find("modules_in_block_to_quantize"); mb != q.end() && !mb->is_null()) {
      return Bad(where, "modules_in_block_to_quantize is not modelled");
    }
    VRAMFIT_TRY(ReadDynamic(q, where, c));
    return ReadNames(q, where, "modules_to_not_convert", Rule::Match::kHfKey, c);
  }
  if (m == "awq" || m == "fp8") {
    // transformers AwqConfig / FineGrainedFP8Config modules_to_not_convert.
    return ReadNames(q, where, "modules_to_not_convert", Rule::Match::kHfKey, c);
  }
  return {};
}

}  // namespace vramfit::io
