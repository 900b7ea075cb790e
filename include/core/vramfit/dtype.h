// Storage types: every dtype is (elements per block, bytes per block), exact.
//
// Plain types have a block of one element (bf16 = 1 element / 2 bytes).
// Block-quantized types carry their scales inside the block (Q4_K = 256
// elements / 144 bytes), as ggml lays them out (ggml/src/ggml.c type_traits).
#ifndef VRAMFIT_DTYPE_H_
#define VRAMFIT_DTYPE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "vramfit/units.h"

namespace vramfit {

enum class DType : uint8_t {
  // Plain element types.
  kF64, kF32, kF16, kBF16, kF8E4M3, kF8E5M2, kF8E8M0,
  kI64, kI32, kI16, kI8, kU64, kU32, kU16, kU8, kBool,
  // ggml block types (llama.cpp), ggml ids in dtype.cc.
  kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ8_0, kQ8_1,
  kQ2_K, kQ3_K, kQ4_K, kQ5_K, kQ6_K, kQ8_K,
  kIQ2_XXS, kIQ2_XS, kIQ3_XXS, kIQ1_S, kIQ4_NL, kIQ3_S, kIQ2_S, kIQ4_XS,
  kIQ1_M, kTQ1_0, kTQ2_0, kMXFP4,
  kCount,
};

struct DTypeInfo {
  DType type;
  const char* name;        // vramfit's name: "bf16", "fp8_e4m3", "Q4_K"
  int ggml_id;             // ggml_type value, -1 if ggml has none
  const char* safetensors; // safetensors dtype string, nullptr if none
  int64_t block_elems;     // elements per block (1 for plain types)
  int64_t block_bytes;     // bytes per block
};

// Table entry of a dtype. Never fails.
const DTypeInfo& Info(DType t);

inline const char* Name(DType t) { return Info(t).name; }

// Bytes to store n elements: ceil(n / block_elems) * block_bytes.
// REQUIRES: n >= 0.
inline Bytes StorageBytes(DType t, int64_t n) {
  const DTypeInfo& i = Info(t);
  return Bytes(CheckedMul(CeilDiv(n, i.block_elems), i.block_bytes));
}

// Bits per element, for display only (never used in arithmetic).
inline double BitsPerElement(DType t) {
  const DTypeInfo& i = Info(t);
  return 8.0 * static_cast<double>(i.block_bytes) / static_cast<double>(i.block_elems);
}

// Parses a user or file spelling: "fp16", "float16", "half", "bf16",
// "bfloat16", "fp32", "float32", "F16", "BF16", "Q4_K", "q8_0", "fp8",
// "float8_e4m3fn"... Case-insensitive. nullopt if unknown.
std::optional<DType> ParseDType(std::string_view s);

// Looks up a ggml type id (GGUF tensor info). nullopt if unknown or removed.
std::optional<DType> DTypeFromGgmlId(int64_t id);

// Looks up a safetensors dtype string ("BF16", "F8_E4M3", ...).
std::optional<DType> DTypeFromSafetensors(std::string_view s);

}  // namespace vramfit

#endif  // VRAMFIT_DTYPE_H_
