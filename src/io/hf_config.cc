// config.json -> ModelSpec, per model_type.
//
// Sources for each family's tensor layout and defaults are the transformers
// modeling_*.py / configuration_*.py files named in docs/estimation.md
// ("Parameter inventory"). Key aliases (n_embd, n_layer, ...) follow each
// configuration class's attribute_map.
#include "vramfit/io/hf_config.h"

#include <algorithm>
#include <functional>
#include <initializer_list>
#include <map>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "quant_config.h"
#include "spec_limits.h"
#include "vramfit/io/json_util.h"

namespace vramfit {
namespace {

using io::Json;

using io::IntRange;
using io::kMaxDim;
using io::kMaxExperts;
using io::kMaxLayers;
using io::kMaxPositions;

// Accepted values of the config.json integers, by what they count. Each key
// is checked as it is read, so nothing is allocated or multiplied from an
// out-of-range value (caps: spec_limits.h; docs/formats.md §1.4).
constexpr IntRange kWidth{1, kMaxDim};            // a width, head count or rank that must be set
constexpr IntRange kWidthOrNone{0, kMaxDim};      // 0: none, or derived from other keys
constexpr IntRange kLayerStep{1, kMaxLayers};     // every n-th layer
constexpr IntRange kLayerCount{0, kMaxLayers};    // a number of (leading, extra) layers
constexpr IntRange kExpertCount{0, kMaxExperts};
constexpr IntRange kPositions{0, kMaxPositions};  // context length, sliding window
constexpr IntRange kNorms{1, io::kMaxNormsPerLayer};
constexpr IntRange kQuantBits{1, io::kMaxQuantBits};
constexpr IntRange kQuantGroup{-1, kMaxDim};      // -1: one group per output channel

// Reads typed keys from one JSON object, remembering the first error so the
// family mappings read as plain assignments.
class Reader {
 public:
  Reader(const Json& obj, std::string where) : obj_(obj), where_(std::move(where)) {}

  bool Has(std::string_view key) const {
    auto it = obj_.find(std::string(key));
    return it != obj_.end() && !it->is_null();
  }
  const Json& obj() const { return obj_; }
  const std::string& where() const { return where_; }

  // First present key among aliases, as an integer in `range`; else nullopt
  // (absent, or an error was recorded). An out-of-range value fails with
  // "<where>: <key> = <v>: must be between <lo> and <hi>", naming the key read.
  std::optional<int64_t> Int(std::initializer_list<std::string_view> keys, IntRange range) {
    auto kv = Find(keys);
    if (!kv) return std::nullopt;
    if (!range.Contains(kv->second)) {
      Fail(io::OutOfRange(where_, kv->first, kv->second, range));
      return std::nullopt;
    }
    return kv->second;
  }
  int64_t Int(std::initializer_list<std::string_view> keys, int64_t dflt, IntRange range) {
    return Int(keys, range).value_or(dflt);
  }
  // A key that must be present, positive and at most `max`. Returns 1 after
  // any error, so a count read here can size an allocation whatever the input.
  int64_t Required(std::initializer_list<std::string_view> keys, int64_t max) {
    auto kv = Find(keys);
    if (!kv) {
      Fail(Corrupt(fmt::format("{}: required key '{}' is missing", where_, *keys.begin())));
      return 1;
    }
    if (kv->second <= 0) {
      Fail(Corrupt(fmt::format("{}: key '{}': expected a positive integer, got {}", where_,
                               *keys.begin(), kv->second)));
      return 1;
    }
    if (kv->second > max) {
      Fail(io::OutOfRange(where_, kv->first, kv->second, {1, max}));
      return 1;
    }
    return kv->second;
  }
  std::optional<bool> Bool(std::string_view key) {
    auto r = io::GetBool(obj_, key, where_);
    if (!r.ok()) { Fail(r.error()); return std::nullopt; }
    return *r;
  }
  bool Bool(std::string_view key, bool dflt) { return Bool(key).value_or(dflt); }
  std::optional<std::string> String(std::string_view key) {
    auto r = io::GetString(obj_, key, where_);
    if (!r.ok()) { Fail(r.error()); return std::nullopt; }
    return *r;
  }
  void Fail(Error e) {
    if (!error_) error_ = std::move(e);
  }
  const std::optional<Error>& error() const { return error_; }

 private:
  // The first present key among aliases and its 64-bit value; nullopt when
  // none is present or a value is not an integer (then the error is kept).
  std::optional<std::pair<std::string_view, int64_t>> Find(
      std::initializer_list<std::string_view> keys) {
    for (std::string_view k : keys) {
      auto r = io::GetInt(obj_, k, where_);
      if (!r.ok()) { Fail(r.error()); return std::nullopt; }
      if (r->has_value()) return std::make_pair(k, **r);
    }
    return std::nullopt;
  }

  const Json& obj_;
  std::string where_;
  std::optional<Error> error_;
};

const std::vector<std::string> kSupported = {
    "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "gemma",
    "gemma2", "gemma3", "gemma3_text", "phi", "phi3", "phimoe", "deepseek_v2", "deepseek_v3",
    "gpt_oss", "falcon", "gpt2", "opt", "bloom", "gpt_neox", "gpt_bigcode", "mpt", "cohere",
    "olmo2", "granite", "starcoder2", "yi", "internlm2", "bert", "roberta", "xlm-roberta",
    "camembert", "electra", "albert", "deberta-v2", "modernbert", "t5", "mt5", "bart",
    "qwen3_next", "nemotron_h", "granitemoehybrid", "lfm2", "mamba", "mamba2"};

// transformers' default tie_word_embeddings per configuration class.
bool DefaultTie(const std::string& t) {
  static const std::set<std::string> kTied = {"gemma", "gemma2", "gemma3", "gemma3_text",
                                              "cohere", "falcon", "gpt2", "opt", "bloom",
                                              "gpt_bigcode", "mpt", "starcoder2",
                                              "mamba",  // MambaConfig (Mamba2Config: False)
                                              "lfm2",   // Lfm2Config
                                              // encoders and T5 v1.0 / BART (PretrainedConfig default)
                                              "bert", "roberta", "xlm-roberta", "camembert", "electra",
                                              "albert", "deberta-v2", "modernbert", "t5", "bart"};
  return kTied.count(t) > 0;
}

// Fields shared by Llama-style configs (hidden_size, heads, head_dim...).
void ReadLlamaCore(Reader& r, ModelSpec& s) {
  s.hidden_size = r.Required({"hidden_size"}, kMaxDim);
  s.num_hidden_layers = r.Required({"num_hidden_layers"}, kMaxLayers);
  s.num_attention_heads = r.Required({"num_attention_heads"}, kMaxDim);
  s.num_key_value_heads = r.Int({"num_key_value_heads"}, s.num_attention_heads, kWidth);
  s.vocab_size = r.Required({"vocab_size"}, kMaxDim);
  s.max_position_embeddings = r.Int({"max_position_embeddings"}, 0, kPositions);
  s.head_dim = r.Int({"head_dim"}, 0, kWidthOrNone);
  if (s.head_dim == 0 && s.num_attention_heads > 0) {
    s.head_dim = s.hidden_size / s.num_attention_heads;
  }
  s.v_head_dim = s.head_dim;
  if (r.Has("intermediate_size")) s.intermediate_size = r.Required({"intermediate_size"}, kMaxDim);
  s.norm_kind = NormKind::kRms;
  s.norms_per_layer = 2;
  s.mlp_kind = MlpKind::kGated;
}

// One LayerSpec per decoder layer. num_hidden_layers comes from
// Reader::Required, so it is 1..kMaxLayers even after an error.
void InitLayers(ModelSpec& s) { s.layers.assign(static_cast<size_t>(s.num_hidden_layers), {}); }

void SetAllAttentionBias(ModelSpec& s, bool b) { s.q_bias = s.k_bias = s.v_bias = s.o_bias = b; }

// Layer types from "layer_types" when present: "sliding_attention" /
// "full_attention" (transformers >= 4.53 convention).
void ReadLayerTypes(Reader& r, ModelSpec& s) {
  auto it = r.obj().find("layer_types");
  if (it == r.obj().end() || it->is_null()) return;
  if (!it->is_array() || static_cast<int64_t>(it->size()) != s.num_hidden_layers) {
    r.Fail(Corrupt(fmt::format("{}: key 'layer_types': expected a list of {} entries", r.where(),
                               s.num_hidden_layers)));
    return;
  }
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& v = (*it)[i];
    if (!v.is_string()) {
      r.Fail(Corrupt(fmt::format("{}: key 'layer_types'[{}]: expected a string, got {}",
                                 r.where(), i, io::Preview(v))));
      return;
    }
    const std::string t = v.get<std::string>();
    s.layers[i].attention = (t == "sliding_attention" || t == "chunked_attention")
                                ? LayerAttention::kSliding
                                : LayerAttention::kFull;
  }
}

// sliding_window applied to every layer (Mistral v0.1, Phi-3, Starcoder2)
// unless use_sliding_window is false (Qwen2/Qwen3 ship a window but disable it).
void ReadUniformSlidingWindow(Reader& r, ModelSpec& s) {
  auto w = r.Int({"sliding_window"}, kPositions);
  const bool use = r.Bool("use_sliding_window", true);
  if (w && *w > 0 && use) {
    s.sliding_window = *w;
    for (LayerSpec& l : s.layers) l.attention = LayerAttention::kSliding;
  }
}

void ReadQuantConfig(Reader& r, ModelSpec& s, std::vector<std::string>* notes) {
  auto it = r.obj().find("quantization_config");
  if (it == r.obj().end() || it->is_null()) return;
  if (!it->is_object()) {
    r.Fail(Corrupt(fmt::format("{}: key 'quantization_config': expected an object", r.where())));
    return;
  }
  Reader q(*it, r.where() + ": quantization_config");
  CheckpointQuant c;
  c.method = q.String("quant_method").value_or("");
  if (c.method == "fp8") {
    c.bits = 8;
    auto b = it->find("weight_block_size");
    if (b != it->end() && b->is_array() && b->size() == 2 && (*b)[0].is_number_integer() &&
        (*b)[1].is_number_integer()) {
      c.block_rows = (*b)[0].get<int64_t>();
      c.block_cols = (*b)[1].get<int64_t>();
      if (c.block_rows <= 0 || c.block_cols <= 0) c.block_rows = c.block_cols = 0;
    }
  } else if (c.method == "gptq" || c.method == "awq" || c.method == "auto-round" ||
             c.method == "autoround" || c.method == "intel/auto-round") {
    c.bits = q.Int({"bits", "w_bit"}, 4, kQuantBits);
    c.group_size = q.Int({"group_size", "q_group_size"}, 128, kQuantGroup);
  } else if (c.method == "bitsandbytes") {
    if (q.Bool("load_in_4bit", false)) {
      c.bits = 4;
      c.nf4 = q.String("bnb_4bit_quant_type").value_or("fp4") == "nf4";
      c.double_quant = q.Bool("bnb_4bit_use_double_quant", false);
    } else {
      c.bits = 8;
    }
  } else if (c.method == "mxfp4") {
    c.bits = 4;
  }
  if (q.error()) {
    r.Fail(*q.error());
    return;
  }
  // Scaled formats and per-module rules (quant_config.cc). A method vramfit
  // does not size stays named, so an estimate that keeps the checkpoint's
  // format is refused instead of sized at the model dtype.
  if (Status st = io::ReadScaledQuantConfig(*it, q.where(), s.torch_dtype, &c, notes); !st.ok()) {
    r.Fail(st.error());
    return;
  }
  if (!c.method.empty()) s.checkpoint_quant = c;
}

// Gemma-3 vision tower (SigLIP) + projector parameters, from vision_config.
// Tensor list: modeling_siglip.py (patch conv + bias, position table, per
// layer 2 LayerNorms, q/k/v/out with bias, fc1/fc2 with bias; post LN) and
// modeling_gemma3.py Gemma3MultiModalProjector (mm_input_projection_weight
// [vision_hidden, text_hidden] + mm_soft_emb_norm [vision_hidden]).
// Every key is range-checked and every product overflow-checked: a bad
// value is one error, never a wrapped count.
Status ReadSiglipVision(const Json& vc, const std::string& where, int64_t text_hidden,
                        ModelSpec& s, std::vector<std::string>* notes) {
  Reader v(vc, where + ": vision_config");
  constexpr IntRange kPixels{1, io::kMaxImagePixels};
  const int64_t h = v.Int({"hidden_size"}, 768, kWidth);
  const int64_t inter = v.Int({"intermediate_size"}, 3072, kWidth);
  const int64_t layers = v.Int({"num_hidden_layers"}, 12, {1, kMaxLayers});
  const int64_t patch = v.Int({"patch_size"}, 16, kPixels);
  const int64_t image = v.Int({"image_size"}, 224, kPixels);
  const int64_t channels = v.Int({"num_channels"}, 3, {1, io::kMaxImageChannels});
  if (v.error()) return *v.error();
  const auto mul = [](std::initializer_list<int64_t> xs) {
    int64_t p = 1;
    for (int64_t x : xs) p = CheckedMul(p, x);
    return p;
  };
  try {
    const int64_t side = image / patch;
    const int64_t positions = mul({side, side});
    int64_t n = CheckedAdd(mul({channels, patch, patch, h}), h);  // patch embedding conv + bias
    n = CheckedAdd(n, mul({positions, h}));                       // position embedding
    // Per layer: q/k/v/out with bias, fc1 + fc2 weights, fc1 bias, fc2 bias, 2 LayerNorms.
    int64_t layer = mul({4, CheckedAdd(mul({h, h}), h)});
    layer = CheckedAdd(layer, mul({2, inter, h}));
    layer = CheckedAdd(layer, CheckedAdd(inter, CheckedAdd(h, mul({4, h}))));
    n = CheckedAdd(n, mul({layers, layer}));
    n = CheckedAdd(n, mul({2, h}));                                // post_layernorm
    n = CheckedAdd(n, CheckedAdd(mul({h, text_hidden}), h));       // projector + soft-emb norm
    s.vision_params = n;
  } catch (const OverflowError&) {
    return Corrupt(fmt::format("{}: the vision tower's parameter count overflows 64 bits", v.where()));
  }
  s.vision_note = fmt::format("SigLIP vision tower ({} layers, hidden {}) + projector", layers, h);
  if (notes) {
    notes->push_back("multimodal checkpoint: the vision tower is counted in the checkpoint "
                     "parameters but estimates cover the text decoder");
  }
  return {};
}

// ---------------------------------------------------------------------------
// Families with their own key names (GPT-2, OPT, BLOOM, MPT, Falcon) or their
// own block layout (GPT-NeoX, Phi, Cohere). Each reads every key it needs
// and sets the layer list.

// gpt2, gpt_bigcode (GPTBigCode adds multi_query).
Status MapGpt2(Reader& r, const std::string& t, ModelSpec& s) {
  s.hidden_size = r.Required({"n_embd", "hidden_size"}, kMaxDim);
  s.num_hidden_layers = r.Required({"n_layer", "num_hidden_layers"}, kMaxLayers);
  s.num_attention_heads = r.Required({"n_head", "num_attention_heads"}, kMaxDim);
  s.num_key_value_heads = s.num_attention_heads;
  if (t == "gpt_bigcode" && r.Bool("multi_query", true)) s.num_key_value_heads = 1;
  s.vocab_size = r.Required({"vocab_size"}, kMaxDim);
  s.max_position_embeddings = r.Int({"n_positions", "max_position_embeddings"}, 1024, kPositions);
  s.learned_positions = s.max_position_embeddings;
  s.intermediate_size = r.Int({"n_inner"}, CheckedMul(4, s.hidden_size), kWidth);
  s.head_dim = s.v_head_dim = s.hidden_size / s.num_attention_heads;
  s.fused_qkv = true;
  SetAllAttentionBias(s, true);
  s.mlp_kind = MlpKind::kPlain;
  s.mlp_bias = true;
  s.norm_kind = NormKind::kLayerNorm;
  s.norms_per_layer = 2;
  InitLayers(s);
  return {};
}

Status MapOpt(Reader& r, const std::string&, ModelSpec& s) {
  s.hidden_size = r.Required({"hidden_size"}, kMaxDim);
  s.num_hidden_layers = r.Required({"num_hidden_layers"}, kMaxLayers);
  s.num_attention_heads = r.Required({"num_attention_heads"}, kMaxDim);
  s.num_key_value_heads = s.num_attention_heads;
  s.vocab_size = r.Required({"vocab_size"}, kMaxDim);
  s.intermediate_size = r.Required({"ffn_dim"}, kMaxDim);
  s.max_position_embeddings = r.Int({"max_position_embeddings"}, 2048, kPositions);
  // OPTLearnedPositionalEmbedding keeps an offset of 2 rows.
  s.learned_positions = CheckedAdd(s.max_position_embeddings, 2);
  s.word_embed_proj_dim = r.Int({"word_embed_proj_dim"}, s.hidden_size, kWidth);
  if (s.word_embed_proj_dim == s.hidden_size) s.word_embed_proj_dim = 0;
  s.head_dim = s.v_head_dim = s.hidden_size / s.num_attention_heads;
  const bool bias = r.Bool("enable_bias", true);
  SetAllAttentionBias(s, bias);
  s.mlp_kind = MlpKind::kPlain;
  s.mlp_bias = bias;
  s.norm_kind = r.Bool("layer_norm_elementwise_affine", true) ? NormKind::kLayerNorm
                                                               : NormKind::kLayerNormNoBias;
  s.final_norm = r.Bool("do_layer_norm_before", true) && !r.Bool("_remove_final_layer_norm", false);
  InitLayers(s);
  return {};
}

Status MapBloom(Reader& r, const std::string&, ModelSpec& s) {
  s.hidden_size = r.Required({"n_embed", "hidden_size"}, kMaxDim);
  s.num_hidden_layers = r.Required({"n_layer", "num_hidden_layers"}, kMaxLayers);
  s.num_attention_heads = r.Required({"n_head", "num_attention_heads"}, kMaxDim);
  s.num_key_value_heads = s.num_attention_heads;
  s.vocab_size = r.Required({"vocab_size"}, kMaxDim);
  s.max_position_embeddings = r.Int({"seq_length", "max_position_embeddings"}, 2048, kPositions);
  s.intermediate_size = CheckedMul(4, s.hidden_size);
  s.head_dim = s.v_head_dim = s.hidden_size / s.num_attention_heads;
  s.fused_qkv = true;
  SetAllAttentionBias(s, true);
  s.mlp_kind = MlpKind::kPlain;
  s.mlp_bias = true;
  s.norm_kind = NormKind::kLayerNorm;
  s.embed_norm = true;
  InitLayers(s);
  return {};
}

Status MapGptNeox(Reader& r, const std::string&, ModelSpec& s) {
  ReadLlamaCore(r, s);
  s.fused_qkv = true;
  SetAllAttentionBias(s, r.Bool("attention_bias", true));
  s.mlp_kind = MlpKind::kPlain;
  s.mlp_bias = true;
  s.norm_kind = NormKind::kLayerNorm;
  InitLayers(s);
  return {};
}

Status MapMpt(Reader& r, const std::string&, ModelSpec& s) {
  s.hidden_size = r.Required({"d_model", "hidden_size"}, kMaxDim);
  s.num_hidden_layers = r.Required({"n_layers", "num_hidden_layers"}, kMaxLayers);
  s.num_attention_heads = r.Required({"n_heads", "num_attention_heads"}, kMaxDim);
  s.vocab_size = r.Required({"vocab_size"}, kMaxDim);
  s.max_position_embeddings = r.Int({"max_seq_len"}, 2048, kPositions);
  s.intermediate_size = CheckedMul(r.Int({"expansion_ratio"}, 4, kWidth), s.hidden_size);
  s.num_key_value_heads = s.num_attention_heads;
  auto ac = r.obj().find("attn_config");
  if (ac != r.obj().end() && ac->is_object()) {
    Reader a(*ac, r.where() + ": attn_config");
    s.num_key_value_heads = a.Int({"kv_n_heads"}, s.num_attention_heads, kWidth);
    if (a.error()) return *a.error();
  }
  s.head_dim = s.v_head_dim = s.hidden_size / s.num_attention_heads;
  s.fused_qkv = true;
  const bool bias = !r.Bool("no_bias", false);
  SetAllAttentionBias(s, bias);
  s.mlp_kind = MlpKind::kPlain;
  s.mlp_bias = bias;
  s.norm_kind = bias ? NormKind::kLayerNorm : NormKind::kLayerNormNoBias;
  InitLayers(s);
  return {};
}

// falcon, RefinedWeb, RefinedWebModel.
Status MapFalcon(Reader& r, const std::string& t, ModelSpec& s) {
  s.hidden_size = r.Required({"hidden_size", "n_embed"}, kMaxDim);
  s.num_hidden_layers = r.Required({"num_hidden_layers", "n_layer"}, kMaxLayers);
  s.num_attention_heads = r.Required({"num_attention_heads", "n_head"}, kMaxDim);
  s.vocab_size = r.Required({"vocab_size"}, kMaxDim);
  s.max_position_embeddings = r.Int({"max_position_embeddings"}, 2048, kPositions);
  const bool new_arch = r.Bool("new_decoder_architecture", t == "RefinedWeb");
  if (new_arch) {
    s.num_key_value_heads = r.Int({"num_kv_heads", "n_head_kv"}, s.num_attention_heads, kWidth);
  } else {
    s.num_key_value_heads = r.Bool("multi_query", true) ? 1 : s.num_attention_heads;
  }
  s.head_dim = s.v_head_dim = s.hidden_size / s.num_attention_heads;
  s.intermediate_size = r.Int({"ffn_hidden_size"}, CheckedMul(4, s.hidden_size), kWidth);
  s.fused_qkv = true;
  const bool bias = r.Bool("bias", false);
  SetAllAttentionBias(s, bias);
  s.mlp_kind = MlpKind::kPlain;
  s.mlp_bias = bias;
  s.norm_kind = NormKind::kLayerNorm;
  const bool parallel = r.Bool("parallel_attn", true);
  if (new_arch) s.norms_per_layer = r.Int({"num_ln_in_parallel_attn"}, 2, kNorms);
  else s.norms_per_layer = parallel ? 1 : 2;
  InitLayers(s);
  return {};
}

Status MapPhi(Reader& r, const std::string&, ModelSpec& s) {
  ReadLlamaCore(r, s);
  SetAllAttentionBias(s, true);
  s.mlp_kind = MlpKind::kPlain;
  s.mlp_bias = true;
  s.norm_kind = NormKind::kLayerNorm;
  s.norms_per_layer = 1;  // one input_layernorm feeds attention and MLP in parallel
  s.lm_head_bias = true;
  if (r.Bool("qk_layernorm", false)) {
    s.qk_norm = QkNorm::kPerHead;
    s.qk_norm_bias = true;
  }
  InitLayers(s);
  return {};
}

Status MapCohere(Reader& r, const std::string&, ModelSpec& s) {
  ReadLlamaCore(r, s);
  SetAllAttentionBias(s, r.Bool("attention_bias", false));
  s.norm_kind = NormKind::kLayerNormNoBias;
  s.norms_per_layer = 1;  // parallel attention + MLP off one LayerNorm
  if (r.Bool("use_qk_norm", false)) s.qk_norm = QkNorm::kFull;
  InitLayers(s);
  return {};
}

// ---------------------------------------------------------------------------
// Llama-style families: the Llama core keys and layer list are read first,
// then each family's own keys.

// llama, mistral, yi, granite, internlm2.
void MapLlama(Reader& r, const std::string& t, ModelSpec& s) {
  SetAllAttentionBias(s, r.Bool("attention_bias", false));
  s.mlp_bias = r.Bool("mlp_bias", false);
  if (t == "mistral") ReadUniformSlidingWindow(r, s);
}

void MapQwen2(Reader& r, const std::string&, ModelSpec& s) {
  s.q_bias = s.k_bias = s.v_bias = true;  // Qwen2Attention: qkv bias, no o bias
  ReadLayerTypes(r, s);
  if (!r.Has("layer_types")) ReadUniformSlidingWindow(r, s);
  if (s.layers[0].attention == LayerAttention::kSliding || r.Has("layer_types")) {
    s.sliding_window = r.Int({"sliding_window"}, 0, kPositions);
  }
}

void MapQwen3(Reader& r, const std::string&, ModelSpec& s) {
  SetAllAttentionBias(s, r.Bool("attention_bias", false));
  s.qk_norm = QkNorm::kPerHead;
  ReadLayerTypes(r, s);
  if (!r.Has("layer_types")) ReadUniformSlidingWindow(r, s);
  s.sliding_window = r.Int({"sliding_window"}, 0, kPositions);
}

void MapOlmo2(Reader& r, const std::string&, ModelSpec& s) {
  SetAllAttentionBias(s, r.Bool("attention_bias", false));
  s.qk_norm = QkNorm::kFull;
}

void MapStarcoder2(Reader& r, const std::string&, ModelSpec& s) {
  SetAllAttentionBias(s, r.Bool("use_bias", true));
  s.mlp_kind = MlpKind::kPlain;
  s.mlp_bias = r.Bool("use_bias", true);
  s.norm_kind = NormKind::kLayerNorm;
  ReadUniformSlidingWindow(r, s);
}

void MapGemma(Reader& r, const std::string&, ModelSpec& s) {
  SetAllAttentionBias(s, r.Bool("attention_bias", false));
}

// gemma2, gemma3, gemma3_text.
void MapGemma2(Reader& r, const std::string& t, ModelSpec& s) {
  SetAllAttentionBias(s, r.Bool("attention_bias", false));
  s.norms_per_layer = 4;  // input, post_attention, pre_feedforward, post_feedforward
  s.sliding_window = r.Int({"sliding_window"}, 4096, kPositions);
  if (t == "gemma2") {
    // Gemma2DecoderLayer: even layers use the sliding window.
    for (int64_t i = 0; i < s.num_hidden_layers; ++i) {
      s.layers[i].attention = (i % 2 == 0) ? LayerAttention::kSliding : LayerAttention::kFull;
    }
  } else {
    s.qk_norm = QkNorm::kPerHead;
    // Gemma3: every sliding_window_pattern-th layer is global (default 6).
    const int64_t pattern = r.Int({"sliding_window_pattern"}, 6, kLayerStep);
    for (int64_t i = 0; i < s.num_hidden_layers; ++i) {
      s.layers[i].attention = (pattern > 0 && (i + 1) % pattern == 0) ? LayerAttention::kFull
                                                                       : LayerAttention::kSliding;
    }
  }
  ReadLayerTypes(r, s);
}

void MapPhi3(Reader& r, const std::string&, ModelSpec& s) {
  s.fused_qkv = true;
  s.fused_gate_up = true;
  ReadUniformSlidingWindow(r, s);
}

// mixtral, phimoe.
void MapMixtral(Reader& r, const std::string& t, ModelSpec& s) {
  s.num_experts = r.Required({"num_local_experts"}, kMaxExperts);
  s.num_experts_per_tok = r.Int({"num_experts_per_tok"}, 2, kExpertCount);
  s.moe_intermediate_size = s.intermediate_size;
  for (LayerSpec& l : s.layers) l.moe = true;
  ReadUniformSlidingWindow(r, s);
  if (t == "phimoe") {
    SetAllAttentionBias(s, r.Bool("attention_bias", true));
    s.norm_kind = NormKind::kLayerNorm;
    s.lm_head_bias = r.Bool("lm_head_bias", true);
  }
}

// qwen2_moe, qwen3_moe.
void MapQwenMoe(Reader& r, const std::string& t, ModelSpec& s) {
  if (t == "qwen2_moe") {
    s.q_bias = s.k_bias = s.v_bias = true;
    s.shared_expert_intermediate_size = r.Int({"shared_expert_intermediate_size"}, 0, kWidthOrNone);
    s.shared_expert_gate = s.shared_expert_intermediate_size > 0;
  } else {
    SetAllAttentionBias(s, r.Bool("attention_bias", false));
    s.qk_norm = QkNorm::kPerHead;
  }
  s.num_experts = r.Int({"num_experts"}, 0, kExpertCount);
  s.num_experts_per_tok = r.Int({"num_experts_per_tok"}, 8, kExpertCount);
  s.moe_intermediate_size = r.Int({"moe_intermediate_size"}, 0, kWidthOrNone);
  const int64_t step = r.Int({"decoder_sparse_step"}, 1, kLayerStep);
  std::set<int64_t> mlp_only;
  auto it = r.obj().find("mlp_only_layers");
  if (it != r.obj().end() && it->is_array()) {
    for (const Json& v : *it) {
      if (v.is_number_integer()) mlp_only.insert(v.get<int64_t>());
    }
  }
  for (int64_t i = 0; i < s.num_hidden_layers; ++i) {
    s.layers[i].moe = s.num_experts > 0 && mlp_only.count(i) == 0 && step > 0 &&
                      (i + 1) % step == 0;
  }
  ReadUniformSlidingWindow(r, s);
}

// deepseek_v2, deepseek_v3.
void MapDeepseek(Reader& r, const std::string& t, ModelSpec& s) {
  s.attn_kind = AttnKind::kMla;
  s.q_lora_rank = r.Int({"q_lora_rank"}, 0, kWidthOrNone);
  s.kv_lora_rank = r.Required({"kv_lora_rank"}, kMaxDim);
  s.qk_nope_head_dim = r.Required({"qk_nope_head_dim"}, kMaxDim);
  s.qk_rope_head_dim = r.Required({"qk_rope_head_dim"}, kMaxDim);
  s.v_head_dim = r.Required({"v_head_dim"}, kMaxDim);
  s.head_dim = s.qk_nope_head_dim + s.qk_rope_head_dim;
  SetAllAttentionBias(s, false);
  s.num_experts = r.Int({"n_routed_experts"}, 0, kExpertCount);
  s.num_experts_per_tok = r.Int({"num_experts_per_tok"}, 0, kExpertCount);
  s.moe_intermediate_size = r.Int({"moe_intermediate_size"}, 0, kWidthOrNone);
  s.num_shared_experts = r.Int({"n_shared_experts"}, 0, kExpertCount);
  s.shared_expert_intermediate_size = CheckedMul(s.num_shared_experts, s.moe_intermediate_size);
  const int64_t first_dense = r.Int({"first_k_dense_replace"}, 0, kLayerCount);
  const int64_t freq = r.Int({"moe_layer_freq"}, 1, kLayerStep);
  for (int64_t i = 0; i < s.num_hidden_layers; ++i) {
    s.layers[i].moe = s.num_experts > 0 && i >= first_dense && freq > 0 && i % freq == 0;
  }
  // DeepseekV3TopkRouter keeps e_score_correction_bias for noaux_tc.
  s.router_score_bias = r.String("topk_method").value_or(t == "deepseek_v3" ? "noaux_tc" : "") ==
                        "noaux_tc";
  s.num_nextn_predict_layers = r.Int({"num_nextn_predict_layers"}, 0, kLayerCount);
}

void MapGptOss(Reader& r, const std::string&, ModelSpec& s) {
  SetAllAttentionBias(s, r.Bool("attention_bias", true));
  s.attention_sinks = true;
  s.num_experts = r.Required({"num_local_experts"}, kMaxExperts);
  s.num_experts_per_tok = r.Int({"num_experts_per_tok", "experts_per_token"}, 4, kExpertCount);
  s.moe_intermediate_size = s.intermediate_size;
  s.fused_gate_up = true;
  s.router_bias = true;
  s.expert_bias = true;
  s.sliding_window = r.Int({"sliding_window"}, 128, kPositions);
  for (int64_t i = 0; i < s.num_hidden_layers; ++i) {
    s.layers[i].moe = true;
    s.layers[i].attention = (i % 2 == 0) ? LayerAttention::kSliding : LayerAttention::kFull;
  }
  ReadLayerTypes(r, s);
}

using OwnCoreFn = Status (*)(Reader&, const std::string& model_type, ModelSpec&);
using MapFn = void (*)(Reader&, const std::string& model_type, ModelSpec&);

// ---------------------------------------------------------------------------
// Encoder (BERT family) and encoder-decoder (T5, BART) families. Each maps
// its keys onto ModelSpec's generic fields and EncoderSpec; the task head
// comes from architectures[0] (HeadFromArchitecture). Sources:
// configuration_*.py defaults and modeling_*.py of transformers v4.56, as
// listed in docs/estimation.md ("Encoder and encoder-decoder models").

// The head transformers instantiates for an architectures[0] name: the
// class name's suffix (BertForMaskedLM -> mlm). A question-answering head
// is a token classifier with 2 outputs (qa_outputs [2, h]).
HeadKind HeadFromArchitecture(const std::string& arch, Topology topo, ModelSpec& s) {
  const auto ends = [&](std::string_view suffix) {
    return arch.size() >= suffix.size() && arch.compare(arch.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends("ForMaskedLM") || ends("LMHeadModel")) return HeadKind::kMaskedLm;
  if (ends("ForPreTraining")) return HeadKind::kPretraining;
  if (ends("ForSequenceClassification")) return HeadKind::kSeqCls;
  if (ends("ForTokenClassification")) return HeadKind::kTokenCls;
  if (ends("ForQuestionAnswering")) {
    s.num_labels = 2;
    return HeadKind::kTokenCls;
  }
  if (ends("ForConditionalGeneration")) return HeadKind::kSeq2SeqLm;
  if (topo == Topology::kEncoderDecoder && arch.empty()) return HeadKind::kSeq2SeqLm;
  return HeadKind::kBase;
}

// num_labels, or the size of id2label (PretrainedConfig), default 2.
void ReadNumLabels(Reader& r, ModelSpec& s) {
  auto it = r.obj().find("id2label");
  if (it != r.obj().end() && it->is_object() && !it->empty()) s.num_labels = static_cast<int64_t>(it->size());
  s.num_labels = r.Int({"num_labels"}, s.num_labels, kWidth);
}

// Dropout is active in train mode when its probability is above zero.
bool DropoutOn(Reader& r, std::initializer_list<std::string_view> keys, double dflt) {
  for (std::string_view k : keys) {
    auto it = r.obj().find(std::string(k));
    if (it != r.obj().end() && it->is_number()) return it->get<double>() > 0.0;
  }
  return dflt > 0.0;
}

// The BERT-style core: widths, learned absolute positions, token types,
// embedding LayerNorm, post-LN blocks with biases everywhere, GELU MLP.
void ReadBertCore(Reader& r, ModelSpec& s) {
  s.topology = Topology::kEncoder;
  s.torch_dtype = DType::kF32;  // encoder checkpoints without torch_dtype are fp32
  s.hidden_size = r.Required({"hidden_size"}, kMaxDim);
  s.num_hidden_layers = r.Required({"num_hidden_layers"}, kMaxLayers);
  s.num_attention_heads = r.Required({"num_attention_heads"}, kMaxDim);
  s.num_key_value_heads = s.num_attention_heads;
  s.head_dim = s.v_head_dim = s.hidden_size / s.num_attention_heads;
  s.vocab_size = r.Required({"vocab_size"}, kMaxDim);
  s.intermediate_size = r.Required({"intermediate_size"}, kMaxDim);
  s.max_position_embeddings = r.Int({"max_position_embeddings"}, 512, kPositions);
  s.learned_positions = s.max_position_embeddings;
  s.enc.type_vocab_size = r.Int({"type_vocab_size"}, 2, kWidthOrNone);
  SetAllAttentionBias(s, true);
  s.mlp_kind = MlpKind::kPlain;
  s.mlp_bias = true;
  s.norm_kind = NormKind::kLayerNorm;
  s.norms_per_layer = 2;
  s.embed_norm = true;
  s.final_norm = false;
  s.enc.hidden_dropout = DropoutOn(r, {"hidden_dropout_prob"}, 0.1);
  s.enc.attn_dropout = DropoutOn(r, {"attention_probs_dropout_prob"}, 0.1);
  s.enc.heads.mlm_width = s.hidden_size;
  s.tie_word_embeddings = true;
  ReadNumLabels(r, s);
  InitLayers(s);
}

// Relative position variants of BERT/RoBERTa add a distance_embedding the
// inventory does not hold: refused rather than undercounted.
Status CheckAbsolutePositions(Reader& r, const std::string& t) {
  const std::string pe = r.String("position_embedding_type").value_or("absolute");
  if (pe != "absolute") {
    return Unsupported(fmt::format("{}: position_embedding_type '{}' of {} is not modelled (absolute only)",
                                   r.where(), pe, t));
  }
  return {};
}

// bert, roberta, xlm-roberta, camembert (BertModel / RobertaModel layout).
Status MapBert(Reader& r, const std::string& t, ModelSpec& s) {
  ReadBertCore(r, s);
  VRAMFIT_TRY(CheckAbsolutePositions(r, t));
  HeadStyle& hs = s.enc.heads;
  hs.base_pooler = true;  // add_pooling_layer=True in BertModel / RobertaModel
  if (t == "bert") {
    hs.seq_cls_pooler = true;  // BertForSequenceClassification: pooler -> classifier
    hs.pretrain_classes = 2;   // BertForPreTraining: next-sentence [2, h]
  } else {
    hs.seq_cls_dense = true;   // RobertaClassificationHead: dense + out_proj, no pooler
  }
  return {};
}

Status MapElectra(Reader& r, const std::string& t, ModelSpec& s) {
  ReadBertCore(r, s);
  VRAMFIT_TRY(CheckAbsolutePositions(r, t));
  s.enc.embedding_size = r.Int({"embedding_size"}, s.hidden_size, kWidth);
  if (s.enc.embedding_size == s.hidden_size) s.enc.embedding_size = 0;
  HeadStyle& hs = s.enc.heads;
  hs.seq_cls_dense = true;  // ElectraClassificationHead
  // ElectraGeneratorPredictions: dense [E, h] + LayerNorm(E); lm head [V, E] tied.
  hs.mlm_width = s.enc.embedding_size > 0 ? s.enc.embedding_size : s.hidden_size;
  // ElectraDiscriminatorPredictions: dense [h, h] + dense_prediction [1, h].
  hs.pretrain_classes = 1;
  hs.pretrain_dense = true;
  hs.pretrain_mlm = false;
  return {};
}

Status MapAlbert(Reader& r, const std::string&, ModelSpec& s) {
  ReadBertCore(r, s);
  s.enc.embedding_size = r.Int({"embedding_size"}, 128, kWidth);
  if (s.enc.embedding_size == s.hidden_size) s.enc.embedding_size = 0;
  const int64_t groups = r.Int({"num_hidden_groups"}, 1, kLayerStep);
  const int64_t inner = r.Int({"inner_group_num"}, 1, kLayerStep);
  if (groups > s.num_hidden_layers) {
    return Corrupt(fmt::format("{}: num_hidden_groups ({}) exceeds num_hidden_layers ({})", r.where(), groups,
                               s.num_hidden_layers));
  }
  s.enc.weight_sets = CheckedMul(groups, inner);
  // attention_probs_dropout_prob defaults to 0 in AlbertConfig; hidden 0.
  s.enc.hidden_dropout = DropoutOn(r, {"hidden_dropout_prob"}, 0.0);
  s.enc.attn_dropout = DropoutOn(r, {"attention_probs_dropout_prob"}, 0.0);
  HeadStyle& hs = s.enc.heads;
  hs.base_pooler = hs.seq_cls_pooler = true;
  hs.mlm_width = s.enc.embedding_size > 0 ? s.enc.embedding_size : s.hidden_size;  // AlbertMLMHead
  hs.pretrain_classes = 2;  // sentence-order prediction
  return {};
}

// Whether a pos_att_type value (list or "p2c|c2p" string) names `what`.
bool HasPosAttType(const Json& obj, std::string_view what) {
  auto it = obj.find("pos_att_type");
  if (it == obj.end() || it->is_null()) return false;
  if (it->is_string()) return it->get<std::string>().find(what) != std::string::npos;
  if (!it->is_array()) return false;
  for (const Json& v : *it) {
    if (v.is_string() && v.get<std::string>() == what) return true;
  }
  return false;
}

Status MapDebertaV2(Reader& r, const std::string&, ModelSpec& s) {
  ReadBertCore(r, s);
  s.enc.type_vocab_size = r.Int({"type_vocab_size"}, 0, kWidthOrNone);
  if (!r.Bool("position_biased_input", true)) s.learned_positions = 0;
  const int64_t emb = r.Int({"embedding_size"}, s.hidden_size, kWidth);
  if (emb != s.hidden_size) {
    return Unsupported(fmt::format("{}: deberta-v2 with embedding_size != hidden_size is not modelled", r.where()));
  }
  if (r.Int({"conv_kernel_size"}, 0, kWidthOrNone) > 0) {
    return Unsupported(fmt::format("{}: deberta-v2 conv_kernel_size > 0 (ConvLayer) is not modelled", r.where()));
  }
  if (r.Bool("relative_attention", false)) {
    int64_t span = r.Int({"max_relative_positions"}, -1, {-1, kMaxPositions});
    if (span < 1) span = s.max_position_embeddings;
    const int64_t buckets = r.Int({"position_buckets"}, -1, {-1, kMaxPositions});
    if (buckets > 0) span = buckets;
    s.enc.rel_pos_rows = CheckedMul(span, 2);
    const std::string norm = r.String("norm_rel_ebd").value_or("none");
    s.enc.rel_pos_norm = norm.find("layer_norm") != std::string::npos;
    if (!r.Bool("share_att_key", false)) {
      s.enc.pos_key_proj = HasPosAttType(r.obj(), "c2p");
      s.enc.pos_query_proj = HasPosAttType(r.obj(), "p2c");
    }
  }
  HeadStyle& hs = s.enc.heads;
  hs.seq_cls_dense = true;  // ContextPooler dense (pooler_hidden_size = hidden) + classifier
  const int64_t pooler = r.Int({"pooler_hidden_size"}, s.hidden_size, kWidth);
  if (pooler != s.hidden_size) {
    return Unsupported(fmt::format("{}: deberta-v2 pooler_hidden_size != hidden_size is not modelled", r.where()));
  }
  return {};
}

Status MapModernBert(Reader& r, const std::string&, ModelSpec& s) {
  ReadBertCore(r, s);
  s.max_position_embeddings = r.Int({"max_position_embeddings"}, 8192, kPositions);
  s.learned_positions = 0;  // rotary
  s.enc.rope = true;
  s.enc.type_vocab_size = 0;
  s.fused_qkv = true;  // Wqkv [3h, h]
  SetAllAttentionBias(s, r.Bool("attention_bias", false));
  s.mlp_kind = MlpKind::kGated;  // GeGLU: Wi [2I, h] chunked into input and gate
  s.fused_gate_up = true;
  s.mlp_bias = r.Bool("mlp_bias", false);
  s.norm_kind = r.Bool("norm_bias", false) ? NormKind::kLayerNorm : NormKind::kLayerNormNoBias;
  s.enc.first_layer_attn_norm = false;  // layer 0: attn_norm = nn.Identity()
  s.final_norm = true;
  s.enc.global_attn_every = r.Int({"global_attn_every_n_layers"}, 3, kLayerStep);
  s.enc.local_window = r.Int({"local_attention"}, 128, kPositions);
  s.enc.hidden_dropout = DropoutOn(r, {"mlp_dropout", "embedding_dropout"}, 0.0);
  s.enc.attn_dropout = DropoutOn(r, {"attention_dropout"}, 0.0);
  HeadStyle& hs = s.enc.heads;
  hs.mlm_dense_bias = r.Bool("classifier_bias", false);
  hs.mlm_decoder_bias = r.Bool("decoder_bias", true);
  hs.cls_norm = true;  // ModernBertPredictionHead before the classifier
  s.tie_word_embeddings = r.Bool("tie_word_embeddings", true);
  hs.mlm_decoder_tied = s.tie_word_embeddings;
  for (int64_t i = 0; i < s.num_hidden_layers; ++i) {
    s.layers[i].attention = i % s.enc.global_attn_every == 0 ? LayerAttention::kFull : LayerAttention::kSliding;
  }
  s.sliding_window = s.enc.local_window;
  return {};
}

// t5, mt5: T5Stack x 2 (or the encoder alone for T5EncoderModel).
Status MapT5(Reader& r, const std::string& t, ModelSpec& s) {
  s.topology = Topology::kEncoderDecoder;
  s.torch_dtype = DType::kF32;  // checkpoints without torch_dtype are fp32
  s.hidden_size = r.Required({"d_model", "hidden_size"}, kMaxDim);
  s.num_hidden_layers = r.Required({"num_layers"}, kMaxLayers);
  s.enc.decoder_layers = r.Int({"num_decoder_layers"}, s.num_hidden_layers, {1, kMaxLayers});
  s.num_attention_heads = r.Required({"num_heads"}, kMaxDim);
  s.num_key_value_heads = s.num_attention_heads;
  s.head_dim = s.v_head_dim = r.Required({"d_kv"}, kMaxDim);
  s.intermediate_size = r.Required({"d_ff"}, kMaxDim);
  s.vocab_size = r.Required({"vocab_size"}, kMaxDim);
  s.max_position_embeddings = r.Int({"n_positions"}, 512, kPositions);
  s.enc.rel_bias_buckets = r.Int({"relative_attention_num_buckets"}, 32, kWidth);
  const std::string ff = r.String("feed_forward_proj").value_or("relu");
  s.mlp_kind = ff.rfind("gated-", 0) == 0 ? MlpKind::kGated : MlpKind::kPlain;
  SetAllAttentionBias(s, false);
  s.mlp_bias = false;
  s.norm_kind = NormKind::kRms;  // T5LayerNorm: weight only
  s.norms_per_layer = 2;
  s.final_norm = true;
  s.enc.stack_final_norm = true;
  s.enc.hidden_dropout = s.enc.attn_dropout = DropoutOn(r, {"dropout_rate"}, 0.1);
  s.tie_word_embeddings = r.Bool("tie_word_embeddings", t == "t5");
  s.enc.heads.seq_cls_dense = true;  // T5ClassificationHead
  ReadNumLabels(r, s);
  InitLayers(s);
  if (s.architecture == "T5EncoderModel" || s.architecture == "MT5EncoderModel") {
    s.topology = Topology::kEncoder;  // shared + encoder only
    s.enc.decoder_layers = 0;
  }
  return {};
}

Status MapBart(Reader& r, const std::string&, ModelSpec& s) {
  s.topology = Topology::kEncoderDecoder;
  s.torch_dtype = DType::kF32;  // checkpoints without torch_dtype are fp32
  s.hidden_size = r.Required({"d_model", "hidden_size"}, kMaxDim);
  s.num_hidden_layers = r.Required({"encoder_layers"}, kMaxLayers);
  s.enc.decoder_layers = r.Int({"decoder_layers"}, s.num_hidden_layers, {1, kMaxLayers});
  s.num_attention_heads = r.Required({"encoder_attention_heads"}, kMaxDim);
  s.intermediate_size = r.Required({"encoder_ffn_dim"}, kMaxDim);
  if (r.Int({"decoder_attention_heads"}, s.num_attention_heads, kWidth) != s.num_attention_heads ||
      r.Int({"decoder_ffn_dim"}, s.intermediate_size, kWidth) != s.intermediate_size) {
    return Unsupported(fmt::format("{}: bart with different encoder and decoder widths is not modelled", r.where()));
  }
  s.num_key_value_heads = s.num_attention_heads;
  s.head_dim = s.v_head_dim = s.hidden_size / s.num_attention_heads;
  s.vocab_size = r.Required({"vocab_size"}, kMaxDim);
  s.max_position_embeddings = r.Int({"max_position_embeddings"}, 1024, kPositions);
  // BartLearnedPositionalEmbedding keeps an offset of 2 rows.
  s.learned_positions = CheckedAdd(s.max_position_embeddings, 2);
  SetAllAttentionBias(s, true);
  s.mlp_kind = MlpKind::kPlain;
  s.mlp_bias = true;
  s.norm_kind = NormKind::kLayerNorm;
  s.norms_per_layer = 2;
  s.final_norm = false;
  s.enc.stack_embed_norm = true;  // layernorm_embedding in each stack
  s.enc.hidden_dropout = DropoutOn(r, {"dropout"}, 0.1);
  s.enc.attn_dropout = DropoutOn(r, {"attention_dropout"}, 0.0);
  s.tie_word_embeddings = r.Bool("tie_word_embeddings", true);
  s.enc.heads.seq_cls_dense = true;  // BartClassificationHead
  ReadNumLabels(r, s);
  InitLayers(s);
  return {};
}

// --- Hybrid stacks: recurrent mixers beside or instead of attention.
// Tensor lists: src/core/inventory_hybrid.cc; docs/estimation.md "Hybrid layers".

// A per-layer list of type names (layer_types, layers_block_type) of exactly
// num_hidden_layers strings, each set on its LayerSpec by `set`, which
// returns false for a name it does not know.
template <typename Set>
void ReadKindList(Reader& r, const char* key, ModelSpec& s, Set set) {
  auto it = r.obj().find(key);
  if (!it->is_array() || static_cast<int64_t>(it->size()) != s.num_hidden_layers) {
    r.Fail(Corrupt(fmt::format("{}: key '{}': expected a list of {} entries (num_hidden_layers)", r.where(), key,
                               s.num_hidden_layers)));
    return;
  }
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& v = (*it)[i];
    if (!v.is_string() || !set(v.get<std::string>(), s.layers[i])) {
      r.Fail(Unsupported(fmt::format("{}: key '{}'[{}]: layer type {} is not modelled", r.where(), key, i,
                                     io::Preview(v))));
      return;
    }
  }
}

// Mamba-2 sub-config under the given key names (first present alias wins).
void ReadMamba2(Reader& r, ModelSpec& s, std::initializer_list<std::string_view> heads,
                std::initializer_list<std::string_view> head_dim, std::initializer_list<std::string_view> state,
                std::initializer_list<std::string_view> groups, std::initializer_list<std::string_view> conv,
                int64_t dflt_heads, int64_t dflt_head_dim, int64_t dflt_state, int64_t dflt_groups) {
  MambaSpec& m = s.mamba;
  m.num_heads = r.Int(heads, dflt_heads, kWidth);
  m.head_dim = r.Int(head_dim, dflt_head_dim, kWidth);
  m.d_state = r.Int(state, dflt_state, kWidth);
  m.n_groups = r.Int(groups, dflt_groups, kWidth);
  m.d_conv = r.Int(conv, 4, kWidth);
  m.d_inner = CheckedMul(m.num_heads, m.head_dim);
}

// qwen3_next (modeling_qwen3_next.py at transformers 043bb8dd): 3 Gated
// DeltaNet layers per full-attention layer (full_attention_interval 4, or
// layer_types), gated attention (q_proj doubled), Qwen2-MoE experts with a
// gated shared expert, and one MTP layer the checkpoint stores (mtp.*).
void MapQwen3Next(Reader& r, const std::string&, ModelSpec& s) {
  s.head_dim = r.Int({"head_dim"}, 256, kWidth);  // Qwen3NextConfig default
  s.v_head_dim = s.head_dim;
  SetAllAttentionBias(s, r.Bool("attention_bias", false));
  s.qk_norm = QkNorm::kPerHead;
  s.attn_output_gate = true;
  s.num_experts = r.Int({"num_experts"}, 512, kExpertCount);
  s.num_experts_per_tok = r.Int({"num_experts_per_tok"}, 10, kExpertCount);
  s.moe_intermediate_size = r.Int({"moe_intermediate_size"}, 512, kWidthOrNone);
  s.shared_expert_intermediate_size = r.Int({"shared_expert_intermediate_size"}, 512, kWidthOrNone);
  s.shared_expert_gate = s.shared_expert_intermediate_size > 0;
  const int64_t step = r.Int({"decoder_sparse_step"}, 1, kLayerStep);
  std::set<int64_t> mlp_only;
  auto it = r.obj().find("mlp_only_layers");
  if (it != r.obj().end() && it->is_array()) {
    for (const Json& v : *it) {
      if (v.is_number_integer()) mlp_only.insert(v.get<int64_t>());
    }
  }
  for (int64_t i = 0; i < s.num_hidden_layers; ++i) {
    s.layers[i].moe = s.num_experts > 0 && mlp_only.count(i) == 0 && (i + 1) % step == 0;
  }
  auto gdn = [](const std::string& t, LayerSpec& l) {
    if (t == "linear_attention") {
      l.attention = LayerAttention::kNone;
      l.recurrent = RecurrentKind::kGatedDeltaNet;
      return true;
    }
    return t == "full_attention";
  };
  if (r.Has("layer_types")) {
    ReadKindList(r, "layer_types", s, gdn);
  } else {
    const int64_t interval = r.Int({"full_attention_interval"}, 4, kLayerStep);
    for (int64_t i = 0; i < s.num_hidden_layers; ++i) gdn((i + 1) % interval != 0 ? "linear_attention" : "full_attention", s.layers[i]);
  }
  LinearAttnSpec& a = s.linear_attn;
  a.num_k_heads = r.Int({"linear_num_key_heads"}, 16, kWidth);
  a.num_v_heads = r.Int({"linear_num_value_heads"}, 32, kWidth);
  a.k_head_dim = r.Int({"linear_key_head_dim"}, 128, kWidth);
  a.v_head_dim = r.Int({"linear_value_head_dim"}, 128, kWidth);
  a.conv_kernel = r.Int({"linear_conv_kernel_dim"}, 4, kWidth);
  // The checkpoint stores one MTP layer (vLLM qwen3_next_mtp.py:
  // num_nextn_predict_layers, default 1); transformers ignores it (^mtp.*).
  s.num_nextn_predict_layers = r.Int({"num_nextn_predict_layers"}, 1, kLayerCount);
  s.mtp_shared_embed = true;
}

// nemotron_h (modular_nemotron_h.py at transformers 008d9e95): each block
// is one norm and one mixer: 'M' Mamba-2, '*' attention, '-' relu^2 MLP
// (hybrid_override_pattern, or layers_block_type names).
void MapNemotronH(Reader& r, const std::string&, ModelSpec& s) {
  s.head_dim = r.Int({"head_dim"}, 128, kWidth);  // NemotronHConfig default
  s.v_head_dim = s.head_dim;
  SetAllAttentionBias(s, r.Bool("attention_bias", false));
  s.norms_per_layer = 1;
  s.mlp_kind = MlpKind::kPlain;  // up_proj / down_proj, relu2
  s.mlp_bias = r.Bool("mlp_bias", false);
  auto block = [](const std::string& t, LayerSpec& l) {
    l.mlp = false;
    if (t == "mamba" || t == "linear_attention" || t == "M") {
      l.attention = LayerAttention::kNone;
      l.recurrent = RecurrentKind::kMamba2;
    } else if (t == "attention" || t == "full_attention" || t == "*") {
      l.attention = LayerAttention::kFull;
    } else if (t == "mlp" || t == "-") {
      l.attention = LayerAttention::kNone;
      l.mlp = true;
    } else {
      return false;  // 'E' / "moe": Nemotron-H latent MoE is not modelled
    }
    return true;
  };
  if (r.Has("layers_block_type")) {
    ReadKindList(r, "layers_block_type", s, block);
  } else if (r.Has("hybrid_override_pattern")) {
    const std::string p = r.String("hybrid_override_pattern").value_or("");
    if (static_cast<int64_t>(p.size()) != s.num_hidden_layers) {
      r.Fail(Corrupt(fmt::format("{}: key 'hybrid_override_pattern': {} characters for {} layers", r.where(),
                                 p.size(), s.num_hidden_layers)));
      return;
    }
    for (size_t i = 0; i < p.size(); ++i) {
      if (!block(std::string(1, p[i]), s.layers[i])) {
        r.Fail(Unsupported(fmt::format("{}: key 'hybrid_override_pattern'[{}]: block '{}' is not modelled "
                                       "(vramfit reads M, * and -)",
                                       r.where(), i, p[i])));
        return;
      }
    }
  } else {
    r.Fail(Corrupt(fmt::format("{}: nemotron_h needs 'hybrid_override_pattern' or 'layers_block_type'", r.where())));
    return;
  }
  ReadMamba2(r, s, {"mamba_num_heads"}, {"mamba_head_dim"}, {"ssm_state_size", "mamba_d_state"},
             {"n_groups", "mamba_n_groups"}, {"conv_kernel", "mamba_d_conv"}, 128, 64, 128, 8);
  s.mamba.conv_bias = r.Bool("use_conv_bias", r.Bool("mamba_conv_bias", true));
  s.mamba.proj_bias = r.Bool("use_bias", false);
  s.mamba.gated_norm = true;
}

// granitemoehybrid (modular_granitemoehybrid.py at transformers 023633dd):
// 'mamba' layers (BambaMixer, Mamba-2) or 'attention' layers, every layer
// with a shared gated MLP (shared_intermediate_size) plus, when
// num_local_experts > 0, GraniteMoe experts of width intermediate_size.
void MapGraniteMoeHybrid(Reader& r, const std::string&, ModelSpec& s) {
  SetAllAttentionBias(s, r.Bool("attention_bias", false));
  const int64_t shared = r.Required({"shared_intermediate_size"}, kMaxDim);
  s.num_experts = r.Int({"num_local_experts"}, 0, kExpertCount);
  if (s.num_experts > 0) {
    s.num_experts_per_tok = r.Int({"num_experts_per_tok"}, 2, kExpertCount);
    s.moe_intermediate_size = s.intermediate_size;  // GraniteMoe expert width
    s.shared_expert_intermediate_size = shared;     // shared_mlp, no gate
  } else {
    s.intermediate_size = shared;  // the shared MLP is the only MLP
  }
  const char* key = r.Has("layer_types") ? "layer_types" : "layers_block_type";
  if (!r.Has(key)) {
    r.Fail(Corrupt(fmt::format("{}: granitemoehybrid needs 'layer_types' or 'layers_block_type'", r.where())));
    return;
  }
  const bool moe = s.num_experts > 0;
  ReadKindList(r, key, s, [moe](const std::string& t, LayerSpec& l) {
    l.moe = moe;
    if (t == "mamba") {
      l.attention = LayerAttention::kNone;
      l.recurrent = RecurrentKind::kMamba2;
      return true;
    }
    return t == "attention";
  });
  MambaSpec& m = s.mamba;
  m.num_heads = r.Int({"mamba_n_heads"}, 128, kWidth);
  m.d_state = r.Int({"mamba_d_state"}, 256, kWidth);
  m.n_groups = r.Int({"mamba_n_groups"}, 1, kWidth);
  m.d_conv = r.Int({"mamba_d_conv"}, 4, kWidth);
  m.d_inner = CheckedMul(r.Int({"mamba_expand"}, 2, kWidth), s.hidden_size);
  // mamba_d_head "auto" = d_inner / mamba_n_heads (GraniteMoeHybridConfig).
  auto dh = r.obj().find("mamba_d_head");
  if (dh == r.obj().end() || dh->is_null() || dh->is_string()) {
    m.head_dim = m.num_heads > 0 ? m.d_inner / m.num_heads : 0;
  } else {
    m.head_dim = r.Int({"mamba_d_head"}, 0, kWidth);
  }
  m.conv_bias = r.Bool("mamba_conv_bias", true);
  m.proj_bias = r.Bool("mamba_proj_bias", false);
  m.gated_norm = true;
}

// lfm2 (modeling_lfm2.py Lfm2DecoderLayer): "conv" layers (Lfm2ShortConv)
// or "full_attention" layers (per-head q/k layernorms), each with a SwiGLU
// MLP (w1/w3/w2) and two norms; the final norm is embedding_norm. The MLP
// width: block_ff_dim (else intermediate_size); with block_auto_adjust_ff_dim,
// int(2w/3), then, when block_ffn_dim_multiplier is set, int(m * w) rounded
// up to block_multiple_of (Lfm2MLP).
void MapLfm2(Reader& r, const std::string&, ModelSpec& s) {
  SetAllAttentionBias(s, false);
  s.qk_norm = QkNorm::kPerHead;
  int64_t ff = r.Int({"block_ff_dim", "intermediate_size"}, 12288, kWidth);
  if (r.Bool("block_auto_adjust_ff_dim", true)) {
    ff = 2 * ff / 3;
    auto mult = r.obj().find("block_ffn_dim_multiplier");
    if (mult != r.obj().end() && !mult->is_null()) {
      if (!mult->is_number() || mult->get<double>() <= 0 || mult->get<double>() > 64) {
        r.Fail(Corrupt(fmt::format("{}: key 'block_ffn_dim_multiplier': expected a number in (0, 64], got {}",
                                   r.where(), io::Preview(*mult))));
        return;
      }
      ff = static_cast<int64_t>(mult->get<double>() * static_cast<double>(ff));
      const int64_t of = r.Int({"block_multiple_of"}, 256, kWidth);
      ff = of * ((ff + of - 1) / of);
    }
  }
  s.intermediate_size = ff;
  s.short_conv.l_cache = r.Int({"conv_L_cache"}, 3, kWidth);
  s.short_conv.bias = r.Bool("conv_bias", false);
  auto conv = [](const std::string& t, LayerSpec& l) {
    if (t == "conv") {
      l.attention = LayerAttention::kNone;
      l.recurrent = RecurrentKind::kShortConv;
      return true;
    }
    return t == "full_attention";
  };
  if (r.Has("layer_types")) {
    ReadKindList(r, "layer_types", s, conv);
    return;
  }
  // Older configs list the attention layers instead (full_attn_idxs).
  auto idx = r.obj().find("full_attn_idxs");
  if (idx == r.obj().end() || !idx->is_array()) {
    r.Fail(Corrupt(fmt::format("{}: lfm2 needs 'layer_types' or 'full_attn_idxs'", r.where())));
    return;
  }
  for (LayerSpec& l : s.layers) conv("conv", l);
  for (const Json& v : *idx) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= s.num_hidden_layers) {
      r.Fail(Corrupt(fmt::format("{}: key 'full_attn_idxs': {} is not a layer index below {}", r.where(),
                                 io::Preview(v), s.num_hidden_layers)));
      return;
    }
    LayerSpec& l = s.layers[static_cast<size_t>(v.get<int64_t>())];
    l.attention = LayerAttention::kFull;
    l.recurrent = RecurrentKind::kNone;
  }
}

// mamba (modeling_mamba.py) and mamba2 (modeling_mamba2.py): every layer is
// a norm and a mixer, no attention and no MLP; embeddings, norm_f, lm_head
// (tied by default).
Status MapMamba(Reader& r, const std::string& t, ModelSpec& s) {
  s.hidden_size = r.Required({"hidden_size", "d_model"}, kMaxDim);
  s.num_hidden_layers = r.Required({"num_hidden_layers", "n_layer"}, kMaxLayers);
  s.vocab_size = r.Required({"vocab_size"}, kMaxDim);
  InitLayers(s);
  if (r.error()) return *r.error();
  s.norm_kind = NormKind::kRms;
  s.norms_per_layer = 1;
  // No attention: the attention fields stay at the smallest valid shape and
  // no layer uses them.
  s.num_attention_heads = s.num_key_value_heads = s.head_dim = s.v_head_dim = 1;
  MambaSpec& m = s.mamba;
  const RecurrentKind kind = t == "mamba" ? RecurrentKind::kMamba1 : RecurrentKind::kMamba2;
  for (LayerSpec& l : s.layers) {
    l.attention = LayerAttention::kNone;
    l.recurrent = kind;
    l.mlp = false;
  }
  m.d_state = r.Int({"state_size"}, kind == RecurrentKind::kMamba1 ? 16 : 128, kWidth);
  m.d_conv = r.Int({"conv_kernel"}, 4, kWidth);
  m.conv_bias = r.Bool("use_conv_bias", true);
  m.proj_bias = r.Bool("use_bias", false);
  const int64_t expand = r.Int({"expand"}, 2, kWidth);
  if (kind == RecurrentKind::kMamba1) {
    m.d_inner = r.Int({"intermediate_size"}, CheckedMul(expand, s.hidden_size), kWidth);
    // time_step_rank "auto" = ceil(hidden / 16) (MambaConfig).
    auto tr = r.obj().find("time_step_rank");
    if (tr == r.obj().end() || tr->is_null() || (tr->is_string() && tr->get<std::string>() == "auto")) {
      m.dt_rank = (s.hidden_size + 15) / 16;
    } else {
      m.dt_rank = r.Int({"time_step_rank"}, 0, kWidth);
    }
  } else {
    m.num_heads = r.Int({"num_heads"}, 128, kWidth);
    m.head_dim = r.Int({"head_dim"}, 64, kWidth);
    m.n_groups = r.Int({"n_groups"}, 8, kWidth);
    m.d_inner = CheckedMul(expand, s.hidden_size);  // Mamba2Mixer intermediate_size
    m.gated_norm = true;
  }
  s.max_position_embeddings = 0;
  return r.error() ? *r.error() : Status{};
}

// model_type -> mapping, for the encoder and encoder-decoder families.
OwnCoreFn EncoderFamily(const std::string& t) {
  static const std::map<std::string, OwnCoreFn, std::less<>> kFamilies = {
      {"bert", MapBert},         {"roberta", MapBert},   {"xlm-roberta", MapBert},
      {"camembert", MapBert},    {"electra", MapElectra}, {"albert", MapAlbert},
      {"deberta-v2", MapDebertaV2}, {"modernbert", MapModernBert}, {"t5", MapT5},
      {"mt5", MapT5},            {"bart", MapBart},
  };
  auto it = kFamilies.find(t);
  return it == kFamilies.end() ? nullptr : it->second;
}

// model_type -> mapping, for the families that read their own core keys.
OwnCoreFn OwnCoreFamily(const std::string& t) {
  static const std::map<std::string, OwnCoreFn, std::less<>> kFamilies = {
      {"gpt2", MapGpt2},       {"gpt_bigcode", MapGpt2}, {"opt", MapOpt},
      {"bloom", MapBloom},     {"gpt_neox", MapGptNeox}, {"mpt", MapMpt},
      {"falcon", MapFalcon},   {"RefinedWeb", MapFalcon}, {"RefinedWebModel", MapFalcon},
      {"phi", MapPhi},         {"cohere", MapCohere},
      {"mamba", MapMamba},     {"mamba2", MapMamba},
  };
  auto it = kFamilies.find(t);
  return it == kFamilies.end() ? EncoderFamily(t) : it->second;
}

// model_type -> the keys a Llama-style family reads after the Llama core.
MapFn LlamaStyleFamily(const std::string& t) {
  static const std::map<std::string, MapFn, std::less<>> kFamilies = {
      {"llama", MapLlama},         {"mistral", MapLlama},      {"yi", MapLlama},
      {"granite", MapLlama},       {"internlm2", MapLlama},    {"qwen2", MapQwen2},
      {"qwen3", MapQwen3},         {"olmo2", MapOlmo2},        {"starcoder2", MapStarcoder2},
      {"gemma", MapGemma},         {"gemma2", MapGemma2},      {"gemma3", MapGemma2},
      {"gemma3_text", MapGemma2},  {"phi3", MapPhi3},          {"mixtral", MapMixtral},
      {"phimoe", MapMixtral},      {"qwen2_moe", MapQwenMoe},  {"qwen3_moe", MapQwenMoe},
      {"deepseek_v2", MapDeepseek}, {"deepseek_v3", MapDeepseek}, {"gpt_oss", MapGptOss},
      {"qwen3_next", MapQwen3Next}, {"nemotron_h", MapNemotronH},
      {"granitemoehybrid", MapGraniteMoeHybrid}, {"lfm2", MapLfm2},
  };
  auto it = kFamilies.find(t);
  return it == kFamilies.end() ? nullptr : it->second;
}

// Keys that change tensor shapes or add per-sequence state in the families
// vramfit does not map (expert counts, layer-type lists, state-space and
// linear-attention sub-configs, vision towers): named when a config is refused.
constexpr std::string_view kShapeKeys[] = {
    "num_experts", "num_local_experts", "n_routed_experts", "moe_intermediate_size", "layer_types",
    "layers_block_type", "hybrid_override_pattern", "attn_layer_indices", "full_attention_interval",
    "linear_num_key_heads", "linear_num_value_heads", "linear_key_head_dim", "linear_value_head_dim",
    "linear_attn_config", "ssm_cfg", "mamba_d_state", "mamba_d_conv", "mamba_expand", "state_size",
    "conv_kernel", "interleave_moe_layer_step", "no_rope_layers", "cross_attention_layers",
    "vision_config", "audio_config"};

// An unknown model_type is refused, naming the shape-changing keys it has:
// reading it as a Llama block gave counts off by an order of magnitude
// (Qwen3-Next-80B-A3B read as 3.04 B), a confident wrong answer.
Error RefuseUnknown(const Json& decoder, const Json& top, std::string_view where, const std::string& t) {
  std::vector<std::string> keys;
  for (std::string_view k : kShapeKeys) {
    const std::string key(k);
    if (decoder.contains(key) || top.contains(key)) keys.push_back(key);
  }
  return Unsupported(fmt::format(
      "{}: model_type '{}' is not modelled{}; vramfit reads llama, mistral, mixtral, qwen2, qwen2_moe, qwen3, "
      "qwen3_moe, gemma/2/3, phi, phi3, phimoe, deepseek_v2/v3, gpt_oss, falcon, gpt2, gpt_bigcode, opt, bloom, "
      "gpt_neox, mpt, cohere, olmo2, granite, starcoder2, yi, internlm2; hybrids qwen3_next, nemotron_h, "
      "granitemoehybrid, lfm2, mamba, mamba2; encoders bert, roberta, xlm-roberta, "
      "camembert, electra, albert, deberta-v2, modernbert; encoder-decoders t5, mt5, bart",
      where, t,
      keys.empty() ? std::string() : fmt::format(" (keys that change tensor shapes: {})", fmt::join(keys, ", "))));
}

bool KnownFamily(const std::string& t) { return OwnCoreFamily(t) != nullptr || LlamaStyleFamily(t) != nullptr; }

Status MapFamily(Reader& r, const std::string& t, ModelSpec& s) {
  if (OwnCoreFn own = OwnCoreFamily(t)) return own(r, t, s);
  ReadLlamaCore(r, s);
  InitLayers(s);
  if (r.error()) return *r.error();
  if (MapFn extra = LlamaStyleFamily(t)) extra(r, t, s);
  // A key that failed to read left its default; report it, not what the
  // default implies.
  if (r.error()) return *r.error();
  if (s.intermediate_size == 0 && s.num_experts == 0) {
    return Corrupt(fmt::format("{}: required key 'intermediate_size' is missing", r.where()));
  }
  return {};
}

// Where the decoder's keys are: the top level, or text_config for multimodal
// wrappers, whose own model_type (if any) selects the family.
struct DecoderConfig {
  const Json* obj;
  std::string where;
  std::string type;
};

Result<DecoderConfig> FindDecoder(const Json& doc, std::string_view where, const ModelSpec& s) {
  DecoderConfig d{&doc, std::string(where), s.model_type};
  auto text = doc.find("text_config");
  if (text != doc.end() && text->is_object()) {
    d.obj = &*text;
    d.where += ": text_config";
    Reader tr(*d.obj, d.where);
    std::string inner = tr.String("model_type").value_or("");
    if (tr.error()) return *tr.error();
    if (inner.empty() && d.type == "gemma3") inner = "gemma3_text";
    if (!inner.empty()) d.type = inner;
  }
  if (d.type.empty()) {
    // Old checkpoints (Falcon "RefinedWebModel") sometimes lack model_type.
    if (s.architecture.empty()) {
      return Corrupt(fmt::format("{}: neither 'model_type' nor 'architectures' is set", where));
    }
    return Unsupported(fmt::format("{}: 'model_type' is missing (architectures: {})", where,
                                   s.architecture));
  }
  return d;
}

// tie_word_embeddings and torch_dtype: the decoder config first, then the top level.
Status ReadCommonKeys(Reader& r, Reader& top, const std::string& type, std::string_view where,
                      ModelSpec& s) {
  std::optional<bool> tie = r.Bool("tie_word_embeddings");
  if (!tie && type == "lfm2") tie = r.Bool("tie_embedding");  // LFM2's first configs
  if (!tie) tie = top.Bool("tie_word_embeddings");
  s.tie_word_embeddings = tie.value_or(DefaultTie(type));
  std::optional<std::string> dtype = r.String("torch_dtype");
  if (!dtype) dtype = r.String("dtype");
  if (!dtype) dtype = top.String("torch_dtype");
  if (!dtype) dtype = top.String("dtype");
  if (r.error()) return *r.error();
  if (top.error()) return *top.error();
  if (dtype) {
    auto d = ParseDType(*dtype);
    if (!d || (*d != DType::kF32 && *d != DType::kF16 && *d != DType::kBF16)) {
      return Corrupt(fmt::format("{}: key 'torch_dtype': unknown dtype '{}'", where, *dtype));
    }
    s.torch_dtype = *d;
  }
  return {};
}

// vision_config, read only at the top level.
Status ReadVision(const Json& doc, std::string_view where, ModelSpec& s,
                  std::vector<std::string>* notes) {
  auto vision = doc.find("vision_config");
  if (vision == doc.end() || !vision->is_object()) return {};
  Reader vr(*vision, std::string(where));
  const std::string vtype = vr.String("model_type").value_or("siglip_vision_model");
  if (vtype == "siglip_vision_model") {
    return ReadSiglipVision(*vision, std::string(where), s.hidden_size, s, notes);
  }
  // Counting the decoder without its tower would be a silent undercount.
  return Unsupported(fmt::format("{}: vision_config: vision tower '{}' is not modelled (vramfit counts "
                                 "siglip_vision_model towers)",
                                 where, vtype));
}

Result<ModelSpec> ParseDocument(const Json& doc, std::string_view where,
                                std::vector<std::string>* notes) {
  ModelSpec s;
  Reader top(doc, std::string(where));
  s.model_type = top.String("model_type").value_or("");
  auto arch = doc.find("architectures");
  if (arch != doc.end() && arch->is_array() && !arch->empty() && (*arch)[0].is_string()) {
    s.architecture = (*arch)[0].get<std::string>();
  }
  if (top.error()) return *top.error();

  auto decoder = FindDecoder(doc, where, s);
  if (!decoder.ok()) return decoder.error();
  if (!KnownFamily(decoder->type)) return RefuseUnknown(*decoder->obj, doc, decoder->where, decoder->type);
  Reader r(*decoder->obj, decoder->where);
  VRAMFIT_TRY(MapFamily(r, decoder->type, s));
  if (r.error()) return *r.error();
  VRAMFIT_TRY(ReadCommonKeys(r, top, decoder->type, where, s));
  if (s.topology != Topology::kDecoder) {
    // The MLM decoder is tied unless tie_word_embeddings says not; the
    // head is what architectures[0] instantiates.
    s.enc.heads.mlm_decoder_tied = s.tie_word_embeddings;
    s.head = HeadFromArchitecture(s.architecture, s.topology, s);
    if (s.topology == Topology::kEncoder && s.head == HeadKind::kSeq2SeqLm) s.head = HeadKind::kBase;
  }

  // quantization_config: the top level first, then text_config.
  Reader qr(doc, std::string(where));
  ReadQuantConfig(qr, s, notes);
  if (qr.error()) return *qr.error();
  if (decoder->obj != &doc && !s.checkpoint_quant) {
    ReadQuantConfig(r, s, notes);
    if (r.error()) return *r.error();
  }
  VRAMFIT_TRY(ReadVision(doc, where, s, notes));
  VRAMFIT_TRY(ValidateSpec(s, where));
  return s;
}

}  // namespace

const std::vector<std::string>& SupportedModelTypes() { return kSupported; }

Result<ModelSpec> ParseHfConfig(std::string_view json_text, std::string_view where,
                                std::vector<std::string>* notes) {
  auto doc = io::ParseJson(json_text, where);
  if (!doc.ok()) return doc.error();
  if (!doc->is_object()) {
    return Corrupt(fmt::format("{}: expected a JSON object at the top level", where));
  }
  // Every value is range-checked as it is read, so the checked products
  // below cannot overflow; this keeps the no-exception contract regardless.
  try {
    return ParseDocument(*doc, where, notes);
  } catch (const OverflowError&) {
    return Corrupt(fmt::format("{}: the model's sizes overflow 64 bits", where));
  }
}

namespace {

// The per-layer kinds and the recurrent sub-specs: caps keep the state and
// inventory products inside int64; shapes must be consistent.
Status ValidateRecurrent(const ModelSpec& s, std::string_view where) {
  RecurrentKind kind = RecurrentKind::kNone;
  for (size_t i = 0; i < s.layers.size(); ++i) {
    const LayerSpec& l = s.layers[i];
    if (l.moe && !l.mlp) {
      return Corrupt(fmt::format("{}: layer {}: routed experts in a layer without an MLP", where, i));
    }
    if (l.moe && s.num_experts == 0) {
      return Corrupt(fmt::format("{}: layer {}: an MoE layer in a model without experts", where, i));
    }
    if (l.HasRecurrent()) {
      if (kind != RecurrentKind::kNone && kind != l.recurrent) {
        return Unsupported(fmt::format("{}: layers of two recurrent kinds ({}, {}) are not modelled", where,
                                       RecurrentName(kind), RecurrentName(l.recurrent)));
      }
      kind = l.recurrent;
    }
  }
  const IntRange state{1, io::kMaxStateDim}, kernel{1, io::kMaxConvKernel};
  const struct { const char* key; int64_t v; IntRange range; } mamba[] = {
      {"mamba d_inner (intermediate_size / mamba_d_ssm)", s.mamba.d_inner, kWidth},
      {"mamba d_state (state_size)", s.mamba.d_state, state},
      {"mamba d_conv (conv_kernel)", s.mamba.d_conv, kernel},
  };
  const struct { const char* key; int64_t v; IntRange range; } gdn[] = {
      {"linear_num_key_heads", s.linear_attn.num_k_heads, kWidth},
      {"linear_num_value_heads", s.linear_attn.num_v_heads, kWidth},
      {"linear_key_head_dim", s.linear_attn.k_head_dim, state},
      {"linear_value_head_dim", s.linear_attn.v_head_dim, state},
      {"linear_conv_kernel_dim", s.linear_attn.conv_kernel, kernel},
  };
  switch (kind) {
    case RecurrentKind::kNone:
      break;
    case RecurrentKind::kMamba1:
    case RecurrentKind::kMamba2:
      for (const auto& c : mamba) {
        if (!c.range.Contains(c.v)) return io::OutOfRange(where, c.key, c.v, c.range);
      }
      if (kind == RecurrentKind::kMamba1) {
        if (!kWidth.Contains(s.mamba.dt_rank)) {
          return io::OutOfRange(where, "mamba dt_rank (time_step_rank)", s.mamba.dt_rank, kWidth);
        }
        break;
      }
      if (!kWidth.Contains(s.mamba.num_heads)) {
        return io::OutOfRange(where, "mamba num_heads", s.mamba.num_heads, kWidth);
      }
      if (!state.Contains(s.mamba.head_dim)) {
        return io::OutOfRange(where, "mamba head_dim", s.mamba.head_dim, state);
      }
      if (!IntRange{1, s.mamba.num_heads}.Contains(s.mamba.n_groups) ||
          s.mamba.num_heads % s.mamba.n_groups != 0) {
        return Corrupt(fmt::format("{}: mamba n_groups = {}: must divide the {} Mamba-2 heads", where,
                                   s.mamba.n_groups, s.mamba.num_heads));
      }
      if (s.mamba.num_heads * s.mamba.head_dim != s.mamba.d_inner) {
        return Corrupt(fmt::format("{}: mamba num_heads x head_dim = {} x {} != d_inner {}", where,
                                   s.mamba.num_heads, s.mamba.head_dim, s.mamba.d_inner));
      }
      break;
    case RecurrentKind::kGatedDeltaNet:
    case RecurrentKind::kKimiDelta:
      for (const auto& c : gdn) {
        if (!c.range.Contains(c.v)) return io::OutOfRange(where, c.key, c.v, c.range);
      }
      if (s.linear_attn.num_v_heads % s.linear_attn.num_k_heads != 0) {
        return Corrupt(fmt::format("{}: linear_num_value_heads ({}) is not a multiple of "
                                   "linear_num_key_heads ({})",
                                   where, s.linear_attn.num_v_heads, s.linear_attn.num_k_heads));
      }
      break;
    case RecurrentKind::kShortConv:
      if (!kernel.Contains(s.short_conv.l_cache)) {
        return io::OutOfRange(where, "conv_L_cache", s.short_conv.l_cache, kernel);
      }
      break;
  }
  return {};
}

}  // namespace

Status ValidateSpec(const ModelSpec& s, std::string_view where) {
  // Caps (spec_limits.h) keep every product in BuildInventory and the
  // estimators far from int64 overflow. The first twelve are the config.json
  // checks of docs/formats.md §1.4; the rest hold fields the GGUF reader
  // takes from tensor shapes and metadata to the same caps.
  const struct { const char* key; int64_t v; IntRange range; } checks[] = {
      {"hidden_size", s.hidden_size, kWidth},
      {"num_hidden_layers", s.num_hidden_layers, {1, kMaxLayers}},
      {"num_attention_heads", s.num_attention_heads, kWidth},
      {"num_key_value_heads", s.num_key_value_heads, kWidth},
      {"head_dim", s.head_dim, kWidth},
      {"vocab_size", s.vocab_size, kWidth},
      {"intermediate_size", s.intermediate_size, kWidthOrNone},
      {"moe_intermediate_size", s.moe_intermediate_size, kWidthOrNone},
      {"num_experts", s.num_experts, kExpertCount},
      {"max_position_embeddings", s.max_position_embeddings, kPositions},
      {"kv_lora_rank", s.kv_lora_rank, kWidthOrNone},
      {"q_lora_rank", s.q_lora_rank, kWidthOrNone},
      {"v_head_dim", s.v_head_dim, kWidthOrNone},
      {"qk_nope_head_dim", s.qk_nope_head_dim, kWidthOrNone},
      {"qk_rope_head_dim", s.qk_rope_head_dim, kWidthOrNone},
      {"num_shared_experts", s.num_shared_experts, kExpertCount},
      {"shared_expert_intermediate_size", s.shared_expert_intermediate_size, kWidthOrNone},
      {"sliding_window", s.sliding_window, kPositions},
      {"learned_positions", s.learned_positions, {0, io::kMaxLearnedPositions}},
      {"word_embed_proj_dim", s.word_embed_proj_dim, kWidthOrNone},
      {"norms_per_layer", s.norms_per_layer, {0, io::kMaxNormsPerLayer}},
      {"num_nextn_predict_layers", s.num_nextn_predict_layers, kLayerCount},
      {"embedding_size", s.enc.embedding_size, kWidthOrNone},
      {"type_vocab_size", s.enc.type_vocab_size, kWidthOrNone},
      {"num_hidden_groups x inner_group_num", s.enc.weight_sets, kLayerCount},
      {"rel_embeddings rows", s.enc.rel_pos_rows, {0, io::kMaxLearnedPositions}},
      {"relative_attention_num_buckets", s.enc.rel_bias_buckets, kWidthOrNone},
      {"num_decoder_layers", s.enc.decoder_layers, kLayerCount},
      {"num_labels", s.num_labels, kWidth},
  };
  for (const auto& c : checks) {
    if (!c.range.Contains(c.v)) return io::OutOfRange(where, c.key, c.v, c.range);
  }
  if (s.attn_kind == AttnKind::kStandard && s.num_attention_heads % s.num_key_value_heads != 0) {
    return Corrupt(fmt::format("{}: num_attention_heads ({}) is not a multiple of "
                               "num_key_value_heads ({})",
                               where, s.num_attention_heads, s.num_key_value_heads));
  }
  if (s.num_experts > 0 && (s.num_experts_per_tok < 1 || s.num_experts_per_tok > s.num_experts)) {
    return Corrupt(fmt::format("{}: num_experts_per_tok = {}: must be between 1 and num_experts ({})",
                               where, s.num_experts_per_tok, s.num_experts));
  }
  if (s.num_experts > 0 && s.moe_intermediate_size <= 0) {
    return Corrupt(fmt::format("{}: an MoE model needs a positive expert intermediate size", where));
  }
  if (static_cast<int64_t>(s.layers.size()) != s.num_hidden_layers) {
    return Corrupt(fmt::format("{}: layer list has {} entries for {} layers", where,
                               s.layers.size(), s.num_hidden_layers));
  }
  return ValidateRecurrent(s, where);
}

}  // namespace vramfit
