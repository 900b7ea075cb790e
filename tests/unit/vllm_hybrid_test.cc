// The vllm runtime on models with recurrent layers: vLLM 0.11's hybrid
// KV-cache manager. Every expected number is derived by hand from vLLM's
// rules, read in the vLLM source (v0.11.0, Oct 2025):
//   [shape]  model_executor/layers/mamba/mamba_utils.py
//            MambaStateShapeCalculator.{mamba1,mamba2,gated_delta_net,
//            short_conv}_state_shape (conv windows kernel - 1, heads and
//            channels divided over TP, extra_groups_for_head_shards), called by
//            the models' get_mamba_state_shape_from_config (qwen3_next.py,
//            nemotron_h.py, granitemoehybrid.py, lfm2.py, mamba.py, mamba2.py);
//   [dtype]  MambaStateDtypeCalculator: conv = mamba_cache_dtype, SSM =
//            mamba_ssm_cache_dtype, both "auto" = the model dtype;
//   [page]   model_executor/models/config.py
//            HybridAttentionMambaModelConfig.verify_and_update_config:
//            attn_block_size = 16 * cdiv(mamba_page, 16 * attn_page_1_token),
//            block_size raised to it, mamba_page_size_padded = attn page;
//   [groups] v1/core/kv_cache_utils.py _get_kv_cache_groups_uniform_page_size
//            and _report_kv_cache_config: tokens = num_blocks // groups x
//            min block size; concurrency = num_blocks / sum of blocks per
//            request (one per MambaSpec group, kv_cache_interface.py
//            MambaSpec.max_memory_usage_bytes = page_size_bytes).
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "cli/cli.h"
#include "core/runtimes/vllm_steps.h"
#include "test_util.h"
#include "vramfit/plan.h"

namespace vramfit {
namespace {

using runtimes::vllm::BlocksPerRequest;
using runtimes::vllm::BuildGroups;
using runtimes::vllm::CacheKind;
using runtimes::vllm::CheckStateLayout;
using runtimes::vllm::HybridBlockSize;
using runtimes::vllm::KvGroup;
using runtimes::vllm::KvPageOf;
using runtimes::vllm::LayerTypes;
using runtimes::vllm::StatePage;
using runtimes::vllm::StatePageOf;
using testing::CatalogModelOrDie;
using testing::ComponentBytes;
using testing::EstimateOrDie;
using testing::Gpus;

InferenceSettings Vllm(int64_t tp = 1) {
  InferenceSettings s;
  s.runtime = Runtime::kVllm;
  s.tp = tp;
  return s;
}

bool HasNote(const Estimate& e, const std::string& part) {
  for (const std::string& n : e.notes) {
    if (n.find(part) != std::string::npos) return true;
  }
  return false;
}

// [shape] x [dtype], per rank, bf16 checkpoints.
TEST(VllmHybridTest, StatePagePerRank) {
  const struct {
    const char* id;
    int64_t tp, conv, ssm, bytes;
  } cases[] = {
      // Qwen3-Next: conv_dim = 2 x 16 x 128 + 32 x 128 = 8192, kernel 4 -> 3
      // columns; temporal 32 x 128 x 128.
      {"Qwen/Qwen3-Next-80B-A3B-Instruct", 1, 8192 * 3, 32 * 128 * 128, (24576 + 524288) * 2},
      {"Qwen/Qwen3-Next-80B-A3B-Instruct", 2, 4096 * 3, 16 * 128 * 128, (12288 + 262144) * 2},
      // Nemotron-H: d_inner = 128 heads x 80 = 10240, conv_dim = 10240 + 2 x
      // 8 x 128 = 12288; temporal 128 x 80 x 128.
      {"nvidia/NVIDIA-Nemotron-Nano-9B-v2", 1, 12288 * 3, 128 * 80 * 128, (36864 + 1310720) * 2},
      {"nvidia/NVIDIA-Nemotron-Nano-9B-v2", 2, 6144 * 3, 64 * 80 * 128, (18432 + 655360) * 2},
      // Granite-4.0-H: d_inner 8192, one group: conv_dim 8192 + 256 = 8448;
      // at TP 2 the group is replicated (extra_groups_for_head_shards = 1):
      // (8192 + 2 x 2 x 128) / 2 = 4352.
      {"ibm-granite/granite-4.0-h-small", 1, 8448 * 3, 128 * 64 * 128, (25344 + 1048576) * 2},
      {"ibm-granite/granite-4.0-h-small", 2, 4352 * 3, 64 * 64 * 128, (13056 + 524288) * 2},
      // LFM2: conv_dim 2048, conv_L_cache 3 -> 2 columns; no SSM state.
      {"LiquidAI/LFM2-1.2B", 1, 2048 * 2, 0, 4096 * 2},
      // Mamba-1: d_inner 5120, conv 4 -> 3 columns, state_size 16.
      {"state-spaces/mamba-2.8b-hf", 1, 5120 * 3, 5120 * 16, (15360 + 81920) * 2},
  };
  for (const auto& c : cases) {
    const StatePage p = StatePageOf(CatalogModelOrDie(c.id).spec, c.tp, DType::kBF16, DType::kBF16);
    EXPECT_EQ(p.conv, c.conv) << c.id << " tp " << c.tp;
    EXPECT_EQ(p.ssm, c.ssm) << c.id << " tp " << c.tp;
    EXPECT_EQ(p.bytes, c.bytes) << c.id << " tp " << c.tp;
  }
}

// [page]: the raised attention block size.
TEST(VllmHybridTest, AttentionBlockRaisedToHoldAStatePage) {
  const struct {
    const char* id;
    int64_t tp, attn_1_token, block;
  } cases[] = {
      // 2 x 2 KV heads x 256 x 2 B = 2048 B/token; cdiv(1097728, 32768) = 34.
      {"Qwen/Qwen3-Next-80B-A3B-Instruct", 1, 2048, 544},
      // 1 KV head per rank: 1024 B/token; cdiv(548864, 16384) = 34.
      {"Qwen/Qwen3-Next-80B-A3B-Instruct", 2, 1024, 544},
      // 2 x 8 x 128 x 2 = 4096 B/token; cdiv(2695168, 65536) = 42.
      {"nvidia/NVIDIA-Nemotron-Nano-9B-v2", 1, 4096, 672},
      // cdiv(2147840, 65536) = 33.
      {"ibm-granite/granite-4.0-h-small", 1, 4096, 528},
      // 2 x 8 x 64 x 2 = 2048 B/token; an 8192 B state fits in 16 tokens.
      {"LiquidAI/LFM2-1.2B", 1, 2048, 16},
  };
  for (const auto& c : cases) {
    const ModelSpec& s = CatalogModelOrDie(c.id).spec;
    const int64_t one = KvPageOf(s, c.tp, DType::kBF16, 1).bytes;
    EXPECT_EQ(one, c.attn_1_token) << c.id;
    EXPECT_EQ(HybridBlockSize(StatePageOf(s, c.tp, DType::kBF16, DType::kBF16).bytes, one), c.block) << c.id;
  }
}

// [groups]: attention and state layers grouped at one page size.
TEST(VllmHybridTest, GroupsOfOnePageSize) {
  const struct {
    const char* id;
    size_t groups, state_groups, layers_per_group;
  } cases[] = {
      // 12 full attention + 36 GDN: 36 >= 1.5 x 12, group_size 12 -> 1 + 3.
      {"Qwen/Qwen3-Next-80B-A3B-Instruct", 4, 3, 12},
      // 4 attention + 27 Mamba-2 (+ 25 MLP-only layers, no spec): group_size
      // 4 -> 1 + cdiv(27, 4) = 1 + 7.
      {"nvidia/NVIDIA-Nemotron-Nano-9B-v2", 8, 7, 4},
      // 4 attention + 36 Mamba-2: 1 + 9.
      {"ibm-granite/granite-4.0-h-small", 10, 9, 4},
      // 6 attention + 10 short conv: 10 >= 1.5 x 6 -> group_size 6, 1 + 2.
      {"LiquidAI/LFM2-1.2B", 3, 2, 6},
      // 64 Mamba layers, one spec: one group.
      {"state-spaces/mamba-2.8b-hf", 1, 1, 64},
  };
  for (const auto& c : cases) {
    const std::vector<KvGroup> g = BuildGroups(LayerTypes(CatalogModelOrDie(c.id).spec));
    ASSERT_EQ(g.size(), c.groups) << c.id;
    size_t state = 0, largest = 0;
    for (const KvGroup& kg : g) {
      state += kg.type.kind == CacheKind::kState ? 1 : 0;
      largest = std::max(largest, kg.layers.size());
    }
    EXPECT_EQ(state, c.state_groups) << c.id;
    EXPECT_EQ(largest, c.layers_per_group) << c.id;
  }
  EXPECT_EQ(BlocksPerRequest({0, CacheKind::kState}, 131072, 8192, 672), 1);
}

// Nemotron-Nano-9B-v2 on one H100 (cudaMemGetInfo total 81090 MiB, util
// 0.9, max_model_len 131072, `vllm serve` defaults 1024 / 8192).
TEST(VllmHybridTest, NemotronNanoOnH100) {
  const Model m = CatalogModelOrDie("nvidia/NVIDIA-Nemotron-Nano-9B-v2");
  const Estimate e = EstimateOrDie(m, Vllm(), Gpus("H100-80GB"));
  ASSERT_FALSE(e.failure);
  const DeviceEstimate& d = e.devices[0];
  const int64_t page = 672 * 4096;  // 2,752,512 B: attention page = padded state page
  const int64_t pools = 4;
  const int64_t kv = ComponentBytes(d, "kv_cache");
  ASSERT_EQ(kv % (page * pools), 0);
  const int64_t blocks = kv / (page * pools);
  // available = int(total x util) - weights - profile peak - non-torch;
  // num_blocks = available // page // pools.
  const double requested = 81090.0 * 1024 * 1024 * 0.9;
  const int64_t available =
      static_cast<int64_t>(requested - static_cast<double>(ComponentBytes(d, "weights") +
                                                           ComponentBytes(d, "activations") +
                                                           ComponentBytes(d, "non_torch")));
  EXPECT_EQ(blocks, available / page / pools);
  // GPU KV cache size = num_blocks // 8 groups x 672 tokens.
  EXPECT_EQ(*e.kv_capacity_tokens, blocks / 8 * 672);
  // A 131072-token request: cdiv(131072, 672) = 196 attention blocks + 7.
  EXPECT_EQ(*e.kv_max_concurrency, blocks / 203);
  // The pool split: whole requests' attention KV and state pages.
  const Component* pool = Find(d.components, "kv_cache");
  ASSERT_NE(pool, nullptr);
  const int64_t reqs = blocks / 203;
  EXPECT_EQ(Find(pool->children, "attention KV")->bytes.value(), reqs * 196 * page * pools);
  const Component* state = Find(pool->children, "recurrent state");
  ASSERT_NE(state, nullptr);
  EXPECT_EQ(Find(state->children, "state")->bytes.value(), reqs * 7 * pools * 2695168);
  EXPECT_EQ(Find(state->children, "page padding")->bytes.value(),
            reqs * 7 * pools * (page - 2695168));
  // 27 layers x 2,695,168 B per sequence over the whole model.
  EXPECT_EQ(e.state_bytes_per_sequence.value(), 27 * 2695168);
  EXPECT_TRUE(HasNote(e, "raises the attention block size from 16 to 672 tokens"));
  EXPECT_TRUE(HasNote(e, "pads each state page by 2.13%"));  // 57344 / 2695168
  // Nemotron-H attention is NoPE: no rotary cache in the weights.
  EXPECT_EQ(Find(Find(d.components, "weights")->children, "rotary cache"), nullptr);
}

// Qwen3-Next on four H100s, --tp 4 (in bf16 it does not fit on two: 74 GiB
// of weights per rank): 2 KV heads over 4 ranks, one replica per rank
// (1024 B/token); GDN 16 / 4 key and 32 / 4 value heads: conv 2048 x 3,
// SSM 8 x 128 x 128 -> (6144 + 131072) x 2 = 274,432 B; block 16 x
// cdiv(274432, 16384) = 272, page 278,528 B.
TEST(VllmHybridTest, Qwen3NextTp4) {
  const Model m = CatalogModelOrDie("Qwen/Qwen3-Next-80B-A3B-Instruct");
  InferenceSettings s = Vllm(4);
  s.vllm.max_model_len = 32768;
  const Estimate e = EstimateOrDie(m, s, Gpus("H100-80GBx4"));
  ASSERT_FALSE(e.failure);
  ASSERT_EQ(e.devices.size(), 4u);
  const int64_t page = 272 * 1024;
  const int64_t kv = ComponentBytes(e.devices[0], "kv_cache");
  ASSERT_EQ(kv % (page * 12), 0);
  const int64_t blocks = kv / (page * 12);
  EXPECT_EQ(*e.kv_capacity_tokens, blocks / 4 * 272);
  // cdiv(32768, 272) = 121 attention blocks + 3 state blocks per request.
  EXPECT_EQ(*e.kv_max_concurrency, blocks / 124);
  EXPECT_TRUE(HasNote(e, "pads each state page by 1.49%"));  // 4096 / 274432
  EXPECT_TRUE(HasNote(e, "raises the attention block size from 16 to 272 tokens"));
}

// Attention-free Mamba: one group, one state page per sequence, blocks of
// max_model_len tokens (2048: the config has no length key).
TEST(VllmHybridTest, AttentionFreeMamba) {
  const Model m = CatalogModelOrDie("state-spaces/mamba-2.8b-hf");
  const Estimate e = EstimateOrDie(m, Vllm(), Gpus("H100-80GB"));
  ASSERT_FALSE(e.failure);
  const int64_t page = 194560;
  const int64_t kv = ComponentBytes(e.devices[0], "kv_cache");
  ASSERT_EQ(kv % (page * 64), 0);
  const int64_t blocks = kv / (page * 64);
  EXPECT_EQ(*e.kv_capacity_tokens, blocks * 2048);
  EXPECT_EQ(*e.kv_max_concurrency, blocks);
  EXPECT_EQ(e.kv_bytes_per_token.value(), 0);
  EXPECT_EQ(Find(Find(e.devices[0].components, "weights")->children, "rotary cache"), nullptr);
}

// What the recurrent state cannot split over is refused in one line.
TEST(VllmHybridTest, StateThatDoesNotSplitIsRefused) {
  const ModelSpec& mamba = CatalogModelOrDie("state-spaces/mamba-2.8b-hf").spec;
  const Status st = CheckStateLayout(mamba, 3);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message,
            "--tp: 5120 Mamba channels (d_inner) of state-spaces/mamba-2.8b-hf do not split over 3 "
            "GPUs (vLLM divides the recurrent state by the tensor-parallel size)");
  EXPECT_TRUE(CheckStateLayout(mamba, 2).ok());
  // Kimi Delta Attention is not verified in vLLM 0.11.
  ModelSpec kda = CatalogModelOrDie("Qwen/Qwen3-Next-80B-A3B-Instruct").spec;
  for (LayerSpec& l : kda.layers) {
    if (l.HasRecurrent()) l.recurrent = RecurrentKind::kKimiDelta;
  }
  const Status k = CheckStateLayout(kda, 1);
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.error().kind, ErrorKind::kUnsupported);
}

}  // namespace
}  // namespace vramfit

namespace vramfit {
namespace {

// SGLang's hybrid pools are not modelled; its refusal points to --runtime
// vllm only where vllm models the model.
TEST(VllmHybridTest, SglangRefusalPointsToVllmWhereItModelsIt) {
  InferenceSettings s;
  s.runtime = Runtime::kSglang;
  const DeviceSet d = Gpus("H100-80GB");
  Model m = CatalogModelOrDie("nvidia/NVIDIA-Nemotron-Nano-9B-v2");
  auto w = ResolveInference(m, s, d, nullptr);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().message,
            "--runtime sglang: nvidia/NVIDIA-Nemotron-Nano-9B-v2 has sliding-window, linear-attention or "
            "state-space layers; SGLang's hybrid pools (SWAKVPool, HybridLinearKVPool, Mamba cache) are not "
            "modelled; use --runtime vllm");
  for (LayerSpec& l : m.spec.layers) {
    if (l.HasRecurrent()) l.recurrent = RecurrentKind::kKimiDelta;
  }
  auto k = ResolveInference(m, s, d, nullptr);
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.error().message.find("use --runtime vllm"), std::string::npos) << k.error().message;
}

}  // namespace
}  // namespace vramfit


namespace vramfit {
namespace {

// fit --solve max-context / max-batch on hybrids: the answer fits (the pool
// holds its requests) and one more does not. granite-4.0-h-small (60 GiB of
// bf16 weights) leaves an H100 a pool of a few 131072-token requests.
TEST(VllmHybridTest, PlannerBoundariesOnHybrids) {
  const DeviceSet d = Gpus("H100-80GB");
  for (const char* id : {"ibm-granite/granite-4.0-h-small", "LiquidAI/LFM2-1.2B"}) {
    const Model m = CatalogModelOrDie(id);
    Job job;
    job.infer.runtime = Runtime::kVllm;
    auto b = Plan(m, job, d, Solve::kMaxBatch);
    ASSERT_TRUE(b.ok()) << b.error().message;
    ASSERT_TRUE(b->found) << id << ": " << b->reason;
    auto at = [&](int64_t batch) {
      Job j = job;
      j.infer.batch = batch;
      auto e = EstimateJob(m, j, d);
      return e.ok() && Fits(*e, j);
    };
    EXPECT_TRUE(at(b->number)) << id;
    EXPECT_FALSE(at(b->number + 1)) << id;
    // The answer is the pool's whole 131072-token requests.
    auto e = EstimateJob(m, job, d);
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(b->number, *e->kv_max_concurrency) << id;
  }
  // Nemotron-Nano on a 24 GB RTX 4090 at --max-model-len 131072: fits.
  const Model n = CatalogModelOrDie("nvidia/NVIDIA-Nemotron-Nano-9B-v2");
  Job job;
  job.infer.runtime = Runtime::kVllm;
  auto c = Plan(n, job, Gpus("RTX-4090"), Solve::kMaxContext);
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_TRUE(c->found) << c->reason;
  EXPECT_EQ(c->number, 131072);
}

}  // namespace
}  // namespace vramfit

namespace vramfit {
namespace {

// --mamba-ssm-cache-dtype float32 (NVIDIA's recommendation for Nemotron-H):
// the SSM state at 4 B, the conv state still bf16: 36864 x 2 + 1310720 x 4 =
// 5,316,608 B; block 16 x cdiv(5316608, 65536) = 16 x 82 = 1312; page 1312 x
// 4096 = 5,373,952 B, padding 57344 / 5316608 = 1.08%.
TEST(VllmHybridTest, Fp32SsmStateOnNemotron) {
  const Model m = CatalogModelOrDie("nvidia/NVIDIA-Nemotron-Nano-9B-v2");
  InferenceSettings s = Vllm();
  s.vllm.mamba_ssm_cache_dtype = DType::kF32;
  const Estimate e = EstimateOrDie(m, s, Gpus("H100-80GB"));
  ASSERT_FALSE(e.failure);
  const int64_t page = 1312 * 4096;
  const int64_t kv = ComponentBytes(e.devices[0], "kv_cache");
  ASSERT_EQ(kv % (page * 4), 0);
  const int64_t blocks = kv / (page * 4);
  EXPECT_EQ(*e.kv_capacity_tokens, blocks / 8 * 1312);
  // cdiv(131072, 1312) = 100 attention blocks + 7.
  EXPECT_EQ(*e.kv_max_concurrency, blocks / 107);
  EXPECT_EQ(e.state_bytes_per_sequence.value(), 27 * 5316608);
  EXPECT_TRUE(HasNote(e, "pads each state page by 1.08%"));
  bool flag = false;
  for (const std::string& f : e.launch_flags) flag = flag || f == "--mamba-ssm-cache-dtype float32";
  EXPECT_TRUE(flag);

  std::ostringstream out, err;
  EXPECT_EQ(cli::Run({"infer", "nvidia/NVIDIA-Nemotron-Nano-9B-v2", "--runtime", "vllm",
                      "--mamba-ssm-cache-dtype", "fp16"},
                     out, err),
            2);
  EXPECT_EQ(err.str(),
            "vramfit: error: --mamba-ssm-cache-dtype: vLLM's MambaDType is auto or float32, got 'fp16'\n");
}

}  // namespace
}  // namespace vramfit
