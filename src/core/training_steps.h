// The steps of the training estimate (training.cc), exposed for their unit
// tests (tests/unit/training_steps_test.cc). Internal to the core.
//
// The shape follows the runtime profiles (runtimes/profile.h):
//   resolve    ResolveTraining: one small step per group of settings;
//   components model state (weights, master, gradients, optimizer states,
//              adapters) under sharding, saved activations per layer,
//              logits/loss, framework overheads (buffers, allocator,
//              CUDA context, NCCL);
//   phases     forward end / backward / optimizer step, the largest is the
//              peak;
// then the host (offload) components, the echo and the notes. What a
// training stack (HF Trainer, torchtune, Unsloth...) changes is gathered in
// StackOverheads, so a later training-stack profile can supply its own.
// Every term: docs/estimation.md section 7 and docs/research/training.md.
#ifndef VRAMFIT_SRC_CORE_TRAINING_STEPS_H_
#define VRAMFIT_SRC_CORE_TRAINING_STEPS_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "runtimes/runtimes.h"
#include "vramfit/training.h"

namespace vramfit::training {

// --- Element sizes and limits.

// Bytes of one fp32 element (master weights, fp32 optimizer states, the
// fp32 upcasts autograd saves).
constexpr int64_t kF32Bytes = 4;
// PEFT casts adapter weights to fp32 (autocast_adapter_dtype=True,
// huggingface/peft src/peft/peft_model.py L127-130; research 3.1), so their
// gradients and optimizer states are fp32 too.
constexpr int64_t kAdapterBytes = 4;
// prepare_model_for_kbit_training casts every non-quantized parameter
// (embeddings, head, norms) to fp32 (peft src/peft/utils/other.py
// L158-233; research 3.2); the residual stream follows the fp32 embedding.
constexpr int64_t kQloraResidualBytes = 4;
// bitsandbytes 8-bit optimizers (bitsandbytes/optim/optimizer.py @95f9af30):
// tensors under min_8bit_size = 4096 elements keep fp32 states (L502);
// others take a uint8 state + one fp32 absmax per 256-element block
// (blocksize 256 since 0.44.0, commit aa57bd89; L518-529).
constexpr int64_t kEightBitMinElements = 4096;
constexpr int64_t kEightBitBlock = 256;
// Largest --grad-accum and --lora-rank accepted, far above any real job.
constexpr int64_t kMaxGradAccum = 1 << 20;
constexpr int64_t kMaxLoraRank = 1 << 16;
// --method freeze without --trainable-layers trains the last quarter of the
// layers (docs/estimation.md 7.2).
constexpr int64_t kFreezeDefaultDivisor = 4;
// The frozen base format QLoRA defaults to (the QLoRA paper's NF4 with
// double quantization; docs/estimation.md 7.2).
constexpr const char* kQloraDefaultQuant = "nf4-dq";

// --- Activation terms (research 4.3-4.5).

// lora_A outputs (rank wide, fp32) are saved for lora_B: at most 7 targeted
// modules per layer (q, k, v, o, gate, up, down).
constexpr int64_t kLoraModulesPerLayer = 7;
// fp32 router logits + their softmax per expert per token (MoE layers).
constexpr int64_t kRouterBytesPerExpert = 8;
// Final norm + lm_head input on the last stage: ~6 B per hidden element per
// token (bf16 norm input, fp32 norm upcast; research 4.5, derived).
constexpr int64_t kHeadInputBytesPerHidden = 6;

// --- Logits and loss: bytes per token per vocabulary entry at the start of
// backward, in tenths of a byte (research 5): hf 12 B (transformers
// ForCausalLMLoss upcasts to fp32: log_softmax output + its gradient + the
// input gradient, loss/loss_utils.py @0114da07); chunked 6.5 B (torchtune
// CEWithChunkedOutputLoss, 8 chunks); fused ~1 B (Liger
// LigerFusedLinearCrossEntropy / cut-cross-entropy never materialize
// [tokens, vocab]).
constexpr int64_t kLossTenthsHf = 120;
constexpr int64_t kLossTenthsChunked = 65;
constexpr int64_t kLossTenthsFused = 10;

// --- Sharding buffers (research 7.1, 7.2).

// DeepSpeed ZeRO-1/2 reduce_bucket_size and allgather_bucket_size, 5e8
// elements each (deepspeed/runtime/zero/config.py @edaa7221 L113, L132).
constexpr int64_t kZeroBucketElements = 500000000;
// ZeRO-3 stage3_prefetch_bucket_size, 5e7 elements in code (config.py
// L215; the config doc says 5e8).
constexpr int64_t kZero3PrefetchElements = 50000000;
// ZeRO-3 holds the gathered layer in use and the next one.
constexpr int64_t kZero3GatheredLayers = 2;
// FSDP FULL_SHARD: the unit in use, the prefetched next one and one whose
// gradients await reduce-scatter, unsharded (pytorch FSDP notes; FSDP2
// commit f2805a04; research 7.2, derived).
constexpr int64_t kFsdpUnitsInFlight = 3;

// --- Allocator, context, NCCL (research 8).

// Large tensors (the caching allocator's kMinLargeAlloc, 10 MiB) cost
// ~1 MiB of 2 MiB segment rounding each on average; the sum is capped at
// 1/50 (2 %) of allocated.
constexpr int64_t kLargeTensorBytes = 10 * kMiB;
constexpr int64_t kRoundingPerLargeTensor = kMiB;
constexpr int64_t kRoundingCapDivisor = 50;
// Fragmentation, percent of the transient tensors (activations, logits,
// buffers): observed reserved/allocated 1.0-1.15 on one GPU and 1.2-1.35
// with ZeRO-3/FSDP (truth cases c184, c186-c187, c234-c238).
constexpr int64_t kFragmentationPct = 5;
constexpr int64_t kFragmentationPctShardedParams = 15;
// CUDA context + kernel images per process under lazy loading (the same
// PyTorch figure as the hf runtime, docs/estimation.md 5.10).
constexpr int64_t kCudaContextMiB = 512;
// NCCL communicator buffers per process when more than one GPU takes part
// (research 8: budget 0.5-1 GiB per process for plain DP/FSDP).
constexpr int64_t kNcclMiB = 512;

// What the training stack (--stack, src/core/stacks/) adds on top of the
// model and the ops: the profile's terms plus the allocator and process
// overheads.
struct StackOverheads {
  int64_t loss_tenths = kLossTenthsHf;  // logits + CE bytes per token per vocab entry, x10
  std::string loss_text;                // what computes the loss
  int64_t fragmentation_pct = kFragmentationPct;
  int64_t cuda_context_mib = kCudaContextMiB;
  int64_t nccl_mib = kNcclMiB;  // when more than one GPU takes part
  int64_t adapter_bytes = kAdapterBytes;  // LoRA element size (PEFT fp32); 0 = model dtype
  bool peft_input_copies = true;          // each targeted module saves its own input copy
  bool lora_dropout = false;              // dropout output + mask per adapter input
  int64_t loss_chunk_tokens = 0;          // fixed-chunk loss (TRL chunked_nll, Unsloth)
  int64_t loss_chunk_bytes = 0;
  int64_t loss_chunk_cap = 0;
  // A loss chunked to the memory free on the device (Unsloth fused CE):
  // bytes budgeted and held per (token x vocab) element, the cap on the
  // budget, and the free memory it budgets against (-1: no device given,
  // the cap applies).
  int64_t loss_budget_per_logit = 0;
  int64_t loss_held_per_logit = 0;
  int64_t loss_target_cap = 0;
  int64_t loss_free_bytes = -1;
  bool kbit_fp32_upcast = true;           // QLoRA dense parameters fp32 (PEFT)
  bool quant_input_saved = false;         // bnb < 0.43.2: every 4-bit linear keeps its input
  bool fused_qkv = false;                 // the stack's own model fuses q, k, v (LitGPT attn)
  // Autocast over fp32 parameters: the stack's AMP with --precision
  // *-mixed and no ZeRO/FSDP (those keep 16-bit weights + an fp32 master).
  bool amp = false;
  bool selective_every_other_mm = false;  // torchtitan op-level SAC
  bool full_state_dict_load = false;      // each rank materializes the 16-bit model at load
};
// Refuses what the GPUs cannot run (--attn flash below compute capability
// 8.0) and notes bf16 where it runs emulated. given: the user's settings;
// filled: after the stack's defaults.
Status CheckTrainCapabilities(const TrainingSettings& given, const TrainingSettings& filled,
                              const DeviceSet& devices, std::vector<std::string>* notes);

// The overheads of w's stack (its profile's terms; fragmentation 15 % when
// parameters are sharded).
StackOverheads DefaultStackOverheads(const TrainingWorkload& w);

// --- Resolve steps (ResolveTraining runs them in this order).

// Copies the choices that need no check.
void CopyChoices(const TrainingSettings& s, TrainingWorkload* w);
// --seq, --batch, --grad-accum, --tp, --pp ranges; a note when --seq exceeds
// max_position_embeddings.
Status ResolveShape(const ModelSpec& spec, const TrainingSettings& s, TrainingWorkload* w,
                    std::vector<std::string>* notes);
// The frozen base format (qlora: nf4-dq) and which methods accept it.
Status ResolveBaseFormat(const TrainingSettings& s, TrainingWorkload* w);
// --bnb-version and --compile against the stack (its Settings()) and the
// base format.
Status ResolveStackFeatures(const TrainingSettings& s, TrainingWorkload* w);
// --lora-rank and --lora-targets for lora/qlora.
Status ResolveAdapters(const ModelSpec& spec, const TrainingSettings& s, TrainingWorkload* w);
// --trainable-layers (freeze only; default a quarter of the layers).
Status ResolveFreeze(const ModelSpec& spec, const TrainingSettings& s, TrainingWorkload* w,
                     std::vector<std::string>* notes);
// --zero, --fsdp, --offload and the combinations each needs.
Status ResolveSharding(const TrainingSettings& s, TrainingWorkload* w);
// The data-parallel degree from --gpus and the GPUs given (dp x tp x pp).
Status ResolveDataParallel(const TrainingSettings& s, const DeviceSet& devices, TrainingWorkload* w,
                           std::vector<std::string>* notes);
// tp against the attention heads, pp against the layers.
Status CheckTrainLayout(const ModelSpec& spec, const TrainingWorkload& w);
// The LoRA targets of a --lora-targets value against the model.
Result<LoraTargets> ParseTargets(const std::string& spec, const ModelSpec& s);

// --- Per-job quantities.
struct TrainJob {
  bool lora = false;  // lora or qlora: adapters train
  bool qlora = false;
  bool mixed = false;        // bf16-mixed / fp16-mixed: fp32 master copy
  bool paged = false;        // paged 8-bit states (CUDA managed memory)
  DType wdt = DType::kBF16;  // weight / activation dtype
  int64_t ew = 2;            // bytes per weight, activation, gradient element (e)
  int64_t e_state = 4;       // bytes per optimizer-state element (2 in pure bf16)
  int64_t e_res = 2;         // bytes per residual-stream element (fp32 under QLoRA)
  int64_t dp = 1, tp = 1, pp = 1;
  int64_t layers = 0;           // L
  int64_t first_trainable = 0;  // freeze: first layer that trains
  int64_t tokens = 0;           // T = batch x seq, per micro-batch per GPU
  int64_t world = 1;            // dp x tp x pp
  bool shard_params = false;    // ZeRO-3 / FSDP
  bool shard_grads = false;     // ZeRO-2+ / FSDP
  bool shard_states = false;    // ZeRO-1+ / FSDP
  bool states_on_host = false;  // --offload optimizer|params
  // From the stack (StackOverheads).
  bool amp = false;             // fp32 parameters under autocast: no master, 4 B weights and grads
  int64_t e_param = 2;          // bytes per stored dense weight element (4 under amp)
  int64_t e_grad = 2;           // bytes per gradient element (4 under amp)
  int64_t adapter_bytes = kAdapterBytes;
  bool peft_input_copies = true;
  bool lora_dropout = false;
  bool kbit_fp32_upcast = true;
  bool quant_input_saved = false;  // each quantized linear saves its input (old bitsandbytes)
  bool fused_qkv = false;          // the stack's model runs one qkv linear whatever the checkpoint
  bool selective_mm = false;    // torchtitan op-level selective checkpointing
  bool in_backward = false;     // optimizer step in backward: one gradient at a time
  bool offload_acts = false;    // saved activations / checkpoints live in host memory
};
TrainJob TrainJobOf(const ModelSpec& s, const TrainingWorkload& w);

// --- Model state (docs 7.1, 7.2).

// Whether a group's parameters train at all (freeze: its layers, the final
// norm and the head; lora/qlora: none of the base).
bool TrainableGroup(const TrainingWorkload& w, const TensorGroup& g);
// Tensors of the group that train (freeze: the group weighted by its layers
// at or after first_trainable).
int64_t TrainableCopies(const ModelSpec& s, const TrainingWorkload& w, const TrainJob& job,
                        const TensorGroup& g);
// Bytes of 8-bit blockwise optimizer state for a tensor of n elements with
// `states` states.
int64_t EightBitState(int64_t n, int64_t states);
// Optimizer-state bytes of `copies` tensors of the group.
int64_t GroupOptimizerBytes(Optimizer o, const TensorGroup& g, int64_t copies, int64_t e_state);
// Optimizer-state bytes of the LoRA adapters (A [r, in] and B [out, r] per
// targeted linear, fp32).
int64_t AdapterOptimizerBytes(const Model& model, const TrainingWorkload& w);

// Trainable parameters and their state, whole model, before sharding.
struct TrainableState {
  int64_t params = 0;          // trainable base parameters
  int64_t opt_bytes = 0;       // their optimizer-state bytes
  int64_t adapter_params = 0;  // LoRA parameters (LoraParams)
  int64_t adapter_opt = 0;     // adapter optimizer-state bytes
};
TrainableState TrainableStateOf(const Model& model, const TrainingWorkload& w, const TrainJob& job);
// All base weights as stored (trainable or frozen; QLoRA's non-quantized
// parameters fp32), bytes.
Bytes BaseWeightBytes(const Model& model, const TrainingWorkload& w, const TrainJob& job);

// --- Saved activations, bytes per token of one layer (docs 7.3).
int64_t NormSavedPerToken(const ModelSpec& s, const TrainJob& job, bool base_trainable);
int64_t AttentionSavedPerToken(const ModelSpec& s, const TrainingWorkload& w, const TrainJob& job,
                               bool base_trainable);
int64_t MlpSavedPerToken(const ModelSpec& s, const TrainingWorkload& w, const TrainJob& job,
                         bool moe_layer, bool base_trainable);
// The layer's total: norms (replicated) + attention, MLP and LoRA
// intermediates divided by tp; 0 for frozen layers that no gradient
// crosses (freeze, before first_trainable).
int64_t LayerSavedPerToken(const ModelSpec& s, const TrainingWorkload& w, const TrainJob& job,
                           int64_t layer);

// --- One pipeline stage.
struct StageShare {
  runtimes::LayerRange range;
  bool first = false;         // holds the embeddings
  bool last = false;          // holds the final norm and the head
  double frac_all = 0;        // share of all parameters (by elements)
  double frac_trainable = 0;  // share of the trainable parameters
  double frac_layers = 0;     // share of the layers (adapters live with them)
};
// The share of the model's parameters (trainable only, or all) this stage
// holds, by elements of the inventory's groups.
double StageFraction(const Model& model, const TrainingWorkload& w, const TrainJob& job,
                     runtimes::LayerRange range, bool first, bool last, bool trainable_only);
StageShare StageShareOf(const Model& model, const TrainingWorkload& w, const TrainJob& job,
                        int64_t stage);
// ceil(bytes x frac / div): the bytes of a stage share split over div ranks.
Bytes Part(int64_t bytes, double frac, int64_t div);

// Model state on one device of the stage (before the phase decides what
// is live).
struct DeviceModelState {
  Bytes weights, master, states, grads;   // base model
  Bytes adapter_w, adapter_g, adapter_s;  // LoRA adapters
  int64_t wdiv = 1, sdiv = 1, gdiv = 1;   // ranks weights / states / gradients split over
};
DeviceModelState ModelStateOn(const TrainingWorkload& w, const TrainJob& job,
                              const TrainableState& tr, Bytes base_weights,
                              const StageShare& share);

// Saved activations on one device of the stage, for the micro-batches in
// flight (1F1B: min(pp - stage, grad_accum)).
struct StageActivations {
  Bytes acts;       // at the end of forward (+ head input on the last stage)
  Bytes layer_act;  // one layer's saved tensors, one micro-batch
  Bytes amp_casts;  // 16-bit copies of fp32 weights saved by autocast matmuls (in acts)
  Bytes offloaded;  // saved tensors held in host memory (--offload-activations)
  std::string formula;
};
StageActivations SavedActivationsOn(const ModelSpec& s, const TrainingWorkload& w,
                                    const TrainJob& job, const StageShare& share, int64_t stage);
// The 16-bit weight copies autocast's matmuls save for backward (AMP over
// fp32 parameters): the stage's layers (one layer when it is recomputed)
// and the head.
Bytes AmpCastBytes(const Model& model, const TrainingWorkload& w, const TrainJob& job,
                   const StageShare& share, bool one_layer);
// Bytes per token of one adapter-bearing input: PEFT's fp32 copy per
// targeted module, or the shared model-dtype input.
int64_t LoraInputBytes(const TrainJob& job, int64_t width, bool input_saved,
                       std::initializer_list<bool> targeted);
// LoRA-targeted linears of one layer that see each token.
int64_t TargetedModules(const ModelSpec& s, const LoraTargets& t, bool moe_layer);
// Saved bytes per token of a layer under torchtitan's op-level selective
// checkpointing.
int64_t SelectiveMmSavedPerToken(const ModelSpec& s, const TrainJob& job, bool moe_layer);
// Logits and cross-entropy buffers at the start of backward (last stage).
Bytes LossBytes(const ModelSpec& s, const TrainJob& job, const StackOverheads& oh, bool last);

// Communication buffers of the sharding mode (docs 7.6).
struct CommBuffers {
  Bytes bytes;
  std::string formula;
};
// Elements of the model's largest tensor (optimizer in backward: the
// gradient that lives longest).
int64_t LargestTensorElements(const Model& model);
// Parameters of the largest decoder layer (dense or MoE).
int64_t LargestLayerParams(const Model& model);
CommBuffers CommBuffersOn(const Model& model, const TrainingWorkload& w, const TrainJob& job,
                          const TrainableState& tr, const DeviceModelState& ms);

// --- Phases (docs 7.5).
enum class TrainPhase { kForwardEnd, kBackward, kOptimizerStep, kLoad };
const char* TrainPhaseName(TrainPhase p);  // "forward end", "backward", "optimizer step"
struct TrainPhases {
  Bytes forward_end, backward, step;  // allocated at each phase
  Bytes step_temp;                    // foreach optimizer temporaries
  Bytes load;                         // the load phase, when it is the peak
  TrainPhase peak = TrainPhase::kForwardEnd;
};
// The foreach AdamW/Lion step's parameter-sized list at the state dtype
// (_foreach_sqrt(exp_avg_sq)); 0 for fused, 8-bit and offloaded steps.
Bytes StepTemporaries(const TrainingWorkload& w, const TrainJob& job, const TrainableState& tr,
                      const StageShare& share, const DeviceModelState& ms);
TrainPhases PhasesOf(const TrainingWorkload& w, const TrainJob& job, const DeviceModelState& ms,
                     const StageActivations& acts, Bytes logits, const CommBuffers& buffers,
                     Bytes step_temp);

// --- Encoder and encoder-decoder models (training_encoder.cc; docs 12.3).

// Refusals for encoder jobs: --tp/--pp above 1; --method freeze over
// shared (ALBERT) or encoder-decoder layers.
Status CheckEncoderJob(const ModelSpec& s, const TrainingWorkload& w);
// Bytes one attention score element [b, heads, q, k] keeps for backward:
// eager: the softmax output (fp32 under autocast or T5's .float()), the
// dropout mask (1 B) and the probabilities matmul(probs, v) saves; sdpa and
// flash: 0 (the kernel keeps logsumexp only).
int64_t EncoderScoreBytes(const ModelSpec& s, const TrainingWorkload& w, const TrainJob& job);
// Saved bytes per token of one bidirectional encoder layer (self-attention
// over `seq` keys, MLP, norms, dropout masks).
int64_t EncoderLayerSavedPerToken(const ModelSpec& s, const TrainingWorkload& w, const TrainJob& job,
                                  int64_t seq);
// Saved bytes per decoder token of one encoder-decoder decoder layer:
// causal self-attention over `dec_seq`, cross-attention over `enc_seq`
// encoder tokens (their K and V per decoder token share: enc_seq/dec_seq).
int64_t DecoderLayerSavedPerToken(const ModelSpec& s, const TrainingWorkload& w, const TrainJob& job,
                                  int64_t dec_seq, int64_t enc_seq);
// Saved bytes per token of the task head's input side (MLM transform; 0
// for pooled classification).
int64_t HeadSavedPerToken(const ModelSpec& s, const TrainJob& job);
// All saved activations of an encoder / encoder-decoder step (one stage:
// pp is 1): embeddings, every layer, the head input; gradient
// checkpointing keeps each layer's input and recomputes one layer.
StageActivations EncoderSavedActivations(const ModelSpec& s, const TrainingWorkload& w,
                                         const TrainJob& job);
// Logits and loss of the head: mlm / seq2seq-lm over every token and the
// vocabulary (oh.loss_tenths B each), classifiers over labels only.
Bytes EncoderLossBytes(const ModelSpec& s, const TrainingWorkload& w, const TrainJob& job,
                       const StackOverheads& oh);
Component EncoderLogitsComponent(const ModelSpec& s, const TrainingWorkload& w, const StackOverheads& oh,
                                 Bytes logits, TrainPhase phase);

// --- Components at the peak phase.

// weights, master_weights, gradients, optimizer_states (and adapters).
void AddModelStateComponents(const Model& model, const TrainingWorkload& w, const TrainJob& job,
                             const TrainableState& tr, Bytes base_weights,
                             const DeviceModelState& ms, TrainPhase phase,
                             std::vector<Component>* comps);
Component ActivationsComponent(const TrainJob& job, const StageActivations& acts,
                               const CommBuffers& buffers, const TrainPhases& phases);
Component LogitsComponent(const ModelSpec& s, const TrainingWorkload& w, const TrainJob& job,
                          const StackOverheads& oh, Bytes logits, bool last, TrainPhase phase);

// Allocator reserve: segment rounding of the large tensors + fragmentation
// of the transient ones.
struct TrainReserve {
  Bytes rounding;
  Bytes fragmentation;
  Component component;  // "allocator_reserve"
};
TrainReserve AllocatorReserve(const Model& model, const TrainingWorkload& w, const TrainJob& job,
                              const StackOverheads& oh, Bytes allocated, Bytes transient);
// cuda_context, and non_torch (NCCL) when more than one GPU takes part.
void AddProcessOverheads(const TrainJob& job, const StackOverheads& oh,
                         std::vector<Component>* comps);

// --- Once per estimate.

// Host memory of --offload (master, states, fp32 gradient copy, weights).
std::vector<Component> HostComponents(const TrainingWorkload& w, const TrainJob& job,
                                      const TrainableState& tr, Bytes base_weights);
// The note "phase totals on gpu0 (allocated): forward end X GiB, ...".
std::string PhaseTotalsNote(const TrainPhases& p);
// The workload echo (e.workload), in print order.
void TrainEcho(const TrainingWorkload& w, const TrainableState& tr, Echo* echo);
// The notes after the phase totals (model state per parameter, methods,
// paged states, loss, eager attention, the peak rule).
void TrainNotes(const TrainingWorkload& w, const TrainJob& job, const StackOverheads& oh,
                std::vector<std::string>* notes);

}  // namespace vramfit::training

#endif  // VRAMFIT_SRC_CORE_TRAINING_STEPS_H_
