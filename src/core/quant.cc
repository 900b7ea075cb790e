// Exact storage of weight tensors per quantization format. Every layout is
// written out with its source in docs/estimation.md ("Weights").
#include "vramfit/check.h"
#include "vramfit/quant.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

namespace vramfit {
namespace {


// bitsandbytes blockwise 4-bit (bitsandbytes/functional.py quantize_4bit):
// blocksize 64 (transformers' default bnb_4bit_quant_storage uint8).
constexpr int64_t kBnb4Block = 64;
// Double quantization (compress_statistics): absmax quantized with
// quantize_blockwise at blocksize 256 and the 256-entry dynamic code.
constexpr int64_t kBnbNestedBlock = 256;
constexpr int64_t kBnbNestedCode = 256;
// The 4-bit code (NF4 / FP4 table) a QuantState keeps: 16 fp32 values.
constexpr int64_t kBnb4Code = 16;

}  // namespace

std::string WeightFormat::Name() const {
  switch (method) {
    case QuantMethod::kNone: return "none";
    case QuantMethod::kInt8: return "int8";
    case QuantMethod::kNf4: return double_quant ? "nf4-dq" : "nf4";
    case QuantMethod::kFp4: return double_quant ? "fp4-dq" : "fp4";
    case QuantMethod::kGptq: return fmt::format("gptq-int{}", bits);
    case QuantMethod::kAwq: return fmt::format("awq-int{}", bits);
    case QuantMethod::kFp8: return block_rows > 0 ? "fp8-block" : "fp8";
    case QuantMethod::kMxfp4: return "mxfp4";
    case QuantMethod::kGguf: {
      if (gguf_ftype != GgufFtype::kPure) return FtypeName(gguf_ftype);
      // A pure type whose name is also a file type ("Q4_0") needs the suffix.
      const std::string n = vramfit::Name(gguf_type);
      return ParseFtype(n) ? n + "-pure" : n;
    }
  }
  return "?";
}

Result<WeightFormat> ParseWeightFormat(std::string_view s) {
  const std::string l = Lower(s);
  WeightFormat f;
  if (l == "none" || l == "bf16" || l == "fp16" || l == "fp32") return f;
  if (l == "int8" || l == "bnb-int8" || l == "llm.int8") { f.method = QuantMethod::kInt8; return f; }
  if (l == "nf4" || l == "nf4-dq" || l == "fp4" || l == "fp4-dq") {
    f.method = l.rfind("nf4", 0) == 0 ? QuantMethod::kNf4 : QuantMethod::kFp4;
    f.double_quant = l.size() > 3;
    return f;
  }
  if (l.rfind("gptq-int", 0) == 0 || l.rfind("awq-int", 0) == 0) {
    const bool gptq = l[0] == 'g';
    const std::string bits = l.substr(gptq ? 8 : 7);
    f.method = gptq ? QuantMethod::kGptq : QuantMethod::kAwq;
    if (bits == "4") f.bits = 4;
    else if (gptq && (bits == "8" || bits == "3" || bits == "2")) f.bits = bits[0] - '0';
    else return InvalidArgument(fmt::format("--quant: '{}' is not a supported bit width", s));
    return f;
  }
  if (l == "fp8") { f.method = QuantMethod::kFp8; return f; }
  if (l == "fp8-block") {
    f.method = QuantMethod::kFp8;
    f.block_rows = f.block_cols = 128;
    return f;
  }
  if (l == "mxfp4") { f.method = QuantMethod::kMxfp4; return f; }
  // GGUF file types (llama-quantize's names), "<name>-pure", and ggml block
  // types that are no file type (Q4_K: one type everywhere, as --pure).
  std::string_view base = s;
  const bool pure = l.size() > 5 && l.compare(l.size() - 5, 5, "-pure") == 0;
  if (pure) base = s.substr(0, s.size() - 5);
  if (auto ft = ParseFtype(base)) {
    f.method = QuantMethod::kGguf;
    f.gguf_type = FtypeDefaultType(*ft);
    f.gguf_ftype = pure ? GgufFtype::kPure : *ft;
    if (pure && *ft == GgufFtype::kMXFP4_MOE) {
      return InvalidArgument(fmt::format("--quant: '{}': MXFP4_MOE has no pure form", s));
    }
    return f;
  }
  if (auto d = ParseDType(base); d && Info(*d).ggml_id >= 0 && Info(*d).block_elems > 1 &&
                                 *d != DType::kQ8_1 && *d != DType::kQ8_K) {
    f.method = QuantMethod::kGguf;
    f.gguf_type = *d;
    f.gguf_ftype = GgufFtype::kPure;
    return f;
  }
  return InvalidArgument(fmt::format(
      "--quant: unknown format '{}' (expected none, int8, nf4, nf4-dq, fp4, fp4-dq, gptq-int4, "
      "awq-int4, fp8, fp8-block, mxfp4, or a GGUF type such as Q8_0)",
      s));
}

bool IsQuantized(const TensorGroup& g, const WeightFormat& f) {
  if (!g.linear) return false;
  switch (f.method) {
    case QuantMethod::kNone:
      return false;
    case QuantMethod::kInt8:
    case QuantMethod::kNf4:
    case QuantMethod::kFp4:
      // transformers replaces every nn.Linear except the output head
      // (integrations/bitsandbytes.py, get_keys_to_not_convert); an
      // encoder's task head (its last modules) is kept as well.
      return g.role != Role::kLmHead && g.role != Role::kHead;
    case QuantMethod::kGptq:
    case QuantMethod::kAwq:
    case QuantMethod::kFp8:
    case QuantMethod::kGguf:
      // Decoder-layer projections; routers, embeddings and the head stay.
      return g.role == Role::kAttention || g.role == Role::kMlp || g.role == Role::kExperts ||
             g.role == Role::kSharedExperts || g.role == Role::kMtp;
    case QuantMethod::kMxfp4:
      // gpt-oss stores only the routed experts as MXFP4.
      return g.role == Role::kExperts;
  }
  return false;
}

StorageParts TensorStorage(const TensorGroup& g, const WeightFormat& f, DType dense) {
  const int64_t n = g.elements_each();
  if (!IsQuantized(g, f)) return {{Name(dense), StorageBytes(dense, n)}};
  const int64_t out = g.rows;
  const int64_t in = g.cols;
  switch (f.method) {
    case QuantMethod::kInt8:
      // Int8Params: CB int8 [out, in] + SCB fp32 [out] row scales.
      return {{"int8 weights", Bytes(n)}, {"fp32 row scales", Bytes(CheckedMul(out, 4))}};
    case QuantMethod::kNf4:
    case QuantMethod::kFp4: {
      const int64_t blocks = CeilDiv(n, kBnb4Block);
      if (f.double_quant) {
        // uint8 absmax per block + fp32 absmax per 256 blocks + 256-entry
        // fp32 code + fp32 offset.
        const int64_t nested = CeilDiv(blocks, kBnbNestedBlock);
        return {{"4-bit packed", Bytes(CeilDiv(n, 2))},
                {"absmax (8-bit, double-quantized)",
                 Bytes(blocks + nested * 4 + kBnbNestedCode * 4 + 4 + kBnb4Code * 4)}};
      }
      return {{"4-bit packed", Bytes(CeilDiv(n, 2))}, {"fp32 absmax", Bytes(CheckedMul(blocks, 4) + kBnb4Code * 4)}};
    }
    case QuantMethod::kGptq: {
      // qweight int32 [in*bits/32, out]; qzeros int32 [groups, out*bits/32];
      // scales fp16 [groups, out]; g_idx int32 [in].
      const int64_t groups = f.group_size > 0 ? CeilDiv(in, f.group_size) : 1;
      const int64_t packed = CheckedMul(CeilDiv(CheckedMul(in, f.bits), 32), out) * 4;
      const int64_t zeros = CheckedMul(groups, CeilDiv(CheckedMul(out, f.bits), 32)) * 4;
      static const char* kPacked[] = {"int? packed", "int1 packed", "int2 packed", "int3 packed", "int4 packed",
                                      "int5 packed", "int6 packed", "int7 packed", "int8 packed"};
      return {{kPacked[f.bits >= 1 && f.bits <= 8 ? f.bits : 0], Bytes(packed)},
              {"fp16 scales + zeros", Bytes(CheckedMul(groups, out) * 2 + zeros)},
              {"g_idx", Bytes(CheckedMul(in, 4))}};
    }
    case QuantMethod::kAwq: {
      // GEMM layout: qweight int32 [in, out/8]; qzeros int32 [groups, out/8];
      // scales fp16 [groups, out].
      const int64_t groups = f.group_size > 0 ? CeilDiv(in, f.group_size) : 1;
      const int64_t packed = CheckedMul(in, CeilDiv(out, 8)) * 4;
      const int64_t zeros = CheckedMul(groups, CeilDiv(out, 8)) * 4;
      return {{"int4 packed", Bytes(packed)},
              {"fp16 scales + zeros", Bytes(CheckedMul(groups, out) * 2 + zeros)}};
    }
    case QuantMethod::kFp8: {
      int64_t scales = 1;  // one fp32 weight_scale per tensor
      if (f.block_rows > 0) {
        scales = CheckedMul(CeilDiv(out, f.block_rows), CeilDiv(in, f.block_cols));
      }
      return {{"fp8 weights", Bytes(n)}, {"fp32 scales", Bytes(CheckedMul(scales, 4))}};
    }
    case QuantMethod::kMxfp4: {
      // 32 values per block: 16 bytes of e2m1 pairs + 1 e8m0 scale byte.
      const int64_t blocks = CeilDiv(n, 32);
      return {{"mxfp4 blocks", Bytes(CheckedMul(blocks, 16))}, {"e8m0 scales", Bytes(blocks)}};
    }
    case QuantMethod::kGguf:
      // ggml quantizes row by row; a row is `in` elements.
      return {{Name(f.gguf_type), StorageBytes(f.gguf_type, in) * out}};
    case QuantMethod::kNone:
      break;
  }
  return {{Name(dense), StorageBytes(dense, n)}};
}

Bytes TensorBytes(const TensorGroup& g, const WeightFormat& f, DType dense) {
  Bytes t;
  for (const StoragePart& p : TensorStorage(g, f, dense)) t += p.bytes;
  return t;
}

std::optional<WeightFormat> FormatFromCheckpoint(const CheckpointQuant& q) {
  WeightFormat f;
  if (q.method == "fp8") {
    f.method = QuantMethod::kFp8;
    f.block_rows = q.block_rows;
    f.block_cols = q.block_cols;
  } else if (q.method == "mxfp4") {
    f.method = QuantMethod::kMxfp4;
  } else if (q.method == "gptq" || q.method == "awq") {
    f.method = q.method == "gptq" ? QuantMethod::kGptq : QuantMethod::kAwq;
    f.bits = q.bits;
    f.group_size = q.group_size;
  } else if (q.method == "bitsandbytes") {
    if (q.bits == 8) f.method = QuantMethod::kInt8;
    else f.method = q.nf4 ? QuantMethod::kNf4 : QuantMethod::kFp4;
    f.double_quant = q.double_quant;
  } else {
    return std::nullopt;
  }
  return f;
}

}  // namespace vramfit
