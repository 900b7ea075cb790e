#include "vramfit/check.h"
#include "vramfit/workload.h"

#include <fmt/format.h>

#include "runtimes/profile.h"

namespace vramfit {

const char* RuntimeName(Runtime r) {
  switch (r) {
    case Runtime::kHf: return "hf";
    case Runtime::kVllm: return "vllm";
    case Runtime::kLlamaCpp: return "llamacpp";
    case Runtime::kSglang: return "sglang";
  }
  return "?";
}

const char* AttnName(AttnImpl a) {
  switch (a) {
    case AttnImpl::kEager: return "eager";
    case AttnImpl::kSdpa: return "sdpa";
    case AttnImpl::kFlash: return "flash";
  }
  return "?";
}

Result<Runtime> ParseRuntime(std::string_view s) {
  if (s == "hf" || s == "transformers") return Runtime::kHf;
  if (s == "vllm") return Runtime::kVllm;
  if (s == "llamacpp" || s == "llama.cpp") return Runtime::kLlamaCpp;
  if (s == "sglang") return Runtime::kSglang;
  return InvalidArgument(
      fmt::format("--runtime: unknown runtime '{}' (expected hf, vllm, llamacpp or sglang)", s));
}

Result<AttnImpl> ParseAttn(std::string_view s) {
  if (s == "eager") return AttnImpl::kEager;
  if (s == "sdpa") return AttnImpl::kSdpa;
  if (s == "flash" || s == "flash_attention_2" || s == "fa2") return AttnImpl::kFlash;
  return InvalidArgument(
      fmt::format("--attn: unknown attention kernel '{}' (expected eager, sdpa or flash)", s));
}

Result<int64_t> ParseHfVersion(std::string_view s) {
  const auto bad = [&] {
    return InvalidArgument(fmt::format("--transformers: expected a version such as 4.56, got '{}'", s));
  };
  const size_t dot = s.find('.');
  if (dot == std::string_view::npos || dot == 0) return bad();
  int64_t major = 0, minor = 0;
  size_t i = 0;
  for (; i < dot; ++i) {
    if (s[i] < '0' || s[i] > '9' || major > 9) return bad();
    major = major * 10 + (s[i] - '0');
  }
  size_t digits = 0;
  for (i = dot + 1; i < s.size() && s[i] != '.'; ++i, ++digits) {
    if (s[i] < '0' || s[i] > '9' || minor > 99) return bad();
    minor = minor * 10 + (s[i] - '0');
  }
  if (digits == 0 || minor > 99 || major != 4) return bad();
  return major * 100 + minor;
}

namespace {


}  // namespace

namespace {

// The model's dtype unless --dtype says otherwise; a model stored in fp32 is
// loaded in fp32 (transformers' torch_dtype="auto" keeps it).
Status ResolveDtypes(const Model& model, const InferenceSettings& s, InferenceWorkload* w,
                     std::vector<std::string>* notes) {
  const ModelSpec& spec = model.spec;
  w->dtype = s.dtype.value_or(spec.torch_dtype);
  if (w->dtype != DType::kF32 && w->dtype != DType::kF16 && w->dtype != DType::kBF16) {
    return InvalidArgument(fmt::format("--dtype: '{}' is not a compute dtype (fp32, fp16, bf16)",
                                       Name(w->dtype)));
  }
  w->weights_as_stored = !s.quant.has_value();
  if (s.quant) {
    w->quant = *s.quant;
  } else if (spec.checkpoint_quant) {
    Result<WeightFormat> f = FormatFromCheckpoint(*spec.checkpoint_quant, spec, model.inventory, notes);
    if (!f.ok()) return f.error();
    w->quant = std::move(f).value();
    w->quant_from_checkpoint = true;
    if (notes) {
      notes->push_back(fmt::format(
          "weights sized as the checkpoint stores them ({}{}); --quant none sizes them "
          "dequantized to {}",
          w->quant.Name(), w->quant.exceptions ? ", with its per-module exceptions" : "",
          Name(w->dtype)));
    }
  }
  w->kv_dtype = s.kv_dtype.value_or(w->dtype);
  return {};
}

// What the GPU can run under transformers: FlashAttention-2 needs compute
// capability 8.0 (flash-attn raises "FlashAttention only supports Ampere
// GPUs or newer"); bf16 has no tensor cores below 8.0, so a bf16 model's
// default dtype on such a GPU is fp16 (same bytes), as people run it.
Status CheckHfCapabilities(const InferenceSettings& s, const DeviceSet& devices, InferenceWorkload* w,
                           std::vector<std::string>* notes) {
  if (w->attn == AttnImpl::kFlash) {
    if (const GpuSpec* g = FirstBelow(devices, kMinCcFlashAttn2)) {
      return InvalidArgument(fmt::format(
          "--attn flash: FlashAttention-2 needs compute capability 8.0 or newer; {} is {} (use --attn sdpa)",
          g->name, g->compute_capability));
    }
  }
  const GpuSpec* g = FirstBelow(devices, kMinCcBf16);
  if (g == nullptr || w->dtype != DType::kBF16) return {};
  if (s.dtype) {
    if (notes) {
      notes->push_back(fmt::format(
          "--dtype bf16 on {} (compute capability {}): no bf16 tensor cores, bf16 matmuls run emulated "
          "(same bytes, much slower); fp16 runs natively",
          g->name, g->compute_capability));
    }
    return {};
  }
  w->dtype = DType::kF16;
  if (!s.kv_dtype) w->kv_dtype = DType::kF16;
  if (notes) {
    notes->push_back(fmt::format(
        "{} (compute capability {}) has no bf16 tensor cores: the bf16 model runs in fp16 (same bytes; "
        "--dtype bf16 to keep bf16, emulated)",
        g->name, g->compute_capability));
  }
  return {};
}

// Tokens per sequence: --ctx, or --prompt + --new, or the default (4096,
// capped at the model's max).
Status ResolveTokens(const Model& model, const InferenceSettings& s, InferenceWorkload* w) {
  if (s.prompt) VRAMFIT_TRY(CheckRange("--prompt", *s.prompt, 1, kMaxTokens));
  if (s.new_tokens) VRAMFIT_TRY(CheckRange("--new", *s.new_tokens, 0, kMaxTokens));
  if (s.ctx) VRAMFIT_TRY(CheckRange("--ctx", *s.ctx, 1, kMaxTokens));
  const int64_t max_pos = model.spec.max_position_embeddings;
  if (s.ctx_from_model) {
    if (s.prompt || s.new_tokens) return InvalidArgument("--ctx: give either --ctx or --prompt/--new, not both");
    if (max_pos <= 0) {
      return InvalidArgument("--ctx max: the model's config states no max_position_embeddings; give --ctx N");
    }
    w->ctx = max_pos;
    w->prompt = w->ctx;
    w->new_tokens = 0;
    return {};
  }
  if (s.prompt || s.new_tokens) {
    if (s.ctx) return InvalidArgument("--ctx: give either --ctx or --prompt/--new, not both");
    w->new_tokens = s.new_tokens.value_or(0);
    w->prompt = s.prompt.value_or(1);
    w->ctx = w->prompt + w->new_tokens;
    if (w->ctx > kMaxTokens) {
      return InvalidArgument(fmt::format("--prompt/--new: {} tokens in all is out of range (1..{})",
                                         w->ctx, kMaxTokens));
    }
  } else if (s.ctx) {
    w->ctx = *s.ctx;
    w->prompt = w->ctx;
    w->new_tokens = 0;
  } else {
    w->ctx = kDefaultContext;
    if (max_pos > 0 && max_pos < w->ctx) w->ctx = max_pos;
    w->prompt = w->ctx;
  }
  return {};
}

// --tp x --pp against the GPUs given. Several GPUs without --tp/--pp are
// left to the runtime's profile (layer split, or an error).
Status ResolveParallel(const InferenceSettings& s, const DeviceSet& devices,
                       InferenceWorkload* w) {
  VRAMFIT_TRY(CheckRange("--tp", s.tp, 1, kMaxParallel));
  VRAMFIT_TRY(CheckRange("--pp", s.pp, 1, kMaxParallel));
  w->tp = s.tp;
  w->pp = s.pp;
  const int64_t n = static_cast<int64_t>(devices.size());
  if (n > 0 && !(s.tp == 1 && s.pp == 1) && w->tp * w->pp != n) {
    return InvalidArgument(fmt::format("--tp {} x --pp {} needs {} GPUs, but --gpu gives {}",
                                       w->tp, w->pp, w->tp * w->pp, n));
  }
  return {};
}

// Checks of the resolved layout against the model.
Status CheckLayout(const ModelSpec& spec, const InferenceWorkload& w) {
  if (w.tp > 1 && spec.attn_kind == AttnKind::kStandard && spec.num_attention_heads % w.tp != 0) {
    return InvalidArgument(fmt::format("--tp: {} attention heads do not split over {} GPUs",
                                       spec.num_attention_heads, w.tp));
  }
  if (w.pp > spec.num_hidden_layers) {
    return InvalidArgument(fmt::format("--pp: {} stages for {} layers", w.pp,
                                       spec.num_hidden_layers));
  }
  if (w.quant.method == QuantMethod::kMxfp4 && spec.num_experts == 0) {
    return InvalidArgument("--quant: mxfp4 stores MoE expert weights, and this model has no experts");
  }
  return {};
}

}  // namespace

Result<InferenceWorkload> ResolveInference(const Model& model, const InferenceSettings& s,
                                           const DeviceSet& devices,
                                           std::vector<std::string>* notes) {
  InferenceWorkload w;
  w.runtime = s.runtime;
  w.vllm = s.vllm;
  w.llamacpp = s.llamacpp;
  w.sglang = s.sglang;
  w.hf_version = s.hf_version.value_or(kHfVersionDefault);
  if (w.hf_version < 400 || w.hf_version > 999) {
    return InvalidArgument(fmt::format("--transformers: version {}.{} is not a transformers 4.x release",
                                       w.hf_version / 100, w.hf_version % 100));
  }
  // transformers made sdpa the default attention in 4.36.
  w.attn = s.attn.value_or(w.hf_version < kHfVersionSdpaDefault ? AttnImpl::kEager : AttnImpl::kSdpa);
  VRAMFIT_TRY(ResolveDtypes(model, s, &w, notes));
  if (w.runtime == Runtime::kHf) VRAMFIT_TRY(CheckHfCapabilities(s, devices, &w, notes));
  VRAMFIT_TRY(CheckRange("--batch", s.batch, 1, kMaxBatch));
  w.batch = s.batch;
  VRAMFIT_TRY(ResolveTokens(model, s, &w));
  VRAMFIT_TRY(ResolveParallel(s, devices, &w));
  VRAMFIT_TRY(runtimes::ProfileFor(w.runtime).Resolve(model, s, devices, &w, notes));
  VRAMFIT_TRY(CheckLayout(model.spec, w));
  return w;
}

}  // namespace vramfit
