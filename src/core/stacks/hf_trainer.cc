// --stack hf-trainer: transformers Trainer / TRL SFTTrainer, with PEFT for
// LoRA, bitsandbytes for QLoRA and 8-bit optimizers, DeepSpeed ZeRO or
// accelerate FSDP for sharding. Sources: docs/estimation.md 7.9.
#include <fmt/format.h>

#include "stack.h"

namespace vramfit::stacks {
namespace {

constexpr std::string_view kSettings[] = {"zero", "fsdp", "offload", "bnb-version"};

class HfTrainer final : public StackProfile {
 public:
  Stack id() const override { return Stack::kHfTrainer; }
  std::string_view Summary() const override {
    return "transformers Trainer / TRL SFTTrainer + PEFT + bitsandbytes; DeepSpeed ZeRO (--zero) or "
           "accelerate FSDP (--fsdp)";
  }
  std::span<const std::string_view> Settings() const override { return kSettings; }
  Status Resolve(const ModelSpec&, const DeviceSet& devices, TrainingSettings* s,
                 std::vector<std::string>* notes) const override {
    return ResolveHfLike(name(), devices, s, notes);
  }
  StackTerms Terms(const TrainingWorkload& w) const override { return HfLikeTerms(w); }
  std::optional<LossImpl> SmallerLoss(LossImpl current) const override {
    if (current == LossImpl::kHf) return LossImpl::kFused;
    return std::nullopt;
  }
};

}  // namespace

Status ResolveHfLike(std::string_view stack, const DeviceSet& devices, TrainingSettings* s,
                     std::vector<std::string>* notes) {
  VRAMFIT_TRY(RefuseUnsupported(*s, stack, true, true, false, true));
  if (s->optimizer_in_backward.value_or(false)) {
    return InvalidArgument(fmt::format(
        "--optimizer-impl in-backward: --stack {} steps the optimizer after backward "
        "(torchtune's optimizer_in_bwd is --stack torchtune)",
        stack));
  }
  if (s->offload_activations.value_or(false)) {
    return InvalidArgument(fmt::format(
        "--offload-activations: --stack {} keeps activations on the GPU (torchtune and unsloth offload them)",
        stack));
  }
  const bool no_bf16 = NoBf16(devices);
  // Adapters train over a base loaded in the 16-bit dtype (torch_dtype
  // bfloat16, or float16 where the GPU lacks bf16), with bf16=True / fp16=True
  // autocast; a full fine-tune keeps fp32 parameters under autocast (AMP).
  if (Default(&s->precision, Adapters(*s) ? (no_bf16 ? Precision::kFp16 : Precision::kBf16)
                                           : (no_bf16 ? Precision::kFp16Mixed : Precision::kBf16Mixed)) &&
      notes && Adapters(*s)) {
    notes->push_back(fmt::format(
        "--stack {}: the frozen base is loaded 16-bit (torch_dtype {}) under {}=True autocast; "
        "--precision {}-mixed models a base kept in fp32",
        stack, no_bf16 ? "float16" : "bfloat16", no_bf16 ? "fp16" : "bf16", no_bf16 ? "fp16" : "bf16"));
  }
  Default(&s->optimizer, Optimizer::kAdamW);
  // TrainingArguments' optim default is adamw_torch_fused with torch >= 2.8
  // (training_args.py, "--- Optimizer ---").
  Default(&s->optimizer_fused, true);
  Default(&s->optimizer_in_backward, false);
  Default(&s->offload_activations, false);
  Default(&s->loss, LossImpl::kHf);
  if (Default(&s->grad_ckpt, s->method == TrainMethod::kQlora ? GradCkpt::kFull : GradCkpt::kNone) &&
      s->method == TrainMethod::kQlora && notes) {
    notes->push_back(
        "QLoRA: PEFT's prepare_model_for_kbit_training turns gradient checkpointing on "
        "(use_gradient_checkpointing=True); --grad-ckpt none models a job that turns it off");
  }
  Default(&s->lora_rank, 16);
  Default(&s->lora_targets, std::string("all-linear"));
  return {};
}

StackTerms HfLikeTerms(const TrainingWorkload& w) {
  StackTerms t;
  t.adapter_bytes = 4;         // PEFT autocast_adapter_dtype
  t.kbit_fp32_upcast = true;   // prepare_model_for_kbit_training
  t.amp_over_fp32 = true;      // Trainer bf16=True / fp16=True: accelerate's torch.autocast
  t.quant_input_saved = OldBnbSavesInput(w);  // PEFT Linear4bit -> bnb.matmul_4bit
  switch (w.loss) {
    case LossImpl::kHf:
      t.loss_tenths = 120;
      t.loss_text = "transformers ForCausalLMLoss (fp32 upcast)";
      break;
    case LossImpl::kChunked:
      // TRL >= 1.7 SFTTrainer loss_type chunked_nll: fp32 logits + log-probs
      // of 256 tokens at a time, each chunk checkpointed.
      t.loss_tenths = 0;
      t.loss_chunk_tokens = 256;
      t.loss_chunk_bytes = 8;
      t.loss_text = "TRL chunked_nll (256-token fp32 chunks)";
      break;
    case LossImpl::kFused:
      t.loss_tenths = 10;
      t.loss_text = "Liger fused linear cross-entropy";
      break;
  }
  return t;
}

const StackProfile& HfTrainerProfile() {
  static const HfTrainer kProfile;
  return kProfile;
}

}  // namespace vramfit::stacks
