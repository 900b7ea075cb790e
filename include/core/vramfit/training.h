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
// bf16 weights, gradients and states. fp32: everything fp32.
enum class Precision { kBf16Mixed, kFp16Mixed, kBf16, kFp32 };
enum class Optimizer { kAdamW, kAdamW8bit, kPagedAdamW8bit, kAdafactor, kSgd, kSgdMomentum, kLion };
enum class GradCkpt { kNone, kFull, kSelective };
enum class Offload { kNone, kOptimizer, kParams };
// Cross-entropy implementation: hf (transformers ForCausalLMLoss: fp32
// upcast of the full logits), chunked (torchtune CEWithChunkedOutputLoss),
// fused (Liger / cut-cross-entropy: the [tokens, vocab] matrix is never
// materialized).
enum class LossImpl { kHf, kChunked, kFused };

const char* MethodName(TrainMethod m);
const char* PrecisionName(Precision p);
const char* OptimizerName(Optimizer o);
const char* GradCkptName(GradCkpt g);
const char* OffloadName(Offload o);
const char* LossName(LossImpl l);
Result<TrainMethod> ParseMethod(std::string_view s);
Result<Precision> ParsePrecision(std::string_view s);
Result<Optimizer> ParseOptimizer(std::string_view s);
Result<GradCkpt> ParseGradCkpt(std::string_view s);
Result<Offload> ParseOffload(std::string_view s);
Result<LossImpl> ParseLoss(std::string_view s);

// Training settings as given; nullopt = the default.
struct TrainingSettings {
  TrainMethod method = TrainMethod::kFull;
  Precision precision = Precision::kBf16Mixed;
  Optimizer optimizer = Optimizer::kAdamW;
  bool optimizer_fused = false;          // --optimizer-impl fused (default foreach)
  int64_t seq = 2048;                    // tokens per sample
  int64_t batch = 1;                     // micro-batch per GPU
  int64_t grad_accum = 1;
  GradCkpt grad_ckpt = GradCkpt::kNone;
  AttnImpl attn = AttnImpl::kSdpa;
  LossImpl loss = LossImpl::kHf;
  int64_t lora_rank = 16;
  std::string lora_targets = "all-linear";  // all-linear | attn | mlp | q,k,v,o,gate,up,down,...
  std::optional<WeightFormat> quant;     // frozen base format (qlora: nf4-dq)
  std::optional<int64_t> trainable_layers;  // freeze: train the last N layers (+ head)
  int64_t zero = 0;                      // DeepSpeed ZeRO stage
  bool fsdp = false;                     // FSDP full shard
  std::optional<int64_t> gpus;           // data-parallel degree
  Offload offload = Offload::kNone;
  int64_t tp = 1;
  int64_t pp = 1;
};

// LoRA targets resolved against the model: which projection names.
struct LoraTargets {
  bool q = false, k = false, v = false, o = false;
  bool gate = false, up = false, down = false;
  bool experts = false, router = false;
};

struct TrainingWorkload {
  TrainMethod method = TrainMethod::kFull;
  Precision precision = Precision::kBf16Mixed;
  Optimizer optimizer = Optimizer::kAdamW;
  bool optimizer_fused = false;
  int64_t seq = 2048;
  int64_t batch = 1;
  int64_t grad_accum = 1;
  GradCkpt grad_ckpt = GradCkpt::kNone;
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
