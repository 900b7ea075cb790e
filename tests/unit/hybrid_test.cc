// Hybrid decoder stacks: layers with recurrent mixers (Gated DeltaNet,
// Mamba, Mamba-2), MLP-only layers and mixer-only layers. Exact parameter
// counts against published totals, the per-sequence recurrent state worked
// by hand from the configs, KV bytes per token over the attention layers
// only, the layer pattern, hostile configs, and the runtimes' refusals.
// Tensor lists and formulas: docs/estimation.md "Hybrid layers" and
// "Recurrent state".
#include <gtest/gtest.h>

#include <string>

#include "test_util.h"
#include "vramfit/inspect.h"
#include "vramfit/io/hf_config.h"
#include "vramfit/training.h"

namespace vramfit {
namespace {

using testing::CatalogModelOrDie;
using testing::Gpus;

std::string ParseError(const std::string& cfg) {
  auto r = ParseHfConfig(cfg, "config.json", nullptr);
  return r.ok() ? std::string("(parsed)") : r.error().message;
}

// --- Exact parameter counts (catalog configs, data/models/hybrid.json).

TEST(HybridTest, Qwen3NextCountsWithAndWithoutMtp) {
  const Model m = CatalogModelOrDie("Qwen/Qwen3-Next-80B-A3B-Instruct");
  // HF Hub API safetensors total 81,324,862,720 (kvfit
  // scripts/build_registry.py) includes the stored MTP layer; the decoder
  // alone is 79,674,391,296 (also pinned by a Qwen3-Coder-Next parser test).
  EXPECT_EQ(m.inventory.params, 79674391296);
  EXPECT_EQ(m.inventory.params + m.inventory.extra_params, 81324862720);
  EXPECT_EQ(m.inventory.params + m.inventory.extra_params, m.spec.published_params);
  // MTP (vLLM qwen3_next_mtp.py): fc [2048, 4096] + 3 norms + one gated
  // full-attention MoE layer = 8,388,608 + 6,144 + 27,263,488 + 1,614,813,184.
  EXPECT_EQ(m.inventory.extra_params, 1650471424);
  EXPECT_EQ(LayerPatternSummary(m.spec), "48 layers: 12 full attention, 36 Gated DeltaNet");
}

TEST(HybridTest, NemotronNanoGraniteAndMambaMatchPublishedTotals) {
  // HF Hub API safetensors totals (kvfit scripts/build_registry.py).
  EXPECT_EQ(CatalogModelOrDie("nvidia/NVIDIA-Nemotron-Nano-9B-v2").inventory.params, 8888227328);
  EXPECT_EQ(CatalogModelOrDie("ibm-granite/granite-4.0-h-small").inventory.params, 32207337984);
  // "Number of parameters: 2768345600" printed for state-spaces/mamba-2.8b.
  EXPECT_EQ(CatalogModelOrDie("state-spaces/mamba-2.8b-hf").inventory.params, 2768345600);
  EXPECT_EQ(LayerPatternSummary(CatalogModelOrDie("nvidia/NVIDIA-Nemotron-Nano-9B-v2").spec),
            "56 layers: 4 full attention, 27 Mamba-2, 25 MLP-only");
  EXPECT_EQ(LayerPatternSummary(CatalogModelOrDie("state-spaces/mamba-2.8b-hf").spec), "64 layers: 64 Mamba");
  // sum(p.numel()) of the loaded Lfm2ForCausalLM; a per-part ledger gives
  // embed 134,217,728 + MLP 16 x 3 x 2048 x 8192 + conv 10 x 16,783,360 +
  // attention 6 x 10,485,760 + norms 68,352.
  const Model lfm = CatalogModelOrDie("LiquidAI/LFM2-1.2B");
  EXPECT_EQ(lfm.inventory.params, 1170340608);
  EXPECT_EQ(lfm.spec.intermediate_size, 8192);
  EXPECT_EQ(LayerPatternSummary(lfm.spec), "16 layers: 6 full attention, 10 short conv");
  // Active per token (Qwen3-Coder-Next parser test: published total minus
  // the inactive experts): 3,874,929,408.
  EXPECT_EQ(CatalogModelOrDie("Qwen/Qwen3-Next-80B-A3B-Instruct").inventory.active_params, 3874929408);
}

TEST(HybridTest, Mamba2MixerTensorsOfOneNemotronLayer) {
  // One Nemotron-H 'M' block (modular_nemotron_h.py NemotronHMamba2Mixer):
  // d_inner = 128 heads x 80 = 10240, conv_dim = 10240 + 2*8*128 = 12288,
  // in_proj [10240 + 12288 + 128, 4480], conv1d [12288, 1, 4] + bias,
  // dt_bias/A_log/D [128], norm [10240], out_proj [4480, 10240].
  const Model m = CatalogModelOrDie("nvidia/NVIDIA-Nemotron-Nano-9B-v2");
  const int64_t one = (10240 + 12288 + 128) * 4480 + 12288 * 4 + 12288 + 3 * 128 + 10240 + 4480 * 10240;
  EXPECT_EQ(m.inventory.params_by_role[static_cast<size_t>(Role::kMixer)], 27 * one);
}

// --- KV per token: attention layers only.

TEST(HybridTest, KvBytesPerTokenCountsOnlyAttentionLayers) {
  // Qwen3-Next: 12 attention layers x (K + V) 2 heads x 256 x 2 B = 24,576.
  EXPECT_EQ(KvBytesPerToken(CatalogModelOrDie("Qwen/Qwen3-Next-80B-A3B-Instruct").spec, DType::kBF16,
                            KvLayout::kLatent).value(),
            12 * 2 * 2 * 256 * 2);
  // Nemotron-Nano-9B-v2 and Granite-4.0-H-Small: 4 layers x 2 x 8 x 128 x 2 B.
  EXPECT_EQ(KvBytesPerToken(CatalogModelOrDie("nvidia/NVIDIA-Nemotron-Nano-9B-v2").spec, DType::kBF16,
                            KvLayout::kLatent).value(),
            16384);
  EXPECT_EQ(KvBytesPerToken(CatalogModelOrDie("ibm-granite/granite-4.0-h-small").spec, DType::kBF16,
                            KvLayout::kLatent).value(),
            16384);
  EXPECT_EQ(KvBytesPerToken(CatalogModelOrDie("state-spaces/mamba-2.8b-hf").spec, DType::kBF16,
                            KvLayout::kLatent).value(),
            0);
  // A pure-attention model is unchanged: Llama-3-8B 32 x 2 x 8 x 128 x 2 B.
  EXPECT_EQ(KvBytesPerToken(CatalogModelOrDie("meta-llama/Meta-Llama-3-8B").spec, DType::kBF16,
                            KvLayout::kLatent).value(),
            131072);
}

// --- Recurrent state per sequence, by hand from the configs.

TEST(HybridTest, StatePerSequenceGatedDeltaNet) {
  const ModelSpec s = CatalogModelOrDie("Qwen/Qwen3-Next-80B-A3B-Instruct").spec;
  // Per GDN layer: conv_dim = 2*16*128 + 32*128 = 8192 channels x 3
  // columns = 24,576; recurrent state 32 heads x 128 x 128 = 524,288.
  // 36 layers: conv 884,736, state 18,874,368; bf16: 39,518,208 B.
  const StateElements e = StateElementsPerSequence(s, ConvWindow::kKernelMinus1);
  EXPECT_EQ(e.conv, 884736);
  EXPECT_EQ(e.ssm, 18874368);
  EXPECT_EQ(StateBytesPerSequence(s, DType::kBF16, DType::kBF16, ConvWindow::kKernelMinus1).value(), 39518208);
  // transformers keeps the whole kernel: 8192 x 4 x 36.
  EXPECT_EQ(StateElementsPerSequence(s, ConvWindow::kKernel).conv, 1179648);
  // A full-attention layer has no state.
  EXPECT_EQ(RecurrentStateElements(s, s.layers[3], ConvWindow::kKernel).ssm, 0);
}

TEST(HybridTest, StatePerSequenceMamba2AndMamba1) {
  // Nemotron-Nano-9B-v2, 27 'M' layers: conv_dim 12288 x 3 = 36,864; SSM
  // 128 heads x 80 x 128 = 1,310,720. conv bf16 + SSM f32 (vLLM's
  // mamba_ssm_cache_dtype float32): 27 x (73,728 + 5,242,880) = 143,548,416.
  const ModelSpec n = CatalogModelOrDie("nvidia/NVIDIA-Nemotron-Nano-9B-v2").spec;
  EXPECT_EQ(StateBytesPerSequence(n, DType::kBF16, DType::kF32, ConvWindow::kKernelMinus1).value(), 143548416);
  // Granite-4.0-H-Small, 36 Mamba-2 layers: conv (8192 + 2*1*128) x 3 =
  // 25,344; SSM 128 x 64 x 128 = 1,048,576.
  const StateElements g = StateElementsPerSequence(CatalogModelOrDie("ibm-granite/granite-4.0-h-small").spec,
                                                   ConvWindow::kKernelMinus1);
  EXPECT_EQ(g.conv, 36 * 25344);
  EXPECT_EQ(g.ssm, 36 * 1048576);
  // Mamba-2.8B, 64 Mamba-1 layers: conv d_inner 5120 x 3; SSM 5120 x 16.
  // bf16: 64 x (15,360 + 81,920) x 2 = 12,451,840 B.
  const ModelSpec m = CatalogModelOrDie("state-spaces/mamba-2.8b-hf").spec;
  EXPECT_EQ(StateBytesPerSequence(m, DType::kBF16, DType::kBF16, ConvWindow::kKernelMinus1).value(), 12451840);
  // LFM2-1.2B, 10 conv layers: hidden 2048 x (L_cache 3 - 1) = 4096 each;
  // no recurrent state. KV: 6 layers x 2 x 8 x 64 x 2 B = 12,288.
  const ModelSpec lfm = CatalogModelOrDie("LiquidAI/LFM2-1.2B").spec;
  EXPECT_EQ(StateBytesPerSequence(lfm, DType::kBF16, DType::kBF16, ConvWindow::kKernelMinus1).value(), 81920);
  EXPECT_EQ(StateElementsPerSequence(lfm, ConvWindow::kKernel).conv, 10 * 2048 * 3);
  EXPECT_EQ(KvBytesPerToken(lfm, DType::kBF16, KvLayout::kLatent).value(), 12288);
  // A pure-attention model has none.
  EXPECT_EQ(StateBytesPerSequence(CatalogModelOrDie("meta-llama/Meta-Llama-3-8B").spec, DType::kBF16, DType::kBF16,
                                  ConvWindow::kKernel)
                .value(),
            0);
}

TEST(HybridTest, InspectReportsStateAndPattern) {
  const Model m = CatalogModelOrDie("nvidia/NVIDIA-Nemotron-Nano-9B-v2");
  const Inspection in = Inspect(m, {});
  // bf16 conv and SSM: 27 x (36,864 + 1,310,720) x 2 B = 72,769,536.
  EXPECT_EQ(in.state_bytes_per_sequence.value(), 72769536);
  EXPECT_EQ(in.kv_bytes_per_token.value(), 16384);
  EXPECT_EQ(in.layer_pattern, "56 layers: 4 full attention, 27 Mamba-2, 25 MLP-only");
  EXPECT_EQ(Inspect(CatalogModelOrDie("meta-llama/Meta-Llama-3-8B"), {}).state_bytes_per_sequence.value(), 0);
}

// --- Per-layer groups follow their own layers (pipeline stages, offload).

TEST(HybridTest, GroupsSpanOnlyTheirLayerClass) {
  const Model m = CatalogModelOrDie("nvidia/NVIDIA-Nemotron-Nano-9B-v2");
  // "M-M-M-MM-M-M-M*-M-M-M*-M-M-M-M*-M-M-M-M*-M-MM-M-M-M-M-M-": the first
  // 28 blocks hold 14 'M', 2 '*' and 12 '-'.
  int64_t mixer = 0, attn = 0, mlp = 0;
  for (const TensorGroup& g : m.inventory.groups) {
    if (g.name == "layers.*.mamba.in_proj.weight") mixer = GroupLayersIn(m.spec, g, 0, 28);
    if (g.name == "layers.*.self_attn.q_proj.weight") attn = GroupLayersIn(m.spec, g, 0, 28);
    if (g.name == "layers.*.mlp.fc1.weight") mlp = GroupLayersIn(m.spec, g, 0, 28);
  }
  EXPECT_EQ(mixer, 14);
  EXPECT_EQ(attn, 2);
  EXPECT_EQ(mlp, 12);
}

// --- Config mapping: layer patterns and hostile values.

constexpr const char* kNemotron = R"({"model_type":"nemotron_h","hidden_size":256,"num_hidden_layers":4,
  "num_attention_heads":4,"num_key_value_heads":2,"head_dim":64,"vocab_size":1000,"intermediate_size":512,
  "hybrid_override_pattern":"M*-M","mamba_num_heads":8,"mamba_head_dim":64,"ssm_state_size":16,"n_groups":2,
  "conv_kernel":4})";

TEST(HybridTest, NemotronPatternAndItsErrors) {
  auto r = ParseHfConfig(kNemotron, "config.json", nullptr);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->layers[0].recurrent, RecurrentKind::kMamba2);
  EXPECT_EQ(r->layers[0].attention, LayerAttention::kNone);
  EXPECT_FALSE(r->layers[0].mlp);
  EXPECT_EQ(r->layers[1].attention, LayerAttention::kFull);
  EXPECT_FALSE(r->layers[1].mlp);
  EXPECT_EQ(r->layers[2].attention, LayerAttention::kNone);
  EXPECT_TRUE(r->layers[2].mlp);
  std::string cfg = kNemotron;
  cfg.replace(cfg.find("M*-M"), 4, "M*E-");
  EXPECT_EQ(ParseError(cfg), "config.json: key 'hybrid_override_pattern'[2]: block 'E' is not modelled (vramfit reads M, * and -)");
  cfg = kNemotron;
  cfg.replace(cfg.find("M*-M"), 4, "M*-");
  EXPECT_EQ(ParseError(cfg), "config.json: key 'hybrid_override_pattern': 3 characters for 4 layers");
  cfg = kNemotron;
  cfg.replace(cfg.find("\"ssm_state_size\":16"), 19, "\"ssm_state_size\":100000");
  EXPECT_EQ(ParseError(cfg), "config.json: mamba d_state (state_size) = 100000: must be between 1 and 4096");
  cfg = kNemotron;
  cfg.replace(cfg.find("\"n_groups\":2"), 12, "\"n_groups\":3");
  EXPECT_EQ(ParseError(cfg), "config.json: mamba n_groups = 3: must divide the 8 Mamba-2 heads");
  cfg = kNemotron;
  cfg.replace(cfg.find("\"conv_kernel\":4"), 15, "\"conv_kernel\":5000");
  EXPECT_EQ(ParseError(cfg), "config.json: mamba d_conv (conv_kernel) = 5000: must be between 1 and 1024");
  cfg = kNemotron;
  cfg.replace(cfg.find("\"mamba_num_heads\":8"), 19, "\"mamba_num_heads\":99999999999");
  EXPECT_EQ(ParseError(cfg), "config.json: mamba_num_heads = 99999999999: must be between 1 and 16777216");
}

constexpr const char* kNext = R"({"model_type":"qwen3_next","hidden_size":256,"num_hidden_layers":4,
  "num_attention_heads":4,"num_key_value_heads":2,"head_dim":64,"vocab_size":1000,"intermediate_size":512,
  "num_experts":8,"num_experts_per_tok":2,"moe_intermediate_size":64,"shared_expert_intermediate_size":64,
  "linear_num_key_heads":2,"linear_num_value_heads":4,"linear_key_head_dim":32,"linear_value_head_dim":32,
  "layer_types":["linear_attention","linear_attention","linear_attention","full_attention"]})";

TEST(HybridTest, Qwen3NextLayerTypesAndErrors) {
  auto r = ParseHfConfig(kNext, "config.json", nullptr);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->layers[0].recurrent, RecurrentKind::kGatedDeltaNet);
  EXPECT_EQ(r->layers[3].attention, LayerAttention::kFull);
  EXPECT_EQ(r->layers[3].recurrent, RecurrentKind::kNone);
  EXPECT_EQ(r->num_nextn_predict_layers, 1);
  std::string cfg = kNext;
  cfg.replace(cfg.find("\"full_attention\"]"), 17, "\"sliding_attention\"]");
  EXPECT_EQ(ParseError(cfg), "config.json: key 'layer_types'[3]: layer type \"sliding_attention\" is not modelled");
  cfg = kNext;
  cfg.replace(cfg.find("\"linear_attention\",\"full"), 19, "");
  EXPECT_EQ(ParseError(cfg), "config.json: key 'layer_types': expected a list of 4 entries (num_hidden_layers)");
  cfg = kNext;
  cfg.replace(cfg.find("\"linear_num_value_heads\":4"), 26, "\"linear_num_value_heads\":3");
  EXPECT_EQ(ParseError(cfg),
            "config.json: linear_num_value_heads (3) is not a multiple of linear_num_key_heads (2)");
  cfg = kNext;
  cfg.replace(cfg.find("\"linear_key_head_dim\":32"), 24, "\"linear_key_head_dim\":65536");
  EXPECT_EQ(ParseError(cfg), "config.json: linear_key_head_dim = 65536: must be between 1 and 4096");
}

TEST(HybridTest, MambaConfigs) {
  auto m1 = ParseHfConfig(R"({"model_type":"mamba","hidden_size":768,"num_hidden_layers":24,"vocab_size":50280,
    "state_size":16,"time_step_rank":"auto"})", "config.json", nullptr);
  ASSERT_TRUE(m1.ok()) << m1.error().message;
  EXPECT_EQ(m1->mamba.dt_rank, 48);  // ceil(768 / 16)
  EXPECT_EQ(m1->mamba.d_inner, 1536);
  EXPECT_TRUE(m1->tie_word_embeddings);  // MambaConfig default
  EXPECT_EQ(ParseError(R"({"model_type":"mamba2","hidden_size":4096,"num_hidden_layers":2,"vocab_size":100,
    "num_heads":128,"head_dim":32})"),
            "config.json: mamba num_heads x head_dim = 128 x 32 != d_inner 8192");
}

TEST(HybridTest, Lfm2ConfigErrors) {
  const std::string base = R"({"model_type":"lfm2","hidden_size":256,"num_hidden_layers":4,"num_attention_heads":4,
    "num_key_value_heads":2,"vocab_size":1000,"block_ff_dim":768,"conv_L_cache":3)";
  auto r = ParseHfConfig(base + R"(,"full_attn_idxs":[1],"tie_embedding":false})", "config.json", nullptr);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->layers[1].attention, LayerAttention::kFull);
  EXPECT_EQ(r->layers[0].recurrent, RecurrentKind::kShortConv);
  EXPECT_EQ(r->intermediate_size, 512);  // int(2 x 768 / 3); no multiplier: no rounding (Lfm2MLP)
  EXPECT_FALSE(r->tie_word_embeddings);
  EXPECT_EQ(ParseError(base + R"(,"full_attn_idxs":[4]})"),
            "config.json: key 'full_attn_idxs': 4 is not a layer index below 4");
  EXPECT_EQ(ParseError(base + R"(,"full_attn_idxs":[1],"block_ffn_dim_multiplier":"x"})"),
            "config.json: key 'block_ffn_dim_multiplier': expected a number in (0, 64], got \"x\"");
  EXPECT_EQ(ParseError(base + "}"), "config.json: lfm2 needs 'layer_types' or 'full_attn_idxs'");
  std::string big = base + R"(,"full_attn_idxs":[1]})";
  big.replace(big.find("\"conv_L_cache\":3"), 16, "\"conv_L_cache\":2000");
  EXPECT_EQ(ParseError(big),
            "config.json: conv_L_cache = 2000: must be between 1 and 1024");
}

// Families not modelled yet stay refused in one line (never read as Llama).
TEST(HybridTest, UnmodelledHybridFamiliesAreRefused) {
  for (const char* t : {"kimi_linear", "falcon_h1", "jamba", "qwen3_5", "qwen3_5_moe"}) {
    const std::string cfg = std::string(R"({"model_type":")") + t +
                            R"(","hidden_size":2048,"num_hidden_layers":4,"num_attention_heads":16,
      "vocab_size":1000,"intermediate_size":512,"mamba_d_state":16})";
    EXPECT_EQ(ParseError(cfg).rfind(std::string("config.json: model_type '") + t +
                                        "' is not modelled (keys that change tensor shapes: mamba_d_state); ",
                                    0),
              0u)
        << t;
  }
}

// --- Runtimes that do not model recurrent layers refuse in one line (vllm
// models them: tests/unit/vllm_hybrid_test.cc).

TEST(HybridTest, RuntimesAndTrainingRefuseHybridModels) {
  const Model m = CatalogModelOrDie("nvidia/NVIDIA-Nemotron-Nano-9B-v2");
  const DeviceSet d = Gpus("H100-80GB");
  const struct { Runtime rt; const char* want; } cases[] = {
      // A catalog model: no .gguf file to take the mixer tensors from
      // (a hybrid GGUF is estimated: llamacpp_hybrid_test.cc).
      {Runtime::kLlamaCpp, "--runtime llamacpp: nvidia/NVIDIA-Nemotron-Nano-9B-v2 has Mamba-2 layers; sizing a GGUF "
                           "conversion of its mixer tensors (give the .gguf file) is not modelled yet"},
      {Runtime::kHf, "--runtime hf: nvidia/NVIDIA-Nemotron-Nano-9B-v2 has Mamba-2 layers; the transformers hybrid "
                     "cache with its mixers' prefill activations is not modelled yet"},
  };
  for (const auto& c : cases) {
    InferenceSettings s;
    s.runtime = c.rt;
    auto w = ResolveInference(m, s, d, nullptr);
    ASSERT_FALSE(w.ok()) << RuntimeName(c.rt);
    EXPECT_EQ(w.error().message, c.want);
    EXPECT_EQ(w.error().kind, ErrorKind::kUnsupported);
  }
  TrainingSettings t;
  auto tw = ResolveTraining(m, t, d, nullptr);
  ASSERT_FALSE(tw.ok());
  EXPECT_EQ(tw.error().message,
            "vramfit train: nvidia/NVIDIA-Nemotron-Nano-9B-v2 has Mamba-2 layers; the activations saved by recurrent "
            "mixers (chunked scan states) are not modelled yet");
}

}  // namespace
}  // namespace vramfit
