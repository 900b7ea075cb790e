// The `sglang` runtime (src/core/runtimes/sglang.cc): SGLang 0.5's defaults
// (server_args.py _handle_gpu_memory_settings, PR #10975), its pool
// (model_runner_kv_cache_mixin.py at 226149ac) and its start-up failures.
#include <gtest/gtest.h>

#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "core/runtimes/sglang_steps.h"
#include "test_util.h"

namespace vramfit {
namespace {

using testing::CatalogModelOrDie;
using testing::ComponentBytes;
using testing::Gpus;
namespace sg = runtimes::sglang;

InferenceSettings Sglang() {
  InferenceSettings s;
  s.runtime = Runtime::kSglang;
  return s;
}

Result<Estimate> EstimateSglangJob(const Model& m, const InferenceSettings& s, const DeviceSet& d) {
  auto w = ResolveInference(m, s, d, nullptr);
  if (!w.ok()) return w.error();
  return EstimateInference(m, *w, d);
}

// The GPU-size buckets and the reserve rule, by hand from server_args.py:
// H100-80GB (81559 MiB): 512 + 8192 x 1.5 + 256 x 2 + 1 / 8 x 1024 = 13440
// MiB, f = round(68119 / 81559, 3) = 0.835 (SGLang's CI logs print 0.835 for
// tp 1 on an 80 GB GPU); tp 4: 512 + 12288 + 1024 + 512 = 14336, f = 0.824.
// RTX-4090 (24564 MiB): 512 + 3072 + 48 + 128 = 3760, f = 0.847. A 16 GB card
// (16384 MiB): 512 + 3072 + 16 + 128 = 3728, f = 0.772. No GPU: 0.88.
TEST(SglangStepsTest, DefaultsAndReserve) {
  EXPECT_EQ(sg::DefaultsFor(81559, 1).chunked_prefill_size, 8192);
  EXPECT_EQ(sg::DefaultsFor(81559, 1).cuda_graph_max_bs, 256);
  EXPECT_EQ(sg::DefaultsFor(81559, 4).cuda_graph_max_bs, 512);
  EXPECT_EQ(sg::DefaultsFor(24564, 1).chunked_prefill_size, 2048);
  EXPECT_EQ(sg::DefaultsFor(24564, 1).cuda_graph_max_bs, 24);
  EXPECT_EQ(sg::DefaultsFor(24564, 4).cuda_graph_max_bs, 80);
  EXPECT_EQ(sg::DefaultsFor(16384, 1).cuda_graph_max_bs, 8);
  EXPECT_EQ(sg::DefaultsFor(std::nullopt, 1).chunked_prefill_size, 4096);
  EXPECT_DOUBLE_EQ(sg::ReservedMib(81559, 8192, 256, 1, 1), 13440);
  EXPECT_DOUBLE_EQ(sg::DefaultMemFraction(81559, 8192, 256, 1, 1), 0.835);
  EXPECT_DOUBLE_EQ(sg::DefaultMemFraction(81559, 8192, 512, 4, 1), 0.824);
  EXPECT_DOUBLE_EQ(sg::DefaultMemFraction(24564, 2048, 24, 1, 1), 0.847);
  EXPECT_DOUBLE_EQ(sg::DefaultMemFraction(16384, 2048, 8, 1, 1), 0.772);
  // Above 60 GiB the reserve is at least 10 GiB: a small chunk gives 10240.
  EXPECT_DOUBLE_EQ(sg::ReservedMib(81559, 2048, 8, 1, 1), 10240);
  EXPECT_DOUBLE_EQ(sg::DefaultMemFraction(std::nullopt, 4096, 160, 1, 1), 0.88);
}

// Cell sizes: Llama-3.1-8B 8 KV heads x (128 + 128) x 32 layers x 2 B =
// 131072 B per token; at tp 4, 2 heads: 32768. DeepSeek-V2-Lite's MLA
// latent (512 + 64) x 27 layers x 2 B = 31104 B, whatever the tp.
TEST(SglangStepsTest, CellBytes) {
  const Model llama = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  EXPECT_EQ(sg::CellBytes(llama.spec, 1, DType::kBF16, 32), 131072);
  EXPECT_EQ(sg::CellBytes(llama.spec, 4, DType::kBF16, 32), 32768);
  EXPECT_EQ(sg::CellBytes(llama.spec, 1, DType::kF8E4M3, 32), 65536);
  const Model mla = CatalogModelOrDie("deepseek-ai/DeepSeek-V2-Lite");
  EXPECT_EQ(sg::CellBytes(mla.spec, 2, DType::kBF16, 27), 31104);
}

// profile_max_num_token by hand: 70 GiB free before, 15 GiB of weights, f
// 0.9: rest = 55 - 7 = 48 GiB = 393216 tokens of 128 KiB; page 64 rounds
// 393216 (a multiple already) and a 1000-byte cell floors. No room: <= 0.
TEST(SglangStepsTest, MaxTotalNumTokens) {
  const double gib = 1024.0 * 1024 * 1024;
  EXPECT_EQ(sg::MaxTotalNumTokens(70 * gib, 15 * gib, 0.9, 131072, 1), 393216);
  EXPECT_EQ(sg::MaxTotalNumTokens(70 * gib, 15 * gib, 0.9, 131072, 64), 393216);
  EXPECT_EQ(sg::MaxTotalNumTokens(70 * gib, 15 * gib, 0.9, 131072 * 3, 64), 131072);
  EXPECT_LE(sg::MaxTotalNumTokens(20 * gib, 19 * gib, 0.9, 131072, 1), 0);
  EXPECT_EQ(sg::DefaultMaxNumReqs(443692, 131072), 2048);  // 1733 -> at least 2048
  EXPECT_EQ(sg::DefaultMaxNumReqs(1000000, 4096), 4096);   // 125000 -> at most 4096
  const std::vector<int64_t> sizes = sg::CaptureSizes(256);
  EXPECT_EQ(sizes.size(), 36u);  // 1 2 4 8 12, 16..256 step 8 (31)
  EXPECT_EQ(sizes.back(), 256);
  EXPECT_EQ(sg::CaptureSizes(8).size(), 4u);
}

// sgl-project/sglang#4760 (bench/truth/vllm.sglang.jsonl SG01): Llama-3.1-8B
// on one 80 GB Hopper GPU at 0.88 logs "#tokens: 442750, K size: 27.02 GB,
// V size: 27.02 GB". vramfit: 443692 (+0.2%). The breakdown: K = V =
// (#tokens + 1) x 8 x 128 x 32 x 2 B; req_to_token 2048 x 131076 x 4 B.
TEST(SglangRuntimeTest, PublishedLlama8bPool) {
  const Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  InferenceSettings s = Sglang();
  s.sglang.mem_fraction_static = 0.88;
  auto e = EstimateSglangJob(m, s, Gpus("H100-80GB"));
  ASSERT_TRUE(e.ok()) << e.error().message;
  ASSERT_TRUE(e->kv_capacity_tokens.has_value());
  const int64_t tokens = *e->kv_capacity_tokens;
  EXPECT_NEAR(static_cast<double>(tokens), 442750.0, 442750.0 * 0.01);
  const DeviceEstimate& d = e->devices[0];
  EXPECT_EQ(ComponentBytes(d, "kv_cache"), (tokens + 1) * 131072);
  EXPECT_EQ(ComponentBytes(d, "req_to_token_pool"), 2048LL * 131076 * 4);
  EXPECT_EQ(e->fits, std::optional<bool>(true));
  EXPECT_EQ(*e->kv_max_concurrency, tokens / 131072);
}

// vllm-project/vllm#21348 (truth V08): Qwen3-235B-A22B-FP8, tp 4 on H100s at
// 0.93: "#tokens: 367404" per GPU; vramfit 382668 (+4.2%, the TP4 NCCL
// buffers beyond the TP2 figure, docs/estimation.md 13.4).
TEST(SglangRuntimeTest, PublishedQwen235bTp4) {
  const Model m = CatalogModelOrDie("Qwen/Qwen3-235B-A22B");
  InferenceSettings s = Sglang();
  s.sglang.mem_fraction_static = 0.93;
  s.quant = *ParseWeightFormat("fp8-block");
  s.tp = 4;
  auto e = EstimateSglangJob(m, s, Gpus("H100-80GBx4"));
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_NEAR(static_cast<double>(*e->kv_capacity_tokens), 367404.0, 367404.0 * 0.05);
  ASSERT_EQ(e->devices.size(), 4u);
}

// Settings SGLang refuses or vramfit does not model for it: one line each.
TEST(SglangRuntimeTest, Refusals) {
  const Model llama = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  InferenceSettings s = Sglang();
  s.sglang.context_length = 262144;
  auto e = EstimateSglangJob(llama, s, Gpus("H100-80GB"));
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message,
            "--context-length: 262144 is greater than the derived context_length 131072 of the model's config; "
            "SGLang refuses it unless SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN=1");
  const Model gemma = CatalogModelOrDie("google/gemma-3-12b-it");
  auto g = EstimateSglangJob(gemma, Sglang(), Gpus("H100-80GB"));
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().kind, ErrorKind::kUnsupported);
  EXPECT_NE(g.error().message.find("hybrid pools"), std::string::npos) << g.error().message;
  auto two = EstimateSglangJob(llama, Sglang(), Gpus("H100-80GBx2"));
  ASSERT_FALSE(two.ok());
  EXPECT_EQ(two.error().message.rfind("--gpu: 2 GPUs given; SGLang uses one", 0), 0u);
  // vLLM's knobs do not apply to SGLang (and SGLang's to vLLM): exit 2.
  std::ostringstream out, err;
  EXPECT_EQ(cli::Run({"infer", "meta-llama/Llama-3.1-8B", "--runtime", "sglang", "--max-model-len", "8192"}, out,
                     err),
            2);
  EXPECT_EQ(err.str(), "vramfit: error: --max-model-len: applies to --runtime vllm, not sglang\n");
  std::ostringstream out2, err2;
  EXPECT_EQ(cli::Run({"infer", "meta-llama/Llama-3.1-8B", "--runtime", "vllm", "--mem-fraction-static", "0.8"},
                     out2, err2),
            2);
  EXPECT_EQ(err2.str(), "vramfit: error: --mem-fraction-static: applies to --runtime sglang, not vllm\n");
}

// Llama-3.1-70B bf16 on one H100: 131.5 GiB of weights exceed the free
// memory: CUDA OOM while loading, as an estimate that does not fit, exit 3,
// with the fixes' settings; at f 0.5, Llama-3.1-8B's 15 GiB leave nothing
// of 0.5 x 78.6 GiB: "Not enough memory".
TEST(SglangRuntimeTest, StartupFailuresAreEstimates) {
  std::ostringstream out, err;
  const int code = cli::Run(
      {"infer", "meta-llama/Llama-3.1-70B", "--runtime", "sglang", "--gpu", "H100-80GB", "--json"}, out, err);
  EXPECT_EQ(code, 3);
  const nlohmann::json j = nlohmann::json::parse(out.str());
  EXPECT_EQ(j["fits"], false);
  EXPECT_EQ(j["failure"]["kind"], "oom_loading_weights");
  bool tp_fix = false;
  for (const auto& f : j["fixes"]) {
    if (f["change"] == "--gpu H100-80GBx2 --tp 2") tp_fix = f["settings"]["tp"] == "2";
  }
  EXPECT_TRUE(tp_fix) << j["fixes"].dump(1);

  const Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  InferenceSettings s = Sglang();
  s.sglang.mem_fraction_static = 0.15;
  auto e = EstimateSglangJob(m, s, Gpus("H100-80GB"));
  ASSERT_TRUE(e.ok()) << e.error().message;
  ASSERT_TRUE(e->failure.has_value());
  EXPECT_EQ(e->failure->kind, "not_enough_memory");
  EXPECT_EQ(e->failure->message.rfind("sglang: gpu0: RuntimeError: Not enough memory. Please try to increase "
                                      "--mem-fraction-static. Current value: self.server_args.mem_fraction_static=0.15",
                                      0),
            0u)
      << e->failure->message;
  EXPECT_EQ(e->fits, std::optional<bool>(false));
  EXPECT_EQ(*e->kv_capacity_tokens, 0);
}

// --print-flags: the whole `python -m sglang.launch_server` command with
// the settings that realise the estimate.
TEST(SglangRuntimeTest, PrintFlags) {
  std::ostringstream out, err;
  EXPECT_EQ(cli::Run({"infer", "meta-llama/Llama-3.1-8B", "--runtime", "sglang", "--gpu", "H100-80GBx2", "--tp",
                      "2", "--context-length", "32768", "--kv-cache-dtype", "fp8_e4m3", "--print-flags"},
                     out, err),
            0)
      << err.str();
  // tp 2: reserved 512 + 12288 + 512 + 256 = 13568 -> f = round(67991 / 81559, 3) = 0.834.
  EXPECT_EQ(out.str(),
            "python -m sglang.launch_server --model-path meta-llama/Llama-3.1-8B --mem-fraction-static 0.834 "
            "--context-length 32768 --chunked-prefill-size 8192 --cuda-graph-max-bs 256 --tp-size 2 "
            "--kv-cache-dtype fp8_e4m3\n");
}

}  // namespace
}  // namespace vramfit
