// Builders for the checkpoint fixtures the reader tests use: header-only
// safetensors files and GGUF headers, written byte by byte (little-endian)
// so that corrupt variants can be made by editing single fields. No weights
// are ever written: a fixture's data section is declared (its size), and
// files on disk are made sparse with resize_file.
#ifndef VRAMFIT_TESTS_DATA_FIXTURES_H_
#define VRAMFIT_TESTS_DATA_FIXTURES_H_

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <unistd.h>

namespace vramfit::fixtures {

inline void PutLe(std::string& s, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline void Le32(std::string& s, uint32_t v) { PutLe(s, v, 4); }
inline void Le64(std::string& s, uint64_t v) { PutLe(s, v, 8); }
inline void GStr(std::string& s, const std::string& text) {
  Le64(s, text.size());
  s += text;
}

// ---------------------------------------------------------------------------
// safetensors: 8-byte little-endian header length, JSON header, data.

struct StTensor {
  std::string name;
  std::string dtype;            // "BF16", "F8_E4M3", "U8", ...
  std::vector<int64_t> shape;
  int64_t elem_bytes = 2;       // bytes per element of dtype
};

struct StFile {
  std::string header;      // the 8 length bytes + the JSON
  int64_t data_bytes = 0;  // declared data section
  int64_t size() const { return static_cast<int64_t>(header.size()) + data_bytes; }
};

// Tensors laid out in the given order, back to back.
inline StFile BuildSafetensors(const std::vector<StTensor>& tensors,
                               const nlohmann::json& metadata = nullptr) {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.is_null()) h["__metadata__"] = metadata;
  int64_t off = 0;
  for (const StTensor& t : tensors) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    const int64_t bytes = n * t.elem_bytes;
    h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + bytes}}};
    off += bytes;
  }
  std::string json = h.dump();
  StFile f;
  Le64(f.header, json.size());
  f.header += json;
  f.data_bytes = off;
  return f;
}

// A raw header from JSON text (for corrupt cases).
inline std::string RawSafetensors(const std::string& json) {
  std::string s;
  Le64(s, json.size());
  return s + json;
}

// A tiny Llama (hidden 64, 2 layers, 4 heads / 2 KV heads of 16, MLP 128,
// vocab 256, untied), hand-counted per modeling_llama.py:
//   embed 256*64 = 16384; per layer q 64*64 + k 32*64 + v 32*64 + o 64*64 =
//   12288, MLP 3*128*64 = 24576, 2 norms 128 -> 36992; x2 = 73984;
//   final norm 64; lm_head 16384.  Total 106816 params = 213632 B in bf16.
constexpr char kTinyLlamaConfig[] = R"({"architectures":["LlamaForCausalLM"],"model_type":"llama",
  "hidden_size":64,"intermediate_size":128,"num_attention_heads":4,"num_key_value_heads":2,
  "num_hidden_layers":2,"vocab_size":256,"max_position_embeddings":512,"torch_dtype":"bfloat16"})";

inline std::vector<StTensor> TinyLlamaLayer(int i) {
  const std::string p = "model.layers." + std::to_string(i) + ".";
  return {{p + "self_attn.q_proj.weight", "BF16", {64, 64}, 2}, {p + "self_attn.k_proj.weight", "BF16", {32, 64}, 2},
          {p + "self_attn.v_proj.weight", "BF16", {32, 64}, 2}, {p + "self_attn.o_proj.weight", "BF16", {64, 64}, 2},
          {p + "mlp.gate_proj.weight", "BF16", {128, 64}, 2},   {p + "mlp.up_proj.weight", "BF16", {128, 64}, 2},
          {p + "mlp.down_proj.weight", "BF16", {64, 128}, 2},   {p + "input_layernorm.weight", "BF16", {64}, 2},
          {p + "post_attention_layernorm.weight", "BF16", {64}, 2}};
}

struct Shard {
  std::string file;
  StFile st;
  std::vector<StTensor> tensors;
};

// The tiny Llama in two shards (layer 0 + embeddings; layer 1 + norm + head).
inline std::vector<Shard> TinyLlamaShards() {
  std::vector<StTensor> s1 = TinyLlamaLayer(0);
  s1.push_back({"model.embed_tokens.weight", "BF16", {256, 64}, 2});
  std::vector<StTensor> s2 = TinyLlamaLayer(1);
  s2.push_back({"model.norm.weight", "BF16", {64}, 2});
  s2.push_back({"lm_head.weight", "BF16", {256, 64}, 2});
  return {{"model-00001-of-00002.safetensors", BuildSafetensors(s1), s1},
          {"model-00002-of-00002.safetensors", BuildSafetensors(s2), s2}};
}

inline std::string IndexJson(const std::vector<Shard>& shards) {
  nlohmann::json map = nlohmann::json::object();
  for (const Shard& sh : shards) {
    for (const StTensor& t : sh.tensors) map[t.name] = sh.file;
  }
  return nlohmann::json{{"metadata", {{"total_size", 213632}}}, {"weight_map", map}}.dump();
}

// ---------------------------------------------------------------------------
// GGUF v3 (or v2): magic, version, counts, key-values, tensor infos, padding.

// ggml block sizes (ggml.c type_traits) for the types the fixtures use.
struct GgmlType {
  uint32_t id;
  int64_t blck;
  int64_t size;
};
constexpr GgmlType kF32{0, 1, 4}, kF16{1, 1, 2}, kQ4_0{2, 32, 18}, kQ8_0{8, 32, 34}, kQ4_K{12, 256, 144},
    kQ5_K{13, 256, 176}, kQ6_K{14, 256, 210}, kBF16{30, 1, 2}, kMXFP4{39, 32, 17}, kIQ1_S{19, 256, 50};

class GgufBuilder {
 public:
  explicit GgufBuilder(uint32_t version = 3) : version_(version) {}

  GgufBuilder& U32(const std::string& key, uint32_t v) { return Kv(key, 4, [&](std::string& s) { Le32(s, v); }); }
  GgufBuilder& I32(const std::string& key, int32_t v) {
    return Kv(key, 5, [&](std::string& s) { Le32(s, static_cast<uint32_t>(v)); });
  }
  GgufBuilder& U64(const std::string& key, uint64_t v) { return Kv(key, 10, [&](std::string& s) { Le64(s, v); }); }
  GgufBuilder& F32(const std::string& key, float v) {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    return Kv(key, 6, [&](std::string& s) { Le32(s, bits); });
  }
  GgufBuilder& Bool(const std::string& key, bool v) {
    return Kv(key, 7, [&](std::string& s) { s.push_back(v ? 1 : 0); });
  }
  GgufBuilder& Str(const std::string& key, const std::string& v) {
    return Kv(key, 8, [&](std::string& s) { GStr(s, v); });
  }
  GgufBuilder& ArrI32(const std::string& key, const std::vector<int32_t>& v) {
    return Kv(key, 9, [&](std::string& s) {
      Le32(s, 5);
      Le64(s, v.size());
      for (int32_t x : v) Le32(s, static_cast<uint32_t>(x));
    });
  }
  GgufBuilder& ArrStr(const std::string& key, const std::vector<std::string>& v) {
    return Kv(key, 9, [&](std::string& s) {
      Le32(s, 8);
      Le64(s, v.size());
      for (const std::string& x : v) GStr(s, x);
    });
  }
  // A tensor with ggml dims ne (ne[0] = row length); offsets are packed.
  GgufBuilder& Tensor(const std::string& name, const std::vector<int64_t>& ne, GgmlType t) {
    int64_t rows = 1;
    for (size_t i = 1; i < ne.size(); ++i) rows *= ne[i];
    const int64_t bytes = ne[0] / t.blck * t.size * rows;
    GStr(tensors_, name);
    Le32(tensors_, static_cast<uint32_t>(ne.size()));
    for (int64_t d : ne) Le64(tensors_, static_cast<uint64_t>(d));
    Le32(tensors_, t.id);
    Le64(tensors_, static_cast<uint64_t>(data_));
    data_ += (bytes + alignment_ - 1) / alignment_ * alignment_;
    last_bytes_ = bytes;
    ++n_tensors_;
    return *this;
  }
  // The header bytes, padded to the alignment when there are tensors.
  std::string Header() const {
    std::string s = "GGUF";
    Le32(s, version_);
    Le64(s, n_tensors_);
    Le64(s, n_kv_);
    s += kv_ + tensors_;
    if (n_tensors_ > 0) s.resize((s.size() + alignment_ - 1) / alignment_ * alignment_, '\0');
    return s;
  }
  // Data section: every tensor padded to the alignment except the last.
  int64_t DataBytes() const {
    if (n_tensors_ == 0) return 0;
    return data_ - (last_bytes_ + alignment_ - 1) / alignment_ * alignment_ + last_bytes_;
  }
  int64_t FileSize() const { return static_cast<int64_t>(Header().size()) + DataBytes(); }

 private:
  template <typename F>
  GgufBuilder& Kv(const std::string& key, uint32_t type, F value) {
    GStr(kv_, key);
    Le32(kv_, type);
    value(kv_);
    ++n_kv_;
    return *this;
  }
  uint32_t version_;
  std::string kv_, tensors_;
  uint64_t n_kv_ = 0, n_tensors_ = 0;
  int64_t data_ = 0, last_bytes_ = 0;
  int64_t alignment_ = 32;
};

// Writes a file whose first bytes are `head` and whose size is `size`
// (the rest is a sparse hole: no weights on disk).
inline void WriteSparse(const std::filesystem::path& p, const std::string& head, int64_t size) {
  std::filesystem::create_directories(p.parent_path());
  {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(head.data(), static_cast<std::streamsize>(head.size()));
  }
  if (size > static_cast<int64_t>(head.size())) std::filesystem::resize_file(p, static_cast<uintmax_t>(size));
}

// A fresh empty directory under the system temp dir.
// (the process id keeps parallel ctest runs apart).
inline std::filesystem::path FreshDir(const std::string& name) {
  const std::filesystem::path d =
      std::filesystem::temp_directory_path() / ("vramfit_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

}  // namespace vramfit::fixtures

#endif  // VRAMFIT_TESTS_DATA_FIXTURES_H_
