// config.json -> ModelSpec, per model_type.
//
// Sources for each family's tensor layout and defaults are the transformers
// modeling_*.py / configuration_*.py files named in docs/estimation.md
// ("Parameter inventory"). Key aliases (n_embd, n_layer, ...) follow each
// configuration class's attribute_map.
#include "vramfit/io/hf_config.h"

#include <algorithm>
#include <initializer_list>
#include <set>

#include <fmt/format.h>

#include "vramfit/io/json_util.h"

namespace vramfit {
namespace {

using io::Json;

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

  // First present key among aliases, as an integer.
  std::optional<int64_t> Int(std::initializer_list<std::string_view> keys) {
    for (std::string_view k : keys) {
      auto r = io::GetInt(obj_, k, where_);
      if (!r.ok()) { Fail(r.error()); return std::nullopt; }
      if (r->has_value()) return **r;
    }
    return std::nullopt;
  }
  int64_t Int(std::initializer_list<std::string_view> keys, int64_t dflt) {
    return Int(keys).value_or(dflt);
  }
  // A key that must be present and positive.
  int64_t Required(std::initializer_list<std::string_view> keys) {
    auto v = Int(keys);
    if (!error_ && !v) {
      Fail(Corrupt(fmt::format("{}: required key '{}' is missing", where_, *keys.begin())));
      return 1;
    }
    if (!error_ && *v <= 0) {
      Fail(Corrupt(fmt::format("{}: key '{}': expected a positive integer, got {}", where_,
                               *keys.begin(), *v)));
      return 1;
    }
    return v.value_or(1);
  }
  std::optional<bool> Bool(std::string_view key) {
    auto r = io::GetBool(obj_, key, where_);
    if (!r.ok()) { Fail(r.error()); return std::nullopt; }
    return *r;
  }
  bool Bool(std::string_view key, bool dflt) { return Bool(key).value_or(dflt); }
  std::optional<double> Number(std::string_view key) {
    auto r = io::GetNumber(obj_, key, where_);
    if (!r.ok()) { Fail(r.error()); return std::nullopt; }
    return *r;
  }
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
  const Json& obj_;
  std::string where_;
  std::optional<Error> error_;
};

const std::vector<std::string> kSupported = {
    "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "gemma",
    "gemma2", "gemma3", "gemma3_text", "phi", "phi3", "phimoe", "deepseek_v2", "deepseek_v3",
    "gpt_oss", "falcon", "gpt2", "opt", "bloom", "gpt_neox", "gpt_bigcode", "mpt", "cohere",
    "olmo2", "granite", "starcoder2", "yi", "internlm2"};

// transformers' default tie_word_embeddings per configuration class.
bool DefaultTie(const std::string& t) {
  static const std::set<std::string> kTied = {"gemma", "gemma2", "gemma3", "gemma3_text",
                                              "cohere", "falcon", "gpt2", "opt", "bloom",
                                              "gpt_bigcode", "mpt", "starcoder2"};
  return kTied.count(t) > 0;
}

// Fields shared by Llama-style configs (hidden_size, heads, head_dim...).
void ReadLlamaCore(Reader& r, ModelSpec& s) {
  s.hidden_size = r.Required({"hidden_size"});
  s.num_hidden_layers = r.Required({"num_hidden_layers"});
  s.num_attention_heads = r.Required({"num_attention_heads"});
  s.num_key_value_heads = r.Int({"num_key_value_heads"}, s.num_attention_heads);
  s.vocab_size = r.Required({"vocab_size"});
  s.max_position_embeddings = r.Int({"max_position_embeddings"}, 0);
  s.head_dim = r.Int({"head_dim"}, 0);
  if (s.head_dim == 0 && s.num_attention_heads > 0) {
    s.head_dim = s.hidden_size / s.num_attention_heads;
  }
  s.v_head_dim = s.head_dim;
  if (r.Has("intermediate_size")) s.intermediate_size = r.Required({"intermediate_size"});
  s.norm_kind = NormKind::kRms;
  s.norms_per_layer = 2;
  s.mlp_kind = MlpKind::kGated;
}

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
  auto w = r.Int({"sliding_window"});
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
  } else if (c.method == "gptq" || c.method == "awq") {
    c.bits = q.Int({"bits", "w_bit"}, 4);
    c.group_size = q.Int({"group_size", "q_group_size"}, 128);
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
  } else if (!c.method.empty() && notes != nullptr) {
    notes->push_back(fmt::format(
        "quantization_config quant_method '{}' is not modelled; weights are sized at the "
        "model's dtype unless --quant says otherwise",
        c.method));
    return;
  }
  if (!c.method.empty()) s.checkpoint_quant = c;
}

// Gemma-3 vision tower (SigLIP) + projector parameters, from vision_config.
// Tensor list: modeling_siglip.py (patch conv + bias, position table, per
// layer 2 LayerNorms, q/k/v/out with bias, fc1/fc2 with bias; post LN) and
// modeling_gemma3.py Gemma3MultiModalProjector (mm_input_projection_weight
// [vision_hidden, text_hidden] + mm_soft_emb_norm [vision_hidden]).
void ReadSiglipVision(const Json& vc, const std::string& where, int64_t text_hidden,
                      ModelSpec& s, std::vector<std::string>* notes) {
  Reader v(vc, where + ": vision_config");
  const int64_t h = v.Int({"hidden_size"}, 768);
  const int64_t inter = v.Int({"intermediate_size"}, 3072);
  const int64_t layers = v.Int({"num_hidden_layers"}, 12);
  const int64_t patch = v.Int({"patch_size"}, 16);
  const int64_t image = v.Int({"image_size"}, 224);
  const int64_t channels = v.Int({"num_channels"}, 3);
  if (v.error() || h <= 0 || inter <= 0 || layers <= 0 || patch <= 0 || image <= 0) return;
  const int64_t positions = (image / patch) * (image / patch);
  int64_t n = channels * patch * patch * h + h;             // patch embedding conv + bias
  n += positions * h;                                        // position embedding
  n += layers * (4 * (h * h + h) + 2 * (inter * h) + inter + h + 4 * h);
  n += 2 * h;                                                // post_layernorm
  n += h * text_hidden + h;                                  // projector + soft-emb norm
  s.vision_params = n;
  s.vision_note = fmt::format("SigLIP vision tower ({} layers, hidden {}) + projector", layers, h);
  if (notes) {
    notes->push_back("multimodal checkpoint: the vision tower is counted in the checkpoint "
                     "parameters but estimates cover the text decoder");
  }
}

Status MapFamily(Reader& r, const std::string& t, ModelSpec& s, std::vector<std::string>* notes) {
  const auto init_layers = [&s] { s.layers.assign(static_cast<size_t>(s.num_hidden_layers), {}); };

  if (t == "gpt2") {
    s.hidden_size = r.Required({"n_embd", "hidden_size"});
    s.num_hidden_layers = r.Required({"n_layer", "num_hidden_layers"});
    s.num_attention_heads = r.Required({"n_head", "num_attention_heads"});
    s.num_key_value_heads = s.num_attention_heads;
    s.vocab_size = r.Required({"vocab_size"});
    s.max_position_embeddings = r.Int({"n_positions", "max_position_embeddings"}, 1024);
    s.learned_positions = s.max_position_embeddings;
    s.intermediate_size = r.Int({"n_inner"}, 4 * s.hidden_size);
    s.head_dim = s.v_head_dim = s.hidden_size / s.num_attention_heads;
    s.fused_qkv = true;
    SetAllAttentionBias(s, true);
    s.mlp_kind = MlpKind::kPlain;
    s.mlp_bias = true;
    s.norm_kind = NormKind::kLayerNorm;
    s.norms_per_layer = 2;
    init_layers();
    return {};
  }
  if (t == "gpt_bigcode") {
    s.hidden_size = r.Required({"n_embd", "hidden_size"});
    s.num_hidden_layers = r.Required({"n_layer", "num_hidden_layers"});
    s.num_attention_heads = r.Required({"n_head", "num_attention_heads"});
    s.num_key_value_heads = r.Bool("multi_query", true) ? 1 : s.num_attention_heads;
    s.vocab_size = r.Required({"vocab_size"});
    s.max_position_embeddings = r.Int({"n_positions", "max_position_embeddings"}, 1024);
    s.learned_positions = s.max_position_embeddings;
    s.intermediate_size = r.Int({"n_inner"}, 4 * s.hidden_size);
    s.head_dim = s.v_head_dim = s.hidden_size / s.num_attention_heads;
    s.fused_qkv = true;
    SetAllAttentionBias(s, true);
    s.mlp_kind = MlpKind::kPlain;
    s.mlp_bias = true;
    s.norm_kind = NormKind::kLayerNorm;
    init_layers();
    return {};
  }
  if (t == "opt") {
    s.hidden_size = r.Required({"hidden_size"});
    s.num_hidden_layers = r.Required({"num_hidden_layers"});
    s.num_attention_heads = r.Required({"num_attention_heads"});
    s.num_key_value_heads = s.num_attention_heads;
    s.vocab_size = r.Required({"vocab_size"});
    s.intermediate_size = r.Required({"ffn_dim"});
    s.max_position_embeddings = r.Int({"max_position_embeddings"}, 2048);
    // OPTLearnedPositionalEmbedding keeps an offset of 2 rows.
    s.learned_positions = s.max_position_embeddings + 2;
    s.word_embed_proj_dim = r.Int({"word_embed_proj_dim"}, s.hidden_size);
    if (s.word_embed_proj_dim == s.hidden_size) s.word_embed_proj_dim = 0;
    s.head_dim = s.v_head_dim = s.hidden_size / s.num_attention_heads;
    const bool bias = r.Bool("enable_bias", true);
    SetAllAttentionBias(s, bias);
    s.mlp_kind = MlpKind::kPlain;
    s.mlp_bias = bias;
    s.norm_kind = r.Bool("layer_norm_elementwise_affine", true) ? NormKind::kLayerNorm
                                                                 : NormKind::kLayerNormNoBias;
    s.final_norm = r.Bool("do_layer_norm_before", true) && !r.Bool("_remove_final_layer_norm", false);
    init_layers();
    return {};
  }
  if (t == "bloom") {
    s.hidden_size = r.Required({"n_embed", "hidden_size"});
    s.num_hidden_layers = r.Required({"n_layer", "num_hidden_layers"});
    s.num_attention_heads = r.Required({"n_head", "num_attention_heads"});
    s.num_key_value_heads = s.num_attention_heads;
    s.vocab_size = r.Required({"vocab_size"});
    s.max_position_embeddings = r.Int({"seq_length", "max_position_embeddings"}, 2048);
    s.intermediate_size = 4 * s.hidden_size;
    s.head_dim = s.v_head_dim = s.hidden_size / s.num_attention_heads;
    s.fused_qkv = true;
    SetAllAttentionBias(s, true);
    s.mlp_kind = MlpKind::kPlain;
    s.mlp_bias = true;
    s.norm_kind = NormKind::kLayerNorm;
    s.embed_norm = true;
    init_layers();
    return {};
  }
  if (t == "gpt_neox") {
    ReadLlamaCore(r, s);
    s.fused_qkv = true;
    SetAllAttentionBias(s, r.Bool("attention_bias", true));
    s.mlp_kind = MlpKind::kPlain;
    s.mlp_bias = true;
    s.norm_kind = NormKind::kLayerNorm;
    init_layers();
    return {};
  }
  if (t == "mpt") {
    s.hidden_size = r.Required({"d_model", "hidden_size"});
    s.num_hidden_layers = r.Required({"n_layers", "num_hidden_layers"});
    s.num_attention_heads = r.Required({"n_heads", "num_attention_heads"});
    s.vocab_size = r.Required({"vocab_size"});
    s.max_position_embeddings = r.Int({"max_seq_len"}, 2048);
    s.intermediate_size = r.Int({"expansion_ratio"}, 4) * s.hidden_size;
    s.num_key_value_heads = s.num_attention_heads;
    auto ac = r.obj().find("attn_config");
    if (ac != r.obj().end() && ac->is_object()) {
      Reader a(*ac, r.where() + ": attn_config");
      s.num_key_value_heads = a.Int({"kv_n_heads"}, s.num_attention_heads);
      if (a.error()) return *a.error();
    }
    s.head_dim = s.v_head_dim = s.hidden_size / s.num_attention_heads;
    s.fused_qkv = true;
    const bool bias = !r.Bool("no_bias", false);
    SetAllAttentionBias(s, bias);
    s.mlp_kind = MlpKind::kPlain;
    s.mlp_bias = bias;
    s.norm_kind = bias ? NormKind::kLayerNorm : NormKind::kLayerNormNoBias;
    init_layers();
    return {};
  }
  if (t == "falcon" || t == "RefinedWeb" || t == "RefinedWebModel") {
    s.hidden_size = r.Required({"hidden_size", "n_embed"});
    s.num_hidden_layers = r.Required({"num_hidden_layers", "n_layer"});
    s.num_attention_heads = r.Required({"num_attention_heads", "n_head"});
    s.vocab_size = r.Required({"vocab_size"});
    s.max_position_embeddings = r.Int({"max_position_embeddings"}, 2048);
    const bool new_arch = r.Bool("new_decoder_architecture", t == "RefinedWeb");
    if (new_arch) {
      s.num_key_value_heads = r.Int({"num_kv_heads", "n_head_kv"}, s.num_attention_heads);
    } else {
      s.num_key_value_heads = r.Bool("multi_query", true) ? 1 : s.num_attention_heads;
    }
    s.head_dim = s.v_head_dim = s.hidden_size / s.num_attention_heads;
    s.intermediate_size = r.Int({"ffn_hidden_size"}, 4 * s.hidden_size);
    s.fused_qkv = true;
    const bool bias = r.Bool("bias", false);
    SetAllAttentionBias(s, bias);
    s.mlp_kind = MlpKind::kPlain;
    s.mlp_bias = bias;
    s.norm_kind = NormKind::kLayerNorm;
    const bool parallel = r.Bool("parallel_attn", true);
    if (new_arch) s.norms_per_layer = r.Int({"num_ln_in_parallel_attn"}, 2);
    else s.norms_per_layer = parallel ? 1 : 2;
    init_layers();
    return {};
  }
  if (t == "phi") {
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
    init_layers();
    return {};
  }
  if (t == "cohere") {
    ReadLlamaCore(r, s);
    SetAllAttentionBias(s, r.Bool("attention_bias", false));
    s.norm_kind = NormKind::kLayerNormNoBias;
    s.norms_per_layer = 1;  // parallel attention + MLP off one LayerNorm
    if (r.Bool("use_qk_norm", false)) s.qk_norm = QkNorm::kFull;
    init_layers();
    return {};
  }

  // Llama-style families from here on.
  ReadLlamaCore(r, s);
  init_layers();
  if (r.error()) return *r.error();

  if (t == "llama" || t == "mistral" || t == "yi" || t == "granite" || t == "internlm2") {
    SetAllAttentionBias(s, r.Bool("attention_bias", false));
    s.mlp_bias = r.Bool("mlp_bias", false);
    if (t == "mistral") ReadUniformSlidingWindow(r, s);
  } else if (t == "qwen2") {
    s.q_bias = s.k_bias = s.v_bias = true;  // Qwen2Attention: qkv bias, no o bias
    ReadLayerTypes(r, s);
    if (!r.Has("layer_types")) ReadUniformSlidingWindow(r, s);
    if (s.layers[0].attention == LayerAttention::kSliding || r.Has("layer_types")) {
      s.sliding_window = r.Int({"sliding_window"}, 0);
    }
  } else if (t == "qwen3") {
    SetAllAttentionBias(s, r.Bool("attention_bias", false));
    s.qk_norm = QkNorm::kPerHead;
    ReadLayerTypes(r, s);
    if (!r.Has("layer_types")) ReadUniformSlidingWindow(r, s);
    s.sliding_window = r.Int({"sliding_window"}, 0);
  } else if (t == "olmo2") {
    SetAllAttentionBias(s, r.Bool("attention_bias", false));
    s.qk_norm = QkNorm::kFull;
  } else if (t == "starcoder2") {
    SetAllAttentionBias(s, r.Bool("use_bias", true));
    s.mlp_kind = MlpKind::kPlain;
    s.mlp_bias = r.Bool("use_bias", true);
    s.norm_kind = NormKind::kLayerNorm;
    ReadUniformSlidingWindow(r, s);
  } else if (t == "gemma") {
    SetAllAttentionBias(s, r.Bool("attention_bias", false));
  } else if (t == "gemma2" || t == "gemma3_text" || t == "gemma3") {
    SetAllAttentionBias(s, r.Bool("attention_bias", false));
    s.norms_per_layer = 4;  // input, post_attention, pre_feedforward, post_feedforward
    s.sliding_window = r.Int({"sliding_window"}, 4096);
    if (t == "gemma2") {
      // Gemma2DecoderLayer: even layers use the sliding window.
      for (int64_t i = 0; i < s.num_hidden_layers; ++i) {
        s.layers[i].attention = (i % 2 == 0) ? LayerAttention::kSliding : LayerAttention::kFull;
      }
    } else {
      s.qk_norm = QkNorm::kPerHead;
      // Gemma3: every sliding_window_pattern-th layer is global (default 6).
      const int64_t pattern = r.Int({"sliding_window_pattern"}, 6);
      for (int64_t i = 0; i < s.num_hidden_layers; ++i) {
        s.layers[i].attention = (pattern > 0 && (i + 1) % pattern == 0) ? LayerAttention::kFull
                                                                         : LayerAttention::kSliding;
      }
    }
    ReadLayerTypes(r, s);
  } else if (t == "phi3") {
    s.fused_qkv = true;
    s.fused_gate_up = true;
    ReadUniformSlidingWindow(r, s);
  } else if (t == "mixtral" || t == "phimoe") {
    s.num_experts = r.Required({"num_local_experts"});
    s.num_experts_per_tok = r.Int({"num_experts_per_tok"}, 2);
    s.moe_intermediate_size = s.intermediate_size;
    for (LayerSpec& l : s.layers) l.moe = true;
    ReadUniformSlidingWindow(r, s);
    if (t == "phimoe") {
      SetAllAttentionBias(s, r.Bool("attention_bias", true));
      s.norm_kind = NormKind::kLayerNorm;
      s.lm_head_bias = r.Bool("lm_head_bias", true);
    }
  } else if (t == "qwen2_moe" || t == "qwen3_moe") {
    if (t == "qwen2_moe") {
      s.q_bias = s.k_bias = s.v_bias = true;
      s.shared_expert_intermediate_size = r.Int({"shared_expert_intermediate_size"}, 0);
      s.shared_expert_gate = s.shared_expert_intermediate_size > 0;
    } else {
      SetAllAttentionBias(s, r.Bool("attention_bias", false));
      s.qk_norm = QkNorm::kPerHead;
    }
    s.num_experts = r.Int({"num_experts"}, 0);
    s.num_experts_per_tok = r.Int({"num_experts_per_tok"}, 8);
    s.moe_intermediate_size = r.Int({"moe_intermediate_size"}, 0);
    const int64_t step = r.Int({"decoder_sparse_step"}, 1);
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
  } else if (t == "deepseek_v2" || t == "deepseek_v3") {
    s.attn_kind = AttnKind::kMla;
    s.q_lora_rank = r.Int({"q_lora_rank"}, 0);
    s.kv_lora_rank = r.Required({"kv_lora_rank"});
    s.qk_nope_head_dim = r.Required({"qk_nope_head_dim"});
    s.qk_rope_head_dim = r.Required({"qk_rope_head_dim"});
    s.v_head_dim = r.Required({"v_head_dim"});
    s.head_dim = s.qk_nope_head_dim + s.qk_rope_head_dim;
    SetAllAttentionBias(s, false);
    s.num_experts = r.Int({"n_routed_experts"}, 0);
    s.num_experts_per_tok = r.Int({"num_experts_per_tok"}, 0);
    s.moe_intermediate_size = r.Int({"moe_intermediate_size"}, 0);
    s.num_shared_experts = r.Int({"n_shared_experts"}, 0);
    s.shared_expert_intermediate_size = s.num_shared_experts * s.moe_intermediate_size;
    const int64_t first_dense = r.Int({"first_k_dense_replace"}, 0);
    const int64_t freq = r.Int({"moe_layer_freq"}, 1);
    for (int64_t i = 0; i < s.num_hidden_layers; ++i) {
      s.layers[i].moe = s.num_experts > 0 && i >= first_dense && freq > 0 && i % freq == 0;
    }
    // DeepseekV3TopkRouter keeps e_score_correction_bias for noaux_tc.
    s.router_score_bias = r.String("topk_method").value_or(t == "deepseek_v3" ? "noaux_tc" : "") ==
                          "noaux_tc";
    s.num_nextn_predict_layers = r.Int({"num_nextn_predict_layers"}, 0);
  } else if (t == "gpt_oss") {
    SetAllAttentionBias(s, r.Bool("attention_bias", true));
    s.attention_sinks = true;
    s.num_experts = r.Required({"num_local_experts"});
    s.num_experts_per_tok = r.Int({"num_experts_per_tok", "experts_per_token"}, 4);
    s.moe_intermediate_size = s.intermediate_size;
    s.fused_gate_up = true;
    s.router_bias = true;
    s.expert_bias = true;
    s.sliding_window = r.Int({"sliding_window"}, 128);
    for (int64_t i = 0; i < s.num_hidden_layers; ++i) {
      s.layers[i].moe = true;
      s.layers[i].attention = (i % 2 == 0) ? LayerAttention::kSliding : LayerAttention::kFull;
    }
    ReadLayerTypes(r, s);
  } else {
    // Unknown type with Llama-style keys: read as a Llama block, and say so.
    SetAllAttentionBias(s, r.Bool("attention_bias", false));
    s.mlp_bias = r.Bool("mlp_bias", false);
    if (notes) {
      notes->push_back(fmt::format(
          "model_type '{}' has no dedicated mapping: read as a Llama-style block (RMSNorm, "
          "q/k/v/o, gate/up/down); the parameter count may differ from the real model",
          t));
    }
  }
  if (s.intermediate_size == 0 && s.num_experts == 0) {
    return Corrupt(fmt::format("{}: required key 'intermediate_size' is missing", r.where()));
  }
  return {};
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
  ModelSpec s;
  Reader top(*doc, std::string(where));
  s.model_type = top.String("model_type").value_or("");
  auto arch = doc->find("architectures");
  if (arch != doc->end() && arch->is_array() && !arch->empty() && (*arch)[0].is_string()) {
    s.architecture = (*arch)[0].get<std::string>();
  }
  if (top.error()) return *top.error();

  // Multimodal wrappers keep the decoder in text_config.
  const Json* cfg = &*doc;
  std::string cfg_where(where);
  std::string type = s.model_type;
  auto text = doc->find("text_config");
  if (text != doc->end() && text->is_object()) {
    cfg = &*text;
    cfg_where += ": text_config";
    Reader tr(*cfg, cfg_where);
    std::string inner = tr.String("model_type").value_or("");
    if (tr.error()) return *tr.error();
    if (inner.empty() && type == "gemma3") inner = "gemma3_text";
    if (!inner.empty()) type = inner;
  }
  if (type.empty()) {
    // Old checkpoints (Falcon "RefinedWebModel") sometimes lack model_type.
    if (s.architecture.empty()) {
      return Corrupt(fmt::format("{}: neither 'model_type' nor 'architectures' is set", where));
    }
    return Unsupported(fmt::format("{}: 'model_type' is missing (architectures: {})", where,
                                   s.architecture));
  }
  if (type.find("t5") != std::string::npos || type == "bert" || type == "albert" ||
      type == "roberta" || type == "bart" || type == "whisper") {
    return Unsupported(fmt::format(
        "{}: model_type '{}' is an encoder or encoder-decoder model; vramfit models decoder-only "
        "LLMs",
        where, type));
  }

  Reader r(*cfg, cfg_where);
  Status st = MapFamily(r, type, s, notes);
  if (!st.ok()) return st.error();
  if (r.error()) return *r.error();

  // Common keys, read from the decoder config (then the top level).
  const bool tie_default = DefaultTie(type);
  std::optional<bool> tie = r.Bool("tie_word_embeddings");
  if (!tie) tie = top.Bool("tie_word_embeddings");
  s.tie_word_embeddings = tie.value_or(tie_default);
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

  Reader qr(*doc, std::string(where));
  ReadQuantConfig(qr, s, notes);
  if (qr.error()) return *qr.error();
  if (cfg != &*doc && !s.checkpoint_quant) {
    ReadQuantConfig(r, s, notes);
    if (r.error()) return *r.error();
  }
  auto vision = doc->find("vision_config");
  if (vision != doc->end() && vision->is_object()) {
    Reader vr(*vision, std::string(where));
    const std::string vtype = vr.String("model_type").value_or("siglip_vision_model");
    if (vtype == "siglip_vision_model") {
      ReadSiglipVision(*vision, std::string(where), s.hidden_size, s, notes);
    } else if (notes) {
      notes->push_back(fmt::format("vision tower '{}' is not counted", vtype));
    }
  }

  Status v = ValidateSpec(s, where);
  if (!v.ok()) return v.error();
  return s;
}

Status ValidateSpec(const ModelSpec& s, std::string_view where) {
  // Caps keep every product in BuildInventory and the estimators far from
  // int64 overflow; the largest real models are ~1e5 hidden, ~1e6 vocab.
  constexpr int64_t kMaxDim = int64_t{1} << 24;
  constexpr int64_t kMaxLayers = 4096;
  constexpr int64_t kMaxExperts = 1 << 16;
  const auto bad = [&](std::string_view key, int64_t v, std::string_view need) {
    return Corrupt(fmt::format("{}: {} = {}: {}", where, key, v, need));
  };
  const struct { const char* key; int64_t v; int64_t lo; int64_t hi; } checks[] = {
      {"hidden_size", s.hidden_size, 1, kMaxDim},
      {"num_hidden_layers", s.num_hidden_layers, 1, kMaxLayers},
      {"num_attention_heads", s.num_attention_heads, 1, kMaxDim},
      {"num_key_value_heads", s.num_key_value_heads, 1, kMaxDim},
      {"head_dim", s.head_dim, 1, kMaxDim},
      {"vocab_size", s.vocab_size, 1, kMaxDim},
      {"intermediate_size", s.intermediate_size, 0, kMaxDim},
      {"moe_intermediate_size", s.moe_intermediate_size, 0, kMaxDim},
      {"num_experts", s.num_experts, 0, kMaxExperts},
      {"max_position_embeddings", s.max_position_embeddings, 0, int64_t{1} << 30},
      {"kv_lora_rank", s.kv_lora_rank, 0, kMaxDim},
      {"q_lora_rank", s.q_lora_rank, 0, kMaxDim},
  };
  for (const auto& c : checks) {
    if (c.v < c.lo || c.v > c.hi) {
      return bad(c.key, c.v, fmt::format("must be between {} and {}", c.lo, c.hi));
    }
  }
  if (s.attn_kind == AttnKind::kStandard && s.num_attention_heads % s.num_key_value_heads != 0) {
    return Corrupt(fmt::format("{}: num_attention_heads ({}) is not a multiple of "
                               "num_key_value_heads ({})",
                               where, s.num_attention_heads, s.num_key_value_heads));
  }
  if (s.num_experts > 0 && (s.num_experts_per_tok < 1 || s.num_experts_per_tok > s.num_experts)) {
    return bad("num_experts_per_tok", s.num_experts_per_tok,
               fmt::format("must be between 1 and num_experts ({})", s.num_experts));
  }
  if (s.num_experts > 0 && s.moe_intermediate_size <= 0) {
    return Corrupt(fmt::format("{}: an MoE model needs a positive expert intermediate size", where));
  }
  if (static_cast<int64_t>(s.layers.size()) != s.num_hidden_layers) {
    return Corrupt(fmt::format("{}: layer list has {} entries for {} layers", where,
                               s.layers.size(), s.num_hidden_layers));
  }
  return {};
}

}  // namespace vramfit
