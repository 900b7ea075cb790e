// Training-stack profiles (--stack, src/core/stacks/): defaults each stack
// resolves, and the terms that differ between stacks. Sources per term:
// docs/estimation.md 7.9.
#include <gtest/gtest.h>

#include <algorithm>

#include "test_util.h"
#include "core/training_steps.h"
#include "vramfit/training.h"

namespace vramfit {
namespace {

using testing::ComponentBytes;
using testing::Gpus;
using testing::CatalogModelOrDie;
using namespace training;

Estimate TrainOrDie(const Model& m, const TrainingSettings& s, const DeviceSet& d = {},
                    std::vector<std::string>* notes = nullptr) {
  auto w = ResolveTraining(m, s, d, notes);
  EXPECT_TRUE(w.ok()) << (w.ok() ? "" : w.error().message);
  auto e = EstimateTraining(m, *w, d);
  EXPECT_TRUE(e.ok()) << (e.ok() ? "" : e.error().message);
  return *e;
}

const Model& Llama() {
  static const Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  return m;
}

TEST(StacksTest, NamesRoundTripAndUnmodelledStacksAreRefused) {
  for (Stack s : AllStacks()) {
    auto p = ParseStack(StackName(s));
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(*p, s);
    EXPECT_FALSE(StackSummary(s).empty());
  }
  EXPECT_EQ(ParseStack("megatron").error().message,
            "--stack: megatron is not modelled yet (its own engine, optimizer and parallel layout); "
            "hf-trainer with --zero models DeepSpeed under the HF Trainer");
  EXPECT_TRUE(StackTakes(Stack::kTorchtune, "offload-activations"));
  EXPECT_FALSE(StackTakes(Stack::kHfTrainer, "offload-activations"));
}

// Each stack fills what the user left unset with its own defaults.
TEST(StacksTest, DefaultsPerStack) {
  struct Want {
    Stack stack;
    TrainMethod method;
    Precision precision;
    Optimizer optimizer;
    GradCkpt ckpt;
    LossImpl loss;
    int64_t rank;
    const char* targets;
  };
  const Want cases[] = {
      // PEFT's QLoRA turns checkpointing on (prepare_model_for_kbit_training,
      // use_gradient_checkpointing=True, peft utils/other.py L159).
      {Stack::kHfTrainer, TrainMethod::kQlora, Precision::kBf16, Optimizer::kAdamW, GradCkpt::kFull,
       LossImpl::kHf, 16, "all-linear"},
      {Stack::kHfTrainer, TrainMethod::kFull, Precision::kBf16Mixed, Optimizer::kAdamW, GradCkpt::kNone,
       LossImpl::kHf, 16, "all-linear"},
      // Unsloth: get_peft_model r=16, all 7 modules,
      // use_gradient_checkpointing="unsloth" (llama.py L3061-3079); adamw_8bit.
      {Stack::kUnsloth, TrainMethod::kQlora, Precision::kBf16, Optimizer::kAdamW8bit, GradCkpt::kFull,
       LossImpl::kFused, 16, "all-linear"},
      // torchtune llama3_1/8B_lora_single_device: rank 8, q/v/output_proj +
      // MLP, activation checkpointing, CEWithChunkedOutputLoss.
      {Stack::kTorchtune, TrainMethod::kLora, Precision::kBf16, Optimizer::kAdamW, GradCkpt::kFull,
       LossImpl::kChunked, 8, "q,v,o,gate,up,down"},
      // torchtitan llama3_8b.toml: selective 'op' AC.
      {Stack::kTorchtitan, TrainMethod::kFull, Precision::kBf16Mixed, Optimizer::kAdamW,
       GradCkpt::kSelective, LossImpl::kHf, 16, "all-linear"},
      // LitGPT finetune/lora.py: lora_r 8, query + value, chunked CE,
      // get_default_supported_precision(training=True) = bf16-mixed.
      {Stack::kLitgpt, TrainMethod::kLora, Precision::kBf16Mixed, Optimizer::kAdamW, GradCkpt::kNone,
       LossImpl::kChunked, 8, "q,v"},
  };
  for (const Want& c : cases) {
    TrainingSettings s;
    s.stack = c.stack;
    s.method = c.method;
    auto w = ResolveTraining(Llama(), s, Gpus("A100-80GB"), nullptr);
    ASSERT_TRUE(w.ok()) << StackName(c.stack) << ": " << w.error().message;
    SCOPED_TRACE(StackName(c.stack));
    EXPECT_EQ(w->precision, c.precision);
    EXPECT_EQ(w->optimizer, c.optimizer);
    EXPECT_EQ(w->grad_ckpt, c.ckpt);
    EXPECT_EQ(w->loss, c.loss);
    if (c.method != TrainMethod::kFull) {
      EXPECT_EQ(w->lora_rank, c.rank);
      EXPECT_EQ(w->lora_targets, c.targets);
    }
  }
}

// The example: the same QLoRA job on a T4 under Unsloth and under
// the HF Trainer differs term by term.
TEST(StacksTest, UnslothAndHfTrainerQloraDiffer) {
  TrainingSettings s;
  s.method = TrainMethod::kQlora;
  s.stack = Stack::kHfTrainer;
  std::vector<std::string> hf_notes;
  const Estimate hf = TrainOrDie(Llama(), s, Gpus("T4"), &hf_notes);
  s.stack = Stack::kUnsloth;
  std::vector<std::string> un_notes;
  const Estimate un = TrainOrDie(Llama(), s, Gpus("T4"), &un_notes);
  const DeviceEstimate& a = hf.devices[0];
  const DeviceEstimate& b = un.devices[0];
  // PEFT casts embed_tokens, lm_head and the norms to fp32: (2 x 128256 x
  // 4096 + 65 x 4096) x 2 B more than Unsloth, which keeps them 16-bit
  // (unsloth models/_utils.py prepare_model_for_kbit_training).
  EXPECT_EQ(ComponentBytes(a, "weights") - ComponentBytes(b, "weights"), (2LL * 128256 * 4096 + 65 * 4096) * 2);
  // Unsloth's fused loss holds the input gradient and one chunk at 14 B per
  // logit (the zoo's own count); 2048 x 128256 x 16 B fits half the T4's
  // free memory, so here the chunk is the whole sequence, which is more
  // than HF's 12 B per logit: the fused loss bounds the chunk, it does not
  // shrink a short one. 8-bit AdamW; checkpoints offloaded to host memory.
  EXPECT_EQ(ComponentBytes(b, "logits"), 2048LL * 4096 * 2 + 2048LL * 128256 * 14);
  EXPECT_EQ(ComponentBytes(a, "logits"), 2048LL * 128256 * 12);
  EXPECT_LT(b.allocated_peak->value(), a.allocated_peak->value());
  ASSERT_FALSE(un.host.empty());
  EXPECT_EQ(un.host.back().name, "activations");
  EXPECT_TRUE(std::any_of(un_notes.begin(), un_notes.end(), [](const std::string& n) {
    return n.find("use_gradient_checkpointing='unsloth'") != std::string::npos;
  }));
  EXPECT_TRUE(std::any_of(hf_notes.begin(), hf_notes.end(), [](const std::string& n) {
    return n.find("prepare_model_for_kbit_training turns gradient checkpointing on") != std::string::npos;
  }));
}

// Unsloth's fused cross-entropy (unsloth_zoo fused_losses/
// cross_entropy_loss.py @002a0c99, get_chunk_size): 16 B per logit
// budgeted against min(free / 2, 4 GiB) less the [T, h] input gradient, a
// multiple of 4 chunks, 14 B per logit held. Llama-3.1-8B, T = 32768, no
// GPU (the cap): target = 4 GiB - 256 MiB = 4,026,531,840; budget
// 32768 x 128256 x 16 = 67,243,278,336 -> 16.7 -> 20 chunks of 1639 tokens.
TEST(StacksTest, UnslothFusedLossChunksToTheFreeMemory) {
  TrainingSettings s;
  s.stack = Stack::kUnsloth;
  s.method = TrainMethod::kQlora;
  s.seq = 32768;
  const int64_t input_grad = 32768LL * 4096 * 2;
  const Estimate cap = TrainOrDie(Llama(), s);
  EXPECT_EQ(ComponentBytes(cap.devices[0], "logits"), input_grad + 1639LL * 128256 * 14);
  // On an 8 GB card little is free at 32k tokens: the chunks shrink, down to
  // one token when nothing is free, and never exceed the no-GPU figure.
  const Estimate small = TrainOrDie(Llama(), s, Gpus("RTX-4060-Ti-8GB"));
  EXPECT_LT(ComponentBytes(small.devices[0], "logits"), ComponentBytes(cap.devices[0], "logits"));
  EXPECT_GE(ComponentBytes(small.devices[0], "logits"), input_grad + 128256LL * 14);
  const Estimate big = TrainOrDie(Llama(), s, Gpus("H100-80GB"));
  EXPECT_EQ(ComponentBytes(big.devices[0], "logits"), ComponentBytes(cap.devices[0], "logits"));
}

// torchtitan's op-level SAC (distributed/activation_checkpoint.py L98-128,
// save list infra/parallelize.py L36-51): Llama-3.1-8B keeps per token per
// layer the input 2h, wq out 2 x 4096, wv out 2 x 1024, the attention
// output 2 x 4096 + logsumexp 4 x 32, w1 out 2 x 14336 and w2 out 2h =
// 63,616 B.
TEST(StacksTest, TorchtitanSelectiveOpCheckpointing) {
  TrainingSettings s;
  s.stack = Stack::kTorchtitan;
  auto w = ResolveTraining(Llama(), s, {}, nullptr);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(LayerSavedPerToken(Llama().spec, *w, TrainJobOf(Llama().spec, *w), 0),
            2 * 4096 + 2 * 4096 + 2 * 1024 + 2 * 4096 + 4 * 32 + 2 * 14336 + 2 * 4096);
}

// torchtune optimizer_in_bwd (modules/optim.py OptimizerInBackward: a
// post-accumulate-grad hook steps and frees each gradient): only the
// largest gradient (embed_tokens / output, 128256 x 4096 bf16) is live.
TEST(StacksTest, OptimizerInBackwardKeepsOneGradient) {
  TrainingSettings s;
  s.stack = Stack::kTorchtune;
  s.optimizer_in_backward = true;
  s.optimizer = Optimizer::kPagedAdamW8bit;
  const Estimate e = TrainOrDie(Llama(), s, Gpus("RTX-4090"));
  const DeviceEstimate& d = e.devices[0];
  if (d.peak_phase != "forward end") {
    EXPECT_EQ(ComponentBytes(d, "gradients"), 128256LL * 4096 * 2);
  }
  s.optimizer_in_backward = false;
  const Estimate f = TrainOrDie(Llama(), s, Gpus("RTX-4090"));
  EXPECT_LT(e.devices[0].allocated_peak->value(), f.devices[0].allocated_peak->value());
}

// Offloaded checkpoints: the GPU keeps two layers' inputs and the layer
// being recomputed; the rest is host memory.
TEST(StacksTest, OffloadedActivationsMoveToHost) {
  TrainingSettings s;
  s.stack = Stack::kTorchtune;
  s.method = TrainMethod::kLora;
  s.grad_ckpt = GradCkpt::kFull;
  const Estimate on_gpu = TrainOrDie(Llama(), s);
  s.offload_activations = true;
  const Estimate off = TrainOrDie(Llama(), s);
  const int64_t ckpt = 2048LL * 4096 * 2;  // one layer input, bf16
  ASSERT_FALSE(off.host.empty());
  EXPECT_EQ(off.host.back().bytes.value(), 30 * ckpt);  // 32 layers, 2 kept on the GPU
  EXPECT_EQ(ComponentBytes(on_gpu.devices[0], "activations") - ComponentBytes(off.devices[0], "activations"),
            30 * ckpt);
}


// bitsandbytes before 0.43.2: MatMul4Bit.forward keeps its input A for
// backward (`ctx.tensors = (A, B)`, bitsandbytes/autograd/_functions.py;
// 0.43.2 keeps (None, B), PR #1270). Llama-2-7B (h 4096, I 11008), a layer
// that keeps its activations gains the q/k/v, o, gate/up and down inputs at
// 2 B each: under PEFT (hf-trainer, pure bf16) 2 x (3 x 4096 + 11008) =
// 46,592 B per token; under LitGPT's bf16-mixed (autocast over fp32: gate
// and up each cast the fp32 norm output; q/k/v is one fused linear there)
// one more 2h: 54,784 B.
TEST(StacksTest, OldBitsandbytesKeepsEachFourBitLinearsInput) {
  const Model llama2 = CatalogModelOrDie("meta-llama/Llama-2-7b-hf");
  for (const auto& [stack, want] : {std::pair{Stack::kHfTrainer, 2 * (3 * 4096 + 11008)},
                                     std::pair{Stack::kLitgpt, 2 * (4 * 4096 + 11008)}}) {
    TrainingSettings s;
    s.stack = stack;
    s.method = TrainMethod::kQlora;
    s.grad_ckpt = GradCkpt::kNone;
    auto now = ResolveTraining(llama2, s, {}, nullptr);
    ASSERT_TRUE(now.ok()) << now.error().message;
    s.bnb_version = 4101;  // 0.41.1, the lit-gpt 2023 tutorials' release
    auto old = ResolveTraining(llama2, s, {}, nullptr);
    ASSERT_TRUE(old.ok()) << old.error().message;
    EXPECT_EQ(LayerSavedPerToken(llama2.spec, *old, TrainJobOf(llama2.spec, *old), 0) -
                  LayerSavedPerToken(llama2.spec, *now, TrainJobOf(llama2.spec, *now), 0),
              want)
        << StackName(stack);
    s.bnb_version = kBnbNoSavedInput;  // 0.43.2: fixed
    auto fixed = ResolveTraining(llama2, s, {}, nullptr);
    ASSERT_TRUE(fixed.ok());
    EXPECT_EQ(LayerSavedPerToken(llama2.spec, *fixed, TrainJobOf(llama2.spec, *fixed), 0),
              LayerSavedPerToken(llama2.spec, *now, TrainJobOf(llama2.spec, *now), 0));
  }
  EXPECT_EQ(*ParseBnbVersion("0.43.1"), 4301);
  EXPECT_EQ(*ParseBnbVersion("0.45"), 4500);
  for (const char* bad : {"0.43.x", "1", "0.44.1+cu121", "", "0.4.1.2"}) {
    auto r = ParseBnbVersion(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().message,
              std::string("--bnb-version: expected a bitsandbytes release such as 0.43.1, got '") + bad + "'");
  }
  // Stacks with other 4-bit kernels, and jobs without a bnb 4-bit base,
  // refuse it rather than ignore it.
  TrainingSettings tt;
  tt.stack = Stack::kTorchtune;
  tt.method = TrainMethod::kQlora;
  tt.bnb_version = 4101;
  EXPECT_EQ(ResolveTraining(Llama(), tt, {}, nullptr).error().message,
            "--bnb-version: --stack torchtune does not run its 4-bit base through bitsandbytes' MatMul4Bit");
  TrainingSettings full;
  full.bnb_version = 4101;
  EXPECT_EQ(ResolveTraining(Llama(), full, {}, nullptr).error().message,
            "--bnb-version: only a bitsandbytes 4-bit base (--method qlora, --quant nf4 or fp4) depends on the "
            "release");
}

// --compile: torchtune's compiled CEWithChunkedOutputLoss (training.compile_loss)
// saves the bf16 chunks and a logsumexp per row: 2.3 B per token per vocab
// entry in place of 6.5 (Llama-3.1-8B, 2048 x 128256); torchtitan's compiled
// cross_entropy(pred.float()) 4 in place of 10. Other stacks refuse it.
TEST(StacksTest, CompiledLossUnderTorchtuneAndTorchtitan) {
  const int64_t tv = 2048LL * 128256;
  TrainingSettings s;
  s.stack = Stack::kTorchtune;
  s.method = TrainMethod::kLora;
  EXPECT_EQ(ComponentBytes(TrainOrDie(Llama(), s).devices[0], "logits"), tv * 65 / 10);
  s.compile = true;
  std::vector<std::string> notes;
  EXPECT_EQ(ComponentBytes(TrainOrDie(Llama(), s, {}, &notes).devices[0], "logits"), tv * 23 / 10);
  EXPECT_TRUE(std::any_of(notes.begin(), notes.end(), [](const std::string& n) {
    return n.find("--compile: the compiled loss is modelled") != std::string::npos;
  }));
  // torchtitan trains every parameter: a small model at 4 x 8192 tokens so
  // that the loss, not the optimizer step, sets the peak.
  const Model small = CatalogModelOrDie("meta-llama/Llama-3.2-1B");
  const int64_t tv_small = 4LL * 8192 * 128256;
  TrainingSettings t;
  t.stack = Stack::kTorchtitan;
  t.seq = 8192;
  t.batch = 4;
  EXPECT_EQ(ComponentBytes(TrainOrDie(small, t).devices[0], "logits"), tv_small * 10);
  t.compile = true;
  EXPECT_EQ(ComponentBytes(TrainOrDie(small, t).devices[0], "logits"), tv_small * 4);
  TrainingSettings hf;
  hf.compile = true;
  EXPECT_EQ(ResolveTraining(Llama(), hf, {}, nullptr).error().message,
            "--compile: modelled for --stack torchtune and torchtitan (their compiled loss); what torch.compile "
            "fuses under --stack hf-trainer is not modelled");
}


// AMP over fp32 parameters (hf-trainer --precision bf16-mixed, no ZeRO):
// the residual stream and the RMSNorm outputs are fp32, so each of q, k, v
// and gate, up casts the norm output itself (autocast caches casts of leaf
// weights only, aten/src/ATen/autocast_mode.cpp cached_cast) and the norm
// weight multiplies an fp32 input. Llama-3.1-8B (h 4096) per token per
// layer against pure bf16: +2 q/k/v copies (2 x 2h), +1 gate/up copy (2h),
// and two norms' fp32 normalized inputs (2 x 2h): 10h = 40,960 B.
TEST(StacksTest, AutocastCastsEachLinearsInputAndKeepsTheResidualFp32) {
  TrainingSettings s;
  s.stack = Stack::kHfTrainer;
  s.precision = Precision::kBf16Mixed;
  auto amp = ResolveTraining(Llama(), s, {}, nullptr);
  ASSERT_TRUE(amp.ok());
  s.precision = Precision::kBf16;
  auto pure = ResolveTraining(Llama(), s, {}, nullptr);
  ASSERT_TRUE(pure.ok());
  const TrainJob ja = TrainJobOf(Llama().spec, *amp), jp = TrainJobOf(Llama().spec, *pure);
  ASSERT_TRUE(ja.amp);
  EXPECT_EQ(ja.e_res, 4);
  EXPECT_EQ(LayerSavedPerToken(Llama().spec, *amp, ja, 0) - LayerSavedPerToken(Llama().spec, *pure, jp, 0),
            10 * 4096);
}

}  // namespace
}  // namespace vramfit
