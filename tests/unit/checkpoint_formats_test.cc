// Checkpoint formats read from quantization_config (issue #13 item 4):
// NVFP4 (compressed-tensors and modelopt), w8a8 int8, fbgemm FP8 with
// modules_to_not_convert, GPTQ dynamic overrides, AWQ exclusions. Each
// fixture is a model directory whose safetensors header lists the tensors,
// dtypes and shapes the format's writer stores for every linear (sources
// at each layout below and in docs/formats.md "Checkpoint formats"), on a
// small Llama (2 layers, hidden 256). The estimate's weights must equal the
// header's data bytes exactly, and a config.json-only estimate of the same
// checkpoint must give the same bytes.
#include <filesystem>
#include <fstream>
#include <functional>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "data/fixtures.h"
#include "test_util.h"
#include "vramfit/io/source.h"
#include "vramfit/quant.h"

namespace vramfit {
namespace {

namespace fs = std::filesystem;
using fixtures::BuildSafetensors;
using fixtures::StTensor;

constexpr const char* kLlama = R"("model_type":"llama","architectures":["LlamaForCausalLM"],
  "hidden_size":256,"intermediate_size":512,"num_attention_heads":4,"num_key_value_heads":2,
  "num_hidden_layers":2,"vocab_size":512,"max_position_embeddings":2048,"tie_word_embeddings":false)";

// The tensors one linear (module name, out, in) stores in a format.
using Layout = std::function<std::vector<StTensor>(const std::string& module, int64_t out, int64_t in)>;

// Every tensor of the small Llama: `quant` for quantized linears, bf16 (or
// `dense` dtype) for the modules `keep` names and for embeddings, norms, head.
std::vector<StTensor> Checkpoint(const Layout& quant, const std::function<bool(const std::string&)>& keep,
                                 const std::string& dense = "BF16") {
  std::vector<StTensor> t;
  const int64_t e = dense == "F32" ? 4 : 2;
  t.push_back({"model.embed_tokens.weight", dense, {512, 256}, e});
  struct Lin { const char* name; int64_t out, in; };
  const Lin lins[] = {{"self_attn.q_proj", 256, 256}, {"self_attn.k_proj", 128, 256}, {"self_attn.v_proj", 128, 256},
                      {"self_attn.o_proj", 256, 256}, {"mlp.gate_proj", 512, 256},   {"mlp.up_proj", 512, 256},
                      {"mlp.down_proj", 256, 512}};
  for (int layer = 0; layer < 2; ++layer) {
    const std::string p = "model.layers." + std::to_string(layer) + ".";
    for (const Lin& l : lins) {
      const std::string m = p + l.name;
      if (keep(m)) {
        t.push_back({m + ".weight", dense, {l.out, l.in}, e});
      } else {
        for (StTensor& x : quant(m, l.out, l.in)) t.push_back(std::move(x));
      }
    }
    t.push_back({p + "input_layernorm.weight", dense, {256}, e});
    t.push_back({p + "post_attention_layernorm.weight", dense, {256}, e});
  }
  t.push_back({"model.norm.weight", dense, {256}, e});
  if (keep("lm_head")) t.push_back({"lm_head.weight", dense, {512, 256}, e});
  else for (StTensor& x : quant("lm_head", 512, 256)) t.push_back(std::move(x));
  return t;
}

struct Both {
  int64_t data_bytes = 0;  // the header's data section
  int64_t from_dir = 0;    // estimate from the directory (headers)
  int64_t from_config = 0; // estimate from config.json alone
};

Both EstimateBoth(const std::string& name, const std::string& config, const std::vector<StTensor>& ts,
                  InferenceSettings s = {}) {
  const fs::path dir = fixtures::FreshDir(name);
  std::ofstream(dir / "config.json") << config;
  const auto f = BuildSafetensors(ts);
  fixtures::WriteSparse(dir / "model.safetensors", f.header, f.size());
  Both b;
  b.data_bytes = f.data_bytes;
  s.ctx = 16;
  auto m = LoadModel(dir.string(), ModelCatalog::Builtin(), nullptr);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
  if (m.ok()) b.from_dir = testing::EstimateOrDie(*m, s).weight_bytes.value();
  auto c = LoadModel((dir / "config.json").string(), ModelCatalog::Builtin(), nullptr);
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  if (c.ok()) {
    const Estimate e = testing::EstimateOrDie(*c, s);
    b.from_config = e.weight_bytes.value();
    EXPECT_EQ(testing::ComponentBytes(e.devices[0], "weights"), b.from_config);
  }
  fs::remove_all(dir);
  return b;
}

bool Never(const std::string&) { return false; }
bool IsHead(const std::string& m) { return m == "lm_head"; }

// compressed-tensors nvfp4-pack-quantized (llm-compressor NVFP4 scheme, e.g.
// RedHatAI/*-NVFP4): weight_packed U8 [out, in/2], weight_scale F8_E4M3
// [out, in/16], weight_global_scale F32 [1], input_global_scale F32 [1]
// (vLLM compressed_tensors_w4a4_nvfp4.py create_weights @85f1f91;
// compressed-tensors initialize.py @9ead292: TENSOR_GROUP global scale fp32
// [1], fp4 scales e4m3). ignore ["lm_head"]: the head stays bf16.
TEST(CheckpointFormatsTest, Nvfp4CompressedTensorsEqualsTheHeaderBytes) {
  const std::string cfg = std::string("{") + kLlama + R"(,"torch_dtype":"bfloat16",
    "quantization_config":{"quant_method":"compressed-tensors","format":"nvfp4-pack-quantized",
      "config_groups":{"group_0":{"targets":["Linear"],
        "weights":{"num_bits":4,"type":"float","strategy":"tensor_group","group_size":16,"symmetric":true,"dynamic":false},
        "input_activations":{"num_bits":4,"type":"float","strategy":"tensor_group","group_size":16,"symmetric":true,"dynamic":"local"}}},
      "ignore":["lm_head"],"quantization_status":"compressed"}})";
  const Layout nvfp4 = [](const std::string& m, int64_t out, int64_t in) {
    return std::vector<StTensor>{{m + ".weight_packed", "U8", {out, in / 2}, 1},
                                 {m + ".weight_scale", "F8_E4M3", {out, in / 16}, 1},
                                 {m + ".weight_global_scale", "F32", {1}, 4},
                                 {m + ".input_global_scale", "F32", {1}, 4}};
  };
  const Both b = EstimateBoth("fmt_nvfp4_ct", cfg, Checkpoint(nvfp4, IsHead));
  // Per layer: linears hold 65536+32768+32768+65536+131072*2+131072 =
  // 589824 values -> 294912 packed + 36864 scales + 7 x 8 global scales.
  // bf16: embed 262144 + head 262144 + norms 5 x 512.
  EXPECT_EQ(b.data_bytes, 2 * (294912 + 36864 + 56) + 262144 * 2 + 5 * 512);
  EXPECT_EQ(b.from_dir, b.data_bytes);
  EXPECT_EQ(b.from_config, b.data_bytes);
}

// modelopt NVFP4 (nvidia/*-FP4 exports, hf_quant_config quant_algo NVFP4):
// weight U8 [out, in/2], weight_scale F8_E4M3 [out, in/16], weight_scale_2
// F32 [], input_scale F32 [] (vLLM modelopt.py ModelOptNvFp4LinearMethod).
// exclude_modules are fnmatch globs: "model.layers.1.mlp*" keeps layer 1's MLP.
TEST(CheckpointFormatsTest, Nvfp4ModeloptWithExcludedModulesEqualsTheHeaderBytes) {
  const std::string cfg = std::string("{") + kLlama + R"(,"torch_dtype":"bfloat16",
    "quantization_config":{"quant_method":"modelopt","quant_algo":"NVFP4","group_size":16,
      "kv_cache_quant_algo":null,"exclude_modules":["lm_head","model.layers.1.mlp*"]}})";
  const Layout nvfp4 = [](const std::string& m, int64_t out, int64_t in) {
    return std::vector<StTensor>{{m + ".weight", "U8", {out, in / 2}, 1},
                                 {m + ".weight_scale", "F8_E4M3", {out, in / 16}, 1},
                                 {m + ".weight_scale_2", "F32", {}, 4},
                                 {m + ".input_scale", "F32", {}, 4}};
  };
  const auto keep = [](const std::string& m) { return m == "lm_head" || m.rfind("model.layers.1.mlp", 0) == 0; };
  const Both b = EstimateBoth("fmt_nvfp4_mo", cfg, Checkpoint(nvfp4, keep));
  EXPECT_EQ(b.from_dir, b.data_bytes);
  EXPECT_EQ(b.from_config, b.data_bytes);
  // Layer 0 all NVFP4 (294912 + 36864 + 7 x 8); layer 1 attention NVFP4
  // (196608 values: 98304 + 12288 + 4 x 8) and its MLP in bf16 (3 x 131072 x 2).
  EXPECT_EQ(b.data_bytes, (294912 + 36864 + 56) + (98304 + 12288 + 32) + 3 * 131072 * 2 + 262144 * 2 + 5 * 512);
}

// compressed-tensors int-quantized W8A8 (neuralmagic/*-quantized.w8a8):
// weight I8 [out, in], weight_scale BF16 [out, 1] (channel strategy, scale
// in the model dtype: initialize.py), dynamic per-token activations store
// nothing; symmetric weights store no zero point (_skip_zp).
TEST(CheckpointFormatsTest, W8a8Int8EqualsTheHeaderBytes) {
  const std::string cfg = std::string("{") + kLlama + R"(,"torch_dtype":"bfloat16",
    "quantization_config":{"quant_method":"compressed-tensors","format":"int-quantized",
      "config_groups":{"group_0":{"targets":["Linear"],
        "weights":{"num_bits":8,"type":"int","strategy":"channel","symmetric":true,"dynamic":false},
        "input_activations":{"num_bits":8,"type":"int","strategy":"token","symmetric":true,"dynamic":true}}},
      "ignore":["lm_head"],"kv_cache_scheme":null,"sparsity_config":{}}})";
  const Layout w8a8 = [](const std::string& m, int64_t out, int64_t in) {
    return std::vector<StTensor>{{m + ".weight", "I8", {out, in}, 1}, {m + ".weight_scale", "BF16", {out, 1}, 2}};
  };
  const Both b = EstimateBoth("fmt_w8a8", cfg, Checkpoint(w8a8, IsHead));
  // Per layer 589824 int8 + rows (256+128+128+256+512+512+256 = 2048) x 2 B.
  EXPECT_EQ(b.data_bytes, 2 * (589824 + 4096) + 262144 * 2 + 5 * 512);
  EXPECT_EQ(b.from_dir, b.data_bytes);
  EXPECT_EQ(b.from_config, b.data_bytes);
}

// fbgemm_fp8 (meta-llama/Meta-Llama-3.1-405B-Instruct-FP8 layout): weight
// F8_E4M3 [out, in], weight_scale F32 [out, 1] (transformers
// integrations/fbgemm_fp8.py FbgemmFp8Linear); modules_to_not_convert full
// module names, matched by should_convert_module (re.match or endswith):
// here every self_attn projection and layer 0's MLP stay bf16.
TEST(CheckpointFormatsTest, FbgemmFp8WithModulesToNotConvertEqualsTheHeaderBytes) {
  std::string skip = "\"lm_head\"";
  for (int l = 0; l < 2; ++l) {
    for (const char* p : {"q_proj", "k_proj", "v_proj", "o_proj"}) {
      skip += fmt::format(",\"model.layers.{}.self_attn.{}\"", l, p);
    }
  }
  skip += ",\"model.layers.0.mlp.down_proj\",\"model.layers.0.mlp.gate_proj\",\"model.layers.0.mlp.up_proj\"";
  const std::string cfg = std::string("{") + kLlama + R"(,"torch_dtype":"bfloat16",
    "quantization_config":{"quant_method":"fbgemm_fp8","activation_scale_ub":1200.0,"modules_to_not_convert":[)" +
                          skip + "]}}";
  const Layout fp8 = [](const std::string& m, int64_t out, int64_t in) {
    return std::vector<StTensor>{{m + ".weight", "F8_E4M3", {out, in}, 1}, {m + ".weight_scale", "F32", {out, 1}, 4}};
  };
  const auto keep = [](const std::string& m) {
    return m == "lm_head" || m.find("self_attn") != std::string::npos || m.rfind("model.layers.0.mlp", 0) == 0;
  };
  const Both b = EstimateBoth("fmt_fbgemm", cfg, Checkpoint(fp8, keep));
  // Only layer 1's MLP is fp8: 393216 B + (512+512+256) x 4 B scales.
  EXPECT_EQ(b.data_bytes, 393216 + 5120 + 2 * 196608 * 2 + 393216 * 2 + 262144 * 2 + 5 * 512);
  EXPECT_EQ(b.from_dir, b.data_bytes);
  EXPECT_EQ(b.from_config, b.data_bytes);
}

// GPTQ (gptqmodel) with `dynamic`: "-:" keeps layer 1's MLP unquantized,
// "+:" stores layer 0's down_proj at 8 bits, group 64. GPTQ tensors:
// qweight I32 [in*bits/32, out], qzeros I32 [groups, out*bits/32], scales
// F16 [groups, out], g_idx I32 [in] (auto_gptq / gptqmodel QuantLinear).
TEST(CheckpointFormatsTest, GptqDynamicOverridesEqualTheHeaderBytes) {
  const std::string cfg = std::string("{") + kLlama + R"(,"torch_dtype":"float16",
    "quantization_config":{"quant_method":"gptq","bits":4,"group_size":128,"desc_act":false,"sym":true,
      "dynamic":{"-:model\\.layers\\.1\\.mlp\\..*":{},"+:.*\\.0\\.mlp\\.down_proj":{"bits":8,"group_size":64}}}})";
  const Layout gptq = [](const std::string& m, int64_t out, int64_t in) {
    const bool eight = m == "model.layers.0.mlp.down_proj";
    const int64_t bits = eight ? 8 : 4, g = in / (eight ? 64 : 128);
    return std::vector<StTensor>{{m + ".qweight", "I32", {in * bits / 32, out}, 4},
                                 {m + ".qzeros", "I32", {g, out * bits / 32}, 4},
                                 {m + ".scales", "F16", {g, out}, 2},
                                 {m + ".g_idx", "I32", {in}, 4}};
  };
  const auto keep = [](const std::string& m) { return m == "lm_head" || m.rfind("model.layers.1.mlp.", 0) == 0; };
  const Both b = EstimateBoth("fmt_gptq_dyn", cfg, Checkpoint(gptq, keep, "F16"));
  EXPECT_EQ(b.from_dir, b.data_bytes);
  EXPECT_EQ(b.from_config, b.data_bytes);
}

// AWQ (GEMM) with modules_to_not_convert ["model.layers.0.mlp"]: a prefix
// key (re.match) keeps layer 0's gate/up/down in fp16. AWQ tensors:
// qweight I32 [in, out/8], qzeros I32 [in/128, out/8], scales F16 [in/128, out].
TEST(CheckpointFormatsTest, AwqModulesToNotConvertEqualTheHeaderBytes) {
  const std::string cfg = std::string("{") + kLlama + R"(,"torch_dtype":"float16",
    "quantization_config":{"quant_method":"awq","bits":4,"group_size":128,"version":"gemm","zero_point":true,
      "modules_to_not_convert":["model.layers.0.mlp"]}})";
  const Layout awq = [](const std::string& m, int64_t out, int64_t in) {
    return std::vector<StTensor>{{m + ".qweight", "I32", {in, out / 8}, 4},
                                 {m + ".qzeros", "I32", {in / 128, out / 8}, 4},
                                 {m + ".scales", "F16", {in / 128, out}, 2}};
  };
  const auto keep = [](const std::string& m) { return m == "lm_head" || m.rfind("model.layers.0.mlp.", 0) == 0; };
  const Both b = EstimateBoth("fmt_awq_skip", cfg, Checkpoint(awq, keep, "F16"));
  EXPECT_EQ(b.from_dir, b.data_bytes);
  EXPECT_EQ(b.from_config, b.data_bytes);
}

// The rule semantics of each library, on module names.
TEST(CheckpointFormatsTest, RuleSemantics) {
  using Rule = CheckpointQuant::ModuleRule;
  auto rule = [](Rule::Match m, std::string p) {
    Rule r;
    r.match = m;
    r.pattern = std::move(p);
    return r;
  };
  // transformers should_convert_module: re.match(key) or endswith(key).
  EXPECT_TRUE(RuleMatches(rule(Rule::Match::kHfKey, "model.layers.0.mlp"), "model.layers.0.mlp.down_proj"));
  EXPECT_TRUE(RuleMatches(rule(Rule::Match::kHfKey, "down_proj"), "model.layers.7.mlp.down_proj"));
  EXPECT_FALSE(RuleMatches(rule(Rule::Match::kHfKey, "model.layers.1.mlp"), "model.layers.10.mlp.up_proj"));
  EXPECT_TRUE(RuleMatches(rule(Rule::Match::kHfKey, "model.layers.*.self_attn"), "model.layers.3.self_attn.q_proj"));
  // compressed-tensors: exact names; "re:" regexes use re.match (anchored at the start).
  EXPECT_TRUE(RuleMatches(rule(Rule::Match::kExact, "lm_head"), "lm_head"));
  EXPECT_FALSE(RuleMatches(rule(Rule::Match::kExact, "lm_head"), "model.lm_head"));
  EXPECT_TRUE(RuleMatches(rule(Rule::Match::kRegex, ".*mlp\\.gate$"), "model.layers.2.mlp.gate"));
  EXPECT_FALSE(RuleMatches(rule(Rule::Match::kRegex, "mlp\\.gate"), "model.layers.2.mlp.gate"));
  // modelopt: fnmatch over the whole name.
  EXPECT_TRUE(RuleMatches(rule(Rule::Match::kGlob, "model.layers.1.mlp*"), "model.layers.1.mlp.up_proj"));
  EXPECT_FALSE(RuleMatches(rule(Rule::Match::kGlob, "model.layers.1.mlp"), "model.layers.1.mlp.up_proj"));
}

std::string ConfigError(const std::string& qc, const std::string& dtype = "bfloat16") {
  const fs::path dir = fixtures::FreshDir("fmt_err");
  std::ofstream(dir / "config.json") << std::string("{") + kLlama + ",\"torch_dtype\":\"" + dtype +
                                            "\",\"quantization_config\":" + qc + "}";
  auto m = LoadModel((dir / "config.json").string(), ModelCatalog::Builtin(), nullptr);
  std::string out;
  if (!m.ok()) {
    out = m.error().message;
  } else {
    InferenceSettings s;
    auto w = ResolveInference(*m, s, {}, nullptr);
    out = w.ok() ? "ok" : w.error().message;
  }
  // Messages name the file; keep what follows it.
  const std::string where = (dir / "config.json").string();
  if (out.rfind(where, 0) == 0) out = out.substr(where.size());
  fs::remove_all(dir);
  return out;
}

// What is not modelled is refused in one line, never sized as bf16.
TEST(CheckpointFormatsTest, UnmodelledConfigsAreRefused) {
  EXPECT_EQ(ConfigError(R"({"quant_method":"hqq"})"),
            "config.json quantization_config: quant_method 'hqq' is not modelled; --quant none sizes the "
            "weights dequantized, or give another --quant");
  EXPECT_EQ(ConfigError(R"({"quant_method":"compressed-tensors","config_groups":{"g":{"targets":["re:.*q_proj"],
      "weights":{"num_bits":8,"type":"int","strategy":"channel"}}}})"),
            ": quantization_config: config_groups.g: targets other than [\"Linear\"] are not modelled");
  EXPECT_EQ(ConfigError(R"({"quant_method":"compressed-tensors","format":"pack-quantized","config_groups":{"g":{"targets":["Linear"],
      "weights":{"num_bits":4,"type":"int","strategy":"group","group_size":128}}}})"),
            ": quantization_config: config_groups.g: compressed-tensors weights int 4-bit 'group' (format "
            "'pack-quantized') are not modelled");
  EXPECT_EQ(ConfigError(R"({"quant_method":"modelopt","quant_algo":"W4A8_AWQ"})"),
            ": quantization_config: modelopt quant_algo 'W4A8_AWQ' is not modelled (NVFP4, FP8 are)");
  // Two dynamic rules whose order would decide (JSON objects are read unordered).
  EXPECT_EQ(ConfigError(R"({"quant_method":"gptq","bits":4,"group_size":128,
      "dynamic":{"+:.*down_proj":{"bits":8},"-:model\\.layers\\.0\\..*":{}}})", "float16"),
            "config.json quantization_config: dynamic '.*down_proj' and 'model\\.layers\\.0\\..*' both match "
            "model.layers.0.mlp.down_proj with different settings; the first in the file wins and vramfit does "
            "not keep key order");
}

// torchao weight-only formats, per tensor, from the torchao source:
// int4 tinygemm pads in to a multiple of 1024 and out to 8, packs 2 values
// per byte and keeps bf16 scales_and_zeros [in/G, out, 2]; int8wo keeps an
// int8 copy + a bf16 scale and an int64 zero per row; fp6 packs 6 bits per
// value + one fp16 scale per row.
TEST(CheckpointFormatsTest, TorchaoTensorBytes) {
  TensorGroup down{"layers.*.mlp.down_proj.weight", Role::kMlp, 4096, 11008, 1, true};
  auto int4 = ParseWeightFormat("torchao-int4wo-64");
  ASSERT_TRUE(int4.ok());
  // Llama-2-7B down_proj [4096, 11008] -> padded [4096, 11264]:
  // 4096 x 11264 / 2 = 23068672 B; 176 groups x 4096 x 2 x 2 B = 2883584 B.
  EXPECT_EQ(TensorBytes(down, *int4, DType::kBF16).value(), 23068672 + 2883584);
  TensorGroup q{"layers.*.self_attn.q_proj.weight", Role::kAttention, 4096, 4096, 1, true};
  auto int8 = ParseWeightFormat("torchao-int8wo");
  ASSERT_TRUE(int8.ok());
  EXPECT_EQ(TensorBytes(q, *int8, DType::kBF16).value(), 16777216 + 4096 * (2 + 8));
  auto fp6 = ParseWeightFormat("torchao-fp6");
  ASSERT_TRUE(fp6.ok());
  EXPECT_EQ(TensorBytes(q, *fp6, DType::kBF16).value(), 12582912 + 8192);
  // fp6-llm tiles: a linear with out % 256 != 0 stays bf16.
  TensorGroup k{"layers.*.self_attn.k_proj.weight", Role::kAttention, 1000, 4096, 1, true};
  EXPECT_EQ(TensorBytes(k, *fp6, DType::kBF16).value(), 1000 * 4096 * 2);
  EXPECT_EQ(ParseWeightFormat("torchao-int4wo-48").error().message,
            "--quant: 'torchao-int4wo-48': torchao formats are torchao-int4wo-32/64/128/256, torchao-int8wo, "
            "torchao-fp6");
}

}  // namespace
}  // namespace vramfit
