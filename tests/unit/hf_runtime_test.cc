// The hf runtime: exact arithmetic on a small model, invariants and
// monotonicity over the catalog, multi-GPU splits, verdicts.
#include <gtest/gtest.h>

#include "test_util.h"

namespace vramfit {
namespace {

using testing::CatalogModelOrDie;
using testing::ComponentBytes;
using testing::EstimateOrDie;
using testing::Gpus;

// SmolLM2-135M (hidden 576, inter 1536, 30 layers, 9 heads / 3 KV heads of
// 64, vocab 49152, tied, bf16; 134,515,008 params per model_configs.jsonl),
// prefill of 100 tokens, batch 1, sdpa, no GPU (cuBLAS workspace 8.125 MiB).
// Terms and sources: docs/estimation.md "hf runtime".
TEST(HfRuntimeTest, SmallModelByHand) {
  Model m = CatalogModelOrDie("HuggingFaceTB/SmolLM2-135M");
  InferenceSettings s;
  s.ctx = 100;
  Estimate e = EstimateOrDie(m, s);
  ASSERT_EQ(e.devices.size(), 1u);
  const DeviceEstimate& d = e.devices[0];
  const int64_t weights = 134515008LL * 2;
  const int64_t kv = 30LL * 2 * (3 * 64) * 2 * 100;        // layers x (K,V) x kv width x 2 B x tokens
  const int64_t hidden = 2LL * 100 * 576 * 2;               // residual + normed input
  const int64_t mlp = 100LL * 3 * 1536 * 2;                 // act(gate), up, product
  const int64_t cublas = 4096LL * 1024 * 2 + 16 * 1024 * 8; // 8.125 MiB
  const int64_t logits = 49152LL * (2 + 4);                 // last position, bf16 + fp32 copy
  EXPECT_EQ(ComponentBytes(d, "weights"), weights);
  EXPECT_EQ(ComponentBytes(d, "kv_cache"), kv);
  EXPECT_EQ(ComponentBytes(d, "activations"), hidden + mlp + cublas);
  EXPECT_EQ(ComponentBytes(d, "logits"), logits);
  EXPECT_EQ(d.allocated_peak->value(), weights + kv + hidden + mlp + cublas + logits);
  // Reserved: 61 norm weights of 1,152 B each round up to 1,536 B (512 B
  // granularity); every other tensor is already a multiple of 512 B.
  EXPECT_EQ(d.reserved_peak->value() - d.allocated_peak->value(), 61 * 384);
  EXPECT_EQ(d.total.value() - d.reserved_peak->value(), 512LL * 1024 * 1024);
  EXPECT_EQ(d.peak_phase, "prefill");
}

// Llama-3.1-8B, 4096-token context: KV = 131,072 B x 4096 = 512 MiB.
TEST(HfRuntimeTest, Llama8bDefaults) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  Estimate e = EstimateOrDie(m, {}, Gpus("RTX-4090"));
  EXPECT_EQ(e.params, 8030261248);
  EXPECT_EQ(e.weight_bytes.value(), 16060522496);
  EXPECT_EQ(e.kv_bytes_per_token.value(), 131072);
  EXPECT_EQ(ComponentBytes(e.devices[0], "kv_cache"), 131072LL * 4096);
  ASSERT_TRUE(e.fits.has_value());
  EXPECT_TRUE(*e.fits);
  EXPECT_EQ(e.total, e.devices[0].total);
}

TEST(HfRuntimeTest, Verdicts) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-70B");
  Estimate e = EstimateOrDie(m, {}, Gpus("RTX-4090"));
  ASSERT_TRUE(e.fits.has_value());
  EXPECT_FALSE(*e.fits);
  InferenceSettings nf4;
  nf4.quant = *ParseWeightFormat("nf4");
  Estimate e2 = EstimateOrDie(m, nf4, Gpus("A100-80GB"));
  EXPECT_TRUE(*e2.fits);
  Estimate none = EstimateOrDie(m, {});
  EXPECT_FALSE(none.fits.has_value());  // no GPU, no verdict
}

// Decode: the last step attends over prompt + new - 1 cached tokens (the
// first new token comes from the prefill forward), plus one layer's
// torch.cat copy.
TEST(HfRuntimeTest, DecodePeakHasCatCopy) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  InferenceSettings s;
  s.prompt = 16;
  s.new_tokens = 8000;
  Estimate e = EstimateOrDie(m, s);
  const DeviceEstimate& d = e.devices[0];
  EXPECT_EQ(d.peak_phase, "decode");
  EXPECT_EQ(ComponentBytes(d, "kv_cache"), 131072LL * 8015);
  const Component* act = Find(d.components, "activations");
  ASSERT_NE(act, nullptr);
  const Component* cat = nullptr;
  for (const Component& c : act->children) if (c.name == "cache growth copy") cat = &c;
  ASSERT_NE(cat, nullptr);
  EXPECT_EQ(cat->bytes.value(), 8015LL * 8 * 128 * 2);  // one layer's K
}

// Sliding-window layers keep W-1 tokens (transformers >= 4.56).
TEST(HfRuntimeTest, SlidingWindowCapsKv) {
  Model m = CatalogModelOrDie("mistralai/Mistral-7B-v0.1");
  InferenceSettings s;
  s.ctx = 16384;
  Estimate e = EstimateOrDie(m, s);
  EXPECT_EQ(ComponentBytes(e.devices[0], "kv_cache"), 32LL * 2 * 8 * 128 * 2 * 4095);
  // gpt-oss: half the layers slide over 128 tokens.
  Model g = CatalogModelOrDie("openai/gpt-oss-20b");
  Estimate eg = EstimateOrDie(g, s);
  EXPECT_EQ(ComponentBytes(eg.devices[0], "kv_cache"), 12LL * 2 * 8 * 64 * 2 * (16384 + 127));
}

TEST(HfRuntimeTest, EagerAttentionAddsScores) {
  Model m = CatalogModelOrDie("meta-llama/Llama-2-7b-hf");
  InferenceSettings sdpa;
  sdpa.ctx = 4096;
  InferenceSettings eager = sdpa;
  eager.attn = AttnImpl::kEager;
  const Estimate a = EstimateOrDie(m, sdpa);
  const Estimate b = EstimateOrDie(m, eager);
  // (2 x 2 + 4) B per score x 32 heads x 4096^2, plus repeat_kv and the mask.
  EXPECT_GT(b.devices[0].allocated_peak->value() - a.devices[0].allocated_peak->value(),
            8LL * 32 * 4096 * 4096);
}

// More batch or context never needs less memory, for every catalog model.
TEST(HfRuntimeTest, MonotoneInBatchAndContext) {
  for (const CatalogModel& cm : ModelCatalog::Builtin().models()) {
    auto m = ModelFromCatalog(cm, nullptr);
    ASSERT_TRUE(m.ok());
    // Encoders refuse --new and lengths beyond their position tables
    // (encoder_test.cc covers them).
    if (m->spec.topology != Topology::kDecoder) continue;
    if (IsHybridStack(m->spec)) continue;  // refused by --runtime hf (hybrid_test.cc)
    Bytes prev_b, prev_c;
    for (int64_t b : {1, 2, 8}) {
      InferenceSettings s;
      s.batch = b;
      s.prompt = 512;
      s.new_tokens = 512;
      Estimate e = EstimateOrDie(*m, s);
      EXPECT_GE(e.devices[0].allocated_peak.value(), prev_b) << cm.id << " batch " << b;
      prev_b = *e.devices[0].allocated_peak;
    }
    for (int64_t c : {256, 2048, 8192}) {
      InferenceSettings s;
      s.ctx = c;
      Estimate e = EstimateOrDie(*m, s);
      EXPECT_GE(e.devices[0].total, prev_c) << cm.id << " ctx " << c;
      prev_c = e.devices[0].total;
    }
  }
}

// Several GPUs without --tp/--pp split the layers (device_map="auto");
// weights over all devices add up to the model's weights.
TEST(HfRuntimeTest, LayerSplitKeepsEveryWeightOnce) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-70B");
  Estimate e = EstimateOrDie(m, {}, Gpus("A100-80GBx2"));
  ASSERT_EQ(e.devices.size(), 2u);
  EXPECT_EQ(ComponentBytes(e.devices[0], "weights") + ComponentBytes(e.devices[1], "weights"),
            e.weight_bytes.value());
  // Logits (untied head) only on the last device.
  EXPECT_EQ(ComponentBytes(e.devices[0], "logits"), 0);
  EXPECT_GT(ComponentBytes(e.devices[1], "logits"), 0);
}

// Tensor parallel divides linears and the vocabulary; norms are replicated.
TEST(HfRuntimeTest, TensorParallelSplitsWeights) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-70B");
  InferenceSettings s;
  s.tp = 4;
  Estimate e = EstimateOrDie(m, s, Gpus("H100-80GBx4"));
  ASSERT_EQ(e.devices.size(), 4u);
  const int64_t norms = (80LL * 2 + 1) * 8192 * 2;
  EXPECT_EQ(ComponentBytes(e.devices[0], "weights") * 4 - 3 * norms, e.weight_bytes.value());
  // 8 KV heads over 4 ranks: 2 heads each.
  InferenceSettings one;
  one.ctx = 4096;
  s.ctx = 4096;
  Estimate single = EstimateOrDie(m, one);
  Estimate split = EstimateOrDie(m, s, Gpus("H100-80GBx4"));
  EXPECT_EQ(ComponentBytes(split.devices[0], "kv_cache") * 4, ComponentBytes(single.devices[0], "kv_cache"));
}

TEST(HfRuntimeTest, SettingErrors) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  const auto err = [&](InferenceSettings s, const DeviceSet& d = {}) {
    auto w = ResolveInference(m, s, d, nullptr);
    return w.ok() ? std::string("ok") : w.error().message;
  };
  InferenceSettings s;
  s.batch = 0;
  EXPECT_EQ(err(s), "--batch: must be a positive integer, got 0");
  s = {};
  s.ctx = 1LL << 40;
  EXPECT_EQ(err(s), "--ctx: 1099511627776 is out of range (1..67108864)");
  s = {};
  s.ctx = 10;
  s.prompt = 5;
  EXPECT_EQ(err(s), "--ctx: give either --ctx or --prompt/--new, not both");
  s = {};
  s.tp = 3;
  EXPECT_EQ(err(s, Gpus("H100-80GBx3")), "--tp: 32 attention heads do not split over 3 GPUs");
  s = {};
  s.tp = 2;
  EXPECT_EQ(err(s, Gpus("H100-80GBx4")), "--tp 2 x --pp 1 needs 2 GPUs, but --gpu gives 4");
  s = {};
  s.quant = *ParseWeightFormat("mxfp4");
  EXPECT_EQ(err(s), "--quant: mxfp4 stores MoE expert weights, and this model has no experts");
  s = {};
  s.kv_dtype = DType::kQ8_0;
  EXPECT_EQ(err(s), "--kv-dtype: Q8_0 is a llama.cpp cache type; the hf runtime caches fp16, "
                    "bf16, fp32 or fp8");
}

// Checkpoint formats are the default: gpt-oss experts stay MXFP4.
TEST(HfRuntimeTest, CheckpointQuantIsDefault) {
  Model m = CatalogModelOrDie("openai/gpt-oss-120b");
  Estimate e = EstimateOrDie(m, {});
  EXPECT_EQ(e.weight_bytes.value(), 65248815744);
  InferenceSettings dense;
  dense.quant = WeightFormat{};
  Estimate d = EstimateOrDie(m, dense);
  EXPECT_EQ(d.weight_bytes.value(), 116829156672LL * 2);
}

TEST(HfRuntimeTest, OverflowIsAnErrorNotACrash) {
  Model m = CatalogModelOrDie("deepseek-ai/DeepSeek-V3");
  InferenceSettings s;
  s.batch = kMaxBatch;
  s.ctx = kMaxTokens;
  auto w = ResolveInference(m, s, {}, nullptr);
  ASSERT_TRUE(w.ok());
  auto e = EstimateInference(m, *w, {});
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message.rfind("estimate: the settings overflow 64-bit byte counts", 0), 0u);
}

}  // namespace
}  // namespace vramfit

namespace vramfit {
namespace {

// --transformers selects the generate() behaviour of older releases
// (docs/research/hf-inference.md section 7): before 4.42 the previous
// step's cache tuple is alive while decoding (2 x KV; transformers issue
// #25930), and up to 4.44 Llama-family models compute fp32 logits for every
// prompt position (b x s x V x (e + 4)).
TEST(HfRuntimeTest, LegacyTransformersProfile) {
  Model m = testing::CatalogModelOrDie("meta-llama/Llama-2-13b-hf");
  InferenceSettings s;
  s.batch = 16;
  s.prompt = 512;
  s.new_tokens = 512;
  s.hf_version = 433;
  Estimate e = testing::EstimateOrDie(m, s);
  const DeviceEstimate& d = e.devices[0];
  EXPECT_EQ(d.peak_phase, "decode");
  const int64_t kv = 16LL * 1023 * 40 * 2 * 5120 * 2;  // 512 + 512 - 1 tokens
  EXPECT_EQ(testing::ComponentBytes(d, "kv_cache"), kv);
  const Component* act = Find(d.components, "activations");
  ASSERT_NE(act, nullptr);
  EXPECT_EQ(act->children[1].name, "cache growth copy");
  EXPECT_EQ(act->children[1].bytes.value(), kv);
  // Prefill logits at 4.44 cover every prompt position.
  InferenceSettings p;
  p.ctx = 4096;
  p.hf_version = 444;
  Estimate pe = testing::EstimateOrDie(m, p);
  EXPECT_EQ(testing::ComponentBytes(pe.devices[0], "logits"), 4096LL * 32000 * (2 + 4));
  // Defaults: eager before 4.36, sdpa after.
  auto w = ResolveInference(m, s, {}, nullptr);
  EXPECT_EQ(w->attn, AttnImpl::kEager);
  EXPECT_EQ(ParseHfVersion("4.56.1").value(), 456);
  EXPECT_EQ(ParseHfVersion("5.0").error().message,
            "--transformers: expected a version such as 4.56, got '5.0'");
}

}  // namespace
}  // namespace vramfit
