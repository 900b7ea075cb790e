// This machine's calibration (include/io/vramfit/io/calibration.h, docs/check.md
// §6): `check --save` learns the memory a process holds beyond its buffers
// from a real llama.cpp memory-breakdown table (tests/data/logs/llamacpp/
// memory-breakdown-pr15860.log, llama.cpp PR #15860: CUDA0 unaccounted 451
// MiB, CUDA1/2 456 MiB on RTX 4090s) or a PyTorch record (nvml_used less
// reserved_peak); later estimates use it in place of the assumed
// cuda_context, say so, and --no-calibration / `calibration clear` undo it.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "test_util.h"
#include "vramfit/io/calibration.h"

namespace vramfit {
namespace {

// A scratch calibration file for the test's life (VRAMFIT_CALIBRATION).
class ScratchCalibration {
 public:
  ScratchCalibration() {
    dir_ = std::filesystem::temp_directory_path() / ("vramfit-cal-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    path_ = (dir_ / "sub" / "calibration.json").string();
    setenv("VRAMFIT_CALIBRATION", path_.c_str(), 1);
  }
  ~ScratchCalibration() {
    unsetenv("VRAMFIT_CALIBRATION");
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::filesystem::path dir_;
  std::string path_;
};

CalibrationEntry Entry(const std::string& gpu, int64_t mib, const std::string& source = "test") {
  return CalibrationEntry{gpu, "llamacpp", "cuda_context", mib << 20, 384 << 20, source, "2026-12-07"};
}

TEST(CalibrationTest, SavesLoadsAndReplacesByGpuRuntimeAndComponent) {
  ScratchCalibration cal;
  auto empty = LoadCalibration(cal.path());  // no file yet: empty, not an error
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->entries.empty());
  ASSERT_TRUE(SaveCalibration(cal.path(), {Entry("RTX-4090", 451), Entry("A100-80GB", 500)}).ok());
  ASSERT_TRUE(SaveCalibration(cal.path(), {Entry("RTX-4090", 456)}).ok());
  auto c = LoadCalibration(cal.path());
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_EQ(c->entries.size(), 2u);
  EXPECT_EQ(c->entries[0].gpu, "RTX-4090");
  EXPECT_EQ(c->entries[0].bytes, int64_t{456} << 20);
  EXPECT_EQ(c->entries[1].bytes, int64_t{500} << 20);
  ASSERT_TRUE(ClearCalibration(cal.path()).ok());
  EXPECT_FALSE(std::filesystem::exists(cal.path()));
}

TEST(CalibrationTest, AFileThatIsNotOneIsOneLineNamingIt) {
  ScratchCalibration cal;
  std::filesystem::create_directories(std::filesystem::path(cal.path()).parent_path());
  for (const char* bad :
       {"{", "[]", R"({"schema":"other/1","entries":[]})",
        R"({"schema":"vramfit.calibration/1","entries":[{"gpu":"RTX-4090","runtime":"llamacpp","component":"cuda_context","bytes":-1,"assumed_bytes":0,"source":"x","saved":"d"}]})",
        R"({"schema":"vramfit.calibration/1","entries":[{"gpu":"RTX-4090","runtime":"vllm","component":"cuda_context","bytes":1,"assumed_bytes":0,"source":"x","saved":"d"}]})",
        R"({"schema":"vramfit.calibration/1","entries":[{"gpu":"RTX-4090","runtime":"llamacpp","component":"weights","bytes":1,"assumed_bytes":0,"source":"x","saved":"d"}]})"}) {
    std::ofstream(cal.path()) << bad;
    auto c = LoadCalibration(cal.path());
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_NE(c.error().message.find("calibration " + cal.path()), std::string::npos) << c.error().message;
    EXPECT_EQ(c.error().message.find('\n'), std::string::npos);
  }
  // And an estimate with that file says so in one line, unless told to ignore it.
  const testing::CliRun r = testing::Cli({"infer", "meta-llama/Llama-3.1-8B", "--gpu", "RTX-4090"});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("calibration " + cal.path()), std::string::npos) << r.err;
  EXPECT_EQ(testing::Cli({"infer", "meta-llama/Llama-3.1-8B", "--gpu", "RTX-4090", "--no-calibration"}).code, 0);
}

// A writer killed at any point leaves either the old file or the new one,
// whole: the write goes to a temporary file that is renamed over the old.
TEST(CalibrationTest, AWriteKilledMidwayLeavesTheOldFileWhole) {
  ScratchCalibration cal;
  ASSERT_TRUE(SaveCalibration(cal.path(), {Entry("RTX-4090", 451)}).ok());
  std::vector<CalibrationEntry> many;  // ~1 MB of JSON, so that a kill lands inside a write
  for (int i = 0; i < 3000; ++i) many.push_back(Entry("GPU-" + std::to_string(i), 400, std::string(300, 'x')));
  for (int attempt = 0; attempt < 6; ++attempt) {
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      for (;;) (void)SaveCalibration(cal.path(), many);  // until killed
    }
    usleep(2000 + attempt * 3000);
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    auto c = LoadCalibration(cal.path());
    ASSERT_TRUE(c.ok()) << "attempt " << attempt << ": " << c.error().message;
    EXPECT_TRUE(c->entries.size() == 1 || c->entries.size() == 3001) << c->entries.size();
  }
}

// The user's loop: check a real llama.cpp log with --save, then infer on the
// same GPU kind applies the measured context, says so, and is undone by
// --no-calibration and `calibration clear`.
TEST(CalibrationTest, CheckSaveThenInferAppliesItAndClearUndoesIt) {
  ScratchCalibration cal;
  const std::string log = std::string(VRAMFIT_SOURCE_DIR) + "/tests/data/logs/llamacpp/memory-breakdown-pr15860.log";
  const std::vector<std::string> job = {"--model", "meta-llama/Llama-3.1-8B", "--runtime", "llamacpp",
                                        "--quant", "Q4_K_M", "--gpu", "RTX-4090x3"};
  std::vector<std::string> check = {"check", log, "--save"};
  check.insert(check.end(), job.begin(), job.end());
  const testing::CliRun saved = testing::Cli(check);
  ASSERT_EQ(saved.code, 0) << saved.err;
  // Three RTX 4090s: the largest unaccounted figure (456 MiB) is kept.
  EXPECT_NE(saved.out.find("calibration: saved cuda_context 456 MiB for RTX-4090 / llamacpp"), std::string::npos)
      << saved.out;
  const testing::CliRun shown = testing::Cli({"calibration", "show", "--json"});
  ASSERT_EQ(shown.code, 0) << shown.err;
  const nlohmann::json j = nlohmann::json::parse(shown.out);
  ASSERT_EQ(j["entries"].size(), 1u);
  EXPECT_EQ(j["entries"][0]["bytes"].get<int64_t>(), int64_t{456} << 20);

  const std::vector<std::string> infer = {"infer", "meta-llama/Llama-3.1-8B", "--runtime", "llamacpp", "--quant",
                                          "Q4_K_M", "--gpu", "RTX-4090", "--json"};
  auto context = [](const testing::CliRun& r) {
    const nlohmann::json e = nlohmann::json::parse(r.out);
    for (const auto& c : e["devices"][0]["components"]) {
      if (c["name"] == "cuda_context") return c["bytes"].get<int64_t>();
    }
    return int64_t{-1};
  };
  const testing::CliRun applied = testing::Cli(infer);
  ASSERT_EQ(applied.code, 0) << applied.err;
  EXPECT_EQ(context(applied), int64_t{456} << 20);
  EXPECT_NE(applied.out.find("cuda_context is this machine's calibration (456 MiB in place of the assumed"),
            std::string::npos);
  std::vector<std::string> ignored = infer;
  ignored.push_back("--no-calibration");
  const testing::CliRun plain = testing::Cli(ignored);
  ASSERT_EQ(plain.code, 0);
  EXPECT_NE(context(plain), int64_t{456} << 20);
  // Another runtime family (PyTorch) has no entry: unchanged.
  const testing::CliRun hf = testing::Cli({"infer", "meta-llama/Llama-3.1-8B", "--gpu", "RTX-4090", "--json"});
  EXPECT_EQ(hf.out.find("this machine's calibration"), std::string::npos);

  ASSERT_EQ(testing::Cli({"calibration", "clear"}).code, 0);
  EXPECT_EQ(context(testing::Cli(infer)), context(plain));
}

TEST(CalibrationTest, SaveRefusesWhatItCannotLearn) {
  ScratchCalibration cal;
  const std::string dir = std::string(VRAMFIT_SOURCE_DIR) + "/tests/data/logs/";
  // vLLM's non-torch memory sizes its KV pool: not an additive term.
  const testing::CliRun v = testing::Cli({"check", dir + "vllm/v1-llama3.1-8b-instruct-l40s.log", "--save"});
  EXPECT_NE(v.code, 0);
  EXPECT_NE(v.err.find("--save: vllm's memory outside its buffers sizes its KV pool"), std::string::npos) << v.err;
  // No model, so no estimate to compare the breakdown with.
  const testing::CliRun none = testing::Cli({"check", dir + "llamacpp/memory-breakdown-pr15860.log", "--save"});
  EXPECT_NE(none.code, 0);
  EXPECT_NE(none.err.find("--save: the log's job was not estimated"), std::string::npos) << none.err;
  EXPECT_FALSE(std::filesystem::exists(cal.path()));
}


// --cuda-context MIB: the user's measured context in place of the assumed
// one, through the same path, winning over a saved calibration; refused
// where the runtime sizes its pool around it (vLLM) and on Metal. The
// transformers memory-anatomy doc measured torch.ones((1,1)).to('cuda')
// at 1343 MiB on CUDA 11.2 (docs/estimation.md 5.10).
TEST(CalibrationTest, GivenCudaContextReplacesTheAssumedOne) {
  ScratchCalibration cal;
  auto context = [](const testing::CliRun& r) {
    const nlohmann::json e = nlohmann::json::parse(r.out);
    for (const auto& c : e["devices"][0]["components"]) {
      if (c["name"] == "cuda_context") return c["bytes"].get<int64_t>();
    }
    return int64_t{-1};
  };
  const std::vector<std::string> train = {"train", "google-bert/bert-large-uncased", "--method", "full",
                                          "--precision", "fp32", "--seq", "512", "--gpu", "V100-16GB", "--json"};
  const testing::CliRun plain = testing::Cli(train);
  ASSERT_EQ(plain.code, 0) << plain.err;
  std::vector<std::string> given = train;
  given.insert(given.end(), {"--cuda-context", "1343"});
  const testing::CliRun r = testing::Cli(given);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(context(plain), int64_t{512} << 20);
  EXPECT_EQ(context(r), int64_t{1343} << 20);
  const nlohmann::json a = nlohmann::json::parse(plain.out), b = nlohmann::json::parse(r.out);
  EXPECT_EQ(b["devices"][0]["total_bytes"].get<int64_t>() - a["devices"][0]["total_bytes"].get<int64_t>(),
            int64_t{1343 - 512} << 20);
  EXPECT_NE(r.out.find("cuda_context is 1343 MiB as given by --cuda-context 1343 (the assumption was 512 MiB)"),
            std::string::npos);

  // A saved calibration of the same term loses to the flag.
  ASSERT_TRUE(SaveCalibration(cal.path(), {Entry("RTX-4090", 456)}).ok());
  const testing::CliRun ll = testing::Cli({"infer", "meta-llama/Llama-3.1-8B", "--runtime", "llamacpp", "--quant",
                                           "Q4_K_M", "--gpu", "RTX-4090", "--cuda-context", "700", "--json"});
  ASSERT_EQ(ll.code, 0) << ll.err;
  EXPECT_EQ(context(ll), int64_t{700} << 20);
  EXPECT_EQ(ll.out.find("this machine's calibration"), std::string::npos);

  const testing::CliRun vllm =
      testing::Cli({"infer", "meta-llama/Llama-3.1-8B", "--runtime", "vllm", "--gpu", "H100", "--cuda-context", "700"});
  EXPECT_EQ(vllm.code, 2);
  EXPECT_NE(vllm.err.find("--cuda-context: vllm counts the context in the memory it profiles at start-up"),
            std::string::npos)
      << vllm.err;
  const testing::CliRun metal = testing::Cli(
      {"infer", "meta-llama/Llama-3.1-8B", "--runtime", "llamacpp", "--gpu", "M3-Max-128GB", "--cuda-context", "700"});
  EXPECT_EQ(metal.code, 2);
  EXPECT_NE(metal.err.find("Metal, which has no CUDA context"), std::string::npos) << metal.err;
  const testing::CliRun bad = testing::Cli({"infer", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--cuda-context", "0"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("--cuda-context: expected MiB in [1, 65536], got '0'"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace vramfit
