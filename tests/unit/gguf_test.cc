// GGUF headers: tensor infos and exact bytes, roles, architecture metadata
// mapped to the same ModelSpec the config.json reader gives, split files,
// and every corrupt-header error pinned. Byte layout: ggml/src/gguf.cpp
// (gguf_init_from_reader) and docs/formats.md §5.
#include <filesystem>

#include <gtest/gtest.h>

#include "data/fixtures.h"
#include "test_util.h"
#include "vramfit/io/file_reader.h"
#include "vramfit/io/gguf.h"
#include "vramfit/io/source.h"
#include "vramfit/render.h"

namespace vramfit {
namespace {

namespace fs = std::filesystem;
using fixtures::GgufBuilder;
using fixtures::GStr;
using fixtures::Le32;
using fixtures::Le64;

std::string ReadError(const std::string& bytes, int64_t declared = -1) {
  auto r = NewMemoryReader("t.gguf", bytes, declared);
  auto g = ReadGguf(*r);
  return g.ok() ? "ok" : g.error().message;
}

// "GGUF", version, tensor count, metadata count, then `body`.
std::string Raw(uint32_t version, uint64_t n_tensors, uint64_t n_kv, const std::string& body = "") {
  std::string s = "GGUF";
  Le32(s, version);
  Le64(s, n_tensors);
  Le64(s, n_kv);
  return s + body;
}

// One tensor info: name, dims, ggml type, offset.
std::string Info(const std::string& name, const std::vector<uint64_t>& ne, uint32_t type, uint64_t offset) {
  std::string s;
  GStr(s, name);
  Le32(s, static_cast<uint32_t>(ne.size()));
  for (uint64_t d : ne) Le64(s, d);
  Le32(s, type);
  Le64(s, offset);
  return s;
}

std::string Kv(const std::string& key, uint32_t type, const std::string& value) {
  std::string s;
  GStr(s, key);
  Le32(s, type);
  return s + value;
}
std::string U32(uint32_t v) {
  std::string s;
  Le32(s, v);
  return s;
}
std::string U64(uint64_t v) {
  std::string s;
  Le64(s, v);
  return s;
}

TEST(GgufTest, CorruptHeadersGiveOneExactError) {
  // Offsets: magic 0, version 4, tensor count 8, metadata count 16, first
  // key (or tensor info when there are no keys) at 24.
  const std::string w = Info("w", {4}, 0, 0);  // a 4-element f32 tensor info, 33 bytes
  const struct {
    std::string bytes;
    int64_t declared;
    std::string error;
  } cases[] = {
      {"GG", -1, "t.gguf: truncated at offset 0: the GGUF magic needs 4 bytes, the file has 2"},
      {"GGUX" + std::string(20, '\0'), -1, "t.gguf: offset 0: not a GGUF file (magic 'GGUX', expected 'GGUF')"},
      {"\x7f" "ELF" + std::string(20, '\0'), -1,
       "t.gguf: offset 0: not a GGUF file (magic '\\x7fELF', expected 'GGUF')"},
      {Raw(1, 0, 0), -1,
       "t.gguf: offset 4: GGUF version 1 is not supported (versions 2 and 3 are); re-convert the model with a "
       "current llama.cpp"},
      {Raw(0x03000000, 0, 0), -1,
       "t.gguf: offset 4: GGUF version 50331648 looks byte-swapped: big-endian GGUF files are not supported"},
      {Raw(4, 0, 0), -1, "t.gguf: offset 4: GGUF version 4 is not supported (versions 2 and 3 are)"},
      {Raw(3, 0, 0).substr(0, 11), -1,
       "t.gguf: truncated at offset 8: the tensor count needs 8 bytes, the file has 11"},
      {Raw(3, uint64_t{1} << 40, 0), -1, "t.gguf: offset 8: tensor count 1099511627776 exceeds the limit of 1048576"},
      {Raw(3, 0, uint64_t{1} << 21), -1, "t.gguf: offset 16: metadata count 2097152 exceeds the limit of 1048576"},
      {Raw(3, 1000, 0), -1, "t.gguf: offset 8: 1000 tensors and 0 metadata pairs cannot fit in the 0 bytes left"},
      {Raw(3, 0, 1, U64(uint64_t{1} << 62) + std::string(8, 'x')), -1,
       "t.gguf: offset 24: key #0: string length 4611686018427387904 exceeds the limit of 67108864 bytes"},
      {Raw(3, 0, 1, U64(100) + std::string(8, 'x')), -1,
       "t.gguf: offset 24: key #0: string length 100 runs past the end of the file (40 bytes)"},
      {Raw(3, 0, 1, U64(0) + U32(4) + U32(7)), -1, "t.gguf: offset 24: key #0 has an empty name"},
      {Raw(3, 0, 1, Kv("a\nb", 4, U32(7))), -1, "t.gguf: offset 24: key #0 contains a control character"},
      {Raw(3, 0, 1, Kv("a", 13, U32(7))), -1, "t.gguf: offset 24: key 'a': unknown value type 13"},
      {Raw(3, 0, 1, Kv("a", 9, U32(9) + U64(1))), -1,
       "t.gguf: offset 24: key 'a': arrays of arrays are not valid GGUF"},
      {Raw(3, 0, 1, Kv("a", 9, U32(4) + U64(1000000) + U32(1))), -1,
       "t.gguf: offset 24: key 'a': array of 1000000 u32 values cannot fit in the 4 bytes left"},
      {Raw(3, 0, 1, Kv("a", 9, U32(8) + U64(3) + U64(1) + "x")), -1,
       "t.gguf: offset 24: key 'a': array of 3 str values cannot fit in the 9 bytes left"},
      {Raw(3, 0, 1, Kv("a", 4, "")), -1, "t.gguf: offset 8: 0 tensors and 1 metadata pairs cannot fit in the 13 bytes left"},
      {Raw(3, 0, 1, Kv("a", 10, U32(1))), -1, "t.gguf: truncated at offset 37: key 'a' value needs 8 bytes, the file has 41"},
      {Raw(3, 0, 2, Kv("a", 4, U32(1)) + Kv("a", 4, U32(2))), -1, "t.gguf: offset 41: key 'a' appears twice"},
      {Raw(3, 0, 1, Kv("general.alignment", 10, U64(32))), -1,
       "t.gguf: offset 24: key 'general.alignment': must be a u32 power of two, got u64 32"},
      {Raw(3, 0, 1, Kv("general.alignment", 4, U32(48))), -1,
       "t.gguf: offset 24: key 'general.alignment': must be a u32 power of two, got u32 48"},
      {Raw(3, 1, 0, Info(std::string(64, 'n'), {4}, 0, 0)), -1,
       "t.gguf: offset 24: tensor #0: name of 64 bytes is longer than ggml's limit of 63"},
      {Raw(3, 1, 0, Info("a\x1b[2J", {4}, 0, 0)), -1, "t.gguf: offset 24: tensor #0: name contains a control character"},
      {Raw(3, 1, 0, Info("w", {1, 1, 1, 1, 1}, 0, 0)), -1,
       "t.gguf: offset 24: tensor 'w': 5 dimensions (ggml allows at most 4)"},
      {Raw(3, 1, 0, Info("w", {uint64_t{1} << 63}, 0, 0)), -1,
       "t.gguf: offset 24: tensor 'w': dimension 0 is 9223372036854775808, out of range"},
      {Raw(3, 1, 0, Info("w", {uint64_t{1} << 32, uint64_t{1} << 32}, 0, 0)), -1,
       "t.gguf: offset 24: tensor 'w': shape [4294967296, 4294967296] overflows 64 bits"},
      {Raw(3, 1, 0, Info("w", {uint64_t{1} << 62}, 28, 0)), -1,
       "t.gguf: offset 24: tensor 'w': shape [4611686018427387904] of fp64 overflows 64-bit byte counts"},
      {Raw(3, 1, 0, Info("w", {256}, 99, 0)), -1, "t.gguf: offset 24: tensor 'w': unknown ggml type 99"},
      {Raw(3, 1, 0, Info("w", {256}, 31, 0)), -1,
       "t.gguf: offset 24: tensor 'w': ggml type 31 (Q4_0_4_4) was removed from ggml; re-convert the model with "
       "a current llama.cpp"},
      {Raw(3, 1, 0, Info("w", {100, 2}, 12, 0)), -1,
       "t.gguf: offset 24: tensor 'w': row of 100 elements is not a multiple of the Q4_K block (256 elements)"},
      {Raw(3, 2, 0, w + w), 4096, "t.gguf: offset 57: tensor 'w': appears twice"},
      {Raw(3, 2, 0, w + Info("w2", {4}, 0, 0)), 4096,
       "t.gguf: tensor 'w2': data offset 0, expected 32 (tensors are stored in order, each padded to 32 bytes)"},
      {Raw(3, 1, 0, Info("w", {4, 4}, 0, 0).substr(0, 27)), -1,
       "t.gguf: truncated at offset 45: tensor 'w' dimension 1 needs 8 bytes, the file has 51"},
      // Header only: 24 + 33 = 57, data at 64; 16 bytes of data are missing.
      {Raw(3, 1, 0, w) + std::string(7, '\0'), -1,
       "t.gguf: tensor 'w': its 16 bytes at data offset 0 run past the end of the file (64 bytes)"},
      {Raw(3, 1, 0, w), -1,
       "t.gguf: offset 57: the data section would start at byte 64, past the end of the file (57 bytes)"},
  };
  for (const auto& c : cases) EXPECT_EQ(ReadError(c.bytes, c.declared), c.error);
}

TEST(GgufTest, ReadsVersions2And3) {
  for (uint32_t version : {2u, 3u}) {
    GgufBuilder b(version);
    b.Str("general.architecture", "llama").U32("llama.block_count", 1).ArrStr("tokenizer.ggml.tokens", {"a", "b"});
    b.Tensor("token_embd.weight", {256, 4}, fixtures::kQ4_K).Tensor("blk.0.attn_norm.weight", {256}, fixtures::kF32);
    auto r = NewMemoryReader("t.gguf", b.Header(), b.FileSize());
    auto g = ReadGguf(*r);
    ASSERT_TRUE(g.ok()) << g.error().message;
    EXPECT_EQ(g->version, version);
    ASSERT_EQ(g->tensors.size(), 2u);
    // Q4_K: 256 elements / 144 bytes per block (ggml-common.h block_q4_K);
    // 4 rows of one block = 576 B, padded to 576; then 256 f32 = 1024 B.
    EXPECT_EQ(g->tensors[0].bytes, 576);
    EXPECT_EQ(g->tensors[1].offset, 576);
    EXPECT_EQ(g->tensors[1].bytes, 1024);
    EXPECT_EQ(g->data_offset, static_cast<int64_t>(b.Header().size()));
    EXPECT_EQ(g->data_offset % 32, 0);
    EXPECT_EQ(g->Find("tokenizer.ggml.tokens")->count, 2);
    // Only the header was read (the cursor reads ahead at most to the end).
    EXPECT_LE(r->bytes_read(), b.FileSize());
    EXPECT_GE(r->bytes_read(), static_cast<int64_t>(b.Header().size()) - 32);
  }
}

TEST(GgufTest, ExactBytesForEveryBlockType) {
  // ggml type_traits (blck_size, type_size) via docs/formats.md §3.2; a
  // tensor of 4 rows x 256 elements takes 4 * 256/blck * size bytes.
  const struct { uint32_t id; int64_t bytes; } cases[] = {
      {0, 4096},  {1, 2048}, {30, 2048}, {2, 576},  {3, 640},  {6, 704},  {7, 768},  {8, 1088},
      {10, 336},  {11, 440}, {12, 576},  {13, 704}, {14, 840}, {16, 264}, {17, 296}, {18, 392},
      {19, 200},  {20, 576}, {21, 440},  {22, 328}, {23, 544}, {29, 224}, {34, 216}, {35, 264},
      {39, 544},  {24, 1024}, {26, 4096}, {28, 8192},
  };
  for (const auto& c : cases) {
    auto r = NewMemoryReader("t.gguf", Raw(3, 1, 0, Info("w", {256, 4}, c.id, 0)), 1 << 20);
    auto g = ReadGguf(*r);
    ASSERT_TRUE(g.ok()) << c.id << ": " << g.error().message;
    EXPECT_EQ(g->tensors[0].bytes, c.bytes) << "ggml type " << c.id;
  }
  // Llama-3 token_embd in Q5_K: 128256 x row(Q5_K, 4096) = 344.44 MiB, the
  // CUDA_Host buffer of case L09 (docs/research/llamacpp.md §3).
  auto r = NewMemoryReader("t.gguf", Raw(3, 1, 0, Info("token_embd.weight", {4096, 128256}, 13, 0)), int64_t{1} << 32);
  auto g = ReadGguf(*r);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->tensors[0].bytes, 361168896);  // 344.44 MiB
}

TEST(GgufTest, TensorRolesAndLayers) {
  const struct { const char* name; Role role; int64_t layer; } cases[] = {
      {"token_embd.weight", Role::kEmbed, -1},
      {"output.weight", Role::kLmHead, -1},
      {"output_norm.weight", Role::kNorm, -1},
      {"position_embd.weight", Role::kPosEmbed, -1},
      {"token_embd_norm.bias", Role::kNorm, -1},
      {"rope_freqs.weight", Role::kAttention, -1},
      {"blk.3.attn_v.weight", Role::kAttention, 3},
      {"blk.3.attn_qkv.bias", Role::kAttention, 3},
      {"blk.3.attn_q_norm.weight", Role::kAttention, 3},
      {"blk.3.attn_kv_a_mqa.weight", Role::kAttention, 3},
      {"blk.3.attn_sinks.weight", Role::kAttention, 3},
      {"blk.3.attn_norm.weight", Role::kNorm, 3},
      {"blk.3.attn_norm_2.weight", Role::kNorm, 3},
      {"blk.3.post_attention_norm.weight", Role::kNorm, 3},
      {"blk.3.post_ffw_norm.weight", Role::kNorm, 3},
      {"blk.3.ffn_norm.weight", Role::kNorm, 3},
      {"blk.17.ffn_gate_inp.weight", Role::kRouter, 17},
      {"blk.17.exp_probs_b.bias", Role::kRouter, 17},
      {"blk.17.ffn_up_exps.weight", Role::kExperts, 17},
      {"blk.17.ffn_gate_up_exps.weight", Role::kExperts, 17},
      {"blk.17.ffn_down_exps.bias", Role::kExperts, 17},
      {"blk.17.ffn_down.5.weight", Role::kExperts, 17},
      {"blk.17.ffn_up_shexp.weight", Role::kSharedExperts, 17},
      {"blk.17.ffn_gate_inp_shexp.weight", Role::kSharedExperts, 17},
      {"blk.17.ffn_down.weight", Role::kMlp, 17},
      {"blk.x.ffn_down.weight", Role::kMlp, -1},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(RoleName(GgufTensorRole(c.name)), std::string(RoleName(c.role))) << c.name;
    EXPECT_EQ(GgufTensorLayer(c.name), c.layer) << c.name;
  }
}

// ---------------------------------------------------------------------------
// Architecture metadata: GGUF headers laid out as llama.cpp's converter
// writes them (tensor shapes from src/llama-model.cpp load_tensors, ggml
// order: ne[0] is the input width) must map to the same parameter count,
// KV bytes per token and layer pattern as the catalog's config.json.

struct Arch {
  std::string arch;
  int64_t layers, embd, heads, kv_heads, head_dim, ff, vocab;
  bool tied = false;
  int64_t v_dim = 0;  // value head size when it differs from head_dim (MLA)
};

void Common(GgufBuilder& b, const Arch& a) {
  b.Str("general.architecture", a.arch)
      .Str("general.name", "fixture")
      .U32(a.arch + ".block_count", static_cast<uint32_t>(a.layers))
      .U32(a.arch + ".embedding_length", static_cast<uint32_t>(a.embd))
      .U32(a.arch + ".attention.head_count", static_cast<uint32_t>(a.heads))
      .U32(a.arch + ".attention.head_count_kv", static_cast<uint32_t>(a.kv_heads))
      .U32(a.arch + ".context_length", 4096);
  if (a.ff > 0) b.U32(a.arch + ".feed_forward_length", static_cast<uint32_t>(a.ff));
  if (a.head_dim * a.heads != a.embd) {
    b.U32(a.arch + ".attention.key_length", static_cast<uint32_t>(a.head_dim));
    b.U32(a.arch + ".attention.value_length", static_cast<uint32_t>(a.v_dim > 0 ? a.v_dim : a.head_dim));
  }
}

using fixtures::kF16;
using fixtures::kF32;

void Embeddings(GgufBuilder& b, const Arch& a) {
  b.Tensor("token_embd.weight", {a.embd, a.vocab}, kF16).Tensor("output_norm.weight", {a.embd}, kF32);
  if (!a.tied) b.Tensor("output.weight", {a.embd, a.vocab}, kF16);
}

std::string Blk(int64_t i, const std::string& x) { return "blk." + std::to_string(i) + "." + x; }

// Llama-style attention: q, k, v, output (optional biases, q/k norms).
void Attention(GgufBuilder& b, const Arch& a, int64_t i, bool qkv_bias, bool o_bias, bool qk_norm) {
  const int64_t q = a.heads * a.head_dim, kv = a.kv_heads * a.head_dim;
  b.Tensor(Blk(i, "attn_norm.weight"), {a.embd}, kF32)
      .Tensor(Blk(i, "attn_q.weight"), {a.embd, q}, kF16)
      .Tensor(Blk(i, "attn_k.weight"), {a.embd, kv}, kF16)
      .Tensor(Blk(i, "attn_v.weight"), {a.embd, kv}, kF16)
      .Tensor(Blk(i, "attn_output.weight"), {q, a.embd}, kF16);
  if (qkv_bias) {
    b.Tensor(Blk(i, "attn_q.bias"), {q}, kF32).Tensor(Blk(i, "attn_k.bias"), {kv}, kF32).Tensor(Blk(i, "attn_v.bias"), {kv}, kF32);
  }
  if (o_bias) b.Tensor(Blk(i, "attn_output.bias"), {a.embd}, kF32);
  if (qk_norm) b.Tensor(Blk(i, "attn_q_norm.weight"), {a.head_dim}, kF32).Tensor(Blk(i, "attn_k_norm.weight"), {a.head_dim}, kF32);
}

void DenseFfn(GgufBuilder& b, const Arch& a, int64_t i, int64_t ff) {
  b.Tensor(Blk(i, "ffn_norm.weight"), {a.embd}, kF32)
      .Tensor(Blk(i, "ffn_gate.weight"), {a.embd, ff}, kF16)
      .Tensor(Blk(i, "ffn_down.weight"), {ff, a.embd}, kF16)
      .Tensor(Blk(i, "ffn_up.weight"), {a.embd, ff}, kF16);
}

struct Built {
  GgufBuilder b;
  std::string catalog_id;
  bool compare_layers = true;
};

Built Llama31_8B() {
  Built x{GgufBuilder(), "meta-llama/Llama-3.1-8B"};
  const Arch a{"llama", 32, 4096, 32, 8, 128, 14336, 128256};
  Common(x.b, a);
  x.b.U32("llama.rope.dimension_count", 128);
  Embeddings(x.b, a);
  x.b.Tensor("rope_freqs.weight", {64}, kF32);  // llama-3 rope scaling factors
  for (int64_t i = 0; i < a.layers; ++i) {
    Attention(x.b, a, i, false, false, false);
    DenseFfn(x.b, a, i, a.ff);
  }
  return x;
}

Built Qwen25_05B() {
  Built x{GgufBuilder(), "Qwen/Qwen2.5-0.5B"};
  const Arch a{"qwen2", 24, 896, 14, 2, 64, 4864, 151936, /*tied=*/true};
  Common(x.b, a);
  Embeddings(x.b, a);
  for (int64_t i = 0; i < a.layers; ++i) {
    Attention(x.b, a, i, true, false, false);
    DenseFfn(x.b, a, i, a.ff);
  }
  return x;
}

Built Qwen3_235B() {
  Built x{GgufBuilder(), "Qwen/Qwen3-235B-A22B"};
  const Arch a{"qwen3moe", 94, 4096, 64, 4, 128, 12288, 151936};
  Common(x.b, a);
  x.b.U32("qwen3moe.expert_count", 128).U32("qwen3moe.expert_used_count", 8).U32("qwen3moe.expert_feed_forward_length", 1536);
  Embeddings(x.b, a);
  for (int64_t i = 0; i < a.layers; ++i) {
    Attention(x.b, a, i, false, false, true);
    x.b.Tensor(Blk(i, "ffn_norm.weight"), {a.embd}, kF32)
        .Tensor(Blk(i, "ffn_gate_inp.weight"), {a.embd, 128}, kF32)
        .Tensor(Blk(i, "ffn_gate_exps.weight"), {a.embd, 1536, 128}, fixtures::kQ4_K)
        .Tensor(Blk(i, "ffn_down_exps.weight"), {1536, a.embd, 128}, fixtures::kQ4_K)
        .Tensor(Blk(i, "ffn_up_exps.weight"), {a.embd, 1536, 128}, fixtures::kQ4_K);
  }
  return x;
}

Built Gemma2_27B() {
  Built x{GgufBuilder(), "google/gemma-2-27b"};
  const Arch a{"gemma2", 46, 4608, 32, 16, 128, 36864, 256000, /*tied=*/true};
  Common(x.b, a);
  x.b.U32("gemma2.attention.sliding_window", 4096);
  Embeddings(x.b, a);
  for (int64_t i = 0; i < a.layers; ++i) {
    Attention(x.b, a, i, false, false, false);
    x.b.Tensor(Blk(i, "post_attention_norm.weight"), {a.embd}, kF32);
    DenseFfn(x.b, a, i, a.ff);
    x.b.Tensor(Blk(i, "post_ffw_norm.weight"), {a.embd}, kF32);
  }
  return x;
}

Built GptOss_120B() {
  Built x{GgufBuilder(), "openai/gpt-oss-120b"};
  const Arch a{"gpt-oss", 36, 2880, 64, 8, 64, 2880, 201088};
  Common(x.b, a);
  x.b.U32("gpt-oss.expert_count", 128).U32("gpt-oss.expert_used_count", 4).U32("gpt-oss.expert_feed_forward_length", 2880)
      .U32("gpt-oss.attention.sliding_window", 128);
  Embeddings(x.b, a);
  for (int64_t i = 0; i < a.layers; ++i) {
    Attention(x.b, a, i, true, true, false);
    x.b.Tensor(Blk(i, "attn_sinks.weight"), {a.heads}, kF32)
        .Tensor(Blk(i, "post_attention_norm.weight"), {a.embd}, kF32)
        .Tensor(Blk(i, "ffn_gate_inp.weight"), {a.embd, 128}, kF32)
        .Tensor(Blk(i, "ffn_gate_inp.bias"), {128}, kF32)
        .Tensor(Blk(i, "ffn_gate_exps.weight"), {a.embd, 2880, 128}, fixtures::kMXFP4)
        .Tensor(Blk(i, "ffn_gate_exps.bias"), {2880, 128}, kF32)
        .Tensor(Blk(i, "ffn_down_exps.weight"), {2880, a.embd, 128}, fixtures::kMXFP4)
        .Tensor(Blk(i, "ffn_down_exps.bias"), {a.embd, 128}, kF32)
        .Tensor(Blk(i, "ffn_up_exps.weight"), {a.embd, 2880, 128}, fixtures::kMXFP4)
        .Tensor(Blk(i, "ffn_up_exps.bias"), {2880, 128}, kF32);
  }
  return x;
}

Built DeepSeekV3() {
  Built x{GgufBuilder(), "deepseek-ai/DeepSeek-V3"};
  const Arch a{"deepseek2", 61, 7168, 128, 128, 192, 18432, 129280, false, /*v_dim=*/128};
  Common(x.b, a);
  x.b.U32("deepseek2.leading_dense_block_count", 3).U32("deepseek2.expert_count", 256)
      .U32("deepseek2.expert_used_count", 8).U32("deepseek2.expert_feed_forward_length", 2048)
      .U32("deepseek2.expert_shared_count", 1).U32("deepseek2.attention.q_lora_rank", 1536)
      .U32("deepseek2.attention.kv_lora_rank", 512).U32("deepseek2.rope.dimension_count", 64);
  Embeddings(x.b, a);
  for (int64_t i = 0; i < a.layers; ++i) {
    x.b.Tensor(Blk(i, "attn_norm.weight"), {a.embd}, kF32)
        .Tensor(Blk(i, "attn_q_a_norm.weight"), {1536}, kF32)
        .Tensor(Blk(i, "attn_kv_a_norm.weight"), {512}, kF32)
        .Tensor(Blk(i, "attn_q_a.weight"), {a.embd, 1536}, kF16)
        .Tensor(Blk(i, "attn_q_b.weight"), {1536, 128 * 192}, kF16)
        .Tensor(Blk(i, "attn_kv_a_mqa.weight"), {a.embd, 512 + 64}, kF16)
        .Tensor(Blk(i, "attn_kv_b.weight"), {512, 128 * (128 + 128)}, kF16)
        .Tensor(Blk(i, "attn_output.weight"), {128 * 128, a.embd}, kF16);
    if (i < 3) {
      DenseFfn(x.b, a, i, a.ff);
      continue;
    }
    x.b.Tensor(Blk(i, "ffn_norm.weight"), {a.embd}, kF32)
        .Tensor(Blk(i, "ffn_gate_inp.weight"), {a.embd, 256}, kF32)
        .Tensor(Blk(i, "exp_probs_b.bias"), {256}, kF32)
        .Tensor(Blk(i, "ffn_gate_exps.weight"), {a.embd, 2048, 256}, fixtures::kQ4_K)
        .Tensor(Blk(i, "ffn_down_exps.weight"), {2048, a.embd, 256}, fixtures::kQ4_K)
        .Tensor(Blk(i, "ffn_up_exps.weight"), {a.embd, 2048, 256}, fixtures::kQ4_K)
        .Tensor(Blk(i, "ffn_gate_shexp.weight"), {a.embd, 2048}, kF16)
        .Tensor(Blk(i, "ffn_down_shexp.weight"), {2048, a.embd}, kF16)
        .Tensor(Blk(i, "ffn_up_shexp.weight"), {a.embd, 2048}, kF16);
  }
  return x;
}

// The same model as converted since llama.cpp PR #12801 (MLA): attn_kv_b
// split into attn_k_b [nope, kv_lora, heads] and attn_v_b [kv_lora, v,
// heads]; key_length / value_length describe the absorbed latent (576 /
// 512), the per-head sizes move to key_length_mla / value_length_mla, and
// head_count_kv is 1.
Built DeepSeekV3Mla() {
  Built x{GgufBuilder(), "deepseek-ai/DeepSeek-V3"};
  const Arch a{"deepseek2", 61, 7168, 128, 1, 576, 18432, 129280, false, /*v_dim=*/512};
  Common(x.b, a);
  x.b.U32("deepseek2.leading_dense_block_count", 3).U32("deepseek2.expert_count", 256)
      .U32("deepseek2.expert_used_count", 8).U32("deepseek2.expert_feed_forward_length", 2048)
      .U32("deepseek2.expert_shared_count", 1).U32("deepseek2.attention.q_lora_rank", 1536)
      .U32("deepseek2.attention.kv_lora_rank", 512).U32("deepseek2.rope.dimension_count", 64)
      .U32("deepseek2.attention.key_length_mla", 192).U32("deepseek2.attention.value_length_mla", 128);
  Embeddings(x.b, a);
  for (int64_t i = 0; i < a.layers; ++i) {
    x.b.Tensor(Blk(i, "attn_norm.weight"), {a.embd}, kF32)
        .Tensor(Blk(i, "attn_q_a_norm.weight"), {1536}, kF32)
        .Tensor(Blk(i, "attn_kv_a_norm.weight"), {512}, kF32)
        .Tensor(Blk(i, "attn_q_a.weight"), {a.embd, 1536}, kF16)
        .Tensor(Blk(i, "attn_q_b.weight"), {1536, 128 * 192}, kF16)
        .Tensor(Blk(i, "attn_kv_a_mqa.weight"), {a.embd, 512 + 64}, kF16)
        .Tensor(Blk(i, "attn_k_b.weight"), {128, 512, 128}, kF16)
        .Tensor(Blk(i, "attn_v_b.weight"), {512, 128, 128}, kF16)
        .Tensor(Blk(i, "attn_output.weight"), {128 * 128, a.embd}, kF16);
    if (i < 3) {
      DenseFfn(x.b, a, i, a.ff);
      continue;
    }
    x.b.Tensor(Blk(i, "ffn_norm.weight"), {a.embd}, kF32)
        .Tensor(Blk(i, "ffn_gate_inp.weight"), {a.embd, 256}, kF32)
        .Tensor(Blk(i, "exp_probs_b.bias"), {256}, kF32)
        .Tensor(Blk(i, "ffn_gate_exps.weight"), {a.embd, 2048, 256}, fixtures::kQ4_K)
        .Tensor(Blk(i, "ffn_down_exps.weight"), {2048, a.embd, 256}, fixtures::kQ4_K)
        .Tensor(Blk(i, "ffn_up_exps.weight"), {a.embd, 2048, 256}, fixtures::kQ4_K)
        .Tensor(Blk(i, "ffn_gate_shexp.weight"), {a.embd, 2048}, kF16)
        .Tensor(Blk(i, "ffn_down_shexp.weight"), {2048, a.embd}, kF16)
        .Tensor(Blk(i, "ffn_up_shexp.weight"), {a.embd, 2048}, kF16);
  }
  return x;
}

Built Pythia410m() {
  Built x{GgufBuilder(), "EleutherAI/pythia-410m-deduped"};
  const Arch a{"gptneox", 24, 1024, 16, 16, 64, 4096, 50304};
  Common(x.b, a);
  Embeddings(x.b, a);
  x.b.Tensor("output_norm.bias", {a.embd}, kF32);
  for (int64_t i = 0; i < a.layers; ++i) {
    x.b.Tensor(Blk(i, "attn_norm.weight"), {a.embd}, kF32).Tensor(Blk(i, "attn_norm.bias"), {a.embd}, kF32)
        .Tensor(Blk(i, "attn_qkv.weight"), {a.embd, 3 * a.embd}, kF16).Tensor(Blk(i, "attn_qkv.bias"), {3 * a.embd}, kF32)
        .Tensor(Blk(i, "attn_output.weight"), {a.embd, a.embd}, kF16).Tensor(Blk(i, "attn_output.bias"), {a.embd}, kF32)
        .Tensor(Blk(i, "ffn_norm.weight"), {a.embd}, kF32).Tensor(Blk(i, "ffn_norm.bias"), {a.embd}, kF32)
        .Tensor(Blk(i, "ffn_up.weight"), {a.embd, a.ff}, kF16).Tensor(Blk(i, "ffn_up.bias"), {a.ff}, kF32)
        .Tensor(Blk(i, "ffn_down.weight"), {a.ff, a.embd}, kF16).Tensor(Blk(i, "ffn_down.bias"), {a.embd}, kF32);
  }
  return x;
}

Built Gpt2() {
  Built x{GgufBuilder(), "openai-community/gpt2"};
  const Arch a{"gpt2", 12, 768, 12, 12, 64, 3072, 50257, /*tied=*/true};
  Common(x.b, a);
  Embeddings(x.b, a);
  x.b.Tensor("output_norm.bias", {a.embd}, kF32).Tensor("position_embd.weight", {a.embd, 1024}, kF32);
  for (int64_t i = 0; i < a.layers; ++i) {
    x.b.Tensor(Blk(i, "attn_norm.weight"), {a.embd}, kF32).Tensor(Blk(i, "attn_norm.bias"), {a.embd}, kF32)
        .Tensor(Blk(i, "attn_qkv.weight"), {a.embd, 3 * a.embd}, kF16).Tensor(Blk(i, "attn_qkv.bias"), {3 * a.embd}, kF32)
        .Tensor(Blk(i, "attn_output.weight"), {a.embd, a.embd}, kF16).Tensor(Blk(i, "attn_output.bias"), {a.embd}, kF32)
        .Tensor(Blk(i, "ffn_norm.weight"), {a.embd}, kF32).Tensor(Blk(i, "ffn_norm.bias"), {a.embd}, kF32)
        .Tensor(Blk(i, "ffn_up.weight"), {a.embd, a.ff}, kF16).Tensor(Blk(i, "ffn_up.bias"), {a.ff}, kF32)
        .Tensor(Blk(i, "ffn_down.weight"), {a.ff, a.embd}, kF16).Tensor(Blk(i, "ffn_down.bias"), {a.embd}, kF32);
  }
  return x;
}

Built Phi3Medium() {
  Built x{GgufBuilder(), "microsoft/Phi-3-medium-4k-instruct"};
  const Arch a{"phi3", 40, 5120, 40, 10, 128, 17920, 32064};
  Common(x.b, a);
  // llama.cpp disables Phi-3's sliding window (load_hparams, PR #13676),
  // while transformers applies it: layers are not compared.
  x.b.U32("phi3.attention.sliding_window", 2047);
  x.compare_layers = false;
  Embeddings(x.b, a);
  for (int64_t i = 0; i < a.layers; ++i) {
    x.b.Tensor(Blk(i, "attn_norm.weight"), {a.embd}, kF32)
        .Tensor(Blk(i, "attn_qkv.weight"), {a.embd, a.embd + 2 * 10 * 128}, kF16)
        .Tensor(Blk(i, "attn_output.weight"), {a.embd, a.embd}, kF16)
        .Tensor(Blk(i, "ffn_norm.weight"), {a.embd}, kF32)
        .Tensor(Blk(i, "ffn_down.weight"), {a.ff, a.embd}, kF16)
        .Tensor(Blk(i, "ffn_up.weight"), {a.embd, 2 * a.ff}, kF16);
  }
  return x;
}

TEST(GgufTest, ArchitectureMetadataMapsToTheSameModelAsConfigJson) {
  for (Built (*make)() : {Llama31_8B, Qwen25_05B, Qwen3_235B, Gemma2_27B, GptOss_120B, DeepSeekV3, DeepSeekV3Mla,
                          Pythia410m, Gpt2, Phi3Medium}) {
    Built x = make();
    auto r = NewMemoryReader("x.gguf", x.b.Header(), x.b.FileSize());
    std::vector<std::string> notes;
    auto m = LoadGgufModel(*r, "x.gguf", nullptr, "x.gguf", &notes);
    ASSERT_TRUE(m.ok()) << x.catalog_id << ": " << m.error().message;
    const Model ref = testing::CatalogModelOrDie(x.catalog_id);
    // The published counts (data/models/*.json exact_params) via the
    // catalog inventory, which catalog_test checks against them.
    EXPECT_EQ(m->inventory.params, ref.spec.published_params) << x.catalog_id;
    EXPECT_EQ(m->inventory.params, ref.inventory.params) << x.catalog_id;
    EXPECT_EQ(KvBytesPerToken(m->spec, DType::kF16, KvLayout::kLatent),
              KvBytesPerToken(ref.spec, DType::kF16, KvLayout::kLatent)) << x.catalog_id;
    EXPECT_EQ(m->spec.num_hidden_layers, ref.spec.num_hidden_layers);
    EXPECT_EQ(m->spec.tie_word_embeddings, ref.spec.tie_word_embeddings) << x.catalog_id;
    if (x.compare_layers) {
      for (size_t i = 0; i < ref.spec.layers.size(); ++i) {
        EXPECT_EQ(m->spec.layers[i].attention, ref.spec.layers[i].attention) << x.catalog_id << " layer " << i;
        EXPECT_EQ(m->spec.layers[i].moe, ref.spec.layers[i].moe) << x.catalog_id << " layer " << i;
      }
      EXPECT_EQ(m->spec.sliding_window, ref.spec.sliding_window) << x.catalog_id;
    }
    EXPECT_EQ(m->file_format, "gguf");
    EXPECT_FALSE(notes.empty());
  }
}

TEST(GgufTest, LlamaFileTensorsFollowTheContract) {
  Built x = Llama31_8B();
  auto r = NewMemoryReader("x.gguf", x.b.Header(), x.b.FileSize());
  std::vector<std::string> notes;
  auto m = LoadGgufModel(*r, "x.gguf", nullptr, "x.gguf", &notes);
  ASSERT_TRUE(m.ok()) << m.error().message;
  ASSERT_EQ(m->file_tensors.size(), 3u + 1u + 32u * 9u);
  const FileTensor* v3 = nullptr;
  for (const FileTensor& t : m->file_tensors) {
    if (t.name == "blk.3.attn_v.weight") v3 = &t;
  }
  ASSERT_NE(v3, nullptr);
  EXPECT_EQ(v3->layer, 3);
  EXPECT_EQ(v3->role, Role::kAttention);
  EXPECT_EQ(v3->dtype, DType::kF16);
  EXPECT_EQ(v3->shape, (std::vector<int64_t>{4096, 1024}));
  EXPECT_EQ(v3->bytes, 4096 * 1024 * 2);
  EXPECT_EQ(m->file_tensors[0].name, "token_embd.weight");
  EXPECT_EQ(m->file_tensors[0].role, Role::kEmbed);
  EXPECT_EQ(m->file_tensors[0].layer, -1);
  // rope_freqs is a real tensor of llama-3 GGUFs the HF inventory lacks.
  EXPECT_EQ(notes, (std::vector<std::string>{
                       "GGUF v3, architecture 'llama', 'fixture'",
                       "the GGUF tensors hold 8030261312 weights; the architecture mapping counts 8030261248"}));
  EXPECT_EQ(m->spec.model_type, "llama");
  EXPECT_EQ(m->spec.torch_dtype, DType::kF16);
  EXPECT_EQ(m->spec.head_dim, 128);
  EXPECT_EQ(m->spec.max_position_embeddings, 4096);
}

TEST(GgufTest, GgufFileWeightsAreTheSumOfItsTensors) {
  const fs::path dir = fixtures::FreshDir("gguf_file");
  Built x = Qwen25_05B();
  fixtures::WriteSparse(dir / "qwen.gguf", x.b.Header(), x.b.FileSize());
  std::vector<std::string> notes;
  auto m = LoadModel((dir / "qwen.gguf").string(), ModelCatalog::Builtin(), &notes);
  ASSERT_TRUE(m.ok()) << m.error().message;
  int64_t sum = 0;
  for (const FileTensor& t : m->file_tensors) sum += t.bytes;
  // Every tensor F16 (2 B) or F32 (4 B) here. 2-D elements: embed
  // 896 x 151936 = 136134656, + 24 x (q, o 2 x 802816 + k, v 2 x 114688 +
  // gate, up, down 3 x 4358144 = 14909440) = 493961216 -> 987922432 B;
  // 1-D: output_norm 896 + 24 x (2 norms 1792 + biases 896 + 128 + 128) =
  // 71552 elements -> 286208 B. Total 988208640 B; elements 494032768 (the
  // published count of Qwen2.5-0.5B).
  EXPECT_EQ(sum, 988208640);
  auto j = nlohmann::json::parse(RenderInspectJson(Inspect(*m, notes)));
  EXPECT_EQ(j["model"]["weight_bytes"], 988208640);
  EXPECT_EQ(j["file"]["format"], "gguf");
  const std::string text = RenderInspectText(Inspect(*m, notes), Units::kGiB);
  EXPECT_NE(text.find("file tensors (gguf): 290 tensors, 494032768 elements, weights 988208640 bytes"),
            std::string::npos) << text;
  fs::remove_all(dir);
}

TEST(GgufTest, MappingErrors) {
  const auto err = [](GgufBuilder& b) {
    auto r = NewMemoryReader("t.gguf", b.Header(), b.FileSize());
    auto m = LoadGgufModel(*r, "t.gguf", nullptr, "t.gguf", nullptr);
    return m.ok() ? "ok" : m.error().message;
  };
  GgufBuilder none;
  EXPECT_EQ(err(none), "t.gguf: required key 'general.architecture' is missing");
  GgufBuilder wrong;
  wrong.U32("general.architecture", 1);
  EXPECT_EQ(err(wrong), "t.gguf: offset 24: key 'general.architecture': expected a string, got u32");
  GgufBuilder clip;
  clip.Str("general.architecture", "clip");
  EXPECT_EQ(err(clip), "t.gguf: a vision projector (mmproj) file, not a language model; pass the model's own .gguf");
  GgufBuilder no_blocks;
  no_blocks.Str("general.architecture", "llama").U32("llama.embedding_length", 64);
  EXPECT_EQ(err(no_blocks), "t.gguf: required key 'llama.block_count' is missing");
  GgufBuilder many;
  many.Str("general.architecture", "llama").U32("llama.embedding_length", 64).U64("llama.block_count", 1 << 20);
  EXPECT_EQ(err(many), "t.gguf: key 'llama.block_count' = 1048576: must be between 1 and 4096");
  GgufBuilder per_layer;
  per_layer.Str("general.architecture", "llama").U32("llama.embedding_length", 64).U32("llama.block_count", 3)
      .U32("llama.attention.head_count", 4).ArrI32("llama.attention.head_count_kv", {4, 0, 4});
  EXPECT_EQ(err(per_layer), "t.gguf: key 'llama.attention.head_count_kv': per-layer values (4, 0, 4) are not modelled");
  GgufBuilder no_vocab;
  no_vocab.Str("general.architecture", "llama").U32("llama.embedding_length", 64).U32("llama.block_count", 1)
      .U32("llama.attention.head_count", 4);
  EXPECT_EQ(err(no_vocab), "t.gguf: no token_embd.weight tensor and no 'llama.vocab_size' key: the vocabulary size is unknown");
  GgufBuilder bad_heads;
  bad_heads.Str("general.architecture", "llama").U32("llama.embedding_length", 64).U32("llama.block_count", 1)
      .U32("llama.attention.head_count", 4).U32("llama.attention.head_count_kv", 3).U32("llama.vocab_size", 10)
      .U32("llama.feed_forward_length", 128);
  EXPECT_EQ(err(bad_heads), "t.gguf: num_attention_heads (4) is not a multiple of num_key_value_heads (3)");
  GgufBuilder moe;
  moe.Str("general.architecture", "qwen3moe").U32("qwen3moe.embedding_length", 256).U32("qwen3moe.block_count", 1)
      .U32("qwen3moe.attention.head_count", 4).U32("qwen3moe.vocab_size", 10);
  moe.Tensor("blk.0.ffn_gate_inp.weight", {256, 8}, kF32);
  EXPECT_EQ(err(moe), "t.gguf: required key 'qwen3moe.expert_used_count' is missing");
}

TEST(GgufTest, SplitFilesAreReadTogether) {
  const fs::path dir = fixtures::FreshDir("gguf_split");
  // Part 1: metadata and the first tensors; part 2: the rest (llama.cpp's
  // gguf-split writes split.no / split.count / split.tensors.count).
  const Arch a{"llama", 1, 256, 2, 2, 128, 512, 64};
  GgufBuilder p1, p2;
  Common(p1, a);
  p1.U32("split.no", 0).U32("split.count", 2).I32("split.tensors.count", 9);
  p2.U32("split.no", 1).U32("split.count", 2).I32("split.tensors.count", 9);
  Embeddings(p1, a);
  Attention(p2, a, 0, false, false, false);
  DenseFfn(p2, a, 0, a.ff);
  fixtures::WriteSparse(dir / "m-00001-of-00002.gguf", p1.Header(), p1.FileSize());
  fixtures::WriteSparse(dir / "m-00002-of-00002.gguf", p2.Header(), p2.FileSize());
  // Either part names the model.
  for (const char* name : {"m-00001-of-00002.gguf", "m-00002-of-00002.gguf"}) {
    std::vector<std::string> notes;
    auto m = LoadModel((dir / name).string(), ModelCatalog::Builtin(), &notes);
    ASSERT_TRUE(m.ok()) << m.error().message;
    EXPECT_EQ(m->file_tensors.size(), 12u);
    EXPECT_EQ(notes[0], "GGUF v3, architecture 'llama', 'fixture', 2 split files");
  }
  fs::remove(dir / "m-00002-of-00002.gguf");
  auto m = LoadModel((dir / "m-00001-of-00002.gguf").string(), ModelCatalog::Builtin(), nullptr);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().message, (dir / "m-00002-of-00002.gguf").string() + ": cannot read: No such file or directory");
  EXPECT_EQ(GgufSplitNames("a/x-00002-of-00003.gguf", 3),
            (std::vector<std::string>{"a/x-00001-of-00003.gguf", "a/x-00002-of-00003.gguf", "a/x-00003-of-00003.gguf"}));
  EXPECT_TRUE(GgufSplitNames("x.gguf", 2).empty());
  EXPECT_TRUE(GgufSplitNames("x-00001-of-00003.gguf", 2).empty());
  fs::remove_all(dir);
}

TEST(GgufTest, DirectoryOfGgufFilesSaysWhichToPass) {
  const fs::path dir = fixtures::FreshDir("gguf_dir");
  Built x = Qwen25_05B();
  fixtures::WriteSparse(dir / "b.gguf", x.b.Header(), 4096);
  fixtures::WriteSparse(dir / "a.gguf", x.b.Header(), 4096);
  auto m = LoadModel(dir.string(), ModelCatalog::Builtin(), nullptr);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().message, dir.string() + ": no config.json in this directory (it holds GGUF files: pass one, e.g. " +
                                   (dir / "a.gguf").string() + ")");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace vramfit
