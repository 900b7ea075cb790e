// Answers a person acts on (issue 16): min-gpus in nodes with tensor
// parallel in powers of two inside a node, combined fixes that fit with the
// flags that realise them, and reasons that never contradict the answer.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "test_util.h"
#include "vramfit/plan.h"

namespace vramfit {
namespace {

using testing::CatalogModelOrDie;
using testing::Cli;
using testing::CliRun;
using testing::Gpus;

std::string SettingOf(const std::vector<std::pair<std::string, std::string>>& s, const std::string& key) {
  for (const auto& [k, v] : s) {
    if (k == key) return v;
  }
  return "";
}

// 163840 -> "163,840".
std::string Thousands(int64_t n) {
  const std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    out.push_back(digits[i]);
    const size_t left = digits.size() - i - 1;
    if (left > 0 && left % 3 == 0) out.push_back(',');
  }
  return out;
}

bool PowerOfTwo(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

// The question: Llama-3.1-405B at 128k on H100s with vLLM. bf16
// weights are 756 GiB (405.9 B params x 2 B, config.json of
// meta-llama/Llama-3.1-405B): more than one 8 x 80 GB node. The answer is
// whole nodes with tensor parallel 8 inside each and pipeline stages across,
// and fp8 (1 B per weight, 378 GiB) on one node is offered beside it.
TEST(PlanAnswersTest, Llama405bOnH100sIsLaidOutInNodes) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-405B");
  Job job;
  job.infer.runtime = Runtime::kVllm;
  job.infer.ctx = 131072;
  auto a = Plan(m, job, Gpus("H100-80GB"), Solve::kMinGpus);
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(a->found) << a->reason;
  EXPECT_EQ(a->gpus_per_node, 8);
  EXPECT_GE(a->nodes, 2);
  EXPECT_EQ(a->number, a->nodes * 8) << a->value;
  const int64_t tp = std::stoll(SettingOf(a->settings, "tp"));
  EXPECT_EQ(tp, 8) << a->value;
  EXPECT_EQ(std::stoll(SettingOf(a->settings, "pp")), a->nodes) << a->value;
  EXPECT_EQ(SettingOf(a->settings, "gpu"), fmt::format("H100-80GBx{}", a->number));
  // Every layout tried before the answer keeps tp a power of two <= 8.
  for (const LadderStep& s : a->ladder) {
    const size_t at = s.option.find("tp ");
    ASSERT_NE(at, std::string::npos) << s.option;
    const int64_t t = std::stoll(s.option.substr(at + 3));
    EXPECT_TRUE(PowerOfTwo(t) && t <= 8) << s.option;
  }
  // fp8 on fewer nodes, ranked first among the alternatives.
  ASSERT_FALSE(a->alternatives.empty());
  const FitAnswer::Alternative& fp8 = a->alternatives.front();
  EXPECT_EQ(SettingOf(fp8.settings, "quant"), "fp8") << fp8.option;
  EXPECT_EQ(fp8.nodes, 1) << fp8.option;
  EXPECT_LE(fp8.total.value(), fp8.capacity.value());
  // It really fits: estimate it again from its settings.
  Job j = job;
  j.infer.quant = *ParseWeightFormat("fp8");
  j.infer.tp = std::stoll(SettingOf(fp8.settings, "tp"));
  j.infer.pp = fp8.gpus / j.infer.tp;
  auto e = EstimateJob(m, j, Gpus(SettingOf(fp8.settings, "gpu")));
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_TRUE(Fits(*e, j));
}

// Tensor parallel above two over PCIe (consumer cards) is said once.
TEST(PlanAnswersTest, TensorParallelOverPcieIsNoted) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-70B");
  Job job;
  job.infer.runtime = Runtime::kVllm;
  job.infer.ctx = 8192;
  job.infer.quant = *ParseWeightFormat("awq-int4");
  auto a = Plan(m, job, Gpus("RTX-4090"), Solve::kMinGpus);
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(a->found) << a->reason;
  const int64_t tp = std::stoll(SettingOf(a->settings, "tp"));
  EXPECT_TRUE(PowerOfTwo(tp)) << a->value;
  bool noted = false;
  for (const std::string& n : a->notes) noted = noted || n.find("over PCIe") != std::string::npos;
  EXPECT_EQ(noted, tp > 2) << a->value;
}

// A runtime that splits layers inside one machine (transformers' device_map)
// does not spill into a second node: it says so instead.
TEST(PlanAnswersTest, LayerSplitStaysInOneNode) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-405B");
  Job job;
  job.infer.ctx = 8192;
  job.gpus_per_node = 4;
  auto a = Plan(m, job, Gpus("A100-80GB"), Solve::kMinGpus);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_FALSE(a->found);
  EXPECT_NE(a->reason.find("one node of 4 x A100-80GB does not fit"), std::string::npos) << a->reason;
  EXPECT_EQ(a->ladder.size(), 4u);  // 1, 2, 3 and 4 GPUs
}

// Runs `base` with --json (a job that does not fit), then re-runs every
// combined fix with its settings as flags: it fits, at the fix's total.
// Returns how many combinations there were.
int CheckCombinations(const std::vector<std::string>& base, const std::string& gpu) {
  std::vector<std::string> args = base;
  args.push_back("--json");
  std::vector<std::string> first = args;
  first.push_back("--gpu");
  first.push_back(gpu);
  const CliRun r = Cli(first);
  EXPECT_EQ(r.code, 3) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  int combos = 0;
  for (const auto& f : j["fixes"]) {
    EXPECT_TRUE(f.contains("settings") && f.contains("costs")) << f.dump();
    if (f["changes"].get<int>() < 2) continue;
    ++combos;
    EXPECT_TRUE(f["fits"].get<bool>()) << f.dump();
    EXPECT_GE(f["settings"].size(), 2u) << f.dump();
    std::vector<std::string> again_args = args;
    bool has_gpu = false;
    for (const auto& [k, v] : f["settings"].items()) {
      again_args.push_back("--" + k);
      again_args.push_back(v.get<std::string>());
      has_gpu = has_gpu || k == "gpu";
    }
    if (!has_gpu) {
      again_args.push_back("--gpu");
      again_args.push_back(gpu);
    }
    const CliRun again = Cli(again_args);
    EXPECT_EQ(again.code, 0) << f["change"] << ": " << again.err;
    if (again.code != 0) continue;
    const nlohmann::json e = nlohmann::json::parse(again.out);
    EXPECT_EQ(e["total_bytes"], f["total_bytes"]) << f["change"];
    EXPECT_TRUE(e["fits"].get<bool>()) << f["change"];
  }
  // Fixes that fit come first, cheapest first.
  int last_cost = -1;
  bool seen_over = false;
  for (const auto& f : j["fixes"]) {
    if (!f["fits"].get<bool>()) {
      seen_over = true;
      continue;
    }
    EXPECT_FALSE(seen_over) << f.dump();
    EXPECT_GE(f["cost"].get<int>(), last_cost) << f.dump();
    last_cost = f["cost"].get<int>();
  }
  return combos;
}

// Issue 16: Llama-3.1-70B on one RTX 4090 (bf16: 131 GiB of weights). No
// single change of the 4090 fits but llama.cpp with layers in host memory;
// cheaper combinations (a 4-bit format and a second card) fit, and `infer`
// with their flags confirms each at the same total.
TEST(PlanAnswersTest, CombinedFixesFitAndTheirFlagsRealiseThem) {
  EXPECT_GE(CheckCombinations({"infer", "meta-llama/Llama-3.1-70B"}, "RTX-4090"), 1);
  EXPECT_GE(CheckCombinations({"infer", "meta-llama/Llama-3.1-70B", "--runtime", "vllm", "--ctx", "8192"}, "RTX-4090"),
            1);
  // Training: full fine-tuning of Llama-3.1-8B at 4096 tokens on a 4090
  // (~139 GiB); LoRA alone is still over, LoRA with checkpointing and the
  // fused loss fits.
  EXPECT_GE(CheckCombinations({"train", "meta-llama/Llama-3.1-8B", "--seq", "4096"}, "RTX-4090"), 1);
}

// Property over every solve for 6 models x 3 GPU sets: the reason of an
// answer never says that the next step "fits", and no ladder step that does
// not fit says "fits with".
TEST(PlanAnswersTest, ReasonsNeverContradictTheAnswer) {
  const char* models[] = {"meta-llama/Llama-3.1-8B", "Qwen/Qwen3-30B-A3B", "google/gemma-3-27b-it",
                          "mistralai/Mistral-7B-v0.1", "meta-llama/Llama-3.1-70B", "openai/gpt-oss-20b"};
  const char* gpus[] = {"RTX-4090", "A100-80GB", "H100-80GBx2"};
  int checked = 0;
  for (const char* id : models) {
    Model m = CatalogModelOrDie(id);
    for (const char* g : gpus) {
      for (Runtime rt : {Runtime::kHf, Runtime::kVllm}) {
        for (Solve solve : {Solve::kMaxBatch, Solve::kMaxContext, Solve::kMinGpus, Solve::kBestQuant,
                            Solve::kBestMethod}) {
          if (solve == Solve::kBestMethod && rt != Runtime::kHf) continue;
          Job job;
          job.training = solve == Solve::kBestMethod;
          job.infer.runtime = rt;
          job.infer.ctx = 8192;
          if (rt == Runtime::kVllm && solve == Solve::kMaxBatch) job.infer.vllm.max_model_len = 8192;
          if (rt == Runtime::kVllm) job.infer.tp = static_cast<int64_t>(Gpus(g).size());
          auto a = Plan(m, job, Gpus(g), solve);
          ASSERT_TRUE(a.ok()) << a.error().message;
          ++checked;
          const std::string where = fmt::format("{} {} {} {}: {}", id, g, RuntimeName(rt), SolveName(solve), a->reason);
          EXPECT_EQ(a->reason.find("fits with"), std::string::npos) << where;
          EXPECT_EQ(a->reason.find("does not: fits"), std::string::npos) << where;
          if ((solve == Solve::kMaxBatch || solve == Solve::kMaxContext) && a->found && a->next) {
            EXPECT_EQ(a->reason.find("fits"), std::string::npos) << where;
          }
          for (const LadderStep& s : a->ladder) {
            if (!s.fits) {
              EXPECT_EQ(s.reason.find("fits"), std::string::npos) << where << " | " << s.option << ": " << s.reason;
            }
            EXPECT_LE(s.reason.size(), 120u) << where << " | " << s.reason;
          }
        }
      }
    }
  }
  EXPECT_EQ(checked, 6 * 3 * 9);
}

// vLLM's pool: the reason names the pool and the tokens the next batch needs.
TEST(PlanAnswersTest, VllmMaxBatchReasonNamesThePool) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  Job job;
  job.infer.runtime = Runtime::kVllm;
  job.infer.vllm.max_model_len = 8192;
  auto a = Plan(m, job, Gpus("RTX-4090"), Solve::kMaxBatch);
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(a->found && a->next) << a->reason;
  ASSERT_TRUE(a->next->kv_capacity_tokens.has_value());
  const int64_t next = a->number + 1;
  EXPECT_EQ(a->reason, fmt::format("KV pool holds {} x 8192 tokens; batch {} needs {} > {}", a->number, next,
                                   Thousands(next * 8192), Thousands(*a->next->kv_capacity_tokens)));
}

}  // namespace
}  // namespace vramfit
