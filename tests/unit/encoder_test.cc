// Encoder (BERT family) and encoder-decoder (T5, BART) models: config
// mapping, exact inventories per head, training and inference estimates,
// refusals.
#include <gtest/gtest.h>

#include <string>

#include "cli_util.h"
#include "vramfit/catalog.h"
#include "vramfit/io/hf_config.h"
#include "vramfit/io/source.h"
#include "vramfit/plan.h"

namespace vramfit {
namespace {

using testing::Cli;

// google-bert/bert-large-uncased config.json (shape keys).
constexpr const char* kBertLarge = R"({"architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.1,
  "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 1024, "intermediate_size": 4096,
  "max_position_embeddings": 512, "model_type": "bert", "num_attention_heads": 16, "num_hidden_layers": 24,
  "position_embedding_type": "absolute", "type_vocab_size": 2, "vocab_size": 30522})";

// google-t5/t5-base config.json (shape keys).
constexpr const char* kT5Base = R"({"architectures": ["T5ForConditionalGeneration"], "d_ff": 3072, "d_kv": 64,
  "d_model": 768, "dropout_rate": 0.1, "is_encoder_decoder": true, "model_type": "t5", "n_positions": 512,
  "num_heads": 12, "num_layers": 12, "relative_attention_num_buckets": 32, "vocab_size": 32128})";

// answerdotai/ModernBERT-base config.json (shape keys).
constexpr const char* kModernBertBase = R"({"architectures": ["ModernBertForMaskedLM"], "attention_bias": false,
  "classifier_bias": false, "decoder_bias": true, "global_attn_every_n_layers": 3, "hidden_size": 768,
  "intermediate_size": 1152, "local_attention": 128, "max_position_embeddings": 8192, "mlp_bias": false,
  "model_type": "modernbert", "norm_bias": false, "num_attention_heads": 12, "num_hidden_layers": 22,
  "torch_dtype": "float32", "vocab_size": 50368})";

Model FromConfig(const char* json) {
  auto spec = ParseHfConfig(json, "config.json");
  EXPECT_TRUE(spec.ok()) << spec.error().message;
  auto m = ModelFromSpec(*spec);
  EXPECT_TRUE(m.ok());
  return *m;
}

int64_t WithHeadParams(const Model& m, HeadKind k, std::optional<int64_t> labels = std::nullopt) {
  auto h = WithHead(m, HeadChoice{k, labels});
  EXPECT_TRUE(h.ok()) << h.error().message;
  return h.ok() ? h->inventory.params : -1;
}

// BERT-large: BertModel.from_pretrained("bert-large-uncased") has 335,141,888
// parameters (keras-hub bert_large_en_uncased preset "params": 335141888;
// data/models/encoders.json). The heads, from modeling_bert.py:
//   mlm (BertForMaskedLM, no pooler): - pooler 1024x1024+1024 (1,049,600)
//     + transform dense 1024x1024+1024 + LayerNorm 2x1024 (1,051,648)
//     + decoder bias 30,522 (decoder tied)            = 335,174,458
//   pretraining (BertForPreTraining, the checkpoint's safetensors, "336M"
//     in the transformers docs): pooler + MLM + NSP 2x1024+2 = 336,226,108
//   seq-cls with 2 labels: pooler + classifier 2x1024+2   = 335,143,938
TEST(EncoderTest, BertLargeHeads) {
  const Model m = FromConfig(kBertLarge);
  EXPECT_EQ(m.spec.topology, Topology::kEncoder);
  EXPECT_EQ(m.spec.head, HeadKind::kMaskedLm);  // architectures[0]
  EXPECT_EQ(m.spec.torch_dtype, DType::kF32);   // no torch_dtype: an fp32 checkpoint
  EXPECT_EQ(m.inventory.base_params, 335141888);
  EXPECT_EQ(m.inventory.params, 335174458);
  EXPECT_EQ(WithHeadParams(m, HeadKind::kBase), 335141888);
  EXPECT_EQ(WithHeadParams(m, HeadKind::kPretraining), 336226108);
  EXPECT_EQ(WithHeadParams(m, HeadKind::kSeqCls), 335143938);
  EXPECT_EQ(WithHeadParams(m, HeadKind::kTokenCls, 9), 335141888 - 1049600 + 9 * 1024 + 9);
  EXPECT_EQ(KvBytesPerToken(m.spec, DType::kBF16, KvLayout::kExpanded).value(), 0);  // no KV cache
}

// T5-base (T5ForConditionalGeneration, tied lm_head): 222,903,552
// (keras-hub t5_base preset "params"; the common count of t5-base).
//   shared 32128x768 + 12 encoder layers (q,k,v,o 4x768x768, wi 3072x768,
//   wo 768x3072, 2 norms) + 12 decoder layers (+ cross q,k,v,o, 3 norms) +
//   relative_attention_bias 32x12 in layer 0 of each stack + 2 final norms.
TEST(EncoderTest, T5BaseExact) {
  const Model m = FromConfig(kT5Base);
  EXPECT_EQ(m.spec.topology, Topology::kEncoderDecoder);
  EXPECT_EQ(m.spec.head, HeadKind::kSeq2SeqLm);
  EXPECT_EQ(m.spec.enc.decoder_layers, 12);
  EXPECT_EQ(m.inventory.params, 222903552);
  // Decoder self-attention K+V per generated token: 12 layers x 2 x 768 x 2 B.
  EXPECT_EQ(KvBytesPerToken(m.spec, DType::kBF16, KvLayout::kExpanded).value(), 12 * 2 * 768 * 2);
}

// ModernBERT-base: ModernBertModel 149,014,272 (keras-hub modern_bert_base_en
// "params"; MTEB metadata n_parameters of ModernBERT-base derivatives):
// tok 50368x768 + norm + 22 x (Wqkv 2304x768, Wo 768x768, Wi 2304x768,
// Wo 768x1152, attn_norm + mlp_norm) - layer 0's attn_norm (Identity) +
// final_norm; no biases. ModernBertForMaskedLM adds head.dense 768x768 (no
// bias), head.norm 768, decoder bias 50368: 149,655,232.
TEST(EncoderTest, ModernBertBaseExact) {
  const Model m = FromConfig(kModernBertBase);
  EXPECT_EQ(m.inventory.base_params, 149014272);
  EXPECT_EQ(m.inventory.params, 149655232);
  EXPECT_EQ(m.spec.layers[0].attention, LayerAttention::kFull);     // global every 3rd layer
  EXPECT_EQ(m.spec.layers[1].attention, LayerAttention::kSliding);  // local 128
}

// Published counts of the other catalog encoders (data/models/encoders.json
// cites each source): DeBERTa-v3-large 434,012,160, XLM-R large
// 559,890,432, bge-m3 567,754,752, flan-t5-xl 2,849,757,184, bart-large
// 406,291,456 -- all checked by InventoryTest.EveryPublishedCountMatches.
// ALBERT-base-v2 shares one layer among 12: AlbertModel 11,683,584
// (embeddings 30000x128 + 512x128 + 2x128 + LN 256, mapping 128x768+768,
// one layer 7,087,872, pooler 590,592).
TEST(EncoderTest, AlbertSharesItsLayer) {
  auto m = LoadModel("albert/albert-base-v2", ModelCatalog::Builtin(), nullptr);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->inventory.base_params, 11683584);
  EXPECT_EQ(m->spec.enc.weight_sets, 1);
}

// The issue's example: a full fp32 fine-tune of BERT-large gives a
// breakdown, not a refusal; eager attention saves the [b, heads, s, s]
// scores, sdpa does not.
TEST(EncoderTest, TrainBertLargeBreakdown) {
  const auto r = Cli({"train", "google-bert/bert-large-uncased", "--method", "full", "--precision", "fp32", "--seq",
                      "512", "--batch", "4", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"activations\""), std::string::npos);
  // Weights 335,174,458 x 4 B; AdamW 2 x 4 B.
  EXPECT_NE(r.out.find("1340697832"), std::string::npos);
  EXPECT_NE(r.out.find("2681395664"), std::string::npos);

  auto m = LoadModel("google-bert/bert-large-uncased", ModelCatalog::Builtin(), nullptr);
  ASSERT_TRUE(m.ok());
  Job job;
  job.training = true;
  job.train.precision = Precision::kFp32;
  job.train.seq = 512;
  job.train.batch = 4;
  job.train.attn = AttnImpl::kSdpa;
  auto sdpa = EstimateJob(*m, job, DeviceSet{});
  job.train.attn = AttnImpl::kEager;
  auto eager = EstimateJob(*m, job, DeviceSet{});
  ASSERT_TRUE(sdpa.ok() && eager.ok());
  // Eager keeps fp32 softmax (4 B) + dropout mask (1 B) + dropped probs (4 B)
  // per score: 24 layers x 16 heads x 512 keys x 9 B x 2048 tokens more.
  const int64_t diff = eager->devices[0].allocated_peak->value() - sdpa->devices[0].allocated_peak->value();
  const int64_t scores = int64_t{24} * 16 * 512 * 2048 * 9;
  EXPECT_GT(diff, scores * 9 / 10);
  EXPECT_LT(diff, scores * 11 / 10);
}

TEST(EncoderTest, InferEncoderForward) {
  const auto r = Cli({"infer", "BAAI/bge-m3", "--batch", "32", "--prompt", "512", "--dtype", "fp16"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("no KV cache"), std::string::npos);
  EXPECT_NE(r.out.find("peak at forward"), std::string::npos);
}

TEST(EncoderTest, InferT5HoldsCrossAttentionCache) {
  auto m = LoadModel("google-t5/t5-base", ModelCatalog::Builtin(), nullptr);
  ASSERT_TRUE(m.ok());
  Job job;
  job.infer.dtype = DType::kBF16;
  job.infer.batch = 8;
  job.infer.prompt = 512;
  job.infer.new_tokens = 65;
  auto e = EstimateJob(*m, job, DeviceSet{});
  ASSERT_TRUE(e.ok()) << e.error().message;
  // The encoder pass over 8 x 512 tokens is the peak (prefill): the cross
  // K+V over the encoder tokens, 8 seq x 512 x 12 decoder layers x 2 x 768
  // x 2 B, and the first decoder token's self K+V.
  EXPECT_EQ(e->devices[0].peak_phase, "prefill");
  const Component* kv = nullptr;
  for (const Component& c : e->devices[0].components) {
    if (c.name == "kv_cache") kv = &c;
  }
  ASSERT_NE(kv, nullptr);
  ASSERT_EQ(kv->children.size(), 2u);
  EXPECT_EQ(kv->children[0].bytes.value(), int64_t{8} * 1 * 12 * 2 * 768 * 2);
  EXPECT_EQ(kv->children[1].bytes.value(), int64_t{8} * 512 * 12 * 2 * 768 * 2);
}

TEST(EncoderTest, Refusals) {
  EXPECT_EQ(Cli({"infer", "google-bert/bert-large-uncased", "--prompt", "128", "--new", "16"}).err,
            "vramfit: error: --new: google-bert/bert-large-uncased is an encoder model (one forward over --batch x "
            "--prompt tokens, no generation)\n");
  EXPECT_EQ(Cli({"infer", "google-bert/bert-large-uncased", "--runtime", "vllm"}).err,
            "vramfit: error: --runtime vllm: google-bert/bert-large-uncased is an encoder model; vLLM runs them "
            "through its pooling / encoder-decoder runners, whose memory vramfit does not model; use --runtime hf\n");
  EXPECT_EQ(Cli({"infer", "meta-llama/Llama-3.1-8B", "--head", "mlm"}).err,
            "vramfit: error: --head: applies to encoder and encoder-decoder models; meta-llama/Llama-3.1-8B is a "
            "decoder-only LLM\n");
  EXPECT_EQ(Cli({"train", "google-bert/bert-large-uncased", "--seq", "1024"}).err,
            "vramfit: error: --seq 1024: google-bert/bert-large-uncased has 512 learned positions; longer samples "
            "do not run\n");
  EXPECT_EQ(Cli({"train", "google-t5/t5-base", "--head", "mlm"}).err,
            "vramfit: error: --head mlm: google-t5/t5-base is an encoder-decoder model (heads: base, seq2seq-lm, "
            "seq-cls)\n");
  EXPECT_EQ(Cli({"train", "google-bert/bert-large-uncased", "--num-labels", "3"}).err,
            "vramfit: error: --num-labels: applies to --head seq-cls or token-cls, not mlm\n");
  EXPECT_EQ(Cli({"train", "google-bert/bert-large-uncased", "--head", "seq-cls", "--num-labels", "3", "--seq", "512"})
                .code,
            0);
}

TEST(EncoderTest, ConfigRefusals) {
  const auto err = [](const std::string& json) {
    auto r = ParseHfConfig(json, "config.json");
    return r.ok() ? std::string("ok") : r.error().message;
  };
  EXPECT_EQ(err(R"({"model_type":"bert","hidden_size":64,"num_hidden_layers":2,"num_attention_heads":2,
                   "vocab_size":100,"intermediate_size":128,"position_embedding_type":"relative_key"})"),
            "config.json: position_embedding_type 'relative_key' of bert is not modelled (absolute only)");
  EXPECT_EQ(err(R"({"model_type":"deberta-v2","hidden_size":64,"num_hidden_layers":2,"num_attention_heads":2,
                   "vocab_size":100,"intermediate_size":128,"conv_kernel_size":3})"),
            "config.json: deberta-v2 conv_kernel_size > 0 (ConvLayer) is not modelled");
  EXPECT_EQ(err(R"({"model_type":"albert","hidden_size":64,"num_hidden_layers":2,"num_attention_heads":2,
                   "vocab_size":100,"intermediate_size":128,"num_hidden_groups":3})"),
            "config.json: num_hidden_groups (3) exceeds num_hidden_layers (2)");
}


// --target-seq: the decoder of an encoder-decoder model runs over the
// target tokens, its cross-attention over the encoder's --seq. flan-t5-xl
// (vocab 32,128), a seq2seq-lm head: the loss covers batch x target tokens
// (12 B per logit with transformers' loss); the default target is --seq,
// which leaves the estimate as it was; decoder-only models refuse it.
TEST(EncoderTest, TargetSeqSizesTheDecoderSide) {
  auto m = LoadModel("google/flan-t5-xl", ModelCatalog::Builtin(), nullptr);
  ASSERT_TRUE(m.ok());
  Job job;
  job.training = true;
  job.train.method = TrainMethod::kLora;
  job.train.precision = Precision::kFp32;
  job.train.seq = 256;
  job.train.batch = 8;
  auto same = EstimateJob(*m, job, DeviceSet{});
  job.train.target_seq = 256;
  auto given = EstimateJob(*m, job, DeviceSet{});
  job.train.target_seq = 8;
  auto short_target = EstimateJob(*m, job, DeviceSet{});
  ASSERT_TRUE(same.ok() && given.ok() && short_target.ok());
  auto comp = [](const Estimate& e, const char* name) {
    for (const Component& c : e.devices[0].components) {
      if (c.name == name) return c.bytes.value();
    }
    return int64_t{-1};
  };
  EXPECT_EQ(same->devices[0].allocated_peak->value(), given->devices[0].allocated_peak->value());
  EXPECT_EQ(comp(*short_target, "logits"), int64_t{8} * 8 * 32128 * 12);
  EXPECT_EQ(comp(*same, "logits"), int64_t{8} * 256 * 32128 * 12);
  EXPECT_LT(comp(*short_target, "activations"), comp(*same, "activations"));
  const auto r = Cli({"train", "meta-llama/Llama-3.1-8B", "--target-seq", "16"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--target-seq: applies to encoder-decoder models (T5, BART); meta-llama/Llama-3.1-8B has one "
                       "stack (--seq)"),
            std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace vramfit
