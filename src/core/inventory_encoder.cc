// Exact parameter inventory of encoder (BERT family) and encoder-decoder
// (T5, BART) models, and their task heads.
//
// Tensor shapes follow transformers' modeling files (v4.56): modeling_bert.py
// (BertEmbeddings, BertLayer, BertPooler, BertOnlyMLMHead,
// BertForSequenceClassification), modeling_roberta.py (RobertaLMHead,
// RobertaClassificationHead), modeling_albert.py (factorized embeddings,
// embedding_hidden_mapping_in, shared AlbertLayerGroup), modeling_electra.py
// (embeddings_project, ElectraGeneratorPredictions,
// ElectraDiscriminatorPredictions), modeling_deberta_v2.py (rel_embeddings,
// pos_key_proj / pos_query_proj, ContextPooler), modeling_modernbert.py
// (Wqkv, Wi, no attn_norm in layer 0, ModernBertPredictionHead),
// modeling_t5.py (relative_attention_bias in layer 0 of each stack,
// DenseReluDense / DenseGatedActDense), modeling_bart.py (learned positions
// with offset 2, layernorm_embedding, encoder_attn). The config reader
// resolves each family onto the generic fields used here;
// docs/estimation.md, section "Encoder and encoder-decoder models", lists
// every tensor. Tensor names are vramfit's generic names (q_proj, fc1,
// gate_up_proj...), so LoRA targets read the same for every family.
#include <string>

#include <fmt/format.h>

#include "inventory_builder.h"
#include "vramfit/model.h"

namespace vramfit {

const char* TopologyName(Topology t) {
  switch (t) {
    case Topology::kDecoder: return "decoder";
    case Topology::kEncoder: return "encoder";
    case Topology::kEncoderDecoder: return "encoder-decoder";
  }
  return "?";
}

const char* HeadName(HeadKind h) {
  switch (h) {
    case HeadKind::kCausalLm: return "causal-lm";
    case HeadKind::kBase: return "base";
    case HeadKind::kMaskedLm: return "mlm";
    case HeadKind::kSeqCls: return "seq-cls";
    case HeadKind::kTokenCls: return "token-cls";
    case HeadKind::kPretraining: return "pretraining";
    case HeadKind::kSeq2SeqLm: return "seq2seq-lm";
  }
  return "?";
}

Result<HeadKind> ParseHead(std::string_view s) {
  static constexpr std::pair<std::string_view, HeadKind> kHeads[] = {
      {"base", HeadKind::kBase},          {"mlm", HeadKind::kMaskedLm},
      {"seq-cls", HeadKind::kSeqCls},     {"token-cls", HeadKind::kTokenCls},
      {"pretraining", HeadKind::kPretraining}, {"seq2seq-lm", HeadKind::kSeq2SeqLm}};
  for (const auto& [name, kind] : kHeads) {
    if (s == name) return kind;
  }
  return InvalidArgument(fmt::format(
      "--head: unknown value '{}' (expected base, mlm, seq-cls, token-cls, pretraining or seq2seq-lm)", s));
}

namespace inventory {
namespace {

// A dense [out, in] projection with an optional bias, one copy, no layer.
void Dense(Builder& b, const std::string& name, Role role, int64_t out, int64_t in, bool bias) {
  b.Linear(name + ".weight", role, out, in, 1);
  if (bias) b.Vector(name + ".bias", role, out, 1);
}

// Word, position and token-type embeddings, their norm and the projection
// from a factorized embedding width (ALBERT embedding_hidden_mapping_in,
// ELECTRA embeddings_project: Linear(E, h) with bias).
void Embeddings(Builder& b, const ModelSpec& s) {
  const int64_t h = s.hidden_size;
  const int64_t e = s.enc.embedding_size > 0 ? s.enc.embedding_size : h;
  b.Table("embed_tokens.weight", Role::kEmbed, s.vocab_size, e);
  const bool enc_dec = s.topology == Topology::kEncoderDecoder;
  const std::string stack = enc_dec ? "encoder." : "";
  if (s.learned_positions > 0) {
    b.Table(stack + "embed_positions.weight", Role::kPosEmbed, s.learned_positions, e);
  }
  if (s.enc.type_vocab_size > 0) {
    b.Table("token_type_embeddings.weight", Role::kEmbed, s.enc.type_vocab_size, e);
  }
  if (s.embed_norm || s.enc.stack_embed_norm) Norm(b, s, stack + "embed_norm", Role::kNorm, e, 1);
  if (e != h) Dense(b, "embed_project", Role::kEmbed, h, e, true);
}

// One stack of n layers under prefix p (layer_tag: the layers the groups
// span, 0 for ALBERT's shared weights). cross: decoder layers of an
// encoder-decoder (self + cross attention, one more norm).
void Stack(Builder& b, const ModelSpec& s, const std::string& p, int64_t n, int64_t layer_tag,
           bool cross) {
  const int64_t h = s.hidden_size;
  const int64_t hq = s.num_attention_heads * s.head_dim;
  b.SetLayers(layer_tag, false);
  Attention(b, s, p + "self_attn.", n, Role::kAttention);
  if (s.enc.pos_key_proj) {
    b.Linear(p + "self_attn.pos_key_proj.weight", Role::kAttention, hq, h, n);
    b.Vector(p + "self_attn.pos_key_proj.bias", Role::kAttention, hq, n);
  }
  if (s.enc.pos_query_proj) {
    b.Linear(p + "self_attn.pos_query_proj.weight", Role::kAttention, hq, h, n);
    b.Vector(p + "self_attn.pos_query_proj.bias", Role::kAttention, hq, n);
  }
  if (cross) Attention(b, s, p + "cross_attn.", n, Role::kAttention);
  DenseMlp(b, s, p + "mlp.", s.intermediate_size, n, Role::kMlp, s.mlp_bias);
  int64_t norms = CheckedMul(n, s.norms_per_layer + (cross ? 1 : 0));
  if (!s.enc.first_layer_attn_norm && layer_tag > 0) norms -= 1;
  Norm(b, s, p + "norm", Role::kNorm, h, norms);
  b.SetLayers(0, false);
  // T5: the first layer's self-attention holds the relative position bias
  // [buckets, heads] every layer of the stack reuses.
  if (s.enc.rel_bias_buckets > 0) {
    b.Table(p.substr(0, p.find('.') + 1) + "relative_attention_bias.weight", Role::kPosEmbed,
            s.enc.rel_bias_buckets, s.num_attention_heads);
  }
}

// The MLM head: transform dense [w, h] (+ bias), its LayerNorm [w], the
// decoder [vocab, w] (tied to the word embeddings unless not) and its bias.
void MlmHead(Builder& b, const ModelSpec& s) {
  const HeadStyle& hs = s.enc.heads;
  const int64_t w = hs.mlm_width > 0 ? hs.mlm_width : s.hidden_size;
  Dense(b, "head.transform.dense", Role::kHead, w, s.hidden_size, hs.mlm_dense_bias);
  Norm(b, s, "head.transform.norm", Role::kHead, w, 1);
  if (!hs.mlm_decoder_tied) b.Linear("head.decoder.weight", Role::kLmHead, s.vocab_size, w, 1);
  if (hs.mlm_decoder_bias) b.Vector("head.decoder.bias", Role::kHead, s.vocab_size, 1);
}

void Heads(Builder& b, const ModelSpec& s) {
  const HeadStyle& hs = s.enc.heads;
  const int64_t h = s.hidden_size;
  const auto pooler = [&] { Dense(b, "pooler.dense", Role::kHead, h, h, true); };
  const auto cls_transform = [&] {
    // ModernBertPredictionHead: dense (classifier_bias) + norm.
    Dense(b, "head.dense", Role::kHead, h, h, hs.mlm_dense_bias);
    Norm(b, s, "head.norm", Role::kHead, h, 1);
  };
  switch (s.head) {
    case HeadKind::kCausalLm: break;
    case HeadKind::kBase:
      if (hs.base_pooler) pooler();
      break;
    case HeadKind::kMaskedLm: MlmHead(b, s); break;
    case HeadKind::kSeqCls:
      if (hs.seq_cls_pooler) pooler();
      if (hs.seq_cls_dense) Dense(b, "classifier.dense", Role::kHead, h, h, true);
      if (hs.cls_norm) cls_transform();
      Dense(b, "classifier.out_proj", Role::kHead, s.num_labels, h, hs.cls_bias);
      break;
    case HeadKind::kTokenCls:
      if (hs.cls_norm) cls_transform();
      Dense(b, "classifier.out_proj", Role::kHead, s.num_labels, h, hs.cls_bias);
      break;
    case HeadKind::kPretraining:
      if (hs.base_pooler) pooler();
      if (hs.pretrain_mlm) MlmHead(b, s);
      if (hs.pretrain_dense) Dense(b, "discriminator.dense", Role::kHead, h, h, true);
      Dense(b, "pretraining.classifier", Role::kHead, hs.pretrain_classes, h, true);
      break;
    case HeadKind::kSeq2SeqLm:
      if (!s.tie_word_embeddings) b.Linear("lm_head.weight", Role::kLmHead, s.vocab_size, h, 1);
      break;
  }
}

}  // namespace

void BuildEncoderGroups(const ModelSpec& s, Inventory& inv) {
  Builder b(&inv.groups, s.torch_dtype);
  const int64_t h = s.hidden_size;
  Embeddings(b, s);
  const bool enc_dec = s.topology == Topology::kEncoderDecoder;
  // ALBERT shares weight_sets layer weight sets among all its layers.
  const bool shared = s.enc.weight_sets > 0;
  const int64_t n = shared ? s.enc.weight_sets : s.num_hidden_layers;
  Stack(b, s, enc_dec ? "encoder.layers.*." : "layers.*.", n, shared ? 0 : s.num_hidden_layers, false);
  if (s.enc.rel_pos_rows > 0) {
    b.Table("rel_embeddings.weight", Role::kPosEmbed, s.enc.rel_pos_rows, h);
    if (s.enc.rel_pos_norm) {
      b.Vector("rel_embeddings.norm.weight", Role::kNorm, h, 1);
      b.Vector("rel_embeddings.norm.bias", Role::kNorm, h, 1);
    }
  }
  if (s.final_norm) Norm(b, s, enc_dec ? "encoder.norm" : "norm", Role::kNorm, h, 1);
  if (enc_dec) {
    if (s.learned_positions > 0) {
      b.Table("decoder.embed_positions.weight", Role::kPosEmbed, s.learned_positions, h);
    }
    if (s.enc.stack_embed_norm) Norm(b, s, "decoder.embed_norm", Role::kNorm, h, 1);
    Stack(b, s, "decoder.layers.*.", s.enc.decoder_layers, s.enc.decoder_layers, true);
    if (s.final_norm) Norm(b, s, "decoder.norm", Role::kNorm, h, 1);
  }
  Heads(b, s);
}

}  // namespace inventory

Result<Model> WithHead(const Model& model, const HeadChoice& head) {
  if (!head.given()) return model;
  const ModelSpec& s = model.spec;
  const char* flag = head.kind ? "--head" : "--num-labels";
  if (s.topology == Topology::kDecoder) {
    return InvalidArgument(fmt::format(
        "{}: applies to encoder and encoder-decoder models; {} is a decoder-only LLM", flag, s.id));
  }
  ModelSpec next = s;
  if (head.kind) next.head = *head.kind;
  if (head.num_labels) {
    if (*head.num_labels < 1 || *head.num_labels > (int64_t{1} << 20)) {
      return InvalidArgument(
          fmt::format("--num-labels: expected 1 to 1048576, got {}", *head.num_labels));
    }
    next.num_labels = *head.num_labels;
  }
  const HeadKind k = next.head;
  const bool enc_dec = s.topology == Topology::kEncoderDecoder;
  if (head.num_labels && k != HeadKind::kSeqCls && k != HeadKind::kTokenCls) {
    return InvalidArgument(fmt::format("--num-labels: applies to --head seq-cls or token-cls, not {}",
                                       HeadName(k)));
  }
  if (enc_dec && (k == HeadKind::kMaskedLm || k == HeadKind::kPretraining || k == HeadKind::kTokenCls)) {
    return InvalidArgument(fmt::format(
        "--head {}: {} is an encoder-decoder model (heads: base, seq2seq-lm, seq-cls)", HeadName(k), s.id));
  }
  if (!enc_dec && k == HeadKind::kSeq2SeqLm) {
    return InvalidArgument(fmt::format(
        "--head seq2seq-lm: {} is an encoder without a decoder (heads: base, mlm, seq-cls, token-cls, "
        "pretraining)",
        s.id));
  }
  if (k == HeadKind::kPretraining && s.enc.heads.pretrain_classes == 0) {
    return InvalidArgument(fmt::format("--head pretraining: {} has no pre-training head in transformers",
                                       s.id));
  }
  if (next.head == s.head && next.num_labels == s.num_labels) return model;
  auto m = ModelFromSpec(std::move(next));
  if (!m.ok()) return m.error();
  // The checkpoint's file tensors describe its own head: weights of this
  // head come from the inventory.
  return m;
}

}  // namespace vramfit
