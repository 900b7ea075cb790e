// The `hf` runtime: transformers generate() on PyTorch/CUDA.
//
// Every term, its units and its source are in docs/estimation.md, section
// "hf runtime". In short, per device:
//   allocated_peak = weights + kv_cache + activations + logits   (at the peak phase)
//   reserved_peak  = allocated_peak + allocator_reserve
//   total          = reserved_peak + cuda_context
// The peak phase is the larger of the end of prefill (KV for the prompt,
// prefill temporaries of one layer, last-token logits) and the last decode
// step (KV for the whole context, DynamicCache's torch.cat copy of one
// layer's K, decode temporaries). The steps are declared, with their
// contracts, in hf_steps.h.
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

#include "../formula.h"
#include "hf_steps.h"
#include "profile.h"
#include "runtimes.h"

namespace vramfit::runtimes {
namespace hf {

int64_t SegmentBytes(int64_t x) {
  const int64_t r = RoundUp(std::max<int64_t>(x, 1), kMinBlock);
  if (r < kMinLargeAlloc) return r;
  return RoundUp(r, kRoundLarge);
}

bool IsSm90OrNewer(const std::optional<GpuSpec>& gpu) {
  if (!gpu || gpu->vendor != "nvidia" || gpu->compute_capability.empty()) return false;
  return std::atof(gpu->compute_capability.c_str()) >= 9.0;
}

Bytes CublasWorkspace(const std::optional<GpuSpec>& gpu) {
  return Bytes(IsSm90OrNewer(gpu) ? kCublasWorkspaceSm90 : kCublasWorkspace);
}

// --- Per-job layout.

HfJob HfJobOf(const Model& model, const InferenceWorkload& w) {
  const ModelSpec& s = model.spec;
  HfJob j;
  j.tp = w.tp;
  j.stages = w.pp;
  j.batch = w.batch;
  j.prompt = w.prompt;
  // The first generated token comes from the prefill forward; each later
  // one is a decode step, the last of which attends over prompt + new - 1
  // cached tokens.
  j.has_decode = w.new_tokens >= 2;
  j.decode_tokens = j.has_decode ? w.prompt + w.new_tokens - 1 : w.prompt;
  j.dt = Info(w.dtype).block_bytes;
  j.kvb = Info(w.kv_dtype).block_bytes;
  // transformers' DeepSeek-V2/V3 attention caches per-head K and V, not
  // the latent (modeling_deepseek_v3.py: key_states/value_states to update).
  const KvElements kv = KvElementsPerToken(s, KvLayout::kExpanded);
  j.mla = s.attn_kind == AttnKind::kMla;
  // KV heads per tensor-parallel rank; replicated when tp exceeds them.
  const int64_t kv_split = j.mla ? j.tp : std::min(j.tp, s.num_key_value_heads);
  j.kv_k = CeilDiv(kv.k, kv_split);
  j.kv_v = CeilDiv(kv.v, kv_split);
  j.window_capped = w.hf_version >= kHfVersionLayeredCache;
  j.heads = s.num_attention_heads / j.tp;
  j.kvh = j.mla ? j.heads : std::max<int64_t>(1, s.num_key_value_heads / j.tp);
  j.hd = s.head_dim;
  j.vhd = s.v_head_dim;
  j.h = s.hidden_size;
  j.vocab = CeilDiv(s.vocab_size, j.tp);
  j.bnb4 = w.quant.method == QuantMethod::kNf4 || w.quant.method == QuantMethod::kFp4;
  j.bnb8 = w.quant.method == QuantMethod::kInt8;
  j.gptq = w.quant.method == QuantMethod::kGptq;
  j.torchao = w.quant.method == QuantMethod::kTorchaoInt4 || w.quant.method == QuantMethod::kTorchaoInt8 ||
              w.quant.method == QuantMethod::kTorchaoFp6;
  j.quant = w.quant;
  j.dense = w.dtype;
  // Largest quantized linear (elements, and its out_features), per rank.
  for (const TensorGroup& g : model.inventory.groups) {
    if (!IsQuantized(g, w.quant)) continue;
    j.n_max = std::max(j.n_max, CeilDiv(g.elements_each(), j.tp));
    j.out_max = std::max(j.out_max, CeilDiv(g.rows, j.tp));
  }
  return j;
}

int64_t HfCachedTokens(const ModelSpec& s, const HfJob& job, int64_t layer, int64_t tokens) {
  // DynamicSlidingWindowLayer keeps the last W-1 tokens (cache_utils.py).
  if (job.window_capped && s.sliding_window > 0 &&
      s.layers[layer].attention == LayerAttention::kSliding) {
    return std::min(tokens, s.sliding_window - 1);
  }
  return tokens;
}

HfDevice HfDeviceOf(const ModelSpec& s, const HfJob& job, const DeviceSet& devices, int64_t stage,
                    int64_t rank) {
  HfDevice d;
  d.range = StageLayers(s.num_hidden_layers, job.stages, stage);
  d.first = stage == 0;
  d.last = stage == job.stages - 1;
  // A tied head runs where the embedding lives (accelerate keeps tied
  // parameters on one device); otherwise on the last stage.
  d.has_head = s.tie_word_embeddings ? d.first : d.last;
  d.has_layers = d.range.size() > 0;
  d.name = "gpu" + std::to_string(stage * job.tp + rank);
  const size_t idx = static_cast<size_t>(stage * job.tp + rank);
  if (idx < devices.gpus.size()) d.gpu = devices.gpus[idx];
  return d;
}

// --- Weights.

bool HfWeightsFromFile(const Model& model, const InferenceWorkload& w) {
  return w.weights_as_stored && !model.file_tensors.empty();
}

std::vector<StorageParts> HfGroupStorage(const Model& model, const InferenceWorkload& w) {
  std::vector<StorageParts> storage;
  storage.reserve(model.inventory.groups.size());
  for (const TensorGroup& g : model.inventory.groups) {
    storage.push_back(TensorStorage(g, w.quant, w.dtype));
  }
  return storage;
}

Bytes HfWeightBytes(const Model& model, const InferenceWorkload& w,
                    const std::vector<StorageParts>& storage) {
  if (HfWeightsFromFile(model, w)) {
    // The checkpoint's own tensors, summed as the devices hold them (all
    // layers on one device): the same bytes as the weights components.
    return FileWeightsComponent(model, w.dtype, /*cast_floats=*/true,
                                LayerRange{0, model.spec.num_hidden_layers}, true, true, 1)
        .bytes;
  }
  Bytes total(0);
  for (size_t gi = 0; gi < model.inventory.groups.size(); ++gi) {
    const TensorGroup& g = model.inventory.groups[gi];
    if (w.quant.exceptions) {
      total += GroupBytes(g, gi, w.quant, w.dtype);  // per-module exceptions
      continue;
    }
    Bytes one;  // TensorBytes: the sum of the parts
    for (const StoragePart& p : storage[gi]) one += p.bytes;
    total += one * g.count;
  }
  return total;
}

Component HfDeviceWeights(const Model& model, const InferenceWorkload& w, const HfJob& job,
                          const HfDevice& dev) {
  if (HfWeightsFromFile(model, w)) {
    return FileWeightsComponent(model, w.dtype, /*cast_floats=*/true, dev.range, dev.first,
                                dev.last, job.tp);
  }
  return WeightsComponent(model, w.quant, w.dtype, dev.range, dev.first, dev.last, job.tp);
}

// --- KV cache.

KvBytes HfKvBytes(const ModelSpec& s, const HfJob& job, LayerRange range, int64_t tokens) {
  KvBytes kv;
  for (int64_t i = range.first; i < range.last; ++i) {
    const int64_t t = HfCachedTokens(s, job, i, tokens);
    kv.k += Bytes(CheckedMul(CheckedMul(job.batch, t), job.kv_k)) * job.kvb;
    kv.v += Bytes(CheckedMul(CheckedMul(job.batch, t), job.kv_v)) * job.kvb;
  }
  return kv;
}

Component HfKvComponent(const ModelSpec& s, const HfJob& job, LayerRange range, int64_t tokens,
                        const KvBytes& kv, bool show) {
  std::vector<Component> children;
  children.reserve(2);
  int64_t n_sliding = 0;
  for (int64_t i = range.first; i < range.last; ++i) {
    n_sliding += HfCachedTokens(s, job, i, tokens) != tokens ? 1 : 0;
  }
  const auto formula_for = [&](int64_t width) {
    if (n_sliding == 0) {
      return Formula("{} seq x {} tok x {} layers x {} x {} B", job.batch, tokens, range.size(),
                     width, job.kvb);
    }
    return Formula("{} seq x ({} layers x {} tok + {} sliding x {} tok) x {} x {} B", job.batch,
                   range.size() - n_sliding, tokens, n_sliding, s.sliding_window - 1, width,
                   job.kvb);
  };
  if (show && (kv.k.value() > 0 || kv.v.value() > 0)) {
    children.push_back(Leaf(job.mla ? "K (per head)" : "K", kv.k, formula_for(job.kv_k)));
    children.push_back(Leaf(job.mla ? "V (per head)" : "V", kv.v, formula_for(job.kv_v)));
  }
  return Parent("kv_cache", std::move(children));
}

// --- Prefill temporaries.

HfAttentionTemps HfPrefillAttention(const InferenceWorkload& w, const HfJob& job) {
  const int64_t b = job.batch;
  const int64_t bs = CheckedMul(b, job.prompt);
  HfAttentionTemps t;
  // q, k, v, the RoPE copies of q and k, and the output.
  t.attn = Bytes(CheckedMul(bs, 3 * job.heads * job.hd + 3 * job.kvh * job.hd)) * job.dt;
  if (w.attn != AttnImpl::kEager) {
    t.formula = Formula("q,k,v + RoPE copies + out, {} tok", bs);
    return t;
  }
  // Eager: repeat_kv materialises K and V at all heads; scores in the
  // compute dtype, + mask, softmax in fp32, cast back: (2e + 4) B per score.
  const int64_t ss = CheckedMul(job.prompt, job.prompt);
  t.attn += Bytes(CheckedMul(bs, job.heads * (job.hd + job.vhd))) * job.dt;
  t.attn += Bytes(CheckedMul(CheckedMul(b * job.heads, ss), 2 * job.dt + 4));
  t.mask = Bytes(CheckedMul(CheckedMul(b, ss), job.dt));  // float [b,1,s,s] shared by layers
  t.formula =
      Formula("eager scores {} x {} heads x {}^2 x (2x{} + 4) B", b, job.heads, job.prompt, job.dt);
  return t;
}

HfMlpTemps HfPrefillMlp(const ModelSpec& s, const HfJob& job) {
  const int64_t bs = CheckedMul(job.batch, job.prompt);
  // act(gate), up and their product live together (3 x inter); a fused
  // gate_up keeps the 2 x inter projection alive (4); a GELU MLP keeps fc1
  // output + activation (2).
  HfMlpTemps t;
  t.inter = CeilDiv(s.intermediate_size, job.tp);
  t.width = s.mlp_kind == MlpKind::kPlain ? 2 : (s.fused_gate_up ? 4 : 3);
  t.mlp = Bytes(CheckedMul(bs, t.width * t.inter)) * job.dt;
  t.formula = Formula("{} x {} inter x {} tok x {} B", t.width, t.inter, bs, job.dt);
  if (s.num_experts > 0) {
    // Experts run one after another on their routed tokens (worst case:
    // every token to one expert), plus the fp32 router logits and the
    // output accumulator.
    const int64_t mi = CeilDiv(s.moe_intermediate_size, job.tp);
    const int64_t shared = CeilDiv(s.shared_expert_intermediate_size, job.tp);
    const int64_t ew = s.fused_gate_up ? 4 : 3;
    const Bytes moe_mlp = Bytes(CheckedMul(bs, ew * mi + 3 * shared + job.h)) * job.dt +
                          Bytes(CheckedMul(bs, s.num_experts)) * 4;
    if (moe_mlp > t.mlp || s.intermediate_size == 0) {
      t.mlp = moe_mlp;
      t.formula =
          Formula("expert {} x {} + router fp32 x {} experts, {} tok", ew, mi, s.num_experts, bs);
    }
    t.inter = std::max(t.inter, mi);
  }
  return t;
}

HfQuantTemps HfQuantTransients(const HfJob& job, int64_t inter, bool has_layers) {
  HfQuantTemps q;
  if (job.bnb8) {
    // MatMul8bitLt: int32 accumulator [t, out] + int8 copy of the input.
    q.int8_acc = Bytes(
        CheckedMul(CheckedMul(job.batch, job.prompt), 4 * job.out_max + std::max(inter, job.h)));
  }
  // bitsandbytes 4-bit (0.41-0.49) dequantizes the weight for a prefill
  // matmul: the stored-dtype copy and the compute-dtype copy of the largest
  // quantized linear.
  if (job.bnb4 && has_layers) q.dequant = Bytes(CheckedMul(job.n_max, 2 + job.dt));
  // GPTQ exllama kernels keep a temp_dq buffer of max(in x out) fp16.
  if (job.gptq) q.gptq_buf = Bytes(CheckedMul(job.n_max, 2));
  // Loading: bnb quantizes each weight from a 16-bit copy on the GPU;
  // torchao's quantize_ does the same from the bf16 weight it loaded.
  if (job.bnb4 || job.bnb8 || job.torchao) q.load = Bytes(CheckedMul(job.n_max, 2));
  return q;
}

HfPrefill HfPrefillTemporaries(const InferenceWorkload& w, const HfJob& job, const HfDevice& dev,
                               HfMlpTemps mlp, const HfQuantTemps& quant) {
  HfPrefill p;
  const int64_t bs = CheckedMul(job.batch, job.prompt);
  // Residual stream + normed input persist through the layer.
  if (dev.has_layers) p.hidden = Bytes(CheckedMul(bs, job.h)) * (job.dt * 2);
  p.attention = HfPrefillAttention(w, job);
  if (job.bnb8) {
    mlp.mlp += quant.int8_acc;
    if (FormulasOn()) mlp.formula += " + int8 matmul int32 accumulator";
  }
  p.mlp = std::move(mlp);
  // Temporaries die as soon as unreferenced: one layer's peak is live.
  p.attn_peak = p.attention.attn >= p.mlp.mlp;
  p.layer_peak = p.attn_peak ? p.attention.attn : p.mlp.mlp;
  p.dequant = quant.dequant;
  if (dev.has_layers) p.act = p.hidden + p.attention.mask + p.layer_peak + p.dequant;
  return p;
}

// --- Decode temporaries.

HfDecode HfDecodeTemporaries(const ModelSpec& s, const InferenceWorkload& w, const HfJob& job,
                             const HfDevice& dev, const HfMlpTemps& mlp, const KvBytes& kv_full) {
  HfDecode d;
  if (!dev.has_layers || !job.has_decode) return d;
  const int64_t b = job.batch;
  d.act = Bytes(CheckedMul(b, 2 * job.h + mlp.width * mlp.inter + 3 * job.heads * job.hd)) * job.dt;
  int64_t max_t = 0;
  for (int64_t i = dev.range.first; i < dev.range.last; ++i) {
    max_t = std::max(max_t, HfCachedTokens(s, job, i, job.decode_tokens));
  }
  if (w.attn == AttnImpl::kEager) {
    // Scores plus repeat_kv K and V over the cached tokens.
    d.act +=
        Bytes(CheckedMul(CheckedMul(b, job.heads), max_t)) * (2 * job.dt + 4 + 2 * job.hd * job.dt);
  }
  // DynamicCache.update: torch.cat builds the grown K of one layer before
  // the old one is freed.
  d.cat_copy = Bytes(CheckedMul(CheckedMul(b, max_t), std::max(job.kv_k, job.kv_v))) * job.kvb;
  // Before 4.42 generate kept the previous step's legacy cache tuple alive
  // while the model built the next one: a second full KV.
  if (w.hf_version < kHfVersionInPlaceCache) d.cat_copy = kv_full.sum();
  return d;
}

// --- Logits.

HfLogits HfLogitsOf(const InferenceWorkload& w, const HfJob& job, bool has_head) {
  HfLogits l;
  if (!has_head) return l;
  const int64_t b = job.batch;
  // >= 4.46: the model computes the last position only (logits_to_keep=1)
  // in the compute dtype and generate copies it to fp32. 4.45: the model
  // also upcasts (+4 B). <= 4.44: every prompt position, upcast to fp32 in
  // the model (b x s x V x (e + 4)).
  if (w.hf_version <= kHfVersionLastAllPositionLogits) {
    const int64_t bs = CheckedMul(b, job.prompt);
    l.prefill = Bytes(CheckedMul(bs, job.vocab)) * (job.dt + 4);
    l.prefill_formula =
        Formula("{} tok x {} vocab x ({} + 4) B, every prompt position", bs, job.vocab, job.dt);
  } else {
    const int64_t per = w.hf_version == kHfVersionUpcastLastLogits ? job.dt + 8 : job.dt + 4;
    l.prefill = Bytes(CheckedMul(b, job.vocab)) * per;
    l.prefill_formula = Formula("{} seq x {} vocab x {} B, last position", b, job.vocab, per);
  }
  // Decode steps compute one position per sequence.
  l.decode = Bytes(CheckedMul(b, job.vocab)) * (job.dt + 4);
  return l;
}

// --- Phases.

const char* HfPhaseName(HfPhase p) {
  switch (p) {
    case HfPhase::kLoad: return "load";
    case HfPhase::kPrefill: return "prefill";
    case HfPhase::kDecode: return "decode";
  }
  return "?";
}

HfPhase HfPeakPhase(const HfPhaseTotals& t, bool has_decode) {
  HfPhase phase = HfPhase::kPrefill;
  if (has_decode && t.decode > t.prefill) phase = HfPhase::kDecode;
  if (t.load > std::max(t.prefill, t.decode)) phase = HfPhase::kLoad;
  return phase;
}

// --- Allocator reserve.

Bytes HfSegmentRounding(const Model& model, const std::vector<StorageParts>& storage,
                        const HfJob& job, const HfDevice& dev) {
  // Every weight is its own allocation, rounded up to a 2 MiB segment when
  // over 10 MiB.
  const ModelSpec& s = model.spec;
  Bytes rounding;
  for (size_t gi = 0; gi < model.inventory.groups.size(); ++gi) {
    const TensorGroup& g = model.inventory.groups[gi];
    int64_t copies = 0;
    // All layers on the device: every copy (encoder-decoder decoder groups
    // span the decoder's layers, not num_hidden_layers).
    if (g.layers > 0 && dev.range.size() == s.num_hidden_layers) {
      copies = g.count;
    } else if (g.layers > 0) {
      copies = g.count / g.layers * GroupLayersIn(s, g, dev.range.first, dev.range.last);
    } else if (g.role == Role::kLmHead || g.name == "norm.weight" || g.name == "norm.bias") {
      copies = dev.last ? g.count : 0;
    } else {
      copies = dev.first ? g.count : 0;
    }
    if (copies == 0) continue;
    // Each stored part (packed values, scales, zeros) is its own tensor;
    // tensors a per-module exception keeps another way have their own parts.
    const WeightFormat& f = job.quant;
    int64_t by_kind[ModuleExceptions::kMaxKinds + 1];
    const size_t kinds = SplitByExceptions(f, gi, dev.range.first, dev.range.last, copies, by_kind);
    for (size_t kind = 0; kind < kinds; ++kind) {
      if (by_kind[kind] == 0) continue;
      const StorageParts parts =
          kind == 0 ? storage[gi] : TensorStorage(g, ExceptionFormat(f, f.exceptions->kinds[kind - 1]), job.dense);
      for (const StoragePart& part : parts) {
        const int64_t x = CeilDiv(part.bytes.value(), g.linear ? job.tp : 1);
        rounding += Bytes(CheckedMul(SegmentBytes(x) - x, by_kind[kind]));
      }
    }
  }
  return rounding;
}

Bytes HfOutgrownSegments(const ModelSpec& s, const HfJob& job, LayerRange range) {
  // DynamicCache outgrows its segments while it grows by torch.cat: each
  // 2 MiB size a layer's K or V passes leaves a segment no larger tensor can
  // reuse (freed only when memory runs out).
  Bytes growth;
  if (!job.has_decode) return growth;
  for (int64_t i = range.first; i < range.last; ++i) {
    for (int64_t per : {job.kv_k, job.kv_v}) {
      if (per == 0) continue;
      const int64_t per_tok = CheckedMul(CheckedMul(job.batch, per), job.kvb);
      const int64_t lo = SegmentBytes(CheckedMul(per_tok, HfCachedTokens(s, job, i, job.prompt)));
      const int64_t hi =
          SegmentBytes(CheckedMul(per_tok, HfCachedTokens(s, job, i, job.decode_tokens)));
      const int64_t from = std::max(lo, kLargeBuffer);
      if (hi <= from) continue;
      // Segments of from, from + 2 MiB, ..., hi - 2 MiB are left behind.
      const int64_t n = (hi - from) / kRoundLarge;
      growth +=
          Bytes(CheckedAdd(CheckedMul(n, from), CheckedMul(kRoundLarge, CheckedMul(n, n - 1) / 2)));
    }
  }
  return growth;
}

HfReserve HfAllocatorReserve(const Model& model, const std::vector<StorageParts>& storage,
                             const HfJob& job, const HfDevice& dev, HfPhase phase, Bytes allocated,
                             Bytes prefill_total, const KvBytes& kv_prefill,
                             const KvBytes& kv_full) {
  HfReserve r;
  r.rounding = HfSegmentRounding(model, storage, job, dev);
  // Freed segments are partly reused: large cached blocks (the freed
  // prefill temporaries) are split for the growing tensors and coalesce
  // again when freed. Until measured on a GPU, the slack is bounded by the
  // cache growth during decode.
  r.growth =
      std::min(HfOutgrownSegments(model.spec, job, dev.range), kv_full.sum() - kv_prefill.sum());
  std::string growth_note;
  if (FormulasOn()) {
    growth_note = "DynamicCache torch.cat growth, at most the decode-time KV growth";
  }
  if (dev.gpu && r.growth.value() > 0) {
    // The allocator frees cached blocks and retries before it reports an
    // OOM, so outgrown segments never push a job that fits over the top.
    const Bytes room = dev.gpu->capacity - MiB(kTorchCudaContextMiB) - allocated - r.rounding;
    if (r.growth > room) {
      r.growth = std::max(Bytes(0), room);
      if (FormulasOn()) growth_note += " (capped: cached blocks are released before an OOM)";
    }
  }
  // Freed prefill temporaries stay reserved when the peak is later.
  if (phase != HfPhase::kPrefill) r.freed = std::max(Bytes(0), prefill_total - allocated);
  std::vector<Component> slack;
  slack.reserve(3);
  slack.push_back(
      Leaf("segment rounding", r.rounding, "tensors over 10 MiB rounded to 2 MiB segments"));
  if (r.freed.value() > 0) slack.push_back(Leaf("cached prefill temporaries", r.freed));
  if (r.growth.value() > 0) slack.push_back(Leaf("outgrown cache segments", r.growth, growth_note));
  r.component = Parent("allocator_reserve", std::move(slack));
  return r;
}

Component HfCudaContext() {
  return Leaf("cuda_context", MiB(kTorchCudaContextMiB),
              "CUDA context + kernel images (lazy loading)");
}

// --- Components at the peak phase.
namespace {

// The "activations" component: what is live besides weights, KV and logits
// at the peak phase.
Component ActivationsAt(HfPhase phase, const InferenceWorkload& w, const HfJob& job,
                        const HfDevice& dev, const HfPrefill& pre, const HfDecode& dec,
                        const HfQuantTemps& quant, Bytes cublas) {
  std::vector<Component> act;
  act.reserve(6);
  if (phase == HfPhase::kLoad) {
    act.push_back(Leaf("load transient", quant.load, "16-bit copy of the largest weight"));
  } else if (phase == HfPhase::kDecode) {
    act.push_back(Leaf("decode temporaries", dec.act, "one token per sequence"));
    act.push_back(Leaf("cache growth copy", dec.cat_copy,
                       w.hf_version < kHfVersionInPlaceCache
                           ? "previous step's legacy cache tuple (< 4.42)"
                           : "torch.cat of one layer's K"));
  } else if (dev.has_layers) {
    const int64_t bs = CheckedMul(job.batch, job.prompt);
    act.push_back(
        Leaf("hidden states", pre.hidden, Formula("2 x {} tok x {} x {} B", bs, job.h, job.dt)));
    if (pre.attention.mask.value() > 0) {
      act.push_back(Leaf("attention mask", pre.attention.mask, "float [b,1,s,s]"));
    }
    act.push_back(Leaf(pre.attn_peak ? "attention" : "mlp", pre.layer_peak,
                       pre.attn_peak ? pre.attention.formula : pre.mlp.formula));
    if (pre.dequant.value() > 0) {
      act.push_back(Leaf("4-bit dequant", pre.dequant,
                         Formula("largest linear {} x (2 + {}) B", job.n_max, job.dt)));
    }
  }
  if (quant.gptq_buf.value() > 0) {
    act.push_back(Leaf("exllama temp_dq", quant.gptq_buf, "2 x largest in x out"));
  }
  if (phase != HfPhase::kLoad) act.push_back(Leaf("cublas workspace", cublas));
  return Parent("activations", std::move(act));
}

// The "logits" component at the peak phase (0 B at load).
Component LogitsAt(HfPhase phase, const HfJob& job, const HfDevice& dev, const HfLogits& logits) {
  const bool at_decode = phase == HfPhase::kDecode;
  const Bytes shown = phase == HfPhase::kLoad ? Bytes(0)
                      : at_decode             ? logits.decode
                                              : logits.prefill;
  std::string formula;
  if (dev.has_head) {
    formula = at_decode ? Formula("{} seq x {} vocab x ({} + 4) B, one position", job.batch,
                                  job.vocab, job.dt)
                        : logits.prefill_formula;
  }
  return Leaf("logits", shown, std::move(formula));
}

}  // namespace

DeviceEstimate HfDeviceEstimate(const Model& model, const InferenceWorkload& w, const HfJob& job,
                                const std::vector<StorageParts>& storage, const DeviceSet& devices,
                                int64_t stage, int64_t rank) {
  const ModelSpec& s = model.spec;
  const HfDevice dev = HfDeviceOf(s, job, devices, stage, rank);
  Component weights = HfDeviceWeights(model, w, job, dev);
  const Bytes weight_bytes = weights.bytes;
  const KvBytes kv_prefill = HfKvBytes(s, job, dev.range, job.prompt);
  const KvBytes kv_full = HfKvBytes(s, job, dev.range, job.decode_tokens);
  HfMlpTemps mlp = HfPrefillMlp(s, job);
  const HfQuantTemps quant = HfQuantTransients(job, mlp.inter, dev.has_layers);
  const HfDecode dec = HfDecodeTemporaries(s, w, job, dev, mlp, kv_full);
  const HfPrefill pre = HfPrefillTemporaries(w, job, dev, std::move(mlp), quant);
  const HfLogits logits = HfLogitsOf(w, job, dev.has_head);
  const Bytes cublas = CublasWorkspace(dev.gpu);

  const Bytes fixed = weight_bytes + cublas + quant.gptq_buf;
  HfPhaseTotals totals;
  totals.load = weight_bytes + quant.load;
  totals.prefill = fixed + kv_prefill.sum() + pre.act + logits.prefill;
  totals.decode = fixed + kv_full.sum() + dec.act + dec.cat_copy + logits.decode;
  const HfPhase phase = HfPeakPhase(totals, job.has_decode);
  const bool at_decode = phase == HfPhase::kDecode;

  std::vector<Component> comps;
  comps.reserve(6);
  comps.push_back(std::move(weights));
  comps.push_back(HfKvComponent(s, job, dev.range, at_decode ? job.decode_tokens : job.prompt,
                                at_decode ? kv_full : kv_prefill, phase != HfPhase::kLoad));
  comps.push_back(ActivationsAt(phase, w, job, dev, pre, dec, quant, cublas));
  comps.push_back(LogitsAt(phase, job, dev, logits));
  const Bytes allocated = Total(comps);
  HfReserve reserve = HfAllocatorReserve(model, storage, job, dev, phase, allocated, totals.prefill,
                                         kv_prefill, kv_full);
  comps.push_back(std::move(reserve.component));
  comps.push_back(HfCudaContext());

  DeviceEstimate d;
  d.name = dev.name;
  d.gpu = dev.gpu;
  d.peak_phase = HfPhaseName(phase);
  d.allocated_peak = allocated;
  d.reserved_peak = allocated + reserve.rounding + reserve.freed + reserve.growth;
  d.total = *d.reserved_peak + MiB(kTorchCudaContextMiB);
  d.components = std::move(comps);
  return d;
}

// --- Echo and notes.

void HfEcho(const InferenceWorkload& w, Echo* echo) {
  // Built in place (an initializer list would copy every entry).
  echo->reserve(13);
  echo->emplace_back("runtime", std::string("hf"));
  echo->emplace_back("dtype", std::string(Name(w.dtype)));
  echo->emplace_back("quant", w.quant.Name());
  echo->emplace_back("batch", w.batch);
  echo->emplace_back("prompt", w.prompt);
  echo->emplace_back("new", w.new_tokens);
  echo->emplace_back("ctx", w.ctx);
  echo->emplace_back("kv_dtype", std::string(Name(w.kv_dtype)));
  echo->emplace_back("attn", std::string(AttnName(w.attn)));
  echo->emplace_back("tp", w.tp);
  echo->emplace_back("pp", w.pp);
  echo->emplace_back("transformers",
                     std::to_string(w.hf_version / 100) + "." + std::to_string(w.hf_version % 100));
  if (w.quant.method == QuantMethod::kGptq || w.quant.method == QuantMethod::kAwq) {
    echo->push_back({"group_size", w.quant.group_size});
  }
}

void HfNotes(const InferenceWorkload& w, const HfJob& job, std::vector<std::string>* notes) {
  if (job.mla) {
    notes->push_back(
        "transformers caches DeepSeek MLA as per-head K and V (not the latent), so "
        "its KV cache is far larger than in vLLM or llama.cpp");
  }
  if (job.bnb4) {
    notes->push_back(
        "bitsandbytes 4-bit: prefill dequantizes the largest linear (bitsandbytes "
        "0.41-0.49 behaviour)");
  }
  if (w.hf_version >= kHfVersionLayeredCache) {
    notes->push_back(
        "modelled stack: transformers >= 4.56 generate() with DynamicCache, "
        "last-position logits; PyTorch caching allocator without expandable_segments");
  } else {
    notes->push_back(fmt::format("modelled stack: transformers {}.{} generate(){}{}{}",
                                 w.hf_version / 100, w.hf_version % 100,
                                 w.hf_version < kHfVersionInPlaceCache
                                     ? "; legacy cache tuples (2 x KV while decoding)"
                                     : "",
                                 w.hf_version <= kHfVersionLastAllPositionLogits
                                     ? "; logits for every prompt position, upcast to fp32"
                                     : "",
                                 "; sliding-window layers cache every token"));
  }
  notes->push_back(TorchCudaContextNote(kTorchCudaContextMiB));
}

}  // namespace hf

void EstimateHf(const Model& model, const InferenceWorkload& w, const DeviceSet& devices,
                Estimate& e) {
  if (model.spec.topology != Topology::kDecoder) {
    EstimateHfEncoder(model, w, devices, e);  // hf_encoder.cc
    return;
  }
  const hf::HfJob job = hf::HfJobOf(model, w);
  // Storage of one tensor of each group (TensorStorage), computed once.
  const std::vector<StorageParts> storage = hf::HfGroupStorage(model, w);
  e.kv_bytes_per_token = KvBytesPerToken(model.spec, w.kv_dtype, KvLayout::kExpanded);
  e.weight_bytes = hf::HfWeightBytes(model, w, storage);
  for (int64_t stage = 0; stage < job.stages; ++stage) {
    for (int64_t rank = 0; rank < job.tp; ++rank) {
      e.devices.push_back(hf::HfDeviceEstimate(model, w, job, storage, devices, stage, rank));
    }
  }
  hf::HfEcho(w, &e.workload);
  if (!FormulasOn()) return;  // numbers-only estimates carry no notes
  hf::HfNotes(w, job, &e.notes);
}

// --- The profile.
namespace {

class HfRuntime final : public RuntimeProfile {
 public:
  Runtime id() const override { return Runtime::kHf; }

  std::span<const std::string_view> Settings() const override {
    static constexpr std::string_view kSettings[] = {"attn", "transformers"};
    return kSettings;
  }

  Status Resolve(const Model& model, const InferenceSettings& s, const DeviceSet& devices,
                 InferenceWorkload* w, std::vector<std::string>* notes) const override {
    if (IsHybridStack(model.spec)) {
      return HybridRefusal(model.spec, RuntimeName(id()),
                           "the transformers hybrid cache with its mixers' prefill activations");
    }
    // GGUF file types are what llama.cpp loads, and only llama.cpp.
    if (w->quant.method == QuantMethod::kGguf) {
      return InvalidArgument(
          fmt::format("--quant {}: GGUF file types need --runtime llamacpp", w->quant.Name()));
    }
    if (notes && (s.ctx || s.ctx_from_model) && !s.prompt && !s.new_tokens) {
      notes->push_back("--ctx without --prompt/--new: the whole context is taken as one prefill "
                       "(the worst case for prefill temporaries)");
    } else if (notes && !s.ctx && !s.ctx_from_model && !s.prompt && !s.new_tokens) {
      notes->push_back(fmt::format("context defaults to {} tokens per sequence, prefilled at once",
                                   w->ctx));
    }
    VRAMFIT_TRY(hf::CheckEncoderInference(model.spec, s, *w));  // hf_encoder.cc
    if (model.spec.topology == Topology::kDecoder) NoteContextOverMax(model, *w, notes);
    const DTypeInfo& kv = Info(w->kv_dtype);
    if (kv.block_elems != 1) {
      return InvalidArgument(fmt::format(
          "--kv-dtype: {} is a llama.cpp cache type; the hf runtime caches fp16, bf16, fp32 or fp8",
          kv.name));
    }
    const int64_t n = static_cast<int64_t>(devices.size());
    if (s.tp == 1 && s.pp == 1 && n > 1) {
      // transformers' device_map="auto" places consecutive layers on each GPU.
      w->pp = n;
      if (notes) {
        notes->push_back(fmt::format(
            "{} GPUs without --tp/--pp: layers are split across them as device_map=\"auto\" does",
            n));
      }
    }
    return {};
  }

  Status Estimate(const Model& model, const InferenceWorkload& w, const DeviceSet& devices,
                  vramfit::Estimate& e) const override {
    EstimateHf(model, w, devices, e);
    return {};
  }

  bool HasLaunchFlags() const override { return false; }
  std::vector<std::string> QuantLadder() const override {
    return {"none", "fp8", "int8", "awq-int4", "gptq-int4", "nf4", "nf4-dq", "fp4-dq"};
  }
  std::vector<std::string> FixQuants() const override { return {"fp8", "int8", "nf4"}; }
  std::vector<std::string> KvLadder() const override { return {"fp8"}; }
};

}  // namespace

const RuntimeProfile& HfProfile() {
  static const HfRuntime kProfile;
  return kProfile;
}

std::string TorchCudaContextNote(int64_t mib) {
  return fmt::format(
      "cuda_context is {} MiB per process (CUDA >= 11.7 lazy loading); older stacks take up to 1.3 GiB "
      "(--cuda-context MIB gives a measured one)",
      mib);
}

}  // namespace vramfit::runtimes
