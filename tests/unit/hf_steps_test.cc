// The hf runtime's steps (src/core/runtimes/hf_steps.h), one at a time,
// against numbers computed by hand from docs/estimation.md section 5 and the
// library sources it cites. The whole-estimate tests are hf_runtime_test.cc.
#include <gtest/gtest.h>

#include "core/runtimes/hf_steps.h"
#include "test_util.h"
#include "vramfit/workload.h"

namespace vramfit::runtimes::hf {
namespace {

using testing::CatalogModelOrDie;
using testing::Gpus;

constexpr int64_t MiBs(int64_t n) { return n * kMiB; }

InferenceWorkload ResolveOrDie(const Model& m, const InferenceSettings& s,
                               const DeviceSet& devices = {}) {
  auto w = ResolveInference(m, s, devices, nullptr);
  EXPECT_TRUE(w.ok()) << (w.ok() ? "" : w.error().message);
  return w.ok() ? *w : InferenceWorkload{};
}

InferenceSettings Tokens(int64_t prompt, int64_t new_tokens, int64_t batch = 1) {
  InferenceSettings s;
  s.prompt = prompt;
  s.new_tokens = new_tokens;
  s.batch = batch;
  return s;
}

// The first layer of the given kind (sliding or full attention).
int64_t FirstLayer(const ModelSpec& s, LayerAttention kind) {
  for (int64_t i = 0; i < s.num_hidden_layers; ++i) {
    if (s.layers[i].attention == kind) return i;
  }
  ADD_FAILURE() << "no such layer";
  return 0;
}

// CUDACachingAllocator (c10/cuda/CUDACachingAllocator.cpp): round_size to
// 512 B (kMinBlockSize); a request of at least kMinLargeAlloc (10 MiB) gets
// its own segment rounded to kRoundLarge (2 MiB).
TEST(HfStepsTest, SegmentBytesRoundsLikeTheCachingAllocator) {
  const struct {
    int64_t x, want;
  } cases[] = {
      {0, 512},                        // max(x, 1), then 512 B
      {1, 512},
      {512, 512},
      {513, 1024},
      {MiBs(9) + 1, MiBs(9) + 512},    // shared-segment size: 512 B rounding only
      {MiBs(10) - 1, MiBs(10)},        // rounds to 10 MiB, already a 2 MiB multiple
      {MiBs(10) + 1, MiBs(12)},        // own segment, next 2 MiB
      {MiBs(32), MiBs(32)},
      {67092480, MiBs(64)},            // Llama-3.1-8B K of one layer, 8 seq x 4095 tok x 2 KiB
  };
  for (const auto& c : cases) EXPECT_EQ(SegmentBytes(c.x), c.want) << c.x;
}

// CublasHandlePool.cpp parseChosenWorkspaceSize: ":4096:2:16:8" =
// 4096 KiB x 2 + 16 KiB x 8 = 8,519,680 B; 32 MiB on sm >= 9.0.
TEST(HfStepsTest, CublasWorkspacePerGpu) {
  const struct {
    const char* gpu;
    int64_t want;
  } cases[] = {
      {"", 8519680},          // no --gpu
      {"A100-80GB", 8519680}, // sm 8.0
      {"RTX-4090", 8519680},  // sm 8.9
      {"H100-80GB", 33554432},
      {"B200", 33554432},     // sm 10.0
      {"RTX-5090", 33554432}, // sm 12.0
      {"MI300X", 8519680},    // not NVIDIA
  };
  for (const auto& c : cases) {
    std::optional<GpuSpec> gpu;
    if (*c.gpu) gpu = Gpus(c.gpu).gpus.at(0);
    EXPECT_EQ(CublasWorkspace(gpu).value(), c.want) << c.gpu;
  }
}

// KV heads per rank: split over min(tp, Hkv), so replicated when tp > Hkv
// (docs 5.11); MLA's per-head K/V split by tp.
TEST(HfStepsTest, JobLayoutSplitsHeadsAndReplicatesKv) {
  const struct {
    const char* model;
    int64_t tp;
    int64_t heads, kvh, kv_k, kv_v, vocab;
  } cases[] = {
      // 32 heads, 8 KV heads of 128: K = V = 1024 elements per token.
      {"meta-llama/Llama-3.1-8B", 1, 32, 8, 1024, 1024, 128256},
      {"meta-llama/Llama-3.1-8B", 8, 4, 1, 128, 128, 16032},
      // 64 heads, 8 KV heads: at tp 16 each rank keeps one KV head (128).
      {"Qwen/Qwen2.5-72B-Instruct", 16, 4, 1, 128, 128, 9504},  // ceil(152064 / 16)
      // MLA, 16 heads: K = 16 x (128 nope + 64 rope), V = 16 x 128.
      {"deepseek-ai/DeepSeek-V2-Lite", 1, 16, 16, 3072, 2048, 102400},
      {"deepseek-ai/DeepSeek-V2-Lite", 2, 8, 8, 1536, 1024, 51200},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.model) + " tp " + std::to_string(c.tp));
    const Model m = CatalogModelOrDie(c.model);
    InferenceSettings s;
    s.tp = c.tp;
    const HfJob job = HfJobOf(m, ResolveOrDie(m, s));
    EXPECT_EQ(job.heads, c.heads);
    EXPECT_EQ(job.kvh, c.kvh);
    EXPECT_EQ(job.kv_k, c.kv_k);
    EXPECT_EQ(job.kv_v, c.kv_v);
    EXPECT_EQ(job.vocab, c.vocab);
  }
}

// The first new token comes from the prefill forward: n new tokens are
// n - 1 decode steps, the last over prompt + n - 1 cached tokens (docs 12.2).
TEST(HfStepsTest, DecodeTokens) {
  const Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  const struct {
    int64_t prompt, new_tokens;
    bool has_decode;
    int64_t decode_tokens;
  } cases[] = {
      {16, 0, false, 16},
      {16, 1, false, 16},
      {16, 2, true, 17},
      {16, 8000, true, 8015},
  };
  for (const auto& c : cases) {
    const HfJob job = HfJobOf(m, ResolveOrDie(m, Tokens(c.prompt, c.new_tokens)));
    EXPECT_EQ(job.has_decode, c.has_decode) << c.new_tokens;
    EXPECT_EQ(job.decode_tokens, c.decode_tokens) << c.new_tokens;
  }
}

// DynamicSlidingWindowLayer keeps the last W - 1 tokens from 4.56
// (cache_utils.py @004999d9); before, every layer caches every token.
TEST(HfStepsTest, CachedTokensCapSlidingLayersFrom456) {
  const Model m = CatalogModelOrDie("openai/gpt-oss-120b");  // W = 128 on 18 of 36 layers
  const int64_t sliding = FirstLayer(m.spec, LayerAttention::kSliding);
  const int64_t full = FirstLayer(m.spec, LayerAttention::kFull);
  const struct {
    const char* version;
    int64_t layer, tokens, want;
  } cases[] = {
      {"4.56", sliding, 4096, 127}, {"4.56", sliding, 100, 100}, {"4.56", full, 4096, 4096},
      {"4.55", sliding, 4096, 4096}, {"4.55", full, 4096, 4096},
  };
  for (const auto& c : cases) {
    InferenceSettings s;
    s.hf_version = *ParseHfVersion(c.version);
    const HfJob job = HfJobOf(m, ResolveOrDie(m, s));
    EXPECT_EQ(HfCachedTokens(m.spec, job, c.layer, c.tokens), c.want)
        << c.version << " layer " << c.layer << " " << c.tokens << " tok";
  }
}

// docs/estimation.md 5.3, worked.
TEST(HfStepsTest, KvBytesOfWholeModel) {
  const struct {
    const char* model;
    const char* version;
    int64_t tokens, k;
  } cases[] = {
      // 18 full layers x 4096 + 18 sliding x 127 tokens, 512 x 2 B each.
      {"openai/gpt-oss-120b", "4.56", 4096, 77838336},
      // 4.55: 36 layers x 4096 tokens x 1024 B.
      {"openai/gpt-oss-120b", "4.55", 4096, 150994944},
      // 10 global layers x 32768 + 52 local x 1023 tokens, 2048 x 2 B.
      {"google/gemma-3-27b-it", "4.56", 32768, 1560068096},
      // Llama-3.1-8B, 32 layers x 4096 tokens x 1024 x 2 B = 256 MiB.
      {"meta-llama/Llama-3.1-8B", "4.56", 4096, 268435456},
  };
  for (const auto& c : cases) {
    const Model m = CatalogModelOrDie(c.model);
    InferenceSettings s;
    s.hf_version = *ParseHfVersion(c.version);
    const HfJob job = HfJobOf(m, ResolveOrDie(m, s));
    const KvBytes kv = HfKvBytes(m.spec, job, {0, m.spec.num_hidden_layers}, c.tokens);
    EXPECT_EQ(kv.k.value(), c.k) << c.model << " " << c.version;
    EXPECT_EQ(kv.v.value(), c.k) << c.model << " " << c.version;  // K and V equally wide
  }
}

// docs 5.4 "Eager, worked": Llama-3.1-8B, s = 8192, bf16.
TEST(HfStepsTest, PrefillAttentionEagerAndSdpa) {
  const Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  InferenceSettings s;
  s.ctx = 8192;
  const HfJob job = HfJobOf(m, ResolveOrDie(m, s));
  // q, k, v, RoPE copies, out: 8192 x (3 x 32 x 128 + 3 x 8 x 128) x 2 = 240 MiB.
  const int64_t qkv = 8192LL * 15360 * 2;
  InferenceWorkload w = ResolveOrDie(m, s);
  const HfAttentionTemps sdpa = HfPrefillAttention(w, job);
  EXPECT_EQ(sdpa.attn.value(), qkv);
  EXPECT_EQ(sdpa.attn.value(), MiBs(240));
  EXPECT_EQ(sdpa.mask.value(), 0);  // sdpa passes is_causal, no mask
  w.attn = AttnImpl::kEager;
  const HfAttentionTemps eager = HfPrefillAttention(w, job);
  // + repeat_kv 8192 x 32 x 256 x 2 = 128 MiB + scores 32 x 8192^2 x (2 x 2 + 4) = 16 GiB.
  EXPECT_EQ(eager.attn.value(), qkv + MiBs(128) + 16 * kGiB);
  EXPECT_EQ(eager.mask.value(), 8192LL * 8192 * 2);  // float [1, 1, s, s] in bf16 = 128 MiB
}

// docs 5.4, MLP rows.
TEST(HfStepsTest, PrefillMlp) {
  const struct {
    const char* model;
    int64_t tokens, width, inter, mlp;
  } cases[] = {
      // gated: 3 x 14336 x 8192 tok x 2 B = 672 MiB (docs 5.4).
      {"meta-llama/Llama-3.1-8B", 8192, 3, 14336, 3LL * 14336 * 8192 * 2},
      // fused gate_up (Phi-3): the 2I projection stays alive, 4 x 8192.
      {"microsoft/Phi-3-mini-4k-instruct", 100, 4, 8192, 4LL * 8192 * 100 * 2},
      // GELU MLP (GPT-2): fc1 output + activation, 2 x 3072.
      {"openai-community/gpt2", 100, 2, 3072, 2LL * 3072 * 100 * 2},
      // Mixtral: the expert term (3 x 14336 + h) x 2 B + 8 experts x 4 B
      // router logits per token is larger than the dense 3 x 14336 x 2 B.
      {"mistralai/Mixtral-8x7B-v0.1", 100, 3, 14336, 100LL * (3 * 14336 + 4096) * 2 + 100LL * 8 * 4},
      // Qwen3-30B-A3B: every layer is MoE, but the unused dense width 6144
      // (3 x 6144 x 2 B = 36,864 B/token) beats the expert term
      // (3 x 768 + 2048) x 2 + 128 x 4 = 9,216 B/token, so it is used.
      {"Qwen/Qwen3-30B-A3B", 100, 3, 6144, 3LL * 6144 * 100 * 2},
  };
  for (const auto& c : cases) {
    const Model m = CatalogModelOrDie(c.model);
    InferenceSettings s;
    s.ctx = c.tokens;
    const HfMlpTemps t = HfPrefillMlp(m.spec, HfJobOf(m, ResolveOrDie(m, s)));
    EXPECT_EQ(t.width, c.width) << c.model;
    EXPECT_EQ(t.inter, c.inter) << c.model;
    EXPECT_EQ(t.mlp.value(), c.mlp) << c.model;
  }
}

// Llama-3.1-8B: the largest quantized linear is gate/up/down,
// 14336 x 4096 = 58,720,256 elements (lm_head stays 16-bit); out_max 14336.
TEST(HfStepsTest, QuantTransients) {
  const Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  const int64_t n_max = 14336LL * 4096;
  const struct {
    const char* quant;
    int64_t int8_acc, dequant, gptq_buf, load;
  } cases[] = {
      {"none", 0, 0, 0, 0},
      // bnb 4-bit 0.41-0.49: stored 16-bit + compute copies, (2 + 2) B.
      {"nf4", 0, n_max * 4, 0, n_max * 2},
      // MatMul8bitLt, 100 tokens: 100 x (4 x 14336 + max(14336, 4096));
      // load: 16-bit copy before quantizing = 112 MiB (docs 5.8).
      {"int8", 100LL * (4 * 14336 + 14336), 0, 0, MiBs(112)},
      // exllama temp_dq: 2 B x max(in x out).
      {"gptq-int4", 0, 0, n_max * 2, 0},
  };
  for (const auto& c : cases) {
    InferenceSettings s;
    s.ctx = 100;
    s.quant = *ParseWeightFormat(c.quant);
    const HfJob job = HfJobOf(m, ResolveOrDie(m, s));
    const HfMlpTemps mlp = HfPrefillMlp(m.spec, job);
    const HfQuantTemps q = HfQuantTransients(job, mlp.inter, /*has_layers=*/true);
    EXPECT_EQ(q.int8_acc.value(), c.int8_acc) << c.quant;
    EXPECT_EQ(q.dequant.value(), c.dequant) << c.quant;
    EXPECT_EQ(q.gptq_buf.value(), c.gptq_buf) << c.quant;
    EXPECT_EQ(q.load.value(), c.load) << c.quant;
    // A stage without layers dequantizes nothing.
    EXPECT_EQ(HfQuantTransients(job, mlp.inter, false).dequant.value(), 0) << c.quant;
  }
}

// docs 5.6 and 5.12: Llama-3.1-8B, 8 sequences of 2048 prompt tokens, bf16.
TEST(HfStepsTest, LogitsPerTransformersVersion) {
  const Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  const int64_t b = 8, s = 2048, v = 128256;
  const struct {
    const char* version;
    int64_t prefill;
  } cases[] = {
      {"4.33", b * s * v * (2 + 4)},  // every prompt position, bf16 + fp32 upcast
      {"4.44", b * s * v * (2 + 4)},
      {"4.45", b * v * (2 + 8)},      // last position, upcast in the model and by generate
      {"4.46", b * v * (2 + 4)},      // last position + generate's fp32 copy = 6,156,288
      {"4.56", 6156288},
  };
  for (const auto& c : cases) {
    InferenceSettings st = Tokens(s, 2048, b);
    st.hf_version = *ParseHfVersion(c.version);
    const HfJob job = HfJobOf(m, ResolveOrDie(m, st));
    const HfLogits l = HfLogitsOf(ResolveOrDie(m, st), job, /*has_head=*/true);
    EXPECT_EQ(l.prefill.value(), c.prefill) << c.version;
    EXPECT_EQ(l.decode.value(), b * v * (2 + 4)) << c.version;  // one position per step
    const HfLogits none = HfLogitsOf(ResolveOrDie(m, st), job, /*has_head=*/false);
    EXPECT_EQ(none.prefill.value() + none.decode.value(), 0) << c.version;
  }
}

// docs 5.7 and 5.13: Llama-3.1-8B, --batch 8 --prompt 2048 --new 2048. The
// last step caches T = 2048 + 2048 - 1 = 4095 tokens (docs 5.13's table
// writes 4096).
TEST(HfStepsTest, DecodeTemporaries) {
  const Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  const int64_t T = 4095;
  const struct {
    const char* version;
    int64_t cat_copy;
  } cases[] = {
      // >= 4.42: torch.cat of one layer's K: 8 x 4095 x 1024 x 2 B.
      {"4.42", 8 * T * 1024 * 2},
      {"4.56", 8 * T * 1024 * 2},
      // < 4.42: the previous step's legacy tuple, a second full KV:
      // 2 x 32 layers x 8 x 4095 x 1024 x 2 B.
      {"4.41", 2 * 32 * 8 * T * 1024 * 2},
  };
  for (const auto& c : cases) {
    InferenceSettings st = Tokens(2048, 2048, 8);
    st.hf_version = *ParseHfVersion(c.version);
    const InferenceWorkload w = ResolveOrDie(m, st);
    const HfJob job = HfJobOf(m, w);
    const HfDevice dev = HfDeviceOf(m.spec, job, {}, 0, 0);
    const KvBytes full = HfKvBytes(m.spec, job, dev.range, job.decode_tokens);
    const HfDecode d = HfDecodeTemporaries(m.spec, w, job, dev, HfPrefillMlp(m.spec, job), full);
    // 8 x (2 x 4096 + 3 x 14336 + 3 x 32 x 128) x 2 B (docs 5.13).
    EXPECT_EQ(d.act.value(), 1015808) << c.version;
    EXPECT_EQ(d.cat_copy.value(), c.cat_copy) << c.version;
  }
  // Without a decode step there is nothing.
  const InferenceWorkload w = ResolveOrDie(m, Tokens(2048, 1, 8));
  const HfJob job = HfJobOf(m, w);
  const HfDevice dev = HfDeviceOf(m.spec, job, {}, 0, 0);
  const HfDecode d = HfDecodeTemporaries(m.spec, w, job, dev, HfPrefillMlp(m.spec, job), {});
  EXPECT_EQ(d.act.value() + d.cat_copy.value(), 0);
}

// docs 5.1: decode only when the job decodes and decode > prefill; load
// when it exceeds both.
TEST(HfStepsTest, PeakPhase) {
  const struct {
    int64_t load, prefill, decode;
    bool has_decode;
    HfPhase want;
  } cases[] = {
      {10, 20, 30, true, HfPhase::kDecode},
      {10, 20, 30, false, HfPhase::kPrefill},  // no decode step: decode never wins
      {10, 30, 30, true, HfPhase::kPrefill},   // a tie stays at prefill
      {31, 20, 30, true, HfPhase::kLoad},
      {30, 20, 30, true, HfPhase::kDecode},    // load must exceed both
  };
  for (const auto& c : cases) {
    const HfPhaseTotals t{Bytes(c.load), Bytes(c.prefill), Bytes(c.decode)};
    EXPECT_EQ(HfPeakPhase(t, c.has_decode), c.want)
        << c.load << " " << c.prefill << " " << c.decode << " " << c.has_decode;
  }
  EXPECT_STREQ(HfPhaseName(HfPhase::kLoad), "load");
  EXPECT_STREQ(HfPhaseName(HfPhase::kPrefill), "prefill");
  EXPECT_STREQ(HfPhaseName(HfPhase::kDecode), "decode");
}

// Device layout: device_map="auto" splits layers evenly (StageLayers); the
// tied head runs on stage 0, an untied one on the last (docs 5.11).
TEST(HfStepsTest, DeviceLayout) {
  const struct {
    const char* model;
    int64_t tp, pp, stage, rank;
    const char* name;
    int64_t first, last;
    bool has_head;
  } cases[] = {
      {"HuggingFaceTB/SmolLM2-135M", 1, 2, 0, 0, "gpu0", 0, 15, true},  // tied, 30 layers
      {"HuggingFaceTB/SmolLM2-135M", 1, 2, 1, 0, "gpu1", 15, 30, false},
      {"meta-llama/Llama-3.1-8B", 1, 2, 0, 0, "gpu0", 0, 16, false},   // untied
      {"meta-llama/Llama-3.1-8B", 1, 2, 1, 0, "gpu1", 16, 32, true},
      {"meta-llama/Llama-3.1-8B", 2, 2, 1, 1, "gpu3", 16, 32, true},   // stage x tp + rank
      {"meta-llama/Llama-3.1-8B", 1, 3, 0, 0, "gpu0", 0, 11, false},   // 32 = 11 + 11 + 10
  };
  for (const auto& c : cases) {
    const Model m = CatalogModelOrDie(c.model);
    InferenceSettings s;
    s.tp = c.tp;
    s.pp = c.pp;
    const HfJob job = HfJobOf(m, ResolveOrDie(m, s));
    const HfDevice d = HfDeviceOf(m.spec, job, {}, c.stage, c.rank);
    EXPECT_EQ(d.name, c.name) << c.model;
    EXPECT_EQ(d.range.first, c.first) << c.model << " " << c.name;
    EXPECT_EQ(d.range.last, c.last) << c.model << " " << c.name;
    EXPECT_EQ(d.has_head, c.has_head) << c.model << " " << c.name;
    EXPECT_FALSE(d.gpu.has_value());
  }
}

// docs 5.9 and 5.13: per K/V tensor 32 MiB at prefill (8 x 2048 x 2 KiB)
// -> 64 MiB at the last step leaves 16 segments of 32, 34, ..., 62 MiB =
// 752 MiB; 64 tensors = 47 GiB, bounded by the KV growth
// KV(4095) - KV(2048) = 2 x 32 x 8 x 2047 x 2 KiB = 2,146,435,072 B.
TEST(HfStepsTest, OutgrownSegmentsAndReserve) {
  const Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  const InferenceWorkload w = ResolveOrDie(m, Tokens(2048, 2048, 8), Gpus("H100-80GB"));
  const HfJob job = HfJobOf(m, w);
  const HfDevice dev = HfDeviceOf(m.spec, job, Gpus("H100-80GB"), 0, 0);
  EXPECT_EQ(HfOutgrownSegments(m.spec, job, dev.range).value(), 64 * MiBs(752));
  const KvBytes pre = HfKvBytes(m.spec, job, dev.range, job.prompt);
  const KvBytes full = HfKvBytes(m.spec, job, dev.range, job.decode_tokens);
  const std::vector<StorageParts> storage = HfGroupStorage(m, w);
  // allocated and prefill totals as hf_runtime's whole estimate has them
  // (docs 5.13, with T = 4095).
  const Bytes allocated(20462260224);
  const Bytes prefill(19925438464);
  const HfReserve r =
      HfAllocatorReserve(m, storage, job, dev, HfPhase::kDecode, allocated, prefill, pre, full);
  EXPECT_EQ(r.rounding.value(), 0);  // every bf16 tensor a multiple of 2 MiB
  EXPECT_EQ(r.freed.value(), 0);     // decode total > prefill total
  EXPECT_EQ(r.growth.value(), 2146435072);
  EXPECT_EQ(r.component.bytes.value(), 2146435072);

  // On a GPU with 1 MiB left after allocated + rounding + context, the
  // growth is capped at that 1 MiB (the allocator frees cached blocks
  // before an OOM).
  HfDevice small = dev;
  small.gpu->capacity = allocated + MiB(kTorchCudaContextMiB) + MiB(1);
  const HfReserve capped =
      HfAllocatorReserve(m, storage, job, small, HfPhase::kDecode, allocated, prefill, pre, full);
  EXPECT_EQ(capped.growth.value(), MiBs(1));
  // Without a decode step nothing grows.
  const InferenceWorkload w1 = ResolveOrDie(m, Tokens(2048, 1, 8));
  EXPECT_EQ(HfOutgrownSegments(m.spec, HfJobOf(m, w1), dev.range).value(), 0);
}

// SmolLM2-135M bf16: 61 norm weights (2 per layer x 30 + the final norm) of
// 576 x 2 = 1,152 B each round up to 1,536 B; every other tensor is a
// multiple of 512 B below 10 MiB or of 2 MiB above.
TEST(HfStepsTest, SegmentRoundingOfWeights) {
  const Model m = CatalogModelOrDie("HuggingFaceTB/SmolLM2-135M");
  InferenceSettings s;
  s.ctx = 100;
  const InferenceWorkload w = ResolveOrDie(m, s);
  const HfJob job = HfJobOf(m, w);
  const HfDevice dev = HfDeviceOf(m.spec, job, {}, 0, 0);
  EXPECT_EQ(HfSegmentRounding(m, HfGroupStorage(m, w), job, dev).value(), 61 * 384);
}

// The echo's keys and order (the renderers print it as is).
TEST(HfStepsTest, EchoOrder) {
  const Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  InferenceSettings s;
  s.quant = *ParseWeightFormat("gptq-int4");
  Echo echo;
  HfEcho(ResolveOrDie(m, s), &echo);
  const char* keys[] = {"runtime", "dtype", "quant", "batch", "prompt", "new", "ctx", "kv_dtype",
                        "attn", "tp", "pp", "transformers", "group_size"};
  ASSERT_EQ(echo.size(), std::size(keys));
  for (size_t i = 0; i < echo.size(); ++i) EXPECT_EQ(echo[i].first, keys[i]) << i;
  EXPECT_EQ(std::get<std::string>(echo[11].second), "4.56");
  EXPECT_EQ(std::get<int64_t>(echo[12].second), 128);
}

// The modelled-stack note names what each version gate changes.
TEST(HfStepsTest, NotesPerVersion) {
  const struct {
    const char* model;
    const char* version;
    const char* stack_note;
  } cases[] = {
      {"meta-llama/Llama-3.1-8B", "4.56",
       "modelled stack: transformers >= 4.56 generate() with DynamicCache, last-position logits; "
       "PyTorch caching allocator without expandable_segments"},
      {"meta-llama/Llama-3.1-8B", "4.41",
       "modelled stack: transformers 4.41 generate(); legacy cache tuples (2 x KV while decoding); "
       "logits for every prompt position, upcast to fp32; sliding-window layers cache every token"},
      {"meta-llama/Llama-3.1-8B", "4.45",
       "modelled stack: transformers 4.45 generate(); sliding-window layers cache every token"},
      {"deepseek-ai/DeepSeek-V2-Lite", "4.56",
       "transformers caches DeepSeek MLA as per-head K and V (not the latent), so its KV cache is "
       "far larger than in vLLM or llama.cpp"},
  };
  for (const auto& c : cases) {
    const Model m = CatalogModelOrDie(c.model);
    InferenceSettings s;
    s.hf_version = *ParseHfVersion(c.version);
    const InferenceWorkload w = ResolveOrDie(m, s);
    std::vector<std::string> notes;
    HfNotes(w, HfJobOf(m, w), &notes);
    ASSERT_GE(notes.size(), 2u);
    EXPECT_EQ(notes[0], c.stack_note) << c.version;
    EXPECT_EQ(notes.back(),
              "cuda_context is 512 MiB per process (CUDA >= 11.7 lazy loading); older stacks take "
              "up to 1.3 GiB (--cuda-context MIB gives a measured one)");
  }
}

// One device assembled from the steps: parent == sum of children, and the
// totals as docs 5.13 adds them (T = 4095).
TEST(HfStepsTest, DeviceEstimateAddsUp) {
  const Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  const DeviceSet gpus = Gpus("H100-80GB");
  const InferenceWorkload w = ResolveOrDie(m, Tokens(2048, 2048, 8), gpus);
  const HfJob job = HfJobOf(m, w);
  const DeviceEstimate d = HfDeviceEstimate(m, w, job, HfGroupStorage(m, w), gpus, 0, 0);
  ASSERT_TRUE(CheckTree(d.components).ok());
  EXPECT_EQ(Total(d.components), d.total);
  EXPECT_EQ(d.peak_phase, "decode");
  // weights 16,060,522,496 + KV(4095) 4,293,918,720 + decode 1,015,808 +
  // cat copy 67,092,480 + cuBLAS 33,554,432 + logits 6,156,288.
  EXPECT_EQ(d.allocated_peak->value(), 20462260224);
  EXPECT_EQ(d.reserved_peak->value(), 20462260224 + 2146435072);
  EXPECT_EQ(d.total.value(), 20462260224 + 2146435072 + MiBs(512));
}

}  // namespace
}  // namespace vramfit::runtimes::hf
