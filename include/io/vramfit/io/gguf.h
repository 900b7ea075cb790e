// GGUF headers (llama.cpp model files, versions 2 and 3): metadata, tensor
// infos and the exact bytes of every tensor, read without touching tensor
// data; and the mapping of an architecture's metadata to a ModelSpec.
//
// Byte layout, limits and every error message: docs/formats.md §5.
#ifndef VRAMFIT_IO_GGUF_H_
#define VRAMFIT_IO_GGUF_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vramfit/error.h"
#include "vramfit/io/file_reader.h"
#include "vramfit/model.h"

namespace vramfit {

// GGUF metadata value types (gguf.h enum gguf_type).
enum class GgufType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};
const char* GgufTypeName(GgufType t);  // "u32", "str", "arr", ...

// One metadata value. Scalars have count 1. Arrays keep their values when
// they are short (integers and floats up to kGgufKeptNumbers, strings up to
// kGgufKeptStrings); longer arrays (tokenizer vocabularies) keep only count.
struct GgufValue {
  GgufType type = GgufType::kU32;  // element type for arrays
  bool is_array = false;
  int64_t count = 1;
  std::vector<int64_t> ints;       // integer and bool values
  bool int_out_of_range = false;   // a u64 value above INT64_MAX was seen
  std::vector<double> floats;      // f32 / f64 values
  std::vector<std::string> strings;
  bool IsInteger() const;
};
constexpr int64_t kGgufKeptNumbers = 65536;
constexpr int64_t kGgufKeptStrings = 1024;

struct GgufKv {
  std::string key;
  int64_t offset = 0;  // file offset of the key's length field
  GgufValue value;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // ggml order: ne[0] is the row length
  DType type = DType::kF32;
  int64_t offset = 0;       // relative to the data section
  int64_t bytes = 0;        // ggml_nbytes: ne[0]/blck * type_size * ne[1]*ne[2]*ne[3]
  int64_t info_offset = 0;  // file offset of this tensor info
};

struct GgufFile {
  std::string name;           // the FileReader's name, for messages
  uint32_t version = 0;       // 2 or 3
  std::vector<GgufKv> kv;     // in file order
  std::vector<GgufTensorInfo> tensors;  // in file order
  int64_t alignment = 32;     // general.alignment (default 32)
  int64_t data_offset = 0;    // start of the data section (aligned end of the header)
  int64_t file_size = 0;

  const GgufValue* Find(std::string_view key) const;
  // Typed lookups: nullopt when absent; an error naming the key and its
  // offset when present with another type or out of range.
  Result<std::optional<int64_t>> Int(std::string_view key) const;
  Result<std::optional<std::string>> String(std::string_view key) const;
  // An integer or an array of integers (per-layer values); empty if absent.
  Result<std::vector<int64_t>> Ints(std::string_view key) const;
};

// Caps that keep a hostile header from allocating without bound.
constexpr int64_t kGgufMaxTensors = int64_t{1} << 20;
constexpr int64_t kGgufMaxKv = int64_t{1} << 20;
constexpr int64_t kGgufMaxString = int64_t{64} << 20;  // one string (chat templates are < 1 MiB)
constexpr int64_t kGgufMaxName = 63;                   // ggml GGML_MAX_NAME - 1

// Parses a GGUF header through `file`, reading sequentially from offset 0
// and never past the header. Errors name the file and the offset, key or
// tensor: "<file>: offset 0: not a GGUF file (magic 'PK\x03\x04', expected 'GGUF')".
Result<GgufFile> ReadGguf(FileReader& file);

// Where a GGUF tensor belongs (docs/formats.md §5.4): token_embd -> embed,
// output -> lm_head, attn_* -> attention (q/k norms included), the layer
// norms -> norms, ffn_*_exps and per-expert ffn_*.N -> experts, *_shexp ->
// shared_experts, ffn_gate_inp / exp_probs_b -> router, other ffn_* -> mlp.
// layer is the blk index, -1 outside blocks.
Role GgufTensorRole(std::string_view name);
int64_t GgufTensorLayer(std::string_view name);

// The file names of a split GGUF ("x-00001-of-00003.gguf" ->
// "x-0000K-of-00003.gguf"), given the first file's name and split.count.
// Empty when the name does not follow llama.cpp's split naming.
std::vector<std::string> GgufSplitNames(const std::string& first, int64_t count);

// Builds a Model from a GGUF file (and its split siblings, in order): the
// architecture metadata mapped to a ModelSpec (docs/formats.md §5.5), the
// exact file tensors (file_format "gguf"), and the inventory. `id` names the
// model (a path or hf: reference). Notes about assumptions go to *notes.
Result<Model> ModelFromGguf(const std::vector<GgufFile>& files, const std::string& id,
                            std::vector<std::string>* notes);

// Opens a sibling of a GGUF by its file name (local directory or Hub).
using OpenGgufFn = std::function<Result<std::unique_ptr<FileReader>>(const std::string& file)>;

// Reads `first` and, when its split.count says it is one part of several,
// every sibling through `open`; then ModelFromGguf.
Result<Model> LoadGgufModel(FileReader& first, const std::string& first_name,
                            const OpenGgufFn& open, const std::string& id,
                            std::vector<std::string>* notes);

}  // namespace vramfit

#endif  // VRAMFIT_IO_GGUF_H_
