// Training-step activations and loss of encoder (BERT family) and
// encoder-decoder (T5, BART) models: bidirectional self-attention over the
// whole sequence, post-LN (BERT) or pre-LN (T5, ModernBERT) blocks, dropout
// masks in train mode, cross-attention over the encoder output, and the
// task head's loss. What autograd saves, op by op, follows
// modeling_bert.py / modeling_t5.py / modeling_bart.py (transformers v4.56)
// and PyTorch's autocast op lists (softmax, layer_norm and cross_entropy
// run in fp32 under torch.autocast; matmul in the 16-bit dtype). Every
// term: docs/estimation.md section 12.3.
#include <algorithm>

#include <fmt/format.h>

#include "formula.h"
#include "training_steps.h"

namespace vramfit::training {
namespace {

// A dropout mask is one bool per element (torch native_dropout).
constexpr int64_t kMaskBytes = 1;
// LayerNorm keeps mean and rstd per token (fp32); RMSNorm rstd.
constexpr int64_t kNormStatBytes = 8;

// Whether the step runs under torch.autocast over fp32 tensors: AMP over
// fp32 parameters (HF Trainer fp16=True / bf16=True without ZeRO or FSDP),
// or a master-copy mixed precision. There the residual stream and every
// LayerNorm output are fp32, softmax and layer_norm run in fp32, and each
// linear casts its fp32 input to the 16-bit dtype itself.
bool Autocast(const TrainJob& job) { return job.amp || job.mixed; }

// Bytes a norm saves per token: its input (fp32 under autocast, which runs
// layer_norm in fp32; T5LayerNorm upcasts itself), its statistics, and for
// RMSNorm the normalized input its weight multiplies.
int64_t NormBytes(const ModelSpec& s, const TrainJob& job) {
  const int64_t h = s.hidden_size;
  if (s.norm_kind == NormKind::kRms) return kF32Bytes * h + job.ew * h + kF32Bytes;
  const int64_t in = Autocast(job) ? kF32Bytes : job.ew;
  return in * h + kNormStatBytes;
}

// One attention block's saved bytes per query token, keys over `keys`
// tokens per query: the projections' input (when they train), q and k for
// QK^T (and their rotary copies), v, the scores path, the output
// projection's input and the hidden dropout mask.
int64_t AttentionBlock(const ModelSpec& s, const TrainingWorkload& w, const TrainJob& job,
                       int64_t keys, bool kv_from_encoder) {
  const int64_t e = job.ew;
  const int64_t h = s.hidden_size;
  const int64_t nh = s.num_attention_heads;
  const int64_t hq = nh * s.head_dim;
  const bool full = w.method == TrainMethod::kFull || w.method == TrainMethod::kFreeze;
  // The q/k/v input: one shared tensor, or under autocast each projection's
  // own 16-bit cast of the fp32 LayerNorm output (autocast caches casts of
  // leaf weights only, autocast_mode.cpp cached_cast).
  const int64_t qkv_inputs = Autocast(job) && !s.fused_qkv ? (kv_from_encoder ? 1 : 3) : 1;
  int64_t a = full ? e * h * qkv_inputs : 0;
  if (job.lora) a += kF32Bytes * h * ((w.targets.q ? 1 : 0) + (w.targets.k ? 1 : 0) + (w.targets.v ? 1 : 0));
  // Cross-attention K and V come from the encoder output: their saved
  // copies scale with the encoder tokens, counted by the caller.
  const int64_t kv = kv_from_encoder ? 0 : 2 * e * hq;
  if (w.attn == AttnImpl::kEager) {
    a += e * hq + kv;  // q, k (and v) kept for the two matmuls
    if (s.enc.rope) a += 2 * e * hq;
    a += CheckedMul(CheckedMul(nh, keys), EncoderScoreBytes(s, w, job));
  } else {
    // sdpa (memory-efficient kernel: masks and dropout) / flash: q, k, v,
    // the output and fp32 logsumexp per head.
    a += 2 * e * hq + kv + kF32Bytes * nh;
    if (s.enc.rope) a += 2 * e * hq;
  }
  a += (full ? e * hq : 0) + (job.lora && w.targets.o ? kF32Bytes * hq : 0);  // o input
  if (s.enc.hidden_dropout) a += kMaskBytes * h;
  return a;
}

// The MLM's saved bytes per token: fc1 (or gate/up) input, the
// activation's input and output (GeGLU: the fused projection, gelu in/out
// and the gate), the dropout mask.
int64_t MlpBlock(const ModelSpec& s, const TrainingWorkload& w, const TrainJob& job) {
  const int64_t e = job.ew;
  const int64_t h = s.hidden_size;
  const int64_t inter = s.intermediate_size;
  const bool full = w.method == TrainMethod::kFull || w.method == TrainMethod::kFreeze;
  const int64_t width = s.mlp_kind == MlpKind::kGated ? 4 : 2;
  int64_t m = (full ? e * h : 0) + e * width * inter;
  if (job.lora) {
    m += kF32Bytes * h * (w.targets.up || w.targets.gate ? 1 : 0) + (w.targets.down ? kF32Bytes * inter : 0);
  }
  if (s.enc.hidden_dropout) m += kMaskBytes * (h + (s.topology == Topology::kEncoderDecoder ? inter : 0));
  return m;
}

}  // namespace

Status CheckEncoderJob(const ModelSpec& s, const TrainingWorkload& w) {
  if (s.topology == Topology::kDecoder) return {};
  if (w.tp > 1 || w.pp > 1) {
    return InvalidArgument(fmt::format(
        "--{}: {} is an {} model; vramfit trains encoder models data-parallel only (--tp 1 --pp 1)",
        w.tp > 1 ? "tp" : "pp", s.id, TopologyName(s.topology)));
  }
  if (s.learned_positions > 0 && s.max_position_embeddings > 0 && w.seq > s.max_position_embeddings) {
    return InvalidArgument(fmt::format("--seq {}: {} has {} learned positions; longer samples do not run", w.seq,
                                       s.id, s.max_position_embeddings));
  }
  if (w.method == TrainMethod::kFreeze && (s.enc.weight_sets > 0 || s.topology == Topology::kEncoderDecoder)) {
    return InvalidArgument(fmt::format(
        "--method freeze: {} {}; freezing its leading layers is not modelled", s.id,
        s.enc.weight_sets > 0 ? "shares one set of layer weights among all layers (ALBERT)"
                              : "is an encoder-decoder model"));
  }
  return {};
}

int64_t EncoderScoreBytes(const ModelSpec& s, const TrainingWorkload& w, const TrainJob& job) {
  if (w.attn != AttnImpl::kEager) return 0;
  const int64_t e = job.ew;
  // Softmax output: fp32 under autocast (and T5's explicit .float()).
  const bool fp32_softmax = Autocast(job) || s.enc.stack_final_norm;
  const int64_t sm = fp32_softmax ? kF32Bytes : e;
  int64_t b = sm;
  if (s.enc.attn_dropout) {
    // The mask, and the dropped-out probabilities matmul(probs, v) saves.
    b += kMaskBytes + e;
  } else if (sm != e) {
    b += e;  // the 16-bit copy matmul(probs, v) saves
  }
  return b;
}

int64_t EncoderLayerSavedPerToken(const ModelSpec& s, const TrainingWorkload& w, const TrainJob& job,
                                  int64_t seq) {
  const int64_t norms = s.norms_per_layer * NormBytes(s, job);
  const int64_t a = AttentionBlock(s, w, job, seq, false);
  const int64_t m = MlpBlock(s, w, job);
  const int64_t lora_mid = job.lora ? kF32Bytes * w.lora_rank * kLoraModulesPerLayer : 0;
  return norms + a + m + lora_mid;
}

int64_t DecoderLayerSavedPerToken(const ModelSpec& s, const TrainingWorkload& w, const TrainJob& job,
                                  int64_t dec_seq, int64_t enc_seq) {
  const int64_t hq = s.num_attention_heads * s.head_dim;
  const int64_t norms = (s.norms_per_layer + 1) * NormBytes(s, job);
  const int64_t self = AttentionBlock(s, w, job, dec_seq, false);
  // Cross-attention: scores over the encoder tokens; its K and V (2 x hq
  // per encoder token) saved once per layer, spread over the decoder tokens.
  const int64_t cross = AttentionBlock(s, w, job, enc_seq, true) +
                        CeilDiv(CheckedMul(2 * job.ew * hq, enc_seq), std::max<int64_t>(1, dec_seq));
  const int64_t m = MlpBlock(s, w, job);
  const int64_t lora_mid = job.lora ? kF32Bytes * w.lora_rank * kLoraModulesPerLayer : 0;
  return norms + self + cross + m + lora_mid;
}

int64_t HeadSavedPerToken(const ModelSpec& s, const TrainJob& job) {
  const bool mlm = s.head == HeadKind::kMaskedLm ||
                   (s.head == HeadKind::kPretraining && s.enc.heads.pretrain_mlm);
  if (!mlm) return 0;
  // transform dense input, gelu input and output, LayerNorm input (fp32
  // under autocast) + stats, the decoder's input.
  const int64_t w = s.enc.heads.mlm_width > 0 ? s.enc.heads.mlm_width : s.hidden_size;
  return job.ew * s.hidden_size + 2 * job.ew * w + (Autocast(job) ? kF32Bytes : job.ew) * w +
         kNormStatBytes + job.ew * w;
}

StageActivations EncoderSavedActivations(const ModelSpec& s, const TrainingWorkload& w,
                                         const TrainJob& job) {
  const int64_t tokens = job.tokens;
  const int64_t h = s.hidden_size;
  const bool enc_dec = s.topology == Topology::kEncoderDecoder;
  // The decoder side of an encoder-decoder step runs over the target
  // tokens (--target-seq, default --seq), its cross-attention over the
  // encoder's --seq (docs 12.3).
  const int64_t target = enc_dec ? w.target_seq : 0;
  const int64_t dec_tokens = CheckedMul(w.batch, target);
  const int64_t enc_layer = EncoderLayerSavedPerToken(s, w, job, w.seq);
  const int64_t dec_layer = enc_dec ? DecoderLayerSavedPerToken(s, w, job, target, w.seq) : 0;
  const int64_t dec_layers = enc_dec ? s.enc.decoder_layers : 0;
  // Embeddings: the summed embeddings' dropout mask and LayerNorm input.
  const int64_t emb_width = s.enc.embedding_size > 0 ? s.enc.embedding_size : h;
  const int64_t embed = (s.enc.hidden_dropout ? kMaskBytes * emb_width : 0) +
                        (s.embed_norm || s.enc.stack_embed_norm ? NormBytes(s, job) : 0);
  const int64_t head = HeadSavedPerToken(s, job) + (s.final_norm ? NormBytes(s, job) : 0);
  StageActivations a;
  a.layer_act = std::max(Bytes(CheckedMul(enc_layer, tokens)), Bytes(CheckedMul(dec_layer, dec_tokens)));
  const bool trains_layers = w.method != TrainMethod::kFreeze;
  if (w.grad_ckpt == GradCkpt::kFull) {
    // Each layer keeps its input (the residual stream: fp32 under
    // autocast); one layer is recomputed in backward.
    const int64_t in = Autocast(job) ? kF32Bytes : job.ew;
    a.acts = Bytes(CheckedMul(CheckedMul(tokens, h), in)) * s.num_hidden_layers +
             Bytes(CheckedMul(CheckedMul(dec_tokens, h), in)) * dec_layers + a.layer_act;
    a.formula = enc_dec ? Formula("checkpoints {} encoder layers x {} tok + {} decoder layers x {} tok, x {} x {} B "
                                  "+ one layer recomputed",
                                  s.num_hidden_layers, tokens, dec_layers, dec_tokens, h, in)
                        : Formula("checkpoints {} layers x {} tok x {} x {} B + one layer recomputed",
                                  s.num_hidden_layers, tokens, h, in);
  } else {
    Bytes saved = Bytes(CheckedMul(CheckedMul(enc_layer, s.num_hidden_layers), tokens)) +
                  Bytes(CheckedMul(CheckedMul(dec_layer, dec_layers), dec_tokens));
    if (!trains_layers) {
      // freeze: only the trainable (last) encoder layers save their tensors.
      saved = Bytes(CheckedMul(CheckedMul(enc_layer, w.trainable_layers), tokens));
    }
    a.acts = saved;
    a.formula = enc_dec ? Formula("{} encoder layers x {} tok x {} B + {} decoder layers x {} tok x {} B (saved "
                                  "for backward)",
                                  s.num_hidden_layers, tokens, enc_layer, dec_layers, dec_tokens, dec_layer)
                        : Formula("{} layers x {} tok x {} B/token/layer (saved for backward)",
                                  trains_layers ? s.num_hidden_layers : w.trainable_layers, tokens, enc_layer);
  }
  // The head reads the decoder's tokens in an encoder-decoder model.
  a.acts += Bytes(CheckedMul(embed, tokens)) + Bytes(CheckedMul(embed, dec_tokens)) +
            Bytes(CheckedMul(head, enc_dec ? dec_tokens : tokens));
  return a;
}

Bytes EncoderLossBytes(const ModelSpec& s, const TrainingWorkload& w, const TrainJob& job,
                       const StackOverheads& oh) {
  int64_t classes = 0;
  int64_t positions = job.tokens;
  switch (s.head) {
    case HeadKind::kMaskedLm: classes = s.vocab_size; break;
    case HeadKind::kSeq2SeqLm:
      classes = s.vocab_size;
      positions = CheckedMul(w.batch, w.target_seq);  // the decoder's tokens
      break;
    case HeadKind::kPretraining:
      classes = s.enc.heads.pretrain_mlm ? s.vocab_size : s.enc.heads.pretrain_classes;
      break;
    case HeadKind::kTokenCls: classes = s.num_labels; break;
    case HeadKind::kSeqCls:
      classes = s.num_labels;
      positions = w.batch;  // one pooled position per sequence
      break;
    case HeadKind::kBase:
    case HeadKind::kCausalLm: break;
  }
  return Bytes(CheckedMul(CheckedMul(positions, classes), oh.loss_tenths) / 10);
}

Component EncoderLogitsComponent(const ModelSpec& s, const TrainingWorkload& w, const StackOverheads& oh,
                                 Bytes logits, TrainPhase phase) {
  std::string formula;
  if (logits.value() > 0) {
    formula = Formula("{} head: {} logits x {}.{} B ({} loss)", HeadName(s.head),
                      logits.value() * 10 / std::max<int64_t>(1, oh.loss_tenths), oh.loss_tenths / 10,
                      oh.loss_tenths % 10, LossName(w.loss));
  }
  return Leaf("logits", phase == TrainPhase::kForwardEnd ? logits : Bytes(0), std::move(formula));
}

}  // namespace vramfit::training
