// Training-step memory. Sources per term: docs/estimation.md ("training")
// and docs/research/training.md (PEFT, bitsandbytes, DeepSpeed, FSDP,
// transformers loss code, Korthikanti et al. 2022).
#include "vramfit/training.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "formula.h"
#include "runtimes/runtimes.h"

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
      {"bf16", Precision::kBf16}, {"fp32", Precision::kFp32}};
  return ParseEnum(s, "--precision", t);
}
Result<Optimizer> ParseOptimizer(std::string_view s) {
  static const std::pair<const char*, Optimizer> t[] = {
      {"adamw", Optimizer::kAdamW}, {"adamw-8bit", Optimizer::kAdamW8bit},
      {"paged-adamw-8bit", Optimizer::kPagedAdamW8bit}, {"adafactor", Optimizer::kAdafactor},
      {"sgd", Optimizer::kSgd}, {"sgd-momentum", Optimizer::kSgdMomentum}, {"lion", Optimizer::kLion}};
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

namespace {

Status CheckRange(const char* flag, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) {
    if (lo == 1 && v < 1) return InvalidArgument(fmt::format("{}: must be a positive integer, got {}", flag, v));
    return InvalidArgument(fmt::format("{}: {} is out of range ({}..{})", flag, v, lo, hi));
  }
  return {};
}

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

}  // namespace

Result<TrainingWorkload> ResolveTraining(const Model& model, const TrainingSettings& s,
                                         const DeviceSet& devices, std::vector<std::string>* notes) {
  const ModelSpec& spec = model.spec;
  TrainingWorkload w;
  w.method = s.method;
  w.precision = s.precision;
  w.optimizer = s.optimizer;
  w.optimizer_fused = s.optimizer_fused;
  w.grad_ckpt = s.grad_ckpt;
  w.attn = s.attn;
  w.loss = s.loss;
  w.offload = s.offload;
  VRAMFIT_TRY(CheckRange("--seq", s.seq, 1, kMaxTokens));
  VRAMFIT_TRY(CheckRange("--batch", s.batch, 1, kMaxBatch));
  VRAMFIT_TRY(CheckRange("--grad-accum", s.grad_accum, 1, 1 << 20));
  VRAMFIT_TRY(CheckRange("--tp", s.tp, 1, kMaxParallel));
  VRAMFIT_TRY(CheckRange("--pp", s.pp, 1, kMaxParallel));
  w.seq = s.seq;
  w.batch = s.batch;
  w.grad_accum = s.grad_accum;
  w.tp = s.tp;
  w.pp = s.pp;
  if (spec.max_position_embeddings > 0 && w.seq > spec.max_position_embeddings && notes) {
    notes->push_back(fmt::format("--seq {} exceeds the model's max_position_embeddings ({})", w.seq,
                                 spec.max_position_embeddings));
  }

  // Base weight format.
  if (s.quant) {
    w.quant = *s.quant;
  } else if (s.method == TrainMethod::kQlora) {
    w.quant = *ParseWeightFormat("nf4-dq");
  }
  const QuantMethod qm = w.quant.method;
  if (s.method == TrainMethod::kQlora && qm != QuantMethod::kNf4 && qm != QuantMethod::kFp4 &&
      qm != QuantMethod::kInt8) {
    return InvalidArgument(fmt::format(
        "--quant: QLoRA trains over a bitsandbytes base (nf4, nf4-dq, fp4, fp4-dq, int8), not {}",
        w.quant.Name()));
  }
  if ((s.method == TrainMethod::kFull || s.method == TrainMethod::kFreeze) && qm != QuantMethod::kNone) {
    return InvalidArgument(fmt::format(
        "--quant: {} fine-tuning updates the weights, which cannot stay {}; use --method lora or qlora",
        MethodName(s.method), w.quant.Name()));
  }
  if (qm == QuantMethod::kGguf) {
    return InvalidArgument("--quant: GGUF formats are llama.cpp inference formats, not trainable");
  }

  if (s.method == TrainMethod::kLora || s.method == TrainMethod::kQlora) {
    VRAMFIT_TRY(CheckRange("--lora-rank", s.lora_rank, 1, 1 << 16));
    w.lora_rank = s.lora_rank;
    w.lora_targets = s.lora_targets;
    auto t = ParseTargets(s.lora_targets, spec);
    if (!t.ok()) return t.error();
    w.targets = *t;
  }
  if (s.method == TrainMethod::kFreeze) {
    const int64_t dflt = std::max<int64_t>(1, spec.num_hidden_layers / 4);
    w.trainable_layers = s.trainable_layers.value_or(dflt);
    VRAMFIT_TRY(CheckRange("--trainable-layers", w.trainable_layers, 1, spec.num_hidden_layers));
    if (!s.trainable_layers && notes) {
      notes->push_back(fmt::format("--method freeze trains the last {} of {} layers and the head "
                                   "(--trainable-layers N to change)",
                                   w.trainable_layers, spec.num_hidden_layers));
    }
  } else if (s.trainable_layers) {
    return InvalidArgument("--trainable-layers: applies to --method freeze only");
  }

  if (s.zero < 0 || s.zero > 3) {
    return InvalidArgument(fmt::format("--zero: expected 0, 1, 2 or 3, got {}", s.zero));
  }
  w.zero = s.zero;
  w.fsdp = s.fsdp;
  if (w.fsdp && w.zero > 0) return InvalidArgument("--fsdp: choose FSDP or a ZeRO stage, not both");
  if (w.offload == Offload::kParams && !(w.zero == 3 || w.fsdp)) {
    return InvalidArgument("--offload params: needs --zero 3 or --fsdp (parameters are sharded there)");
  }
  if (w.offload == Offload::kOptimizer && w.zero == 0 && !w.fsdp) {
    return InvalidArgument("--offload optimizer: needs --zero 1, 2 or 3, or --fsdp");
  }

  // Devices: dp x tp x pp.
  const int64_t mp = w.tp * w.pp;
  if (s.gpus) VRAMFIT_TRY(CheckRange("--gpus", *s.gpus, 1, kMaxParallel));
  if (!devices.empty()) {
    const int64_t n = static_cast<int64_t>(devices.size());
    if (s.gpus) {
      if (*s.gpus * mp != n) {
        return InvalidArgument(fmt::format("--gpus {} x --tp {} x --pp {} needs {} GPUs, but --gpu gives {}",
                                           *s.gpus, w.tp, w.pp, *s.gpus * mp, n));
      }
      w.dp = *s.gpus;
    } else {
      if (n % mp != 0) {
        return InvalidArgument(fmt::format("--tp {} x --pp {} does not divide the {} GPUs --gpu gives",
                                           w.tp, w.pp, n));
      }
      w.dp = n / mp;
    }
  } else {
    w.dp = s.gpus.value_or(1);
  }
  if ((w.zero > 0 || w.fsdp) && w.dp == 1 && notes) {
    notes->push_back("sharding over 1 data-parallel GPU divides nothing; give --gpus N or --gpu NAMExN");
  }
  if (spec.attn_kind == AttnKind::kStandard && spec.num_attention_heads % w.tp != 0) {
    return InvalidArgument(fmt::format("--tp: {} attention heads do not split over {} GPUs",
                                       spec.num_attention_heads, w.tp));
  }
  if (w.pp > spec.num_hidden_layers) {
    return InvalidArgument(fmt::format("--pp: {} stages for {} layers", w.pp, spec.num_hidden_layers));
  }
  return w;
}

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

namespace {

// Only for formula text: empty in numbers-only mode.
std::string Sci(int64_t n) { return Formula("{:.3g}", static_cast<double>(n)); }

// Bytes of 8-bit blockwise optimizer state for a tensor of n elements with
// `states` states (bitsandbytes optim/optimizer.py: uint8 state + fp32
// absmax per 256-element block; tensors under 4096 elements stay fp32).
int64_t EightBitState(int64_t n, int64_t states) {
  if (n < 4096) return CheckedMul(n, 4 * states);
  return CheckedMul(states, n + CeilDiv(n, 256) * 4);
}

struct Trainable {
  int64_t params = 0;        // trainable parameters on this device (before sharding)
  int64_t weight_bytes = 0;  // their bytes at the weight dtype
  int64_t opt_bytes = 0;     // optimizer state bytes
};

}  // namespace

Result<Estimate> EstimateTraining(const Model& model, const TrainingWorkload& w,
                                  const DeviceSet& devices, const EstimateOptions& options) {
  const FormulaScope formulas(options.formulas);
  Estimate e;
  try {
    const ModelSpec& s = model.spec;
    const Inventory& inv = model.inventory;
    const bool lora = w.method == TrainMethod::kLora || w.method == TrainMethod::kQlora;
    const bool qlora = w.method == TrainMethod::kQlora;
    const bool mixed = w.precision == Precision::kBf16Mixed || w.precision == Precision::kFp16Mixed;
    // Bytes per element: weights/activations (e), fp32 master, gradients,
    // optimizer states.
    const DType wdt = w.precision == Precision::kFp32 ? DType::kF32
                      : w.precision == Precision::kFp16Mixed ? DType::kF16 : DType::kBF16;
    const int64_t ew = Info(wdt).block_bytes;
    const int64_t e_act = ew;
    const int64_t e_grad = ew;
    const int64_t e_state = w.precision == Precision::kBf16 ? 2 : 4;
    // PEFT casts adapters to fp32 (autocast_adapter_dtype=True).
    const int64_t e_adapter = 4;
    // prepare_model_for_kbit_training (PEFT) casts every non-quantized
    // parameter (embeddings, head, norms) to fp32; the residual stream
    // follows the fp32 embedding output.
    const int64_t e_res = qlora ? 4 : ew;
    const int64_t dp = w.dp;
    const int64_t tp = w.tp;
    const int64_t L = s.num_hidden_layers;
    const int64_t first_trainable = w.method == TrainMethod::kFreeze ? L - w.trainable_layers : 0;

    // ---- Per-layer and non-layer parameters, trainable or not.
    const auto trainable_group = [&](const TensorGroup& g) {
      switch (w.method) {
        case TrainMethod::kFull: return true;
        case TrainMethod::kLora:
        case TrainMethod::kQlora: return false;
        case TrainMethod::kFreeze:
          return g.layers == 0 ? (g.role == Role::kLmHead || g.role == Role::kNorm) : true;
      }
      return false;
    };
    // For freeze, per-layer groups are trainable only for the last layers:
    // weight the group by the fraction of its layers that train.
    const auto trainable_share = [&](const TensorGroup& g) -> int64_t {
      if (!trainable_group(g)) return 0;
      if (w.method != TrainMethod::kFreeze || g.layers == 0) return g.count;
      int64_t held = 0;
      for (int64_t i = first_trainable; i < L; ++i) held += s.layers[i].moe == g.moe_layer ? 1 : 0;
      return g.count / g.layers * held;
    };

    Trainable tr;
    for (const TensorGroup& g : inv.groups) {
      const int64_t copies = trainable_share(g);
      if (copies == 0) continue;
      const int64_t n = CheckedMul(g.elements_each(), copies);
      tr.params = CheckedAdd(tr.params, n);
      switch (w.optimizer) {
        case Optimizer::kAdamW: tr.opt_bytes += CheckedMul(n, 2 * e_state); break;
        case Optimizer::kAdamW8bit:
        case Optimizer::kPagedAdamW8bit:
          tr.opt_bytes += CheckedMul(EightBitState(g.elements_each(), 2), copies);
          break;
        case Optimizer::kAdafactor:
          // Factored second moment: a row and a column vector per matrix
          // (fp32), the full moment for vectors; no first moment (beta1 None).
          tr.opt_bytes += CheckedMul(g.cols > 1 ? (g.rows + g.cols) * 4 : g.rows * 4, copies);
          break;
        case Optimizer::kSgd: break;
        case Optimizer::kSgdMomentum:
        case Optimizer::kLion: tr.opt_bytes += CheckedMul(n, e_state); break;
      }
    }
    const int64_t adapter_params = LoraParams(model, w);
    int64_t adapter_opt = 0;
    if (lora) {
      for (const TensorGroup& g : inv.groups) {
        if (!Targeted(g, w.targets)) continue;
        for (const int64_t n : {w.lora_rank * g.cols, g.rows * w.lora_rank}) {  // A and B
          switch (w.optimizer) {
            case Optimizer::kAdamW: adapter_opt += CheckedMul(n, 2 * e_adapter) * g.count; break;
            case Optimizer::kAdamW8bit:
            case Optimizer::kPagedAdamW8bit: adapter_opt += CheckedMul(EightBitState(n, 2), g.count); break;
            case Optimizer::kAdafactor:
              adapter_opt += CheckedMul((n / std::max<int64_t>(1, w.lora_rank) + w.lora_rank) * 4, g.count);
              break;
            case Optimizer::kSgd: break;
            case Optimizer::kSgdMomentum:
            case Optimizer::kLion: adapter_opt += CheckedMul(n, e_adapter) * g.count; break;
          }
        }
      }
    }
    const bool paged = w.optimizer == Optimizer::kPagedAdamW8bit;

    // ---- Base weights (all parameters, trainable or frozen), stored.
    Bytes base_weights;
    for (const TensorGroup& g : inv.groups) {
      DType dense = wdt;
      if (qlora && !IsQuantized(g, w.quant)) dense = DType::kF32;  // prepare_model_for_kbit_training
      base_weights += TensorBytes(g, w.quant, dense) * g.count;
    }
    e.params = inv.params;
    e.active_params = inv.active_params;
    e.weight_bytes = base_weights;
    e.kv_bytes_per_token = Bytes(0);

    // ---- Activations per token of one layer (bytes), tensor-parallel split.
    // docs/research/training.md section 4.3 (op-by-op saving rules).
    const int64_t h = s.hidden_size;
    const int64_t nh = s.num_attention_heads;
    const int64_t hq = nh * s.head_dim;
    const KvElements kvel = KvElementsPerToken(s, KvLayout::kExpanded);
    const int64_t hkv_k = kvel.k, hkv_v = kvel.v;
    const int64_t inter = s.intermediate_size;
    const auto layer_act_per_token = [&](int64_t layer) -> int64_t {
      const bool moe_layer = s.layers[layer].moe;
      const bool base_trainable = w.method == TrainMethod::kFull ||
                                  (w.method == TrainMethod::kFreeze && layer >= first_trainable);
      // Layers before the first trainable one (freeze) save nothing: no
      // gradient flows through them.
      if (!(base_trainable || lora)) return 0;
      const int64_t e = e_act;
      int64_t norms = 0;
      // RMSNorm saves its fp32 upcast input (4h) + rstd, and, when its
      // weight trains, the normalized 16-bit input of the weight multiply.
      // LayerNorm saves its input + mean/rstd (and the normalized input).
      if (s.norm_kind == NormKind::kRms) {
        norms = s.norms_per_layer * (4 * h + (base_trainable ? e * h : 0) + 4);
      } else {
        norms = s.norms_per_layer * (e_res * h + 8 + (base_trainable ? e * h : 0));
      }
      const LoraTargets& t = w.targets;
      const auto n_lora = [&](bool x) -> int64_t { return lora && x ? 1 : 0; };
      // Attention: the shared q/k/v input (if the projections train), PEFT's
      // fp32 input copy per targeted module, then the kernel's tensors.
      int64_t a = base_trainable ? e * h : 0;
      a += 4 * h * (n_lora(t.q) + n_lora(t.k) + n_lora(t.v));
      if (w.attn == AttnImpl::kEager) {
        // q, repeat_kv'd k and v at all heads; fp32 softmax + 16-bit probs
        // per head per key (recomputed under selective checkpointing).
        a += e * 3 * hq;
        if (w.grad_ckpt != GradCkpt::kSelective) a += CheckedMul(nh * w.seq, 4 + e);
      } else {
        // flash / sdpa: q, k, v, output and the fp32 logsumexp per head.
        a += e * (hq + hkv_k + hkv_v + hq) + 4 * nh;
      }
      a += (base_trainable ? e * hq : 0) + 4 * hq * n_lora(t.o);  // o_proj input
      // MLP: SwiGLU keeps act input, act output and up output (3 x width);
      // gate/up and down inputs when those weights train.
      const auto gated = [&](int64_t width, bool with_lora) -> int64_t {
        int64_t x = base_trainable ? e * (h + width) : 0;
        if (with_lora) x += 4 * h * ((t.gate ? 1 : 0) + (t.up ? 1 : 0)) + (t.down ? 4 * width : 0);
        return x + 3 * e * width;
      };
      int64_t m = 0;
      if (moe_layer) {
        const int64_t k = s.num_experts_per_tok;
        m = k * gated(s.moe_intermediate_size, lora && t.experts);
        if (base_trainable || (lora && t.experts)) m += k * e * h;  // routed token copies
        m += 8 * s.num_experts;                                    // fp32 router logits + softmax
        if (s.shared_expert_intermediate_size > 0) m += gated(s.shared_expert_intermediate_size, lora);
      } else if (s.mlp_kind == MlpKind::kGated) {
        m = gated(inter, lora);
      } else {
        // GELU MLP: activation input always; fc1/fc2 inputs when they train.
        m = (base_trainable ? e * (h + inter) : 0) + e * inter + 4 * h * n_lora(t.up) +
            4 * inter * n_lora(t.down);
      }
      // lora_A outputs (rank wide, fp32) saved for lora_B, up to 7 modules.
      const int64_t lora_mid = lora ? 4 * w.lora_rank * 7 : 0;
      return norms + CeilDiv(a + m + lora_mid, tp);
    };

    // Logits and cross-entropy buffers per token per vocabulary entry at
    // the start of backward: hf 12 B (fp32 log_softmax output + its
    // gradient + input gradient), chunked 6.5 B, fused ~1 B.
    // Tenths of a byte, to keep 6.5 exact in integers.
    const int64_t loss_bpe10 = w.loss == LossImpl::kHf ? 120 : w.loss == LossImpl::kChunked ? 65 : 10;

    const int64_t tokens = CheckedMul(w.batch, w.seq);  // per micro-batch per GPU
    const int64_t world = dp * tp * w.pp;
    const bool shard_params = w.zero == 3 || w.fsdp;
    const bool shard_grads = w.zero >= 2 || w.fsdp;
    const bool shard_states = w.zero >= 1 || w.fsdp;

    for (int64_t stage = 0; stage < w.pp; ++stage) {
      const runtimes::LayerRange range = runtimes::StageLayers(L, w.pp, stage);
      const bool first = stage == 0;
      const bool last = stage == w.pp - 1;
      // Share of the model's parameters this stage holds (by bytes of the
      // inventory's layer groups + embeddings/head).
      const auto stage_fraction = [&](bool trainable_only) {
        int64_t held = 0, total = 0;
        for (const TensorGroup& g : inv.groups) {
          if (trainable_only && !trainable_group(g)) continue;
          const int64_t per = g.elements_each();
          if (g.layers > 0) {
            const int64_t per_layer = g.count / g.layers;
            int64_t in_range = 0, all = 0;
            for (int64_t i = 0; i < L; ++i) {
              if (s.layers[i].moe != g.moe_layer) continue;
              if (trainable_only && w.method == TrainMethod::kFreeze && i < first_trainable) continue;
              ++all;
              if (i >= range.first && i < range.last) ++in_range;
            }
            held = CheckedAdd(held, CheckedMul(CheckedMul(per, per_layer), in_range));
            total = CheckedAdd(total, CheckedMul(CheckedMul(per, per_layer), all));
          } else {
            const bool at_end = g.role == Role::kLmHead || g.name == "norm.weight" || g.name == "norm.bias";
            const int64_t n = CheckedMul(per, g.count);
            if (at_end ? last : first) held = CheckedAdd(held, n);
            total = CheckedAdd(total, n);
          }
        }
        return total == 0 ? 0.0 : static_cast<double>(held) / static_cast<double>(total);
      };
      const double frac_all = stage_fraction(false);
      const double frac_tr = stage_fraction(true);
      const auto part = [&](int64_t bytes, double frac, int64_t div) {
        return Bytes(static_cast<int64_t>(std::ceil(static_cast<double>(bytes) * frac / static_cast<double>(div))));
      };

      // ---- Model state on this device.
      const int64_t wdiv = tp * (shard_params ? dp : 1);
      const Bytes weights_dev = w.offload == Offload::kParams ? Bytes(0) : part(base_weights.value(), frac_all, wdiv);
      const int64_t master_total = mixed ? CheckedMul(tr.params, 4) : 0;
      const bool states_on_host = w.offload != Offload::kNone;
      const int64_t sdiv = tp * (shard_states ? dp : 1);
      const Bytes master_dev = states_on_host ? Bytes(0) : part(master_total, frac_tr, sdiv);
      const Bytes states_dev = states_on_host ? Bytes(0) : part(tr.opt_bytes, frac_tr, sdiv);
      const int64_t gdiv = tp * (shard_grads ? dp : 1);
      const Bytes grads_full = part(CheckedMul(tr.params, e_grad), frac_tr, gdiv);
      // Adapters live with their layers; replicated over dp unless sharded.
      const double frac_layers = static_cast<double>(range.size()) / static_cast<double>(L);
      const Bytes adapter_w = part(CheckedMul(adapter_params, e_adapter), frac_layers, tp * (shard_params ? dp : 1));
      const Bytes adapter_g = part(CheckedMul(adapter_params, e_adapter), frac_layers, tp * (shard_grads ? dp : 1));
      const Bytes adapter_s = states_on_host ? Bytes(0) : part(adapter_opt, frac_layers, tp * (shard_states ? dp : 1));

      // ---- Activations on this device for one micro-batch.
      int64_t per_token_all = 0, per_token_max = 0;
      int64_t saving_layers = 0;
      for (int64_t i = range.first; i < range.last; ++i) {
        const int64_t a = layer_act_per_token(i);
        per_token_all += a;
        per_token_max = std::max(per_token_max, a);
        saving_layers += a > 0 ? 1 : 0;
      }
      // 1F1B: stage i keeps min(pp - i, grad_accum) micro-batches in flight.
      const int64_t in_flight = std::min<int64_t>(w.pp - stage, w.grad_accum);
      Bytes acts;
      const Bytes layer_act = Bytes(CheckedMul(per_token_max, tokens));
      std::string act_formula;
      if (w.grad_ckpt == GradCkpt::kFull) {
        // Each layer keeps only its input; one layer is recomputed in backward.
        const Bytes ckpts = Bytes(CheckedMul(CheckedMul(tokens, h), e_res)) * saving_layers;
        acts = ckpts * in_flight + layer_act;
        act_formula = Formula("checkpoints {} layers x {} tok x {} x {} B + one layer recomputed",
                                  saving_layers, tokens, h, e_res);
      } else {
        acts = Bytes(CheckedMul(per_token_all, tokens)) * in_flight;
        act_formula = Formula("{} layers x {} tok x {} B/token/layer (saved for backward)", saving_layers,
                                  tokens, saving_layers > 0 ? per_token_all / saving_layers : 0);
      }
      // Final norm + lm_head input on the last stage; embedding output on
      // the first (as the first layer's input).
      if (last) acts += Bytes(CheckedMul(tokens, 6 * h));
      const Bytes logits =
          last ? Bytes(CheckedMul(CheckedMul(tokens, CeilDiv(s.vocab_size, tp)), loss_bpe10) / 10) : Bytes(0);

      // ---- Sharding buffers.
      Bytes buffers;
      std::string buffers_formula;
      const int64_t largest_layer = [&] {
        int64_t m = 0;
        for (int64_t i = 0; i < L; ++i) {
          int64_t p = 0;
          for (const TensorGroup& g : inv.groups) {
            if (g.layers > 0 && g.moe_layer == s.layers[i].moe) p += g.elements_each() * (g.count / g.layers);
          }
          m = std::max(m, p);
        }
        return m;
      }();
      if (w.fsdp && dp > 1) {
        // FULL_SHARD: the unit in use, the prefetched next one and one
        // whose gradients await reduce-scatter, unsharded in 16 bits.
        buffers = Bytes(CheckedMul(CheckedMul(largest_layer, ew), 3)) * 1;
        buffers_formula = Formula("3 unsharded layers x {} params x {} B", Sci(largest_layer), ew);
      } else if (w.zero == 3 && dp > 1) {
        // ZeRO-3: the gathered layer + the prefetch bucket (5e7 elements).
        buffers = Bytes(CheckedMul(largest_layer, ew)) * 2 + Bytes(CheckedMul(50000000, ew));
        buffers_formula = Formula("2 gathered layers x {} params + 5e7-element prefetch, {} B", Sci(largest_layer), ew);
      } else if ((w.zero == 1 || w.zero == 2) && dp > 1) {
        // reduce_bucket_size and allgather_bucket_size, 5e8 elements each
        // (deepspeed/runtime/zero/config.py defaults), capped by the model.
        const int64_t bucket = std::min<int64_t>(500000000, tr.params + adapter_params);
        buffers = Bytes(CheckedMul(bucket, ew)) * 2;
        buffers_formula = Formula("reduce + allgather buckets 2 x {} elements x {} B", Sci(bucket), ew);
      } else if (dp > 1) {
        // DDP gradient buckets (gradient_as_bucket_view=False): a flat copy
        // of the gradients.
        buffers = grads_full + adapter_g;
        if (FormulasOn()) buffers_formula = "DDP gradient buckets (a flat copy of the gradients)";
      }

      // ---- Phases.
      const Bytes persistent = weights_dev + master_dev + (paged ? Bytes(0) : states_dev) + adapter_w +
                               (paged ? Bytes(0) : adapter_s);
      const Bytes grads_all = grads_full + adapter_g;
      const Bytes kept_grads = w.grad_accum > 1 ? grads_all : Bytes(0);
      // ZeRO-3 / FSDP gather layers in the forward pass too.
      const Bytes fwd_end = persistent + kept_grads + acts + logits + (shard_params ? buffers : Bytes(0));
      const Bytes bwd = persistent + grads_all + layer_act + buffers;
      // Optimizer step: torch's default foreach AdamW/Lion holds one
      // parameter-sized list (sqrt of exp_avg_sq); fused and 8-bit kernels
      // work in place.
      Bytes step_temp;
      if (!w.optimizer_fused && (w.optimizer == Optimizer::kAdamW || w.optimizer == Optimizer::kLion) &&
          !states_on_host) {
        step_temp = part(CheckedMul(tr.params, e_state), frac_tr, sdiv) +
                    part(CheckedMul(adapter_params, e_adapter), frac_layers, tp * (shard_states ? dp : 1));
      }
      const Bytes step = persistent + grads_all + step_temp;
      std::string phase = "forward end";
      Bytes peak = fwd_end;
      if (bwd > peak) { peak = bwd; phase = "backward"; }
      if (step > peak) { peak = step; phase = "optimizer step"; }

      // ---- Components at the peak phase.
      std::vector<Component> comps;
      {
        std::string f = Formula("{} params x {:.3g} B{}", Sci(inv.params),
                                    static_cast<double>(base_weights.value()) / static_cast<double>(inv.params),
                                    wdiv > 1 ? Formula(" / {}", wdiv) : "");
        if (w.offload == Offload::kParams) f = "offloaded to host";
        comps.push_back(Leaf("weights", weights_dev, f));
      }
      comps.push_back(Leaf("master_weights", master_dev,
                           mixed && tr.params > 0 ? Formula("fp32 copy: 4 B x {} params{}", Sci(tr.params),
                                                                sdiv > 1 ? Formula(" / {}", sdiv) : "")
                                                  : std::string()));
      const bool grads_live = phase != "forward end" || w.grad_accum > 1;
      comps.push_back(Leaf("gradients", grads_live ? grads_full : Bytes(0),
                           tr.params > 0 ? Formula("{} B x {} params{}{}", e_grad, Sci(tr.params),
                                                       gdiv > 1 ? Formula(" / {}", gdiv) : "",
                                                       grads_live ? "" : " (not allocated until backward)")
                                         : std::string()));
      {
        std::string f;
        switch (w.optimizer) {
          case Optimizer::kAdamW: f = Formula("AdamW: 2 states x {} B x {} params", e_state, Sci(tr.params)); break;
          case Optimizer::kAdamW8bit: f = Formula("8-bit AdamW: 2 x (1 B + fp32 absmax/256) x {} params", Sci(tr.params)); break;
          case Optimizer::kPagedAdamW8bit: f = "paged 8-bit AdamW (CUDA managed memory, outside the torch allocator)"; break;
          case Optimizer::kAdafactor: f = "Adafactor: fp32 row + column factors per matrix"; break;
          case Optimizer::kSgd: f = "SGD: no state"; break;
          case Optimizer::kSgdMomentum: f = Formula("momentum: 1 state x {} B x {} params", e_state, Sci(tr.params)); break;
          case Optimizer::kLion: f = Formula("Lion: 1 state x {} B x {} params", e_state, Sci(tr.params)); break;
        }
        if (sdiv > 1) f += Formula(" / {}", sdiv);
        if (states_on_host) f = "offloaded to host";
        if (tr.params == 0) f.clear();
        comps.push_back(Leaf("optimizer_states", states_dev, f));
      }
      if (lora) {
        comps.push_back(Parent("adapters",
                               {Leaf("weights", adapter_w, Formula("r {} x (in + out), {} params, fp32", w.lora_rank, Sci(adapter_params))),
                                Leaf("gradients", grads_live ? adapter_g : Bytes(0), "fp32"),
                                Leaf("optimizer_states", adapter_s, OptimizerName(w.optimizer))},
                               Formula("{} targets", w.lora_targets)));
      }
      std::vector<Component> act_children;
      if (phase == "forward end") {
        act_children.push_back(Leaf("saved for backward", acts, act_formula));
        if (shard_params && buffers.value() > 0) {
          act_children.push_back(Leaf("gathered parameters", buffers, buffers_formula));
        }
      } else {
        act_children.push_back(Leaf("layer in backward", phase == "backward" ? layer_act : Bytes(0),
                                    "one layer's saved tensors"));
      }
      if (buffers.value() > 0 && phase == "backward") {
        act_children.push_back(Leaf("communication buffers", buffers, buffers_formula));
      }
      if (phase == "optimizer step" && step_temp.value() > 0) {
        act_children.push_back(Leaf("optimizer step temporaries", step_temp, "foreach: one parameter-sized list"));
      }
      comps.push_back(Parent("activations", std::move(act_children)));
      comps.push_back(Leaf("logits", phase == "forward end" ? logits : Bytes(0),
                           last ? Formula("{} tok x {} vocab x {}.{} B ({} loss)", tokens, s.vocab_size,
                                              loss_bpe10 / 10, loss_bpe10 % 10, LossName(w.loss))
                                : std::string()));
      const Bytes allocated = Total(comps) - (paged ? states_dev + adapter_s : Bytes(0));

      // ---- Allocator slack: every parameter, gradient and state tensor is
      // its own allocation (2 MiB rounding above 10 MiB), and freed saved
      // tensors interleave with gradient allocations during backward.
      // Observed reserved/allocated: 1.0-1.15 on one GPU, 1.2-1.35 with
      // ZeRO-3/FSDP (docs/research/training.md section 8).
      // Large tensors on this device: weights, and for full training their
      // gradient and optimizer-state tensors; ~1 MiB average rounding each.
      int64_t tensors_here = 0;
      for (const TensorGroup& g : inv.groups) {
        if (g.elements_each() * ew > 10 * kMiB) tensors_here += g.count;
      }
      const int64_t per_param_tensors =
          1 + (w.method == TrainMethod::kFull && !states_on_host
                   ? 1 + (w.optimizer == Optimizer::kAdamW ? 2 : w.optimizer == Optimizer::kSgd ? 0 : 1)
                   : 0);
      const Bytes rounding = std::min(Bytes(CheckedMul(CheckedMul(tensors_here, per_param_tensors), kMiB)),
                                      Bytes(allocated.value() / 50));
      // Percent of the transient tensors (activations, logits, buffers).
      const int64_t frag_pct = shard_params ? 15 : 5;
      const Bytes fragmentation = Bytes((acts + logits + buffers).value() / 100 * frag_pct);
      comps.push_back(Parent("allocator_reserve",
                             {Leaf("segment rounding", rounding, "~1 MiB per large tensor, at most 2% of allocated"),
                              Leaf("fragmentation", fragmentation,
                                   Formula("{}% of activations, logits and buffers", frag_pct))}));
      const Bytes context = MiB(512);
      comps.push_back(Leaf("cuda_context", context, "CUDA context + kernel images (lazy loading)"));
      if (world > 1) {
        comps.push_back(Leaf("non_torch", MiB(512), "NCCL communicator buffers"));
      }

      for (int64_t rank = 0; rank < tp; ++rank) {
        for (int64_t r = 0; r < dp; ++r) {
          DeviceEstimate d;
          const int64_t idx = (stage * tp + rank) * dp + r;
          d.name = "gpu" + std::to_string(idx);
          if (idx < static_cast<int64_t>(devices.gpus.size())) d.gpu = devices.gpus[static_cast<size_t>(idx)];
          d.components = comps;
          d.allocated_peak = allocated;
          d.reserved_peak = allocated + rounding + fragmentation;
          d.total = Total(d.components);
          d.peak_phase = phase;
          e.devices.push_back(std::move(d));
        }
      }
      if (stage == 0) {
        e.notes.push_back(fmt::format(
            "phase totals on gpu0 (allocated): forward end {:.2f} GiB, backward {:.2f} GiB, optimizer step {:.2f} GiB",
            static_cast<double>(fwd_end.value()) / kGiB, static_cast<double>(bwd.value()) / kGiB,
            static_cast<double>(step.value()) / kGiB));
      }
    }

    // ---- Host memory: offloaded state.
    if (w.offload != Offload::kNone) {
      const int64_t master_total = mixed ? CheckedMul(tr.params, 4) : 0;
      std::vector<Component> host;
      host.push_back(Leaf("master_weights", Bytes(master_total), "fp32, all ranks' shards"));
      host.push_back(Leaf("optimizer_states", Bytes(CheckedAdd(tr.opt_bytes, adapter_opt))));
      host.push_back(Leaf("gradients", Bytes(CheckedMul(tr.params, 4)), "fp32 copy for the CPU step"));
      if (w.offload == Offload::kParams) host.push_back(Leaf("weights", base_weights));
      e.host = std::move(host);
    }

    // ---- Echo and notes.
    e.workload = {
        {"mode", std::string("train")},
        {"method", std::string(MethodName(w.method))},
        {"precision", std::string(PrecisionName(w.precision))},
        {"optimizer", std::string(OptimizerName(w.optimizer))},
        {"optimizer_impl", std::string(w.optimizer_fused ? "fused" : "foreach")},
        {"seq", w.seq},
        {"batch", w.batch},
        {"grad_accum", w.grad_accum},
        {"effective_batch", CheckedMul(CheckedMul(w.batch, w.grad_accum), w.dp)},
        {"grad_ckpt", std::string(GradCkptName(w.grad_ckpt))},
        {"attn", std::string(AttnName(w.attn))},
        {"loss", std::string(LossName(w.loss))},
        {"quant", w.quant.Name()},
        {"zero", w.zero},
        {"fsdp", w.fsdp},
        {"gpus", w.dp},
        {"offload", std::string(OffloadName(w.offload))},
        {"tp", w.tp},
        {"pp", w.pp},
        {"trainable_params", CheckedAdd(tr.params, adapter_params)},
    };
    if (lora) {
      e.workload.push_back({"lora_rank", w.lora_rank});
      e.workload.push_back({"lora_targets", w.lora_targets});
      e.workload.push_back({"lora_params", adapter_params});
    }
    if (w.method == TrainMethod::kFreeze) e.workload.push_back({"trainable_layers", w.trainable_layers});

    if (w.method == TrainMethod::kFull || w.method == TrainMethod::kFreeze) {
      int64_t per = ew + (mixed ? 4 : 0) + e_grad;
      std::string states;
      if (w.optimizer == Optimizer::kAdamW) { per += 2 * e_state; states = fmt::format(" + {} states", 2 * e_state); }
      else if (w.optimizer == Optimizer::kSgdMomentum || w.optimizer == Optimizer::kLion) { per += e_state; states = fmt::format(" + {} state", e_state); }
      else if (w.optimizer == Optimizer::kAdamW8bit || w.optimizer == Optimizer::kPagedAdamW8bit) { per += 2; states = " + ~2 (8-bit states)"; }
      e.notes.push_back(fmt::format("model state per trainable parameter: {} B ({} weights{} + {} grads{}){}",
                                    per, ew, mixed ? " + 4 master" : "", e_grad, states,
                                    dp > 1 && (shard_states || shard_params) ? fmt::format(", sharded over {} GPUs", dp) : ""));
    }
    if (w.grad_accum > 1) {
      e.notes.push_back(fmt::format("gradient accumulation {}: effective batch {} per step; memory grows only "
                                    "by keeping the gradients between micro-batches",
                                    w.grad_accum, w.batch * w.grad_accum * w.dp));
    }
    if (qlora) {
      e.notes.push_back("QLoRA as PEFT's prepare_model_for_kbit_training sets it up: non-quantized parameters "
                        "(embeddings, head, norms) cast to fp32, adapters fp32, compute bf16");
    }
    if (lora) e.notes.push_back("LoRA adapters are fp32 (PEFT autocast_adapter_dtype), frozen base linears save no input");
    if (paged) {
      e.notes.push_back("paged optimizer states live in CUDA managed memory: counted in total_bytes (nvidia-smi) "
                        "but not in the torch allocated/reserved peaks; the driver can evict them to host memory");
    }
    if (w.loss == LossImpl::kHf) {
      e.notes.push_back("logits: transformers' cross-entropy upcasts the [tokens, vocab] logits to fp32 "
                        "(12 B per token per vocab entry at the start of backward; --loss chunked or fused for less)");
    }
    if (w.attn == AttnImpl::kEager) e.notes.push_back("eager attention saves the fp32 softmax [heads, seq, seq] per layer");
    e.notes.push_back("peak = max(forward end, backward, optimizer step); cuda_context 512 MiB per process");

    Status st = runtimes::FinishEstimate(e, options);
    if (!st.ok()) return st.error();
  } catch (const OverflowError& ex) {
    return runtimes::OverflowToError(ex);
  }
  return e;
}

}  // namespace vramfit
