// Whole-output CLI tests: golden transcripts in tests/golden/*.txt and the
// exact one-line errors. Set VRAMFIT_UPDATE_GOLDEN=1 to rewrite the goldens.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "../data/hybrid_gguf.h"
#include "cli_util.h"

namespace vramfit {
namespace {

using testing::Cli;
using testing::CliRun;

std::vector<std::string> Split(const std::string& line) {
  std::vector<std::string> v;
  std::istringstream ss(line);
  std::string w;
  while (ss >> w) v.push_back(w);
  return v;
}

// "@GGUF:lfm2@" (mamba, qwen3next): a header-only GGUF of that model
// (tests/data/hybrid_gguf.h), written to a temp dir; the output shows its
// path as the placeholder again.
std::string GoldenGguf(const std::string& arg, std::vector<std::pair<std::string, std::string>>* paths) {
  const std::string name = arg.substr(6, arg.size() - 7);
  const fixtures::GgufBuilder b = name == "lfm2" ? fixtures::Lfm2() : name == "mamba" ? fixtures::Mamba()
                                                                                       : fixtures::Qwen3Next();
  const auto path = fixtures::FreshDir("golden_" + name) / (name + ".gguf");
  fixtures::WriteSparse(path, b.Header(), b.FileSize());
  paths->push_back({path.string(), arg});
  return path.string();
}

// Each golden file: first line "$ vramfit ARGS", then stdout, then
// "[exit N]".
TEST(CliTest, GoldenTranscripts) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(VRAMFIT_SOURCE_DIR) / "tests" / "golden";
  const bool update = std::getenv("VRAMFIT_UPDATE_GOLDEN") != nullptr;
  int n = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".txt") continue;
    std::ifstream in(entry.path());
    std::string first;
    std::getline(in, first);
    ASSERT_EQ(first.rfind("$ vramfit ", 0), 0u) << entry.path();
    std::stringstream rest;
    rest << in.rdbuf();
    // "@SRC@/" in the arguments is the source tree (fixtures such as
    // tests/data/logs/...); the output shows it as "@SRC@/" again.
    std::vector<std::string> args = Split(first.substr(10));
    const std::string src = std::string(VRAMFIT_SOURCE_DIR) + "/";
    std::vector<std::pair<std::string, std::string>> ggufs;
    for (std::string& a : args) {
      if (a.rfind("@SRC@/", 0) == 0) a = src + a.substr(6);
      if (a.rfind("@GGUF:", 0) == 0) a = GoldenGguf(a, &ggufs);
    }
    const CliRun r = Cli(args);
    std::string got = r.out + "[exit " + std::to_string(r.code) + "]\n";
    for (const auto& [path, shown] : ggufs) {
      for (size_t p = got.find(path); p != std::string::npos; p = got.find(path, p)) got.replace(p, path.size(), shown);
    }
    for (size_t p = got.find(src); p != std::string::npos; p = got.find(src, p)) got.replace(p, src.size(), "@SRC@/");
    if (update) {
      std::ofstream(entry.path()) << first << "\n" << got;
    } else {
      EXPECT_EQ(rest.str(), got) << entry.path() << "\nstderr: " << r.err;
    }
    ++n;
  }
  EXPECT_GE(n, 4);
}

TEST(CliTest, ExactErrors) {
  const struct { std::vector<std::string> args; int code; const char* err; } cases[] = {
      {{"infer", "meta-llama/Llama-3.1-9B"}, 2,
       "vramfit: error: model 'meta-llama/Llama-3.1-9B': not in the catalog and not a file (did you mean "},
      {{"infer", "meta-llama/Llama-3.1-8B", "--gpu", "RTX-4099"}, 2,
       "vramfit: error: --gpu: unknown GPU 'RTX-4099' (did you mean RTX-4090"},
      {{"infer", "meta-llama/Llama-3.1-8B", "--batch", "0"}, 2,
       "vramfit: error: --batch: must be a positive integer, got 0\n"},
      {{"infer", "meta-llama/Llama-3.1-8B", "--batch", "-3"}, 2,
       "vramfit: error: --batch: must be a positive integer, got -3\n"},
      {{"infer", "meta-llama/Llama-3.1-8B", "--batch", "two"}, 2,
       "vramfit: error: --batch: expected an integer, got 'two'\n"},
      {{"infer", "meta-llama/Llama-3.1-8B", "--ctx", "99999999999999999999"}, 2,
       "vramfit: error: --ctx: expected an integer, got '99999999999999999999'\n"},
      {{"infer", "meta-llama/Llama-3.1-8B", "--quant", "int3"}, 2,
       "vramfit: error: --quant: unknown format 'int3' (expected none, int8, nf4, nf4-dq, fp4, fp4-dq, "
       "gptq-int4, awq-int4, fp8, fp8-block, fp8-channel, w8a8-int8, nvfp4, mxfp4, mxfp8, torchao-int4wo-64, "
       "torchao-int8wo, torchao-fp6, or a GGUF type such as Q8_0)\n"},
      {{"infer", "meta-llama/Llama-3.1-8B", "--dtype", "int8"}, 2,
       "vramfit: error: --dtype: expected fp32, fp16 or bf16, got 'int8'\n"},
      {{"infer", "meta-llama/Llama-3.1-8B", "--attn", "paged"}, 2,
       "vramfit: error: --attn: unknown attention kernel 'paged' (expected eager, sdpa or flash)\n"},
      {{"infer", "meta-llama/Llama-3.1-8B", "--runtime", "tgi"}, 2,
       "vramfit: error: --runtime: unknown runtime 'tgi' (expected hf, vllm, llamacpp or sglang)\n"},
      {{"train", "meta-llama/Llama-3.1-8B", "--zero", "5"}, 2, "vramfit: error: --zero: expected 0, 1, 2 or 3, got 5\n"},
      {{"fit", "meta-llama/Llama-3.1-8B", "--gpu", "T4", "--solve", "max-speed"}, 2,
       "vramfit: error: --solve: unknown question 'max-speed' (expected max-batch, max-context, min-gpus, "
       "best-quant or best-method)\n"},
      {{"infer", "meta-llama/Llama-3.1-8B", "--bacth", "2"}, 2,
       "vramfit: error: infer: unknown option '--bacth' (did you mean --batch?)\n"},
      {{"infer"}, 2, "vramfit: error: infer: MODEL is required (e.g. vramfit infer meta-llama/Llama-3.1-8B)\n"},
      {{"inferr", "x"}, 2, "vramfit: error: unknown command 'inferr' (did you mean infer?)\n"},
      {{"inspect", "/nonexistent/config.json"}, 2,
       "vramfit: error: model '/nonexistent/config.json': not in the catalog and not a file"},
      {{"infer", "meta-llama/Llama-3.1-8B", "--units", "tb"}, 2,
       "vramfit: error: --units: expected gib or gb, got 'tb'\n"},
  };
  for (const auto& c : cases) {
    const CliRun r = Cli(c.args);
    EXPECT_EQ(r.code, c.code) << c.args[0] << " " << (c.args.size() > 1 ? c.args.back() : "");
    EXPECT_EQ(r.err.rfind(c.err, 0), 0u) << "got: " << r.err << "want: " << c.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
}

TEST(CliTest, JsonFollowsTheContract) {
  const CliRun r = Cli({"infer", "meta-llama/Llama-3.1-8B", "--gpu", "RTX-4090", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["schema"], "vramfit.estimate/1");
  EXPECT_EQ(j["model"]["params"], 8030261248);
  EXPECT_EQ(j["model"]["kv_bytes_per_token"], 131072);
  for (const char* k : {"model", "workload", "devices", "host", "kv_cache", "total_bytes", "fits", "notes"}) {
    EXPECT_TRUE(j.contains(k)) << k;
  }
  const auto& d = j["devices"][0];
  for (const char* k : {"name", "gpu", "capacity_bytes", "total_bytes", "reserved_peak_bytes",
                        "allocated_peak_bytes", "components"}) {
    EXPECT_TRUE(d.contains(k)) << k;
  }
  EXPECT_EQ(d["gpu"], "RTX-4090");
  EXPECT_EQ(d["capacity_bytes"], 24564LL * 1024 * 1024);
  int64_t sum = 0;
  for (const auto& c : d["components"]) sum += c["bytes"].get<int64_t>();
  EXPECT_EQ(sum, d["total_bytes"].get<int64_t>());
  EXPECT_EQ(j["total_bytes"], d["total_bytes"]);
  EXPECT_TRUE(j["kv_cache"]["capacity_tokens"].is_null());
  EXPECT_EQ(j["fits"], true);
}

TEST(CliTest, InspectJson) {
  const CliRun r = Cli({"inspect", "meta-llama/Llama-3.1-8B", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["model"]["params"], 8030261248);
  EXPECT_EQ(j["model"]["kv_bytes_per_token"], 131072);
}

TEST(CliTest, ConfigJsonPathAndErrorsAsJson) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "vramfit_cli_test";
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << R"({"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2",
    "hidden_size":896,"intermediate_size":4864,"num_hidden_layers":24,"num_attention_heads":14,
    "num_key_value_heads":2,"vocab_size":151936,"max_position_embeddings":32768,
    "tie_word_embeddings":true,"torch_dtype":"bfloat16"})";
  // Qwen2.5-0.5B's real config: 494,032,768 parameters (model_configs.jsonl).
  for (const fs::path& p : std::vector<fs::path>{dir / "config.json", dir}) {
    const CliRun r = Cli({"inspect", p.string(), "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["model"]["params"], 494032768);
  }
  std::ofstream(dir / "config.json") << "{\"model_type\": \"llama\", ";
  const CliRun bad = Cli({"inspect", dir.string(), "--json"});
  EXPECT_EQ(bad.code, 1);
  auto j = nlohmann::json::parse(bad.out);
  EXPECT_EQ(j["schema"], "vramfit.error/1");
  EXPECT_EQ(j["error"]["kind"], "corrupt");
  EXPECT_EQ(bad.err.rfind("vramfit: error: " + (dir / "config.json").string() + ": malformed JSON at byte", 0), 0u)
      << bad.err;
  fs::remove_all(dir);
}

TEST(CliTest, DoesNotFitExitsThree) {
  const CliRun r = Cli({"infer", "meta-llama/Llama-3.1-70B", "--gpu", "RTX-4090"});
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.out.find("DOES NOT FIT"), std::string::npos);
}

// --gpu takes comma lists as well as repeats; one of each kind ranks the
// kinds, a list with counts is the set the user has (min-gpus picks the
// smallest part of it that fits).
TEST(CliTest, GpuListsAndMixedSets) {
  const CliRun a = Cli({"infer", "meta-llama/Llama-3.1-8B", "--gpu", "RTX-4090x2,L4", "--json"});
  ASSERT_EQ(a.code, 0) << a.err;
  const CliRun b = Cli({"infer", "meta-llama/Llama-3.1-8B", "--gpu", "RTX-4090x2", "--gpu", "L4", "--json"});
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(nlohmann::json::parse(a.out)["devices"].size(), 3u);
  // Q4_K_M Llama-3.1-70B (~40 GiB) on 3 x 4090 + 2 x 3090 + 1 H100: the H100 alone.
  const CliRun c = Cli({"fit", "meta-llama/Llama-3.1-70B", "--gpu", "RTX-4090x3,RTX-3090x2,H100-80GB", "--solve",
                        "min-gpus", "--runtime", "llamacpp", "--quant", "Q4_K_M", "--ctx", "8192"});
  EXPECT_EQ(c.code, 0) << c.err;
  EXPECT_EQ(c.out.rfind("min-gpus: 1 x H100-80GB (1 GPU)\n  fits on one GPU of the 6 given\n", 0), 0u) << c.out;
  // One of each: the kinds ranked, each with its own count.
  const CliRun d = Cli({"fit", "meta-llama/Llama-3.1-70B", "--gpu", "RTX-4090,H100-80GB", "--solve", "min-gpus",
                        "--runtime", "llamacpp", "--quant", "Q4_K_M", "--ctx", "8192"});
  EXPECT_EQ(d.code, 0) << d.err;
  EXPECT_NE(d.out.find("RTX-4090"), std::string::npos) << d.out;
  EXPECT_NE(d.out.find("H100-80GB"), std::string::npos) << d.out;
  EXPECT_EQ(Cli({"infer", "meta-llama/Llama-3.1-8B", "--gpu", "RTX-4090,"}).err,
            "vramfit: error: --gpu: empty GPU name in 'RTX-4090,'\n");
}

}  // namespace
}  // namespace vramfit
