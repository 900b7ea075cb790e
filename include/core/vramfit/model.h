// ModelSpec: the architecture numbers of a transformer (decoder-only LLM,
// encoder such as BERT, or encoder-decoder such as T5), and its exact
// parameter inventory.
//
// Field names follow Hugging Face config.json keys where one exists. The
// config reader (io/hf_config.h) resolves each model_type's conventions
// (fused projections, bias flags, norm placement, layer patterns) into these
// generic fields, so the core never looks at a model_type string.
#ifndef VRAMFIT_MODEL_H_
#define VRAMFIT_MODEL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vramfit/dtype.h"
#include "vramfit/error.h"
#include "vramfit/units.h"

namespace vramfit {

enum class NormKind { kRms, kLayerNorm, kLayerNormNoBias };
enum class MlpKind { kGated, kPlain };  // gate/up/down (SwiGLU, GeGLU) vs fc1/fc2
enum class AttnKind { kStandard, kMla };
enum class QkNorm { kNone, kPerHead, kFull };  // weight [head_dim] or [heads*head_dim]
// The softmax attention of a decoder layer: full, sliding-window, or none
// (a layer whose mixer is only recurrent, or an MLP-only layer).
enum class LayerAttention { kFull, kSliding, kNone };

// The fixed-state (recurrent) token mixer of a decoder layer, beside or
// instead of softmax attention. Each keeps a per-sequence state whose size
// does not grow with the context (RecurrentStateElements).
//   kMamba1        Mamba (selective scan): modeling_mamba.py, Jamba's mamba layers
//   kMamba2        Mamba-2 / SSD: modeling_mamba2.py, Nemotron-H, Granite-4.0-H, Falcon-H1
//   kGatedDeltaNet Gated DeltaNet: Qwen3-Next / Qwen3.5 linear_attention layers
//   kKimiDelta     Kimi Delta Attention: Kimi-Linear KDA layers
//   kShortConv     gated short convolution: LFM2 "conv" layers
enum class RecurrentKind { kNone, kMamba1, kMamba2, kGatedDeltaNet, kKimiDelta, kShortConv };
// "Mamba", "Mamba-2", "Gated DeltaNet", "Kimi Delta Attention", "short conv"; "none".
const char* RecurrentName(RecurrentKind k);

// How the layers are arranged: a causal decoder stack (LLMs), a
// bidirectional encoder stack (BERT family: no KV cache, no generation), or
// an encoder plus a decoder with cross-attention (T5, BART).
enum class Topology { kDecoder, kEncoder, kEncoderDecoder };
const char* TopologyName(Topology t);  // "decoder", "encoder", "encoder-decoder"

// The task head an encoder or encoder-decoder model is instantiated with
// (transformers' Auto class): kBase = AutoModel (the backbone, with its
// pooler where the family has one); kMaskedLm = *ForMaskedLM (transform +
// tied decoder + bias); kSeqCls = *ForSequenceClassification; kTokenCls =
// *ForTokenClassification; kPretraining = the pre-training heads
// (BertForPreTraining: MLM + next-sentence; ElectraForPreTraining: the
// discriminator); kSeq2SeqLm = *ForConditionalGeneration (lm_head).
// Decoder-only LLMs are always kCausalLm.
enum class HeadKind { kCausalLm, kBase, kMaskedLm, kSeqCls, kTokenCls, kPretraining, kSeq2SeqLm };
const char* HeadName(HeadKind h);  // "causal-lm", "base", "mlm", "seq-cls", ...
// "base", "mlm", "seq-cls", "token-cls", "pretraining", "seq2seq-lm".
Result<HeadKind> ParseHead(std::string_view s);

// How a family builds each head (the config reader resolves the family;
// the core only reads these fields). Widths are 0 where the family has no
// such tensor.
struct HeadStyle {
  bool base_pooler = false;       // the backbone has pooler.dense [h, h] + bias (BERT, ALBERT, RoBERTa)
  bool seq_cls_pooler = false;    // sequence classification runs through that pooler (BERT, ALBERT)
  bool seq_cls_dense = false;     // a dense [h, h] + bias before out_proj (RoBERTa, ELECTRA, BART,
                                  // DeBERTa ContextPooler)
  bool cls_norm = false;          // ModernBERT: seq/token classification run head.dense + head.norm
  bool cls_bias = true;           // the classifier's bias
  int64_t mlm_width = 0;          // MLM transform dense output width (h; ALBERT/ELECTRA: embedding_size)
  bool mlm_dense_bias = true;     // ModernBERT: classifier_bias (false)
  bool mlm_decoder_bias = true;   // the decoder's [vocab] bias
  bool mlm_decoder_tied = true;   // decoder weight tied to the word embeddings
  int64_t pretrain_classes = 0;   // BERT NSP / ALBERT SOP: 2 ([2, h] + 2); ELECTRA discriminator: 1
  bool pretrain_mlm = true;       // the pre-training head includes the MLM head (not ELECTRA)
  bool pretrain_dense = false;    // ELECTRA discriminator_predictions.dense [h, h] + bias
};

// The fields encoder and encoder-decoder families add (defaults: absent).
struct EncoderSpec {
  int64_t embedding_size = 0;   // factorized embedding width (ALBERT, ELECTRA); 0 = hidden_size
  int64_t type_vocab_size = 0;  // token_type (segment) embedding rows; 0 = none
  int64_t weight_sets = 0;      // ALBERT: distinct layer weight sets (num_hidden_groups x
                                // inner_group_num) shared by all layers; 0 = one per layer
  int64_t rel_pos_rows = 0;     // DeBERTa-v2 encoder.rel_embeddings rows
  bool rel_pos_norm = false;    // DeBERTa-v2 norm_rel_ebd "layer_norm"
  bool pos_key_proj = false;    // DeBERTa-v2 share_att_key false, c2p: pos_key_proj [h, h] + bias
  bool pos_query_proj = false;  // DeBERTa-v2 share_att_key false, p2c: pos_query_proj [h, h] + bias
  int64_t rel_bias_buckets = 0;   // T5 relative_attention_bias [buckets, heads], layer 0 of each stack
  bool first_layer_attn_norm = true;  // ModernBERT: layer 0 has no attn_norm (nn.Identity)
  int64_t decoder_layers = 0;   // encoder-decoder: layers of the decoder stack
  bool stack_embed_norm = false;  // BART layernorm_embedding in each stack
  bool stack_final_norm = false;  // T5 final_layer_norm in each stack
  int64_t global_attn_every = 0;  // ModernBERT global_attn_every_n_layers (others: local window)
  int64_t local_window = 0;       // ModernBERT local_attention (tokens)
  bool rope = false;              // rotary positions (ModernBERT): q, k copies in attention
  bool hidden_dropout = false;    // hidden dropout > 0 in train mode (masks are saved)
  bool attn_dropout = false;      // attention-probability dropout > 0 in train mode
  HeadStyle heads;
};

// One decoder layer's variable traits. A layer has up to three parts:
// softmax attention (attention != kNone; MLA when the model's attn_kind is
// kMla), a recurrent mixer (recurrent != kNone), and an MLP (mlp: dense, or
// routed experts when moe). Falcon-H1 layers have attention AND a Mamba-2
// mixer in parallel; Nemotron-H '-' layers have neither (MLP only); its 'M'
// and '*' layers, and Mamba models, have no MLP. Pure-attention models keep
// the defaults: {kFull or kSliding, moe, kNone, mlp = true}.
struct LayerSpec {
  LayerAttention attention = LayerAttention::kFull;
  bool moe = false;  // routed experts in place of the dense MLP (REQUIRES: mlp)
  RecurrentKind recurrent = RecurrentKind::kNone;
  bool mlp = true;   // the layer has an MLP (dense, or MoE when moe)

  bool HasAttention() const { return attention != LayerAttention::kNone; }
  bool HasRecurrent() const { return recurrent != RecurrentKind::kNone; }
  // Same parts (attention present, recurrent kind, MLP kind): layers of one
  // class share their tensor shapes. Full and sliding attention are one class.
  bool SameClass(const LayerSpec& o) const {
    return HasAttention() == o.HasAttention() && recurrent == o.recurrent && mlp == o.mlp &&
           moe == o.moe;
  }
};

// A Mamba-1 or Mamba-2 mixer (config keys in parentheses; the reader maps
// each family's names: mamba_d_state, ssm_state_size, mamba_n_heads...).
//   Mamba-1 (modeling_mamba.py MambaMixer): in_proj [2*d_inner, h], conv1d
//   [d_inner, 1, d_conv] (+bias), x_proj [dt_rank + 2*d_state, d_inner],
//   dt_proj [d_inner, dt_rank] + bias, A_log [d_inner, d_state], D [d_inner],
//   out_proj [h, d_inner]. State: conv d_inner x (d_conv or d_conv-1), ssm
//   d_inner x d_state.
//   Mamba-2 (modeling_mamba2.py Mamba2Mixer): conv_dim = d_inner +
//   2*n_groups*d_state; in_proj [d_inner + conv_dim + num_heads, h], conv1d
//   [conv_dim, 1, d_conv] (+bias), dt_bias, A_log, D [num_heads], gated
//   norm [d_inner], out_proj [h, d_inner]. State: conv conv_dim x (d_conv or
//   d_conv-1), ssm num_heads x head_dim x d_state.
struct MambaSpec {
  int64_t d_inner = 0;      // intermediate width (expand*hidden; Mamba-2: num_heads*head_dim)
  int64_t d_state = 0;      // state_size / ssm_state_size / mamba_d_state
  int64_t d_conv = 0;       // conv_kernel / mamba_d_conv
  int64_t n_groups = 1;     // Mamba-2 B/C groups (n_groups / mamba_n_groups)
  int64_t dt_rank = 0;      // Mamba-1 time_step_rank (Mamba-2: 0)
  int64_t num_heads = 0;    // Mamba-2 heads (Mamba-1: 0)
  int64_t head_dim = 0;     // Mamba-2 head_dim (Mamba-1: 0)
  bool conv_bias = true;    // conv1d.bias (use_conv_bias / mamba_conv_bias)
  bool proj_bias = false;   // in_proj.bias and out_proj.bias (use_bias / mamba_proj_bias)
  bool gated_norm = true;   // Mamba-2 norm.weight [d_inner] (Falcon-H1 mamba_rms_norm)
  bool inner_norms = false; // Jamba Mamba-1: dt_layernorm [dt_rank], b_/c_layernorm [d_state]
};

// A linear-attention mixer: Gated DeltaNet (Qwen3-Next) or Kimi Delta
// Attention. conv_dim = 2*num_k_heads*k_head_dim + num_v_heads*v_head_dim
// (q, k, v short convolutions). State per sequence: conv conv_dim x
// (conv_kernel or conv_kernel-1), recurrent num_v_heads x k_head_dim x
// v_head_dim.
struct LinearAttnSpec {
  int64_t num_k_heads = 0;  // linear_num_key_heads (KDA: num_heads)
  int64_t num_v_heads = 0;  // linear_num_value_heads (KDA: num_heads)
  int64_t k_head_dim = 0;   // linear_key_head_dim (KDA: head_dim)
  int64_t v_head_dim = 0;   // linear_value_head_dim (KDA: head_dim)
  int64_t conv_kernel = 0;  // linear_conv_kernel_dim (KDA: short_conv_kernel_size)
};

// LFM2's gated short convolution: in_proj [3h, h], conv [h, 1, l_cache],
// out_proj [h, h] (biases when bias). State: h x (l_cache or l_cache-1).
struct ShortConvSpec {
  int64_t l_cache = 0;  // conv_L_cache
  bool bias = false;    // conv_bias
};

// Quantization a checkpoint already has (config.json quantization_config).
struct CheckpointQuant {
  std::string method;          // "fp8", "mxfp4", "gptq", "awq", "bitsandbytes", ...
  int64_t bits = 0;            // 4 for gptq/awq, 8 for fp8
  int64_t group_size = 0;      // gptq/awq group size, -1 = per channel
  int64_t block_rows = 0;      // fp8 block scale (DeepSeek: 128 x 128); 0 = per tensor
  int64_t block_cols = 0;
  bool double_quant = false;   // bnb 4-bit
  bool nf4 = true;             // bnb 4-bit type

  // --- Scaled checkpoint formats (compressed-tensors, modelopt, fbgemm_fp8);
  // layouts and sources: docs/formats.md, "Checkpoint formats".
  // method "nvfp4": 4-bit e2m1 values, fp8 scale per 16, fp32 global scale;
  // "int8" / "fp8" with scale_per_row: per-output-channel scales; "mxfp8".
  bool scale_per_row = false;  // weight_scale [out, 1] (else per tensor or block)
  DType scale_dtype = DType::kF32;  // stored dtype of weight_scale
  bool zero_point = false;     // asymmetric int8: weight_zero_point like the scale
  int64_t act_scale_bytes = 0; // per-tensor static activation scales stored
                               // with each quantized linear (input_scale...)
  // Per-module rules, in the order the config lists them (first match wins).
  struct ModuleRule {
    enum class Match {
      kExact,  // the module name equals the pattern (compressed-tensors ignore)
      kHfKey,  // transformers should_convert_module: re.match(key) or name.endswith(key)
      kRegex,  // Python re.match: a regex anchored at the start of the name
      kGlob,   // fnmatch: * and ? wildcards over the whole name (modelopt)
    };
    Match match = Match::kExact;
    std::string pattern;       // without its "re:" / "-:" / "+:" prefix
    bool dense = false;        // the module stays unquantized
    int64_t bits = 0;          // GPTQ/AutoRound dynamic override (0: the format's)
    int64_t group_size = 0;    // 0: the format's
    std::string source;        // the config key it came from, for messages
    bool unordered = false;    // read from a JSON object: its key order is lost
  };
  std::vector<ModuleRule> rules;
  // compressed-tensors quantizes every nn.Linear its targets name, lm_head
  // and routers included unless ignored (other methods: decoder layers only).
  bool all_linear = false;
};

struct ModelSpec {
  std::string id;            // catalog id, file path or hf: reference
  std::string architecture;  // config "architectures"[0]
  std::string model_type;    // config "model_type"
  Topology topology = Topology::kDecoder;
  HeadKind head = HeadKind::kCausalLm;  // encoders: from architectures[0], or --head
  int64_t num_labels = 2;               // classification heads (config num_labels / id2label)
  EncoderSpec enc;                      // encoder and encoder-decoder families only
  DType torch_dtype = DType::kBF16;  // config "torch_dtype" (default bf16)

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t max_position_embeddings = 0;

  // Attention.
  AttnKind attn_kind = AttnKind::kStandard;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;        // q/k head size (explicit or hidden/heads)
  int64_t v_head_dim = 0;      // v head size (= head_dim unless MLA)
  bool q_bias = false, k_bias = false, v_bias = false, o_bias = false;
  bool fused_qkv = false;      // one qkv tensor (Phi-3, Falcon, GPT-2, BLOOM)
  QkNorm qk_norm = QkNorm::kNone;
  bool qk_norm_bias = false;
  bool attention_sinks = false;  // gpt-oss: one learned logit per head
  int64_t sliding_window = 0;  // tokens, for kSliding layers
  bool attn_output_gate = false;  // Qwen3-Next: q_proj also yields a sigmoid gate ([2*heads*head_dim, h])

  // Multi-head latent attention (DeepSeek-V2/V3).
  int64_t q_lora_rank = 0;     // 0 = plain q_proj
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;

  // Dense MLP.
  MlpKind mlp_kind = MlpKind::kGated;
  int64_t intermediate_size = 0;
  bool mlp_bias = false;
  bool fused_gate_up = false;

  // Mixture of experts (num_experts == 0: dense model).
  int64_t num_experts = 0;
  int64_t num_experts_per_tok = 0;
  int64_t moe_intermediate_size = 0;
  int64_t num_shared_experts = 0;             // DeepSeek n_shared_experts
  int64_t shared_expert_intermediate_size = 0;  // total width of the shared MLP
  bool shared_expert_gate = false;            // Qwen2-MoE sigmoid gate [1, h]
  bool router_bias = false;                   // gpt-oss router bias
  bool router_score_bias = false;             // DeepSeek-V3 e_score_correction_bias
  bool expert_bias = false;                   // gpt-oss expert biases

  // Norms and embeddings.
  NormKind norm_kind = NormKind::kRms;
  int64_t norms_per_layer = 2;
  bool final_norm = true;
  bool embed_norm = false;            // BLOOM word_embeddings_layernorm
  bool tie_word_embeddings = false;
  bool lm_head_bias = false;          // Phi-1/2
  int64_t learned_positions = 0;      // rows of a learned position table (GPT-2, OPT)
  int64_t word_embed_proj_dim = 0;    // OPT-350m: embeddings narrower than hidden

  // Per-layer pattern; size() == num_hidden_layers.
  std::vector<LayerSpec> layers;

  // Recurrent mixers, for the layers whose LayerSpec::recurrent names them
  // (zero when the model has none).
  MambaSpec mamba;
  LinearAttnSpec linear_attn;
  ShortConvSpec short_conv;

  // DeepSeek-V3 multi-token-prediction modules (not part of the main model).
  int64_t num_nextn_predict_layers = 0;
  // Qwen3-Next MTP layout: the modules share the model's embeddings and head
  // (mtp.fc [h, 2h], pre_fc_norm_embedding/hidden, a full-attention MoE
  // layer, mtp.norm) instead of DeepSeek's own embed_tokens / shared_head.
  bool mtp_shared_embed = false;

  // Multimodal checkpoints: parameters of the parts vramfit does not decode
  // (vision tower, projector), counted from vision_config when possible.
  int64_t vision_params = 0;
  std::string vision_note;

  std::optional<CheckpointQuant> checkpoint_quant;

  // Published exact parameter count (catalog), for checks; 0 if unknown.
  int64_t published_params = 0;
  std::string published_params_note;
};

// What a tensor does, for per-role breakdowns and quantization rules.
enum class Role {
  kEmbed, kPosEmbed, kAttention, kMlp, kExperts, kSharedExperts, kRouter,
  kNorm, kLmHead, kVision, kMtp,
  kHead,   // an encoder's task head: pooler, classifier, MLM transform and decoder bias
  kMixer,  // a recurrent mixer's tensors (Mamba, Gated DeltaNet, KDA, short conv)
};
const char* RoleName(Role r);  // "embed", "attention", ..., "mixer"
inline constexpr size_t kRoleCount = static_cast<size_t>(Role::kMixer) + 1;

// A set of identical tensors ("model.layers.*.self_attn.q_proj.weight").
struct TensorGroup {
  std::string name;    // a readable pattern, * for the layer/expert index
  Role role;
  int64_t rows = 0;    // out_features for a linear weight; length for 1-D
  int64_t cols = 1;    // in_features for a linear weight; 1 for 1-D
  int64_t count = 1;   // how many tensors of this shape (layers x experts)
  bool linear = false; // a 2-D projection weight a quantizer may pack
  DType stored = DType::kBF16;  // dtype as stored in the checkpoint
  int64_t layers = 0;           // decoder layers this group spans (0: not per layer)
  bool moe_layer = false;       // the group belongs to MoE layers (else dense layers)
  // Hybrid stacks: the group spans the `layers` layers of this class
  // (LayerSpec::SameClass); uniform stacks leave it at the default and
  // moe_layer alone selects. Use GroupInLayer / GroupLayersIn, not moe_layer.
  bool by_class = false;
  LayerSpec layer_class{};

  int64_t elements_each() const { return CheckedMul(rows, cols); }
  int64_t elements() const { return CheckedMul(elements_each(), count); }
};

struct Inventory {
  std::vector<TensorGroup> groups;  // main model (no MTP, no vision)
  std::vector<TensorGroup> extra;   // MTP modules and vision tower, if any
  int64_t params = 0;               // sum over groups
  int64_t extra_params = 0;         // sum over extra
  int64_t active_params = 0;        // params touched per token (MoE: top-k experts)
  int64_t params_by_role[kRoleCount] = {};  // indexed by Role
  int64_t base_params = 0;          // encoders: the backbone as AutoModel builds it (no task head)
};

// Builds the exact inventory. REQUIRES: spec passed ValidateSpec.
Inventory BuildInventory(const ModelSpec& spec);

// A model ready for estimation: spec plus its inventory.
// A tensor exactly as a checkpoint file stores it (safetensors header or
// GGUF tensor info). Filled by the file readers; empty for catalog models
// and bare config.json files.
struct FileTensor {
  std::string name;            // as in the file ("blk.3.attn_v.weight", "model.layers.3...")
  Role role = Role::kMlp;      // mapped from the name
  std::vector<int64_t> shape;  // as the file lists it
  DType dtype = DType::kBF16;  // stored type (a ggml block type for GGUF)
  int64_t bytes = 0;           // exact bytes of the stored data
  int64_t layer = -1;          // decoder layer index, -1 if not per layer
};

struct Model {
  ModelSpec spec;
  Inventory inventory;
  // Exact tensors when the model came from files; when non-empty and the
  // workload keeps the stored format, weights are summed from these.
  std::vector<FileTensor> file_tensors;
  std::string file_format;     // "safetensors", "gguf" or "" (config only / catalog)
};

// Whether per-layer group g (g.layers > 0) has copies in layer l, and how
// many of the layers [first, last) of s it spans. Per-layer copies in a
// range = g.count / g.layers * GroupLayersIn(...).
bool GroupInLayer(const TensorGroup& g, const LayerSpec& l);
int64_t GroupLayersIn(const ModelSpec& s, const TensorGroup& g, int64_t first, int64_t last);

// A Model from a spec that passed ValidateSpec, with its inventory built. A
// parameter count beyond 64 bits is a corrupt input: "<id>: parameter count
// overflows 64 bits".
Result<Model> ModelFromSpec(ModelSpec spec);

// The model with another task head (--head, --num-labels), its inventory
// rebuilt. Only encoder and encoder-decoder models take a head: "--head:
// applies to encoder and encoder-decoder models; <id> is a decoder-only
// LLM". seq2seq-lm needs a decoder, mlm/pretraining an encoder-only model.
// File tensors are dropped when the head changes (they describe the
// checkpoint's head).
struct HeadChoice {
  std::optional<HeadKind> kind;
  std::optional<int64_t> num_labels;
  bool given() const { return kind.has_value() || num_labels.has_value(); }
};
Result<Model> WithHead(const Model& model, const HeadChoice& head);

// Per-token KV-cache elements of one layer, for the given layout.
// kLatent is the MLA compressed cache (kv_lora_rank + qk_rope_head_dim, one
// tensor); kExpanded is what a runtime without MLA support stores (per-head
// K and V). For non-MLA models both are the same.
enum class KvLayout { kLatent, kExpanded };
struct KvElements {
  int64_t k = 0;  // elements per token for K (or the latent)
  int64_t v = 0;  // elements per token for V (0 for a latent cache)
};
KvElements KvElementsPerToken(const ModelSpec& spec, KvLayout layout);

// Bytes per token over the layers that have softmax attention (full and
// sliding alike: each holds the token), for a KV dtype. Recurrent-only and
// MLP-only layers cache no K/V. This is vramfit's "kv_bytes_per_token".
Bytes KvBytesPerToken(const ModelSpec& spec, DType kv_dtype, KvLayout layout);

// Layers with softmax attention (decoder; encoder-decoder: the decoder's).
int64_t AttentionLayerCount(const ModelSpec& spec);
// Layers with a recurrent mixer.
int64_t RecurrentLayerCount(const ModelSpec& spec);
bool HasRecurrentLayers(const ModelSpec& spec);
// The kind of the model's recurrent layers (a model has at most one kind;
// ValidateSpec checks), kNone for pure-attention models.
RecurrentKind ModelRecurrentKind(const ModelSpec& spec);

// True when the decoder stack is not uniform softmax attention + MLP: a
// recurrent mixer somewhere, or a layer without attention or without MLP.
// Runtimes that do not model such stacks refuse them (HybridRefusal).
bool IsHybridStack(const ModelSpec& spec);
// "--runtime <runtime>: <id> has <kind> layers; <what> is not modelled yet",
// the one line a runtime returns for a hybrid stack it does not model.
Error HybridRefusal(const ModelSpec& spec, std::string_view runtime, std::string_view what);

// "48 layers: 12 full attention, 36 Gated DeltaNet"; "52 layers: 4 attention,
// 24 Mamba-2, 24 MLP-only"; "32 layers: 32 full attention" for a Llama.
// Falcon-H1 layers read "attention + Mamba-2".
std::string LayerPatternSummary(const ModelSpec& spec);

// How many conv-state columns an engine keeps per channel: transformers'
// caches keep the whole kernel (MambaCache / HybridMambaAttentionDynamicCache
// conv_states [.., conv_dim, d_conv]); vLLM (mamba_utils) and llama.cpp
// (r_l: d_conv - 1 columns) keep kernel - 1.
enum class ConvWindow { kKernel, kKernelMinus1 };

// Per-sequence recurrent state of one layer, in elements: conv state and
// SSM / delta-rule state. Zero for a layer without a recurrent mixer.
struct StateElements {
  int64_t conv = 0;
  int64_t ssm = 0;
};
StateElements RecurrentStateElements(const ModelSpec& spec, const LayerSpec& layer,
                                     ConvWindow window);
// Summed over all layers of the model.
StateElements StateElementsPerSequence(const ModelSpec& spec, ConvWindow window);
// Bytes of one sequence's recurrent state over all layers: conv elements at
// conv_dtype plus SSM elements at ssm_dtype (engines keep them apart:
// vLLM mamba_ssm_cache_dtype, llama.cpp -ctk/-ctv for R/S). 0 for
// pure-attention models. This is vramfit's "state_bytes_per_sequence".
Bytes StateBytesPerSequence(const ModelSpec& spec, DType conv_dtype, DType ssm_dtype,
                            ConvWindow window);

}  // namespace vramfit

#endif  // VRAMFIT_MODEL_H_
