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
  EXPECT_GE(cat.gpus().size(), 80u);
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

// Issue 14 item 8: every GPU people own, each figure with its source. The
// loader refuses an entry whose memory_source or specs_source is missing or
// not in "sources" (MissingSourceIsRefused), so a parsed catalog is sourced.
TEST(GpuCatalogTest, AtLeast80GpusEachWithItsSources) {
  const GpuCatalog& cat = GpuCatalog::Builtin();
  ASSERT_GE(cat.gpus().size(), 80u);
  for (const GpuSpec& g : cat.gpus()) {
    EXPECT_GT(g.capacity.value(), 0) << g.name;
    EXPECT_FALSE(g.memory_source.empty()) << g.name;
    EXPECT_FALSE(g.specs_source.empty()) << g.name;
    EXPECT_FALSE(g.vendor.empty()) << g.name;
    if (IsApple(g)) {
      EXPECT_TRUE(g.unified_memory) << g.name;
      EXPECT_LT(g.capacity, g.ram) << g.name << ": the working-set limit is below the RAM";
    }
  }
  for (const char* n : {"RTX-2080-Ti", "RTX-3070", "RTX-4060", "RTX-4070", "RTX-4070-Super", "RTX-4070-Ti", "RTX-5060-Ti",
                        "RTX-5070", "RTX-5070-Ti", "RTX-5080", "RTX-4090-Laptop", "RTX-4080-Laptop", "RTX-4060-Laptop",
                        "RTX-5080-Laptop", "RTX-5070-Ti-Laptop", "RTX-PRO-6000-Blackwell", "A800-80GB", "H800", "H20",
                        "L20", "B300", "GB200", "GB300", "MI210", "MI300A", "MI355X", "RX-7900-XTX", "RX-7900-XT",
                        "RX-9070-XT", "Radeon-PRO-W7900", "Arc-B580", "Arc-A770", "DGX-Spark", "Ryzen-AI-Max-395",
                        "Jetson-AGX-Orin-64GB", "M1-Pro-16GB", "M1-Max-64GB", "M1-Ultra-128GB", "M2-Pro-32GB",
                        "M2-Max-96GB", "M2-Ultra-192GB", "M3-Pro-18GB", "M3-Max-36GB", "M3-Ultra-256GB", "M4-Pro-24GB",
                        "M4-Max-36GB", "M4-Max-128GB"}) {
    EXPECT_NE(cat.Find(n), nullptr) << n;
  }
}

// Capacities as the vendor's tool reports them, each read from a published
// nvidia-smi table (data/gpus.json sources smi_*, stored public GitHub files).
TEST(GpuCatalogTest, PinnedToolTotals) {
  const GpuCatalog& cat = GpuCatalog::Builtin();
  EXPECT_EQ(cat.Find("RTX-PRO-6000-Blackwell")->capacity, MiB(97887));  // '... / 97887MiB' (smi_pro6000bw)
  EXPECT_EQ(cat.Find("B300")->capacity, MiB(275040));                   // 'NVIDIA B300 SXM6 AC ... / 275040MiB'
  EXPECT_EQ(cat.Find("GB200")->capacity, MiB(189471));                  // 'NVIDIA GB200 ... / 189471MiB'
  EXPECT_EQ(cat.Find("H20")->capacity, MiB(97871));                     // 'NVIDIA H20 ... / 97871MiB'
  EXPECT_EQ(cat.Find("RTX-4070")->capacity, MiB(12282));                // 'NVIDIA GeForce RTX 4070 ... / 12282MiB'
  EXPECT_EQ(cat.Find("RTX-5080")->capacity, MiB(16303));                // 'NVIDIA GeForce RTX 5080, 16303 MiB'
  EXPECT_EQ(cat.Find("RTX-2080-Ti")->capacity, MiB(11264));             // 'RTX 2080 Ti ... / 11264MiB'
  EXPECT_EQ(cat.Find("L20")->capacity, MiB(46068));                     // ECC on; 49140MiB with ECC off
}

// Apple silicon: capacity is Metal's recommendedMaxWorkingSetSize, which
// llama.cpp's ggml-metal prints in 1e6-byte MB (data/gpus.json metal_*).
TEST(GpuCatalogTest, AppleCapacityIsTheMetalWorkingSet) {
  const GpuCatalog& cat = GpuCatalog::Builtin();
  const GpuSpec* m3 = cat.Find("M3-Max-128GB");
  ASSERT_NE(m3, nullptr);
  EXPECT_EQ(m3->capacity, MiB(98304));   // 103079.22 MB = 96 GiB (metal_m3max)
  EXPECT_EQ(m3->ram, MiB(131072));
  EXPECT_EQ(cat.Find("M2-Max-64GB")->capacity, MiB(49152));   // 51539.61 MB, 'Apple M2 Max' (metal_64gb)
  EXPECT_EQ(cat.Find("M4-Pro-24GB")->capacity, MiB(16384));   // 17179.89 MB = 2/3 of 24 GiB (metal_24gb)
  EXPECT_EQ(cat.Find("M1-Pro-16GB")->capacity, MiB(10922));   // 11453.25 MB = 10922.67 MiB (metal_16gb)
  EXPECT_EQ(cat.Find("M3-Ultra-512GB")->capacity, MiB(475136));  // 498216.21 MB (metal_m3ultra)
}

// Figures the catalog has no source for are unknown (0 in GpuSpec, null in
// JSON), never a number: laptop bandwidth depends on the laptop; T4 and V100
// have no bf16 tensor cores (fp16 only).
TEST(GpuCatalogTest, UnknownFiguresStayUnknown) {
  const GpuCatalog& cat = GpuCatalog::Builtin();
  EXPECT_EQ(cat.Find("RTX-4090-Laptop")->bandwidth_gb_s, 0);
  EXPECT_EQ(cat.Find("M1-Max-32GB")->fp16_tflops, 0);
  const GpuSpec* t4 = cat.Find("T4");
  EXPECT_EQ(t4->bf16_tflops, 0);
  EXPECT_EQ(t4->fp16_tflops, 65);  // NVIDIA T4 datasheet: 65 TFLOPS mixed precision (nv_t4_ds)
  EXPECT_EQ(HalfTensorTflops(*t4), 65);
  EXPECT_EQ(cat.Find("V100-32GB")->fp16_tflops, 125);  // V100 SXM2 datasheet (nv_v100_ds)
  EXPECT_EQ(HalfTensorTflops(*cat.Find("H100-80GB")), 989.4);
}

TEST(GpuCatalogTest, MissingSourceIsRefused) {
  const std::string head = R"({"sources": {"a": "a published nvidia-smi table"}, "gpus": [)";
  auto no_src = GpuCatalog::Parse(head + R"({"name": "X", "memory_mib": 1024, "specs_source": "a"}]})", "t.json");
  ASSERT_FALSE(no_src.ok());
  EXPECT_EQ(no_src.error().message, "t.json: gpus[0]: 'memory_source' is missing (every figure needs its source)");
  auto bad_key = GpuCatalog::Parse(
      head + R"({"name": "X", "memory_mib": 1024, "memory_source": "a", "specs_source": "b"}]})", "t.json");
  ASSERT_FALSE(bad_key.ok());
  EXPECT_EQ(bad_key.error().message, "t.json: gpus[0]: specs_source 'b' is not in 'sources'");
  auto apple = GpuCatalog::Parse(head + R"({"name": "M9", "vendor": "apple", "unified_memory": true,
      "memory_mib": 1024, "memory_source": "a", "specs_source": "a"}]})", "t.json");
  ASSERT_FALSE(apple.ok());
  EXPECT_EQ(apple.error().message, "t.json: gpus[0]: Apple GPUs need 'working_set_mib' in (0, memory_mib]");
  auto ok = GpuCatalog::Parse(head + R"({"name": "X", "memory_mib": 1024, "memory_source": "a", "specs_source": "a",
      "bandwidth_gb_s": null}]})", "t.json");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->gpus()[0].bandwidth_gb_s, 0);
  EXPECT_EQ(ok->gpus()[0].memory_source, "a published nvidia-smi table");
}

// `vramfit gpus QUERY` and --gpu keep matching the names people type.
TEST(GpuCatalogTest, SensibleNames) {
  const GpuCatalog& cat = GpuCatalog::Builtin();
  EXPECT_EQ(cat.Find("4090"), cat.Find("RTX-4090"));
  EXPECT_EQ(cat.Find("rtx-5090"), cat.Find("RTX-5090"));
  EXPECT_EQ(cat.Find("NVIDIA GeForce RTX 5070 Ti"), cat.Find("RTX-5070-Ti"));
  EXPECT_EQ(cat.Find("NVIDIA B300 SXM6 AC"), cat.Find("B300"));
  EXPECT_EQ(cat.Find("NVIDIA RTX PRO 6000 Blackwell Server Edition"), cat.Find("RTX-PRO-6000-Blackwell"));
  EXPECT_EQ(cat.Find("AMD Radeon RX 7900 XTX"), cat.Find("RX-7900-XTX"));
  EXPECT_EQ(cat.Find("H20"), cat.Find("NVIDIA H20"));
  EXPECT_NE(cat.Find("H20"), cat.Find("H200"));
  // The Metal device name does not carry the RAM: several, to be said.
  EXPECT_EQ(cat.Find("m3-max"), nullptr);
  EXPECT_EQ(cat.Matches("Apple M3 Max").size(), 5u);
  const auto m3 = cat.Search("m3-max");
  ASSERT_EQ(m3.size(), 5u);
  for (const GpuSpec* g : m3) EXPECT_EQ(g->name.rfind("M3-Max-", 0), 0u) << g->name;
  const auto s4090 = cat.Search("4090");
  ASSERT_EQ(s4090.size(), 2u);
  EXPECT_EQ(s4090[0]->name, "RTX-4090");
  EXPECT_EQ(s4090[1]->name, "RTX-4090-Laptop");
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
