// The planner: every answer fits and one step beyond does not; answers are
// monotone in GPU memory; ladders are ordered.
#include <gtest/gtest.h>

#include "test_util.h"
#include "vramfit/plan.h"

namespace vramfit {
namespace {

using testing::CatalogModelOrDie;
using testing::Gpus;

bool FitsAt(const Model& m, Job job, const DeviceSet& d, Solve solve, int64_t v) {
  if (solve == Solve::kMaxBatch) {
    if (job.training) job.train.batch = v;
    else job.infer.batch = v;
  } else if (job.training) {
    job.train.seq = v;
  } else {
    job.infer.ctx = v;
    if (job.infer.runtime == Runtime::kVllm) job.infer.vllm.max_model_len = v;
  }
  auto e = EstimateJob(m, job, d);
  return e.ok() && Fits(*e, job);
}

// Property: for several models, GPUs and both questions, the answer fits
// and answer + 1 does not (unless the answer is the search ceiling).
TEST(PlanTest, BoundariesAreExact) {
  const char* models[] = {"meta-llama/Llama-3.1-8B", "Qwen/Qwen3-30B-A3B", "google/gemma-3-27b-it",
                          "mistralai/Mistral-7B-v0.1", "deepseek-ai/DeepSeek-V2-Lite", "openai/gpt-oss-20b"};
  const char* gpus[] = {"RTX-4090", "A100-80GB", "H100-80GBx2"};
  int checked = 0;
  for (const char* id : models) {
    Model m = CatalogModelOrDie(id);
    for (const char* g : gpus) {
      const DeviceSet d = Gpus(g);
      for (bool training : {false, true}) {
        for (Solve solve : {Solve::kMaxBatch, Solve::kMaxContext}) {
          Job job;
          job.training = training;
          if (training) job.train.method = TrainMethod::kQlora;
          else job.infer.ctx = 2048;
          auto a = Plan(m, job, d, solve);
          ASSERT_TRUE(a.ok()) << a.error().message;
          if (!a->found) {
            EXPECT_FALSE(FitsAt(m, job, d, solve, 1)) << id << " " << g;
            continue;
          }
          ++checked;
          EXPECT_TRUE(FitsAt(m, job, d, solve, a->number)) << id << " " << g << " " << SolveName(solve);
          const int64_t ceiling = solve == Solve::kMaxContext ? m.spec.max_position_embeddings : kMaxBatch;
          if (a->number < ceiling) {
            EXPECT_FALSE(FitsAt(m, job, d, solve, a->number + 1)) << id << " " << g << " " << SolveName(solve);
            ASSERT_TRUE(a->next.has_value());
          }
        }
      }
    }
  }
  EXPECT_GE(checked, 40);
}

// More GPU memory never gives a smaller answer.
TEST(PlanTest, MonotoneInGpuMemory) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  for (Solve solve : {Solve::kMaxBatch, Solve::kMaxContext}) {
    int64_t prev = 0;
    for (const char* g : {"T4", "RTX-4090", "L40S", "A100-80GB", "H200"}) {
      Job job;
      job.infer.ctx = 1024;
      auto a = Plan(m, job, Gpus(g), solve);
      ASSERT_TRUE(a.ok());
      EXPECT_GE(a->number, prev) << g << " " << SolveName(solve);
      prev = a->number;
    }
  }
}

TEST(PlanTest, MinGpusIsMinimal) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-70B");
  Job job;
  job.infer.ctx = 8192;
  auto a = Plan(m, job, Gpus("RTX-4090"), Solve::kMinGpus);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(a->found);
  // bf16 70B (131.4 GiB of weights) needs at least 6 x 24 GiB cards.
  EXPECT_GE(a->number, 6);
  ASSERT_GE(a->ladder.size(), 2u);
  EXPECT_TRUE(a->ladder.back().fits);
  EXPECT_FALSE(a->ladder[a->ladder.size() - 2].fits);
  // Training: Llama-3.1-8B full fine-tune on 80 GB cards needs sharding.
  Job t;
  t.training = true;
  auto b = Plan(CatalogModelOrDie("meta-llama/Llama-3.1-8B"), t, Gpus("H100-80GB"), Solve::kMinGpus);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->found);
  EXPECT_GE(b->number, 2);
  EXPECT_NE(b->value.find("zero"), std::string::npos) << b->value;
}

// A mixed --gpu list is the GPUs the user has: min-gpus answers the
// smallest subset of them that fits, and says so when all of them do not.
TEST(PlanTest, MinGpusOverAMixedSetPicksTheSmallestSubset) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-70B");
  Job job;
  job.infer.runtime = Runtime::kLlamaCpp;
  job.infer.quant = *ParseWeightFormat("Q4_K_M");
  job.infer.ctx = 8192;
  // Q4_K_M 70B is ~40 GiB of weights (llama.cpp prints 39.59 GiB): more
  // than one 24 GiB card, less than one 80 GB card.
  auto a = Plan(m, job, Gpus("RTX-4090x2,H100-80GB"), Solve::kMinGpus);
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(a->found) << a->reason;
  EXPECT_EQ(a->number, 1);
  EXPECT_EQ(a->value, "1 x H100-80GB (1 GPU)");
  // Without the H100, both 4090s are needed, with layers split by memory.
  auto b = Plan(m, job, Gpus("RTX-4090x3,RTX-3060"), Solve::kMinGpus);
  ASSERT_TRUE(b.ok()) << b.error().message;
  ASSERT_TRUE(b->found) << b->reason;
  EXPECT_EQ(b->number, 2);
  EXPECT_EQ(b->value, "2 x RTX-4090 (layer split)");
  ASSERT_TRUE(b->estimate.has_value());
  EXPECT_EQ(b->estimate->devices.size(), 2u);
  EXPECT_TRUE(b->estimate->fits.value_or(false));
  // Every smaller subset tried first did not fit.
  for (size_t i = 0; i + 1 < b->ladder.size(); ++i) EXPECT_FALSE(b->ladder[i].fits) << b->ladder[i].option;
  // A set that cannot hold it at all.
  auto c = Plan(m, job, Gpus("RTX-3060,RTX-4060-Ti-8GB"), Solve::kMinGpus);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_FALSE(c->found);
  EXPECT_EQ(c->reason, "all 2 GPUs given (1 x RTX-3060 + 1 x RTX-4060-Ti-8GB) together do not fit");
}

// vLLM refusing to start at the model's full length (Llama-3.1-8B: 131072
// tokens need 16 GiB of KV; a 4090 has ~5 GiB left after the weights) is a
// "does not fit", not a bad setting: max-context searches below it.
TEST(PlanTest, VllmMaxContextBelowTheModelsLength) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  Job job;
  job.infer.runtime = Runtime::kVllm;
  auto full = EstimateJob(m, job, Gpus("RTX-4090"));
  ASSERT_TRUE(full.ok()) << full.error().message;
  EXPECT_EQ(full->fits, std::optional<bool>(false));
  ASSERT_TRUE(full->failure.has_value());
  EXPECT_EQ(full->failure->kind, "kv_below_one_request");
  auto a = Plan(m, job, Gpus("RTX-4090"), Solve::kMaxContext);
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(a->found) << a->reason;
  // 131072 x 128 KiB = 16 GiB does not fit; 8192 x 128 KiB = 1 GiB does.
  EXPECT_GT(a->number, 8192);
  EXPECT_LT(a->number, 131072);
  EXPECT_TRUE(FitsAt(m, job, Gpus("RTX-4090"), Solve::kMaxContext, a->number));
  EXPECT_FALSE(FitsAt(m, job, Gpus("RTX-4090"), Solve::kMaxContext, a->number + 1));
}

TEST(PlanTest, BestQuantTakesTheHighestFidelityThatFits) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-70B");
  Job job;
  job.infer.ctx = 4096;
  auto a = Plan(m, job, Gpus("A100-80GB"), Solve::kBestQuant);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(a->found);
  // bf16 (131 GiB) cannot fit 80 GB; fp8 (~66 GiB of weights) can.
  EXPECT_EQ(a->value, "fp8");
  EXPECT_EQ(a->settings, (std::vector<std::pair<std::string, std::string>>{{"quant", "fp8"}}));
  EXPECT_EQ(a->ladder[0].option, "unquantized (--quant none)");
  EXPECT_FALSE(a->ladder[0].fits);
  EXPECT_NE(a->reason.find("runner-up"), std::string::npos) << a->reason;
}

// Issue #6 acceptance: best-method for Llama-3.1-8B on an RTX 4090 at 4096
// tokens answers with reasons for every better setting.
TEST(PlanTest, BestMethodExplainsEachBetterOption) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  Job job;
  job.training = true;
  job.train.seq = 4096;
  auto a = Plan(m, job, Gpus("RTX-4090"), Solve::kBestMethod);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(a->found);
  EXPECT_EQ(a->ladder.front().option, "full + adamw + grad-ckpt none");
  EXPECT_FALSE(a->ladder.front().fits);
  EXPECT_TRUE(a->ladder.back().fits);
  // The answer as flags (what `fit` prints under "flags:" and the page applies).
  EXPECT_EQ(a->value, "qlora + adamw + grad-ckpt full");
  EXPECT_EQ(a->settings, (std::vector<std::pair<std::string, std::string>>{
                             {"method", "qlora"}, {"optimizer", "adamw"}, {"grad-ckpt", "full"},
                             {"batch", "1"}, {"grad-accum", "1"}}));
  for (size_t i = 0; i + 1 < a->ladder.size(); ++i) {
    EXPECT_FALSE(a->ladder[i].fits);
    EXPECT_NE(a->ladder[i].reason.find("over the"), std::string::npos) << a->ladder[i].reason;
  }
}

TEST(PlanTest, FixesRankWhatFitsFirst) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  Job job;
  job.infer.ctx = 32768;
  job.infer.batch = 8;
  const DeviceSet d = Gpus("RTX-4090");
  auto e = EstimateJob(m, job, d);
  ASSERT_TRUE(e.ok());
  ASSERT_FALSE(*e->fits);
  auto fixes = SuggestFixes(m, job, d, *e);
  ASSERT_FALSE(fixes.empty());
  bool seen_non_fit = false;
  for (const Fix& f : fixes) {
    if (!f.fits) seen_non_fit = true;
    else EXPECT_FALSE(seen_non_fit) << "fitting fixes come first";
    EXPECT_EQ(f.saves, e->total - f.total);
  }
}

TEST(PlanTest, Errors) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  Job job;
  EXPECT_EQ(Plan(m, job, {}, Solve::kMaxBatch).error().message,
            "--solve max-batch: give the GPUs to plan for with --gpu");
  EXPECT_EQ(Plan(m, job, Gpus("T4"), Solve::kBestMethod).error().message,
            "--solve best-method: applies to training (vramfit fit ... --method ...)");
  EXPECT_EQ(ParseSolve("cheapest").error().message,
            "--solve: unknown question 'cheapest' (expected max-batch, max-context, min-gpus, best-quant or best-method)");
}

TEST(PlanTest, ThroughputFromBandwidth) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  Job job;
  job.infer.ctx = 1;
  const DeviceSet d = Gpus("H100-80GB");
  auto e = EstimateJob(m, job, d);
  ASSERT_TRUE(e.ok());
  auto t = EstimateThroughput(m, *e, d);
  ASSERT_TRUE(t.has_value());
  // 16.06 GB of bf16 weights read per token at 80% of 3,350 GB/s: ~167 tok/s.
  EXPECT_NEAR(t->decode_tokens_per_s, 0.8 * 3350e9 / 16060522496.0, 2.0);
}

// vLLM's pool is larger than what a sequence holds: a decode step reads the
// weights and the KV of the tokens held (one sequence of max_model_len),
// never the whole pool (131072 B per token for Llama-3.1-8B bf16).
TEST(PlanTest, VllmDecodeReadsTheTokensHeldNotThePool) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  Job job;
  job.infer.runtime = Runtime::kVllm;
  job.infer.vllm.max_model_len = 8192;
  const DeviceSet d = Gpus("H100-80GB");
  auto e = EstimateJob(m, job, d);
  ASSERT_TRUE(e.ok()) << e.error().message;
  auto t = EstimateThroughput(m, *e, d);
  ASSERT_TRUE(t.has_value());
  const double weights = static_cast<double>(testing::ComponentBytes(e->devices[0], "weights"));
  EXPECT_NEAR(t->decode_tokens_per_s, 0.8 * 3350e9 / (weights + 8192.0 * 131072), 0.5);
  // The batch figure: as many 8192-token sequences as the pool holds.
  const int64_t seqs = *e->kv_capacity_tokens / 8192;
  EXPECT_GT(t->decode_batch_tokens_per_s, 10 * t->decode_tokens_per_s);
  EXPECT_LT(t->decode_batch_tokens_per_s, static_cast<double>(seqs) * t->decode_tokens_per_s);
}

// SGLang's pool, like vLLM's, holds many sequences: a decode step reads the
// KV of one context_length sequence (131072 B per token for Llama-3.1-8B
// bf16), not the pool and not zero tokens.
TEST(PlanTest, SglangDecodeReadsOneContextLengthSequence) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  Job job;
  job.infer.runtime = Runtime::kSglang;
  job.infer.sglang.context_length = 8192;
  const DeviceSet d = Gpus("H100-80GB");
  auto e = EstimateJob(m, job, d);
  ASSERT_TRUE(e.ok()) << e.error().message;
  auto t = EstimateThroughput(m, *e, d);
  ASSERT_TRUE(t.has_value());
  const double weights = static_cast<double>(testing::ComponentBytes(e->devices[0], "weights"));
  EXPECT_NEAR(t->decode_tokens_per_s, 0.8 * 3350e9 / (weights + 8192.0 * 131072), 0.5);
  EXPECT_GT(t->decode_batch_tokens_per_s, 10 * t->decode_tokens_per_s);
}

// vLLM refuses to start Llama-3.1-8B at its full 131072 context on a 24 GB
// card (the KV of one request does not fit): no decode speed for it.
TEST(PlanTest, NoThroughputForAnEngineThatDoesNotStart) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  Job job;
  job.infer.runtime = Runtime::kVllm;
  const DeviceSet d = Gpus("RTX-4090");
  auto e = EstimateJob(m, job, d);
  ASSERT_TRUE(e.ok()) << e.error().message;
  ASSERT_TRUE(e->failure.has_value());
  EXPECT_FALSE(EstimateThroughput(m, *e, d).has_value());
}

// Layers left in host memory are read at the host's bandwidth after the GPU
// layers: without --host-mem-bw there is no decode figure, and with it a
// partly offloaded model is slower than the same model fully offloaded.
TEST(PlanTest, PartialOffloadIsNeverFasterThanFullOffload) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-70B");
  Job job;
  job.infer.runtime = Runtime::kLlamaCpp;
  auto q = ParseWeightFormat("Q4_K_M");
  ASSERT_TRUE(q.ok());
  job.infer.quant = *q;
  const DeviceSet d = Gpus("RTX-4090");
  job.infer.llamacpp.gpu_layers = 40;
  auto part = EstimateJob(m, job, d);
  ASSERT_TRUE(part.ok()) << part.error().message;
  EXPECT_FALSE(EstimateThroughput(m, *part, d).has_value());
  job.infer.llamacpp.host_mem_bw = 89.6;
  part = EstimateJob(m, job, d);
  ASSERT_TRUE(part.ok());
  auto slow = EstimateThroughput(m, *part, d);
  job.infer.llamacpp.gpu_layers.reset();  // all layers on the GPU (it does not fit, but is the ceiling)
  auto full = EstimateJob(m, job, d);
  ASSERT_TRUE(full.ok());
  auto fast = EstimateThroughput(m, *full, d);
  ASSERT_TRUE(slow.has_value() && fast.has_value());
  EXPECT_LT(slow->decode_tokens_per_s, fast->decode_tokens_per_s);
  // 41 of 80 layers (~20 GiB of Q4_K_M) on the host at 80% of 89.6 GB/s
  // bound it near 3 tok/s.
  EXPECT_LT(slow->decode_tokens_per_s, 4.0);
}

}  // namespace
}  // namespace vramfit
