// What a GPU below compute capability 8.0 cannot run (docs/estimation.md
// 11.1): FlashAttention-2 is refused, bf16 defaults fall back to fp16, an
// explicit bf16 is kept with a note. T4 = 7.5 and A100 = 8.0 in the GPU
// catalog (NVIDIA's CUDA GPUs compute capability table).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "test_util.h"
#include "vramfit/device.h"
#include "vramfit/training.h"
#include "vramfit/workload.h"

namespace vramfit {
namespace {

using testing::CatalogModelOrDie;
using testing::Gpus;

const Model& Llama() {
  static const Model m = CatalogModelOrDie("meta-llama/Llama-3.1-8B");
  return m;
}

bool HasNote(const std::vector<std::string>& notes, const std::string& text) {
  return std::any_of(notes.begin(), notes.end(),
                     [&](const std::string& n) { return n.find(text) != std::string::npos; });
}

TEST(CapabilityTest, ComputeCapabilityFromTheCatalog) {
  EXPECT_EQ(ComputeCapability(Gpus("T4").gpus[0]), 75);
  EXPECT_EQ(ComputeCapability(Gpus("A100-80GB").gpus[0]), 80);
  EXPECT_EQ(ComputeCapability(Gpus("H100-80GB").gpus[0]), 90);
  EXPECT_EQ(FirstBelow(Gpus("A100-80GB"), kMinCcBf16), nullptr);
  ASSERT_NE(FirstBelow(Gpus("T4"), kMinCcBf16), nullptr);
  EXPECT_EQ(FirstBelow(Gpus("T4"), kMinCcBf16)->name, "T4");
  EXPECT_EQ(FirstBelow(Gpus("MI300X"), kMinCcBf16), nullptr);  // not judged: not NVIDIA
}

TEST(CapabilityTest, FlashAttentionTwoIsRefusedBelowAmpere) {
  InferenceSettings s;
  s.attn = AttnImpl::kFlash;
  auto w = ResolveInference(Llama(), s, Gpus("T4"), nullptr);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().message,
            "--attn flash: FlashAttention-2 needs compute capability 8.0 or newer; T4 is 7.5 (use --attn sdpa)");
  EXPECT_TRUE(ResolveInference(Llama(), s, Gpus("A100-80GB"), nullptr).ok());
  TrainingSettings t;
  t.attn = AttnImpl::kFlash;
  auto tw = ResolveTraining(Llama(), t, Gpus("V100-32GB"), nullptr);
  ASSERT_FALSE(tw.ok());
  EXPECT_EQ(tw.error().message,
            "--attn flash: FlashAttention-2 needs compute capability 8.0 or newer; V100-32GB is 7.0 (use --attn sdpa)");
}

TEST(CapabilityTest, HfInferenceRunsABf16ModelInFp16BelowAmpere) {
  InferenceSettings s;
  std::vector<std::string> notes;
  auto w = ResolveInference(Llama(), s, Gpus("T4"), &notes);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->dtype, DType::kF16);
  EXPECT_EQ(w->kv_dtype, DType::kF16);
  EXPECT_TRUE(HasNote(notes, "T4 (compute capability 7.5) has no bf16 tensor cores"));
  s.dtype = DType::kBF16;  // asked for: kept, noted as emulated
  notes.clear();
  auto b = ResolveInference(Llama(), s, Gpus("T4"), &notes);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->dtype, DType::kBF16);
  EXPECT_TRUE(HasNote(notes, "bf16 matmuls run emulated"));
  auto a = ResolveInference(Llama(), InferenceSettings{}, Gpus("A100-80GB"), nullptr);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->dtype, DType::kBF16);
}

// The stacks' own fallbacks: Unsloth and the HF Trainer load the frozen
// base in float16 (is_bfloat16_supported() false), torchtune needs dtype
// fp32 (verify_bf16_support), LitGPT 16-mixed.
TEST(CapabilityTest, TrainingPrecisionFallsBackPerStack) {
  struct Want {
    Stack stack;
    TrainMethod method;
    Precision t4, a100;
  };
  const Want cases[] = {
      {Stack::kHfTrainer, TrainMethod::kQlora, Precision::kFp16, Precision::kBf16},
      {Stack::kUnsloth, TrainMethod::kLora, Precision::kFp16, Precision::kBf16},
      {Stack::kHfTrainer, TrainMethod::kFull, Precision::kFp16Mixed, Precision::kBf16Mixed},
      {Stack::kLitgpt, TrainMethod::kLora, Precision::kFp16Mixed, Precision::kBf16Mixed},
      {Stack::kTorchtune, TrainMethod::kLora, Precision::kFp32, Precision::kBf16},
  };
  for (const Want& c : cases) {
    TrainingSettings s;
    s.stack = c.stack;
    s.method = c.method;
    auto t4 = ResolveTraining(Llama(), s, Gpus("T4"), nullptr);
    ASSERT_TRUE(t4.ok()) << StackName(c.stack) << ": " << t4.error().message;
    EXPECT_EQ(t4->precision, c.t4) << StackName(c.stack);
    auto a100 = ResolveTraining(Llama(), s, Gpus("A100-80GB"), nullptr);
    ASSERT_TRUE(a100.ok());
    EXPECT_EQ(a100->precision, c.a100) << StackName(c.stack);
  }
  // Pure fp16 keeps 2-byte weights and states like pure bf16.
  TrainingSettings s;
  s.method = TrainMethod::kQlora;
  auto t4 = ResolveTraining(Llama(), s, Gpus("T4"), nullptr);
  auto a100 = ResolveTraining(Llama(), s, Gpus("A100-80GB"), nullptr);
  ASSERT_TRUE(t4.ok() && a100.ok());
  auto e4 = EstimateTraining(Llama(), *t4, Gpus("T4"));
  auto ea = EstimateTraining(Llama(), *a100, Gpus("T4"));
  ASSERT_TRUE(e4.ok() && ea.ok());
  EXPECT_EQ(e4->devices[0].allocated_peak->value(), ea->devices[0].allocated_peak->value());
}

}  // namespace
}  // namespace vramfit
