// The settings table (include/vramfit/app/settings.h): names, parsers, help
// lines and where each setting applies; the upstream aliases; and the one
// place that turns settings as given into a checked Job.
#include "vramfit/app/settings.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>

#include <fmt/format.h>

#include "vramfit/catalog.h"
#include "vramfit/check.h"
#include "vramfit/io/accuracy_bands.h"
#include "vramfit/runtime.h"
#include "vramfit/workload.h"

namespace vramfit::app {

int ExitCode(const Error& e) {
  if (e.kind == ErrorKind::kDoesNotFit) return 3;  // as an estimate that does not fit
  return e.kind == ErrorKind::kInvalidArgument || e.kind == ErrorKind::kNotFound ? 2 : 1;
}

Result<int64_t> ParseInt(std::string_view flag, std::string_view value) {
  const std::string v(value);
  const char* s = v.c_str();
  char* end = nullptr;
  errno = 0;
  const long long n = std::strtoll(s, &end, 10);
  if (v.empty() || end == s || *end != '\0' || errno == ERANGE) {
    return InvalidArgument(fmt::format("{}: expected an integer, got '{}'", flag, value));
  }
  return static_cast<int64_t>(n);
}

Result<int64_t> ParseTokens(std::string_view flag, std::string_view value) {
  if (value.size() >= 2) {
    const char unit = static_cast<char>(std::tolower(static_cast<unsigned char>(value.back())));
    const int64_t scale = unit == 'k' ? 1024 : unit == 'm' ? 1024 * 1024 : 0;
    if (scale != 0) {
      auto n = ParseInt(flag, value.substr(0, value.size() - 1));
      // Up to 2^31 tokens before scaling: far above any context, inside int64.
      if (!n.ok() || *n < 0 || *n > (int64_t{1} << 31)) {
        return InvalidArgument(fmt::format(
            "{}: expected a token count such as 8192, 8k or 1m, got '{}'", flag, value));
      }
      return *n * scale;
    }
  }
  return ParseInt(flag, value);
}

Result<bool> ParseSwitch(std::string_view flag, std::string_view value) {
  const std::string v = Lower(value);
  if (v == "true" || v == "1" || v == "on" || v == "yes") return true;
  if (v == "false" || v == "0" || v == "off" || v == "no") return false;
  return InvalidArgument(fmt::format("{}: expected true or false, got '{}'", flag, value));
}

namespace {

// --- Parsers of the table's value kinds.

template <typename T>
Status Store(Result<T> r, T* out) {
  if (!r.ok()) return r.error();
  *out = *r;
  return {};
}
template <typename T>
Status Store(Result<T> r, std::optional<T>* out) {
  if (!r.ok()) return r.error();
  *out = *r;
  return {};
}

Result<DType> ComputeDType(std::string_view v) {
  auto d = ParseDType(v);
  if (!d || (*d != DType::kF32 && *d != DType::kF16 && *d != DType::kBF16)) {
    return InvalidArgument(fmt::format("--dtype: expected fp32, fp16 or bf16, got '{}'", v));
  }
  return *d;
}

// vLLM's MambaDType (config/cache.py, 0.11): "auto" (nullopt) or "float32"
// (fp32 / f32 also read).
Status SetMambaDType(std::string_view flag, std::string_view v, std::optional<DType>* out) {
  if (v == "auto") {
    out->reset();
    return {};
  }
  if (v == "float32" || v == "fp32" || v == "f32") {
    *out = DType::kF32;
    return {};
  }
  return InvalidArgument(fmt::format("{}: vLLM's MambaDType is auto or float32, got '{}'", flag, v));
}

Result<DType> CacheType(std::string_view flag, std::string_view v) {
  auto d = ParseDType(v);
  const bool ok = d && (*d == DType::kF32 || *d == DType::kF16 || *d == DType::kBF16 ||
                        *d == DType::kQ8_0 || *d == DType::kQ4_0 || *d == DType::kQ4_1 ||
                        *d == DType::kIQ4_NL || *d == DType::kQ5_0 || *d == DType::kQ5_1);
  if (!ok) {
    return InvalidArgument(fmt::format(
        "{}: expected f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0 or q5_1, got '{}'", flag, v));
  }
  return *d;
}

Status SetCtx(std::string_view v, Draft& d) {
  if (Lower(v) == "max") {
    d.infer.ctx_from_model = true;
    d.infer.ctx.reset();
    return {};
  }
  d.infer.ctx_from_model = false;
  return Store(ParseTokens("--ctx", v), &d.infer.ctx);
}

Status SetKvDtype(std::string_view v, Draft& d) {
  if (v == "auto") {
    d.infer.kv_dtype.reset();
    return {};
  }
  auto t = ParseDType(v);
  if (!t) {
    return InvalidArgument(fmt::format(
        "--kv-dtype: expected auto, fp16, bf16, fp8, q8_0 or q4_0, got '{}'", v));
  }
  d.infer.kv_dtype = *t;
  return {};
}

// A number in (lo, hi] (hi_open: (lo, hi)), or "<flag>: expected <what>, got '<v>'".
Result<double> ParseBounded(std::string_view flag, std::string_view v, double lo, double hi, bool hi_open,
                            std::string_view what) {
  const std::string s(v);
  char* end = nullptr;
  const double x = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !(x > lo && (hi_open ? x < hi : x <= hi))) {
    return InvalidArgument(fmt::format("{}: expected {}, got '{}'", flag, what, v));
  }
  return x;
}

Status SetGpuMemUtil(std::string_view v, Draft& d) {
  return Store(ParseBounded("--gpu-mem-util", v, 0.0, 1.0, false, "a fraction in (0, 1]"),
               &d.infer.vllm.gpu_memory_utilization);
}

Status SetHostMemBw(std::string_view v, Draft& d) {
  return Store(ParseBounded("--host-mem-bw", v, 0.0, 100000.0, false, "GB/s in (0, 100000]"),
               &d.infer.llamacpp.host_mem_bw);
}

Status SetMemFractionStatic(std::string_view v, Draft& d) {
  return Store(ParseBounded("--mem-fraction-static", v, 0.0, 1.0, true, "a fraction in (0, 1)"),
               &d.infer.sglang.mem_fraction_static);
}

Status SetFlashAttn(std::string_view v, Draft& d) {
  const std::string s = Lower(v);
  if (s == "on" || s == "1" || s == "true") d.infer.llamacpp.flash_attn = true;
  else if (s == "off" || s == "0" || s == "false") d.infer.llamacpp.flash_attn = false;
  else if (s == "auto") d.infer.llamacpp.flash_attn.reset();
  else return InvalidArgument(fmt::format("--flash-attn: expected on, off or auto, got '{}'", v));
  return {};
}

Status SetLlamaCppBuild(std::string_view v, Draft& d) {
  // A release tag as llama.cpp prints it ("b5622" or "5622").
  std::string_view digits = v;
  if (!digits.empty() && (digits[0] == 'b' || digits[0] == 'B')) digits.remove_prefix(1);
  auto b = ParseInt("--llamacpp-build", digits);
  if (!b.ok() || *b < 1000 || *b > 99999) {
    return InvalidArgument(fmt::format(
        "--llamacpp-build: expected a llama.cpp release such as b5622, got '{}'", v));
  }
  d.infer.llamacpp.build = *b;
  return {};
}

// -ts: shares split on ',' or '/' (common/arg.cpp splits on "[,/]+").
Status SetTensorSplit(std::string_view v, Draft& d) {
  std::vector<double> shares;
  std::string cur;
  const auto flush = [&]() -> Status {
    if (cur.empty()) return {};
    char* end = nullptr;
    const double x = std::strtod(cur.c_str(), &end);
    if (*end != '\0' || !(x >= 0.0) || x > 1e12) {
      return InvalidArgument(fmt::format(
          "--tensor-split: expected shares such as 3,1 (one number of 0 or more per GPU), got '{}'", v));
    }
    shares.push_back(x);
    cur.clear();
    return {};
  };
  for (char c : v) {
    if (c == ',' || c == '/') {
      VRAMFIT_TRY(flush());
    } else {
      cur += c;
    }
  }
  VRAMFIT_TRY(flush());
  if (shares.empty()) {
    return InvalidArgument(fmt::format("--tensor-split: expected shares such as 3,1, got '{}'", v));
  }
  d.infer.llamacpp.tensor_split = std::move(shares);
  return {};
}

Status SetSplitMode(std::string_view v, Draft& d) {
  if (v == "none") d.infer.llamacpp.split_mode = LlamaSplitMode::kNone;
  else if (v == "layer") d.infer.llamacpp.split_mode = LlamaSplitMode::kLayer;
  else if (v == "row") d.infer.llamacpp.split_mode = LlamaSplitMode::kRow;
  else return InvalidArgument(fmt::format("--split-mode: expected none, layer or row, got '{}'", v));
  return {};
}

Status SetOptimizerImpl(std::string_view v, Draft& d) {
  if (v != "fused" && v != "foreach" && v != "in-backward") {
    return InvalidArgument(
        fmt::format("--optimizer-impl: expected foreach, fused or in-backward, got '{}'", v));
  }
  d.train.optimizer_fused = v != "foreach";
  d.train.optimizer_in_backward = v == "in-backward";
  return {};
}

Status SetSwitch(std::string_view flag, std::string_view v, bool* out) {
  return Store(ParseSwitch(flag, v), out);
}

Status SetUnits(std::string_view v, Draft& d) {
  if (v != "gib" && v != "GiB" && v != "gb" && v != "GB") {
    return InvalidArgument(fmt::format("--units: expected gib or gb, got '{}'", v));
  }
  d.output.units = Lower(v);
  return {};
}

// A setting's apply function: a captureless lambda.
using Apply = Status (*)(std::string_view, Draft&);

constexpr unsigned kJobs = kCmdInfer | kCmdTrain | kCmdFit;
constexpr unsigned kInferCmds = kCmdInfer | kCmdFit;
constexpr unsigned kTrainCmds = kCmdTrain | kCmdFit;
constexpr unsigned kBoth = kInference | kTraining;

// The table lists each setting's leading fields only; the rest keep their
// defaults (GCC's -Wmissing-field-initializers would flag every such row).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
const Setting kSettings[] = {
    {"gpu", "NAME[xN]", "GPUs from the catalog (RTX-4090, H100-80GBx8, 2x3090; comma lists; repeatable)",
     kJobs, kBoth, [](std::string_view v, Draft& d) -> Status {
       d.gpus.emplace_back(v);
       return {};
     }, /*repeatable=*/true},
    {"runtime", "NAME", "hf (default), vllm, llamacpp or sglang", kInferCmds, kInference,
     [](std::string_view v, Draft& d) { return Store(ParseRuntime(v), &d.infer.runtime); }},
    {"dtype", "TYPE", "compute dtype: fp32, fp16, bf16 (the model's own)", kJobs, kInference,
     [](std::string_view v, Draft& d) { return Store(ComputeDType(v), &d.infer.dtype); }, false, false,
     " (--precision sets the weight and compute dtypes)"},
    {"quant", "FORMAT",
     "weight format: none, int8, nf4, nf4-dq, fp4, fp4-dq, gptq-int4, awq-int4, fp8, fp8-block, mxfp4; "
     "llamacpp: a GGUF file type (Q4_K_M, Q8_0, IQ4_XS, F16...); train: the frozen base of lora/qlora "
     "(qlora: nf4-dq)",
     kJobs, kBoth, [](std::string_view v, Draft& d) -> Status {
       auto q = ParseWeightFormat(v);
       if (!q.ok()) return q.error();
       d.infer.quant = *q;
       d.train.quant = *q;
       return {};
     }},
    {"batch", "N", "concurrent sequences; train: micro-batch per GPU (1)", kJobs, kBoth,
     [](std::string_view v, Draft& d) -> Status {
       auto n = ParseInt("--batch", v);
       if (!n.ok()) return n.error();
       d.infer.batch = d.train.batch = *n;
       return {};
     }, false, true},
    {"ctx", "N", "tokens per sequence held in KV (4096, capped at the model's max; 8k, 128k; max = the model's)",
     kInferCmds, kInference, SetCtx, false, true, " (--seq sets the tokens per sample)"},
    {"prompt", "N", "prefill tokens per sequence (instead of --ctx)", kInferCmds, kInference,
     [](std::string_view v, Draft& d) { return Store(ParseTokens("--prompt", v), &d.infer.prompt); }, false,
     true},
    {"new", "N", "generated tokens per sequence", kInferCmds, kInference,
     [](std::string_view v, Draft& d) { return Store(ParseTokens("--new", v), &d.infer.new_tokens); }, false,
     true},
    {"kv-dtype", "TYPE", "KV cache dtype: auto, fp16, bf16, fp8 (auto = the compute dtype)", kInferCmds,
     kInference, SetKvDtype},
    {"attn", "KERNEL", "attention kernel: eager, sdpa (default; eager before transformers 4.36), flash", kJobs,
     kRuntime | kTraining, [](std::string_view v, Draft& d) -> Status {
       auto a = ParseAttn(v);
       if (!a.ok()) return a.error();
       d.infer.attn = *a;
       d.train.attn = *a;
       return {};
     }},
    {"transformers", "X.Y", "transformers version to model for --runtime hf (4.56)", kInferCmds, kRuntime,
     [](std::string_view v, Draft& d) { return Store(ParseHfVersion(v), &d.infer.hf_version); }},
    {"tp", "N", "tensor-parallel degree (1)", kJobs, kBoth, [](std::string_view v, Draft& d) -> Status {
       auto n = ParseInt("--tp", v);
       if (!n.ok()) return n.error();
       d.infer.tp = d.train.tp = *n;
       return {};
     }, false, true},
    {"pp", "N", "pipeline (layer split) degree (1)", kJobs, kBoth, [](std::string_view v, Draft& d) -> Status {
       auto n = ParseInt("--pp", v);
       if (!n.ok()) return n.error();
       d.infer.pp = d.train.pp = *n;
       return {};
     }, false, true},
    {"wired-limit", "MIB",
     "Apple GPUs: the GPU memory limit set with sudo sysctl iogpu.wired_limit_mb=MIB (Metal's "
     "recommendedMaxWorkingSetSize)",
     kJobs, kBoth, [](std::string_view v, Draft& d) -> Status {
       auto n = ParseInt("--wired-limit", v);
       if (!n.ok()) return n.error();
       if (*n < 1 || *n > (int64_t{1} << 40) / kMiB) {
         return InvalidArgument(fmt::format("--wired-limit: expected MiB in [1, 1048576], got '{}'", v));
       }
       d.wired_limit_mib = *n;
       return {};
     }, false, true},
    {"cuda-context", "MIB",
     "the CUDA context as measured on this stack (nvidia-smi after torch.ones(1).cuda()), in place of "
     "the assumed one (PyTorch 512, llama.cpp 384 with cuBLAS); hf, llamacpp and training jobs",
     kJobs, kBoth, [](std::string_view v, Draft& d) -> Status {
       auto n = ParseInt("--cuda-context", v);
       if (!n.ok()) return n.error();
       if (*n < 1 || *n > 65536) {
         return InvalidArgument(fmt::format("--cuda-context: expected MiB in [1, 65536], got '{}'", v));
       }
       d.cuda_context_mib = *n;
       return {};
     }, false, true},
    // Encoder and encoder-decoder models.
    {"head", "KIND",
     "encoders: task head base, mlm, seq-cls, token-cls, pretraining; T5/BART: seq2seq-lm, base, seq-cls "
     "(the checkpoint's architectures[0])",
     kJobs, kBoth, [](std::string_view v, Draft& d) { return Store(ParseHead(v), &d.head.kind); }},
    {"num-labels", "N", "classes of a seq-cls or token-cls head (the config's num_labels, 2)", kJobs, kBoth,
     [](std::string_view v, Draft& d) { return Store(ParseInt("--num-labels", v), &d.head.num_labels); },
     false, true},
    // vLLM's own knobs, with vLLM's defaults.
    {"gpu-mem-util", "FRAC", "vllm: gpu_memory_utilization (0.9)", kInferCmds, kRuntime, SetGpuMemUtil},
    {"max-model-len", "N", "vllm: max_model_len (--ctx, else the model's max)", kInferCmds, kRuntime,
     [](std::string_view v, Draft& d) {
       return Store(ParseTokens("--max-model-len", v), &d.infer.vllm.max_model_len);
     }, false, true},
    {"max-num-seqs", "N", "vllm: max_num_seqs (256; 1024 on >= 70 GiB GPUs but A100)", kInferCmds, kRuntime,
     [](std::string_view v, Draft& d) {
       return Store(ParseInt("--max-num-seqs", v), &d.infer.vllm.max_num_seqs);
     }, false, true},
    {"max-num-batched-tokens", "N", "vllm: max_num_batched_tokens (2048; 8192 on >= 70 GiB GPUs but A100)",
     kInferCmds, kRuntime, [](std::string_view v, Draft& d) {
       return Store(ParseTokens("--max-num-batched-tokens", v), &d.infer.vllm.max_num_batched_tokens);
     }, false, true},
    {"block-size", "N", "vllm: KV block size in tokens (16)", kInferCmds, kRuntime,
     [](std::string_view v, Draft& d) {
       return Store(ParseInt("--block-size", v), &d.infer.vllm.block_size);
     }, false, true},
    {"mamba-cache-dtype", "TYPE", "vllm: conv-state dtype of recurrent layers, auto or float32 (auto = the model dtype)",
     kInferCmds, kRuntime,
     [](std::string_view v, Draft& d) {
       return SetMambaDType("--mamba-cache-dtype", v, &d.infer.vllm.mamba_cache_dtype);
     }},
    {"mamba-ssm-cache-dtype", "TYPE", "vllm: SSM-state dtype of recurrent layers, auto or float32 (auto = the conv dtype)",
     kInferCmds, kRuntime,
     [](std::string_view v, Draft& d) {
       return SetMambaDType("--mamba-ssm-cache-dtype", v, &d.infer.vllm.mamba_ssm_cache_dtype);
     }},
    {"kv-cache-memory", "BYTES",
     "vllm: the KV pool per GPU worker in bytes, in place of the gpu-memory-utilization budget "
     "(--kv-cache-memory-bytes; vLLM still profiles, and the pool no longer follows the budget)",
     kInferCmds, kRuntime, [](std::string_view v, Draft& d) -> Status {
       auto n = ParseInt("--kv-cache-memory", v);
       if (!n.ok()) return n.error();
       if (*n < 1) return InvalidArgument(fmt::format("--kv-cache-memory: expected bytes above 0, got '{}'", v));
       d.infer.vllm.kv_cache_memory = *n;
       return {};
     }, false, true},
    {"enforce-eager", "", "vllm: no CUDA graphs", kInferCmds, kRuntime,
     [](std::string_view v, Draft& d) { return SetSwitch("--enforce-eager", v, &d.infer.vllm.enforce_eager); }},
    // SGLang's own server arguments, with SGLang's defaults.
    {"mem-fraction-static", "FRAC", "sglang: mem_fraction_static (by GPU memory: total minus a reserve)",
     kInferCmds, kRuntime, SetMemFractionStatic},
    {"context-length", "N", "sglang: context_length (--ctx, else the model's max)", kInferCmds, kRuntime,
     [](std::string_view v, Draft& d) {
       return Store(ParseTokens("--context-length", v), &d.infer.sglang.context_length);
     }, false, true},
    {"chunked-prefill-size", "N", "sglang: chunked_prefill_size (2048 below 35 GB, 4096, 8192, 16384 above 160 GB)",
     kInferCmds, kRuntime, [](std::string_view v, Draft& d) {
       return Store(ParseTokens("--chunked-prefill-size", v), &d.infer.sglang.chunked_prefill_size);
     }, false, true},
    {"max-running-requests", "N", "sglang: max_running_requests (from the pool: 2048..4096)", kInferCmds,
     kRuntime, [](std::string_view v, Draft& d) {
       return Store(ParseInt("--max-running-requests", v), &d.infer.sglang.max_running_requests);
     }, false, true},
    {"cuda-graph-max-bs", "N", "sglang: cuda_graph_max_bs (8..512 by GPU memory and tp)", kInferCmds, kRuntime,
     [](std::string_view v, Draft& d) {
       return Store(ParseInt("--cuda-graph-max-bs", v), &d.infer.sglang.cuda_graph_max_bs);
     }, false, true},
    {"disable-cuda-graph", "", "sglang: no CUDA graphs", kInferCmds, kRuntime,
     [](std::string_view v, Draft& d) {
       return SetSwitch("--disable-cuda-graph", v, &d.infer.sglang.disable_cuda_graph);
     }},
    {"page-size", "N", "sglang: tokens per KV page (1)", kInferCmds, kRuntime,
     [](std::string_view v, Draft& d) { return Store(ParseInt("--page-size", v), &d.infer.sglang.page_size); },
     false, true},
    // llama.cpp's own knobs (-ub, -b, -fa, -ctk, -ctv, -ngl, -np).
    {"ubatch", "N", "llamacpp: -ub physical batch (512)", kInferCmds, kRuntime,
     [](std::string_view v, Draft& d) { return Store(ParseTokens("--ubatch", v), &d.infer.llamacpp.ubatch); },
     false, true},
    {"batch-size", "N", "llamacpp: -b logical batch (2048)", kInferCmds, kRuntime,
     [](std::string_view v, Draft& d) {
       return Store(ParseTokens("--batch-size", v), &d.infer.llamacpp.batch_size);
     }, false, true},
    {"flash-attn", "on|off|auto", "llamacpp: -fa (auto)", kInferCmds, kRuntime, SetFlashAttn},
    {"cache-type-k", "TYPE", "llamacpp: -ctk (f16)", kInferCmds, kRuntime,
     [](std::string_view v, Draft& d) {
       return Store(CacheType("--cache-type-k", v), &d.infer.llamacpp.cache_type_k);
     }},
    {"cache-type-v", "TYPE", "llamacpp: -ctv (f16)", kInferCmds, kRuntime,
     [](std::string_view v, Draft& d) {
       return Store(CacheType("--cache-type-v", v), &d.infer.llamacpp.cache_type_v);
     }},
    {"gpu-layers", "N", "llamacpp: -ngl layers on the GPUs (all)", kInferCmds, kRuntime,
     [](std::string_view v, Draft& d) {
       return Store(ParseInt("--gpu-layers", v), &d.infer.llamacpp.gpu_layers);
     }, false, true},
    {"host-mem-bw", "GBPS", "llamacpp: host memory bandwidth in GB/s, for the decode speed of layers left on the "
     "CPU (dual-channel DDR5-5600: 89.6; unset: no decode speed when layers stay on the host)", kInferCmds, kRuntime,
     SetHostMemBw},
    {"parallel", "N", "llamacpp: -np sequences (--batch, 1)", kInferCmds, kRuntime,
     [](std::string_view v, Draft& d) { return Store(ParseInt("--parallel", v), &d.infer.llamacpp.parallel); },
     false, true},
    {"llamacpp-build", "bNNNN", "llamacpp: release to model (b8000)", kInferCmds, kRuntime, SetLlamaCppBuild},
    // llama.cpp's placement (-ncmoe, -cmoe, -ot, -ts, -sm, -mg).
    {"n-cpu-moe", "N", "llamacpp: keep the expert tensors of the first N layers in host memory (MoE models; 0)",
     kInferCmds, kRuntime,
     [](std::string_view v, Draft& d) { return Store(ParseInt("--n-cpu-moe", v), &d.infer.llamacpp.n_cpu_moe); },
     false, true},
    {"cpu-moe", "", "llamacpp: keep every expert tensor in host memory (MoE models)", kInferCmds, kRuntime,
     [](std::string_view v, Draft& d) { return SetSwitch("--cpu-moe", v, &d.infer.llamacpp.cpu_moe); }},
    {"override-tensor", "REGEX=BUF", "llamacpp: -ot, tensors whose GGUF name matches REGEX go to buffer type "
     "CPU or CUDA0, CUDA1... (repeatable; comma lists)", kInferCmds, kRuntime,
     [](std::string_view v, Draft& d) -> Status {
       d.infer.llamacpp.override_tensor.emplace_back(v);
       return {};
     }, /*repeatable=*/true},
    {"tensor-split", "A,B,...", "llamacpp: -ts shares of the offloaded layers per GPU (by each GPU's memory)",
     kInferCmds, kRuntime, SetTensorSplit},
    {"split-mode", "MODE", "llamacpp: -sm layer (default) or none (one GPU: --main-gpu); row is not modelled",
     kInferCmds, kRuntime, SetSplitMode},
    {"main-gpu", "INDEX", "llamacpp: -mg the GPU of --split-mode none (0; -1: none)", kInferCmds, kRuntime,
     [](std::string_view v, Draft& d) { return Store(ParseInt("--main-gpu", v), &d.infer.llamacpp.main_gpu); },
     false, true},
    // Training.
    {"stack", "NAME", "training stack: hf-trainer (default), axolotl, unsloth, torchtune, torchtitan, litgpt",
     kTrainCmds, kTraining, [](std::string_view v, Draft& d) { return Store(ParseStack(v), &d.train.stack); }},
    {"method", "NAME", "full (default), lora, qlora, freeze", kTrainCmds, kTraining,
     [](std::string_view v, Draft& d) { return Store(ParseMethod(v), &d.train.method); }},
    {"precision", "MODE", "bf16-mixed, fp16-mixed, bf16, fp16, fp32 (the stack's default)", kTrainCmds, kTraining,
     [](std::string_view v, Draft& d) { return Store(ParsePrecision(v), &d.train.precision); }},
    {"optimizer", "NAME", "adamw, adamw-8bit, paged-adamw, paged-adamw-8bit, adafactor, sgd, sgd-momentum, lion (the stack's default)",
     kTrainCmds, kTraining,
     [](std::string_view v, Draft& d) { return Store(ParseOptimizer(v), &d.train.optimizer); }},
    {"optimizer-impl", "IMPL", "foreach, fused, in-backward (torchtune optimizer_in_bwd); the stack's default",
     kTrainCmds, kTraining, SetOptimizerImpl},
    {"seq", "N", "tokens per sample (2048; 8k, 32k)", kTrainCmds, kTraining,
     [](std::string_view v, Draft& d) { return Store(ParseTokens("--seq", v), &d.train.seq); }, false, true},
    {"target-seq", "N", "encoder-decoder models (T5, BART): decoder (target) tokens per sample (--seq)",
     kTrainCmds, kTraining,
     [](std::string_view v, Draft& d) { return Store(ParseTokens("--target-seq", v), &d.train.target_seq); }, false,
     true},
    {"grad-accum", "N", "gradient accumulation steps (1)", kTrainCmds, kTraining,
     [](std::string_view v, Draft& d) { return Store(ParseInt("--grad-accum", v), &d.train.grad_accum); },
     false, true},
    {"grad-ckpt", "MODE", "gradient checkpointing: none, full, selective (the stack's default)", kTrainCmds, kTraining,
     [](std::string_view v, Draft& d) { return Store(ParseGradCkpt(v), &d.train.grad_ckpt); }},
    {"loss", "IMPL", "cross-entropy: hf, chunked, fused (the stack's default)", kTrainCmds, kTraining,
     [](std::string_view v, Draft& d) { return Store(ParseLoss(v), &d.train.loss); }},
    {"lora-rank", "N", "LoRA rank (the stack's default: 16, or 8 for torchtune and litgpt)", kTrainCmds, kAdapters,
     [](std::string_view v, Draft& d) { return Store(ParseInt("--lora-rank", v), &d.train.lora_rank); }, false,
     true},
    {"lora-targets", "LIST", "all-linear, attn, mlp, or q,k,v,o,gate,up,down (the stack's default)", kTrainCmds, kAdapters,
     [](std::string_view v, Draft& d) -> Status {
       d.train.lora_targets = std::string(v);
       return {};
     }},
    {"trainable-layers", "N", "freeze: train the last N layers (a quarter)", kTrainCmds, kFreeze,
     [](std::string_view v, Draft& d) {
       return Store(ParseInt("--trainable-layers", v), &d.train.trainable_layers);
     }, false, true},
    {"zero", "STAGE", "DeepSpeed ZeRO stage 0-3 (0)", kTrainCmds, kTraining,
     [](std::string_view v, Draft& d) { return Store(ParseInt("--zero", v), &d.train.zero); }, false, true},
    {"fsdp", "", "FSDP full sharding", kTrainCmds, kTraining,
     [](std::string_view v, Draft& d) { return SetSwitch("--fsdp", v, &d.train.fsdp); }},
    {"gpus", "N", "data-parallel GPUs (1, or as many as --gpu gives)", kTrainCmds, kTraining,
     [](std::string_view v, Draft& d) { return Store(ParseInt("--gpus", v), &d.train.gpus); }, false, true},
    {"offload", "WHAT", "none (default), optimizer, params", kTrainCmds, kTraining,
     [](std::string_view v, Draft& d) { return Store(ParseOffload(v), &d.train.offload); }},
    {"offload-activations", "", "saved activations / checkpoints in host memory (torchtune, unsloth)",
     kTrainCmds, kTraining, [](std::string_view v, Draft& d) -> Status {
       bool on = false;
       VRAMFIT_TRY(SetSwitch("--offload-activations", v, &on));
       d.train.offload_activations = on;
       return {};
     }},
    {"bnb-version", "X.Y.Z",
     "bitsandbytes release under a 4-bit base (hf-trainer, axolotl, litgpt); before 0.43.2 every 4-bit "
     "linear keeps its input for backward (a current release)",
     kTrainCmds, kTraining,
     [](std::string_view v, Draft& d) { return Store(ParseBnbVersion(v), &d.train.bnb_version); }},
    {"compile", "", "torch.compile as torchtune (compile: True) and torchtitan (--compile.enable) apply it (off)",
     kTrainCmds, kTraining, [](std::string_view v, Draft& d) -> Status {
       bool on = false;
       VRAMFIT_TRY(SetSwitch("--compile", v, &on));
       d.train.compile = on;
       return {};
     }},
    // The planner.
    {"solve", "QUESTION", "max-batch, max-context, min-gpus, best-quant, best-method", kCmdFit, kPlanner,
     [](std::string_view v, Draft& d) -> Status {
       d.fit.solve = std::string(v);
       return {};
     }},
    {"gpus-per-node", "N",
     "GPUs one machine holds, for min-gpus layouts (8; consumer cards: the count given when more than one)",
     kCmdFit, kPlanner, [](std::string_view v, Draft& d) -> Status {
       auto n = ParseInt("--gpus-per-node", v);
       if (!n.ok()) return n.error();
       if (*n < 1 || *n > kMaxParallel) {
         return InvalidArgument(fmt::format("--gpus-per-node: expected 1 to {}, got {}", kMaxParallel, *n));
       }
       d.gpus_per_node = *n;
       return {};
     }, false, true},
    {"safety", "LEVEL",
     "p50: answer at the estimate itself; p90: at the high edge of its measured error band "
     "(docs/estimation.md section 15) (p50)",
     kCmdFit, kPlanner, [](std::string_view v, Draft& d) -> Status {
       if (v != "p50" && v != "p90") {
         return InvalidArgument(fmt::format("--safety: expected p50 or p90, got '{}'", v));
       }
       d.safety_p90 = v == "p90";
       return {};
     }},
    {"sweep", "KEY=V1,V2", "a grid of estimates over a setting (repeatable)", kCmdFit, kPlanner,
     [](std::string_view v, Draft& d) -> Status {
       d.fit.sweep.emplace_back(v);
       return {};
     }, true},
    // Output.
    {"print-flags", "", "print the runtime's launch command for this estimate (--json: argv arrays)",
     kCmdInfer, kOutput,
     [](std::string_view v, Draft& d) { return SetSwitch("--print-flags", v, &d.output.print_flags); }},
    {"csv", "", "fit --sweep: the grid as CSV", kCmdFit, kOutput,
     [](std::string_view v, Draft& d) { return SetSwitch("--csv", v, &d.output.csv); }},
    {"json", "", "print JSON (schema vramfit.*/1)", kJobs, kOutput,
     [](std::string_view v, Draft& d) { return SetSwitch("--json", v, &d.output.json); }},
    {"units", "UNIT", "gib (default) or gb", kJobs, kOutput, SetUnits},
    {"no-calibration", "", "ignore this machine's calibration (vramfit check --save; docs/check.md 6)", kJobs,
     kOutput,
     [](std::string_view v, Draft& d) { return SetSwitch("--no-calibration", v, &d.output.no_calibration); }},
};
#pragma GCC diagnostic pop

std::string CommandsText(unsigned commands) {
  std::vector<std::string> names;
  if (commands & kCmdInfer) names.push_back("infer");
  if (commands & kCmdTrain) names.push_back("train");
  if (commands & kCmdFit) names.push_back("fit");
  return fmt::format("{}", fmt::join(names, " and "));
}

// --- Aliases: what vLLM, llama.cpp and HF Trainer / TRL users type.

using Mapped = Result<std::vector<std::pair<std::string, std::string>>>;

Mapped CtxSize(std::string_view v) {
  // llama.cpp: -c 0 = the model's trained context (n_ctx_train).
  return std::vector<std::pair<std::string, std::string>>{{"ctx", v == "0" ? "max" : std::string(v)}};
}

Mapped VllmQuantization(std::string_view v) {
  // vLLM --quantization methods (vllm/model_executor/layers/quantization)
  // and the vramfit format that sizes their weights.
  static constexpr std::pair<std::string_view, std::string_view> kMethods[] = {
      {"fp8", "fp8"},          {"awq", "awq-int4"},      {"awq_marlin", "awq-int4"},
      {"gptq", "gptq-int4"},   {"gptq_marlin", "gptq-int4"}, {"bitsandbytes", "nf4"},
      {"mxfp4", "mxfp4"},      {"none", "none"}};
  for (const auto& [method, format] : kMethods) {
    if (Lower(v) == method) return std::vector<std::pair<std::string, std::string>>{{"quant", std::string(format)}};
  }
  return InvalidArgument(fmt::format(
      "--quantization: vLLM method '{}' has no vramfit format (expected fp8, awq, awq_marlin, gptq, "
      "gptq_marlin, bitsandbytes or mxfp4; or give --quant)",
      v));
}

Mapped HfOptim(std::string_view v) {
  // transformers TrainingArguments.optim (training_args.py OptimizerNames).
  using P = std::vector<std::pair<std::string, std::string>>;
  if (v == "adamw_torch") return P{{"optimizer", "adamw"}, {"optimizer-impl", "foreach"}};
  if (v == "adamw_torch_fused") return P{{"optimizer", "adamw"}, {"optimizer-impl", "fused"}};
  if (v == "adamw_8bit" || v == "adamw_bnb_8bit") return P{{"optimizer", "adamw-8bit"}};
  if (v == "paged_adamw_8bit") return P{{"optimizer", "paged-adamw-8bit"}};
  if (v == "adafactor") return P{{"optimizer", "adafactor"}};
  if (v == "sgd") return P{{"optimizer", "sgd"}};
  return InvalidArgument(fmt::format(
      "--optim: '{}' is not modelled (expected adamw_torch, adamw_torch_fused, adamw_8bit, "
      "paged_adamw_8bit, adafactor or sgd)",
      v));
}

Mapped GradientCheckpointing(std::string_view v) {
  auto on = ParseSwitch("--gradient-checkpointing", v);
  if (!on.ok()) return on.error();
  return std::vector<std::pair<std::string, std::string>>{{"grad-ckpt", *on ? "full" : "none"}};
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
const Alias kAliases[] = {
    // vLLM (vllm/engine/arg_utils.py).
    {"--gpu-memory-utilization", "gpu-mem-util"},
    {"--tensor-parallel-size", "tp"},
    {"-tp", "tp"},
    {"--pipeline-parallel-size", "pp"},
    {"-pp", "pp"},
    {"--kv-cache-dtype", "kv-dtype"},
    {"--kv-cache-memory-bytes", "kv-cache-memory"},
    {"--quantization", "quant", VllmQuantization},
    {"-q", "quant", VllmQuantization},
    // SGLang (python/sglang/srt/server_args.py).
    {"--tp-size", "tp"},
    {"--pp-size", "pp"},
    // llama.cpp (common/arg.cpp).
    {"-ngl", "gpu-layers"},
    {"--n-gpu-layers", "gpu-layers"},
    {"-c", "ctx", CtxSize},
    {"--ctx-size", "ctx", CtxSize},
    {"-b", "batch-size"},
    {"-ub", "ubatch"},
    {"--ubatch-size", "ubatch"},
    {"-fa", "flash-attn"},
    {"-ctk", "cache-type-k"},
    {"-ctv", "cache-type-v"},
    {"-np", "parallel"},
    {"-ncmoe", "n-cpu-moe"},
    {"-cmoe", "cpu-moe", nullptr, /*is_switch=*/true},
    {"-ot", "override-tensor"},
    {"-ts", "tensor-split"},
    {"-sm", "split-mode"},
    {"-mg", "main-gpu"},
    // HF Trainer / TRL / PEFT (training_args.py, trl SFTConfig, trl ModelConfig).
    {"--per-device-train-batch-size", "batch", nullptr, false, kTrainCmds},
    {"--gradient-accumulation-steps", "grad-accum"},
    {"--gradient-checkpointing", "grad-ckpt", GradientCheckpointing, /*is_switch=*/true},
    {"--max-seq-length", "seq"},
    {"--lora-r", "lora-rank"},
    {"--optim", "optimizer", HfOptim},
};
#pragma GCC diagnostic pop

// "--per_device_train_batch_size" -> "per-device-train-batch-size".
std::string Bare(std::string_view name) {
  while (!name.empty() && name.front() == '-') name.remove_prefix(1);
  std::string out(name);
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

const Alias* FindAlias(std::string_view name) {
  const std::string bare = Bare(name);
  for (const Alias& a : kAliases) {
    if (Bare(a.spelling) == bare) return &a;
  }
  return nullptr;
}



std::string Suggest(std::string_view word, unsigned commands) {
  std::string best;
  size_t bd = 3;
  for (const Setting& s : kSettings) {
    if (!(s.commands & commands)) continue;
    const size_t d = EditDistance(word, s.name);
    if (d < bd) {
      bd = d;
      best = std::string(s.name);
    }
  }
  return best;
}

}  // namespace

std::span<const Setting> Settings() { return kSettings; }
std::span<const Alias> Aliases() { return kAliases; }

const Setting* FindSetting(std::string_view name) {
  const std::string bare = Bare(name);
  for (const Setting& s : kSettings) {
    if (s.name == bare) return &s;
  }
  return nullptr;
}

void Request::AddGiven(const Setting* s, std::string value, std::string spelled) {
  given_.push_back({s, std::move(value), std::move(spelled)});
}

Status Request::Add(std::string_view name, std::string value, unsigned commands) {
  if (const Setting* s = FindSetting(name)) {
    AddGiven(s, std::move(value), "--" + std::string(s->name));
    return {};
  }
  if (const Alias* a = FindAlias(name)) {
    if (a->commands != 0 && !(a->commands & commands)) {
      return InvalidArgument(fmt::format("{}: applies to {}, not {}", a->spelling, CommandsText(a->commands),
                                         CommandsText(commands)));
    }
    std::vector<std::pair<std::string, std::string>> mapped = {{std::string(a->setting), value}};
    if (a->map) {
      auto m = a->map(value);
      if (!m.ok()) return m.error();
      mapped = std::move(m.value());
    }
    for (auto& [setting, v] : mapped) AddGiven(FindSetting(setting), std::move(v), std::string(a->spelling));
    return {};
  }
  const std::string bare = Bare(name);
  const std::string s = Suggest(bare, commands);
  return InvalidArgument(fmt::format("unknown setting '{}'{}", name, s.empty() ? "" : " (did you mean " + s + "?)"));
}

void Request::Clear(std::string_view name) {
  std::erase_if(given_, [&](const Given& g) { return g.setting->name == name; });
}

bool Request::Has(std::string_view name) const {
  return std::any_of(given_.begin(), given_.end(), [&](const Given& g) { return g.setting->name == name; });
}

namespace {

// The alias a command-line flag spells: "-ngl" exactly; "--n_gpu_layers" with
// '_' as '-'. Canonical names are not aliases.
const Alias* AliasOnCommandLine(const std::string& name) {
  if (name.rfind("--", 0) != 0) {
    for (const Alias& a : kAliases) {
      if (a.spelling == name) return &a;
    }
    return nullptr;
  }
  if (FindSetting(name)) return nullptr;
  const std::string bare = Bare(name);
  for (const Alias& a : kAliases) {
    if (a.spelling.rfind("--", 0) == 0 && Bare(a.spelling) == bare) return &a;
  }
  return nullptr;
}

}  // namespace

Result<std::vector<std::string>> ExpandAliases(const std::vector<std::string>& args, unsigned commands) {
  std::vector<std::string> out;
  out.reserve(args.size());
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(0, eq);
    const Alias* a = arg.size() >= 2 && arg[0] == '-' ? AliasOnCommandLine(name) : nullptr;
    if (a == nullptr) {
      // A long flag: '_' in its name counts as '-' (vLLM and HF spell both).
      if (name.rfind("--", 0) == 0 && name.size() > 2) {
        out.push_back("--" + Bare(name) + (eq == std::string::npos ? "" : arg.substr(eq)));
      } else {
        out.push_back(arg);
      }
      continue;
    }
    if (a->commands != 0 && !(a->commands & commands)) {
      return InvalidArgument(fmt::format("{}: applies to {}, not {}", name, CommandsText(a->commands),
                                         CommandsText(commands)));
    }
    std::string value;
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
    } else if (a->is_switch) {
      // An optional boolean after the switch, as HfArgumentParser takes it.
      value = "true";
      if (i + 1 < args.size() && ParseSwitch("", args[i + 1]).ok()) value = args[++i];
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return InvalidArgument(fmt::format("{}: expects a value", name));
    }
    std::vector<std::pair<std::string, std::string>> mapped = {{std::string(a->setting), value}};
    if (a->map) {
      auto m = a->map(value);
      if (!m.ok()) return m.error();
      mapped = std::move(m.value());
    }
    for (auto& [setting, v] : mapped) {
      if (FindSetting(setting)->is_switch()) {
        out.push_back("--" + setting + "=" + v);
      } else {
        out.push_back("--" + setting);
        out.push_back(v);
      }
    }
  }
  return out;
}

std::string StackHelp() {
  std::string out = "Training stacks (--stack; the stack fills every setting left unset):";
  for (Stack st : AllStacks()) {
    std::string honours;
    for (const Setting& s : Settings()) {
      if (StackTakes(st, s.name)) honours += (honours.empty() ? "" : ", ") + ("--" + std::string(s.name));
    }
    out += fmt::format("\n  {:<11} {}", StackName(st), StackSummary(st));
    if (!honours.empty()) out += fmt::format("\n  {:<11} also takes {}", "", honours);
  }
  return out;
}

bool ShownFor(const Setting& s, Command cmd) {
  if (!(s.commands & cmd)) return false;
  if (cmd == kCmdInfer) return (s.scope & (kInference | kRuntime | kOutput)) != 0;
  if (cmd == kCmdTrain) return (s.scope & (kTraining | kAdapters | kFreeze | kOutput)) != 0;
  return true;
}

bool HasTrainingSettings(const Request& r) {
  for (const Given& g : r.given()) {
    const unsigned sc = g.setting->scope;
    if ((sc & (kTraining | kAdapters | kFreeze)) && !(sc & (kInference | kRuntime))) return true;
  }
  return false;
}

namespace {


const char* CommandName(Command c) {
  return c == kCmdInfer ? "infer" : c == kCmdTrain ? "train" : "fit";
}

// Where one setting applies, against the job: the first rule it breaks.
Status CheckApplies(const Given& g, Command cmd, bool training, const Draft& d) {
  const Setting& s = *g.setting;
  const std::string flag = "--" + std::string(s.name);
  const auto wrong_command = [&] {
    return InvalidArgument(fmt::format("{}: applies to {}, not {}", flag, CommandsText(s.commands), CommandName(cmd)));
  };
  if (s.scope & (kOutput | kPlanner)) {
    if (!(s.commands & cmd)) return wrong_command();
    return {};
  }
  if (training) {
    if (!(s.scope & (kTraining | kAdapters | kFreeze))) {
      return InvalidArgument(fmt::format("{}: applies to inference, not training{}", flag, s.hint));
    }
    const TrainMethod m = d.train.method;
    if ((s.scope & kAdapters) && m != TrainMethod::kLora && m != TrainMethod::kQlora) {
      return InvalidArgument(fmt::format("{}: applies to --method lora or qlora, not {}", flag, MethodName(m)));
    }
    if ((s.scope & kFreeze) && m != TrainMethod::kFreeze) {
      return InvalidArgument(fmt::format("{}: applies to --method freeze, not {}", flag, MethodName(m)));
    }
  } else {
    if (!(s.scope & (kInference | kRuntime))) {
      return InvalidArgument(fmt::format("{}: applies to training (vramfit train), not inference", flag));
    }
    if (!(s.scope & kInference) && !RuntimeTakes(d.infer.runtime, s.name)) {
      std::vector<std::string> takers;
      for (Runtime r : AllRuntimes()) {
        if (RuntimeTakes(r, s.name)) takers.push_back(RuntimeName(r));
      }
      return InvalidArgument(fmt::format("{}: applies to --runtime {}, not {}", flag, fmt::join(takers, " or "),
                                         RuntimeName(d.infer.runtime)));
    }
  }
  if (!(s.commands & cmd)) return wrong_command();
  return {};
}

}  // namespace

Result<JobRequest> BuildJob(const Request& r, Command cmd, bool training) {
  Draft d;
  // Values in table order (so the first error is the same whatever the
  // order on the command line), each setting's values in the order given.
  for (const Setting& s : kSettings) {
    for (const Given& g : r.given()) {
      if (g.setting != &s) continue;
      Status st = s.apply(g.value, d);
      if (!st.ok()) return st.error();
    }
  }
  training = training || cmd == kCmdTrain || (cmd == kCmdFit && HasTrainingSettings(r));
  for (const Setting& s : kSettings) {
    for (const Given& g : r.given()) {
      if (g.setting != &s) continue;
      Status st = CheckApplies(g, cmd, training, d);
      if (!st.ok()) return st.error();
      break;
    }
  }
  if (d.output.csv && d.fit.sweep.empty()) {
    return InvalidArgument("--csv: applies to fit --sweep (the grid is the only table printed as CSV)");
  }
  JobRequest out;
  out.job.training = training;
  out.job.infer = std::move(d.infer);
  out.job.train = std::move(d.train);
  out.job.head = d.head;
  out.job.gpus_per_node = d.gpus_per_node;
  if (d.safety_p90) out.job.safety = &io::BuiltinAccuracyBands();
  out.gpus = std::move(d.gpus);
  out.wired_limit_mib = d.wired_limit_mib;
  out.cuda_context_mib = d.cuda_context_mib;
  out.output = std::move(d.output);
  out.fit = std::move(d.fit);
  return out;
}

}  // namespace vramfit::app
