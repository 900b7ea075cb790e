// --stack unsloth: Unsloth's FastLanguageModel + its patched TRL trainer:
// offloaded gradient checkpointing, its fused cross-entropy and LoRA
// kernels, bitsandbytes 4-bit bases. Sources: docs/estimation.md 7.9.
#include <fmt/format.h>

#include "stack.h"

namespace vramfit::stacks {
namespace {

constexpr std::string_view kSettings[] = {"offload-activations"};

class Unsloth final : public StackProfile {
 public:
  Stack id() const override { return Stack::kUnsloth; }
  std::string_view Summary() const override {
    return "Unsloth: offloaded gradient checkpointing ('unsloth'), fused cross-entropy, its LoRA "
           "kernels, 8-bit AdamW, one GPU";
  }
  std::span<const std::string_view> Settings() const override { return kSettings; }
  Status Resolve(const ModelSpec&, const DeviceSet& devices, TrainingSettings* s,
                 std::vector<std::string>* notes) const override {
    VRAMFIT_TRY(RefuseUnsupported(*s, name(), false, false, false, false));
    if (s->optimizer_in_backward.value_or(false)) {
      return InvalidArgument("--optimizer-impl in-backward: unsloth steps after backward");
    }
    const bool no_bf16 = NoBf16(devices);
    Default(&s->precision, Adapters(*s) ? (no_bf16 ? Precision::kFp16 : Precision::kBf16)
                                         : (no_bf16 ? Precision::kFp16Mixed : Precision::kBf16Mixed));
    if (Default(&s->optimizer, Optimizer::kAdamW8bit) && notes) {
      notes->push_back("--stack unsloth: optim 'adamw_8bit' as its notebooks set it");
    }
    Default(&s->optimizer_fused, false);
    Default(&s->optimizer_in_backward, false);
    const bool ckpt_default = Default(&s->grad_ckpt, GradCkpt::kFull);
    const bool off_default = Default(&s->offload_activations, s->grad_ckpt == GradCkpt::kFull);
    if (ckpt_default && off_default && notes) {
      notes->push_back(
          "--stack unsloth: use_gradient_checkpointing='unsloth' checkpoints every layer and keeps the "
          "checkpoints in host memory (--grad-ckpt / --offload-activations to change)");
    }
    if (s->grad_ckpt == GradCkpt::kSelective) {
      return InvalidArgument("--grad-ckpt selective: unsloth checkpoints whole layers (full) or nothing");
    }
    Default(&s->loss, LossImpl::kFused);
    Default(&s->lora_rank, 16);
    Default(&s->lora_targets, std::string("all-linear"));
    return {};
  }
  StackTerms Terms(const TrainingWorkload& w) const override {
    StackTerms t;
    t.adapter_bytes = 4;            // lora_A/B upcast to fp32 (unsloth_zoo training_utils.py)
    t.peft_input_copies = false;    // LoRA_MLP / LoRA_QKV save X once
    t.kbit_fp32_upcast = false;     // its prepare_model_for_kbit_training keeps norms 16-bit
    t.amp_over_fp32 = true;
    if (w.loss == LossImpl::kFused) {
      // unsloth_fused_ce_loss (unsloth_zoo fused_losses/cross_entropy_loss.py
      // @002a0c99): _CE_BYTES_PER_LOGIT = 16 budgeted against
      // min(half the free memory, _CE_TARGET_GB_CAP = 4 GiB) less the input
      // gradient (get_chunk_size: a multiple of 4 chunks); a chunk holds
      // 14 B per logit (bf16 logits, fp32 upcast, log-softmax, gradient),
      // gradients computed in forward.
      t.loss_tenths = 0;
      t.loss_free_chunks = {16, 14, 4LL << 30};
      t.loss_text = "Unsloth fused cross-entropy (chunks sized to half the free memory, at most 4 GiB)";
    } else {
      t.loss_tenths = 120;
      t.loss_text = LossText(w.loss);
    }
    return t;
  }
  std::optional<LossImpl> SmallerLoss(LossImpl current) const override {
    if (current == LossImpl::kHf) return LossImpl::kFused;
    return std::nullopt;
  }
};

}  // namespace

const StackProfile& UnslothProfile() {
  static const Unsloth kProfile;
  return kProfile;
}

}  // namespace vramfit::stacks
