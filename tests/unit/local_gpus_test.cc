// `--gpu local` (include/io/vramfit/io/local_gpus.h): nvidia-smi's CSV
// query as `nvidia-smi --query-gpu=name,memory.total,memory.used
// --format=csv,noheader,nounits` prints it (one "NAME, MiB, MiB" line per
// device; nvidia-smi --help-query-gpu: memory.total "Total installed GPU
// memory", memory.used "Total memory allocated by active contexts"), read
// from a fake nvidia-smi on PATH; NVML is skipped (VRAMFIT_NVML_LIBRARY=none)
// so that the tests do not depend on the GPUs of the machine running them.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "vramfit/app/app.h"
#include "vramfit/catalog.h"
#include "vramfit/io/local_gpus.h"

namespace vramfit {
namespace {

TEST(LocalGpusTest, ParsesNvidiaSmiQueryLines) {
  auto g = ParseNvidiaSmiQuery("NVIDIA GeForce RTX 4090, 24564, 3000\nNVIDIA H100 80GB HBM3, 81559, 0\n");
  ASSERT_TRUE(g.ok()) << g.error().message;
  ASSERT_EQ(g->size(), 2u);
  EXPECT_EQ((*g)[0].name, "NVIDIA GeForce RTX 4090");
  EXPECT_EQ((*g)[0].total_mib, 24564);
  EXPECT_EQ((*g)[0].used_mib, 3000);
  EXPECT_EQ((*g)[1].total_mib, 81559);
  EXPECT_EQ((*g)[1].source, "nvidia-smi");
  // DGX Spark's GB10 (unified memory) prints [N/A] for both figures.
  auto spark = ParseNvidiaSmiQuery("NVIDIA GB10, [N/A], [N/A]\n");
  ASSERT_TRUE(spark.ok());
  EXPECT_FALSE((*spark)[0].total_mib.has_value());
}

TEST(LocalGpusTest, RefusesWhatIsNotTheQuery) {
  for (const char* bad : {"name, memory.total [MiB], memory.used [MiB]\n",  // a header: wrong --format
                          "NVIDIA GeForce RTX 4090, 24564 MiB, 3000 MiB\n",  // units: wrong --format
                          "NVIDIA GeForce RTX 4090\n", "NVIDIA GeForce RTX 4090, 24564, 30000\n",
                          ", 24564, 0\n", "X, 99999999999999999999, 0\n"}) {
    auto g = ParseNvidiaSmiQuery(bad);
    ASSERT_FALSE(g.ok()) << bad;
    EXPECT_NE(g.error().message.find("nvidia-smi line 1"), std::string::npos) << g.error().message;
  }
}

TEST(LocalGpusTest, MatchesTheCatalogAndKeepsTheMachinesFigures) {
  auto g = ParseNvidiaSmiQuery("NVIDIA GeForce RTX 4090, 24564, 3000\nTesla T4, 15360, 0\n");
  ASSERT_TRUE(g.ok());
  DeviceSet set;
  ASSERT_TRUE(AddLocalGpus(*g, GpuCatalog::Builtin(), &set).ok());
  ASSERT_EQ(set.size(), 2u);
  EXPECT_EQ(set.gpus[0].name, "RTX-4090");
  EXPECT_EQ(set.gpus[0].capacity.value(), int64_t{24564} * kMiB);
  EXPECT_EQ(set.gpus[0].in_use.value(), int64_t{3000} * kMiB);
  EXPECT_EQ(set.gpus[0].bandwidth_gb_s, 1008);  // from the catalog entry
  EXPECT_EQ(set.gpus[1].name, "T4");
  DeviceSet none;
  auto odd = ParseNvidiaSmiQuery("NVIDIA Quadro K420, 1998, 0\n");
  ASSERT_TRUE(odd.ok());
  Status st = AddLocalGpus(*odd, GpuCatalog::Builtin(), &none);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("'NVIDIA Quadro K420' (1998 MiB), which the GPU catalog does not know"),
            std::string::npos)
      << st.error().message;
}

// A directory with an executable `nvidia-smi` printing `output`, put first
// on PATH for the test's life; NVML skipped.
class FakeNvidiaSmi {
 public:
  explicit FakeNvidiaSmi(const std::string& output, int exit_code = 0) {
    dir_ = std::filesystem::temp_directory_path() / ("vramfit-smi-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    const std::filesystem::path script = dir_ / "nvidia-smi";
    std::ofstream(script) << "#!/bin/sh\ncat <<'EOF'\n" << output << "EOF\nexit " << exit_code << "\n";
    chmod(script.c_str(), 0755);
    const char* path = std::getenv("PATH");
    old_path_ = path ? path : "";
    setenv("PATH", (dir_.string() + ":" + old_path_).c_str(), 1);
    setenv("VRAMFIT_NVML_LIBRARY", "none", 1);
  }
  ~FakeNvidiaSmi() {
    setenv("PATH", old_path_.c_str(), 1);
    unsetenv("VRAMFIT_NVML_LIBRARY");
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

 private:
  std::filesystem::path dir_;
  std::string old_path_;
};

// Llama-3.1-8B bf16 with hf at CTX tokens: a total between 21.06 and
// 23.99 GiB as nvidia-smi would show it, within an RTX 4090's 24564 MiB but
// not within the 21564 MiB left when 3000 MiB is already in use.
TEST(LocalGpusTest, TheVerdictCountsWhatOtherProcessesHold) {
  const std::vector<std::string> job = {"infer", "meta-llama/Llama-3.1-8B", "--ctx", "32768", "--json"};
  std::vector<std::string> by_name = job, local = job;
  by_name.insert(by_name.end(), {"--gpu", "RTX-4090"});
  local.insert(local.end(), {"--gpu", "local"});
  const testing::CliRun named = testing::Cli(by_name);
  ASSERT_EQ(named.code, 0) << named.err;
  const nlohmann::json n = nlohmann::json::parse(named.out);
  const int64_t total = n["devices"][0]["total_bytes"].get<int64_t>();
  ASSERT_GT(total, int64_t{21564} * kMiB);  // the job sits in the 3000 MiB others hold
  ASSERT_LT(total, int64_t{24564} * kMiB);
  FakeNvidiaSmi smi("NVIDIA GeForce RTX 4090, 24564, 3000\n");
  const testing::CliRun mine = testing::Cli(local);
  ASSERT_EQ(mine.code, 3) << mine.err;
  const nlohmann::json m = nlohmann::json::parse(mine.out);
  EXPECT_EQ(m["devices"][0]["total_bytes"].get<int64_t>(), total + int64_t{3000} * kMiB);
  EXPECT_FALSE(m["fits"].get<bool>());
  EXPECT_NE(mine.out.find("other_processes"), std::string::npos);
  EXPECT_NE(mine.out.find("NVIDIA GeForce RTX 4090 as nvidia-smi reports it: 23.99 GiB, of which 2.93 GiB is "
                          "already in use by other processes"),
            std::string::npos)
      << mine.out;
}

// vLLM's gpu_worker checks at start-up that the free memory covers
// gpu_memory_utilization x total, with total as torch sees it (24564 MiB
// less the 464 MiB driver reserve vramfit assumes without a cudaMemGetInfo
// figure: 23.54 GiB; x 0.9 = 21.18 GiB); free is 23.54 less the 0.61 GiB
// CUDA context and the 2.93 GiB (3000 MiB) others hold = 20.0 GiB.
TEST(LocalGpusTest, VllmRefusesToStartWhenOthersHoldTooMuch) {
  FakeNvidiaSmi smi("NVIDIA GeForce RTX 4090, 24564, 3000\n");
  const testing::CliRun r = testing::Cli(
      {"infer", "meta-llama/Llama-3.1-8B", "--runtime", "vllm", "--max-model-len", "8192", "--gpu", "local", "--json"});
  ASSERT_EQ(r.code, 3) << r.err;
  const nlohmann::json e = nlohmann::json::parse(r.out);
  EXPECT_EQ(e["failure"]["kind"], "free_memory_below_request");
  EXPECT_NE(e["failure"]["message"].get<std::string>().find("Free memory on device (20.0/23.54 GiB) on startup is "
                                                              "less than desired GPU memory utilization (0.9, 21.18 GiB)"),
            std::string::npos)
      << e["failure"]["message"];
  EXPECT_NE(e["failure"]["message"].get<std::string>().find("2.93 GiB is held by other processes"), std::string::npos);
  // With the memory free, the same job starts.
  const testing::CliRun named = testing::Cli(
      {"infer", "meta-llama/Llama-3.1-8B", "--runtime", "vllm", "--max-model-len", "8192", "--gpu", "RTX-4090"});
  EXPECT_EQ(named.code, 0) << named.out;
}

TEST(LocalGpusTest, NoGpuIsOneLine) {
  FakeNvidiaSmi smi("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n", 9);
  const testing::CliRun r = testing::Cli({"infer", "meta-llama/Llama-3.1-8B", "--gpu", "local"});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("--gpu local: no GPU found (NVML: skipped (VRAMFIT_NVML_LIBRARY=none); nvidia-smi: "
                       "exited with status 9)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
}

TEST(LocalGpusTest, TheWebApiRefusesLocal) {
  auto d = app::ToDevices(std::vector<std::string>{"local"}, GpuCatalog::Builtin(), 8);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().message.find("the web API does not read the server's GPUs"), std::string::npos);
}

TEST(LocalGpusTest, GarbageFromNvidiaSmiIsAnError) {
  FakeNvidiaSmi smi("<html>not a GPU</html>\n");
  const testing::CliRun r = testing::Cli({"infer", "meta-llama/Llama-3.1-8B", "--gpu", "local"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("--gpu local: nvidia-smi line 1: expected 'NAME, TOTAL_MIB, USED_MIB'"), std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace vramfit
