// llama.cpp placement: --n-cpu-moe / --cpu-moe / --override-tensor (tensor
// buffer-type overrides), --tensor-split, --split-mode and --main-gpu.
//
// Sources read (ggml-org/llama.cpp):
//   common/common.h @001d906a: LLM_FFN_EXPS_REGEX
//     "\.ffn_(up|down|gate|gate_up)_(ch|)exps", llm_ffn_block_regex(i) =
//     "blk\.<i>" + it, llm_ffn_exps_cpu_override (--cpu-moe);
//   common/arg.cpp parse_tensor_buffer_overrides: "REGEX=BUFT" pieces split
//     on ',', BUFT one of the devices' buffer types (CPU, CUDA0, ...);
//   src/llama-model.cpp @00342301 load_tensors: splits from -ts (all zero:
//     free memory), cumulative; create_tensor takes the first override whose
//     std::regex_search matches tn.str(); a duplicated (tied) output is a
//     second tensor only in another buffer type's context;
//   src/llama.cpp @01649e61 llama_prepare_model_devices: -sm none keeps
//     devices[main_gpu] alone (main_gpu < 0: none);
//   ggml/src/ggml-backend.cpp ggml_backend_sched_backend_id_from_cur ("1.off")
//     and ggml-cuda.cu offload_op (batch >= 32): matmuls of host weights run
//     on backend 0, the first GPU.
// Measured: ../shared/truth/llamacpp.jsonl L01 (Qwen3-30B-A3B Q4_K_M, b5622,
// -ot ".ffn_.*_exps.=CPU", two GPUs).
#include <gtest/gtest.h>

#include "core/runtimes/llamacpp_steps.h"
#include "test_util.h"
#include "vramfit/app/settings.h"
#include "vramfit/quant.h"
#include "vramfit/render.h"

namespace vramfit {
namespace {

namespace lc = runtimes::llamacpp;
using testing::CatalogModelOrDie;
using testing::ComponentBytes;
using testing::EstimateOrDie;
using testing::Gpus;
using testing::GgufTensor;
using testing::TinyGgufModel;

constexpr int64_t kMiB = 1 << 20;

InferenceSettings Llama(int64_t ctx, const char* quant = "Q4_K_M") {
  InferenceSettings s;
  s.runtime = Runtime::kLlamaCpp;
  s.ctx = ctx;
  s.quant = *ParseWeightFormat(quant);
  return s;
}

int64_t HostBytes(const Estimate& e, const std::string& name) {
  const Component* c = Find(e.host, name);
  return c ? c->bytes.value() : 0;
}

int64_t ChildBytes(const std::vector<Component>& comps, const std::string& parent, const std::string& child) {
  const Component* p = Find(comps, parent);
  const Component* c = p ? Find(p->children, child) : nullptr;
  return c ? c->bytes.value() : 0;
}

std::string Error(const Model& m, const InferenceSettings& s, const DeviceSet& gpus = {}) {
  auto w = ResolveInference(m, s, gpus, nullptr);
  if (!w.ok()) return w.error().message;
  auto e = EstimateInference(m, *w, gpus);
  return e.ok() ? "" : e.error().message;
}

// The file's tensors (GgufMix) as the estimate loads them.
lc::GgufFile FileOf(const Model& m, InferenceSettings s) {
  s.llamacpp.override_tensor.clear();  // the file does not depend on them
  auto w = ResolveInference(m, s, {}, nullptr);
  EXPECT_TRUE(w.ok());
  auto f = lc::LoadGguf(m, *w);
  EXPECT_TRUE(f.ok());
  return f.ok() ? *f : lc::GgufFile{};
}

// L01: Qwen3-30B-A3B Q4_K_M, b5622, -ngl 99 -c 16384, no FA, -ot
// ".ffn_.*_exps.=CPU" on two GPUs. The log's KV (384 + 1152 MiB = 12 + 36
// layers) fixes the split its free memory made; -ts 12,37 gives the same
// slots (11/49 < 12/49). Logged: CUDA0 model 135.76 MiB, CUDA1 648.66 MiB,
// CUDA_Host compute 36.01 MiB, output 0.58 MiB; the CPU_Mapped buffer
// (17447.91 MiB) is the mmap'd span of the file, not the experts' bytes.
TEST(LlamaCppPlacementTest, ExpertsOnTheCpuMatchL01) {
  const Model m = CatalogModelOrDie("Qwen/Qwen3-30B-A3B");
  InferenceSettings s = Llama(16384);
  s.llamacpp.build = 5622;
  s.llamacpp.gpu_layers = 99;
  s.llamacpp.flash_attn = false;
  s.llamacpp.override_tensor = {".ffn_.*_exps.=CPU"};
  s.llamacpp.tensor_split = {12, 37};
  const Estimate e = EstimateOrDie(m, s, Gpus("RTX-4090,RTX-5090"));
  ASSERT_EQ(e.devices.size(), 2u);
  // The log prints MiB with two decimals.
  EXPECT_NEAR(static_cast<double>(ComponentBytes(e.devices[0], "weights")), 135.76 * kMiB, 0.005 * kMiB);
  EXPECT_NEAR(static_cast<double>(ComponentBytes(e.devices[1], "weights")), 648.66 * kMiB, 0.005 * kMiB);
  EXPECT_EQ(ComponentBytes(e.devices[0], "kv_cache"), 384 * kMiB);
  EXPECT_EQ(ComponentBytes(e.devices[1], "kv_cache"), 1152 * kMiB);
  EXPECT_NEAR(static_cast<double>(HostBytes(e, "compute_buffer")), 36.01 * kMiB, 0.005 * kMiB);
  EXPECT_NEAR(static_cast<double>(HostBytes(e, "output_buffer")), 0.58 * kMiB, 0.005 * kMiB);
  // Every expert tensor in host memory; nothing else left the GPUs.
  EXPECT_EQ(ChildBytes(e.devices[0].components, "weights", "experts"), 0);
  EXPECT_EQ(ChildBytes(e.devices[1].components, "weights", "experts"), 0);
  EXPECT_EQ(ComponentBytes(e.devices[0], "weights") + ComponentBytes(e.devices[1], "weights") +
                HostBytes(e, "weights"),
            e.weight_bytes.value());
}

// --n-cpu-moe 48 on a 48-layer model = --cpu-moe = -ot with the same regex:
// every expert tensor on the host, the rest on the GPU, device + host weights
// = the file (issue 14's example). The buffers are identical.
TEST(LlamaCppPlacementTest, NCpuMoeCpuMoeAndOtAgree) {
  const Model m = CatalogModelOrDie("Qwen/Qwen3-30B-A3B");
  const DeviceSet gpu = Gpus("RTX-3060");
  const Estimate base = EstimateOrDie(m, Llama(4096), gpu);
  const int64_t experts = ChildBytes(base.devices[0].components, "weights", "experts");
  ASSERT_GT(experts, 10 * 1024 * kMiB);

  InferenceSettings ncmoe = Llama(4096);
  ncmoe.llamacpp.n_cpu_moe = 48;
  InferenceSettings cmoe = Llama(4096);
  cmoe.llamacpp.cpu_moe = true;
  InferenceSettings ot = Llama(4096);
  ot.llamacpp.override_tensor = {std::string(lc::kExpsRegex) + "=CPU"};
  std::vector<Estimate> es;
  for (const InferenceSettings* s : {&ncmoe, &cmoe, &ot}) es.push_back(EstimateOrDie(m, *s, gpu));
  for (const Estimate& e : es) {
    EXPECT_EQ(ChildBytes(e.devices[0].components, "weights", "experts"), 0);
    EXPECT_EQ(ChildBytes(e.host, "weights", "experts"), experts);
    EXPECT_EQ(ComponentBytes(e.devices[0], "weights"), ComponentBytes(base.devices[0], "weights") - experts);
    EXPECT_EQ(ComponentBytes(e.devices[0], "weights") + HostBytes(e, "weights"), e.weight_bytes.value());
    // The KV stays with its layers.
    EXPECT_EQ(ComponentBytes(e.devices[0], "kv_cache"), ComponentBytes(base.devices[0], "kv_cache"));
    EXPECT_EQ(e.devices[0].total, es[0].devices[0].total);
    EXPECT_EQ(HostBytes(e, "compute_buffer"), HostBytes(es[0], "compute_buffer"));
  }
  EXPECT_EQ(es[0].launch_flags.back(), "--n-cpu-moe 48");
  EXPECT_EQ(es[1].launch_flags.back(), "--cpu-moe");
}

// --n-cpu-moe N: blocks 0..N-1 lose their routed experts only (router and
// attention stay); the per-block regex "blk\.1" does not match blk.10..19.
TEST(LlamaCppPlacementTest, NCpuMoeFirstBlocksOnly) {
  const Model m = CatalogModelOrDie("Qwen/Qwen3-30B-A3B");
  InferenceSettings s = Llama(4096);
  const lc::GgufFile f = FileOf(m, s);
  int64_t first2 = 0;
  for (const lc::Placed& t : f.tensors) {
    if (t.role == Role::kExperts && t.slot >= 0 && t.slot < 2) first2 += t.bytes.value();
  }
  ASSERT_GT(first2, 0);
  s.llamacpp.n_cpu_moe = 2;
  const Estimate e = EstimateOrDie(m, s, Gpus("RTX-4090"));
  EXPECT_EQ(ChildBytes(e.host, "weights", "experts"), first2);
  EXPECT_EQ(ComponentBytes(e.devices[0], "weights") + HostBytes(e, "weights"), e.weight_bytes.value());
  EXPECT_EQ(lc::BlockExpsRegex(1), "blk\\.1\\.ffn_(up|down|gate|gate_up)_(ch|)exps");
}

// Op offload: at ubatch >= 32 the host experts' matmuls run on GPU0, which
// copies the expert tensor into its compute buffer (the staged host weight:
// the largest host tensor + its matmul's input and output); at ubatch < 32
// they run on the CPU and the FFN's temporaries sit in the host compute
// buffer instead.
TEST(LlamaCppPlacementTest, HostExpertsRunWhereTheSchedulerPutsThem) {
  const Model m = CatalogModelOrDie("Qwen/Qwen3-30B-A3B");
  InferenceSettings s = Llama(512);
  s.llamacpp.cpu_moe = true;
  const lc::GgufFile f = FileOf(m, s);
  int64_t staged = 0;
  for (const lc::Placed& t : f.tensors) {
    if (t.role != Role::kExperts) continue;
    const int64_t act = (2 * t.ne0 + t.rows * m.spec.num_experts_per_tok) * 512 * 4;
    staged = std::max(staged, t.bytes.value() + act);
  }
  const Estimate e = EstimateOrDie(m, s, Gpus("RTX-4090"));
  // At -c 512 the logits term (151936 + 4096) x 512 x 4 B = 304.8 MiB
  // outweighs the staged down_exps (Q6_K, 157.5 MiB + its matmul's rows).
  const int64_t logits = (151936LL + 2 * 2048) * 512 * 4;
  ASSERT_LT(staged, logits);
  EXPECT_EQ(ComponentBytes(e.devices[0], "compute_buffer"), logits);
  // -ub 256 halves the logits term below the staged weight's.
  s.llamacpp.ubatch = 256;
  int64_t staged256 = 0;
  for (const lc::Placed& t : f.tensors) {
    if (t.role != Role::kExperts) continue;
    staged256 = std::max(staged256, t.bytes.value() + (2 * t.ne0 + t.rows * 8) * 256 * 4);
  }
  const Estimate e256 = EstimateOrDie(m, s, Gpus("RTX-4090"));
  EXPECT_EQ(ChildBytes(e256.devices[0].components, "compute_buffer", "staged host weight"), staged256);
  // -ub 16: no op offload; the experts' FFN runs on the CPU.
  s.llamacpp.ubatch = 16;
  const Estimate e16 = EstimateOrDie(m, s, Gpus("RTX-4090"));
  EXPECT_EQ(ChildBytes(e16.devices[0].components, "compute_buffer", "staged host weight"), 0);
  const int64_t ffn = (std::max(3 * 768, 768 + 2048) * 8 + 128 + 2 * 2048) * 16LL * 4;
  EXPECT_EQ(ChildBytes(e16.host, "compute_buffer", "ffn (experts)"), ffn);
}

// -ot to another GPU: block 0's tensors on GPU1 while its KV stays on its
// layer's device (GPU0); its attention runs on GPU1 with the KV copied in.
TEST(LlamaCppPlacementTest, OverrideToAnotherGpu) {
  const Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  const DeviceSet two = Gpus("RTX-4090x2");
  const Estimate base = EstimateOrDie(m, Llama(4096), two);
  InferenceSettings s = Llama(4096);
  s.llamacpp.override_tensor = {"blk\\.0\\.=CUDA1"};
  const Estimate e = EstimateOrDie(m, s, two);
  const lc::GgufFile f = FileOf(m, s);
  int64_t blk0 = 0;
  for (const lc::Placed& t : f.tensors) blk0 += t.slot == 0 ? t.bytes.value() : 0;
  EXPECT_EQ(ComponentBytes(e.devices[0], "weights"), ComponentBytes(base.devices[0], "weights") - blk0);
  EXPECT_EQ(ComponentBytes(e.devices[1], "weights"), ComponentBytes(base.devices[1], "weights") + blk0);
  EXPECT_EQ(ComponentBytes(e.devices[0], "kv_cache"), ComponentBytes(base.devices[0], "kv_cache"));
  // A regex is single-quoted for the shell; the argv token is the regex.
  EXPECT_EQ(e.launch_flags[7], "-ot 'blk\\.0\\.=CUDA1'");
  const std::vector<std::string> argv = LaunchArgv({e.launch_flags[7], "-ot 'it'\\''s=CPU'", "-ot exps=CPU"});
  EXPECT_EQ(argv, (std::vector<std::string>{"-ot", "blk\\.0\\.=CUDA1", "-ot", "it's=CPU", "-ot", "exps=CPU"}));
}

// The tied head is token_embd created again for the output layer; the
// overrides apply to both, and the copy exists only where its buffer differs
// from token_embd's (create_tensor's TENSOR_DUPLICATED check). Gemma-3 27B
// with token_embd on CUDA0: one copy, on the GPU; the GPU holds the file.
TEST(LlamaCppPlacementTest, TiedHeadFollowsTheOverride) {
  InferenceSettings s = Llama(4096);
  s.llamacpp.override_tensor = {"token_embd=CUDA0"};
  const Estimate e = EstimateOrDie(CatalogModelOrDie("google/gemma-3-27b-it"), s, Gpus("RTX-4090"));
  EXPECT_EQ(ComponentBytes(e.devices[0], "weights"), e.weight_bytes.value());
  EXPECT_EQ(ChildBytes(e.devices[0].components, "weights", "lm_head"), 0);
  EXPECT_EQ(HostBytes(e, "weights"), 0);
}

// output.weight kept on the CPU: the output matmul (512 tokens >= 32) runs
// on GPU0, which stages the weight with the logits (StagedHostWeight).
TEST(LlamaCppPlacementTest, HostHeadIsStagedOnGpu0) {
  const Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  InferenceSettings s = Llama(4096);
  s.llamacpp.override_tensor = {"^output\\.weight=CPU"};
  const Estimate e = EstimateOrDie(m, s, Gpus("RTX-4090"));
  const int64_t head = 128256LL * (4096 / 256 * 210);  // Q6_K
  EXPECT_EQ(ChildBytes(e.host, "weights", "lm_head"), head);
  EXPECT_EQ(ChildBytes(e.devices[0].components, "compute_buffer", "staged host weight"),
            head + (128256LL + 2 * 4096) * 512 * 4);
}

// A .gguf file's own tensors: the overrides see the names as stored.
// --n-cpu-moe 1 takes blk.0's three expert tensors, not blk.1's, and not
// the router (ffn_gate_inp) or the shared expert (ffn_up_shexp).
TEST(LlamaCppPlacementTest, GgufFileTensors) {
  Model m = TinyGgufModel("tiny-moe.gguf", "qwen2_moe", /*moe=*/true, /*tied=*/false);
  const auto t = [](const char* name, Role role, int64_t layer, int64_t bytes) {
    return GgufTensor(name, role, layer, bytes, {256, 128, 4});
  };
  m.file_tensors = {t("token_embd.weight", Role::kEmbed, -1, 1000),
                    t("blk.0.attn_q.weight", Role::kAttention, 0, 100),
                    t("blk.0.ffn_gate_inp.weight", Role::kRouter, 0, 7),
                    t("blk.0.ffn_up_shexp.weight", Role::kSharedExperts, 0, 11),
                    t("blk.0.ffn_gate_exps.weight", Role::kExperts, 0, 300),
                    t("blk.0.ffn_up_exps.weight", Role::kExperts, 0, 301),
                    t("blk.0.ffn_down_exps.weight", Role::kExperts, 0, 302),
                    t("blk.1.attn_q.weight", Role::kAttention, 1, 200),
                    t("blk.1.ffn_up_exps.weight", Role::kExperts, 1, 400),
                    t("output.weight", Role::kLmHead, -1, 50)};
  InferenceSettings x;
  x.runtime = Runtime::kLlamaCpp;
  x.ctx = 256;
  x.llamacpp.n_cpu_moe = 1;
  const Estimate e = EstimateOrDie(m, x);
  EXPECT_EQ(HostBytes(e, "weights"), 1000 + 300 + 301 + 302);
  EXPECT_EQ(ComponentBytes(e.devices[0], "weights"), 100 + 7 + 11 + 200 + 400 + 50);
  x.llamacpp.n_cpu_moe.reset();
  x.llamacpp.override_tensor = {"blk\\.1\\.=CPU"};  // the whole of block 1; its KV stays on the GPU
  const Estimate o = EstimateOrDie(m, x);
  EXPECT_EQ(HostBytes(o, "weights"), 1000 + 200 + 400);
  EXPECT_EQ(HostBytes(o, "kv_cache"), 0);
}

// --tensor-split: cumulative shares [0.75, 1] over 33 slots: slot il on GPU0
// while il / 33 < 0.75 (blocks 0..24), GPU1 blocks 25..31 and the output.
// (The same rule reproduced L15's four-GPU -ts 6.5,6,10,4 KV split.) All-zero
// shares fall back to the memory split (load_tensors' all_zero).
TEST(LlamaCppPlacementTest, TensorSplit) {
  const Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  const DeviceSet two = Gpus("A100-80GBx2");
  const int64_t kv_layer = 4096LL * 2 * 1024 * 2;
  InferenceSettings s = Llama(4096);
  s.llamacpp.tensor_split = {3, 1};
  Estimate e = EstimateOrDie(m, s, two);
  EXPECT_EQ(ComponentBytes(e.devices[0], "kv_cache"), 25 * kv_layer);
  EXPECT_EQ(ComponentBytes(e.devices[1], "kv_cache"), 7 * kv_layer);
  EXPECT_EQ(e.launch_flags.back(), "-ts 3,1");
  EXPECT_EQ(lc::TensorSplit(two, {3, 1}), (std::vector<float>{0.75f, 1.0f}));
  EXPECT_EQ(lc::TensorSplit(two, {0, 0}), (std::vector<float>{0.5f, 1.0f}));
  // A zero share: that GPU holds no layer (it still has a CUDA context).
  s.llamacpp.tensor_split = {0, 1};
  e = EstimateOrDie(m, s, two);
  EXPECT_EQ(ComponentBytes(e.devices[0], "weights"), 0);
  EXPECT_EQ(ComponentBytes(e.devices[0], "cuda_context"), 384 * kMiB);
  // L09's "-ts 40,0" on one GPU: a zero past the last GPU is accepted.
  s.llamacpp.tensor_split = {40, 0};
  e = EstimateOrDie(m, s, Gpus("RTX-3090"));
  EXPECT_EQ(e.launch_flags.back(), "-ts 40,0");
}

// --split-mode none: the main GPU alone (llama_prepare_model_devices); the
// other GPU holds nothing, not even a context. -mg -1: no GPU at all.
TEST(LlamaCppPlacementTest, SplitModeNone) {
  const Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  const DeviceSet two = Gpus("RTX-4090x2");
  InferenceSettings s = Llama(4096);
  s.llamacpp.split_mode = LlamaSplitMode::kNone;
  s.llamacpp.main_gpu = 1;
  Estimate e = EstimateOrDie(m, s, two);
  EXPECT_EQ(e.devices[0].total.value(), 0);
  EXPECT_EQ(ComponentBytes(e.devices[1], "kv_cache"), 32LL * 4096 * 2 * 1024 * 2);
  EXPECT_EQ(ComponentBytes(e.devices[1], "weights") + HostBytes(e, "weights"), e.weight_bytes.value());
  EXPECT_EQ(e.launch_flags.back(), "-mg 1");
  s.llamacpp.main_gpu = -1;
  e = EstimateOrDie(m, s, two);
  EXPECT_EQ(e.devices[0].total.value() + e.devices[1].total.value(), 0);
  EXPECT_EQ(HostBytes(e, "kv_cache"), 32LL * 4096 * 2 * 1024 * 2);
  EXPECT_EQ(HostBytes(e, "weights"), e.weight_bytes.value());
}

TEST(LlamaCppPlacementTest, ExactErrors) {
  const Model dense = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  const Model moe = CatalogModelOrDie("Qwen/Qwen3-30B-A3B");
  InferenceSettings s = Llama(4096);
  s.llamacpp.n_cpu_moe = 4;
  EXPECT_EQ(Error(dense, s),
            "--n-cpu-moe: meta-llama/Llama-3.1-8B is a dense model with no expert tensors (ffn_*_exps) to keep "
            "in host memory; --gpu-layers N places whole layers");
  s = Llama(4096);
  s.llamacpp.cpu_moe = true;
  EXPECT_EQ(Error(dense, s).rfind("--cpu-moe: meta-llama/Llama-3.1-8B is a dense model", 0), 0u);
  s = Llama(4096);
  s.llamacpp.n_cpu_moe = -1;
  EXPECT_EQ(Error(moe, s), "--n-cpu-moe: expected 0 or more layers, got -1");

  const auto ot = [&](std::vector<std::string> v, const Model& m, const DeviceSet& d = {}) {
    InferenceSettings x = Llama(4096);
    x.llamacpp.override_tensor = std::move(v);
    return Error(m, x, d);
  };
  EXPECT_EQ(ot({"exps"}, moe), "--override-tensor: expected REGEX=BUFTYPE (such as exps=CPU), got 'exps'");
  EXPECT_EQ(ot({"exps=CPU,,x=CPU"}, moe), "--override-tensor: expected REGEX=BUFTYPE (such as exps=CPU), got ''");
  EXPECT_EQ(ot({"exps=CPU,"}, moe), "");  // a trailing comma adds no piece (string_split)
  EXPECT_EQ(ot({std::string(1025, 'a') + "=CPU"}, moe),
            "--override-tensor: a pattern of 1025 characters (at most 1024)");
  EXPECT_EQ(ot({"exps=CUDA1"}, moe), "--override-tensor exps=CUDA1: buffer type 'CUDA1' is not one of CPU, CUDA0");
  EXPECT_EQ(ot({"exps=cpu"}, moe, Gpus("RTX-4090x2")),
            "--override-tensor exps=cpu: buffer type 'cpu' is not one of CPU, CUDA0, CUDA1");
  EXPECT_EQ(ot({"blk\\.(0=CPU"}, moe).rfind("--override-tensor blk\\.(0=CPU: 'blk\\.(0' is not a regular expression (", 0),
            0u);
  EXPECT_EQ(ot({"exps=CPU"}, dense),
            "--override-tensor exps=CPU: 'exps' matches no tensor of this model (GGUF names such as "
            "blk.0.attn_q.weight, blk.0.ffn_up_exps.weight)");
  EXPECT_EQ(ot({"exps=CPU,ffn_up_exps=CUDA0"}, moe),
            "--override-tensor ffn_up_exps=CUDA0: every tensor it matches is placed by an earlier override; it "
            "changes nothing");
  InferenceSettings both = Llama(4096);
  both.llamacpp.override_tensor = {"blk\\.0\\.ffn_up_exps=CUDA0"};
  both.llamacpp.n_cpu_moe = 1;
  EXPECT_EQ(Error(moe, both),
            "--override-tensor blk\\.0\\.ffn_up_exps=CUDA0 and --n-cpu-moe 1 both place blk.0.ffn_up_exps.weight: "
            "llama.cpp takes the one first on its command line; give one of them");

  InferenceSettings row = Llama(4096);
  row.llamacpp.split_mode = LlamaSplitMode::kRow;
  EXPECT_EQ(Error(dense, row, Gpus("T4x2")).rfind("--split-mode row: llama.cpp's row split (each matrix's rows", 0),
            0u);
  InferenceSettings mg = Llama(4096);
  mg.llamacpp.split_mode = LlamaSplitMode::kNone;
  mg.llamacpp.main_gpu = 2;
  EXPECT_EQ(Error(dense, mg, Gpus("RTX-4090x2")), "--main-gpu: 2 is out of range (-1..1)");
  mg.llamacpp.tensor_split = {1, 1};
  mg.llamacpp.main_gpu = 0;
  EXPECT_EQ(Error(dense, mg, Gpus("RTX-4090x2")),
            "--tensor-split: --split-mode none puts every offloaded layer on --main-gpu");
  InferenceSettings ts = Llama(4096);
  ts.llamacpp.tensor_split = {1, 1, 1};
  EXPECT_EQ(Error(dense, ts, Gpus("RTX-4090x2")),
            "--tensor-split: 3 shares for 2 GPU(s) (--gpu); a share past the last GPU must be 0");
}

// --main-gpu with the layer split: llama.cpp reads it only for none/row;
// accepted (pasted commands carry it, L15) and said so.
TEST(LlamaCppPlacementTest, MainGpuWithLayerSplitIsNoted) {
  InferenceSettings s = Llama(4096);
  s.llamacpp.main_gpu = 1;
  const Estimate with = EstimateOrDie(CatalogModelOrDie("meta-llama/Llama-3.1-8B"), s, Gpus("RTX-4090x2"));
  const Estimate without =
      EstimateOrDie(CatalogModelOrDie("meta-llama/Llama-3.1-8B"), Llama(4096), Gpus("RTX-4090x2"));
  EXPECT_EQ(with.devices[0].total, without.devices[0].total);
  EXPECT_NE(std::find(with.notes.begin(), with.notes.end(),
                      "--main-gpu 1: llama.cpp reads it with --split-mode none (and row); with layer it changes "
                      "nothing"),
            with.notes.end());
}

// The flags as users type them (common/arg.cpp spellings) and their errors.
TEST(LlamaCppPlacementTest, Settings) {
  auto job = [](std::vector<std::pair<const char*, const char*>> given) {
    app::Request r;
    r.AddGiven(app::FindSetting("runtime"), "llamacpp", "--runtime");
    for (const auto& [k, v] : given) {
      Status st = r.Add(k, v, app::kCmdInfer);
      EXPECT_TRUE(st.ok()) << k;
    }
    return app::BuildJob(r, app::kCmdInfer);
  };
  auto j = job({{"-ncmoe", "12"}, {"-ot", "a=CPU"}, {"-ot", "b=CUDA0,c=CPU"}, {"-ts", "3/1"}, {"-sm", "none"},
                {"-mg", "1"}});
  ASSERT_TRUE(j.ok()) << j.error().message;
  const LlamaCppKnobs& k = j->job.infer.llamacpp;
  EXPECT_EQ(*k.n_cpu_moe, 12);
  EXPECT_EQ(k.override_tensor, (std::vector<std::string>{"a=CPU", "b=CUDA0,c=CPU"}));
  EXPECT_EQ(k.tensor_split, (std::vector<double>{3, 1}));
  EXPECT_EQ(*k.split_mode, LlamaSplitMode::kNone);
  EXPECT_EQ(*k.main_gpu, 1);
  auto cmoe = app::ExpandAliases({"-cmoe", "--tensor-split", "6.5,6,10,4"}, app::kCmdInfer);
  ASSERT_TRUE(cmoe.ok());
  EXPECT_EQ(*cmoe, (std::vector<std::string>{"--cpu-moe=true", "--tensor-split", "6.5,6,10,4"}));
  EXPECT_EQ(job({{"split-mode", "rows"}}).error().message, "--split-mode: expected none, layer or row, got 'rows'");
  EXPECT_EQ(job({{"tensor-split", "3,x"}}).error().message,
            "--tensor-split: expected shares such as 3,1 (one number of 0 or more per GPU), got '3,x'");
  // Runtime knobs: refused elsewhere.
  app::Request hf;
  ASSERT_TRUE(hf.Add("n-cpu-moe", "4", app::kCmdInfer).ok());
  EXPECT_EQ(app::BuildJob(hf, app::kCmdInfer).error().message, "--n-cpu-moe: applies to --runtime llamacpp, not hf");
}

}  // namespace
}  // namespace vramfit
