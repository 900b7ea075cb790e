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
#include <regex>

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
// One accumulator per Role (model.h).
constexpr size_t kRoles = kRoleCount;

int64_t Pad(int64_t x, int64_t n) { return RoundUp(x, n); }

size_t At(int64_t i) { return static_cast<size_t>(i); }

void Keep(Term& best, Term t) {
  if (t.bytes > best.bytes) best = std::move(t);
}

// -ts as given ("3,1", "6.5,6,10,4").
std::string SharesText(const std::vector<double>& shares) {
  std::string s;
  for (double x : shares) s += fmt::format("{}{}", s.empty() ? "" : ",", x);
  return s;
}

// A word a POSIX shell reads back as `w`: as it is when plain, else in
// single quotes (a regex's backslashes, '|', '(' and '*').
std::string ShellWord(const std::string& w) {
  const bool plain = !w.empty() && std::all_of(w.begin(), w.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("_.,=/:+-").find(c) != std::string_view::npos;
  });
  if (plain) return w;
  std::string q = "'";
  for (char c : w) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

const char* SplitModeName(LlamaSplitMode m) {
  return m == LlamaSplitMode::kNone ? "none" : m == LlamaSplitMode::kRow ? "row" : "layer";
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

// llama_memory_hybrid (attention KV + recurrent R/S) as vramfit models it:
// attention-only or recurrent-only layers (not Falcon-H1's parallel ones),
// no sliding window (llama_memory_hybrid_iswa), no Kimi Delta Attention,
// and the tensors of a .gguf file (GgufMix does not name mixer tensors).
Status CheckHybrid(const Model& model, const InferenceWorkload& w) {
  const ModelSpec& s = model.spec;
  if (!IsHybridStack(s)) return {};
  const char* rt = "llamacpp";
  if (!FromGgufFile(model, w)) {
    return HybridRefusal(s, rt, "sizing a GGUF conversion of its mixer tensors (give the .gguf file)");
  }
  for (const LayerSpec& l : s.layers) {
    if (l.HasAttention() && l.HasRecurrent()) {
      return HybridRefusal(s, rt, "a layer with attention and a recurrent mixer in parallel");
    }
    if (l.recurrent == RecurrentKind::kKimiDelta) return HybridRefusal(s, rt, "llama.cpp's KDA state");
  }
  if (s.sliding_window > 0) return HybridRefusal(s, rt, "a sliding-window hybrid (llama_memory_hybrid_iswa)");
  return {};
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

int64_t Placement::TensorDev(size_t i, const Placed& t) const {
  return i < tensor_dev.size() ? tensor_dev[i] : OfSlot(t.slot);
}

// llama_model::load_tensors: splits[i] = -ts share i, or (all zero) the
// device's free memory; cumulative, normalised to 1.
std::vector<float> TensorSplit(const DeviceSet& devices, const std::vector<double>& shares) {
  const int64_t n_dev = std::max<int64_t>(1, static_cast<int64_t>(devices.size()));
  const size_t n = At(n_dev);
  bool all_zero = true;
  for (size_t d = 0; d < n && d < shares.size(); ++d) all_zero = all_zero && shares[d] == 0.0;
  std::vector<float> splits(n, 1.0f);
  for (size_t d = 0; d < n; ++d) {
    if (!all_zero) {
      splits[d] = d < shares.size() ? static_cast<float>(shares[d]) : 0.0f;
    } else if (d < devices.size()) {
      splits[d] = static_cast<float>(SplitMemory(devices.gpus[d]).value());
    }
  }
  float split_sum = 0.0f;
  for (float& x : splits) {
    split_sum += x;
    x = split_sum;
  }
  for (float& x : splits) x /= split_sum;
  return splits;
}

// common/arg.cpp (-sm, -ts, -mg) and llama_prepare_model_devices (main_gpu
// must name a device; -1 with -sm none = no GPU).
Status CheckSplit(const LlamaCppKnobs& k, int64_t n_gpus) {
  const LlamaSplitMode mode = k.split_mode.value_or(LlamaSplitMode::kLayer);
  if (mode == LlamaSplitMode::kRow) {
    return Unsupported(
        "--split-mode row: llama.cpp's row split (each matrix's rows in a CUDA_Split buffer over the GPUs, KV "
        "and compute on --main-gpu) is not modelled; use --split-mode layer or none");
  }
  if (k.main_gpu) VRAMFIT_TRY(Range("--main-gpu", *k.main_gpu, -1, n_gpus - 1));
  if (!k.tensor_split.empty()) {
    if (mode == LlamaSplitMode::kNone) {
      return InvalidArgument("--tensor-split: --split-mode none puts every offloaded layer on --main-gpu");
    }
    for (size_t d = At(n_gpus); d < k.tensor_split.size(); ++d) {
      if (k.tensor_split[d] != 0.0) {
        return InvalidArgument(fmt::format(
            "--tensor-split: {} shares for {} GPU(s) (--gpu); a share past the last GPU must be 0",
            k.tensor_split.size(), n_gpus));
      }
    }
  }
  return {};
}

// Slots i_gpu_start .. i_gpu_start + act - 1 go to the GPUs, slot il to the
// first GPU whose cumulative split exceeds (il - i_gpu_start) / act. Since
// PR #18148 -ngl N counts the output layer first. -sm none: the main GPU
// is the only device (llama_prepare_model_devices), -1 none.
Placement PlaceLayers(int64_t n_layer, const GpuLayers& ngl, int64_t build,
                      const DeviceSet& devices, const LlamaCppKnobs& k) {
  Placement p;
  p.n_dev = std::max<int64_t>(1, static_cast<int64_t>(devices.size()));
  std::vector<int64_t> devs;  // model->devices, as vramfit's GPU indices
  std::vector<float> splits;
  if (k.split_mode.value_or(LlamaSplitMode::kLayer) == LlamaSplitMode::kNone) {
    const int64_t main = k.main_gpu.value_or(0);
    if (main >= 0) devs.push_back(std::min(main, p.n_dev - 1));
    splits.assign(devs.size(), 1.0f);
  } else {
    for (int64_t d = 0; d < p.n_dev; ++d) devs.push_back(d);
    splits = TensorSplit(devices, k.tensor_split);
  }
  p.used.assign(At(p.n_dev), false);
  for (int64_t d : devs) p.used[At(d)] = true;
  p.offload_dev = devs.empty() ? -1 : devs[0];
  const bool output_first = build >= lb::kOutputFirst;
  const int64_t i_gpu_start =
      std::max<int64_t>(output_first ? n_layer + 1 - ngl.ngl : n_layer - ngl.ngl, 0);
  const int64_t act = devs.empty() ? 0 : std::min(ngl.ngl, n_layer + 1);
  p.dev_of.assign(At(n_layer + 1), -1);
  for (int64_t il = 0; il <= n_layer; ++il) {
    if (il < i_gpu_start || il - i_gpu_start >= act) continue;
    const float f = static_cast<float>(il - i_gpu_start) / static_cast<float>(act);
    const int64_t d = std::upper_bound(splits.begin(), splits.end(), f) - splits.begin();
    p.dev_of[At(il)] = devs[At(std::min<int64_t>(d, static_cast<int64_t>(devs.size()) - 1))];
    ++p.offloaded;
  }
  p.out_dev = p.dev_of[At(n_layer)];
  p.attn_dev.assign(p.dev_of.begin(), p.dev_of.end() - 1);
  p.ffn_dev = p.attn_dev;
  p.head_dev = p.out_dev;
  p.tied_dev = p.out_dev >= 0 ? p.out_dev : -2;
  return p;
}

// --- Tensor overrides.

std::string BlockExpsRegex(int64_t il) { return fmt::format("blk\\.{}{}", il, kExpsRegex); }

namespace {

// The buffer types -ot names (parse_tensor_buffer_overrides: each device's
// default buffer type, "CPU" and "CUDA0".."CUDA<n-1>"), -1 the CPU.
std::optional<int64_t> BufferDevice(std::string_view buft, int64_t n_gpus) {
  if (buft == "CPU") return -1;
  if (buft.size() < 5 || buft.substr(0, 4) != "CUDA") return std::nullopt;
  int64_t d = 0;
  for (char c : buft.substr(4)) {
    if (c < '0' || c > '9' || d > 1000) return std::nullopt;
    d = d * 10 + (c - '0');
  }
  if (buft.size() > 5 && buft[4] == '0') return std::nullopt;  // "CUDA01" is not a device's name
  if (d >= n_gpus) return std::nullopt;
  return d;
}

// Longer patterns are refused before std::regex compiles them (its
// recursive compiler is the only thing a hostile pattern could exhaust).
constexpr size_t kMaxPattern = 1024;

std::string BufferList(int64_t n_gpus) {
  std::string s = "CPU";
  for (int64_t d = 0; d < n_gpus; ++d) s += fmt::format(", CUDA{}", d);
  return s;
}

}  // namespace

Result<std::vector<TensorOverride>> Overrides(const ModelSpec& s, const LlamaCppKnobs& k, int64_t n_gpus) {
  std::vector<TensorOverride> out;
  for (const std::string& value : k.override_tensor) {
    // string_split(value, ','): each piece one REGEX=BUFTYPE.
    size_t start = 0;
    while (start <= value.size()) {
      const size_t comma = std::min(value.find(',', start), value.size());
      const std::string piece = value.substr(start, comma - start);
      const bool last = comma == value.size();
      start = comma + 1;
      if (piece.empty() && last && !value.empty()) break;  // "a=CPU,": getline yields no last piece
      const size_t eq = piece.find('=');
      if (eq == std::string::npos) {
        return InvalidArgument(fmt::format(
            "--override-tensor: expected REGEX=BUFTYPE (such as exps=CPU), got '{}'", piece));
      }
      TensorOverride o;
      o.pattern = piece.substr(0, eq);
      o.source = fmt::format("--override-tensor {}", piece);
      const std::string buft = piece.substr(eq + 1);
      const auto dev = BufferDevice(buft, n_gpus);
      if (!dev) {
        return InvalidArgument(fmt::format("--override-tensor {}: buffer type '{}' is not one of {}", piece,
                                           buft, BufferList(n_gpus)));
      }
      o.dev = *dev;
      if (o.pattern.size() > kMaxPattern) {
        return InvalidArgument(fmt::format("--override-tensor: a pattern of {} characters (at most {})",
                                           o.pattern.size(), kMaxPattern));
      }
      try {
        const std::regex re(o.pattern);
      } catch (const std::regex_error& e) {
        return InvalidArgument(
            fmt::format("--override-tensor {}: '{}' is not a regular expression ({})", piece, o.pattern, e.what()));
      }
      out.push_back(std::move(o));
    }
  }
  const int64_t n_cpu_moe = k.n_cpu_moe.value_or(0);
  if (n_cpu_moe < 0) {
    return InvalidArgument(fmt::format("--n-cpu-moe: expected 0 or more layers, got {}", n_cpu_moe));
  }
  if ((n_cpu_moe > 0 || k.cpu_moe) && s.num_experts <= 0) {
    return Unsupported(fmt::format(
        "--{}: {} is a dense model with no expert tensors (ffn_*_exps) to keep in host memory; --gpu-layers N "
        "places whole layers",
        n_cpu_moe > 0 ? "n-cpu-moe" : "cpu-moe", s.id));
  }
  // llm_add_n_cpu_ffn_overrides: blk.<i> + LLM_FFN_EXPS_REGEX for i < N
  // (blocks past the model's last match nothing).
  for (int64_t il = 0; il < std::min(n_cpu_moe, s.num_hidden_layers); ++il) {
    out.push_back({BlockExpsRegex(il), -1, fmt::format("--n-cpu-moe {}", n_cpu_moe)});
  }
  if (k.cpu_moe) out.push_back({kExpsRegex, -1, "--cpu-moe"});  // llm_ffn_exps_cpu_override
  return out;
}

Status PlaceTensors(const ModelSpec& s, const GgufFile& f, const std::vector<TensorOverride>& ov,
                    Placement* p) {
  std::vector<std::regex> res;
  for (const TensorOverride& o : ov) {
    try {
      res.emplace_back(o.pattern);
    } catch (const std::regex_error&) {
      return InvalidArgument(fmt::format("{}: '{}' is not a regular expression", o.source, o.pattern));
    }
  }
  std::vector<bool> matched(ov.size()), won(ov.size());
  const auto is_ot = [&](size_t j) { return ov[j].source.rfind("--override-tensor", 0) == 0; };
  // The buffer of a tensor named `name` whose layer's default device is
  // `dev`: the first override that matches (load_tensors' create_tensor).
  const auto device_of = [&](const std::string& name, int64_t dev) -> Result<int64_t> {
    std::optional<size_t> first, first_ot, first_moe;
    for (size_t j = 0; j < ov.size(); ++j) {
      if (!std::regex_search(name, res[j])) continue;
      matched[j] = true;
      if (!first) first = j;
      auto& slot = is_ot(j) ? first_ot : first_moe;
      if (!slot) slot = j;
    }
    if (first_ot && first_moe && ov[*first_ot].dev != ov[*first_moe].dev) {
      return InvalidArgument(fmt::format(
          "{} and {} both place {}: llama.cpp takes the one first on its command line; give one of them",
          ov[*first_ot].source, ov[*first_moe].source, name));
    }
    if (!first) return dev;
    won[*first] = true;
    return ov[*first].dev;
  };
  p->tensor_dev.assign(f.tensors.size(), -1);
  int64_t embd_dev = -1;
  const int64_t n_layer = s.num_hidden_layers;
  std::vector<Bytes> attn_best(At(n_layer)), ffn_best(At(n_layer));
  std::vector<int> ffn_rank(At(n_layer), 0);  // 2: routed experts, 1: a dense FFN
  for (size_t i = 0; i < f.tensors.size(); ++i) {
    const Placed& t = f.tensors[i];
    if (t.slot == -2) continue;  // not loaded (TENSOR_SKIP)
    auto dev = device_of(t.name, p->OfSlot(t.slot));
    if (!dev.ok()) return dev.error();
    p->tensor_dev[i] = *dev;
    if (t.name == "token_embd.weight") embd_dev = *dev;
    if (t.name == "output.weight") p->head_dev = *dev;
    if (t.slot < 0 || t.slot >= n_layer) continue;
    const size_t il = At(t.slot);
    if (t.role == Role::kAttention && t.bytes > attn_best[il]) {
      attn_best[il] = t.bytes;
      p->attn_dev[il] = *dev;
    }
    const int rank = t.role == Role::kExperts ? 2 : t.role == Role::kMlp ? 1 : 0;
    if (rank > 0 && (rank > ffn_rank[il] || (rank == ffn_rank[il] && t.bytes > ffn_best[il]))) {
      ffn_rank[il] = rank;
      ffn_best[il] = t.bytes;
      p->ffn_dev[il] = *dev;
    }
  }
  if (!f.has_output && f.token_embd_bytes.value() > 0) {
    // The tied head is token_embd created again as the output layer
    // (TENSOR_DUPLICATED, same name): a second copy only where its buffer
    // differs from the input layer's.
    auto dup = device_of("token_embd.weight", p->out_dev);
    if (!dup.ok()) return dup.error();
    p->head_dev = *dup;
    p->tied_dev = *dup != embd_dev ? *dup : -2;
  }
  for (size_t j = 0; j < ov.size(); ++j) {
    if (!is_ot(j)) continue;
    if (!matched[j]) {
      return InvalidArgument(fmt::format(
          "{}: '{}' matches no tensor of this model (GGUF names such as blk.0.attn_q.weight, "
          "blk.0.ffn_up_exps.weight)",
          ov[j].source, ov[j].pattern));
    }
    if (!won[j]) {
      return InvalidArgument(fmt::format(
          "{}: every tensor it matches is placed by an earlier override; it changes nothing", ov[j].source));
    }
  }
  return {};
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
  for (size_t i = 0; i < f.tensors.size(); ++i) {
    const Placed& t = f.tensors[i];
    if (t.slot != -2) add(p.TensorDev(i, t), t.role, t.bytes, Name(t.type));
  }
  if (!f.has_output && p.tied_dev != -2 && f.token_embd_bytes.value() > 0) {
    add(p.tied_dev, Role::kLmHead, f.token_embd_bytes,
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
    // Hybrids: only the attention layers have K/V (llama_memory_hybrid's
    // filter_attn); recurrent and MLP-only layers have none.
    if (!s.layers[At(il)].HasAttention()) continue;
    const size_t d = At(p.dev_of[At(il)] + 1);
    const int64_t cells = CheckedMul(LayerCells(s, c, il), c.n_stream);
    kb[d] += Bytes(CheckedMul(kv.k_row, cells));
    vb[d] += Bytes(CheckedMul(kv.v_row, cells));
    (LayerCells(s, c, il) == c.cells ? full : swa)[d] += 1;
  }
  kv.per_token = Bytes(CheckedMul(kv.k_row + kv.v_row, AttentionLayerCount(s)));
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

// --- Recurrent state.

namespace {

// "10 layers x 4 rows x 4096 x f32".
std::string RsFormula(int64_t layers, int64_t rows, int64_t width) {
  return Formula("{} layers x {} rows x {} x f32", layers, rows, width);
}

}  // namespace

RecurrentState RsByDevice(const ModelSpec& s, const Cells& c, const Placement& p) {
  RecurrentState rs;
  // mem_size = max(1, n_seq_max) cells, each (1 + n_rs_seq) rows; n_rs_seq
  // is 0 unless speculative decoding asks for rollback snapshots.
  rs.rows = std::max<int64_t>(1, c.n_seq);
  const size_t n = At(p.n_dev + 1);
  std::vector<Bytes> rb(n), sb(n);
  std::vector<int64_t> layers(n);
  for (int64_t il = 0; il < s.num_hidden_layers; ++il) {
    const LayerSpec& l = s.layers[At(il)];
    if (!l.HasRecurrent()) continue;  // filter_recr
    const StateElements e = RecurrentStateElements(s, l, ConvWindow::kKernelMinus1);
    rs.r_row = e.conv;
    rs.s_row = e.ssm;
    const size_t d = At(p.dev_of[At(il)] + 1);  // offload_kqv: the layer's device
    rb[d] += Bytes(CheckedMul(CheckedMul(e.conv, rs.rows), kF));
    sb[d] += Bytes(CheckedMul(CheckedMul(e.ssm, rs.rows), kF));
    layers[d] += 1;
    rs.per_sequence += Bytes(CheckedMul(CheckedAdd(e.conv, e.ssm), kF));
  }
  for (size_t d = 0; d < n; ++d) {
    std::vector<Component> children;
    if (layers[d] > 0) {
      children.push_back(Leaf("R (conv state, f32)", rb[d], RsFormula(layers[d], rs.rows, rs.r_row)));
      if (rs.s_row > 0) {
        children.push_back(Leaf("S (ssm state, f32)", sb[d], RsFormula(layers[d], rs.rows, rs.s_row)));
      }
    }
    rs.by_device.push_back(Parent("recurrent_state", std::move(children)));
  }
  return rs;
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
  for (size_t i = 0; i < f.tensors.size(); ++i) {
    const Placed& t = f.tensors[i];
    if (p.TensorDev(i, t) >= 0 || t.slot < 0 || t.rows <= 1) continue;
    const int64_t used = t.experts > 1 ? s.num_experts_per_tok : 1;
    const Bytes act_b = Bytes(CheckedMul(CheckedMul(2 * t.ne0 + t.rows * used, T), kF));
    Keep(stage, {"staged host weight", t.bytes + act_b,
                 Formula("{} {} + its input/output x {} tok", t.name, Name(t.type), T)});
  }
  if (p.head_dev < 0 && !f.has_output && f.token_embd_bytes.value() > 0) {
    // Tied head on the host: the output matmul stages token_embd.
    Keep(stage, {"staged host weight", f.token_embd_bytes + out.bytes,
                 Formula("token_embd (tied output) + {}", out.formula)});
  } else if (p.head_dev < 0) {
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

namespace {

// The device a block's op runs on: its weights' GPU, else (host weights)
// the op-offload GPU when the ubatch is large enough, else the CPU (-1).
int64_t RunDevice(int64_t weight_dev, const Placement& p, bool op_offload) {
  if (weight_dev >= 0) return weight_dev;
  return op_offload ? p.offload_dev : -1;
}

}  // namespace

std::vector<Term> GpuComputeTerms(const ModelSpec& s, const AttnShape& a, const Cells& c, bool fa,
                                  const KvCache& kv, const Placement& p, const GgufFile& f) {
  const int64_t T = c.tokens;
  const bool op_offload = OpOffload(T) && p.offload_dev >= 0;
  std::vector<Term> compute(At(p.n_dev), Term{"none", Bytes(0), ""});
  for (int64_t il = 0; il < s.num_hidden_layers; ++il) {
    const int64_t n_kv = LayerCells(s, c, il);
    const LayerSpec& l = s.layers[At(il)];
    const int64_t kv_dev = p.dev_of[At(il)];  // offload_kqv: the KV sits on the block's device
    const int64_t da = RunDevice(p.attn_dev[At(il)], p, op_offload);
    if (l.HasAttention() && da >= 0) {
      Term at = AttentionTerm(a, s.hidden_size, fa, n_kv, T);
      if (da != kv_dev) {
        // The KV of another device is copied in as a split input.
        at.bytes += Bytes(CheckedMul(kv.k_row + kv.v_row, CheckedMul(n_kv, c.n_stream)));
        if (FormulasOn()) at.formula += kv_dev < 0 ? " + host KV copied in" : " + KV copied in";
      }
      Keep(compute[At(da)], std::move(at));
    }
    const int64_t df = RunDevice(p.ffn_dev[At(il)], p, op_offload);
    if (l.mlp && df >= 0) Keep(compute[At(df)], FfnTerm(s, l.moe, T));
  }
  const Term out = OutputTerm(s, T);
  if (p.head_dev >= 0) Keep(compute[At(p.head_dev)], out);
  if (op_offload) Keep(compute[At(p.offload_dev)], StagedHostWeight(s, f, p, out, T));
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
  if (!OpOffload(T) || p.offload_dev < 0) {
    // Ops whose weights are in host memory run on the CPU.
    for (int64_t il = 0; il < s.num_hidden_layers; ++il) {
      const LayerSpec& l = s.layers[At(il)];
      if (l.HasAttention() && p.attn_dev[At(il)] < 0) {
        Keep(host_layers, AttentionTerm(a, h, fa, LayerCells(s, c, il), T));
      }
      if (l.mlp && p.ffn_dev[At(il)] < 0) Keep(host_layers, FfnTerm(s, l.moe, T));
    }
    if (p.head_dev < 0) Keep(host_layers, OutputTerm(s, T));
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
  const bool op_offload = OpOffload(T) && p.offload_dev >= 0;
  const bool quantized_kv =
      Info(*k.cache_type_k).block_elems > 1 || Info(*k.cache_type_v).block_elems > 1;
  Term best{"", Bytes(0), ""};
  for (int64_t il = 0; il < s.num_hidden_layers; ++il) {
    const int64_t d = RunDevice(p.attn_dev[At(il)], p, op_offload);
    if (d != dev || !s.layers[At(il)].HasAttention()) continue;
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
  if (k.n_cpu_moe) echo.push_back({"n_cpu_moe", *k.n_cpu_moe});
  if (k.cpu_moe) echo.push_back({"cpu_moe", true});
  if (!k.override_tensor.empty()) {
    echo.push_back({"override_tensor", fmt::format("{}", fmt::join(k.override_tensor, ","))});
  }
  if (!k.tensor_split.empty()) echo.push_back({"tensor_split", SharesText(k.tensor_split)});
  if (k.split_mode) echo.push_back({"split_mode", std::string(SplitModeName(*k.split_mode))});
  if (k.main_gpu) echo.push_back({"main_gpu", *k.main_gpu});
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
  std::vector<std::string> paired = PairFlags(flags);
  // Placement, each flag with its value (a value may start with '-').
  if (k.n_cpu_moe) paired.push_back(fmt::format("--n-cpu-moe {}", *k.n_cpu_moe));
  if (k.cpu_moe) paired.push_back("--cpu-moe");
  for (const std::string& ot : k.override_tensor) paired.push_back("-ot " + ShellWord(ot));
  const bool none = k.split_mode == LlamaSplitMode::kNone;
  if (k.split_mode) paired.push_back(fmt::format("-sm {}", SplitModeName(*k.split_mode)));
  if (k.main_gpu) paired.push_back(fmt::format("-mg {}", *k.main_gpu));
  if (!k.tensor_split.empty()) {
    paired.push_back("-ts " + SharesText(k.tensor_split));
  } else if (devices.size() > 1 && !none) {
    std::string ts;
    for (const GpuSpec& g : devices.gpus) {
      ts += fmt::format("{}{}", ts.empty() ? "" : ",", (SplitMemory(g).value() + kGiB / 2) / kGiB);
    }
    paired.push_back("-ts " + ts);
  }
  return paired;
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

// Hybrid and recurrent stacks: the state buffer, and the compute buffer's
// unmodelled mixer temporaries.
void RecurrentNotes(const ModelSpec& s, const Cells& c, std::vector<std::string>& notes) {
  if (!HasRecurrentLayers(s)) return;
  notes.push_back(fmt::format(
      "recurrent_state: {} {} layers keep a conv state (R) and an ssm state (S) of kernel - 1 columns "
      "in f32 (llama_memory_recurrent: -ctk/-ctv apply to the {} attention layers' KV only), one row per "
      "sequence: {} rows for -np {}",
      RecurrentLayerCount(s), RecurrentName(ModelRecurrentKind(s)), AttentionLayerCount(s),
      std::max<int64_t>(1, c.n_seq), c.n_seq));
  notes.push_back(
      "compute_buffer is a lower bound for this model: the recurrent layers' graph temporaries "
      "(ssm_conv / ssm_scan / gated delta net chunks) are not modelled; only its attention, FFN and "
      "output terms are counted");
}

// Tensors the overrides moved off their layer's device: how many, their
// bytes, and where their matmuls run.
void OverrideNotes(const LlamaCppKnobs& k, const Cells& c, const Placement& p, const GgufFile& f,
                   std::vector<std::string>& notes) {
  if (p.tensor_dev.empty()) return;
  int64_t to_host = 0, to_gpu = 0;
  Bytes host_b, gpu_b;
  for (size_t i = 0; i < f.tensors.size(); ++i) {
    const Placed& t = f.tensors[i];
    if (t.slot == -2) continue;
    const int64_t dev = p.TensorDev(i, t), slot_dev = p.OfSlot(t.slot);
    if (dev == slot_dev) continue;
    (dev < 0 ? to_host : to_gpu) += 1;
    (dev < 0 ? host_b : gpu_b) += t.bytes;
  }
  if (to_host + to_gpu == 0) return;
  std::string flags;
  if (k.n_cpu_moe) flags += fmt::format("--n-cpu-moe {}", *k.n_cpu_moe);
  if (k.cpu_moe) flags += std::string(flags.empty() ? "" : ", ") + "--cpu-moe";
  if (!k.override_tensor.empty()) flags += std::string(flags.empty() ? "" : ", ") + "--override-tensor";
  std::string moved;
  if (to_host > 0) {
    moved = fmt::format("{} tensors ({:.2f} GiB) kept in host memory", to_host,
                        static_cast<double>(host_b.value()) / kGiB);
  }
  if (to_gpu > 0) {
    moved += fmt::format("{}{} tensors ({:.2f} GiB) moved onto a GPU", moved.empty() ? "" : "; ", to_gpu,
                         static_cast<double>(gpu_b.value()) / kGiB);
  }
  const bool offload = OpOffload(c.tokens) && p.offload_dev >= 0;
  notes.push_back(fmt::format(
      "{}: {} (buffer-type overrides, first match wins); {}", flags, moved,
      to_host == 0 ? std::string("their ops run where their weights are")
      : offload
          ? fmt::format("at ubatch {} (>= 32) the host tensors' matmuls run on gpu{} (op offload), which stages the "
                        "largest in its compute buffer; decode (1 token) runs them on the CPU",
                        c.tokens, p.offload_dev)
          : fmt::format("at ubatch {} (< 32) their ops run on the CPU, in the host compute buffer", c.tokens)));
}

}  // namespace

std::vector<std::string> Notes(const ModelSpec& s, const LlamaCppKnobs& k, const Cells& c,
                               const GpuLayers& ngl, const Placement& p, const GgufFile& f,
                               const AttnShape& a) {
  const int64_t n_layer = s.num_hidden_layers;
  std::vector<std::string> notes;
  WeightNotes(f, notes);
  notes.push_back(fmt::format(
      "modelled: mainline llama.cpp b{} (--llamacpp-build N models another release), split-mode {}, "
      "mmap on, op offload on, settings as given (--fit off)",
      *k.build, SplitModeName(k.split_mode.value_or(LlamaSplitMode::kLayer))));
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
  RecurrentNotes(s, c, notes);
  if (p.n_dev > 1 && k.split_mode == LlamaSplitMode::kNone) {
    notes.push_back(p.offload_dev >= 0
                        ? fmt::format("--split-mode none: every offloaded layer on gpu{} (--main-gpu); the other "
                                      "GPUs hold nothing",
                                      p.offload_dev)
                        : "--split-mode none with --main-gpu -1: no GPU is used; every layer runs on the CPU");
  } else if (p.n_dev > 1 && !k.tensor_split.empty()) {
    notes.push_back(fmt::format("layers split over the GPUs by --tensor-split {} (cumulative shares, as "
                                "llama_model::load_tensors)",
                                SharesText(k.tensor_split)));
  } else if (p.n_dev > 1) {
    notes.push_back(
        "layers split over the GPUs in proportion to their memory, as llama.cpp's default --tensor-split "
        "does with the free memory at load (other processes change the split)");
  } else if (!k.tensor_split.empty()) {
    notes.push_back("--tensor-split: one GPU takes every offloaded layer, whatever the shares");
  }
  if (k.main_gpu && k.split_mode.value_or(LlamaSplitMode::kLayer) == LlamaSplitMode::kLayer) {
    notes.push_back(fmt::format(
        "--main-gpu {}: llama.cpp reads it with --split-mode none (and row); with layer it changes nothing",
        *k.main_gpu));
  }
  OverrideNotes(k, c, p, f, notes);
  if (p.offloaded < n_layer + 1 && OpOffload(c.tokens) && p.offload_dev >= 0) {
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
                            Component rs, const Term& compute, const Term& pool, const Cells& c,
                            bool fa, bool used) {
  DeviceEstimate de;
  de.name = "gpu" + std::to_string(d);
  if (d < static_cast<int64_t>(devices.size())) de.gpu = devices.gpus[At(d)];
  de.peak_phase = "load";
  std::vector<Component> comps;
  comps.push_back(std::move(weights));
  comps.push_back(std::move(kv));
  if (!rs.children.empty()) comps.push_back(std::move(rs));
  std::vector<Component> cc;
  if (compute.bytes.value() > 0) cc.push_back(Leaf(compute.name, compute.bytes, compute.formula));
  comps.push_back(Parent("compute_buffer", std::move(cc),
                         Formula("ubatch {} tok, {} KV cells, flash attention {}", c.tokens, c.cells,
                                 fa ? "on" : "off")));
  std::vector<Component> ctx;
  // A GPU llama.cpp does not load (--split-mode none) gets no backend, so no context.
  if (used) ctx.push_back(Leaf("CUDA context + cuBLAS", MiB(kCudaContextMiB), "per process and GPU (assumed)"));
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
  Placement p = PlaceLayers(n_layer, ngl, *k.build, devices, k);
  auto overrides = Overrides(s, k, p.n_dev);
  if (!overrides.ok()) return overrides.error();
  if (!overrides->empty()) VRAMFIT_TRY(PlaceTensors(s, f, *overrides, &p));
  std::vector<Component> weights = WeightsByDevice(f, p);
  KvCache kv = KvByDevice(s, a, cells, k, p);
  e.kv_bytes_per_token = kv.per_token;
  RecurrentState rs = RsByDevice(s, cells, p);
  e.state_bytes_per_sequence = rs.per_sequence;
  const std::vector<Term> compute = GpuComputeTerms(s, a, cells, *k.flash_attn, kv, p, f);
  for (int64_t d = 0; d < p.n_dev; ++d) {
    const size_t i = static_cast<size_t>(d);
    e.devices.push_back(GpuBreakdown(d, devices, std::move(weights[i + 1]), std::move(kv.by_device[i + 1]),
                                     std::move(rs.by_device[i + 1]), compute[i],
                                     CudaPoolTerm(s, a, cells, k, p, d), cells, *k.flash_attn,
                                     p.used[i]));
  }
  if (!weights[0].children.empty()) e.host.push_back(std::move(weights[0]));
  if (!kv.by_device[0].children.empty()) e.host.push_back(std::move(kv.by_device[0]));
  if (!rs.by_device[0].children.empty()) e.host.push_back(std::move(rs.by_device[0]));
  e.host.push_back(HostComputeBuffer(s, a, cells, *k.flash_attn, p));
  e.host.push_back(OutputBuffer(s.vocab_size, cells.n_seq));
  e.workload = EchoOf(k, cells, ngl, p, f, n_layer);
  if (AttentionLayerCount(s) == 0) {  // a recurrent-only model has no KV cells (no llama_kv_cache)
    std::erase_if(e.workload, [](const auto& kv) { return kv.first == "kv_cells"; });
  }
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
        "gpu-layers", "parallel", "llamacpp-build", "host-mem-bw", "n-cpu-moe", "cpu-moe",
        "override-tensor", "tensor-split", "split-mode", "main-gpu"};
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
    VRAMFIT_TRY(llamacpp::CheckHybrid(model, *w));
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
    VRAMFIT_TRY(llamacpp::ResolveKnobs(model, w));
    // Placement: the split against the GPUs, the overrides' syntax and
    // buffer types (their matches are checked against the file's tensors
    // when the estimate places them).
    const int64_t n_gpus = std::max<int64_t>(1, n);
    VRAMFIT_TRY(llamacpp::CheckSplit(w->llamacpp, n_gpus));
    auto ov = llamacpp::Overrides(model.spec, w->llamacpp, n_gpus);
    if (!ov.ok()) return ov.error();
    return {};
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
