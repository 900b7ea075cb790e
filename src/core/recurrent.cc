// Per-layer kinds beyond softmax attention: which layers attend, which carry
// a recurrent mixer, and the fixed per-sequence state those mixers keep.
// Shapes and sources: docs/estimation.md, "Recurrent state".
#include <string>
#include <vector>

#include <fmt/format.h>

#include "vramfit/model.h"

namespace vramfit {

const char* RecurrentName(RecurrentKind k) {
  switch (k) {
    case RecurrentKind::kNone: return "none";
    case RecurrentKind::kMamba1: return "Mamba";
    case RecurrentKind::kMamba2: return "Mamba-2";
    case RecurrentKind::kGatedDeltaNet: return "Gated DeltaNet";
    case RecurrentKind::kKimiDelta: return "Kimi Delta Attention";
    case RecurrentKind::kShortConv: return "short conv";
  }
  return "?";
}

bool GroupInLayer(const TensorGroup& g, const LayerSpec& l) {
  if (g.by_class) return g.layer_class.SameClass(l);
  return l.moe == g.moe_layer;
}

int64_t GroupLayersIn(const ModelSpec& s, const TensorGroup& g, int64_t first, int64_t last) {
  int64_t n = 0;
  for (int64_t i = first; i < last && i < static_cast<int64_t>(s.layers.size()); ++i) {
    n += GroupInLayer(g, s.layers[static_cast<size_t>(i)]) ? 1 : 0;
  }
  return n;
}

int64_t AttentionLayerCount(const ModelSpec& s) {
  if (s.topology == Topology::kEncoder) return 0;
  // An encoder-decoder caches the decoder's self-attention (the
  // cross-attention K/V scale with the encoder tokens).
  if (s.topology == Topology::kEncoderDecoder) return s.enc.decoder_layers;
  int64_t n = 0;
  for (const LayerSpec& l : s.layers) n += l.HasAttention() ? 1 : 0;
  return n;
}

int64_t RecurrentLayerCount(const ModelSpec& s) {
  int64_t n = 0;
  for (const LayerSpec& l : s.layers) n += l.HasRecurrent() ? 1 : 0;
  return n;
}

bool HasRecurrentLayers(const ModelSpec& s) { return RecurrentLayerCount(s) > 0; }

RecurrentKind ModelRecurrentKind(const ModelSpec& s) {
  for (const LayerSpec& l : s.layers) {
    if (l.HasRecurrent()) return l.recurrent;
  }
  return RecurrentKind::kNone;
}

bool IsHybridStack(const ModelSpec& s) {
  if (s.topology != Topology::kDecoder) return false;
  for (const LayerSpec& l : s.layers) {
    if (l.HasRecurrent() || !l.HasAttention() || !l.mlp) return true;
  }
  return false;
}

Error HybridRefusal(const ModelSpec& s, std::string_view runtime, std::string_view what) {
  const RecurrentKind k = ModelRecurrentKind(s);
  return Unsupported(fmt::format("--runtime {}: {} has {} layers; {} is not modelled yet", runtime, s.id,
                                 k == RecurrentKind::kNone ? "attention-free" : RecurrentName(k), what));
}

std::string LayerPatternSummary(const ModelSpec& s) {
  // Counts per part combination, in a fixed order.
  int64_t full = 0, sliding = 0, parallel = 0, recurrent = 0, mlp_only = 0, empty = 0;
  for (const LayerSpec& l : s.layers) {
    if (l.HasAttention() && l.HasRecurrent()) {
      ++parallel;
    } else if (l.HasAttention()) {
      (l.attention == LayerAttention::kSliding ? sliding : full)++;
    } else if (l.HasRecurrent()) {
      ++recurrent;
    } else if (l.mlp) {
      ++mlp_only;
    } else {
      ++empty;
    }
  }
  const char* rec = RecurrentName(ModelRecurrentKind(s));
  std::vector<std::string> parts;
  if (full > 0) parts.push_back(fmt::format("{} full attention", full));
  if (sliding > 0) parts.push_back(fmt::format("{} sliding attention", sliding));
  if (parallel > 0) parts.push_back(fmt::format("{} attention + {}", parallel, rec));
  if (recurrent > 0) parts.push_back(fmt::format("{} {}", recurrent, rec));
  if (mlp_only > 0) parts.push_back(fmt::format("{} MLP-only", mlp_only));
  if (empty > 0) parts.push_back(fmt::format("{} empty", empty));
  return fmt::format("{} layers: {}", s.layers.size(), fmt::join(parts, ", "));
}

StateElements RecurrentStateElements(const ModelSpec& s, const LayerSpec& l, ConvWindow window) {
  // Columns of conv history per channel.
  auto cols = [window](int64_t kernel) {
    return window == ConvWindow::kKernel ? kernel : (kernel > 0 ? kernel - 1 : 0);
  };
  StateElements e;
  switch (l.recurrent) {
    case RecurrentKind::kNone:
      break;
    case RecurrentKind::kMamba1: {
      // MambaCache: conv_states [d_inner, d_conv], ssm_states [d_inner, d_state].
      const MambaSpec& m = s.mamba;
      e.conv = CheckedMul(m.d_inner, cols(m.d_conv));
      e.ssm = CheckedMul(m.d_inner, m.d_state);
      break;
    }
    case RecurrentKind::kMamba2: {
      // conv over x, B, C: conv_dim = d_inner + 2*n_groups*d_state;
      // ssm_states [num_heads, head_dim, d_state].
      const MambaSpec& m = s.mamba;
      const int64_t conv_dim = CheckedAdd(m.d_inner, CheckedMul(2 * m.n_groups, m.d_state));
      e.conv = CheckedMul(conv_dim, cols(m.d_conv));
      e.ssm = CheckedMul(CheckedMul(m.num_heads, m.head_dim), m.d_state);
      break;
    }
    case RecurrentKind::kGatedDeltaNet:
    case RecurrentKind::kKimiDelta: {
      // q, k and v short convolutions: conv_dim = 2*nk*dk + nv*dv;
      // recurrent state [nv, dk, dv].
      const LinearAttnSpec& a = s.linear_attn;
      const int64_t conv_dim =
          CheckedAdd(CheckedMul(2 * a.num_k_heads, a.k_head_dim), CheckedMul(a.num_v_heads, a.v_head_dim));
      e.conv = CheckedMul(conv_dim, cols(a.conv_kernel));
      e.ssm = CheckedMul(CheckedMul(a.num_v_heads, a.k_head_dim), a.v_head_dim);
      break;
    }
    case RecurrentKind::kShortConv:
      // LFM2 conv cache [hidden, L_cache]; no recurrent state.
      e.conv = CheckedMul(s.hidden_size, cols(s.short_conv.l_cache));
      break;
  }
  return e;
}

StateElements StateElementsPerSequence(const ModelSpec& s, ConvWindow window) {
  StateElements t;
  for (const LayerSpec& l : s.layers) {
    const StateElements e = RecurrentStateElements(s, l, window);
    t.conv = CheckedAdd(t.conv, e.conv);
    t.ssm = CheckedAdd(t.ssm, e.ssm);
  }
  return t;
}

Bytes StateBytesPerSequence(const ModelSpec& s, DType conv_dtype, DType ssm_dtype, ConvWindow window) {
  const StateElements e = StateElementsPerSequence(s, window);
  return StorageBytes(conv_dtype, e.conv) + StorageBytes(ssm_dtype, e.ssm);
}

}  // namespace vramfit
