// The training estimate's steps (src/core/training_steps.h), one at a time,
// against numbers computed by hand from docs/estimation.md section 7 and
// docs/research/training.md. The whole-estimate tests are training_test.cc.
#include <gtest/gtest.h>

#include "core/training_steps.h"
#include "test_util.h"
#include "vramfit/training.h"

namespace vramfit::training {
namespace {

using testing::CatalogModelOrDie;
using testing::Gpus;

// Llama-3.1-8B (model_configs: 8,030,261,248 parameters; h 4096, 8 KV
// heads of 128, I 14336, 32 layers, 32 heads, vocab 128256, untied).
constexpr int64_t kLlamaParams = 8030261248;
constexpr int64_t kLlamaLayerParams = 2LL * 4096 * 4096 + 2LL * 4096 * 1024 + 3LL * 4096 * 14336 +
                                      2 * 4096;  // 218,112,000
constexpr int64_t kLlamaEmbed = 128256LL * 4096;  // embed_tokens and lm_head each

const Model& Llama() {
  static const Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  return m;
}

TrainingWorkload ResolveOrDie(const Model& m, const TrainingSettings& s,
                              const DeviceSet& devices = {}) {
  auto w = ResolveTraining(m, s, devices, nullptr);
  EXPECT_TRUE(w.ok()) << (w.ok() ? "" : w.error().message);
  return w.ok() ? *w : TrainingWorkload{};
}

TEST(TrainingStepsTest, LlamaInventoryAsTheTestsAssume) {
  EXPECT_EQ(Llama().inventory.params, kLlamaParams);
  EXPECT_EQ(kLlamaParams, 2 * kLlamaEmbed + 32 * kLlamaLayerParams + 4096);
  EXPECT_EQ(LargestLayerParams(Llama()), kLlamaLayerParams);
}

// bitsandbytes optim/optimizer.py: under 4096 elements two fp32 states;
// otherwise a uint8 state + an fp32 absmax per 256-element block.
TEST(TrainingStepsTest, EightBitState) {
  const struct {
    int64_t n, states, want;
  } cases[] = {
      {4095, 2, 4095 * 8},
      {4096, 2, 2 * (4096 + 16 * 4)},
      {4096, 1, 4096 + 16 * 4},
      {4097, 2, 2 * (4097 + 17 * 4)},                        // a partial block has its absmax
      {14336LL * 4096, 2, 2 * (14336LL * 4096 + 229376 * 4)}, // 119,275,520
  };
  for (const auto& c : cases) EXPECT_EQ(EightBitState(c.n, c.states), c.want) << c.n;
}

// docs 7.1: optimizer-state bytes of 4096 x 4096 matrices (n = 16,777,216)
// and of a 4096-vector, fp32 states.
TEST(TrainingStepsTest, GroupOptimizerBytes) {
  TensorGroup matrix{};
  matrix.rows = 4096;
  matrix.cols = 4096;
  matrix.linear = true;
  TensorGroup vec{};
  vec.rows = 4096;
  const int64_t n = 4096LL * 4096;
  const struct {
    Optimizer o;
    const TensorGroup* g;
    int64_t copies, want;
  } cases[] = {
      {Optimizer::kAdamW, &matrix, 1, 2 * 4 * n},
      {Optimizer::kAdamW, &matrix, 3, 3 * 2 * 4 * n},
      {Optimizer::kAdamW8bit, &matrix, 1, 2 * (n + n / 256 * 4)},
      {Optimizer::kPagedAdamW8bit, &matrix, 2, 2 * 2 * (n + n / 256 * 4)},
      {Optimizer::kAdafactor, &matrix, 1, (4096 + 4096) * 4},  // row + column factors
      {Optimizer::kAdafactor, &vec, 1, 4096 * 4},              // full moment for vectors
      {Optimizer::kSgd, &matrix, 1, 0},
      {Optimizer::kSgdMomentum, &matrix, 1, 4 * n},
      {Optimizer::kLion, &matrix, 1, 4 * n},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(GroupOptimizerBytes(c.o, *c.g, c.copies, 4), c.want) << OptimizerName(c.o);
  }
  // Pure bf16: torch creates the states like the parameter, 2 B.
  EXPECT_EQ(GroupOptimizerBytes(Optimizer::kAdamW, matrix, 1, 2), 2 * 2 * n);
}

// docs 7.1 table, Llama-3.1-8B full fine-tuning with AdamW on one GPU.
// Under the HF Trainer (accelerate's torch.autocast, accelerator.py
// prepare_model) mixed precision keeps the parameters fp32: 4 B weights +
// 4 B gradients + 8 B states and no separate master; a stack with 16-bit
// weights and an fp32 master (torchtitan's FSDP2 mixed precision, DeepSpeed)
// has the same 16 B split 2 + 4 + 2 + 8 (docs 7.9).
TEST(TrainingStepsTest, ModelStatePerPrecision) {
  const int64_t P = kLlamaParams;
  const struct {
    Stack stack;
    Precision precision;
    int64_t weights, master, grads, states;
  } cases[] = {
      {Stack::kHfTrainer, Precision::kBf16Mixed, 4 * P, 0, 4 * P, 8 * P},  // AMP: 16 B
      {Stack::kHfTrainer, Precision::kFp16Mixed, 4 * P, 0, 4 * P, 8 * P},
      {Stack::kTorchtitan, Precision::kBf16Mixed, 2 * P, 4 * P, 2 * P, 8 * P},  // 16 B
      {Stack::kHfTrainer, Precision::kBf16, 2 * P, 0, 2 * P, 4 * P},           // 8 B
      {Stack::kHfTrainer, Precision::kFp32, 4 * P, 0, 4 * P, 8 * P},           // 16 B
  };
  for (const auto& c : cases) {
    TrainingSettings s;
    s.stack = c.stack;
    s.precision = c.precision;
    const TrainingWorkload w = ResolveOrDie(Llama(), s);
    const TrainJob job = TrainJobOf(Llama().spec, w);
    const TrainableState tr = TrainableStateOf(Llama(), w, job);
    EXPECT_EQ(tr.params, P);
    const StageShare share = StageShareOf(Llama(), w, job, 0);
    const DeviceModelState ms =
        ModelStateOn(w, job, tr, BaseWeightBytes(Llama(), w, job), share);
    SCOPED_TRACE(PrecisionName(c.precision));
    EXPECT_EQ(ms.weights.value(), c.weights);
    EXPECT_EQ(ms.master.value(), c.master);
    EXPECT_EQ(ms.grads.value(), c.grads);
    EXPECT_EQ(ms.states.value(), c.states);
  }
}

// docs 7.6: what each sharding mode divides over dp = 8 (Llama-3.1-8B,
// bf16-mixed AdamW; every figure divides by 8 exactly).
TEST(TrainingStepsTest, ShardingDividesModelState) {
  const int64_t P = kLlamaParams;
  const struct {
    int64_t zero;
    bool fsdp;
    int64_t weights, grads, master_states;
  } cases[] = {
      {0, false, 4 * P, 4 * P, 8 * P},           // DDP: the HF Trainer's AMP (fp32 parameters)
      {1, false, 2 * P, 2 * P, 12 * P / 8},      // ZeRO-1
      {2, false, 2 * P, 2 * P / 8, 12 * P / 8},  // ZeRO-2
      {3, false, 2 * P / 8, 2 * P / 8, 12 * P / 8},
      {0, true, 2 * P / 8, 2 * P / 8, 12 * P / 8},  // FSDP full shard
  };
  for (const auto& c : cases) {
    TrainingSettings s;
    s.zero = c.zero;
    s.fsdp = c.fsdp;
    s.gpus = 8;
    const TrainingWorkload w = ResolveOrDie(Llama(), s);
    const TrainJob job = TrainJobOf(Llama().spec, w);
    const TrainableState tr = TrainableStateOf(Llama(), w, job);
    const DeviceModelState ms = ModelStateOn(w, job, tr, BaseWeightBytes(Llama(), w, job),
                                             StageShareOf(Llama(), w, job, 0));
    SCOPED_TRACE("zero " + std::to_string(c.zero) + (c.fsdp ? " fsdp" : ""));
    EXPECT_EQ(ms.weights.value(), c.weights);
    EXPECT_EQ(ms.grads.value(), c.grads);
    EXPECT_EQ((ms.master + ms.states).value(), c.master_states);
  }
}

// docs 7.2: Llama-3.1-8B, r 16, all-linear: 41,943,040 adapter parameters
// = 32 layers x 16 x (q 4096+4096, k 4096+1024, v 4096+1024, o 4096+4096,
// gate/up 4096+14336 twice, down 14336+4096); fp32 AdamW states 8 B each.
TEST(TrainingStepsTest, AdaptersAndTheirState) {
  TrainingSettings s;
  s.method = TrainMethod::kLora;
  const TrainingWorkload w = ResolveOrDie(Llama(), s);
  const TrainJob job = TrainJobOf(Llama().spec, w);
  const TrainableState tr = TrainableStateOf(Llama(), w, job);
  EXPECT_EQ(tr.params, 0);  // the base is frozen
  EXPECT_EQ(tr.adapter_params, 41943040);
  EXPECT_EQ(tr.adapter_params,
            32LL * 16 * (8192 + 5120 + 5120 + 8192 + 3 * (4096 + 14336)));
  EXPECT_EQ(tr.adapter_opt, 41943040LL * 2 * 4);
  const DeviceModelState ms = ModelStateOn(w, job, tr, BaseWeightBytes(Llama(), w, job),
                                           StageShareOf(Llama(), w, job, 0));
  EXPECT_EQ(ms.adapter_w.value(), 41943040LL * 4);  // fp32 (PEFT autocast_adapter_dtype)
  EXPECT_EQ(ms.adapter_g.value(), 41943040LL * 4);
  EXPECT_EQ(ms.adapter_s.value(), 41943040LL * 8);
}

// docs 7.3 and research 4.3, Llama-3.1-8B, bf16, seq 2048, per token of one
// layer.
TEST(TrainingStepsTest, LayerSavedPerToken) {
  const struct {
    const char* what;
    TrainMethod method;
    AttnImpl attn;
    GradCkpt ckpt;
    int64_t layer;
    int64_t want;
  } cases[] = {
      // 22h + 4 h_kv + 8I + 4 n_h + 2 x 4 B rstd = 209,032 (docs 7.3).
      {"full sdpa", TrainMethod::kFull, AttnImpl::kSdpa, GradCkpt::kNone, 0,
       22 * 4096 + 4 * 1024 + 8 * 14336 + 4 * 32 + 8},
      // flash is sized like sdpa.
      {"full flash", TrainMethod::kFull, AttnImpl::kFlash, GradCkpt::kNone, 0, 209032},
      // eager: q, repeat_kv'd k, v at all heads 3 x 2 x 4096 instead of the
      // sdpa tensors 2 x (2 x 4096 + 2 x 1024) + 4 x 32, plus fp32 softmax +
      // bf16 probabilities 32 heads x 2048 keys x (4 + 2) = 393,216.
      {"full eager", TrainMethod::kFull, AttnImpl::kEager, GradCkpt::kNone, 0,
       209032 - 20608 + 3 * 2 * 4096 + 32 * 2048 * 6},
      // selective checkpointing recomputes the s^2 terms.
      {"full eager selective", TrainMethod::kFull, AttnImpl::kEager, GradCkpt::kSelective, 0,
       209032 - 20608 + 3 * 2 * 4096},
      // LoRA all-linear r 16 over a frozen base (PEFT): norms 2 x (4h + 4),
      // the kernel's tensors 20,608, one compute-dtype input copy per
      // targeted module 2h x (q, k, v, o, gate, up) + 2 I (down) (PEFT casts
      // x to the fp32 adapter dtype, lora/layer.py L1061, and autocast casts
      // it back for lora_A), SwiGLU 6I, lora_A outputs 4 x 16 x 7 = 217,672.
      {"lora", TrainMethod::kLora, AttnImpl::kSdpa, GradCkpt::kNone, 0,
       2 * (4 * 4096 + 4) + 20608 + 2 * 4096 * 6 + 2 * 14336 + 6 * 14336 + 4 * 16 * 7},
      // freeze (last 8 layers train): layer 0 saves nothing, layer 31 all.
      {"freeze frozen layer", TrainMethod::kFreeze, AttnImpl::kSdpa, GradCkpt::kNone, 0, 0},
      {"freeze trained layer", TrainMethod::kFreeze, AttnImpl::kSdpa, GradCkpt::kNone, 31, 209032},
  };
  for (const auto& c : cases) {
    TrainingSettings s;
    s.method = c.method;
    s.precision = Precision::kBf16;  // pure bf16 (AMP: StacksTest.Autocast*)
    s.attn = c.attn;
    s.grad_ckpt = c.ckpt;
    const TrainingWorkload w = ResolveOrDie(Llama(), s);
    EXPECT_EQ(LayerSavedPerToken(Llama().spec, w, TrainJobOf(Llama().spec, w), c.layer), c.want)
        << c.what;
  }
}

// docs 7.3: tensor parallel divides everything but the norms.
TEST(TrainingStepsTest, LayerSavedPerTokenUnderTensorParallel) {
  TrainingSettings s;
  s.stack = Stack::kTorchtitan;  // the stack with tensor parallelism
  s.grad_ckpt = GradCkpt::kNone;
  s.tp = 2;
  const TrainingWorkload w = ResolveOrDie(Llama(), s);
  const int64_t norms = 2 * (4 * 4096 + 2 * 4096 + 4);
  EXPECT_EQ(NormSavedPerToken(Llama().spec, TrainJobOf(Llama().spec, w), true), norms);
  EXPECT_EQ(LayerSavedPerToken(Llama().spec, w, TrainJobOf(Llama().spec, w), 0),
            norms + (209032 - norms) / 2);
}

// docs 7.3 and 7.4: saved activations of one stage and the loss buffers
// (Llama-3.1-8B, 2048 tokens, bf16).
TEST(TrainingStepsTest, StageActivationsAndLoss) {
  const int64_t T = 2048;
  TrainingSettings bf16;
  bf16.precision = Precision::kBf16;  // pure bf16: no autocast over fp32
  {
    const TrainingWorkload w = ResolveOrDie(Llama(), bf16);
    const TrainJob job = TrainJobOf(Llama().spec, w);
    const StageActivations a =
        SavedActivationsOn(Llama().spec, w, job, StageShareOf(Llama(), w, job, 0), 0);
    // 32 layers x 2048 x 209,032 + final norm and head input 6h x T.
    EXPECT_EQ(a.acts.value(), 32 * T * 209032 + T * 6 * 4096);
    EXPECT_EQ(a.layer_act.value(), T * 209032);
  }
  {
    TrainingSettings s = bf16;
    s.grad_ckpt = GradCkpt::kFull;
    const TrainingWorkload w = ResolveOrDie(Llama(), s);
    const TrainJob job = TrainJobOf(Llama().spec, w);
    const StageActivations a =
        SavedActivationsOn(Llama().spec, w, job, StageShareOf(Llama(), w, job, 0), 0);
    // 32 layer inputs x T x h x 2 B + one layer recomputed + head input.
    EXPECT_EQ(a.acts.value(), 32 * T * 4096 * 2 + T * 209032 + T * 6 * 4096);
  }
  const struct {
    Stack stack;
    LossImpl loss;
    int64_t tp;
    bool last;
    int64_t want;
  } cases[] = {
      {Stack::kHfTrainer, LossImpl::kHf, 1, true, T * 128256 * 12},  // 3,152,019,456
      // TRL chunked_nll: one 256-token chunk of fp32 logits + log-probs
      // (trl sft_trainer.py L85, L99-114).
      {Stack::kHfTrainer, LossImpl::kChunked, 1, true, 256 * 128256 * 8},
      // torchtune CEWithChunkedOutputLoss: 6.5 B (research 5).
      {Stack::kTorchtune, LossImpl::kChunked, 1, true, T * 128256 * 13 / 2},
      {Stack::kHfTrainer, LossImpl::kFused, 1, true, T * 128256},
      // torchtitan: bf16 pred + fp32 copy + fp32 log-probs (components/loss.py).
      {Stack::kTorchtitan, LossImpl::kHf, 2, true, T * 64128 * 10},  // vocab split over tp
      {Stack::kHfTrainer, LossImpl::kHf, 1, false, 0},               // not the last stage
  };
  for (const auto& c : cases) {
    TrainingSettings s;
    s.stack = c.stack;
    s.loss = c.loss;
    s.tp = c.tp;
    const TrainingWorkload w = ResolveOrDie(Llama(), s);
    EXPECT_EQ(LossBytes(Llama().spec, TrainJobOf(Llama().spec, w), DefaultStackOverheads(w), c.last)
                  .value(),
              c.want)
        << LossName(c.loss) << " tp " << c.tp;
  }
}

// docs 7.6 buffers over 8 GPUs, Llama-3.1-8B bf16 (largest layer
// 218,112,000 parameters).
TEST(TrainingStepsTest, CommBuffers) {
  const int64_t layer = kLlamaLayerParams;
  const struct {
    int64_t zero;
    bool fsdp;
    int64_t gpus;
    int64_t want;
  } cases[] = {
      {0, true, 8, 3 * layer * 2},                // FSDP: 3 unsharded layers
      {3, false, 8, 2 * layer * 2 + 50000000 * 2},  // ZeRO-3: 2 layers + 5e7 prefetch = 972,448,000
      {2, false, 8, 2 * 500000000LL * 2},         // reduce + allgather buckets of 5e8
      {1, false, 8, 2 * 500000000LL * 2},
      {0, false, 8, 4 * kLlamaParams},            // DDP: a flat copy of the fp32 (AMP) gradients
      {3, false, 1, 0},                           // one GPU: no buffers
  };
  for (const auto& c : cases) {
    TrainingSettings s;
    s.zero = c.zero;
    s.fsdp = c.fsdp;
    s.gpus = c.gpus;
    const TrainingWorkload w = ResolveOrDie(Llama(), s);
    const TrainJob job = TrainJobOf(Llama().spec, w);
    const TrainableState tr = TrainableStateOf(Llama(), w, job);
    const DeviceModelState ms = ModelStateOn(w, job, tr, BaseWeightBytes(Llama(), w, job),
                                             StageShareOf(Llama(), w, job, 0));
    EXPECT_EQ(CommBuffersOn(Llama(), w, job, tr, ms).bytes.value(), c.want)
        << "zero " << c.zero << (c.fsdp ? " fsdp" : "") << " gpus " << c.gpus;
  }
}

// docs 7.5: the three phases, from made-up model state (bytes).
TEST(TrainingStepsTest, PhasesPickTheLargest) {
  DeviceModelState ms;
  ms.weights = Bytes(100);
  ms.master = Bytes(200);
  ms.states = Bytes(400);
  ms.grads = Bytes(100);
  StageActivations acts;
  acts.acts = Bytes(1000);
  acts.layer_act = Bytes(50);
  CommBuffers buffers;
  buffers.bytes = Bytes(30);
  const struct {
    const char* what;
    int64_t grad_accum;
    bool paged;
    int64_t step_temp;
    int64_t fwd, bwd, step;
    TrainPhase peak;
  } cases[] = {
      // fwd = 700 persistent + 1000 acts + 7 logits; bwd = 700 + 100 + 50 + 30.
      {"forward end", 1, false, 0, 1707, 880, 800, TrainPhase::kForwardEnd},
      // accumulation keeps the gradients at the forward end.
      {"accumulation", 4, false, 0, 1807, 880, 800, TrainPhase::kForwardEnd},
      // paged states leave the torch allocator.
      {"paged", 1, true, 0, 1307, 480, 400, TrainPhase::kForwardEnd},
      {"optimizer step", 1, false, 1500, 1707, 880, 2300, TrainPhase::kOptimizerStep},
  };
  for (const auto& c : cases) {
    TrainingWorkload w;
    w.grad_accum = c.grad_accum;
    TrainJob job;
    job.paged = c.paged;
    const TrainPhases p = PhasesOf(w, job, ms, acts, Bytes(7), buffers, Bytes(c.step_temp));
    EXPECT_EQ(p.forward_end.value(), c.fwd) << c.what;
    EXPECT_EQ(p.backward.value(), c.bwd) << c.what;
    EXPECT_EQ(p.step.value(), c.step) << c.what;
    EXPECT_EQ(p.peak, c.peak) << c.what;
  }
  // A small forward: backward wins (acts 10 instead of 1000).
  acts.acts = Bytes(10);
  const TrainPhases p = PhasesOf({}, {}, ms, acts, Bytes(7), buffers, Bytes(0));
  EXPECT_EQ(p.peak, TrainPhase::kBackward);
  EXPECT_STREQ(TrainPhaseName(p.peak), "backward");
}

// docs 7.1: foreach AdamW/Lion hold one parameter-sized list at the state
// dtype; fused, 8-bit and offloaded steps none.
TEST(TrainingStepsTest, StepTemporaries) {
  const struct {
    Optimizer o;
    bool fused;
    int64_t want;
  } cases[] = {
      {Optimizer::kAdamW, false, 4 * kLlamaParams},
      {Optimizer::kLion, false, 4 * kLlamaParams},
      {Optimizer::kAdamW, true, 0},
      {Optimizer::kAdamW8bit, false, 0},
      {Optimizer::kSgdMomentum, false, 0},
  };
  for (const auto& c : cases) {
    TrainingSettings s;
    s.optimizer = c.o;
    s.optimizer_fused = c.fused;
    const TrainingWorkload w = ResolveOrDie(Llama(), s);
    const TrainJob job = TrainJobOf(Llama().spec, w);
    const TrainableState tr = TrainableStateOf(Llama(), w, job);
    const StageShare share = StageShareOf(Llama(), w, job, 0);
    const DeviceModelState ms = ModelStateOn(w, job, tr, BaseWeightBytes(Llama(), w, job), share);
    EXPECT_EQ(StepTemporaries(w, job, tr, share, ms).value(), c.want)
        << OptimizerName(c.o) << (c.fused ? " fused" : "");
  }
}

// Pipeline stages: Llama-3.1-8B over 2 stages holds 16 layers each, the
// embedding on the first, the final norm and head on the last.
TEST(TrainingStepsTest, StageShares) {
  TrainingSettings s;
  s.stack = Stack::kTorchtitan;  // the stack with pipeline parallelism
  s.grad_ckpt = GradCkpt::kNone;
  s.pp = 2;
  const TrainingWorkload w = ResolveOrDie(Llama(), s);
  const TrainJob job = TrainJobOf(Llama().spec, w);
  const StageShare s0 = StageShareOf(Llama(), w, job, 0);
  const StageShare s1 = StageShareOf(Llama(), w, job, 1);
  EXPECT_EQ(s0.range.first, 0);
  EXPECT_EQ(s0.range.last, 16);
  EXPECT_TRUE(s0.first && !s0.last);
  EXPECT_TRUE(s1.last && !s1.first);
  const double total = static_cast<double>(kLlamaParams);
  EXPECT_DOUBLE_EQ(s0.frac_all, static_cast<double>(kLlamaEmbed + 16 * kLlamaLayerParams) / total);
  EXPECT_DOUBLE_EQ(s1.frac_all,
                   static_cast<double>(kLlamaEmbed + 16 * kLlamaLayerParams + 4096) / total);
  EXPECT_DOUBLE_EQ(s0.frac_layers, 0.5);
  // 1F1B: stage 0 of 2 keeps min(2, grad_accum) micro-batches in flight.
  TrainingSettings acc = s;
  acc.grad_accum = 4;
  const TrainingWorkload wa = ResolveOrDie(Llama(), acc);
  const TrainJob ja = TrainJobOf(Llama().spec, wa);
  EXPECT_EQ(SavedActivationsOn(Llama().spec, wa, ja, StageShareOf(Llama(), wa, ja, 0), 0).acts.value(),
            2 * 16 * 2048LL * 209032);
}

// docs 7.7: ~1 MiB per large tensor (> 10 MiB at the weight dtype) per
// weight/gradient/state tensor, capped at 2 % of allocated, + 5 % (15 % with
// ZeRO-3/FSDP) of the transient tensors. Llama-3.1-8B bf16 has 162 tensors
// over 10 MiB: embed, lm_head, 32 x (q, o, gate, up, down); k and v are
// exactly 8 MiB.
TEST(TrainingStepsTest, AllocatorReserve) {
  const struct {
    TrainMethod method;
    Optimizer o;
    int64_t zero;
    int64_t gpus;
    int64_t allocated, transient;
    int64_t rounding, fragmentation;
  } cases[] = {
      // full AdamW: weight + gradient + 2 states per tensor = 648 MiB.
      {TrainMethod::kFull, Optimizer::kAdamW, 0, 1, 100 * kGiB, 1000, 648 * kMiB, 50},
      // the 2 % cap.
      {TrainMethod::kFull, Optimizer::kAdamW, 0, 1, 1000 * kMiB, 1000, 20 * kMiB, 50},
      {TrainMethod::kFull, Optimizer::kSgd, 0, 1, 100 * kGiB, 1000, 324 * kMiB, 50},
      {TrainMethod::kFull, Optimizer::kLion, 0, 1, 100 * kGiB, 1000, 486 * kMiB, 50},
      // LoRA: only the frozen weights; ZeRO-3: 15 % fragmentation.
      {TrainMethod::kLora, Optimizer::kAdamW, 3, 4, 100 * kGiB, 1000, 162 * kMiB, 150},
  };
  for (const auto& c : cases) {
    TrainingSettings s;
    s.method = c.method;
    s.optimizer = c.o;
    s.zero = c.zero;
    s.gpus = c.gpus;
    const TrainingWorkload w = ResolveOrDie(Llama(), s);
    const TrainReserve r = AllocatorReserve(Llama(), w, TrainJobOf(Llama().spec, w),
                                            DefaultStackOverheads(w), Bytes(c.allocated),
                                            Bytes(c.transient));
    EXPECT_EQ(r.rounding.value(), c.rounding) << MethodName(c.method) << " " << OptimizerName(c.o);
    EXPECT_EQ(r.fragmentation.value(), c.fragmentation) << MethodName(c.method);
    EXPECT_EQ(r.component.bytes, r.rounding + r.fragmentation);
  }
}

// cuda_context always; non_torch (NCCL) once more than one GPU takes part.
TEST(TrainingStepsTest, ProcessOverheads) {
  const struct {
    int64_t gpus;
    size_t n;
  } cases[] = {{1, 1}, {2, 2}};
  for (const auto& c : cases) {
    TrainingSettings s;
    s.gpus = c.gpus;
    const TrainingWorkload w = ResolveOrDie(Llama(), s);
    std::vector<Component> comps;
    AddProcessOverheads(TrainJobOf(Llama().spec, w), DefaultStackOverheads(w), &comps);
    ASSERT_EQ(comps.size(), c.n);
    EXPECT_EQ(Total(comps).value(), static_cast<int64_t>(c.n) * 512 * kMiB);
  }
}

// docs 7.6: --offload optimizer moves the fp32 master, the states and an
// fp32 gradient copy to the host; --offload params also the weights.
TEST(TrainingStepsTest, HostComponents) {
  TrainingSettings s;
  s.zero = 3;
  s.gpus = 8;
  s.offload = Offload::kParams;
  const TrainingWorkload w = ResolveOrDie(Llama(), s);
  const TrainJob job = TrainJobOf(Llama().spec, w);
  const TrainableState tr = TrainableStateOf(Llama(), w, job);
  const std::vector<Component> host = HostComponents(w, job, tr, Bytes(2 * kLlamaParams));
  ASSERT_EQ(host.size(), 4u);
  EXPECT_EQ(host[0].name, "master_weights");
  EXPECT_EQ(host[0].bytes.value(), 4 * kLlamaParams);
  EXPECT_EQ(host[1].bytes.value(), 8 * kLlamaParams);
  EXPECT_EQ(host[2].bytes.value(), 4 * kLlamaParams);
  EXPECT_EQ(host[3].bytes.value(), 2 * kLlamaParams);
  // On the GPU only the activations' share stays.
  const DeviceModelState ms = ModelStateOn(w, job, tr, Bytes(2 * kLlamaParams),
                                           StageShareOf(Llama(), w, job, 0));
  EXPECT_EQ((ms.weights + ms.master + ms.states).value(), 0);
  EXPECT_TRUE(HostComponents(ResolveOrDie(Llama(), {}), job, tr, Bytes(0)).empty());
}

// Resolve steps: each check's exact message, in ResolveTraining's order.
TEST(TrainingStepsTest, ResolveErrors) {
  const auto with = [](auto edit) {
    TrainingSettings s;
    edit(s);
    return s;
  };
  const struct {
    TrainingSettings s;
    DeviceSet devices;
    const char* error;
  } cases[] = {
      {with([](TrainingSettings& s) { s.grad_accum = 0; }), {},
       "--grad-accum: must be a positive integer, got 0"},
      {with([](TrainingSettings& s) { s.quant = *ParseWeightFormat("nf4"); }), {},
       "--quant: full fine-tuning updates the weights, which cannot stay nf4; use --method lora or "
       "qlora"},
      {with([](TrainingSettings& s) {
         s.method = TrainMethod::kQlora;
         s.quant = *ParseWeightFormat("gptq-int4");
       }),
       {},
       "--quant: QLoRA trains over a bitsandbytes base (nf4, nf4-dq, fp4, fp4-dq, int8), not "
       "gptq-int4"},
      {with([](TrainingSettings& s) {
         s.method = TrainMethod::kLora;
         s.lora_rank = 1 << 17;
       }),
       {},
       "--lora-rank: 131072 is out of range (1..65536)"},
      {with([](TrainingSettings& s) { s.trainable_layers = 2; }), {},
       "--trainable-layers: applies to --method freeze only"},
      {with([](TrainingSettings& s) { s.zero = 4; }), {}, "--zero: expected 0, 1, 2 or 3, got 4"},
      {with([](TrainingSettings& s) {
         s.zero = 2;
         s.fsdp = true;
       }),
       {},
       "--fsdp: choose FSDP or a ZeRO stage, not both"},
      {with([](TrainingSettings& s) { s.offload = Offload::kOptimizer; }), {},
       "--offload optimizer: needs --zero 1, 2 or 3, or --fsdp"},
      {with([](TrainingSettings& s) {
         s.stack = Stack::kTorchtitan;
         s.tp = 2;
       }),
       Gpus("H100-80GBx3"), "--tp 2 x --pp 1 does not divide the 3 GPUs --gpu gives"},
      {with([](TrainingSettings& s) { s.tp = 2; }), {},
       "--tp: --stack hf-trainer has no tensor parallelism in vramfit's model (--stack torchtitan has)"},
      {with([](TrainingSettings& s) {
         s.stack = Stack::kTorchtune;
         s.zero = 2;
       }),
       {}, "--zero: --stack torchtune has no DeepSpeed ZeRO"},
      {with([](TrainingSettings& s) { s.optimizer_in_backward = true; }), {},
       "--optimizer-impl in-backward: --stack hf-trainer steps the optimizer after backward "
       "(torchtune's optimizer_in_bwd is --stack torchtune)"},
      {with([](TrainingSettings& s) {
         s.stack = Stack::kTorchtune;
         s.optimizer_in_backward = true;
         s.grad_accum = 4;
       }),
       {},
       "--grad-accum: torchtune's optimizer_in_bwd steps every parameter as its gradient is produced, "
       "so gradients cannot accumulate"},
      {with([](TrainingSettings& s) {
         s.stack = Stack::kTorchtitan;
         s.method = TrainMethod::kLora;
       }),
       {}, "--method lora: torchtitan trains every parameter (--method full)"},
      {with([](TrainingSettings& s) { s.gpus = 2; }), Gpus("H100-80GBx4"),
       "--gpus 2 x --tp 1 x --pp 1 needs 2 GPUs, but --gpu gives 4"},
      {with([](TrainingSettings& s) {
         s.stack = Stack::kTorchtitan;
         s.tp = 3;
       }),
       {}, "--tp: 32 attention heads do not split over 3 GPUs"},
      {with([](TrainingSettings& s) {
         s.stack = Stack::kTorchtitan;
         s.pp = 33;
       }),
       {}, "--pp: 33 stages for 32 layers"},
  };
  for (const auto& c : cases) {
    auto w = ResolveTraining(Llama(), c.s, c.devices, nullptr);
    ASSERT_FALSE(w.ok()) << c.error;
    EXPECT_EQ(w.error().message, c.error);
  }
}

// Resolve steps: the defaults they fill and the notes they leave.
TEST(TrainingStepsTest, ResolveDefaults) {
  {
    TrainingSettings s;
    s.method = TrainMethod::kQlora;
    TrainingWorkload w;
    ASSERT_TRUE(ResolveBaseFormat(s, &w).ok());
    EXPECT_EQ(w.quant.Name(), "nf4-dq");  // QLoRA's default base
  }
  {
    TrainingSettings s;
    s.method = TrainMethod::kFreeze;
    TrainingWorkload w;
    std::vector<std::string> notes;
    ASSERT_TRUE(ResolveFreeze(Llama().spec, s, &w, &notes).ok());
    EXPECT_EQ(w.trainable_layers, 8);  // a quarter of 32
    ASSERT_EQ(notes.size(), 1u);
    EXPECT_EQ(notes[0],
              "--method freeze trains the last 8 of 32 layers and the head (--trainable-layers N "
              "to change)");
  }
  {
    TrainingSettings s;
    s.zero = 3;
    TrainingWorkload w;
    std::vector<std::string> notes;
    ASSERT_TRUE(ResolveSharding(s, &w).ok());
    ASSERT_TRUE(ResolveDataParallel(s, Gpus("H100-80GB"), &w, &notes).ok());
    EXPECT_EQ(w.dp, 1);
    ASSERT_EQ(notes.size(), 1u);
    EXPECT_EQ(notes[0],
              "sharding over 1 data-parallel GPU divides nothing; give --gpus N or --gpu NAMExN");
  }
  {
    TrainingSettings s;
    TrainingWorkload w;
    ASSERT_TRUE(ResolveDataParallel(s, Gpus("H100-80GBx8"), &w, nullptr).ok());
    EXPECT_EQ(w.dp, 8);  // --gpu gives the data-parallel degree
  }
}

// The echo's keys in print order, and the model-state note (docs 7.1).
TEST(TrainingStepsTest, EchoAndNotes) {
  TrainingSettings s;
  s.zero = 3;
  s.gpus = 8;
  s.grad_accum = 2;
  const TrainingWorkload w = ResolveOrDie(Llama(), s);
  const TrainJob job = TrainJobOf(Llama().spec, w);
  const TrainableState tr = TrainableStateOf(Llama(), w, job);
  Echo echo;
  TrainEcho(w, tr, &echo);
  const char* keys[] = {"mode",      "stack",           "method",    "precision",
                        "optimizer", "optimizer_impl",  "seq",       "batch",
                        "grad_accum", "effective_batch", "grad_ckpt", "offload_activations",
                        "compile",   "attn",      "loss",            "quant",     "zero",
                        "fsdp",      "gpus",            "offload",   "tp",
                        "pp",        "trainable_params"};
  ASSERT_EQ(echo.size(), std::size(keys));
  for (size_t i = 0; i < echo.size(); ++i) EXPECT_EQ(echo[i].first, keys[i]) << i;
  EXPECT_EQ(std::get<int64_t>(echo[9].second), 16);  // 1 x 2 accumulation x 8 GPUs
  EXPECT_EQ(std::get<int64_t>(echo[22].second), kLlamaParams);

  std::vector<std::string> notes;
  TrainNotes(w, job, DefaultStackOverheads(w), &notes);
  ASSERT_GE(notes.size(), 2u);
  EXPECT_EQ(notes[0],
            "model state per trainable parameter: 16 B (2 weights + 4 master + 2 grads + 8 "
            "states), sharded over 8 GPUs");
  EXPECT_EQ(notes[1],
            "gradient accumulation 2: effective batch 16 per step; memory grows only by keeping the "
            "gradients between micro-batches");
  EXPECT_EQ(notes.back(),
            "peak = max(forward end, backward, optimizer step); cuda_context 512 MiB per process");

  TrainPhases p;
  p.forward_end = GiB(3);
  p.backward = Bytes(kGiB / 2);
  p.step = Bytes(0);
  EXPECT_EQ(PhaseTotalsNote(p),
            "phase totals on gpu0 (allocated): forward end 3.00 GiB, backward 0.50 GiB, optimizer "
            "step 0.00 GiB");
}

}  // namespace
}  // namespace vramfit::training
