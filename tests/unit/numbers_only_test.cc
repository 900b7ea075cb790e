// Numbers-only estimates (EstimateOptions::formulas = false, the planner's
// mode) are the full estimates without their formula text and notes: every
// byte count, total, verdict, echoed setting and launch flag is identical,
// component by component.
// The expected values are the full estimate's own (the mode the CLI prints),
// so this holds for every catalog model and runtime, not for chosen figures.
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "test_util.h"
#include "vramfit/plan.h"

namespace vramfit {
namespace {

using testing::Gpus;

constexpr EstimateOptions kNumbersOnly{.formulas = false};

// Compares two component trees by name and bytes; counts the formulas of
// each side.
void ExpectSameTree(const std::vector<Component>& full, const std::vector<Component>& nums,
                    const std::string& where, int* full_formulas, int* nums_formulas) {
  ASSERT_EQ(full.size(), nums.size()) << where;
  for (size_t i = 0; i < full.size(); ++i) {
    const std::string at = where + "/" + full[i].name;
    EXPECT_EQ(full[i].name, nums[i].name) << at;
    EXPECT_EQ(full[i].bytes.value(), nums[i].bytes.value()) << at;
    *full_formulas += full[i].formula.empty() ? 0 : 1;
    *nums_formulas += nums[i].formula.empty() ? 0 : 1;
    EXPECT_TRUE(nums[i].formula.empty()) << at << ": '" << nums[i].formula << "'";
    ExpectSameTree(full[i].children, nums[i].children, at, full_formulas, nums_formulas);
  }
}

// Full vs numbers-only for one job; returns the number of full formulas.
int ExpectSame(const Model& m, const Job& job, const DeviceSet& d, const std::string& where) {
  auto full = EstimateJob(m, job, d);
  auto nums = EstimateJob(m, job, d, kNumbersOnly);
  EXPECT_EQ(full.ok(), nums.ok()) << where;
  if (!full.ok() || !nums.ok()) {
    if (!full.ok() && !nums.ok()) {
      EXPECT_EQ(full.error().message, nums.error().message) << where;
    }
    return 0;
  }
  const Estimate& a = *full;
  const Estimate& b = *nums;
  EXPECT_EQ(a.model_id, b.model_id) << where;
  EXPECT_EQ(a.params, b.params) << where;
  EXPECT_EQ(a.active_params, b.active_params) << where;
  EXPECT_EQ(a.weight_bytes.value(), b.weight_bytes.value()) << where;
  EXPECT_EQ(a.kv_bytes_per_token.value(), b.kv_bytes_per_token.value()) << where;
  EXPECT_EQ(a.workload, b.workload) << where;
  EXPECT_EQ(a.kv_capacity_tokens, b.kv_capacity_tokens) << where;
  EXPECT_EQ(a.kv_max_concurrency, b.kv_max_concurrency) << where;
  EXPECT_EQ(a.total.value(), b.total.value()) << where;
  EXPECT_EQ(a.fits, b.fits) << where;
  EXPECT_FALSE(a.notes.empty()) << where;
  EXPECT_TRUE(b.notes.empty()) << where;
  EXPECT_EQ(a.launch_flags, b.launch_flags) << where;
  int full_formulas = 0, nums_formulas = 0;
  EXPECT_EQ(a.devices.size(), b.devices.size()) << where;
  for (size_t i = 0; i < a.devices.size() && i < b.devices.size(); ++i) {
    const DeviceEstimate& x = a.devices[i];
    const DeviceEstimate& y = b.devices[i];
    const std::string at = where + " " + x.name;
    EXPECT_EQ(x.name, y.name) << at;
    EXPECT_EQ(x.gpu.has_value(), y.gpu.has_value()) << at;
    if (x.gpu && y.gpu) {
      EXPECT_EQ(x.gpu->name, y.gpu->name) << at;
    }
    EXPECT_EQ(x.total.value(), y.total.value()) << at;
    EXPECT_EQ(x.reserved_peak, y.reserved_peak) << at;
    EXPECT_EQ(x.allocated_peak, y.allocated_peak) << at;
    EXPECT_EQ(x.peak_phase, y.peak_phase) << at;
    ExpectSameTree(x.components, y.components, at, &full_formulas, &nums_formulas);
  }
  ExpectSameTree(a.host, b.host, where + " host", &full_formulas, &nums_formulas);
  EXPECT_EQ(nums_formulas, 0) << where;
  return full_formulas;
}

// Every catalog model, each runtime, with no GPU, one GPU and a split over
// two; quantized weights and the KV dtype on the side.
TEST(NumbersOnlyTest, InferenceEqualsFullEstimateForEveryCatalogModel) {
  const DeviceSet none;
  const DeviceSet one = Gpus("H100-80GB");
  const DeviceSet two = Gpus("RTX-4090x2");
  int jobs = 0;
  for (const CatalogModel& c : ModelCatalog::Builtin().models()) {
    auto m = ModelFromCatalog(c, nullptr);
    ASSERT_TRUE(m.ok()) << c.id;
    for (Runtime rt : {Runtime::kHf, Runtime::kVllm, Runtime::kLlamaCpp}) {
      for (int variant = 0; variant < 3; ++variant) {
        Job job;
        job.infer.runtime = rt;
        job.infer.ctx = 4096;
        job.infer.batch = 2;
        const DeviceSet* d = &one;
        if (variant == 1) {
          d = &two;
          if (rt == Runtime::kHf) job.infer.pp = 2;
          if (rt == Runtime::kVllm) job.infer.tp = 2;
        }
        if (variant == 2) {
          d = rt == Runtime::kVllm ? &one : &none;
          const char* q = rt == Runtime::kHf ? "nf4" : rt == Runtime::kVllm ? "fp8" : "Q4_K_M";
          auto f = ParseWeightFormat(q);
          ASSERT_TRUE(f.ok()) << q;
          job.infer.quant = *f;
          if (rt == Runtime::kHf) job.infer.prompt = 1024;  // prefill peak: 4-bit dequant term
        }
        const std::string where = fmt::format("{} {} variant {}", c.id, RuntimeName(rt), variant);
        const int formulas = ExpectSame(*m, job, *d, where);
        if (formulas > 0) ++jobs;
      }
    }
  }
  // Most jobs are valid (some models are too large for vLLM on the GPUs
  // given, which is an error both modes give alike); each of them has
  // formulas in the full mode.
  EXPECT_GT(jobs, 200);
}

TEST(NumbersOnlyTest, TrainingEqualsFullEstimate) {
  const char* models[] = {"meta-llama/Llama-3.1-8B", "Qwen/Qwen3-30B-A3B", "google/gemma-3-27b-it",
                          "deepseek-ai/DeepSeek-V2-Lite", "openai/gpt-oss-20b"};
  int jobs = 0;
  for (const char* id : models) {
    const Model m = testing::CatalogModelOrDie(id);
    for (TrainMethod method : {TrainMethod::kFull, TrainMethod::kLora, TrainMethod::kQlora}) {
      for (const char* gpus : {"H100-80GB", "H100-80GBx4"}) {
        Job job;
        job.training = true;
        job.train.method = method;
        if (std::string(gpus) == "H100-80GBx4") job.train.zero = 3;
        const std::string where = fmt::format("{} {} {}", id, MethodName(method), gpus);
        if (ExpectSame(m, job, Gpus(gpus), where) > 0) ++jobs;
      }
    }
  }
  EXPECT_EQ(jobs, 30);
}

// The planner searches numbers-only but shows its answer with formulas.
TEST(NumbersOnlyTest, PlannerAnswersKeepTheirFormulas) {
  const Model m = testing::CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  Job job;
  auto a = Plan(m, job, Gpus("RTX-4090"), Solve::kMaxContext);
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(a->estimate.has_value());
  const Component* kv = Find(a->estimate->devices[0].components, "kv_cache");
  ASSERT_NE(kv, nullptr);
  ASSERT_FALSE(kv->children.empty());
  EXPECT_FALSE(kv->children[0].formula.empty());
  ASSERT_TRUE(a->next.has_value());
  EXPECT_FALSE(Find(a->next->devices[0].components, "weights")->formula.empty());
}

}  // namespace
}  // namespace vramfit
