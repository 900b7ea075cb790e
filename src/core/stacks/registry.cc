// The training-stack registry: one line per stack profile, and what the
// profiles share.
#include <array>

#include <fmt/format.h>

#include "stack.h"

namespace vramfit {
namespace stacks {

namespace {
// Indexed by Stack (training.h).
const std::array<const StackProfile*, 6>& Registry() {
  static const std::array<const StackProfile*, 6> kProfiles = {
      &HfTrainerProfile(), &AxolotlProfile(),    &UnslothProfile(),
      &TorchtuneProfile(), &TorchtitanProfile(), &LitgptProfile(),
  };
  return kProfiles;
}
}  // namespace

const StackProfile& ProfileFor(Stack s) { return *Registry()[static_cast<size_t>(s)]; }
std::span<const StackProfile* const> AllProfiles() { return Registry(); }

std::optional<LossImpl> StackProfile::SmallerLoss(LossImpl current) const {
  if (current == LossImpl::kHf) return LossImpl::kChunked;
  return std::nullopt;
}

Status RefuseUnsupported(const TrainingSettings& s, std::string_view stack, bool zero, bool fsdp,
                         bool tp_pp, bool offload) {
  if (!zero && s.zero > 0) {
    return InvalidArgument(fmt::format("--zero: --stack {} has no DeepSpeed ZeRO", stack));
  }
  if (!fsdp && s.fsdp) return InvalidArgument(fmt::format("--fsdp: --stack {} has no FSDP", stack));
  if (!tp_pp && s.tp > 1) {
    return InvalidArgument(fmt::format(
        "--tp: --stack {} has no tensor parallelism in vramfit's model (--stack torchtitan has)", stack));
  }
  if (!tp_pp && s.pp > 1) {
    return InvalidArgument(fmt::format(
        "--pp: --stack {} has no pipeline parallelism in vramfit's model (--stack torchtitan has)", stack));
  }
  if (!offload && s.offload != Offload::kNone) {
    return InvalidArgument(fmt::format("--offload: --stack {} does not offload model state", stack));
  }
  return {};
}

bool OldBnbSavesInput(const TrainingWorkload& w) {
  const bool bnb4 = w.quant.method == QuantMethod::kNf4 || w.quant.method == QuantMethod::kFp4;
  return bnb4 && w.bnb_version > 0 && w.bnb_version < kBnbNoSavedInput;
}

std::string LossText(LossImpl l) {
  switch (l) {
    case LossImpl::kHf: return "fp32 logits + cross-entropy";
    case LossImpl::kChunked: return "chunked cross-entropy";
    case LossImpl::kFused: return "fused linear cross-entropy";
  }
  return "?";
}

bool NoBf16(const DeviceSet& devices) {
  if (devices.empty()) return false;
  const std::string& cc = devices.gpus[0].compute_capability;
  return !cc.empty() && cc[0] >= '0' && cc[0] < '8' && (cc.size() < 2 || cc[1] == '.');
}

}  // namespace stacks

const char* StackName(Stack s) {
  switch (s) {
    case Stack::kHfTrainer: return "hf-trainer";
    case Stack::kAxolotl: return "axolotl";
    case Stack::kUnsloth: return "unsloth";
    case Stack::kTorchtune: return "torchtune";
    case Stack::kTorchtitan: return "torchtitan";
    case Stack::kLitgpt: return "litgpt";
  }
  return "?";
}

Result<Stack> ParseStack(std::string_view v) {
  for (const stacks::StackProfile* p : stacks::AllProfiles()) {
    if (v == p->name()) return p->id();
  }
  if (v == "deepspeed" || v == "megatron") {
    return InvalidArgument(fmt::format(
        "--stack: {} is not modelled yet (its own engine, optimizer and parallel layout); "
        "hf-trainer with --zero models DeepSpeed under the HF Trainer",
        v));
  }
  std::string names;
  for (const stacks::StackProfile* p : stacks::AllProfiles()) {
    names += (names.empty() ? "" : ", ") + std::string(p->name());
  }
  return InvalidArgument(fmt::format("--stack: unknown value '{}' (expected {})", v, names));
}

std::vector<Stack> AllStacks() {
  std::vector<Stack> out;
  for (const stacks::StackProfile* p : stacks::AllProfiles()) out.push_back(p->id());
  return out;
}

bool StackTakes(Stack stack, std::string_view setting) {
  for (std::string_view s : stacks::ProfileFor(stack).Settings()) {
    if (s == setting) return true;
  }
  return false;
}

std::optional<LossImpl> StackSmallerLoss(Stack stack, LossImpl current) {
  return stacks::ProfileFor(stack).SmallerLoss(current);
}

std::string_view StackSummary(Stack stack) { return stacks::ProfileFor(stack).Summary(); }

}  // namespace vramfit
