// The steps of the `vllm` runtime (vllm.cc), declared so that tests can
// check each one against a hand computation (tests/unit/vllm_steps_test.cc).
// Internal to the core. Units: bytes (Bytes or int64_t "_bytes"), tokens,
// blocks; sources: the vLLM 0.11 file named in each contract, and
// docs/estimation.md section 9.
//
// The profile runs them in this order:
//   Resolve:  CheckEngineSettings -> ResolveKnobs (every VllmKnobs optional
//             filled; no memory numbers needed)
//   Estimate: EngineOf -> BuildWorker per GPU (WorkerWeights, ProfilePeak,
//             NonTorch, CudaGraphBytes, BudgetOf) -> CheckStartup ->
//             PoolBlocks -> DeviceOf per worker -> WorkloadEcho, LaunchFlags,
//             Notes
#ifndef VRAMFIT_SRC_CORE_RUNTIMES_VLLM_STEPS_H_
#define VRAMFIT_SRC_CORE_RUNTIMES_VLLM_STEPS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtimes.h"
#include "vramfit/estimate.h"

namespace vramfit::runtimes::vllm {

// --- Resolve: settings vLLM refuses before it touches memory, and defaults.

// The largest max_model_len vLLM accepts without
// VLLM_ALLOW_LONG_MAX_MODEL_LEN, in tokens: max_position_embeddings, else
// 2048 (config/model.py _get_and_verify_max_len). Also the rows of the RoPE
// cos/sin cache.
int64_t DerivedMaxLen(const ModelSpec& spec);

// `vllm serve`'s scheduler defaults (engine/arg_utils.py
// get_batch_defaults): 1024 sequences / 8192 tokens when the first GPU has
// >= 70 GiB of cudaMemGetInfo total and no "a100" in its name ("big"), else
// (and without a GPU) 256 / 2048.
struct ServeDefaults {
  int64_t max_num_seqs = 0;
  int64_t max_num_batched_tokens = 0;
  bool big = false;
};
ServeDefaults ServeDefaultsFor(const DeviceSet& devices);

// The max_num_batched_tokens default, in tokens: the serve default, never
// above max_num_seqs x max_model_len (EngineArgs).
int64_t DefaultBatchedTokens(const ServeDefaults& d, int64_t max_num_seqs, int64_t max_model_len);

// CacheConfig.block_size without --block-size, in tokens: 16 on CUDA
// (platforms/cuda.py check_and_update_config); MLA models on sm90 get
// FlashMLA's 64, on sm100 CUTLASS MLA's 128, and `note` says so (empty
// otherwise).
struct BlockDefault {
  int64_t size = 0;
  std::string note;
};
BlockDefault DefaultBlockSize(const ModelSpec& spec, const DeviceSet& devices);

// Settings vLLM refuses, with vLLM's text where it has one: Apple GPUs,
// GGUF weights (modelled for llamacpp only), a kv_cache_dtype other than
// auto/fp16/bf16/fp8, KV heads that do not split over --tp
// (QKVParallelLinear), bf16 below sm80 (gpu_worker
// _check_if_gpu_supports_dtype). REQUIRES: w's common settings resolved.
Status CheckEngineSettings(const ModelSpec& spec, const InferenceWorkload& w,
                           const DeviceSet& devices);

// Range checks of the vLLM knobs and vLLM's defaults for the ones not
// given (util 0.9, max_model_len = DerivedMaxLen, ServeDefaultsFor,
// DefaultBlockSize), with ModelConfig's and SchedulerConfig's errors. On
// success every optional of *k holds a value.
Status ResolveKnobs(const ModelSpec& spec, const DeviceSet& devices, VllmKnobs* k);

// --- Estimate: the pieces of one worker.

// The GPU memory vLLM budgets from, in bytes: torch.cuda.mem_get_info()[1]
// (catalog cuda_total), else capacity less a 464 MiB driver reserve on
// NVIDIA, else capacity.
Bytes GpuTotal(const GpuSpec& g);

// Which KVCacheSpec a layer gets (v1/kv_cache_interface.py): attention
// (FullAttentionSpec / MLAAttentionSpec / SlidingWindowSpec), a recurrent
// mixer's MambaSpec (Mamba, Mamba-2, Gated DeltaNet, short conv), or none
// (an MLP-only layer, Nemotron-H '-': get_kv_cache_spec finds no
// attention module).
enum class CacheKind { kAttention, kState, kNone };

// What one layer caches, as vLLM's KVCacheSpec says (v1/kv_cache_interface.py).
struct LayerType {
  int64_t window = 0;  // attention: 0 full / MLA, else SlidingWindowSpec's window
  CacheKind kind = CacheKind::kAttention;
  bool operator<(const LayerType& o) const {
    return kind != o.kind ? kind < o.kind : window < o.window;
  }
  bool operator==(const LayerType& o) const { return kind == o.kind && window == o.window; }
};

// One KV cache group: layers of one type that share a block table.
struct KvGroup {
  LayerType type;
  std::vector<int64_t> layers;
};

// The KV spec of every decoder layer: sliding-window layers of a model with
// a window get SlidingWindowSpec, the rest full attention; recurrent
// layers MambaSpec (kState); layers with neither none (kNone).
std::vector<LayerType> LayerTypes(const ModelSpec& spec);

// get_kv_cache_groups (v1/core/kv_cache_utils.py): one group when every
// layer has the same spec; otherwise _get_kv_cache_groups_uniform_page_size:
// group_size = the fewest layers of a type (the most, when that is < 1.5 x
// the fewest), each type cut into cdiv(n, group_size) groups taking
// layers[i::num_groups]. kNone layers join no group.
std::vector<KvGroup> BuildGroups(const std::vector<LayerType>& types);

// Blocks one request of max_len tokens needs in a group of type t
// (spec.max_memory_usage_bytes / page_size_bytes):
//   full:    cdiv(max_len, bs)
//   sliding: cdiv(min(window - 1 + max_num_batched_tokens, max_len), bs) + 1
//   state:   1 (MambaSpec.max_memory_usage_bytes = one page, vLLM 0.11)
int64_t BlocksPerRequest(LayerType t, int64_t max_len, int64_t mnbt, int64_t bs);
// The same summed over the groups: blocks of one max_len request.
int64_t SumBlocks(const std::vector<KvGroup>& groups, int64_t max_len, int64_t mnbt, int64_t bs);

// Layers of each group on one pipeline stage; a stage's group_size (pools)
// is the largest (_project_kv_cache_groups_to_worker,
// get_kv_cache_config_from_groups).
int64_t StageGroupSize(const std::vector<KvGroup>& groups, LayerRange range);

// One layer's KV page on one rank (kv_cache_interface.py page_size_bytes).
struct KvPage {
  // KV heads per rank: max(1, Hkv // tp) (ModelConfig.get_num_kv_heads); MLA: 1 latent.
  int64_t kv_heads = 0;
  int64_t k_width = 0;     // elements per token: kv_heads x head_dim, or the latent
  int64_t v_width = 0;     // elements per token: kv_heads x v_head_dim; 0 for MLA
  int64_t elem_bytes = 0;  // bytes per KV element
  int64_t bytes = 0;       // block_size x (k_width + v_width) x elem_bytes
};
KvPage KvPageOf(const ModelSpec& spec, int64_t tp, DType kv_dtype, int64_t block_size);

// One recurrent layer's state on one rank, as its MambaSpec holds it
// (model_executor/layers/mamba/mamba_utils.py MambaStateShapeCalculator,
// vLLM 0.11; conv windows are kernel - 1 columns; heads and channels split
// over --tp): elements of the conv state (at conv_dtype: mamba_cache_dtype,
// auto = the model dtype) and of the SSM / delta-rule state (at ssm_dtype:
// mamba_ssm_cache_dtype, auto = the conv dtype), and the page:
// MambaSpec.page_size_bytes before padding.
//   Mamba-1:  conv (d_inner/tp) x (d_conv-1); ssm (d_inner/tp) x d_state
//   Mamba-2:  groups g' = n_groups, or tp when n_groups = 1 < tp
//             (extra_groups_for_head_shards); conv ((d_inner + 2 g' d_state)/tp)
//             x (d_conv-1); ssm (heads/tp) x head_dim x d_state
//   GDN:      conv ((2 nk dk + nv dv)/tp) x (kernel-1); ssm (nv/tp) x dk x dv
//   short conv (LFM2): conv (hidden/tp) x (L_cache-1); no ssm
struct StatePage {
  int64_t conv = 0;  // elements
  int64_t ssm = 0;   // elements
  int64_t conv_bytes = 0;  // bytes per conv element
  int64_t ssm_bytes = 0;   // bytes per SSM element
  int64_t bytes = 0;  // conv x conv_bytes + ssm x ssm_bytes
};
StatePage StatePageOf(const ModelSpec& spec, int64_t tp, DType conv_dtype, DType ssm_dtype);

// The state dtypes vLLM runs with: mamba_cache_dtype (auto = the model
// dtype) for the conv state, mamba_ssm_cache_dtype (auto = the conv dtype)
// for the SSM state (MambaStateDtypeCalculator._mamba_state_dtype).
struct StateDTypes {
  DType conv = DType::kBF16;
  DType ssm = DType::kBF16;
};
StateDTypes StateDTypesOf(const InferenceWorkload& w);

// The recurrent kinds and tensor-parallel splits whose vLLM state shape is
// modelled (StatePageOf), with one line naming what is not: Kimi Delta
// Attention, layers with attention and a mixer in parallel (Falcon-H1),
// heads or channels that do not split over --tp.
Status CheckStateLayout(const ModelSpec& spec, int64_t tp);

// HybridAttentionMambaModelConfig.verify_and_update_config
// (model_executor/models/config.py, vLLM 0.11): the attention block size
// that makes an attention page (block x attn_page_1_token) hold one state
// page, rounded to a multiple of 16 tokens:
//   16 x cdiv(state_page, 16 x attn_page_1_token).
// vLLM raises block_size to it when smaller and pads every state page to
// the attention page (mamba_page_size_padded).
int64_t HybridBlockSize(int64_t state_page_bytes, int64_t attn_page_1_token_bytes);

// Sizes vLLM captures CUDA graphs for (config/compilation.py): [1, 2, 4] +
// range(8, 256, 8) + range(256, 513, 16), up to min(2 x max_num_seqs, 512,
// max_num_batched_tokens).
std::vector<int64_t> CaptureSizes(int64_t max_num_seqs, int64_t mnbt);

// The profile run's forward pass (gpu_model_runner._dummy_run of T tokens)
// on the layers in range: the residual stream plus the largest layer's
// live temporaries (attention, MLP or fused MoE), as leaves, in bytes of
// dt-byte elements.
std::vector<Component> ForwardPeak(const ModelSpec& s, LayerRange range, int64_t T, int64_t tp,
                                   int64_t dt);

// The sampler warm-up (gpu_model_runner._dummy_sampler_run on `rows`
// requests): hidden states, lm_head logits (vocab padded to 64), the fp32
// copy, logits.sort() values + int64 indices and torch.sort's temporaries
// (20 B per element from 128 rows, 32 B for 2..127), as leaves, in bytes.
std::vector<Component> SamplerPeak(const ModelSpec& s, int64_t T, int64_t rows, int64_t dt);

// What every worker shares, from the resolved workload.
struct Engine {
  // The resolved knobs (ResolveKnobs).
  double util = 0;
  int64_t max_model_len = 0;  // tokens
  int64_t max_num_seqs = 0;
  int64_t mnbt = 0;           // max_num_batched_tokens: the profile run's tokens
  int64_t block_size = 0;     // tokens per KV block
  bool eager = false;
  int64_t tp = 1, stages = 1, world = 1;
  bool mla = false;
  bool have_gpu = false;
  bool nvlink = false;       // first GPU is an SXM part: custom all-reduce, NVLink NCCL
  bool nccl_before = false;  // NCCL communicators set up before the snapshot (world > 1, NVLink)
  int64_t dt = 0;            // compute dtype, bytes per element
  int64_t rows = 0;          // sampler warm-up rows: min(max_num_seqs, mnbt)
  KvPage page;               // the page of every group (attention, or the padded state page)
  bool has_state = false;    // recurrent layers: MambaSpec groups
  bool attention_free = false;  // no attention layer (Mamba, Mamba-2 models)
  StatePage state;           // one recurrent layer's state page per rank, unpadded
  int64_t given_block_size = 0;  // --block-size or the platform default, before the raise
  int64_t token_block = 0;   // min block size over groups: the "GPU KV cache size" unit
  std::vector<KvGroup> groups;
  int64_t blocks_per_request = 0;  // SumBlocks at max_model_len
  std::vector<int64_t> capture_sizes;
  int64_t full_graphs = 0;  // FULL decode graphs: capture sizes <= max_num_seqs
  Bytes context;            // CUDA context (+ NCCL) held before vLLM's snapshot
  int64_t kv_cache_memory = 0;  // --kv-cache-memory bytes per worker (0: the profiled budget)
};
// REQUIRES: w came from the profile's Resolve (every knob has a value).
Engine EngineOf(const ModelSpec& spec, const InferenceWorkload& w, const DeviceSet& devices);

// Weights of one worker, "Model loading took X GiB": the checkpoint's
// tensors (floats in the model dtype) or the chosen format, plus the RoPE
// cos/sin cache [DerivedMaxLen, rotary_dim] in the model dtype
// (rotary_embedding.py get_rope) and, on the first stage, a multimodal
// vision tower / tp. Bytes.
Component WorkerWeights(const Model& model, const InferenceWorkload& w, LayerRange range,
                        bool first, bool last);

// The profile run's activation peak on one worker: the forward pass, or on
// the last stage the sampler warm-up when that is larger ("sampler").
struct ActivationPeak {
  Component activations;
  std::string phase;  // "forward" | "sampler"
};
ActivationPeak ProfilePeak(const ModelSpec& spec, const Engine& g, LayerRange range, bool last);

// Non-torch memory memory_profiling sees after the init snapshot: 133 MiB
// of kernels and libraries, plus 420 MiB (NVLink) / 128 MiB (PCIe) of NCCL
// and custom all-reduce buffers with world > 1 (docs/research/vllm.md).
Component NonTorch(int64_t world, bool nvlink);

// CUDA graph memory (captured after the KV cache, outside the budget):
// one layer's temporaries at the largest capture size plus 64 KiB per
// cudaGraphExec, PIECEWISE (layers + 1 pieces per size) and FULL decode
// graphs. 0 with --enforce-eager or no layers. Bytes.
Bytes CudaGraphBytes(const ModelSpec& spec, const Engine& g, LayerRange range);

// One worker's budget (gpu_worker.init_device, determine_available_memory):
// requested = total x util; available = int(requested - non_kv), Python's
// truncation. Bytes.
struct Budget {
  Bytes total;
  double requested_d = 0;
  Bytes requested;
  Bytes available;
};
Budget BudgetOf(const GpuSpec& gpu, double util, Bytes non_kv);

// One GPU worker before the KV cache is sized.
struct Worker {
  DeviceEstimate d;              // name, gpu, peak_phase
  std::vector<Component> comps;  // weights, activations, non_torch
  Bytes weights, act, non_torch, graphs;
  Budget budget;                 // zero without a GPU
  int64_t group_size = 0;        // KV pools (layers per group) on this worker
  LayerRange range;
};
// Worker `rank` of pipeline stage `stage` (named gpu<stage x tp + rank>).
Worker BuildWorker(const Model& model, const InferenceWorkload& w, const DeviceSet& devices,
                   const Engine& g, int64_t stage, int64_t rank);

// KV bytes one request of len tokens takes on a worker with `pools` pools:
// pools x page x SumBlocks(len) (kv_cache_utils.py max_memory_usage_bytes).
int64_t RequestKvBytes(const Engine& g, int64_t pools, int64_t len);

// estimate_max_model_len (kv_cache_utils.py): the largest length in
// [1, g.max_model_len] whose request (RequestKvBytes) fits in `available`
// bytes; 0 when none does. Tokens.
int64_t EstimateMaxModelLen(const Engine& g, int64_t pools, Bytes available);

// vLLM's start-up failures, in its order: free memory below the request
// after the CUDA context (init_device) on any worker, then per worker no
// memory left for the KV cache, or less than one max_model_len request
// (check_enough_kv_cache_memory). kDoesNotFit errors with vLLM's text and
// the vramfit flag to change. Nothing to check without a GPU.
Status CheckStartup(const Engine& g, const std::vector<Worker>& workers);

// The same checks as a StartupFailure (kind free_memory_below_request,
// no_kv_memory or kv_below_one_request; vLLM's text; the failing worker),
// nullopt when vLLM starts or without a GPU.
std::optional<StartupFailure> StartupFailureOf(const Engine& g, const std::vector<Worker>& workers);

// Blocks the breakdown shows per pool: num_blocks, or with a KV failure
// what one max_model_len request needs when that is more.
int64_t ShownBlocks(const Engine& g, const std::optional<StartupFailure>& failure,
                    int64_t num_blocks);

// The note that carries vLLM's refusal.
std::string FailureNote(const Engine& g, const StartupFailure& f, bool kv_shown_needed);

// num_blocks of the pool, the minimum over workers holding KV layers of
// available // page // group_size (get_kv_cache_configs); without a GPU the
// smallest pool vLLM starts with, one max_model_len request. 0 if no worker
// holds KV layers.
int64_t PoolBlocks(const Engine& g, const std::vector<Worker>& workers);

// The worker's breakdown with a pool of num_blocks blocks per pool:
// weights, kv_cache, activations, cuda_graphs, non_torch, cuda_context, and
// the allocated / reserved peaks and total (bytes).
DeviceEstimate DeviceOf(const ModelSpec& spec, const Engine& g, Worker wk, int64_t num_blocks);

// The echoed workload: the settings vLLM ran with.
Echo WorkloadEcho(const InferenceWorkload& w);

// `vllm serve` flags that reproduce this estimate: the sizing knobs always,
// the rest where they differ from vLLM's defaults.
std::vector<std::string> LaunchFlags(const ModelSpec& spec, const InferenceWorkload& w,
                                     const DeviceSet& devices);

// The notes: what is modelled, the GPU total, vLLM's log lines (or the
// smallest GPU without one), the defaults taken and the model's specifics.
// REQUIRES: e.devices and e.kv_capacity_tokens filled.
std::vector<std::string> Notes(const ModelSpec& spec, const InferenceWorkload& w,
                               const DeviceSet& devices, const Engine& g, const Estimate& e,
                               int64_t num_blocks);

}  // namespace vramfit::runtimes::vllm

#endif  // VRAMFIT_SRC_CORE_RUNTIMES_VLLM_STEPS_H_
