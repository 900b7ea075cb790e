// GGUF file types and the per-tensor types llama.cpp's quantizer picks.
//
// A GGUF "file type" (llama_ftype: Q4_K_M, IQ4_XS, Q8_0...) is not one ggml
// type: llama-quantize chooses a type per tensor (src/llama-quant.cpp,
// llama_tensor_get_type): the output head gets Q6_K, attn_v and ffn_down get
// more bits on some layers, Mixtral's attention gets Q8_0, norms and the MoE
// router stay F32, and a row length the block size does not divide falls
// back to a smaller block. GgufMix replays those rules over a model's
// inventory so that the file size and bits per weight match what llama.cpp
// prints ("model size = 4.58 GiB (4.89 BPW)"). Rules and sources:
// docs/estimation.md, "llamacpp runtime".
#ifndef VRAMFIT_GGUF_MIX_H_
#define VRAMFIT_GGUF_MIX_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vramfit/dtype.h"
#include "vramfit/error.h"
#include "vramfit/model.h"
#include "vramfit/units.h"

namespace vramfit {

// llama.cpp release tags (bNNNN) at which a behaviour vramfit models
// changed. Approximate: each is the first tag after the pull request named
// was merged, estimated from its merge date (docs/estimation.md lists them).
namespace llamacpp_build {
// PR #12801 (Apr 2025): DeepSeek MLA with a latent KV cache; GGUFs carry
// attn_k_b / attn_v_b instead of attn_kv_b.
constexpr int64_t kMla = 5130;
// PR #13194 (May 2025): sliding-window layers get their own small cache.
constexpr int64_t kSwaCache = 5430;
// PR #15434 (Aug 2025): -fa defaults to auto (on for CUDA), -ngl to all.
constexpr int64_t kFaAuto = 6300;
// PR #17046 (Nov 2025): n_ctx is padded to 256 whatever the attention.
constexpr int64_t kPad256 = 6950;
// PR #18148 (Dec 2025): -ngl N offloads the output layer first.
constexpr int64_t kOutputFirst = 7450;
// PR #19067 (Jan 2026): MLA layers keep no V cache (V is read from K).
constexpr int64_t kVlessMla = 7800;
// llama-quant.cpp tensor_category refactor (early 2026): a fused attn_qkv
// follows the attn_v rules instead of its own branch.
constexpr int64_t kQuantCategory = 8200;
// The build vramfit models when none is given.
constexpr int64_t kDefault = 8000;
}  // namespace llamacpp_build

// llama_ftype (include/llama.h), as llama-quantize names it. kPure: one ggml
// type for every quantizable tensor (llama-quantize --pure).
enum class GgufFtype : uint8_t {
  kPure,
  kF32, kF16, kBF16, kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ8_0,
  kQ2_K, kQ2_K_S, kQ3_K_S, kQ3_K_M, kQ3_K_L, kQ4_K_S, kQ4_K_M, kQ5_K_S, kQ5_K_M, kQ6_K,
  kIQ2_XXS, kIQ2_XS, kIQ2_S, kIQ2_M, kIQ3_XXS, kIQ3_XS, kIQ3_S, kIQ3_M,
  kIQ1_S, kIQ1_M, kIQ4_NL, kIQ4_XS, kTQ1_0, kTQ2_0, kMXFP4_MOE,
};

// "Q4_K_M", "IQ4_XS", "F16"... ("pure" for kPure).
const char* FtypeName(GgufFtype f);

// Parses a file-type name, case-insensitive ("q4_k_m"). nullopt if unknown.
std::optional<GgufFtype> ParseFtype(std::string_view s);

// The ftype's base type (llama_ftype_get_default_type): Q4_K for Q4_K_M,
// IQ2_XS for IQ2_S, IQ3_S for IQ3_XS... REQUIRES: f != kPure.
DType FtypeDefaultType(GgufFtype f);

// One tensor of the GGUF file, as llama.cpp names and stores it.
struct GgufTensor {
  std::string name;     // "blk.3.attn_v.weight", "token_embd.weight", "output.weight"
  Role role = Role::kMlp;
  int64_t layer = -1;   // blk index; -1 for token_embd, output, output_norm...
  int64_t ne0 = 0;      // row length in elements (the axis blocks run along)
  int64_t rows = 1;     // rows per expert (ne1)
  int64_t experts = 1;  // ne2 of merged expert tensors (ffn_*_exps), else 1
  DType type = DType::kF32;
  Bytes bytes;          // rows x experts x ggml_row_size(type, ne0)
};

// The tensors llama-quantize writes for `model` at file type `ftype`
// (`pure_type` for kPure), as build `build` of llama.cpp converts and
// quantizes it: llama_tensor_get_type per tensor, then the shape fallback.
// Files that need an importance matrix (IQ1/IQ2 families, IQ3_XXS, Q2_K_S)
// are assumed to have one; the others are quantized without. Tensors come
// in llama.cpp's load order (by layer, then name).
// Errors: a tensor no ggml type can hold (a row not divisible by 32 under a
// type with no fallback, as llama-quantize aborts).
Result<std::vector<GgufTensor>> GgufMix(const Model& model, GgufFtype ftype, DType pure_type,
                                        int64_t build);

// Sum of bytes / elements of a tensor list ("model size", BPW).
Bytes GgufBytes(const std::vector<GgufTensor>& tensors);
int64_t GgufElements(const std::vector<GgufTensor>& tensors);

}  // namespace vramfit

#endif  // VRAMFIT_GGUF_MIX_H_
