// The steps of the `hf` runtime's estimate (hf.cc), exposed for their unit
// tests (tests/unit/hf_steps_test.cc). Internal to the core.
//
// EstimateHf runs them in this order, per device:
//   layout -> weights -> KV cache (prefill and decode lengths) -> prefill
//   temporaries (attention, MLP, quantization transients) -> decode
//   temporaries -> logits -> phase selection -> components at the peak
//   phase -> allocator reserve -> CUDA context;
// then, once per estimate, the echo and the notes. Every term, its units and
// its source: docs/estimation.md section 5 and docs/research/hf-inference.md.
#ifndef VRAMFIT_SRC_CORE_RUNTIMES_HF_STEPS_H_
#define VRAMFIT_SRC_CORE_RUNTIMES_HF_STEPS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtimes.h"
#include "vramfit/estimate.h"

namespace vramfit::runtimes::hf {

// --- transformers releases that changed what generate() holds, as
// major*100 + minor (InferenceWorkload::hf_version). kHfVersionSdpaDefault
// and kHfVersionDefault live in workload.h.

// From 4.42 generate() keeps one DynamicCache updated in place; before, the
// previous step's legacy (K, V) tuples stayed referenced while the next ones
// were built, a second full KV (huggingface/transformers#25930; fixed by
// PR #30536 "Reduce by 2 the memory requirement in generate()", commit
// bd5091df, src/transformers/generation/utils.py; first release taken as
// v4.42, hf-inference.md section 2).
constexpr int64_t kHfVersionInPlaceCache = 442;
// Up to 4.44 LlamaForCausalLM.forward computes the logits of every prompt
// position and upcasts them (`logits = logits.float()`,
// src/transformers/models/llama/modeling_llama.py); v4.45 added
// num_logits_to_keep (PR #31292), hf-inference.md section 3.1.
constexpr int64_t kHfVersionLastAllPositionLogits = 444;
// v4.45 computes the last position only but still upcasts it in the model
// (`.float()` with "TODO: remove the float() operation in v4.46",
// modeling_llama.py); generate copies it to fp32 again (_sample).
constexpr int64_t kHfVersionUpcastLastLogits = 445;
// From 4.56 generate() builds DynamicCache(config=...) with a
// DynamicSlidingWindowLayer per sliding layer, which keeps the last W - 1
// tokens (src/transformers/cache_utils.py @004999d9
// DynamicSlidingWindowLayer.update; generation/utils.py
// _prepare_cache_for_generation); before, every layer cached every token.
constexpr int64_t kHfVersionLayeredCache = 456;

// --- PyTorch constants.

// CUDA context + kernel images a PyTorch process pays per device (lazy
// module loading, CUDA >= 11.7, pytorch PR #86509): 274-426 MiB measured
// before any kernel runs, plus cuBLAS/attention modules loaded on first use
// (hf-inference.md section 6).
constexpr int64_t kTorchCudaContextMiB = 512;
// cuBLAS workspace, allocated through the caching allocator
// (aten/src/ATen/cuda/CublasHandlePool.cpp parseChosenWorkspaceSize):
// ":4096:2:16:8" = 8.125 MiB by default, 32 MiB on Hopper and Blackwell
// (sm >= 9.0).
constexpr int64_t kCublasWorkspace = 4096 * kKiB * 2 + 16 * kKiB * 8;
constexpr int64_t kCublasWorkspaceSm90 = 32 * kMiB;
// c10/cuda/CUDACachingAllocator.cpp: allocations of at least 10 MiB
// (kMinLargeAlloc) get their own segment rounded to 2 MiB (kRoundLarge);
// 1-10 MiB share 20 MiB segments (kLargeBuffer); up to 1 MiB come from
// 2 MiB small-pool segments. Sizes round to 512 B (kMinBlockSize).
constexpr int64_t kRoundLarge = 2 * kMiB;
constexpr int64_t kLargeBuffer = 20 * kMiB;
constexpr int64_t kMinLargeAlloc = 10 * kMiB;
constexpr int64_t kMinBlock = 512;

// Segment bytes the caching allocator reserves for one allocation of x
// bytes that gets its own segment (x >= 10 MiB); smaller ones share
// segments and cost only their 512 B rounding.
int64_t SegmentBytes(int64_t x);

// Whether the GPU is NVIDIA sm >= 9.0 (cuBLAS takes the 32 MiB workspace).
bool IsSm90OrNewer(const std::optional<GpuSpec>& gpu);

// The cuBLAS workspace on this GPU, bytes (8.125 MiB without --gpu).
Bytes CublasWorkspace(const std::optional<GpuSpec>& gpu);

// --- Per-job quantities, the same on every device.
struct HfJob {
  int64_t tp = 1;              // tensor-parallel ranks
  int64_t stages = 1;          // pipeline stages (device_map="auto" split)
  int64_t batch = 1;           // b, sequences
  int64_t prompt = 0;          // s, prefill tokens per sequence
  bool has_decode = false;     // n >= 2: at least one decode step
  int64_t decode_tokens = 0;   // T, cached at the last decode step: s + n - 1 (s without decode)
  int64_t dt = 2;              // e, bytes per compute-dtype element
  int64_t kvb = 2;             // e_kv, bytes per KV element
  bool mla = false;            // DeepSeek MLA (cached as per-head K and V)
  int64_t kv_k = 0;            // K elements per token per layer on one rank
  int64_t kv_v = 0;            // V elements per token per layer on one rank
  bool window_capped = false;  // sliding layers keep W - 1 tokens (>= 4.56)
  int64_t heads = 0;           // H / tp, query heads per rank
  int64_t kvh = 0;             // KV heads per rank (at least 1)
  int64_t hd = 0;              // d, head dim
  int64_t vhd = 0;             // d_v, value head dim
  int64_t h = 0;               // hidden size
  int64_t vocab = 0;           // ceil(V / tp), vocabulary per rank
  bool bnb4 = false;           // bitsandbytes nf4 / fp4
  bool bnb8 = false;           // bitsandbytes int8
  bool gptq = false;           // GPTQ (exllama kernels)
  bool torchao = false;        // torchao: quantize_ on the GPU from a bf16 copy at load
  WeightFormat quant;          // the weight format, with the checkpoint's per-module exceptions
  DType dense = DType::kBF16;  // dtype of unquantized tensors
  int64_t n_max = 0;           // elements of the largest quantized linear, per rank
  int64_t out_max = 0;         // largest out_features of a quantized linear, per rank
};

// Per-job layout from the resolved workload: head/KV split over tp
// (KV heads replicated when tp exceeds them; MLA per-head K/V split by tp),
// token counts of the two phases, the largest quantized linear.
HfJob HfJobOf(const Model& model, const InferenceWorkload& w);

// Tokens layer `layer` caches for `tokens` tokens per sequence: W - 1 on a
// sliding layer once the cache is layered (>= 4.56), else all of them.
int64_t HfCachedTokens(const ModelSpec& s, const HfJob& job, int64_t layer, int64_t tokens);

// --- Per-device layout: which layers, embeddings and head one device holds.
struct HfDevice {
  std::string name;            // "gpu<stage * tp + rank>"
  std::optional<GpuSpec> gpu;  // the GPU at that index, if --gpu gave one
  LayerRange range;            // decoder layers of this stage
  bool first = false;          // stage 0: embeddings
  bool last = false;           // last stage: final norm and lm_head
  bool has_head = false;       // runs the head (stage 0 when tied, docs 5.11)
  bool has_layers = false;     // holds at least one decoder layer
};
HfDevice HfDeviceOf(const ModelSpec& s, const HfJob& job, const DeviceSet& devices, int64_t stage,
                    int64_t rank);

// --- Weights.

// Whether the weights are the checkpoint's own tensors (no --quant, model
// read from files).
bool HfWeightsFromFile(const Model& model, const InferenceWorkload& w);
// Storage of one tensor of each inventory group (TensorStorage), in group
// order.
std::vector<StorageParts> HfGroupStorage(const Model& model, const InferenceWorkload& w);
// All weights as the job stores them (Estimate::weight_bytes), bytes.
Bytes HfWeightBytes(const Model& model, const InferenceWorkload& w,
                    const std::vector<StorageParts>& storage);
// The device's "weights" component (docs 5.2 and 5.11).
Component HfDeviceWeights(const Model& model, const InferenceWorkload& w, const HfJob& job,
                          const HfDevice& dev);

// --- KV cache: b x t_l x (K + V per token) x e_kv per layer (docs 5.3).
struct KvBytes {
  Bytes k;
  Bytes v;
  Bytes sum() const { return k + v; }
};
KvBytes HfKvBytes(const ModelSpec& s, const HfJob& job, LayerRange range, int64_t tokens);
// The "kv_cache" component for `tokens` per sequence (children K and V,
// none when the peak is the load phase or the cache is empty).
Component HfKvComponent(const ModelSpec& s, const HfJob& job, LayerRange range, int64_t tokens,
                        const KvBytes& kv, bool show);

// --- Prefill temporaries: one forward over b x s tokens, no grad (docs 5.4).
struct HfAttentionTemps {
  Bytes attn;  // q, k, v, RoPE copies, output (+ eager repeat_kv and scores)
  Bytes mask;  // eager only: float [b, 1, s, s], shared by the layers
  std::string formula;
};
HfAttentionTemps HfPrefillAttention(const InferenceWorkload& w, const HfJob& job);

struct HfMlpTemps {
  Bytes mlp;          // the MLP's live temporaries (MoE: the larger of dense and expert)
  int64_t width = 3;  // live MLP tensors of intermediate width (dense MLP)
  int64_t inter = 0;  // intermediate size per rank, max(I, I_e) for MoE
  std::string formula;
};
HfMlpTemps HfPrefillMlp(const ModelSpec& s, const HfJob& job);

// Quantization transients (docs 5.4, 5.5, 5.8), bytes; `inter` is
// HfMlpTemps::inter.
struct HfQuantTemps {
  Bytes int8_acc;  // bnb int8 MatMul8bitLt: int32 [t, out] + int8 input copy (prefill)
  Bytes dequant;   // bnb 4-bit (0.41-0.49): stored + compute copy of the largest linear
  Bytes gptq_buf;  // GPTQ exllama temp_dq: 2 x N_max
  Bytes load;      // bnb load: 16-bit copy of the largest linear
};
HfQuantTemps HfQuantTransients(const HfJob& job, int64_t inter, bool has_layers);

struct HfPrefill {
  Bytes hidden;  // residual stream + normed input
  HfAttentionTemps attention;
  HfMlpTemps mlp;         // with the int8 accumulator added
  bool attn_peak = true;  // the attention term is the layer's peak
  Bytes layer_peak;
  Bytes dequant;
  Bytes act;  // hidden + mask + layer peak + dequant (0 without layers)
};
// REQUIRES: mlp from HfPrefillMlp, quant from HfQuantTransients(mlp.inter).
HfPrefill HfPrefillTemporaries(const InferenceWorkload& w, const HfJob& job, const HfDevice& dev,
                               HfMlpTemps mlp, const HfQuantTemps& quant);

// --- Decode temporaries at the last step, one token per sequence (docs 5.7).
struct HfDecode {
  Bytes act;       // hidden, MLP and q/k/v of one token (+ eager scores)
  Bytes cat_copy;  // torch.cat copy of one layer's K (< 4.42: a second full KV)
};
HfDecode HfDecodeTemporaries(const ModelSpec& s, const InferenceWorkload& w, const HfJob& job,
                             const HfDevice& dev, const HfMlpTemps& mlp, const KvBytes& kv_full);

// --- Logits (docs 5.6), on the device that runs the head.
struct HfLogits {
  Bytes prefill;  // prefill forward (version-dependent positions and upcasts)
  Bytes decode;   // one position per sequence, compute dtype + fp32 copy
  std::string prefill_formula;
};
HfLogits HfLogitsOf(const InferenceWorkload& w, const HfJob& job, bool has_head);

// --- Phases (docs 5.1).
enum class HfPhase { kLoad, kPrefill, kDecode };
const char* HfPhaseName(HfPhase p);  // "load", "prefill", "decode"

struct HfPhaseTotals {
  Bytes load;
  Bytes prefill;
  Bytes decode;
};
// The phase whose live total is largest: decode when the job decodes and
// decode > prefill, else prefill; load when it exceeds both.
HfPhase HfPeakPhase(const HfPhaseTotals& t, bool has_decode);

// --- Allocator reserve (docs 5.9).

// Segment rounding of the weight tensors the device holds, bytes.
Bytes HfSegmentRounding(const Model& model, const std::vector<StorageParts>& storage,
                        const HfJob& job, const HfDevice& dev);
// Segments DynamicCache's torch.cat growth leaves behind from prefill to the
// last decode step, before any bound, bytes.
Bytes HfOutgrownSegments(const ModelSpec& s, const HfJob& job, LayerRange range);

struct HfReserve {
  Bytes rounding;
  Bytes freed;          // cached prefill temporaries (peak after prefill)
  Bytes growth;         // outgrown cache segments, bounded
  Component component;  // "allocator_reserve"
};
// The reserve on top of `allocated` at the peak phase: rounding, freed
// prefill temporaries, outgrown segments bounded by the decode-time KV growth
// and by the room left on the GPU (the allocator frees cached blocks before
// an OOM).
HfReserve HfAllocatorReserve(const Model& model, const std::vector<StorageParts>& storage,
                             const HfJob& job, const HfDevice& dev, HfPhase phase, Bytes allocated,
                             Bytes prefill_total, const KvBytes& kv_prefill,
                             const KvBytes& kv_full);

// The "cuda_context" component, kTorchCudaContextMiB (docs 5.10).
Component HfCudaContext();

// --- Once per estimate.

// The workload echo (e.workload), in print order.
void HfEcho(const InferenceWorkload& w, Echo* echo);
// The notes (MLA cache, bnb 4-bit, the modelled stack, cuda_context).
void HfNotes(const InferenceWorkload& w, const HfJob& job, std::vector<std::string>* notes);

// One device's estimate: every step above.
DeviceEstimate HfDeviceEstimate(const Model& model, const InferenceWorkload& w, const HfJob& job,
                                const std::vector<StorageParts>& storage, const DeviceSet& devices,
                                int64_t stage, int64_t rank);

// --- Encoder and encoder-decoder models (hf_encoder.cc; docs 12.2).

// Refusals: --new on an encoder (no generation), --tp/--pp above 1.
Status CheckEncoderInference(const ModelSpec& s, const InferenceSettings& given, const InferenceWorkload& w);

// One bidirectional forward over b x s tokens, no grad: the temporaries of
// the largest step (attention or MLP of one layer), and the hidden states.
struct HfEncoderPass {
  Bytes hidden;     // residual stream + normed input, b x s x h x 2e
  Bytes attention;  // q, k, v, out (+ rotary copies) and eager scores + probs
  Bytes mlp;        // intermediate-width temporaries
  std::string formula;
};
HfEncoderPass HfEncoderForward(const ModelSpec& s, const InferenceWorkload& w, const HfJob& job);

// Encoder-decoder generate(): the decoder's self-attention cache over the
// generated tokens and the cross-attention K/V over the encoder tokens, per
// decoder layer.
struct HfCrossKv {
  KvBytes self;
  KvBytes cross;
  Bytes sum() const { return self.sum() + cross.sum(); }
};
HfCrossKv HfEncoderDecoderKv(const ModelSpec& s, const HfJob& job, int64_t decoder_tokens);

// The head's output of an encoder forward: mlm logits over every position
// (compute dtype), classifiers over labels; 0 for the base model.
Bytes HfEncoderHeadOutput(const ModelSpec& s, const HfJob& job);

}  // namespace vramfit::runtimes::hf

#endif  // VRAMFIT_SRC_CORE_RUNTIMES_HF_STEPS_H_
