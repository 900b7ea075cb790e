// KV bytes per token, dtype block sizes, and per-tensor quantized storage.
#include <gtest/gtest.h>

#include "test_util.h"
#include "vramfit/quant.h"

namespace vramfit {
namespace {

using testing::CatalogModelOrDie;

// KV bytes per token = layers x 2 (K,V) x kv_heads x head_dim x bytes.
// Llama-3.1-8B: 32 x 2 x 8 x 128 x 2 = 131,072 (issue #2 acceptance value).
TEST(KvTest, PerTokenBytes) {
  const struct { const char* id; DType d; int64_t bytes; } cases[] = {
      {"meta-llama/Llama-3.1-8B", DType::kBF16, 32 * 2 * 8 * 128 * 2},
      {"meta-llama/Llama-2-7b-hf", DType::kF16, 32 * 2 * 32 * 128 * 2},
      // Falcon-7B multi-query: one KV head of 64 (model_configs.jsonl note).
      {"tiiuae/falcon-7b", DType::kBF16, 32 * 2 * 1 * 64 * 2},
      // Gemma-3-27B: explicit head_dim 128, 16 KV heads, 62 layers.
      {"google/gemma-3-27b-it", DType::kBF16, 62 * 2 * 16 * 128 * 2},
      // Qwen3-32B: explicit head_dim 128 (64 heads x 128 != hidden 5120).
      {"Qwen/Qwen3-32B", DType::kBF16, 64 * 2 * 8 * 128 * 2},
      // fp8 KV halves it.
      {"meta-llama/Llama-3.1-8B", DType::kF8E4M3, 32 * 2 * 8 * 128},
      // Q8_0: 34 bytes per 32 elements, per row of 1024 -> 1088 B per K or V.
      {"meta-llama/Llama-3.1-8B", DType::kQ8_0, 32 * 2 * 1088},
  };
  for (const auto& c : cases) {
    Model m = CatalogModelOrDie(c.id);
    EXPECT_EQ(KvBytesPerToken(m.spec, c.d, KvLayout::kLatent).value(), c.bytes) << c.id;
  }
}

// DeepSeek-V3 MLA: latent 512 + rope 64 = 576 elements per layer
// (model_configs.jsonl "mla_latent_elements_per_token_per_layer"); expanded
// per-head K = 128 x (128 + 64), V = 128 x 128 (40,960 elements per layer).
TEST(KvTest, MlaLatentAndExpanded) {
  Model m = CatalogModelOrDie("deepseek-ai/DeepSeek-V3");
  EXPECT_EQ(KvBytesPerToken(m.spec, DType::kBF16, KvLayout::kLatent).value(), 61 * 576 * 2);
  EXPECT_EQ(KvBytesPerToken(m.spec, DType::kBF16, KvLayout::kExpanded).value(), 61 * 40960 * 2);
}

// ggml block sizes (ggml/src/ggml.c type_traits; ggml-common.h structs).
TEST(DTypeTest, BlockSizes) {
  const struct { DType t; int64_t elems, bytes; int ggml; } cases[] = {
      {DType::kF32, 1, 4, 0},       {DType::kF16, 1, 2, 1},      {DType::kBF16, 1, 2, 30},
      {DType::kQ4_0, 32, 18, 2},    {DType::kQ8_0, 32, 34, 8},   {DType::kQ4_K, 256, 144, 12},
      {DType::kQ5_K, 256, 176, 13}, {DType::kQ6_K, 256, 210, 14}, {DType::kQ2_K, 256, 84, 10},
      {DType::kQ3_K, 256, 110, 11}, {DType::kIQ4_XS, 256, 136, 23}, {DType::kIQ2_XXS, 256, 66, 16},
      {DType::kIQ1_S, 256, 50, 19}, {DType::kIQ1_M, 256, 56, 29}, {DType::kTQ1_0, 256, 54, 34},
      {DType::kTQ2_0, 256, 66, 35}, {DType::kMXFP4, 32, 17, 39},  {DType::kIQ4_NL, 32, 18, 20},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(Info(c.t).block_elems, c.elems) << Name(c.t);
    EXPECT_EQ(Info(c.t).block_bytes, c.bytes) << Name(c.t);
    EXPECT_EQ(Info(c.t).ggml_id, c.ggml) << Name(c.t);
    EXPECT_EQ(DTypeFromGgmlId(c.ggml), c.t);
  }
  // Q4_K_M-style rows: 4096 elements = 16 super-blocks x 144 B.
  EXPECT_EQ(StorageBytes(DType::kQ4_K, 4096).value(), 16 * 144);
  EXPECT_FALSE(DTypeFromGgmlId(4).has_value());  // removed Q4_2
}

TEST(DTypeTest, Parse) {
  EXPECT_EQ(ParseDType("bfloat16"), DType::kBF16);
  EXPECT_EQ(ParseDType("float16"), DType::kF16);
  EXPECT_EQ(ParseDType("q4_k"), DType::kQ4_K);
  EXPECT_EQ(ParseDType("FP8"), DType::kF8E4M3);
  EXPECT_FALSE(ParseDType("fp7").has_value());
  EXPECT_EQ(DTypeFromSafetensors("F8_E4M3"), DType::kF8E4M3);
}

TensorGroup Linear(int64_t out, int64_t in) {
  TensorGroup g;
  g.name = "w";
  g.role = Role::kMlp;
  g.rows = out;
  g.cols = in;
  g.linear = true;
  return g;
}

Bytes Stored(const TensorGroup& g, const std::string& fmt) {
  auto f = ParseWeightFormat(fmt);
  EXPECT_TRUE(f.ok()) << fmt;
  return TensorBytes(g, *f, DType::kBF16);
}

// Per-tensor layouts (docs/estimation.md "Weights"), 4096 x 4096 linear:
TEST(QuantTest, LinearLayouts) {
  const TensorGroup g = Linear(4096, 4096);
  const int64_t n = 4096LL * 4096;
  // bf16.
  EXPECT_EQ(Stored(g, "none").value(), 2 * n);
  // LLM.int8: int8 CB + fp32 SCB per output row.
  EXPECT_EQ(Stored(g, "int8").value(), n + 4 * 4096);
  // NF4: n/2 packed + fp32 absmax per 64 + 16-entry fp32 code.
  EXPECT_EQ(Stored(g, "nf4").value(), n / 2 + n / 64 * 4 + 64);
  // NF4 + double quant: uint8 absmax per 64, fp32 per 256 blocks, 256-entry
  // fp32 code, fp32 offset, 16-entry code.
  EXPECT_EQ(Stored(g, "nf4-dq").value(), n / 2 + n / 64 + (n / 64 / 256) * 4 + 1024 + 4 + 64);
  // GPTQ int4 g128: qweight n/2, scales 32 groups x 4096 fp16, qzeros
  // 32 x 4096/8 int32, g_idx 4096 int32.
  EXPECT_EQ(Stored(g, "gptq-int4").value(), n / 2 + 32 * 4096 * 2 + 32 * 512 * 4 + 4096 * 4);
  // AWQ int4 g128: no g_idx.
  EXPECT_EQ(Stored(g, "awq-int4").value(), n / 2 + 32 * 4096 * 2 + 32 * 512 * 4);
  // FP8 per tensor: one fp32 scale; 128x128 blocks: 32 x 32 fp32 scales.
  EXPECT_EQ(Stored(g, "fp8").value(), n + 4);
  EXPECT_EQ(Stored(g, "fp8-block").value(), n + 32 * 32 * 4);
  // GGUF Q8_0 rows of 4096: 128 blocks x 34 B per row.
  EXPECT_EQ(Stored(g, "Q8_0").value(), 4096LL * 128 * 34);
}

// Unquantized roles per method.
TEST(QuantTest, WhatStaysDense) {
  TensorGroup head = Linear(128256, 4096);
  head.role = Role::kLmHead;
  TensorGroup router = Linear(8, 4096);
  router.role = Role::kRouter;
  TensorGroup expert = Linear(14336, 4096);
  expert.role = Role::kExperts;
  const auto fmt = [](const char* s) { return *ParseWeightFormat(s); };
  EXPECT_FALSE(IsQuantized(head, fmt("nf4")));
  EXPECT_FALSE(IsQuantized(head, fmt("gptq-int4")));
  EXPECT_TRUE(IsQuantized(router, fmt("nf4")));    // bnb converts every nn.Linear but the head
  EXPECT_FALSE(IsQuantized(router, fmt("fp8")));
  EXPECT_TRUE(IsQuantized(expert, fmt("mxfp4")));
  EXPECT_FALSE(IsQuantized(Linear(4096, 4096), fmt("mxfp4")));  // dense MLP stays
}

TEST(QuantTest, ParseErrors) {
  auto r = ParseWeightFormat("int3");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "--quant: unknown format 'int3' (expected none, int8, nf4, nf4-dq, fp4, fp4-dq, "
            "gptq-int4, awq-int4, fp8, fp8-block, fp8-channel, w8a8-int8, nvfp4, mxfp4, mxfp8, torchao-int4wo-64, "
      "torchao-int8wo, torchao-fp6, or a GGUF type such as Q8_0)");
  EXPECT_EQ(ParseWeightFormat("gptq-int5").error().message,
            "--quant: 'gptq-int5' is not a supported bit width");
  EXPECT_EQ(ParseWeightFormat("NF4-DQ")->Name(), "nf4-dq");
}

}  // namespace
}  // namespace vramfit
