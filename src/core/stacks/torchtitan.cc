// --stack torchtitan: pre-training with FSDP2 (fp32 sharded parameters,
// bf16 compute), tensor and pipeline parallelism, op-level selective
// activation checkpointing. Sources: docs/estimation.md 7.9.
#include <fmt/format.h>

#include "stack.h"

namespace vramfit::stacks {
namespace {

constexpr std::string_view kSettings[] = {"fsdp", "tp", "pp", "compile"};

class Torchtitan final : public StackProfile {
 public:
  Stack id() const override { return Stack::kTorchtitan; }
  std::string_view Summary() const override {
    return "torchtitan: full training, FSDP2 mixed precision (fp32 sharded parameters and states), "
           "TP/PP, op-level selective activation checkpointing";
  }
  std::span<const std::string_view> Settings() const override { return kSettings; }
  Status Resolve(const ModelSpec&, const DeviceSet&, TrainingSettings* s,
                 std::vector<std::string>* notes) const override {
    VRAMFIT_TRY(RefuseUnsupported(*s, name(), false, true, true, false));
    if (s->method != TrainMethod::kFull) {
      return InvalidArgument(fmt::format("--method {}: torchtitan trains every parameter (--method full)",
                                         MethodName(s->method)));
    }
    if (s->optimizer_in_backward.value_or(false) || s->offload_activations.value_or(false)) {
      return InvalidArgument(s->offload_activations.value_or(false)
                                 ? "--offload-activations: torchtitan keeps activations on the GPU"
                                 : "--optimizer-impl in-backward: torchtitan steps after backward");
    }
    Default(&s->precision, Precision::kBf16Mixed);
    Default(&s->optimizer, Optimizer::kAdamW);
    Default(&s->optimizer_fused, true);
    Default(&s->optimizer_in_backward, false);
    Default(&s->offload_activations, false);
    Default(&s->compile, false);  // --compile.enable defaults off
    if (*s->compile && notes) {
      notes->push_back(
          "--compile: the compiled loss is modelled; what compiling each block fuses away (fewer saved "
          "intermediates) is not, so activations are an upper bound");
    }
    if (Default(&s->grad_ckpt, GradCkpt::kSelective) && notes) {
      notes->push_back(
          "--stack torchtitan: activation checkpointing 'selective' with selective_ac_option 'op' "
          "(saves attention and every other matmul output; --grad-ckpt full or none to change)");
    }
    Default(&s->loss, LossImpl::kHf);
    if (s->loss != LossImpl::kHf) {
      return InvalidArgument("--loss: torchtitan computes cross_entropy on the full fp32 logits (hf)");
    }
    Default(&s->lora_rank, 16);
    Default(&s->lora_targets, std::string("all-linear"));
    return {};
  }
  StackTerms Terms(const TrainingWorkload& w) const override {
    StackTerms t;
    t.amp_over_fp32 = false;  // FSDP2 MixedPrecisionPolicy: sharded fp32, bf16 unsharded
    // bf16 pred 2 + its fp32 copy 4 + fp32 log-probs 4 while the loss runs
    // (components/loss.py; train.py deletes pred before backward). Compiled
    // (build_cross_entropy_loss wraps it in torch.compile), the upcast and
    // log-softmax fuse: pred 2 + its bf16 gradient 2 at the start of backward.
    t.loss_tenths = w.compile ? 40 : 100;
    t.loss_text = w.compile ? "cross_entropy on pred.float(), compiled (fused upcast)"
                            : "cross_entropy on pred.float() (fp32 logits)";
    t.selective = SelectiveAc::kEveryOtherMm;
    return t;
  }
  std::optional<LossImpl> SmallerLoss(LossImpl) const override { return std::nullopt; }
};

}  // namespace

const StackProfile& TorchtitanProfile() {
  static const Torchtitan kProfile;
  return kProfile;
}

}  // namespace vramfit::stacks
