// `vramfit check`: the JSON contract (schema vramfit.check/1), exact errors,
// the settings taken from the log vs flags, and CompareToEstimate's sums.
// Fixtures: tests/data/logs/ (sources in tests/data/logs/SOURCE.md).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "vramfit/measured.h"
#include "vramfit/runtime.h"

namespace vramfit {
namespace {

using testing::Cli;

std::string Log(const std::string& rel) { return std::string(VRAMFIT_SOURCE_DIR) + "/tests/data/logs/" + rel; }

TEST(CheckCliTest, JsonSchemaRows) {
  const auto r = Cli({"check", Log("llamacpp/qwen3-0.6b-q4km-orin-b5489.log"), "--model", "Qwen/Qwen3-0.6B", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["schema"], "vramfit.check/1");
  EXPECT_EQ(j["format"], "llama.cpp");
  EXPECT_EQ(j["job"]["runtime"], "llamacpp");
  ASSERT_TRUE(j["rows"].is_array());
  ASSERT_EQ(j["rows"].size(), 5u);
  for (const auto& row : j["rows"]) {
    for (const char* k : {"device", "component", "measured_bytes", "estimated_bytes", "error"}) {
      EXPECT_TRUE(row.contains(k)) << k;
    }
  }
  // The CUDA0 compute buffer: 422.92 MiB as printed, exactly (SOURCE.md, b5489 log line 82).
  bool compute = false;
  for (const auto& row : j["rows"]) {
    if (row["device"] == "gpu0" && row["component"] == "compute_buffer") {
      compute = true;
      EXPECT_EQ(row["measured_bytes"], 443463762);
      EXPECT_TRUE(row["estimated_bytes"].is_number_integer());
      const double err = (row["estimated_bytes"].get<double>() - 443463762.0) / 443463762.0;
      EXPECT_NEAR(row["error"].get<double>(), err, 1e-4);
    }
  }
  EXPECT_TRUE(compute);
  // Settings the log states, with their lines.
  bool ctx = false;
  for (const auto& s : j["settings"]["from_log"]) {
    if (s["name"] == "ctx") {
      ctx = true;
      EXPECT_EQ(s["value"], "4096");
      EXPECT_EQ(s["source"], "log line 70: n_ctx = 4096");
    }
  }
  EXPECT_TRUE(ctx);
}

TEST(CheckCliTest, NoModelMeansNullEstimates) {
  const auto r = Cli({"check", Log("llamacpp/qwen3-0.6b-q4km-orin-b5489.log"), "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["job"]["model"].is_null());
  for (const auto& row : j["rows"]) EXPECT_TRUE(row["estimated_bytes"].is_null());
  bool said = false;
  for (const auto& n : j["notes"]) {
    said = said || n.get<std::string>().rfind("the log names the architecture 'qwen3', not a model: give --model", 0) == 0;
  }
  EXPECT_TRUE(said);
}

TEST(CheckCliTest, ExactErrors) {
  const std::string prose = (std::filesystem::temp_directory_path() / "vramfit_check_prose.txt").string();
  std::ofstream(prose) << "We served it with vllm and llama.cpp; the GPU ran out of memory.\n";
  const struct {
    std::vector<std::string> args;
    int code;
    std::string err;
  } cases[] = {
      {{"check"}, 2,
       "vramfit: error: check: LOGFILE is required (e.g. vramfit check server.log --model meta-llama/Llama-3.1-8B; - "
       "reads stdin)\n"},
      {{"check", "/nonexistent/x.log"}, 2, "vramfit: error: /nonexistent/x.log: cannot open the log\n"},
      {{"check", prose}, 2,
       "vramfit: error: " + prose +
           ": no line of a known engine log (expected a llama.cpp log with \"<device> model buffer size = X MiB\", a "
           "vLLM log with \"Model loading took X GiB\" or \"GPU KV cache size: N tokens\", an SGLang log with \"KV "
           "Cache is allocated. #tokens: N\", a torch.cuda.memory_stats() JSON or tools/measure record, or nvidia-smi "
           "--query-gpu=memory.used,... --format=csv output)\n"},
      // A flag that says another job than the log's.
      {{"check", Log("llamacpp/qwen3-0.6b-q4km-orin-b5489.log"), "--model", "Qwen/Qwen3-0.6B", "--ctx", "8192"}, 2,
       "vramfit: error: --ctx 8192: contradicts the log (log line 70: n_ctx = 4096); drop the flag\n"},
      {{"check", Log("llamacpp/qwen3-0.6b-q4km-orin-b5489.log"), "--runtime", "vllm"}, 2,
       "vramfit: error: --runtime vllm: the log is llama.cpp's (drop the flag)\n"},
      {{"check", Log("vllm/v1-graphs-issue14286.log"), "--print-flags"}, 2,
       "vramfit: error: --print-flags: applies to infer, not check\n"},
      {{"check", Log("vllm/v1-graphs-issue14286.log"), "--model", "meta-llama/Llama-3.1-8B", "--solve", "max-batch"}, 2,
       "vramfit: error: --solve: applies to fit, not infer\n"},
      // Flags with nothing to estimate would be accepted and ignored.
      {{"check", Log("llamacpp/qwen3-0.6b-q4km-orin-b5489.log"), "--ubatch", "512"}, 2,
       "vramfit: error: --ubatch: not used: no model to estimate (give --model MODEL)\n"},
  };
  for (const auto& c : cases) {
    const auto r = Cli(c.args);
    EXPECT_EQ(r.code, c.code) << c.args.back();
    EXPECT_EQ(r.err, c.err) << c.args.back();
  }
}

TEST(CheckCliTest, FlagAgreeingWithTheLogIsFine) {
  const auto r = Cli({"check", Log("llamacpp/qwen3-0.6b-q4km-orin-b5489.log"), "--model", "Qwen/Qwen3-0.6B", "-c",
                      "4096", "--gpu", "RTX-4090", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["settings"]["from_flags"].size(), 1u);  // --gpu; --ctx is the log's
  EXPECT_EQ(j["settings"]["from_flags"][0]["name"], "gpu");
}

TEST(CheckCliTest, SglangWithoutProfileOrWithIt) {
  const auto r = Cli({"check", Log("sglang/qwen3-235b-a22b-fp8-tp4-h100.log"), "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["rows"].size(), 1u);
  // 8.23 GB + 8.23 GB, SGLang's GB = 2^30 B (memory_pool.py): 2 x 8836895212.
  EXPECT_EQ(j["rows"][0]["measured_bytes"], 17673790424);
  EXPECT_EQ(j["kv_cache"]["measured_capacity_tokens"], 367404);
  bool sglang_profile = false;
  for (Runtime rt : AllRuntimes()) sglang_profile = sglang_profile || std::string(RuntimeName(rt)) == "sglang";
  if (!sglang_profile) {
    EXPECT_TRUE(j["rows"][0]["estimated_bytes"].is_null());
    EXPECT_EQ(j["notes"][1], "no sglang runtime profile in this build: the measured figures are shown without an estimate");
  } else {
    EXPECT_EQ(j["job"]["runtime"], "sglang");
  }
}

TEST(CheckCliTest, MemoryBreakdownRows) {
  // The table with a Host row and a negative "unaccounted" (ollama#17482).
  const auto r = Cli({"check", Log("llamacpp/memory-breakdown-ollama17482.log"), "--model", "meta-llama/Llama-3.1-8B",
                      "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  int self = 0;
  for (const auto& row : j["rows"]) {
    if (row["component"] == "breakdown_self") {
      ++self;
      if (row["device"] == "gpu0") {
        EXPECT_EQ(row["measured_bytes"], int64_t{15946} << 20);
      }
      if (row["device"] == "host") {
        EXPECT_EQ(row["measured_bytes"], int64_t{804} << 20);
      }
    }
    EXPECT_NE(row["component"], "breakdown_unaccounted");  // -15681 MiB is not compared
  }
  EXPECT_EQ(self, 2);
  bool note = false;
  for (const auto& n : j["notes"]) note = note || n.get<std::string>().find("unaccounted -15681 MiB is not a real figure") != std::string::npos;
  EXPECT_TRUE(note);
}

TEST(CompareToEstimateTest, SumsPerDeviceAndComponent) {
  Estimate e;
  DeviceEstimate d;
  d.name = "gpu0";
  d.components.push_back(Leaf("kv_cache", Bytes(1000)));
  d.total = Bytes(1500);
  e.devices.push_back(d);
  std::vector<Measured> m(3);
  m[0] = {"gpu0", "TP0", "K size", "kv_cache", true, Bytes(400), Bytes(5), "x", 1};
  m[1] = {"gpu0", "TP0", "V size", "kv_cache", true, Bytes(400), Bytes(5), "y", 1};
  m[2] = {"gpu1", "", "K size", "kv_cache", true, Bytes(10), Bytes(0), "z", 2};
  const auto rows = CompareToEstimate(m, &e);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].measured.value(), 800);
  EXPECT_EQ(rows[0].half_ulp.value(), 10);
  EXPECT_EQ(rows[0].estimated->value(), 1000);
  EXPECT_DOUBLE_EQ(*rows[0].error, 0.25);
  EXPECT_EQ(rows[0].printed, "x + y");
  EXPECT_FALSE(rows[1].estimated.has_value());  // no gpu1 in the estimate
  EXPECT_TRUE(CompareToEstimate(m, nullptr)[0].estimated == std::nullopt);
}

}  // namespace
}  // namespace vramfit
