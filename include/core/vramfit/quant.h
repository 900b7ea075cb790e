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
#include <memory>
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
  kInt8Scaled,  // int8 weights + per-row scales (compressed-tensors w8a8 int8)
  kNvfp4,       // NVFP4: e2m1 pairs + e4m3 scale per 16 + fp32 global scale
  kMxfp8,       // OCP MXFP8: e4m3 values + e8m0 scale per 32
  kTorchaoInt4, // torchao int4 weight-only, tinygemm tiles (int4wo-G)
  kTorchaoInt8, // torchao int8 weight-only: int8 + per-row scale and int64 zero
  kTorchaoFp6,  // torchao fp6 weight-only (fp6-llm e3m2): 6-bit packed + fp16 row scale
};

struct WeightFormat;

// A checkpoint's per-module rules (modules_to_not_convert, ignore, GPTQ
// dynamic) resolved against one inventory: which tensors of which group, in
// which layer, a rule stores differently. Built by FormatFromCheckpoint.
struct ModuleExceptions {
  // What a rule changes: kept dense, or other GPTQ bits / group size.
  struct Kind {
    bool dense = false;
    int64_t bits = 0;
    int64_t group_size = 0;
  };
  // Tensors of inventory group `group` in decoder layer `layer` (-1: the
  // group is not per layer) that are stored as kinds[kind].
  struct At {
    size_t group = 0;
    int64_t layer = -1;
    int64_t count = 0;
    size_t kind = 0;
  };
  static constexpr size_t kMaxKinds = 4;
  std::vector<Kind> kinds;  // at most kMaxKinds
  std::vector<At> at;       // sorted by group
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
  // Scaled formats (kFp8, kInt8Scaled): one scale per output row instead of
  // one per tensor (or block); its dtype (compressed-tensors stores the
  // model dtype, vLLM and fbgemm hold fp32).
  bool scale_per_row = false;
  DType scale_dtype = DType::kF32;
  bool zero_point = false;      // kInt8Scaled asymmetric: an int8 zero per scale
  int64_t act_scale_bytes = 0;  // static activation scales stored per quantized linear
  // compressed-tensors: every linear is packed unless a rule keeps it
  // (lm_head, routers included); otherwise the method's own choice.
  bool all_linear = false;
  // Per-module rules of the checkpoint, resolved (null: none).
  std::shared_ptr<const ModuleExceptions> exceptions;

  // Canonical spelling, as --quant accepts it: "none", "nf4-dq", "gptq-int4",
  // "fp8-block", "Q4_K_M", "Q4_K" (pure), "Q4_0-pure"...
  std::string Name() const;
};

// torchao weight-only formats (transformers TorchAoConfig; the hf runtime).
inline bool IsTorchao(QuantMethod m) {
  return m == QuantMethod::kTorchaoInt4 || m == QuantMethod::kTorchaoInt8 || m == QuantMethod::kTorchaoFp6;
}

// The scaled formats of compressed-tensors / modelopt / fbgemm checkpoints
// (kFp8 per row included), which vLLM and transformers load and llama.cpp
// does not.
inline bool IsScaledCheckpointFormat(const WeightFormat& f) {
  return f.method == QuantMethod::kInt8Scaled || f.method == QuantMethod::kNvfp4 ||
         f.method == QuantMethod::kMxfp8 || (f.method == QuantMethod::kFp8 && f.scale_per_row);
}

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

// The format a checkpoint's quantization_config implies, its per-module
// rules resolved against the spec's inventory (module names as transformers
// names a Llama-style decoder: "model.layers.3.mlp.down_proj", "lm_head").
// A rule no module matches is named in `notes` (it may name a module this
// architecture lacks, as a tied lm_head). Errors: a method vramfit does not
// size, a regex std::regex cannot read, more than kMaxKinds distinct
// overrides: one line naming the quantization_config key.
Result<WeightFormat> FormatFromCheckpoint(const CheckpointQuant& q, const ModelSpec& spec,
                                          const Inventory& inv, std::vector<std::string>* notes);

// Whether a module name matches one rule, with its library's semantics.
bool RuleMatches(const CheckpointQuant::ModuleRule& r, std::string_view module);

// f with exception kind k applied (dense, or other bits / group size), and
// no exceptions of its own.
WeightFormat ExceptionFormat(const WeightFormat& f, const ModuleExceptions::Kind& k);

// Splits the `copies` tensors of inventory group gi held for decoder layers
// [first, last) (all of them for a group not per layer) by the exceptions:
// out[0] as f, out[k + 1] as exception kind k. Returns how many entries of
// out are used (1 without exceptions).
size_t SplitByExceptions(const WeightFormat& f, size_t gi, int64_t first, int64_t last,
                         int64_t copies, int64_t out[ModuleExceptions::kMaxKinds + 1]);

// Bytes of every tensor of group gi (g.count of them), exceptions applied.
Bytes GroupBytes(const TensorGroup& g, size_t gi, const WeightFormat& f, DType dense);

}  // namespace vramfit

#endif  // VRAMFIT_QUANT_H_
