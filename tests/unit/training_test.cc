// Training estimates: exact arithmetic on a small model, LoRA shapes,
// sharding, phases, monotonicity and setting errors.
#include <gtest/gtest.h>

#include "test_util.h"
#include "vramfit/training.h"

namespace vramfit {
namespace {

using testing::CatalogModelOrDie;
using testing::ComponentBytes;
using testing::Gpus;

Estimate TrainOrDie(const Model& m, const TrainingSettings& s, const DeviceSet& d = {}) {
  auto w = ResolveTraining(m, s, d, nullptr);
  EXPECT_TRUE(w.ok()) << (w.ok() ? "" : w.error().message);
  if (!w.ok()) return {};
  auto e = EstimateTraining(m, *w, d);
  EXPECT_TRUE(e.ok()) << (e.ok() ? "" : e.error().message);
  if (!e.ok()) return {};
  for (const DeviceEstimate& dev : e->devices) {
    Status st = CheckTree(dev.components);
    EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().message);
    EXPECT_EQ(Total(dev.components), dev.total);
    EXPECT_LE(*dev.allocated_peak, *dev.reserved_peak);
  }
  return e.value();
}

// SmolLM2-135M (134,515,008 params; h 576, 3 KV heads x 64, I 1536, 9
// heads, 30 layers, vocab 49,152, tied), full fine-tune, bf16-mixed, torch
// AdamW (foreach), 1 x 256 tokens, sdpa, transformers loss. Per-token
// activation bytes per layer from docs/research/training.md section 4.3:
//   2 RMSNorms x (4h fp32 input + 2h normalized + 4 rstd)      = 6,920
//   q/k/v input 2h + flash q,k,v,out 2(576+192+192+576) + lse 4x9 + o input 2h = 5,412
//   gate/up input 2h + down input 2I + SwiGLU 3 x 2I           = 13,440
//
// 16-bit weights + an fp32 master: --stack torchtitan (FSDP2 mixed
// precision), with its loss (bf16 pred + fp32 copy + fp32 log-probs, 10 B;
// torchtitan components/loss.py) and foreach AdamW given explicitly.
TEST(TrainingTest, SmallModelByHand) {
  Model m = CatalogModelOrDie("HuggingFaceTB/SmolLM2-135M");
  TrainingSettings s;
  s.stack = Stack::kTorchtitan;
  s.grad_ckpt = GradCkpt::kNone;
  s.optimizer_fused = false;
  s.seq = 256;
  Estimate e = TrainOrDie(m, s);
  const int64_t p = 134515008;
  const int64_t persistent = 2 * p + 4 * p + 8 * p;  // weights + fp32 master + AdamW states
  const int64_t grads = 2 * p;
  const int64_t per_layer = 6920 + 5412 + 13440;
  const int64_t acts = per_layer * 30 * 256 + 256 * 6 * 576;  // + final norm / head input
  const int64_t logits = 256LL * 49152 * 10;                  // bf16 pred + fp32 copy + log-probs
  const int64_t fwd_end = persistent + acts + logits;
  const int64_t step = persistent + grads + 4 * p;            // foreach: one fp32 param-sized list
  ASSERT_EQ(e.devices.size(), 1u);
  const DeviceEstimate& d = e.devices[0];
  EXPECT_GT(step, fwd_end);
  EXPECT_EQ(d.peak_phase, "optimizer step");
  EXPECT_EQ(d.allocated_peak->value(), step);
  EXPECT_EQ(ComponentBytes(d, "weights"), 2 * p);
  EXPECT_EQ(ComponentBytes(d, "master_weights"), 4 * p);
  EXPECT_EQ(ComponentBytes(d, "gradients"), 2 * p);
  EXPECT_EQ(ComponentBytes(d, "optimizer_states"), 8 * p);
  // Fused AdamW has no step temporaries: the end of forward is the peak.
  s.optimizer_fused = true;
  Estimate f = TrainOrDie(m, s);
  EXPECT_EQ(f.devices[0].peak_phase, "forward end");
  EXPECT_EQ(f.devices[0].allocated_peak->value(), fwd_end);
  EXPECT_EQ(ComponentBytes(f.devices[0], "gradients"), 0);  // not allocated before backward
  EXPECT_EQ(ComponentBytes(f.devices[0], "logits"), logits);
}

// The HF Trainer's mixed precision is accelerate's torch.autocast over fp32
// parameters (accelerate accelerator.py prepare_model; research note
// "autocast weight cache"): SmolLM2-135M keeps 4 B weights, 4 B gradients
// and 8 B states (no separate master), and each layer's linear weights are
// cast to bf16 and saved by their matmuls until backward: per layer q 576 +
// k 192 + v 192 + o 576 rows of 576 plus gate/up/down 3 x 1536 x 576 =
// 3,538,944 elements, x 30 layers, + the tied head 49,152 x 576, x 2 B.
// The residual stream and the norm outputs stay fp32, so q, k, v and gate,
// up each save their own bf16 cast of the norm output and the norm weights
// multiply fp32 inputs: 10h = 5,760 B per token per layer more than pure
// bf16 (StacksTest.AutocastCastsEachLinearsInputAndKeepsTheResidualFp32).
TEST(TrainingTest, HfTrainerMixedPrecisionIsAutocastOverFp32) {
  Model m = CatalogModelOrDie("HuggingFaceTB/SmolLM2-135M");
  TrainingSettings s;
  s.seq = 256;
  s.precision = Precision::kBf16Mixed;
  s.optimizer_fused = true;
  Estimate e = TrainOrDie(m, s);
  const int64_t p = 134515008;
  const DeviceEstimate& d = e.devices[0];
  EXPECT_EQ(ComponentBytes(d, "weights"), 4 * p);
  EXPECT_EQ(ComponentBytes(d, "master_weights"), 0);
  EXPECT_EQ(ComponentBytes(d, "optimizer_states"), 8 * p);
  const int64_t casts = (3538944LL * 30 + 49152LL * 576) * 2;  // 268,959,744
  const int64_t per_layer = 6920 + 5412 + 13440 + 10 * 576;
  const int64_t acts = per_layer * 30 * 256 + 256 * 6 * 576;
  EXPECT_EQ(d.peak_phase, "forward end");
  EXPECT_EQ(ComponentBytes(d, "activations"), acts + casts);
  EXPECT_EQ(d.allocated_peak->value(), 12 * p + acts + casts + 256LL * 49152 * 12);
}

// Issue #3: Llama-3.1-8B LoRA r=16 all-linear = 41,943,040 adapter params:
// 32 x 16 x [(4096+4096) x 2 (q, o) + (4096+1024) x 2 (k, v) + (4096+14336) x 3].
TEST(TrainingTest, LoraAdapterShapes) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  TrainingSettings s;
  s.method = TrainMethod::kLora;
  auto w = ResolveTraining(m, s, {}, nullptr);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(LoraParams(m, *w), 41943040);
  s.lora_targets = "q,v";
  s.lora_rank = 8;
  w = ResolveTraining(m, s, {}, nullptr);
  EXPECT_EQ(LoraParams(m, *w), 32LL * 8 * ((4096 + 4096) + (4096 + 1024)));
  // Phi-3 fuses q/k/v: the adapter wraps qkv_proj [3072 + 2 x 3072, 3072].
  Model phi = CatalogModelOrDie("microsoft/Phi-3-mini-4k-instruct");
  s.lora_targets = "qkv";
  s.lora_rank = 16;
  w = ResolveTraining(phi, s, {}, nullptr);
  EXPECT_EQ(LoraParams(phi, *w), 32LL * 16 * (3072 + 9216));
}

// bf16-mixed full fine-tune: 16 B per parameter of model state (2 weights +
// 4 master + 2 gradients + 8 AdamW states); ZeRO-3 over 8 GPUs divides all
// of it by 8 (Rajbhandari et al. 2020, (2+2+K)Psi/N with K = 12).
TEST(TrainingTest, ModelStateAndZero3) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  const int64_t p = 8030261248;
  TrainingSettings s;
  s.optimizer_fused = false;  // foreach: its parameter-sized list makes the step the peak
  Estimate one = TrainOrDie(m, s);
  const DeviceEstimate& d = one.devices[0];
  EXPECT_EQ(d.peak_phase, "optimizer step");
  EXPECT_EQ(ComponentBytes(d, "weights") + ComponentBytes(d, "master_weights") +
                ComponentBytes(d, "gradients") + ComponentBytes(d, "optimizer_states"),
            16 * p);
  s.zero = 3;
  Estimate z = TrainOrDie(m, s, Gpus("H100-80GBx8"));
  ASSERT_EQ(z.devices.size(), 8u);
  const DeviceEstimate& z0 = z.devices[0];
  const int64_t state = ComponentBytes(z0, "weights") + ComponentBytes(z0, "master_weights") +
                        ComponentBytes(z0, "optimizer_states");
  EXPECT_NEAR(static_cast<double>(state), 14.0 * p / 8, 8);
  // ZeRO-1 shards only master + states; ZeRO-2 adds gradients.
  s.zero = 1;
  Estimate z1 = TrainOrDie(m, s, Gpus("H100-80GBx8"));
  EXPECT_EQ(ComponentBytes(z1.devices[0], "weights"), 2 * p);
  EXPECT_NEAR(static_cast<double>(ComponentBytes(z1.devices[0], "optimizer_states")), 8.0 * p / 8, 8);
}

// QLoRA over an NF4 double-quantized base on a T4 (issue #3 acceptance):
// fits, and the adapters, their AdamW states and the logits are shown.
TEST(TrainingTest, QloraOnT4Fits) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  TrainingSettings s;
  s.method = TrainMethod::kQlora;
  s.grad_ckpt = GradCkpt::kFull;
  Estimate e = TrainOrDie(m, s, Gpus("T4"));
  ASSERT_TRUE(e.fits.has_value());
  EXPECT_TRUE(*e.fits);
  const DeviceEstimate& d = e.devices[0];
  EXPECT_GT(d.gpu->capacity - d.total, GiB(1));  // a real margin, not a coin toss
  EXPECT_EQ(ComponentBytes(d, "gradients"), 0);
  EXPECT_EQ(ComponentBytes(d, "optimizer_states"), 0);
  const Component* ad = Find(d.components, "adapters");
  ASSERT_NE(ad, nullptr);
  EXPECT_EQ(ad->children[0].bytes.value(), 41943040LL * 4);  // fp32 adapters
  EXPECT_EQ(ad->children[2].bytes.value(), 41943040LL * 8);  // AdamW fp32 states
  // Without checkpointing the same job does not fit.
  s.grad_ckpt = GradCkpt::kNone;
  Estimate no = TrainOrDie(m, s, Gpus("T4"));
  EXPECT_FALSE(*no.fits);
}

// More batch, longer sequences, bigger rank never need less memory.
TEST(TrainingTest, Monotone) {
  for (const char* id : {"meta-llama/Llama-3.1-8B", "Qwen/Qwen3-30B-A3B", "google/gemma-2-2b", "openai-community/gpt2"}) {
    Model m = CatalogModelOrDie(id);
    for (TrainMethod method : {TrainMethod::kFull, TrainMethod::kLora, TrainMethod::kQlora}) {
      Bytes prev_256, prev_1024;
      for (int64_t b : {1, 2, 4}) {
        Bytes at_256;
        for (int64_t seq : {256, 1024}) {
          TrainingSettings s;
          s.method = method;
          s.batch = b;
          s.seq = seq;
          Estimate e = TrainOrDie(m, s);
          const Bytes peak = *e.devices[0].allocated_peak;
          Bytes& prev = seq == 256 ? prev_256 : prev_1024;
          EXPECT_GE(peak, prev) << id << " b" << b << " seq " << seq;  // more batch
          if (seq == 1024) {
            EXPECT_GE(peak, at_256) << id << " b" << b;  // longer sequence
          }
          at_256 = peak;
          prev = peak;
        }
      }
      if (method == TrainMethod::kFull) continue;
      Bytes prev_r;
      for (int64_t r : {8, 16, 64}) {
        TrainingSettings s;
        s.method = method;
        s.lora_rank = r;
        Estimate e = TrainOrDie(m, s);
        EXPECT_GE(*e.devices[0].allocated_peak, prev_r) << id << " rank " << r;
        prev_r = *e.devices[0].allocated_peak;
      }
    }
  }
}

TEST(TrainingTest, PagedStatesAreOutsideTorchAllocator) {
  Model m = CatalogModelOrDie("meta-llama/Llama-2-7b-hf");
  TrainingSettings s;
  s.precision = Precision::kBf16;
  s.optimizer = Optimizer::kPagedAdamW8bit;
  Estimate e = TrainOrDie(m, s);
  const DeviceEstimate& d = e.devices[0];
  const int64_t states = ComponentBytes(d, "optimizer_states");
  EXPECT_GT(states, 2LL * 6738415616);  // ~2 B/param + absmax
  EXPECT_EQ(d.total.value() - d.reserved_peak->value(),
            states + ComponentBytes(d, "cuda_context"));
}

TEST(TrainingTest, GradientAccumulationKeepsGradients) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.2-1B-Instruct");
  TrainingSettings s;
  s.optimizer_fused = true;
  s.seq = 4096;
  Estimate one = TrainOrDie(m, s);
  s.grad_accum = 8;
  Estimate acc = TrainOrDie(m, s);
  EXPECT_EQ(one.devices[0].peak_phase, "forward end");
  EXPECT_EQ(acc.devices[0].allocated_peak->value() - one.devices[0].allocated_peak->value(),
            1235814400LL * 4);  // fp32 (AMP) gradients kept between micro-batches
}

TEST(TrainingTest, SettingErrors) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  const auto err = [&](const TrainingSettings& s, const DeviceSet& d = {}) {
    auto w = ResolveTraining(m, s, d, nullptr);
    return w.ok() ? std::string("ok") : w.error().message;
  };
  TrainingSettings s;
  s.zero = 4;
  EXPECT_EQ(err(s), "--zero: expected 0, 1, 2 or 3, got 4");
  s = {};
  s.offload = Offload::kParams;
  EXPECT_EQ(err(s), "--offload params: needs --zero 3 or --fsdp (parameters are sharded there)");
  s = {};
  s.method = TrainMethod::kQlora;
  s.quant = *ParseWeightFormat("gptq-int4");
  EXPECT_EQ(err(s), "--quant: QLoRA trains over a bitsandbytes base (nf4, nf4-dq, fp4, fp4-dq, int8), not gptq-int4");
  s = {};
  s.quant = *ParseWeightFormat("nf4");
  EXPECT_EQ(err(s), "--quant: full fine-tuning updates the weights, which cannot stay nf4; use --method lora or qlora");
  s = {};
  s.gpus = 4;
  EXPECT_EQ(err(s, Gpus("H100-80GBx8")), "--gpus 4 x --tp 1 x --pp 1 needs 4 GPUs, but --gpu gives 8");
  s = {};
  s.method = TrainMethod::kLora;
  s.lora_targets = "q,attn_out";
  EXPECT_EQ(err(s), "--lora-targets: unknown module 'attn_out' (expected all-linear, attn, mlp, or a list of q, k, "
                    "v, o, gate, up, down, experts, router)");
  s = {};
  s.seq = 0;
  EXPECT_EQ(err(s), "--seq: must be a positive integer, got 0");
  EXPECT_EQ(ParseOptimizer("adam").error().message,
            "--optimizer: unknown value 'adam' (expected adamw, adamw-8bit, paged-adamw-8bit, adafactor, sgd, "
            "sgd-momentum, lion, paged-adamw)");
}

TEST(TrainingTest, FreezeTrainsTheLastLayers) {
  Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  TrainingSettings s;
  s.method = TrainMethod::kFreeze;
  s.trainable_layers = 4;
  auto w = ResolveTraining(m, s, {}, nullptr);
  ASSERT_TRUE(w.ok());
  Estimate e = TrainOrDie(m, s);
  // Trainable: 4 layers + final norm + lm_head.
  const int64_t layer = (8030261248LL - 2 * 525336576 - 4096) / 32;
  const int64_t trainable = 4 * layer + 525336576 + 4096;
  bool found = false;
  for (const auto& [k, v] : e.workload) {
    if (k == "trainable_params") {
      EXPECT_EQ(std::get<int64_t>(v), trainable);
      found = true;
    }
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace vramfit
