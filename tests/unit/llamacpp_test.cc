// The llamacpp runtime: KV, compute and output buffers, -ngl placement and
// layer splits, checked by hand against llama.cpp's sizing code and the
// buffers its load logs printed (../shared/truth/llamacpp.jsonl, case ids).
// Every term: docs/estimation.md, "llamacpp runtime".
#include <gtest/gtest.h>

#include "vramfit/app/settings.h"
#include "test_util.h"
#include "vramfit/gguf_mix.h"
#include "vramfit/quant.h"

namespace vramfit {
namespace {

using testing::CatalogModelOrDie;
using testing::ComponentBytes;
using testing::EstimateOrDie;
using testing::Gpus;
using testing::GgufTensor;
using testing::TinyGgufModel;

constexpr int64_t kMiB = 1 << 20;

InferenceSettings Llama(int64_t ctx, const char* quant = nullptr) {
  InferenceSettings s;
  s.runtime = Runtime::kLlamaCpp;
  s.ctx = ctx;
  if (quant != nullptr) s.quant = *ParseWeightFormat(quant);
  return s;
}

int64_t HostBytes(const Estimate& e, const std::string& name) {
  const Component* c = Find(e.host, name);
  return c ? c->bytes.value() : -1;
}

const Component* Child(const DeviceEstimate& d, const std::string& parent, const std::string& child) {
  const Component* p = Find(d.components, parent);
  return p ? Find(p->children, child) : nullptr;
}

std::string Echo(const Estimate& e, const std::string& key) {
  for (const auto& [k, v] : e.workload) {
    if (k != key) continue;
    if (const auto* s = std::get_if<std::string>(&v)) return *s;
    if (const auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
    if (const auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  }
  return "?";
}

// Buffers from the load logs, in bytes, for settings that reproduce the
// case (llama_kv_cache: row(type, n_embd_gqa) x cells per layer).
TEST(LlamaCppTest, KvCacheMatchesLogs) {
  struct Case {
    const char* source;
    const char* model;
    int64_t ctx;
    int64_t build;
    bool fa;
    int64_t kv_bytes;
  } cases[] = {
      // Dense, GQA 8 x 128: 32 layers x 32000 cells x 2 x 1024 x 2 B = 4000 MiB.
      {"L28", "mistralai/Mistral-7B-Instruct-v0.2", 32000, 2961, false, 32LL * 32000 * 2 * 1024 * 2},
      // MoE, GQA 4 x 128: 48 x 16384 x 2 x 512 x 2 B = 1536 MiB.
      {"L01", "Qwen/Qwen3-30B-A3B", 16384, 5622, false, 48LL * 16384 * 2 * 512 * 2},
      // MLA latent: 61 x 16384 x (576 + 512) x 2 B = 1098 + 976 = 2074 MiB.
      {"L07", "deepseek-ai/DeepSeek-V3", 16384, 5331, true, 61LL * 16384 * (576 + 512) * 2},
      // Since PR #19067 MLA keeps no V: K only.
      {"PR #19067", "deepseek-ai/DeepSeek-V3", 16384, 8000, true, 61LL * 16384 * 576 * 2},
      // Sliding window (Gemma-3 27B: 10 global of 62 layers, window 1024):
      // 10 x 32768 + 52 x pad(1024 + 512, 256) = 1536 cells, 16 x 128 wide.
      {"iswa", "google/gemma-3-27b-it", 32768, 8000, true, (10LL * 32768 + 52 * 1536) * 2 * 2048 * 2},
      // Before the iswa cache every layer keeps the whole context (15872 MiB,
      // as ik_llama.cpp's L14 printed).
      {"L14", "google/gemma-3-27b-it", 32768, 5000, true, 62LL * 32768 * 2 * 2048 * 2},
  };
  for (const Case& c : cases) {
    InferenceSettings s = Llama(c.ctx);
    s.llamacpp.build = c.build;
    s.llamacpp.flash_attn = c.fa;
    s.llamacpp.gpu_layers = 99;
    const Estimate e = EstimateOrDie(CatalogModelOrDie(c.model), s);
    EXPECT_EQ(ComponentBytes(e.devices[0], "kv_cache"), c.kv_bytes) << c.source;
  }
  // The MiB the logs printed.
  EXPECT_EQ(32LL * 32000 * 2 * 1024 * 2, 4000 * kMiB);
  EXPECT_EQ(61LL * 16384 * (576 + 512) * 2, 2074 * kMiB);
  EXPECT_EQ((10LL * 32768 + 52 * 1536) * 2 * 2048 * 2, 3184 * kMiB);
}

// L08: an old (pre-MLA, b4905) DeepSeek R1: per-head K (128 x 192) and V
// (128 x 128), -c 2048 with 4 sequences, no -ngl (0 in that build): the
// whole cache is in host memory, 9760 MiB; output buffer 4 x vocab x 4 B.
TEST(LlamaCppTest, OldDeepSeekOnTheHost) {
  InferenceSettings s = Llama(2048);
  s.llamacpp.build = 4905;
  s.llamacpp.parallel = 4;
  const Estimate e = EstimateOrDie(CatalogModelOrDie("deepseek-ai/DeepSeek-R1"), s);
  EXPECT_EQ(HostBytes(e, "kv_cache"), 61LL * 2048 * (24576 + 16384) * 2);
  EXPECT_EQ(HostBytes(e, "kv_cache"), 9760 * kMiB);
  EXPECT_EQ(ComponentBytes(e.devices[0], "kv_cache"), 0);
  EXPECT_EQ(HostBytes(e, "output_buffer"), 129280LL * 4 * 4);  // 1.97 MiB
  EXPECT_EQ(Echo(e, "offloaded"), "0/62");
}

// L04: q8_0 K and V (34 B per 32), 94 layers x 16384 cells x 2 x 544 B =
// 1598 MiB, in host memory with 0 layers offloaded.
TEST(LlamaCppTest, QuantizedKv) {
  InferenceSettings s = Llama(16384, "Q6_K");
  s.llamacpp.build = 5269;
  s.llamacpp.flash_attn = true;
  s.llamacpp.cache_type_k = DType::kQ8_0;
  s.llamacpp.cache_type_v = DType::kQ8_0;
  s.llamacpp.gpu_layers = 0;
  const Estimate e = EstimateOrDie(CatalogModelOrDie("Qwen/Qwen3-235B-A22B"), s, Gpus("RTX-3090x2"));
  EXPECT_EQ(HostBytes(e, "kv_cache"), 94LL * 16384 * 2 * (512 / 32 * 34));
  EXPECT_EQ(HostBytes(e, "kv_cache"), 1598 * kMiB);
  EXPECT_EQ(e.kv_bytes_per_token.value(), 94LL * 2 * 544);
}

// Cells: before PR #17046 n_ctx is padded to 32 without flash attention
// (256 with it); after, to 256 always; -np N splits it into N streams of
// pad(n_ctx / N, 256).
TEST(LlamaCppTest, CellPadding) {
  const Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  const auto cells = [&](int64_t ctx, int64_t build, bool fa, int64_t np) {
    InferenceSettings s = Llama(ctx);
    s.llamacpp.build = build;
    s.llamacpp.flash_attn = fa;
    s.llamacpp.parallel = np;
    return Echo(EstimateOrDie(m, s), "kv_cells");
  };
  EXPECT_EQ(cells(4000, 5000, false, 1), "4000");
  EXPECT_EQ(cells(4000, 5000, true, 1), "4096");
  EXPECT_EQ(cells(4000, 8000, false, 1), "4096");
  EXPECT_EQ(cells(8192, 8000, true, 3), std::to_string(3 * 2816));  // pad(2730, 256) = 2816
  EXPECT_EQ(cells(8192, 5000, true, 3), "8192");
}

// Compute buffers (graph_reserve over ubatch T = min(n_ctx, n_ubatch)).
// L28, Mistral-7B at 32000 cells, no flash attention, T = 512: KQ 32 heads
// x 32000 x 512 x 4 B + f32 mask 32000 x 512 x 4 B + max(4 x 4096,
// 32 x 128 + 8 x 256 + 2 x 4096) x 512 x 4 B = 2094.5 MiB, as printed; the
// host buffer: inp_embd 4096 x 512 x 4 + mask + 3 int inputs x 512 x 4 B
// (70.51 MiB printed).
TEST(LlamaCppTest, ComputeBufferNoFlashAttention) {
  InferenceSettings s = Llama(32000, "Q2_K");
  s.llamacpp.build = 2961;
  s.llamacpp.gpu_layers = 99;
  const Estimate e = EstimateOrDie(CatalogModelOrDie("mistralai/Mistral-7B-Instruct-v0.2"), s);
  const int64_t kq = 32LL * 32000 * 512 * 4, mask = 32000LL * 512 * 4, proj = 16384LL * 512 * 4;
  EXPECT_EQ(ComponentBytes(e.devices[0], "compute_buffer"), kq + mask + proj);
  EXPECT_EQ(kq + mask + proj, 2094 * kMiB + kMiB / 2);
  EXPECT_EQ(HostBytes(e, "compute_buffer"), 4096LL * 512 * 4 + mask + 3 * 512 * 4);
  // ggml-cuda's pool converts the softmaxed KQ to f16 for the KQV matmul.
  const Component* pool = Child(e.devices[0], "cuda_context", "ggml-cuda pool (KQ to f16)");
  ASSERT_NE(pool, nullptr);
  EXPECT_EQ(pool->bytes.value(), 32LL * 32000 * 512 * 2);
  EXPECT_EQ(HostBytes(e, "output_buffer"), 32000 * 4);  // 0.12 MiB
}

// Flash attention, output-dominated (ik_llama.cpp L16 printed 633.5 MiB
// for Qwen3-32B, -ub 1024): (151936 vocab + 2 x 5120) x 1024 x 4 B.
TEST(LlamaCppTest, ComputeBufferFlashAttention) {
  InferenceSettings s = Llama(8192, "Q5_K_M");
  s.llamacpp.ubatch = 1024;
  s.llamacpp.flash_attn = true;
  const Estimate e = EstimateOrDie(CatalogModelOrDie("Qwen/Qwen3-32B"), s, Gpus("A100-80GB"));
  EXPECT_EQ(ComponentBytes(e.devices[0], "compute_buffer"), (151936LL + 2 * 5120) * 1024 * 4);
  EXPECT_EQ((151936LL + 2 * 5120) * 1024 * 4, 633 * kMiB + kMiB / 2);
  EXPECT_EQ(Child(e.devices[0], "compute_buffer", "output (logits)")->bytes.value(),
            (151936LL + 2 * 5120) * 1024 * 4);
  // f16 KV: no pool term with flash attention.
  EXPECT_EQ(Child(e.devices[0], "cuda_context", "ggml-cuda pool (KQ to f16)"), nullptr);
}

// 0 layers offloaded with a GPU present (op offload): the first GPU copies
// the host output weight for the large-batch output matmul. Llama-2-13B
// Q8_0, n_ctx 512: output 32000 x 5440 B + (32000 + 2 x 5120) x 512 x 4 B
// = 248.52 MiB (ik_llama.cpp L17 printed 248.54).
TEST(LlamaCppTest, ZeroLayersStageTheOutputMatmul) {
  InferenceSettings s = Llama(512, "Q8_0");
  s.llamacpp.build = 5000;
  const Estimate e = EstimateOrDie(CatalogModelOrDie("meta-llama/Llama-2-13b-hf"), s);
  EXPECT_EQ(Echo(e, "offloaded"), "0/41");  // -ngl defaulted to 0 before PR #15434
  EXPECT_EQ(ComponentBytes(e.devices[0], "weights"), 0);
  EXPECT_EQ(ComponentBytes(e.devices[0], "compute_buffer"), 32000LL * 5440 + (32000 + 2 * 5120) * 512 * 4);
  EXPECT_EQ(HostBytes(e, "kv_cache"), 40LL * 512 * 2 * 5120 * 2);  // 400 MiB
}

// -ngl 10 on 32 blocks + the output layer. Since PR #18148 the output layer
// goes first: blocks 23..31 and the output on the GPU. Before: blocks 22..31,
// the output on the CPU.
TEST(LlamaCppTest, PartialOffload) {
  const Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  const int64_t kv_layer = 4096LL * 2 * 1024 * 2;  // 4096 cells, K + V, f16
  const int64_t head = 128256LL * (4096 / 256 * 210);  // output.weight Q6_K
  for (const int64_t build : {int64_t{8000}, int64_t{5000}}) {
    InferenceSettings s = Llama(4096, "Q4_K_M");
    s.llamacpp.build = build;
    s.llamacpp.gpu_layers = 10;
    const Estimate e = EstimateOrDie(m, s, Gpus("RTX-4090"));
    const bool out_first = build >= llamacpp_build::kOutputFirst;
    EXPECT_EQ(Echo(e, "offloaded"), "10/33");
    EXPECT_EQ(ComponentBytes(e.devices[0], "kv_cache"), (out_first ? 9 : 10) * kv_layer) << build;
    EXPECT_EQ(HostBytes(e, "kv_cache"), (out_first ? 23 : 22) * kv_layer) << build;
    const Component* lm = Child(e.devices[0], "weights", "lm_head");
    if (out_first) {
      ASSERT_NE(lm, nullptr);
      EXPECT_EQ(lm->bytes.value(), head);
    } else {
      EXPECT_EQ(lm, nullptr);
    }
    // GPU + host weights are the whole file.
    const int64_t host_w = HostBytes(e, "weights");
    EXPECT_EQ(ComponentBytes(e.devices[0], "weights") + host_w, e.weight_bytes.value());
  }
}

// Two equal GPUs: splits [0.5, 1]; slot il goes to GPU0 while il / 33 < 0.5
// (blocks 0..16), GPU1 takes blocks 17..31 and the output layer.
TEST(LlamaCppTest, LayerSplitOverTwoGpus) {
  const Estimate e =
      EstimateOrDie(CatalogModelOrDie("meta-llama/Llama-3.1-8B"), Llama(4096, "Q4_K_M"), Gpus("A100-80GBx2"));
  ASSERT_EQ(e.devices.size(), 2u);
  const int64_t kv_layer = 4096LL * 2 * 1024 * 2;
  EXPECT_EQ(ComponentBytes(e.devices[0], "kv_cache"), 17 * kv_layer);
  EXPECT_EQ(ComponentBytes(e.devices[1], "kv_cache"), 15 * kv_layer);
  EXPECT_EQ(Child(e.devices[0], "weights", "lm_head"), nullptr);
  EXPECT_NE(Child(e.devices[1], "weights", "lm_head"), nullptr);
  // Only the output device pays the logits term.
  EXPECT_EQ(Child(e.devices[1], "compute_buffer", "output (logits)")->bytes.value(),
            (128256LL + 2 * 4096) * 512 * 4);
  EXPECT_EQ(Child(e.devices[0], "compute_buffer", "output (logits)"), nullptr);
  EXPECT_EQ(e.launch_flags.back(), "-ts 79,79");  // 81050 MiB each
}

// A tied head is duplicated onto the output layer's device (L14: Gemma-3
// 27B's CUDA0 model buffer is the file minus token_embd plus token_embd).
TEST(LlamaCppTest, TiedHeadCopiedToTheGpu) {
  const Estimate e = EstimateOrDie(CatalogModelOrDie("google/gemma-3-27b-it"), Llama(4096, "Q4_K_M"));
  const Component* lm = Child(e.devices[0], "weights", "lm_head");
  ASSERT_NE(lm, nullptr);
  const Component* embed = Find(Find(e.host, "weights")->children, "embed");
  ASSERT_NE(embed, nullptr);
  EXPECT_EQ(lm->bytes, embed->bytes);
  EXPECT_EQ(ComponentBytes(e.devices[0], "weights"), e.weight_bytes.value());
}

// From a .gguf file: the file's own tensors, placed by name and layer.
TEST(LlamaCppTest, FileTensorsPlacement) {
  Model m = TinyGgufModel("tiny.gguf", "llama", /*moe=*/false, /*tied=*/true);
  const auto t = [](const char* name, Role role, int64_t layer, int64_t bytes) {
    return GgufTensor(name, role, layer, bytes, {256, 4});
  };
  m.file_tensors = {t("token_embd.weight", Role::kEmbed, -1, 1000),
                    t("rope_freqs.weight", Role::kAttention, -1, 8),
                    t("blk.0.attn_q.weight", Role::kAttention, 0, 100),
                    t("blk.1.attn_q.weight", Role::kAttention, 1, 200),
                    t("blk.2.nextn.eh_proj.weight", Role::kMtp, 2, 50),
                    t("output_norm.weight", Role::kNorm, -1, 16)};
  Estimate e = EstimateOrDie(m, Llama(256));
  EXPECT_EQ(e.weight_bytes.value(), 1000 + 8 + 100 + 200 + 50 + 16);
  // GPU: both blocks, output_norm, and the tied head's copy of token_embd.
  EXPECT_EQ(ComponentBytes(e.devices[0], "weights"), 100 + 200 + 16 + 1000);
  EXPECT_EQ(HostBytes(e, "weights"), 1000 + 8);
  // A model read from a GGUF file launches as `llama-server -m FILE`.
  EXPECT_EQ(e.launch_command, (std::vector<std::string>{"llama-server", "-m", "tiny.gguf"}));
  // -ngl 1 (output first): only the output layer.
  InferenceSettings one = Llama(256);
  one.llamacpp.gpu_layers = 1;
  e = EstimateOrDie(m, one);
  EXPECT_EQ(ComponentBytes(e.devices[0], "weights"), 16 + 1000);
  EXPECT_EQ(HostBytes(e, "weights"), 1000 + 8 + 100 + 200);
}

TEST(LlamaCppTest, LaunchFlagsAndEcho) {
  InferenceSettings s = Llama(8192, "Q4_K_M");
  s.llamacpp.flash_attn = true;
  s.llamacpp.cache_type_k = DType::kQ8_0;
  s.llamacpp.cache_type_v = DType::kQ8_0;
  Estimate e = EstimateOrDie(CatalogModelOrDie("meta-llama/Llama-3.1-8B"), s, Gpus("RTX-4090"));
  // A catalog model has no GGUF file to name: the flags alone.
  EXPECT_TRUE(e.launch_command.empty());
  EXPECT_EQ(e.launch_flags,
            (std::vector<std::string>{"-ngl 99", "-c 8192", "-ub 512", "-fa on", "-ctk q8_0", "-ctv q8_0", "-np 1"}));
  EXPECT_EQ(Echo(e, "build"), "b8000");
  EXPECT_EQ(Echo(e, "quant"), "Q4_K_M");
  EXPECT_EQ(Echo(e, "flash_attn"), "true");
  EXPECT_EQ(Echo(e, "cache_type_k"), "q8_0");
  // Quantized K/V with flash attention: the pool holds f16 copies of one
  // layer's K and V (launch_fattn).
  EXPECT_EQ(Child(e.devices[0], "cuda_context", "ggml-cuda pool (K/V to f16)")->bytes.value(),
            8192LL * (1024 + 1024) * 2);
  // Before PR #15434 -fa was a plain switch.
  s.llamacpp.build = 5000;
  e = EstimateOrDie(CatalogModelOrDie("meta-llama/Llama-3.1-8B"), s);
  EXPECT_EQ(e.launch_flags[3], "-fa");
  // Totals: the sum of the buffers and the context.
  const DeviceEstimate& d = e.devices[0];
  EXPECT_EQ(d.total.value(), ComponentBytes(d, "weights") + ComponentBytes(d, "kv_cache") +
                                 ComponentBytes(d, "compute_buffer") + ComponentBytes(d, "cuda_context"));
  EXPECT_FALSE(d.allocated_peak.has_value());
  EXPECT_FALSE(d.reserved_peak.has_value());
}

std::string Error(const Model& m, const InferenceSettings& s, const DeviceSet& gpus = {}) {
  auto w = ResolveInference(m, s, gpus, nullptr);
  if (!w.ok()) return w.error().message;
  auto e = EstimateInference(m, *w, gpus);
  return e.ok() ? "" : e.error().message;
}

TEST(LlamaCppTest, ExactErrors) {
  const Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  InferenceSettings s = Llama(4096);
  s.llamacpp.cache_type_v = DType::kQ8_0;
  s.llamacpp.flash_attn = false;
  EXPECT_EQ(Error(m, s),
            "--cache-type-v q8_0: llama.cpp needs flash attention for a quantized V cache (--flash-attn on)");
  s.llamacpp.flash_attn.reset();
  s.llamacpp.build = 5000;  // -fa off by default then
  EXPECT_EQ(Error(m, s),
            "--cache-type-v q8_0: llama.cpp needs flash attention for a quantized V cache (--flash-attn on)");

  InferenceSettings nf4 = Llama(4096, "nf4");
  EXPECT_EQ(Error(m, nf4), "--quant nf4: llama.cpp runs GGUF files; give a GGUF file type such as Q4_K_M, "
                           "Q8_0 or F16");
  InferenceSettings tp = Llama(4096);
  tp.tp = 2;
  EXPECT_EQ(Error(m, tp, Gpus("RTX-4090x2")),
            "--tp: llama.cpp splits whole layers across GPUs (--split-mode layer); give the GPUs with --gpu "
            "and leave --tp at 1");
  InferenceSettings ub = Llama(4096);
  ub.llamacpp.ubatch = 0;
  EXPECT_EQ(Error(m, ub), "--ubatch: 0 is out of range (1..67108864)");
  InferenceSettings fp8 = Llama(4096);
  fp8.kv_dtype = DType::kF8E4M3;
  EXPECT_EQ(Error(m, fp8), "--kv-dtype: fp8_e4m3 is not a llama.cpp cache type (f32, f16, bf16, q8_0, q4_0, "
                           "q4_1, iq4_nl, q5_0, q5_1)");

  // K rows of 80 (one KV head of 80) do not split into q8_0 blocks of 32.
  Model odd = m;
  odd.spec.num_key_value_heads = 1;
  odd.spec.num_attention_heads = 32;
  odd.spec.head_dim = odd.spec.v_head_dim = 80;
  odd.inventory = BuildInventory(odd.spec);
  InferenceSettings q8 = Llama(4096);
  q8.llamacpp.cache_type_k = DType::kQ8_0;
  EXPECT_EQ(Error(odd, q8), "--cache-type-k q8_0: KV rows of 80 elements do not divide into 32-element blocks");

  app::Request f;
  f.AddGiven(app::FindSetting("runtime"), "llamacpp", "--runtime");
  f.AddGiven(app::FindSetting("llamacpp-build"), "x12", "--llamacpp-build");
  EXPECT_EQ(app::BuildJob(f, app::kCmdInfer).error().message,
            "--llamacpp-build: expected a llama.cpp release such as b5622, got 'x12'");
  f.Clear("llamacpp-build");
  f.AddGiven(app::FindSetting("llamacpp-build"), "b5622", "--llamacpp-build");
  EXPECT_EQ(*app::BuildJob(f, app::kCmdInfer)->job.infer.llamacpp.build, 5622);
}

// --kv-dtype q8_0 sets both cache types unless -ctk/-ctv are given.
TEST(LlamaCppTest, KvDtypeSetsBothCacheTypes) {
  InferenceSettings s = Llama(4096);
  s.kv_dtype = DType::kQ8_0;
  s.llamacpp.cache_type_k = DType::kF16;
  s.llamacpp.flash_attn = true;
  const Estimate e = EstimateOrDie(CatalogModelOrDie("meta-llama/Llama-3.1-8B"), s);
  EXPECT_EQ(Echo(e, "cache_type_k"), "f16");
  EXPECT_EQ(Echo(e, "cache_type_v"), "q8_0");
  EXPECT_EQ(ComponentBytes(e.devices[0], "kv_cache"), 32LL * 4096 * (1024 * 2 + 1024 / 32 * 34));
}

// Every catalog model estimates under llamacpp with a couple of file types
// (parent == sum of children is checked by EstimateOrDie), and the GPU and
// host weights add up to the file.
TEST(LlamaCppTest, WholeCatalogEstimates) {
  for (const CatalogModel& c : ModelCatalog::Builtin().models()) {
    auto mr = ModelFromCatalog(c, nullptr);
    if (!mr.ok()) continue;
    if (mr->spec.topology != Topology::kDecoder) continue;  // refused by llamacpp (encoder_test.cc)
    if (IsHybridStack(mr->spec)) continue;                   // refused by llamacpp (hybrid_test.cc)
    for (const char* q : {"Q4_K_M", "IQ2_XXS", "Q8_0"}) {
      auto w = ResolveInference(*mr, Llama(2048, q), {}, nullptr);
      ASSERT_TRUE(w.ok()) << c.id << " " << q << ": " << w.error().message;
      auto e = EstimateInference(*mr, *w, {});
      ASSERT_TRUE(e.ok()) << c.id << " " << q << ": " << e.error().message;
      const Component* host_w = Find(e->host, "weights");
      int64_t tied_copy = 0;
      if (const Component* lm = Child(e->devices[0], "weights", "lm_head");
          lm && lm->formula.find("tied") != std::string::npos) {
        tied_copy = lm->bytes.value();
      }
      EXPECT_EQ(ComponentBytes(e->devices[0], "weights") + (host_w ? host_w->bytes.value() : 0) - tied_copy,
                e->weight_bytes.value())
          << c.id << " " << q;
    }
  }
}

}  // namespace
}  // namespace vramfit
