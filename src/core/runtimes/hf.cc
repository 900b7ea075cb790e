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

#include "runtimes.h"

namespace vramfit::runtimes {
namespace {

// CUDA context + kernel images a PyTorch process pays per device (lazy
// module loading, CUDA >= 11.7): 274-426 MiB measured before any kernel
// runs, plus cuBLAS/cuDNN modules loaded on first use. docs/estimation.md.
constexpr int64_t kTorchCudaContextMiB = 500;
// cuBLAS workspace PyTorch allocates through its caching allocator
// (CUBLAS_WORKSPACE_CONFIG default ":4096:8" = 8 x 4 MiB).
constexpr int64_t kCublasWorkspaceMiB = 32;
// CUDACachingAllocator: allocations above 10 MiB get their own segment
// rounded to 2 MiB (kRoundLarge); 1-10 MiB share 20 MiB segments; up to
// 1 MiB come from 2 MiB small-pool segments. Sizes round to 512 B.
constexpr int64_t kRoundLarge = 2 * kMiB;
constexpr int64_t kLargeBuffer = 20 * kMiB;
constexpr int64_t kSmallSize = kMiB;
constexpr int64_t kMinBlock = 512;

std::string Gib(Bytes b) { return fmt::format("{:.2f} GiB", static_cast<double>(b.value()) / kGiB); }

// Segment bytes the caching allocator reserves for one allocation of x bytes
// when nothing can be reused.
int64_t SegmentBytes(int64_t x) {
  const int64_t r = RoundUp(std::max<int64_t>(x, 1), kMinBlock);
  if (r <= kSmallSize) return r;  // packed into shared 2 MiB segments
  if (r <= 10 * kMiB) return r;   // packed into shared 20 MiB segments
  return RoundUp(r, kRoundLarge);
}

struct Dims {
  int64_t b, h, heads, kv_heads, head_dim, v_head_dim, inter, vocab, dt;
};

}  // namespace

void EstimateHf(const Model& model, const InferenceWorkload& w, const DeviceSet& devices,
                Estimate& e) {
  const ModelSpec& s = model.spec;
  const int64_t tp = w.tp;
  const int64_t stages = w.pp;
  const int64_t dt = Info(w.dtype).block_bytes;
  const DType kv_dtype = w.kv_dtype;
  const int64_t kvb = Info(kv_dtype).block_bytes;
  // transformers' DeepSeek-V2/V3 attention caches per-head K and V, not
  // the latent (modeling_deepseek_v3.py: key_states/value_states to update).
  const KvLayout layout = KvLayout::kExpanded;
  const KvElements kv = KvElementsPerToken(s, layout);
  const bool mla = s.attn_kind == AttnKind::kMla;
  // KV heads per tensor-parallel rank; replicated when tp exceeds them.
  const int64_t kv_split = mla ? tp : std::min(tp, s.num_key_value_heads);
  const int64_t kv_k = CeilDiv(kv.k, kv_split);
  const int64_t kv_v = CeilDiv(kv.v, kv_split);

  e.kv_bytes_per_token = KvBytesPerToken(s, kv_dtype, layout);
  e.weight_bytes = Bytes(0);
  for (const TensorGroup& g : model.inventory.groups) {
    e.weight_bytes += TensorBytes(g, w.quant, w.dtype) * g.count;
  }

  const int64_t b = w.batch;
  const int64_t heads = (mla ? s.num_attention_heads : s.num_attention_heads) / tp;
  const int64_t kvh = mla ? heads : std::max<int64_t>(1, s.num_key_value_heads / tp);
  const int64_t hd = s.head_dim;
  const int64_t vhd = s.v_head_dim;
  const int64_t h = s.hidden_size;
  const bool moe = s.num_experts > 0;
  const int64_t inter = CeilDiv(std::max(s.intermediate_size, moe ? s.moe_intermediate_size : 0), tp);
  const int64_t vocab = CeilDiv(s.vocab_size, tp);

  for (int64_t stage = 0; stage < stages; ++stage) {
    for (int64_t rank = 0; rank < tp; ++rank) {
      const LayerRange range = StageLayers(s.num_hidden_layers, stages, stage);
      const bool first = stage == 0;
      const bool last = stage == stages - 1;
      // A tied head runs where the embedding lives (accelerate keeps tied
      // parameters on one device); otherwise on the last stage.
      const bool has_head = s.tie_word_embeddings ? first : last;
      DeviceEstimate d;
      d.name = fmt::format("gpu{}", stage * tp + rank);
      const size_t idx = static_cast<size_t>(stage * tp + rank);
      if (idx < devices.gpus.size()) d.gpu = devices.gpus[idx];

      Component weights = WeightsComponent(model, w.quant, w.dtype, range, first, last, tp);

      // --- KV cache: per layer, sliding layers keep min(ctx, window) tokens.
      auto kv_bytes = [&](int64_t tokens_per_seq) {
        Bytes k, v;
        for (int64_t i = range.first; i < range.last; ++i) {
          const int64_t t = CachedTokens(s, i, tokens_per_seq, /*window_aware=*/true);
          k += Bytes(CheckedMul(CheckedMul(b, t), kv_k) * kvb);
          v += Bytes(CheckedMul(CheckedMul(b, t), kv_v) * kvb);
        }
        return std::pair<Bytes, Bytes>{k, v};
      };
      const auto [k_prefill, v_prefill] = kv_bytes(w.prompt);
      const auto [k_full, v_full] = kv_bytes(w.ctx);

      // --- Prefill temporaries of one layer (no grad: freed as soon as
      // unreferenced). Residual stream + normed input live throughout.
      const int64_t bs = CheckedMul(b, w.prompt);
      const Bytes hidden = Bytes(CheckedMul(bs, h) * dt * 2);
      // Attention: q, k, v projections after RoPE, and the output.
      Bytes attn = Bytes(CheckedMul(bs, heads * hd + kvh * hd + kvh * vhd + heads * vhd) * dt);
      std::string attn_formula = fmt::format("q,k,v,out {}x{} tok", b, w.prompt);
      if (w.attn == AttnImpl::kEager) {
        // repeat_kv expands K and V to all heads; scores [b, heads, s, s] in
        // the compute dtype, softmax in fp32, cast back; the 4-D mask.
        const int64_t ss = CheckedMul(w.prompt, w.prompt);
        attn += Bytes(CheckedMul(bs, heads * (hd + vhd)) * dt);
        attn += Bytes(CheckedMul(CheckedMul(b * heads, ss), 2 * dt + 4));
        attn += Bytes(CheckedMul(CheckedMul(b, ss), dt));
        attn_formula = fmt::format("eager scores {} heads x {}^2 x (2x{} B + fp32)", heads,
                                   w.prompt, dt);
      }
      // MLP: act(gate), up and their product live at once (3 x inter); fused
      // gate_up adds the 2 x inter projection; a plain MLP keeps fc1 + act.
      int64_t mlp_width = s.mlp_kind == MlpKind::kPlain ? 2 * inter : (s.fused_gate_up ? 4 : 3) * inter;
      Bytes mlp = Bytes(CheckedMul(bs, mlp_width) * dt);
      std::string mlp_formula = fmt::format("{} x {} inter x {} tok", mlp_width / std::max<int64_t>(inter, 1), inter, bs);
      if (moe) {
        // Experts run one at a time on their routed tokens (worst case all
        // tokens to one expert); plus the fp32 router logits and the output
        // accumulator.
        const int64_t shared = CeilDiv(s.shared_expert_intermediate_size, tp);
        mlp = Bytes(CheckedMul(bs, 3 * CeilDiv(s.moe_intermediate_size, tp) + 3 * shared + h) * dt) +
              Bytes(CheckedMul(bs, s.num_experts) * 4);
        mlp_formula = fmt::format("expert 3 x {} + router fp32 x {} experts, {} tok",
                                  s.moe_intermediate_size, s.num_experts, bs);
      }
      const Bytes layer_peak = std::max(attn, mlp);
      const Bytes prefill_act = range.size() > 0 ? hidden + layer_peak : Bytes(0);
      // Last-token logits (generate passes logits_to_keep=1): lm_head output
      // in the compute dtype, the fp32 copy generate takes, and the fp32
      // scores after the logits processors.
      const Bytes logits = has_head ? Bytes(CheckedMul(b, vocab) * (dt + 4 + 4)) : Bytes(0);

      // --- Last decode step: one new token per sequence.
      const Bytes decode_act =
          range.size() > 0 ? Bytes(CheckedMul(b, 2 * h + mlp_width + heads * hd * 2) * dt) : Bytes(0);
      // DynamicCache.update: torch.cat allocates the grown K (then V) of one
      // layer before the old one is freed.
      int64_t max_layer_tokens = 0;
      for (int64_t i = range.first; i < range.last; ++i) {
        max_layer_tokens = std::max(max_layer_tokens, CachedTokens(s, i, w.ctx, true));
      }
      const Bytes cat_copy = w.new_tokens > 0
          ? Bytes(CheckedMul(CheckedMul(b, max_layer_tokens), std::max(kv_k, kv_v)) * kvb)
          : Bytes(0);
      const Bytes cublas = MiB(kCublasWorkspaceMiB);

      const Bytes prefill_total = k_prefill + v_prefill + prefill_act + logits;
      const Bytes decode_total = k_full + v_full + decode_act + cat_copy + logits;
      const bool decode_peak = w.new_tokens > 0 && decode_total > prefill_total;
      d.peak_phase = decode_peak ? "decode" : "prefill";

      std::vector<Component> comps;
      comps.push_back(std::move(weights));
      const Bytes kk = decode_peak ? k_full : k_prefill;
      const Bytes vv = decode_peak ? v_full : v_prefill;
      const int64_t tokens = decode_peak ? w.ctx : w.prompt;
      std::vector<Component> kv_children;
      if (kk.value() > 0 || vv.value() > 0) {
        kv_children.push_back(Leaf(mla ? "K (per-head, expanded)" : "K", kk,
                                   fmt::format("{} seq x {} tok x {} layers x {} x {} B", b, tokens,
                                               range.size(), kv_k, kvb)));
        kv_children.push_back(Leaf("V", vv,
                                   fmt::format("{} seq x {} tok x {} layers x {} x {} B", b, tokens,
                                               range.size(), kv_v, kvb)));
      }
      comps.push_back(Parent("kv_cache", std::move(kv_children),
                             s.sliding_window > 0 ? fmt::format("sliding layers hold {} tok", s.sliding_window)
                                                  : std::string()));
      std::vector<Component> act;
      if (decode_peak) {
        act.push_back(Leaf("decode temporaries", decode_act, "one token per sequence"));
        act.push_back(Leaf("cache growth copy", cat_copy, "torch.cat of one layer's K"));
      } else if (range.size() > 0) {
        act.push_back(Leaf("hidden states", hidden, fmt::format("2 x {} tok x {} x {} B", bs, h, dt)));
        act.push_back(Leaf(attn >= mlp ? "attention" : "mlp", layer_peak,
                           attn >= mlp ? attn_formula : mlp_formula));
      }
      act.push_back(Leaf("cublas workspace", cublas));
      comps.push_back(Parent("activations", std::move(act)));
      comps.push_back(Leaf("logits", logits,
                           has_head ? fmt::format("{} seq x {} vocab x ({} + 4 + 4) B, last token", b, vocab, dt)
                                    : std::string()));

      Bytes allocated = Total(comps);

      // --- Caching-allocator slack: segment rounding of every weight tensor
      // (each is its own allocation) and of the KV tensors, plus segments
      // DynamicCache outgrows while it grows by torch.cat (never reused by
      // the larger tensors that follow, released only when memory runs out).
      Bytes rounding;
      for (const TensorGroup& g : model.inventory.groups) {
        const int64_t x = TensorBytes(g, w.quant, w.dtype).value();
        const int64_t per = SegmentBytes(tp > 1 && g.linear ? CeilDiv(x, tp) : x) -
                            (tp > 1 && g.linear ? CeilDiv(x, tp) : x);
        int64_t copies = g.layers > 0 ? g.count / g.layers * range.size() : (first || last ? g.count : 0);
        rounding += Bytes(CheckedMul(per, copies));
      }
      Bytes growth;
      if (w.new_tokens > 0) {
        // Per K or V tensor of a layer: segments of every 2 MiB size passed
        // between the prompt and the full context are left behind.
        for (int64_t i = range.first; i < range.last; ++i) {
          for (int64_t e_per : {kv_k, kv_v}) {
            if (e_per == 0) continue;
            const int64_t t0 = CachedTokens(s, i, w.prompt, true);
            const int64_t t1 = CachedTokens(s, i, w.ctx, true);
            const int64_t per_tok = CheckedMul(b, e_per) * kvb;
            const int64_t lo = SegmentBytes(CheckedMul(per_tok, t0));
            const int64_t hi = SegmentBytes(CheckedMul(per_tok, t1));
            if (hi <= kLargeBuffer) continue;  // small tensors share segments
            // Sum of the 2 MiB-spaced sizes from lo up to (hi - 2 MiB).
            const int64_t first_sz = std::max(lo, kLargeBuffer);
            if (hi <= first_sz) continue;
            const int64_t n = (hi - first_sz) / kRoundLarge;
            const int64_t sum = CheckedMul(n, first_sz) + CheckedMul(kRoundLarge, n * (n - 1) / 2);
            growth += Bytes(sum);
          }
        }
      }
      Bytes reserve = rounding + growth;
      const Bytes context = MiB(kTorchCudaContextMiB);
      std::string growth_note;
      if (d.gpu && growth.value() > 0) {
        // The allocator frees cached blocks and retries before it reports an
        // OOM, so outgrown segments never push the job over the top.
        const Bytes usable = d.gpu->capacity - context - allocated - rounding;
        if (growth > usable) {
          growth = std::max(Bytes(0), usable);
          growth_note = " (capped: cached blocks are released before an OOM)";
        }
        reserve = rounding + growth;
      }
      std::vector<Component> slack;
      slack.push_back(Leaf("segment rounding", rounding, "weights and buffers rounded to 2 MiB segments"));
      if (w.new_tokens > 0) {
        slack.push_back(Leaf("outgrown cache segments", growth,
                             "DynamicCache torch.cat growth" + growth_note));
      }
      comps.push_back(Parent("allocator_reserve", std::move(slack)));
      comps.push_back(Leaf("cuda_context", context, "CUDA context + kernel images, lazy loading"));

      d.allocated_peak = allocated;
      d.reserved_peak = allocated + reserve;
      d.total = *d.reserved_peak + context;
      d.components = std::move(comps);
      e.devices.push_back(std::move(d));
    }
  }

  e.workload = {
      {"runtime", std::string("hf")},
      {"dtype", std::string(Name(w.dtype))},
      {"quant", w.quant.Name()},
      {"batch", w.batch},
      {"prompt", w.prompt},
      {"new", w.new_tokens},
      {"ctx", w.ctx},
      {"kv_dtype", std::string(Name(w.kv_dtype))},
      {"attn", std::string(AttnName(w.attn))},
      {"tp", w.tp},
      {"pp", w.pp},
  };
  if (w.quant.method == QuantMethod::kGptq || w.quant.method == QuantMethod::kAwq) {
    e.workload.push_back({"group_size", w.quant.group_size});
  }
  if (mla) {
    e.notes.push_back("transformers caches DeepSeek MLA as per-head K and V (not the latent), "
                      "so its KV cache is much larger than in vLLM or llama.cpp");
  }
  if (w.new_tokens > 0) {
    e.notes.push_back(fmt::format(
        "KV cache is transformers' DynamicCache (grows by torch.cat each step); peak at the {}",
        e.devices.empty() ? "prefill" : e.devices[0].peak_phase));
  }
  e.notes.push_back(fmt::format(
      "cuda_context is {} MiB per process (CUDA >= 11.7 lazy loading); older stacks take up to 1.3 GiB",
      kTorchCudaContextMiB));
  (void)Gib;
}

}  // namespace vramfit::runtimes
