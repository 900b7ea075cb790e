// Parameter inventories against published exact counts.
#include <gtest/gtest.h>

#include "test_util.h"
#include "vramfit/io/hf_config.h"
#include "vramfit/quant.h"

namespace vramfit {
namespace {

using testing::CatalogModelOrDie;

// Every catalog model with a published exact count must match it to the
// parameter. Counts come from data/models/*.json "exact_params", copied from
// ../shared/data/model_configs.jsonl (and the Pythia model card), each entry
// citing its source. One documented exception: Qwen3-0.6B's published total
// counts the lm_head tensor its checkpoint stores although the embeddings
// are tied (596,049,920 + 151,936 x 1,024).
TEST(InventoryTest, EveryPublishedCountMatches) {
  int checked = 0;
  for (const CatalogModel& cm : ModelCatalog::Builtin().models()) {
    auto m = ModelFromCatalog(cm, nullptr);
    ASSERT_TRUE(m.ok()) << cm.id << ": " << m.error().message;
    if (cm.exact_params == 0) continue;
    ++checked;
    if (cm.id == "Qwen/Qwen3-0.6B") {
      EXPECT_EQ(m->inventory.params + 151936LL * 1024, cm.exact_params);
      continue;
    }
    // Encoders publish the AutoModel count (data/models/encoders.json):
    // the backbone without the task head of architectures[0].
    int64_t mine = m->spec.topology == Topology::kEncoder ? m->inventory.base_params : m->inventory.params;
    // Qwen3-Next's Hub total includes the MTP layer its checkpoint stores
    // (data/models/hybrid.json; hybrid_test.cc checks both counts).
    if (m->spec.mtp_shared_embed) mine += m->inventory.extra_params;
    EXPECT_EQ(mine, cm.exact_params) << cm.id;
  }
  EXPECT_GE(checked, 35);
}

// Hand-computed: GPT-2 small (openai-community/gpt2), 124,439,808 parameters
// (model_configs.jsonl; HF model card "124M").
//   wte 50257x768 + wpe 1024x768 + 12 x (ln_1 2x768 + c_attn 768x2304+2304 +
//   c_proj 768x768+768 + ln_2 2x768 + c_fc 768x3072+3072 + c_proj 3072x768+768)
//   + ln_f 2x768; lm_head tied.
TEST(InventoryTest, Gpt2ByHand) {
  const int64_t h = 768, v = 50257, pos = 1024, l = 12, i = 3072;
  const int64_t layer = 2 * h + (h * 3 * h + 3 * h) + (h * h + h) + 2 * h + (h * i + i) + (i * h + h);
  const int64_t expect = v * h + pos * h + l * layer + 2 * h;
  EXPECT_EQ(expect, 124439808);
  Model m = CatalogModelOrDie("openai-community/gpt2");
  EXPECT_EQ(m.inventory.params, expect);
}

// Active parameters of MoE models. Qwen3-30B-A3B: 3,353,032,704
// ("active_params_secondary", model_configs.jsonl). DeepSeek-V3:
// 36,625,618,432 activated per DeepSeek's README_WEIGHTS, which excludes the
// input embedding (129,280 x 7,168).
TEST(InventoryTest, ActiveParams) {
  EXPECT_EQ(CatalogModelOrDie("Qwen/Qwen3-30B-A3B").inventory.active_params, 3353032704);
  Model ds = CatalogModelOrDie("deepseek-ai/DeepSeek-V3");
  EXPECT_EQ(ds.inventory.active_params - 129280LL * 7168, 36625618432);
  Model dense = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  EXPECT_EQ(dense.inventory.active_params, dense.inventory.params);
}

// DeepSeek-V3: the Hub's safetensors total (684,531,386,000) = main model
// (671,026,419,200) + the MTP module + one fp32 weight_scale_inv element per
// 128x128 block of every FP8 linear (experts, attention, dense/shared MLP;
// not the router, embeddings or heads). model_configs.jsonl gives both.
TEST(InventoryTest, DeepSeekV3HubTotalIncludesMtpAndScales) {
  Model m = CatalogModelOrDie("deepseek-ai/DeepSeek-V3");
  EXPECT_EQ(m.inventory.params, 671026419200);
  WeightFormat fp8;
  fp8.method = QuantMethod::kFp8;
  fp8.block_rows = fp8.block_cols = 128;
  int64_t scales = 0;
  for (const auto* list : {&m.inventory.groups, &m.inventory.extra}) {
    for (const TensorGroup& g : *list) {
      TensorGroup q = g;
      if (q.role == Role::kMtp && q.linear) q.role = Role::kMlp;  // MTP layer linears are FP8 too
      if (q.name.find("eh_proj") != std::string::npos || q.name.find("shared_head") != std::string::npos ||
          q.name.find("router") != std::string::npos) {
        continue;  // kept in bf16 in the checkpoint
      }
      if (!IsQuantized(q, fp8)) continue;
      scales += CeilDiv(q.rows, 128) * CeilDiv(q.cols, 128) * q.count;
    }
  }
  EXPECT_EQ(m.inventory.params + m.inventory.extra_params + scales, 684531386000);
}

// Gemma-3 multimodal checkpoints: text decoder + SigLIP tower + projector
// equal the Hub totals in model_configs.jsonl
// (exact_params_multimodal_checkpoint).
TEST(InventoryTest, Gemma3MultimodalTotals) {
  const struct { const char* id; int64_t total; } cases[] = {
      {"google/gemma-3-4b-it", 4300079472},
      {"google/gemma-3-12b-it", 12187325040},
      {"google/gemma-3-27b-it", 27432406640},
  };
  for (const auto& c : cases) {
    Model m = CatalogModelOrDie(c.id);
    EXPECT_EQ(m.inventory.params + m.inventory.extra_params, c.total) << c.id;
  }
}

// gpt-oss-120b checkpoint bytes: 2 x 2,167,371,072 bf16 params + MXFP4
// experts (114,661,785,600 values / 2 + 3,583,180,800 e8m0 scales) =
// 65,248,815,744 (model_configs.jsonl total_size_bytes).
TEST(InventoryTest, GptOssCheckpointBytesWithMxfp4) {
  Model m = CatalogModelOrDie("openai/gpt-oss-120b");
  ASSERT_TRUE(m.spec.checkpoint_quant.has_value());
  auto fmt = FormatFromCheckpoint(*m.spec.checkpoint_quant, m.spec, m.inventory, nullptr);
  ASSERT_TRUE(fmt.ok());
  Bytes total;
  for (const TensorGroup& g : m.inventory.groups) total += TensorBytes(g, *fmt, DType::kBF16) * g.count;
  EXPECT_EQ(total.value(), 65248815744);
  EXPECT_EQ(m.inventory.params, 116829156672);
}

// Llama-2-7B checkpoint: total_size 13,476,839,424 = 2 x params + 8,192
// bytes of rotary inv_freq buffers (model_configs.jsonl note).
TEST(InventoryTest, Llama2CheckpointBytes) {
  Model m = CatalogModelOrDie("meta-llama/Llama-2-7b-hf");
  EXPECT_EQ(StorageBytes(DType::kF16, m.inventory.params).value() + 8192, 13476839424);
}

TEST(InventoryTest, RolesAddUpAndTiedHeadsHaveNoTensor) {
  Model m = CatalogModelOrDie("google/gemma-2-2b");
  EXPECT_TRUE(m.spec.tie_word_embeddings);
  int64_t sum = 0;
  for (int64_t p : m.inventory.params_by_role) sum += p;
  EXPECT_EQ(sum, m.inventory.params);
  EXPECT_EQ(m.inventory.params_by_role[static_cast<int>(Role::kLmHead)], 0);
}

TEST(InventoryTest, LayerPatterns) {
  // Gemma-2: even layers slide (Gemma2DecoderLayer is_sliding = not layer_idx % 2).
  Model g2 = CatalogModelOrDie("google/gemma-2-9b");
  EXPECT_EQ(g2.spec.layers[0].attention, LayerAttention::kSliding);
  EXPECT_EQ(g2.spec.layers[1].attention, LayerAttention::kFull);
  // Gemma-3: 5 local : 1 global.
  Model g3 = CatalogModelOrDie("google/gemma-3-27b-it");
  EXPECT_EQ(g3.spec.layers[4].attention, LayerAttention::kSliding);
  EXPECT_EQ(g3.spec.layers[5].attention, LayerAttention::kFull);
  // DeepSeek-V3: first 3 layers dense (first_k_dense_replace), 58 MoE.
  Model ds = CatalogModelOrDie("deepseek-ai/DeepSeek-V3");
  int moe = 0;
  for (const LayerSpec& l : ds.spec.layers) moe += l.moe ? 1 : 0;
  EXPECT_EQ(moe, 58);
  EXPECT_FALSE(ds.spec.layers[2].moe);
  // Qwen2.5 ships sliding_window but use_sliding_window false: all full.
  Model q = CatalogModelOrDie("Qwen/Qwen2.5-7B-Instruct");
  for (const LayerSpec& l : q.spec.layers) EXPECT_EQ(l.attention, LayerAttention::kFull);
  // Mistral-7B-v0.1: 4096-token window on every layer.
  Model mi = CatalogModelOrDie("mistralai/Mistral-7B-v0.1");
  EXPECT_EQ(mi.spec.sliding_window, 4096);
  EXPECT_EQ(mi.spec.layers[31].attention, LayerAttention::kSliding);
}

}  // namespace
}  // namespace vramfit
