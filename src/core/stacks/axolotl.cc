// --stack axolotl: Axolotl's YAML defaults over the HF Trainer (the same
// PEFT, bitsandbytes, DeepSpeed and FSDP terms as hf-trainer). Sources:
// docs/estimation.md 7.9.
#include <fmt/format.h>

#include "stack.h"

namespace vramfit::stacks {
namespace {

constexpr std::string_view kSettings[] = {"zero", "fsdp", "offload", "bnb-version"};

class Axolotl final : public StackProfile {
 public:
  Stack id() const override { return Stack::kAxolotl; }
  std::string_view Summary() const override {
    return "Axolotl over the HF Trainer: its config defaults (adamw_torch_fused, bf16 norms and embeddings "
           "under QLoRA), the same PEFT / bitsandbytes / DeepSpeed / FSDP terms as hf-trainer";
  }
  std::span<const std::string_view> Settings() const override { return kSettings; }
  Status Resolve(const ModelSpec&, const DeviceSet& devices, TrainingSettings* s,
                 std::vector<std::string>* notes) const override {
    if (notes && Adapters(*s) && !s->lora_rank) {
      notes->push_back(
          "--stack axolotl: its configs must set lora_r (no default); vramfit takes 16 on all linears "
          "(lora_target_linear) unless --lora-rank / --lora-targets say otherwise");
    }
    if (notes && s->method == TrainMethod::kQlora) {
      notes->push_back(
          "--stack axolotl: QLoRA norms, embeddings and head are cast back to bf16 after "
          "prepare_model_for_kbit_training (loaders/model.py _convert_embedding_modules_dtype)");
    }
    return ResolveHfLike(name(), devices, s, notes);
  }
  StackTerms Terms(const TrainingWorkload& w) const override {
    StackTerms t = HfLikeTerms(w);
    t.kbit_fp32_upcast = false;
    return t;
  }
  std::optional<LossImpl> SmallerLoss(LossImpl current) const override {
    if (current == LossImpl::kHf) return LossImpl::kFused;
    return std::nullopt;
  }
};

}  // namespace

const StackProfile& AxolotlProfile() {
  static const Axolotl kProfile;
  return kProfile;
}

}  // namespace vramfit::stacks
