// Built-in catalogs: contents, lookups and suggestions.
#include <gtest/gtest.h>

#include "vramfit/catalog.h"
#include "vramfit/io/source.h"

namespace vramfit {
namespace {

TEST(CatalogTest, EveryModelParses) {
  const ModelCatalog& cat = ModelCatalog::Builtin();
  EXPECT_GE(cat.models().size(), 90u);
  for (const CatalogModel& m : cat.models()) {
    auto r = ModelFromCatalog(m, nullptr);
    EXPECT_TRUE(r.ok()) << m.id << ": " << (r.ok() ? "" : r.error().message);
  }
}

TEST(CatalogTest, SharedModelListIsCovered) {
  // Every model of ../shared/data/model_configs.jsonl is in the catalog
  // under its repo id (spot checks across families).
  for (const char* id : {"meta-llama/Llama-2-7b-hf", "meta-llama/Llama-3.1-405B", "mistralai/Mixtral-8x7B-v0.1",
                         "Qwen/Qwen3-235B-A22B", "google/gemma-3-27b-it", "microsoft/phi-4",
                         "deepseek-ai/DeepSeek-V2-Lite", "openai/gpt-oss-20b", "tiiuae/falcon-40b",
                         "openai-community/gpt2-xl", "facebook/opt-6.7b", "bigscience/bloom-7b1",
                         "01-ai/Yi-34B", "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "HuggingFaceTB/SmolLM2-1.7B"}) {
    EXPECT_NE(ModelCatalog::Builtin().Find(id), nullptr) << id;
  }
}

TEST(CatalogTest, LookupIsCaseInsensitiveAndCoversInstructRepos) {
  const ModelCatalog& cat = ModelCatalog::Builtin();
  const CatalogModel* a = cat.Find("META-LLAMA/llama-3.1-8b");
  const CatalogModel* b = cat.Find("meta-llama/Llama-3.1-8B-Instruct");
  const CatalogModel* c = cat.Find("llama-3.1-8b");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
  EXPECT_EQ(cat.Find("no/such-model"), nullptr);
}

TEST(CatalogTest, Suggestions) {
  const auto s = ModelCatalog::Builtin().Suggest("meta-llama/Llama-3.1-8");
  ASSERT_FALSE(s.empty());
  EXPECT_EQ(s[0].rfind("meta-llama/Llama-3.1-8B", 0), 0u) << s[0];
}

TEST(GpuCatalogTest, RequiredGpusWithNvidiaSmiCapacity) {
  const GpuCatalog& cat = GpuCatalog::Builtin();
  EXPECT_GE(cat.gpus().size(), 25u);
  for (const char* n : {"T4", "L4", "A10G", "V100-16GB", "V100-32GB", "RTX-3060", "RTX-3090", "RTX-3090-Ti",
                        "RTX-4060-Ti", "RTX-4080", "RTX-4090", "RTX-5090", "A6000", "RTX-6000-Ada", "L40S",
                        "A100-40GB", "A100-80GB", "H100-PCIe", "H100-80GB", "H100-NVL", "H200", "B200",
                        "GH200", "MI250X", "MI300X", "M3-Max-128GB"}) {
    const GpuSpec* g = cat.Find(n);
    ASSERT_NE(g, nullptr) << n;
    EXPECT_GT(g->capacity.value(), 0) << n;
    EXPECT_GT(g->bandwidth_gb_s, 0) << n;
  }
  // nvidia-smi totals (../shared/data/gpu_facts.md section 1).
  EXPECT_EQ(cat.Find("H100-80GB")->capacity, MiB(81559));
  EXPECT_EQ(cat.Find("A100-80GB")->capacity, MiB(81920));
  EXPECT_EQ(cat.Find("RTX-4090")->capacity, MiB(24564));
  EXPECT_EQ(cat.Find("H200")->capacity, MiB(143771));
  EXPECT_EQ(cat.Find("T4")->capacity, MiB(15360));
  EXPECT_EQ(cat.Find("L40S")->capacity, MiB(46068));
}

TEST(GpuCatalogTest, ForgivingNames) {
  const GpuCatalog& cat = GpuCatalog::Builtin();
  const GpuSpec* h100 = cat.Find("H100-80GB");
  EXPECT_EQ(cat.Find("NVIDIA H100 80GB HBM3"), h100);
  EXPECT_EQ(cat.Find("h100 80gb"), h100);
  EXPECT_EQ(cat.Find("NVIDIA GeForce RTX 4090"), cat.Find("RTX-4090"));
  EXPECT_EQ(cat.Find("NVIDIA A100-SXM4-80GB"), cat.Find("A100-80GB"));
  EXPECT_EQ(cat.Find("Tesla T4"), cat.Find("T4"));
}

TEST(GpuCatalogTest, DeviceSets) {
  DeviceSet set;
  ASSERT_TRUE(AddGpus("H100-80GBx8", GpuCatalog::Builtin(), &set).ok());
  EXPECT_EQ(set.size(), 8u);
  ASSERT_TRUE(AddGpus("RTX-4090 x 2", GpuCatalog::Builtin(), &set).ok());
  EXPECT_EQ(set.size(), 10u);
  Status bad = AddGpus("RTX-4099", GpuCatalog::Builtin(), &set);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message.rfind("--gpu: unknown GPU 'RTX-4099' (did you mean RTX-4090", 0), 0u)
      << bad.error().message;
  EXPECT_EQ(AddGpus("H100-80GBx0", GpuCatalog::Builtin(), &set).error().message,
            "--gpu: 'H100-80GBx0': count 0 is out of range (1..4096)");
}

}  // namespace
}  // namespace vramfit
