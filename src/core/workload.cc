#include "vramfit/workload.h"

#include <fmt/format.h>

#include "runtimes/runtimes.h"

namespace vramfit {

const char* RuntimeName(Runtime r) {
  switch (r) {
    case Runtime::kHf: return "hf";
    case Runtime::kVllm: return "vllm";
    case Runtime::kLlamaCpp: return "llamacpp";
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
  return InvalidArgument(
      fmt::format("--runtime: unknown runtime '{}' (expected hf, vllm or llamacpp)", s));
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

Status CheckRange(const char* flag, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) {
    if (lo == 1 && v < 1) {
      return InvalidArgument(fmt::format("{}: must be a positive integer, got {}", flag, v));
    }
    return InvalidArgument(fmt::format("{}: {} is out of range ({}..{})", flag, v, lo, hi));
  }
  return {};
}

}  // namespace

Result<InferenceWorkload> ResolveInference(const Model& model, const InferenceSettings& s,
                                           const DeviceSet& devices,
                                           std::vector<std::string>* notes) {
  const ModelSpec& spec = model.spec;
  InferenceWorkload w;
  w.runtime = s.runtime;
  w.vllm = s.vllm;
  w.llamacpp = s.llamacpp;
  w.hf_version = s.hf_version.value_or(kHfVersionDefault);
  if (w.hf_version < 400 || w.hf_version > 999) {
    return InvalidArgument(fmt::format("--transformers: version {}.{} is not a transformers 4.x release",
                                       w.hf_version / 100, w.hf_version % 100));
  }
  // transformers made sdpa the default attention in 4.36.
  w.attn = s.attn.value_or(w.hf_version < 436 ? AttnImpl::kEager : AttnImpl::kSdpa);

  // Compute dtype: the checkpoint's, except fp32 checkpoints run in bf16
  // only when asked; a model stored in fp32 is loaded in fp32 by default in
  // transformers (torch_dtype="auto" keeps it).
  w.dtype = s.dtype.value_or(spec.torch_dtype);
  if (w.runtime == Runtime::kVllm && !s.dtype && w.dtype == DType::kF32) {
    // vLLM's dtype "auto" downcasts fp32 checkpoints (runtimes/vllm.cc).
    w.dtype = runtimes::VllmAutoDtype(spec, devices);
    if (notes && w.dtype != DType::kF32) {
      notes->push_back(fmt::format("the checkpoint is fp32: vLLM's dtype auto downcasts it to {}",
                                   Name(w.dtype)));
    }
  }
  if (w.dtype != DType::kF32 && w.dtype != DType::kF16 && w.dtype != DType::kBF16) {
    return InvalidArgument(fmt::format("--dtype: '{}' is not a compute dtype (fp32, fp16, bf16)",
                                       Name(w.dtype)));
  }

  w.weights_as_stored = !s.quant.has_value();
  if (s.quant) {
    w.quant = *s.quant;
  } else if (spec.checkpoint_quant) {
    if (auto f = FormatFromCheckpoint(*spec.checkpoint_quant)) {
      w.quant = *f;
      w.quant_from_checkpoint = true;
      if (notes) {
        notes->push_back(fmt::format(
            "weights sized as the checkpoint stores them ({}); --quant none sizes them "
            "dequantized to {}",
            w.quant.Name(), Name(w.dtype)));
      }
    }
  }

  // GGUF file types are what llama.cpp loads, and only llama.cpp.
  if (w.runtime == Runtime::kHf && w.quant.method == QuantMethod::kGguf) {
    return InvalidArgument(
        fmt::format("--quant {}: GGUF file types need --runtime llamacpp", w.quant.Name()));
  }
  if (w.runtime == Runtime::kLlamaCpp && s.quant && w.quant.method != QuantMethod::kNone &&
      w.quant.method != QuantMethod::kGguf) {
    return InvalidArgument(fmt::format(
        "--quant {}: llama.cpp runs GGUF files; give a GGUF file type such as Q4_K_M, Q8_0 or F16",
        w.quant.Name()));
  }

  VRAMFIT_TRY(CheckRange("--batch", s.batch, 1, kMaxBatch));
  w.batch = s.batch;
  if (s.prompt) VRAMFIT_TRY(CheckRange("--prompt", *s.prompt, 1, kMaxTokens));
  if (s.new_tokens) VRAMFIT_TRY(CheckRange("--new", *s.new_tokens, 0, kMaxTokens));
  if (s.ctx) VRAMFIT_TRY(CheckRange("--ctx", *s.ctx, 1, kMaxTokens));

  const int64_t max_pos = spec.max_position_embeddings;
  if (s.prompt || s.new_tokens) {
    if (s.ctx) {
      return InvalidArgument("--ctx: give either --ctx or --prompt/--new, not both");
    }
    w.new_tokens = s.new_tokens.value_or(0);
    w.prompt = s.prompt.value_or(1);
    w.ctx = w.prompt + w.new_tokens;
    if (w.ctx > kMaxTokens) {
      return InvalidArgument(fmt::format("--prompt/--new: {} tokens in all is out of range (1..{})",
                                         w.ctx, kMaxTokens));
    }
    if (w.runtime == Runtime::kVllm && !w.vllm.max_model_len) w.vllm.max_model_len = w.ctx;
  } else if (s.ctx) {
    w.ctx = *s.ctx;
    w.prompt = w.ctx;
    w.new_tokens = 0;
    // vLLM holds --ctx tokens per request when sized by --max-model-len.
    if (w.runtime == Runtime::kVllm && !w.vllm.max_model_len) w.vllm.max_model_len = w.ctx;
    // Only the hf runtime prefills the whole context at once.
    if (notes && w.runtime == Runtime::kHf) {
      notes->push_back("--ctx without --prompt/--new: the whole context is taken as one prefill "
                       "(the worst case for prefill temporaries)");
    }
  } else {
    w.ctx = 4096;
    if (max_pos > 0 && max_pos < w.ctx) w.ctx = max_pos;
    w.prompt = w.ctx;
    if (notes && w.runtime == Runtime::kHf) {
      notes->push_back(fmt::format("context defaults to {} tokens per sequence, prefilled at once",
                                   w.ctx));
    }
  }
  if (max_pos > 0 && w.ctx > max_pos && notes && w.runtime != Runtime::kVllm) {
    notes->push_back(fmt::format(
        "context {} exceeds the model's max_position_embeddings ({}); memory is still estimated",
        w.ctx, max_pos));
  }

  w.kv_dtype = s.kv_dtype.value_or(w.dtype);
  const DTypeInfo& kv = Info(w.kv_dtype);
  if (w.runtime == Runtime::kHf && kv.block_elems != 1) {
    return InvalidArgument(fmt::format(
        "--kv-dtype: {} is a llama.cpp cache type; the hf runtime caches fp16, bf16, fp32 or fp8",
        kv.name));
  }
  if (w.runtime == Runtime::kLlamaCpp && s.kv_dtype) {
    // --kv-dtype sets both llama.cpp cache types unless -ctk/-ctv are given.
    const DType t = *s.kv_dtype;
    if (t != DType::kF32 && t != DType::kF16 && t != DType::kBF16 && t != DType::kQ8_0 &&
        t != DType::kQ4_0 && t != DType::kQ4_1 && t != DType::kIQ4_NL && t != DType::kQ5_0 &&
        t != DType::kQ5_1) {
      return InvalidArgument(fmt::format(
          "--kv-dtype: {} is not a llama.cpp cache type (f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, "
          "q5_0, q5_1)",
          kv.name));
    }
    if (!w.llamacpp.cache_type_k) w.llamacpp.cache_type_k = t;
    if (!w.llamacpp.cache_type_v) w.llamacpp.cache_type_v = t;
  }
  if (w.runtime == Runtime::kLlamaCpp && s.tp > 1) {
    return InvalidArgument(
        "--tp: llama.cpp splits whole layers across GPUs (--split-mode layer); give the GPUs with "
        "--gpu and leave --tp at 1");
  }

  VRAMFIT_TRY(CheckRange("--tp", s.tp, 1, kMaxParallel));
  VRAMFIT_TRY(CheckRange("--pp", s.pp, 1, kMaxParallel));
  w.tp = s.tp;
  w.pp = s.pp;
  if (!devices.empty()) {
    const int64_t n = static_cast<int64_t>(devices.size());
    if (s.tp == 1 && s.pp == 1 && n > 1 && w.runtime == Runtime::kVllm) {
      // vLLM runs on one GPU unless told how to split the model.
      return InvalidArgument(fmt::format(
          "--gpu: {} GPUs given; vLLM uses one unless --tp/--pp say how to split the model "
          "(e.g. --tp {})", n, n));
    } else if (s.tp == 1 && s.pp == 1 && n > 1) {
      // transformers' device_map="auto" places consecutive layers on each GPU.
      w.pp = n;
      if (notes && w.runtime == Runtime::kHf) {
        notes->push_back(fmt::format(
            "{} GPUs without --tp/--pp: layers are split across them as device_map=\"auto\" does",
            n));
      }
    } else if (w.tp * w.pp != n) {
      return InvalidArgument(fmt::format("--tp {} x --pp {} needs {} GPUs, but --gpu gives {}",
                                         w.tp, w.pp, w.tp * w.pp, n));
    }
  }
  if (w.tp > 1 && spec.attn_kind == AttnKind::kStandard &&
      spec.num_attention_heads % w.tp != 0) {
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
  return w;
}

}  // namespace vramfit
