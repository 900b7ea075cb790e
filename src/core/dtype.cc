#include "vramfit/dtype.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

namespace vramfit {
namespace {

// Block sizes follow ggml/src/ggml.c type_traits (blck_size, type_size) and
// the block structs in ggml/src/ggml-common.h; see docs/formats.md.
constexpr std::array<DTypeInfo, static_cast<size_t>(DType::kCount)> kTable = {{
    {DType::kF64, "fp64", 28, "F64", 1, 8},
    {DType::kF32, "fp32", 0, "F32", 1, 4},
    {DType::kF16, "fp16", 1, "F16", 1, 2},
    {DType::kBF16, "bf16", 30, "BF16", 1, 2},
    {DType::kF8E4M3, "fp8_e4m3", -1, "F8_E4M3", 1, 1},
    {DType::kF8E5M2, "fp8_e5m2", -1, "F8_E5M2", 1, 1},
    {DType::kF8E8M0, "fp8_e8m0", -1, "F8_E8M0", 1, 1},
    {DType::kI64, "int64", 27, "I64", 1, 8},
    {DType::kI32, "int32", 26, "I32", 1, 4},
    {DType::kI16, "int16", 25, "I16", 1, 2},
    {DType::kI8, "int8", 24, "I8", 1, 1},
    {DType::kU64, "uint64", -1, "U64", 1, 8},
    {DType::kU32, "uint32", -1, "U32", 1, 4},
    {DType::kU16, "uint16", -1, "U16", 1, 2},
    {DType::kU8, "uint8", -1, "U8", 1, 1},
    {DType::kBool, "bool", -1, "BOOL", 1, 1},
    // block_q4_0: fp16 d + 16 B of nibbles.
    {DType::kQ4_0, "Q4_0", 2, nullptr, 32, 18},
    {DType::kQ4_1, "Q4_1", 3, nullptr, 32, 20},
    {DType::kQ5_0, "Q5_0", 6, nullptr, 32, 22},
    {DType::kQ5_1, "Q5_1", 7, nullptr, 32, 24},
    {DType::kQ8_0, "Q8_0", 8, nullptr, 32, 34},
    {DType::kQ8_1, "Q8_1", 9, nullptr, 32, 36},
    // K-quants: super-blocks of QK_K = 256.
    {DType::kQ2_K, "Q2_K", 10, nullptr, 256, 84},
    {DType::kQ3_K, "Q3_K", 11, nullptr, 256, 110},
    {DType::kQ4_K, "Q4_K", 12, nullptr, 256, 144},
    {DType::kQ5_K, "Q5_K", 13, nullptr, 256, 176},
    {DType::kQ6_K, "Q6_K", 14, nullptr, 256, 210},
    {DType::kQ8_K, "Q8_K", 15, nullptr, 256, 292},
    {DType::kIQ2_XXS, "IQ2_XXS", 16, nullptr, 256, 66},
    {DType::kIQ2_XS, "IQ2_XS", 17, nullptr, 256, 74},
    {DType::kIQ3_XXS, "IQ3_XXS", 18, nullptr, 256, 98},
    {DType::kIQ1_S, "IQ1_S", 19, nullptr, 256, 50},
    {DType::kIQ4_NL, "IQ4_NL", 20, nullptr, 32, 18},
    {DType::kIQ3_S, "IQ3_S", 21, nullptr, 256, 110},
    {DType::kIQ2_S, "IQ2_S", 22, nullptr, 256, 82},
    {DType::kIQ4_XS, "IQ4_XS", 23, nullptr, 256, 136},
    {DType::kIQ1_M, "IQ1_M", 29, nullptr, 256, 56},
    {DType::kTQ1_0, "TQ1_0", 34, nullptr, 256, 54},
    {DType::kTQ2_0, "TQ2_0", 35, nullptr, 256, 66},
    // MXFP4 (OCP microscaling): 32 e2m1 values + one e8m0 scale byte.
    {DType::kMXFP4, "MXFP4", 39, nullptr, 32, 17},
}};

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

const DTypeInfo& Info(DType t) { return kTable[static_cast<size_t>(t)]; }

std::optional<DType> ParseDType(std::string_view s) {
  const std::string l = Lower(s);
  struct Alias { const char* spelling; DType type; };
  static constexpr Alias kAliases[] = {
      {"fp32", DType::kF32},      {"float32", DType::kF32},  {"float", DType::kF32},
      {"f32", DType::kF32},       {"32-true", DType::kF32},  {"fp16", DType::kF16},
      {"float16", DType::kF16},   {"half", DType::kF16},     {"f16", DType::kF16},
      {"bf16", DType::kBF16},     {"bfloat16", DType::kBF16}, {"fp64", DType::kF64},
      {"float64", DType::kF64},   {"f64", DType::kF64},      {"fp8", DType::kF8E4M3},
      {"fp8_e4m3", DType::kF8E4M3}, {"float8_e4m3fn", DType::kF8E4M3},
      {"f8_e4m3", DType::kF8E4M3}, {"fp8_e5m2", DType::kF8E5M2},
      {"float8_e5m2", DType::kF8E5M2}, {"f8_e5m2", DType::kF8E5M2},
      {"int8", DType::kI8},       {"i8", DType::kI8},        {"uint8", DType::kU8},
      {"u8", DType::kU8},         {"int32", DType::kI32},    {"i32", DType::kI32},
  };
  for (const Alias& a : kAliases) {
    if (l == a.spelling) return a.type;
  }
  for (const DTypeInfo& i : kTable) {
    if (Lower(i.name) == l) return i.type;
  }
  return std::nullopt;
}

std::optional<DType> DTypeFromGgmlId(int64_t id) {
  for (const DTypeInfo& i : kTable) {
    if (i.ggml_id >= 0 && i.ggml_id == id) return i.type;
  }
  return std::nullopt;
}

std::optional<DType> DTypeFromSafetensors(std::string_view s) {
  for (const DTypeInfo& i : kTable) {
    if (i.safetensors != nullptr && s == i.safetensors) return i.type;
  }
  return std::nullopt;
}

}  // namespace vramfit
