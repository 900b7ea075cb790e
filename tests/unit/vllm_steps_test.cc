// The steps of the vllm runtime (src/core/runtimes/vllm_steps.h), one at a
// time: settings checks and defaults (what Resolve fills), the KV cache
// groups and pages, the profile run's peaks, the per-worker budget, the
// pool, the breakdown of one device and the launch flags. Every expected
// number is worked by hand in the comment next to it, from the vLLM 0.11
// source named there (docs/estimation.md section 9 has the formulas) and the
// catalog facts (data/gpus.json cuda_total_mib, `vramfit inspect MODEL`).
#include "core/runtimes/vllm_steps.h"

#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/runtimes/profile.h"
#include "test_util.h"

namespace vramfit::runtimes::vllm {
namespace {

using testing::CatalogModelOrDie;
using testing::Gpus;

constexpr int64_t kMiBytes = 1024 * 1024;

// Catalog models used below, with the figures `vramfit inspect` prints.
// Llama-3.1-8B: 32 layers, hidden 4096, 32 heads / 8 KV heads of 128,
//   vocab 128256, max context 131072.
// SmolLM2-135M: 30 layers, hidden 576, intermediate 1536 (gated), 9 heads /
//   3 KV heads of 64, vocab 49152, max context 8192.
// Qwen3-30B-A3B: 48 MoE layers, hidden 2048, 32 heads / 4 KV heads of 128,
//   128 experts, top 8, expert width 768, no shared experts.
// DeepSeek-V2-Lite: MLA, kv_lora_rank 512, rope 64; max context 163840.
// Qwen2.5-0.5B: 14 heads / 2 KV heads. gpt2: max context 1024.
const Model& Llama8() {
  static const Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  return m;
}
const Model& Smol() {
  static const Model m = CatalogModelOrDie("HuggingFaceTB/SmolLM2-135M");
  return m;
}
const Model& DeepSeekLite() {
  static const Model m = CatalogModelOrDie("deepseek-ai/DeepSeek-V2-Lite");
  return m;
}

int64_t Sum(const std::vector<Component>& parts) {
  int64_t n = 0;
  for (const Component& c : parts) n += c.bytes.value();
  return n;
}

std::vector<std::string> Names(const std::vector<Component>& parts) {
  std::vector<std::string> names;
  for (const Component& c : parts) names.push_back(c.name);
  return names;
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

// --- Resolve: defaults.

struct DefaultsCase {
  const char* what;
  const Model& (*model)();
  const char* gpus;  // "" = no --gpu
  VllmKnobs given;
  double util;
  int64_t max_model_len, max_num_seqs, mnbt, block_size;
};

VllmKnobs Knobs(std::optional<int64_t> len = {}, std::optional<int64_t> seqs = {},
                std::optional<int64_t> mnbt = {}, std::optional<int64_t> bs = {},
                std::optional<double> util = {}) {
  VllmKnobs k;
  k.max_model_len = len;
  k.max_num_seqs = seqs;
  k.max_num_batched_tokens = mnbt;
  k.block_size = bs;
  k.gpu_memory_utilization = util;
  return k;
}

const Model& Gpt2() {
  static const Model m = CatalogModelOrDie("openai-community/gpt2");
  return m;
}

TEST(VllmStepsTest, ResolveKnobsFillsVllmDefaults) {
  // get_batch_defaults: 1024 / 8192 when cuda_total >= 70 GiB and the name
  // has no "a100"; else 256 / 2048. H100-80GB: 81090 MiB = 79.19 GiB (big);
  // H200: 143156 MiB (big); A100-80GB: 81050 MiB but "a100" (small);
  // RTX-4090: no cuda_total, 24564 - 464 = 24100 MiB (small).
  // max_num_batched_tokens never above max_num_seqs x max_model_len.
  // max_model_len: max_position_embeddings. Block size 16, MLA on sm90 64
  // (FlashMLA), on sm100 128 (CUTLASS MLA); AMD keeps 16.
  const DefaultsCase cases[] = {
      {"big GPU", Llama8, "H100-80GB", Knobs(), 0.9, 131072, 1024, 8192, 16},
      {"H200 is big", Llama8, "H200", Knobs(), 0.9, 131072, 1024, 8192, 16},
      {"A100 is excluded by name", Llama8, "A100-80GB", Knobs(), 0.9, 131072, 256, 2048, 16},
      {"no cuda_total, < 70 GiB", Llama8, "RTX-4090", Knobs(), 0.9, 131072, 256, 2048, 16},
      {"no GPU: the small defaults", Llama8, "", Knobs(), 0.9, 131072, 256, 2048, 16},
      // 256 sequences x 4 tokens = 1024 < 2048.
      {"tokens capped by seqs x len", Llama8, "A10G", Knobs(4), 0.9, 4, 256, 1024, 16},
      // 64 x 131072 is far above 8192.
      {"seqs given, tokens default", Llama8, "H100-80GB", Knobs({}, 64), 0.9, 131072, 64, 8192, 16},
      {"given values kept", Llama8, "H100-80GB", Knobs(4096, 8, 512, 32, 0.5), 0.5, 4096, 8, 512,
       32},
      {"gpt2: its 1024 positions", Gpt2, "H100-80GB", Knobs(), 0.9, 1024, 1024, 8192, 16},
      {"MLA on sm90: FlashMLA 64", DeepSeekLite, "H100-80GB", Knobs(), 0.9, 163840, 1024, 8192, 64},
      {"MLA on sm100: CUTLASS 128", DeepSeekLite, "B200", Knobs(), 0.9, 163840, 1024, 8192, 128},
      {"MLA on sm80: 16", DeepSeekLite, "A100-80GB", Knobs(), 0.9, 163840, 256, 2048, 16},
      {"MLA on AMD: 16", DeepSeekLite, "MI300X", Knobs(), 0.9, 163840, 1024, 8192, 16},
      {"MLA, block size given", DeepSeekLite, "H100-80GB", Knobs({}, {}, {}, 32), 0.9, 163840, 1024,
       8192, 32},
  };
  for (const DefaultsCase& c : cases) {
    SCOPED_TRACE(c.what);
    VllmKnobs k = c.given;
    const DeviceSet d = *c.gpus ? Gpus(c.gpus) : DeviceSet{};
    ASSERT_TRUE(ResolveKnobs(c.model().spec, d, &k).ok());
    ASSERT_TRUE(k.gpu_memory_utilization && k.max_model_len && k.max_num_seqs &&
                k.max_num_batched_tokens && k.block_size);
    EXPECT_EQ(*k.gpu_memory_utilization, c.util);
    EXPECT_EQ(*k.max_model_len, c.max_model_len);
    EXPECT_EQ(*k.max_num_seqs, c.max_num_seqs);
    EXPECT_EQ(*k.max_num_batched_tokens, c.mnbt);
    EXPECT_EQ(*k.block_size, c.block_size);
  }
}

// A config without max_position_embeddings: vLLM's fallback of 2048
// (_get_and_verify_max_len, default_max_len).
TEST(VllmStepsTest, DerivedMaxLenFallsBackTo2048) {
  ModelSpec s = Llama8().spec;
  EXPECT_EQ(DerivedMaxLen(s), 131072);
  s.max_position_embeddings = 0;
  EXPECT_EQ(DerivedMaxLen(s), 2048);
}

struct KnobErrorCase {
  VllmKnobs given;
  const char* error;
};

// ModelConfig / SchedulerConfig / CacheConfig refusals, exact text. kMaxTokens
// is 2^26 = 67108864, kMaxBatch 2^20 = 1048576 (workload.h).
TEST(VllmStepsTest, ResolveKnobsErrors) {
  const KnobErrorCase cases[] = {
      {Knobs(0), "--max-model-len: 0 is out of range (1..67108864)"},
      {Knobs(67108865), "--max-model-len: 67108865 is out of range (1..67108864)"},
      {Knobs(131073),
       "--max-model-len: User-specified max_model_len (131073) is greater than the derived "
       "max_model_len (max_position_embeddings=131072 or model_max_length=None in model's "
       "config.json). This may lead to incorrect model outputs or CUDA errors. To allow "
       "overriding this maximum, set the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1"},
      {Knobs({}, 0), "--max-num-seqs: 0 is out of range (1..1048576)"},
      {Knobs({}, 1048577), "--max-num-seqs: 1048577 is out of range (1..1048576)"},
      {Knobs({}, {}, 0), "--max-num-batched-tokens: 0 is out of range (1..67108864)"},
      // 1024 default sequences (H100) against 512 tokens.
      {Knobs({}, {}, 512),
       "--max-num-batched-tokens: max_num_batched_tokens (512) must be greater than or equal to "
       "max_num_seqs (1024)."},
      {Knobs({}, {}, {}, 2), "--block-size: expected one of 1, 8, 16, 32, 64, 128, got 2"},
      {Knobs({}, {}, {}, 256), "--block-size: expected one of 1, 8, 16, 32, 64, 128, got 256"},
      {Knobs({}, {}, {}, {}, 0.0), "--gpu-mem-util: expected a fraction in (0, 1], got 0"},
      {Knobs({}, {}, {}, {}, 1.5), "--gpu-mem-util: expected a fraction in (0, 1], got 1.5"},
      {Knobs({}, {}, {}, {}, std::nan("")),
       "--gpu-mem-util: expected a fraction in (0, 1], got nan"},
  };
  for (const KnobErrorCase& c : cases) {
    VllmKnobs k = c.given;
    const Status st = ResolveKnobs(Llama8().spec, Gpus("H100-80GB"), &k);
    ASSERT_FALSE(st.ok()) << c.error;
    EXPECT_EQ(st.error().kind, ErrorKind::kInvalidArgument);
    EXPECT_EQ(st.error().message, c.error);
  }
}

// --- Resolve: checks before memory.

struct EngineCheckCase {
  const char* model;
  const char* gpus;
  DType dtype, kv_dtype;
  int64_t tp;
  const char* quant;  // ParseWeightFormat
  const char* error;  // "" = accepted
};

TEST(VllmStepsTest, CheckEngineSettings) {
  const EngineCheckCase cases[] = {
      {"meta-llama/Llama-3.1-8B", "H100-80GB", DType::kBF16, DType::kBF16, 1, "none", ""},
      {"meta-llama/Llama-3.1-8B", "M3-Max-128GB", DType::kBF16, DType::kBF16, 1, "none",
       "--runtime vllm: M3-Max-128GB is an Apple GPU; vLLM runs on CUDA and ROCm GPUs"},
      {"meta-llama/Llama-3.1-8B", "H100-80GB", DType::kBF16, DType::kBF16, 1, "Q4_K_M",
       "--quant Q4_K_M: GGUF weights are modelled for --runtime llamacpp, not vllm"},
      // CacheDType: auto (= the model dtype, fp32 included), fp16, bf16, fp8.
      {"meta-llama/Llama-3.1-8B", "H100-80GB", DType::kBF16, DType::kQ8_0, 1, "none",
       "--kv-dtype: vLLM's kv_cache_dtype is auto, fp16, bf16 or fp8, got 'Q8_0'"},
      {"meta-llama/Llama-3.1-8B", "H100-80GB", DType::kF32, DType::kF32, 1, "none", ""},
      {"meta-llama/Llama-3.1-8B", "H100-80GB", DType::kBF16, DType::kF8E5M2, 1, "none", ""},
      // QKVParallelLinear: 8 KV heads over 4 ranks (2 each) or 16 ranks
      // (replicas); 2 KV heads over 7 ranks neither (14 heads split by 7).
      {"meta-llama/Llama-3.1-8B", "H100-80GBx4", DType::kBF16, DType::kBF16, 4, "none", ""},
      {"meta-llama/Llama-3.1-8B", "H100-80GBx16", DType::kBF16, DType::kBF16, 16, "none", ""},
      {"Qwen/Qwen2.5-0.5B", "H100-80GBx7", DType::kBF16, DType::kBF16, 7, "none",
       "--tp: 2 KV heads do not split over 7 GPUs (vLLM needs one to divide the other)"},
      // 8 KV heads over 3 ranks (Resolve leaves this layout to the
      // attention-head check; see ResolveInferenceKeepsTheLayoutErrorFirst).
      {"meta-llama/Llama-3.1-8B", "H100-80GBx3", DType::kBF16, DType::kBF16, 3, "none",
       "--tp: 8 KV heads do not split over 3 GPUs (vLLM needs one to divide the other)"},
      // gpu_worker._check_if_gpu_supports_dtype: T4 is sm75.
      {"Qwen/Qwen2.5-0.5B", "T4", DType::kBF16, DType::kBF16, 1, "none",
       "vllm: Bfloat16 is only supported on GPUs with compute capability of at least 8.0. Your T4 "
       "GPU has compute capability 7.5. You can use float16 instead by explicitly setting the "
       "`dtype` flag in CLI, for example: --dtype=half. [use --dtype fp16]"},
      {"Qwen/Qwen2.5-0.5B", "T4", DType::kF16, DType::kF16, 1, "none", ""},
      {"Qwen/Qwen2.5-0.5B", "MI300X", DType::kBF16, DType::kBF16, 1, "none", ""},
  };
  for (const EngineCheckCase& c : cases) {
    SCOPED_TRACE(std::string(c.model) + " on " + c.gpus);
    const Model m = CatalogModelOrDie(c.model);
    InferenceWorkload w;
    w.runtime = Runtime::kVllm;
    w.dtype = c.dtype;
    w.kv_dtype = c.kv_dtype;
    w.tp = c.tp;
    auto q = ParseWeightFormat(c.quant);
    ASSERT_TRUE(q.ok());
    w.quant = *q;
    const Status st = CheckEngineSettings(m.spec, w, Gpus(c.gpus));
    EXPECT_EQ(st.ok() ? std::string() : st.error().message, c.error);
  }
}

struct LayoutCase {
  const Model& (*model)();
  const char* gpus;
  void (*set)(InferenceSettings&);
  const char* error;
};

// A job with a bad layout and a vLLM setting error gets the layout error
// (ResolveInference's CheckLayout), as before the vLLM checks moved into
// Resolve.
TEST(VllmStepsTest, ResolveInferenceKeepsTheLayoutErrorFirst) {
  const LayoutCase cases[] = {
      // 32 heads over 3 (and 8 KV heads over 3, and a length over 131072).
      {Llama8, "H100-80GBx3",
       [](InferenceSettings& s) {
         s.tp = 3;
         s.vllm.max_model_len = 200000;
       },
       "--tp: 32 attention heads do not split over 3 GPUs"},
      // 9 heads over 2 on T4s (and bf16 below sm80).
      {Smol, "T4x2", [](InferenceSettings& s) { s.tp = 2; },
       "--tp: 9 attention heads do not split over 2 GPUs"},
      // 64 stages for 32 layers (and a block size vLLM refuses).
      {Llama8, "H100-80GBx64",
       [](InferenceSettings& s) {
         s.pp = 64;
         s.vllm.block_size = 24;
       },
       "--pp: 64 stages for 32 layers"},
      // mxfp4 without experts (and an Apple GPU).
      {Llama8, "M3-Max-128GB", [](InferenceSettings& s) { s.quant = *ParseWeightFormat("mxfp4"); },
       "--quant: mxfp4 stores MoE expert weights, and this model has no experts"},
      // Only a vLLM error: it comes from Resolve.
      {Llama8, "H100-80GB", [](InferenceSettings& s) { s.vllm.block_size = 24; },
       "--block-size: expected one of 1, 8, 16, 32, 64, 128, got 24"},
  };
  for (const LayoutCase& c : cases) {
    InferenceSettings s;
    s.runtime = Runtime::kVllm;
    c.set(s);
    auto w = ResolveInference(c.model(), s, Gpus(c.gpus), nullptr);
    ASSERT_FALSE(w.ok()) << c.error;
    EXPECT_EQ(w.error().message, c.error);
  }
}

// Through ResolveInference, a resolved workload has every vLLM knob set to
// what the estimate then echoes.
TEST(VllmStepsTest, ResolveInferenceFillsEveryKnob) {

  for (const char* id : {"meta-llama/Llama-3.1-8B", "deepseek-ai/DeepSeek-V2-Lite",
                         "google/gemma-3-12b-it", "openai/gpt-oss-20b", "Qwen/Qwen3-30B-A3B"}) {
    for (const char* gpu : {"", "H100-80GB", "RTX-4090", "B200"}) {
      SCOPED_TRACE(std::string(id) + " on " + gpu);
      const Model m = CatalogModelOrDie(id);
      InferenceSettings v;
      v.runtime = Runtime::kVllm;
      v.ctx = 1024;
      const DeviceSet d = *gpu ? Gpus(gpu) : DeviceSet{};
      auto w = ResolveInference(m, v, d, nullptr);
      ASSERT_TRUE(w.ok()) << w.error().message;
      const VllmKnobs& k = w->vllm;
      ASSERT_TRUE(k.gpu_memory_utilization && k.max_model_len && k.max_num_seqs &&
                  k.max_num_batched_tokens && k.block_size);
      EXPECT_EQ(*k.max_model_len, 1024);  // --ctx sets max_model_len
      const Echo echo = WorkloadEcho(*w);
      ASSERT_EQ(echo.size(), 13u);
      EXPECT_EQ(echo[6].first, "max_model_len");
      EXPECT_EQ(std::get<int64_t>(echo[6].second), *k.max_model_len);
      EXPECT_EQ(echo[9].first, "block_size");
      EXPECT_EQ(std::get<int64_t>(echo[9].second), *k.block_size);
    }
  }
}

// --- KV cache groups and pages.

TEST(VllmStepsTest, GpuTotalIsWhatCudaMemGetInfoReports) {
  // data/gpus.json: H100-80GB cuda_total_mib 81090; RTX-4090 has none
  // (24564 MiB - the 464 MiB driver reserve); MI300X 196592; the Apple
  // part keeps its capacity, Metal's working-set limit (98304 MiB of its
  // 131072 MiB of RAM, docs/estimation.md 1.5).
  EXPECT_EQ(GpuTotal(Gpus("H100-80GB").gpus[0]).value(), 81090 * kMiBytes);
  EXPECT_EQ(GpuTotal(Gpus("RTX-4090").gpus[0]).value(), (24564 - 464) * kMiBytes);
  EXPECT_EQ(GpuTotal(Gpus("MI300X").gpus[0]).value(), 196592 * kMiBytes);
  EXPECT_EQ(GpuTotal(Gpus("M3-Max-128GB").gpus[0]).value(), 98304 * kMiBytes);
}

std::vector<LayerType> Pattern(const std::string& p, int64_t window) {
  std::vector<LayerType> t;
  for (char c : p) t.push_back({c == 's' ? window : 0});
  return t;
}

std::string Repeat(const std::string& p, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += p;
  return s;
}

struct GroupCase {
  const char* what;
  std::string pattern;  // 'f' full, 's' sliding, one per layer
  std::vector<int64_t> group_sizes;
  int64_t pools;                     // StageGroupSize over all layers
  std::vector<int64_t> first_group;  // layers of group 0
};

// _get_kv_cache_groups_uniform_page_size: group_size = the fewest layers of
// a type, or the most when 2 x most < 3 x fewest; each type cut into
// cdiv(n, group_size) groups taking layers[i::num_groups].
TEST(VllmStepsTest, KvGroupsFollowVllm) {
  const GroupCase cases[] = {
      {"uniform: one group", Repeat("f", 32), {32}, 32,
       {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
        16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31}},
      // gemma-3: 5 sliding, 1 full, x8 = 40 + 8: group_size 8 (80 >= 24);
      // sliding 40 / 8 = 5 groups, full 1; sliding list [0,1,2,3,4,6,...],
      // group 0 takes every 5th: 0, 6, 12, ...
      {"gemma-3 5:1", Repeat("sssssf", 8), {8, 8, 8, 8, 8, 8}, 8, {0, 6, 12, 18, 24, 30, 36, 42}},
      // gpt-oss: alternating, 12 + 12: 24 < 36, group_size 12.
      {"gpt-oss 1:1", Repeat("sf", 12), {12, 12}, 12, {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22}},
      // 10 sliding + 7 full: 20 < 21, so group_size is the larger, 10; the
      // full layers form one group of 7 (cdiv(7, 10) = 1).
      {"near-equal counts take the larger", Repeat("s", 10) + Repeat("f", 7), {10, 7}, 10,
       {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
      // 12 sliding + 4 full: 24 >= 12, group_size 4: 3 sliding groups, 1 full.
      // Sliding list [0,1,2,4,5,6,8,...]; group 0 takes every 3rd: 0, 4, 8, 12.
      {"3:1", Repeat("sssf", 4), {4, 4, 4, 4}, 4, {0, 4, 8, 12}},
  };
  for (const GroupCase& c : cases) {
    SCOPED_TRACE(c.what);
    const std::vector<KvGroup> groups = BuildGroups(Pattern(c.pattern, 1024));
    std::vector<int64_t> sizes;
    for (const KvGroup& g : groups) sizes.push_back(static_cast<int64_t>(g.layers.size()));
    EXPECT_EQ(sizes, c.group_sizes);
    const int64_t n = static_cast<int64_t>(c.pattern.size());
    EXPECT_EQ(StageGroupSize(groups, {0, n}), c.pools);
    ASSERT_FALSE(groups.empty());
    EXPECT_EQ(groups[0].layers, c.first_group);
  }
  EXPECT_TRUE(BuildGroups({}).empty());
}

// The catalog's gemma-3-12b (window 1024 on 40 of 48 layers) and gpt-oss-20b
// (window 128 on 12 of 24) through LayerTypes.
TEST(VllmStepsTest, LayerTypesFromTheCatalog) {
  const Model gemma = CatalogModelOrDie("google/gemma-3-12b-it");
  const std::vector<KvGroup> g = BuildGroups(LayerTypes(gemma.spec));
  ASSERT_EQ(g.size(), 6u);
  EXPECT_EQ(g[0].type.window, 1024);
  EXPECT_EQ(g[5].type.window, 0);  // the full layers come after the first sliding one
  const Model oss = CatalogModelOrDie("openai/gpt-oss-20b");
  const std::vector<KvGroup> o = BuildGroups(LayerTypes(oss.spec));
  ASSERT_EQ(o.size(), 2u);
  EXPECT_EQ(o[0].type.window + o[1].type.window, 128);
  // Pipeline stage of layers [0, 12): 6 of each type, so 6 pools.
  EXPECT_EQ(StageGroupSize(o, {0, 12}), 6);
}

struct BlocksCase {
  int64_t window, max_len, mnbt, bs, blocks;
};

TEST(VllmStepsTest, BlocksPerRequest) {
  const BlocksCase cases[] = {
      {0, 4096, 2048, 16, 256},      // cdiv(4096, 16)
      {0, 4097, 2048, 16, 257},      // one token more: one block more
      {0, 100, 2048, 64, 2},         // cdiv(100, 64)
      {1024, 32768, 2048, 16, 193},  // cdiv(min(1023 + 2048, 32768), 16) + 1 = 192 + 1
      {1024, 1000, 2048, 16, 64},    // cdiv(min(3071, 1000), 16) + 1 = 63 + 1
      {128, 131072, 8192, 16, 521},  // cdiv(127 + 8192 = 8319, 16) + 1 = 520 + 1
  };
  for (const BlocksCase& c : cases) {
    EXPECT_EQ(BlocksPerRequest({c.window}, c.max_len, c.mnbt, c.bs), c.blocks)
        << c.window << " " << c.max_len;
  }
  // gemma-3 golden (vllm_sliding_gemma3_12b_l40s, --ctx 32768, 2048 tokens):
  // 1 full group of cdiv(32768, 16) = 2048 + 5 sliding groups of 193 = 3013.
  const std::vector<KvGroup> groups = BuildGroups(Pattern(Repeat("sssssf", 8), 1024));
  EXPECT_EQ(SumBlocks(groups, 32768, 2048, 16), 3013);
}

struct PageCase {
  const Model& (*model)();
  int64_t tp;
  DType kv;
  int64_t bs;
  int64_t kv_heads, k_width, v_width, bytes;
};

// page_size_bytes = block x (K + V elements per token on the rank) x bytes.
TEST(VllmStepsTest, KvPageOf) {
  const PageCase cases[] = {
      {Llama8, 1, DType::kBF16, 16, 8, 1024, 1024, 16 * 2048 * 2},  // 65536
      {Llama8, 2, DType::kBF16, 16, 4, 512, 512, 16 * 1024 * 2},    // 8 // 2 heads
      {Llama8, 16, DType::kBF16, 16, 1, 128, 128, 16 * 256 * 2},    // max(1, 8 // 16): a replica
      {Llama8, 1, DType::kF8E4M3, 16, 8, 1024, 1024, 16 * 2048},    // 1 B per element
      {Llama8, 1, DType::kBF16, 128, 8, 1024, 1024, 128 * 2048 * 2},
      // MLA: one latent of 512 + 64, the same on every rank.
      {DeepSeekLite, 1, DType::kBF16, 64, 1, 576, 0, 64 * 576 * 2},  // 73728
      {DeepSeekLite, 4, DType::kBF16, 64, 1, 576, 0, 64 * 576 * 2},
  };
  for (const PageCase& c : cases) {
    const KvPage p = KvPageOf(c.model().spec, c.tp, c.kv, c.bs);
    EXPECT_EQ(p.kv_heads, c.kv_heads);
    EXPECT_EQ(p.k_width, c.k_width);
    EXPECT_EQ(p.v_width, c.v_width);
    EXPECT_EQ(p.bytes, c.bytes) << c.model().spec.id << " tp " << c.tp;
  }
}

// --- The profile run.

struct CaptureCase {
  int64_t max_num_seqs, mnbt;
  size_t count;
  int64_t largest;
};

// [1, 2, 4] (3) + 8..248 step 8 (31) + 256..512 step 16 (17) = 51 sizes,
// cut at min(2 x max_num_seqs, 512, max_num_batched_tokens).
TEST(VllmStepsTest, CaptureSizes) {
  const CaptureCase cases[] = {
      {256, 2048, 51, 512},  // cap 512: all
      {2048, 8192, 51, 512},
      {4, 8192, 4, 8},        // cap 8: 1, 2, 4, 8
      {1024, 100, 15, 96},    // cap 100: 3 + 8..96 (12)
      {1, 1, 1, 1},           // cap 1
      {160, 8192, 3 + 31 + 5, 320},  // cap 320: 256..320 is 5 sizes
  };
  for (const CaptureCase& c : cases) {
    const std::vector<int64_t> sizes = CaptureSizes(c.max_num_seqs, c.mnbt);
    EXPECT_EQ(sizes.size(), c.count) << c.max_num_seqs << " " << c.mnbt;
    ASSERT_FALSE(sizes.empty());
    EXPECT_EQ(sizes.back(), c.largest);
  }
}

struct ForwardCase {
  const char* what;
  const char* model;
  int64_t tokens, tp;
  std::vector<std::string> parts;
  int64_t bytes;
};

TEST(VllmStepsTest, ForwardPeak) {
  const ForwardCase cases[] = {
      // SmolLM2, 2048 tokens, bf16: residual 2 x 2048 x 576 x 2 = 4,718,592;
      // attention 2048 x (9x64 + 3x128 + 9x64 = 1536) x 2 = 6,291,456; gated
      // MLP 2048 x 3 x 1536 x 2 = 18,874,368 wins.
      {"dense", "HuggingFaceTB/SmolLM2-135M", 2048, 1, {"residual + hidden", "mlp"},
       4718592 + 18874368},
      // Qwen3-30B-A3B, 8192 tokens: residual 2 x 8192 x 2048 x 2 =
      // 67,108,864; attention 8192 x (32x128 + 4x256 + 32x128 = 9216) x 2 =
      // 150,994,944; fused MoE 8192 x 8 x (max(2x768, 2048) + 768 = 2816) x 2
      // = 369,098,752 + router 8192 x 128 x (2 + 4) = 6,291,456 wins.
      {"moe", "Qwen/Qwen3-30B-A3B", 8192, 1, {"residual + hidden", "moe"},
       67108864 + 369098752 + 6291456},
      // tp 4: N = 192, 8192 x 8 x (2048 + 192) x 2 = 293,601,280 + router
      // 6,291,456 (the router is not split); attention 8192 x (8x128 +
      // 1x256 + 8x128) x 2 = 37,748,736.
      {"moe, tp 4", "Qwen/Qwen3-30B-A3B", 8192, 4, {"residual + hidden", "moe"},
       67108864 + 293601280 + 6291456},
  };
  for (const ForwardCase& c : cases) {
    SCOPED_TRACE(c.what);
    const Model m = CatalogModelOrDie(c.model);
    const std::vector<Component> parts =
        ForwardPeak(m.spec, {0, m.spec.num_hidden_layers}, c.tokens, c.tp, 2);
    EXPECT_EQ(Names(parts), c.parts);
    EXPECT_EQ(Sum(parts), c.bytes);
  }
  // A stage without layers runs no forward.
  EXPECT_TRUE(ForwardPeak(Smol().spec, {4, 4}, 2048, 1, 2).empty());
}

struct SamplerCase {
  int64_t tokens, rows, dt;
  int64_t bytes;
};

TEST(VllmStepsTest, SamplerPeak) {
  // SmolLM2 (hidden 576, vocab 49152 = 768 x 64, no padding).
  const int64_t v = 49152;
  const SamplerCase cases[] = {
      // 256 rows, bf16: (2048 + 512) x 576 x 2 + 256 x v x (2 + 4 + 12 + 20)
      // = 2,949,120 + 478,150,656 (vllm_test SmallModelByHand).
      {2048, 256, 2, (2048 + 512) * 576 * 2 + 256 * v * 38},
      // 64 rows: segmented_sort_pairs_by_full_sort, 32 B of temporaries.
      {2048, 64, 2, (2048 + 128) * 576 * 2 + 64 * v * (2 + 4 + 12 + 32)},
      // 1 row: 20 B again (the < 2 rows path).
      {16, 1, 2, (16 + 2) * 576 * 2 + 1 * v * 38},
      // fp32 model: logits are already fp32, no copy.
      {2048, 256, 4, (2048 + 512) * 576 * 4 + 256 * v * (4 + 12 + 20)},
  };
  for (const SamplerCase& c : cases) {
    EXPECT_EQ(Sum(SamplerPeak(Smol().spec, c.tokens, c.rows, c.dt)), c.bytes) << c.rows;
  }
}

TEST(VllmStepsTest, NonTorch) {
  // 133 MiB at TP1; + 420 MiB (NVLink) or + 128 MiB (PCIe) with world > 1.
  EXPECT_EQ(NonTorch(1, true).bytes.value(), 133 * kMiBytes);
  EXPECT_EQ(NonTorch(2, true).bytes.value(), (133 + 420) * kMiBytes);
  EXPECT_EQ(NonTorch(2, false).bytes.value(), (133 + 128) * kMiBytes);
  EXPECT_EQ(NonTorch(8, true).bytes.value(), (133 + 420) * kMiBytes);
}

// --- Budget, startup checks, pool.

GpuSpec FakeGpu(int64_t cuda_total) {
  GpuSpec g;
  g.name = "fake";
  g.vendor = "nvidia";
  g.capacity = Bytes(cuda_total);
  g.cuda_total = Bytes(cuda_total);
  return g;
}

TEST(VllmStepsTest, BudgetTruncatesAsPython) {
  // A10G: 22587 MiB = 23,684,186,112 B; x 0.5 = 11,842,093,056 B requested, exact.
  const Budget a = BudgetOf(Gpus("A10G").gpus[0], 0.5, Bytes(1000));
  EXPECT_EQ(a.total.value(), 22587 * kMiBytes);
  EXPECT_EQ(a.requested.value(), 11842093056);
  EXPECT_EQ(a.available.value(), 11842093056 - 1000);
  // 3 B x 0.5 = 1.5: requested int(1.5) = 1; available int(1.5 - 1) = 0
  // (0.5 truncated), int(1.5 - 2) = 0 (-0.5 truncated toward zero).
  EXPECT_EQ(BudgetOf(FakeGpu(3), 0.5, Bytes(0)).requested.value(), 1);
  EXPECT_EQ(BudgetOf(FakeGpu(3), 0.5, Bytes(0)).available.value(), 1);
  EXPECT_EQ(BudgetOf(FakeGpu(3), 0.5, Bytes(1)).available.value(), 0);
  EXPECT_EQ(BudgetOf(FakeGpu(3), 0.5, Bytes(2)).available.value(), 0);
  EXPECT_EQ(BudgetOf(FakeGpu(4), 0.5, Bytes(3)).available.value(), -1);
}

// Llama-3.1-8B's layout at block 16: one group of 32 layers, 64 KiB pages,
// so a block in all 32 pools is 2 MiB and holds 16 tokens.
Engine LlamaEngine() {
  Engine g;
  g.max_model_len = 131072;
  g.max_num_seqs = 256;
  g.mnbt = 2048;
  g.block_size = 16;
  g.util = 0.9;
  g.have_gpu = true;
  g.page = KvPageOf(Llama8().spec, 1, DType::kBF16, 16);
  g.groups = BuildGroups(LayerTypes(Llama8().spec));
  g.blocks_per_request = SumBlocks(g.groups, g.max_model_len, g.mnbt, g.block_size);
  g.context = Bytes(624 * kMiBytes);
  return g;
}

TEST(VllmStepsTest, RequestBytesAndMaxModelLen) {
  const Engine g = LlamaEngine();
  ASSERT_EQ(g.page.bytes, 65536);
  // 32768 tokens = 2048 blocks x 32 pools x 64 KiB = 4 GiB.
  EXPECT_EQ(RequestKvBytes(g, 32, 32768), int64_t{4} << 30);
  EXPECT_EQ(RequestKvBytes(g, 32, 131072), int64_t{16} << 30);  // "16.00 GiB KV cache is needed"
  // 100 MiB = 50 blocks of 2 MiB = 800 tokens; a byte less: 49 blocks, 784.
  EXPECT_EQ(EstimateMaxModelLen(g, 32, Bytes(100 * kMiBytes)), 800);
  EXPECT_EQ(EstimateMaxModelLen(g, 32, Bytes(100 * kMiBytes - 1)), 784);
  EXPECT_EQ(EstimateMaxModelLen(g, 32, Bytes(2 * kMiBytes - 1)), 0);  // not one block
  // A terabyte: capped at max_model_len.
  EXPECT_EQ(EstimateMaxModelLen(g, 32, Bytes(int64_t{1} << 40)), 131072);
}

Worker FakeWorker(const char* name, Bytes available, int64_t pools) {
  Worker wk;
  wk.d.name = name;
  wk.budget.available = available;
  wk.budget.total = Bytes(80 * kMiBytes * 1024);
  wk.budget.requested_d = 0;
  wk.group_size = pools;
  return wk;
}

TEST(VllmStepsTest, PoolBlocksIsTheMinimumOverWorkers) {
  Engine g = LlamaEngine();
  // 10 MiB / 64 KiB / 2 pools = 80 blocks; 7 MiB -> 56; a worker without KV
  // layers does not count.
  std::vector<Worker> workers;
  workers.push_back(FakeWorker("gpu0", Bytes(10 * kMiBytes), 2));
  workers.push_back(FakeWorker("gpu1", Bytes(7 * kMiBytes), 2));
  workers.push_back(FakeWorker("gpu2", Bytes(0), 0));
  EXPECT_EQ(PoolBlocks(g, workers), 56);
  // Without a GPU: one max_model_len request, 131072 / 16 = 8192 blocks.
  g.have_gpu = false;
  EXPECT_EQ(PoolBlocks(g, workers), 8192);
  EXPECT_EQ(PoolBlocks(g, {FakeWorker("gpu0", Bytes(0), 0)}), 0);
}

TEST(VllmStepsTest, CheckStartupInVllmsOrder) {
  const Engine g = LlamaEngine();
  // gpu0 has room, gpu1 none: the KV-budget error names gpu1.
  std::vector<Worker> workers;
  workers.push_back(FakeWorker("gpu0", Bytes(int64_t{20} << 30), 32));
  workers.push_back(FakeWorker("gpu1", Bytes(-1), 32));
  const Status st = CheckStartup(g, workers);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().kind, ErrorKind::kDoesNotFit);
  EXPECT_EQ(st.error().message.rfind("vllm: gpu1: No available memory for the cache blocks.", 0),
            0u);
  // 10 GiB: one 131072-token request needs 16 GiB; 10 GiB = 5120 blocks of
  // 2 MiB = 81920 tokens.
  workers[1].budget.available = Bytes(int64_t{10} << 30);
  const Status len = CheckStartup(g, workers);
  ASSERT_FALSE(len.ok());
  EXPECT_EQ(len.error().message,
            "vllm: gpu1: To serve at least one request with the models's max seq len (131072), "
            "(16.00 GiB KV cache is needed, which is larger than the available KV cache memory "
            "(10.00 GiB). Based on the available memory, the estimated maximum model length is "
            "81920. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when "
            "initializing the engine. See "
            "https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details. "
            "[lower --max-model-len to 81920 or raise --gpu-mem-util]");
  // The free-memory check runs on every worker first: 80 GiB total, 0.61 GiB
  // context, 79.5 GiB asked for.
  workers[0].budget.requested_d = 79.5 * (1 << 30);
  EXPECT_EQ(CheckStartup(g, workers).error().message.rfind(
                "vllm: gpu0: Free memory on device (79.39/80.0 GiB) on startup is less than "
                "desired GPU memory utilization (0.9, 79.5 GiB).",
                0),
            0u);
  // Without a GPU nothing is checked.
  Engine none = g;
  none.have_gpu = false;
  EXPECT_TRUE(CheckStartup(none, workers).ok());
}

// One device's breakdown, by hand: 10 blocks x 2 pools x 16 tokens x 1024
// elements x 2 B = 655,360 B each of K and V.
TEST(VllmStepsTest, DeviceOfAddsTheParts) {
  Engine g = LlamaEngine();
  g.eager = true;
  Worker wk = FakeWorker("gpu0", Bytes(0), 2);
  wk.comps = {Leaf("weights", Bytes(1000)), Leaf("activations", Bytes(200)),
              Leaf("non_torch", Bytes(30))};
  wk.weights = Bytes(1000);
  wk.act = Bytes(200);
  wk.non_torch = Bytes(30);
  wk.graphs = Bytes(0);
  const DeviceEstimate d = DeviceOf(Llama8().spec, g, std::move(wk), 10);
  ASSERT_EQ(d.components.size(), 6u);
  EXPECT_EQ(d.components[1].name, "kv_cache");
  EXPECT_EQ(d.components[1].bytes.value(), 2 * 655360);
  EXPECT_EQ(d.components[3].name, "cuda_graphs");
  EXPECT_EQ(d.components[3].formula, "--enforce-eager: none");
  EXPECT_EQ(d.allocated_peak->value(), 1000 + 2 * 655360 + 200);
  EXPECT_EQ(d.total.value(), 1000 + 2 * 655360 + 200 + 30 + 624 * kMiBytes);
  EXPECT_EQ(Total(d.components), d.total);
}

// --- Launch flags.

struct FlagsCase {
  const char* model;
  const char* gpus;
  void (*set)(InferenceSettings&);
  const char* flags;
};

TEST(VllmStepsTest, LaunchFlags) {
  const std::string base =
      "--max-model-len 4096 --gpu-memory-utilization 0.9 --max-num-seqs 1024 "
      "--max-num-batched-tokens 8192";
  const FlagsCase cases[] = {
      {"meta-llama/Llama-3.1-8B", "H100-80GB", [](InferenceSettings&) {}, ""},
      {"meta-llama/Llama-3.1-8B", "H100-80GB", [](InferenceSettings& s) { s.vllm.block_size = 32; },
       " --block-size 32"},
      // A block size equal to vLLM's own choice needs no flag.
      {"meta-llama/Llama-3.1-8B", "H100-80GB", [](InferenceSettings& s) { s.vllm.block_size = 16; },
       ""},
      {"deepseek-ai/DeepSeek-V2-Lite", "H100-80GB",
       [](InferenceSettings& s) { s.vllm.block_size = 64; }, ""},
      {"deepseek-ai/DeepSeek-V2-Lite", "H100-80GB",
       [](InferenceSettings& s) { s.vllm.block_size = 16; }, " --block-size 16"},
      {"meta-llama/Llama-3.1-8B", "H100-80GB",
       [](InferenceSettings& s) { s.kv_dtype = DType::kF8E4M3; }, " --kv-cache-dtype fp8"},
      {"meta-llama/Llama-3.1-8B", "H100-80GB",
       [](InferenceSettings& s) {
         s.quant = *ParseWeightFormat("fp8");
         s.vllm.enforce_eager = true;
       },
       " --enforce-eager --quantization fp8"},
      {"meta-llama/Llama-3.1-8B", "H100-80GBx2", [](InferenceSettings& s) { s.tp = 2; }, " -tp 2"},
      {"meta-llama/Llama-3.1-8B", "H100-80GB", [](InferenceSettings& s) { s.dtype = DType::kF16; },
       " --dtype float16"},
  };
  for (const FlagsCase& c : cases) {
    const Model m = CatalogModelOrDie(c.model);
    InferenceSettings s;
    s.runtime = Runtime::kVllm;
    s.ctx = 4096;
    c.set(s);
    const DeviceSet d = Gpus(c.gpus);
    auto w = ResolveInference(m, s, d, nullptr);
    ASSERT_TRUE(w.ok()) << w.error().message;
    EXPECT_EQ(Join(LaunchFlags(m.spec, *w, d)), base + c.flags) << c.model << c.flags;
  }
}

}  // namespace
}  // namespace vramfit::runtimes::vllm
