// safetensors headers and model directories: exact tensor tables, roles,
// weights equal to the sum of the tensors' bytes, and every corrupt-header
// error pinned. Byte layout: huggingface/safetensors README "Format" (8-byte
// little-endian header length N, N bytes of JSON, data); docs/formats.md §4.
#include <filesystem>

#include <gtest/gtest.h>

#include "data/fixtures.h"
#include "test_util.h"
#include "vramfit/io/file_reader.h"
#include "vramfit/io/safetensors.h"
#include "vramfit/io/source.h"
#include "vramfit/render.h"

namespace vramfit {
namespace {

namespace fs = std::filesystem;
using fixtures::BuildSafetensors;
using fixtures::RawSafetensors;
using fixtures::StTensor;

std::string HeaderError(const std::string& bytes, int64_t declared = -1) {
  auto r = NewMemoryReader("t.safetensors", bytes, declared);
  auto h = ReadSafetensorsHeader(*r);
  return h.ok() ? "ok" : h.error().message;
}

TEST(SafetensorsTest, ReadsTheHeaderAndOnlyTheHeader) {
  const auto f = BuildSafetensors({{"a", "BF16", {4, 8}, 2}, {"b", "F32", {3}, 4}, {"c", "F8_E4M3", {16, 16}, 1}},
                                  {{"format", "pt"}});
  auto r = NewMemoryReader("t.safetensors", f.header, f.size());
  auto h = ReadSafetensorsHeader(*r);
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_EQ(h->data_start, static_cast<int64_t>(f.header.size()));
  ASSERT_EQ(h->tensors.size(), 3u);
  // a: 4x8 bf16 = 64 B at [0, 64); b: 3 fp32 = 12 B; c: 256 fp8 = 256 B.
  EXPECT_EQ(h->tensors[0].name, "a");
  EXPECT_EQ(h->tensors[0].end - h->tensors[0].begin, 64);
  EXPECT_EQ(h->tensors[1].dtype, DType::kF32);
  EXPECT_EQ(h->tensors[1].begin, 64);
  EXPECT_EQ(h->tensors[1].end, 76);
  EXPECT_EQ(h->tensors[2].dtype, DType::kF8E4M3);
  EXPECT_EQ(h->tensors[2].end - h->tensors[2].begin, 256);
  ASSERT_EQ(h->metadata.size(), 1u);
  EXPECT_EQ(h->metadata[0].second, "pt");
  // Exactly the 8 length bytes and the N header bytes were read.
  EXPECT_EQ(r->bytes_read(), static_cast<int64_t>(f.header.size()));
}

TEST(SafetensorsTest, CorruptHeadersGiveOneExactError) {
  const std::string ok_json = R"({"w":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]}})";
  std::string long_len;
  fixtures::Le64(long_len, 900);
  long_len += "{}";
  std::string huge_len;
  fixtures::Le64(huge_len, uint64_t{1} << 40);
  std::string tiny_len;
  fixtures::Le64(tiny_len, 1);
  tiny_len += "{";
  std::string deep = "{\"a\":" + std::string(70, '[') + std::string(70, ']') + "}";
  const struct {
    std::string bytes;
    int64_t declared;
    std::string error;
  } cases[] = {
      {"abc", -1, "t.safetensors: truncated: the 8-byte header length needs 8 bytes at offset 0, the file has 3"},
      {long_len, -1, "t.safetensors: header length 900 at offset 0 runs past the end of the file (10 bytes)"},
      {huge_len, int64_t{1} << 41,
       "t.safetensors: header length 1099511627776 at offset 0 exceeds the limit of 67108864 bytes"},
      {tiny_len, -1, "t.safetensors: header length 1 at offset 0 is too small for a JSON object"},
      {RawSafetensors("[1,2]"), -1, "t.safetensors: header: expected a JSON object"},
      {RawSafetensors("{\"w\": 1}"), -1,
       "t.safetensors: header: tensor 'w': expected an object with dtype, shape and data_offsets"},
      {RawSafetensors(R"({"w":{"shape":[1],"data_offsets":[0,2]}})"), -1,
       "t.safetensors: header: tensor 'w': 'dtype' is missing or not a string"},
      {RawSafetensors(R"({"w":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}})"), -1,
       "t.safetensors: header: tensor 'w': unknown dtype 'F4'"},
      {RawSafetensors(R"({"w":{"dtype":"BF16","shape":2,"data_offsets":[0,4]}})"), -1,
       "t.safetensors: header: tensor 'w': 'shape' is missing or not a list"},
      {RawSafetensors(R"({"w":{"dtype":"BF16","shape":[2,-1],"data_offsets":[0,4]}})"), -1,
       "t.safetensors: header: tensor 'w': shape entry -1 is not a non-negative integer"},
      {RawSafetensors(R"({"w":{"dtype":"BF16","shape":[4611686018427387904,4],"data_offsets":[0,4]}})"), -1,
       "t.safetensors: header: tensor 'w': shape [4611686018427387904, 4] overflows 64 bits"},
      {RawSafetensors(R"({"w":{"dtype":"BF16","shape":[4611686018427387904],"data_offsets":[0,4]}})"), -1,
       "t.safetensors: header: tensor 'w': shape [4611686018427387904] overflows 64 bits"},
      {RawSafetensors(R"({"w":{"dtype":"BF16","shape":[2],"data_offsets":[0]}})"), -1,
       "t.safetensors: header: tensor 'w': 'data_offsets' must be a list [begin, end]"},
      {RawSafetensors(R"({"w":{"dtype":"BF16","shape":[2],"data_offsets":[8,4]}})"), -1,
       "t.safetensors: header: tensor 'w': data_offsets [8,4] must be two integers with 0 <= begin <= end"},
      {RawSafetensors(R"({"w":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,6]}})"), 1000,
       "t.safetensors: header: tensor 'w': data_offsets [0, 6] hold 6 bytes, but shape [2, 2] of BF16 needs 8"},
      // Header only, no data: the tensor's 8 bytes are past the end.
      {RawSafetensors(ok_json), -1,
       "t.safetensors: header: tensor 'w': data_offsets [0, 8] run past the end of the file (0 bytes of data)"},
      {RawSafetensors(R"({"__metadata__": [1]})"), -1,
       "t.safetensors: header: '__metadata__' must be an object of strings"},
      {RawSafetensors(deep), -1, "t.safetensors: header: JSON nested deeper than 64 levels at byte 68"},
      {RawSafetensors("{\"w\": "), -1,
       "t.safetensors: header: malformed JSON at byte 7: parse error at line 1, column 7: syntax error while "
       "parsing value - unexpected end of input; expected '[', '{', or a literal"},
  };
  for (const auto& c : cases) EXPECT_EQ(HeaderError(c.bytes, c.declared), c.error);
}

// Hugging Face tensor names -> (role, layer), per the modeling code of each
// family (modeling_llama.py, modeling_mixtral.py, modeling_qwen2_moe.py,
// modeling_deepseek_v3.py, modeling_gpt_oss.py, modeling_gpt2.py,
// modeling_falcon.py, modeling_gpt_neox.py, modeling_opt.py,
// modeling_gemma3.py); bnb/GPTQ/FP8 suffixes from their serialized forms.
TEST(SafetensorsTest, PlacesHuggingFaceTensorNames) {
  const struct {
    const char* name;
    Role role;
    int64_t layer;
  } cases[] = {
      {"model.embed_tokens.weight", Role::kEmbed, -1},
      {"lm_head.weight", Role::kLmHead, -1},
      {"model.norm.weight", Role::kNorm, -1},
      {"model.layers.3.self_attn.q_proj.weight", Role::kAttention, 3},
      {"model.layers.3.self_attn.q_norm.weight", Role::kAttention, 3},
      {"model.layers.3.input_layernorm.weight", Role::kNorm, 3},
      {"model.layers.3.post_attention_layernorm.weight", Role::kNorm, 3},
      {"model.layers.12.mlp.down_proj.weight", Role::kMlp, 12},
      {"model.layers.0.block_sparse_moe.gate.weight", Role::kRouter, 0},
      {"model.layers.0.block_sparse_moe.experts.7.w2.weight", Role::kExperts, 0},
      {"model.layers.5.mlp.shared_expert.up_proj.weight", Role::kSharedExperts, 5},
      {"model.layers.5.mlp.shared_expert_gate.weight", Role::kSharedExperts, 5},
      {"model.layers.4.mlp.gate.e_score_correction_bias", Role::kRouter, 4},
      {"model.layers.4.mlp.experts.255.gate_proj.weight_scale_inv", Role::kExperts, 4},
      {"model.layers.60.self_attn.kv_a_proj_with_mqa.weight", Role::kAttention, 60},
      {"model.layers.61.eh_proj.weight", Role::kMtp, 61},  // DeepSeek-V3 MTP, 61 layers
      {"model.layers.1.mlp.experts.gate_up_proj_blocks", Role::kExperts, 1},
      {"model.layers.1.mlp.experts.gate_up_proj_scales", Role::kExperts, 1},
      {"model.layers.1.mlp.router.bias", Role::kRouter, 1},
      {"model.layers.1.self_attn.sinks", Role::kAttention, 1},
      {"model.layers.2.self_attn.q_proj.qweight", Role::kAttention, 2},
      {"model.layers.2.mlp.up_proj.qzeros", Role::kMlp, 2},
      {"model.layers.2.self_attn.o_proj.weight.absmax", Role::kAttention, 2},
      {"model.layers.2.self_attn.o_proj.weight.quant_state.bitsandbytes__nf4", Role::kAttention, 2},
      {"transformer.wte.weight", Role::kEmbed, -1},
      {"transformer.wpe.weight", Role::kPosEmbed, -1},
      {"transformer.h.11.attn.c_attn.weight", Role::kAttention, 11},
      {"transformer.h.11.ln_2.bias", Role::kNorm, 11},
      {"transformer.h.11.mlp.c_fc.weight", Role::kMlp, 11},
      {"transformer.ln_f.weight", Role::kNorm, -1},
      {"transformer.h.2.self_attention.query_key_value.weight", Role::kAttention, 2},
      {"transformer.word_embeddings_layernorm.weight", Role::kNorm, -1},
      {"gpt_neox.embed_in.weight", Role::kEmbed, -1},
      {"embed_out.weight", Role::kLmHead, -1},
      {"gpt_neox.layers.7.attention.query_key_value.bias", Role::kAttention, 7},
      {"model.decoder.embed_positions.weight", Role::kPosEmbed, -1},
      {"model.decoder.layers.0.fc1.weight", Role::kMlp, 0},
      {"model.decoder.project_in.weight", Role::kEmbed, -1},
      {"vision_tower.vision_model.encoder.layers.3.mlp.fc1.weight", Role::kVision, -1},
      {"multi_modal_projector.mm_input_projection_weight", Role::kVision, -1},
      {"language_model.model.layers.9.mlp.gate_proj.weight", Role::kMlp, 9},
      {"mtp.layers.0.mlp.experts.1.up_proj.weight", Role::kMtp, 61},
      // Recurrent mixers (hybrid_test.cc): Nemotron-H names every block "mixer".
      {"backbone.layers.0.mixer.in_proj.weight", Role::kMixer, 0},
      {"backbone.layers.0.mixer.A_log", Role::kMixer, 0},
      {"backbone.layers.0.mixer.norm.weight", Role::kMixer, 0},
      {"backbone.layers.7.mixer.q_proj.weight", Role::kAttention, 7},
      {"backbone.layers.1.mixer.up_proj.weight", Role::kMlp, 1},
      {"backbone.layers.1.norm.weight", Role::kNorm, 1},
      {"model.layers.0.linear_attn.in_proj_qkvz.weight", Role::kMixer, 0},
      {"model.layers.0.linear_attn.norm.weight", Role::kMixer, 0},
      {"model.layers.4.mamba.conv1d.bias", Role::kMixer, 4},
      {"model.layers.0.conv.in_proj.weight", Role::kMixer, 0},
      {"deberta.encoder.conv.conv.weight", Role::kMlp, -1},
  };
  for (const auto& c : cases) {
    const TensorPlace p = PlaceHfTensor(c.name, 61);
    EXPECT_EQ(RoleName(p.role), std::string(RoleName(c.role))) << c.name;
    EXPECT_EQ(p.layer, c.layer) << c.name;
  }
}

TEST(SafetensorsTest, IndexErrors) {
  const auto err = [](const std::string& json) {
    auto r = ParseSafetensorsIndex(json, "model.safetensors.index.json");
    return r.ok() ? "ok" : r.error().message;
  };
  EXPECT_EQ(err(R"({"metadata": {}})"), "model.safetensors.index.json: 'weight_map' is missing or not an object");
  EXPECT_EQ(err(R"({"weight_map": {}})"), "model.safetensors.index.json: 'weight_map' names no tensors");
  EXPECT_EQ(err(R"({"weight_map": {"w": 3}})"),
            "model.safetensors.index.json: weight_map: tensor 'w': expected a file name, got 3");
  EXPECT_EQ(err(R"({"weight_map": {"w": "../../etc/passwd"}})"),
            "model.safetensors.index.json: weight_map: shard name '../../etc/passwd' is not a file in the checkpoint");
  EXPECT_EQ(err(R"({"weight_map": {"w": "/abs.safetensors"}})"),
            "model.safetensors.index.json: weight_map: shard name '/abs.safetensors' is not a file in the checkpoint");
  auto ok = ParseSafetensorsIndex(
      R"({"weight_map": {"b": "model-00002-of-00002.safetensors", "a": "model-00001-of-00002.safetensors",
                         "c": "model-00001-of-00002.safetensors"}})",
      "i");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->shards, (std::vector<std::string>{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}));
  EXPECT_EQ(ok->weight_map.size(), 3u);
}

constexpr const char* kTinyConfig = fixtures::kTinyLlamaConfig;
std::vector<StTensor> TinyLayer(int i) { return fixtures::TinyLlamaLayer(i); }

// The tiny Llama of data/fixtures.h (106816 params, 213632 B in bf16) as a
// directory: config.json, two shards (sparse: headers only), the index.
fs::path TinyModelDir(const std::string& name) {
  const fs::path dir = fixtures::FreshDir(name);
  std::ofstream(dir / "config.json") << kTinyConfig;
  const auto shards = fixtures::TinyLlamaShards();
  for (const auto& sh : shards) fixtures::WriteSparse(dir / sh.file, sh.st.header, sh.st.size());
  std::ofstream(dir / "model.safetensors.index.json") << fixtures::IndexJson(shards);
  return dir;
}

TEST(SafetensorsTest, ModelDirectoryWeightsAreTheSumOfItsTensors) {
  const fs::path dir = TinyModelDir("st_tiny");
  std::vector<std::string> notes;
  auto m = LoadModel(dir.string(), ModelCatalog::Builtin(), &notes);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->file_format, "safetensors");
  EXPECT_EQ(m->file_tensors.size(), 21u);
  EXPECT_EQ(m->inventory.params, 106816);
  int64_t sum = 0;
  for (const FileTensor& t : m->file_tensors) sum += t.bytes;
  EXPECT_EQ(sum, 213632);
  EXPECT_EQ(notes, (std::vector<std::string>{"read 2 safetensors headers: 21 tensors, 213632 bytes of weights"}));
  // The hf estimate takes its weights from these tensors, to the byte.
  InferenceSettings s;
  s.ctx = 16;
  const Estimate e = testing::EstimateOrDie(*m, s);
  EXPECT_EQ(e.weight_bytes.value(), 213632);
  EXPECT_EQ(testing::ComponentBytes(e.devices[0], "weights"), 213632);
  // inspect: the per-dtype / per-role table, weights = the sum.
  const std::string text = RenderInspectText(Inspect(*m, notes), Units::kGiB);
  EXPECT_NE(text.find("file tensors (safetensors): 21 tensors, 106816 elements, weights 213632 bytes"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("bf16                    21          106816            213632"), std::string::npos) << text;
  EXPECT_NE(text.find("attention                8           24576             49152"), std::string::npos) << text;
  auto j = nlohmann::json::parse(RenderInspectJson(Inspect(*m, notes)));
  EXPECT_EQ(j["model"]["weight_bytes"], 213632);
  EXPECT_EQ(j["file"]["weight_bytes"], 213632);
  EXPECT_EQ(j["file"]["tensor_count"], 21);
  int64_t json_sum = 0;
  for (const auto& t : j["file"]["tensors"]) json_sum += t["bytes"].get<int64_t>();
  EXPECT_EQ(json_sum, 213632);
  fs::remove_all(dir);
}

TEST(SafetensorsTest, DirectoryErrorsNameTheFile) {
  const fs::path dir = TinyModelDir("st_errors");
  // A shard cut short (a partial download): its tensors run past the end.
  const auto f = BuildSafetensors(TinyLayer(1));
  fixtures::WriteSparse(dir / "model-00002-of-00002.safetensors", f.header, f.size() - 1);
  auto m = LoadModel(dir.string(), ModelCatalog::Builtin(), nullptr);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().message,
            (dir / "model-00002-of-00002.safetensors").string() +
                ": header: tensor 'model.layers.1.post_attention_layernorm.weight': data_offsets [73856, 73984] "
                "run past the end of the file (73983 bytes of data)");
  // The index names a tensor its shard lacks.
  fixtures::WriteSparse(dir / "model-00002-of-00002.safetensors", f.header, f.size());
  m = LoadModel(dir.string(), ModelCatalog::Builtin(), nullptr);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().message, (dir / "model.safetensors.index.json").string() +
                                   ": weight_map: tensor 'lm_head.weight' is not in model-00002-of-00002.safetensors");
  // A missing shard.
  fs::remove(dir / "model-00002-of-00002.safetensors");
  m = LoadModel(dir.string(), ModelCatalog::Builtin(), nullptr);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().message,
            (dir / "model-00002-of-00002.safetensors").string() + ": cannot read: No such file or directory");
  fs::remove_all(dir);
}

// Quantized checkpoints: every packed tensor, scale and zero-point is a
// tensor of its own, so the sum is exact whatever the mix of dtypes.
TEST(SafetensorsTest, QuantizedCheckpointsAreExactForAnyMixOfDtypes) {
  const fs::path dir = fixtures::FreshDir("st_quant");
  std::ofstream(dir / "config.json") << R"({"model_type":"llama","hidden_size":256,"intermediate_size":512,
    "num_attention_heads":2,"num_key_value_heads":2,"num_hidden_layers":1,"vocab_size":256,
    "torch_dtype":"bfloat16","tie_word_embeddings":true,
    "quantization_config":{"quant_method":"fp8","weight_block_size":[128,128]}})";
  const std::string p = "model.layers.0.";
  // FP8 block-scaled projections (DeepSeek-V3 layout: weight F8_E4M3 +
  // weight_scale_inv F32 [ceil(out/128), ceil(in/128)]), MXFP4 experts
  // (gpt-oss: _blocks U8 [E, out, in/32, 16] + _scales U8 [E, out, in/32]),
  // a GPTQ projection (qweight I32 [in/8, out], qzeros I32 [in/128, out/8],
  // scales F16 [in/128, out], g_idx I32 [in]) and a bnb-nf4 one (U8 [n/2, 1]
  // + absmax F32 [n/64] + quant_map F32 [16] + quant_state U8).
  const std::vector<StTensor> ts = {
      {"model.embed_tokens.weight", "BF16", {256, 256}, 2},
      {p + "self_attn.q_proj.weight", "F8_E4M3", {256, 256}, 1},
      {p + "self_attn.q_proj.weight_scale_inv", "F32", {2, 2}, 4},
      {p + "mlp.experts.gate_up_proj_blocks", "U8", {4, 1024, 8, 16}, 1},
      {p + "mlp.experts.gate_up_proj_scales", "U8", {4, 1024, 8}, 1},
      {p + "mlp.down_proj.qweight", "I32", {64, 256}, 4},
      {p + "mlp.down_proj.qzeros", "I32", {4, 32}, 4},
      {p + "mlp.down_proj.scales", "F16", {4, 256}, 2},
      {p + "mlp.down_proj.g_idx", "I32", {512}, 4},
      {p + "self_attn.o_proj.weight", "U8", {32768, 1}, 1},
      {p + "self_attn.o_proj.weight.absmax", "F32", {1024}, 4},
      {p + "self_attn.o_proj.weight.quant_map", "F32", {16}, 4},
      {p + "self_attn.o_proj.weight.quant_state.bitsandbytes__nf4", "U8", {107}, 1},
      {p + "input_layernorm.weight", "F32", {256}, 4},
  };
  const auto f = BuildSafetensors(ts);
  fixtures::WriteSparse(dir / "model.safetensors", f.header, f.size());
  auto m = LoadModel(dir.string(), ModelCatalog::Builtin(), nullptr);
  ASSERT_TRUE(m.ok()) << m.error().message;
  int64_t by_role[11] = {};
  for (const FileTensor& t : m->file_tensors) by_role[static_cast<int>(t.role)] += t.bytes;
  // embed 131072; attention 65536 + 16 + 32768 + 4096 + 64 + 107 = 102587;
  // experts 524288 + 32768 = 557056; mlp 65536 + 512 + 2048 + 2048 = 70144;
  // norm 1024 (F32).
  EXPECT_EQ(by_role[static_cast<int>(Role::kEmbed)], 131072);
  EXPECT_EQ(by_role[static_cast<int>(Role::kAttention)], 102587);
  EXPECT_EQ(by_role[static_cast<int>(Role::kExperts)], 557056);
  EXPECT_EQ(by_role[static_cast<int>(Role::kMlp)], 70144);
  EXPECT_EQ(by_role[static_cast<int>(Role::kNorm)], 1024);
  EXPECT_EQ(f.data_bytes, 131072 + 102587 + 557056 + 70144 + 1024);
  // Loaded in bf16, float weights take bf16 (the F32 norm halves: 512 B),
  // while the scale, absmax and quant_map tensors keep their stored F32.
  InferenceSettings s;
  s.ctx = 16;
  const Estimate e = testing::EstimateOrDie(*m, s);
  EXPECT_EQ(e.weight_bytes.value(), f.data_bytes - 512);
  EXPECT_EQ(testing::ComponentBytes(e.devices[0], "weights"), f.data_bytes - 512);
  fs::remove_all(dir);
}

TEST(SafetensorsTest, ShardDiscoveryWithoutAnIndex) {
  const fs::path dir = fixtures::FreshDir("st_glob");
  std::ofstream(dir / "config.json") << kTinyConfig;
  std::vector<StTensor> a = TinyLayer(0), b = TinyLayer(1);
  a.push_back({"model.embed_tokens.weight", "BF16", {256, 64}, 2});
  b.push_back({"model.norm.weight", "BF16", {64}, 2});
  b.push_back({"lm_head.weight", "BF16", {256, 64}, 2});
  const auto fa = BuildSafetensors(a), fb = BuildSafetensors(b);
  fixtures::WriteSparse(dir / "part-a.safetensors", fa.header, fa.size());
  fixtures::WriteSparse(dir / "part-b.safetensors", fb.header, fb.size());
  // An adapter next to the model is not part of it.
  const auto fc = BuildSafetensors({{"base_model.model.lora_A.weight", "BF16", {4, 64}, 2}});
  fixtures::WriteSparse(dir / "adapter_model.safetensors", fc.header, fc.size());
  auto m = LoadModel(dir.string(), ModelCatalog::Builtin(), nullptr);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->file_tensors.size(), 21u);
  // The same tensor in two shards is an error.
  fixtures::WriteSparse(dir / "part-c.safetensors", fb.header, fb.size());
  m = LoadModel(dir.string(), ModelCatalog::Builtin(), nullptr);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().message, (dir / "part-c.safetensors").string() +
                                   ": tensor 'lm_head.weight' is also stored in part-b.safetensors");
  fs::remove_all(dir);
}

TEST(SafetensorsTest, ConfigOnlyDirectoriesAndLoneShards) {
  const fs::path dir = fixtures::FreshDir("st_config_only");
  std::ofstream(dir / "config.json") << kTinyConfig;
  std::vector<std::string> notes;
  auto m = LoadModel(dir.string(), ModelCatalog::Builtin(), &notes);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_TRUE(m->file_tensors.empty());
  EXPECT_EQ(notes.back(), dir.string() + " holds no *.safetensors files: weights are sized from config.json");
  const auto f = BuildSafetensors({{"w", "BF16", {2}, 2}});
  fixtures::WriteSparse(dir / "model.safetensors", f.header, f.size());
  auto lone = LoadModel((dir / "model.safetensors").string(), ModelCatalog::Builtin(), nullptr);
  ASSERT_FALSE(lone.ok());
  EXPECT_EQ(lone.error().message, (dir / "model.safetensors").string() +
                                      ": a safetensors file alone does not say the architecture; pass the "
                                      "directory that holds it and its config.json");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace vramfit
