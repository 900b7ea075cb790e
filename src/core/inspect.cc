#include "vramfit/inspect.h"

#include "vramfit/quant.h"

namespace vramfit {

Inspection Inspect(const Model& m, std::vector<std::string> notes) {
  const ModelSpec& s = m.spec;
  Inspection in;
  in.model = &m;
  in.notes = std::move(notes);
  for (const LayerSpec& l : s.layers) {
    in.sliding_layers += l.attention == LayerAttention::kSliding ? 1 : 0;
    in.moe_layers += l.moe ? 1 : 0;
  }
  for (const TensorGroup& g : m.inventory.groups) {
    in.weight_bytes += TensorBytes(g, WeightFormat{}, s.torch_dtype) * g.count;
  }
  in.kv_bytes_per_token = KvBytesPerToken(s, s.torch_dtype, KvLayout::kLatent);
  in.state_bytes_per_sequence =
      StateBytesPerSequence(s, s.torch_dtype, s.torch_dtype, ConvWindow::kKernelMinus1);
  in.layer_pattern = s.topology == Topology::kDecoder ? LayerPatternSummary(s) : std::string();
  if (s.attn_kind == AttnKind::kMla) {
    in.kv_bytes_per_token_expanded = KvBytesPerToken(s, s.torch_dtype, KvLayout::kExpanded);
  }
  for (DType d : kInspectKvTypes) {
    in.kv_by_dtype.push_back({d, KvBytesPerToken(s, d, KvLayout::kLatent)});
    if (s.attn_kind == AttnKind::kMla) in.kv_expanded_by_dtype.push_back({d, KvBytesPerToken(s, d, KvLayout::kExpanded)});
  }
  if (m.file_tensors.empty()) return in;
  // A model read from files: weights are the sum of its tensors, to the byte.
  in.from_file = true;
  std::vector<TensorRollup> by_dtype(static_cast<size_t>(DType::kCount)), by_role(kRoleCount);
  for (const FileTensor& t : m.file_tensors) {
    int64_t n = 1;
    for (int64_t d : t.shape) n = CheckedMul(n, d);
    for (TensorRollup* row : {&by_dtype[static_cast<size_t>(t.dtype)], &by_role[static_cast<size_t>(t.role)], &in.file_all}) {
      row->tensors += 1;
      row->elements = CheckedAdd(row->elements, n);
      row->bytes = CheckedAdd(row->bytes, t.bytes);
    }
    std::string& types = by_role[static_cast<size_t>(t.role)].types;
    const std::string name = Name(t.dtype);
    if ((" " + types + " ").find(" " + name + " ") == std::string::npos) types += (types.empty() ? "" : " ") + name;
  }
  in.weight_bytes = Bytes(in.file_all.bytes);
  for (size_t i = 0; i < by_dtype.size(); ++i) {
    if (by_dtype[i].tensors > 0) in.file_by_dtype.push_back({static_cast<DType>(i), by_dtype[i]});
  }
  for (size_t i = 0; i < by_role.size(); ++i) {
    if (by_role[i].tensors > 0) in.file_by_role.push_back({static_cast<Role>(i), by_role[i]});
  }
  return in;
}

}  // namespace vramfit
