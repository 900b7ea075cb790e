// GGUF header reader.
//
// Byte layout (little-endian; ggml/src/gguf.cpp gguf_init_from_reader,
// ggml/include/gguf.h; docs/formats.md §5):
//
//   u32 magic "GGUF" | u32 version (2, 3) | u64 n_tensors | u64 n_kv
//   n_kv x  { str key | u32 type | value }
//           str   = u64 length + bytes (no terminator)
//           value = scalar of the type's size, str, or
//                   array: u32 element type (never array) | u64 count | elements
//   n_tensors x { str name | u32 n_dims (<= 4) | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   padding to general.alignment (u32, default 32), then the data section;
//   tensor i starts at data + offset_i, offsets packed in order, each
//   tensor padded to the alignment; bytes = ne[0]/blck * type_size * ne[1..3].
//
// Like ggml, every count and length is checked against what is left of the
// file before anything is allocated, and every product is overflow-checked.
#include "vramfit/io/gguf.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include <fmt/format.h>

#include "spec_limits.h"
#include "vramfit/io/hf_config.h"

namespace vramfit {
namespace {

constexpr int64_t kChunk = 64 * 1024;  // read-ahead of the header cursor

// Sequential reader over a FileReader with a read-ahead buffer; every field
// read is bounds-checked against the file size first.
class Cursor {
 public:
  explicit Cursor(FileReader& f) : f_(f), size_(f.size()) {}

  int64_t pos() const { return pos_; }
  int64_t left() const { return size_ - pos_; }
  const std::string& file() const { return f_.name(); }

  // Makes n bytes at pos() available; `what` names the field for the
  // truncation message.
  Status Need(int64_t n, std::string_view what) {
    if (n > left()) {
      return Corrupt(fmt::format("{}: truncated at offset {}: {} needs {} bytes, the file has {}",
                                 file(), pos_, what, n, size_));
    }
    const int64_t buf_end = buf_start_ + static_cast<int64_t>(buf_.size());
    if (pos_ + n <= buf_end) return {};
    // Keep the unread tail, then read at least what is needed plus a chunk.
    std::string keep = pos_ < buf_end ? buf_.substr(static_cast<size_t>(pos_ - buf_start_)) : std::string();
    const int64_t from = pos_ + static_cast<int64_t>(keep.size());
    const int64_t need = pos_ + n - from;
    const int64_t want = std::min(size_ - from, std::max(need, kChunk));
    auto more = f_.Read(from, want);
    // A cached header prefix holds what an earlier parse read, not a whole
    // chunk beyond it: fall back to the exact bytes.
    if (!more.ok() && more.error().kind == ErrorKind::kNotFound && want > need) more = f_.Read(from, need);
    if (!more.ok()) return more.error();
    buf_ = std::move(keep) + *more;
    buf_start_ = pos_;
    return {};
  }

  // REQUIRES: Need(n) succeeded.
  uint64_t Le(int n) {
    uint64_t v = 0;
    const size_t at = static_cast<size_t>(pos_ - buf_start_);
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(buf_[at + static_cast<size_t>(i)]);
    pos_ += n;
    return v;
  }
  std::string Bytes(int64_t n) {
    std::string s = buf_.substr(static_cast<size_t>(pos_ - buf_start_), static_cast<size_t>(n));
    pos_ += n;
    return s;
  }

  Result<uint32_t> U32(std::string_view what) {
    VRAMFIT_TRY(Need(4, what));
    return static_cast<uint32_t>(Le(4));
  }
  Result<uint64_t> U64(std::string_view what) {
    VRAMFIT_TRY(Need(8, what));
    return Le(8);
  }
  // A GGUF string: u64 length + bytes, at most `max` bytes.
  Result<std::string> Str(std::string_view what, int64_t max) {
    const int64_t at = pos_;
    auto len = U64(what);
    if (!len.ok()) return len.error();
    if (*len > static_cast<uint64_t>(max)) {
      return Corrupt(fmt::format("{}: offset {}: {}: string length {} exceeds the limit of {} bytes",
                                 file(), at, what, *len, max));
    }
    const int64_t n = static_cast<int64_t>(*len);
    if (n > left()) {
      return Corrupt(fmt::format("{}: offset {}: {}: string length {} runs past the end of the file ({} bytes)",
                                 file(), at, what, n, size_));
    }
    VRAMFIT_TRY(Need(n, what));
    return Bytes(n);
  }
  Status Skip(int64_t n, std::string_view what) {
    // Skipped bytes are read in bounded chunks (the Hub reader only holds a
    // prefix, so the cursor never seeks ahead).
    while (n > 0) {
      const int64_t step = std::min(n, kChunk);
      VRAMFIT_TRY(Need(step, what));
      pos_ += step;
      n -= step;
    }
    return {};
  }
  Status SeekForward(int64_t to, std::string_view what) { return Skip(to - pos_, what); }

 private:
  FileReader& f_;
  int64_t size_;
  int64_t pos_ = 0;
  std::string buf_;
  int64_t buf_start_ = 0;
};

// Size in bytes of a fixed-size value type; 0 for str and arr.
int64_t TypeSize(GgufType t) {
  switch (t) {
    case GgufType::kU8: case GgufType::kI8: case GgufType::kBool: return 1;
    case GgufType::kU16: case GgufType::kI16: return 2;
    case GgufType::kU32: case GgufType::kI32: case GgufType::kF32: return 4;
    case GgufType::kU64: case GgufType::kI64: case GgufType::kF64: return 8;
    case GgufType::kString: case GgufType::kArray: return 0;
  }
  return 0;
}

bool KnownType(uint32_t t) { return t <= 12; }

// One fixed-size element already made available by Need().
void ReadElement(Cursor& c, GgufType t, GgufValue& v, bool keep) {
  switch (t) {
    case GgufType::kU8: { const uint64_t x = c.Le(1); if (keep) v.ints.push_back(static_cast<int64_t>(x)); break; }
    case GgufType::kI8: { const int8_t x = static_cast<int8_t>(c.Le(1)); if (keep) v.ints.push_back(x); break; }
    case GgufType::kBool: { const uint64_t x = c.Le(1); if (keep) v.ints.push_back(x != 0 ? 1 : 0); break; }
    case GgufType::kU16: { const uint64_t x = c.Le(2); if (keep) v.ints.push_back(static_cast<int64_t>(x)); break; }
    case GgufType::kI16: { const int16_t x = static_cast<int16_t>(c.Le(2)); if (keep) v.ints.push_back(x); break; }
    case GgufType::kU32: { const uint64_t x = c.Le(4); if (keep) v.ints.push_back(static_cast<int64_t>(x)); break; }
    case GgufType::kI32: { const int32_t x = static_cast<int32_t>(static_cast<uint32_t>(c.Le(4))); if (keep) v.ints.push_back(x); break; }
    case GgufType::kU64: {
      const uint64_t x = c.Le(8);
      if (x > static_cast<uint64_t>(INT64_MAX)) v.int_out_of_range = true;
      if (keep) v.ints.push_back(static_cast<int64_t>(x & static_cast<uint64_t>(INT64_MAX)));
      break;
    }
    case GgufType::kI64: { const int64_t x = static_cast<int64_t>(c.Le(8)); if (keep) v.ints.push_back(x); break; }
    case GgufType::kF32: {
      const uint32_t bits = static_cast<uint32_t>(c.Le(4));
      float f;
      std::memcpy(&f, &bits, 4);
      if (keep) v.floats.push_back(f);
      break;
    }
    case GgufType::kF64: {
      const uint64_t bits = c.Le(8);
      double d;
      std::memcpy(&d, &bits, 8);
      if (keep) v.floats.push_back(d);
      break;
    }
    case GgufType::kString: case GgufType::kArray: break;
  }
}

Status ReadValue(Cursor& c, const std::string& key, int64_t key_at, GgufValue& v) {
  const std::string at = fmt::format("{}: offset {}: key '{}'", c.file(), key_at, key);
  auto type = c.U32(fmt::format("key '{}' type", key));
  if (!type.ok()) return type.error();
  if (!KnownType(*type)) return Corrupt(fmt::format("{}: unknown value type {}", at, *type));
  v.type = static_cast<GgufType>(*type);
  if (v.type == GgufType::kArray) {
    v.is_array = true;
    auto et = c.U32(fmt::format("key '{}' array type", key));
    if (!et.ok()) return et.error();
    if (!KnownType(*et)) return Corrupt(fmt::format("{}: unknown array element type {}", at, *et));
    v.type = static_cast<GgufType>(*et);
    if (v.type == GgufType::kArray) return Corrupt(at + ": arrays of arrays are not valid GGUF");
    auto n = c.U64(fmt::format("key '{}' array length", key));
    if (!n.ok()) return n.error();
    // Every element takes at least its size (a string at least its length).
    const int64_t min_each = v.type == GgufType::kString ? 8 : TypeSize(v.type);
    if (*n > static_cast<uint64_t>(c.left() / min_each)) {
      return Corrupt(fmt::format("{}: array of {} {} values cannot fit in the {} bytes left", at, *n,
                                 GgufTypeName(v.type), c.left()));
    }
    v.count = static_cast<int64_t>(*n);
  }
  const std::string what = fmt::format("key '{}' value", key);
  if (v.type == GgufType::kString) {
    const bool keep = !v.is_array || v.count <= kGgufKeptStrings;
    for (int64_t i = 0; i < v.count; ++i) {
      auto s = c.Str(what, kGgufMaxString);
      if (!s.ok()) return s.error();
      if (keep) v.strings.push_back(std::move(s.value()));
    }
    return {};
  }
  const int64_t size = TypeSize(v.type);
  const bool keep = !v.is_array || v.count <= kGgufKeptNumbers;
  if (keep) {
    if (v.type == GgufType::kF32 || v.type == GgufType::kF64) v.floats.reserve(static_cast<size_t>(v.count));
    else v.ints.reserve(static_cast<size_t>(v.count));
  }
  int64_t i = 0;
  while (i < v.count) {
    const int64_t batch = std::min<int64_t>(v.count - i, kChunk / 8);
    VRAMFIT_TRY(c.Need(batch * size, what));
    for (int64_t j = 0; j < batch; ++j) ReadElement(c, v.type, v, keep);
    i += batch;
  }
  return {};
}

struct RemovedType { int id; const char* name; };
constexpr RemovedType kRemoved[] = {
    {4, "Q4_2"}, {5, "Q4_3"}, {31, "Q4_0_4_4"}, {32, "Q4_0_4_8"}, {33, "Q4_0_8_8"},
    {36, "IQ4_NL_4_4"}, {37, "IQ4_NL_4_8"}, {38, "IQ4_NL_8_8"},
};

std::string ShapeText(const std::vector<int64_t>& ne) { return fmt::format("[{}]", fmt::join(ne, ", ")); }

bool HasControl(const std::string& s) {
  return std::any_of(s.begin(), s.end(), [](char ch) {
    const unsigned char u = static_cast<unsigned char>(ch);
    return u < 0x20 || u == 0x7f;
  });
}

Status ReadTensorInfo(Cursor& c, int64_t index, std::set<std::string>& seen, GgufTensorInfo& t) {
  t.info_offset = c.pos();
  const std::string idx = fmt::format("tensor #{}", index);
  auto name = c.Str(idx + " name", kGgufMaxString);
  if (!name.ok()) return name.error();
  if (static_cast<int64_t>(name->size()) > kGgufMaxName) {
    return Corrupt(fmt::format("{}: offset {}: {}: name of {} bytes is longer than ggml's limit of {}",
                               c.file(), t.info_offset, idx, name->size(), kGgufMaxName));
  }
  if (HasControl(*name)) {
    return Corrupt(fmt::format("{}: offset {}: {}: name contains a control character", c.file(),
                               t.info_offset, idx));
  }
  t.name = std::move(name.value());
  const std::string at = fmt::format("{}: offset {}: tensor '{}'", c.file(), t.info_offset, t.name);
  if (!seen.insert(t.name).second) return Corrupt(at + ": appears twice");
  auto n_dims = c.U32(fmt::format("tensor '{}' dimension count", t.name));
  if (!n_dims.ok()) return n_dims.error();
  if (*n_dims > 4) return Corrupt(fmt::format("{}: {} dimensions (ggml allows at most 4)", at, *n_dims));
  int64_t elems = 1;
  bool overflow = false;
  for (uint32_t j = 0; j < *n_dims; ++j) {
    auto d = c.U64(fmt::format("tensor '{}' dimension {}", t.name, j));
    if (!d.ok()) return d.error();
    if (*d > static_cast<uint64_t>(INT64_MAX)) {
      return Corrupt(fmt::format("{}: dimension {} is {}, out of range", at, j, *d));
    }
    t.ne.push_back(static_cast<int64_t>(*d));
    if (!overflow && __builtin_mul_overflow(elems, t.ne.back(), &elems)) overflow = true;
  }
  if (overflow) return Corrupt(fmt::format("{}: shape {} overflows 64 bits", at, ShapeText(t.ne)));
  auto type = c.U32(fmt::format("tensor '{}' type", t.name));
  if (!type.ok()) return type.error();
  for (const RemovedType& r : kRemoved) {
    if (static_cast<uint32_t>(r.id) == *type) {
      return Unsupported(fmt::format("{}: ggml type {} ({}) was removed from ggml; re-convert the model "
                                     "with a current llama.cpp", at, r.id, r.name));
    }
  }
  auto dt = DTypeFromGgmlId(static_cast<int64_t>(*type));
  if (!dt) return Unsupported(fmt::format("{}: unknown ggml type {}", at, *type));
  t.type = *dt;
  const DTypeInfo& info = Info(t.type);
  const int64_t row = t.ne.empty() ? 1 : t.ne[0];
  if (row % info.block_elems != 0) {
    return Corrupt(fmt::format("{}: row of {} elements is not a multiple of the {} block ({} elements)",
                               at, row, info.name, info.block_elems));
  }
  // Rows = the product of ne[1..]: at most elems, unless a dimension is 0
  // (then the others may multiply past 64 bits, and there are no rows).
  int64_t rows = 0;
  if (elems != 0) {
    rows = 1;
    for (size_t j = 1; j < t.ne.size(); ++j) rows *= t.ne[j];  // <= elems: no overflow
  }
  int64_t row_bytes = 0;
  if (__builtin_mul_overflow(row / info.block_elems, info.block_bytes, &row_bytes) ||
      __builtin_mul_overflow(row_bytes, rows, &t.bytes)) {
    return Corrupt(fmt::format("{}: shape {} of {} overflows 64-bit byte counts", at, ShapeText(t.ne), info.name));
  }
  auto off = c.U64(fmt::format("tensor '{}' data offset", t.name));
  if (!off.ok()) return off.error();
  if (*off > static_cast<uint64_t>(INT64_MAX)) {
    return Corrupt(fmt::format("{}: data offset {} is out of range", at, *off));
  }
  t.offset = static_cast<int64_t>(*off);
  return {};
}

int64_t AlignUp(int64_t x, int64_t a) { return (x + a - 1) / a * a; }  // a: power of two, x small

}  // namespace

const char* GgufTypeName(GgufType t) {
  switch (t) {
    case GgufType::kU8: return "u8";
    case GgufType::kI8: return "i8";
    case GgufType::kU16: return "u16";
    case GgufType::kI16: return "i16";
    case GgufType::kU32: return "u32";
    case GgufType::kI32: return "i32";
    case GgufType::kF32: return "f32";
    case GgufType::kBool: return "bool";
    case GgufType::kString: return "str";
    case GgufType::kArray: return "arr";
    case GgufType::kU64: return "u64";
    case GgufType::kI64: return "i64";
    case GgufType::kF64: return "f64";
  }
  return "?";
}

bool GgufValue::IsInteger() const {
  switch (type) {
    case GgufType::kU8: case GgufType::kI8: case GgufType::kU16: case GgufType::kI16:
    case GgufType::kU32: case GgufType::kI32: case GgufType::kU64: case GgufType::kI64:
      return true;
    default:
      return false;
  }
}

const GgufValue* GgufFile::Find(std::string_view key) const {
  for (const GgufKv& kv : this->kv) {
    if (kv.key == key) return &kv.value;
  }
  return nullptr;
}

namespace {
const GgufKv* FindKv(const GgufFile& f, std::string_view key) {
  for (const GgufKv& kv : f.kv) {
    if (kv.key == key) return &kv;
  }
  return nullptr;
}
std::string TypeText(const GgufValue& v) {
  return v.is_array ? fmt::format("an array of {}", GgufTypeName(v.type)) : GgufTypeName(v.type);
}
}  // namespace

Result<std::optional<int64_t>> GgufFile::Int(std::string_view key) const {
  const GgufKv* kv = FindKv(*this, key);
  if (kv == nullptr) return std::optional<int64_t>();
  const GgufValue& v = kv->value;
  if (v.is_array || !v.IsInteger() || v.ints.size() != 1) {
    return Corrupt(fmt::format("{}: offset {}: key '{}': expected an integer, got {}", name, kv->offset,
                               key, TypeText(v)));
  }
  if (v.int_out_of_range) {
    return Corrupt(fmt::format("{}: offset {}: key '{}': integer is out of range", name, kv->offset, key));
  }
  return std::optional<int64_t>(v.ints[0]);
}

Result<std::optional<std::string>> GgufFile::String(std::string_view key) const {
  const GgufKv* kv = FindKv(*this, key);
  if (kv == nullptr) return std::optional<std::string>();
  const GgufValue& v = kv->value;
  if (v.is_array || v.type != GgufType::kString || v.strings.size() != 1) {
    return Corrupt(fmt::format("{}: offset {}: key '{}': expected a string, got {}", name, kv->offset,
                               key, TypeText(v)));
  }
  return std::optional<std::string>(v.strings[0]);
}

Result<std::vector<int64_t>> GgufFile::Ints(std::string_view key) const {
  const GgufKv* kv = FindKv(*this, key);
  if (kv == nullptr) return std::vector<int64_t>();
  const GgufValue& v = kv->value;
  if (!v.IsInteger() && v.type != GgufType::kBool) {
    return Corrupt(fmt::format("{}: offset {}: key '{}': expected an integer or a list of integers, got {}",
                               name, kv->offset, key, TypeText(v)));
  }
  if (v.int_out_of_range) {
    return Corrupt(fmt::format("{}: offset {}: key '{}': integer is out of range", name, kv->offset, key));
  }
  if (static_cast<int64_t>(v.ints.size()) != v.count) {
    return Corrupt(fmt::format("{}: offset {}: key '{}': a list of {} values is too long to read",
                               name, kv->offset, key, v.count));
  }
  return v.ints;
}

namespace {

// Magic, version and the two counts; each count is capped and checked
// against the bytes left before anything is reserved.
Status ReadPreamble(Cursor& c, GgufFile& g, uint64_t* n_tensors, uint64_t* n_kv) {
  const std::string& f = g.name;
  if (g.file_size < 4) {
    return Corrupt(fmt::format("{}: truncated at offset 0: the GGUF magic needs 4 bytes, the file has {}",
                               f, g.file_size));
  }
  VRAMFIT_TRY(c.Need(4, "the GGUF magic"));
  const std::string magic = c.Bytes(4);
  if (magic != "GGUF") {
    std::string shown;
    for (char ch : magic) {
      const unsigned char u = static_cast<unsigned char>(ch);
      shown += (u >= 0x20 && u < 0x7f && ch != '\'' && ch != '\\') ? std::string(1, ch)
                                                                    : fmt::format("\\x{:02x}", u);
    }
    return Corrupt(fmt::format("{}: offset 0: not a GGUF file (magic '{}', expected 'GGUF')", f, shown));
  }
  auto version = c.U32("the GGUF version");
  if (!version.ok()) return version.error();
  g.version = *version;
  if ((g.version & 0xFFFFu) == 0 && g.version != 0) {
    return Unsupported(fmt::format("{}: offset 4: GGUF version {} looks byte-swapped: big-endian GGUF "
                                   "files are not supported", f, g.version));
  }
  if (g.version == 1) {
    return Unsupported(fmt::format("{}: offset 4: GGUF version 1 is not supported (versions 2 and 3 are); "
                                   "re-convert the model with a current llama.cpp", f));
  }
  if (g.version != 2 && g.version != 3) {
    return Unsupported(fmt::format("{}: offset 4: GGUF version {} is not supported (versions 2 and 3 are)",
                                   f, g.version));
  }
  auto tensors = c.U64("the tensor count");
  if (!tensors.ok()) return tensors.error();
  if (*tensors > static_cast<uint64_t>(kGgufMaxTensors)) {
    return Corrupt(fmt::format("{}: offset 8: tensor count {} exceeds the limit of {}", f, *tensors,
                               kGgufMaxTensors));
  }
  auto kvs = c.U64("the metadata count");
  if (!kvs.ok()) return kvs.error();
  if (*kvs > static_cast<uint64_t>(kGgufMaxKv)) {
    return Corrupt(fmt::format("{}: offset 16: metadata count {} exceeds the limit of {}", f, *kvs,
                               kGgufMaxKv));
  }
  // A key-value pair takes at least 8 + 1 + 4 + 1 bytes, a tensor info at
  // least 8 + 1 + 4 + 4 + 8 (both counts are <= 2^20: no overflow).
  const uint64_t min_bytes = *kvs * 14 + *tensors * 25;
  if (min_bytes > static_cast<uint64_t>(c.left())) {
    return Corrupt(fmt::format("{}: offset 8: {} tensors and {} metadata pairs cannot fit in the {} bytes "
                               "left", f, *tensors, *kvs, c.left()));
  }
  *n_tensors = *tensors;
  *n_kv = *kvs;
  return {};
}

// n_kv key-value pairs: non-empty unique keys without control characters.
Status ReadMetadata(Cursor& c, uint64_t n_kv, GgufFile& g) {
  const std::string& f = g.name;
  std::set<std::string> keys;
  g.kv.reserve(static_cast<size_t>(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    GgufKv kv;
    kv.offset = c.pos();
    auto key = c.Str(fmt::format("key #{}", i), kGgufMaxString);
    if (!key.ok()) return key.error();
    if (key->empty()) return Corrupt(fmt::format("{}: offset {}: key #{} has an empty name", f, kv.offset, i));
    if (HasControl(*key)) {
      return Corrupt(fmt::format("{}: offset {}: key #{} contains a control character", f, kv.offset, i));
    }
    kv.key = std::move(key.value());
    if (!keys.insert(kv.key).second) {
      return Corrupt(fmt::format("{}: offset {}: key '{}' appears twice", f, kv.offset, kv.key));
    }
    VRAMFIT_TRY(ReadValue(c, kv.key, kv.offset, kv.value));
    g.kv.push_back(std::move(kv));
  }
  return {};
}

// general.alignment: a u32 power of two when present.
Status ReadAlignment(GgufFile& g) {
  const GgufKv* a = FindKv(g, "general.alignment");
  if (a == nullptr) return {};
  const GgufValue& v = a->value;
  const bool ok = !v.is_array && v.type == GgufType::kU32 && !v.ints.empty() && v.ints[0] > 0 &&
                  (v.ints[0] & (v.ints[0] - 1)) == 0;
  if (!ok) {
    return Corrupt(fmt::format("{}: offset {}: key 'general.alignment': must be a u32 power of two, got {}{}",
                               g.name, a->offset, TypeText(v),
                               (!v.is_array && v.IsInteger() && !v.ints.empty()) ? fmt::format(" {}", v.ints[0]) : ""));
  }
  g.alignment = v.ints[0];
  return {};
}

// The data section's start, and every tensor packed in order inside the file
// (ggml: "tensor '%s' has offset %" PRIu64 ", expected %zu").
Status CheckDataLayout(Cursor& c, int64_t file_size, GgufFile& g) {
  const std::string& f = g.name;
  g.data_offset = c.pos();
  if (!g.tensors.empty()) {
    const int64_t aligned = AlignUp(c.pos(), g.alignment);
    if (aligned > file_size) {
      return Corrupt(fmt::format("{}: offset {}: the data section would start at byte {}, past the end of "
                                 "the file ({} bytes)", f, c.pos(), aligned, file_size));
    }
    g.data_offset = aligned;
  }
  int64_t expected = 0;
  for (const GgufTensorInfo& t : g.tensors) {
    if (t.offset != expected) {
      return Corrupt(fmt::format("{}: tensor '{}': data offset {}, expected {} (tensors are stored in order, "
                                 "each padded to {} bytes)", f, t.name, t.offset, expected, g.alignment));
    }
    int64_t end = 0;
    if (__builtin_add_overflow(g.data_offset, t.offset, &end) || __builtin_add_overflow(end, t.bytes, &end) ||
        end > file_size) {
      return Corrupt(fmt::format("{}: tensor '{}': its {} bytes at data offset {} run past the end of the file "
                                 "({} bytes)", f, t.name, t.bytes, t.offset, file_size));
    }
    const int64_t padded = AlignUp(t.bytes, g.alignment);  // t.bytes < file size: no overflow
    expected = CheckedAdd(expected, padded);
  }
  return {};
}

}  // namespace

Result<GgufFile> ReadGguf(FileReader& file) {
  Cursor c(file);
  GgufFile g;
  g.name = file.name();
  g.file_size = file.size();
  uint64_t n_tensors = 0, n_kv = 0;
  VRAMFIT_TRY(ReadPreamble(c, g, &n_tensors, &n_kv));
  VRAMFIT_TRY(ReadMetadata(c, n_kv, g));
  VRAMFIT_TRY(ReadAlignment(g));
  std::set<std::string> seen;
  g.tensors.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    VRAMFIT_TRY(ReadTensorInfo(c, static_cast<int64_t>(i), seen, t));
    g.tensors.push_back(std::move(t));
  }
  VRAMFIT_TRY(CheckDataLayout(c, file.size(), g));
  return g;
}

// ---------------------------------------------------------------------------
// Tensor roles.

namespace {

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool EndsWith(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// "blk.12.attn_q.weight" -> ("attn_q", 12); other names -> (name without
// .weight/.bias, -1).
std::pair<std::string_view, int64_t> SplitName(std::string_view name) {
  for (std::string_view suffix : {".weight", ".bias", ".scale"}) {
    if (EndsWith(name, suffix)) {
      name.remove_suffix(suffix.size());
      break;
    }
  }
  if (!StartsWith(name, "blk.")) return {name, -1};
  std::string_view rest = name.substr(4);
  const size_t dot = rest.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot > 9) return {name, -1};
  int64_t layer = 0;
  for (char ch : rest.substr(0, dot)) {
    if (ch < '0' || ch > '9') return {name, -1};
    layer = layer * 10 + (ch - '0');
  }
  return {rest.substr(dot + 1), layer};
}

bool IsLayerNorm(std::string_view x) {
  // q/k (and MLA q_a/kv_a) norms sit inside attention, as in the Hugging Face
  // inventory; the rest are the block's own norms.
  if (x == "attn_q_norm" || x == "attn_k_norm" || x == "attn_q_a_norm" || x == "attn_kv_a_norm") return false;
  // A recurrent mixer's own norms (Mamba-2 / Gated DeltaNet gated norm,
  // Jamba dt/B/C norms) belong to the mixer.
  if (StartsWith(x, "ssm_")) return false;
  return EndsWith(x, "_norm") || x.find("_norm_") != std::string_view::npos || x == "norm";
}

}  // namespace

Role GgufTensorRole(std::string_view name) {
  const auto [x, layer] = SplitName(name);
  if (layer < 0) {
    if (x == "token_embd" || x == "token_types") return Role::kEmbed;
    if (x == "position_embd") return Role::kPosEmbed;
    if (x == "output") return Role::kLmHead;
    if (IsLayerNorm(x)) return Role::kNorm;
    if (StartsWith(x, "rope_")) return Role::kAttention;
    return Role::kMlp;
  }
  if (IsLayerNorm(x)) return Role::kNorm;
  if (x == "ffn_gate_inp" || x == "exp_probs_b") return Role::kRouter;
  if (EndsWith(x, "_shexp")) return Role::kSharedExperts;
  if (EndsWith(x, "_exps") || EndsWith(x, "_chexps")) return Role::kExperts;
  // Older files store experts one by one: ffn_gate.3, ffn_up.3, ffn_down.3.
  if (StartsWith(x, "ffn_") && x.find('.') != std::string_view::npos) return Role::kExperts;
  // Recurrent mixers: Mamba / Mamba-2 / Gated DeltaNet (ssm_*), LFM2's
  // short convolution (shortconv.*).
  if (StartsWith(x, "ssm_") || StartsWith(x, "shortconv.")) return Role::kMixer;
  if (StartsWith(x, "attn_") || StartsWith(x, "time_mix_")) return Role::kAttention;
  return Role::kMlp;
}

int64_t GgufTensorLayer(std::string_view name) { return SplitName(name).second; }

std::vector<std::string> GgufSplitNames(const std::string& any, int64_t count) {
  // llama_split_path: "%s-%05d-of-%05d.gguf" with split number 1..count.
  constexpr std::string_view kExt = ".gguf";
  if (count < 1 || count > 99999 || !EndsWith(any, kExt) || any.size() < kExt.size() + 15) return {};
  const size_t tail = any.size() - kExt.size() - 15;  // "-00001-of-00003"
  const std::string_view t = std::string_view(any).substr(tail, 15);
  auto digits = [](std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
  };
  if (t[0] != '-' || !digits(t.substr(1, 5)) || t.substr(6, 4) != "-of-" || !digits(t.substr(10, 5))) return {};
  if (std::stoll(std::string(t.substr(10, 5))) != count) return {};
  const std::string prefix = any.substr(0, tail);
  std::vector<std::string> out;
  for (int64_t k = 1; k <= count; ++k) out.push_back(fmt::format("{}-{:05d}-of-{:05d}.gguf", prefix, k, count));
  return out;
}

// ---------------------------------------------------------------------------
// Architecture metadata -> ModelSpec.

namespace {

// llama.cpp architecture name -> Hugging Face model_type.
std::string HfModelType(const std::string& arch, bool score_bias) {
  static const std::map<std::string, std::string> kMap = {
      {"llama", "llama"},       {"mistral3", "mistral"},    {"qwen2", "qwen2"},
      {"qwen2moe", "qwen2_moe"}, {"qwen3", "qwen3"},        {"qwen3moe", "qwen3_moe"},
      {"gemma", "gemma"},       {"gemma2", "gemma2"},       {"gemma3", "gemma3_text"},
      {"gpt-oss", "gpt_oss"},   {"phi3", "phi3"},           {"phi2", "phi"},
      {"phimoe", "phimoe"},     {"falcon", "falcon"},       {"gptneox", "gpt_neox"},
      {"gpt2", "gpt2"},         {"bloom", "bloom"},         {"starcoder", "gpt_bigcode"},
      {"starcoder2", "starcoder2"}, {"mpt", "mpt"},         {"command-r", "cohere"},
      {"cohere2", "cohere2"},   {"olmo2", "olmo2"},         {"granite", "granite"},
      {"internlm2", "internlm2"}, {"stablelm", "stablelm"}, {"glm4moe", "glm4_moe"},
      {"lfm2", "lfm2"},         {"mamba", "mamba"},         {"mamba2", "mamba2"},
      {"qwen3next", "qwen3_next"},
  };
  if (arch == "deepseek2") return score_bias ? "deepseek_v3" : "deepseek_v2";
  auto it = kMap.find(arch);
  return it == kMap.end() ? arch : it->second;
}

// The recurrent and hybrid architectures of llama.cpp (llama-arch.cpp
// llm_arch_is_recurrent / llm_arch_is_hybrid) the reader maps; the others
// are refused by name (kUnmappedRecurrent).
bool IsMappedRecurrent(const std::string& arch) {
  return arch == "lfm2" || arch == "mamba" || arch == "mamba2" || arch == "qwen3next";
}
bool IsUnmappedRecurrent(const std::string& arch) {
  static const std::set<std::string> kUnmapped = {
      "rwkv6", "rwkv6qwen2", "rwkv7", "arwkv7", "jamba", "falcon-h1", "plamo2", "granitehybrid",
      "lfm2moe", "nemotron_h", "nemotron_h_moe", "kimi-linear", "bailingmoe3", "kimi-k3", "qwen35",
      "qwen35moe", "qwen4exp", "minimax-01"};
  return kUnmapped.count(arch) > 0;
}

// Sliding-window layer pattern llama.cpp hard-codes per architecture
// (llama-model.cpp load_hparams: hparams.set_swa_pattern(n)); 0 = none.
int64_t DefaultSwaPattern(const std::string& arch) {
  if (arch == "gemma2" || arch == "gpt-oss") return 2;
  if (arch == "gemma3") return 6;
  if (arch == "cohere2") return 4;
  return 0;
}

class Mapper {
 public:
  Mapper(const std::vector<GgufFile>& files, std::vector<std::string>* notes)
      : g_(files[0]), notes_(notes) {
    for (const GgufFile& f : files) {
      for (const GgufTensorInfo& t : f.tensors) tensors_.emplace(t.name, &t);
    }
  }

  Result<Model> Map(const std::string& id);

 private:
  const GgufTensorInfo* T(const std::string& name) const {
    auto it = tensors_.find(name);
    return it == tensors_.end() ? nullptr : it->second;
  }
  // blk.<il>.<x>.weight
  const GgufTensorInfo* W(int64_t il, std::string_view x) const {
    return T(fmt::format("blk.{}.{}.weight", il, x));
  }
  const GgufTensorInfo* B(int64_t il, std::string_view x) const {
    return T(fmt::format("blk.{}.{}.bias", il, x));
  }
  static int64_t Ne(const GgufTensorInfo* t, size_t i) {
    return (t != nullptr && i < t->ne.size()) ? t->ne[i] : 0;
  }

  std::string K(std::string_view k) const { return fmt::format("{}.{}", arch_, k); }

  // An integer key, or a per-layer list whose entries are all equal.
  Result<std::optional<int64_t>> Uniform(std::string_view k) const {
    const std::string key = K(k);
    auto v = g_.Ints(key);
    if (!v.ok()) return v.error();
    if (v->empty()) return std::optional<int64_t>();
    const int64_t first = v->front();
    for (int64_t x : *v) {
      if (x != first) {
        std::vector<int64_t> shown(v->begin(), v->begin() + std::min<size_t>(v->size(), 6));
        return Unsupported(fmt::format("{}: key '{}': per-layer values ({}{}) are not modelled", g_.name, key,
                                       fmt::join(shown, ", "), v->size() > 6 ? ", ..." : ""));
      }
    }
    return std::optional<int64_t>(first);
  }
  // A Uniform key that must be present.
  Result<int64_t> Required(std::string_view k) const {
    auto v = Uniform(k);
    if (!v.ok()) return v.error();
    if (!v->has_value()) return Corrupt(fmt::format("{}: required key '{}' is missing", g_.name, K(k)));
    return **v;
  }

  // Each step fills its part of the spec from the metadata and the tensor
  // list, in the order of docs/formats.md §5.5.
  Status ReadArchitecture(ModelSpec& s);
  Status ReadSizes(ModelSpec& s);
  Status ReadAttention(ModelSpec& s);
  void ReadNorms(ModelSpec& s) const;
  Status ReadFeedForward(ModelSpec& s);
  Status ReadExperts(ModelSpec& s, int64_t first_moe, bool* gated);
  Status ReadSlidingWindow(ModelSpec& s);
  Result<std::optional<int64_t>> KvHeads(int64_t n_block);
  int64_t FirstAttentionBlock(int64_t n_layer) const;
  Status ReadRecurrent(ModelSpec& s);
  Status ReadShortConv(ModelSpec& s);
  Status ReadMamba(ModelSpec& s);
  Status ReadGatedDeltaNet(ModelSpec& s);
  void NoteUnknownArchitecture() const;

  const GgufFile& g_;
  std::vector<std::string>* notes_;
  std::map<std::string, const GgufTensorInfo*> tensors_;
  std::string arch_;
  std::vector<int64_t> kv_layers_;  // per-layer head_count_kv of a hybrid (0: no attention)
  int64_t attn0_ = 0;               // the first block with attention tensors
};

#define VRAMFIT_ASSIGN(lhs, expr)          \
  auto lhs##_r_ = (expr);                  \
  if (!lhs##_r_.ok()) return lhs##_r_.error(); \
  auto lhs = std::move(lhs##_r_.value())

Result<Model> Mapper::Map(const std::string& id) {
  ModelSpec s;
  s.id = id;
  VRAMFIT_TRY(ReadArchitecture(s));
  VRAMFIT_TRY(ReadSizes(s));
  attn0_ = FirstAttentionBlock(s.num_hidden_layers);
  VRAMFIT_TRY(ReadAttention(s));
  ReadNorms(s);
  VRAMFIT_TRY(ReadFeedForward(s));
  VRAMFIT_TRY(ReadSlidingWindow(s));
  VRAMFIT_TRY(ReadRecurrent(s));
  NoteUnknownArchitecture();
  VRAMFIT_TRY(ValidateSpec(s, g_.name));
  Model m;
  m.spec = std::move(s);
  m.inventory = BuildInventory(m.spec);
  m.file_format = "gguf";
  return m;
}

// general.architecture -> model_type.
Status Mapper::ReadArchitecture(ModelSpec& s) {
  const std::string& f = g_.name;
  VRAMFIT_ASSIGN(arch, g_.String("general.architecture"));
  if (!arch) return Corrupt(fmt::format("{}: required key 'general.architecture' is missing", f));
  arch_ = *arch;
  if (arch_ == "clip") {
    return Unsupported(fmt::format("{}: a vision projector (mmproj) file, not a language model; pass the "
                                   "model's own .gguf", f));
  }
  if (IsUnmappedRecurrent(arch_)) {
    return Unsupported(fmt::format("{}: GGUF architecture '{}' has recurrent or linear-attention layers "
                                   "that vramfit does not map yet (it maps lfm2, mamba, mamba2, qwen3next)",
                                   f, arch_));
  }
  s.architecture = arch_;
  const bool score_bias = T("blk.0.exp_probs_b.bias") != nullptr ||
                          std::any_of(tensors_.begin(), tensors_.end(), [](const auto& kv) {
                            return EndsWith(kv.first, ".exp_probs_b.bias");
                          });
  s.model_type = HfModelType(arch_, score_bias);
  return {};
}

// Width, layers (checked before the layer list is allocated), heads,
// context, vocabulary and dtype.
Status Mapper::ReadSizes(ModelSpec& s) {
  const std::string& f = g_.name;
  VRAMFIT_ASSIGN(n_embd, Required("embedding_length"));
  VRAMFIT_ASSIGN(n_block, Required("block_count"));
  VRAMFIT_ASSIGN(nextn, Uniform("nextn_predict_layers"));
  const int64_t n_nextn = nextn.value_or(0);
  if (n_block < 1 || n_block > io::kMaxLayers) {
    return Corrupt(fmt::format("{}: key '{}' = {}: must be between 1 and {}", f, K("block_count"), n_block,
                               io::kMaxLayers));
  }
  if (n_nextn < 0 || n_nextn >= n_block) {
    return Corrupt(fmt::format("{}: key '{}' = {} must be below '{}' = {}", f, K("nextn_predict_layers"),
                               n_nextn, K("block_count"), n_block));
  }
  s.hidden_size = n_embd;
  s.num_hidden_layers = n_block - n_nextn;
  s.num_nextn_predict_layers = 0;  // GGUF nextn blocks are not part of the main model
  VRAMFIT_ASSIGN(heads, Required("attention.head_count"));
  VRAMFIT_ASSIGN(kv_heads, KvHeads(n_block));
  s.num_attention_heads = heads;
  s.num_key_value_heads = kv_heads.value_or(heads);
  VRAMFIT_ASSIGN(ctx, Uniform("context_length"));
  s.max_position_embeddings = ctx.value_or(0);

  // Vocabulary: the embedding's rows, else the metadata.
  const GgufTensorInfo* embd = T("token_embd.weight");
  if (embd != nullptr && embd->ne.size() >= 2) {
    s.vocab_size = embd->ne[1];
  } else {
    VRAMFIT_ASSIGN(vocab, Uniform("vocab_size"));
    if (vocab) {
      s.vocab_size = *vocab;
    } else if (const GgufValue* toks = g_.Find("tokenizer.ggml.tokens")) {
      s.vocab_size = toks->count;
    } else {
      return Corrupt(fmt::format("{}: no token_embd.weight tensor and no '{}' key: the vocabulary size is "
                                 "unknown", f, K("vocab_size")));
    }
  }
  if (embd != nullptr && embd->type != DType::kF32 && embd->type != DType::kF16 && embd->type != DType::kBF16) {
    s.torch_dtype = DType::kF16;
  } else if (embd != nullptr) {
    s.torch_dtype = embd->type;
  } else {
    s.torch_dtype = DType::kF16;
  }
  return {};
}

// Attention, from block 0: fused qkv, biases, MLA ranks, head sizes, q/k
// norms, sinks.
Status Mapper::ReadAttention(ModelSpec& s) {
  const std::string& f = g_.name;
  VRAMFIT_ASSIGN(key_len, Uniform("attention.key_length"));
  VRAMFIT_ASSIGN(val_len, Uniform("attention.value_length"));
  s.fused_qkv = W(attn0_, "attn_qkv") != nullptr;
  if (s.fused_qkv) {
    s.q_bias = s.k_bias = s.v_bias = B(attn0_, "attn_qkv") != nullptr;
  } else {
    s.q_bias = B(attn0_, "attn_q") != nullptr;
    s.k_bias = B(attn0_, "attn_k") != nullptr;
    s.v_bias = B(attn0_, "attn_v") != nullptr;
  }
  s.o_bias = B(attn0_, "attn_output") != nullptr;
  const int64_t heads = s.num_attention_heads;
  if (W(attn0_, "attn_kv_a_mqa") != nullptr) {
    s.attn_kind = AttnKind::kMla;
    VRAMFIT_ASSIGN(kv_rank, Required("attention.kv_lora_rank"));
    VRAMFIT_ASSIGN(q_rank, Uniform("attention.q_lora_rank"));
    VRAMFIT_ASSIGN(rope, Required("rope.dimension_count"));
    VRAMFIT_ASSIGN(k_mla, Uniform("attention.key_length_mla"));
    VRAMFIT_ASSIGN(v_mla, Uniform("attention.value_length_mla"));
    const int64_t k = k_mla.value_or(key_len.value_or(0));
    const int64_t v = v_mla.value_or(val_len.value_or(0));
    // rope <= 0 is refused first: k - rope must not overflow.
    if (rope <= 0 || k <= rope || v <= 0) {
      return Corrupt(fmt::format("{}: MLA key length {} and value length {} do not fit rope dimension {}", f, k,
                                 v, rope));
    }
    s.kv_lora_rank = kv_rank;
    s.q_lora_rank = q_rank.value_or(Ne(W(attn0_, "attn_q_a"), 1));
    s.qk_rope_head_dim = rope;
    s.qk_nope_head_dim = k - rope;
    s.head_dim = k;
    s.v_head_dim = v;
  } else {
    s.head_dim = key_len.value_or(heads > 0 ? s.hidden_size / heads : 0);
    s.v_head_dim = val_len.value_or(s.head_dim);
  }
  if (const GgufTensorInfo* qn = W(attn0_, "attn_q_norm")) {
    s.qk_norm = Ne(qn, 0) == s.head_dim ? QkNorm::kPerHead : QkNorm::kFull;
    s.qk_norm_bias = B(attn0_, "attn_q_norm") != nullptr;
  }
  s.attention_sinks = W(attn0_, "attn_sinks") != nullptr || T(fmt::format("blk.{}.attn_sinks", attn0_)) != nullptr;
  return {};
}

// Norm kind and count per block, final/embedding norms, tied head, learned
// positions.
void Mapper::ReadNorms(ModelSpec& s) const {
  s.norm_kind = B(0, "attn_norm") != nullptr ? NormKind::kLayerNorm : NormKind::kRms;
  int64_t norms = 0;
  const std::string blk0 = "blk.0.";
  for (const auto& [name, t] : tensors_) {
    if (StartsWith(name, blk0) && EndsWith(name, ".weight") && GgufTensorRole(name) == Role::kNorm) ++norms;
  }
  s.norms_per_layer = norms;
  s.final_norm = T("output_norm.weight") != nullptr;
  s.embed_norm = T("token_embd_norm.weight") != nullptr;
  s.tie_word_embeddings = T("output.weight") == nullptr;
  s.lm_head_bias = T("output.bias") != nullptr;
  s.learned_positions = Ne(T("position_embd.weight"), 1);
}

// The layer list (a block with a router, ffn_gate_inp, is an MoE block), the
// dense MLP from the first dense block, and the experts from the first MoE
// block.
Status Mapper::ReadFeedForward(ModelSpec& s) {
  // num_hidden_layers is 1..kMaxLayers here (ReadSizes).
  s.layers.assign(static_cast<size_t>(s.num_hidden_layers), {});
  int64_t first_dense = -1, first_moe = -1;
  for (int64_t il = 0; il < s.num_hidden_layers; ++il) {
    s.layers[static_cast<size_t>(il)].moe = W(il, "ffn_gate_inp") != nullptr;
    int64_t& first = s.layers[static_cast<size_t>(il)].moe ? first_moe : first_dense;
    if (first < 0) first = il;
  }

  VRAMFIT_ASSIGN(ff_key, Uniform("feed_forward_length"));
  bool gated = false;
  if (first_dense >= 0) {
    const GgufTensorInfo* up = W(first_dense, "ffn_up");
    gated = W(first_dense, "ffn_gate") != nullptr;
    s.intermediate_size = up != nullptr ? Ne(up, 1) : ff_key.value_or(0);
    if (!gated && up != nullptr && ff_key && *ff_key > 0 && Ne(up, 1) % 2 == 0 && Ne(up, 1) / 2 == *ff_key) {
      // Phi-3 stores gate and up as one ffn_up of twice the width.
      gated = true;
      s.fused_gate_up = true;
      s.intermediate_size = *ff_key;
    }
    s.mlp_bias = B(first_dense, "ffn_up") != nullptr || B(first_dense, "ffn_down") != nullptr;
  } else {
    s.intermediate_size = ff_key.value_or(0);
  }
  if (first_moe >= 0) VRAMFIT_TRY(ReadExperts(s, first_moe, &gated));
  s.mlp_kind = gated ? MlpKind::kGated : MlpKind::kPlain;
  return {};
}

Status Mapper::ReadExperts(ModelSpec& s, int64_t first_moe, bool* gated) {
  VRAMFIT_ASSIGN(n_expert, Uniform("expert_count"));
  VRAMFIT_ASSIGN(n_used, Uniform("expert_used_count"));
  VRAMFIT_ASSIGN(ff_exp, Uniform("expert_feed_forward_length"));
  VRAMFIT_ASSIGN(n_shared, Uniform("expert_shared_count"));
  const GgufTensorInfo* router = W(first_moe, "ffn_gate_inp");
  s.num_experts = n_expert.value_or(Ne(router, 1));
  if (!n_used) return Corrupt(fmt::format("{}: required key '{}' is missing", g_.name, K("expert_used_count")));
  s.num_experts_per_tok = *n_used;
  const GgufTensorInfo* up_exps = W(first_moe, "ffn_up_exps");
  const GgufTensorInfo* gate_up_exps = W(first_moe, "ffn_gate_up_exps");
  const GgufTensorInfo* up_0 = W(first_moe, "ffn_up.0");
  if (up_exps != nullptr) {
    s.moe_intermediate_size = Ne(up_exps, 1);
    *gated = *gated || W(first_moe, "ffn_gate_exps") != nullptr;
  } else if (gate_up_exps != nullptr) {
    s.moe_intermediate_size = Ne(gate_up_exps, 1) / 2;
    *gated = true;
  } else if (up_0 != nullptr) {
    s.moe_intermediate_size = Ne(up_0, 1);
    *gated = *gated || W(first_moe, "ffn_gate.0") != nullptr;
  } else {
    s.moe_intermediate_size = ff_exp.value_or(0);
    *gated = true;
  }
  s.router_bias = B(first_moe, "ffn_gate_inp") != nullptr;
  s.router_score_bias = B(first_moe, "exp_probs_b") != nullptr;
  s.expert_bias = B(first_moe, "ffn_up_exps") != nullptr || B(first_moe, "ffn_down_exps") != nullptr;
  if (const GgufTensorInfo* sh = W(first_moe, "ffn_up_shexp")) {
    s.shared_expert_intermediate_size = Ne(sh, 1);
    s.num_shared_experts = n_shared.value_or(1);
    s.shared_expert_gate = W(first_moe, "ffn_gate_inp_shexp") != nullptr;
  }
  if (arch_ == "gpt-oss") s.fused_gate_up = true;  // HF gpt-oss stores gate_up_proj fused
  return {};
}

// Sliding-window layers: the per-layer flags or period of
// attention.sliding_window_pattern, else llama.cpp's per-architecture period.
Status Mapper::ReadSlidingWindow(ModelSpec& s) {
  VRAMFIT_ASSIGN(swa, Uniform("attention.sliding_window"));
  auto pattern = g_.Ints(K("attention.sliding_window_pattern"));
  if (!pattern.ok()) return pattern.error();
  if (!swa || *swa <= 0) return {};
  s.sliding_window = *swa;
  const int64_t L = s.num_hidden_layers;
  if (static_cast<int64_t>(pattern->size()) >= L && pattern->size() > 1) {
    for (int64_t il = 0; il < L; ++il) {
      s.layers[static_cast<size_t>(il)].attention =
          (*pattern)[static_cast<size_t>(il)] != 0 ? LayerAttention::kSliding : LayerAttention::kFull;
    }
    return {};
  }
  const int64_t n = pattern->size() == 1 ? pattern->front() : DefaultSwaPattern(arch_);
  if (n > 0) {
    for (int64_t il = 0; il < L; ++il) {
      s.layers[static_cast<size_t>(il)].attention =
          (il % n) < (n - 1) ? LayerAttention::kSliding : LayerAttention::kFull;
    }
  } else if (notes_ != nullptr) {
    notes_->push_back(fmt::format("{} sets a sliding window of {} tokens but llama.cpp applies none to "
                                  "architecture '{}'; every layer is counted as full attention",
                                  K("attention.sliding_window"), *swa, arch_));
    s.sliding_window = 0;
  }
  return {};
}

// head_count_kv: one value, or (hybrids) a per-layer list whose non-zero
// entries are equal; a 0 entry marks a block without attention (LFM2's
// conv blocks: llama-model.cpp lfm2 is_recr = n_head_kv(il) == 0).
Result<std::optional<int64_t>> Mapper::KvHeads(int64_t n_block) {
  if (!IsMappedRecurrent(arch_)) return Uniform("attention.head_count_kv");
  auto v = g_.Ints(K("attention.head_count_kv"));
  if (!v.ok()) return v.error();
  if (v->size() <= 1) return v->empty() ? std::optional<int64_t>() : std::optional<int64_t>(v->front());
  if (static_cast<int64_t>(v->size()) != n_block) {
    return Corrupt(fmt::format("{}: key '{}': {} values for {} blocks", g_.name, K("attention.head_count_kv"),
                               v->size(), n_block));
  }
  int64_t common = 0;
  for (int64_t x : *v) {
    if (x != 0 && common != 0 && x != common) {
      return Unsupported(fmt::format("{}: key '{}': attention blocks with {} and {} KV heads are not modelled",
                                     g_.name, K("attention.head_count_kv"), common, x));
    }
    if (x != 0) common = x;
  }
  kv_layers_ = *v;
  return std::optional<int64_t>(common);
}

int64_t Mapper::FirstAttentionBlock(int64_t n_layer) const {
  for (int64_t il = 0; il < n_layer; ++il) {
    if (W(il, "attn_q") != nullptr || W(il, "attn_qkv") != nullptr || W(il, "attn_kv_a_mqa") != nullptr) return il;
  }
  return 0;
}

// The recurrent mixers of the mapped hybrid and recurrent architectures,
// as llama-model.cpp / src/models/<arch>.cpp load_arch_hparams read them.
Status Mapper::ReadRecurrent(ModelSpec& s) {
  if (arch_ == "lfm2") return ReadShortConv(s);
  if (arch_ == "mamba" || arch_ == "mamba2") return ReadMamba(s);
  if (arch_ == "qwen3next") return ReadGatedDeltaNet(s);
  return {};
}

// lfm2: shortconv.l_cache; a block whose head_count_kv is 0 is a conv
// block; the final norm is stored as token_embd_norm (LLM_TENSOR_OUTPUT_NORM_LFM2).
Status Mapper::ReadShortConv(ModelSpec& s) {
  VRAMFIT_ASSIGN(l_cache, Required("shortconv.l_cache"));
  s.short_conv.l_cache = l_cache;
  for (size_t il = 0; il < kv_layers_.size(); ++il) {
    if (kv_layers_[il] != 0) continue;
    s.layers[il].attention = LayerAttention::kNone;
    s.layers[il].recurrent = RecurrentKind::kShortConv;
    s.short_conv.bias = B(static_cast<int64_t>(il), "shortconv.in_proj") != nullptr;
  }
  s.final_norm = s.final_norm || s.embed_norm;
  s.embed_norm = false;
  return {};
}

// mamba / mamba2: every block is a norm and a mixer (no attention, no MLP).
// ssm.time_step_rank is Mamba-1's dt_rank and Mamba-2's head count.
Status Mapper::ReadMamba(ModelSpec& s) {
  VRAMFIT_ASSIGN(conv, Required("ssm.conv_kernel"));
  VRAMFIT_ASSIGN(inner, Required("ssm.inner_size"));
  VRAMFIT_ASSIGN(state, Required("ssm.state_size"));
  VRAMFIT_ASSIGN(rank, Required("ssm.time_step_rank"));
  const bool v2 = arch_ == "mamba2";
  MambaSpec& m = s.mamba;
  m.d_conv = conv;
  m.d_inner = inner;
  m.d_state = state;
  if (v2) {
    VRAMFIT_ASSIGN(groups, Required("ssm.group_count"));
    m.n_groups = groups;
    m.num_heads = rank;
    m.head_dim = rank > 0 ? inner / rank : 0;
    m.gated_norm = W(0, "ssm_norm") != nullptr;
  } else {
    m.dt_rank = rank;
  }
  m.conv_bias = B(0, "ssm_conv1d") != nullptr;
  m.proj_bias = B(0, "ssm_in") != nullptr;
  for (LayerSpec& l : s.layers) {
    l.attention = LayerAttention::kNone;
    l.recurrent = v2 ? RecurrentKind::kMamba2 : RecurrentKind::kMamba1;
    l.mlp = false;
  }
  // No attention: the smallest valid shape, used by no layer (as MapMamba).
  s.num_attention_heads = s.num_key_value_heads = s.head_dim = s.v_head_dim = 1;
  return {};
}

// qwen3next: Gated DeltaNet blocks where attention.recurrent_layers says so,
// else every block but each full_attention_interval-th (default 4);
// ssm.group_count = key heads, ssm.time_step_rank = value heads,
// ssm.state_size = the key (and value) head size, ssm.inner_size = value
// heads x value head size; gated attention (attn_q doubled).
Status Mapper::ReadGatedDeltaNet(ModelSpec& s) {
  VRAMFIT_ASSIGN(conv, Required("ssm.conv_kernel"));
  VRAMFIT_ASSIGN(inner, Required("ssm.inner_size"));
  VRAMFIT_ASSIGN(state, Required("ssm.state_size"));
  VRAMFIT_ASSIGN(rank, Required("ssm.time_step_rank"));
  VRAMFIT_ASSIGN(groups, Required("ssm.group_count"));
  if (rank <= 0 || inner % rank != 0 || inner / rank != state) {
    return Unsupported(fmt::format("{}: '{}' = {} over {} value heads is not '{}' = {}: llama.cpp's qwen3next "
                                   "takes the value head size from the state size",
                                   g_.name, K("ssm.inner_size"), inner, rank, K("ssm.state_size"), state));
  }
  LinearAttnSpec& a = s.linear_attn;
  a.num_k_heads = groups;
  a.num_v_heads = rank;
  a.k_head_dim = state;
  a.v_head_dim = state;
  a.conv_kernel = conv;
  s.attn_output_gate = true;
  auto recr = g_.Ints(K("attention.recurrent_layers"));
  if (!recr.ok()) return recr.error();
  VRAMFIT_ASSIGN(interval, Uniform("full_attention_interval"));
  const int64_t n = interval.value_or(4);
  if (recr->empty() && n < 1) {
    return Corrupt(fmt::format("{}: key '{}' = {}: must be at least 1", g_.name, K("full_attention_interval"), n));
  }
  for (int64_t il = 0; il < s.num_hidden_layers; ++il) {
    const size_t i = static_cast<size_t>(il);
    const bool linear = recr->empty() ? (il + 1) % n != 0 : (i < recr->size() && (*recr)[i] != 0);
    if (!linear) continue;
    s.layers[i].attention = LayerAttention::kNone;
    s.layers[i].recurrent = RecurrentKind::kGatedDeltaNet;
  }
  return {};
}

void Mapper::NoteUnknownArchitecture() const {
  static const std::set<std::string> kKnown = {
      "llama", "mistral3", "qwen2", "qwen2moe", "qwen3", "qwen3moe", "gemma", "gemma2", "gemma3",
      "deepseek2", "gpt-oss", "phi3", "phi2", "phimoe", "falcon", "gptneox", "gpt2", "bloom",
      "starcoder", "starcoder2", "mpt", "command-r", "cohere2", "olmo2", "granite", "internlm2",
      "stablelm", "lfm2", "mamba", "mamba2", "qwen3next"};
  if (kKnown.count(arch_) == 0 && notes_ != nullptr) {
    notes_->push_back(fmt::format("GGUF architecture '{}' has no dedicated mapping: its shape was read from "
                                  "the generic keys and the tensor list", arch_));
  }
}

#undef VRAMFIT_ASSIGN

}  // namespace

Result<Model> ModelFromGguf(const std::vector<GgufFile>& files, const std::string& id,
                            std::vector<std::string>* notes) {
  if (files.empty()) return Error{ErrorKind::kInternal, "gguf: no files"};
  try {
    std::map<std::string, std::string> where;  // tensor -> file
    for (const GgufFile& f : files) {
      for (const GgufTensorInfo& t : f.tensors) {
        auto [it, fresh] = where.emplace(t.name, f.name);
        if (!fresh) return Corrupt(fmt::format("{}: tensor '{}' is also in {}", f.name, t.name, it->second));
      }
    }
    Mapper mapper(files, notes);
    auto m = mapper.Map(id);
    if (!m.ok()) return m.error();
    // Totals are checked here, once, so every later sum of these tensors
    // (renderers, estimators) stays inside 64 bits.
    int64_t elems = 0, all_elems = 0, all_bytes = 0;
    for (const GgufFile& f : files) {
      for (const GgufTensorInfo& t : f.tensors) {
        FileTensor ft;
        ft.name = t.name;
        ft.layer = GgufTensorLayer(t.name);
        ft.role = ft.layer >= m->spec.num_hidden_layers ? Role::kMtp : GgufTensorRole(t.name);
        ft.shape = t.ne;
        ft.dtype = t.type;
        ft.bytes = t.bytes;
        int64_t n = 1;
        for (int64_t d : t.ne) n = CheckedMul(n, d);
        if (ft.role != Role::kMtp) elems = CheckedAdd(elems, n);
        all_elems = CheckedAdd(all_elems, n);
        all_bytes = CheckedAdd(all_bytes, t.bytes);
        m->file_tensors.push_back(std::move(ft));
      }
    }
    if (notes != nullptr) {
      const GgufFile& g = files[0];
      auto name = g.String("general.name");
      auto ftype = g.Int("general.file_type");
      std::string what = fmt::format("GGUF v{}, architecture '{}'", g.version, m->spec.architecture);
      if (name.ok() && name->has_value()) what += fmt::format(", '{}'", **name);
      if (ftype.ok() && ftype->has_value()) what += fmt::format(", file type {}", **ftype);
      if (files.size() > 1) what += fmt::format(", {} split files", files.size());
      notes->push_back(what);
      if (elems != m->inventory.params) {
        notes->push_back(fmt::format("the GGUF tensors hold {} weights; the architecture mapping counts {}",
                                     elems, m->inventory.params));
      }
    }
    return m;
  } catch (const OverflowError&) {
    return Corrupt(fmt::format("{}: the tensors' sizes add up past 64 bits", files[0].name));
  }
}

Result<Model> LoadGgufModel(FileReader& first, const std::string& first_name, const OpenGgufFn& open,
                            const std::string& id, std::vector<std::string>* notes) {
  auto g = ReadGguf(first);
  if (!g.ok()) return g.error();
  auto count = g->Int("split.count");
  if (!count.ok()) return count.error();
  const int64_t n = count->value_or(1);
  if (n <= 1) {
    std::vector<GgufFile> files;
    files.push_back(std::move(g.value()));
    return ModelFromGguf(files, id, notes);
  }
  constexpr int64_t kMaxSplits = 1024;
  if (n > kMaxSplits) {
    return Corrupt(fmt::format("{}: key 'split.count' = {} exceeds the limit of {}", g->name, n, kMaxSplits));
  }
  const std::vector<std::string> names = GgufSplitNames(first_name, n);
  if (names.empty()) {
    return Unsupported(fmt::format("{}: split.count is {} but the file name does not follow llama.cpp's "
                                   "'-00001-of-{:05d}.gguf' pattern", g->name, n, n));
  }
  std::vector<GgufFile> files;
  for (int64_t k = 0; k < n; ++k) {
    GgufFile part;
    if (names[static_cast<size_t>(k)] == first_name) {
      part = g.value();
    } else {
      auto r = open(names[static_cast<size_t>(k)]);
      if (!r.ok()) return r.error();
      auto p = ReadGguf(**r);
      if (!p.ok()) return p.error();
      part = std::move(p.value());
    }
    auto no = part.Int("split.no");
    if (!no.ok()) return no.error();
    if (no->value_or(-1) != k) {
      return Corrupt(fmt::format("{}: key 'split.no' is {}, expected {}", part.name, no->value_or(-1), k));
    }
    files.push_back(std::move(part));
  }
  return ModelFromGguf(files, id, notes);
}

}  // namespace vramfit
