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
//
// The profile's Resolve checks the knobs and fills their defaults
// (ResolveKnobs); EstimateLlamaCpp chains the steps of llamacpp_steps.h:
// cells -> weights -> placement -> weights / KV / compute per device ->
// host buffers -> echo, launch flags, notes.
#include <algorithm>
#include <cctype>
#include <map>

#include <fmt/format.h>

#include "../formula.h"
#include "llamacpp_steps.h"
#include "profile.h"
#include "runtimes.h"
#include "vramfit/gguf_mix.h"

namespace vramfit::runtimes {
namespace llamacpp {
namespace {

namespace lb = llamacpp_build;

// Graph inputs besides the embeddings and masks: token ids, positions and
// output ids, one int32 each per token (llm_graph_input_*).
constexpr int64_t kSmallInputsPerToken = 3 * 4;
// f32 activations.
constexpr int64_t kF = 4;
// Role has 11 values (model.h).
constexpr size_t kRoles = 11;

int64_t Pad(int64_t x, int64_t n) { return RoundUp(x, n); }

size_t At(int64_t i) { return static_cast<size_t>(i); }

void Keep(Term& best, Term t) {
  if (t.bytes > best.bytes) best = std::move(t);
}

std::string Types(const std::map<std::string, int64_t>& count) {
  std::string s;
  for (const auto& [type, n] : count) s += (s.empty() ? "" : "+") + type;
  return s;
}

// The memory llama.cpp splits layers by, the free memory of each device
// (llama-model.cpp load_tensors, "default split, by free memory"):
// cudaMemGetInfo's total when the catalog knows it, else the card's
// capacity, less what other processes hold (--gpu local).
Bytes SplitMemory(const GpuSpec& g) {
  return (g.cuda_total.value() > 0 ? g.cuda_total : g.capacity) - g.in_use;
}

bool IsLlamaCppCacheType(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16 || t == DType::kQ8_0 ||
         t == DType::kQ4_0 || t == DType::kQ4_1 || t == DType::kIQ4_NL || t == DType::kQ5_0 ||
         t == DType::kQ5_1;
}

// "out of range" for a llama.cpp knob (common/arg.cpp refuses these).
Status Range(const char* flag, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) {
    return InvalidArgument(fmt::format("{}: {} is out of range ({}..{})", flag, v, lo, hi));
  }
  return {};
}

}  // namespace

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

// --- Settings.

// Ranges, then defaults (common/arg.cpp, common_params), then the checks of
// the resolved types (llama_init_from_model, llama_kv_cache).
Status ResolveKnobs(const Model& model, InferenceWorkload* w) {
  LlamaCppKnobs& k = w->llamacpp;
  VRAMFIT_TRY(Range("--ubatch", k.ubatch.value_or(kDefaultUbatch), 1, kMaxTokens));
  VRAMFIT_TRY(Range("--batch-size", k.batch_size.value_or(kDefaultBatch), 1, kMaxTokens));
  VRAMFIT_TRY(Range("--parallel", k.parallel.value_or(1), 1, kMaxParallel));
  if (k.gpu_layers) VRAMFIT_TRY(Range("--gpu-layers", *k.gpu_layers, -1, 100000));
  k.build = k.build.value_or(lb::kDefault);
  k.ubatch = k.ubatch.value_or(kDefaultUbatch);
  // -np: one sequence slot per concurrent sequence of the job.
  k.parallel = k.parallel.value_or(w->batch);
  // -fa: auto (on for CUDA) since PR #15434, off before.
  k.flash_attn = k.flash_attn.value_or(*k.build >= lb::kFaAuto);
  k.cache_type_k = k.cache_type_k.value_or(kDefaultCacheType);
  k.cache_type_v = k.cache_type_v.value_or(kDefaultCacheType);
  if (Info(*k.cache_type_v).block_elems > 1 && !*k.flash_attn) {
    // llama_init_from_model: "V cache quantization requires flash_attn".
    return InvalidArgument(fmt::format(
        "--cache-type-v {}: llama.cpp needs flash attention for a quantized V cache (--flash-attn on)",
        CacheTypeName(*k.cache_type_v)));
  }
  const AttnShape a = Shape(model.spec, MlaLatent(model, *w), *k.build >= lb::kVlessMla);
  return CheckKvRows(a, *k.cache_type_k, *k.cache_type_v);
}

// -ngl: all layers by default since PR #15434; 0 before (llama-cli/server).
GpuLayers ResolveGpuLayers(const LlamaCppKnobs& k, int64_t n_layer) {
  const int64_t all = n_layer + 1;
  if (k.gpu_layers && *k.gpu_layers >= 0) return {std::min(*k.gpu_layers, all), *k.gpu_layers >= all};
  if (k.gpu_layers || *k.build >= lb::kFaAuto) return {all, true};
  return {0, false};
}

// --- Context and cells.

// n_ctx padded (to 256 since PR #17046, else get_padding(): 256 with flash
// attention, 32 without), split into per-sequence streams; the SWA cache
// holds min(cells, pad(window x seqs + n_ubatch)) cells.
Cells ContextCells(const ModelSpec& s, const LlamaCppKnobs& k, int64_t ctx) {
  Cells c;
  c.n_ctx_req = ctx;
  c.n_seq = *k.parallel;
  const bool new_pad = *k.build >= lb::kPad256;
  if (new_pad) {
    c.n_ctx = Pad(c.n_ctx_req, 256);
    if (c.n_seq > 1) {
      // Non-unified cache: one stream of n_ctx_seq cells per sequence.
      c.n_ctx_seq = Pad(c.n_ctx / c.n_seq, 256);
      c.n_ctx = CheckedMul(c.n_ctx_seq, c.n_seq);
      c.n_stream = c.n_seq;
    } else {
      c.n_ctx_seq = c.n_ctx;
    }
    c.cells = c.n_ctx_seq;
  } else {
    c.n_ctx = Pad(c.n_ctx_req, *k.flash_attn ? 256 : 32);
    c.n_ctx_seq = c.n_ctx / c.n_seq;
    c.cells = c.n_ctx;
  }
  c.n_batch = std::min(c.n_ctx, k.batch_size.value_or(kDefaultBatch));
  c.n_ubatch = std::min(c.n_batch, *k.ubatch);
  c.tokens = std::min(c.n_ctx, c.n_ubatch);
  // Sliding-window layers: llama.cpp runs them with their own cache where
  // the model mixes sliding and full layers (Gemma 2/3, Cohere2, gpt-oss);
  // a window on every layer (Mistral v0.1, Phi-3) is ignored (phi3:
  // "Phi SWA is currently disabled"; llama: no SWA).
  for (const LayerSpec& l : s.layers) c.n_sliding += l.attention == LayerAttention::kSliding ? 1 : 0;
  c.mixed_swa = s.sliding_window > 0 && c.n_sliding > 0 && c.n_sliding < s.num_hidden_layers;
  c.swa = c.mixed_swa && *k.build >= lb::kSwaCache;
  c.cells_swa = c.cells;
  if (c.swa) {
    const int64_t pad = new_pad ? 256 : (*k.flash_attn ? 256 : 32);
    const int64_t seqs = c.n_stream > 1 ? 1 : c.n_seq;
    c.cells_swa =
        std::min(c.cells, Pad(CheckedAdd(CheckedMul(s.sliding_window, seqs), c.n_ubatch), pad));
  }
  return c;
}

int64_t LayerCells(const ModelSpec& s, const Cells& c, int64_t il) {
  return c.swa && s.layers[At(il)].attention == LayerAttention::kSliding ? c.cells_swa : c.cells;
}

// --- Layer placement.

int64_t Placement::OfSlot(int64_t slot) const {
  const int64_t n_layer = static_cast<int64_t>(dev_of.size()) - 1;
  return slot < 0 || slot > n_layer ? -1 : dev_of[At(slot)];
}

std::vector<float> TensorSplit(const DeviceSet& devices) {
  const int64_t n_dev = std::max<int64_t>(1, static_cast<int64_t>(devices.size()));
  std::vector<float> splits(At(n_dev), 1.0f);
  for (size_t d = 0; d < devices.size(); ++d) {
    splits[d] = static_cast<float>(SplitMemory(devices.gpus[d]).value());
  }
  float split_sum = 0.0f;
  for (float& x : splits) {
    split_sum += x;
    x = split_sum;
  }
  for (float& x : splits) x /= split_sum;
  return splits;
}

// Slots i_gpu_start .. i_gpu_start + act - 1 go to the GPUs, slot il to the
// first GPU whose cumulative split exceeds (il - i_gpu_start) / act. Since
// PR #18148 -ngl N counts the output layer first.
Placement PlaceLayers(int64_t n_layer, const GpuLayers& ngl, int64_t build,
                      const DeviceSet& devices) {
  const std::vector<float> splits = TensorSplit(devices);
  Placement p;
  p.n_dev = static_cast<int64_t>(splits.size());
  const bool output_first = build >= lb::kOutputFirst;
  const int64_t i_gpu_start =
      std::max<int64_t>(output_first ? n_layer + 1 - ngl.ngl : n_layer - ngl.ngl, 0);
  const int64_t act = std::min(ngl.ngl, n_layer + 1);
  p.dev_of.assign(At(n_layer + 1), -1);
  for (int64_t il = 0; il <= n_layer; ++il) {
    if (il < i_gpu_start || il - i_gpu_start >= act) continue;
    const float f = static_cast<float>(il - i_gpu_start) / static_cast<float>(act);
    const int64_t d = std::upper_bound(splits.begin(), splits.end(), f) - splits.begin();
    p.dev_of[At(il)] = std::min(d, p.n_dev - 1);
    ++p.offloaded;
  }
  p.out_dev = p.dev_of[At(n_layer)];
  return p;
}

// --- Weights.

bool FromGgufFile(const Model& model, const InferenceWorkload& w) {
  return model.file_format == "gguf" && w.weights_as_stored && !model.file_tensors.empty();
}

bool MlaLatent(const Model& model, const InferenceWorkload& w) {
  if (model.spec.attn_kind != AttnKind::kMla || *w.llamacpp.build < lb::kMla) return false;
  if (!FromGgufFile(model, w)) return true;
  return std::any_of(model.file_tensors.begin(), model.file_tensors.end(), [](const FileTensor& t) {
    return t.name.find("attn_k_b") != std::string::npos;
  });
}

namespace {

// The .gguf file's own tensors, by name and layer (llama_model_loader).
GgufFile FileTensors(const Model& model) {
  const int64_t n_layer = model.spec.num_hidden_layers;
  GgufFile f;
  for (const FileTensor& t : model.file_tensors) {
    int64_t slot = t.layer;
    if (t.layer < 0) slot = t.name.rfind("output", 0) == 0 ? n_layer : -1;
    if (t.layer >= n_layer) slot = -2;
    const int64_t ne0 = t.shape.empty() ? 1 : t.shape[0];
    const int64_t rows = t.shape.size() >= 2 ? t.shape[1] : 1;
    const int64_t experts = t.shape.size() >= 3 ? t.shape[2] : 1;
    f.tensors.push_back({t.name, t.role, slot, t.dtype, Bytes(t.bytes), ne0, rows, experts});
  }
  f.mix_name = "as stored in the .gguf file";
  return f;
}

// The tensors llama-quantize writes for w.quant (GgufMix); without a GGUF
// type, the unquantized file convert_hf_to_gguf.py writes (--outtype f16 /
// bf16 / f32) at the compute dtype.
Result<GgufFile> QuantizedTensors(const Model& model, const InferenceWorkload& w) {
  GgufFtype ftype;
  DType pure = DType::kQ4_K;
  GgufFile f;
  if (w.quant.method == QuantMethod::kGguf) {
    ftype = w.quant.gguf_ftype;
    pure = w.quant.gguf_type;
  } else if (w.quant.method == QuantMethod::kMxfp4) {
    ftype = GgufFtype::kMXFP4_MOE;  // gpt-oss: MXFP4 experts, Q8_0 elsewhere
  } else {
    ftype = w.dtype == DType::kF32    ? GgufFtype::kF32
            : w.dtype == DType::kBF16 ? GgufFtype::kBF16
                                      : GgufFtype::kF16;
    f.unquantized = ftype;
  }
  auto mix = GgufMix(model, ftype, pure, *w.llamacpp.build);
  if (!mix.ok()) return mix.error();
  const int64_t n_layer = model.spec.num_hidden_layers;
  for (const GgufTensor& t : *mix) {
    int64_t slot = t.layer;
    if (t.layer < 0) slot = t.name.rfind("output", 0) == 0 ? n_layer : -1;
    f.tensors.push_back({t.name, t.role, slot, t.type, t.bytes, t.ne0, t.rows, t.experts});
  }
  f.mix_name = ftype == GgufFtype::kPure ? std::string(Name(pure)) + " (pure)" : FtypeName(ftype);
  return f;
}

// File size, elements and tensors per type, as llama_model_loader prints them.
void Summarize(GgufFile& f) {
  for (const Placed& t : f.tensors) {
    f.bytes += t.bytes;
    f.elements = CheckedAdd(f.elements, CheckedMul(CheckedMul(t.ne0, t.rows), t.experts));
    f.type_count[Name(t.type)] += 1;
    if (t.name == "output.weight") f.has_output = true;
    if (t.name == "token_embd.weight") {
      f.token_embd_bytes = t.bytes;
      f.token_embd_type = t.type;
    }
  }
}

}  // namespace

Result<GgufFile> LoadGguf(const Model& model, const InferenceWorkload& w) {
  GgufFile f;
  if (FromGgufFile(model, w)) {
    f = FileTensors(model);
  } else {
    auto q = QuantizedTensors(model, w);
    if (!q.ok()) return q.error();
    f = std::move(*q);
  }
  f.mla_latent = MlaLatent(model, w);
  Summarize(f);
  return f;
}

std::vector<Component> WeightsByDevice(const GgufFile& f, const Placement& p) {
  struct RoleAcc {
    Bytes bytes;
    std::map<std::string, int64_t> types;
  };
  std::vector<std::vector<RoleAcc>> acc(At(p.n_dev + 1), std::vector<RoleAcc>(kRoles));
  const auto add = [&](int64_t dev, Role role, Bytes b, const std::string& type) {
    RoleAcc& x = acc[At(dev + 1)][static_cast<size_t>(role)];
    x.bytes += b;
    if (FormulasOn()) x.types[type] += 1;
  };
  for (const Placed& t : f.tensors) {
    if (t.slot != -2) add(p.OfSlot(t.slot), t.role, t.bytes, Name(t.type));
  }
  if (!f.has_output && p.out_dev >= 0 && f.token_embd_bytes.value() > 0) {
    add(p.out_dev, Role::kLmHead, f.token_embd_bytes,
        std::string(Name(f.token_embd_type)) + " (tied: copy of token_embd)");
  }
  std::vector<Component> out;
  for (const std::vector<RoleAcc>& dev : acc) {
    std::vector<Component> children;
    for (size_t ro = 0; ro < kRoles; ++ro) {
      if (dev[ro].bytes.value() == 0) continue;
      children.push_back(Leaf(RoleName(static_cast<Role>(ro)), dev[ro].bytes, Types(dev[ro].types)));
    }
    out.push_back(Parent("weights", std::move(children), Formula("GGUF {}", f.mix_name)));
  }
  return out;
}

// --- KV cache.

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

Status CheckKvRows(const AttnShape& a, DType type_k, DType type_v) {
  const bool kbad = a.k_width % Info(type_k).block_elems != 0;
  if (!kbad && a.v_width % Info(type_v).block_elems == 0) return {};
  return InvalidArgument(fmt::format(
      "--cache-type-{} {}: KV rows of {} elements do not divide into {}-element blocks",
      kbad ? "k" : "v", CacheTypeName(kbad ? type_k : type_v), kbad ? a.k_width : a.v_width,
      Info(kbad ? type_k : type_v).block_elems));
}

namespace {

// "32 layers x 4096 cells x 1024 x f16", with the sliding layers' cells.
std::string KvFormula(int64_t full, int64_t swa, const Cells& c, int64_t width, DType t) {
  std::string layers = Formula("{} layers x {} cells", full, c.cells * c.n_stream);
  if (swa > 0) {
    layers = full > 0 ? Formula("({} layers x {} + {} sliding x {} cells)", full,
                                c.cells * c.n_stream, swa, c.cells_swa * c.n_stream)
                      : Formula("{} sliding layers x {} cells", swa, c.cells_swa * c.n_stream);
  }
  return Formula("{} x {} x {}", layers, width, CacheTypeName(t));
}

}  // namespace

KvCache KvByDevice(const ModelSpec& s, const AttnShape& a, const Cells& c,
                   const LlamaCppKnobs& k, const Placement& p) {
  KvCache kv;
  kv.k_row = StorageBytes(*k.cache_type_k, a.k_width).value();
  kv.v_row = StorageBytes(*k.cache_type_v, a.v_width).value();
  const size_t n = At(p.n_dev + 1);
  std::vector<Bytes> kb(n), vb(n);
  std::vector<int64_t> full(n), swa(n);
  for (int64_t il = 0; il < s.num_hidden_layers; ++il) {
    const size_t d = At(p.dev_of[At(il)] + 1);
    const int64_t cells = CheckedMul(LayerCells(s, c, il), c.n_stream);
    kb[d] += Bytes(CheckedMul(kv.k_row, cells));
    vb[d] += Bytes(CheckedMul(kv.v_row, cells));
    (LayerCells(s, c, il) == c.cells ? full : swa)[d] += 1;
  }
  kv.per_token = Bytes(CheckedMul(kv.k_row + kv.v_row, s.num_hidden_layers));
  for (size_t d = 0; d < n; ++d) {
    std::vector<Component> children;
    if (full[d] + swa[d] > 0) {
      children.push_back(Leaf(a.mla_latent ? "K (latent c_kv + rope)" : "K", kb[d],
                              KvFormula(full[d], swa[d], c, a.k_width, *k.cache_type_k)));
      if (a.v_width > 0) {
        children.push_back(Leaf(a.mla_latent ? "V (latent c_kv)" : "V", vb[d],
                                KvFormula(full[d], swa[d], c, a.v_width, *k.cache_type_v)));
      }
    }
    kv.by_device.push_back(Parent("kv_cache", std::move(children)));
  }
  return kv;
}

// --- Compute buffers.

Term AttentionTerm(const AttnShape& a, int64_t hidden, bool fa, int64_t n_kv, int64_t tokens) {
  const int64_t h = hidden, T = tokens;
  if (fa) {
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
                  Bytes(CheckedMul(CheckedMul(n_kv, T), kF)) +
                  Bytes(CheckedMul(CheckedMul(proj, T), kF));
  return {"attention (KQ scores)", b,
          Formula("KQ {} heads x {} x {} tok x 4 B + f32 mask + {} x {} tok x 4 B", a.n_head, n_kv,
                  T, proj, T)};
}

Term FfnTerm(const ModelSpec& s, bool moe, int64_t tokens) {
  const int64_t h = s.hidden_size, T = tokens;
  if (!moe) {
    const int64_t gates = s.mlp_kind == MlpKind::kGated ? 3 : 2;
    const int64_t width = gates * s.intermediate_size + 2 * h;
    return {"ffn", Bytes(CheckedMul(CheckedMul(width, T), kF)),
            Formula("({} x {} + 2 x {}) x {} tok x 4 B", gates, s.intermediate_size, h, T)};
  }
  // Routed experts: gate/up/act [n_ff_exp, n_used, T], down [n_embd, n_used, T].
  const int64_t used = s.num_experts_per_tok;
  const int64_t mi = s.moe_intermediate_size;
  const int64_t experts = std::max(3 * mi, mi + h) * used;
  const int64_t shared = 3 * s.shared_expert_intermediate_size + h;
  const int64_t width = std::max(experts, shared) + s.num_experts + 2 * h;
  return {"ffn (experts)", Bytes(CheckedMul(CheckedMul(width, T), kF)),
          Formula("(max(3 x {}, {} + {}) x {} used + router + 2 x {}) x {} tok x 4 B", mi, mi, h,
                  used, h, T)};
}

Term OutputTerm(const ModelSpec& s, int64_t tokens) {
  const int64_t vocab = s.vocab_size, h = s.hidden_size;
  return {"output (logits)", Bytes(CheckedMul(CheckedMul(vocab + 2 * h, tokens), kF)),
          Formula("({} vocab + 2 x {}) x {} tok x 4 B", vocab, h, tokens)};
}

// Op offload (ggml_backend_sched, "1.off"): with a GPU present, matmuls of
// >= 32 tokens whose weights are in host memory run on the first GPU, which
// copies the weight into its compute buffer; the rest of those layers
// follows them there (KV copied in as split inputs).
bool OpOffload(int64_t tokens) { return tokens >= kOffloadMinBatch; }

namespace {

// The largest host weight staged on GPU0 under op offload, with its
// matmul's input and output (f32, tokens rows).
Term StagedHostWeight(const ModelSpec& s, const GgufFile& f, const Placement& p, const Term& out,
                      int64_t tokens) {
  const int64_t T = tokens;
  Term stage{"staged host weight", Bytes(0), ""};
  for (const Placed& t : f.tensors) {
    if (p.OfSlot(t.slot) >= 0 || t.slot < 0 || t.rows <= 1) continue;
    const int64_t used = t.experts > 1 ? s.num_experts_per_tok : 1;
    const Bytes act_b = Bytes(CheckedMul(CheckedMul(2 * t.ne0 + t.rows * used, T), kF));
    Keep(stage, {"staged host weight", t.bytes + act_b,
                 Formula("{} {} + its input/output x {} tok", t.name, Name(t.type), T)});
  }
  if (p.out_dev < 0 && !f.has_output && f.token_embd_bytes.value() > 0) {
    // Tied head on the host: the output matmul stages token_embd.
    Keep(stage, {"staged host weight", f.token_embd_bytes + out.bytes,
                 Formula("token_embd (tied output) + {}", out.formula)});
  } else if (p.out_dev < 0) {
    for (const Placed& t : f.tensors) {
      if (t.name == "output.weight") {
        Keep(stage, {"staged host weight", t.bytes + out.bytes,
                     Formula("output.weight {} + {}", Name(t.type), out.formula)});
      }
    }
  }
  return stage;
}

}  // namespace

std::vector<Term> GpuComputeTerms(const ModelSpec& s, const AttnShape& a, const Cells& c, bool fa,
                                  const KvCache& kv, const Placement& p, const GgufFile& f) {
  const int64_t T = c.tokens;
  const bool op_offload = OpOffload(T);
  std::vector<Term> compute(At(p.n_dev), Term{"none", Bytes(0), ""});
  for (int64_t il = 0; il < s.num_hidden_layers; ++il) {
    int64_t d = p.dev_of[At(il)];
    const int64_t n_kv = LayerCells(s, c, il);
    Bytes kv_copy;
    if (d < 0) {
      if (!op_offload) continue;
      d = 0;
      kv_copy = Bytes(CheckedMul(kv.k_row + kv.v_row, CheckedMul(n_kv, c.n_stream)));
    }
    Term at = AttentionTerm(a, s.hidden_size, fa, n_kv, T);
    if (kv_copy.value() > 0) {
      at.bytes += kv_copy;
      if (FormulasOn()) at.formula += " + host KV copied in";
    }
    Keep(compute[At(d)], std::move(at));
    Keep(compute[At(d)], FfnTerm(s, s.layers[At(il)].moe, T));
  }
  const Term out = OutputTerm(s, T);
  if (p.out_dev >= 0) Keep(compute[At(p.out_dev)], out);
  if (op_offload) Keep(compute[0], StagedHostWeight(s, f, p, out, T));
  return compute;
}

// The embeddings get_rows output, the f32 KQ mask(s) built on the host and
// the small int inputs; with op offload off, tiny ubatches keep the CPU
// layers' terms in host memory.
Component HostComputeBuffer(const ModelSpec& s, const AttnShape& a, const Cells& c, bool fa,
                            const Placement& p) {
  const int64_t T = c.tokens, h = s.hidden_size;
  Bytes inputs = Bytes(CheckedMul(CheckedMul(h, T), kF)) +
                 Bytes(CheckedMul(CheckedMul(c.cells, T), kF)) +
                 Bytes(CheckedMul(T, kSmallInputsPerToken));
  std::string formula =
      Formula("inp_embd {} x {} tok x 4 B + f32 KQ mask {} x {} tok x 4 B + token/pos/out ids", h,
              T, c.cells, T);
  if (c.swa) {
    inputs += Bytes(CheckedMul(CheckedMul(c.cells_swa, T), kF));
    formula += Formula(" + SWA mask {} x {} x 4 B", c.cells_swa, T);
  }
  Term host_layers{"", Bytes(0), ""};
  if (!OpOffload(T)) {
    for (int64_t il = 0; il < s.num_hidden_layers; ++il) {
      if (p.dev_of[At(il)] >= 0) continue;
      Keep(host_layers, AttentionTerm(a, h, fa, LayerCells(s, c, il), T));
      Keep(host_layers, FfnTerm(s, s.layers[At(il)].moe, T));
    }
    if (p.out_dev < 0) Keep(host_layers, OutputTerm(s, T));
  }
  std::vector<Component> hc;
  hc.push_back(Leaf("graph inputs", inputs, formula));
  if (host_layers.bytes.value() > 0) {
    hc.push_back(Leaf(host_layers.name, host_layers.bytes, host_layers.formula));
  }
  return Parent("compute_buffer", std::move(hc));
}

// ggml-cuda's memory pool (VMM, grows to its peak, never shrinks): without
// flash attention the KQV matmul converts the softmaxed KQ to f16
// (ggml_cuda_mul_mat_batched_cublas); with it, quantized K/V are converted
// to f16 for the kernel (launch_fattn). The largest layer on dev counts.
Term CudaPoolTerm(const ModelSpec& s, const AttnShape& a, const Cells& c, const LlamaCppKnobs& k,
                  const Placement& p, int64_t dev) {
  const int64_t T = c.tokens;
  const bool op_offload = OpOffload(T);
  const bool quantized_kv =
      Info(*k.cache_type_k).block_elems > 1 || Info(*k.cache_type_v).block_elems > 1;
  Term best{"", Bytes(0), ""};
  for (int64_t il = 0; il < s.num_hidden_layers; ++il) {
    const int64_t placed = p.dev_of[At(il)];
    const int64_t d = placed >= 0 ? placed : (op_offload ? 0 : -1);
    if (d != dev) continue;
    const int64_t n_kv = LayerCells(s, c, il);
    if (!*k.flash_attn) {
      Keep(best, {"ggml-cuda pool (KQ to f16)",
                  Bytes(CheckedMul(CheckedMul(CheckedMul(a.n_head, n_kv), T), 2)),
                  Formula("{} heads x {} x {} tok x 2 B", a.n_head, n_kv, T)});
    } else if (quantized_kv) {
      const int64_t v_w = a.v_width > 0 ? a.v_width : a.d_v;
      Keep(best, {"ggml-cuda pool (K/V to f16)", Bytes(CheckedMul(CheckedMul(n_kv, a.k_width + v_w), 2)),
                  Formula("{} cells x ({} + {}) x 2 B", n_kv, a.k_width, v_w)});
    }
  }
  return best;
}

// llama_context::output_reserve: logits for n_seq_max outputs, f32.
Component OutputBuffer(int64_t vocab, int64_t n_seq) {
  return Leaf("output_buffer", Bytes(CheckedMul(CheckedMul(vocab, n_seq), kF)),
              Formula("{} vocab x {} seq x 4 B (logits)", vocab, n_seq));
}

// --- Echo, launch flags, notes.

Echo EchoOf(const LlamaCppKnobs& k, const Cells& c, const GpuLayers& ngl, const Placement& p,
            const GgufFile& f, int64_t n_layer) {
  Echo echo = {
      {"runtime", std::string("llamacpp")},
      {"build", fmt::format("b{}", *k.build)},
      {"quant", f.mix_name},
      {"n_ctx", c.n_ctx},
      {"n_ctx_seq", c.n_ctx_seq},
      {"parallel", c.n_seq},
      {"batch_size", c.n_batch},
      {"ubatch", c.n_ubatch},
      {"flash_attn", *k.flash_attn},
      {"cache_type_k", CacheTypeName(*k.cache_type_k)},
      {"cache_type_v", CacheTypeName(*k.cache_type_v)},
      {"gpu_layers", ngl.ngl},
      {"offloaded", fmt::format("{}/{}", p.offloaded, n_layer + 1)},
      {"kv_cells", c.cells * c.n_stream},
  };
  if (c.swa) echo.push_back({"kv_cells_swa", c.cells_swa * c.n_stream});
  if (k.host_mem_bw) echo.push_back({"host_mem_bw_gb_s", *k.host_mem_bw});
  return echo;
}

// -ngl (99 or more for "all"), -c as asked, -b only when given, -ub, -fa
// (on|off since PR #15434, a plain switch before), -ctk, -ctv, -np, and -ts
// with each GPU's GiB when there are several.
std::vector<std::string> LaunchFlags(const LlamaCppKnobs& k, const Cells& c, const GpuLayers& ngl,
                                     int64_t n_layer, const DeviceSet& devices) {
  const int64_t ngl_flag = ngl.all ? std::max<int64_t>(99, n_layer + 1) : ngl.ngl;
  std::vector<std::string> flags = {"-ngl", std::to_string(ngl_flag), "-c",
                                    std::to_string(c.n_ctx_req)};
  if (k.batch_size) {
    flags.push_back("-b");
    flags.push_back(std::to_string(*k.batch_size));
  }
  flags.push_back("-ub");
  flags.push_back(std::to_string(*k.ubatch));
  if (*k.build >= lb::kFaAuto) {
    flags.push_back("-fa");
    flags.push_back(*k.flash_attn ? "on" : "off");
  } else if (*k.flash_attn) {
    flags.push_back("-fa");
  }
  for (const auto& [flag, t] : {std::pair{"-ctk", *k.cache_type_k}, std::pair{"-ctv", *k.cache_type_v}}) {
    flags.push_back(flag);
    flags.push_back(CacheTypeName(t));
  }
  flags.push_back("-np");
  flags.push_back(std::to_string(c.n_seq));
  if (devices.size() > 1) {
    std::string ts;
    for (const GpuSpec& g : devices.gpus) {
      ts += fmt::format("{}{}", ts.empty() ? "" : ",", (SplitMemory(g).value() + kGiB / 2) / kGiB);
    }
    flags.push_back("-ts");
    flags.push_back(ts);
  }
  return PairFlags(flags);
}

std::vector<std::string> PairFlags(const std::vector<std::string>& flags) {
  std::vector<std::string> paired;
  for (size_t i = 0; i < flags.size(); ++i) {
    if (i + 1 < flags.size() && flags[i + 1][0] != '-') {
      paired.push_back(flags[i] + " " + flags[i + 1]);
      ++i;
    } else {
      paired.push_back(flags[i]);
    }
  }
  return paired;
}

namespace {

// The weights' notes: the file assumed without a GGUF type, and the size
// and bits per weight as llama_model_loader prints them.
void WeightNotes(const GgufFile& f, std::vector<std::string>& notes) {
  if (f.unquantized) {
    notes.push_back(fmt::format(
        "no GGUF file type given: weights sized as the unquantized {} GGUF convert_hf_to_gguf.py "
        "writes; --quant Q4_K_M (or Q8_0, IQ4_XS...) sizes a quantized file",
        FtypeName(*f.unquantized)));
  }
  const double bpw = f.elements > 0 ? 8.0 * static_cast<double>(f.bytes.value()) /
                                          static_cast<double>(f.elements)
                                    : 0.0;
  std::string counts;
  for (const auto& [type, n] : f.type_count) {
    counts += fmt::format("{}{} {}", counts.empty() ? "" : ", ", n, type);
  }
  notes.push_back(fmt::format("GGUF {}: {:.2f} GiB, {:.2f} BPW (llama.cpp's \"model size\"); tensors: {}",
                              f.mix_name, static_cast<double>(f.bytes.value()) / kGiB, bpw, counts));
}

}  // namespace

std::vector<std::string> Notes(const ModelSpec& s, const LlamaCppKnobs& k, const Cells& c,
                               const GpuLayers& ngl, const Placement& p, const GgufFile& f,
                               const AttnShape& a) {
  const int64_t n_layer = s.num_hidden_layers;
  std::vector<std::string> notes;
  WeightNotes(f, notes);
  notes.push_back(fmt::format(
      "modelled: mainline llama.cpp b{} (--llamacpp-build N models another release), split-mode layer, "
      "mmap on, op offload on, settings as given (--fit off)",
      *k.build));
  notes.push_back(fmt::format(
      "offloaded {}/{} layers (the last is the output layer); token_embd stays in host memory, as "
      "llama.cpp never offloads the input layer",
      p.offloaded, n_layer + 1));
  if (!k.gpu_layers && ngl.ngl == 0) {
    notes.push_back(fmt::format(
        "b{} defaults to -ngl 0 (every layer on the CPU; -ngl defaults to all since PR #15434): "
        "--gpu-layers 99 offloads them",
        *k.build));
  }
  if (!f.has_output && p.out_dev >= 0) {
    notes.push_back("tied embeddings: the output layer holds its own copy of token_embd on the GPU");
  }
  if (c.swa) {
    notes.push_back(fmt::format("{} sliding-window layers keep {} cells (window {} + ubatch {}, padded)",
                                c.n_sliding, c.cells_swa * c.n_stream, s.sliding_window, c.n_ubatch));
  } else if (c.mixed_swa) {
    notes.push_back("this build keeps the full context on sliding-window layers (before PR #13194)");
  }
  if (s.attn_kind == AttnKind::kMla) {
    notes.push_back(a.mla_latent
                        ? (a.v_width > 0 ? "MLA: the KV cache holds the latent c_kv + rope key (K) and c_kv (V)"
                                         : "MLA: the KV cache holds only the latent c_kv + rope key; V is read from it")
                        : "MLA model without llama.cpp's MLA path: per-head K and V are cached");
  }
  if (p.n_dev > 1) {
    notes.push_back(
        "layers split over the GPUs in proportion to their memory, as llama.cpp's default --tensor-split "
        "does with the free memory at load (other processes change the split)");
  }
  if (p.offloaded < n_layer + 1 && OpOffload(c.tokens)) {
    notes.push_back(
        "layers left on the CPU still run their large matmuls on gpu0 (op offload): its compute buffer "
        "holds a copy of the largest host weight (--no-op-offload avoids it)");
  }
  notes.push_back(fmt::format(
      "cuda_context: {} MiB per GPU for the CUDA context and cuBLAS (an assumption), plus ggml-cuda's "
      "memory pool, which llama.cpp's log does not print",
      kCudaContextMiB));
  return notes;
}

namespace {

// GPU d: weights + kv_cache + compute_buffer + cuda_context, "load" peak.
DeviceEstimate GpuBreakdown(int64_t d, const DeviceSet& devices, Component weights, Component kv,
                            const Term& compute, const Term& pool, const Cells& c, bool fa) {
  DeviceEstimate de;
  de.name = "gpu" + std::to_string(d);
  if (d < static_cast<int64_t>(devices.size())) de.gpu = devices.gpus[At(d)];
  de.peak_phase = "load";
  std::vector<Component> comps;
  comps.push_back(std::move(weights));
  comps.push_back(std::move(kv));
  std::vector<Component> cc;
  if (compute.bytes.value() > 0) cc.push_back(Leaf(compute.name, compute.bytes, compute.formula));
  comps.push_back(Parent("compute_buffer", std::move(cc),
                         Formula("ubatch {} tok, {} KV cells, flash attention {}", c.tokens, c.cells,
                                 fa ? "on" : "off")));
  std::vector<Component> ctx;
  ctx.push_back(Leaf("CUDA context + cuBLAS", MiB(kCudaContextMiB), "per process and GPU (assumed)"));
  if (pool.bytes.value() > 0) ctx.push_back(Leaf(pool.name, pool.bytes, pool.formula));
  comps.push_back(Parent("cuda_context", std::move(ctx)));
  de.total = Total(comps);
  de.components = std::move(comps);
  return de;
}

// The steps in llama.cpp's load order; w.llamacpp as ResolveKnobs left it.
Status EstimateSteps(const Model& model, const InferenceWorkload& w, const DeviceSet& devices,
                     Estimate& e) {
  const ModelSpec& s = model.spec;
  const LlamaCppKnobs& k = w.llamacpp;
  const int64_t n_layer = s.num_hidden_layers;
  const GpuLayers ngl = ResolveGpuLayers(k, n_layer);
  const Cells cells = ContextCells(s, k, w.ctx);
  auto file = LoadGguf(model, w);
  if (!file.ok()) return file.error();
  const GgufFile& f = *file;
  e.weight_bytes = f.bytes;
  const AttnShape a = Shape(s, f.mla_latent, *k.build >= llamacpp_build::kVlessMla);
  const Placement p = PlaceLayers(n_layer, ngl, *k.build, devices);
  std::vector<Component> weights = WeightsByDevice(f, p);
  KvCache kv = KvByDevice(s, a, cells, k, p);
  e.kv_bytes_per_token = kv.per_token;
  const std::vector<Term> compute = GpuComputeTerms(s, a, cells, *k.flash_attn, kv, p, f);
  for (int64_t d = 0; d < p.n_dev; ++d) {
    const size_t i = static_cast<size_t>(d);
    e.devices.push_back(GpuBreakdown(d, devices, std::move(weights[i + 1]), std::move(kv.by_device[i + 1]),
                                     compute[i], CudaPoolTerm(s, a, cells, k, p, d), cells,
                                     *k.flash_attn));
  }
  if (!weights[0].children.empty()) e.host.push_back(std::move(weights[0]));
  if (!kv.by_device[0].children.empty()) e.host.push_back(std::move(kv.by_device[0]));
  e.host.push_back(HostComputeBuffer(s, a, cells, *k.flash_attn, p));
  e.host.push_back(OutputBuffer(s.vocab_size, cells.n_seq));
  e.workload = EchoOf(k, cells, ngl, p, f, n_layer);
  e.launch_flags = LaunchFlags(k, cells, ngl, n_layer, devices);
  std::vector<std::string> notes = Notes(s, k, cells, ngl, p, f, a);
  e.notes.insert(e.notes.end(), notes.begin(), notes.end());
  return {};
}

}  // namespace
}  // namespace llamacpp

Status EstimateLlamaCpp(const Model& model, const InferenceWorkload& w, const DeviceSet& devices,
                        Estimate& e) {
  return llamacpp::EstimateSteps(model, w, devices, e);
}

// --- The profile.
namespace {

class LlamaCppRuntime final : public RuntimeProfile {
 public:
  Runtime id() const override { return Runtime::kLlamaCpp; }

  std::span<const std::string_view> Settings() const override {
    static constexpr std::string_view kSettings[] = {
        "ubatch", "batch-size", "flash-attn", "cache-type-k", "cache-type-v",
        "gpu-layers", "parallel", "llamacpp-build", "host-mem-bw"};
    return kSettings;
  }

  Status Resolve(const Model& model, const InferenceSettings& s, const DeviceSet& devices,
                 InferenceWorkload* w, std::vector<std::string>* notes) const override {
    if (model.spec.topology != Topology::kDecoder) {
      return Unsupported(fmt::format("--runtime {}: {} is an {} model; llama.cpp's encoder graphs are not "
                                     "modelled; use --runtime hf",
                                     RuntimeName(id()),
                                     model.spec.id, TopologyName(model.spec.topology)));
    }
    if (IsHybridStack(model.spec)) {
      return HybridRefusal(model.spec, RuntimeName(id()), "the size of llama.cpp's recurrent-state (R/S) buffer");
    }
    if (s.quant && w->quant.method != QuantMethod::kNone && w->quant.method != QuantMethod::kGguf) {
      return InvalidArgument(fmt::format(
          "--quant {}: llama.cpp runs GGUF files; give a GGUF file type such as Q4_K_M, Q8_0 or F16",
          w->quant.Name()));
    }
    if (!s.quant && (IsScaledCheckpointFormat(w->quant) || IsTorchao(w->quant.method))) {
      return Unsupported(fmt::format(
          "llama.cpp runs GGUF files: this checkpoint's {} weights are converted by "
          "convert_hf_to_gguf.py first; give the GGUF file, or --quant F16, Q8_0 or Q4_K_M to size one",
          w->quant.Name()));
    }
    NoteContextOverMax(model, *w, notes);
    if (s.kv_dtype) {
      // --kv-dtype sets both llama.cpp cache types unless -ctk/-ctv are given.
      const DType t = *s.kv_dtype;
      if (!llamacpp::IsLlamaCppCacheType(t)) {
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
    return llamacpp::ResolveKnobs(model, w);
  }

  Status Estimate(const Model& model, const InferenceWorkload& w, const DeviceSet& devices,
                  vramfit::Estimate& e) const override {
    return EstimateLlamaCpp(model, w, devices, e);
  }

  // llama-server runs a GGUF file: the command only for a model read from
  // one (its id is the path given).
  std::vector<std::string> LaunchCommand(const Model& model) const override {
    if (model.file_format != "gguf") return {};
    return {"llama-server", "-m", model.spec.id};
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
