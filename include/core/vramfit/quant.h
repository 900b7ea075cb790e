// Weight storage formats and the exact bytes each tensor takes in them.
//
// A format says which tensors a quantization method packs (linear weights
// in the decoder layers, MoE experts...) and how: packed values plus their
// scales, zeros and index tensors, as the method lays them out on the GPU.
// Tensors a method leaves alone (embeddings, lm_head, norms, routers,
// biases) stay at the compute dtype. Layouts and sources: docs/estimation.md,
// "Weights".
#ifndef VRAMFIT_QUANT_H_
#define VRAMFIT_QUANT_H_

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vramfit/dtype.h"
#include "vramfit/error.h"
#include "vramfit/gguf_mix.h"
#include "vramfit/model.h"
#include "vramfit/units.h"

namespace vramfit {

enum class QuantMethod {
  kNone,      // every tensor at the compute dtype
  kInt8,      // bitsandbytes LLM.int8 (Int8Params: int8 CB + fp32 SCB per row)
  kNf4,       // bitsandbytes 4-bit NF4, blocksize 64
  kFp4,       // bitsandbytes 4-bit FP4, blocksize 64
  kGptq,      // GPTQ int-N with group size (qweight/qzeros/scales/g_idx)
  kAwq,       // AWQ int4 GEMM layout (qweight/qzeros/scales)
  kFp8,       // FP8 e4m3 weights, per-tensor or block-scaled
  kMxfp4,     // OCP MXFP4 experts (gpt-oss): 32-element blocks + e8m0 scale
  kGguf,      // a GGUF file type (llama.cpp runtime): a per-tensor mix, or one type
              // for every quantizable tensor (gguf_ftype == kPure)
};

struct WeightFormat {
  QuantMethod method = QuantMethod::kNone;
  bool double_quant = false;  // bnb 4-bit: absmax quantized to 8 bits (QLoRA "DQ")
  int64_t bits = 4;           // GPTQ/AWQ bits
  int64_t group_size = 128;   // GPTQ/AWQ group size along in_features; -1 = per channel
  int64_t block_rows = 0;     // FP8 block scales (DeepSeek: 128 x 128); 0 = per tensor
  int64_t block_cols = 0;
  DType gguf_type = DType::kQ4_K;  // kGguf: the file type's base type (the pure type)
  GgufFtype gguf_ftype = GgufFtype::kPure;  // kGguf: llama_ftype ("Q4_K_M"), or kPure

  // Canonical spelling, as --quant accepts it: "none", "nf4-dq", "gptq-int4",
  // "fp8-block", "Q4_K_M", "Q4_K" (pure), "Q4_0-pure"...
  std::string Name() const;
};

// Parses --quant: none, int8, nf4, nf4-dq, fp4, fp4-dq, gptq-int4 (gptq-int8,
// gptq-int3, gptq-int2), awq-int4, fp8, fp8-block, mxfp4, or a GGUF file
// type: llama-quantize's names (Q4_K_M, IQ4_XS, Q8_0, F16...; a per-tensor
// mix, gguf_mix.h), a ggml type that is no file type (Q4_K, Q3_K, Q5_K: one
// type for every quantizable tensor, as --pure), or NAME-pure.
Result<WeightFormat> ParseWeightFormat(std::string_view s);

// One part of a tensor's storage ("int4 packed", "fp16 scales").
struct StoragePart {
  const char* what = "";  // a static string
  Bytes bytes;
};

// The parts of one tensor (at most three: values, scales/zeros, index).
// A fixed array, so the estimator's inner loops do not allocate.
struct StorageParts {
  StoragePart part[3];
  int n = 0;
  StorageParts() = default;
  StorageParts(std::initializer_list<StoragePart> l) {
    for (const StoragePart& p : l) part[n++] = p;
  }
  const StoragePart* begin() const { return part; }
  const StoragePart* end() const { return part + n; }
  size_t size() const { return static_cast<size_t>(n); }
};

// Whether `fmt` packs this tensor (false: kept at the compute dtype).
bool IsQuantized(const TensorGroup& g, const WeightFormat& fmt);

// Storage of ONE tensor of group g (multiply by g.count for the group).
// `dense` is the dtype unquantized tensors take (the compute dtype).
StorageParts TensorStorage(const TensorGroup& g, const WeightFormat& fmt, DType dense);

// Sum of TensorStorage over parts.
Bytes TensorBytes(const TensorGroup& g, const WeightFormat& fmt, DType dense);

// The format a checkpoint's quantization_config implies, if vramfit models it.
std::optional<WeightFormat> FormatFromCheckpoint(const CheckpointQuant& q);

}  // namespace vramfit

#endif  // VRAMFIT_QUANT_H_
