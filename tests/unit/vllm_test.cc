// The vllm runtime (vLLM 0.11 V1 start-up profile): exact arithmetic on a
// small model, KV capacity and concurrency for dense, MoE, MLA and
// sliding-window models, tensor/pipeline parallel, the start-up errors
// vLLM raises (exact text), monotonicity, and published measurements.
// Formulas and sources: docs/estimation.md "vllm runtime" and
// docs/research/vllm.md.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "test_util.h"

namespace vramfit {
namespace {

using testing::CatalogModelOrDie;
using testing::ComponentBytes;
using testing::EstimateOrDie;
using testing::Gpus;

double Gib(int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0); }

InferenceSettings Vllm() {
  InferenceSettings s;
  s.runtime = Runtime::kVllm;
  return s;
}

// The error EstimateInference returns (after a successful ResolveInference),
// or vLLM's start-up failure, which is an estimate that does not fit.
std::string EstimateError(const Model& m, const InferenceSettings& s, const DeviceSet& d) {
  auto w = ResolveInference(m, s, d, nullptr);
  if (!w.ok()) return "resolve: " + w.error().message;
  auto e = EstimateInference(m, *w, d);
  if (!e.ok()) return e.error().message;
  if (e->failure) {
    EXPECT_EQ(e->fits, std::optional<bool>(false)) << "a start-up failure is an estimate that does not fit";
    return e->failure->message;
  }
  return "(no error)";
}

// Resolves and estimates into *out (checking parent == sum of children);
// a failure, or an estimate without a KV pool, fails the calling ASSERT
// with vLLM's message instead of leaving an empty estimate to dereference.
::testing::AssertionResult EstimateInto(const Model& m, const InferenceSettings& s, const DeviceSet& d, Estimate* out) {
  auto w = ResolveInference(m, s, d, nullptr);
  if (!w.ok()) return ::testing::AssertionFailure() << "resolve: " << w.error().message;
  auto e = EstimateInference(m, *w, d);
  if (!e.ok()) return ::testing::AssertionFailure() << e.error().message;
  if (e->failure) return ::testing::AssertionFailure() << e->failure->message;
  if (!e->kv_capacity_tokens || !e->kv_max_concurrency || e->devices.empty()) {
    return ::testing::AssertionFailure() << "estimate without a KV pool";
  }
  *out = EstimateOrDie(m, s, d);
  return ::testing::AssertionSuccess();
}

const Component* Child(const Component* c, const std::string& name) {
  if (c == nullptr) return nullptr;
  for (const Component& ch : c->children) {
    if (ch.name == name) return &ch;
  }
  return nullptr;
}

// "Maximum concurrency ..." as vLLM computes it, from the estimate's notes.
std::string Note(const Estimate& e, const std::string& prefix) {
  for (const std::string& n : e.notes) {
    if (n.rfind(prefix, 0) == 0) return n;
  }
  return {};
}

// SmolLM2-135M (hidden 576, inter 1536, 30 layers, 9 heads / 3 KV heads of
// 64, vocab 49152, tied, bf16, max_position_embeddings 8192; 134,515,008
// params) on an A10G (cudaMemGetInfo total 22587 MiB, catalog), util 0.5,
// max_model_len 2048, --enforce-eager. A10G is < 70 GiB, so `vllm serve`
// defaults to max_num_batched_tokens 2048 and max_num_seqs 256
// (EngineArgs.get_batch_defaults). Every term: docs/estimation.md.
TEST(VllmRuntimeTest, SmallModelByHand) {
  Model m = CatalogModelOrDie("HuggingFaceTB/SmolLM2-135M");
  InferenceSettings s = Vllm();
  s.vllm.gpu_memory_utilization = 0.5;
  s.vllm.max_model_len = 2048;
  s.vllm.enforce_eager = true;
  Estimate e;
  ASSERT_TRUE(EstimateInto(m, s, Gpus("A10G"), &e));
  ASSERT_EQ(e.devices.size(), 1u);
  const DeviceEstimate& d = e.devices[0];

  const int64_t total = 22587LL * 1024 * 1024;
  const int64_t requested = total / 2;                       // total x util (exact here)
  const int64_t weights = 134515008LL * 2 + 8192LL * 64 * 2;  // params x bf16 + RoPE cos/sin cache
  // Profile run: 2048 tokens over min(256, 2048) = 256 dummy requests. The
  // sampler on 256 rows beats the forward pass (2 x 2048 x 576 x 2 B
  // residual + 3 x 1536 x 2048 x 2 B MLP = 23.6 MB):
  const int64_t cells = 256LL * 49152;
  const int64_t sampler = (2048LL + 2 * 256) * 576 * 2  // hidden states kept
                          + cells * 2                   // bf16 logits (49152 is a multiple of 64)
                          + cells * 4                   // Sampler.forward fp32 copy
                          + cells * 12                  // sort: fp32 values + int64 indices
                          + cells * 20;                 // segmented_sort_pairs temporaries (>= 128 rows)
  const int64_t non_torch = 133LL * 1024 * 1024;
  const int64_t available = requested - weights - sampler - non_torch;
  const int64_t page = 16LL * 3 * (64 + 64) * 2;  // block x KV heads x (K + V head size) x bf16
  const int64_t num_blocks = available / page / 30;
  EXPECT_EQ(ComponentBytes(d, "weights"), weights);
  EXPECT_EQ(ComponentBytes(d, "activations"), sampler);
  EXPECT_EQ(d.peak_phase, "sampler");
  EXPECT_EQ(ComponentBytes(d, "non_torch"), non_torch);
  EXPECT_EQ(num_blocks, 29707);
  EXPECT_EQ(ComponentBytes(d, "kv_cache"), num_blocks * page * 30);
  EXPECT_EQ(ComponentBytes(d, "cuda_graphs"), 0);             // --enforce-eager
  EXPECT_EQ(ComponentBytes(d, "cuda_context"), 624LL << 20);  // 0.61 GiB before the snapshot
  ASSERT_TRUE(e.kv_capacity_tokens.has_value());
  EXPECT_EQ(*e.kv_capacity_tokens, num_blocks * 16);  // "GPU KV cache size: 475,312 tokens"
  EXPECT_EQ(*e.kv_max_concurrency, num_blocks / 128);  // 2048 / 16 blocks per request
  EXPECT_EQ(Note(e, "vLLM logs:"),
            "vLLM logs: GPU KV cache size: 475,312 tokens; Maximum concurrency for 2,048 tokens per "
            "request: 232.09x");
  EXPECT_EQ(d.allocated_peak->value(), weights + num_blocks * page * 30 + sampler);
  EXPECT_EQ(d.total.value(), d.allocated_peak->value() + non_torch + (624LL << 20));
  ASSERT_TRUE(e.fits.has_value());
  EXPECT_TRUE(*e.fits);
  std::string flags;
  for (const std::string& f : e.launch_flags) flags += (flags.empty() ? "" : " ") + f;
  EXPECT_EQ(flags,
            "--max-model-len 2048 --gpu-memory-utilization 0.5 --max-num-seqs 256 "
            "--max-num-batched-tokens 2048 --enforce-eager");
}

// CUDA graphs (no --enforce-eager): capture sizes [1, 2, 4] + 8..248 step 8
// + 256..512 step 16 up to min(2 x 256, 512) = 512 -> 51 PIECEWISE sizes of
// 30 + 1 pieces, and 35 FULL decode graphs (sizes <= max_num_seqs 256);
// 64 KiB per graph plus one layer's temporaries at 512 tokens. They are
// captured after the KV cache, so the pool is the same as with eager.
TEST(VllmRuntimeTest, CudaGraphsSitOutsideTheBudget) {
  Model m = CatalogModelOrDie("HuggingFaceTB/SmolLM2-135M");
  InferenceSettings s = Vllm();
  s.vllm.max_model_len = 2048;
  Estimate graphs;
  ASSERT_TRUE(EstimateInto(m, s, Gpus("A10G"), &graphs));
  s.vllm.enforce_eager = true;
  Estimate eager;
  ASSERT_TRUE(EstimateInto(m, s, Gpus("A10G"), &eager));
  const int64_t pool = 512LL * (2 * 576 + 3 * 1536) * 2;
  const int64_t execs = 51LL * 31 + 35;
  EXPECT_EQ(ComponentBytes(graphs.devices[0], "cuda_graphs"), pool + execs * 64 * 1024);
  EXPECT_EQ(*graphs.kv_capacity_tokens, *eager.kv_capacity_tokens);
  EXPECT_EQ(graphs.devices[0].total - eager.devices[0].total,
            Bytes(ComponentBytes(graphs.devices[0], "cuda_graphs")));
}

// Llama-3.1-8B on one H100, --max-model-len 16000 --block-size 128: the run
// of llm-d/llm-d-benchmark config_explorer/empirical-vllm-memory-results.md
// (vLLM 0.11.0): weights 14.99, peak activation 4.76, non-torch 0.13,
// available KV 51.38 GiB of 71.26 requested.
TEST(VllmRuntimeTest, DenseMatchesPublishedH100Run) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  InferenceSettings s = Vllm();
  s.vllm.max_model_len = 16000;
  s.vllm.block_size = 128;
  Estimate e;
  ASSERT_TRUE(EstimateInto(m, s, Gpus("H100-80GB"), &e));
  const DeviceEstimate& d = e.devices[0];
  EXPECT_NEAR(Gib(ComponentBytes(d, "weights")), 14.99, 0.01);
  EXPECT_NEAR(Gib(ComponentBytes(d, "activations")), 4.76, 0.05);
  EXPECT_NEAR(Gib(ComponentBytes(d, "non_torch")), 0.13, 0.005);
  EXPECT_NEAR(Gib(ComponentBytes(d, "kv_cache")), 51.38, 0.51);  // 1%
  // 8192 tokens over 1024 dummy requests: the sampler on 1024 rows of the
  // 128,256 vocab (38 B per cell) is the peak.
  EXPECT_EQ(d.peak_phase, "sampler");
  // 32 layers x 8 KV heads x 128 x 2 (K, V) x 2 B = 128 KiB per token: a
  // 128-token block of all layers is 16 MiB.
  const int64_t blocks = ComponentBytes(d, "kv_cache") / (128LL * 131072);
  EXPECT_EQ(ComponentBytes(d, "kv_cache"), blocks * 128 * 131072);
  EXPECT_EQ(*e.kv_capacity_tokens, blocks * 128);
  EXPECT_EQ(*e.kv_max_concurrency, blocks / 125);  // 16000 / 128 blocks per request
}

// The two start-up failures of the same llm-d runs (bench/truth/vllm.recorded.jsonl
// LD08, LD09; H100, util 0.9): Llama-3.3-70B FP8-dynamic on one GPU loads 67.72 GiB
// and leaves -1.44 GiB for the KV cache; Qwen3-32B at max_model_len 32000 has
// 4.45 GiB of KV (16000 tokens fit, LD07) where 32000 tokens need 7.81 GiB. Both
// are vLLM's own errors, as kind does_not_fit; TP 2 (LD03) starts.
TEST(VllmRuntimeTest, PublishedStartupFailures) {
  InferenceSettings s = Vllm();
  s.vllm.max_model_len = 16000;
  s.quant = *ParseWeightFormat("fp8");
  const Model llama = CatalogModelOrDie("meta-llama/Llama-3.3-70B-Instruct");
  auto w = ResolveInference(llama, s, Gpus("H100-80GB"), nullptr);
  ASSERT_TRUE(w.ok()) << w.error().message;
  auto e = EstimateInference(llama, *w, Gpus("H100-80GB"));
  ASSERT_TRUE(e.ok()) << e.error().message;
  ASSERT_TRUE(e->failure.has_value());
  EXPECT_EQ(e->fits, std::optional<bool>(false));
  EXPECT_EQ(e->failure->kind, "no_kv_memory");
  EXPECT_EQ(e->failure->device, "gpu0");
  EXPECT_EQ(e->failure->message.rfind("vllm: gpu0: No available memory for the cache blocks.", 0), 0u)
      << e->failure->message;
  // Nothing is left for the pool; the breakdown shows the KV one 16000-token
  // request needs (16000 x 320 KiB = 4.88 GiB: 80 layers x 8 KV heads x 128 x 2 x 2 B).
  EXPECT_EQ(*e->kv_capacity_tokens, 0);
  EXPECT_EQ(ComponentBytes(e->devices[0], "kv_cache"), 1000LL * 16 * 327680);
  s.tp = 2;
  Estimate two;
  ASSERT_TRUE(EstimateInto(llama, s, Gpus("H100-80GBx2"), &two));
  EXPECT_NEAR(Gib(ComponentBytes(two.devices[0], "kv_cache")), 32.0, 0.32);  // LD03: 32.0 GiB, 1%

  InferenceSettings q = Vllm();
  q.vllm.max_model_len = 32000;
  EXPECT_EQ(EstimateError(CatalogModelOrDie("Qwen/Qwen3-32B"), q, Gpus("H100-80GB"))
                .rfind("vllm: gpu0: To serve at least one request with the models's max seq len (32000), (7.81 GiB "
                       "KV cache is needed, which is larger than the available KV cache memory (4.50 GiB).",
                       0),
            0u);
}

// Qwen3-30B-A3B (48 layers, 4 KV heads of 128, vocab 151936, 128 experts,
// top-8) on one H100 at its max_model_len 40960: 96 KiB per token; 2560
// blocks of 16 per request.
TEST(VllmRuntimeTest, MoeCapacityAndConcurrency) {
  Model m = CatalogModelOrDie("Qwen/Qwen3-30B-A3B");
  Estimate e;
  ASSERT_TRUE(EstimateInto(m, Vllm(), Gpus("H100-80GB"), &e));
  const DeviceEstimate& d = e.devices[0];
  const int64_t page_all_layers = 16LL * 48 * 4 * 256 * 2;
  const int64_t kv = ComponentBytes(d, "kv_cache");
  ASSERT_EQ(kv % page_all_layers, 0);
  const int64_t blocks = kv / page_all_layers;
  EXPECT_EQ(*e.kv_capacity_tokens, blocks * 16);
  EXPECT_EQ(*e.kv_max_concurrency, blocks / 2560);
  // H100 defaults: 8192 tokens over 1024 requests; sampler peak on 1024 rows.
  const int64_t cells = 1024LL * 151936;
  EXPECT_EQ(ComponentBytes(d, "activations"),
            (8192LL + 2048) * 2048 * 2 + 1024LL * 151936 * 2 + cells * (4 + 12 + 20));
  // available = 0.9 x 81090 MiB - weights - activations - non-torch, in blocks.
  const int64_t available = static_cast<int64_t>(81090.0 * 1048576 * 0.9) - ComponentBytes(d, "weights") -
                            ComponentBytes(d, "activations") - ComponentBytes(d, "non_torch");
  EXPECT_EQ(blocks, available / (16LL * 4 * 256 * 2) / 48);
}

// DeepSeek-V2-Lite (MLA: kv_lora_rank 512 + qk_rope_head_dim 64 = 576 per
// token and layer, 27 layers). On an H100 FlashMLA forces block_size 64;
// the latent is replicated on every TP rank, so TP 2 keeps the same page
// and only gains the weights it no longer holds.
TEST(VllmRuntimeTest, MlaLatentCache) {
  Model m = CatalogModelOrDie("deepseek-ai/DeepSeek-V2-Lite");
  Estimate e;
  ASSERT_TRUE(EstimateInto(m, Vllm(), Gpus("H100-80GB"), &e));
  const DeviceEstimate& d = e.devices[0];
  const int64_t page = 64LL * 576 * 2;  // MLAAttentionSpec.page_size_bytes, bf16
  const int64_t kv = ComponentBytes(d, "kv_cache");
  ASSERT_EQ(kv % (page * 27), 0);
  const int64_t blocks = kv / (page * 27);
  EXPECT_EQ(*e.kv_capacity_tokens, blocks * 64);
  EXPECT_EQ(*e.kv_max_concurrency, blocks / (163840 / 64));
  EXPECT_NE(Child(Find(d.components, "kv_cache"), "latent"), nullptr);
  EXPECT_EQ(e.kv_bytes_per_token.value(), 27 * 576 * 2);

  InferenceSettings tp2 = Vllm();
  tp2.tp = 2;
  Estimate e2;
  ASSERT_TRUE(EstimateInto(m, tp2, Gpus("H100-80GBx2"), &e2));
  ASSERT_EQ(e2.devices.size(), 2u);
  const int64_t kv2 = ComponentBytes(e2.devices[0], "kv_cache");
  EXPECT_EQ(kv2 % (page * 27), 0);
  EXPECT_GT(kv2, kv);
  EXPECT_LT(ComponentBytes(e2.devices[0], "weights"), ComponentBytes(d, "weights"));
}

// gpt-oss-20b: 24 layers alternating sliding (window 128) and full
// attention. Hybrid grouping (kv_cache_utils._get_kv_cache_groups_uniform_page_size):
// 12 + 12 layers -> group_size 12, 2 groups sharing 12 pools. One request
// at 131072 tokens needs 8192 full blocks + cdiv(min(127 + 8192, 131072),
// 16) + 1 = 521 sliding blocks; the logged token count is num_blocks // 2 x 16.
TEST(VllmRuntimeTest, SlidingWindowHybridGroups) {
  Model m = CatalogModelOrDie("openai/gpt-oss-20b");
  Estimate e;
  ASSERT_TRUE(EstimateInto(m, Vllm(), Gpus("H100-80GB"), &e));
  const DeviceEstimate& d = e.devices[0];
  const int64_t page = 16LL * 8 * (64 + 64) * 2;
  const int64_t kv = ComponentBytes(d, "kv_cache");
  ASSERT_EQ(kv % (page * 12), 0);
  const int64_t blocks = kv / (page * 12);
  EXPECT_EQ(*e.kv_capacity_tokens, blocks / 2 * 16);
  EXPECT_EQ(*e.kv_max_concurrency, blocks / (8192 + 521));
  // gemma-2-9b: 42 layers alternating, window 4096 -> 21 + 21; at its
  // max_model_len 8192 a sliding group needs cdiv(min(4095 + 2048, 8192), 16)
  // + 1 = 385 blocks (L40S, < 70 GiB: 2048 batched tokens) and a full one
  // 512. (On a 24 GB RTX 4090 the bf16 weights, 17.2 GiB, and the sampler
  // warm-up on 256 rows of the 256,000 vocab, 2.3 GiB, leave 1.5 GiB: less
  // than one 8192-token request, so vLLM refuses to start there.) The
  // checkpoint is fp32; vLLM's dtype auto serves it in bf16, so the page
  // is 2-byte.
  Model g = CatalogModelOrDie("google/gemma-2-9b");
  Estimate eg;
  ASSERT_TRUE(EstimateInto(g, Vllm(), Gpus("L40S"), &eg));
  EXPECT_EQ(eg.kv_bytes_per_token.value(), 42LL * 8 * (256 + 256) * 2);
  const int64_t gpage = 16LL * 8 * (256 + 256) * 2;
  const int64_t gkv = ComponentBytes(eg.devices[0], "kv_cache");
  ASSERT_EQ(gkv % (gpage * 21), 0);
  const int64_t gblocks = gkv / (gpage * 21);
  EXPECT_EQ(*eg.kv_max_concurrency, gblocks / (512 + 385));
  EXPECT_EQ(*eg.kv_capacity_tokens, gblocks / 2 * 16);
}

// Gemma-3 (sliding_window_pattern 6: 5 sliding layers per full one).
// gemma-3-12b has 48 layers: 8 full + 40 sliding -> group_size 8, 1 full +
// 5 sliding groups = 6 groups sharing 8 pools.
TEST(VllmRuntimeTest, Gemma3FiveToOneGroups) {
  Model m = CatalogModelOrDie("google/gemma-3-12b-it");
  int64_t sliding = 0;
  for (const LayerSpec& l : m.spec.layers) sliding += l.attention == LayerAttention::kSliding ? 1 : 0;
  ASSERT_EQ(m.spec.num_hidden_layers, 48);
  ASSERT_EQ(sliding, 40);
  Estimate e;
  ASSERT_TRUE(EstimateInto(m, Vllm(), Gpus("H100-80GB"), &e));
  const int64_t page = 16LL * m.spec.num_key_value_heads * (2 * m.spec.head_dim) * 2;
  const int64_t kv = ComponentBytes(e.devices[0], "kv_cache");
  ASSERT_EQ(kv % (page * 8), 0);
  const int64_t blocks = kv / (page * 8);
  EXPECT_EQ(*e.kv_capacity_tokens, blocks / 6 * 16);
  // 131072 tokens: 8192 full blocks + 5 x (cdiv(1023 + 8192, 16) + 1 = 577).
  EXPECT_EQ(*e.kv_max_concurrency, blocks / (8192 + 5 * 577));
}

// KV heads per rank = max(1, kv_heads // tp) (ModelConfig.get_num_kv_heads):
// Llama-3.1-8B has 8 KV heads, so at tp 16 each rank keeps a replica of one
// head, the same page as at tp 8.
TEST(VllmRuntimeTest, TensorParallelReplicatesKvHeads) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  const auto page_per_layer = [&](int64_t tp) {
    InferenceSettings s = Vllm();
    s.tp = tp;
    Estimate e;
    const bool ok = EstimateInto(m, s, Gpus(fmt::format("H100-80GBx{}", tp)), &e);
    EXPECT_TRUE(ok) << "tp " << tp;
    if (!ok) return int64_t{-1};
    EXPECT_EQ(e.devices.size(), static_cast<size_t>(tp));
    const int64_t kv = ComponentBytes(e.devices[0], "kv_cache");
    const int64_t blocks = *e.kv_capacity_tokens / 16;
    EXPECT_EQ(kv % (blocks * 32), 0);
    return int64_t{kv / (blocks * 32)};
  };
  EXPECT_EQ(page_per_layer(1), 16 * 8 * 256 * 2);
  EXPECT_EQ(page_per_layer(2), 16 * 4 * 256 * 2);
  EXPECT_EQ(page_per_layer(8), 16 * 1 * 256 * 2);
  EXPECT_EQ(page_per_layer(16), 16 * 1 * 256 * 2);  // replicated
  InferenceSettings s = Vllm();
  s.tp = 16;
  Estimate e;
  ASSERT_TRUE(EstimateInto(m, s, Gpus("H100-80GBx16"), &e));
  EXPECT_FALSE(Note(e, "8 KV heads over tp 16").empty());
  // Every rank holds the same pool.
  for (const DeviceEstimate& d : e.devices) EXPECT_EQ(d.total, e.devices[0].total);
}

// Pipeline parallel: each stage holds its layers' KV tensors, num_blocks is
// the minimum over the stages, and only the last stage runs the sampler.
TEST(VllmRuntimeTest, PipelineStagesShareNumBlocks) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  InferenceSettings s = Vllm();
  s.pp = 2;
  Estimate e;
  ASSERT_TRUE(EstimateInto(m, s, Gpus("H100-80GBx2"), &e));
  ASSERT_EQ(e.devices.size(), 2u);
  EXPECT_EQ(e.devices[0].peak_phase, "forward");
  EXPECT_EQ(e.devices[1].peak_phase, "sampler");
  // 16 layers each, same num_blocks: equal KV tensors.
  EXPECT_EQ(ComponentBytes(e.devices[0], "kv_cache"), ComponentBytes(e.devices[1], "kv_cache"));
  const int64_t blocks = ComponentBytes(e.devices[1], "kv_cache") / (16LL * 16 * 8 * 256 * 2);
  EXPECT_EQ(*e.kv_capacity_tokens, blocks * 16);
  // The last stage is the limit (lm_head + sampler peak): its budget is
  // nearly all used, the first stage's is not.
  const int64_t requested = static_cast<int64_t>(81090.0 * 1048576 * 0.9);
  const auto used = [&](const DeviceEstimate& d) {
    return ComponentBytes(d, "weights") + ComponentBytes(d, "activations") + ComponentBytes(d, "non_torch") +
           ComponentBytes(d, "kv_cache");
  };
  EXPECT_LT(requested - used(e.devices[1]), 16LL * 16 * 8 * 256 * 2);
  EXPECT_GT(requested - used(e.devices[0]), int64_t{1} << 30);
}

// No --gpu: the smallest pool vLLM starts with (one max_model_len request),
// no verdict.
TEST(VllmRuntimeTest, WithoutGpuShowsTheMinimumPool) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  InferenceSettings s = Vllm();
  s.vllm.max_model_len = 8192;
  Estimate e;
  ASSERT_TRUE(EstimateInto(m, s, DeviceSet{}, &e));
  EXPECT_FALSE(e.fits.has_value());
  EXPECT_EQ(ComponentBytes(e.devices[0], "kv_cache"), 8192LL * 131072);
  EXPECT_EQ(*e.kv_capacity_tokens, 8192);
  EXPECT_EQ(*e.kv_max_concurrency, 1);
}

// --ctx N without --max-model-len sizes vLLM for N-token requests
// (max_model_len = N), as `--max-model-len N` would; --max-model-len wins
// when both are given. Llama-3.1-8B on an H100: 128 KiB per token, blocks
// of 16, so one 32768-token request takes 2048 blocks.
TEST(VllmRuntimeTest, CtxSetsMaxModelLen) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  InferenceSettings by_ctx = Vllm();
  by_ctx.ctx = 32768;
  InferenceSettings by_len = Vllm();
  by_len.vllm.max_model_len = 32768;
  Estimate a, b;
  ASSERT_TRUE(EstimateInto(m, by_ctx, Gpus("H100-80GB"), &a));
  ASSERT_TRUE(EstimateInto(m, by_len, Gpus("H100-80GB"), &b));
  EXPECT_EQ(*a.kv_capacity_tokens, *b.kv_capacity_tokens);
  EXPECT_EQ(*a.kv_max_concurrency, *a.kv_capacity_tokens / 16 / 2048);
  EXPECT_EQ(a.launch_flags.at(0), "--max-model-len 32768");
  EXPECT_EQ(Note(a, "vLLM logs:").find("Maximum concurrency for 32,768 tokens per request"),
            Note(a, "vLLM logs:").find("Maximum concurrency"));
  InferenceSettings both = by_ctx;
  both.vllm.max_model_len = 16000;
  Estimate c;
  ASSERT_TRUE(EstimateInto(m, both, Gpus("H100-80GB"), &c));
  EXPECT_EQ(c.launch_flags.at(0), "--max-model-len 16000");
  // Without either: the model's max_position_embeddings (131072).
  Estimate d;
  ASSERT_TRUE(EstimateInto(m, Vllm(), Gpus("H100-80GB"), &d));
  EXPECT_EQ(d.launch_flags.at(0), "--max-model-len 131072");
  // A --ctx beyond the model's length is vLLM's own max_model_len error.
  InferenceSettings too_long = Vllm();
  too_long.ctx = 200000;
  EXPECT_EQ(EstimateError(m, too_long, Gpus("H100-80GB")).rfind(
                "resolve: --max-model-len: User-specified max_model_len (200000) is greater than the derived", 0),
            0u);
}

// --dtype auto for fp32 checkpoints (config/model.py _resolve_auto_dtype):
// downcast to the platform's first supported dtype -- bf16 from sm80 --
// except that gemma2 may not run in fp16, so on a T4 (sm75: fp16, fp32) it
// stays fp32. gemma-2-9b's config says float32 (9.24 B params). Launch
// flags spell dtypes as vLLM's --dtype does, and only where auto would
// pick another.
TEST(VllmRuntimeTest, DtypeAutoDowncastsFp32Checkpoints) {
  const Model g = CatalogModelOrDie("google/gemma-2-9b");
  ASSERT_EQ(g.spec.torch_dtype, DType::kF32);
  InferenceSettings s = Vllm();
  s.ctx = 4096;
  Estimate e;
  ASSERT_TRUE(EstimateInto(g, s, Gpus("H100-80GB"), &e));
  EXPECT_EQ(e.kv_bytes_per_token.value(), 42LL * 8 * (256 + 256) * 2);  // bf16 KV
  std::string flags;
  for (const std::string& f : e.launch_flags) flags += (flags.empty() ? "" : " ") + f;
  EXPECT_EQ(flags, "--max-model-len 4096 --gpu-memory-utilization 0.9 --max-num-seqs 1024 "
                   "--max-num-batched-tokens 8192");
  s.dtype = DType::kF32;  // asked for: kept, KV in fp32, and the flag says so
  Estimate f32;
  ASSERT_TRUE(EstimateInto(g, s, Gpus("H100-80GB"), &f32));
  EXPECT_EQ(f32.kv_bytes_per_token.value(), 42LL * 8 * (256 + 256) * 4);
  EXPECT_EQ(f32.launch_flags.back(), "--dtype float32");
  // T4: fp32 weights (9.24 B x 4 B = 34.4 GiB) cannot start on 16 GB.
  EXPECT_EQ(EstimateError(g, Vllm(), Gpus("T4")).rfind(
                "vllm: gpu0: No available memory for the cache blocks. Try increasing "
                "`gpu_memory_utilization` when initializing the engine. See "
                "https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details. "
                "[weights 34.44 GiB",
                0),
            0u);
  InferenceSettings half = Vllm();
  half.dtype = DType::kF16;
  Estimate h;
  ASSERT_TRUE(EstimateInto(CatalogModelOrDie("meta-llama/Llama-3.1-8B"), half, Gpus("H100-80GB"), &h));
  EXPECT_EQ(h.launch_flags.back(), "--dtype float16");
}

// More memory for the pool -> more tokens; a longer max_model_len -> the
// same or fewer concurrent requests.
TEST(VllmRuntimeTest, Monotonic) {
  for (const char* id : {"meta-llama/Llama-3.1-8B", "Qwen/Qwen3-30B-A3B", "deepseek-ai/DeepSeek-V2-Lite",
                         "openai/gpt-oss-20b", "google/gemma-3-12b-it"}) {
    Model m = CatalogModelOrDie(id);
    int64_t last_tokens = -1;
    // From 0.8: at 0.5-0.7 of an H100 the 57 GiB of Qwen3-30B-A3B and its
    // 5.6 GiB sampler warm-up leave nothing for the KV cache.
    for (double util : {0.8, 0.85, 0.9, 0.95}) {
      InferenceSettings s = Vllm();
      s.vllm.gpu_memory_utilization = util;
      s.vllm.max_model_len = 4096;
      Estimate e;
      ASSERT_TRUE(EstimateInto(m, s, Gpus("H100-80GB"), &e));
      EXPECT_GT(*e.kv_capacity_tokens, last_tokens) << id << " util " << util;
      last_tokens = *e.kv_capacity_tokens;
    }
    int64_t last_conc = INT64_MAX;
    for (int64_t len : {1024, 2048, 4096, 8192, 16384, 32768}) {
      InferenceSettings s = Vllm();
      s.vllm.max_model_len = len;
      Estimate e;
      ASSERT_TRUE(EstimateInto(m, s, Gpus("H100-80GB"), &e));
      EXPECT_LE(*e.kv_max_concurrency, last_conc) << id << " len " << len;
      last_conc = *e.kv_max_concurrency;
    }
  }
}

// The start-up failures vLLM raises, with its text (gpu_worker.init_device,
// kv_cache_utils._check_enough_kv_cache_memory, ModelConfig, SchedulerConfig)
// and the vramfit flag to change at the end.
TEST(VllmRuntimeTest, ExactErrors) {
  const Model llama8 = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  const Model llama70 = CatalogModelOrDie("meta-llama/Llama-3.1-70B");
  {  // 70B in bf16 (131 GiB) on one A100-80GB. An A100 takes the small
     // `vllm serve` defaults (EngineArgs.get_batch_defaults excludes "a100"):
     // 2048 tokens over 256 requests, so the profile peak is the sampler on 256
     // rows: (2048 + 512) x 8192 x 2 B + 256 x 128256 x (2 + 4 + 12 + 20) B
     // = 1.20 GiB.
    EXPECT_EQ(EstimateError(llama70, Vllm(), Gpus("A100-80GB")),
              "vllm: gpu0: No available memory for the cache blocks. Try increasing "
              "`gpu_memory_utilization` when initializing the engine. See "
              "https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details. "
              "[weights 131.45 GiB + profile peak 1.20 GiB + non-torch 0.13 GiB exceed 0.9 x 79.15 "
              "GiB = 71.24 GiB; raise --gpu-mem-util or split the model with --tp]");
  }
  {  // 8B at its 131072-token max_model_len on a 24 GB card: 16 GiB of KV needed.
     // By hand: total (24564 - 464) MiB x 0.9 - weights 16,094,076,928 B (incl.
     // RoPE cache) - sampler 1.18 GiB - non-torch 133 MiB = 4.88 GiB; 128 KiB per
     // token in blocks of 16 -> the largest length that fits is 39984.
    EXPECT_EQ(EstimateError(llama8, Vllm(), Gpus("RTX-4090")),
              "vllm: gpu0: To serve at least one request with the models's max seq len (131072), "
              "(16.00 GiB KV cache is needed, which is larger than the available KV cache memory "
              "(4.88 GiB). Based on the available memory, the estimated maximum model length is "
              "39984. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when "
              "initializing the engine. See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ "
              "for more details. [lower --max-model-len to 39984 or raise --gpu-mem-util]");
  }
  {  // util 1.0: the CUDA context already holds 0.61 GiB when vLLM checks.
     // The message prints the float as Python does: 1.0.
    InferenceSettings s = Vllm();
    s.vllm.gpu_memory_utilization = 1.0;
    EXPECT_EQ(EstimateError(llama8, s, Gpus("H100-80GB")),
              "vllm: gpu0: Free memory on device (78.58/79.19 GiB) on startup is less than desired "
              "GPU memory utilization (1.0, 79.19 GiB). Decrease GPU memory utilization or reduce GPU "
              "memory used by other processes. [0.61 GiB go to the CUDA context before the check; "
              "lower --gpu-mem-util]");
  }
  {
    InferenceSettings s = Vllm();
    s.vllm.max_model_len = 200000;
    EXPECT_EQ(EstimateError(llama8, s, Gpus("H100-80GB")),
              "resolve: --max-model-len: User-specified max_model_len (200000) is greater than the derived "
              "max_model_len (max_position_embeddings=131072 or model_max_length=None in model's "
              "config.json). This may lead to incorrect model outputs or CUDA errors. To allow "
              "overriding this maximum, set the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1");
  }
  {
    InferenceSettings s = Vllm();
    s.vllm.max_num_seqs = 512;
    s.vllm.max_num_batched_tokens = 256;
    EXPECT_EQ(EstimateError(llama8, s, Gpus("H100-80GB")),
              "resolve: --max-num-batched-tokens: max_num_batched_tokens (256) must be greater than or "
              "equal to max_num_seqs (512).");
  }
  {
    InferenceSettings s = Vllm();
    s.vllm.block_size = 24;
    EXPECT_EQ(EstimateError(llama8, s, Gpus("H100-80GB")),
              "resolve: --block-size: expected one of 1, 8, 16, 32, 64, 128, got 24");
  }
  {
    InferenceSettings s = Vllm();
    s.kv_dtype = DType::kQ8_0;
    EXPECT_EQ(EstimateError(llama8, s, Gpus("H100-80GB")),
              "resolve: --kv-dtype: vLLM's kv_cache_dtype is auto, fp16, bf16 or fp8, got 'Q8_0'");
  }
  {  // bf16 on a Turing GPU (gpu_worker._check_if_gpu_supports_dtype).
    EXPECT_EQ(EstimateError(CatalogModelOrDie("Qwen/Qwen2.5-0.5B"), Vllm(), Gpus("T4")),
              "resolve: vllm: Bfloat16 is only supported on GPUs with compute capability of at least 8.0. "
              "Your T4 GPU has compute capability 7.5. You can use float16 instead by explicitly "
              "setting the `dtype` flag in CLI, for example: --dtype=half. [use --dtype fp16]");
  }
  {  // Two GPUs, no split: vLLM would use one.
    EXPECT_EQ(EstimateError(llama8, Vllm(), Gpus("H100-80GBx2")),
              "resolve: --gpu: 2 GPUs given; vLLM uses one unless --tp/--pp say how to split the "
              "model (e.g. --tp 2)");
  }
}

// truth V13 (vllm-project/vllm#13061): DeepSeek-R1-Distill-Qwen-14B, TP2 on
// two RTX 4090s, util 0.98, max_model_len 131072 failed at start-up because
// the KV cache could not hold one 131072-token request (96 KiB per token per
// rank: 12 GiB needed). That log is the V0 engine. The modelled V1 engine
// (0.11) refuses util 0.98 on a 24 GB card even earlier: init_device needs
// 0.98 x 23.54 = 23.07 GiB free, and the CUDA context leaves 22.93. At 0.95
// it gets to the KV check and fails as V13 did; half the context fits.
TEST(VllmRuntimeTest, ReproducesV13StartupFailure) {
  Model m = CatalogModelOrDie("deepseek-ai/DeepSeek-R1-Distill-Qwen-14B");
  InferenceSettings s = Vllm();
  s.tp = 2;
  s.vllm.gpu_memory_utilization = 0.98;
  s.vllm.max_model_len = 131072;
  EXPECT_EQ(EstimateError(m, s, Gpus("RTX-4090x2")),
            "vllm: gpu0: Free memory on device (22.93/23.54 GiB) on startup is less than desired GPU "
            "memory utilization (0.98, 23.06 GiB). Decrease GPU memory utilization or reduce GPU memory "
            "used by other processes. [0.61 GiB go to the CUDA context before the check; lower "
            "--gpu-mem-util]");
  s.vllm.gpu_memory_utilization = 0.95;
  const std::string err = EstimateError(m, s, Gpus("RTX-4090x2"));
  EXPECT_EQ(err.rfind("vllm: gpu0: To serve at least one request with the models's max seq len (131072), "
                      "(12.00 GiB KV cache is needed",
                      0),
            0u)
      << err;
  s.vllm.max_model_len = 65536;
  Estimate e;
  ASSERT_TRUE(EstimateInto(m, s, Gpus("RTX-4090x2"), &e));
  EXPECT_GE(*e.kv_max_concurrency, 1);
}

// vLLM's refusal on the command line is an estimate that does not fit, exit
// 3 (the settings are valid; the job does not fit, as for any estimate over
// capacity): nothing on stderr, the breakdown, vLLM's text in the notes.
TEST(VllmRuntimeTest, CliStartupFailureIsAnEstimate) {
  std::ostringstream out, err;
  const int code = cli::Run({"infer", "meta-llama/Llama-3.1-70B", "--runtime", "vllm", "--gpu", "A100-80GB"},
                            out, err);
  EXPECT_EQ(code, 3);
  EXPECT_EQ(err.str(), "");
  EXPECT_NE(out.str().find("start-up failure: no_kv_memory on gpu0"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("vLLM would not start: vllm: gpu0: No available memory for the cache blocks."),
            std::string::npos)
      << out.str();
  EXPECT_NE(out.str().find("verdict: does not fit"), std::string::npos);
  std::ostringstream out2, err2;
  EXPECT_EQ(cli::Run({"infer", "meta-llama/Llama-3.1-8B", "--runtime", "vllm", "--gpu", "H100-80GBx2", "--tp",
                      "2", "--max-model-len", "32768", "--print-flags"},
                     out2, err2),
            0);
  EXPECT_EQ(out2.str(),
            "vllm serve meta-llama/Llama-3.1-8B --max-model-len 32768 --gpu-memory-utilization 0.9 --max-num-seqs 1024 "
            "--max-num-batched-tokens 8192 -tp 2\n");
}

// Issue 15 item 4: Llama-3.1-8B at its full 131072 tokens on one RTX 4090
// is vLLM's "To serve at least one request ..." refusal, as an estimate.
// 131072 x 128 KiB = 16 GiB of KV is needed where 4.88 GiB is left
// (0.9 x 23.54 GiB - 14.99 weights - 1.18 sampler peak - 0.13 non-torch),
// and vLLM's own estimate_max_model_len (kv_cache_utils.py) gives 39984
// tokens = 2499 blocks of 16: the fixes offer that exact maximum and the
// power of two below it, each with the setting that realises it.
TEST(VllmRuntimeTest, StartupFailureJsonIsAnEstimateWithFixes) {
  std::ostringstream out, err;
  const int code =
      cli::Run({"infer", "meta-llama/Llama-3.1-8B", "--runtime", "vllm", "--gpu", "RTX-4090", "--json"}, out, err);
  EXPECT_EQ(code, 3);
  EXPECT_EQ(err.str(), "");
  const nlohmann::json j = nlohmann::json::parse(out.str());
  EXPECT_EQ(j["schema"], "vramfit.estimate/1");
  EXPECT_EQ(j["fits"], false);
  EXPECT_EQ(j["failure"]["kind"], "kv_below_one_request");
  EXPECT_EQ(j["failure"]["device"], "gpu0");
  EXPECT_EQ(j["failure"]["message"].get<std::string>().rfind(
                "vllm: gpu0: To serve at least one request with the models's max seq len (131072)", 0),
            0u);
  EXPECT_EQ(j["devices"][0]["fits"], false);
  EXPECT_EQ(j["kv_cache"]["capacity_tokens"], 39984);
  EXPECT_EQ(j["kv_cache"]["max_concurrency"], 0);
  // The breakdown shows what one 131072-token request needs: 16 GiB.
  int64_t kv = -1;
  for (const auto& c : j["devices"][0]["components"]) {
    if (c["name"] == "kv_cache") kv = c["bytes"].get<int64_t>();
  }
  EXPECT_EQ(kv, 131072LL * 131072);
  bool exact = false, pow2 = false, tp2 = false, fp8 = false, kvfp8 = false;
  for (const auto& f : j["fixes"]) {
    const std::string change = f["change"];
    if (change == "--max-model-len 39984") {
      exact = f["fits"] == true && f["settings"] == nlohmann::json{{"max-model-len", "39984"}};
    }
    if (change == "--max-model-len 32768") {
      pow2 = f["fits"] == true && f["settings"] == nlohmann::json{{"max-model-len", "32768"}};
    }
    if (change == "--gpu RTX-4090x2 --tp 2") {
      tp2 = f["fits"] == true && f["settings"] == nlohmann::json{{"gpu", "RTX-4090x2"}, {"tp", "2"}};
    }
    // fp8 weights (8.5 GiB) or an fp8 KV cache (8 GiB needed) alone still
    // leave less than one 131072-token request.
    if (change == "--quant fp8") fp8 = f["fits"] == false && f["settings"] == nlohmann::json{{"quant", "fp8"}};
    if (change == "--kv-dtype fp8") kvfp8 = f["fits"] == false && f["saves_bytes"] == 8LL << 30;
  }
  EXPECT_TRUE(exact && pow2 && tp2 && fp8 && kvfp8) << j["fixes"].dump(1);
}


// --kv-cache-memory BYTES (CacheConfig kv_cache_memory_bytes; vllm/v1/
// worker/gpu_worker.py determine_available_memory at 35d5cda1: it still runs
// the profile, then returns the bytes as given, "This does not respect the
// gpu_memory_utilization config"). The SmolLM2-135M case above with a
// 1 GiB pool: 1 GiB // (16 x 3 x 128 x 2 B page) // 30 layers = 2912
// blocks, whatever the utilisation; the total follows the pool; without a
// GPU the pool is still sized; the launch flags carry it.
TEST(VllmRuntimeTest, KvCacheMemoryBypassesTheBudget) {
  Model m = CatalogModelOrDie("HuggingFaceTB/SmolLM2-135M");
  InferenceSettings s = Vllm();
  s.vllm.max_model_len = 2048;
  s.vllm.enforce_eager = true;
  s.vllm.kv_cache_memory = int64_t{1} << 30;
  const int64_t page = 16LL * 3 * (64 + 64) * 2;
  const int64_t blocks = (int64_t{1} << 30) / page / 30;
  ASSERT_EQ(blocks, 2912);
  for (double util : {0.5, 0.9}) {
    s.vllm.gpu_memory_utilization = util;
    Estimate e;
    ASSERT_TRUE(EstimateInto(m, s, Gpus("A10G"), &e));
    EXPECT_EQ(ComponentBytes(e.devices[0], "kv_cache"), blocks * page * 30) << util;
    EXPECT_EQ(*e.kv_capacity_tokens, blocks * 16);
    std::string flags;
    for (const std::string& f : e.launch_flags) flags += (flags.empty() ? "" : " ") + f;
    EXPECT_NE(flags.find("--kv-cache-memory-bytes 1073741824"), std::string::npos) << flags;
  }
  Estimate none;
  ASSERT_TRUE(EstimateInto(m, s, DeviceSet{}, &none));
  EXPECT_EQ(*none.kv_capacity_tokens, blocks * 16);
  // A pool larger than the card: vLLM would allocate it and run out of
  // memory; the estimate says it does not fit.
  s.vllm.kv_cache_memory = int64_t{40} << 30;
  Estimate big;
  ASSERT_TRUE(EstimateInto(m, s, Gpus("A10G"), &big));
  ASSERT_TRUE(big.fits.has_value());
  EXPECT_FALSE(*big.fits);
}

}  // namespace
}  // namespace vramfit
