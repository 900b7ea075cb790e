// --stack litgpt: LitGPT's finetune scripts (full, lora, qlora through
// bitsandbytes) on Lightning Fabric, FSDP with a full state dict when
// distributed. Sources: docs/estimation.md 7.9.
#include <fmt/format.h>

#include "stack.h"

namespace vramfit::stacks {
namespace {

constexpr std::string_view kSettings[] = {"fsdp", "bnb-version"};

class Litgpt final : public StackProfile {
 public:
  Stack id() const override { return Stack::kLitgpt; }
  std::string_view Summary() const override {
    return "LitGPT on Lightning Fabric: bf16-true or bf16-mixed (fp32 parameters + autocast), chunked "
           "cross-entropy, model-dtype LoRA, FSDP with a full state dict";
  }
  std::span<const std::string_view> Settings() const override { return kSettings; }
  Status Resolve(const ModelSpec&, const DeviceSet& devices, TrainingSettings* s,
                 std::vector<std::string>* notes) const override {
    VRAMFIT_TRY(RefuseUnsupported(*s, name(), false, true, false, false));
    if (s->optimizer_in_backward.value_or(false) || s->offload_activations.value_or(false)) {
      return InvalidArgument(s->offload_activations.value_or(false)
                                 ? "--offload-activations: litgpt keeps activations on the GPU"
                                 : "--optimizer-impl in-backward: litgpt steps after backward");
    }
    if (s->method == TrainMethod::kFreeze) {
      return InvalidArgument("--method freeze: litgpt has no layer-freezing script");
    }
    // get_default_supported_precision(training=True): bf16-mixed where the
    // GPU has bf16 (fp32 parameters under autocast), else 16-mixed.
    Default(&s->precision, NoBf16(devices) ? Precision::kFp16Mixed : Precision::kBf16Mixed);
    Default(&s->optimizer, Optimizer::kAdamW);
    Default(&s->optimizer_fused, false);
    Default(&s->optimizer_in_backward, false);
    Default(&s->offload_activations, false);
    // With FSDP the scripts checkpoint every Block; on one device, none.
    if (Default(&s->grad_ckpt, s->fsdp ? GradCkpt::kFull : GradCkpt::kNone) && s->fsdp && notes) {
      notes->push_back(
          "--stack litgpt: FSDPStrategy(activation_checkpointing_policy={Block}) checkpoints every layer");
    }
    if (s->grad_ckpt == GradCkpt::kSelective) {
      return InvalidArgument("--grad-ckpt selective: litgpt checkpoints whole Blocks (full) or nothing");
    }
    Default(&s->loss, LossImpl::kChunked);
    Default(&s->lora_rank, 8);
    Default(&s->lora_targets, std::string("q,v"));
    return {};
  }
  StackTerms Terms(const TrainingWorkload& w) const override {
    StackTerms t;
    t.adapter_bytes = 0;         // LoRA parameters in the model dtype (fp32 under bf16-mixed)
    t.peft_input_copies = false;
    t.lora_dropout = w.method == TrainMethod::kLora || w.method == TrainMethod::kQlora;
    t.kbit_fp32_upcast = false;  // the bnb plugin quantizes the linears; the rest keeps its dtype
    t.amp_over_fp32 = true;      // Fabric bf16-mixed: fp32 parameters + autocast
    t.quant_input_saved = OldBnbSavesInput(w);  // Fabric's bnb plugin: bnb.nn.Linear4bit
    t.fused_qkv = true;          // litgpt/model.py CausalSelfAttention: one qkv linear
    // Fabric casts every output chunk to fp32 (wrappers.py); the loss keeps
    // the fp32 log-probs: 8 B per token per vocab entry.
    t.loss_tenths = w.loss == LossImpl::kChunked ? 80 : w.loss == LossImpl::kFused ? 10 : 120;
    t.loss_text = w.loss == LossImpl::kChunked ? "chunked_cross_entropy (128-token logit chunks)" : LossText(w.loss);
    t.full_state_dict_load = w.fsdp;
    return t;
  }
};

}  // namespace

const StackProfile& LitgptProfile() {
  static const Litgpt kProfile;
  return kProfile;
}

}  // namespace vramfit::stacks
