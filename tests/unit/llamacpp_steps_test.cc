// The llamacpp runtime's steps one by one (src/core/runtimes/llamacpp_steps.h):
// knob resolution, cells, placement, weights, KV, compute and output
// buffers, launch flags and notes. Expected numbers are computed by hand
// from llama.cpp's sizing code (file / function named per case) or are the
// buffers its load logs printed (../shared/truth/llamacpp.jsonl, case ids,
// as in llamacpp_test.cc).
#include <gtest/gtest.h>

#include "core/runtimes/llamacpp_steps.h"
#include "test_util.h"
#include "vramfit/gguf_mix.h"
#include "vramfit/quant.h"

namespace vramfit {
namespace {

namespace lc = runtimes::llamacpp;
using testing::CatalogModelOrDie;
using testing::Gpus;

constexpr int64_t kMiB = 1 << 20;

// The llama.cpp knobs a case gives (designated initializers); unset = default.
struct Knobs {
  std::optional<int64_t> build = {};
  std::optional<int64_t> ubatch = {};
  std::optional<int64_t> batch_size = {};
  std::optional<int64_t> parallel = {};
  std::optional<int64_t> gpu_layers = {};
  std::optional<bool> fa = {};
  std::optional<DType> ctk = {};
  std::optional<DType> ctv = {};
};

InferenceSettings Llama(int64_t ctx, const Knobs& k = {}, int64_t batch = 1,
                        const char* quant = nullptr) {
  InferenceSettings s;
  s.runtime = Runtime::kLlamaCpp;
  s.ctx = ctx;
  s.batch = batch;
  if (quant != nullptr) s.quant = *ParseWeightFormat(quant);
  s.llamacpp.build = k.build;
  s.llamacpp.ubatch = k.ubatch;
  s.llamacpp.batch_size = k.batch_size;
  s.llamacpp.parallel = k.parallel;
  s.llamacpp.gpu_layers = k.gpu_layers;
  s.llamacpp.flash_attn = k.fa;
  s.llamacpp.cache_type_k = k.ctk;
  s.llamacpp.cache_type_v = k.ctv;
  return s;
}

// The workload as ResolveInference (and so the profile's Resolve) leaves it.
InferenceWorkload Resolved(const Model& m, const InferenceSettings& s, const DeviceSet& d = {}) {
  auto w = ResolveInference(m, s, d, nullptr);
  EXPECT_TRUE(w.ok()) << (w.ok() ? "" : w.error().message);
  return w.ok() ? *w : InferenceWorkload{};
}

std::string ResolveError(const Model& m, const InferenceSettings& s) {
  auto w = ResolveInference(m, s, {}, nullptr);
  return w.ok() ? "" : w.error().message;
}

// --- Resolve: every default filled but -b and -ngl, whose absence the
// launch flags and notes read (llamacpp_steps.h). Defaults: common/common.h
// (n_ubatch 512, cache types f16); -fa auto = on since PR #15434 (b6300);
// -np = the job's concurrent sequences; build b8000 (llamacpp_build::kDefault).
TEST(LlamaCppStepsTest, ResolveFillsTheDefaults) {
  const Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  struct Case {
    const char* what;
    Knobs given;
    int64_t batch;
    int64_t build, ubatch, parallel;
    bool fa;
    DType ctk, ctv;
  } cases[] = {
      {"defaults", {}, 1, 8000, 512, 1, true, DType::kF16, DType::kF16},
      {"-np from --batch", {}, 4, 8000, 512, 4, true, DType::kF16, DType::kF16},
      {"-np given wins", {.parallel = 2}, 4, 8000, 512, 2, true, DType::kF16, DType::kF16},
      {"-fa off before PR #15434", {.build = 5000}, 1, 5000, 512, 1, false, DType::kF16, DType::kF16},
      {"-fa auto on from b6300", {.build = 6300}, 1, 6300, 512, 1, true, DType::kF16, DType::kF16},
      {"given values kept", {.build = 5000, .ubatch = 64, .fa = true, .ctk = DType::kQ8_0, .ctv = DType::kQ4_0},
       1, 5000, 64, 1, true, DType::kQ8_0, DType::kQ4_0},
  };
  for (const Case& c : cases) {
    const InferenceWorkload w = Resolved(m, Llama(4096, c.given, c.batch));
    const LlamaCppKnobs& k = w.llamacpp;
    ASSERT_TRUE(k.build && k.ubatch && k.parallel && k.flash_attn && k.cache_type_k && k.cache_type_v)
        << c.what;
    EXPECT_EQ(*k.build, c.build) << c.what;
    EXPECT_EQ(*k.ubatch, c.ubatch) << c.what;
    EXPECT_EQ(*k.parallel, c.parallel) << c.what;
    EXPECT_EQ(*k.flash_attn, c.fa) << c.what;
    EXPECT_EQ(*k.cache_type_k, c.ctk) << c.what;
    EXPECT_EQ(*k.cache_type_v, c.ctv) << c.what;
    // Left as given: their presence is part of the output.
    EXPECT_FALSE(k.batch_size.has_value()) << c.what;
    EXPECT_FALSE(k.gpu_layers.has_value()) << c.what;
  }
}

// Every knob check is Resolve's now: ResolveInference refuses these before
// any estimate is built (messages as common/arg.cpp's ranges and
// llama_init_from_model's "V cache quantization requires flash_attn").
TEST(LlamaCppStepsTest, ResolveRefusesBadKnobs) {
  const Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  Model odd = m;  // one KV head of 80: K rows of 80 elements
  odd.spec.num_key_value_heads = 1;
  odd.spec.head_dim = odd.spec.v_head_dim = 80;
  odd.inventory = BuildInventory(odd.spec);
  struct Case {
    const Model* model;
    Knobs given;
    int64_t batch;
    const char* error;
  } cases[] = {
      {&m, {.ubatch = 0}, 1, "--ubatch: 0 is out of range (1..67108864)"},
      {&m, {.batch_size = 0}, 1, "--batch-size: 0 is out of range (1..67108864)"},
      {&m, {.parallel = 4097}, 1, "--parallel: 4097 is out of range (1..4096)"},
      {&m, {.gpu_layers = -2}, 1, "--gpu-layers: -2 is out of range (-1..100000)"},
      {&m, {.build = 5000, .ctv = DType::kQ8_0}, 1,
       "--cache-type-v q8_0: llama.cpp needs flash attention for a quantized V cache (--flash-attn on)"},
      {&odd, {.ctk = DType::kQ8_0}, 1,
       "--cache-type-k q8_0: KV rows of 80 elements do not divide into 32-element blocks"},
      {&odd, {.ctv = DType::kQ4_0}, 1,
       "--cache-type-v q4_0: KV rows of 80 elements do not divide into 32-element blocks"},
      // In range: -np defaults to --batch without the -np range.
      {&m, {}, 5000, ""},
  };
  for (const Case& c : cases) EXPECT_EQ(ResolveError(*c.model, Llama(4096, c.given, c.batch)), c.error);
}

// -ngl (llama_model::load_tensors): n_layer + 1 slots, the last the output
// layer. Default all since PR #15434 (b6300), 0 before; -1 = all.
TEST(LlamaCppStepsTest, GpuLayers) {
  struct Case {
    std::optional<int64_t> given;
    int64_t build;
    int64_t ngl;
    bool all;
  } cases[] = {
      {std::nullopt, 8000, 33, true}, {std::nullopt, 5000, 0, false}, {-1, 5000, 33, true},
      {0, 8000, 0, false},           {10, 8000, 10, false},          {33, 8000, 33, true},
      {200, 8000, 33, true},
  };
  for (const Case& c : cases) {
    LlamaCppKnobs k;
    k.build = c.build;
    k.gpu_layers = c.given;
    const lc::GpuLayers g = lc::ResolveGpuLayers(k, 32);
    EXPECT_EQ(g.ngl, c.ngl) << c.given.value_or(-9) << " b" << c.build;
    EXPECT_EQ(g.all, c.all) << c.given.value_or(-9) << " b" << c.build;
  }
}

// Cells (llama_context constructor; llama_kv_cache_iswa: size_swa =
// min(size_base, GGML_PAD(n_swa x (unified ? n_seq_max : 1) + n_ubatch, n_pad))).
// Before PR #17046 n_ctx pads to 256 with -fa and 32 without; after, to 256,
// and -np N makes N streams of pad(n_ctx / N, 256). n_batch = min(n_ctx, -b),
// n_ubatch = min(n_batch, -ub), the reserved graph = min(n_ctx, n_ubatch).
TEST(LlamaCppStepsTest, ContextCells) {
  const Model llama = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  const Model gemma = CatalogModelOrDie("google/gemma-3-27b-it");  // window 1024, 52 of 62 sliding
  struct Case {
    const char* what;
    const Model* model;
    int64_t ctx;
    Knobs given;
    int64_t n_ctx, n_ctx_seq, n_stream, cells, cells_swa, n_batch, n_ubatch, tokens;
    bool swa;
  } cases[] = {
      {"pad 32 without -fa", &llama, 4000, {.build = 5000, .fa = false}, 4000, 4000, 1, 4000, 4000, 2048, 512, 512, false},
      {"pad 256 with -fa", &llama, 4000, {.build = 5000, .fa = true}, 4096, 4096, 1, 4096, 4096, 2048, 512, 512, false},
      {"pad 256 since #17046", &llama, 4000, {.build = 8000, .fa = false}, 4096, 4096, 1, 4096, 4096, 2048, 512, 512, false},
      // pad(8192 / 3 = 2730, 256) = 2816 cells per stream; n_ctx 3 x 2816.
      {"3 streams", &llama, 8192, {.build = 8000, .parallel = 3}, 8448, 2816, 3, 2816, 2816, 2048, 512, 512, false},
      {"unified before #17046", &llama, 8192, {.build = 5000, .parallel = 3, .fa = true}, 8192, 2730, 1, 8192, 8192, 2048, 512, 512, false},
      // n_ctx 128 caps n_batch, n_ubatch and the graph.
      {"tiny context", &llama, 100, {.build = 5000, .fa = false}, 128, 128, 1, 128, 128, 128, 128, 128, false},
      {"-b below -ub", &llama, 4096, {.ubatch = 512, .batch_size = 256}, 4096, 4096, 1, 4096, 4096, 256, 256, 256, false},
      // pad(1024 + 512, 256) = 1536 sliding cells.
      {"iswa", &gemma, 32768, {}, 32768, 32768, 1, 32768, 1536, 2048, 512, 512, true},
      // Non-unified: one sequence per stream, pad(1024 + 512) again.
      {"iswa, 2 streams", &gemma, 32768, {.parallel = 2}, 32768, 16384, 2, 16384, 1536, 2048, 512, 512, true},
      // Unified cache of 2 sequences: pad(1024 x 2 + 512, 256) = 2560.
      {"iswa, unified 2 seqs", &gemma, 32768, {.build = 5500, .parallel = 2, .fa = true}, 32768, 16384, 1, 32768, 2560, 2048, 512, 512, true},
      {"before the iswa cache", &gemma, 32768, {.build = 5000, .fa = true}, 32768, 32768, 1, 32768, 32768, 2048, 512, 512, false},
  };
  for (const Case& c : cases) {
    const InferenceWorkload w = Resolved(*c.model, Llama(c.ctx, c.given));
    const lc::Cells x = lc::ContextCells(c.model->spec, w.llamacpp, w.ctx);
    EXPECT_EQ(x.n_ctx_req, c.ctx) << c.what;
    EXPECT_EQ(x.n_ctx, c.n_ctx) << c.what;
    EXPECT_EQ(x.n_ctx_seq, c.n_ctx_seq) << c.what;
    EXPECT_EQ(x.n_stream, c.n_stream) << c.what;
    EXPECT_EQ(x.cells, c.cells) << c.what;
    EXPECT_EQ(x.cells_swa, c.cells_swa) << c.what;
    EXPECT_EQ(x.n_batch, c.n_batch) << c.what;
    EXPECT_EQ(x.n_ubatch, c.n_ubatch) << c.what;
    EXPECT_EQ(x.tokens, c.tokens) << c.what;
    EXPECT_EQ(x.swa, c.swa) << c.what;
  }
  // Gemma-3 27B: 52 sliding layers (5 of every 6), which the SWA cells serve.
  const InferenceWorkload w = Resolved(gemma, Llama(32768));
  const lc::Cells x = lc::ContextCells(gemma.spec, w.llamacpp, w.ctx);
  EXPECT_EQ(x.n_sliding, 52);
  EXPECT_TRUE(x.mixed_swa);
  EXPECT_EQ(lc::LayerCells(gemma.spec, x, 0), 1536);  // layer 0 slides
  EXPECT_EQ(lc::LayerCells(gemma.spec, x, 5), 32768);  // every sixth is global
}

// Placement (llama_model::load_tensors get_layer_buft): slots i_gpu_start ..
// i_gpu_start + act - 1 go to the GPUs, i_gpu_start = n_layer + 1 - ngl
// since PR #18148 (output first), n_layer - ngl before; slot il goes to the
// first GPU whose cumulative split exceeds (il - i_gpu_start) / act.
TEST(LlamaCppStepsTest, PlaceLayers) {
  const DeviceSet one = Gpus("RTX-4090");
  const DeviceSet two = Gpus("A100-80GBx2");
  struct Case {
    const char* what;
    const DeviceSet* devices;
    lc::GpuLayers ngl;
    int64_t build;
    int64_t first_gpu_slot, last_gpu_slot;  // on GPU0 unless split
    int64_t offloaded, out_dev;
  } cases[] = {
      {"all", &one, {33, true}, 8000, 0, 32, 33, 0},
      // -ngl 10, output first: blocks 23..31 and the output layer.
      {"-ngl 10 since #18148", &one, {10, false}, 8000, 23, 32, 10, 0},
      // -ngl 10 before: blocks 22..31, the output layer on the CPU.
      {"-ngl 10 before", &one, {10, false}, 5000, 22, 31, 10, -1},
      {"-ngl 0", &one, {0, false}, 8000, -1, -1, 0, -1},
  };
  for (const Case& c : cases) {
    const lc::Placement p = lc::PlaceLayers(32, c.ngl, c.build, *c.devices);
    ASSERT_EQ(p.dev_of.size(), 33u) << c.what;
    for (int64_t il = 0; il <= 32; ++il) {
      const bool on_gpu = il >= c.first_gpu_slot && il <= c.last_gpu_slot && c.first_gpu_slot >= 0;
      EXPECT_EQ(p.dev_of[static_cast<size_t>(il)], on_gpu ? 0 : -1) << c.what << " slot " << il;
    }
    EXPECT_EQ(p.offloaded, c.offloaded) << c.what;
    EXPECT_EQ(p.out_dev, c.out_dev) << c.what;
    EXPECT_EQ(p.OfSlot(-1), -1) << c.what;  // token_embd: never offloaded
    EXPECT_EQ(p.OfSlot(33), -1) << c.what;  // past n_layer: not loaded
  }
  // Two equal GPUs: splits [0.5, 1]; 16 / 33 < 0.5 <= 17 / 33, so GPU0 holds
  // slots 0..16 and GPU1 slots 17..32 (the output layer).
  EXPECT_EQ(lc::TensorSplit(two), (std::vector<float>{0.5f, 1.0f}));
  EXPECT_EQ(lc::TensorSplit({}), (std::vector<float>{1.0f}));
  const lc::Placement p = lc::PlaceLayers(32, {33, true}, 8000, two);
  EXPECT_EQ(p.n_dev, 2);
  EXPECT_EQ(p.dev_of[16], 0);
  EXPECT_EQ(p.dev_of[17], 1);
  EXPECT_EQ(p.out_dev, 1);
}

// Weights per device from a hand-made file: token_embd stays on the host,
// the blocks and output_norm go with their slots, an MTP block past n_layer
// is not loaded, and the tied head is a copy of token_embd on the output
// layer's GPU (llama-model.cpp TENSOR_DUPLICATED).
TEST(LlamaCppStepsTest, WeightsByDevice) {
  lc::GgufFile f;
  f.tensors = {{"token_embd.weight", Role::kEmbed, -1, DType::kQ4_K, Bytes(1000)},
               {"blk.0.attn_q.weight", Role::kAttention, 0, DType::kQ4_K, Bytes(100)},
               {"blk.1.attn_q.weight", Role::kAttention, 1, DType::kQ4_K, Bytes(200)},
               {"blk.2.nextn.eh_proj.weight", Role::kMtp, -2, DType::kQ4_K, Bytes(50)},
               {"output_norm.weight", Role::kNorm, 2, DType::kF32, Bytes(16)}};
  f.token_embd_bytes = Bytes(1000);
  f.token_embd_type = DType::kQ4_K;
  struct Case {
    lc::GpuLayers ngl;
    int64_t host, gpu, gpu_lm_head;
  } cases[] = {
      {{3, true}, 1000, 100 + 200 + 16 + 1000, 1000},
      {{1, false}, 1000 + 100 + 200, 16 + 1000, 1000},  // output layer first (b8000)
      {{0, false}, 1000 + 100 + 200 + 16, 0, 0},        // no tied copy on the CPU
  };
  for (const Case& c : cases) {
    const lc::Placement p = lc::PlaceLayers(2, c.ngl, 8000, {});
    const std::vector<Component> w = lc::WeightsByDevice(f, p);
    ASSERT_EQ(w.size(), 2u);
    EXPECT_EQ(w[0].bytes.value(), c.host) << c.ngl.ngl;
    EXPECT_EQ(w[1].bytes.value(), c.gpu) << c.ngl.ngl;
    const Component* lm = Find(w[1].children, "lm_head");
    EXPECT_EQ(lm ? lm->bytes.value() : 0, c.gpu_lm_head) << c.ngl.ngl;
  }
}

// The file llama.cpp would load: GgufMix's tensors for --quant, and the
// notes' figures. Llama-3.1-8B Q4_K_M: output.weight is Q6_K, 128256 rows of
// 4096 / 256 blocks x 210 B (llama_tensor_get_type: the output gets Q6_K).
TEST(LlamaCppStepsTest, LoadGguf) {
  const Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  const InferenceWorkload w = Resolved(m, Llama(4096, {}, 1, "Q4_K_M"));
  auto f = lc::LoadGguf(m, w);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->mix_name, "Q4_K_M");
  EXPECT_FALSE(f->unquantized.has_value());
  EXPECT_TRUE(f->has_output);
  EXPECT_EQ(f->token_embd_type, DType::kQ4_K);
  Bytes sum;
  for (const lc::Placed& t : f->tensors) {
    sum += t.bytes;
    if (t.name == "output.weight") {
      EXPECT_EQ(t.slot, 32);
      EXPECT_EQ(t.bytes.value(), 128256LL * (4096 / 256 * 210));
    }
    if (t.name == "token_embd.weight") {
      EXPECT_EQ(t.slot, -1);
    }
  }
  EXPECT_EQ(f->bytes, sum);  // "model size" is the sum of the tensors
  // No GGUF type: the unquantized file at the compute dtype (bf16).
  const InferenceWorkload bf = Resolved(m, Llama(4096));
  auto u = lc::LoadGguf(m, bf);
  ASSERT_TRUE(u.ok());
  ASSERT_TRUE(u->unquantized.has_value());
  EXPECT_EQ(*u->unquantized, GgufFtype::kBF16);
  EXPECT_EQ(u->mix_name, "BF16");
}

// The attention shape llama.cpp caches (llama-model.cpp hparams): GQA rows
// n_head_kv x head_dim; DeepSeek's MLA latent K = kv_lora_rank 512 + rope
// 64 and V = 512 (none since PR #19067); without the MLA path, per-head K
// 128 x 192 and V 128 x 128 (L08's 24576 + 16384).
TEST(LlamaCppStepsTest, AttentionShape) {
  const ModelSpec llama = CatalogModelOrDie("meta-llama/Llama-3.1-8B").spec;
  const ModelSpec ds = CatalogModelOrDie("deepseek-ai/DeepSeek-V3").spec;
  struct Case {
    const char* what;
    const ModelSpec* spec;
    bool latent, vless;
    int64_t n_head_kv, k_width, v_width;
  } cases[] = {
      {"GQA 8 x 128", &llama, false, false, 8, 1024, 1024},
      {"MLA latent", &ds, true, false, 1, 576, 512},
      {"MLA latent, no V", &ds, true, true, 1, 576, 0},
      {"MLA per head", &ds, false, false, 128, 24576, 16384},
  };
  for (const Case& c : cases) {
    const lc::AttnShape a = lc::Shape(*c.spec, c.latent, c.vless);
    EXPECT_EQ(a.n_head_kv, c.n_head_kv) << c.what;
    EXPECT_EQ(a.k_width, c.k_width) << c.what;
    EXPECT_EQ(a.v_width, c.v_width) << c.what;
    EXPECT_EQ(a.mla_latent, c.latent) << c.what;
  }
  // 576 = 18 blocks of 32: q8_0 divides it; 576 is not a multiple of 256.
  EXPECT_TRUE(lc::CheckKvRows(lc::Shape(ds, true, true), DType::kQ8_0, DType::kQ8_0).ok());
  EXPECT_EQ(lc::CheckKvRows(lc::Shape(ds, true, true), DType::kQ4_K, DType::kF16).error().message,
            "--cache-type-k q4_k: KV rows of 576 elements do not divide into 256-element blocks");
}

// KV per device (llama_kv_cache: ggml_row_size(type, n_embd_k_gqa) x cells
// per layer, on the layer's device). L28: Mistral-7B, 32 layers x 32000
// cells x (K + V) 1024 x 2 B = 4000 MiB. L04: q8_0 rows of 512 are 16
// blocks x 34 B = 544 B.
TEST(LlamaCppStepsTest, KvByDevice) {
  const Model mistral = CatalogModelOrDie("mistralai/Mistral-7B-Instruct-v0.2");
  const Model qwen = CatalogModelOrDie("Qwen/Qwen3-235B-A22B");
  struct Case {
    const char* what;
    const Model* model;
    int64_t ctx;
    Knobs given;
    int64_t k_row, v_row, host, gpu;
  } cases[] = {
      {"L28", &mistral, 32000, {.build = 2961, .gpu_layers = 99, .fa = false}, 2048, 2048, 0,
       32LL * 32000 * 2 * 2048},
      {"L04, 0 layers", &qwen, 16384, {.build = 5269, .gpu_layers = 0, .fa = true, .ctk = DType::kQ8_0, .ctv = DType::kQ8_0},
       544, 544, 94LL * 16384 * 2 * 544, 0},
      // -ngl 10 (b8000): 9 blocks on the GPU, 23 on the host; 4096 cells.
      {"-ngl 10", &mistral, 4096, {.gpu_layers = 10}, 2048, 2048, 23LL * 4096 * 2 * 2048,
       9LL * 4096 * 2 * 2048},
      // -np 3 (b8000): 3 streams of pad(8192 / 3, 256) = 2816 cells each.
      {"3 streams", &mistral, 8192, {.parallel = 3}, 2048, 2048, 0, 32LL * 3 * 2816 * 2 * 2048},
  };
  for (const Case& c : cases) {
    const InferenceWorkload w = Resolved(*c.model, Llama(c.ctx, c.given));
    const ModelSpec& s = c.model->spec;
    const lc::Cells cells = lc::ContextCells(s, w.llamacpp, w.ctx);
    const lc::AttnShape a = lc::Shape(s, false, false);
    const lc::Placement p =
        lc::PlaceLayers(s.num_hidden_layers, lc::ResolveGpuLayers(w.llamacpp, s.num_hidden_layers),
                        *w.llamacpp.build, {});
    const lc::KvCache kv = lc::KvByDevice(s, a, cells, w.llamacpp, p);
    EXPECT_EQ(kv.k_row, c.k_row) << c.what;
    EXPECT_EQ(kv.v_row, c.v_row) << c.what;
    EXPECT_EQ(kv.per_token.value(), (c.k_row + c.v_row) * s.num_hidden_layers) << c.what;
    ASSERT_EQ(kv.by_device.size(), 2u) << c.what;
    EXPECT_EQ(kv.by_device[0].bytes.value(), c.host) << c.what;
    EXPECT_EQ(kv.by_device[1].bytes.value(), c.gpu) << c.what;
  }
  EXPECT_EQ(32LL * 32000 * 2 * 2048, 4000 * kMiB);
  EXPECT_EQ(94LL * 16384 * 2 * 544, 1598 * kMiB);
}

// Compute-buffer terms (graph_reserve over T tokens, f32 activations).
TEST(LlamaCppStepsTest, ComputeTerms) {
  const ModelSpec mistral = CatalogModelOrDie("mistralai/Mistral-7B-Instruct-v0.2").spec;
  const ModelSpec llama = CatalogModelOrDie("meta-llama/Llama-3.1-8B").spec;
  const ModelSpec qwen3moe = CatalogModelOrDie("Qwen/Qwen3-30B-A3B").spec;
  const ModelSpec qwen32 = CatalogModelOrDie("Qwen/Qwen3-32B").spec;
  const lc::AttnShape ma = lc::Shape(mistral, false, false);
  const lc::AttnShape la = lc::Shape(llama, false, false);
  struct Case {
    const char* what;
    lc::Term term;
    int64_t bytes;
  } cases[] = {
      // L28 (2094.50 MiB printed): KQ 32 heads x 32000 x 512 x 4 B + f32 mask
      // 32000 x 512 x 4 B + max(4 x 4096, 32 x 128 + 8 x 256 + 2 x 4096) x 512 x 4 B.
      {"KQ scores, L28", lc::AttentionTerm(ma, 4096, false, 32000, 512),
       32LL * 32000 * 512 * 4 + 32000LL * 512 * 4 + 16384LL * 512 * 4},
      // -fa: f16 mask 4096 x 512 x 2 B + (q 4096 + k,v 8 x 256 + o 4096 + 2 x
      // 4096) x 512 x 4 B = 4 + 36 MiB.
      {"flash", lc::AttentionTerm(la, 4096, true, 4096, 512), 40 * kMiB},
      // Gated FFN: (3 x 14336 + 2 x 4096) x 512 x 4 B = 100 MiB.
      {"ffn", lc::FfnTerm(llama, false, 512), 100 * kMiB},
      // Experts: (max(3 x 768, 768 + 2048) x 8 used + 128 router + 2 x 2048) x 512 x 4 B.
      {"ffn (experts)", lc::FfnTerm(qwen3moe, true, 512), (2816LL * 8 + 128 + 4096) * 512 * 4},
      // ik_llama.cpp L16, Qwen3-32B -ub 1024 (633.50 MiB printed):
      // (151936 vocab + 2 x 5120) x 1024 x 4 B.
      {"output", lc::OutputTerm(qwen32, 1024), 633 * kMiB + kMiB / 2},
  };
  for (const Case& c : cases) EXPECT_EQ(c.term.bytes.value(), c.bytes) << c.what;
  EXPECT_EQ(32LL * 32000 * 512 * 4 + 32000LL * 512 * 4 + 16384LL * 512 * 4, 2094 * kMiB + kMiB / 2);
  // ggml-backend's op offload starts at 32 tokens (min_batch_size).
  EXPECT_FALSE(lc::OpOffload(31));
  EXPECT_TRUE(lc::OpOffload(32));
}

// The pieces of one estimate, chained as EstimateLlamaCpp chains them.
struct Chain {
  InferenceWorkload w;
  lc::Cells cells;
  lc::GgufFile file;
  lc::AttnShape shape;
  lc::GpuLayers ngl;
  lc::Placement place;
  lc::KvCache kv;
};

Chain Build(const Model& m, const InferenceSettings& s, const DeviceSet& d = {}) {
  Chain c;
  c.w = Resolved(m, s, d);
  const int64_t n_layer = m.spec.num_hidden_layers;
  c.cells = lc::ContextCells(m.spec, c.w.llamacpp, c.w.ctx);
  auto f = lc::LoadGguf(m, c.w);
  EXPECT_TRUE(f.ok());
  if (f.ok()) c.file = *f;
  c.shape = lc::Shape(m.spec, c.file.mla_latent, *c.w.llamacpp.build >= llamacpp_build::kVlessMla);
  c.ngl = lc::ResolveGpuLayers(c.w.llamacpp, n_layer);
  c.place = lc::PlaceLayers(n_layer, c.ngl, *c.w.llamacpp.build, d);
  c.kv = lc::KvByDevice(m.spec, c.shape, c.cells, c.w.llamacpp, c.place);
  return c;
}

// Per-device compute, the host buffer, the pool and the logits.
TEST(LlamaCppStepsTest, BuffersFromTheLogs) {
  // L28: Mistral-7B Q2_K, 32000 cells, no -fa, all layers on the GPU.
  const Model mistral = CatalogModelOrDie("mistralai/Mistral-7B-Instruct-v0.2");
  Chain c = Build(mistral, Llama(32000, {.build = 2961, .gpu_layers = 99}, 1, "Q2_K"));
  const std::vector<lc::Term> gpu =
      lc::GpuComputeTerms(mistral.spec, c.shape, c.cells, false, c.kv, c.place, c.file);
  ASSERT_EQ(gpu.size(), 1u);
  EXPECT_EQ(gpu[0].name, "attention (KQ scores)");
  EXPECT_EQ(gpu[0].bytes.value(), 2094 * kMiB + kMiB / 2);
  // CUDA_Host compute buffer (70.51 MiB printed): inp_embd 4096 x 512 x 4 B
  // + mask 32000 x 512 x 4 B + 3 int32 inputs x 512.
  const Component host = lc::HostComputeBuffer(mistral.spec, c.shape, c.cells, false, c.place);
  EXPECT_EQ(host.bytes.value(), 4096LL * 512 * 4 + 32000LL * 512 * 4 + 3 * 512 * 4);
  // ggml_cuda_mul_mat_batched_cublas: KQ to f16, 32 x 32000 x 512 x 2 B.
  const lc::Term pool = lc::CudaPoolTerm(mistral.spec, c.shape, c.cells, c.w.llamacpp, c.place, 0);
  EXPECT_EQ(pool.bytes.value(), 32LL * 32000 * 512 * 2);
  EXPECT_EQ(lc::OutputBuffer(mistral.spec.vocab_size, 1).bytes.value(), 32000 * 4);  // 0.12 MiB

  // ik_llama.cpp L17: Llama-2-13B Q8_0, n_ctx 512, 0 layers (b5000's
  // default): GPU0 stages output.weight 32000 x 5120 / 32 x 34 B with the
  // output matmul's (32000 + 2 x 5120) x 512 x 4 B = 248.52 MiB printed.
  const Model l13 = CatalogModelOrDie("meta-llama/Llama-2-13b-hf");
  Chain z = Build(l13, Llama(512, {.build = 5000}, 1, "Q8_0"));
  EXPECT_EQ(z.place.offloaded, 0);
  const std::vector<lc::Term> staged =
      lc::GpuComputeTerms(l13.spec, z.shape, z.cells, false, z.kv, z.place, z.file);
  EXPECT_EQ(staged[0].name, "staged host weight");
  EXPECT_EQ(staged[0].bytes.value(), 32000LL * 5440 + (32000 + 2 * 5120) * 512 * 4);

  // L08: DeepSeek-R1 with 4 sequences: 4 x 129280 vocab x 4 B = 1.97 MiB.
  EXPECT_EQ(lc::OutputBuffer(129280, 4).bytes.value(), 129280LL * 4 * 4);
}

// Tiny ubatches (< 32 tokens) keep the CPU layers' work on the CPU: their
// largest term is host memory, and GPU0 stages nothing.
TEST(LlamaCppStepsTest, NoOpOffloadBelow32Tokens) {
  const Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  Chain c = Build(m, Llama(4096, {.ubatch = 16, .gpu_layers = 0}, 1, "Q4_K_M"));
  ASSERT_EQ(c.cells.tokens, 16);
  const std::vector<lc::Term> gpu = lc::GpuComputeTerms(m.spec, c.shape, c.cells, true, c.kv, c.place, c.file);
  EXPECT_EQ(gpu[0].bytes.value(), 0);
  const Component host = lc::HostComputeBuffer(m.spec, c.shape, c.cells, true, c.place);
  // The largest host term: output (128256 + 2 x 4096) x 16 x 4 B.
  const Component* layers = Find(host.children, "output (logits)");
  ASSERT_NE(layers, nullptr);
  EXPECT_EQ(layers->bytes.value(), (128256LL + 2 * 4096) * 16 * 4);
}

// Launch flags as llama-server takes them: -b only when given, -fa on|off
// since PR #15434 and a bare switch before, -ts with each GPU's GiB.
TEST(LlamaCppStepsTest, LaunchFlags) {
  const Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  using V = std::vector<std::string>;
  struct Case {
    const char* what;
    Knobs given;
    const char* gpus;
    V flags;
  } cases[] = {
      {"defaults", {}, "RTX-4090", V{"-ngl 99", "-c 8192", "-ub 512", "-fa on", "-ctk f16", "-ctv f16", "-np 1"}},
      {"-b given", {.batch_size = 2048}, "RTX-4090",
       V{"-ngl 99", "-c 8192", "-b 2048", "-ub 512", "-fa on", "-ctk f16", "-ctv f16", "-np 1"}},
      {"old -fa switch", {.build = 5000, .gpu_layers = 10, .fa = true}, "RTX-4090",
       V{"-ngl 10", "-c 8192", "-ub 512", "-fa", "-ctk f16", "-ctv f16", "-np 1"}},
      {"old, no -fa", {.build = 5000}, "RTX-4090", V{"-ngl 0", "-c 8192", "-ub 512", "-ctk f16", "-ctv f16", "-np 1"}},
      {"two GPUs", {.fa = false}, "A100-80GBx2",
       V{"-ngl 99", "-c 8192", "-ub 512", "-fa off", "-ctk f16", "-ctv f16", "-np 1", "-ts 79,79"}},
  };
  for (const Case& c : cases) {
    const DeviceSet d = Gpus(c.gpus);
    const InferenceWorkload w = Resolved(m, Llama(8192, c.given), d);
    const lc::Cells cells = lc::ContextCells(m.spec, w.llamacpp, w.ctx);
    EXPECT_EQ(lc::LaunchFlags(w.llamacpp, cells, lc::ResolveGpuLayers(w.llamacpp, 32), 32, d), c.flags)
        << c.what;
  }
  EXPECT_EQ(lc::PairFlags({"-ngl", "99", "-fa", "-ctk", "q8_0"}), (V{"-ngl 99", "-fa", "-ctk q8_0"}));
}

// The "-ngl 0 by default" note is for a defaulted -ngl only; an explicit
// -ngl 0 is what the user asked for.
TEST(LlamaCppStepsTest, DefaultNglNote) {
  const Model m = CatalogModelOrDie("meta-llama/Llama-2-7b-hf");
  const std::string note =
      "b4905 defaults to -ngl 0 (every layer on the CPU; -ngl defaults to all since PR #15434): "
      "--gpu-layers 99 offloads them";
  for (const std::optional<int64_t> given : {std::optional<int64_t>(), std::optional<int64_t>(0)}) {
    Chain c = Build(m, Llama(2048, {.build = 4905, .gpu_layers = given}, 1, "Q4_K_M"));
    const std::vector<std::string> notes =
        lc::Notes(m.spec, c.w.llamacpp, c.cells, c.ngl, c.place, c.file, c.shape);
    EXPECT_EQ(std::count(notes.begin(), notes.end(), note), given ? 0 : 1);
    // The file's note first: model size and BPW as llama_model_loader prints them.
    ASSERT_FALSE(notes.empty());
    EXPECT_EQ(notes[0].rfind("GGUF Q4_K_M: ", 0), 0u) << notes[0];
  }
}

}  // namespace
}  // namespace vramfit
