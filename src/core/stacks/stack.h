// Training-stack profiles: one per stack (--stack), each in its own file
// (hf_trainer.cc, axolotl.cc, unsloth.cc, torchtune.cc, torchtitan.cc,
// litgpt.cc), registered in registry.cc. The shape follows the runtime
// profiles (runtimes/profile.h): a profile
//   resolves   fills every setting the user left unset with the stack's own
//              default (saying so when it matters) and refuses what the
//              stack cannot run ("--zero: torchtune shards with FSDP2 ...");
//   terms      says how the stack allocates what the training estimator
//              sums (adapter dtype, AMP over fp32 parameters, the fp32
//              upcast of QLoRA's dense parameters, the loss buffers, what
//              selective checkpointing saves, load-time materialization).
// Nothing outside src/core/stacks/ tests which stack it is. Every term is
// cited in docs/estimation.md section 7.9.
#ifndef VRAMFIT_SRC_CORE_STACKS_STACK_H_
#define VRAMFIT_SRC_CORE_STACKS_STACK_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vramfit/device.h"
#include "vramfit/model.h"
#include "vramfit/training.h"

namespace vramfit::stacks {

// What --grad-ckpt selective keeps, by stack.
enum class SelectiveAc {
  kEagerSoftmax,  // Megatron-style: recompute the attention core (eager softmax) only
  kEveryOtherMm,  // torchtitan op-level SAC: save sdpa + every other matmul output
};

// How the stack allocates what the estimator sums (training_steps.h reads
// these through StackOverheads).
struct StackTerms {
  // LoRA weight / gradient / state element size: 4 where PEFT casts the
  // adapters to fp32; 0 = the model's parameter dtype (4 under AMP).
  int64_t adapter_bytes = 4;
  // PEFT casts each targeted module's input to the adapter dtype, so every
  // targeted module saves its own copy of the input (at the compute dtype);
  // fused kernels (Unsloth) and model-dtype adapters save the input once.
  bool peft_input_copies = true;
  // The stack's LoRA dropout is on by default (LitGPT finetune/lora.py
  // lora_dropout 0.05): each adapter-bearing input keeps its dropout output
  // and a 1-byte mask for backward.
  bool lora_dropout = false;
  // QLoRA: the non-quantized parameters (embeddings, norms, head) cast to
  // fp32 and the residual stream with them (PEFT
  // prepare_model_for_kbit_training).
  bool kbit_fp32_upcast = true;
  // --precision bf16-mixed / fp16-mixed without ZeRO/FSDP is torch autocast
  // over parameters kept in fp32 (HF Trainer, Lightning Fabric): 4 B
  // weights and gradients, no separate master copy, and a 16-bit copy of
  // each fp32 linear weight saved for backward by its matmul.
  bool amp_over_fp32 = true;
  // Logits + cross-entropy bytes per token per vocab entry at the start of
  // backward, x10, and what computes them.
  int64_t loss_tenths = 120;
  // A loss computed in fixed token chunks (TRL chunked_nll: 256 tokens of
  // fp32 logits + log-probs; Unsloth: fp32 chunks up to 4 GiB): bytes per
  // vocab entry of one chunk of chunk_tokens (0: none).
  int64_t loss_chunk_tokens = 0;
  int64_t loss_chunk_bytes = 0;
  int64_t loss_chunk_cap = 0;  // cap on one chunk's bytes (0: none)
  // A loss whose chunk count is sized from the memory free on the device
  // (Unsloth's fused cross-entropy): it budgets budget_per_logit bytes per
  // (token x vocab) element against target = min(free / 2, target_cap)
  // less the [tokens, hidden] input gradient it keeps, picks a multiple of
  // 4 chunks, and one chunk really holds held_per_logit bytes per element.
  struct FreeMemoryChunks {
    int64_t budget_per_logit = 0;  // 0: not this kind of loss
    int64_t held_per_logit = 0;
    int64_t target_cap = 0;
  };
  FreeMemoryChunks loss_free_chunks;
  std::string loss_text;
  SelectiveAc selective = SelectiveAc::kEagerSoftmax;
  // FSDP with a full state dict: each rank holds the whole 16-bit model
  // once while loading (the load phase).
  bool full_state_dict_load = false;
  // Every quantized linear keeps its 16-bit input for backward even where
  // its weight is frozen (bitsandbytes MatMul4Bit before 0.43.2).
  bool quant_input_saved = false;
  // The stack's own model class runs q, k and v as one linear whatever the
  // checkpoint's layout (LitGPT CausalSelfAttention.attn / qkv).
  bool fused_qkv = false;
};

class StackProfile {
 public:
  virtual ~StackProfile() = default;
  virtual Stack id() const = 0;
  const char* name() const { return StackName(id()); }
  virtual std::string_view Summary() const = 0;
  // The settings this stack honours besides the common ones (method,
  // precision, optimizer, seq, batch, grad-accum, grad-ckpt, attn, loss,
  // quant, lora-rank, lora-targets, trainable-layers, gpus); any other
  // stack-specific setting given with it is refused.
  virtual std::span<const std::string_view> Settings() const = 0;
  // Fills every unset optional of *s with the stack's default and checks
  // what the stack cannot run. Notes say which defaults the stack chose
  // when they change the memory. Errors name the flag.
  virtual Status Resolve(const ModelSpec& spec, const DeviceSet& devices, TrainingSettings* s,
                         std::vector<std::string>* notes) const = 0;
  // The stack's terms for a resolved workload.
  virtual StackTerms Terms(const TrainingWorkload& w) const = 0;
  // The loss the "does not fit" fixes offer in place of the current one
  // (nullopt: none smaller).
  virtual std::optional<LossImpl> SmallerLoss(LossImpl current) const;
};

const StackProfile& ProfileFor(Stack s);
std::span<const StackProfile* const> AllProfiles();

const StackProfile& HfTrainerProfile();
const StackProfile& AxolotlProfile();
const StackProfile& UnslothProfile();
const StackProfile& TorchtuneProfile();
const StackProfile& TorchtitanProfile();
const StackProfile& LitgptProfile();

// --- Shared by the profiles.

// Sets *opt to v when unset; returns whether it did (the default was used).
template <typename T, typename U>
bool Default(std::optional<T>* opt, U&& v) {
  if (opt->has_value()) return false;
  *opt = std::forward<U>(v);
  return true;
}
// Whether the job holds LoRA adapters.
inline bool Adapters(const TrainingSettings& s) {
  return s.method == TrainMethod::kLora || s.method == TrainMethod::kQlora;
}
// "--zero: <stack> ...": refuses a sharding, parallel or offload setting
// the stack does not have (zero > 0, fsdp, tp > 1, pp > 1, offload).
Status RefuseUnsupported(const TrainingSettings& s, std::string_view stack, bool zero, bool fsdp,
                         bool tp_pp, bool offload);
// The HF Trainer family (hf-trainer, axolotl): refusals and defaults, and
// the terms (PEFT fp32 adapters, kbit upcast, AMP, transformers' loss).
Status ResolveHfLike(std::string_view stack, const DeviceSet& devices, TrainingSettings* s,
                     std::vector<std::string>* notes);
StackTerms HfLikeTerms(const TrainingWorkload& w);
// Whether the job's 4-bit base runs through a bitsandbytes release whose
// MatMul4Bit.forward keeps the input A for backward
// (`ctx.tensors = (A, B)` in 0.41.0 .. 0.43.1; `(None, B)` from 0.43.2,
// bitsandbytes/autograd/_functions.py, PR #1270). Stacks that call
// bnb.matmul_4bit (hf-trainer, axolotl, litgpt) set quant_input_saved by it.
bool OldBnbSavesInput(const TrainingWorkload& w);
// The loss text of the common implementations.
std::string LossText(LossImpl l);
// Whether the device set's first GPU lacks bf16 (compute capability < 8.0).
bool NoBf16(const DeviceSet& devices);

}  // namespace vramfit::stacks

#endif  // VRAMFIT_SRC_CORE_STACKS_STACK_H_
