// `inspect` as a result model: what both printers (text and JSON) show of a
// model, computed once. The printers only format it.
#ifndef VRAMFIT_INSPECT_H_
#define VRAMFIT_INSPECT_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "vramfit/dtype.h"
#include "vramfit/model.h"
#include "vramfit/units.h"

namespace vramfit {

// Tensors of a checkpoint summed by one key (a dtype, a role, or all).
struct TensorRollup {
  int64_t tensors = 0;
  int64_t elements = 0;
  int64_t bytes = 0;
  std::string types;  // the dtypes seen, space-separated (by role)
};

struct Inspection {
  const Model* model = nullptr;  // REQUIRES: outlives the inspection
  std::vector<std::string> notes;
  // Weights as stored: the sum of the file's tensors when the model came
  // from files, else every tensor at the checkpoint's torch_dtype.
  Bytes weight_bytes;
  int64_t sliding_layers = 0;
  int64_t moe_layers = 0;
  // KV bytes per token over all layers at the checkpoint's dtype (MLA: the
  // latent cache).
  Bytes kv_bytes_per_token;
  Bytes kv_bytes_per_token_expanded;  // MLA: per-head K/V at that dtype; else 0
  // Recurrent state of one sequence over all layers at the checkpoint's
  // dtype, conv state of d_conv - 1 columns (ConvWindow::kKernelMinus1, as
  // vLLM and llama.cpp keep it); 0 for pure-attention models.
  Bytes state_bytes_per_sequence;
  std::string layer_pattern;  // LayerPatternSummary: "48 layers: 12 full attention, 36 Gated DeltaNet"
  // The same per KV element type (latent for MLA), and MLA's expanded
  // per-head K/V (0 for other models).
  std::vector<std::pair<DType, Bytes>> kv_by_dtype;
  std::vector<std::pair<DType, Bytes>> kv_expanded_by_dtype;
  // The checkpoint's tensors, when the model came from files.
  bool from_file = false;
  TensorRollup file_all;
  std::vector<std::pair<DType, TensorRollup>> file_by_dtype;  // dtypes present, in enum order
  std::vector<std::pair<Role, TensorRollup>> file_by_role;    // roles present, in enum order
};

// The KV element types `inspect` reports.
inline constexpr DType kInspectKvTypes[] = {DType::kF32, DType::kBF16, DType::kF8E4M3, DType::kQ8_0,
                                            DType::kQ4_0};

Inspection Inspect(const Model& m, std::vector<std::string> notes);

}  // namespace vramfit

#endif  // VRAMFIT_INSPECT_H_
