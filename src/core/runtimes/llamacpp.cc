// The `llamacpp` runtime: llama.cpp's buffers per device, as its load log
// prints them ("CUDA0 model buffer size", "KV buffer size", "compute buffer
// size", "output buffer size").
//
// Every term, its units and its llama.cpp source (file / function) are in
// docs/estimation.md, section "llamacpp runtime". In short, per GPU:
//   total = weights (the blocks and output layer -ngl puts there)
//         + kv_cache (K and V of those layers, cells from n_ctx, SWA, MLA)
//         + compute_buffer (ggml_gallocr's peak of the reserved graph)
//         + cuda_context (CUDA context + cuBLAS, and ggml-cuda's pool)
// and on the host: token_embd and the CPU layers' weights, their KV, the
// graph inputs and the output (logits) buffer.
#include <algorithm>
#include <cctype>
#include <map>

#include <fmt/format.h>

#include "../formula.h"
#include "profile.h"
#include "runtimes.h"
#include "vramfit/gguf_mix.h"

namespace vramfit::runtimes {
namespace {

namespace lb = llamacpp_build;

// CUDA primary context, kernel modules loaded on first use and the cuBLAS
// handle/workspace of a llama.cpp process, per GPU. PR #20595 measures the
// primary context at 120-550 MB depending on the GPU; vramfit takes a middle
// value (an assumption, not a measurement; docs/estimation.md).
constexpr int64_t kCudaContextMiB = 384;
// ggml-backend op offload: ops with a batch of at least this many tokens
// run on the GPU even when their weights are in host memory
// (ggml-cuda.cu ggml_backend_cuda_device_offload_op, min_batch_size = 32).
constexpr int64_t kOffloadMinBatch = 32;
// Graph inputs besides the embeddings and masks: token ids, positions and
// output ids, one int32 each per token (llm_graph_input_*).
constexpr int64_t kSmallInputsPerToken = 3 * 4;
// f32 activations.
constexpr int64_t kF = 4;

// llama.cpp's own names of cache types ("f16", "q8_0").
std::string CacheTypeName(DType t) {
  switch (t) {
    case DType::kF32: return "f32";
    case DType::kF16: return "f16";
    case DType::kBF16: return "bf16";
    default: break;
  }
  std::string s = Name(t);
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

int64_t Pad(int64_t x, int64_t n) { return RoundUp(x, n); }

// A weight tensor with the slot it is loaded to: 0..n_layer-1 a block,
// n_layer the output layer, -1 the input layer (always host), -2 not loaded
// (multi-token-prediction blocks past n_layer, TENSOR_SKIP).
struct Placed {
  std::string name;
  Role role;
  int64_t slot;
  DType type;
  Bytes bytes;
  int64_t ne0 = 0, rows = 1, experts = 1;
};

// The resolved llama.cpp settings.
struct Resolved {
  int64_t build = lb::kDefault;
  int64_t n_ctx_req = 0;   // -c
  int64_t n_seq = 1;       // -np
  int64_t n_ctx = 0;       // after padding, all sequences
  int64_t n_ctx_seq = 0;   // per sequence
  int64_t n_stream = 1;    // KV streams (one per sequence, non-unified, 2026 builds)
  int64_t cells = 0;       // KV cells per stream, full-attention layers
  int64_t cells_swa = 0;   // KV cells per stream, sliding-window layers
  bool swa = false;        // sliding layers get the small cache
  int64_t n_batch = 0, n_ubatch = 0;
  int64_t tokens = 0;      // graph reservation: min(n_ctx, n_ubatch)
  bool fa = false;
  DType type_k = DType::kF16, type_v = DType::kF16;
  int64_t ngl = 0;         // resolved -ngl (n_layer + 1 = everything)
  bool ngl_all = true;
};

// Attention geometry as llama.cpp runs it.
struct AttnShape {
  int64_t n_head = 0, n_head_kv = 0, d_k = 0, d_v = 0;
  int64_t k_width = 0, v_width = 0;  // KV cache row elements per layer
  bool mla_latent = false;
};

AttnShape Shape(const ModelSpec& s, bool mla_latent, bool vless) {
  AttnShape a;
  a.n_head = s.num_attention_heads;
  if (s.attn_kind == AttnKind::kMla) {
    if (mla_latent) {
      // One latent "head": K = kv_lora_rank + rope, V = kv_lora_rank
      // (llama-model.cpp deepseek2: n_embd_head_k_mla / n_embd_head_v_mla).
      a.mla_latent = true;
      a.n_head_kv = 1;
      a.d_k = s.kv_lora_rank + s.qk_rope_head_dim;
      a.d_v = s.kv_lora_rank;
      a.k_width = a.d_k;
      a.v_width = vless ? 0 : a.d_v;
    } else {
      a.n_head_kv = s.num_attention_heads;
      a.d_k = s.qk_nope_head_dim + s.qk_rope_head_dim;
      a.d_v = s.v_head_dim;
      a.k_width = a.n_head_kv * a.d_k;
      a.v_width = a.n_head_kv * a.d_v;
    }
    return a;
  }
  a.n_head_kv = s.num_key_value_heads;
  a.d_k = s.head_dim;
  a.d_v = s.v_head_dim;
  a.k_width = a.n_head_kv * a.d_k;
  a.v_width = a.n_head_kv * a.d_v;
  return a;
}

// A term of the compute buffer: what is live at one point of the graph.
struct Term {
  std::string name;
  Bytes bytes;
  std::string formula;
};

void Keep(Term& best, Term t) {
  if (t.bytes > best.bytes) best = std::move(t);
}

std::string Types(const std::map<std::string, int64_t>& count) {
  std::string s;
  for (const auto& [type, n] : count) s += (s.empty() ? "" : "+") + type;
  return s;
}

}  // namespace

Status EstimateLlamaCpp(const Model& model, const InferenceWorkload& w, const DeviceSet& devices,
                        Estimate& e) {
  const ModelSpec& s = model.spec;
  const LlamaCppKnobs& k = w.llamacpp;
  const int64_t n_layer = s.num_hidden_layers;
  Resolved r;
  r.build = k.build.value_or(lb::kDefault);

  // --- Knobs (common/arg.cpp names and defaults).
  const auto range = [](const char* flag, int64_t v, int64_t lo, int64_t hi) -> Status {
    if (v < lo || v > hi) {
      return InvalidArgument(fmt::format("{}: {} is out of range ({}..{})", flag, v, lo, hi));
    }
    return {};
  };
  VRAMFIT_TRY(range("--ubatch", k.ubatch.value_or(512), 1, kMaxTokens));
  VRAMFIT_TRY(range("--batch-size", k.batch_size.value_or(2048), 1, kMaxTokens));
  VRAMFIT_TRY(range("--parallel", k.parallel.value_or(1), 1, kMaxParallel));
  if (k.gpu_layers) VRAMFIT_TRY(range("--gpu-layers", *k.gpu_layers, -1, 100000));
  r.n_seq = k.parallel.value_or(w.batch);
  r.n_ctx_req = w.ctx;

  // -fa: auto (on for CUDA) since PR #15434, off before.
  r.fa = k.flash_attn.value_or(r.build >= lb::kFaAuto);
  r.type_k = k.cache_type_k.value_or(DType::kF16);
  r.type_v = k.cache_type_v.value_or(DType::kF16);
  if (Info(r.type_v).block_elems > 1 && !r.fa) {
    // llama_init_from_model: "V cache quantization requires flash_attn".
    return InvalidArgument(fmt::format(
        "--cache-type-v {}: llama.cpp needs flash attention for a quantized V cache (--flash-attn on)",
        CacheTypeName(r.type_v)));
  }
  // -ngl: all layers by default since PR #15434; 0 before (llama-cli/server).
  const int64_t all = n_layer + 1;
  if (k.gpu_layers && *k.gpu_layers >= 0) {
    r.ngl = std::min(*k.gpu_layers, all);
    r.ngl_all = *k.gpu_layers >= all;
  } else if (k.gpu_layers || r.build >= lb::kFaAuto) {
    r.ngl = all;
  } else {
    r.ngl = 0;
    r.ngl_all = false;
  }

  // --- Context, cells (llama_context constructor, llama_kv_cache(_iswa)).
  const bool new_pad = r.build >= lb::kPad256;
  if (new_pad) {
    r.n_ctx = Pad(r.n_ctx_req, 256);
    if (r.n_seq > 1) {
      // Non-unified cache: one stream of n_ctx_seq cells per sequence.
      r.n_ctx_seq = Pad(r.n_ctx / r.n_seq, 256);
      r.n_ctx = CheckedMul(r.n_ctx_seq, r.n_seq);
      r.n_stream = r.n_seq;
    } else {
      r.n_ctx_seq = r.n_ctx;
    }
    r.cells = r.n_ctx_seq;
  } else {
    // get_padding(): 256 with flash attention, 32 without.
    r.n_ctx = Pad(r.n_ctx_req, r.fa ? 256 : 32);
    r.n_ctx_seq = r.n_ctx / r.n_seq;
    r.cells = r.n_ctx;
  }
  r.n_batch = std::min(r.n_ctx, k.batch_size.value_or(2048));
  r.n_ubatch = std::min(r.n_batch, k.ubatch.value_or(512));
  r.tokens = std::min(r.n_ctx, r.n_ubatch);
  // Sliding-window layers: llama.cpp runs them with their own cache where
  // the model mixes sliding and full layers (Gemma 2/3, Cohere2, gpt-oss);
  // a window on every layer (Mistral v0.1, Phi-3) is ignored (phi3:
  // "Phi SWA is currently disabled"; llama: no SWA).
  int64_t n_sliding = 0;
  for (const LayerSpec& l : s.layers) n_sliding += l.attention == LayerAttention::kSliding ? 1 : 0;
  const bool mixed_swa = s.sliding_window > 0 && n_sliding > 0 && n_sliding < n_layer;
  r.swa = mixed_swa && r.build >= lb::kSwaCache;
  r.cells_swa = r.cells;
  if (r.swa) {
    const int64_t pad = new_pad ? 256 : (r.fa ? 256 : 32);
    const int64_t seqs = r.n_stream > 1 ? 1 : r.n_seq;
    r.cells_swa = std::min(r.cells, Pad(CheckedAdd(CheckedMul(s.sliding_window, seqs), r.n_ubatch), pad));
  }
  const bool is_sliding_layer_kind = r.swa;
  const auto cells_of = [&](int64_t il) {
    return is_sliding_layer_kind && s.layers[static_cast<size_t>(il)].attention == LayerAttention::kSliding
               ? r.cells_swa
               : r.cells;
  };

  // --- Weights: the GGUF file's tensors.
  std::vector<Placed> tensors;
  std::string mix_name;
  bool mla_latent = s.attn_kind == AttnKind::kMla && r.build >= lb::kMla;
  const bool from_file = model.file_format == "gguf" && w.weights_as_stored && !model.file_tensors.empty();
  if (from_file) {
    bool has_kb = false;
    for (const FileTensor& t : model.file_tensors) {
      int64_t slot = t.layer;
      if (t.layer < 0) slot = t.name.rfind("output", 0) == 0 ? n_layer : -1;
      if (t.layer >= n_layer) slot = -2;
      int64_t ne0 = t.shape.empty() ? 1 : t.shape[0];
      int64_t rows = 1, experts = 1;
      if (t.shape.size() >= 2) rows = t.shape[1];
      if (t.shape.size() >= 3) experts = t.shape[2];
      tensors.push_back({t.name, t.role, slot, t.dtype, Bytes(t.bytes), ne0, rows, experts});
      has_kb = has_kb || t.name.find("attn_k_b") != std::string::npos;
    }
    // A GGUF converted before MLA support stores attn_kv_b: llama.cpp then
    // caches per-head K and V even in builds that know MLA.
    mla_latent = s.attn_kind == AttnKind::kMla && has_kb && r.build >= lb::kMla;
    mix_name = "as stored in the .gguf file";
  } else {
    GgufFtype ftype;
    DType pure = DType::kQ4_K;
    if (w.quant.method == QuantMethod::kGguf) {
      ftype = w.quant.gguf_ftype;
      pure = w.quant.gguf_type;
    } else if (w.quant.method == QuantMethod::kMxfp4) {
      ftype = GgufFtype::kMXFP4_MOE;  // gpt-oss: MXFP4 experts, Q8_0 elsewhere
    } else {
      // No GGUF type given: the unquantized file convert_hf_to_gguf.py
      // writes (--outtype f16 / bf16 / f32) at the compute dtype.
      ftype = w.dtype == DType::kF32 ? GgufFtype::kF32
              : w.dtype == DType::kBF16 ? GgufFtype::kBF16 : GgufFtype::kF16;
      e.notes.push_back(fmt::format(
          "no GGUF file type given: weights sized as the unquantized {} GGUF convert_hf_to_gguf.py "
          "writes; --quant Q4_K_M (or Q8_0, IQ4_XS...) sizes a quantized file",
          FtypeName(ftype)));
    }
    auto mix = GgufMix(model, ftype, pure, r.build);
    if (!mix.ok()) return mix.error();
    for (const GgufTensor& t : *mix) {
      int64_t slot = t.layer;
      if (t.layer < 0) slot = t.name.rfind("output", 0) == 0 ? n_layer : -1;
      tensors.push_back({t.name, t.role, slot, t.type, t.bytes, t.ne0, t.rows, t.experts});
    }
    mix_name = ftype == GgufFtype::kPure ? std::string(Name(pure)) + " (pure)" : FtypeName(ftype);
  }
  const AttnShape a = Shape(s, mla_latent, r.build >= lb::kVlessMla);
  if (a.k_width % Info(r.type_k).block_elems != 0 || a.v_width % Info(r.type_v).block_elems != 0) {
    const bool kbad = a.k_width % Info(r.type_k).block_elems != 0;
    return InvalidArgument(fmt::format(
        "--cache-type-{} {}: KV rows of {} elements do not divide into {}-element blocks",
        kbad ? "k" : "v", CacheTypeName(kbad ? r.type_k : r.type_v), kbad ? a.k_width : a.v_width,
        Info(kbad ? r.type_k : r.type_v).block_elems));
  }

  // File size and bits per weight, as llama_model_loader prints them.
  Bytes file_bytes;
  int64_t elements = 0;
  std::map<std::string, int64_t> type_count;
  bool has_output = false;
  Bytes token_embd_bytes;
  for (const Placed& t : tensors) {
    file_bytes += t.bytes;
    elements = CheckedAdd(elements, CheckedMul(CheckedMul(t.ne0, t.rows), t.experts));
    type_count[Name(t.type)] += 1;
    if (t.name == "output.weight") has_output = true;
    if (t.name == "token_embd.weight") token_embd_bytes = t.bytes;
  }
  e.weight_bytes = file_bytes;
  const double bpw = elements > 0 ? 8.0 * static_cast<double>(file_bytes.value()) /
                                        static_cast<double>(elements)
                                  : 0.0;
  std::string counts;
  for (const auto& [type, n] : type_count) counts += fmt::format("{}{} {}", counts.empty() ? "" : ", ", n, type);
  e.notes.push_back(fmt::format("GGUF {}: {:.2f} GiB, {:.2f} BPW (llama.cpp's \"model size\"); tensors: {}",
                                mix_name, static_cast<double>(file_bytes.value()) / kGiB, bpw, counts));

  // --- Placement (llama_model::load_tensors): slot il in 0..n_layer.
  const int64_t n_dev = std::max<int64_t>(1, static_cast<int64_t>(devices.size()));
  std::vector<float> splits(static_cast<size_t>(n_dev), 1.0f);
  for (int64_t d = 0; d < static_cast<int64_t>(devices.size()); ++d) {
    const GpuSpec& g = devices.gpus[static_cast<size_t>(d)];
    // Default tensor_split: each device's free memory at load; vramfit
    // takes its total (cudaMemGetInfo total when known).
    const Bytes mem = g.cuda_total.value() > 0 ? g.cuda_total : g.capacity;
    splits[static_cast<size_t>(d)] = static_cast<float>(mem.value());
  }
  float split_sum = 0.0f;
  for (float& x : splits) {
    split_sum += x;
    x = split_sum;
  }
  for (float& x : splits) x /= split_sum;
  const bool output_first = r.build >= lb::kOutputFirst;
  const int64_t i_gpu_start = std::max<int64_t>(output_first ? n_layer + 1 - r.ngl : n_layer - r.ngl, 0);
  const int64_t act = std::min(r.ngl, n_layer + 1);
  std::vector<int64_t> dev_of(static_cast<size_t>(n_layer + 1), -1);  // -1: CPU
  int64_t offloaded = 0;
  for (int64_t il = 0; il <= n_layer; ++il) {
    if (il < i_gpu_start || il - i_gpu_start >= act) continue;
    const float f = static_cast<float>(il - i_gpu_start) / static_cast<float>(act);
    const int64_t d = std::upper_bound(splits.begin(), splits.end(), f) - splits.begin();
    dev_of[static_cast<size_t>(il)] = std::min(d, n_dev - 1);
    ++offloaded;
  }
  const int64_t out_dev = dev_of[static_cast<size_t>(n_layer)];
  const auto dev_of_slot = [&](int64_t slot) {
    return slot < 0 || slot > n_layer ? -1 : dev_of[static_cast<size_t>(slot)];
  };

  // --- Per-device weights, by role. token_embd stays on the host (the
  // input layer is never offloaded); a tied output head is a duplicate of
  // token_embd created on the output layer's device (TENSOR_DUPLICATED).
  struct RoleAcc {
    Bytes bytes;
    std::map<std::string, int64_t> types;
  };
  std::vector<std::vector<RoleAcc>> acc(static_cast<size_t>(n_dev + 1), std::vector<RoleAcc>(11));
  const auto add_w = [&](int64_t dev, Role role, Bytes b, const std::string& type) {
    RoleAcc& x = acc[static_cast<size_t>(dev + 1)][static_cast<size_t>(role)];
    x.bytes += b;
    if (FormulasOn()) x.types[type] += 1;
  };
  for (const Placed& t : tensors) {
    if (t.slot != -2) add_w(dev_of_slot(t.slot), t.role, t.bytes, Name(t.type));
  }
  if (!has_output && out_dev >= 0 && token_embd_bytes.value() > 0) {
    DType te = DType::kF16;
    for (const Placed& t : tensors) if (t.name == "token_embd.weight") te = t.type;
    add_w(out_dev, Role::kLmHead, token_embd_bytes, std::string(Name(te)) + " (tied: copy of token_embd)");
  }
  const auto weights_component = [&](int64_t dev) {
    std::vector<Component> children;
    for (size_t ro = 0; ro < 11; ++ro) {
      const RoleAcc& x = acc[static_cast<size_t>(dev + 1)][ro];
      if (x.bytes.value() == 0) continue;
      children.push_back(Leaf(RoleName(static_cast<Role>(ro)), x.bytes, Types(x.types)));
    }
    return Parent("weights", std::move(children), Formula("GGUF {}", mix_name));
  };

  // --- KV cache per layer, on its layer's device (offload_kqv).
  const int64_t k_row = StorageBytes(r.type_k, a.k_width).value();
  const int64_t v_row = StorageBytes(r.type_v, a.v_width).value();
  std::vector<Bytes> kv_k(static_cast<size_t>(n_dev + 1)), kv_v(static_cast<size_t>(n_dev + 1));
  std::vector<int64_t> kv_full(static_cast<size_t>(n_dev + 1)), kv_swa(static_cast<size_t>(n_dev + 1));
  for (int64_t il = 0; il < n_layer; ++il) {
    const size_t d = static_cast<size_t>(dev_of[static_cast<size_t>(il)] + 1);
    const int64_t cells = CheckedMul(cells_of(il), r.n_stream);
    kv_k[d] += Bytes(CheckedMul(k_row, cells));
    kv_v[d] += Bytes(CheckedMul(v_row, cells));
    (cells_of(il) == r.cells ? kv_full : kv_swa)[d] += 1;
  }
  e.kv_bytes_per_token = Bytes(CheckedMul(k_row + v_row, n_layer));
  const auto kv_component = [&](int64_t dev) {
    const size_t d = static_cast<size_t>(dev + 1);
    std::vector<Component> children;
    const auto formula = [&](int64_t width, DType t) {
      std::string layers = Formula("{} layers x {} cells", kv_full[d], r.cells * r.n_stream);
      if (kv_swa[d] > 0) {
        layers = kv_full[d] > 0 ? Formula("({} layers x {} + {} sliding x {} cells)", kv_full[d],
                                              r.cells * r.n_stream, kv_swa[d], r.cells_swa * r.n_stream)
                                : Formula("{} sliding layers x {} cells", kv_swa[d], r.cells_swa * r.n_stream);
      }
      return Formula("{} x {} x {}", layers, width, CacheTypeName(t));
    };
    if (kv_full[d] + kv_swa[d] > 0) {
      children.push_back(Leaf(a.mla_latent ? "K (latent c_kv + rope)" : "K", kv_k[d], formula(a.k_width, r.type_k)));
      if (a.v_width > 0) {
        children.push_back(Leaf(a.mla_latent ? "V (latent c_kv)" : "V", kv_v[d], formula(a.v_width, r.type_v)));
      }
    }
    return Parent("kv_cache", std::move(children));
  };

  // --- Compute buffers (llama_context::graph_reserve -> ggml_gallocr):
  // the peak of tensors live at once, for a ubatch of T tokens attending
  // over the whole cache. Terms per stage; each device keeps the largest.
  const int64_t T = r.tokens;
  const int64_t h = s.hidden_size;
  const int64_t vocab = s.vocab_size;
  const auto attn_term = [&](int64_t n_kv) -> Term {
    if (r.fa) {
      // No KQ matrix: f16 mask, Q/K/V/output, residual + normed input.
      const int64_t qkvo = a.n_head * a.d_k + a.n_head_kv * (a.d_k + a.d_v) + a.n_head * a.d_v;
      const Bytes b = Bytes(CheckedMul(CheckedMul(n_kv, T), 2)) +
                      Bytes(CheckedMul(CheckedMul(qkvo + 2 * h, T), kF));
      return {"attention (flash)", b,
              Formula("f16 mask {} x {} + (q,k,v,o {} + 2 x {}) x {} tok x 4 B", n_kv, T, qkvo, h, T)};
    }
    // KQ scores f32 (softmax in place) + f32 mask + projections.
    const int64_t proj = std::max(4 * h, a.n_head * a.d_k + a.n_head_kv * (a.d_k + a.d_v) + 2 * h);
    const Bytes b = Bytes(CheckedMul(CheckedMul(CheckedMul(a.n_head, n_kv), T), kF)) +
                    Bytes(CheckedMul(CheckedMul(n_kv, T), kF)) + Bytes(CheckedMul(CheckedMul(proj, T), kF));
    return {"attention (KQ scores)", b,
            Formula("KQ {} heads x {} x {} tok x 4 B + f32 mask + {} x {} tok x 4 B", a.n_head, n_kv, T,
                        proj, T)};
  };
  const auto ffn_term = [&](bool moe) -> Term {
    if (!moe) {
      const int64_t width = (s.mlp_kind == MlpKind::kGated ? 3 : 2) * s.intermediate_size + 2 * h;
      return {"ffn", Bytes(CheckedMul(CheckedMul(width, T), kF)),
              Formula("({} x {} + 2 x {}) x {} tok x 4 B", s.mlp_kind == MlpKind::kGated ? 3 : 2,
                          s.intermediate_size, h, T)};
    }
    // Routed experts: gate/up/act [n_ff_exp, n_used, T], down [n_embd, n_used, T].
    const int64_t used = s.num_experts_per_tok;
    const int64_t mi = s.moe_intermediate_size;
    const int64_t experts = std::max(3 * mi, mi + h) * used;
    const int64_t shared = 3 * s.shared_expert_intermediate_size + h;
    const int64_t width = std::max(experts, shared) + s.num_experts + 2 * h;
    return {"ffn (experts)", Bytes(CheckedMul(CheckedMul(width, T), kF)),
            Formula("(max(3 x {}, {} + {}) x {} used + router + 2 x {}) x {} tok x 4 B", mi, mi, h, used, h, T)};
  };
  const Term out_term{"output (logits)", Bytes(CheckedMul(CheckedMul(vocab + 2 * h, T), kF)),
                      Formula("({} vocab + 2 x {}) x {} tok x 4 B", vocab, h, T)};
  // Op offload (ggml_backend_sched, "1.off"): with a GPU present, matmuls
  // of >= 32 tokens whose weights are in host memory run on the first GPU,
  // which copies the weight into its compute buffer; the rest of those
  // layers follows them there (KV copied in as split inputs).
  const bool op_offload = T >= kOffloadMinBatch;
  std::vector<Term> compute(static_cast<size_t>(n_dev));
  for (int64_t d = 0; d < n_dev; ++d) compute[static_cast<size_t>(d)] = {"none", Bytes(0), ""};
  for (int64_t il = 0; il < n_layer; ++il) {
    int64_t d = dev_of[static_cast<size_t>(il)];
    Bytes kv_copy;
    if (d < 0) {
      if (!op_offload) continue;
      d = 0;
      kv_copy = Bytes(CheckedMul(k_row + v_row, CheckedMul(cells_of(il), r.n_stream)));
    }
    Term at = attn_term(cells_of(il));
    if (kv_copy.value() > 0) {
      at.bytes += kv_copy;
      if (FormulasOn()) at.formula += " + host KV copied in";
    }
    Keep(compute[static_cast<size_t>(d)], std::move(at));
    Keep(compute[static_cast<size_t>(d)], ffn_term(s.layers[static_cast<size_t>(il)].moe));
  }
  if (out_dev >= 0) {
    Keep(compute[static_cast<size_t>(out_dev)], out_term);
  }
  if (op_offload) {
    // Largest host weight staged on GPU0 with its matmul's input and output.
    Term stage{"staged host weight", Bytes(0), ""};
    for (const Placed& t : tensors) {
      if (dev_of_slot(t.slot) >= 0 || t.slot < 0 || t.rows <= 1) continue;
      const int64_t used = t.experts > 1 ? s.num_experts_per_tok : 1;
      const Bytes act_b = Bytes(CheckedMul(CheckedMul(2 * t.ne0 + t.rows * used, T), kF));
      Keep(stage, {"staged host weight", t.bytes + act_b,
                   Formula("{} {} + its input/output x {} tok", t.name, Name(t.type), T)});
    }
    if (out_dev < 0 && !has_output && token_embd_bytes.value() > 0) {
      // Tied head on the host: the output matmul stages token_embd.
      Keep(stage, {"staged host weight", token_embd_bytes + out_term.bytes,
                   Formula("token_embd (tied output) + {}", out_term.formula)});
    } else if (out_dev < 0) {
      for (const Placed& t : tensors) {
        if (t.name == "output.weight") {
          Keep(stage, {"staged host weight", t.bytes + out_term.bytes,
                       Formula("output.weight {} + {}", Name(t.type), out_term.formula)});
        }
      }
    }
    Keep(compute[0], std::move(stage));
  }

  // --- Host compute buffer (the CPU backend's, CUDA_Host when a GPU is
  // there): the embeddings get_rows output, the f32 KQ mask(s) built on the
  // host, and the small int inputs.
  Bytes host_compute = Bytes(CheckedMul(CheckedMul(h, T), kF)) +
                       Bytes(CheckedMul(CheckedMul(r.cells, T), kF)) +
                       Bytes(CheckedMul(T, kSmallInputsPerToken));
  std::string host_compute_formula =
      Formula("inp_embd {} x {} tok x 4 B + f32 KQ mask {} x {} tok x 4 B + token/pos/out ids", h, T,
                  r.cells, T);
  if (r.swa) {
    host_compute += Bytes(CheckedMul(CheckedMul(r.cells_swa, T), kF));
    host_compute_formula += Formula(" + SWA mask {} x {} x 4 B", r.cells_swa, T);
  }
  Term host_layers{"", Bytes(0), ""};
  if (!op_offload) {
    // Tiny ubatches stay on the CPU: its layers' terms are host memory.
    for (int64_t il = 0; il < n_layer; ++il) {
      if (dev_of[static_cast<size_t>(il)] >= 0) continue;
      Keep(host_layers, attn_term(cells_of(il)));
      Keep(host_layers, ffn_term(s.layers[static_cast<size_t>(il)].moe));
    }
    if (out_dev < 0) Keep(host_layers, out_term);
  }

  // --- ggml-cuda's memory pool (VMM, grows to its peak, never shrinks):
  // not printed by llama.cpp, but on nvidia-smi. Without flash attention the
  // KQV matmul converts the softmaxed KQ to f16 (ggml_cuda_mul_mat_batched_cublas);
  // with it, quantized K/V are converted to f16 for the kernel (launch_fattn).
  const auto pool_of = [&](int64_t dev) -> Term {
    Term best{"", Bytes(0), ""};
    for (int64_t il = 0; il < n_layer; ++il) {
      const int64_t d = dev_of[static_cast<size_t>(il)] >= 0 ? dev_of[static_cast<size_t>(il)] : (op_offload ? 0 : -1);
      if (d != dev) continue;
      const int64_t n_kv = cells_of(il);
      if (!r.fa) {
        Keep(best, {"ggml-cuda pool (KQ to f16)", Bytes(CheckedMul(CheckedMul(CheckedMul(a.n_head, n_kv), T), 2)),
                    Formula("{} heads x {} x {} tok x 2 B", a.n_head, n_kv, T)});
      } else if (Info(r.type_k).block_elems > 1 || Info(r.type_v).block_elems > 1) {
        const int64_t v_w = a.v_width > 0 ? a.v_width : a.d_v;
        Keep(best, {"ggml-cuda pool (K/V to f16)", Bytes(CheckedMul(CheckedMul(n_kv, a.k_width + v_w), 2)),
                    Formula("{} cells x ({} + {}) x 2 B", n_kv, a.k_width, v_w)});
      }
    }
    return best;
  };

  // --- Devices.
  for (int64_t d = 0; d < n_dev; ++d) {
    DeviceEstimate de;
    de.name = "gpu" + std::to_string(d);
    if (d < static_cast<int64_t>(devices.size())) de.gpu = devices.gpus[static_cast<size_t>(d)];
    de.peak_phase = "load";
    std::vector<Component> comps;
    comps.push_back(weights_component(d));
    comps.push_back(kv_component(d));
    const Term& c = compute[static_cast<size_t>(d)];
    std::vector<Component> cc;
    if (c.bytes.value() > 0) cc.push_back(Leaf(c.name, c.bytes, c.formula));
    comps.push_back(Parent("compute_buffer", std::move(cc),
                           Formula("ubatch {} tok, {} KV cells, flash attention {}", T, r.cells,
                                       r.fa ? "on" : "off")));
    std::vector<Component> ctx;
    ctx.push_back(Leaf("CUDA context + cuBLAS", MiB(kCudaContextMiB), "per process and GPU (assumed)"));
    const Term pool = pool_of(d);
    if (pool.bytes.value() > 0) ctx.push_back(Leaf(pool.name, pool.bytes, pool.formula));
    comps.push_back(Parent("cuda_context", std::move(ctx)));
    de.total = Total(comps);
    de.components = std::move(comps);
    e.devices.push_back(std::move(de));
  }

  // --- Host memory.
  e.host.push_back(weights_component(-1));
  if (e.host.back().children.empty()) e.host.pop_back();
  {
    Component kv = kv_component(-1);
    if (!kv.children.empty()) e.host.push_back(std::move(kv));
  }
  {
    std::vector<Component> hc;
    hc.push_back(Leaf("graph inputs", host_compute, host_compute_formula));
    if (host_layers.bytes.value() > 0) hc.push_back(Leaf(host_layers.name, host_layers.bytes, host_layers.formula));
    e.host.push_back(Parent("compute_buffer", std::move(hc)));
  }
  // llama_context::output_reserve: logits for n_seq_max outputs, f32.
  const int64_t n_outputs = r.n_seq;
  e.host.push_back(Leaf("output_buffer", Bytes(CheckedMul(CheckedMul(vocab, n_outputs), kF)),
                        Formula("{} vocab x {} seq x 4 B (logits)", vocab, n_outputs)));

  // --- Echo, launch flags, notes.
  e.workload = {
      {"runtime", std::string("llamacpp")},
      {"build", fmt::format("b{}", r.build)},
      {"quant", mix_name},
      {"n_ctx", r.n_ctx},
      {"n_ctx_seq", r.n_ctx_seq},
      {"parallel", r.n_seq},
      {"batch_size", r.n_batch},
      {"ubatch", r.n_ubatch},
      {"flash_attn", r.fa},
      {"cache_type_k", CacheTypeName(r.type_k)},
      {"cache_type_v", CacheTypeName(r.type_v)},
      {"gpu_layers", r.ngl},
      {"offloaded", fmt::format("{}/{}", offloaded, n_layer + 1)},
      {"kv_cells", r.cells * r.n_stream},
  };
  if (r.swa) e.workload.push_back({"kv_cells_swa", r.cells_swa * r.n_stream});

  const int64_t ngl_flag = r.ngl_all ? std::max<int64_t>(99, n_layer + 1) : r.ngl;
  e.launch_flags = {"-ngl", std::to_string(ngl_flag), "-c", std::to_string(r.n_ctx_req)};
  if (k.batch_size) {
    e.launch_flags.push_back("-b");
    e.launch_flags.push_back(std::to_string(*k.batch_size));
  }
  e.launch_flags.push_back("-ub");
  e.launch_flags.push_back(std::to_string(k.ubatch.value_or(512)));
  if (r.build >= lb::kFaAuto) {
    e.launch_flags.push_back("-fa");
    e.launch_flags.push_back(r.fa ? "on" : "off");
  } else if (r.fa) {
    e.launch_flags.push_back("-fa");  // a plain switch before PR #15434
  }
  for (const auto& [flag, t] : {std::pair{"-ctk", r.type_k}, std::pair{"-ctv", r.type_v}}) {
    e.launch_flags.push_back(flag);
    e.launch_flags.push_back(CacheTypeName(t));
  }
  e.launch_flags.push_back("-np");
  e.launch_flags.push_back(std::to_string(r.n_seq));
  if (devices.size() > 1) {
    std::string ts;
    for (const GpuSpec& g : devices.gpus) {
      const Bytes mem = g.cuda_total.value() > 0 ? g.cuda_total : g.capacity;
      ts += fmt::format("{}{}", ts.empty() ? "" : ",", (mem.value() + kGiB / 2) / kGiB);
    }
    e.launch_flags.push_back("-ts");
    e.launch_flags.push_back(ts);
  }
  // Flags as "-ngl 99" pairs, the shape --print-flags prints.
  std::vector<std::string> paired;
  for (size_t i = 0; i < e.launch_flags.size(); ++i) {
    if (i + 1 < e.launch_flags.size() && e.launch_flags[i + 1][0] != '-') {
      paired.push_back(e.launch_flags[i] + " " + e.launch_flags[i + 1]);
      ++i;
    } else {
      paired.push_back(e.launch_flags[i]);
    }
  }
  e.launch_flags = std::move(paired);

  e.notes.push_back(fmt::format(
      "modelled: mainline llama.cpp b{} (--llamacpp-build N models another release), split-mode layer, "
      "mmap on, op offload on, settings as given (--fit off)",
      r.build));
  e.notes.push_back(fmt::format(
      "offloaded {}/{} layers (the last is the output layer); token_embd stays in host memory, as "
      "llama.cpp never offloads the input layer",
      offloaded, n_layer + 1));
  if (!k.gpu_layers && r.ngl == 0) {
    e.notes.push_back(fmt::format(
        "b{} defaults to -ngl 0 (every layer on the CPU; -ngl defaults to all since PR #15434): "
        "--gpu-layers 99 offloads them",
        r.build));
  }
  if (!has_output && out_dev >= 0) {
    e.notes.push_back("tied embeddings: the output layer holds its own copy of token_embd on the GPU");
  }
  if (r.swa) {
    e.notes.push_back(fmt::format("{} sliding-window layers keep {} cells (window {} + ubatch {}, padded)",
                                  n_sliding, r.cells_swa * r.n_stream, s.sliding_window, r.n_ubatch));
  } else if (mixed_swa) {
    e.notes.push_back("this build keeps the full context on sliding-window layers (before PR #13194)");
  }
  if (s.attn_kind == AttnKind::kMla) {
    e.notes.push_back(a.mla_latent
                          ? (a.v_width > 0 ? "MLA: the KV cache holds the latent c_kv + rope key (K) and c_kv (V)"
                                           : "MLA: the KV cache holds only the latent c_kv + rope key; V is read from it")
                          : "MLA model without llama.cpp's MLA path: per-head K and V are cached");
  }
  if (n_dev > 1) {
    e.notes.push_back(
        "layers split over the GPUs in proportion to their memory, as llama.cpp's default --tensor-split "
        "does with the free memory at load (other processes change the split)");
  }
  if (offloaded < n_layer + 1 && op_offload) {
    e.notes.push_back(
        "layers left on the CPU still run their large matmuls on gpu0 (op offload): its compute buffer "
        "holds a copy of the largest host weight (--no-op-offload avoids it)");
  }
  e.notes.push_back(fmt::format(
      "cuda_context: {} MiB per GPU for the CUDA context and cuBLAS (an assumption), plus ggml-cuda's "
      "memory pool, which llama.cpp's log does not print",
      kCudaContextMiB));
  return {};
}

// --- The profile.
namespace {

bool IsLlamaCppCacheType(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16 || t == DType::kQ8_0 ||
         t == DType::kQ4_0 || t == DType::kQ4_1 || t == DType::kIQ4_NL || t == DType::kQ5_0 ||
         t == DType::kQ5_1;
}

class LlamaCppRuntime final : public RuntimeProfile {
 public:
  Runtime id() const override { return Runtime::kLlamaCpp; }

  std::span<const std::string_view> Settings() const override {
    static constexpr std::string_view kSettings[] = {
        "ubatch", "batch-size", "flash-attn", "cache-type-k", "cache-type-v",
        "gpu-layers", "parallel", "llamacpp-build"};
    return kSettings;
  }

  Status Resolve(const Model& model, const InferenceSettings& s, const DeviceSet& devices,
                 InferenceWorkload* w, std::vector<std::string>* notes) const override {
    if (s.quant && w->quant.method != QuantMethod::kNone && w->quant.method != QuantMethod::kGguf) {
      return InvalidArgument(fmt::format(
          "--quant {}: llama.cpp runs GGUF files; give a GGUF file type such as Q4_K_M, Q8_0 or F16",
          w->quant.Name()));
    }
    NoteContextOverMax(model, *w, notes);
    if (s.kv_dtype) {
      // --kv-dtype sets both llama.cpp cache types unless -ctk/-ctv are given.
      const DType t = *s.kv_dtype;
      if (!IsLlamaCppCacheType(t)) {
        return InvalidArgument(fmt::format(
            "--kv-dtype: {} is not a llama.cpp cache type (f32, f16, bf16, q8_0, q4_0, q4_1, "
            "iq4_nl, q5_0, q5_1)",
            Name(t)));
      }
      if (!w->llamacpp.cache_type_k) w->llamacpp.cache_type_k = t;
      if (!w->llamacpp.cache_type_v) w->llamacpp.cache_type_v = t;
    }
    if (s.tp > 1) {
      return InvalidArgument(
          "--tp: llama.cpp splits whole layers across GPUs (--split-mode layer); give the GPUs "
          "with --gpu and leave --tp at 1");
    }
    const int64_t n = static_cast<int64_t>(devices.size());
    if (s.tp == 1 && s.pp == 1 && n > 1) w->pp = n;  // whole layers per GPU
    return {};
  }

  Status Estimate(const Model& model, const InferenceWorkload& w, const DeviceSet& devices,
                  vramfit::Estimate& e) const override {
    return EstimateLlamaCpp(model, w, devices, e);
  }

  std::vector<std::string> QuantLadder() const override {
    return {"BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q4_K_M", "Q4_K_S", "IQ4_XS",
            "Q3_K_M", "IQ3_XXS", "Q2_K", "IQ2_XXS", "IQ1_M"};
  }
  std::vector<std::string> FixQuants() const override { return {"Q8_0", "Q4_K_M"}; }
  std::vector<std::string> KvLadder() const override { return {"q8_0", "q4_0"}; }
  void ApplyKv(InferenceSettings& s, std::string_view label) const override {
    const auto d = ParseDType(label);
    s.llamacpp.cache_type_k = d;
    s.llamacpp.cache_type_v = d;
  }
  std::vector<std::pair<std::string, std::string>> KvSettings(
      std::string_view label) const override {
    return {{"cache-type-k", std::string(label)}, {"cache-type-v", std::string(label)}};
  }
};

}  // namespace

const RuntimeProfile& LlamaCppProfile() {
  static const LlamaCppRuntime kProfile;
  return kProfile;
}

}  // namespace vramfit::runtimes
