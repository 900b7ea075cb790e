// Writes the seed corpora of the fuzz targets: small valid files of each
// architecture family and layout the readers know, and corrupt variants of
// them (the same cases the unit tests pin). Usage: fuzz_make_seeds CORPUS_DIR
// (writes CORPUS_DIR/gguf/*, CORPUS_DIR/safetensors/*; the config corpus is
// hand-written JSON, committed as it is).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/fixtures.h"

namespace fs = std::filesystem;
using namespace vramfit::fixtures;

namespace {

fs::path root;

void Write(const std::string& target, const std::string& name, const std::string& bytes) {
  const fs::path p = root / target / name;
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A whole small file: header plus zeroed data.
std::string Whole(const GgufBuilder& b) { return b.Header() + std::string(static_cast<size_t>(b.DataBytes()), '\0'); }
std::string Whole(const StFile& f) { return f.header + std::string(static_cast<size_t>(f.data_bytes), '\0'); }

std::string Blk(int i, const std::string& x) { return "blk." + std::to_string(i) + "." + x; }

GgufBuilder Llama(uint32_t version, const std::string& arch, int layers) {
  GgufBuilder b(version);
  b.Str("general.architecture", arch).Str("general.name", "seed").U32(arch + ".block_count", static_cast<uint32_t>(layers))
      .U32(arch + ".embedding_length", 64).U32(arch + ".attention.head_count", 4)
      .U32(arch + ".attention.head_count_kv", 2).U32(arch + ".feed_forward_length", 128)
      .U32(arch + ".context_length", 256).U32("general.alignment", 32);
  b.ArrStr("tokenizer.ggml.tokens", {"a", "b", "c"});
  b.Tensor("token_embd.weight", {64, 32}, kF16).Tensor("output_norm.weight", {64}, kF32).Tensor("output.weight", {64, 32}, kQ8_0);
  for (int i = 0; i < layers; ++i) {
    b.Tensor(Blk(i, "attn_norm.weight"), {64}, kF32).Tensor(Blk(i, "attn_q.weight"), {64, 64}, kQ8_0)
        .Tensor(Blk(i, "attn_k.weight"), {64, 32}, kQ8_0).Tensor(Blk(i, "attn_v.weight"), {64, 32}, kQ4_0)
        .Tensor(Blk(i, "attn_output.weight"), {64, 64}, kQ8_0).Tensor(Blk(i, "ffn_norm.weight"), {64}, kF32)
        .Tensor(Blk(i, "ffn_gate.weight"), {64, 128}, kQ4_0).Tensor(Blk(i, "ffn_up.weight"), {64, 128}, kQ4_0)
        .Tensor(Blk(i, "ffn_down.weight"), {128, 64}, kQ8_0);
  }
  return b;
}

void GgufSeeds() {
  Write("gguf", "llama_v3.gguf", Whole(Llama(3, "llama", 2)));
  Write("gguf", "llama_v2.gguf", Whole(Llama(2, "llama", 1)));
  Write("gguf", "unknown_arch.gguf", Whole(Llama(3, "mystery", 1)));
  {
    GgufBuilder b = Llama(3, "gemma2", 2);
    b.U32("gemma2.attention.sliding_window", 16);
    Write("gguf", "gemma2_sliding.gguf", Whole(b));
  }
  {  // qwen3moe-like: q/k norms, router, experts, shared expert
    GgufBuilder b;
    b.Str("general.architecture", "qwen3moe").U32("qwen3moe.block_count", 1).U32("qwen3moe.embedding_length", 64)
        .U32("qwen3moe.attention.head_count", 4).U32("qwen3moe.attention.key_length", 16)
        .U32("qwen3moe.expert_count", 4).U32("qwen3moe.expert_used_count", 2);
    b.Tensor("token_embd.weight", {64, 32}, kF16).Tensor("blk.0.attn_q_norm.weight", {16}, kF32)
        .Tensor("blk.0.attn_q.weight", {64, 64}, kF16).Tensor("blk.0.attn_k.weight", {64, 64}, kF16)
        .Tensor("blk.0.attn_v.weight", {64, 64}, kF16).Tensor("blk.0.attn_output.weight", {64, 64}, kF16)
        .Tensor("blk.0.ffn_gate_inp.weight", {64, 4}, kF32).Tensor("blk.0.ffn_gate_exps.weight", {64, 32, 4}, kQ8_0)
        .Tensor("blk.0.ffn_up_exps.weight", {64, 32, 4}, kQ8_0).Tensor("blk.0.ffn_down_exps.weight", {32, 64, 4}, kQ8_0)
        .Tensor("blk.0.ffn_up_shexp.weight", {64, 32}, kF16).Tensor("blk.0.ffn_gate_inp_shexp.weight", {64}, kF32);
    Write("gguf", "moe.gguf", Whole(b));
  }
  {  // deepseek2-like MLA
    GgufBuilder b;
    b.Str("general.architecture", "deepseek2").U32("deepseek2.block_count", 2).U32("deepseek2.embedding_length", 64)
        .U32("deepseek2.attention.head_count", 4).U32("deepseek2.attention.kv_lora_rank", 32)
        .U32("deepseek2.attention.q_lora_rank", 32).U32("deepseek2.rope.dimension_count", 8)
        .U32("deepseek2.attention.key_length", 24).U32("deepseek2.attention.value_length", 16)
        .U32("deepseek2.expert_used_count", 2).U32("deepseek2.leading_dense_block_count", 1);
    b.Tensor("token_embd.weight", {64, 32}, kF16).Tensor("blk.0.attn_kv_a_mqa.weight", {64, 40}, kF16)
        .Tensor("blk.0.attn_q_a.weight", {64, 32}, kF16).Tensor("blk.0.ffn_up.weight", {64, 96}, kF16)
        .Tensor("blk.1.ffn_gate_inp.weight", {64, 4}, kF32).Tensor("blk.1.exp_probs_b.bias", {4}, kF32)
        .Tensor("blk.1.ffn_up_exps.weight", {64, 32, 4}, kF16);
    Write("gguf", "mla.gguf", Whole(b));
  }
  {  // gpt-oss-like: sinks, biases, MXFP4 experts
    GgufBuilder b;
    b.Str("general.architecture", "gpt-oss").U32("gpt-oss.block_count", 2).U32("gpt-oss.embedding_length", 64)
        .U32("gpt-oss.attention.head_count", 4).U32("gpt-oss.expert_count", 4).U32("gpt-oss.expert_used_count", 2)
        .U32("gpt-oss.attention.sliding_window", 8);
    b.Tensor("token_embd.weight", {64, 32}, kF16).Tensor("blk.0.attn_sinks.weight", {4}, kF32)
        .Tensor("blk.0.attn_q.bias", {64}, kF32).Tensor("blk.0.ffn_gate_inp.weight", {64, 4}, kF32)
        .Tensor("blk.0.ffn_gate_inp.bias", {4}, kF32).Tensor("blk.0.ffn_up_exps.weight", {64, 64, 4}, kMXFP4)
        .Tensor("blk.0.ffn_up_exps.bias", {64, 4}, kF32).Tensor("blk.1.ffn_gate_inp.weight", {64, 4}, kF32);
    Write("gguf", "gptoss.gguf", Whole(b));
  }
  {  // gpt2-like: learned positions, LayerNorm biases, fused qkv
    GgufBuilder b;
    b.Str("general.architecture", "gpt2").U32("gpt2.block_count", 1).U32("gpt2.embedding_length", 64)
        .U32("gpt2.attention.head_count", 4).U32("gpt2.feed_forward_length", 256);
    b.Tensor("token_embd.weight", {64, 32}, kF16).Tensor("position_embd.weight", {64, 16}, kF32)
        .Tensor("blk.0.attn_norm.weight", {64}, kF32).Tensor("blk.0.attn_norm.bias", {64}, kF32)
        .Tensor("blk.0.attn_qkv.weight", {64, 192}, kF16).Tensor("blk.0.attn_qkv.bias", {192}, kF32)
        .Tensor("blk.0.ffn_up.weight", {64, 256}, kF16).Tensor("blk.0.ffn_up.bias", {256}, kF32);
    Write("gguf", "gpt2.gguf", Whole(b));
  }
  {  // phi3-like fused gate/up
    GgufBuilder b;
    b.Str("general.architecture", "phi3").U32("phi3.block_count", 1).U32("phi3.embedding_length", 64)
        .U32("phi3.attention.head_count", 4).U32("phi3.feed_forward_length", 96).U32("phi3.attention.sliding_window", 32);
    b.Tensor("token_embd.weight", {64, 32}, kF16).Tensor("blk.0.attn_qkv.weight", {64, 192}, kF16)
        .Tensor("blk.0.ffn_up.weight", {64, 192}, kF16);
    Write("gguf", "phi3.gguf", Whole(b));
  }
  {  // the first part of a split GGUF
    GgufBuilder b = Llama(3, "llama", 1);
    b.U32("split.no", 0).U32("split.count", 2);
    Write("gguf", "split_part1.gguf", Whole(b));
  }
  {  // per-layer head counts
    GgufBuilder b;
    b.Str("general.architecture", "llama").U32("llama.block_count", 2).U32("llama.embedding_length", 64)
        .U32("llama.attention.head_count", 4).ArrI32("llama.attention.head_count_kv", {4, 2});
    Write("gguf", "per_layer_heads.gguf", b.Header());
  }
  // Values past the caps of src/io/spec_limits.h (tests/unit/reader_limits_test.cc).
  {  // a 2^40-wide value head
    GgufBuilder b = Llama(3, "llama", 1);
    b.U64("llama.attention.value_length", uint64_t{1} << 40);
    Write("gguf", "huge_value_length.gguf", Whole(b));
  }
  {  // a 2^40-wide shared expert and position table in empty tensors
    GgufBuilder b;
    b.Str("general.architecture", "qwen2moe").U32("qwen2moe.block_count", 1).U32("qwen2moe.embedding_length", 64)
        .U32("qwen2moe.attention.head_count", 4).U32("qwen2moe.expert_count", 4).U32("qwen2moe.expert_used_count", 2);
    b.Tensor("token_embd.weight", {64, 32}, kF16).Tensor("position_embd.weight", {0, int64_t{1} << 40}, kF16)
        .Tensor("blk.0.ffn_gate_inp.weight", {64, 4}, kF16).Tensor("blk.0.ffn_up_exps.weight", {64, 32, 4}, kF16)
        .Tensor("blk.0.ffn_up_shexp.weight", {0, int64_t{1} << 40}, kF16);
    Write("gguf", "huge_empty_tensors.gguf", Whole(b));
  }
  {  // MLA with a negative rope dimension
    GgufBuilder b;
    b.Str("general.architecture", "deepseek2").U32("deepseek2.block_count", 1).U32("deepseek2.embedding_length", 64)
        .U32("deepseek2.attention.head_count", 4).U32("deepseek2.attention.kv_lora_rank", 32)
        .I32("deepseek2.rope.dimension_count", -5).U32("deepseek2.attention.key_length", 24)
        .U32("deepseek2.attention.value_length", 16);
    b.Tensor("token_embd.weight", {64, 32}, kF16).Tensor("blk.0.attn_kv_a_mqa.weight", {64, 40}, kF16);
    Write("gguf", "mla_negative_rope.gguf", Whole(b));
  }
  {  // a zero dimension beside two whose product passes 2^64
    std::string s = "GGUF";
    Le32(s, 3);
    Le64(s, 1);
    Le64(s, 0);
    GStr(s, "w");
    Le32(s, 3);
    Le64(s, 0);
    Le64(s, uint64_t{1} << 40);
    Le64(s, uint64_t{1} << 40);
    Le32(s, 0);
    Le64(s, 0);
    s.resize((s.size() + 31) / 32 * 32, '\0');
    Write("gguf", "zero_dim_huge_others.gguf", s);
  }
  // Corrupt variants.
  const std::string good = Whole(Llama(3, "llama", 1));
  Write("gguf", "bad_magic.gguf", "GGUX" + good.substr(4));
  Write("gguf", "truncated_header.gguf", good.substr(0, 200));
  Write("gguf", "truncated_data.gguf", good.substr(0, good.size() - 1));
  std::string v1 = good;
  v1[4] = 1;
  Write("gguf", "version1.gguf", v1);
  std::string swapped = good;
  swapped[4] = 0;
  swapped[7] = 3;
  Write("gguf", "big_endian.gguf", swapped);
  std::string huge_count = good;
  huge_count[15] = 0x7f;
  Write("gguf", "huge_tensor_count.gguf", huge_count);
  {
    std::string s = "GGUF";
    Le32(s, 3);
    Le64(s, 1);
    Le64(s, 1);
    GStr(s, "a");
    Le32(s, 9);
    Le32(s, 9);  // array of arrays
    Le64(s, 2);
    Write("gguf", "nested_array.gguf", s);
  }
  {
    std::string s = "GGUF";
    Le32(s, 3);
    Le64(s, 1);
    Le64(s, 0);
    GStr(s, "w");
    Le32(s, 2);
    Le64(s, uint64_t{1} << 32);
    Le64(s, uint64_t{1} << 32);  // 2^64 elements
    Le32(s, 0);
    Le64(s, 0);
    Write("gguf", "dims_overflow.gguf", s);
  }
  {
    std::string s = "GGUF";
    Le32(s, 3);
    Le64(s, 1);
    Le64(s, 0);
    GStr(s, "w");
    Le32(s, 1);
    Le64(s, 256);
    Le32(s, 31);  // removed Q4_0_4_4
    Le64(s, 0);
    Write("gguf", "removed_type.gguf", s + std::string(300, '\0'));
  }
}

void SafetensorsSeeds() {
  const auto shards = TinyLlamaShards();
  Write("safetensors", "tiny_shard1.safetensors", Whole(shards[0].st));
  Write("safetensors", "tiny_shard2.safetensors", Whole(shards[1].st));
  Write("safetensors", "index.json", IndexJson(shards));
  const std::string p = "model.layers.0.";
  Write("safetensors", "quantized_mix.safetensors",
        Whole(BuildSafetensors({{"model.embed_tokens.weight", "BF16", {16, 64}, 2},
                                {p + "self_attn.q_proj.weight", "F8_E4M3", {64, 64}, 1},
                                {p + "self_attn.q_proj.weight_scale_inv", "F32", {1, 1}, 4},
                                {p + "mlp.experts.gate_up_proj_blocks", "U8", {2, 16, 2, 16}, 1},
                                {p + "mlp.experts.gate_up_proj_scales", "U8", {2, 16, 2}, 1},
                                {p + "mlp.down_proj.qweight", "I32", {16, 64}, 4},
                                {p + "self_attn.o_proj.weight.absmax", "F32", {64}, 4},
                                {"vision_tower.encoder.layers.0.fc1.weight", "F16", {8, 8}, 2},
                                {"model.layers.7.eh_proj.weight", "BF16", {8, 8}, 2}},
                               {{"format", "pt"}})));
  Write("safetensors", "bad_length.safetensors", RawSafetensors("{}").replace(0, 1, "\xff"));
  Write("safetensors", "bad_json.safetensors", RawSafetensors("{\"w\": {\"dtype\": "));
  Write("safetensors", "unknown_dtype.safetensors",
        RawSafetensors(R"({"w":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}})") + std::string(1, '\0'));
  Write("safetensors", "shape_overflow.safetensors",
        RawSafetensors(R"({"w":{"dtype":"BF16","shape":[4611686018427387904,4],"data_offsets":[0,4]}})"));
  Write("safetensors", "deep.safetensors", RawSafetensors("{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}"));
  Write("safetensors", "past_end.safetensors",
        RawSafetensors(R"({"w":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]}})"));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  root = argv[1];
  GgufSeeds();
  SafetensorsSeeds();
  return 0;
}
