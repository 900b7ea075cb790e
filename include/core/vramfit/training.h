// Training and fine-tuning: settings, their resolution, and the estimate.
//
// Models a PyTorch training step the way it allocates: model state
// (weights, fp32 master copy, gradients, optimizer states, adapters), the
// tensors autograd saves for backward per layer, the logits and loss
// buffers, sharding (DDP, ZeRO-1/2/3, FSDP, offload) and tensor/pipeline
// parallelism. The peak is the largest of three phases: end of forward,
// late backward, optimizer step. Every term: docs/estimation.md
// ("training").
#ifndef VRAMFIT_TRAINING_H_
#define VRAMFIT_TRAINING_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vramfit/device.h"
#include "vramfit/error.h"
#include "vramfit/estimate.h"
#include "vramfit/model.h"
#include "vramfit/quant.h"
#include "vramfit/workload.h"

namespace vramfit {

enum class TrainMethod { kFull, kLora, kQlora, kFreeze };
// bf16-mixed / fp16-mixed: 16-bit weights and gradients, fp32 master copy
// and optimizer states (DeepSpeed / Megatron mixed precision). bf16: pure
// bf16 weights, gradients and states; fp16 the same in float16 (adapters over
// a float16 base on GPUs without bf16). fp32: everything fp32.
enum class Precision { kBf16Mixed, kFp16Mixed, kBf16, kFp16, kFp32 };
// paged-adamw: bitsandbytes PagedAdamW (32-bit states in CUDA managed
// memory); paged-adamw-8bit its 8-bit variant.
enum class Optimizer { kAdamW, kAdamW8bit, kPagedAdamW8bit, kAdafactor, kSgd, kSgdMomentum, kLion, kPagedAdamW };
enum class GradCkpt { kNone, kFull, kSelective };
enum class Offload { kNone, kOptimizer, kParams };
// Cross-entropy implementation: hf (transformers ForCausalLMLoss: fp32
// upcast of the full logits), chunked (torchtune CEWithChunkedOutputLoss),
// fused (Liger / cut-cross-entropy: the [tokens, vocab] matrix is never
// materialized).
enum class LossImpl { kHf, kChunked, kFused };
// The training stack that runs the job (--stack): each allocates the same
// model differently (which activations it saves, how it computes the loss,
// which copies it keeps, how it shards) and has its own defaults. One
// profile per stack: src/core/stacks/, docs/estimation.md section 7.9.
enum class Stack { kHfTrainer, kAxolotl, kUnsloth, kTorchtune, kTorchtitan, kLitgpt };

const char* MethodName(TrainMethod m);
const char* PrecisionName(Precision p);
const char* OptimizerName(Optimizer o);
const char* GradCkptName(GradCkpt g);
const char* OffloadName(Offload o);
const char* LossName(LossImpl l);
const char* StackName(Stack s);
Result<TrainMethod> ParseMethod(std::string_view s);
Result<Precision> ParsePrecision(std::string_view s);
Result<Optimizer> ParseOptimizer(std::string_view s);
Result<GradCkpt> ParseGradCkpt(std::string_view s);
Result<Offload> ParseOffload(std::string_view s);
Result<LossImpl> ParseLoss(std::string_view s);
// "hf-trainer", "axolotl", ...; deepspeed and megatron are named in the
// error as not modelled yet.
Result<Stack> ParseStack(std::string_view s);
// Every stack, in --help order.
std::vector<Stack> AllStacks();
// Whether `setting` (a flag name without dashes) is one the stack honours
// besides the common ones; the others are refused with the stack named.
bool StackTakes(Stack stack, std::string_view setting);
// The loss implementation the stack offers in place of `current` when the
// job does not fit (hf -> chunked or fused), if any.
std::optional<LossImpl> StackSmallerLoss(Stack stack, LossImpl current);
// One line on what the stack is, for --help and the docs.
std::string_view StackSummary(Stack stack);

// Training settings as given; nullopt = the stack's default (--stack
// picks them: torchtune checkpoints activations and chunks the loss,
// Unsloth offloads its checkpoints, ...).
struct TrainingSettings {
  Stack stack = Stack::kHfTrainer;
  TrainMethod method = TrainMethod::kFull;
  std::optional<Precision> precision;
  std::optional<Optimizer> optimizer;
  std::optional<bool> optimizer_fused;        // --optimizer-impl fused (else foreach)
  std::optional<bool> optimizer_in_backward;  // --optimizer-impl in-backward
  int64_t seq = 2048;                    // tokens per sample
  // Encoder-decoder models: the decoder's (target) tokens per sample;
  // nullopt: --seq, as for the encoder.
  std::optional<int64_t> target_seq;
  int64_t batch = 1;                     // micro-batch per GPU
  int64_t grad_accum = 1;
  std::optional<GradCkpt> grad_ckpt;
  std::optional<bool> offload_activations;  // saved activations / checkpoints to host
  std::optional<AttnImpl> attn;
  std::optional<LossImpl> loss;
  std::optional<int64_t> lora_rank;
  std::optional<std::string> lora_targets;  // all-linear | attn | mlp | q,k,v,o,gate,up,down,...
  std::optional<WeightFormat> quant;     // frozen base format (qlora: nf4-dq)
  std::optional<int64_t> trainable_layers;  // freeze: train the last N layers (+ head)
  int64_t zero = 0;                      // DeepSpeed ZeRO stage
  bool fsdp = false;                     // FSDP full shard
  std::optional<int64_t> gpus;           // data-parallel degree
  Offload offload = Offload::kNone;
  int64_t tp = 1;
  int64_t pp = 1;
  // --bnb-version X.Y.Z, as X*10000 + Y*100 + Z (0.43.1 = 4301): the
  // bitsandbytes release under a 4-bit base; nullopt: a current one.
  std::optional<int64_t> bnb_version;
  // --compile: torch.compile as the stack applies it (torchtune compile:
  // True, torchtitan --compile.enable); nullopt: the stack's default (off).
  std::optional<bool> compile;
};

// bitsandbytes 0.43.2 stopped MatMul4Bit keeping its 16-bit input for
// backward (bitsandbytes/autograd/_functions.py, PR #1270).
inline constexpr int64_t kBnbNoSavedInput = 4302;
// "0.43.1" -> 4301; an error naming --bnb-version otherwise.
Result<int64_t> ParseBnbVersion(std::string_view s);

// LoRA targets resolved against the model: which projection names.
struct LoraTargets {
  bool q = false, k = false, v = false, o = false;
  bool gate = false, up = false, down = false;
  bool experts = false, router = false;
};

struct TrainingWorkload {
  Stack stack = Stack::kHfTrainer;
  TrainMethod method = TrainMethod::kFull;
  Precision precision = Precision::kBf16Mixed;
  Optimizer optimizer = Optimizer::kAdamW;
  bool optimizer_fused = false;
  bool optimizer_in_backward = false;  // each gradient applied and freed as produced
  int64_t seq = 2048;
  int64_t target_seq = 0;  // encoder-decoder: decoder tokens per sample (0: decoder-only or encoder)
  int64_t batch = 1;
  int64_t grad_accum = 1;
  GradCkpt grad_ckpt = GradCkpt::kNone;
  bool offload_activations = false;
  AttnImpl attn = AttnImpl::kSdpa;
  LossImpl loss = LossImpl::kHf;
  int64_t lora_rank = 16;
  std::string lora_targets;
  LoraTargets targets;
  WeightFormat quant;                   // frozen base format
  int64_t trainable_layers = 0;         // freeze: last N layers train
  int64_t zero = 0;
  bool fsdp = false;
  int64_t dp = 1;
  Offload offload = Offload::kNone;
  int64_t tp = 1;
  int64_t pp = 1;
  int64_t bnb_version = 0;  // 0: a current bitsandbytes (>= kBnbNoSavedInput)
  bool compile = false;     // torch.compile as the stack applies it
};

// Resolves defaults and checks the settings against the model and devices.
// Errors name the flag ("--zero: ...").
Result<TrainingWorkload> ResolveTraining(const Model& model, const TrainingSettings& s,
                                         const DeviceSet& devices, std::vector<std::string>* notes);

// LoRA adapter parameters for the resolved targets: sum over targeted
// linears of rank x (in + out). Llama-3.1-8B, r 16, all-linear: 41,943,040.
int64_t LoraParams(const Model& model, const TrainingWorkload& w);

// Estimates a training step. REQUIRES: w came from ResolveTraining.
// options.formulas = false: numbers only (estimate.h, EstimateOptions).
Result<Estimate> EstimateTraining(const Model& model, const TrainingWorkload& w,
                                  const DeviceSet& devices, const EstimateOptions& options = {});

}  // namespace vramfit

#endif  // VRAMFIT_TRAINING_H_
