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
// CUDA graphs are captured after the KV cache exists (compile_or_warm_up_model),
// in the 1 - util headroom, so they do not shrink the pool. What nvidia-smi
// shows is the CUDA context + weights + kv_cache + the re-reserved sampler
// warm-up peak + non-torch memory + the graph pool ~= context + util x total
// + graphs.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "../formula.h"
#include "profile.h"
#include "runtimes.h"

namespace vramfit::runtimes {
namespace {

// The release whose behaviour is modelled (echoed as "vllm").
constexpr const char* kVllmVersion = "0.11";

// CacheConfig.gpu_memory_utilization default (vllm/config/cache.py).
constexpr double kDefaultUtil = 0.9;
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

std::string Gib(Bytes b) {
  return fmt::format("{:.2f}", static_cast<double>(b.value()) / static_cast<double>(kGiB));
}

// Python's round(x, 2) printed with repr (vLLM's free-memory message).
std::string PyRound2(double x) { return PyFloat(std::round(x * 100.0) / 100.0); }

// 32768 -> "32,768" (vLLM's concurrency log line).
std::string Thousands(int64_t n) {
  std::string s = std::to_string(n);
  for (int64_t i = static_cast<int64_t>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

// What one layer caches, as vLLM's KVCacheSpec says (v1/kv_cache_interface.py).
struct LayerType {
  int64_t window = 0;  // 0: FullAttentionSpec / MLAAttentionSpec; else SlidingWindowSpec
  bool operator<(const LayerType& o) const { return window < o.window; }
  bool operator==(const LayerType& o) const { return window == o.window; }
};

// One KV cache group: layers of one type that share a block table.
struct KvGroup {
  LayerType type;
  std::vector<int64_t> layers;
};

// get_kv_cache_groups: one group when every layer has the same spec;
// otherwise _get_kv_cache_groups_uniform_page_size: group_size = the
// fewest layers of a type (the most, when that is < 1.5 x the fewest), each
// type cut into cdiv(n, group_size) groups taking layers[i::num_groups].
std::vector<KvGroup> BuildGroups(const std::vector<LayerType>& types) {
  std::vector<LayerType> order;
  std::map<LayerType, std::vector<int64_t>> by_type;
  for (size_t i = 0; i < types.size(); ++i) {
    if (by_type.find(types[i]) == by_type.end()) order.push_back(types[i]);
    by_type[types[i]].push_back(static_cast<int64_t>(i));
  }
  std::vector<KvGroup> groups;
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
      for (size_t j = static_cast<size_t>(g); j < l.size(); j += static_cast<size_t>(n)) kg.layers.push_back(l[j]);
      groups.push_back(std::move(kg));
    }
  }
  return groups;
}

// Blocks one request of max_model_len tokens needs in a group of this type
// (spec.max_memory_usage_bytes / page_size_bytes):
//   full:    cdiv(max_model_len, bs)
//   sliding: cdiv(min(window - 1 + max_num_batched_tokens, max_model_len), bs) + 1
int64_t BlocksPerRequest(LayerType t, int64_t max_len, int64_t mnbt, int64_t bs) {
  if (t.window == 0) return CeilDiv(max_len, bs);
  return CeilDiv(std::min(CheckedAdd(t.window - 1, mnbt), max_len), bs) + 1;
}

int64_t SumBlocks(const std::vector<KvGroup>& groups, int64_t max_len, int64_t mnbt, int64_t bs) {
  int64_t n = 0;
  for (const KvGroup& g : groups) n = CheckedAdd(n, BlocksPerRequest(g.type, max_len, mnbt, bs));
  return n;
}

// Layers of each group on one pipeline stage; group_size there is the
// largest (_project_kv_cache_groups_to_worker, get_kv_cache_config_from_groups).
int64_t StageGroupSize(const std::vector<KvGroup>& groups, LayerRange range) {
  int64_t size = 0;
  for (const KvGroup& g : groups) {
    int64_t n = 0;
    for (int64_t l : g.layers) n += (l >= range.first && l < range.last) ? 1 : 0;
    size = std::max(size, n);
  }
  return size;
}

// The profile run's forward pass (gpu_model_runner._dummy_run with
// max_num_batched_tokens tokens): the residual stream plus the largest
// layer's live temporaries. Returns the parts as leaves.
std::vector<Component> ForwardPeak(const ModelSpec& s, LayerRange range, int64_t T, int64_t tp,
                                   int64_t dt) {
  std::vector<Component> parts;
  if (range.size() == 0) return parts;
  const int64_t h = s.hidden_size;
  parts.push_back(Leaf("residual + hidden", Bytes(CheckedMul(CheckedMul(2, T), h)) * dt,
                       Formula("2 x {} tok x {} x {} B", T, h, dt)));
  const int64_t heads = CeilDiv(s.num_attention_heads, tp);
  int64_t attn_w;
  if (s.attn_kind == AttnKind::kMla) {
    // q, the latent, kv_b_proj's per-head K_nope and V, K with RoPE, output.
    const int64_t qk = s.qk_nope_head_dim + s.qk_rope_head_dim;
    attn_w = heads * qk + (s.kv_lora_rank + s.qk_rope_head_dim) +
             heads * (s.qk_nope_head_dim + s.v_head_dim) + heads * qk + heads * s.v_head_dim;
  } else {
    const int64_t kvh = std::max<int64_t>(1, s.num_key_value_heads / tp);
    attn_w = heads * s.head_dim + kvh * (s.head_dim + s.v_head_dim) + heads * s.v_head_dim;
  }
  const Bytes attn = Bytes(CheckedMul(T, attn_w)) * dt;
  bool any_dense = false, any_moe = false;
  for (int64_t i = range.first; i < range.last; ++i) (s.layers[i].moe ? any_moe : any_dense) = true;
  Bytes mlp;
  std::string mlp_name = "mlp", mlp_formula;
  if (any_dense && s.intermediate_size > 0) {
    const int64_t inter = CeilDiv(s.intermediate_size, tp);
    const int64_t width = s.mlp_kind == MlpKind::kPlain ? 2 : 3;  // gate_up + act, or fc1 + act
    mlp = Bytes(CheckedMul(T, width * inter)) * dt;
    mlp_formula = Formula("{} tok x {} x {} inter x {} B", T, width, inter, dt);
  }
  if (any_moe) {
    // fused_experts: intermediate_cache1/3 share one buffer of
    // max(2N, hidden) per (token, expert), cache2 holds N; the router
    // logits and their fp32 top-k softmax; the shared experts' MLP.
    const int64_t tc = std::min(T, kMoeChunkTokens);
    const int64_t n = CeilDiv(s.moe_intermediate_size, tp);
    const int64_t k = s.num_experts_per_tok;
    const int64_t shared = CeilDiv(s.shared_expert_intermediate_size, tp);
    const Bytes moe = Bytes(CheckedMul(CheckedMul(tc, k), std::max(2 * n, h) + n)) * dt +
                      Bytes(CheckedMul(T, s.num_experts)) * (dt + 4) +
                      Bytes(CheckedMul(T, 3 * shared)) * dt;
    if (moe > mlp) {
      mlp = moe;
      mlp_name = "moe";
      mlp_formula = Formula("{} tok x {} experts x ({} + {}) x {} B + router + shared", tc, k,
                                std::max(2 * n, h), n, dt);
    }
  }
  if (attn >= mlp) {
    parts.push_back(Leaf("attention", attn, Formula("{} tok x {} x {} B", T, attn_w, dt)));
  } else {
    parts.push_back(Leaf(mlp_name, mlp, mlp_formula));
  }
  return parts;
}

// The sampler warm-up of the profile run (gpu_model_runner._dummy_sampler_run
// on one row per dummy request): the lm_head logits in the model dtype
// (vocab padded to 64), Sampler.forward's fp32 copy, and
// TopKTopPSampler.forward_native's logits.sort(): fp32 values + int64
// indices, plus torch.sort's own temporaries (aten/native/cuda/Sort.cu
// launch_stable_sort_kernel: >= 128 rows use segmented_sort_pairs, an int64
// index buffer + cub's O(N) key/value double buffer = 20 B per element;
// 2..127 rows use segmented_sort_pairs_by_full_sort, two int2 buffers +
// a keys buffer + cub's double buffer = 32 B).
std::vector<Component> SamplerPeak(const ModelSpec& s, int64_t T, int64_t rows, int64_t dt) {
  std::vector<Component> parts;
  const int64_t h = s.hidden_size;
  const int64_t v = s.vocab_size;
  const int64_t cells = CheckedMul(rows, v);
  parts.push_back(Leaf("hidden states", Bytes(CheckedMul(T + 2 * rows, h)) * dt,
                       Formula("({} tok + 2 x {} rows) x {} x {} B", T, rows, h, dt)));
  parts.push_back(Leaf("logits", Bytes(CheckedMul(rows, RoundUp(v, 64))) * dt,
                       Formula("{} rows x {} vocab x {} B", rows, RoundUp(v, 64), dt)));
  if (dt != 4) parts.push_back(Leaf("fp32 logits", Bytes(cells) * 4, Formula("{} x {} x 4 B", rows, v)));
  parts.push_back(Leaf("sorted logits + indices", Bytes(cells) * 12, Formula("{} x {} x (4 + 8) B", rows, v)));
  const int64_t temp = (rows >= 2 && rows < 128) ? 32 : 20;
  parts.push_back(Leaf("sort temporaries", Bytes(cells) * temp, Formula("{} x {} x {} B", rows, v, temp)));
  return parts;
}

// Sizes vLLM captures: [1, 2, 4] + range(8, 256, 8) + range(256, max + 1, 16),
// up to min(2 x max_num_seqs, 512, max_num_batched_tokens).
std::vector<int64_t> CaptureSizes(int64_t max_num_seqs, int64_t mnbt) {
  const int64_t cap = std::min({2 * max_num_seqs, kMaxCaptureSize, mnbt});
  std::vector<int64_t> sizes;
  for (int64_t x : {1, 2, 4}) sizes.push_back(x);
  for (int64_t x = 8; x < 256; x += 8) sizes.push_back(x);
  for (int64_t x = 256; x <= kMaxCaptureSize; x += 16) sizes.push_back(x);
  sizes.erase(std::remove_if(sizes.begin(), sizes.end(), [&](int64_t x) { return x > cap; }), sizes.end());
  return sizes;
}

struct Resolved {
  double util = kDefaultUtil;
  int64_t max_model_len = 0;
  int64_t max_num_seqs = 0;
  int64_t mnbt = 0;
  int64_t block_size = kDefaultBlockSize;
  bool eager = false;
};

Bytes GpuTotal(const GpuSpec& g) {
  if (g.cuda_total.value() > 0) return g.cuda_total;
  if (g.vendor == "nvidia") return g.capacity - MiB(kDriverReserveMiB);
  return g.capacity;
}

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

}  // namespace

DType VllmAutoDtype(const ModelSpec& spec, const DeviceSet& devices) {
  if (spec.torch_dtype != DType::kF32) return spec.torch_dtype;
  // platforms/cuda.py supported_dtypes: [bf16, fp16, fp32] from sm80,
  // [fp16, fp32] below; _resolve_auto_dtype takes the first one the model
  // type allows (_FLOAT16_NOT_SUPPORTED_MODELS) for fp32 checkpoints.
  bool bf16_ok = true;
  for (const GpuSpec& g : devices.gpus) {
    if (g.vendor == "nvidia" && !g.compute_capability.empty() && std::atof(g.compute_capability.c_str()) < 8.0) {
      bf16_ok = false;
    }
  }
  if (bf16_ok) return DType::kBF16;
  const std::string& mt = spec.model_type;
  const bool no_fp16 = mt == "gemma2" || mt == "gemma3" || mt == "gemma3_text" || mt == "plamo2" || mt == "glm4";
  return no_fp16 ? DType::kF32 : DType::kF16;
}

Status EstimateVllm(const Model& model, const InferenceWorkload& w, const DeviceSet& devices,
                    Estimate& e) {
  const ModelSpec& s = model.spec;
  const VllmKnobs& k = w.vllm;
  const int64_t tp = w.tp;
  const int64_t stages = w.pp;
  const bool mla = s.attn_kind == AttnKind::kMla;
  const bool have_gpu = !devices.empty();

  // --- Settings vLLM would refuse.
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
  if (!mla && tp > 1 && s.num_key_value_heads > 0 &&
      (tp >= s.num_key_value_heads ? tp % s.num_key_value_heads : s.num_key_value_heads % tp) != 0) {
    return Invalid(fmt::format("--tp: {} KV heads do not split over {} GPUs (vLLM needs one to divide the other)",
                               s.num_key_value_heads, tp));
  }
  if (have_gpu && w.dtype == DType::kBF16) {
    for (const GpuSpec& g : devices.gpus) {
      if (g.vendor == "nvidia" && !g.compute_capability.empty() &&
          std::atof(g.compute_capability.c_str()) < 8.0) {
        // gpu_worker._check_if_gpu_supports_dtype.
        return Invalid(fmt::format(
            "vllm: Bfloat16 is only supported on GPUs with compute capability of at least 8.0. "
            "Your {} GPU has compute capability {}. You can use float16 instead by explicitly "
            "setting the `dtype` flag in CLI, for example: --dtype=half. [use --dtype fp16]",
            g.name, g.compute_capability));
      }
    }
  }

  // --- Resolve vLLM's defaults.
  Resolved r;
  r.util = k.gpu_memory_utilization.value_or(kDefaultUtil);
  r.eager = k.enforce_eager;
  const int64_t derived_len = s.max_position_embeddings > 0 ? s.max_position_embeddings : 2048;
  if (k.max_model_len) {
    if (*k.max_model_len < 1 || *k.max_model_len > kMaxTokens) {
      return Invalid(fmt::format("--max-model-len: {} is out of range (1..{})", *k.max_model_len, kMaxTokens));
    }
    if (*k.max_model_len > derived_len) {
      // ModelConfig._get_and_verify_max_len.
      return Invalid(fmt::format(
          "--max-model-len: User-specified max_model_len ({}) is greater than the derived "
          "max_model_len (max_position_embeddings={} or model_max_length=None in model's "
          "config.json). This may lead to incorrect model outputs or CUDA errors. To allow "
          "overriding this maximum, set the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1",
          *k.max_model_len, derived_len));
    }
  }
  r.max_model_len = k.max_model_len.value_or(derived_len);
  const GpuSpec* first_gpu = have_gpu ? &devices.gpus[0] : nullptr;
  std::string lower_name;
  if (first_gpu) {
    for (char c : first_gpu->name) lower_name += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  const bool big = first_gpu && GpuTotal(*first_gpu).value() >= kBigGpuBytes &&
                   lower_name.find("a100") == std::string::npos;
  if (k.max_num_seqs && (*k.max_num_seqs < 1 || *k.max_num_seqs > kMaxBatch)) {
    return Invalid(fmt::format("--max-num-seqs: {} is out of range (1..{})", *k.max_num_seqs, kMaxBatch));
  }
  if (k.max_num_batched_tokens && (*k.max_num_batched_tokens < 1 || *k.max_num_batched_tokens > kMaxTokens)) {
    return Invalid(fmt::format("--max-num-batched-tokens: {} is out of range (1..{})",
                               *k.max_num_batched_tokens, kMaxTokens));
  }
  r.max_num_seqs = k.max_num_seqs.value_or(big ? kServeSeqsBig : kServeSeqs);
  // Defaults never exceed max_num_seqs x max_model_len (EngineArgs).
  r.mnbt = k.max_num_batched_tokens.value_or(
      std::min(big ? kServeTokensBig : kServeTokens, CheckedMul(r.max_num_seqs, r.max_model_len)));
  if (r.mnbt < r.max_num_seqs) {
    // SchedulerConfig._verify_args.
    return Invalid(fmt::format(
        "--max-num-batched-tokens: max_num_batched_tokens ({}) must be greater than or equal to "
        "max_num_seqs ({}).",
        r.mnbt, r.max_num_seqs));
  }
  std::string block_note;
  if (k.block_size) {
    if (std::find(std::begin(kBlockSizes), std::end(kBlockSizes), *k.block_size) == std::end(kBlockSizes)) {
      return Invalid(fmt::format("--block-size: expected one of 1, 8, 16, 32, 64, 128, got {}", *k.block_size));
    }
    r.block_size = *k.block_size;
  } else if (mla && first_gpu && first_gpu->vendor == "nvidia") {
    const double cc = std::atof(first_gpu->compute_capability.c_str());
    if (cc >= 10.0 && cc < 11.0) {
      r.block_size = kCutlassMlaBlockSize;
      block_note = "CUTLASS MLA (sm100) forces block_size 128";
    } else if (cc >= 9.0 && cc < 10.0) {
      r.block_size = kFlashMlaBlockSize;
      block_note = "FlashMLA (sm90) forces block_size 64";
    }
  }
  const int64_t bs = r.block_size;

  // --- KV spec per layer and its page (kv_cache_interface.py).
  const int64_t kvb = Info(kvd).block_bytes;
  const KvElements kv = KvElementsPerToken(s, KvLayout::kLatent);
  // KV heads per rank: max(1, total // tp) (ModelConfig.get_num_kv_heads);
  // the MLA latent is one "head", replicated on every rank.
  const int64_t kvh_rank = mla ? 1 : std::max<int64_t>(1, s.num_key_value_heads / tp);
  const int64_t k_width = mla ? kv.k : kvh_rank * s.head_dim;      // per token, per layer
  const int64_t v_width = mla ? 0 : kvh_rank * s.v_head_dim;
  const int64_t page = CheckedMul(CheckedMul(bs, k_width + v_width), kvb);
  std::vector<LayerType> types(static_cast<size_t>(s.num_hidden_layers));
  for (int64_t i = 0; i < s.num_hidden_layers; ++i) {
    if (s.sliding_window > 0 && s.layers[static_cast<size_t>(i)].attention == LayerAttention::kSliding) {
      types[static_cast<size_t>(i)].window = s.sliding_window;
    }
  }
  const std::vector<KvGroup> groups = BuildGroups(types);
  const int64_t n_groups = static_cast<int64_t>(groups.size());
  const int64_t blocks_per_request = SumBlocks(groups, r.max_model_len, r.mnbt, bs);

  e.kv_bytes_per_token = KvBytesPerToken(s, kvd, KvLayout::kLatent);
  e.weight_bytes = Bytes(0);
  for (const TensorGroup& g : model.inventory.groups) e.weight_bytes += TensorBytes(g, w.quant, w.dtype) * g.count;

  const int64_t dt = Info(w.dtype).block_bytes;
  const int64_t T = r.mnbt;
  const int64_t rows = std::min(r.max_num_seqs, T);
  const std::vector<int64_t> sizes = CaptureSizes(r.max_num_seqs, r.mnbt);
  int64_t n_full_graphs = 0;
  for (int64_t x : sizes) n_full_graphs += x <= r.max_num_seqs ? 1 : 0;
  const int64_t world = tp * stages;
  // NVLink-connected GPUs (catalog form "sxm") run vLLM's custom all-reduce
  // and NCCL's NVLink/NVLS transports, which hold more memory.
  const bool nvlink = have_gpu && devices.gpus[0].form == "sxm";

  // --- Per worker: everything but the KV cache, and what is left for it.
  struct Worker {
    DeviceEstimate d;
    std::vector<Component> comps;  // weights, activations, non_torch
    Bytes weights, act, non_torch, graphs;
    Bytes total_mem, requested, available;
    int64_t group_size = 0;
    double requested_d = 0;
    LayerRange range;
  };
  std::vector<Worker> workers;
  for (int64_t stage = 0; stage < stages; ++stage) {
    for (int64_t rank = 0; rank < tp; ++rank) {
      Worker wk;
      wk.range = StageLayers(s.num_hidden_layers, stages, stage);
      const bool first = stage == 0;
      const bool last = stage == stages - 1;
      wk.d.name = "gpu" + std::to_string(stage * tp + rank);
      const size_t idx = static_cast<size_t>(stage * tp + rank);
      if (idx < devices.gpus.size()) wk.d.gpu = devices.gpus[idx];

      // Weights: "Model loading took X GiB" (model_memory_usage), floats
      // loaded in the model dtype, plus the RoPE cos/sin cache buffer and
      // the vision tower of multimodal checkpoints.
      Component weights =
          (w.weights_as_stored && !model.file_tensors.empty())
              ? FileWeightsComponent(model, w.dtype, /*cast_floats=*/true, wk.range, first, last, tp)
              : WeightsComponent(model, w.quant, w.dtype, wk.range, first, last, tp);
      if (s.learned_positions == 0 && wk.range.size() > 0) {
        // get_rope: one cos_sin_cache [max_position, rotary_dim] in the
        // model dtype, shared by all layers (rotary_embedding.py).
        const int64_t rot = mla ? s.qk_rope_head_dim : s.head_dim;
        const Bytes rope = Bytes(CheckedMul(derived_len, rot)) * dt;
        weights.children.push_back(Leaf("rotary cache", rope, Formula("{} pos x {} x {} B", derived_len, rot, dt)));
        weights.bytes += rope;
      }
      if (first) {
        Bytes vision;
        for (const TensorGroup& g : model.inventory.extra) {
          if (g.role == Role::kVision) vision += Bytes(CeilDiv(StorageBytes(w.dtype, g.elements()).value(), tp));
        }
        if (vision.value() > 0) {
          weights.children.push_back(Leaf("vision", vision, Formula("vision tower, {} / tp {}", Name(w.dtype), tp)));
          weights.bytes += vision;
        }
      }
      wk.weights = weights.bytes;

      // Activation peak of the profile run.
      std::vector<Component> fwd = ForwardPeak(s, wk.range, T, tp, dt);
      Bytes fwd_bytes;
      for (const Component& c : fwd) fwd_bytes += c.bytes;
      std::vector<Component> act_parts = std::move(fwd);
      wk.d.peak_phase = "forward";
      if (last) {
        std::vector<Component> smp = SamplerPeak(s, T, rows, dt);
        Bytes smp_bytes;
        for (const Component& c : smp) smp_bytes += c.bytes;
        if (smp_bytes > fwd_bytes) {
          act_parts = std::move(smp);
          wk.d.peak_phase = "sampler";
        }
      }
      Component act = Parent("activations", std::move(act_parts),
                             wk.d.peak_phase == "sampler"
                                 ? Formula("profile run: sampler on {} rows", rows)
                                 : Formula("profile run: forward of {} tokens", T));
      wk.act = act.bytes;

      std::vector<Component> nt;
      nt.push_back(Leaf("kernels + libraries", MiB(kNonTorchMiB), "0.13 GiB in vLLM 0.11 logs at TP1"));
      if (world > 1) {
        nt.push_back(nvlink ? Leaf("NCCL + custom all-reduce", MiB(kCollectivesNvlinkMiB),
                                   Formula("world size {}, NVLink", world))
                            : Leaf("NCCL", MiB(kCollectivesPcieMiB), Formula("world size {}, PCIe", world)));
      }
      Component non_torch = Parent("non_torch", std::move(nt));
      wk.non_torch = non_torch.bytes;

      if (!r.eager && wk.range.size() > 0) {
        // One layer's temporaries at the largest captured size (the
        // piecewise graphs hand their outputs on as weak references, so the
        // private pool is reused), plus a cudaGraphExec per piece per size:
        // PIECEWISE graphs split at each attention layer (layers + 1 pieces)
        // and FULL decode graphs up to max_num_seqs (FULL_AND_PIECEWISE).
        const int64_t cap = sizes.empty() ? 0 : sizes.back();
        const int64_t inter = std::max(CeilDiv(s.intermediate_size, tp),
                                       CeilDiv(s.moe_intermediate_size, tp) * std::max<int64_t>(1, s.num_experts_per_tok));
        const Bytes pool = Bytes(CheckedMul(cap, 2 * s.hidden_size + 3 * inter)) * dt;
        const int64_t execs = static_cast<int64_t>(sizes.size()) * (wk.range.size() + 1) + n_full_graphs;
        wk.graphs = pool + Bytes(CheckedMul(execs, kGraphExecKiB * kKiB));
      }

      wk.comps.push_back(std::move(weights));
      wk.comps.push_back(std::move(act));
      wk.comps.push_back(std::move(non_torch));
      if (wk.d.gpu) {
        wk.total_mem = GpuTotal(*wk.d.gpu);
        wk.requested_d = static_cast<double>(wk.total_mem.value()) * r.util;
        wk.requested = Bytes(static_cast<int64_t>(wk.requested_d));
        // available = int(requested - non_kv_cache_memory)  (Python int() truncates)
        const Bytes non_kv = wk.weights + wk.act + wk.non_torch;
        wk.available = Bytes(static_cast<int64_t>(wk.requested_d - static_cast<double>(non_kv.value())));
      }
      wk.group_size = StageGroupSize(groups, wk.range);
      workers.push_back(std::move(wk));
    }
  }

  // --- Start-up checks, in vLLM's order: free memory (init_device), then
  // the KV budget (check_enough_kv_cache_memory), per worker.
  const bool nccl_before = world > 1 && nvlink;
  const Bytes context = MiB(kCudaContextMiB) + (nccl_before ? MiB(kNcclInitMiB) : Bytes(0));
  if (have_gpu) {
    for (const Worker& wk : workers) {
      const double free_d = static_cast<double>((wk.total_mem - context).value());
      if (free_d < wk.requested_d) {
        const double g = static_cast<double>(kGiB);
        return DoesNotFit(fmt::format(
            "vllm: {}: Free memory on device ({}/{} GiB) on startup is less than desired GPU memory "
            "utilization ({}, {} GiB). Decrease GPU memory utilization or reduce GPU memory used by "
            "other processes. [{} GiB go to the CUDA context{} before the check; lower --gpu-mem-util]",
            wk.d.name, PyRound2(free_d / g), PyRound2(static_cast<double>(wk.total_mem.value()) / g),
            PyFloat(r.util), PyRound2(wk.requested_d / g), Gib(context), nccl_before ? " and NCCL" : ""));
      }
    }
    for (const Worker& wk : workers) {
      if (wk.group_size == 0) continue;
      if (wk.available.value() <= 0) {
        return DoesNotFit(fmt::format(
            "vllm: {}: No available memory for the cache blocks. Try increasing "
            "`gpu_memory_utilization` when initializing the engine. See "
            "https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details. "
            "[weights {} GiB + profile peak {} GiB + non-torch {} GiB exceed {} x {} GiB = {} GiB; "
            "raise --gpu-mem-util or split the model with --tp]",
            wk.d.name, Gib(wk.weights), Gib(wk.act), Gib(wk.non_torch), PyFloat(r.util), Gib(wk.total_mem),
            Gib(wk.requested)));
      }
      const auto needed = [&](int64_t len) {
        return CheckedMul(CheckedMul(wk.group_size, page), SumBlocks(groups, len, r.mnbt, bs));
      };
      if (needed(r.max_model_len) > wk.available.value()) {
        // estimate_max_model_len: binary search over [1, max_model_len].
        int64_t lo = 1, hi = r.max_model_len, best = 0;
        while (lo <= hi) {
          const int64_t mid = lo + (hi - lo) / 2;
          if (needed(mid) <= wk.available.value()) {
            best = mid;
            lo = mid + 1;
          } else {
            hi = mid - 1;
          }
        }
        const std::string est = best > 0 ? fmt::format(
            "Based on the available memory, the estimated maximum model length is {}. ", best) : "";
        return DoesNotFit(fmt::format(
            "vllm: {}: To serve at least one request with the models's max seq len ({}), ({} GiB KV "
            "cache is needed, which is larger than the available KV cache memory ({} GiB). {}Try "
            "increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing "
            "the engine. See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for "
            "more details. [{}raise --gpu-mem-util]",
            wk.d.name, r.max_model_len, Gib(Bytes(needed(r.max_model_len))), Gib(wk.available), est,
            best > 0 ? fmt::format("lower --max-model-len to {} or ", best) : ""));
      }
    }
  }

  // --- The pool: num_blocks per worker, then the minimum over workers.
  int64_t num_blocks = INT64_MAX;
  for (const Worker& wk : workers) {
    if (wk.group_size == 0) continue;
    const int64_t nb = have_gpu ? wk.available.value() / page / wk.group_size : blocks_per_request;
    num_blocks = std::min(num_blocks, nb);
  }
  if (num_blocks == INT64_MAX) num_blocks = 0;

  Bytes top_total;
  for (Worker& wk : workers) {
    DeviceEstimate& d = wk.d;
    const int64_t slots = CheckedMul(num_blocks, wk.group_size);  // blocks x pools
    std::vector<Component> kvc;
    const std::string shape = Formula("{} blocks x {} tok x {} pool{}", num_blocks, bs, wk.group_size,
                                          wk.group_size == 1 ? "" : "s");
    if (mla) {
      kvc.push_back(Leaf("latent", Bytes(CheckedMul(CheckedMul(slots, bs), k_width)) * kvb,
                         Formula("{} x {} x {} B", shape, k_width, kvb)));
    } else if (slots > 0) {
      kvc.push_back(Leaf("K", Bytes(CheckedMul(CheckedMul(slots, bs), k_width)) * kvb,
                         Formula("{} x {} kv heads x {} x {} B", shape, kvh_rank, s.head_dim, kvb)));
      kvc.push_back(Leaf("V", Bytes(CheckedMul(CheckedMul(slots, bs), v_width)) * kvb,
                         Formula("{} x {} kv heads x {} x {} B", shape, kvh_rank, s.v_head_dim, kvb)));
    }
    std::vector<Component> comps;
    comps.push_back(std::move(wk.comps[0]));
    comps.push_back(Parent("kv_cache", std::move(kvc)));
    comps.push_back(std::move(wk.comps[1]));
    const Bytes kv_bytes = comps[1].bytes;
    comps.push_back(Leaf("cuda_graphs", wk.graphs,
                         r.eager ? "--enforce-eager: none"
                                 : Formula("{} sizes up to {}, captured after the KV cache", sizes.size(),
                                               sizes.empty() ? 0 : sizes.back())));
    comps.push_back(std::move(wk.comps[2]));
    std::vector<Component> ctx;
    ctx.push_back(Leaf("CUDA context", MiB(kCudaContextMiB), "before vLLM's memory snapshot"));
    if (nccl_before) ctx.push_back(Leaf("NCCL communicators", MiB(kNcclInitMiB), "NVLink; set up before the snapshot"));
    comps.push_back(Parent("cuda_context", std::move(ctx)));
    // torch.cuda.max_memory_allocated: the sampler warm-up after the KV
    // cache is allocated repeats the profile's sampler peak.
    d.allocated_peak = wk.weights + kv_bytes + wk.act;
    d.reserved_peak = *d.allocated_peak + wk.graphs;  // graph pool segments
    d.total = *d.reserved_peak + wk.non_torch + context;
    d.components = std::move(comps);
    top_total = std::max(top_total, d.total);
    e.devices.push_back(std::move(d));
  }

  // Every worker holds KV layers, so the pool is never empty on success.
  if (e.devices.empty() || num_blocks <= 0) {
    return Error{ErrorKind::kInternal,
                 fmt::format("vllm: no KV cache pool was sized ({} workers, {} blocks)", e.devices.size(),
                             num_blocks)};
  }

  // --- What vLLM logs: "GPU KV cache size: N tokens" (num_blocks //
  // groups x block_size) and "Maximum concurrency ... : x.xx x".
  e.kv_capacity_tokens = CheckedMul(num_blocks / std::max<int64_t>(1, n_groups), bs);
  const double concurrency = static_cast<double>(num_blocks) / static_cast<double>(blocks_per_request);
  e.kv_max_concurrency = num_blocks / blocks_per_request;

  // --- Echo, flags, notes.
  e.workload = {
      {"runtime", std::string("vllm")},
      {"vllm", std::string(kVllmVersion)},
      {"dtype", std::string(Name(w.dtype))},
      {"quant", w.quant.Name()},
      {"kv_dtype", std::string(Name(kvd))},
      {"gpu_memory_utilization", r.util},
      {"max_model_len", r.max_model_len},
      {"max_num_seqs", r.max_num_seqs},
      {"max_num_batched_tokens", r.mnbt},
      {"block_size", bs},
      {"enforce_eager", r.eager},
      {"tp", tp},
      {"pp", stages},
  };
  e.launch_flags.push_back(fmt::format("--max-model-len {}", r.max_model_len));
  e.launch_flags.push_back(fmt::format("--gpu-memory-utilization {}", r.util));  // as typed: 0.9
  e.launch_flags.push_back(fmt::format("--max-num-seqs {}", r.max_num_seqs));
  e.launch_flags.push_back(fmt::format("--max-num-batched-tokens {}", r.mnbt));
  if (tp > 1) e.launch_flags.push_back(fmt::format("-tp {}", tp));
  if (stages > 1) e.launch_flags.push_back(fmt::format("-pp {}", stages));
  // --dtype only where it differs from what vLLM's auto would pick.
  if (w.dtype != VllmAutoDtype(s, devices)) {
    e.launch_flags.push_back(fmt::format("--dtype {}", VllmDtypeName(w.dtype)));
  }
  if (kvd == DType::kF8E4M3) e.launch_flags.push_back("--kv-cache-dtype fp8");
  if (kvd == DType::kF8E5M2) e.launch_flags.push_back("--kv-cache-dtype fp8_e5m2");
  if (k.block_size) e.launch_flags.push_back(fmt::format("--block-size {}", bs));
  if (r.eager) e.launch_flags.push_back("--enforce-eager");
  if (!w.quant_from_checkpoint && w.quant.method == QuantMethod::kFp8) {
    e.launch_flags.push_back("--quantization fp8");
  }

  e.notes.push_back(fmt::format(
      "modelled: vLLM {} V1 engine as `vllm serve` starts it: KV pool = total x {} - weights - "
      "non-torch - profile-run peak; CUDA graphs are captured afterwards, in the headroom",
      kVllmVersion, r.util));
  if (have_gpu) {
    const GpuSpec& g = devices.gpus[0];
    e.notes.push_back(
        g.cuda_total.value() > 0
            ? fmt::format("GPU total memory {} GiB as torch.cuda.mem_get_info reports it on {} (catalog cuda_total)",
                          Gib(g.cuda_total), g.name)
            : fmt::format("GPU total memory {} GiB = {} capacity less a {} MiB driver reserve "
                          "(catalog has no cudaMemGetInfo total)",
                          Gib(GpuTotal(g)), g.name, g.vendor == "nvidia" ? kDriverReserveMiB : 0));
    e.notes.push_back(fmt::format(
        "vLLM logs: GPU KV cache size: {} tokens; Maximum concurrency for {} tokens per request: {:.2f}x",
        Thousands(*e.kv_capacity_tokens), Thousands(r.max_model_len), concurrency));
    e.notes.push_back(
        "vLLM fills memory up to --gpu-mem-util whatever the load; it fits when the KV pool holds "
        "one --max-model-len request, and total is what nvidia-smi then shows");
  } else {
    Bytes need;
    for (const DeviceEstimate& d : e.devices) {
      need = std::max(need, d.total - context - Find(d.components, "cuda_graphs")->bytes);
    }
    e.notes.push_back(fmt::format(
        "no --gpu: the KV pool shown is the smallest vLLM starts with (one {}-token request); on a "
        "GPU it takes all of total x util, so a GPU needs at least {} GiB of total memory at util {}",
        r.max_model_len, Gib(Bytes(static_cast<int64_t>(std::ceil(static_cast<double>(need.value()) / r.util)))),
        r.util));
  }
  if (!k.max_num_seqs || !k.max_num_batched_tokens) {
    e.notes.push_back(fmt::format("max_num_seqs {} and max_num_batched_tokens {} are `vllm serve`'s "
                                  "defaults for {} (the LLM class uses {} / {})",
                                  r.max_num_seqs, r.mnbt,
                                  big ? "GPUs with >= 70 GiB other than A100" : "this GPU",
                                  big ? 1024 : 256, big ? 16384 : 8192));
  }
  if (n_groups > 1) {
    e.notes.push_back(fmt::format(
        "hybrid KV cache: {} groups of {} layers share {} pools; a request takes {} blocks "
        "(sliding-window groups hold window - 1 + max_num_batched_tokens tokens), and the "
        "logged token count is num_blocks // groups x block_size",
        n_groups, StageGroupSize(groups, {0, s.num_hidden_layers}), StageGroupSize(groups, {0, s.num_hidden_layers}),
        blocks_per_request));
  }
  if (!block_note.empty()) e.notes.push_back(block_note);
  if (mla) e.notes.push_back("MLA: one latent of kv_lora_rank + qk_rope_head_dim per token and layer, replicated on every TP rank");
  if (!mla && tp > s.num_key_value_heads && s.num_key_value_heads > 0) {
    e.notes.push_back(fmt::format("{} KV heads over tp {}: each rank keeps a replica of one KV head",
                                  s.num_key_value_heads, tp));
  }
  if (w.batch != 1) {
    e.notes.push_back("--batch does not apply to vLLM; the pool's concurrency is reported instead "
                      "(set --max-num-seqs to cap running requests)");
  }
  if (stages > 1 && s.tie_word_embeddings) {
    e.notes.push_back("tied embeddings with --pp: the last stage's lm_head copy is not counted");
  }
  return {};
}

// --- The profile.
namespace {

class VllmRuntime final : public RuntimeProfile {
 public:
  Runtime id() const override { return Runtime::kVllm; }

  std::span<const std::string_view> Settings() const override {
    static constexpr std::string_view kSettings[] = {
        "gpu-mem-util", "max-model-len", "max-num-seqs", "max-num-batched-tokens",
        "block-size",   "enforce-eager"};
    return kSettings;
  }

  Status Resolve(const Model& model, const InferenceSettings& s, const DeviceSet& devices,
                 InferenceWorkload* w, std::vector<std::string>* notes) const override {
    if (!s.dtype && w->dtype == DType::kF32) {
      // vLLM's dtype "auto" downcasts fp32 checkpoints.
      w->dtype = VllmAutoDtype(model.spec, devices);
      if (!s.kv_dtype) w->kv_dtype = w->dtype;
      if (notes && w->dtype != DType::kF32) {
        notes->push_back(fmt::format(
            "the checkpoint is fp32: vLLM's dtype auto downcasts it to {}", Name(w->dtype)));
      }
    }
    // vLLM holds --ctx (or --prompt + --new) tokens per request when sized
    // by --max-model-len.
    if (!w->vllm.max_model_len && (s.ctx || s.prompt || s.new_tokens)) {
      w->vllm.max_model_len = w->ctx;
    }
    const int64_t n = static_cast<int64_t>(devices.size());
    if (s.tp == 1 && s.pp == 1 && n > 1) {
      // vLLM runs on one GPU unless told how to split the model.
      return InvalidArgument(fmt::format(
          "--gpu: {} GPUs given; vLLM uses one unless --tp/--pp say how to split the model "
          "(e.g. --tp {})", n, n));
    }
    return {};
  }

  Status Estimate(const Model& model, const InferenceWorkload& w, const DeviceSet& devices,
                  vramfit::Estimate& e) const override {
    return EstimateVllm(model, w, devices, e);
  }

  void SetContext(InferenceSettings& s, int64_t tokens) const override {
    RuntimeProfile::SetContext(s, tokens);
    s.vllm.max_model_len = tokens;
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
