// Caps on the architecture numbers vramfit reads from untrusted model files
// (config.json, GGUF metadata), shared by the readers and ValidateSpec.
//
// Each cap is far above any released model, and low enough that every
// product the readers and BuildInventory form from capped values stays far
// inside int64 (docs/formats.md §1.4). A value is checked against its cap
// when it is read, before anything is allocated or multiplied from it.
#ifndef VRAMFIT_SRC_IO_SPEC_LIMITS_H_
#define VRAMFIT_SRC_IO_SPEC_LIMITS_H_

#include <cstdint>
#include <string_view>

#include <fmt/format.h>

#include "vramfit/error.h"

namespace vramfit::io {

// Widths, head counts and sizes, vocabulary, LoRA ranks: 2^24. Largest today:
// hidden 18432 (Nemotron-4-340B), vocab 262208 (Gemma 3).
inline constexpr int64_t kMaxDim = int64_t{1} << 24;
// Decoder layers: 4096. Largest today: 126 (Llama-3.1-405B).
inline constexpr int64_t kMaxLayers = 4096;
// Routed or shared experts: 2^16. Largest today: 512 (Qwen3-Next).
inline constexpr int64_t kMaxExperts = int64_t{1} << 16;
// Context length and sliding window, in tokens: 2^30. Largest today: 10M
// (Llama 4 Scout).
inline constexpr int64_t kMaxPositions = int64_t{1} << 30;
// Rows of a learned position table: OPT keeps 2 rows beyond its context.
inline constexpr int64_t kMaxLearnedPositions = kMaxPositions + 2;
// Norm weights per decoder layer: 64. Real models have 1 to 4.
inline constexpr int64_t kMaxNormsPerLayer = 64;
// quantization_config bits: 32. Real checkpoints use 2 to 8.
inline constexpr int64_t kMaxQuantBits = 32;
// Vision tower image_size and patch_size, in pixels: 2^16. Real towers use
// 224 to 1024.
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 16;
// Vision tower num_channels: 1024. Real towers use 3.
inline constexpr int64_t kMaxImageChannels = 1024;

// Recurrent-state widths: SSM d_state, Mamba-2 and linear-attention head
// dims: 4096. Real models use 16 to 256 (d_state) and 64 to 256 (heads).
inline constexpr int64_t kMaxStateDim = 4096;
// Convolution kernels of recurrent mixers (d_conv, conv_L_cache): 1024.
// Real models use 3 or 4.
inline constexpr int64_t kMaxConvKernel = 1024;

// The accepted values of one integer, both ends included.
struct IntRange {
  int64_t lo;
  int64_t hi;
  bool Contains(int64_t v) const { return v >= lo && v <= hi; }
};

// "<where>: <name> = <v>: must be between <lo> and <hi>", the one shape of
// every range error about a model's numbers (config keys and ModelSpec
// fields alike).
inline Error OutOfRange(std::string_view where, std::string_view name, int64_t v, IntRange r) {
  return Corrupt(fmt::format("{}: {} = {}: must be between {} and {}", where, name, v, r.lo, r.hi));
}

}  // namespace vramfit::io

#endif  // VRAMFIT_SRC_IO_SPEC_LIMITS_H_
