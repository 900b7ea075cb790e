// Range checks on the numbers the readers take from untrusted files
// (docs/formats.md §1.4, §5.5): every config.json integer is read as 64 bits
// and checked against its cap (src/io/spec_limits.h) before anything is
// allocated or multiplied from it; the GGUF mapping goes through the same
// caps in ValidateSpec. Each case pins the exact one-line error.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "data/fixtures.h"
#include "vramfit/io/file_reader.h"
#include "vramfit/io/gguf.h"
#include "vramfit/io/hf_config.h"
#include "vramfit/io/hub.h"

namespace vramfit {
namespace {

namespace fs = std::filesystem;
using fixtures::GgufBuilder;
using fixtures::GStr;
using fixtures::kF16;
using fixtures::Le32;
using fixtures::Le64;
using Json = nlohmann::json;

// Small valid configs, one per family whose keys the table below sets.
constexpr char kLlama[] = R"({"model_type":"llama","hidden_size":64,"intermediate_size":128,
  "num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":256})";
constexpr char kMistral[] = R"({"model_type":"mistral","hidden_size":64,"intermediate_size":128,
  "num_hidden_layers":2,"num_attention_heads":4,"vocab_size":256,"sliding_window":16})";
constexpr char kGemma3Text[] = R"({"model_type":"gemma3_text","hidden_size":64,"intermediate_size":128,
  "num_hidden_layers":2,"num_attention_heads":4,"vocab_size":256,"sliding_window_pattern":6})";
constexpr char kMixtral[] = R"({"model_type":"mixtral","hidden_size":64,"intermediate_size":128,
  "num_hidden_layers":2,"num_attention_heads":4,"vocab_size":256,"num_local_experts":4,
  "num_experts_per_tok":2})";
constexpr char kQwen2Moe[] = R"({"model_type":"qwen2_moe","hidden_size":64,"intermediate_size":128,
  "num_hidden_layers":2,"num_attention_heads":4,"vocab_size":256,"num_experts":4,
  "num_experts_per_tok":2,"moe_intermediate_size":32,"shared_expert_intermediate_size":64,
  "decoder_sparse_step":1})";
constexpr char kDeepseek[] = R"({"model_type":"deepseek_v3","hidden_size":64,"intermediate_size":128,
  "num_hidden_layers":2,"num_attention_heads":4,"vocab_size":256,"kv_lora_rank":16,"q_lora_rank":32,
  "qk_nope_head_dim":8,"qk_rope_head_dim":4,"v_head_dim":8,"n_routed_experts":4,
  "num_experts_per_tok":2,"moe_intermediate_size":32,"n_shared_experts":1,
  "first_k_dense_replace":1,"moe_layer_freq":1,"num_nextn_predict_layers":1})";
constexpr char kGptOss[] = R"({"model_type":"gpt_oss","hidden_size":64,"intermediate_size":128,
  "num_hidden_layers":2,"num_attention_heads":4,"vocab_size":256,"num_local_experts":4,
  "experts_per_token":2})";
constexpr char kGpt2[] = R"({"model_type":"gpt2","n_embd":64,"n_layer":2,"n_head":4,
  "vocab_size":256,"n_inner":128})";
constexpr char kOpt[] = R"({"model_type":"opt","hidden_size":64,"num_hidden_layers":2,
  "num_attention_heads":4,"vocab_size":256,"ffn_dim":128,"word_embed_proj_dim":32})";
constexpr char kBloom[] = R"({"model_type":"bloom","n_embed":64,"n_layer":2,"n_head":4,
  "vocab_size":256,"seq_length":128})";
constexpr char kMpt[] = R"({"model_type":"mpt","d_model":64,"n_layers":2,"n_heads":4,
  "vocab_size":256,"expansion_ratio":4,"attn_config":{"kv_n_heads":2}})";
constexpr char kFalcon[] = R"({"model_type":"falcon","hidden_size":64,"num_hidden_layers":2,
  "num_attention_heads":4,"vocab_size":256,"new_decoder_architecture":true,"num_kv_heads":2,
  "num_ln_in_parallel_attn":2})";
constexpr char kGemma3[] = R"({"model_type":"gemma3",
  "text_config":{"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,
    "num_attention_heads":4,"vocab_size":256},
  "vision_config":{"hidden_size":32,"intermediate_size":64,"num_hidden_layers":2,
    "patch_size":14,"image_size":56}})";
constexpr char kGptq[] = R"({"model_type":"llama","hidden_size":64,"intermediate_size":128,
  "num_hidden_layers":2,"num_attention_heads":4,"vocab_size":256,
  "quantization_config":{"quant_method":"gptq","bits":4,"group_size":128}})";

std::string Err(const std::string& json) {
  auto r = ParseHfConfig(json, "config.json");
  return r.ok() ? "ok" : r.error().message;
}

// `base` with the key at `path` ("a.b" for a nested object) set to the JSON
// text `value` (parsed, so 1e308 and 99999999999.0 stay floats).
std::string With(const std::string& base, const std::string& path, const std::string& value) {
  Json doc = Json::parse(base);
  Json* at = &doc;
  std::string rest = path;
  for (size_t dot; (dot = rest.find('.')) != std::string::npos; rest = rest.substr(dot + 1)) {
    at = &(*at)[rest.substr(0, dot)];
  }
  (*at)[rest] = Json::parse(value);
  return doc.dump();
}

TEST(ReaderLimitsTest, BaseConfigsAreValid) {
  for (const char* base : {kLlama, kMistral, kGemma3Text, kMixtral, kQwen2Moe, kDeepseek, kGptOss,
                           kGpt2, kOpt, kBloom, kMpt, kFalcon, kGemma3, kGptq}) {
    EXPECT_EQ(Err(base), "ok") << base;
  }
}

// The reported bug: 99999999999 layers sized a std::vector and aborted with
// std::bad_alloc (exit 134). Now one line, exit 1, before any allocation.
TEST(ReaderLimitsTest, HugeLayerCountIsOneErrorNotAnAbort) {
  const std::string cfg = With(kLlama, "num_hidden_layers", "99999999999");
  EXPECT_EQ(Err(cfg), "config.json: num_hidden_layers = 99999999999: must be between 1 and 4096");

  const fs::path dir = fixtures::FreshDir("reader_limits_cli");
  const fs::path path = dir / "config.json";
  std::ofstream(path) << cfg;
  std::ostringstream out, err;
  EXPECT_EQ(cli::Run({"inspect", path.string()}, out, err), 1);
  EXPECT_EQ(err.str(), "vramfit: error: " + path.string() +
                           ": num_hidden_layers = 99999999999: must be between 1 and 4096\n");
  fs::remove_all(dir);
}

// A count that failed to read (here after an earlier error, so it was not
// reported) must not size the layer list: -5 layers aborted with
// std::length_error.
TEST(ReaderLimitsTest, ACountAfterAnEarlierErrorDoesNotSizeTheLayers) {
  EXPECT_EQ(Err(R"({"model_type":"gpt2","n_embd":"x","n_layer":-5,"n_head":4,"vocab_size":10})"),
            "config.json: key 'n_embd': expected an integer, got \"x\"");
  EXPECT_EQ(Err(R"({"model_type":"llama","hidden_size":"4096","num_hidden_layers":-1,
                    "num_attention_heads":4,"vocab_size":10,"intermediate_size":8})"),
            "config.json: key 'hidden_size': expected an integer, got \"4096\"");
}

// A key that failed its range check leaves its default; the error is the
// range, not what the default implies ("required key 'intermediate_size' is
// missing" for an MoE model whose num_experts fell back to 0).
TEST(ReaderLimitsTest, TheRangeErrorWinsOverWhatTheDefaultImplies) {
  std::string cfg = With(kQwen2Moe, "num_experts", "99999999999");
  Json doc = Json::parse(cfg);
  doc.erase("intermediate_size");
  EXPECT_EQ(Err(doc.dump()), "config.json: num_experts = 99999999999: must be between 0 and 65536");
}

TEST(ReaderLimitsTest, EveryIntegerKeyIsRangeChecked) {
  const struct {
    const char* base;
    const char* key;
    const char* value;
    const char* error;
  } cases[] = {
      // Llama core: 64-bit, negative, non-integer, above INT64_MAX.
      {kLlama, "num_hidden_layers", "9223372036854775807",
       "config.json: num_hidden_layers = 9223372036854775807: must be between 1 and 4096"},
      {kLlama, "num_hidden_layers", "4097", "config.json: num_hidden_layers = 4097: must be between 1 and 4096"},
      {kLlama, "num_hidden_layers", "99999999999.0",
       "config.json: num_hidden_layers = 99999999999: must be between 1 and 4096"},
      {kLlama, "num_hidden_layers", "-5", "config.json: key 'num_hidden_layers': expected a positive integer, got -5"},
      {kLlama, "num_hidden_layers", "32.5", "config.json: key 'num_hidden_layers': expected an integer, got 32.5"},
      {kLlama, "num_hidden_layers", "1e308", "config.json: key 'num_hidden_layers': expected an integer, got 1e+308"},
      {kLlama, "num_hidden_layers", "\"32\"", "config.json: key 'num_hidden_layers': expected an integer, got \"32\""},
      {kLlama, "num_hidden_layers", "18446744073709551615",
       "config.json: key 'num_hidden_layers': integer 18446744073709551615 is out of range"},
      {kLlama, "hidden_size", "16777217", "config.json: hidden_size = 16777217: must be between 1 and 16777216"},
      {kLlama, "num_attention_heads", "99999999999",
       "config.json: num_attention_heads = 99999999999: must be between 1 and 16777216"},
      {kLlama, "num_key_value_heads", "0", "config.json: num_key_value_heads = 0: must be between 1 and 16777216"},
      {kLlama, "num_key_value_heads", "-8", "config.json: num_key_value_heads = -8: must be between 1 and 16777216"},
      {kLlama, "vocab_size", "-1", "config.json: key 'vocab_size': expected a positive integer, got -1"},
      {kLlama, "max_position_embeddings", "-1",
       "config.json: max_position_embeddings = -1: must be between 0 and 1073741824"},
      {kLlama, "max_position_embeddings", "1073741825",
       "config.json: max_position_embeddings = 1073741825: must be between 0 and 1073741824"},
      {kLlama, "head_dim", "-1", "config.json: head_dim = -1: must be between 0 and 16777216"},
      {kLlama, "intermediate_size", "99999999999",
       "config.json: intermediate_size = 99999999999: must be between 1 and 16777216"},
      {kLlama, "intermediate_size", "-1", "config.json: key 'intermediate_size': expected a positive integer, got -1"},
      // Sliding windows and layer patterns.
      {kMistral, "sliding_window", "-1", "config.json: sliding_window = -1: must be between 0 and 1073741824"},
      {kMistral, "sliding_window", "99999999999",
       "config.json: sliding_window = 99999999999: must be between 0 and 1073741824"},
      {kGemma3Text, "sliding_window_pattern", "0",
       "config.json: sliding_window_pattern = 0: must be between 1 and 4096"},
      // Experts.
      {kMixtral, "num_local_experts", "65537", "config.json: num_local_experts = 65537: must be between 1 and 65536"},
      {kMixtral, "num_experts_per_tok", "-1", "config.json: num_experts_per_tok = -1: must be between 0 and 65536"},
      {kQwen2Moe, "num_experts", "-4", "config.json: num_experts = -4: must be between 0 and 65536"},
      {kQwen2Moe, "moe_intermediate_size", "-1",
       "config.json: moe_intermediate_size = -1: must be between 0 and 16777216"},
      {kQwen2Moe, "shared_expert_intermediate_size", "99999999999",
       "config.json: shared_expert_intermediate_size = 99999999999: must be between 0 and 16777216"},
      {kQwen2Moe, "decoder_sparse_step", "0", "config.json: decoder_sparse_step = 0: must be between 1 and 4096"},
      {kGptOss, "experts_per_token", "99999999999",
       "config.json: experts_per_token = 99999999999: must be between 0 and 65536"},
      // MLA and DeepSeek layer pattern.
      {kDeepseek, "kv_lora_rank", "99999999999", "config.json: kv_lora_rank = 99999999999: must be between 1 and 16777216"},
      {kDeepseek, "q_lora_rank", "-1", "config.json: q_lora_rank = -1: must be between 0 and 16777216"},
      {kDeepseek, "qk_nope_head_dim", "9223372036854775807",
       "config.json: qk_nope_head_dim = 9223372036854775807: must be between 1 and 16777216"},
      {kDeepseek, "qk_rope_head_dim", "16777217",
       "config.json: qk_rope_head_dim = 16777217: must be between 1 and 16777216"},
      {kDeepseek, "v_head_dim", "99999999999", "config.json: v_head_dim = 99999999999: must be between 1 and 16777216"},
      {kDeepseek, "n_routed_experts", "99999999999",
       "config.json: n_routed_experts = 99999999999: must be between 0 and 65536"},
      {kDeepseek, "n_shared_experts", "99999999999",
       "config.json: n_shared_experts = 99999999999: must be between 0 and 65536"},
      {kDeepseek, "first_k_dense_replace", "-1", "config.json: first_k_dense_replace = -1: must be between 0 and 4096"},
      {kDeepseek, "moe_layer_freq", "0", "config.json: moe_layer_freq = 0: must be between 1 and 4096"},
      {kDeepseek, "num_nextn_predict_layers", "99999999999",
       "config.json: num_nextn_predict_layers = 99999999999: must be between 0 and 4096"},
      // Families with their own key names: the error names the key read.
      {kGpt2, "n_layer", "99999999999", "config.json: n_layer = 99999999999: must be between 1 and 4096"},
      {kGpt2, "n_embd", "16777217", "config.json: n_embd = 16777217: must be between 1 and 16777216"},
      {kGpt2, "n_inner", "0", "config.json: n_inner = 0: must be between 1 and 16777216"},
      {kGpt2, "n_positions", "-1", "config.json: n_positions = -1: must be between 0 and 1073741824"},
      {kOpt, "ffn_dim", "99999999999", "config.json: ffn_dim = 99999999999: must be between 1 and 16777216"},
      {kOpt, "word_embed_proj_dim", "-1", "config.json: word_embed_proj_dim = -1: must be between 1 and 16777216"},
      {kBloom, "seq_length", "99999999999", "config.json: seq_length = 99999999999: must be between 0 and 1073741824"},
      {kMpt, "n_layers", "99999999999", "config.json: n_layers = 99999999999: must be between 1 and 4096"},
      {kMpt, "expansion_ratio", "99999999999",
       "config.json: expansion_ratio = 99999999999: must be between 1 and 16777216"},
      {kMpt, "attn_config.kv_n_heads", "0",
       "config.json: attn_config: kv_n_heads = 0: must be between 1 and 16777216"},
      {kFalcon, "num_kv_heads", "-1", "config.json: num_kv_heads = -1: must be between 1 and 16777216"},
      {kFalcon, "num_ln_in_parallel_attn", "99", "config.json: num_ln_in_parallel_attn = 99: must be between 1 and 64"},
      // Nested objects name themselves.
      {kGemma3, "text_config.num_hidden_layers", "99999999999",
       "config.json: text_config: num_hidden_layers = 99999999999: must be between 1 and 4096"},
      {kGptq, "quantization_config.bits", "99",
       "config.json: quantization_config: bits = 99: must be between 1 and 32"},
      {kGptq, "quantization_config.group_size", "-2",
       "config.json: quantization_config: group_size = -2: must be between -1 and 16777216"},
      {kGptq, "quantization_config.bits", "\"4\"",
       "config.json: quantization_config: key 'bits': expected an integer, got \"4\""},
      // vision_config: every key, and no silent skip of a bad value.
      {kGemma3, "vision_config.hidden_size", "99999999999",
       "config.json: vision_config: hidden_size = 99999999999: must be between 1 and 16777216"},
      {kGemma3, "vision_config.intermediate_size", "0",
       "config.json: vision_config: intermediate_size = 0: must be between 1 and 16777216"},
      {kGemma3, "vision_config.num_hidden_layers", "99999999999",
       "config.json: vision_config: num_hidden_layers = 99999999999: must be between 1 and 4096"},
      {kGemma3, "vision_config.image_size", "-1",
       "config.json: vision_config: image_size = -1: must be between 1 and 65536"},
      {kGemma3, "vision_config.patch_size", "0",
       "config.json: vision_config: patch_size = 0: must be between 1 and 65536"},
      {kGemma3, "vision_config.num_channels", "2.5",
       "config.json: vision_config: key 'num_channels': expected an integer, got 2.5"},
      {kGemma3, "vision_config.num_channels", "1025",
       "config.json: vision_config: num_channels = 1025: must be between 1 and 1024"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(Err(With(c.base, c.key, c.value)), c.error) << c.key << " = " << c.value;
  }
}

// Values inside every cap whose vision-tower product passes 2^63: one error,
// never a wrapped count (the count came out as 37.4 K parameters before).
TEST(ReaderLimitsTest, HugeVisionConfigOverflowIsOneError) {
  const std::string cfg = With(kGemma3, "vision_config",
                               R"({"hidden_size":16777216,"patch_size":65536,"image_size":65536,
                                   "num_channels":1024})");
  EXPECT_EQ(Err(cfg), "config.json: vision_config: the vision tower's parameter count overflows 64 bits");
}

// A large tower that fits is counted exactly: the formula of estimation.md
// §2.4 evaluated in 128 bits here.
TEST(ReaderLimitsTest, LargeVisionConfigIsCountedExactly) {
  const int64_t h = 1 << 20, inter = 1 << 22, layers = 4096, patch = 14, image = 896, channels = 3;
  const int64_t text_hidden = 64;  // kGemma3's text_config
  const std::string cfg = With(kGemma3, "vision_config",
                               Json{{"hidden_size", h}, {"intermediate_size", inter},
                                    {"num_hidden_layers", layers}, {"patch_size", patch},
                                    {"image_size", image}, {"num_channels", channels}}
                                   .dump());
  auto r = ParseHfConfig(cfg, "config.json");
  ASSERT_TRUE(r.ok()) << r.error().message;
  using I = __int128;
  const I side = image / patch;
  const I expect = I{channels} * patch * patch * h + h + side * side * h +
                   I{layers} * (4 * (I{h} * h + h) + 2 * I{inter} * h + inter + h + 4 * h) + 2 * h +
                   I{h} * text_hidden + h;
  ASSERT_LT(expect, I{INT64_MAX});
  EXPECT_EQ(r->vision_params, static_cast<int64_t>(expect));
}

// ---------------------------------------------------------------------------
// GGUF: the same caps, through ValidateSpec, and no unchecked arithmetic on
// metadata or dimensions.

std::string Whole(const GgufBuilder& b) {
  return b.Header() + std::string(static_cast<size_t>(b.DataBytes()), '\0');
}

std::string LoadError(const std::string& bytes) {
  auto file = NewMemoryReader("t.gguf", bytes);
  auto open = [](const std::string& name) -> Result<std::unique_ptr<FileReader>> {
    return NotFound(name + ": not here");
  };
  auto m = LoadGgufModel(*file, "t.gguf", open, "t.gguf", nullptr);
  return m.ok() ? "ok" : m.error().message;
}

GgufBuilder TinyLlama() {
  GgufBuilder b;
  b.Str("general.architecture", "llama").U32("llama.block_count", 1).U32("llama.embedding_length", 64)
      .U32("llama.attention.head_count", 4).U32("llama.feed_forward_length", 128);
  return b;
}

TEST(ReaderLimitsTest, GgufValuesGoThroughTheSameCaps) {
  GgufBuilder ok = TinyLlama();
  ok.Tensor("token_embd.weight", {64, 32}, kF16);
  EXPECT_EQ(LoadError(Whole(ok)), "ok");

  GgufBuilder v = TinyLlama();
  v.U64("llama.attention.value_length", uint64_t{1} << 40).Tensor("token_embd.weight", {64, 32}, kF16);
  EXPECT_EQ(LoadError(Whole(v)), "t.gguf: v_head_dim = 1099511627776: must be between 0 and 16777216");

  GgufBuilder pos = TinyLlama();
  pos.Tensor("token_embd.weight", {64, 32}, kF16).Tensor("position_embd.weight", {0, int64_t{1} << 40}, kF16);
  EXPECT_EQ(LoadError(Whole(pos)),
            "t.gguf: learned_positions = 1099511627776: must be between 0 and 1073741826");

  GgufBuilder shared;
  shared.Str("general.architecture", "qwen2moe").U32("qwen2moe.block_count", 1)
      .U32("qwen2moe.embedding_length", 64).U32("qwen2moe.attention.head_count", 4)
      .U32("qwen2moe.expert_count", 4).U32("qwen2moe.expert_used_count", 2);
  shared.Tensor("token_embd.weight", {64, 32}, kF16).Tensor("blk.0.ffn_gate_inp.weight", {64, 4}, kF16)
      .Tensor("blk.0.ffn_up_exps.weight", {64, 32, 4}, kF16)
      .Tensor("blk.0.ffn_up_shexp.weight", {0, int64_t{1} << 40}, kF16);
  EXPECT_EQ(LoadError(Whole(shared)),
            "t.gguf: shared_expert_intermediate_size = 1099511627776: must be between 0 and 16777216");
}

// A non-positive rope dimension is refused before qk_nope = key - rope is
// formed (that difference overflowed for a rope near INT64_MIN).
TEST(ReaderLimitsTest, GgufMlaRopeMustBePositive) {
  GgufBuilder b;
  b.Str("general.architecture", "deepseek2").U32("deepseek2.block_count", 1).U32("deepseek2.embedding_length", 64)
      .U32("deepseek2.attention.head_count", 4).U32("deepseek2.attention.kv_lora_rank", 32)
      .I32("deepseek2.rope.dimension_count", -5).U32("deepseek2.attention.key_length", 24)
      .U32("deepseek2.attention.value_length", 16);
  b.Tensor("token_embd.weight", {64, 32}, kF16).Tensor("blk.0.attn_kv_a_mqa.weight", {64, 40}, kF16);
  EXPECT_EQ(LoadError(Whole(b)), "t.gguf: MLA key length 24 and value length 16 do not fit rope dimension -5");
}

// A zero dimension makes a tensor empty; the other dimensions may then
// multiply past 64 bits, and the row count must not be formed from them.
TEST(ReaderLimitsTest, GgufZeroDimensionWithHugeOthersIsEmpty) {
  std::string s = "GGUF";
  Le32(s, 3);
  Le64(s, 1);  // one tensor
  Le64(s, 0);  // no metadata
  GStr(s, "w");
  Le32(s, 3);
  Le64(s, 0);
  Le64(s, uint64_t{1} << 40);
  Le64(s, uint64_t{1} << 40);
  Le32(s, 0);  // f32
  Le64(s, 0);
  s.resize((s.size() + 31) / 32 * 32, '\0');
  auto file = NewMemoryReader("t.gguf", s);
  auto g = ReadGguf(*file);
  ASSERT_TRUE(g.ok()) << g.error().message;
  ASSERT_EQ(g->tensors.size(), 1u);
  EXPECT_EQ(g->tensors[0].bytes, 0);
}

// ---------------------------------------------------------------------------
// Hub cache: a cached header's size field of 19 digits overflowed int64
// while it was parsed; it is now an unreadable entry (a cache miss).

TEST(ReaderLimitsTest, HubCachedHeaderSizeOf19DigitsIsACacheMiss) {
  constexpr char kCommit[] = "0123456789abcdef0123456789abcdef01234567";
  const fs::path cache = fixtures::FreshDir("reader_limits_hub");
  const fs::path entry = cache / "models--org--name" / "snapshots" / kCommit / "m.gguf.vramfit-header";
  fs::create_directories(entry.parent_path());
  GgufBuilder b = TinyLlama();
  b.Tensor("token_embd.weight", {64, 32}, kF16);
  const std::string gguf = Whole(b);
  HubOptions o;
  o.cache_dir = cache.string();
  o.offline = true;
  const std::string ref = std::string("hf:org/name@") + kCommit + "/m.gguf";

  std::ofstream(entry, std::ios::binary) << "vramfit-header 1\n" << gguf.size() << "\n" << gguf;
  auto good = LoadHubModel(ref, o, nullptr);
  EXPECT_TRUE(good.ok()) << good.error().message;  // the entry is found and read

  std::ofstream(entry, std::ios::binary | std::ios::trunc) << "vramfit-header 1\n9999999999999999999\n" << gguf;
  auto bad = LoadHubModel(ref, o, nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind, ErrorKind::kNotFound);
  EXPECT_NE(bad.error().message.find("m.gguf is not in the cache and HF_HUB_OFFLINE=1 is set"), std::string::npos)
      << bad.error().message;
  fs::remove_all(cache);
}

}  // namespace
}  // namespace vramfit
