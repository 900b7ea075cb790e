// Training-step memory. Sources per term: docs/estimation.md ("training")
// and docs/research/training.md (PEFT, bitsandbytes, DeepSpeed, FSDP,
// transformers loss code, Korthikanti et al. 2022). The steps, their
// contracts and the named constants: training_steps.h.
#include "vramfit/check.h"
#include "vramfit/training.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "formula.h"
#include "runtimes/runtimes.h"
#include "stacks/stack.h"
#include "training_steps.h"

namespace vramfit {

const char* MethodName(TrainMethod m) {
  switch (m) {
    case TrainMethod::kFull: return "full";
    case TrainMethod::kLora: return "lora";
    case TrainMethod::kQlora: return "qlora";
    case TrainMethod::kFreeze: return "freeze";
  }
  return "?";
}
const char* PrecisionName(Precision p) {
  switch (p) {
    case Precision::kBf16Mixed: return "bf16-mixed";
    case Precision::kFp16Mixed: return "fp16-mixed";
    case Precision::kBf16: return "bf16";
    case Precision::kFp16: return "fp16";
    case Precision::kFp32: return "fp32";
  }
  return "?";
}
const char* OptimizerName(Optimizer o) {
  switch (o) {
    case Optimizer::kAdamW: return "adamw";
    case Optimizer::kAdamW8bit: return "adamw-8bit";
    case Optimizer::kPagedAdamW8bit: return "paged-adamw-8bit";
    case Optimizer::kAdafactor: return "adafactor";
    case Optimizer::kSgd: return "sgd";
    case Optimizer::kSgdMomentum: return "sgd-momentum";
    case Optimizer::kLion: return "lion";
    case Optimizer::kPagedAdamW: return "paged-adamw";
  }
  return "?";
}
const char* GradCkptName(GradCkpt g) {
  switch (g) {
    case GradCkpt::kNone: return "none";
    case GradCkpt::kFull: return "full";
    case GradCkpt::kSelective: return "selective";
  }
  return "?";
}
const char* OffloadName(Offload o) {
  switch (o) {
    case Offload::kNone: return "none";
    case Offload::kOptimizer: return "optimizer";
    case Offload::kParams: return "params";
  }
  return "?";
}
const char* LossName(LossImpl l) {
  switch (l) {
    case LossImpl::kHf: return "hf";
    case LossImpl::kChunked: return "chunked";
    case LossImpl::kFused: return "fused";
  }
  return "?";
}

namespace {

template <typename E, size_t N>
Result<E> ParseEnum(std::string_view s, const char* flag, const std::pair<const char*, E> (&table)[N]) {
  std::string expected;
  for (const auto& [name, value] : table) {
    if (s == name) return value;
    if (!expected.empty()) expected += ", ";
    expected += name;
  }
  return InvalidArgument(fmt::format("{}: unknown value '{}' (expected {})", flag, s, expected));
}

}  // namespace

Result<TrainMethod> ParseMethod(std::string_view s) {
  static const std::pair<const char*, TrainMethod> t[] = {
      {"full", TrainMethod::kFull}, {"lora", TrainMethod::kLora}, {"qlora", TrainMethod::kQlora},
      {"freeze", TrainMethod::kFreeze}};
  return ParseEnum(s, "--method", t);
}
Result<Precision> ParsePrecision(std::string_view s) {
  static const std::pair<const char*, Precision> t[] = {
      {"bf16-mixed", Precision::kBf16Mixed}, {"fp16-mixed", Precision::kFp16Mixed},
      {"bf16", Precision::kBf16}, {"fp16", Precision::kFp16}, {"fp32", Precision::kFp32}};
  return ParseEnum(s, "--precision", t);
}
Result<Optimizer> ParseOptimizer(std::string_view s) {
  static const std::pair<const char*, Optimizer> t[] = {
      {"adamw", Optimizer::kAdamW}, {"adamw-8bit", Optimizer::kAdamW8bit},
      {"paged-adamw-8bit", Optimizer::kPagedAdamW8bit}, {"adafactor", Optimizer::kAdafactor},
      {"sgd", Optimizer::kSgd}, {"sgd-momentum", Optimizer::kSgdMomentum}, {"lion", Optimizer::kLion},
      {"paged-adamw", Optimizer::kPagedAdamW}};
  return ParseEnum(s, "--optimizer", t);
}
Result<GradCkpt> ParseGradCkpt(std::string_view s) {
  static const std::pair<const char*, GradCkpt> t[] = {
      {"none", GradCkpt::kNone}, {"full", GradCkpt::kFull}, {"selective", GradCkpt::kSelective}};
  return ParseEnum(s, "--grad-ckpt", t);
}
Result<Offload> ParseOffload(std::string_view s) {
  static const std::pair<const char*, Offload> t[] = {
      {"none", Offload::kNone}, {"optimizer", Offload::kOptimizer}, {"params", Offload::kParams}};
  return ParseEnum(s, "--offload", t);
}
Result<LossImpl> ParseLoss(std::string_view s) {
  static const std::pair<const char*, LossImpl> t[] = {
      {"hf", LossImpl::kHf}, {"chunked", LossImpl::kChunked}, {"fused", LossImpl::kFused}};
  return ParseEnum(s, "--loss", t);
}

Result<int64_t> ParseBnbVersion(std::string_view s) {
  // MAJOR.MINOR[.PATCH], as pip prints it ("0.43.1"); a local or dev suffix
  // ("0.45.0.dev0", "0.44.1+cu121") is refused rather than guessed.
  int64_t part[3] = {0, 0, 0};
  int n = 0;
  size_t i = 0;
  while (n < 3) {
    size_t j = i;
    int64_t v = 0;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9' && j - i < 4) v = v * 10 + (s[j++] - '0');
    if (j == i) break;
    part[n++] = v;
    i = j;
    if (i == s.size() || s[i] != '.') break;
    ++i;
  }
  if (n < 2 || i != s.size() || part[1] > 99 || part[2] > 99) {
    return InvalidArgument(fmt::format(
        "--bnb-version: expected a bitsandbytes release such as 0.43.1, got '{}'", s));
  }
  return part[0] * 10000 + part[1] * 100 + part[2];
}

namespace {


// Projection kind of a tensor group, from its name.
enum class Proj { kQ, kK, kV, kQkv, kO, kGate, kUp, kGateUp, kDown, kExpert, kRouter, kOther };

Proj ProjOf(const TensorGroup& g) {
  const std::string& n = g.name;
  if (g.role == Role::kRouter) return Proj::kRouter;
  if (g.role == Role::kExperts) return Proj::kExpert;
  const auto has = [&](const char* s) { return n.find(s) != std::string::npos; };
  if (has("qkv_proj") || has("q_a_proj") || has("q_b_proj") || has("kv_a_proj") || has("kv_b_proj")) {
    if (has("qkv_proj")) return Proj::kQkv;
    if (has("kv_")) return Proj::kK;  // MLA latent projections count as k/v
    return Proj::kQ;
  }
  if (has("q_proj")) return Proj::kQ;
  if (has("k_proj")) return Proj::kK;
  if (has("v_proj")) return Proj::kV;
  if (has("o_proj")) return Proj::kO;
  if (has("gate_up_proj")) return Proj::kGateUp;
  if (has("gate_proj")) return Proj::kGate;
  if (has("up_proj") || has("fc1")) return Proj::kUp;
  if (has("down_proj") || has("fc2")) return Proj::kDown;
  return Proj::kOther;
}

bool Targeted(const TensorGroup& g, const LoraTargets& t) {
  if (!g.linear || g.layers == 0) return false;
  switch (ProjOf(g)) {
    case Proj::kQ: return t.q;
    case Proj::kK: return t.k;
    case Proj::kV: return t.v;
    case Proj::kQkv: return t.q || t.k || t.v;
    case Proj::kO: return t.o;
    case Proj::kGate: return t.gate;
    case Proj::kUp: return t.up;
    case Proj::kGateUp: return t.gate || t.up;
    case Proj::kDown: return t.down;
    case Proj::kExpert: return t.experts;
    case Proj::kRouter: return t.router;
    case Proj::kOther: return false;
  }
  return false;
}

}  // namespace

namespace training {

Result<LoraTargets> ParseTargets(const std::string& spec, const ModelSpec& s) {
  LoraTargets t;
  if (spec == "all-linear") {
    // PEFT "all-linear": every nn.Linear but the output head. MoE experts
    // count when they are nn.Linear modules (Mixtral, Qwen-MoE, DeepSeek);
    // gpt-oss keeps its experts as fused parameters PEFT does not wrap.
    t.q = t.k = t.v = t.o = t.gate = t.up = t.down = true;
    t.experts = s.num_experts > 0 && !s.expert_bias;
    t.router = s.num_experts > 0 && !s.router_bias;
    return t;
  }
  if (spec == "attn") { t.q = t.k = t.v = t.o = true; return t; }
  if (spec == "mlp") { t.gate = t.up = t.down = true; return t; }
  size_t pos = 0;
  while (pos <= spec.size()) {
    const size_t comma = spec.find(',', pos);
    std::string n = spec.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (n.size() > 5 && n.compare(n.size() - 5, 5, "_proj") == 0) n = n.substr(0, n.size() - 5);
    if (n == "q") t.q = true;
    else if (n == "k") t.k = true;
    else if (n == "v") t.v = true;
    else if (n == "o") t.o = true;
    else if (n == "qkv") t.q = t.k = t.v = true;
    else if (n == "gate") t.gate = true;
    else if (n == "up") t.up = true;
    else if (n == "gate_up") t.gate = t.up = true;
    else if (n == "down") t.down = true;
    else if (n == "experts") t.experts = true;
    else if (n == "router") t.router = true;
    else {
      return InvalidArgument(fmt::format(
          "--lora-targets: unknown module '{}' (expected all-linear, attn, mlp, or a list of q, k, v, o, "
          "gate, up, down, experts, router)",
          n));
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return t;
}

// --- Resolve steps.

void CopyChoices(const TrainingSettings& s, TrainingWorkload* w) {
  // REQUIRES: the stack profile filled every optional (ResolveTraining).
  w->stack = s.stack;
  w->method = s.method;
  w->precision = s.precision.value_or(Precision::kBf16Mixed);
  w->optimizer = s.optimizer.value_or(Optimizer::kAdamW);
  w->optimizer_fused = s.optimizer_fused.value_or(false);
  w->optimizer_in_backward = s.optimizer_in_backward.value_or(false);
  w->grad_ckpt = s.grad_ckpt.value_or(GradCkpt::kNone);
  w->offload_activations = s.offload_activations.value_or(false);
  w->attn = s.attn.value_or(AttnImpl::kSdpa);
  w->loss = s.loss.value_or(LossImpl::kHf);
  w->offload = s.offload;
}

Status ResolveStackFeatures(const TrainingSettings& s, TrainingWorkload* w) {
  // REQUIRES: w->quant resolved (ResolveBaseFormat).
  if (s.bnb_version) {
    if (!StackTakes(s.stack, "bnb-version")) {
      return InvalidArgument(fmt::format(
          "--bnb-version: --stack {} does not run its 4-bit base through bitsandbytes' MatMul4Bit",
          StackName(s.stack)));
    }
    if (w->quant.method != QuantMethod::kNf4 && w->quant.method != QuantMethod::kFp4) {
      return InvalidArgument(
          "--bnb-version: only a bitsandbytes 4-bit base (--method qlora, --quant nf4 or fp4) depends on "
          "the release");
    }
    w->bnb_version = *s.bnb_version;
  }
  if (s.compile.value_or(false) && !StackTakes(s.stack, "compile")) {
    return InvalidArgument(fmt::format(
        "--compile: modelled for --stack torchtune and torchtitan (their compiled loss); what "
        "torch.compile fuses under --stack {} is not modelled",
        StackName(s.stack)));
  }
  w->compile = s.compile.value_or(false);
  return {};
}

Status ResolveShape(const ModelSpec& spec, const TrainingSettings& s, TrainingWorkload* w,
                    std::vector<std::string>* notes) {
  VRAMFIT_TRY(CheckRange("--seq", s.seq, 1, kMaxTokens));
  VRAMFIT_TRY(CheckRange("--batch", s.batch, 1, kMaxBatch));
  VRAMFIT_TRY(CheckRange("--grad-accum", s.grad_accum, 1, kMaxGradAccum));
  VRAMFIT_TRY(CheckRange("--tp", s.tp, 1, kMaxParallel));
  VRAMFIT_TRY(CheckRange("--pp", s.pp, 1, kMaxParallel));
  w->seq = s.seq;
  if (s.target_seq) {
    if (spec.topology != Topology::kEncoderDecoder) {
      return InvalidArgument(fmt::format(
          "--target-seq: applies to encoder-decoder models (T5, BART); {} has one stack (--seq)", spec.id));
    }
    VRAMFIT_TRY(CheckRange("--target-seq", *s.target_seq, 1, kMaxTokens));
  }
  w->target_seq = spec.topology == Topology::kEncoderDecoder ? s.target_seq.value_or(s.seq) : 0;
  w->batch = s.batch;
  w->grad_accum = s.grad_accum;
  w->tp = s.tp;
  w->pp = s.pp;
  if (spec.max_position_embeddings > 0 && w->seq > spec.max_position_embeddings && notes) {
    notes->push_back(fmt::format("--seq {} exceeds the model's max_position_embeddings ({})",
                                 w->seq, spec.max_position_embeddings));
  }
  return {};
}

Status ResolveBaseFormat(const TrainingSettings& s, TrainingWorkload* w) {
  if (s.quant) {
    w->quant = *s.quant;
  } else if (s.method == TrainMethod::kQlora) {
    w->quant = *ParseWeightFormat(kQloraDefaultQuant);
  }
  const QuantMethod qm = w->quant.method;
  if (s.method == TrainMethod::kQlora && qm != QuantMethod::kNf4 && qm != QuantMethod::kFp4 &&
      qm != QuantMethod::kInt8) {
    return InvalidArgument(fmt::format(
        "--quant: QLoRA trains over a bitsandbytes base (nf4, nf4-dq, fp4, fp4-dq, int8), not {}",
        w->quant.Name()));
  }
  if ((s.method == TrainMethod::kFull || s.method == TrainMethod::kFreeze) &&
      qm != QuantMethod::kNone) {
    return InvalidArgument(fmt::format(
        "--quant: {} fine-tuning updates the weights, which cannot stay {}; use --method lora or qlora",
        MethodName(s.method), w->quant.Name()));
  }
  if (qm == QuantMethod::kGguf) {
    return InvalidArgument("--quant: GGUF formats are llama.cpp inference formats, not trainable");
  }
  return {};
}

Status ResolveAdapters(const ModelSpec& spec, const TrainingSettings& s, TrainingWorkload* w) {
  if (s.method != TrainMethod::kLora && s.method != TrainMethod::kQlora) return {};
  w->lora_rank = s.lora_rank.value_or(16);
  w->lora_targets = s.lora_targets.value_or("all-linear");
  VRAMFIT_TRY(CheckRange("--lora-rank", w->lora_rank, 1, kMaxLoraRank));
  auto t = ParseTargets(w->lora_targets, spec);
  if (!t.ok()) return t.error();
  w->targets = *t;
  return {};
}

Status ResolveFreeze(const ModelSpec& spec, const TrainingSettings& s, TrainingWorkload* w,
                     std::vector<std::string>* notes) {
  if (s.method != TrainMethod::kFreeze) {
    if (s.trainable_layers) {
      return InvalidArgument("--trainable-layers: applies to --method freeze only");
    }
    return {};
  }
  const int64_t dflt = std::max<int64_t>(1, spec.num_hidden_layers / kFreezeDefaultDivisor);
  w->trainable_layers = s.trainable_layers.value_or(dflt);
  VRAMFIT_TRY(CheckRange("--trainable-layers", w->trainable_layers, 1, spec.num_hidden_layers));
  if (!s.trainable_layers && notes) {
    notes->push_back(
        fmt::format("--method freeze trains the last {} of {} layers and the head "
                    "(--trainable-layers N to change)",
                    w->trainable_layers, spec.num_hidden_layers));
  }
  return {};
}

Status ResolveSharding(const TrainingSettings& s, TrainingWorkload* w) {
  if (s.zero < 0 || s.zero > 3) {
    return InvalidArgument(fmt::format("--zero: expected 0, 1, 2 or 3, got {}", s.zero));
  }
  w->zero = s.zero;
  w->fsdp = s.fsdp;
  if (w->fsdp && w->zero > 0) {
    return InvalidArgument("--fsdp: choose FSDP or a ZeRO stage, not both");
  }
  if (w->offload == Offload::kParams && !(w->zero == 3 || w->fsdp)) {
    return InvalidArgument(
        "--offload params: needs --zero 3 or --fsdp (parameters are sharded there)");
  }
  if (w->offload == Offload::kOptimizer && w->zero == 0 && !w->fsdp) {
    return InvalidArgument("--offload optimizer: needs --zero 1, 2 or 3, or --fsdp");
  }
  return {};
}

Status ResolveDataParallel(const TrainingSettings& s, const DeviceSet& devices, TrainingWorkload* w,
                           std::vector<std::string>* notes) {
  const int64_t mp = w->tp * w->pp;
  if (s.gpus) VRAMFIT_TRY(CheckRange("--gpus", *s.gpus, 1, kMaxParallel));
  if (!devices.empty()) {
    const int64_t n = static_cast<int64_t>(devices.size());
    if (s.gpus) {
      if (*s.gpus * mp != n) {
        return InvalidArgument(
            fmt::format("--gpus {} x --tp {} x --pp {} needs {} GPUs, but --gpu gives {}", *s.gpus,
                        w->tp, w->pp, *s.gpus * mp, n));
      }
      w->dp = *s.gpus;
    } else {
      if (n % mp != 0) {
        return InvalidArgument(fmt::format(
            "--tp {} x --pp {} does not divide the {} GPUs --gpu gives", w->tp, w->pp, n));
      }
      w->dp = n / mp;
    }
  } else {
    w->dp = s.gpus.value_or(1);
  }
  if ((w->zero > 0 || w->fsdp) && w->dp == 1 && notes) {
    notes->push_back(
        "sharding over 1 data-parallel GPU divides nothing; give --gpus N or --gpu NAMExN");
  }
  return {};
}

Status CheckTrainLayout(const ModelSpec& spec, const TrainingWorkload& w) {
  if (spec.attn_kind == AttnKind::kStandard && spec.num_attention_heads % w.tp != 0) {
    return InvalidArgument(fmt::format("--tp: {} attention heads do not split over {} GPUs",
                                       spec.num_attention_heads, w.tp));
  }
  if (w.pp > spec.num_hidden_layers) {
    return InvalidArgument(
        fmt::format("--pp: {} stages for {} layers", w.pp, spec.num_hidden_layers));
  }
  return {};
}

}  // namespace training

Result<TrainingWorkload> ResolveTraining(const Model& model, const TrainingSettings& s,
                                         const DeviceSet& devices,
                                         std::vector<std::string>* notes) {
  const ModelSpec& spec = model.spec;
  if (IsHybridStack(spec)) {
    const RecurrentKind k = ModelRecurrentKind(spec);
    return Unsupported(fmt::format("vramfit train: {} has {} layers; the activations saved by recurrent mixers "
                                   "(chunked scan states) are not modelled yet",
                                   spec.id, k == RecurrentKind::kNone ? "attention-free" : RecurrentName(k)));
  }
  // The stack fills the defaults the user left unset.
  TrainingSettings filled = s;
  VRAMFIT_TRY(stacks::ProfileFor(s.stack).Resolve(spec, devices, &filled, notes));
  VRAMFIT_TRY(training::CheckTrainCapabilities(s, filled, devices, notes));
  TrainingWorkload w;
  training::CopyChoices(filled, &w);
  VRAMFIT_TRY(training::ResolveShape(spec, filled, &w, notes));
  VRAMFIT_TRY(training::ResolveBaseFormat(filled, &w));
  VRAMFIT_TRY(training::ResolveStackFeatures(filled, &w));
  VRAMFIT_TRY(training::ResolveAdapters(spec, filled, &w));
  VRAMFIT_TRY(training::ResolveFreeze(spec, filled, &w, notes));
  VRAMFIT_TRY(training::ResolveSharding(filled, &w));
  VRAMFIT_TRY(training::ResolveDataParallel(filled, devices, &w, notes));
  VRAMFIT_TRY(training::CheckTrainLayout(spec, w));
  VRAMFIT_TRY(training::CheckEncoderJob(spec, w));  // encoders: training_encoder.cc
  return w;
}

namespace training {

// FlashAttention-2 needs compute capability 8.0 (flash-attn raises
// "FlashAttention only supports Ampere GPUs or newer"); bf16 there runs
// emulated: the stacks fall back to fp16 by default (their Resolve), and an
// explicit bf16 is kept with a note.
Status CheckTrainCapabilities(const TrainingSettings& given, const TrainingSettings& filled,
                              const DeviceSet& devices, std::vector<std::string>* notes) {
  if (filled.attn == AttnImpl::kFlash) {
    if (const GpuSpec* g = FirstBelow(devices, kMinCcFlashAttn2)) {
      return InvalidArgument(fmt::format(
          "--attn flash: FlashAttention-2 needs compute capability 8.0 or newer; {} is {} (use --attn sdpa)",
          g->name, g->compute_capability));
    }
  }
  const bool bf16 = filled.precision == Precision::kBf16 || filled.precision == Precision::kBf16Mixed;
  const GpuSpec* g = FirstBelow(devices, kMinCcBf16);
  if (bf16 && g != nullptr && notes) {
    notes->push_back(fmt::format(
        "--precision {}{} on {} (compute capability {}): no bf16 tensor cores, bf16 runs emulated (same "
        "bytes, much slower); fp16-mixed / fp16 run natively",
        PrecisionName(*filled.precision), given.precision ? "" : " (the stack's default)", g->name,
        g->compute_capability));
  }
  return {};
}

}  // namespace training

int64_t LoraParams(const Model& model, const TrainingWorkload& w) {
  if (w.method != TrainMethod::kLora && w.method != TrainMethod::kQlora) return 0;
  int64_t n = 0;
  for (const TensorGroup& g : model.inventory.groups) {
    if (!Targeted(g, w.targets)) continue;
    // lora_A [r, in] + lora_B [out, r] per targeted linear.
    n = CheckedAdd(n, CheckedMul(CheckedMul(w.lora_rank, g.rows + g.cols), g.count));
  }
  return n;
}

namespace training {
namespace {

// Only for formula text: empty in numbers-only mode.
std::string Sci(int64_t n) { return Formula("{:.3g}", static_cast<double>(n)); }

}  // namespace

StackOverheads DefaultStackOverheads(const TrainingWorkload& w) {
  const stacks::StackTerms t = stacks::ProfileFor(w.stack).Terms(w);
  StackOverheads oh;
  oh.loss_tenths = t.loss_tenths;
  oh.loss_text = t.loss_text;
  oh.adapter_bytes = t.adapter_bytes;
  oh.peft_input_copies = t.peft_input_copies;
  oh.lora_dropout = t.lora_dropout;
  oh.loss_chunk_tokens = t.loss_chunk_tokens;
  oh.loss_chunk_bytes = t.loss_chunk_bytes;
  oh.loss_chunk_cap = t.loss_chunk_cap;
  oh.loss_budget_per_logit = t.loss_free_chunks.budget_per_logit;
  oh.loss_held_per_logit = t.loss_free_chunks.held_per_logit;
  oh.loss_target_cap = t.loss_free_chunks.target_cap;
  oh.kbit_fp32_upcast = t.kbit_fp32_upcast;
  oh.quant_input_saved = t.quant_input_saved;
  oh.fused_qkv = t.fused_qkv;
  const bool mixed = w.precision == Precision::kBf16Mixed || w.precision == Precision::kFp16Mixed;
  oh.amp = t.amp_over_fp32 && mixed && w.zero == 0 && !w.fsdp;
  oh.selective_every_other_mm = t.selective == stacks::SelectiveAc::kEveryOtherMm;
  oh.full_state_dict_load = t.full_state_dict_load;
  oh.fragmentation_pct =
      (w.zero == 3 || w.fsdp) ? kFragmentationPctShardedParams : kFragmentationPct;
  return oh;
}

// --- Per-job quantities.

TrainJob TrainJobOf(const ModelSpec& s, const TrainingWorkload& w) {
  TrainJob j;
  j.lora = w.method == TrainMethod::kLora || w.method == TrainMethod::kQlora;
  j.qlora = w.method == TrainMethod::kQlora;
  j.mixed = w.precision == Precision::kBf16Mixed || w.precision == Precision::kFp16Mixed;
  j.paged = w.optimizer == Optimizer::kPagedAdamW8bit || w.optimizer == Optimizer::kPagedAdamW;
  j.wdt = w.precision == Precision::kFp32                                           ? DType::kF32
          : w.precision == Precision::kFp16Mixed || w.precision == Precision::kFp16 ? DType::kF16
                                                                                    : DType::kBF16;
  j.ew = Info(j.wdt).block_bytes;
  // torch creates optimizer states like the parameter (bf16 in pure bf16);
  // mixed precision keeps them fp32 next to the fp32 master.
  j.e_state = w.precision == Precision::kBf16 || w.precision == Precision::kFp16 ? 2 : kF32Bytes;
  const StackOverheads oh = DefaultStackOverheads(w);
  j.mixed = j.mixed && !oh.amp;  // AMP: no separate master copy
  j.amp = oh.amp;
  j.e_param = j.amp ? kF32Bytes : j.ew;
  j.e_grad = j.amp ? kF32Bytes : j.ew;
  j.adapter_bytes = oh.adapter_bytes > 0 ? oh.adapter_bytes : j.e_param;
  j.peft_input_copies = oh.peft_input_copies;
  j.lora_dropout = oh.lora_dropout;
  j.kbit_fp32_upcast = oh.kbit_fp32_upcast;
  j.quant_input_saved = oh.quant_input_saved;
  j.fused_qkv = oh.fused_qkv;
  j.selective_mm = oh.selective_every_other_mm && w.grad_ckpt == GradCkpt::kSelective;
  j.in_backward = w.optimizer_in_backward;
  j.offload_acts = w.offload_activations;
  // QLoRA under PEFT: the residual stream follows the fp32 embedding.
  // Under AMP the embedding output, the residual stream and the norms'
  // outputs are fp32 too (fp32 parameters; autocast casts only at matmuls).
  j.e_res = (j.qlora && j.kbit_fp32_upcast) || j.amp ? kQloraResidualBytes : j.ew;
  j.dp = w.dp;
  j.tp = w.tp;
  j.pp = w.pp;
  j.layers = s.num_hidden_layers;
  j.first_trainable = w.method == TrainMethod::kFreeze ? j.layers - w.trainable_layers : 0;
  j.tokens = CheckedMul(w.batch, w.seq);
  j.world = j.dp * j.tp * j.pp;
  j.shard_params = w.zero == 3 || w.fsdp;
  j.shard_grads = w.zero >= 2 || w.fsdp;
  j.shard_states = w.zero >= 1 || w.fsdp;
  j.states_on_host = w.offload != Offload::kNone;
  return j;
}

// --- Model state.

bool TrainableGroup(const TrainingWorkload& w, const TensorGroup& g) {
  switch (w.method) {
    case TrainMethod::kFull: return true;
    case TrainMethod::kLora:
    case TrainMethod::kQlora: return false;
    case TrainMethod::kFreeze:
      return g.layers == 0 ? (g.role == Role::kLmHead || g.role == Role::kNorm) : true;
  }
  return false;
}

int64_t TrainableCopies(const ModelSpec& s, const TrainingWorkload& w, const TrainJob& job,
                        const TensorGroup& g) {
  if (!TrainableGroup(w, g)) return 0;
  if (w.method != TrainMethod::kFreeze || g.layers == 0) return g.count;
  // For freeze, per-layer groups train only in the last layers: weight the
  // group by the fraction of its layers that train.
  return g.count / g.layers * GroupLayersIn(s, g, job.first_trainable, job.layers);
}

int64_t EightBitState(int64_t n, int64_t states) {
  if (n < kEightBitMinElements) return CheckedMul(n, kF32Bytes * states);
  return CheckedMul(states, n + CeilDiv(n, kEightBitBlock) * kF32Bytes);
}

int64_t GroupOptimizerBytes(Optimizer o, const TensorGroup& g, int64_t copies, int64_t e_state) {
  const int64_t n = CheckedMul(g.elements_each(), copies);
  switch (o) {
    case Optimizer::kAdamW: return CheckedMul(n, 2 * e_state);
    // bitsandbytes' 32-bit optimizers keep fp32 states whatever the
    // parameter dtype (optimizer.py Optimizer2State.init_state, optim_bits
    // 32: get_state_buffer(p, dtype=torch.float32)).
    case Optimizer::kPagedAdamW: return CheckedMul(n, 2 * kF32Bytes);
    case Optimizer::kAdamW8bit:
    case Optimizer::kPagedAdamW8bit: return CheckedMul(EightBitState(g.elements_each(), 2), copies);
    case Optimizer::kAdafactor:
      // Factored second moment: a row and a column vector per matrix
      // (fp32), the full moment for vectors; no first moment (beta1 None).
      return CheckedMul(g.cols > 1 ? (g.rows + g.cols) * kF32Bytes : g.rows * kF32Bytes, copies);
    case Optimizer::kSgd: return 0;
    case Optimizer::kSgdMomentum:
    case Optimizer::kLion: return CheckedMul(n, e_state);
  }
  return 0;
}

int64_t AdapterOptimizerBytes(const Model& model, const TrainingWorkload& w) {
  // The adapter element size as the job resolves it (TrainJobOf).
  const int64_t adapter_bytes = TrainJobOf(model.spec, w).adapter_bytes;
  int64_t bytes = 0;
  for (const TensorGroup& g : model.inventory.groups) {
    if (!Targeted(g, w.targets)) continue;
    for (const int64_t n : {w.lora_rank * g.cols, g.rows * w.lora_rank}) {  // A and B
      switch (w.optimizer) {
        case Optimizer::kAdamW: bytes += CheckedMul(n, 2 * adapter_bytes) * g.count; break;
        case Optimizer::kPagedAdamW: bytes += CheckedMul(n, 2 * kF32Bytes) * g.count; break;  // bnb fp32 states
        case Optimizer::kAdamW8bit:
        case Optimizer::kPagedAdamW8bit: bytes += CheckedMul(EightBitState(n, 2), g.count); break;
        case Optimizer::kAdafactor:
          bytes += CheckedMul((n / std::max<int64_t>(1, w.lora_rank) + w.lora_rank) * kF32Bytes,
                              g.count);
          break;
        case Optimizer::kSgd: break;
        case Optimizer::kSgdMomentum:
        case Optimizer::kLion: bytes += CheckedMul(n, adapter_bytes) * g.count; break;
      }
    }
  }
  return bytes;
}

TrainableState TrainableStateOf(const Model& model, const TrainingWorkload& w,
                                const TrainJob& job) {
  TrainableState tr;
  for (const TensorGroup& g : model.inventory.groups) {
    const int64_t copies = TrainableCopies(model.spec, w, job, g);
    if (copies == 0) continue;
    tr.params = CheckedAdd(tr.params, CheckedMul(g.elements_each(), copies));
    tr.opt_bytes += GroupOptimizerBytes(w.optimizer, g, copies, job.e_state);
  }
  tr.adapter_params = LoraParams(model, w);
  if (job.lora) tr.adapter_opt = AdapterOptimizerBytes(model, w);
  return tr;
}

Bytes BaseWeightBytes(const Model& model, const TrainingWorkload& w, const TrainJob& job) {
  Bytes base;
  for (const TensorGroup& g : model.inventory.groups) {
    // prepare_model_for_kbit_training casts the non-quantized parameters
    // to fp32.
    // (PEFT); AMP keeps every parameter fp32.
    const bool fp32 = job.amp || (job.qlora && job.kbit_fp32_upcast && !IsQuantized(g, w.quant));
    const DType dense = fp32 ? DType::kF32 : job.wdt;
    base += TensorBytes(g, w.quant, dense) * g.count;
  }
  return base;
}

// --- Saved activations, per token of one layer (research 4.3, op by op).

int64_t NormSavedPerToken(const ModelSpec& s, const TrainJob& job, bool base_trainable) {
  const int64_t h = s.hidden_size;
  // Under AMP the weight multiply runs in fp32 on the fp32 normalized input.
  const int64_t normed = base_trainable ? (job.amp ? kF32Bytes : job.ew) * h : 0;
  // RMSNorm saves its fp32 upcast input (4h) + rstd (4 B), and, when its
  // weight trains, the normalized 16-bit input of the weight multiply.
  if (s.norm_kind == NormKind::kRms) {
    return s.norms_per_layer * (kF32Bytes * h + normed + kF32Bytes);
  }
  // LayerNorm saves its input + mean/rstd (2 x 4 B) (and the normalized
  // input).
  return s.norms_per_layer * (job.e_res * h + 2 * kF32Bytes + normed);
}

int64_t LoraInputBytes(const TrainJob& job, int64_t width, bool input_saved,
                       std::initializer_list<bool> targeted) {
  if (!job.lora) return 0;
  int64_t n = 0;
  for (bool x : targeted) n += x ? 1 : 0;
  if (n == 0) return 0;
  // PEFT casts the input to the adapter dtype in each targeted module
  // (x.to(lora_A.weight.dtype), peft lora/layer.py L1061); autocast casts
  // it back for lora_A's matmul, which saves that compute-dtype copy: one
  // copy per module. Fused kernels and model-dtype adapters (Unsloth,
  // torchtune, LitGPT) save the input tensor itself, shared by the modules
  // that read it, and already saved when the base trains.
  if (job.peft_input_copies && job.adapter_bytes != job.ew) return CheckedMul(job.ew * width, n);
  // Dropout on the shared input: its output (which replaces the input as
  // what lora_A saves) and a 1-byte mask.
  if (job.lora_dropout) return (job.ew + 1) * width;
  return input_saved ? 0 : job.ew * width;
}

int64_t TargetedModules(const ModelSpec& s, const LoraTargets& t, bool moe_layer) {
  int64_t n = (t.q ? 1 : 0) + (t.k ? 1 : 0) + (t.v ? 1 : 0) + (t.o ? 1 : 0);
  const int64_t mlp = (t.gate && s.mlp_kind == MlpKind::kGated ? 1 : 0) + (t.up ? 1 : 0) + (t.down ? 1 : 0);
  if (!moe_layer) return n + mlp;
  // Routed experts: top-k of them see each token; the shared expert all.
  if (t.experts) n += mlp * s.num_experts_per_tok;
  if (s.shared_expert_intermediate_size > 0) n += mlp;
  return n;
}

int64_t SelectiveMmSavedPerToken(const ModelSpec& s, const TrainJob& job, bool moe_layer) {
  // torchtitan's op-level policy saves the attention kernel's output (and
  // logsumexp) and the output of every other matmul in forward order (wq,
  // wv, w1, w2 of wq wk wv wo w1 w3 w2); everything else is recomputed.
  // The layer input is the checkpoint itself.
  const int64_t e = job.ew;
  const int64_t h = s.hidden_size;
  const int64_t hq = s.num_attention_heads * s.head_dim;
  const KvElements kv = KvElementsPerToken(s, KvLayout::kExpanded);
  const int64_t inter = moe_layer ? s.moe_intermediate_size * s.num_experts_per_tok : s.intermediate_size;
  const int64_t attn = e * (hq + kv.v + hq) + kF32Bytes * s.num_attention_heads;
  const int64_t mlp = e * (inter + h);
  return job.e_res * h + CeilDiv(attn + mlp, job.tp);
}

int64_t AttentionSavedPerToken(const ModelSpec& s, const TrainingWorkload& w, const TrainJob& job,
                               bool base_trainable) {
  const int64_t e = job.ew;
  const int64_t h = s.hidden_size;
  const int64_t nh = s.num_attention_heads;
  const int64_t hq = nh * s.head_dim;
  const LoraTargets& t = w.targets;
  // The shared q/k/v input (if the projections train, or an old
  // bitsandbytes keeps each 4-bit linear's input), the adapters' inputs,
  // then the kernel's tensors.
  const bool in_saved = base_trainable || job.quant_input_saved;
  // Under AMP the norm output is fp32 and each of q, k and v casts it to
  // the 16-bit dtype itself (autocast caches casts of leaf weights only,
  // autocast_mode.cpp cached_cast): three saved copies, one when fused.
  const int64_t qkv_inputs = job.amp && !s.fused_qkv && !job.fused_qkv ? 3 : 1;
  int64_t a = in_saved ? e * h * qkv_inputs : 0;
  a += LoraInputBytes(job, h, in_saved, {t.q, t.k, t.v});
  if (w.attn == AttnImpl::kEager) {
    // q, repeat_kv'd k and v at all heads; fp32 softmax + 16-bit probs
    // per head per key (recomputed under selective checkpointing).
    a += e * 3 * hq;
    if (w.grad_ckpt != GradCkpt::kSelective) a += CheckedMul(nh * w.seq, kF32Bytes + e);
  } else {
    // flash / sdpa: q, k, v, output and the fp32 logsumexp per head.
    const KvElements kv = KvElementsPerToken(s, KvLayout::kExpanded);
    a += e * (hq + kv.k + kv.v + hq) + kF32Bytes * nh;
  }
  a += (in_saved ? e * hq : 0) + LoraInputBytes(job, hq, in_saved, {t.o});  // o_proj input
  return a;
}

int64_t MlpSavedPerToken(const ModelSpec& s, const TrainingWorkload& w, const TrainJob& job,
                         bool moe_layer, bool base_trainable) {
  const int64_t e = job.ew;
  const int64_t h = s.hidden_size;
  const LoraTargets& t = w.targets;
  const bool lora = job.lora;
  // The linears' inputs are saved when their weights train, or when an old
  // bitsandbytes keeps each 4-bit linear's input (quant_input_saved).
  const bool in_saved = base_trainable || job.quant_input_saved;
  // SwiGLU keeps act input, act output and up output (3 x width); gate/up
  // and down inputs when those weights train.
  // Under AMP gate and up each cast the fp32 norm output (as q/k/v do).
  const int64_t gate_up_inputs = job.amp && !s.fused_gate_up ? 2 : 1;
  const auto gated = [&](int64_t width, bool with_lora) -> int64_t {
    int64_t x = in_saved ? e * (h * gate_up_inputs + width) : 0;
    if (with_lora) {
      x += LoraInputBytes(job, h, in_saved, {t.gate, t.up}) +
           LoraInputBytes(job, width, in_saved, {t.down});
    }
    return x + 3 * e * width;
  };
  if (moe_layer) {
    const int64_t k = s.num_experts_per_tok;
    int64_t m = k * gated(s.moe_intermediate_size, lora && t.experts);
    if (in_saved || (lora && t.experts)) m += k * e * h;  // routed token copies
    m += kRouterBytesPerExpert * s.num_experts;
    if (s.shared_expert_intermediate_size > 0) m += gated(s.shared_expert_intermediate_size, lora);
    return m;
  }
  const int64_t inter = s.intermediate_size;
  if (s.mlp_kind == MlpKind::kGated) return gated(inter, lora);
  // GELU MLP: activation input always; fc1/fc2 inputs when they train.
  return (in_saved ? e * (h + inter) : 0) + e * inter +
         (lora ? LoraInputBytes(job, h, in_saved, {t.up}) + LoraInputBytes(job, inter, in_saved, {t.down})
               : 0);
}

int64_t LayerSavedPerToken(const ModelSpec& s, const TrainingWorkload& w, const TrainJob& job,
                           int64_t layer) {
  const bool base_trainable = w.method == TrainMethod::kFull ||
                              (w.method == TrainMethod::kFreeze && layer >= job.first_trainable);
  // Layers before the first trainable one (freeze) save nothing: no
  // gradient flows through them.
  if (!(base_trainable || job.lora)) return 0;
  const int64_t norms = NormSavedPerToken(s, job, base_trainable);
  const int64_t a = AttentionSavedPerToken(s, w, job, base_trainable);
  const int64_t m = MlpSavedPerToken(s, w, job, s.layers[layer].moe, base_trainable);
  // lora_A outputs (rank wide, at the adapter dtype) saved for lora_B, per
  // targeted module of the layer.
  const int64_t lora_mid =
      job.lora ? job.adapter_bytes * w.lora_rank * TargetedModules(s, w.targets, s.layers[layer].moe) : 0;
  if (job.selective_mm && base_trainable) {
    return SelectiveMmSavedPerToken(s, job, s.layers[layer].moe) + CeilDiv(lora_mid, job.tp);
  }
  return norms + CeilDiv(a + m + lora_mid, job.tp);
}

// --- One pipeline stage.

double StageFraction(const Model& model, const TrainingWorkload& w, const TrainJob& job,
                     runtimes::LayerRange range, bool first, bool last, bool trainable_only) {
  const ModelSpec& s = model.spec;
  int64_t held = 0, total = 0;
  for (const TensorGroup& g : model.inventory.groups) {
    if (trainable_only && !TrainableGroup(w, g)) continue;
    const int64_t per = g.elements_each();
    if (g.layers > 0) {
      const int64_t per_layer = g.count / g.layers;
      int64_t in_range = 0, all = 0;
      for (int64_t i = 0; i < job.layers; ++i) {
        if (!GroupInLayer(g, s.layers[i])) continue;
        if (trainable_only && w.method == TrainMethod::kFreeze && i < job.first_trainable) continue;
        ++all;
        if (i >= range.first && i < range.last) ++in_range;
      }
      held = CheckedAdd(held, CheckedMul(CheckedMul(per, per_layer), in_range));
      total = CheckedAdd(total, CheckedMul(CheckedMul(per, per_layer), all));
    } else {
      const bool at_end =
          g.role == Role::kLmHead || g.name == "norm.weight" || g.name == "norm.bias";
      const int64_t n = CheckedMul(per, g.count);
      if (at_end ? last : first) held = CheckedAdd(held, n);
      total = CheckedAdd(total, n);
    }
  }
  return total == 0 ? 0.0 : static_cast<double>(held) / static_cast<double>(total);
}

StageShare StageShareOf(const Model& model, const TrainingWorkload& w, const TrainJob& job,
                        int64_t stage) {
  StageShare sh;
  sh.range = runtimes::StageLayers(job.layers, job.pp, stage);
  sh.first = stage == 0;
  sh.last = stage == job.pp - 1;
  sh.frac_all = StageFraction(model, w, job, sh.range, sh.first, sh.last, false);
  sh.frac_trainable = StageFraction(model, w, job, sh.range, sh.first, sh.last, true);
  sh.frac_layers = static_cast<double>(sh.range.size()) / static_cast<double>(job.layers);
  return sh;
}

Bytes Part(int64_t bytes, double frac, int64_t div) {
  return Bytes(static_cast<int64_t>(
      std::ceil(static_cast<double>(bytes) * frac / static_cast<double>(div))));
}

DeviceModelState ModelStateOn(const TrainingWorkload& w, const TrainJob& job,
                              const TrainableState& tr, Bytes base_weights,
                              const StageShare& share) {
  DeviceModelState ms;
  const int64_t tp = job.tp;
  ms.wdiv = tp * (job.shard_params ? job.dp : 1);
  ms.sdiv = tp * (job.shard_states ? job.dp : 1);
  ms.gdiv = tp * (job.shard_grads ? job.dp : 1);
  if (w.offload != Offload::kParams) {
    ms.weights = Part(base_weights.value(), share.frac_all, ms.wdiv);
  }
  const int64_t master_total = job.mixed ? CheckedMul(tr.params, kF32Bytes) : 0;
  if (!job.states_on_host) {
    ms.master = Part(master_total, share.frac_trainable, ms.sdiv);
    ms.states = Part(tr.opt_bytes, share.frac_trainable, ms.sdiv);
  }
  ms.grads = Part(CheckedMul(tr.params, job.e_grad), share.frac_trainable, ms.gdiv);
  // Adapters live with their layers; replicated over dp unless sharded.
  const int64_t adapter_bytes = CheckedMul(tr.adapter_params, job.adapter_bytes);
  ms.adapter_w = Part(adapter_bytes, share.frac_layers, tp * (job.shard_params ? job.dp : 1));
  ms.adapter_g = Part(adapter_bytes, share.frac_layers, tp * (job.shard_grads ? job.dp : 1));
  if (!job.states_on_host) {
    ms.adapter_s = Part(tr.adapter_opt, share.frac_layers, tp * (job.shard_states ? job.dp : 1));
  }
  return ms;
}

StageActivations SavedActivationsOn(const ModelSpec& s, const TrainingWorkload& w,
                                    const TrainJob& job, const StageShare& share, int64_t stage) {
  if (s.topology != Topology::kDecoder) return EncoderSavedActivations(s, w, job);  // training_encoder.cc
  int64_t per_token_all = 0, per_token_max = 0;
  int64_t saving_layers = 0;
  for (int64_t i = share.range.first; i < share.range.last; ++i) {
    const int64_t a = LayerSavedPerToken(s, w, job, i);
    per_token_all += a;
    per_token_max = std::max(per_token_max, a);
    saving_layers += a > 0 ? 1 : 0;
  }
  // 1F1B: stage i keeps min(pp - i, grad_accum) micro-batches in flight.
  const int64_t in_flight = std::min<int64_t>(job.pp - stage, w.grad_accum);
  const int64_t tokens = job.tokens;
  const int64_t h = s.hidden_size;
  StageActivations a;
  a.layer_act = Bytes(CheckedMul(per_token_max, tokens));
  if (w.grad_ckpt == GradCkpt::kFull) {
    // Each layer keeps only its input; one layer is recomputed in backward.
    const Bytes ckpts = Bytes(CheckedMul(CheckedMul(tokens, h), job.e_res)) * saving_layers;
    a.acts = ckpts * in_flight + a.layer_act;
    a.formula = Formula("checkpoints {} layers x {} tok x {} x {} B + one layer recomputed",
                        saving_layers, tokens, h, job.e_res);
  } else {
    a.acts = Bytes(CheckedMul(per_token_all, tokens)) * in_flight;
    a.formula = Formula("{} layers x {} tok x {} B/token/layer (saved for backward)", saving_layers,
                        tokens, saving_layers > 0 ? per_token_all / saving_layers : 0);
  }
  if (job.offload_acts && saving_layers > 0) {
    // Offloaded (torchtune OffloadActivations, Unsloth's offloaded
    // checkpointing): every saved tensor / checkpoint goes to pinned host
    // memory as forward produces it and comes back for its layer's
    // backward; the GPU holds the layer in flight and one copy in transit.
    const Bytes per_layer = w.grad_ckpt == GradCkpt::kFull
                                ? Bytes(CheckedMul(CheckedMul(tokens, h), job.e_res))
                                : a.layer_act;
    const Bytes kept = per_layer * std::min<int64_t>(2, saving_layers) +
                       (w.grad_ckpt == GradCkpt::kFull ? a.layer_act : Bytes(0));
    if (a.acts > kept) {
      a.offloaded = a.acts - kept;
      a.acts = kept;
      a.formula += Formula("; offloaded to host but 2 layers in flight");
    }
  }
  // Final norm + lm_head input on the last stage; the embedding output on
  // the first is the first layer's input.
  if (share.last) a.acts += Bytes(CheckedMul(tokens, kHeadInputBytesPerHidden * h));
  return a;
}

Bytes AmpCastBytes(const Model& model, const TrainingWorkload& w, const TrainJob& job,
                   const StageShare& share, bool one_layer) {
  if (!job.amp) return Bytes(0);
  // Autocast casts each fp32 linear weight to the compute dtype at its call;
  // the matmul saves that 16-bit copy for the input gradient until the
  // layer's backward. Quantized linears (QLoRA) dequantize inside their own
  // kernel instead.
  int64_t per_layer = 0, head = 0;
  for (const TensorGroup& g : model.inventory.groups) {
    if (IsQuantized(g, w.quant)) continue;
    if (g.layers > 0 && g.linear) {
      per_layer = CheckedAdd(per_layer, CheckedMul(g.elements_each(), g.count / g.layers));
    } else if (g.layers == 0 && (g.role == Role::kLmHead ||
                                 (g.role == Role::kEmbed && model.spec.tie_word_embeddings))) {
      head = CheckedAdd(head, g.elements());  // the head's matmul (tied: the embedding table)
    }
  }
  const int64_t layers = one_layer ? 1 : share.range.size();
  const int64_t elems = CheckedAdd(CheckedMul(per_layer, layers), share.last ? head : 0);
  return Bytes(CheckedMul(elems, job.ew) / job.tp);
}

// A loss chunked to the free memory (Unsloth get_chunk_size): the input
// gradient it keeps plus one chunk of ceil(T / n) tokens, n the smallest
// multiple of 4 whose chunk's budget fits target = min(free / 2, cap) less
// that input gradient (the whole budget when the gradient alone exceeds it).
Bytes FreeMemoryChunkedLoss(const ModelSpec& s, const TrainJob& job, const StackOverheads& oh,
                            int64_t vocab) {
  const int64_t input_grad = CheckedMul(CheckedMul(job.tokens, s.hidden_size), job.ew);
  int64_t target = oh.loss_target_cap;
  // Free memory is read after the input gradient is allocated.
  if (oh.loss_free_bytes >= 0) target = std::min(target, std::max<int64_t>(0, oh.loss_free_bytes - input_grad) / 2);
  if (input_grad > 0 && input_grad < target) target -= input_grad;
  const int64_t budget = CheckedMul(CheckedMul(job.tokens, vocab), oh.loss_budget_per_logit);
  int64_t chunks = 1;
  if (target <= 0) {
    chunks = job.tokens;  // nothing free: one token at a time
  } else if (budget > target) {
    const double exact = static_cast<double>(budget) / static_cast<double>(target);
    chunks = std::min(job.tokens, static_cast<int64_t>(std::ceil(exact / 4 - 1e-9)) * 4);
  }
  const int64_t chunk_tokens = CeilDiv(job.tokens, chunks);
  return Bytes(input_grad) + Bytes(CheckedMul(CheckedMul(chunk_tokens, vocab), oh.loss_held_per_logit));
}

Bytes LossBytes(const ModelSpec& s, const TrainJob& job, const StackOverheads& oh, bool last) {
  if (!last) return Bytes(0);
  const int64_t vocab = CeilDiv(s.vocab_size, job.tp);
  if (oh.loss_budget_per_logit > 0) return FreeMemoryChunkedLoss(s, job, oh, vocab);
  Bytes b(CheckedMul(CheckedMul(job.tokens, vocab), oh.loss_tenths) / 10);
  if (oh.loss_chunk_bytes > 0) {
    // One chunk in flight: chunk tokens (at most the job's) x vocab.
    const int64_t tok = oh.loss_chunk_tokens > 0 ? std::min(oh.loss_chunk_tokens, job.tokens) : job.tokens;
    int64_t chunk = CheckedMul(CheckedMul(tok, vocab), oh.loss_chunk_bytes);
    if (oh.loss_chunk_cap > 0) chunk = std::min(chunk, oh.loss_chunk_cap);
    b += Bytes(chunk);
  }
  return b;
}

int64_t LargestLayerParams(const Model& model) {
  const ModelSpec& s = model.spec;
  int64_t m = 0;
  for (int64_t i = 0; i < s.num_hidden_layers; ++i) {
    int64_t p = 0;
    for (const TensorGroup& g : model.inventory.groups) {
      if (g.layers > 0 && GroupInLayer(g, s.layers[i])) {
        p += g.elements_each() * (g.count / g.layers);
      }
    }
    m = std::max(m, p);
  }
  return m;
}

int64_t LargestTensorElements(const Model& model) {
  int64_t m = 0;
  for (const TensorGroup& g : model.inventory.groups) m = std::max(m, g.elements_each());
  return m;
}

CommBuffers CommBuffersOn(const Model& model, const TrainingWorkload& w, const TrainJob& job,
                          const TrainableState& tr, const DeviceModelState& ms) {
  CommBuffers b;
  if (job.dp <= 1) return b;
  const int64_t ew = job.ew;
  if (w.fsdp) {
    const int64_t largest = LargestLayerParams(model);
    b.bytes = Bytes(CheckedMul(CheckedMul(largest, ew), kFsdpUnitsInFlight));
    b.formula = Formula("3 unsharded layers x {} params x {} B", Sci(largest), ew);
  } else if (w.zero == 3) {
    const int64_t largest = LargestLayerParams(model);
    b.bytes = Bytes(CheckedMul(largest, ew)) * kZero3GatheredLayers +
              Bytes(CheckedMul(kZero3PrefetchElements, ew));
    b.formula =
        Formula("2 gathered layers x {} params + 5e7-element prefetch, {} B", Sci(largest), ew);
  } else if (w.zero == 1 || w.zero == 2) {
    // Capped by the model.
    const int64_t bucket = std::min<int64_t>(kZeroBucketElements, tr.params + tr.adapter_params);
    b.bytes = Bytes(CheckedMul(bucket, ew)) * 2;
    b.formula = Formula("reduce + allgather buckets 2 x {} elements x {} B", Sci(bucket), ew);
  } else {
    // DDP gradient buckets (gradient_as_bucket_view=False): a flat copy of
    // the gradients, allocated when the Reducer is built
    // (torch/csrc/distributed/c10d/reducer.cpp initialize_buckets) and
    // held from then on: in the forward pass and the step too.
    b.bytes = ms.grads + ms.adapter_g;
    b.persistent = true;
    if (FormulasOn()) b.formula = "DDP gradient buckets (a flat copy of the gradients)";
  }
  return b;
}

// --- Phases.

const char* TrainPhaseName(TrainPhase p) {
  switch (p) {
    case TrainPhase::kForwardEnd: return "forward end";
    case TrainPhase::kBackward: return "backward";
    case TrainPhase::kOptimizerStep: return "optimizer step";
    case TrainPhase::kLoad: return "load";
  }
  return "?";
}

Bytes StepTemporaries(const TrainingWorkload& w, const TrainJob& job, const TrainableState& tr,
                      const StageShare& share, const DeviceModelState& ms) {
  // torch's default foreach AdamW/Lion holds one parameter-sized list
  // (sqrt of exp_avg_sq); fused and 8-bit kernels work in place.
  if (w.optimizer_fused || w.optimizer_in_backward ||
      !(w.optimizer == Optimizer::kAdamW || w.optimizer == Optimizer::kLion) || job.states_on_host) {
    return Bytes(0);
  }
  return Part(CheckedMul(tr.params, job.e_state), share.frac_trainable, ms.sdiv) +
         Part(CheckedMul(tr.adapter_params, job.adapter_bytes), share.frac_layers,
              job.tp * (job.shard_states ? job.dp : 1));
}

TrainPhases PhasesOf(const TrainingWorkload& w, const TrainJob& job, const DeviceModelState& ms,
                     const StageActivations& acts, Bytes logits, const CommBuffers& buffers,
                     Bytes step_temp) {
  TrainPhases p;
  // Paged states live outside the torch allocator.
  const Bytes persistent = ms.weights + ms.master + (job.paged ? Bytes(0) : ms.states) +
                           ms.adapter_w + (job.paged ? Bytes(0) : ms.adapter_s);
  const Bytes grads_all = ms.grads + ms.adapter_g;
  // Gradients are freed after the step (zero_grad(set_to_none=True)); they
  // stay between micro-batches under gradient accumulation.
  const Bytes kept_grads = w.grad_accum > 1 ? grads_all : Bytes(0);
  // ZeRO-3 / FSDP gather layers in the forward pass too.
  p.forward_end = persistent + kept_grads + acts.acts + logits +
                  (job.shard_params || buffers.persistent ? buffers.bytes : Bytes(0));
  p.backward = persistent + grads_all + acts.layer_act + buffers.bytes;
  p.step_temp = step_temp;
  p.step = persistent + grads_all + step_temp + (buffers.persistent ? buffers.bytes : Bytes(0));
  Bytes peak = p.forward_end;
  if (p.backward > peak) {
    peak = p.backward;
    p.peak = TrainPhase::kBackward;
  }
  if (p.step > peak) p.peak = TrainPhase::kOptimizerStep;
  return p;
}

// --- Components at the peak phase.
namespace {

// The optimizer_states formula (before sharding and offload).
std::string OptimizerFormula(Optimizer o, int64_t e_state, int64_t params) {
  switch (o) {
    case Optimizer::kAdamW:
      return Formula("AdamW: 2 states x {} B x {} params", e_state, Sci(params));
    case Optimizer::kAdamW8bit:
      return Formula("8-bit AdamW: 2 x (1 B + fp32 absmax/256) x {} params", Sci(params));
    case Optimizer::kPagedAdamW8bit:
      return "paged 8-bit AdamW (CUDA managed memory, outside the torch allocator)";
    case Optimizer::kPagedAdamW:
      return Formula("paged AdamW: 2 fp32 states x 4 B x {} params (CUDA managed memory)", Sci(params));
    case Optimizer::kAdafactor: return "Adafactor: fp32 row + column factors per matrix";
    case Optimizer::kSgd: return "SGD: no state";
    case Optimizer::kSgdMomentum:
      return Formula("momentum: 1 state x {} B x {} params", e_state, Sci(params));
    case Optimizer::kLion: return Formula("Lion: 1 state x {} B x {} params", e_state, Sci(params));
  }
  return std::string();
}

}  // namespace

void AddModelStateComponents(const Model& model, const TrainingWorkload& w, const TrainJob& job,
                             const TrainableState& tr, Bytes base_weights,
                             const DeviceModelState& ms, TrainPhase phase,
                             std::vector<Component>* comps) {
  const int64_t all_params = model.inventory.params;
  std::string wf =
      Formula("{} params x {:.3g} B{}", Sci(all_params),
              static_cast<double>(base_weights.value()) / static_cast<double>(all_params),
              ms.wdiv > 1 ? Formula(" / {}", ms.wdiv) : "");
  if (w.offload == Offload::kParams) wf = "offloaded to host";
  comps->push_back(Leaf("weights", ms.weights, wf));
  comps->push_back(Leaf("master_weights", ms.master,
                        job.mixed && tr.params > 0
                            ? Formula("fp32 copy: 4 B x {} params{}", Sci(tr.params),
                                      ms.sdiv > 1 ? Formula(" / {}", ms.sdiv) : "")
                            : std::string()));
  // Gradients exist from backward on, or all along under accumulation.
  const bool grads_live = phase != TrainPhase::kForwardEnd || w.grad_accum > 1;
  comps->push_back(Leaf("gradients", grads_live ? ms.grads : Bytes(0),
                        tr.params == 0 ? std::string()
                        : job.in_backward
                            ? Formula("optimizer in backward: one gradient at a time, the largest {} B x {}",
                                      job.e_grad, Sci(LargestTensorElements(model)))
                            : Formula("{} B x {} params{}{}", job.e_grad, Sci(tr.params),
                                      ms.gdiv > 1 ? Formula(" / {}", ms.gdiv) : "",
                                      grads_live ? "" : " (not allocated until backward)")));
  std::string of = OptimizerFormula(w.optimizer, job.e_state, tr.params);
  if (ms.sdiv > 1) of += Formula(" / {}", ms.sdiv);
  if (job.states_on_host) of = "offloaded to host";
  if (tr.params == 0) of.clear();
  comps->push_back(Leaf("optimizer_states", ms.states, of));
  if (!job.lora) return;
  comps->push_back(Parent(
      "adapters",
      {Leaf("weights", ms.adapter_w,
            Formula("r {} x (in + out), {} params, {} B", w.lora_rank, Sci(tr.adapter_params),
                    job.adapter_bytes)),
       Leaf("gradients", grads_live ? ms.adapter_g : Bytes(0), Formula("{} B", job.adapter_bytes)),
       Leaf("optimizer_states", ms.adapter_s, OptimizerName(w.optimizer))},
      Formula("{} targets", w.lora_targets)));
}

Component ActivationsComponent(const TrainJob& job, const StageActivations& acts,
                               const CommBuffers& buffers, const TrainPhases& phases) {
  std::vector<Component> children;
  if (phases.peak == TrainPhase::kForwardEnd) {
    children.push_back(Leaf("saved for backward", acts.acts - acts.amp_casts, acts.formula));
    if (acts.amp_casts.value() > 0) {
      children.push_back(Leaf("autocast weight copies", acts.amp_casts,
                              "16-bit copies of the fp32 linear weights, saved by their matmuls"));
    }
    if (job.shard_params && buffers.bytes.value() > 0) {
      children.push_back(Leaf("gathered parameters", buffers.bytes, buffers.formula));
    }
  } else {
    children.push_back(Leaf("layer in backward",
                            phases.peak == TrainPhase::kBackward ? acts.layer_act : Bytes(0),
                            "one layer's saved tensors"));
  }
  if (buffers.bytes.value() > 0 && (phases.peak == TrainPhase::kBackward || buffers.persistent)) {
    children.push_back(Leaf("communication buffers", buffers.bytes, buffers.formula));
  }
  if (phases.peak == TrainPhase::kOptimizerStep && phases.step_temp.value() > 0) {
    children.push_back(
        Leaf("optimizer step temporaries", phases.step_temp, "foreach: one parameter-sized list"));
  }
  return Parent("activations", std::move(children));
}

Component LogitsComponent(const ModelSpec& s, const TrainingWorkload& /*w*/, const TrainJob& job,
                          const StackOverheads& oh, Bytes logits, bool last, TrainPhase phase) {
  return Leaf("logits", phase == TrainPhase::kForwardEnd ? logits : Bytes(0),
              !last ? std::string()
              : oh.loss_budget_per_logit > 0
                  ? Formula("input gradient {} tok x {} x {} B + one chunk x {} vocab x {} B ({}; budget: {})",
                            job.tokens, s.hidden_size, job.ew, s.vocab_size, oh.loss_held_per_logit,
                            oh.loss_text,
                            oh.loss_free_bytes >= 0
                                ? fmt::format("{:.2f} GiB, half the free memory",
                                              static_cast<double>(oh.loss_free_bytes / 2) / (1LL << 30))
                                : fmt::format("no GPU given, the {} GiB cap", oh.loss_target_cap >> 30))
              : oh.loss_tenths == 0
                  ? Formula("one loss chunk in flight ({})", oh.loss_text)
                  : Formula("{} tok x {} vocab x {}.{} B ({}){}", job.tokens, s.vocab_size,
                            oh.loss_tenths / 10, oh.loss_tenths % 10, oh.loss_text,
                            oh.loss_chunk_bytes > 0 ? " + one chunk" : ""));
}

TrainReserve AllocatorReserve(const Model& model, const TrainingWorkload& w, const TrainJob& job,
                              const StackOverheads& oh, Bytes allocated, Bytes transient) {
  // Every parameter, gradient and state tensor is its own allocation (2 MiB
  // rounding above 10 MiB), and freed saved tensors interleave with
  // gradient allocations during backward. Large tensors on this device:
  // weights, and for full training their gradient and optimizer-state
  // tensors; ~1 MiB average rounding each.
  int64_t tensors_here = 0;
  for (const TensorGroup& g : model.inventory.groups) {
    if (g.elements_each() * job.ew > kLargeTensorBytes) tensors_here += g.count;
  }
  const int64_t states = w.optimizer == Optimizer::kAdamW ? 2
                         : w.optimizer == Optimizer::kSgd ? 0
                                                          : 1;
  const int64_t per_param_tensors =
      1 + (w.method == TrainMethod::kFull && !job.states_on_host ? 1 + states : 0);
  TrainReserve r;
  r.rounding = std::min(
      Bytes(CheckedMul(CheckedMul(tensors_here, per_param_tensors), kRoundingPerLargeTensor)),
      Bytes(allocated.value() / kRoundingCapDivisor));
  r.fragmentation = Bytes(transient.value() / 100 * oh.fragmentation_pct);
  r.component = Parent(
      "allocator_reserve",
      {Leaf("segment rounding", r.rounding, "~1 MiB per large tensor, at most 2% of allocated"),
       Leaf("fragmentation", r.fragmentation,
            Formula("{}% of activations, logits and buffers", oh.fragmentation_pct))});
  return r;
}

void AddProcessOverheads(const TrainJob& job, const StackOverheads& oh,
                         std::vector<Component>* comps) {
  comps->push_back(Leaf("cuda_context", MiB(oh.cuda_context_mib),
                        "CUDA context + kernel images (lazy loading)"));
  if (job.world > 1) {
    comps->push_back(Leaf("non_torch", MiB(oh.nccl_mib), "NCCL communicator buffers"));
  }
}

// --- Once per estimate.

std::vector<Component> HostComponents(const TrainingWorkload& w, const TrainJob& job,
                                      const TrainableState& tr, Bytes base_weights) {
  std::vector<Component> host;
  if (w.offload == Offload::kNone) return host;
  const int64_t master_total = job.mixed ? CheckedMul(tr.params, kF32Bytes) : 0;
  host.push_back(Leaf("master_weights", Bytes(master_total), "fp32, all ranks' shards"));
  host.push_back(Leaf("optimizer_states", Bytes(CheckedAdd(tr.opt_bytes, tr.adapter_opt))));
  host.push_back(
      Leaf("gradients", Bytes(CheckedMul(tr.params, kF32Bytes)), "fp32 copy for the CPU step"));
  if (w.offload == Offload::kParams) host.push_back(Leaf("weights", base_weights));
  return host;
}

std::string PhaseTotalsNote(const TrainPhases& p) {
  return fmt::format(
      "phase totals on gpu0 (allocated): forward end {:.2f} GiB, backward {:.2f} GiB, optimizer step {:.2f} GiB",
      static_cast<double>(p.forward_end.value()) / kGiB,
      static_cast<double>(p.backward.value()) / kGiB, static_cast<double>(p.step.value()) / kGiB);
}

void TrainEcho(const TrainingWorkload& w, const TrainableState& tr, Echo* echo) {
  *echo = {
      {"mode", std::string("train")},
      {"stack", std::string(StackName(w.stack))},
      {"method", std::string(MethodName(w.method))},
      {"precision", std::string(PrecisionName(w.precision))},
      {"optimizer", std::string(OptimizerName(w.optimizer))},
      {"optimizer_impl", std::string(w.optimizer_in_backward ? "in-backward"
                                     : w.optimizer_fused     ? "fused"
                                                             : "foreach")},
      {"seq", w.seq},
      {"batch", w.batch},
      {"grad_accum", w.grad_accum},
      {"effective_batch", CheckedMul(CheckedMul(w.batch, w.grad_accum), w.dp)},
      {"grad_ckpt", std::string(GradCkptName(w.grad_ckpt))},
      {"offload_activations", w.offload_activations},
      {"compile", w.compile},
      {"attn", std::string(AttnName(w.attn))},
      {"loss", std::string(LossName(w.loss))},
      {"quant", w.quant.Name()},
      {"zero", w.zero},
      {"fsdp", w.fsdp},
      {"gpus", w.dp},
      {"offload", std::string(OffloadName(w.offload))},
      {"tp", w.tp},
      {"pp", w.pp},
      {"trainable_params", CheckedAdd(tr.params, tr.adapter_params)},
  };
  if (w.method == TrainMethod::kLora || w.method == TrainMethod::kQlora) {
    echo->push_back({"lora_rank", w.lora_rank});
    echo->push_back({"lora_targets", w.lora_targets});
    echo->push_back({"lora_params", tr.adapter_params});
  }
  if (w.target_seq > 0) echo->push_back({"target_seq", w.target_seq});
  if (w.bnb_version > 0) {
    echo->push_back({"bnb_version", fmt::format("{}.{}.{}", w.bnb_version / 10000, w.bnb_version / 100 % 100,
                                                w.bnb_version % 100)});
  }
  if (w.method == TrainMethod::kFreeze) echo->push_back({"trainable_layers", w.trainable_layers});
}

namespace {

// "model state per trainable parameter: 16 B (2 weights + 4 master + 2
// grads + 8 states)".
std::string ModelStateNote(const TrainingWorkload& w, const TrainJob& job) {
  int64_t per = job.e_param + (job.mixed ? kF32Bytes : 0) + job.e_grad;
  std::string states;
  if (w.optimizer == Optimizer::kAdamW || w.optimizer == Optimizer::kPagedAdamW) {
    const int64_t e = w.optimizer == Optimizer::kPagedAdamW ? kF32Bytes : job.e_state;  // bnb: fp32
    per += 2 * e;
    states = fmt::format(" + {} states", 2 * e);
  } else if (w.optimizer == Optimizer::kSgdMomentum || w.optimizer == Optimizer::kLion) {
    per += job.e_state;
    states = fmt::format(" + {} state", job.e_state);
  } else if (w.optimizer == Optimizer::kAdamW8bit || w.optimizer == Optimizer::kPagedAdamW8bit) {
    per += 2;
    states = " + ~2 (8-bit states)";
  }
  return fmt::format("model state per trainable parameter: {} B ({} weights{} + {} grads{}){}{}", per,
                     job.e_param, job.mixed ? " + 4 master" : "", job.e_grad, states,
                     job.amp ? " (autocast over fp32 parameters)" : "",
                     job.dp > 1 && (job.shard_states || job.shard_params)
                         ? fmt::format(", sharded over {} GPUs", job.dp)
                         : "");
}

}  // namespace

void TrainNotes(const TrainingWorkload& w, const TrainJob& job, const StackOverheads& oh,
                std::vector<std::string>* notes) {
  if (w.method == TrainMethod::kFull || w.method == TrainMethod::kFreeze) {
    notes->push_back(ModelStateNote(w, job));
  }
  if (w.grad_accum > 1) {
    notes->push_back(
        fmt::format("gradient accumulation {}: effective batch {} per step; memory grows only "
                    "by keeping the gradients between micro-batches",
                    w.grad_accum, w.batch * w.grad_accum * w.dp));
  }
  notes->push_back(fmt::format("--stack {}: loss {}", StackName(w.stack), oh.loss_text));
  if (job.qlora && job.kbit_fp32_upcast) {
    notes->push_back(fmt::format(
        "QLoRA as PEFT's prepare_model_for_kbit_training sets it up: non-quantized parameters "
        "(embeddings, head, norms) cast to fp32, adapters fp32, compute {}",
        job.wdt == DType::kF16 ? "fp16" : "bf16"));
  } else if (job.qlora) {
    notes->push_back(fmt::format(
        "QLoRA under --stack {}: the non-quantized parameters keep the model dtype (no fp32 upcast)",
        StackName(w.stack)));
  }
  if (job.lora) {
    const std::string base =
        job.quant_input_saved
            ? fmt::format("each frozen 4-bit linear keeps its 16-bit input for backward (bitsandbytes {}.{}.{} "
                          "MatMul4Bit; fixed in 0.43.2)",
                          w.bnb_version / 10000, w.bnb_version / 100 % 100, w.bnb_version % 100)
            : std::string("frozen base linears save no input");
    notes->push_back(job.adapter_bytes == kF32Bytes && job.peft_input_copies
                         ? "LoRA adapters are fp32 (PEFT autocast_adapter_dtype), " + base
                     : job.adapter_bytes == kF32Bytes ? "LoRA adapters are fp32, " + base
                                                      : "LoRA adapters keep the model dtype, " + base);
  }
  if (job.amp) {
    notes->push_back(
        "mixed precision is torch autocast over fp32 parameters: 4 B weights and gradients, no separate "
        "master copy, and each fp32 linear's 16-bit copy is saved for backward");
  }
  if (job.in_backward) {
    notes->push_back(
        "optimizer in backward: each parameter is stepped and its gradient freed as backward produces it");
  }
  if (job.offload_acts) {
    notes->push_back(
        "activations offloaded: saved tensors / checkpoints wait in pinned host memory (host: activations)");
  }
  if (job.paged) {
    notes->push_back(
        "paged optimizer states live in CUDA managed memory: counted in total_bytes (nvidia-smi) "
        "but not in the torch allocated/reserved peaks; the driver can evict them to host memory");
  }
  if (w.loss == LossImpl::kHf) {
    notes->push_back(fmt::format(
        "logits: the cross-entropy upcasts the [tokens, vocab] logits to fp32 "
        "({}.{} B per token per vocab entry at the start of backward)",
        oh.loss_tenths / 10, oh.loss_tenths % 10));
  }
  if (w.attn == AttnImpl::kEager) {
    notes->push_back("eager attention saves the fp32 softmax [heads, seq, seq] per layer");
  }
  notes->push_back("peak = max(forward end, backward, optimizer step)");
  notes->push_back(runtimes::TorchCudaContextNote(oh.cuda_context_mib));
}

namespace {

// One pipeline stage: its components (the same on each of its tp x dp
// devices), the allocated and reserved peaks, and the phase totals.
struct StageEstimate {
  std::vector<Component> components;
  Bytes allocated;
  Bytes reserved;
  TrainPhases phases;
  Bytes load_buffer;  // full state dict at load
  Bytes offloaded;    // activations in host memory
};

StageEstimate EstimateStage(const Model& model, const TrainingWorkload& w, const TrainJob& job,
                            const StackOverheads& oh, const TrainableState& tr, Bytes base_weights,
                            int64_t stage) {
  const ModelSpec& s = model.spec;
  const StageShare share = StageShareOf(model, w, job, stage);
  // Components: model state, saved activations, logits/loss, buffers.
  DeviceModelState ms = ModelStateOn(w, job, tr, base_weights, share);
  if (job.in_backward) {
    // Each gradient is applied and freed as backward produces it.
    ms.grads = Bytes(CheckedMul(LargestTensorElements(model), job.e_grad) / job.tp);
  }
  StageActivations acts = SavedActivationsOn(s, w, job, share, stage);
  acts.amp_casts = AmpCastBytes(model, w, job, share, w.grad_ckpt == GradCkpt::kFull);
  acts.acts += acts.amp_casts;
  acts.layer_act += AmpCastBytes(model, w, job, share, true);
  const Bytes logits = s.topology == Topology::kDecoder ? LossBytes(s, job, oh, share.last)
                                                       : EncoderLossBytes(s, w, job, oh);  // training_encoder.cc
  const CommBuffers buffers = CommBuffersOn(model, w, job, tr, ms);
  // Phases.
  StageEstimate st;
  st.phases = PhasesOf(w, job, ms, acts, logits, buffers, StepTemporaries(w, job, tr, share, ms));
  // A full state dict loads the whole 16-bit model on every rank.
  if (oh.full_state_dict_load && job.dp > 1) {
    st.load_buffer = Bytes(CheckedMul(model.inventory.params, job.ew));
    const Bytes load = ms.weights + ms.adapter_w + st.load_buffer;
    if (load > std::max({st.phases.forward_end, st.phases.backward, st.phases.step})) {
      st.phases.peak = TrainPhase::kLoad;
      st.phases.load = load;
      ms.master = ms.states = ms.grads = ms.adapter_g = ms.adapter_s = Bytes(0);
    }
  }
  st.offloaded = acts.offloaded;
  // The breakdown at the peak phase.
  std::vector<Component>& comps = st.components;
  AddModelStateComponents(model, w, job, tr, base_weights, ms, st.phases.peak, &comps);
  comps.push_back(ActivationsComponent(job, acts, buffers, st.phases));
  comps.push_back(s.topology == Topology::kDecoder
                      ? LogitsComponent(s, w, job, oh, logits, share.last, st.phases.peak)
                      : EncoderLogitsComponent(s, w, oh, logits, st.phases.peak));  // training_encoder.cc
  if (st.phases.peak == TrainPhase::kLoad) {
    comps.push_back(Leaf("load_buffer", st.load_buffer,
                         Formula("full state dict: {} params x {} B on every rank", Sci(model.inventory.params), job.ew)));
  }
  // Paged states are counted in the total, not in the torch peaks.
  st.allocated = Total(comps) - (job.paged ? ms.states + ms.adapter_s : Bytes(0));
  TrainReserve reserve =
      AllocatorReserve(model, w, job, oh, st.allocated, acts.acts + logits + buffers.bytes);
  comps.push_back(std::move(reserve.component));
  AddProcessOverheads(job, oh, &comps);
  st.reserved = st.allocated + reserve.rounding + reserve.fragmentation;
  return st;
}

// A loss chunked to the free memory sees the device's capacity less what
// the stage holds without the loss's own chunk (torch.cuda.mem_get_info:
// reserved memory and the context are not free). No device: the cap.
StackOverheads WithFreeMemory(const Model& model, const TrainingWorkload& w, const TrainJob& job,
                              const StackOverheads& oh, const TrainableState& tr, Bytes base_weights,
                              int64_t stage, const DeviceSet& devices) {
  if (oh.loss_budget_per_logit == 0 || devices.empty()) return oh;
  const int64_t first = stage * job.tp * job.dp;
  const int64_t last = first + job.tp * job.dp;
  if (last > static_cast<int64_t>(devices.size())) return oh;
  // Free memory is the capacity less what other processes hold (--gpu local).
  auto free_of = [&](int64_t i) {
    const GpuSpec& g = devices.gpus[static_cast<size_t>(i)];
    return g.capacity - g.in_use;
  };
  Bytes capacity = free_of(first);
  for (int64_t i = first; i < last; ++i) capacity = std::min(capacity, free_of(i));
  StackOverheads without = oh;
  without.loss_budget_per_logit = 0;  // no loss chunk
  without.loss_tenths = 0;
  const StageEstimate st = EstimateStage(model, w, job, without, tr, base_weights, stage);
  StackOverheads with = oh;
  with.loss_free_bytes = std::max<int64_t>(0, (capacity - Total(st.components)).value());
  return with;
}

}  // namespace

}  // namespace training

Result<Estimate> EstimateTraining(const Model& model, const TrainingWorkload& w,
                                  const DeviceSet& devices, const EstimateOptions& options) {
  const FormulaScope formulas(options.formulas);
  Estimate e;
  try {
    const training::TrainJob job = training::TrainJobOf(model.spec, w);
    const training::StackOverheads oh = training::DefaultStackOverheads(w);
    const training::TrainableState tr = training::TrainableStateOf(model, w, job);
    const Bytes base_weights = training::BaseWeightBytes(model, w, job);
    Bytes offloaded;
    e.params = model.inventory.params;
    e.active_params = model.inventory.active_params;
    e.weight_bytes = base_weights;
    e.kv_bytes_per_token = Bytes(0);

    for (int64_t stage = 0; stage < w.pp; ++stage) {
      const training::StackOverheads soh =
          training::WithFreeMemory(model, w, job, oh, tr, base_weights, stage, devices);
      const training::StageEstimate st =
          training::EstimateStage(model, w, job, soh, tr, base_weights, stage);
      for (int64_t rank = 0; rank < job.tp; ++rank) {
        for (int64_t r = 0; r < job.dp; ++r) {
          DeviceEstimate d;
          const int64_t idx = (stage * job.tp + rank) * job.dp + r;
          d.name = "gpu" + std::to_string(idx);
          if (idx < static_cast<int64_t>(devices.gpus.size())) {
            d.gpu = devices.gpus[static_cast<size_t>(idx)];
          }
          d.components = st.components;
          d.allocated_peak = st.allocated;
          d.reserved_peak = st.reserved;
          d.total = Total(d.components);
          d.peak_phase = training::TrainPhaseName(st.phases.peak);
          e.devices.push_back(std::move(d));
        }
      }
      if (stage == 0) e.notes.push_back(training::PhaseTotalsNote(st.phases));
      if (stage == 0) offloaded = st.offloaded;
    }
    e.host = training::HostComponents(w, job, tr, base_weights);
    if (offloaded.value() > 0) {
      e.host.push_back(Leaf("activations", offloaded, "saved activations / checkpoints offloaded (gpu0's share)"));
    }
    training::TrainEcho(w, tr, &e.workload);
    training::TrainNotes(w, job, oh, &e.notes);

    Status st = runtimes::FinishEstimate(e, options);
    if (!st.ok()) return st.error();
  } catch (const OverflowError& ex) {
    return runtimes::OverflowToError(ex);
  }
  return e;
}

}  // namespace vramfit
