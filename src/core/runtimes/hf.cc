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
// layer's K, decode temporaries).
#include <algorithm>

#include <fmt/format.h>

#include "../formula.h"
#include "profile.h"
#include "runtimes.h"

namespace vramfit::runtimes {
namespace {

// CUDA context + kernel images a PyTorch process pays per device (lazy
// module loading, CUDA >= 11.7): 274-426 MiB measured before any kernel
// runs, plus cuBLAS/attention modules loaded on first use.
constexpr int64_t kTorchCudaContextMiB = 512;
// cuBLAS workspace, allocated through the caching allocator
// (CublasHandlePool.cpp parseChosenWorkspaceSize): ":4096:2:16:8" =
// 8.125 MiB by default, 32 MiB on Hopper and Blackwell (sm >= 9.0).
constexpr int64_t kCublasWorkspace = 4096 * kKiB * 2 + 16 * kKiB * 8;
constexpr int64_t kCublasWorkspaceSm90 = 32 * kMiB;
// CUDACachingAllocator: allocations above 10 MiB get their own segment
// rounded to 2 MiB (kRoundLarge); 1-10 MiB share 20 MiB segments; up to
// 1 MiB come from 2 MiB small-pool segments. Sizes round to 512 B.
constexpr int64_t kRoundLarge = 2 * kMiB;
constexpr int64_t kLargeBuffer = 20 * kMiB;
constexpr int64_t kMinLargeAlloc = 10 * kMiB;
constexpr int64_t kMinBlock = 512;

// Segment bytes the caching allocator reserves for one allocation of x
// bytes that gets its own segment (x > 10 MiB); smaller ones share
// segments and cost only their 512 B rounding.
int64_t SegmentBytes(int64_t x) {
  const int64_t r = RoundUp(std::max<int64_t>(x, 1), kMinBlock);
  if (r < kMinLargeAlloc) return r;
  return RoundUp(r, kRoundLarge);
}

bool IsSm90OrNewer(const std::optional<GpuSpec>& gpu) {
  if (!gpu || gpu->vendor != "nvidia" || gpu->compute_capability.empty()) return false;
  return std::atof(gpu->compute_capability.c_str()) >= 9.0;
}

}  // namespace

void EstimateHf(const Model& model, const InferenceWorkload& w, const DeviceSet& devices,
                Estimate& e) {
  const ModelSpec& s = model.spec;
  const int64_t tp = w.tp;
  const int64_t stages = w.pp;
  const int64_t dt = Info(w.dtype).block_bytes;
  const int64_t kvb = Info(w.kv_dtype).block_bytes;
  // transformers' DeepSeek-V2/V3 attention caches per-head K and V, not
  // the latent (modeling_deepseek_v3.py: key_states/value_states to update).
  const KvLayout layout = KvLayout::kExpanded;
  const KvElements kv = KvElementsPerToken(s, layout);
  const bool mla = s.attn_kind == AttnKind::kMla;
  // KV heads per tensor-parallel rank; replicated when tp exceeds them.
  const int64_t kv_split = mla ? tp : std::min(tp, s.num_key_value_heads);
  const int64_t kv_k = CeilDiv(kv.k, kv_split);
  const int64_t kv_v = CeilDiv(kv.v, kv_split);
  // DynamicSlidingWindowLayer keeps the last W-1 tokens (cache_utils.py).
  const bool layered_cache = w.hf_version >= 456;
  const auto cached = [&](int64_t layer, int64_t tokens) {
    if (layered_cache && s.sliding_window > 0 &&
        s.layers[layer].attention == LayerAttention::kSliding) {
      return std::min(tokens, s.sliding_window - 1);
    }
    return tokens;
  };

  e.kv_bytes_per_token = KvBytesPerToken(s, w.kv_dtype, layout);
  e.weight_bytes = Bytes(0);
  if (w.weights_as_stored && !model.file_tensors.empty()) {
    // The checkpoint's own tensors, summed as the devices hold them (all
    // layers on one device): the same bytes as the weights components.
    e.weight_bytes = FileWeightsComponent(model, w.dtype, /*cast_floats=*/true,
                                          LayerRange{0, s.num_hidden_layers}, true, true, 1).bytes;
  }
  // Storage of one tensor of each group (TensorStorage), computed once.
  std::vector<StorageParts> storage;
  storage.reserve(model.inventory.groups.size());
  for (const TensorGroup& g : model.inventory.groups) storage.push_back(TensorStorage(g, w.quant, w.dtype));
  if (!(w.weights_as_stored && !model.file_tensors.empty())) {
    for (size_t gi = 0; gi < model.inventory.groups.size(); ++gi) {
      Bytes one;  // TensorBytes: the sum of the parts
      for (const StoragePart& p : storage[gi]) one += p.bytes;
      e.weight_bytes += one * model.inventory.groups[gi].count;
    }
  }

  const int64_t b = w.batch;
  // The first generated token comes from the prefill forward; each later
  // one is a decode step, the last of which attends over prompt + new - 1
  // cached tokens.
  const bool has_decode = w.new_tokens >= 2;
  const int64_t decode_tokens = has_decode ? w.prompt + w.new_tokens - 1 : w.prompt;
  const int64_t heads = s.num_attention_heads / tp;
  const int64_t kvh = mla ? heads : std::max<int64_t>(1, s.num_key_value_heads / tp);
  const int64_t hd = s.head_dim;
  const int64_t vhd = s.v_head_dim;
  const int64_t h = s.hidden_size;
  const bool moe = s.num_experts > 0;
  const int64_t vocab = CeilDiv(s.vocab_size, tp);
  const bool bnb4 = w.quant.method == QuantMethod::kNf4 || w.quant.method == QuantMethod::kFp4;
  const bool bnb8 = w.quant.method == QuantMethod::kInt8;

  // Largest quantized linear (elements, and its out_features), per rank.
  int64_t n_max = 0, out_max = 0;
  for (const TensorGroup& g : model.inventory.groups) {
    if (!IsQuantized(g, w.quant)) continue;
    n_max = std::max(n_max, CeilDiv(g.elements_each(), tp));
    out_max = std::max(out_max, CeilDiv(g.rows, tp));
  }

  for (int64_t stage = 0; stage < stages; ++stage) {
    for (int64_t rank = 0; rank < tp; ++rank) {
      const LayerRange range = StageLayers(s.num_hidden_layers, stages, stage);
      const bool first = stage == 0;
      const bool last = stage == stages - 1;
      // A tied head runs where the embedding lives (accelerate keeps tied
      // parameters on one device); otherwise on the last stage.
      const bool has_head = s.tie_word_embeddings ? first : last;
      const bool has_layers = range.size() > 0;
      DeviceEstimate d;
      d.name = "gpu" + std::to_string(stage * tp + rank);
      const size_t idx = static_cast<size_t>(stage * tp + rank);
      if (idx < devices.gpus.size()) d.gpu = devices.gpus[idx];

      Component weights =
          (w.weights_as_stored && !model.file_tensors.empty())
              ? FileWeightsComponent(model, w.dtype, /*cast_floats=*/true, range, first, last, tp)
              : WeightsComponent(model, w.quant, w.dtype, range, first, last, tp);
      const Bytes weight_bytes = weights.bytes;

      // --- KV cache for T tokens per sequence, per layer.
      auto kv_bytes = [&](int64_t tokens) {
        Bytes k, v;
        for (int64_t i = range.first; i < range.last; ++i) {
          const int64_t t = cached(i, tokens);
          k += Bytes(CheckedMul(CheckedMul(b, t), kv_k)) * kvb;
          v += Bytes(CheckedMul(CheckedMul(b, t), kv_v)) * kvb;
        }
        return std::pair<Bytes, Bytes>{k, v};
      };
      const auto [k_prefill, v_prefill] = kv_bytes(w.prompt);
      const auto [k_full, v_full] = kv_bytes(decode_tokens);

      // --- Prefill: one forward over the prompt, no grad (temporaries die
      // as soon as unreferenced). Residual stream + normed input persist.
      const int64_t bs = CheckedMul(b, w.prompt);
      const Bytes hidden = has_layers ? Bytes(CheckedMul(bs, h)) * (dt * 2) : Bytes(0);
      // Attention: q, k, v, their RoPE copies and the output.
      Bytes attn = Bytes(CheckedMul(bs, 3 * heads * hd + 3 * kvh * hd)) * dt;
      std::string attn_formula = Formula("q,k,v + RoPE copies + out, {} tok", bs);
      Bytes mask;
      if (w.attn == AttnImpl::kEager) {
        // repeat_kv materialises K and V at all heads; scores in the compute
        // dtype, + mask, softmax in fp32, cast back: (2e + 4) B per score.
        const int64_t ss = CheckedMul(w.prompt, w.prompt);
        attn += Bytes(CheckedMul(bs, heads * (hd + vhd))) * dt;
        attn += Bytes(CheckedMul(CheckedMul(b * heads, ss), 2 * dt + 4));
        mask = Bytes(CheckedMul(CheckedMul(b, ss), dt));  // float [b,1,s,s] shared by layers
        attn_formula = Formula("eager scores {} x {} heads x {}^2 x (2x{} + 4) B", b, heads,
                                   w.prompt, dt);
      }
      // MLP: act(gate), up and their product live together (3 x inter);
      // a fused gate_up keeps the 2 x inter projection alive (4); a GELU
      // MLP keeps fc1 output + activation (2).
      int64_t inter = CeilDiv(s.intermediate_size, tp);
      int64_t width = s.mlp_kind == MlpKind::kPlain ? 2 : (s.fused_gate_up ? 4 : 3);
      Bytes mlp = Bytes(CheckedMul(bs, width * inter)) * dt;
      std::string mlp_formula = Formula("{} x {} inter x {} tok x {} B", width, inter, bs, dt);
      if (moe) {
        // Experts run one after another on their routed tokens (worst case:
        // every token to one expert), plus the fp32 router logits and the
        // output accumulator.
        const int64_t mi = CeilDiv(s.moe_intermediate_size, tp);
        const int64_t shared = CeilDiv(s.shared_expert_intermediate_size, tp);
        const int64_t ew = s.fused_gate_up ? 4 : 3;
        Bytes moe_mlp = Bytes(CheckedMul(bs, ew * mi + 3 * shared + h)) * dt +
                        Bytes(CheckedMul(bs, s.num_experts)) * 4;
        if (moe_mlp > mlp || s.intermediate_size == 0) {
          mlp = moe_mlp;
          mlp_formula = Formula("expert {} x {} + router fp32 x {} experts, {} tok", ew, mi,
                                    s.num_experts, bs);
        }
        inter = std::max(inter, mi);
      }
      if (bnb8) {
        // MatMul8bitLt: int32 accumulator [t, out] + int8 copy of the input.
        mlp += Bytes(CheckedMul(bs, 4 * out_max + std::max(inter, h)));
        if (FormulasOn()) mlp_formula += " + int8 matmul int32 accumulator";
      }
      const bool attn_peak = attn >= mlp;
      Bytes layer_peak = attn_peak ? attn : mlp;
      // bitsandbytes 4-bit (0.41-0.49) dequantizes the weight for a
      // prefill matmul: the stored-dtype copy and the compute-dtype copy of
      // the largest quantized linear.
      const Bytes dequant = bnb4 && has_layers ? Bytes(CheckedMul(n_max, 2 + dt)) : Bytes(0);
      // GPTQ exllama kernels keep a temp_dq buffer of max(in x out) fp16.
      const Bytes gptq_buf =
          w.quant.method == QuantMethod::kGptq ? Bytes(CheckedMul(n_max, 2)) : Bytes(0);
      const Bytes prefill_act = has_layers ? hidden + mask + layer_peak + dequant : Bytes(0);
      // Logits. >= 4.46: the model computes the last position only
      // (logits_to_keep=1) in the compute dtype and generate copies it to
      // fp32. 4.45: the model also upcasts (+4 B). <= 4.44: every prompt
      // position, upcast to fp32 in the model (b x s x V x (e + 4)).
      Bytes logits;
      std::string logits_formula;
      if (has_head) {
        if (w.hf_version <= 444) {
          logits = Bytes(CheckedMul(bs, vocab)) * (dt + 4);
          logits_formula = Formula("{} tok x {} vocab x ({} + 4) B, every prompt position", bs, vocab, dt);
        } else {
          const int64_t per = w.hf_version == 445 ? dt + 8 : dt + 4;
          logits = Bytes(CheckedMul(b, vocab)) * per;
          logits_formula = Formula("{} seq x {} vocab x {} B, last position", b, vocab, per);
        }
      }
      // Decode steps compute one position per sequence.
      const Bytes decode_logits = has_head ? Bytes(CheckedMul(b, vocab)) * (dt + 4) : Bytes(0);

      // --- Last decode step, one token per sequence.
      Bytes decode_act;
      Bytes cat_copy;
      if (has_layers && has_decode) {
        decode_act = Bytes(CheckedMul(b, 2 * h + width * inter + 3 * heads * hd)) * dt;
        int64_t max_t = 0;
        for (int64_t i = range.first; i < range.last; ++i) max_t = std::max(max_t, cached(i, decode_tokens));
        if (w.attn == AttnImpl::kEager) {
          decode_act += Bytes(CheckedMul(CheckedMul(b, heads), max_t)) * (2 * dt + 4 + 2 * hd * dt);
        }
        // DynamicCache.update: torch.cat builds the grown K of one layer
        // before the old one is freed.
        cat_copy = Bytes(CheckedMul(CheckedMul(b, max_t), std::max(kv_k, kv_v))) * kvb;
        // Before 4.42 generate kept the previous step's legacy cache tuple
        // alive while the model built the next one: a second full KV.
        if (w.hf_version < 442) cat_copy = k_full + v_full;
      }
      const Bytes cublas = Bytes(IsSm90OrNewer(d.gpu) ? kCublasWorkspaceSm90 : kCublasWorkspace);
      // Loading: bnb quantizes each weight from a 16-bit copy on the GPU.
      const Bytes load_transient = (bnb4 || bnb8) ? Bytes(CheckedMul(n_max, 2)) : Bytes(0);

      const Bytes fixed = weight_bytes + cublas + gptq_buf;
      const Bytes load_total = weight_bytes + load_transient;
      const Bytes prefill_total = fixed + k_prefill + v_prefill + prefill_act + logits;
      const Bytes decode_total = fixed + k_full + v_full + decode_act + cat_copy + decode_logits;
      std::string phase = "prefill";
      if (has_decode && decode_total > prefill_total) phase = "decode";
      if (load_total > std::max(prefill_total, decode_total)) phase = "load";
      d.peak_phase = phase;

      std::vector<Component> comps;
      comps.reserve(6);
      comps.push_back(std::move(weights));
      const bool at_decode = phase == "decode";
      const Bytes kk = at_decode ? k_full : k_prefill;
      const Bytes vv = at_decode ? v_full : v_prefill;
      const int64_t tokens = at_decode ? decode_tokens : w.prompt;
      std::vector<Component> kv_children;
      kv_children.reserve(2);
      int64_t n_sliding = 0;
      for (int64_t i = range.first; i < range.last; ++i) n_sliding += cached(i, tokens) != tokens ? 1 : 0;
      const auto kv_formula_for = [&](int64_t width) {
        if (n_sliding == 0) {
          return Formula("{} seq x {} tok x {} layers x {} x {} B", b, tokens, range.size(), width, kvb);
        }
        return Formula("{} seq x ({} layers x {} tok + {} sliding x {} tok) x {} x {} B", b,
                           range.size() - n_sliding, tokens, n_sliding, s.sliding_window - 1, width, kvb);
      };
      if (phase != "load" && (kk.value() > 0 || vv.value() > 0)) {
        kv_children.push_back(Leaf(mla ? "K (per head)" : "K", kk, kv_formula_for(kv_k)));
        kv_children.push_back(Leaf(mla ? "V (per head)" : "V", vv, kv_formula_for(kv_v)));
      }
      comps.push_back(Parent("kv_cache", std::move(kv_children)));

      std::vector<Component> act;
      act.reserve(6);
      if (phase == "load") {
        act.push_back(Leaf("load transient", load_transient, "16-bit copy of the largest weight"));
      } else if (at_decode) {
        act.push_back(Leaf("decode temporaries", decode_act, "one token per sequence"));
        act.push_back(Leaf("cache growth copy", cat_copy,
                           w.hf_version < 442 ? "previous step's legacy cache tuple (< 4.42)"
                                              : "torch.cat of one layer's K"));
      } else if (has_layers) {
        act.push_back(Leaf("hidden states", hidden, Formula("2 x {} tok x {} x {} B", bs, h, dt)));
        if (mask.value() > 0) act.push_back(Leaf("attention mask", mask, "float [b,1,s,s]"));
        act.push_back(Leaf(attn_peak ? "attention" : "mlp", layer_peak,
                           attn_peak ? attn_formula : mlp_formula));
        if (dequant.value() > 0) {
          act.push_back(Leaf("4-bit dequant", dequant,
                             Formula("largest linear {} x (2 + {}) B", n_max, dt)));
        }
      }
      if (gptq_buf.value() > 0) act.push_back(Leaf("exllama temp_dq", gptq_buf, "2 x largest in x out"));
      if (phase != "load") act.push_back(Leaf("cublas workspace", cublas));
      comps.push_back(Parent("activations", std::move(act)));
      const Bytes shown_logits = phase == "load" ? Bytes(0) : at_decode ? decode_logits : logits;
      comps.push_back(Leaf("logits", shown_logits,
                           !has_head ? std::string()
                           : at_decode ? Formula("{} seq x {} vocab x ({} + 4) B, one position", b, vocab, dt)
                                       : logits_formula));
      const Bytes allocated = Total(comps);

      // --- Caching-allocator slack. Every weight is its own allocation,
      // rounded up to a 2 MiB segment when over 10 MiB. Freed prefill
      // temporaries stay cached. DynamicCache outgrows its segments while it
      // grows by torch.cat: each 2 MiB size a layer's K or V passes leaves a
      // segment no larger tensor can reuse (freed only when memory runs out).
      Bytes rounding;
      int64_t moe_held = 0;  // MoE layers in the range (the rest are dense)
      for (int64_t i = range.first; i < range.last; ++i) moe_held += s.layers[i].moe ? 1 : 0;
      for (size_t gi = 0; gi < model.inventory.groups.size(); ++gi) {
        const TensorGroup& g = model.inventory.groups[gi];
        int64_t copies = 0;
        if (g.layers > 0) {
          const int64_t held = g.moe_layer ? moe_held : range.size() - moe_held;
          copies = g.count / g.layers * held;
        } else if (g.role == Role::kLmHead || g.name == "norm.weight" || g.name == "norm.bias") {
          copies = last ? g.count : 0;
        } else {
          copies = first ? g.count : 0;
        }
        if (copies == 0) continue;
        // Each stored part (packed values, scales, zeros) is its own tensor.
        for (const StoragePart& part : storage[gi]) {
          const int64_t x = CeilDiv(part.bytes.value(), g.linear ? tp : 1);
          rounding += Bytes(CheckedMul(SegmentBytes(x) - x, copies));
        }
      }
      Bytes growth;
      if (has_decode) {
        for (int64_t i = range.first; i < range.last; ++i) {
          for (int64_t per : {kv_k, kv_v}) {
            if (per == 0) continue;
            const int64_t per_tok = CheckedMul(CheckedMul(b, per), kvb);
            const int64_t lo = SegmentBytes(CheckedMul(per_tok, cached(i, w.prompt)));
            const int64_t hi = SegmentBytes(CheckedMul(per_tok, cached(i, decode_tokens)));
            const int64_t from = std::max(lo, kLargeBuffer);
            if (hi <= from) continue;
            // Segments of from, from + 2 MiB, ..., hi - 2 MiB are left behind.
            const int64_t n = (hi - from) / kRoundLarge;
            growth += Bytes(CheckedAdd(CheckedMul(n, from), CheckedMul(kRoundLarge, CheckedMul(n, n - 1) / 2)));
          }
        }
      }
      // Freed segments are partly reused: large cached blocks (the freed
      // prefill temporaries) are split for the growing tensors and coalesce
      // again when freed. Until measured on a GPU, the slack is bounded by
      // the cache growth during decode.
      growth = std::min(growth, (k_full + v_full) - (k_prefill + v_prefill));
      const Bytes context = MiB(kTorchCudaContextMiB);
      std::string growth_note;
      if (FormulasOn()) growth_note = "DynamicCache torch.cat growth, at most the decode-time KV growth";
      if (d.gpu && growth.value() > 0) {
        // The allocator frees cached blocks and retries before it reports an
        // OOM, so outgrown segments never push a job that fits over the top.
        const Bytes room = d.gpu->capacity - context - allocated - rounding;
        if (growth > room) {
          growth = std::max(Bytes(0), room);
          if (FormulasOn()) growth_note += " (capped: cached blocks are released before an OOM)";
        }
      }
      // Freed prefill temporaries stay reserved when the peak is later.
      const Bytes freed = phase == "prefill" ? Bytes(0)
                                             : std::max(Bytes(0), prefill_total - allocated);
      std::vector<Component> slack;
      slack.reserve(3);
      slack.push_back(Leaf("segment rounding", rounding, "tensors over 10 MiB rounded to 2 MiB segments"));
      if (freed.value() > 0) slack.push_back(Leaf("cached prefill temporaries", freed));
      if (growth.value() > 0) slack.push_back(Leaf("outgrown cache segments", growth, growth_note));
      comps.push_back(Parent("allocator_reserve", std::move(slack)));
      comps.push_back(Leaf("cuda_context", context, "CUDA context + kernel images (lazy loading)"));

      d.allocated_peak = allocated;
      d.reserved_peak = allocated + rounding + freed + growth;
      d.total = *d.reserved_peak + context;
      d.components = std::move(comps);
      e.devices.push_back(std::move(d));
    }
  }

  // Built in place (an initializer list would copy every entry).
  e.workload.reserve(13);
  e.workload.emplace_back("runtime", std::string("hf"));
  e.workload.emplace_back("dtype", std::string(Name(w.dtype)));
  e.workload.emplace_back("quant", w.quant.Name());
  e.workload.emplace_back("batch", w.batch);
  e.workload.emplace_back("prompt", w.prompt);
  e.workload.emplace_back("new", w.new_tokens);
  e.workload.emplace_back("ctx", w.ctx);
  e.workload.emplace_back("kv_dtype", std::string(Name(w.kv_dtype)));
  e.workload.emplace_back("attn", std::string(AttnName(w.attn)));
  e.workload.emplace_back("tp", w.tp);
  e.workload.emplace_back("pp", w.pp);
  e.workload.emplace_back("transformers",
                          std::to_string(w.hf_version / 100) + "." + std::to_string(w.hf_version % 100));
  if (w.quant.method == QuantMethod::kGptq || w.quant.method == QuantMethod::kAwq) {
    e.workload.push_back({"group_size", w.quant.group_size});
  }
  if (!FormulasOn()) return;  // numbers-only estimates carry no notes
  if (mla) {
    e.notes.push_back("transformers caches DeepSeek MLA as per-head K and V (not the latent), so "
                      "its KV cache is far larger than in vLLM or llama.cpp");
  }
  if (bnb4) {
    e.notes.push_back("bitsandbytes 4-bit: prefill dequantizes the largest linear (bitsandbytes "
                      "0.41-0.49 behaviour)");
  }
  if (w.hf_version >= 456) {
    e.notes.push_back("modelled stack: transformers >= 4.56 generate() with DynamicCache, "
                      "last-position logits; PyTorch caching allocator without expandable_segments");
  } else {
    e.notes.push_back(fmt::format(
        "modelled stack: transformers {}.{} generate(){}{}{}", w.hf_version / 100, w.hf_version % 100,
        w.hf_version < 442 ? "; legacy cache tuples (2 x KV while decoding)" : "",
        w.hf_version <= 444 ? "; logits for every prompt position, upcast to fp32" : "",
        "; sliding-window layers cache every token"));
  }
  e.notes.push_back(fmt::format(
      "cuda_context is {} MiB per process (CUDA >= 11.7 lazy loading); older stacks take up to 1.3 GiB",
      kTorchCudaContextMiB));
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
    // GGUF file types are what llama.cpp loads, and only llama.cpp.
    if (w->quant.method == QuantMethod::kGguf) {
      return InvalidArgument(
          fmt::format("--quant {}: GGUF file types need --runtime llamacpp", w->quant.Name()));
    }
    if (notes && s.ctx && !s.prompt && !s.new_tokens) {
      notes->push_back("--ctx without --prompt/--new: the whole context is taken as one prefill "
                       "(the worst case for prefill temporaries)");
    } else if (notes && !s.ctx && !s.prompt && !s.new_tokens) {
      notes->push_back(fmt::format("context defaults to {} tokens per sequence, prefilled at once",
                                   w->ctx));
    }
    NoteContextOverMax(model, *w, notes);
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

}  // namespace vramfit::runtimes
