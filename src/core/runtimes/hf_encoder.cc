// The `hf` runtime for encoder (BERT family) and encoder-decoder (T5, BART)
// models, on one device.
//
// An encoder job is a forward over b x s tokens with no KV cache and no
// generation (embedding / reranker / classifier serving, AutoModel(...)(**
// batch) under torch.no_grad()). An encoder-decoder job is generate(): the
// encoder pass over the --prompt tokens, then --new decoder steps with an
// EncoderDecoderCache: per decoder layer, the self-attention K/V of the
// generated tokens and the cross-attention K/V over the encoder output
// (transformers cache_utils.py EncoderDecoderCache; modeling_t5.py
// T5Attention, modeling_bart.py BartAttention). Every term:
// docs/estimation.md section 12.2.
#include <fmt/format.h>

#include <algorithm>

#include "../formula.h"
#include "hf_steps.h"
#include "runtimes.h"

namespace vramfit::runtimes {
namespace hf {

Status CheckEncoderInference(const ModelSpec& s, const InferenceSettings& given, const InferenceWorkload& w) {
  if (s.topology == Topology::kDecoder) return {};
  if (s.topology == Topology::kEncoder && w.new_tokens > 0) {
    return InvalidArgument(fmt::format(
        "--new: {} is an encoder model (one forward over --batch x --prompt tokens, no generation)", s.id));
  }
  // A learned position table bounds the sequence (BERT: 512 rows; RoBERTa
  // keeps 2 of its 514 for the padding offset).
  const int64_t max_tokens = s.learned_positions > 0 ? s.max_position_embeddings : 0;
  if (max_tokens > 0 && w.prompt > max_tokens) {
    return InvalidArgument(fmt::format("--prompt {}: {} has {} learned positions; longer inputs do not run",
                                       w.prompt, s.id, max_tokens));
  }
  if (given.tp > 1 || given.pp > 1 || w.pp > 1) {
    return InvalidArgument(fmt::format("--{}: vramfit runs {} models on one device with --runtime hf",
                                       given.tp > 1 ? "tp" : "pp", TopologyName(s.topology)));
  }
  if (w.kv_dtype != w.dtype && s.topology == Topology::kEncoder) {
    return InvalidArgument(fmt::format("--kv-dtype: {} is an encoder model and keeps no KV cache", s.id));
  }
  return {};
}

HfEncoderPass HfEncoderForward(const ModelSpec& s, const InferenceWorkload& w, const HfJob& job) {
  HfEncoderPass p;
  const int64_t b = job.batch;
  const int64_t bs = CheckedMul(b, job.prompt);
  const int64_t hq = s.num_attention_heads * s.head_dim;
  const int64_t e = job.dt;
  p.hidden = Bytes(CheckedMul(bs, job.h)) * (2 * e);
  // q, k, v and the attention output (+ the rotary copies of q and k).
  p.attention = Bytes(CheckedMul(bs, (s.enc.rope ? 6 : 4) * hq)) * e;
  p.formula = Formula("q,k,v,out{}, {} tok", s.enc.rope ? " + rotary copies" : "", bs);
  if (w.attn == AttnImpl::kEager) {
    // Scores and probabilities live together; T5 runs the softmax in fp32.
    const int64_t per_score = 2 * e + (s.enc.stack_final_norm ? 4 : 0);
    const int64_t ss = CheckedMul(job.prompt, job.prompt);
    p.attention += Bytes(CheckedMul(CheckedMul(b * s.num_attention_heads, ss), per_score));
    p.formula = Formula("eager scores {} x {} heads x {}^2 x {} B", b, s.num_attention_heads, job.prompt,
                        per_score);
  }
  // fc1 output + activation (GELU MLP); fused GeGLU: Wi output (2I), gelu
  // and the product; gated unfused (T5 v1.1): wi_0, wi_1, product.
  const int64_t width = s.mlp_kind == MlpKind::kPlain ? 2 : (s.fused_gate_up ? 4 : 3);
  p.mlp = Bytes(CheckedMul(bs, width * s.intermediate_size)) * e;
  return p;
}

HfCrossKv HfEncoderDecoderKv(const ModelSpec& s, const HfJob& job, int64_t decoder_tokens) {
  HfCrossKv kv;
  if (s.topology != Topology::kEncoderDecoder) return kv;
  const int64_t hq = s.num_attention_heads * s.head_dim;
  const int64_t n = s.enc.decoder_layers;
  const Bytes self = Bytes(CheckedMul(CheckedMul(job.batch, decoder_tokens), hq)) * (job.kvb * n);
  const Bytes cross = Bytes(CheckedMul(CheckedMul(job.batch, job.prompt), hq)) * (job.kvb * n);
  kv.self = {self, self};
  kv.cross = {cross, cross};
  return kv;
}

Bytes HfEncoderHeadOutput(const ModelSpec& s, const HfJob& job) {
  const int64_t bs = CheckedMul(job.batch, job.prompt);
  switch (s.head) {
    case HeadKind::kMaskedLm:
    case HeadKind::kPretraining: return Bytes(CheckedMul(bs, s.vocab_size)) * job.dt;
    case HeadKind::kTokenCls: return Bytes(CheckedMul(bs, s.num_labels)) * job.dt;
    case HeadKind::kSeqCls: return Bytes(CheckedMul(job.batch, s.num_labels)) * job.dt;
    default: return Bytes(0);
  }
}

}  // namespace hf

void EstimateHfEncoder(const Model& model, const InferenceWorkload& w, const DeviceSet& devices,
                       Estimate& e) {
  using namespace hf;  // NOLINT: the steps of this runtime
  const ModelSpec& s = model.spec;
  const HfJob job = HfJobOf(model, w);
  const std::vector<StorageParts> storage = HfGroupStorage(model, w);
  const bool enc_dec = s.topology == Topology::kEncoderDecoder;
  const HfDevice dev = HfDeviceOf(s, job, devices, 0, 0);
  Component weights = HfDeviceWeights(model, w, job, dev);
  const Bytes weight_bytes = weights.bytes;
  e.weight_bytes = HfWeightBytes(model, w, storage);
  const int64_t hq = s.num_attention_heads * s.head_dim;
  e.kv_bytes_per_token = enc_dec ? Bytes(2 * hq * job.kvb * s.enc.decoder_layers) : Bytes(0);

  // The encoder pass (prefill): one layer's largest step is live.
  const HfEncoderPass pass = HfEncoderForward(s, w, job);
  const bool attn_peak = pass.attention >= pass.mlp;
  const Bytes layer_peak = attn_peak ? pass.attention : pass.mlp;
  const Bytes cublas = CublasWorkspace(dev.gpu);
  const int64_t bs = CheckedMul(job.batch, job.prompt);
  // Encoder-decoder: the encoder output stays for the cross-attention
  // projections; the decoder's last step holds new - 1 cached tokens.
  const Bytes enc_out = enc_dec ? Bytes(CheckedMul(bs, job.h)) * job.dt : Bytes(0);
  const int64_t dec_tokens = enc_dec ? std::max<int64_t>(w.new_tokens - 1, 0) : 0;
  const HfCrossKv kv_first = HfEncoderDecoderKv(s, job, 1);
  const HfCrossKv kv_last = HfEncoderDecoderKv(s, job, std::max<int64_t>(dec_tokens, 1));
  // Decoder logits: one position per sequence, compute dtype + fp32 copy.
  const Bytes dec_logits = enc_dec && s.head == HeadKind::kSeq2SeqLm
                               ? Bytes(CheckedMul(job.batch, s.vocab_size)) * (job.dt + 4)
                               : Bytes(0);
  const Bytes head_out = enc_dec ? dec_logits : HfEncoderHeadOutput(s, job);
  const Bytes prefill = weight_bytes + cublas + pass.hidden + layer_peak + head_out + kv_first.sum() + enc_out;
  // One decoder token per sequence at the last step: hidden, MLP, q/k/v
  // and eager scores over the cached and the encoder tokens.
  Bytes dec_act;
  if (enc_dec && w.new_tokens >= 2) {
    const int64_t width = s.mlp_kind == MlpKind::kPlain ? 2 : 3;
    dec_act = Bytes(CheckedMul(job.batch, 2 * job.h + width * s.intermediate_size + 3 * hq)) * job.dt;
    if (w.attn == AttnImpl::kEager) {
      dec_act += Bytes(CheckedMul(CheckedMul(job.batch, s.num_attention_heads),
                                  std::max(job.prompt, dec_tokens))) * (2 * job.dt + 4);
    }
  }
  const Bytes decode = weight_bytes + cublas + kv_last.sum() + enc_out + dec_act + dec_logits;
  const bool at_decode = enc_dec && w.new_tokens >= 2 && decode > prefill;
  const HfCrossKv& kv = at_decode ? kv_last : kv_first;

  std::vector<Component> comps;
  comps.push_back(std::move(weights));
  std::vector<Component> kv_children;
  if (enc_dec) {
    const int64_t t = at_decode ? std::max<int64_t>(dec_tokens, 1) : 1;
    kv_children.push_back(Leaf("self K+V", kv.self.sum(),
                               Formula("{} seq x {} tok x {} decoder layers x 2 x {} x {} B", job.batch, t,
                                       s.enc.decoder_layers, hq, job.kvb)));
    kv_children.push_back(Leaf("cross K+V", kv.cross.sum(),
                               Formula("{} seq x {} encoder tok x {} decoder layers x 2 x {} x {} B", job.batch,
                                       job.prompt, s.enc.decoder_layers, hq, job.kvb)));
  }
  comps.push_back(Parent("kv_cache", std::move(kv_children)));
  std::vector<Component> act;
  if (at_decode) {
    act.push_back(Leaf("encoder output", enc_out, Formula("{} tok x {} x {} B", bs, job.h, job.dt)));
    act.push_back(Leaf("decoder temporaries", dec_act, "one token per sequence"));
  } else {
    act.push_back(Leaf("hidden states", pass.hidden, Formula("2 x {} tok x {} x {} B", bs, job.h, job.dt)));
    act.push_back(Leaf(attn_peak ? "attention" : "mlp", layer_peak,
                       attn_peak ? pass.formula
                                 : Formula("{} inter x {} tok x {} B", s.intermediate_size, bs, job.dt)));
    if (enc_dec) act.push_back(Leaf("encoder output", enc_out));
  }
  act.push_back(Leaf("cublas workspace", cublas));
  comps.push_back(Parent("activations", std::move(act)));
  const Bytes shown_logits = at_decode ? dec_logits : head_out;
  comps.push_back(Leaf("logits", shown_logits,
                       shown_logits.value() == 0 ? std::string()
                       : enc_dec ? Formula("{} seq x {} vocab x ({} + 4) B, one position", job.batch,
                                           s.vocab_size, job.dt)
                                 : Formula("{} head output, {} tok", HeadName(s.head), bs)));
  const Bytes allocated = Total(comps);
  const Bytes rounding = HfSegmentRounding(model, storage, job, dev);
  const Bytes freed = at_decode ? std::max(Bytes(0), prefill - allocated) : Bytes(0);
  std::vector<Component> slack;
  slack.push_back(Leaf("segment rounding", rounding, "tensors over 10 MiB rounded to 2 MiB segments"));
  if (freed.value() > 0) slack.push_back(Leaf("cached encoder temporaries", freed));
  comps.push_back(Parent("allocator_reserve", std::move(slack)));
  comps.push_back(HfCudaContext());

  DeviceEstimate d;
  d.name = dev.name;
  d.gpu = dev.gpu;
  d.peak_phase = at_decode ? "decode" : (enc_dec ? "prefill" : "forward");
  d.allocated_peak = allocated;
  d.reserved_peak = allocated + rounding + freed;
  d.total = *d.reserved_peak + MiB(kTorchCudaContextMiB);
  d.components = std::move(comps);
  e.devices.push_back(std::move(d));
  HfEcho(w, &e.workload);
  e.workload.emplace_back("head", std::string(HeadName(s.head)));
  if (!FormulasOn()) return;
  e.notes.push_back(enc_dec ? fmt::format("{} model: encoder pass over {} tokens, then {} decoder steps with "
                                          "self- and cross-attention caches",
                                          TopologyName(s.topology), job.prompt, w.new_tokens)
                            : fmt::format("encoder model: one forward over {} x {} tokens, no KV cache "
                                          "(torch.no_grad)",
                                          job.batch, job.prompt));
  e.notes.push_back(TorchCudaContextNote(kTorchCudaContextMiB));
}

}  // namespace vramfit::runtimes
