#include <cerrno>
#include <cstdlib>
#include <algorithm>
#include <tuple>

#include <fmt/format.h>

#include "cli/cli.h"

namespace vramfit::cli {

Result<int64_t> ParseIntFlag(const std::string& flag, const std::string& value) {
  const char* s = value.c_str();
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s, &end, 10);
  if (value.empty() || end == s || *end != '\0' || errno == ERANGE) {
    return InvalidArgument(fmt::format("{}: expected an integer, got '{}'", flag, value));
  }
  return static_cast<int64_t>(v);
}

Result<Units> ToUnits(const std::string& s) {
  if (s == "gib" || s == "GiB") return Units::kGiB;
  if (s == "gb" || s == "GB") return Units::kGB;
  return InvalidArgument(fmt::format("--units: expected gib or gb, got '{}'", s));
}

namespace {

Result<DType> ComputeDType(const std::string& flag, const std::string& v) {
  auto d = ParseDType(v);
  if (!d || (*d != DType::kF32 && *d != DType::kF16 && *d != DType::kBF16)) {
    return InvalidArgument(fmt::format("{}: expected fp32, fp16 or bf16, got '{}'", flag, v));
  }
  return *d;
}

}  // namespace

Result<InferenceSettings> ToInferenceSettings(const RawFlags& f) {
  InferenceSettings s;
  auto rt = ParseRuntime(f.runtime);
  if (!rt.ok()) return rt.error();
  s.runtime = *rt;
  if (f.dtype) {
    auto d = ComputeDType("--dtype", *f.dtype);
    if (!d.ok()) return d.error();
    s.dtype = *d;
  }
  if (f.quant) {
    auto q = ParseWeightFormat(*f.quant);
    if (!q.ok()) return q.error();
    s.quant = *q;
  }
  const auto int_flag = [](const char* name, const std::optional<std::string>& v,
                           std::optional<int64_t>* out) -> Status {
    if (!v) return {};
    auto r = ParseIntFlag(name, *v);
    if (!r.ok()) return r.error();
    *out = *r;
    return {};
  };
  std::optional<int64_t> batch, tp, pp;
  VRAMFIT_TRY(int_flag("--batch", f.batch, &batch));
  VRAMFIT_TRY(int_flag("--ctx", f.ctx, &s.ctx));
  VRAMFIT_TRY(int_flag("--prompt", f.prompt, &s.prompt));
  VRAMFIT_TRY(int_flag("--new", f.new_tokens, &s.new_tokens));
  VRAMFIT_TRY(int_flag("--tp", f.tp, &tp));
  VRAMFIT_TRY(int_flag("--pp", f.pp, &pp));
  if (batch) s.batch = *batch;
  if (tp) s.tp = *tp;
  if (pp) s.pp = *pp;
  if (f.kv_dtype && *f.kv_dtype != "auto") {
    auto d = ParseDType(*f.kv_dtype);
    if (!d) {
      return InvalidArgument(fmt::format(
          "--kv-dtype: expected auto, fp16, bf16, fp8, q8_0 or q4_0, got '{}'", *f.kv_dtype));
    }
    s.kv_dtype = *d;
  }
  // vLLM knobs.
  if (f.gpu_mem_util) {
    const std::string& v = *f.gpu_mem_util;
    char* end = nullptr;
    const double u = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !(u > 0.0 && u <= 1.0)) {
      return InvalidArgument(fmt::format("--gpu-mem-util: expected a fraction in (0, 1], got '{}'", v));
    }
    s.vllm.gpu_memory_utilization = u;
  }
  VRAMFIT_TRY(int_flag("--max-model-len", f.max_model_len, &s.vllm.max_model_len));
  VRAMFIT_TRY(int_flag("--max-num-seqs", f.max_num_seqs, &s.vllm.max_num_seqs));
  VRAMFIT_TRY(int_flag("--max-num-batched-tokens", f.max_num_batched_tokens, &s.vllm.max_num_batched_tokens));
  VRAMFIT_TRY(int_flag("--block-size", f.block_size, &s.vllm.block_size));
  s.vllm.enforce_eager = f.enforce_eager;
  // llama.cpp knobs.
  VRAMFIT_TRY(int_flag("--ubatch", f.ubatch, &s.llamacpp.ubatch));
  VRAMFIT_TRY(int_flag("--batch-size", f.batch_size, &s.llamacpp.batch_size));
  VRAMFIT_TRY(int_flag("--gpu-layers", f.gpu_layers, &s.llamacpp.gpu_layers));
  VRAMFIT_TRY(int_flag("--parallel", f.parallel, &s.llamacpp.parallel));
  if (f.llamacpp_build) {
    // A release tag as llama.cpp prints it ("b5622", "5622 (97340b4c)" -> 5622).
    std::string v = *f.llamacpp_build;
    if (!v.empty() && (v[0] == 'b' || v[0] == 'B')) v = v.substr(1);
    auto b = ParseIntFlag("--llamacpp-build", v);
    if (!b.ok() || *b < 1000 || *b > 99999) {
      return InvalidArgument(fmt::format(
          "--llamacpp-build: expected a llama.cpp release such as b5622, got '{}'", *f.llamacpp_build));
    }
    s.llamacpp.build = *b;
  }
  if (f.flash_attn) {
    const std::string& v = *f.flash_attn;
    if (v == "on" || v == "1" || v == "true") s.llamacpp.flash_attn = true;
    else if (v == "off" || v == "0" || v == "false") s.llamacpp.flash_attn = false;
    else if (v != "auto") {
      return InvalidArgument(fmt::format("--flash-attn: expected on, off or auto, got '{}'", v));
    }
  }
  for (const auto& [flag, value, out] :
       {std::tuple{"--cache-type-k", &f.cache_type_k, &s.llamacpp.cache_type_k},
        std::tuple{"--cache-type-v", &f.cache_type_v, &s.llamacpp.cache_type_v}}) {
    if (!*value) continue;
    auto d = ParseDType(**value);
    const bool ok = d && (*d == DType::kF32 || *d == DType::kF16 || *d == DType::kBF16 ||
                          *d == DType::kQ8_0 || *d == DType::kQ4_0 || *d == DType::kQ4_1 ||
                          *d == DType::kIQ4_NL || *d == DType::kQ5_0 || *d == DType::kQ5_1);
    if (!ok) {
      return InvalidArgument(fmt::format(
          "{}: expected f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0 or q5_1, got '{}'", flag, **value));
    }
    *out = *d;
  }
  if (f.transformers) {
    auto v = ParseHfVersion(*f.transformers);
    if (!v.ok()) return v.error();
    s.hf_version = *v;
  }
  if (f.attn) {
    auto a = ParseAttn(*f.attn);
    if (!a.ok()) return a.error();
    s.attn = *a;
  }
  return s;
}

Result<TrainingSettings> ToTrainingSettings(const RawFlags& f) {
  TrainingSettings s;
  const auto enum_flag = [](const std::optional<std::string>& v, auto parse, auto* out) -> Status {
    if (!v) return {};
    auto r = parse(*v);
    if (!r.ok()) return r.error();
    *out = *r;
    return {};
  };
  VRAMFIT_TRY(enum_flag(f.method, ParseMethod, &s.method));
  VRAMFIT_TRY(enum_flag(f.precision, ParsePrecision, &s.precision));
  VRAMFIT_TRY(enum_flag(f.optimizer, ParseOptimizer, &s.optimizer));
  VRAMFIT_TRY(enum_flag(f.grad_ckpt, ParseGradCkpt, &s.grad_ckpt));
  VRAMFIT_TRY(enum_flag(f.offload, ParseOffload, &s.offload));
  VRAMFIT_TRY(enum_flag(f.loss, ParseLoss, &s.loss));
  if (f.attn) VRAMFIT_TRY(enum_flag(f.attn, ParseAttn, &s.attn));
  if (f.optimizer_impl) {
    if (*f.optimizer_impl == "fused") s.optimizer_fused = true;
    else if (*f.optimizer_impl != "foreach") {
      return InvalidArgument(fmt::format("--optimizer-impl: expected foreach or fused, got '{}'", *f.optimizer_impl));
    }
  }
  const auto int_flag = [](const char* name, const std::optional<std::string>& v, int64_t* out) -> Status {
    if (!v) return {};
    auto r = ParseIntFlag(name, *v);
    if (!r.ok()) return r.error();
    *out = *r;
    return {};
  };
  VRAMFIT_TRY(int_flag("--seq", f.seq, &s.seq));
  VRAMFIT_TRY(int_flag("--batch", f.batch, &s.batch));
  VRAMFIT_TRY(int_flag("--grad-accum", f.grad_accum, &s.grad_accum));
  VRAMFIT_TRY(int_flag("--lora-rank", f.lora_rank, &s.lora_rank));
  VRAMFIT_TRY(int_flag("--zero", f.zero, &s.zero));
  VRAMFIT_TRY(int_flag("--tp", f.tp, &s.tp));
  VRAMFIT_TRY(int_flag("--pp", f.pp, &s.pp));
  if (f.gpus_dp) {
    int64_t g = 0;
    VRAMFIT_TRY(int_flag("--gpus", f.gpus_dp, &g));
    s.gpus = g;
  }
  if (f.trainable_layers) {
    int64_t n = 0;
    VRAMFIT_TRY(int_flag("--trainable-layers", f.trainable_layers, &n));
    s.trainable_layers = n;
  }
  if (f.lora_targets) s.lora_targets = *f.lora_targets;
  s.fsdp = f.fsdp;
  if (f.quant) {
    auto q = ParseWeightFormat(*f.quant);
    if (!q.ok()) return q.error();
    s.quant = *q;
  }
  if (f.dtype) {
    return InvalidArgument("--dtype: for training, --precision sets the weight and compute dtypes");
  }
  return s;
}

Result<DeviceSet> ToDevices(const RawFlags& f, const GpuCatalog& catalog) {
  DeviceSet set;
  // --gpu is repeatable, and each value may be a comma list:
  // "--gpu H100-80GBx2,RTX-4090" == "--gpu H100-80GBx2 --gpu RTX-4090".
  for (const std::string& g : f.gpus) {
    size_t start = 0;
    do {
      const size_t comma = std::min(g.find(',', start), g.size());
      if (comma == start) return InvalidArgument(fmt::format("--gpu: empty GPU name in '{}'", g));
      Status st = AddGpus(g.substr(start, comma - start), catalog, &set);
      if (!st.ok()) return st.error();
      start = comma + 1;
    } while (start <= g.size());
  }
  return set;
}

}  // namespace vramfit::cli
