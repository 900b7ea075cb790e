// config.json reader: mappings and exact error messages.
#include <gtest/gtest.h>

#include <string>

#include "vramfit/io/hf_config.h"

namespace vramfit {
namespace {

constexpr const char* kLlama = R"({
  "architectures": ["LlamaForCausalLM"], "model_type": "llama",
  "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
  "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
  "max_position_embeddings": 131072, "torch_dtype": "bfloat16", "tie_word_embeddings": false})";

std::string Err(const std::string& json) {
  auto r = ParseHfConfig(json, "config.json");
  return r.ok() ? "ok" : r.error().message;
}

TEST(HfConfigTest, ReadsLlama) {
  auto r = ParseHfConfig(kLlama, "config.json");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->head_dim, 128);
  EXPECT_EQ(r->num_key_value_heads, 8);
  EXPECT_EQ(r->torch_dtype, DType::kBF16);
  EXPECT_EQ(BuildInventory(*r).params, 8030261248);  // Llama-3.1-8B
}

TEST(HfConfigTest, ExactErrors) {
  EXPECT_EQ(Err("{"), "config.json: malformed JSON at byte 2: parse error at line 1, column 2: "
                      "syntax error while parsing object key - unexpected end of input; expected "
                      "string literal");
  EXPECT_EQ(Err("[1,2]"), "config.json: expected a JSON object at the top level");
  EXPECT_EQ(Err(R"({"model_type":"llama","hidden_size":"4096"})"),
            "config.json: key 'hidden_size': expected an integer, got \"4096\"");
  EXPECT_EQ(Err(R"({"model_type":"llama","hidden_size":4096})"),
            "config.json: required key 'num_hidden_layers' is missing");
  EXPECT_EQ(Err(R"({"model_type":"llama","hidden_size":0,"num_hidden_layers":1})"),
            "config.json: key 'hidden_size': expected a positive integer, got 0");
  EXPECT_EQ(Err(R"({"hidden_size":4096})"),
            "config.json: neither 'model_type' nor 'architectures' is set");
  // Encoders are read now (encoder_test.cc); a missing key is named.
  EXPECT_EQ(Err(R"({"model_type":"bert","hidden_size":1024})"),
            "config.json: required key 'num_hidden_layers' is missing");
  std::string bad_heads = kLlama;
  bad_heads.replace(bad_heads.find("\"num_key_value_heads\": 8"), 24, "\"num_key_value_heads\": 5");
  EXPECT_EQ(Err(bad_heads),
            "config.json: num_attention_heads (32) is not a multiple of num_key_value_heads (5)");
  std::string huge = kLlama;
  huge.replace(huge.find("\"vocab_size\": 128256"), 20, "\"vocab_size\": 99999999999");
  EXPECT_EQ(Err(huge), "config.json: vocab_size = 99999999999: must be between 1 and 16777216");
  std::string dtype = kLlama;
  dtype.replace(dtype.find("\"bfloat16\""), 10, "\"int4\"");
  EXPECT_EQ(Err(dtype), "config.json: key 'torch_dtype': unknown dtype 'int4'");
}

TEST(HfConfigTest, DeepNestingIsRejectedBeforeParsing) {
  std::string deep(100000, '[');
  EXPECT_EQ(Err(deep), "config.json: JSON nested deeper than 64 levels at byte 64");
  std::string deep_str = "{\"a\":\"" + std::string(1000, '[') + "\"}";
  EXPECT_NE(Err(deep_str), "config.json: JSON nested deeper than 64 levels at byte 64");
}

// An unknown model_type is refused in one line naming its shape-changing
// keys (issue: Qwen3-Next-80B-A3B was read as a 3.04 B Llama).
TEST(HfConfigTest, UnknownTypeIsRefused) {
  std::string cfg = kLlama;
  cfg.replace(cfg.find("\"llama\""), 7, "\"mystery\"");
  auto r = ParseHfConfig(cfg, "config.json", nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnsupported);
  EXPECT_EQ(r.error().message.rfind("config.json: model_type 'mystery' is not modelled; vramfit reads llama, ", 0),
            0u)
      << r.error().message;
  // Qwen3-Next's real keys (Qwen/Qwen3-Next-80B-A3B-Instruct config.json)
  // under a family vramfit does not map (qwen3_next itself is mapped now:
  // hybrid_test.cc).
  const char* next = R"({"model_type":"kimi_linear","hidden_size":2048,"intermediate_size":5120,
    "num_hidden_layers":48,"num_attention_heads":16,"num_key_value_heads":2,"vocab_size":151936,
    "num_experts":512,"moe_intermediate_size":512,"full_attention_interval":4,"linear_num_key_heads":16,
    "linear_num_value_heads":32,"linear_key_head_dim":128,"linear_value_head_dim":128})";
  auto q = ParseHfConfig(next, "config.json", nullptr);
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().message.rfind("config.json: model_type 'kimi_linear' is not modelled (keys that change tensor "
                                    "shapes: num_experts, moe_intermediate_size, full_attention_interval, "
                                    "linear_num_key_heads, linear_num_value_heads, linear_key_head_dim, "
                                    "linear_value_head_dim); ",
                                    0),
            0u)
      << q.error().message;
}

TEST(HfConfigTest, TextConfigAndVision) {
  const char* cfg = R"({"architectures":["Gemma3ForConditionalGeneration"],"model_type":"gemma3",
    "text_config":{"model_type":"gemma3_text","hidden_size":2560,"intermediate_size":10240,
      "num_hidden_layers":34,"num_attention_heads":8,"num_key_value_heads":4,"head_dim":256,
      "vocab_size":262208,"max_position_embeddings":131072,"sliding_window":1024},
    "vision_config":{"model_type":"siglip_vision_model","hidden_size":1152,"intermediate_size":4304,
      "num_hidden_layers":27,"patch_size":14,"image_size":896}})";
  auto r = ParseHfConfig(cfg, "config.json");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->tie_word_embeddings);  // Gemma3TextConfig default
  EXPECT_EQ(r->norms_per_layer, 4);
  EXPECT_EQ(r->qk_norm, QkNorm::kPerHead);
  EXPECT_EQ(r->vision_params, 419816304);  // 4,300,079,472 - 3,880,263,168 (text)
}

TEST(HfConfigTest, QuantizationConfig) {
  std::string cfg = kLlama;
  cfg.insert(cfg.size() - 1, R"(, "quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 32})");
  auto r = ParseHfConfig(cfg, "config.json");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->checkpoint_quant.has_value());
  EXPECT_EQ(r->checkpoint_quant->method, "gptq");
  EXPECT_EQ(r->checkpoint_quant->group_size, 32);
}

}  // namespace
}  // namespace vramfit
