// GGUF file types: the per-tensor types llama-quantize picks
// (src/llama-quant.cpp llama_tensor_get_type / tensor_type_fallback), by
// hand on small models and against the sizes llama.cpp printed in
// ../shared/truth/llamacpp.jsonl.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include <fmt/format.h>

#include "test_util.h"
#include "vramfit/gguf_mix.h"
#include "vramfit/quant.h"

namespace vramfit {
namespace {

using testing::CatalogModelOrDie;

// A small llama: 8 layers, hidden 256, 4 heads / 1 KV head of 64 (gqa 4),
// SwiGLU 512, vocab 1000, untied head.
Model SmallLlama(bool tied = false, int64_t hidden = 256, int64_t layers = 8) {
  Model m;
  ModelSpec& s = m.spec;
  s.id = "small-llama";
  s.model_type = "llama";
  s.vocab_size = 1000;
  s.hidden_size = hidden;
  s.num_hidden_layers = layers;
  s.max_position_embeddings = 4096;
  s.num_attention_heads = 4;
  s.num_key_value_heads = 1;
  s.head_dim = hidden / 4;
  s.v_head_dim = hidden / 4;
  s.intermediate_size = 2 * hidden;
  s.tie_word_embeddings = tied;
  s.layers.assign(static_cast<size_t>(layers), {});
  m.inventory = BuildInventory(s);
  return m;
}

std::vector<GgufTensor> Mix(const Model& m, const char* quant, int64_t build = llamacpp_build::kDefault) {
  auto f = ParseWeightFormat(quant);
  EXPECT_TRUE(f.ok()) << quant;
  auto r = GgufMix(m, f->gguf_ftype, f->gguf_type, build);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : std::vector<GgufTensor>{};
}

const GgufTensor* Find(const std::vector<GgufTensor>& ts, const std::string& name) {
  for (const GgufTensor& t : ts) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

DType TypeOf(const std::vector<GgufTensor>& ts, const std::string& name) {
  const GgufTensor* t = Find(ts, name);
  EXPECT_NE(t, nullptr) << name;
  return t ? t->type : DType::kCount;
}

// "model size = X GiB (Y BPW)" as llama_model_loader prints it (%.2f).
std::string Printed(const std::vector<GgufTensor>& ts) {
  const double bytes = static_cast<double>(GgufBytes(ts).value());
  return fmt::format("{:.2f} GiB ({:.2f} BPW)", bytes / (1 << 30),
                     8.0 * bytes / static_cast<double>(GgufElements(ts)));
}

// Q4_K_M by hand (llama_tensor_get_type_impl): base Q4_K (144 B / 256);
// output -> Q6_K (210 B / 256); attn_v and ffn_down -> Q6_K where
// use_more_bits(i, 8) = i < 1 || i >= 7 || (i - 1) % 3 == 2, i.e. layers
// 0, 3, 6, 7; norms F32; token_embd (untied) keeps the base type.
TEST(GgufMixTest, Q4KMByHand) {
  const std::vector<GgufTensor> ts = Mix(SmallLlama(), "Q4_K_M");
  EXPECT_EQ(TypeOf(ts, "token_embd.weight"), DType::kQ4_K);
  EXPECT_EQ(TypeOf(ts, "output.weight"), DType::kQ6_K);
  EXPECT_EQ(TypeOf(ts, "output_norm.weight"), DType::kF32);
  for (int il = 0; il < 8; ++il) {
    const bool more = il == 0 || il == 3 || il == 6 || il == 7;
    EXPECT_EQ(TypeOf(ts, fmt::format("blk.{}.attn_v.weight", il)), more ? DType::kQ6_K : DType::kQ4_K) << il;
    EXPECT_EQ(TypeOf(ts, fmt::format("blk.{}.ffn_down.weight", il)), more ? DType::kQ6_K : DType::kQ4_K) << il;
    EXPECT_EQ(TypeOf(ts, fmt::format("blk.{}.attn_k.weight", il)), DType::kQ4_K);
    EXPECT_EQ(TypeOf(ts, fmt::format("blk.{}.ffn_up.weight", il)), DType::kQ4_K);
  }
  // Per layer: q 256 rows, k 64, o 256, gate + up 2 x 512 rows of 256
  // columns at 144 B per row, two 256-wide F32 norms; attn_v 64 rows and
  // ffn_down 256 rows of 512 columns at Q6_K (210 / 420 B) on 4 layers,
  // Q4_K (144 / 288 B) on 4; token_embd 1000 x 144; output 1000 x 210;
  // output_norm 1024.
  const int64_t base = (256 + 64 + 256 + 2 * 512) * 144 + 2 * 1024;
  const int64_t more = 64 * 210 + 256 * 420;
  const int64_t less = 64 * 144 + 256 * 288;
  EXPECT_EQ(GgufBytes(ts).value(), 8 * base + 4 * more + 4 * less + 1000 * 144 + 1000 * 210 + 1024);
  EXPECT_EQ(GgufBytes(ts).value(), 3030224);
  EXPECT_EQ(GgufElements(ts), SmallLlama().inventory.params);
}

// Tied embeddings: no output.weight, so token_embd takes the output rules
// (Q6_K) -- "for arches that share the same tensor between the token
// embeddings and the output".
TEST(GgufMixTest, TiedEmbeddingsTakeTheOutputType) {
  const std::vector<GgufTensor> ts = Mix(SmallLlama(/*tied=*/true), "Q4_K_M");
  EXPECT_EQ(Find(ts, "output.weight"), nullptr);
  EXPECT_EQ(TypeOf(ts, "token_embd.weight"), DType::kQ6_K);
  EXPECT_EQ(GgufBytes(ts).value(), 3030224 - 1000 * 144 - 1000 * 210 + 1000 * 210);
}

// tensor_type_fallback: a row of 896 (Qwen2.5-0.5B's hidden size) is not a
// multiple of 256: Q4_K -> Q5_0 (22 B / 32), Q6_K -> Q8_0; the output head
// with nx % 256 != 0 goes straight to Q8_0. ffn_down's rows are the
// intermediate size, 1792 = 7 x 256, so it keeps Q4_K.
TEST(GgufMixTest, ShapeFallback) {
  const std::vector<GgufTensor> ts = Mix(SmallLlama(false, 896), "Q4_K_M");
  EXPECT_EQ(TypeOf(ts, "blk.1.attn_q.weight"), DType::kQ5_0);
  ASSERT_NE(Find(ts, "blk.1.attn_q.weight"), nullptr);
  EXPECT_EQ(Find(ts, "blk.1.attn_q.weight")->bytes.value(), 896 * (896 / 32 * 22));
  EXPECT_EQ(TypeOf(ts, "blk.0.attn_v.weight"), DType::kQ8_0);   // Q6_K -> Q8_0
  EXPECT_EQ(TypeOf(ts, "blk.1.ffn_down.weight"), DType::kQ4_K);  // 1792 columns divide by 256
  EXPECT_EQ(TypeOf(ts, "blk.0.ffn_down.weight"), DType::kQ6_K);  // use_more_bits, 1792 % 256 == 0
  EXPECT_EQ(TypeOf(ts, "output.weight"), DType::kQ8_0);
  // IQ4_XS (256-blocks) falls back to IQ4_NL (18 B / 32).
  EXPECT_EQ(TypeOf(Mix(SmallLlama(false, 896), "IQ4_XS"), "blk.1.attn_q.weight"), DType::kIQ4_NL);
}

// Other file types on the small model (gqa = 4).
TEST(GgufMixTest, RulesPerFileType) {
  const Model m = SmallLlama();
  struct Case {
    const char* quant;
    const char* tensor;
    DType want;
  } cases[] = {
      {"Q8_0", "output.weight", DType::kQ8_0},          // Q8_0 keeps its output
      {"Q4_0", "output.weight", DType::kQ6_K},          // every other type: Q6_K head
      {"Q4_0", "blk.0.ffn_down.weight", DType::kQ4_0},  // no imatrix: no Q4_1 bump
      {"Q2_K", "blk.2.attn_v.weight", DType::kQ4_K},    // gqa >= 4
      {"Q2_K", "blk.2.ffn_down.weight", DType::kQ3_K},
      {"Q2_K", "blk.2.attn_output.weight", DType::kQ3_K},
      {"Q3_K_M", "blk.1.attn_v.weight", DType::kQ5_K},  // first 2 attn_v
      {"Q3_K_M", "blk.2.attn_v.weight", DType::kQ4_K},
      {"Q3_K_M", "blk.2.attn_output.weight", DType::kQ4_K},
      {"Q3_K_M", "blk.0.ffn_down.weight", DType::kQ4_K},  // n/16 = 0 layers at Q5_K, then Q4_K
      {"Q3_K_L", "blk.2.attn_v.weight", DType::kQ5_K},
      {"Q4_K_S", "blk.3.attn_v.weight", DType::kQ5_K},  // first 4 attn_v
      {"Q4_K_S", "blk.4.attn_v.weight", DType::kQ4_K},
      {"Q4_K_S", "blk.0.ffn_down.weight", DType::kQ5_K},  // first n/8
      {"Q5_K_M", "blk.7.ffn_down.weight", DType::kQ6_K},
      {"Q6_K", "blk.4.attn_v.weight", DType::kQ6_K},
      {"IQ4_XS", "blk.2.attn_v.weight", DType::kQ5_K},    // gqa >= 4
      {"IQ4_XS", "blk.0.ffn_down.weight", DType::kQ5_K},  // first n/8, no imatrix
      {"IQ2_XXS", "token_embd.weight", DType::kQ2_K},
      {"IQ2_XXS", "output.weight", DType::kQ5_K},
      {"IQ2_XXS", "blk.3.attn_v.weight", DType::kQ4_K},    // gqa >= 4
      {"IQ2_XXS", "blk.0.ffn_down.weight", DType::kQ2_K},  // first n/8 ffn_down
      {"IQ2_M", "blk.3.attn_q.weight", DType::kIQ2_S},     // IQ2_M's base type
      {"IQ3_XXS", "blk.3.attn_k.weight", DType::kIQ2_S},
      {"IQ1_S", "blk.3.attn_output.weight", DType::kIQ2_XXS},
      {"F16", "blk.3.attn_q.weight", DType::kF16},
      {"F16", "blk.3.norm_weight.0", DType::kF32},
      {"Q4_K", "output.weight", DType::kQ4_K},  // pure: one type everywhere
      {"Q4_0-pure", "output.weight", DType::kQ4_0},
  };
  // BF16 files are not re-typed (llama_model_quantize_impl calls
  // llama_tensor_get_type only for quantized default types). `--quant bf16`
  // names the unquantized checkpoint format, so the GGUF BF16 file type is
  // asked of GgufMix directly.
  {
    auto r = GgufMix(m, GgufFtype::kBF16, DType::kBF16, llamacpp_build::kDefault);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(TypeOf(*r, "output.weight"), DType::kBF16);
    EXPECT_EQ(TypeOf(*r, "blk.3.attn_v.weight"), DType::kBF16);
  }
  for (const Case& c : cases) {
    const std::vector<GgufTensor> ts = Mix(m, c.quant);
    const GgufTensor* t = Find(ts, c.tensor);
    ASSERT_NE(t, nullptr) << c.quant << " " << c.tensor;
    EXPECT_EQ(t->type, c.want) << c.quant << " " << c.tensor << ": got " << Name(t->type);
  }
}

// Mixtral (n_expert == 8): attn_v and attn_k at Q8_0, attn_output at Q5_K;
// the experts are 3-D ffn_*_exps tensors, the router stays F32.
TEST(GgufMixTest, MixtralRules) {
  const Model m = CatalogModelOrDie("mistralai/Mixtral-8x7B-v0.1");
  const std::vector<GgufTensor> ts = Mix(m, "Q4_K_M");
  EXPECT_EQ(TypeOf(ts, "blk.5.attn_v.weight"), DType::kQ8_0);
  EXPECT_EQ(TypeOf(ts, "blk.5.attn_k.weight"), DType::kQ8_0);
  EXPECT_EQ(TypeOf(ts, "blk.5.attn_output.weight"), DType::kQ5_K);
  EXPECT_EQ(TypeOf(ts, "blk.5.ffn_gate_inp.weight"), DType::kF32);
  const GgufTensor* up = Find(ts, "blk.5.ffn_up_exps.weight");
  ASSERT_NE(up, nullptr);
  EXPECT_EQ(up->experts, 8);
  EXPECT_EQ(up->bytes.value(), 8LL * 14336 * (4096 / 256 * 144));
}

// LLM_TYPE_70B: attn_v Q3_K/Q4_K -> Q5_K (8 KV heads make it 8x smaller).
TEST(GgufMixTest, SeventyBAttnV) {
  const Model m = CatalogModelOrDie("meta-llama/Llama-3.1-70B");
  const std::vector<GgufTensor> ts = Mix(m, "Q4_K_M");
  // use_more_bits(i, 80): i < 10, i >= 70, or (i - 10) % 3 == 2.
  EXPECT_EQ(TypeOf(ts, "blk.11.attn_v.weight"), DType::kQ5_K);  // Q4_K -> Q5_K
  EXPECT_EQ(TypeOf(ts, "blk.12.attn_v.weight"), DType::kQ6_K);  // use_more_bits
  EXPECT_EQ(TypeOf(ts, "blk.11.attn_q.weight"), DType::kQ4_K);
}

// DeepSeek MLA (since PR #12801): kv_b is stored split as attn_k_b (rows of
// qk_nope = 128: Q4_K falls back to Q5_0) and attn_v_b; neither is an
// attn_v tensor, so nothing gets the attn_v bump. Before, attn_kv_b.
TEST(GgufMixTest, MlaSplitKvB) {
  const Model m = CatalogModelOrDie("deepseek-ai/DeepSeek-V2-Lite");
  const std::vector<GgufTensor> ts = Mix(m, "Q4_K_M");
  const GgufTensor* kb = Find(ts, "blk.3.attn_k_b.weight");
  ASSERT_NE(kb, nullptr);
  EXPECT_EQ(kb->type, DType::kQ5_0);
  EXPECT_EQ(kb->ne0, 128);
  EXPECT_EQ(kb->experts, 16);  // heads
  EXPECT_EQ(TypeOf(ts, "blk.3.attn_v_b.weight"), DType::kQ4_K);
  EXPECT_EQ(Find(ts, "blk.3.attn_kv_b.weight"), nullptr);
  // ffn_down_exps rows of 1408 = 5.5 x 256: Q4_K -> Q5_0, Q6_K -> Q8_0.
  // use_more_bits(i, 27): i < 3, i >= 23, or (i - 3) % 3 == 2.
  EXPECT_EQ(TypeOf(ts, "blk.2.ffn_down_exps.weight"), DType::kQ8_0);
  EXPECT_EQ(TypeOf(ts, "blk.3.ffn_down_exps.weight"), DType::kQ5_0);
  const std::vector<GgufTensor> old = Mix(m, "Q4_K_M", 5000);
  EXPECT_NE(Find(old, "blk.3.attn_kv_b.weight"), nullptr);
  EXPECT_EQ(GgufElements(ts), GgufElements(old));
}

// gpt-oss as MXFP4_MOE: 3-D expert tensors MXFP4, everything else that is
// quantizable Q8_0 (output included).
TEST(GgufMixTest, Mxfp4Moe) {
  const Model m = CatalogModelOrDie("openai/gpt-oss-20b");
  const std::vector<GgufTensor> ts = Mix(m, "MXFP4_MOE");
  EXPECT_EQ(TypeOf(ts, "blk.0.ffn_gate_exps.weight"), DType::kMXFP4);
  EXPECT_EQ(TypeOf(ts, "blk.0.attn_q.weight"), DType::kQ8_0);
  EXPECT_EQ(TypeOf(ts, "output.weight"), DType::kQ8_0);
  EXPECT_EQ(TypeOf(ts, "blk.0.ffn_gate_inp.weight"), DType::kF32);
}

// Fused attn_qkv (phi-3/phi-4): before the tensor_category refactor its own
// branch (Q4_K_M -> Q5_K); after it, the attn_v rule (category_is_attn_v
// includes ATTENTION_QKV): Q6_K where use_more_bits(i, 40) -- i < 5,
// i >= 35, (i - 5) % 3 == 2 -- and Q4_K elsewhere.
TEST(GgufMixTest, FusedQkvByBuild) {
  const Model m = CatalogModelOrDie("microsoft/phi-4");
  const std::vector<GgufTensor> old = Mix(m, "Q4_K_M", llamacpp_build::kQuantCategory - 1);
  EXPECT_EQ(TypeOf(old, "blk.0.attn_qkv.weight"), DType::kQ5_K);
  EXPECT_EQ(TypeOf(old, "blk.1.attn_qkv.weight"), DType::kQ5_K);
  const std::vector<GgufTensor> now = Mix(m, "Q4_K_M", llamacpp_build::kQuantCategory);
  EXPECT_EQ(TypeOf(now, "blk.0.attn_qkv.weight"), DType::kQ6_K);
  EXPECT_EQ(TypeOf(now, "blk.1.attn_qkv.weight"), DType::kQ6_K);  // 1 < 40 / 8
  EXPECT_EQ(TypeOf(now, "blk.5.attn_qkv.weight"), DType::kQ4_K);
  EXPECT_EQ(TypeOf(now, "blk.7.attn_qkv.weight"), DType::kQ6_K);  // (7 - 5) % 3 == 2
}

// phi-4 Q4_K_M, old rules, by hand: 40 layers of attn_qkv 7680 x 5120 at
// Q5_K (176 B / 256), attn_output 5120 x 5120 and ffn_up 35840 x 5120 at
// Q4_K, ffn_down 5120 x 17920 at Q6_K on the 20 use_more_bits layers and
// Q4_K on 20, two F32 norms; output 100352 x 5120 Q6_K + output_norm.
// Everything but token_embd is the GPU model buffer: 8,760,545,280 B =
// 8354.71 MiB, as L31 (Ollama, Dec 2025) printed "CUDA0 model buffer size =
// 8354.71 MiB"; token_embd Q4_K is its CPU_Mapped 275.62 MiB.
TEST(GgufMixTest, Phi4Q4KMMatchesL31) {
  const Model m = CatalogModelOrDie("microsoft/phi-4");
  const std::vector<GgufTensor> ts = Mix(m, "Q4_K_M", 7400);
  const int64_t layer = 7680LL * 20 * 176 + 5120LL * 20 * 144 + 35840LL * 20 * 144 + 2 * 5120 * 4;
  const int64_t down_q6 = 5120LL * 70 * 210, down_q4 = 5120LL * 70 * 144;
  const int64_t output = 100352LL * 20 * 210 + 5120 * 4;
  const int64_t embd = 100352LL * 20 * 144;
  EXPECT_EQ(GgufBytes(ts).value(), 40 * layer + 20 * down_q6 + 20 * down_q4 + output + embd);
  EXPECT_EQ(GgufBytes(ts).value() - embd, 8760545280);
  EXPECT_EQ(Find(ts, "token_embd.weight")->bytes.value(), 289013760);  // 275.62 MiB
}

// "model size" lines of mainline llama.cpp load logs (../shared/truth/
// llamacpp.jsonl): file type and printed size/BPW.
TEST(GgufMixTest, PrintedModelSizes) {
  struct Case {
    const char* model;
    const char* quant;
    int64_t build;
    const char* printed;
    const char* source;
  } cases[] = {
      {"Qwen/Qwen3-30B-A3B", "Q4_K_M", 5622, "17.28 GiB (4.86 BPW)", "L01"},
      {"Qwen/Qwen3-235B-A22B", "Q8_0", 5192, "232.77 GiB (8.51 BPW)", "L02"},
      {"Qwen/Qwen3-235B-A22B", "Q6_K", 5269, "179.75 GiB (6.57 BPW)", "L04"},
      {"EleutherAI/pythia-2.8b", "Q6_K", 3847, "2.12 GiB (6.57 BPW)", "L37"},
      {"microsoft/phi-4", "Q4_K_M", 7400, "8.43 GiB (4.94 BPW)", "L31"},
      {"meta-llama/Llama-3.3-70B-Instruct", "Q3_K_M", 5000, "31.91 GiB (3.88 BPW)", "L32"},
      // ik_llama.cpp prints three decimals; its quantizer is mainline's here.
      {"Qwen/Qwen3-235B-A22B", "Q4_K_M", 5000, "132.39 GiB (4.84 BPW)", "L11: 132.386 GiB (4.837 BPW)"},
      {"meta-llama/Llama-2-13b-hf", "Q8_0", 5000, "12.88 GiB (8.50 BPW)", "L17: 12.881 GiB (8.501 BPW)"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Printed(Mix(CatalogModelOrDie(c.model), c.quant, c.build)), c.printed) << c.source;
  }
}

// Pythia 2.8B Q6_K (L37): token_embd 50304 x 2560 Q6_K is the CPU buffer,
// 100.74 MiB = 105,638,400 B.
TEST(GgufMixTest, PythiaTokenEmbd) {
  const std::vector<GgufTensor> ts = Mix(CatalogModelOrDie("EleutherAI/pythia-2.8b"), "Q6_K", 3847);
  EXPECT_EQ(Find(ts, "token_embd.weight")->bytes.value(), 50304LL * 10 * 210);
}

TEST(GgufMixTest, ParseFileTypes) {
  struct Case {
    const char* in;
    GgufFtype ftype;
    DType base;
    const char* name;
  } cases[] = {
      {"Q4_K_M", GgufFtype::kQ4_K_M, DType::kQ4_K, "Q4_K_M"},
      {"q4_k_m", GgufFtype::kQ4_K_M, DType::kQ4_K, "Q4_K_M"},
      {"IQ2_S", GgufFtype::kIQ2_S, DType::kIQ2_XS, "IQ2_S"},
      {"IQ3_XS", GgufFtype::kIQ3_XS, DType::kIQ3_S, "IQ3_XS"},
      {"F16", GgufFtype::kF16, DType::kF16, "F16"},
      {"Q4_K", GgufFtype::kPure, DType::kQ4_K, "Q4_K"},
      {"Q4_0-pure", GgufFtype::kPure, DType::kQ4_0, "Q4_0-pure"},
      {"MXFP4_MOE", GgufFtype::kMXFP4_MOE, DType::kMXFP4, "MXFP4_MOE"},
  };
  for (const Case& c : cases) {
    auto f = ParseWeightFormat(c.in);
    ASSERT_TRUE(f.ok()) << c.in;
    EXPECT_EQ(f->method, QuantMethod::kGguf) << c.in;
    EXPECT_EQ(f->gguf_ftype, c.ftype) << c.in;
    EXPECT_EQ(f->gguf_type, c.base) << c.in;
    EXPECT_EQ(f->Name(), c.name) << c.in;
    EXPECT_EQ(ParseWeightFormat(f->Name())->Name(), c.name) << "round trip " << c.in;
  }
  EXPECT_EQ(ParseWeightFormat("MXFP4_MOE-pure").error().message,
            "--quant: 'MXFP4_MOE-pure': MXFP4_MOE has no pure form");
}

// The hf runtime refuses GGUF file types.
TEST(GgufMixTest, HfRefusesGguf) {
  InferenceSettings s;
  s.quant = *ParseWeightFormat("Q4_K_M");
  auto w = ResolveInference(SmallLlama(), s, {}, nullptr);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().message, "--quant Q4_K_M: GGUF file types need --runtime llamacpp");
}

}  // namespace
}  // namespace vramfit
