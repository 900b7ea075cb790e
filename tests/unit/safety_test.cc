// The uncertainty band and the "tight" verdict through the CLI, and
// `fit --safety p90` (docs/estimation.md sections 8 and 15). The bands are
// the embedded data/accuracy_bands.json; each check ties two commands
// together (the planner's answer against `infer`'s own band), so none pins a
// number that regenerating the file would move.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_util.h"

namespace vramfit {
namespace {

using testing::Cli;
using testing::CliRun;
using Json = nlohmann::json;

Json JsonOf(const std::vector<std::string>& args) {
  const CliRun r = Cli(args);
  EXPECT_TRUE(r.code == 0 || r.code == 3) << r.err;
  return Json::parse(r.out);
}

TEST(SafetyTest, EveryEstimateHasABandOrSaysWhyNot) {
  const std::vector<std::vector<std::string>> jobs = {
      {"infer", "meta-llama/Llama-3.1-8B", "--gpu", "RTX-4090"},
      {"infer", "meta-llama/Llama-3.1-8B", "--gpu", "RTX-4090", "--runtime", "llamacpp", "--quant", "Q4_K_M"},
      {"infer", "meta-llama/Llama-3.1-8B", "--gpu", "H100-80GB", "--runtime", "vllm"},
      {"infer", "meta-llama/Llama-3.1-8B", "--gpu", "H100-80GB", "--runtime", "sglang"},
      {"train", "meta-llama/Llama-3.1-8B", "--gpu", "H100-80GB", "--method", "lora"},
      {"train", "meta-llama/Llama-3.1-8B", "--gpu", "H100-80GB", "--method", "freeze"},
      {"infer", "meta-llama/Llama-3.1-8B"},
  };
  for (std::vector<std::string> args : jobs) {
    args.push_back("--json");
    const Json j = JsonOf(args);
    const std::string what = args[0] + " " + args.back();
    ASSERT_TRUE(j.contains("uncertainty")) << what;
    const Json& u = j["uncertainty"];
    ASSERT_TRUE(u["basis"].is_string()) << what;
    EXPECT_EQ(u.contains("low_bytes"), u.contains("high_bytes")) << what;
    if (u.contains("low_bytes")) {
      EXPECT_LE(u["low_bytes"].get<int64_t>(), u["high_bytes"].get<int64_t>()) << what;
      EXPECT_NE(u["basis"].get<std::string>().find("measured figures of"), std::string::npos) << what;
    } else {
      EXPECT_NE(u["basis"].get<std::string>().find("no band"), std::string::npos) << what;
    }
    for (const Json& d : j["devices"]) EXPECT_TRUE(d.contains("uncertainty")) << what;
    if (j["fits"].is_null()) {
      EXPECT_TRUE(j["verdict"].is_null()) << what;
    } else {
      const std::string v = j["verdict"].get<std::string>();
      EXPECT_TRUE(v == "fits" || v == "tight" || v == "does not fit") << what << ": " << v;
      EXPECT_EQ(j["fits"].get<bool>(), v != "does not fit") << what;
    }
  }
  // No measured training case uses --method freeze: no band, and no bytes.
  const Json freeze = JsonOf({"train", "meta-llama/Llama-3.1-8B", "--gpu", "H100-80GB", "--method", "freeze", "--json"});
  EXPECT_EQ(freeze["uncertainty"]["basis"], "no measured cases for train train/freeze: no band");
}

TEST(SafetyTest, TightWhenTheCapacityLiesInTheBand) {
  // Llama-3.1-8B at 32768 tokens on an RTX 4090 fits at its estimate
  // (1.40 GiB headroom), inside the hf inference band.
  const std::vector<std::string> args = {"infer", "meta-llama/Llama-3.1-8B", "--gpu", "RTX-4090", "--ctx", "32768"};
  std::vector<std::string> json_args = args;
  json_args.push_back("--json");
  const Json j = JsonOf(json_args);
  const Json& d = j["devices"][0];
  const int64_t cap = d["capacity_bytes"], total = d["total_bytes"], high = d["uncertainty"]["high_bytes"];
  EXPECT_LE(total, cap);
  EXPECT_GT(high, cap);
  EXPECT_EQ(j["fits"], true);
  EXPECT_EQ(j["verdict"], "tight");
  EXPECT_EQ(d["verdict"], "tight");
  const CliRun text = Cli(args);
  EXPECT_EQ(text.code, 0);  // a tight job fits
  EXPECT_NE(text.out.find("verdict: tight (fits, but within the error of this estimate \u2014 keep "),
            std::string::npos)
      << text.out;
}

// The p90 answer is the largest context whose band's high edge fits, as
// `infer` itself reports that band: at the answer it fits, one more does not.
TEST(SafetyTest, P90AnswersAtTheBandsHighEdge) {
  const std::vector<std::string> base = {"fit", "meta-llama/Llama-3.1-8B", "--gpu", "RTX-4090", "--solve",
                                         "max-context", "--json"};
  const Json p50 = JsonOf(base);
  std::vector<std::string> safe = base;
  safe.insert(safe.end(), {"--safety", "p90"});
  const Json p90 = JsonOf(safe);
  const int64_t at50 = p50["answer"]["value"], at90 = p90["answer"]["value"];
  EXPECT_LT(at90, at50);
  // The planner's estimate at its p50 answer carries the same band and
  // verdict as `infer` there (right at the edge: tight).
  const Json infer50 = JsonOf({"infer", "meta-llama/Llama-3.1-8B", "--gpu", "RTX-4090", "--ctx",
                               std::to_string(at50), "--json"});
  EXPECT_EQ(p50["estimate"]["uncertainty"], infer50["uncertainty"]);
  EXPECT_EQ(p50["estimate"]["verdict"], "tight");
  EXPECT_EQ(infer50["verdict"], "tight");
  EXPECT_NE(p90["answer"]["reason"].get<std::string>().find("--safety p90"), std::string::npos);
  const auto band = [](int64_t ctx) {
    const Json j = JsonOf({"infer", "meta-llama/Llama-3.1-8B", "--gpu", "RTX-4090", "--ctx", std::to_string(ctx),
                           "--json"});
    return std::pair<int64_t, int64_t>{j["devices"][0]["uncertainty"]["high_bytes"], j["devices"][0]["capacity_bytes"]};
  };
  const auto [high, cap] = band(at90);
  EXPECT_LE(high, cap);
  const auto [high_next, cap_next] = band(at90 + 1);
  EXPECT_GT(high_next, cap_next);
  // The next step's reason names its band, never "fits".
  EXPECT_EQ(p90["answer"]["reason"].get<std::string>().find("fits", p90["answer"]["reason"].get<std::string>().find(
                std::to_string(at90 + 1))),
            std::string::npos)
      << p90["answer"]["reason"];
}

TEST(SafetyTest, SafetyIsAPlannerSetting) {
  CliRun r = Cli({"fit", "meta-llama/Llama-3.1-8B", "--gpu", "RTX-4090", "--solve", "max-context", "--safety", "p99"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "vramfit: error: --safety: expected p50 or p90, got 'p99'\n");
  r = Cli({"infer", "meta-llama/Llama-3.1-8B", "--gpu", "RTX-4090", "--safety", "p90"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "vramfit: error: --safety: applies to fit, not infer\n");
}

}  // namespace
}  // namespace vramfit
