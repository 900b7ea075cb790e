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

// NVFP4 (OCP / NVIDIA): 16 e2m1 values share one e4m3 scale.
constexpr int64_t kNvfp4Block = 16;
// OCP MX formats: 32 values share one e8m0 scale.
constexpr int64_t kMxBlock = 32;
// torchao TensorCoreTiledLayout.pre_process pads in_features to a multiple
// of 1024 and out_features to a multiple of 8 before tinygemm packing.
constexpr int64_t kTinygemmInPad = 1024;
constexpr int64_t kTinygemmOutPad = 8;
// torchao fpx_weight_only leaves a linear alone unless in % 64 == 0 and
// out % 256 == 0 (the fp6-llm kernel's tiles).
constexpr int64_t kFp6InMultiple = 64;
constexpr int64_t kFp6OutMultiple = 256;

// --quant spellings of the scaled checkpoint formats, with the layouts
// llm-compressor writes by default (docs/formats.md).
bool ParseScaled(const std::string& l, WeightFormat* f) {
  if (l == "fp8-channel") {
    // FP8_DYNAMIC: e4m3 weights, a per-row scale in the model dtype.
    f->method = QuantMethod::kFp8;
    f->scale_per_row = true;
    f->scale_dtype = DType::kBF16;
    return true;
  }
  if (l == "w8a8-int8") {
    // W8A8 int8: symmetric per-row weight scales, dynamic per-token inputs.
    f->method = QuantMethod::kInt8Scaled;
    f->scale_per_row = true;
    f->scale_dtype = DType::kBF16;
    return true;
  }
  if (l == "nvfp4") {
    // NVFP4 (W4A4): weight_global_scale + input_global_scale, fp32 each.
    f->method = QuantMethod::kNvfp4;
    f->act_scale_bytes = 4;
    return true;
  }
  if (l == "mxfp8") {
    f->method = QuantMethod::kMxfp8;
    return true;
  }
  return false;
}

Result<WeightFormat> ParseTorchao(std::string_view s, const std::string& l) {
  WeightFormat f;
  if (l == "torchao-int8wo") {
    f.method = QuantMethod::kTorchaoInt8;
    return f;
  }
  if (l == "torchao-fp6") {
    f.method = QuantMethod::kTorchaoFp6;
    return f;
  }
  constexpr std::string_view kInt4 = "torchao-int4wo-";
  if (l.rfind(kInt4, 0) == 0) {
    const std::string g = l.substr(kInt4.size());
    // Int4WeightOnlyConfig: group_size in {32, 64, 128, 256}.
    if (g == "32" || g == "64" || g == "128" || g == "256") {
      f.method = QuantMethod::kTorchaoInt4;
      f.bits = 4;
      f.group_size = std::stoll(g);
      return f;
    }
  }
  return InvalidArgument(fmt::format(
      "--quant: '{}': torchao formats are torchao-int4wo-32/64/128/256, torchao-int8wo, torchao-fp6", s));
}

// Bytes of `scales` scale values of dtype d.
Bytes ScaleBytes(int64_t scales, DType d) { return StorageBytes(d, scales); }

}  // namespace

std::string WeightFormat::Name() const {
  switch (method) {
    case QuantMethod::kNone: return "none";
    case QuantMethod::kInt8: return "int8";
    case QuantMethod::kNf4: return double_quant ? "nf4-dq" : "nf4";
    case QuantMethod::kFp4: return double_quant ? "fp4-dq" : "fp4";
    case QuantMethod::kGptq: return fmt::format("gptq-int{}", bits);
    case QuantMethod::kAwq: return fmt::format("awq-int{}", bits);
    case QuantMethod::kFp8: return block_rows > 0 ? "fp8-block" : scale_per_row ? "fp8-channel" : "fp8";
    case QuantMethod::kMxfp4: return "mxfp4";
    case QuantMethod::kInt8Scaled: return "w8a8-int8";
    case QuantMethod::kNvfp4: return "nvfp4";
    case QuantMethod::kMxfp8: return "mxfp8";
    case QuantMethod::kTorchaoInt4: return fmt::format("torchao-int4wo-{}", group_size);
    case QuantMethod::kTorchaoInt8: return "torchao-int8wo";
    case QuantMethod::kTorchaoFp6: return "torchao-fp6";
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
  if (ParseScaled(l, &f)) return f;
  if (l.rfind("torchao-", 0) == 0) return ParseTorchao(s, l);
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
      "awq-int4, fp8, fp8-block, fp8-channel, w8a8-int8, nvfp4, mxfp4, mxfp8, torchao-int4wo-64, "
      "torchao-int8wo, torchao-fp6, or a GGUF type such as Q8_0)",
      s));
}

bool IsQuantized(const TensorGroup& g, const WeightFormat& f) {
  if (!g.linear) return false;
  // compressed-tensors targets every nn.Linear; its rules keep the others.
  if (f.all_linear && f.method != QuantMethod::kNone) return true;
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
    case QuantMethod::kInt8Scaled:
    case QuantMethod::kNvfp4:
    case QuantMethod::kMxfp8:
      return g.role == Role::kAttention || g.role == Role::kMlp || g.role == Role::kExperts ||
             g.role == Role::kSharedExperts || g.role == Role::kMtp;
    case QuantMethod::kTorchaoInt4:
    case QuantMethod::kTorchaoInt8:
      // transformers' TorchAoHfQuantizer: every nn.Linear but the head
      // (modules_to_not_convert defaults to get_keys_to_not_convert).
      return g.role != Role::kLmHead;
    case QuantMethod::kTorchaoFp6:
      return g.role != Role::kLmHead && g.cols % kFp6InMultiple == 0 &&
             g.rows % kFp6OutMultiple == 0;
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
      int64_t scales = 1;  // one weight_scale per tensor
      if (f.block_rows > 0) {
        scales = CheckedMul(CeilDiv(out, f.block_rows), CeilDiv(in, f.block_cols));
      } else if (f.scale_per_row) {
        scales = out;  // weight_scale [out, 1]
      }
      return {{"fp8 weights", Bytes(n)},
              {"scales", ScaleBytes(scales, f.scale_dtype) + Bytes(f.act_scale_bytes)}};
    }
    case QuantMethod::kInt8Scaled: {
      // weight int8 [out, in]; weight_scale [out, 1] (or [1]); an int8
      // weight_zero_point like the scale when asymmetric.
      const int64_t scales = f.scale_per_row ? out : 1;
      const Bytes zeros = f.zero_point ? Bytes(scales) : Bytes(0);
      return {{"int8 weights", Bytes(n)},
              {"scales", ScaleBytes(scales, f.scale_dtype) + zeros + Bytes(f.act_scale_bytes)}};
    }
    case QuantMethod::kNvfp4: {
      // weight_packed uint8 [out, in/2]; weight_scale e4m3 [out, in/16];
      // weight_global_scale fp32 [1] (+ input_global_scale fp32 [1]).
      const int64_t blocks = CheckedMul(out, CeilDiv(in, kNvfp4Block));
      return {{"e2m1 packed", Bytes(CheckedMul(out, CeilDiv(in, 2)))},
              {"e4m3 block scales", Bytes(blocks)},
              {"fp32 global scales", Bytes(4 + f.act_scale_bytes)}};
    }
    case QuantMethod::kMxfp8: {
      // weight e4m3 [out, in]; weight_scale e8m0 [out, in/32].
      return {{"fp8 weights", Bytes(n)}, {"e8m0 scales", Bytes(CheckedMul(out, CeilDiv(in, kMxBlock)))}};
    }
    case QuantMethod::kTorchaoInt4: {
      // Padded to [RoundUp(out, 8), RoundUp(in, 1024)]; int4 packed 2 per
      // byte in tinygemm tiles; scales_and_zeros [in/G, out, 2] in the
      // weight dtype.
      const int64_t out_p = CeilDiv(out, kTinygemmOutPad) * kTinygemmOutPad;
      const int64_t in_p = CeilDiv(in, kTinygemmInPad) * kTinygemmInPad;
      const int64_t groups = CeilDiv(in_p, f.group_size);
      return {{"int4 tinygemm tiles", Bytes(CheckedMul(out_p, in_p) / 2)},
              {"scales + zeros", StorageBytes(dense, CheckedMul(CheckedMul(groups, out_p), 2))}};
    }
    case QuantMethod::kTorchaoInt8:
      // int_data int8 [out, in]; scale [out] in the weight dtype;
      // zero_point int64 [out] (Int8WeightOnlyConfig: zero_point_dtype int64).
      return {{"int8 weights", Bytes(n)},
              {"row scales + int64 zeros", StorageBytes(dense, out) + Bytes(CheckedMul(out, 8))}};
    case QuantMethod::kTorchaoFp6:
      // fp6-llm: 6 bits per value packed [out, in*6/8] uint8; fp16 scale [out].
      return {{"fp6 packed", Bytes(CheckedMul(out, in) / 8 * 6)}, {"fp16 row scales", Bytes(CheckedMul(out, 2))}};
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

}  // namespace vramfit
