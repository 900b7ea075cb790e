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
enum class LayerAttention { kFull, kSliding };

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

// One decoder layer's variable traits.
struct LayerSpec {
  LayerAttention attention = LayerAttention::kFull;
  bool moe = false;  // routed experts in place of the dense MLP
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

  // DeepSeek-V3 multi-token-prediction modules (not part of the main model).
  int64_t num_nextn_predict_layers = 0;

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
  kHead,  // an encoder's task head: pooler, classifier, MLM transform and decoder bias
};
const char* RoleName(Role r);  // "embed", "attention", ...
inline constexpr size_t kRoleCount = static_cast<size_t>(Role::kHead) + 1;

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

// Bytes per token over all layers (every layer holding the token), for a KV
// dtype. This is vramfit's "kv_bytes_per_token".
Bytes KvBytesPerToken(const ModelSpec& spec, DType kv_dtype, KvLayout layout);

}  // namespace vramfit

#endif  // VRAMFIT_MODEL_H_
