// The `vllm` runtime: vLLM's V1 engine start-up memory profile, as `vllm
// serve` runs it, modelled on vLLM 0.11 (Oct 2025; the rules below held
// from 0.10 until the Triton top-k/top-p sampler, PR #33538, early 2026).
//
// Every term, its units and its vLLM source are in docs/estimation.md,
// section "vllm runtime", and docs/research/vllm.md. Per GPU worker:
//   requested  = total x gpu_memory_utilization       (gpu_worker.init_device)
//   available  = requested - weights - non_torch - activation peak
//                                     (determine_available_memory, memory_profiling)
//   num_blocks = available // page // group_size, the minimum over workers
//                                     (kv_cache_utils.get_kv_cache_configs)
//   kv_cache   = num_blocks x page x group_size        (the tensors allocated)
// Models with recurrent layers (Mamba, Mamba-2, Gated DeltaNet, short conv)
// add MambaSpec state pages: the attention block size is raised until one
// attention page holds a state page and the state pages are padded to it
// (HybridAttentionMambaModelConfig), so every group shares one page size
// (docs/estimation.md 9.5).
// CUDA graphs are captured after the KV cache exists (compile_or_warm_up_model),
// in the 1 - util headroom, so they do not shrink the pool. What nvidia-smi
// shows is the CUDA context + weights + kv_cache + the re-reserved sampler
// warm-up peak + non-torch memory + the graph pool ~= context + util x total
// + graphs.
//
// The profile resolves every vLLM knob first (VllmRuntime::Resolve: the
// settings vLLM refuses before touching memory, and its defaults), then
// EstimateVllm runs the steps of vllm_steps.h: the shared engine layout,
// one worker per GPU, vLLM's start-up checks, the pool, the breakdowns, and
// the echo, launch flags and notes.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "../formula.h"
#include "vramfit/check.h"
#include "profile.h"
#include "runtimes.h"
#include "vllm_steps.h"

namespace vramfit::runtimes {
namespace vllm {
namespace {

// The release whose behaviour is modelled (echoed as "vllm").
constexpr const char* kVllmVersion = "0.11";

// CacheConfig.gpu_memory_utilization default (vllm/config/cache.py).
constexpr double kDefaultUtil = 0.9;
// ModelConfig._get_and_verify_max_len: the length of a config without
// max_position_embeddings (or any other length key).
constexpr int64_t kFallbackMaxLen = 2048;
// CacheConfig.block_size on CUDA (platforms/cuda.py check_and_update_config);
// MLA backends force their own: FlashMLA 64 on sm90, CUTLASS MLA 128 on sm100.
constexpr int64_t kDefaultBlockSize = 16;
constexpr int64_t kFlashMlaBlockSize = 64;
constexpr int64_t kCutlassMlaBlockSize = 128;
// `--block-size` choices (vllm/config/cache.py BlockSize).
constexpr int64_t kBlockSizes[] = {1, 8, 16, 32, 64, 128};

// EngineArgs.get_batch_defaults: GPUs with >= 70 GiB whose name does not
// contain "a100" get the large `vllm serve` defaults.
constexpr int64_t kBigGpuBytes = 70 * kGiB;
constexpr int64_t kServeTokensBig = 8192, kServeSeqsBig = 1024;
constexpr int64_t kServeTokens = 2048, kServeSeqs = 256;
// The LLM class's defaults (named in the note on the serve defaults).
constexpr int64_t kLlmTokensBig = 16384, kLlmSeqsBig = 1024;
constexpr int64_t kLlmTokens = 8192, kLlmSeqs = 256;

// Non-torch memory measured by memory_profiling after the init snapshot:
// kernel images and library handles loaded by the profile run, 0.13-0.14 GiB
// on every TP1 model of the vLLM 0.11 H100 logs (docs/research/vllm.md).
constexpr int64_t kNonTorchMiB = 133;
// With tp x pp > 1: NCCL buffers (torch's and vLLM's PyNccl communicators)
// and the custom all-reduce IPC buffers. On NVLink (SXM) GPUs TP2 on H100
// logs 0.54-0.55 GiB of non-torch memory in all, i.e. 420 MiB on top of the
// TP1 figure. Over PCIe (custom all-reduce off without P2P, fewer NCCL
// channels) V0 logs show 0.20-0.25 GiB in all, ~128 MiB more than TP1
// (truth V05, V13).
constexpr int64_t kCollectivesNvlinkMiB = 420;
constexpr int64_t kCollectivesPcieMiB = 128;
// Memory a worker holds before vLLM's init snapshot, so outside the budget
// (gpu_worker.init_device): the CUDA context, 0.61 GiB ("Free memory on
// device: 78.57/79.18 GiB on startup", vLLM 0.11 on H100 at TP1), and with
// tp x pp > 1 on NVLink (SXM) GPUs the NCCL communicators set up before the
// snapshot (NVLS buffers on NVSwitch systems), another 0.93 GiB (77.64/79.18
// GiB at TP2). llm-d/llm-d-benchmark
// config_explorer/empirical-vllm-memory-results.md. Over PCIe vramfit
// counts NCCL's memory in non-torch only.
constexpr int64_t kCudaContextMiB = 624;
constexpr int64_t kNcclInitMiB = 952;
// When the catalog has no cudaMemGetInfo total for an NVIDIA GPU: capacity
// minus the median (capacity - cuda_total) of the 17 NVIDIA GPUs that have
// both in data/gpus.json (224..870 MiB).
constexpr int64_t kDriverReserveMiB = 464;

// VLLM_FUSED_MOE_CHUNK_SIZE (vllm/envs.py): fused_moe processes at most
// this many tokens per pass.
constexpr int64_t kMoeChunkTokens = 32768;
// CompilationConfig: max_cudagraph_capture_size = min(2 x max_num_seqs, 512).
constexpr int64_t kMaxCaptureSize = 512;
// Driver memory per captured CUDA graph (cudaGraphExec); 64 KiB reproduces
// the 0.22 GiB "Graph capturing ... took" of an 8B model with 86 sizes
// (truth V19). vLLM's own estimator floors each graph at 1 MiB.
constexpr int64_t kGraphExecKiB = 64;

// Python's repr of a float: 1.0 -> "1.0", 0.9 -> "0.9".
std::string PyFloat(double x) {
  std::string s = fmt::format("{}", x);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

// Bytes as GiB with two decimals (vLLM's log and error figures).
std::string Gib(Bytes b) {
  return fmt::format("{:.2f}", static_cast<double>(b.value()) / static_cast<double>(kGiB));
}

// Python's round(x, 2) printed with repr (vLLM's free-memory message).
std::string PyRound2(double x) { return PyFloat(std::round(x * 100.0) / 100.0); }


Status Invalid(const std::string& m) { return InvalidArgument(m); }
// vLLM's start-up failures: the settings are valid, the job does not fit.
Status DoesNotFit(const std::string& m) { return Error{ErrorKind::kDoesNotFit, m}; }

// vLLM's --dtype spelling (EngineArgs: auto, half/float16, bfloat16,
// float/float32).
const char* VllmDtypeName(DType d) {
  if (d == DType::kF16) return "float16";
  if (d == DType::kBF16) return "bfloat16";
  return "float32";
}

std::string Lower(const std::string& s) {
  std::string out;
  for (char c : s) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// --- Resolve steps.

// --gpu-mem-util: CacheConfig's gt=0, le=1 (the CLI refuses other values
// with the text it was given; this guards library callers). Default 0.9.
Status ResolveUtil(VllmKnobs* k) {
  if (k->gpu_memory_utilization) {
    const double u = *k->gpu_memory_utilization;
    if (!(u > 0.0 && u <= 1.0)) {
      return Invalid(fmt::format("--gpu-mem-util: expected a fraction in (0, 1], got {}", u));
    }
  }
  k->gpu_memory_utilization = k->gpu_memory_utilization.value_or(kDefaultUtil);
  return {};
}

// --max-model-len: 1..kMaxTokens and at most the derived length
// (ModelConfig._get_and_verify_max_len, vLLM's text). Default: the derived
// length.
Status ResolveMaxModelLen(const ModelSpec& spec, VllmKnobs* k) {
  const int64_t derived_len = DerivedMaxLen(spec);
  if (k->max_model_len) {
    const int64_t len = *k->max_model_len;
    if (len < 1 || len > kMaxTokens) {
      return Invalid(fmt::format("--max-model-len: {} is out of range (1..{})", len, kMaxTokens));
    }
    if (len > derived_len) {
      return Invalid(fmt::format(
          "--max-model-len: User-specified max_model_len ({}) is greater than the derived "
          "max_model_len (max_position_embeddings={} or model_max_length=None in model's "
          "config.json). This may lead to incorrect model outputs or CUDA errors. To allow "
          "overriding this maximum, set the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1",
          len, derived_len));
    }
  }
  k->max_model_len = k->max_model_len.value_or(derived_len);
  return {};
}

// --max-num-seqs (1..kMaxBatch) and --max-num-batched-tokens
// (1..kMaxTokens, and >= max_num_seqs: SchedulerConfig._verify_args).
// Defaults: ServeDefaultsFor / DefaultBatchedTokens. REQUIRES: max_model_len
// resolved.
Status ResolveBatchKnobs(const DeviceSet& devices, VllmKnobs* k) {
  if (k->max_num_seqs && (*k->max_num_seqs < 1 || *k->max_num_seqs > kMaxBatch)) {
    return Invalid(
        fmt::format("--max-num-seqs: {} is out of range (1..{})", *k->max_num_seqs, kMaxBatch));
  }
  if (k->max_num_batched_tokens &&
      (*k->max_num_batched_tokens < 1 || *k->max_num_batched_tokens > kMaxTokens)) {
    return Invalid(fmt::format("--max-num-batched-tokens: {} is out of range (1..{})",
                               *k->max_num_batched_tokens, kMaxTokens));
  }
  const ServeDefaults d = ServeDefaultsFor(devices);
  k->max_num_seqs = k->max_num_seqs.value_or(d.max_num_seqs);
  k->max_num_batched_tokens = k->max_num_batched_tokens.value_or(
      DefaultBatchedTokens(d, *k->max_num_seqs, *k->max_model_len));
  if (*k->max_num_batched_tokens < *k->max_num_seqs) {
    return Invalid(fmt::format(
        "--max-num-batched-tokens: max_num_batched_tokens ({}) must be greater than or equal to "
        "max_num_seqs ({}).",
        *k->max_num_batched_tokens, *k->max_num_seqs));
  }
  return {};
}

// --block-size: one of kBlockSizes. Default: DefaultBlockSize.
Status ResolveBlockSize(const ModelSpec& spec, const DeviceSet& devices, VllmKnobs* k) {
  if (k->block_size) {
    if (std::find(std::begin(kBlockSizes), std::end(kBlockSizes), *k->block_size) ==
        std::end(kBlockSizes)) {
      return Invalid(fmt::format("--block-size: expected one of 1, 8, 16, 32, 64, 128, got {}",
                                 *k->block_size));
    }
    return {};
  }
  k->block_size = DefaultBlockSize(spec, devices).size;
  return {};
}

// Whether vLLM's checks see this GPU below compute capability 8.0 (no bf16).
bool BelowSm80(const GpuSpec& g) {
  return g.vendor == "nvidia" && !g.compute_capability.empty() &&
         std::atof(g.compute_capability.c_str()) < 8.0;
}

// The layouts ResolveInference refuses right after the profile's Resolve
// (CheckLayout, workload.cc): attention heads that do not split over --tp,
// more stages than layers, mxfp4 on a model without experts. Its error has
// always come before the vLLM checks; keep in step with workload.cc.
bool LayoutRefusedNext(const ModelSpec& s, const InferenceWorkload& w) {
  return (w.tp > 1 && s.attn_kind == AttnKind::kStandard && s.num_attention_heads % w.tp != 0) ||
         w.pp > s.num_hidden_layers ||
         (w.quant.method == QuantMethod::kMxfp4 && s.num_experts == 0);
}

bool AllResolved(const VllmKnobs& k) {
  return k.gpu_memory_utilization && k.max_model_len && k.max_num_seqs &&
         k.max_num_batched_tokens && k.block_size;
}

}  // namespace

int64_t DerivedMaxLen(const ModelSpec& spec) {
  return spec.max_position_embeddings > 0 ? spec.max_position_embeddings : kFallbackMaxLen;
}

ServeDefaults ServeDefaultsFor(const DeviceSet& devices) {
  const bool big = !devices.empty() && GpuTotal(devices.gpus[0]).value() >= kBigGpuBytes &&
                   Lower(devices.gpus[0].name).find("a100") == std::string::npos;
  if (big) return {kServeSeqsBig, kServeTokensBig, true};
  return {kServeSeqs, kServeTokens, false};
}

int64_t DefaultBatchedTokens(const ServeDefaults& d, int64_t max_num_seqs, int64_t max_model_len) {
  return std::min(d.max_num_batched_tokens, CheckedMul(max_num_seqs, max_model_len));
}

BlockDefault DefaultBlockSize(const ModelSpec& spec, const DeviceSet& devices) {
  if (spec.attn_kind == AttnKind::kMla && !devices.empty() && devices.gpus[0].vendor == "nvidia") {
    const double cc = std::atof(devices.gpus[0].compute_capability.c_str());
    if (cc >= 10.0 && cc < 11.0) {
      return {kCutlassMlaBlockSize, "CUTLASS MLA (sm100) forces block_size 128"};
    }
    if (cc >= 9.0 && cc < 10.0) return {kFlashMlaBlockSize, "FlashMLA (sm90) forces block_size 64"};
  }
  return {kDefaultBlockSize, ""};
}

Status CheckEngineSettings(const ModelSpec& s, const InferenceWorkload& w,
                           const DeviceSet& devices) {
  for (const GpuSpec& g : devices.gpus) {
    if (g.vendor == "apple") {
      return Unsupported(fmt::format(
          "--runtime vllm: {} is an Apple GPU; vLLM runs on CUDA and ROCm GPUs", g.name));
    }
  }
  if (w.quant.method == QuantMethod::kGguf) {
    return Unsupported(fmt::format(
        "--quant {}: GGUF weights are modelled for --runtime llamacpp, not vllm", w.quant.Name()));
  }
  const DType kvd = w.kv_dtype;
  // kv_cache_dtype "auto" is the model dtype, fp32 included (--dtype fp32
  // runs FlexAttention); an explicit cache dtype is fp16/bf16 or fp8.
  if (kvd != w.dtype && kvd != DType::kF16 && kvd != DType::kBF16 && kvd != DType::kF8E4M3 &&
      kvd != DType::kF8E5M2) {
    return Invalid(fmt::format(
        "--kv-dtype: vLLM's kv_cache_dtype is auto, fp16, bf16 or fp8, got '{}'", Name(kvd)));
  }
  // QKVParallelLinear: KV heads split over the ranks, or the ranks over them.
  const int64_t tp = w.tp;
  const int64_t kvh = s.num_key_value_heads;
  if (s.attn_kind != AttnKind::kMla && tp > 1 && kvh > 0 &&
      (tp >= kvh ? tp % kvh : kvh % tp) != 0) {
    return Invalid(fmt::format(
        "--tp: {} KV heads do not split over {} GPUs (vLLM needs one to divide the other)", kvh,
        tp));
  }
  if (w.dtype == DType::kBF16) {
    for (const GpuSpec& g : devices.gpus) {
      if (BelowSm80(g)) {
        // gpu_worker._check_if_gpu_supports_dtype.
        return Invalid(fmt::format(
            "vllm: Bfloat16 is only supported on GPUs with compute capability of at least 8.0. "
            "Your {} GPU has compute capability {}. You can use float16 instead by explicitly "
            "setting the `dtype` flag in CLI, for example: --dtype=half. [use --dtype fp16]",
            g.name, g.compute_capability));
      }
    }
  }
  return {};
}

Status ResolveKnobs(const ModelSpec& spec, const DeviceSet& devices, VllmKnobs* k) {
  VRAMFIT_TRY(ResolveUtil(k));
  VRAMFIT_TRY(ResolveMaxModelLen(spec, k));
  VRAMFIT_TRY(ResolveBatchKnobs(devices, k));
  return ResolveBlockSize(spec, devices, k);
}

// --- The KV cache layout.

Bytes GpuTotal(const GpuSpec& g) {
  if (g.cuda_total.value() > 0) return g.cuda_total;
  if (g.vendor == "nvidia") return g.capacity - MiB(kDriverReserveMiB);
  return g.capacity;
}

std::vector<LayerType> LayerTypes(const ModelSpec& s) {
  std::vector<LayerType> types(static_cast<size_t>(s.num_hidden_layers));
  for (size_t i = 0; i < types.size() && i < s.layers.size(); ++i) {
    const LayerSpec& l = s.layers[i];
    if (l.HasRecurrent()) {
      types[i].kind = CacheKind::kState;
    } else if (!l.HasAttention()) {
      types[i].kind = CacheKind::kNone;
    } else if (s.sliding_window > 0 && l.attention == LayerAttention::kSliding) {
      types[i].window = s.sliding_window;
    }
  }
  return types;
}

std::vector<KvGroup> BuildGroups(const std::vector<LayerType>& types) {
  std::vector<LayerType> order;
  std::map<LayerType, std::vector<int64_t>> by_type;
  for (size_t i = 0; i < types.size(); ++i) {
    if (types[i].kind == CacheKind::kNone) continue;  // no KV cache spec
    if (by_type.find(types[i]) == by_type.end()) order.push_back(types[i]);
    by_type[types[i]].push_back(static_cast<int64_t>(i));
  }
  std::vector<KvGroup> groups;
  if (order.empty()) return groups;  // no layers: no groups
  if (order.size() == 1) {
    groups.push_back({order[0], by_type[order[0]]});
    return groups;
  }
  int64_t min_n = INT64_MAX, max_n = 0;
  for (const auto& [t, l] : by_type) {
    min_n = std::min<int64_t>(min_n, static_cast<int64_t>(l.size()));
    max_n = std::max<int64_t>(max_n, static_cast<int64_t>(l.size()));
  }
  const int64_t group_size = 2 * max_n < 3 * min_n ? max_n : min_n;
  for (const LayerType& t : order) {
    const std::vector<int64_t>& l = by_type[t];
    const int64_t n = CeilDiv(static_cast<int64_t>(l.size()), group_size);
    for (int64_t g = 0; g < n; ++g) {
      KvGroup kg{t, {}};
      for (size_t j = static_cast<size_t>(g); j < l.size(); j += static_cast<size_t>(n)) {
        kg.layers.push_back(l[j]);
      }
      groups.push_back(std::move(kg));
    }
  }
  return groups;
}

int64_t BlocksPerRequest(LayerType t, int64_t max_len, int64_t mnbt, int64_t bs) {
  if (t.kind == CacheKind::kState) return 1;  // one state page per request
  if (t.kind == CacheKind::kNone) return 0;
  if (t.window == 0) return CeilDiv(max_len, bs);
  return CeilDiv(std::min(CheckedAdd(t.window - 1, mnbt), max_len), bs) + 1;
}

int64_t SumBlocks(const std::vector<KvGroup>& groups, int64_t max_len, int64_t mnbt, int64_t bs) {
  int64_t n = 0;
  for (const KvGroup& g : groups) n = CheckedAdd(n, BlocksPerRequest(g.type, max_len, mnbt, bs));
  return n;
}

int64_t StageGroupSize(const std::vector<KvGroup>& groups, LayerRange range) {
  int64_t size = 0;
  for (const KvGroup& g : groups) {
    int64_t n = 0;
    for (int64_t l : g.layers) n += (l >= range.first && l < range.last) ? 1 : 0;
    size = std::max(size, n);
  }
  return size;
}

KvPage KvPageOf(const ModelSpec& s, int64_t tp, DType kv_dtype, int64_t block_size) {
  const bool mla = s.attn_kind == AttnKind::kMla;
  KvPage p;
  p.elem_bytes = Info(kv_dtype).block_bytes;
  // The MLA latent is one "head", replicated on every rank.
  p.kv_heads = mla ? 1 : std::max<int64_t>(1, s.num_key_value_heads / tp);
  p.k_width = mla ? KvElementsPerToken(s, KvLayout::kLatent).k : p.kv_heads * s.head_dim;
  p.v_width = mla ? 0 : p.kv_heads * s.v_head_dim;
  p.bytes = CheckedMul(CheckedMul(block_size, p.k_width + p.v_width), p.elem_bytes);
  return p;
}

StateDTypes StateDTypesOf(const InferenceWorkload& w) {
  StateDTypes d;
  d.conv = w.vllm.mamba_cache_dtype.value_or(w.dtype);
  d.ssm = w.vllm.mamba_ssm_cache_dtype.value_or(d.conv);
  return d;
}

StatePage StatePageOf(const ModelSpec& s, int64_t tp, DType conv_dtype, DType ssm_dtype) {
  StatePage p;
  p.conv_bytes = Info(conv_dtype).block_bytes;
  p.ssm_bytes = Info(ssm_dtype).block_bytes;
  switch (ModelRecurrentKind(s)) {
    case RecurrentKind::kMamba1: {
      const MambaSpec& m = s.mamba;
      p.conv = CheckedMul(m.d_inner / tp, m.d_conv - 1);
      p.ssm = CheckedMul(m.d_inner / tp, m.d_state);
      break;
    }
    case RecurrentKind::kMamba2: {
      const MambaSpec& m = s.mamba;
      // extra_groups_for_head_shards: one group is replicated to every rank.
      const int64_t groups = m.n_groups % tp == 0 ? m.n_groups : tp;
      const int64_t conv_dim = CheckedAdd(m.d_inner, CheckedMul(2 * groups, m.d_state));
      p.conv = CheckedMul(conv_dim / tp, m.d_conv - 1);
      p.ssm = CheckedMul(CheckedMul(m.num_heads / tp, m.head_dim), m.d_state);
      break;
    }
    case RecurrentKind::kGatedDeltaNet: {
      const LinearAttnSpec& a = s.linear_attn;
      const int64_t conv_dim = CheckedAdd(CheckedMul(2 * a.num_k_heads, a.k_head_dim),
                                          CheckedMul(a.num_v_heads, a.v_head_dim));
      p.conv = CheckedMul(conv_dim / tp, a.conv_kernel - 1);
      p.ssm = CheckedMul(CheckedMul(a.num_v_heads / tp, a.k_head_dim), a.v_head_dim);
      break;
    }
    case RecurrentKind::kShortConv:
      p.conv = CheckedMul(s.hidden_size / tp, s.short_conv.l_cache - 1);
      break;
    case RecurrentKind::kKimiDelta:
    case RecurrentKind::kNone:
      break;
  }
  p.bytes = CheckedAdd(CheckedMul(p.conv, p.conv_bytes), CheckedMul(p.ssm, p.ssm_bytes));
  return p;
}

namespace {

// "--tp: <what> (<n>) do not split over <tp> GPUs ...", or ok.
Status SplitsOver(const ModelSpec& s, const char* what, int64_t n, int64_t tp) {
  if (n % tp == 0) return {};
  return InvalidArgument(fmt::format(
      "--tp: {} {} of {} do not split over {} GPUs (vLLM divides the recurrent state by the "
      "tensor-parallel size)",
      n, what, s.id, tp));
}

}  // namespace

Status CheckStateLayout(const ModelSpec& s, int64_t tp) {
  for (const LayerSpec& l : s.layers) {
    if (l.HasRecurrent() && l.HasAttention()) {
      return Unsupported(fmt::format(
          "--runtime vllm: {} has layers with attention and a {} mixer in parallel; their vLLM "
          "cache layout is not modelled yet",
          s.id, RecurrentName(l.recurrent)));
    }
  }
  const RecurrentKind k = ModelRecurrentKind(s);
  switch (k) {
    case RecurrentKind::kNone:
      return {};
    case RecurrentKind::kMamba1:
      return SplitsOver(s, "Mamba channels (d_inner)", s.mamba.d_inner, tp);
    case RecurrentKind::kMamba2:
      if (s.mamba.n_groups % tp != 0 && s.mamba.n_groups != 1) {
        return Unsupported(fmt::format(
            "--tp: {} Mamba-2 groups of {} neither split over {} GPUs nor are one group; vLLM's "
            "group replication for that case is not modelled",
            s.mamba.n_groups, s.id, tp));
      }
      return SplitsOver(s, "Mamba-2 heads", s.mamba.num_heads, tp);
    case RecurrentKind::kGatedDeltaNet:
      VRAMFIT_TRY(SplitsOver(s, "linear-attention key heads", s.linear_attn.num_k_heads, tp));
      return SplitsOver(s, "linear-attention value heads", s.linear_attn.num_v_heads, tp);
    case RecurrentKind::kShortConv:
      return SplitsOver(s, "short-conv channels", s.hidden_size, tp);
    case RecurrentKind::kKimiDelta:
      break;
  }
  return HybridRefusal(s, "vllm", "the vLLM state shape of this mixer (not verified in vLLM 0.11)");
}

int64_t HybridBlockSize(int64_t state_page_bytes, int64_t attn_page_1_token_bytes) {
  // Attention backends (FlashAttention) take block sizes in multiples of 16.
  constexpr int64_t kAlign = 16;
  return kAlign * CeilDiv(state_page_bytes, kAlign * attn_page_1_token_bytes);
}

// --- The profile run.

std::vector<int64_t> CaptureSizes(int64_t max_num_seqs, int64_t mnbt) {
  const int64_t cap = std::min({2 * max_num_seqs, kMaxCaptureSize, mnbt});
  std::vector<int64_t> sizes;
  for (int64_t x : {1, 2, 4}) sizes.push_back(x);
  for (int64_t x = 8; x < 256; x += 8) sizes.push_back(x);
  for (int64_t x = 256; x <= kMaxCaptureSize; x += 16) sizes.push_back(x);
  sizes.erase(std::remove_if(sizes.begin(), sizes.end(), [&](int64_t x) { return x > cap; }),
              sizes.end());
  return sizes;
}

namespace {

// Live temporaries of one attention layer for T tokens, in elements per
// token: q, k, v and the output (MLA: q, the latent, kv_b_proj's per-head
// K_nope and V, K with RoPE, output).
int64_t AttentionWidth(const ModelSpec& s, int64_t tp) {
  const int64_t heads = CeilDiv(s.num_attention_heads, tp);
  if (s.attn_kind == AttnKind::kMla) {
    const int64_t qk = s.qk_nope_head_dim + s.qk_rope_head_dim;
    return heads * qk + (s.kv_lora_rank + s.qk_rope_head_dim) +
           heads * (s.qk_nope_head_dim + s.v_head_dim) + heads * qk + heads * s.v_head_dim;
  }
  const int64_t kvh = std::max<int64_t>(1, s.num_key_value_heads / tp);
  return heads * s.head_dim + kvh * (s.head_dim + s.v_head_dim) + heads * s.v_head_dim;
}

// The MLP (dense) or fused-MoE temporaries of the largest layer in range,
// whichever is larger, as one leaf ("mlp" / "moe"); 0 bytes without either.
Component MlpPeak(const ModelSpec& s, LayerRange range, int64_t T, int64_t tp, int64_t dt) {
  bool any_dense = false, any_moe = false;
  for (int64_t i = range.first; i < range.last; ++i) {
    (s.layers[static_cast<size_t>(i)].moe ? any_moe : any_dense) = true;
  }
  Component mlp = Leaf("mlp", Bytes(0));
  if (any_dense && s.intermediate_size > 0) {
    const int64_t inter = CeilDiv(s.intermediate_size, tp);
    const int64_t width = s.mlp_kind == MlpKind::kPlain ? 2 : 3;  // gate_up + act, or fc1 + act
    mlp = Leaf("mlp", Bytes(CheckedMul(T, width * inter)) * dt,
               Formula("{} tok x {} x {} inter x {} B", T, width, inter, dt));
  }
  if (any_moe) {
    // fused_experts: intermediate_cache1/3 share one buffer of
    // max(2N, hidden) per (token, expert), cache2 holds N; the router
    // logits and their fp32 top-k softmax; the shared experts' MLP.
    const int64_t h = s.hidden_size;
    const int64_t tc = std::min(T, kMoeChunkTokens);
    const int64_t n = CeilDiv(s.moe_intermediate_size, tp);
    const int64_t k = s.num_experts_per_tok;
    const int64_t shared = CeilDiv(s.shared_expert_intermediate_size, tp);
    const Bytes moe = Bytes(CheckedMul(CheckedMul(tc, k), std::max(2 * n, h) + n)) * dt +
                      Bytes(CheckedMul(T, s.num_experts)) * (dt + 4) +
                      Bytes(CheckedMul(T, 3 * shared)) * dt;
    if (moe > mlp.bytes) {
      mlp = Leaf("moe", moe,
                 Formula("{} tok x {} experts x ({} + {}) x {} B + router + shared", tc, k,
                         std::max(2 * n, h), n, dt));
    }
  }
  return mlp;
}

// Live temporaries of one recurrent mixer for T tokens, in elements per
// token on one rank: the input projection's output and the mixer's output
// before out_proj (Mamba-1: in_proj 2 d_inner, x_proj dt_rank + 2 d_state,
// dt d_inner, y d_inner; Mamba-2: in_proj 2 d_inner + 2 g d_state + heads,
// y d_inner; GDN: in_proj_qkvz 2 nk dk + 2 nv dv, in_proj_ba 2 nv, core
// output nv dv; short conv: in_proj 3 h, conv output h). 0 without a mixer.
int64_t MixerWidth(const ModelSpec& s, LayerRange range, int64_t tp) {
  bool any = false;
  for (int64_t i = range.first; i < range.last; ++i) {
    any = any || s.layers[static_cast<size_t>(i)].HasRecurrent();
  }
  if (!any) return 0;
  const MambaSpec& m = s.mamba;
  const LinearAttnSpec& a = s.linear_attn;
  switch (ModelRecurrentKind(s)) {
    case RecurrentKind::kMamba1:
      return 4 * (m.d_inner / tp) + m.dt_rank + 2 * m.d_state;
    case RecurrentKind::kMamba2:
      return (2 * m.d_inner + 2 * std::max(m.n_groups, tp) * m.d_state + m.num_heads) / tp +
             m.d_inner / tp;
    case RecurrentKind::kGatedDeltaNet:
      return (2 * a.num_k_heads * a.k_head_dim + 3 * a.num_v_heads * a.v_head_dim +
              2 * a.num_v_heads) /
             tp;
    case RecurrentKind::kShortConv:
      return 4 * s.hidden_size / tp;
    case RecurrentKind::kKimiDelta:
    case RecurrentKind::kNone:
      break;
  }
  return 0;
}

}  // namespace

std::vector<Component> ForwardPeak(const ModelSpec& s, LayerRange range, int64_t T, int64_t tp,
                                   int64_t dt) {
  std::vector<Component> parts;
  if (range.size() == 0) return parts;
  const int64_t h = s.hidden_size;
  parts.push_back(Leaf("residual + hidden", Bytes(CheckedMul(CheckedMul(2, T), h)) * dt,
                       Formula("2 x {} tok x {} x {} B", T, h, dt)));
  const int64_t attn_w = AttentionLayerCount(s) > 0 ? AttentionWidth(s, tp) : 0;
  const Bytes attn = Bytes(CheckedMul(T, attn_w)) * dt;
  Component mlp = MlpPeak(s, range, T, tp, dt);
  const int64_t mix_w = MixerWidth(s, range, tp);
  const Bytes mix = Bytes(CheckedMul(T, mix_w)) * dt;
  if (mix > attn && mix > mlp.bytes) {
    parts.push_back(Leaf("mixer", mix, Formula("{} tok x {} x {} B", T, mix_w, dt)));
  } else if (attn >= mlp.bytes) {
    parts.push_back(Leaf("attention", attn, Formula("{} tok x {} x {} B", T, attn_w, dt)));
  } else {
    parts.push_back(std::move(mlp));
  }
  return parts;
}

std::vector<Component> SamplerPeak(const ModelSpec& s, int64_t T, int64_t rows, int64_t dt) {
  std::vector<Component> parts;
  const int64_t h = s.hidden_size;
  const int64_t v = s.vocab_size;
  const int64_t cells = CheckedMul(rows, v);
  parts.push_back(Leaf("hidden states", Bytes(CheckedMul(T + 2 * rows, h)) * dt,
                       Formula("({} tok + 2 x {} rows) x {} x {} B", T, rows, h, dt)));
  parts.push_back(Leaf("logits", Bytes(CheckedMul(rows, RoundUp(v, 64))) * dt,
                       Formula("{} rows x {} vocab x {} B", rows, RoundUp(v, 64), dt)));
  if (dt != 4) {
    parts.push_back(Leaf("fp32 logits", Bytes(cells) * 4, Formula("{} x {} x 4 B", rows, v)));
  }
  parts.push_back(
      Leaf("sorted logits + indices", Bytes(cells) * 12, Formula("{} x {} x (4 + 8) B", rows, v)));
  const int64_t temp = (rows >= 2 && rows < 128) ? 32 : 20;
  parts.push_back(
      Leaf("sort temporaries", Bytes(cells) * temp, Formula("{} x {} x {} B", rows, v, temp)));
  return parts;
}

// --- One worker.

namespace {

// The page every group shares and the block size, as vLLM settles them
// before the KV cache is sized: attention-only models keep the block size
// and the attention page; hybrids raise the block size until an attention
// page holds a state page (HybridAttentionMambaModelConfig) and pad the
// state pages to it; attention-free models (MambaModelConfig) use the state
// page, one block of max_model_len tokens per sequence.
void LayOutPages(const ModelSpec& s, const InferenceWorkload& w, Engine* g) {
  g->given_block_size = g->block_size;
  g->token_block = g->block_size;
  g->has_state = HasRecurrentLayers(s);
  g->attention_free = g->has_state && AttentionLayerCount(s) == 0;
  if (g->has_state) {
    const StateDTypes sd = StateDTypesOf(w);
    g->state = StatePageOf(s, g->tp, sd.conv, sd.ssm);
  }
  if (g->attention_free) {
    g->page = KvPage{};
    g->page.bytes = g->state.bytes;
    g->token_block = g->max_model_len;  // mamba_block_size = max_model_len
    return;
  }
  if (g->has_state) {
    const int64_t one = KvPageOf(s, g->tp, w.kv_dtype, 1).bytes;
    g->block_size = std::max(g->block_size, HybridBlockSize(g->state.bytes, one));
    // min over the groups' block sizes: attention's, and max_model_len.
    g->token_block = std::min(g->block_size, g->max_model_len);
  }
  g->page = KvPageOf(s, g->tp, w.kv_dtype, g->block_size);
}

}  // namespace

Engine EngineOf(const ModelSpec& s, const InferenceWorkload& w, const DeviceSet& devices) {
  const VllmKnobs& k = w.vllm;
  Engine g;
  g.util = *k.gpu_memory_utilization;
  g.max_model_len = *k.max_model_len;
  g.max_num_seqs = *k.max_num_seqs;
  g.mnbt = *k.max_num_batched_tokens;
  g.block_size = *k.block_size;
  g.eager = k.enforce_eager;
  g.tp = w.tp;
  g.stages = w.pp;
  g.world = g.tp * g.stages;
  g.mla = s.attn_kind == AttnKind::kMla;
  g.have_gpu = !devices.empty();
  // NVLink-connected GPUs (catalog form "sxm") run vLLM's custom all-reduce
  // and NCCL's NVLink/NVLS transports, which hold more memory.
  g.nvlink = g.have_gpu && devices.gpus[0].form == "sxm";
  g.nccl_before = g.world > 1 && g.nvlink;
  g.dt = Info(w.dtype).block_bytes;
  g.rows = std::min(g.max_num_seqs, g.mnbt);
  LayOutPages(s, w, &g);
  g.groups = BuildGroups(LayerTypes(s));
  g.blocks_per_request = SumBlocks(g.groups, g.max_model_len, g.mnbt, g.block_size);
  g.capture_sizes = CaptureSizes(g.max_num_seqs, g.mnbt);
  for (int64_t x : g.capture_sizes) g.full_graphs += x <= g.max_num_seqs ? 1 : 0;
  g.context = MiB(kCudaContextMiB) + (g.nccl_before ? MiB(kNcclInitMiB) : Bytes(0));
  g.kv_cache_memory = k.kv_cache_memory.value_or(0);
  return g;
}

Component WorkerWeights(const Model& model, const InferenceWorkload& w, LayerRange range,
                        bool first, bool last) {
  const ModelSpec& s = model.spec;
  const int64_t tp = w.tp;
  const int64_t dt = Info(w.dtype).block_bytes;
  Component weights =
      (w.weights_as_stored && !model.file_tensors.empty())
          ? FileWeightsComponent(model, w.dtype, /*cast_floats=*/true, range, first, last, tp)
          : WeightsComponent(model, w.quant, w.dtype, range, first, last, tp);
  // No RoPE where no layer attends (Mamba models) or attention is NoPE
  // (Nemotron-H: NemotronHAttention has no rotary_emb).
  const bool rope = AttentionLayerCount(s) > 0 && s.model_type != "nemotron_h";
  if (s.learned_positions == 0 && range.size() > 0 && rope) {
    // get_rope: one cos_sin_cache [max_position, rotary_dim] in the
    // model dtype, shared by all layers (rotary_embedding.py).
    const int64_t rot = s.attn_kind == AttnKind::kMla ? s.qk_rope_head_dim : s.head_dim;
    const int64_t len = DerivedMaxLen(s);
    const Bytes rope = Bytes(CheckedMul(len, rot)) * dt;
    weights.children.push_back(
        Leaf("rotary cache", rope, Formula("{} pos x {} x {} B", len, rot, dt)));
    weights.bytes += rope;
  }
  if (first) {
    Bytes vision;
    for (const TensorGroup& g : model.inventory.extra) {
      if (g.role == Role::kVision) {
        vision += Bytes(CeilDiv(StorageBytes(w.dtype, g.elements()).value(), tp));
      }
    }
    if (vision.value() > 0) {
      weights.children.push_back(
          Leaf("vision", vision, Formula("vision tower, {} / tp {}", Name(w.dtype), tp)));
      weights.bytes += vision;
    }
  }
  return weights;
}

ActivationPeak ProfilePeak(const ModelSpec& spec, const Engine& g, LayerRange range, bool last) {
  std::vector<Component> parts = ForwardPeak(spec, range, g.mnbt, g.tp, g.dt);
  Bytes fwd_bytes;
  for (const Component& c : parts) fwd_bytes += c.bytes;
  std::string phase = "forward";
  if (last) {
    std::vector<Component> smp = SamplerPeak(spec, g.mnbt, g.rows, g.dt);
    Bytes smp_bytes;
    for (const Component& c : smp) smp_bytes += c.bytes;
    if (smp_bytes > fwd_bytes) {
      parts = std::move(smp);
      phase = "sampler";
    }
  }
  Component act = Parent("activations", std::move(parts),
                         phase == "sampler" ? Formula("profile run: sampler on {} rows", g.rows)
                                            : Formula("profile run: forward of {} tokens", g.mnbt));
  return {std::move(act), std::move(phase)};
}

Component NonTorch(int64_t world, bool nvlink) {
  std::vector<Component> nt;
  nt.push_back(Leaf("kernels + libraries", MiB(kNonTorchMiB), "0.13 GiB in vLLM 0.11 logs at TP1"));
  if (world > 1) {
    nt.push_back(
        nvlink ? Leaf("NCCL + custom all-reduce", MiB(kCollectivesNvlinkMiB),
                      Formula("world size {}, NVLink", world))
               : Leaf("NCCL", MiB(kCollectivesPcieMiB), Formula("world size {}, PCIe", world)));
  }
  return Parent("non_torch", std::move(nt));
}

Bytes CudaGraphBytes(const ModelSpec& s, const Engine& g, LayerRange range) {
  if (g.eager || range.size() == 0) return Bytes(0);
  // One layer's temporaries at the largest captured size (the piecewise
  // graphs hand their outputs on as weak references, so the private pool
  // is reused), plus a cudaGraphExec per piece per size: PIECEWISE graphs
  // split at each attention layer (layers + 1 pieces) and FULL decode
  // graphs up to max_num_seqs (FULL_AND_PIECEWISE).
  const std::vector<int64_t>& sizes = g.capture_sizes;
  const int64_t cap = sizes.empty() ? 0 : sizes.back();
  const int64_t inter =
      std::max(CeilDiv(s.intermediate_size, g.tp), CeilDiv(s.moe_intermediate_size, g.tp) *
                                                       std::max<int64_t>(1, s.num_experts_per_tok));
  const Bytes pool = Bytes(CheckedMul(cap, 2 * s.hidden_size + 3 * inter)) * g.dt;
  const int64_t execs = static_cast<int64_t>(sizes.size()) * (range.size() + 1) + g.full_graphs;
  return pool + Bytes(CheckedMul(execs, kGraphExecKiB * kKiB));
}

Budget BudgetOf(const GpuSpec& gpu, double util, Bytes non_kv) {
  Budget b;
  b.total = GpuTotal(gpu);
  b.requested_d = static_cast<double>(b.total.value()) * util;
  b.requested = Bytes(static_cast<int64_t>(b.requested_d));
  // available = int(requested - non_kv_cache_memory)  (Python int() truncates)
  b.available = Bytes(static_cast<int64_t>(b.requested_d - static_cast<double>(non_kv.value())));
  return b;
}

Worker BuildWorker(const Model& model, const InferenceWorkload& w, const DeviceSet& devices,
                   const Engine& g, int64_t stage, int64_t rank) {
  const ModelSpec& s = model.spec;
  Worker wk;
  wk.range = StageLayers(s.num_hidden_layers, g.stages, stage);
  const bool first = stage == 0;
  const bool last = stage == g.stages - 1;
  const int64_t idx = stage * g.tp + rank;
  wk.d.name = "gpu" + std::to_string(idx);
  if (static_cast<size_t>(idx) < devices.gpus.size()) {
    wk.d.gpu = devices.gpus[static_cast<size_t>(idx)];
  }
  Component weights = WorkerWeights(model, w, wk.range, first, last);
  ActivationPeak peak = ProfilePeak(s, g, wk.range, last);
  Component non_torch = NonTorch(g.world, g.nvlink);
  wk.weights = weights.bytes;
  wk.act = peak.activations.bytes;
  wk.non_torch = non_torch.bytes;
  wk.d.peak_phase = std::move(peak.phase);
  wk.graphs = CudaGraphBytes(s, g, wk.range);
  wk.comps.push_back(std::move(weights));
  wk.comps.push_back(std::move(peak.activations));
  wk.comps.push_back(std::move(non_torch));
  if (wk.d.gpu) wk.budget = BudgetOf(*wk.d.gpu, g.util, wk.weights + wk.act + wk.non_torch);
  // gpu_worker.determine_available_memory: kv_cache_memory_bytes set, it
  // still runs the profile (the activations above) but returns the bytes
  // as given, whatever the utilisation budget says.
  if (g.kv_cache_memory > 0) wk.budget.available = Bytes(g.kv_cache_memory);
  wk.group_size = StageGroupSize(g.groups, wk.range);
  return wk;
}

// --- Start-up checks and the pool.

int64_t RequestKvBytes(const Engine& g, int64_t pools, int64_t len) {
  return CheckedMul(CheckedMul(pools, g.page.bytes),
                    SumBlocks(g.groups, len, g.mnbt, g.block_size));
}

int64_t EstimateMaxModelLen(const Engine& g, int64_t pools, Bytes available) {
  int64_t lo = 1, hi = g.max_model_len, best = 0;
  while (lo <= hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (RequestKvBytes(g, pools, mid) <= available.value()) {
      best = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return best;
}

namespace {

// gpu_worker.init_device: the free memory after the CUDA context (and
// NVLink NCCL) must cover total x util; memory other processes hold
// (--gpu local) is not free either.
Status CheckFreeMemory(const Engine& g, const Worker& wk) {
  const Budget& b = wk.budget;
  const Bytes in_use = wk.d.gpu ? wk.d.gpu->in_use : Bytes(0);
  const double free_d = static_cast<double>((b.total - g.context - in_use).value());
  if (free_d >= b.requested_d) return {};
  const double gib = static_cast<double>(kGiB);
  return DoesNotFit(fmt::format(
      "vllm: {}: Free memory on device ({}/{} GiB) on startup is less than desired GPU memory "
      "utilization ({}, {} GiB). Decrease GPU memory utilization or reduce GPU memory used by "
      "other processes. [{} GiB go to the CUDA context{} before the check{}; lower --gpu-mem-util]",
      wk.d.name, PyRound2(free_d / gib), PyRound2(static_cast<double>(b.total.value()) / gib),
      PyFloat(g.util), PyRound2(b.requested_d / gib), Gib(g.context), g.nccl_before ? " and NCCL" : "",
      in_use.value() > 0 ? fmt::format(", {} GiB is held by other processes", Gib(in_use)) : std::string()));
}

// kv_cache_utils.check_enough_kv_cache_memory: some memory left, and room
// for one max_model_len request (with estimate_max_model_len's hint).
Status CheckKvBudget(const Engine& g, const Worker& wk) {
  if (wk.group_size == 0) return {};
  const Budget& b = wk.budget;
  if (b.available.value() <= 0) {
    return DoesNotFit(fmt::format(
        "vllm: {}: No available memory for the cache blocks. Try increasing "
        "`gpu_memory_utilization` when initializing the engine. See "
        "https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details. "
        "[weights {} GiB + profile peak {} GiB + non-torch {} GiB exceed {} x {} GiB = {} GiB; "
        "raise --gpu-mem-util or split the model with --tp]",
        wk.d.name, Gib(wk.weights), Gib(wk.act), Gib(wk.non_torch), PyFloat(g.util), Gib(b.total),
        Gib(b.requested)));
  }
  const int64_t needed = RequestKvBytes(g, wk.group_size, g.max_model_len);
  if (needed <= b.available.value()) return {};
  const int64_t best = EstimateMaxModelLen(g, wk.group_size, b.available);
  const std::string est =
      best > 0
          ? fmt::format("Based on the available memory, the estimated maximum model length is {}. ",
                        best)
          : "";
  return DoesNotFit(fmt::format(
      "vllm: {}: To serve at least one request with the models's max seq len ({}), ({} GiB KV "
      "cache is needed, which is larger than the available KV cache memory ({} GiB). {}Try "
      "increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing "
      "the engine. See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for "
      "more details. [{}raise --gpu-mem-util]",
      wk.d.name, g.max_model_len, Gib(Bytes(needed)), Gib(b.available), est,
      best > 0 ? fmt::format("lower --max-model-len to {} or ", best) : ""));
}

}  // namespace

Status CheckStartup(const Engine& g, const std::vector<Worker>& workers) {
  if (!g.have_gpu) return {};
  for (const Worker& wk : workers) VRAMFIT_TRY(CheckFreeMemory(g, wk));
  for (const Worker& wk : workers) VRAMFIT_TRY(CheckKvBudget(g, wk));
  return {};
}

std::optional<StartupFailure> StartupFailureOf(const Engine& g, const std::vector<Worker>& workers) {
  if (!g.have_gpu) return std::nullopt;
  for (const Worker& wk : workers) {
    if (Status st = CheckFreeMemory(g, wk); !st.ok()) {
      return StartupFailure{"free_memory_below_request", st.error().message, wk.d.name};
    }
  }
  for (const Worker& wk : workers) {
    if (Status st = CheckKvBudget(g, wk); !st.ok()) {
      const bool none = wk.budget.available.value() <= 0;
      return StartupFailure{none ? "no_kv_memory" : "kv_below_one_request", st.error().message,
                            wk.d.name};
    }
  }
  return std::nullopt;
}

int64_t PoolBlocks(const Engine& g, const std::vector<Worker>& workers) {
  int64_t num_blocks = INT64_MAX;
  for (const Worker& wk : workers) {
    if (wk.group_size == 0) continue;
    const int64_t nb = g.have_gpu || g.kv_cache_memory > 0
                           ? wk.budget.available.value() / g.page.bytes / wk.group_size
                           : g.blocks_per_request;
    num_blocks = std::min(num_blocks, nb);
  }
  return num_blocks == INT64_MAX ? 0 : num_blocks;
}

int64_t ShownBlocks(const Engine& g, const std::optional<StartupFailure>& failure,
                    int64_t num_blocks) {
  if (failure && failure->kind != "free_memory_below_request") {
    return std::max(num_blocks, g.blocks_per_request);
  }
  return num_blocks;
}

std::string FailureNote(const Engine& g, const StartupFailure& f, bool kv_shown_needed) {
  return fmt::format("vLLM would not start: {}{}", f.message,
                     kv_shown_needed
                         ? fmt::format(" (kv_cache above is what one {}-token request needs, not "
                                       "what is left)",
                                       g.max_model_len)
                         : "");
}

namespace {

// A pool with recurrent layers: num_blocks blocks of `pools` pages, taken
// by attention groups and state groups alike from one block pool. Split as
// vLLM fills it with max_model_len requests: C = num_blocks //
// blocks_per_request whole requests, each holding its attention blocks and
// one (padded) state page per state group, and the blocks no whole request
// takes. Bytes.
Component StatePoolComponent(const Engine& g, int64_t num_blocks, int64_t pools) {
  int64_t attn_blocks = 0, state_groups = 0;
  for (const KvGroup& kg : g.groups) {
    if (kg.type.kind == CacheKind::kState) {
      ++state_groups;
    } else {
      attn_blocks += BlocksPerRequest(kg.type, g.max_model_len, g.mnbt, g.block_size);
    }
  }
  const int64_t reqs = num_blocks / g.blocks_per_request;
  const Bytes block = Bytes(CheckedMul(g.page.bytes, pools));  // one block, all pools
  std::vector<Component> parts;
  if (attn_blocks > 0) {
    parts.push_back(Leaf("attention KV", block * CheckedMul(reqs, attn_blocks),
                         Formula("{} req x {} blocks x {} tok x {} pools x {} B/tok/layer", reqs,
                                 attn_blocks, g.block_size, pools,
                                 g.page.bytes / std::max<int64_t>(1, g.block_size))));
  }
  const int64_t pages = CheckedMul(CheckedMul(reqs, state_groups), pools);
  const Bytes state = Bytes(CheckedMul(pages, g.state.bytes));
  const Bytes pad = Bytes(CheckedMul(pages, g.page.bytes - g.state.bytes));
  std::vector<Component> st;
  st.push_back(Leaf("state", state,
                    Formula("{} req x {} groups x {} pools x ({} conv x {} B + {} ssm x {} B)",
                            reqs, state_groups, pools, g.state.conv, g.state.conv_bytes,
                            g.state.ssm, g.state.ssm_bytes)));
  if (pad.value() > 0) {
    st.push_back(Leaf("page padding", pad,
                      Formula("{} pages x ({} - {}) B", pages, g.page.bytes, g.state.bytes)));
  }
  parts.push_back(Parent("recurrent state", std::move(st)));
  const int64_t spare = num_blocks - CheckedMul(reqs, g.blocks_per_request);
  if (spare > 0) {
    parts.push_back(Leaf("[blocks beyond whole requests]", block * spare,
                         Formula("{} blocks x {} pools x {} B", spare, pools, g.page.bytes)));
  }
  return Parent("kv_cache", std::move(parts),
                Formula("{} blocks x {} pools x {} B pages", num_blocks, pools, g.page.bytes));
}

// The allocated KV tensors: num_blocks blocks in each of `pools` pools;
// K and V per layer, or the MLA latent. Bytes.
Component KvCacheComponent(const ModelSpec& s, const Engine& g, int64_t num_blocks, int64_t pools) {
  if (g.has_state) return StatePoolComponent(g, num_blocks, pools);
  const int64_t slots = CheckedMul(num_blocks, pools);  // blocks x pools
  const int64_t bs = g.block_size;
  const KvPage& p = g.page;
  std::vector<Component> kvc;
  const std::string shape =
      Formula("{} blocks x {} tok x {} pool{}", num_blocks, bs, pools, pools == 1 ? "" : "s");
  if (g.mla) {
    kvc.push_back(Leaf("latent", Bytes(CheckedMul(CheckedMul(slots, bs), p.k_width)) * p.elem_bytes,
                       Formula("{} x {} x {} B", shape, p.k_width, p.elem_bytes)));
  } else if (slots > 0) {
    kvc.push_back(
        Leaf("K", Bytes(CheckedMul(CheckedMul(slots, bs), p.k_width)) * p.elem_bytes,
             Formula("{} x {} kv heads x {} x {} B", shape, p.kv_heads, s.head_dim, p.elem_bytes)));
    kvc.push_back(Leaf(
        "V", Bytes(CheckedMul(CheckedMul(slots, bs), p.v_width)) * p.elem_bytes,
        Formula("{} x {} kv heads x {} x {} B", shape, p.kv_heads, s.v_head_dim, p.elem_bytes)));
  }
  return Parent("kv_cache", std::move(kvc));
}

// Memory taken before vLLM's snapshot: the CUDA context, and the NCCL
// communicators on NVLink with world > 1.
Component ContextComponent(bool nccl_before) {
  std::vector<Component> ctx;
  ctx.push_back(Leaf("CUDA context", MiB(kCudaContextMiB), "before vLLM's memory snapshot"));
  if (nccl_before) {
    ctx.push_back(
        Leaf("NCCL communicators", MiB(kNcclInitMiB), "NVLink; set up before the snapshot"));
  }
  return Parent("cuda_context", std::move(ctx));
}

}  // namespace

DeviceEstimate DeviceOf(const ModelSpec& s, const Engine& g, Worker wk, int64_t num_blocks) {
  DeviceEstimate d = std::move(wk.d);
  const std::vector<int64_t>& sizes = g.capture_sizes;
  std::vector<Component> comps;
  comps.push_back(std::move(wk.comps[0]));  // weights
  comps.push_back(KvCacheComponent(s, g, num_blocks, wk.group_size));
  comps.push_back(std::move(wk.comps[1]));  // activations
  const Bytes kv_bytes = comps[1].bytes;
  comps.push_back(Leaf("cuda_graphs", wk.graphs,
                       g.eager ? "--enforce-eager: none"
                               : Formula("{} sizes up to {}, captured after the KV cache",
                                         sizes.size(), sizes.empty() ? 0 : sizes.back())));
  comps.push_back(std::move(wk.comps[2]));  // non_torch
  comps.push_back(ContextComponent(g.nccl_before));
  // torch.cuda.max_memory_allocated: the sampler warm-up after the KV
  // cache is allocated repeats the profile's sampler peak.
  d.allocated_peak = wk.weights + kv_bytes + wk.act;
  d.reserved_peak = *d.allocated_peak + wk.graphs;  // graph pool segments
  d.total = *d.reserved_peak + wk.non_torch + g.context;
  d.components = std::move(comps);
  return d;
}

// --- Echo, launch flags, notes.

Echo WorkloadEcho(const InferenceWorkload& w) {
  const VllmKnobs& k = w.vllm;
  Echo echo = {
      {"runtime", std::string("vllm")},
      {"vllm", std::string(kVllmVersion)},
      {"dtype", std::string(Name(w.dtype))},
      {"quant", w.quant.Name()},
      {"kv_dtype", std::string(Name(w.kv_dtype))},
      {"gpu_memory_utilization", *k.gpu_memory_utilization},
      {"max_model_len", *k.max_model_len},
      {"max_num_seqs", *k.max_num_seqs},
      {"max_num_batched_tokens", *k.max_num_batched_tokens},
      {"block_size", *k.block_size},
      {"enforce_eager", k.enforce_eager},
      {"tp", w.tp},
      {"pp", w.pp},
  };
  if (k.kv_cache_memory) echo.push_back({"kv_cache_memory", *k.kv_cache_memory});
  return echo;
}

std::vector<std::string> LaunchFlags(const ModelSpec& spec, const InferenceWorkload& w,
                                     const DeviceSet& devices) {
  const VllmKnobs& k = w.vllm;
  std::vector<std::string> f;
  f.push_back(fmt::format("--max-model-len {}", *k.max_model_len));
  f.push_back(
      fmt::format("--gpu-memory-utilization {}", *k.gpu_memory_utilization));  // as typed: 0.9
  f.push_back(fmt::format("--max-num-seqs {}", *k.max_num_seqs));
  f.push_back(fmt::format("--max-num-batched-tokens {}", *k.max_num_batched_tokens));
  if (w.tp > 1) f.push_back(fmt::format("-tp {}", w.tp));
  if (w.pp > 1) f.push_back(fmt::format("-pp {}", w.pp));
  // --dtype only where it differs from what vLLM's auto would pick.
  if (w.dtype != VllmAutoDtype(spec, devices)) {
    f.push_back(fmt::format("--dtype {}", VllmDtypeName(w.dtype)));
  }
  if (w.kv_dtype == DType::kF8E4M3) f.push_back("--kv-cache-dtype fp8");
  if (w.kv_dtype == DType::kF8E5M2) f.push_back("--kv-cache-dtype fp8_e5m2");
  // --block-size only where it differs from what vLLM would pick.
  if (*k.block_size != DefaultBlockSize(spec, devices).size) {
    f.push_back(fmt::format("--block-size {}", *k.block_size));
  }
  if (k.enforce_eager) f.push_back("--enforce-eager");
  if (k.kv_cache_memory) f.push_back(fmt::format("--kv-cache-memory-bytes {}", *k.kv_cache_memory));
  if (k.mamba_cache_dtype) f.push_back("--mamba-cache-dtype float32");
  if (k.mamba_ssm_cache_dtype) f.push_back("--mamba-ssm-cache-dtype float32");
  if (!w.quant_from_checkpoint && w.quant.method == QuantMethod::kFp8) {
    f.push_back("--quantization fp8");
  }
  return f;
}

namespace {

// What is modelled, the GPU total and vLLM's log lines; without a GPU, the
// smallest GPU total the pool shown needs.
void BudgetNotes(const Engine& g, const DeviceSet& devices, const Estimate& e, int64_t num_blocks,
                 std::vector<std::string>* notes) {
  notes->push_back(fmt::format(
      "modelled: vLLM {} V1 engine as `vllm serve` starts it: KV pool = total x {} - weights - "
      "non-torch - profile-run peak; CUDA graphs are captured afterwards, in the headroom",
      kVllmVersion, g.util));
  if (!g.have_gpu) {
    Bytes need;
    for (const DeviceEstimate& d : e.devices) {
      need = std::max(need, d.total - g.context - Find(d.components, "cuda_graphs")->bytes);
    }
    const double gpu_total = std::ceil(static_cast<double>(need.value()) / g.util);
    notes->push_back(fmt::format(
        "no --gpu: the KV pool shown is the smallest vLLM starts with (one {}-token request); on a "
        "GPU it takes all of total x util, so a GPU needs at least {} GiB of total memory at "
        "util {}",
        g.max_model_len, Gib(Bytes(static_cast<int64_t>(gpu_total))), g.util));
    return;
  }
  const GpuSpec& gpu = devices.gpus[0];
  notes->push_back(
      gpu.cuda_total.value() > 0
          ? fmt::format("GPU total memory {} GiB as torch.cuda.mem_get_info reports it on {} "
                        "(catalog cuda_total)",
                        Gib(gpu.cuda_total), gpu.name)
          : fmt::format("GPU total memory {} GiB = {} capacity less a {} MiB driver reserve "
                        "(catalog has no cudaMemGetInfo total)",
                        Gib(GpuTotal(gpu)), gpu.name,
                        gpu.vendor == "nvidia" ? kDriverReserveMiB : 0));
  const double concurrency =
      static_cast<double>(num_blocks) / static_cast<double>(g.blocks_per_request);
  if (!e.failure) {
    notes->push_back(fmt::format(
        "vLLM logs: GPU KV cache size: {} tokens; Maximum concurrency for {} tokens per "
        "request: {:.2f}x",
        Thousands(*e.kv_capacity_tokens), Thousands(g.max_model_len), concurrency));
  }
  notes->push_back(
      "vLLM fills memory up to --gpu-mem-util whatever the load; it fits when the KV pool holds "
      "one --max-model-len request, and total is what nvidia-smi then shows");
}

// Percent with two decimals, as vLLM logs the padding ("%.2f%%").
std::string Pct(int64_t part, int64_t whole) {
  return fmt::format("{:.2f}", 100.0 * static_cast<double>(part) / static_cast<double>(whole));
}

// The recurrent state, the page-size unification and the groups of a model
// with recurrent layers.
void StateNotes(const ModelSpec& s, const InferenceWorkload& w, const Engine& g,
                std::vector<std::string>* notes) {
  const StatePage& st = g.state;
  const char* kind = RecurrentName(ModelRecurrentKind(s));
  const StateDTypes sd = StateDTypesOf(w);
  notes->push_back(fmt::format(
      "recurrent state: one {} layer keeps {} conv elements at {} and {} SSM elements at {} per "
      "sequence{} (mamba_cache_dtype {}, mamba_ssm_cache_dtype {}) = {} B, one MambaSpec page; it "
      "does not grow with the context",
      kind, st.conv, Name(sd.conv), st.ssm, Name(sd.ssm),
      g.tp > 1 ? fmt::format(" on each of {} ranks", g.tp) : "",
      w.vllm.mamba_cache_dtype ? "float32" : "auto = the model dtype",
      w.vllm.mamba_ssm_cache_dtype ? "float32" : "auto = the conv dtype", Thousands(st.bytes)));
  int64_t state_groups = 0;
  for (const KvGroup& kg : g.groups) state_groups += kg.type.kind == CacheKind::kState ? 1 : 0;
  const int64_t n = static_cast<int64_t>(g.groups.size());
  const int64_t pools = StageGroupSize(g.groups, {0, s.num_hidden_layers});
  if (g.attention_free) {
    notes->push_back(fmt::format(
        "attention-free model (MambaModelConfig): {} group of {} layers, one state page per "
        "sequence; vLLM counts each block as max_model_len = {} tokens, so GPU KV cache size = "
        "num_blocks x {} and max concurrency = num_blocks",
        n, pools, g.max_model_len, g.max_model_len));
    return;
  }
  const int64_t one = g.page.bytes / g.block_size;
  std::string raised =
      g.block_size != g.given_block_size
          ? fmt::format("raises the attention block size from {} to {} tokens (16 x cdiv({}, 16 "
                        "x {} B per token))",
                        g.given_block_size, g.block_size, st.bytes, one)
          : fmt::format("keeps block size {} (>= the {} tokens a state page needs)",
                        g.block_size, HybridBlockSize(st.bytes, one));
  notes->push_back(fmt::format(
      "hybrid page size (HybridAttentionMambaModelConfig): vLLM {} so that an attention page "
      "({} B) holds a state page, and pads each state page by {}% to the same size; {} groups "
      "({} attention, {} {}) of {} layers share {} pools of one block pool; a {}-token request "
      "takes {} attention blocks + {} state blocks (one per state group) = {}; GPU KV cache "
      "size = num_blocks // {} groups x {} tokens, below the tokens the admitted requests hold "
      "(concurrency x max_model_len)",
      raised, Thousands(g.page.bytes), Pct(g.page.bytes - st.bytes, st.bytes), n,
      n - state_groups, state_groups, kind, pools, pools, g.max_model_len,
      g.blocks_per_request - state_groups, state_groups, g.blocks_per_request, n, g.token_block));
  if (s.model_type == "qwen3_next") {
    notes->push_back(
        "the RoPE cache is counted at head_dim; Qwen3-Next rotates a quarter of it "
        "(partial_rotary_factor 0.25 is not read), so weights read up to 96 MiB high");
  }
}

// The defaults taken and what is particular to the model and the layout.
void SettingsNotes(const ModelSpec& s, const InferenceWorkload& w, const DeviceSet& devices,
                   const Engine& g, std::vector<std::string>* notes) {
  const ServeDefaults d = ServeDefaultsFor(devices);
  // A knob equal to vLLM's default is taken as the default (the workload
  // does not say whether it was typed).
  if (g.max_num_seqs == d.max_num_seqs ||
      g.mnbt == DefaultBatchedTokens(d, g.max_num_seqs, g.max_model_len)) {
    notes->push_back(fmt::format(
        "max_num_seqs {} and max_num_batched_tokens {} are `vllm serve`'s defaults for {} (the LLM "
        "class uses {} / {})",
        g.max_num_seqs, g.mnbt, d.big ? "GPUs with >= 70 GiB other than A100" : "this GPU",
        d.big ? kLlmSeqsBig : kLlmSeqs, d.big ? kLlmTokensBig : kLlmTokens));
  }
  if (g.has_state) {
    StateNotes(s, w, g, notes);
  } else if (g.groups.size() > 1) {
    const int64_t pools = StageGroupSize(g.groups, {0, s.num_hidden_layers});
    notes->push_back(fmt::format(
        "hybrid KV cache: {} groups of {} layers share {} pools; a request takes {} blocks "
        "(sliding-window groups hold window - 1 + max_num_batched_tokens tokens), and the "
        "logged token count is num_blocks // groups x block_size",
        g.groups.size(), pools, pools, g.blocks_per_request));
  }
  const BlockDefault block = DefaultBlockSize(s, devices);
  if (!block.note.empty() && g.block_size == block.size) notes->push_back(block.note);
  if (g.mla) {
    notes->push_back(
        "MLA: one latent of kv_lora_rank + qk_rope_head_dim per token and layer, replicated on "
        "every TP rank");
  }
  if (!g.mla && g.tp > s.num_key_value_heads && s.num_key_value_heads > 0) {
    notes->push_back(fmt::format("{} KV heads over tp {}: each rank keeps a replica of one KV head",
                                 s.num_key_value_heads, g.tp));
  }
  if (w.batch != 1) {
    notes->push_back(
        "--batch does not apply to vLLM; the pool's concurrency is reported instead (set "
        "--max-num-seqs to cap running requests)");
  }
  if (g.stages > 1 && s.tie_word_embeddings) {
    notes->push_back("tied embeddings with --pp: the last stage's lm_head copy is not counted");
  }
}

}  // namespace

std::vector<std::string> Notes(const ModelSpec& spec, const InferenceWorkload& w,
                               const DeviceSet& devices, const Engine& g, const Estimate& e,
                               int64_t num_blocks) {
  std::vector<std::string> notes;
  if (g.kv_cache_memory > 0) {
    notes.push_back(fmt::format(
        "--kv-cache-memory {}: each worker's KV pool is that many bytes ({} GiB), as vLLM reserves it "
        "without its profiled budget; --gpu-mem-util {} no longer sizes the pool and does not cap the total",
        g.kv_cache_memory, Gib(Bytes(g.kv_cache_memory)), PyFloat(g.util)));
  }
  BudgetNotes(g, devices, e, num_blocks, &notes);
  SettingsNotes(spec, w, devices, g, &notes);
  return notes;
}

}  // namespace vllm

DType VllmAutoDtype(const ModelSpec& spec, const DeviceSet& devices) {
  if (spec.torch_dtype != DType::kF32) return spec.torch_dtype;
  // platforms/cuda.py supported_dtypes: [bf16, fp16, fp32] from sm80,
  // [fp16, fp32] below; _resolve_auto_dtype takes the first one the model
  // type allows (_FLOAT16_NOT_SUPPORTED_MODELS) for fp32 checkpoints.
  bool bf16_ok = true;
  for (const GpuSpec& g : devices.gpus) {
    if (vllm::BelowSm80(g)) bf16_ok = false;
  }
  if (bf16_ok) return DType::kBF16;
  const std::string& mt = spec.model_type;
  const bool no_fp16 =
      mt == "gemma2" || mt == "gemma3" || mt == "gemma3_text" || mt == "plamo2" || mt == "glm4";
  return no_fp16 ? DType::kF32 : DType::kF16;
}

Status EstimateVllm(const Model& model, const InferenceWorkload& w, const DeviceSet& devices,
                    Estimate& e) {
  const ModelSpec& s = model.spec;
  if (!vllm::AllResolved(w.vllm)) {
    return Error{ErrorKind::kInternal,
                 "vllm: the workload's vLLM settings were not resolved (RuntimeProfile::Resolve)"};
  }
  const vllm::Engine g = vllm::EngineOf(s, w, devices);
  e.kv_bytes_per_token = KvBytesPerToken(s, w.kv_dtype, KvLayout::kLatent);
  e.weight_bytes = Bytes(0);
  for (size_t gi = 0; gi < model.inventory.groups.size(); ++gi) {
    e.weight_bytes += GroupBytes(model.inventory.groups[gi], gi, w.quant, w.dtype);
  }

  // Everything but the KV cache per worker, vLLM's start-up checks, then
  // the pool: the minimum over workers.
  std::vector<vllm::Worker> workers;
  for (int64_t stage = 0; stage < g.stages; ++stage) {
    for (int64_t rank = 0; rank < g.tp; ++rank) {
      workers.push_back(vllm::BuildWorker(model, w, devices, g, stage, rank));
    }
  }
  // A start-up failure is an estimate that does not fit: the pool is what
  // is left (0 when nothing is), and the breakdown shows the KV cache vLLM
  // would need, one max_model_len request, instead (vllm::FailedPoolBlocks).
  e.failure = vllm::StartupFailureOf(g, workers);
  const int64_t num_blocks = std::max<int64_t>(0, vllm::PoolBlocks(g, workers));
  const int64_t shown_blocks = vllm::ShownBlocks(g, e.failure, num_blocks);
  for (vllm::Worker& wk : workers) {
    e.devices.push_back(vllm::DeviceOf(s, g, std::move(wk), shown_blocks));
  }
  // Every worker holds KV layers, so the pool is never empty on success.
  if (e.devices.empty() || (!e.failure && num_blocks <= 0)) {
    return Error{ErrorKind::kInternal,
                 fmt::format("vllm: no KV cache pool was sized ({} workers, {} blocks)",
                             e.devices.size(), num_blocks)};
  }

  // What vLLM logs: "GPU KV cache size: N tokens" (num_blocks // groups x
  // block_size) and "Maximum concurrency ... : x.xx x".
  const int64_t n_groups = static_cast<int64_t>(g.groups.size());
  e.kv_capacity_tokens = CheckedMul(num_blocks / std::max<int64_t>(1, n_groups), g.token_block);
  if (g.has_state) {
    const vllm::StateDTypes sd = vllm::StateDTypesOf(w);
    e.state_bytes_per_sequence = StateBytesPerSequence(s, sd.conv, sd.ssm, ConvWindow::kKernelMinus1);
  }
  e.kv_max_concurrency = num_blocks / g.blocks_per_request;
  e.workload = vllm::WorkloadEcho(w);
  for (auto& [key, value] : e.workload) {
    if (key == "block_size") value = g.block_size;  // after the hybrid raise
  }
  if (g.has_state) {
    const vllm::StateDTypes sd = vllm::StateDTypesOf(w);
    e.workload.emplace_back("mamba_cache_dtype", std::string(Name(sd.conv)));
    e.workload.emplace_back("mamba_ssm_cache_dtype", std::string(Name(sd.ssm)));
  }
  e.launch_flags = vllm::LaunchFlags(s, w, devices);
  if (e.failure) e.notes.push_back(vllm::FailureNote(g, *e.failure, num_blocks != shown_blocks));
  for (std::string& n : vllm::Notes(s, w, devices, g, e, num_blocks)) {
    e.notes.push_back(std::move(n));
  }
  return {};
}

// --- The profile.
namespace {

class VllmRuntime final : public RuntimeProfile {
 public:
  Runtime id() const override { return Runtime::kVllm; }

  std::span<const std::string_view> Settings() const override {
    static constexpr std::string_view kSettings[] = {"gpu-mem-util", "max-model-len",
                                                     "max-num-seqs", "max-num-batched-tokens",
                                                     "block-size",   "enforce-eager",
                                                     "kv-cache-memory",
                                                     "mamba-cache-dtype", "mamba-ssm-cache-dtype"};
    return kSettings;
  }

  // The dtype downcast, --ctx as max_model_len, one GPU unless split, then
  // every check vLLM makes before memory (vllm::CheckEngineSettings) and
  // every knob's default (vllm::ResolveKnobs). A layout that
  // ResolveInference refuses right after this returns early, unresolved,
  // so that its error comes first as it always has.
  Status Resolve(const Model& model, const InferenceSettings& s, const DeviceSet& devices,
                 InferenceWorkload* w, std::vector<std::string>* notes) const override {
    if (model.spec.topology != Topology::kDecoder) {
      return Unsupported(fmt::format("--runtime {}: {} is an {} model; vLLM runs them through its pooling / encoder-decoder runners, "
                                     "whose memory vramfit does not model; use --runtime hf",
                                     RuntimeName(id()),
                                     model.spec.id, TopologyName(model.spec.topology)));
    }
    VRAMFIT_TRY(vllm::CheckStateLayout(model.spec, w->tp));
    if (IsTorchao(w->quant.method)) {
      return InvalidArgument(fmt::format(
          "--quant {}: torchao formats are modelled for --runtime hf (transformers TorchAoConfig), not vllm",
          w->quant.Name()));
    }
    if (w->quant.method == QuantMethod::kInt8Scaled && w->quant.zero_point) {
      return Unsupported(
          "--runtime vllm: asymmetric int8 weights (weight_zero_point) are not loaded by vLLM's "
          "CompressedTensorsW8A8Int8, which takes symmetric weights");
    }
    if ((w->quant.method == QuantMethod::kInt8Scaled || w->quant.method == QuantMethod::kFp8) &&
        w->quant.scale_per_row && w->quant.scale_dtype != DType::kF32) {
      // ChannelQuantScaleParameter is fp32 whatever the checkpoint stores
      // (compressed_tensors_w8a8_int8.py / _fp8.py create_weights).
      w->quant.scale_dtype = DType::kF32;
      if (notes && !model.file_tensors.empty()) {
        notes->push_back("vLLM holds per-channel weight scales in fp32; the checkpoint's 16-bit scales are "
                         "counted as stored");
      }
    }
    if (!s.dtype && w->dtype == DType::kF32) {
      // vLLM's dtype "auto" downcasts fp32 checkpoints.
      w->dtype = VllmAutoDtype(model.spec, devices);
      if (!s.kv_dtype) w->kv_dtype = w->dtype;
      if (notes && w->dtype != DType::kF32) {
        notes->push_back(fmt::format("the checkpoint is fp32: vLLM's dtype auto downcasts it to {}",
                                     Name(w->dtype)));
      }
    }
    // vLLM holds --ctx (or --prompt + --new) tokens per request when sized
    // by --max-model-len.
    if (!w->vllm.max_model_len && (s.ctx || s.ctx_from_model || s.prompt || s.new_tokens)) {
      w->vllm.max_model_len = w->ctx;
    }
    const int64_t n = static_cast<int64_t>(devices.size());
    if (s.tp == 1 && s.pp == 1 && n > 1) {
      // vLLM runs on one GPU unless told how to split the model.
      return InvalidArgument(fmt::format(
          "--gpu: {} GPUs given; vLLM uses one unless --tp/--pp say how to split the model "
          "(e.g. --tp {})",
          n, n));
    }
    // A layout ResolveInference refuses next: its error, not a vLLM one.
    if (vllm::LayoutRefusedNext(model.spec, *w)) return {};
    VRAMFIT_TRY(vllm::CheckEngineSettings(model.spec, *w, devices));
    return vllm::ResolveKnobs(model.spec, devices, &w->vllm);
  }

  Status Estimate(const Model& model, const InferenceWorkload& w, const DeviceSet& devices,
                  vramfit::Estimate& e) const override {
    return EstimateVllm(model, w, devices, e);
  }

  void SetContext(InferenceSettings& s, int64_t tokens) const override {
    RuntimeProfile::SetContext(s, tokens);
    s.vllm.max_model_len = tokens;
  }
  std::string ContextFlag() const override { return "max-model-len"; }
  std::vector<std::string> LaunchCommand(const Model& model) const override {
    return {"vllm", "serve", model.spec.id};
  }
  int64_t ContextOf(const InferenceWorkload& w) const override {
    return w.vllm.max_model_len.value_or(w.ctx);
  }
  bool SizesKvPool() const override { return true; }
  std::vector<std::string> QuantLadder() const override {
    return {"none", "fp8", "gptq-int8", "awq-int4", "gptq-int4"};
  }
  std::vector<std::string> FixQuants() const override { return {"fp8", "awq-int4"}; }
  std::vector<std::string> KvLadder() const override { return {"fp8"}; }
  int64_t PreferredTp(const Model& model, int64_t n) const override {
    // Tensor parallel within up to 8 GPUs, pipeline stages beyond.
    const int64_t heads = model.spec.num_attention_heads;
    for (int64_t tp = std::min<int64_t>(n, 8); tp >= 1; --tp) {
      if (n % tp == 0 && heads % tp == 0) return tp;
    }
    return 1;
  }
};

}  // namespace

const RuntimeProfile& VllmProfile() {
  static const VllmRuntime kProfile;
  return kProfile;
}

}  // namespace vramfit::runtimes
