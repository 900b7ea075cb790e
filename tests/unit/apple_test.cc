// Apple silicon as it is (issue 14 item 5): the fit is judged against Metal's
// working-set limit (recommendedMaxWorkingSetSize), raised by --wired-limit
// (sudo sysctl iogpu.wired_limit_mb); no CUDA context on Metal.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_util.h"

namespace vramfit {
namespace {

using testing::Cli;
using testing::CliRun;
using Json = nlohmann::json;

constexpr int64_t kMiBytes = 1024 * 1024;

Json EstimateJson(std::vector<std::string> args) {
  args.push_back("--json");
  const CliRun r = Cli(args);
  EXPECT_TRUE(r.code == 0 || r.code == 3) << r.err;
  return Json::parse(r.out);
}

bool HasComponent(const Json& device, const std::string& name) {
  for (const Json& c : device["components"]) {
    if (c["name"] == name) return true;
  }
  return false;
}

bool NoteContains(const Json& e, const std::string& text) {
  for (const Json& n : e["notes"]) {
    if (n.get<std::string>().find(text) != std::string::npos) return true;
  }
  return false;
}

// M3-Max-128GB: recommendedMaxWorkingSetSize = 103079.22 MB = 98304 MiB
// (llama.cpp log, data/gpus.json metal_m3max), not the 131072 MiB of RAM.
TEST(AppleTest, JudgedAgainstTheWorkingSetWithoutCudaContext) {
  for (const char* runtime : {"llamacpp", "hf"}) {
    std::vector<std::string> args = {"infer", "meta-llama/Llama-3.1-8B", "--runtime", runtime, "--gpu", "M3-Max-128GB"};
    if (std::string(runtime) == "llamacpp") args.insert(args.end(), {"--quant", "Q4_K_M"});
    const Json e = EstimateJson(args);
    const Json& d = e["devices"][0];
    EXPECT_EQ(d["capacity_bytes"].get<int64_t>(), 98304 * kMiBytes) << runtime;
    EXPECT_FALSE(HasComponent(d, "cuda_context")) << runtime << ": Metal has no CUDA context";
    int64_t sum = 0;
    for (const Json& c : d["components"]) sum += c["bytes"].get<int64_t>();
    EXPECT_EQ(sum, d["total_bytes"].get<int64_t>()) << runtime;
    EXPECT_TRUE(NoteContains(e, "Metal's working-set limit 98304 MiB (recommendedMaxWorkingSetSize), not its 128 GiB"))
        << runtime << " " << e["notes"].dump();
    EXPECT_FALSE(NoteContains(e, "cuda_context:")) << runtime;
  }
  // The same job on a CUDA GPU keeps its context.
  const Json cuda = EstimateJson({"infer", "meta-llama/Llama-3.1-8B", "--runtime", "llamacpp", "--quant", "Q4_K_M",
                                  "--gpu", "RTX-4090"});
  EXPECT_TRUE(HasComponent(cuda["devices"][0], "cuda_context"));
}

// A job between the working-set limit and the RAM: does not fit by default,
// fits once --wired-limit raises the limit above its total.
TEST(AppleTest, WiredLimitMovesTheVerdict) {
  const std::vector<std::string> job = {"infer", "meta-llama/Llama-3.1-70B", "--runtime", "llamacpp", "--quant",
                                        "Q8_0", "--ctx", "131072", "--gpu", "M3-Max-128GB"};
  const Json def = EstimateJson(job);
  const int64_t total = def["devices"][0]["total_bytes"].get<int64_t>();
  ASSERT_GT(total, 98304 * kMiBytes) << "the job must exceed the working set for the test to mean anything";
  ASSERT_LT(total, 131072 * kMiBytes) << "and fit in the RAM";
  EXPECT_EQ(def["fits"], false);
  std::vector<std::string> raised = job;
  const int64_t above = total / kMiBytes + 1024;
  raised.insert(raised.end(), {"--wired-limit", std::to_string(above)});
  const Json up = EstimateJson(raised);
  EXPECT_EQ(up["devices"][0]["capacity_bytes"].get<int64_t>(), above * kMiBytes);
  EXPECT_EQ(up["fits"], true);
  EXPECT_TRUE(NoteContains(up, "judged against --wired-limit " + std::to_string(above) + " MiB (iogpu.wired_limit_mb)"))
      << up["notes"].dump();
}

// A Mac has one GPU: the fixes never offer a second one, and a ranking
// over every GPU does not count two Macs (or two laptops) as one machine.
TEST(AppleTest, OneGpuPerMac) {
  const Json e = EstimateJson({"infer", "meta-llama/Llama-3.1-70B", "--runtime", "llamacpp", "--quant", "Q8_0", "--ctx",
                               "131072", "--gpu", "M3-Max-128GB"});
  ASSERT_FALSE(e["fixes"].empty());
  for (const Json& f : e["fixes"]) {
    EXPECT_EQ(f["change"].get<std::string>().find("M3-Max-128GBx"), std::string::npos) << f["change"];
  }
  const CliRun r = Cli({"fit", "meta-llama/Llama-3.1-8B", "--gpu", "all", "--ctx", "8192"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("RTX-4060-Laptop              -  does not fit on its one GPU (8.00 GiB memory); a machine has one"),
            std::string::npos)
      << r.out;
  // A Mac is a node of one GPU (the planner's layouts, docs/estimation.md):
  // judged against its 10.67 GiB working set, not its 16 GiB of RAM.
  EXPECT_NE(r.out.find("M1-Pro-16GB                  -  one node of 1 x M1-Pro-16GB does not fit (6.08 GiB over the "
                       "10.67 GiB of gpu0 (M1-Pro-16GB))"),
            std::string::npos)
      << r.out;
}

TEST(AppleTest, WiredLimitErrors) {
  const struct { std::vector<std::string> args; const char* err; } cases[] = {
      {{"infer", "meta-llama/Llama-3.1-8B", "--gpu", "RTX-4090", "--wired-limit", "20000"},
       "vramfit: error: --wired-limit: applies to Apple GPUs (macOS iogpu.wired_limit_mb); RTX-4090 is not one\n"},
      {{"infer", "meta-llama/Llama-3.1-8B", "--wired-limit", "20000"},
       "vramfit: error: --wired-limit: applies to Apple GPUs; give one with --gpu (M3-Max-128GB)\n"},
      {{"infer", "meta-llama/Llama-3.1-8B", "--gpu", "M3-Max-128GB", "--wired-limit", "140000"},
       "vramfit: error: --wired-limit: 140000 MiB is more than the 131072 MiB of RAM of M3-Max-128GB\n"},
      {{"infer", "meta-llama/Llama-3.1-8B", "--gpu", "M3-Max-128GB", "--wired-limit", "0"},
       "vramfit: error: --wired-limit: expected MiB in [1, 1048576], got '0'\n"},
      {{"train", "meta-llama/Llama-3.1-8B", "--gpu", "A100-80GB", "--wired-limit", "20000"},
       "vramfit: error: --wired-limit: applies to Apple GPUs (macOS iogpu.wired_limit_mb); A100-80GB is not one\n"},
  };
  for (const auto& c : cases) {
    const CliRun r = Cli(c.args);
    EXPECT_EQ(r.code, 2) << c.args[3];
    EXPECT_EQ(r.err, c.err);
  }
  // vLLM and SGLang run on CUDA and ROCm only: still refused on a Mac.
  for (const char* runtime : {"vllm", "sglang"}) {
    const CliRun r = Cli({"infer", "meta-llama/Llama-3.1-8B", "--runtime", runtime, "--gpu", "M4-Max-128GB"});
    EXPECT_NE(r.code, 0) << runtime;
    EXPECT_NE(r.err.find("is an Apple GPU"), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace vramfit
