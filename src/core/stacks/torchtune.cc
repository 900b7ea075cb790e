// --stack torchtune: torchtune's recipes (full_finetune_*, lora_finetune_*,
// QLoRA through torchao's NF4Tensor), FSDP2 when distributed. Sources:
// docs/estimation.md 7.9.
#include <fmt/format.h>

#include "stack.h"

namespace vramfit::stacks {
namespace {

constexpr std::string_view kSettings[] = {"fsdp", "offload", "offload-activations", "compile"};

class Torchtune final : public StackProfile {
 public:
  Stack id() const override { return Stack::kTorchtune; }
  std::string_view Summary() const override {
    return "torchtune recipes: model-dtype (bf16) training, activation checkpointing and chunked "
           "cross-entropy by default, optimizer in backward, activation offloading, FSDP2";
  }
  std::span<const std::string_view> Settings() const override { return kSettings; }
  Status Resolve(const ModelSpec&, const DeviceSet& devices, TrainingSettings* s,
                 std::vector<std::string>* notes) const override {
    VRAMFIT_TRY(RefuseUnsupported(*s, name(), false, true, false, true));
    if (s->precision == Precision::kBf16Mixed || s->precision == Precision::kFp16Mixed ||
        s->precision == Precision::kFp16) {
      return InvalidArgument(
          "--precision: torchtune trains in the model dtype (dtype: bf16 or fp32), with no fp32 master copy "
          "and no fp16 training");
    }
    if (s->offload == Offload::kOptimizer) {
      return InvalidArgument(
          "--offload optimizer: torchtune's fsdp_cpu_offload moves parameters, gradients and states "
          "together (--offload params)");
    }
    if (s->method == TrainMethod::kFreeze) {
      return InvalidArgument("--method freeze: torchtune has no layer-freezing recipe");
    }
    // training.get_dtype raises "bf16 precision was requested but not
    // available on this hardware. Please use fp32 precision instead." below
    // compute capability 8.0 (utils/precision.py verify_bf16_support).
    if (Default(&s->precision, NoBf16(devices) ? Precision::kFp32 : Precision::kBf16) && NoBf16(devices) &&
        notes) {
      notes->push_back(fmt::format(
          "--stack torchtune: {} has no bf16 (verify_bf16_support), so the recipe needs dtype: fp32", devices.gpus[0].name));
    }
    Default(&s->optimizer, Optimizer::kAdamW);
    Default(&s->optimizer_fused, true);
    Default(&s->optimizer_in_backward, false);
    if (s->optimizer_in_backward.value_or(false)) {
      if (s->grad_accum > 1) {
        return InvalidArgument(
            "--grad-accum: torchtune's optimizer_in_bwd steps every parameter as its gradient is produced, "
            "so gradients cannot accumulate");
      }
      if (s->fsdp || Adapters(*s)) {
        return InvalidArgument(
            "--optimizer-impl in-backward: torchtune runs optimizer_in_bwd in the full fine-tune recipes only");
      }
    }
    if (Default(&s->grad_ckpt, GradCkpt::kFull) && notes) {
      notes->push_back(
          "--stack torchtune: enable_activation_checkpointing is on in its recipes' configs (--grad-ckpt none to turn it off)");
    }
    if (s->grad_ckpt == GradCkpt::kSelective) {
      return InvalidArgument(
          "--grad-ckpt selective: torchtune's recipes checkpoint whole layers (full) or nothing");
    }
    Default(&s->offload_activations, false);
    Default(&s->compile, false);  // the recipes' configs: compile: False
    if (*s->compile && notes) {
      notes->push_back(
          "--compile: the compiled loss is modelled; what compiling each layer fuses away (fewer saved "
          "intermediates) is not, so activations are an upper bound");
    }
    if (Default(&s->loss, LossImpl::kChunked) && notes) {
      notes->push_back(
          "--stack torchtune: loss CEWithChunkedOutputLoss (8 chunks, each upcast to fp32 in turn)");
    }
    Default(&s->lora_rank, 8);
    // llama3_1/8B_lora*: lora_attn_modules [q_proj, v_proj, output_proj],
    // apply_lora_to_mlp True.
    Default(&s->lora_targets, std::string("q,v,o,gate,up,down"));
    return {};
  }
  StackTerms Terms(const TrainingWorkload& w) const override {
    StackTerms t;
    t.adapter_bytes = 0;          // LoRA parameters in the model dtype
    t.peft_input_copies = false;
    t.kbit_fp32_upcast = false;   // NF4Tensor base; norms and embeddings stay bf16
    t.amp_over_fp32 = false;      // no autocast: the model dtype throughout
    // Eager: the bf16 chunks (2 B), each chunk's fp32 log-softmax saved
    // for backward (4 B), one fp32 upcast in flight (4/8 B). compile: True
    // compiles compute_cross_entropy (training.compile_loss): the upcast,
    // log-softmax and NLL fuse into one kernel that saves only the bf16
    // chunk and a per-row logsumexp; backward adds one bf16 gradient chunk
    // (2/8 B, rounded up).
    if (w.loss == LossImpl::kChunked) {
      t.loss_tenths = w.compile ? 23 : 65;
      t.loss_text = w.compile ? "CEWithChunkedOutputLoss (8 chunks), compiled" : "CEWithChunkedOutputLoss (8 chunks)";
    } else if (w.loss == LossImpl::kHf && w.compile) {
      // compile_loss wraps a plain loss module whole: the fused upcast keeps
      // the bf16 logits and their bf16 gradient (2 + 2 B).
      t.loss_tenths = 40;
      t.loss_text = "cross-entropy on the full logits, compiled (fused upcast)";
    } else {
      t.loss_tenths = w.loss == LossImpl::kFused ? 10 : 120;
      t.loss_text = LossText(w.loss);
    }
    return t;
  }
  std::optional<LossImpl> SmallerLoss(LossImpl current) const override {
    if (current == LossImpl::kHf) return LossImpl::kChunked;
    return std::nullopt;
  }
};

}  // namespace

const StackProfile& TorchtuneProfile() {
  static const Torchtune kProfile;
  return kProfile;
}

}  // namespace vramfit::stacks
