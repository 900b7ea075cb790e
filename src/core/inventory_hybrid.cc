// Exact parameter inventory of hybrid decoder stacks: layers that mix
// softmax attention with recurrent mixers (Mamba, Mamba-2, Gated DeltaNet,
// Kimi Delta Attention, LFM2 short convolutions), MLP-only layers and
// mixer-only layers. Each distinct layer class (LayerSpec::SameClass) gets
// its own groups, spanning exactly its layers.
//
// Shapes follow the Hugging Face modeling code of each family; the tensor
// list and the files read are in docs/estimation.md, "Hybrid layers".
#include <string>
#include <vector>

#include "inventory_builder.h"
#include "vramfit/model.h"

namespace vramfit::inventory {

bool IsHybrid(const ModelSpec& s) { return IsHybridStack(s); }

namespace {

// Mamba-1 mixer (modeling_mamba.py MambaMixer; Jamba's JambaMambaMixer adds
// dt/b/c RMSNorms).
void Mamba1(Builder& b, const ModelSpec& s, const std::string& p, int64_t n) {
  const MambaSpec& m = s.mamba;
  const int64_t h = s.hidden_size;
  b.Linear(p + "in_proj.weight", Role::kMixer, 2 * m.d_inner, h, n);
  if (m.proj_bias) b.Vector(p + "in_proj.bias", Role::kMixer, 2 * m.d_inner, n);
  b.Table(p + "conv1d.weight", Role::kMixer, m.d_inner, m.d_conv, n);  // [d_inner, 1, d_conv]
  if (m.conv_bias) b.Vector(p + "conv1d.bias", Role::kMixer, m.d_inner, n);
  b.Linear(p + "x_proj.weight", Role::kMixer, m.dt_rank + 2 * m.d_state, m.d_inner, n);
  b.Linear(p + "dt_proj.weight", Role::kMixer, m.d_inner, m.dt_rank, n);
  b.Vector(p + "dt_proj.bias", Role::kMixer, m.d_inner, n);
  b.Table(p + "A_log", Role::kMixer, m.d_inner, m.d_state, n);
  b.Vector(p + "D", Role::kMixer, m.d_inner, n);
  b.Linear(p + "out_proj.weight", Role::kMixer, h, m.d_inner, n);
  if (m.proj_bias) b.Vector(p + "out_proj.bias", Role::kMixer, h, n);
  if (m.inner_norms) {
    b.Vector(p + "dt_layernorm.weight", Role::kMixer, m.dt_rank, n);
    b.Vector(p + "b_layernorm.weight", Role::kMixer, m.d_state, n);
    b.Vector(p + "c_layernorm.weight", Role::kMixer, m.d_state, n);
  }
}

// Mamba-2 mixer (modeling_mamba2.py Mamba2Mixer; the Nemotron-H, Granite-4.0-H
// and Falcon-H1 mixers have the same tensors).
void Mamba2(Builder& b, const ModelSpec& s, const std::string& p, int64_t n) {
  const MambaSpec& m = s.mamba;
  const int64_t h = s.hidden_size;
  const int64_t conv_dim = m.d_inner + 2 * m.n_groups * m.d_state;
  const int64_t proj = m.d_inner + conv_dim + m.num_heads;  // z, xBC, dt
  b.Linear(p + "in_proj.weight", Role::kMixer, proj, h, n);
  if (m.proj_bias) b.Vector(p + "in_proj.bias", Role::kMixer, proj, n);
  b.Table(p + "conv1d.weight", Role::kMixer, conv_dim, m.d_conv, n);  // [conv_dim, 1, d_conv]
  if (m.conv_bias) b.Vector(p + "conv1d.bias", Role::kMixer, conv_dim, n);
  b.Vector(p + "dt_bias", Role::kMixer, m.num_heads, n);
  b.Vector(p + "A_log", Role::kMixer, m.num_heads, n);
  b.Vector(p + "D", Role::kMixer, m.num_heads, n);
  if (m.gated_norm) b.Vector(p + "norm.weight", Role::kMixer, m.d_inner, n);
  b.Linear(p + "out_proj.weight", Role::kMixer, h, m.d_inner, n);
  if (m.proj_bias) b.Vector(p + "out_proj.bias", Role::kMixer, h, n);
}

// Gated DeltaNet (modeling_qwen3_next.py Qwen3NextGatedDeltaNet).
void GatedDeltaNet(Builder& b, const ModelSpec& s, const std::string& p, int64_t n) {
  const LinearAttnSpec& a = s.linear_attn;
  const int64_t h = s.hidden_size;
  const int64_t key_dim = a.num_k_heads * a.k_head_dim;
  const int64_t value_dim = a.num_v_heads * a.v_head_dim;
  b.Linear(p + "in_proj_qkvz.weight", Role::kMixer, 2 * key_dim + 2 * value_dim, h, n);
  b.Linear(p + "in_proj_ba.weight", Role::kMixer, 2 * a.num_v_heads, h, n);
  b.Table(p + "conv1d.weight", Role::kMixer, 2 * key_dim + value_dim, a.conv_kernel, n);  // no bias
  b.Vector(p + "dt_bias", Role::kMixer, a.num_v_heads, n);
  b.Vector(p + "A_log", Role::kMixer, a.num_v_heads, n);
  b.Vector(p + "norm.weight", Role::kMixer, a.v_head_dim, n);  // gated RMSNorm per head
  b.Linear(p + "out_proj.weight", Role::kMixer, h, value_dim, n);
}

// LFM2 gated short convolution (modeling_lfm2.py Lfm2ShortConv).
void ShortConv(Builder& b, const ModelSpec& s, const std::string& p, int64_t n) {
  const int64_t h = s.hidden_size;
  const bool bias = s.short_conv.bias;
  b.Linear(p + "in_proj.weight", Role::kMixer, 3 * h, h, n);
  if (bias) b.Vector(p + "in_proj.bias", Role::kMixer, 3 * h, n);
  b.Table(p + "conv.weight", Role::kMixer, h, s.short_conv.l_cache, n);  // [h, 1, L_cache]
  if (bias) b.Vector(p + "conv.bias", Role::kMixer, h, n);
  b.Linear(p + "out_proj.weight", Role::kMixer, h, h, n);
  if (bias) b.Vector(p + "out_proj.bias", Role::kMixer, h, n);
}

void Mixer(Builder& b, const ModelSpec& s, RecurrentKind k, int64_t n) {
  switch (k) {
    case RecurrentKind::kNone: return;
    case RecurrentKind::kMamba1: return Mamba1(b, s, "layers.*.mamba.", n);
    case RecurrentKind::kMamba2: return Mamba2(b, s, "layers.*.mamba.", n);
    case RecurrentKind::kGatedDeltaNet: return GatedDeltaNet(b, s, "layers.*.linear_attn.", n);
    case RecurrentKind::kKimiDelta: return;  // refused by the config reader (not modelled)
    case RecurrentKind::kShortConv: return ShortConv(b, s, "layers.*.conv.", n);
  }
}

}  // namespace

void HybridLayers(Builder& b, const ModelSpec& s) {
  // Layer classes in order of first appearance, with their layer counts.
  std::vector<LayerSpec> classes;
  std::vector<int64_t> counts;
  for (const LayerSpec& l : s.layers) {
    size_t i = 0;
    while (i < classes.size() && !classes[i].SameClass(l)) ++i;
    if (i == classes.size()) {
      classes.push_back(l);
      counts.push_back(0);
    }
    ++counts[i];
  }
  for (size_t i = 0; i < classes.size(); ++i) {
    const LayerSpec& c = classes[i];
    const int64_t n = counts[i];
    b.SetClass(n, c);
    if (c.HasAttention()) Attention(b, s, "layers.*.self_attn.", n, Role::kAttention);
    Mixer(b, s, c.recurrent, n);
    if (c.mlp && c.moe) {
      MoeMlp(b, s, "layers.*.mlp.", n, Role::kExperts, Role::kSharedExperts, Role::kRouter);
    } else if (c.mlp) {
      DenseMlp(b, s, "layers.*.mlp.", s.intermediate_size, n, Role::kMlp, s.mlp_bias);
    }
    Norm(b, s, "layers.*.norm", Role::kNorm, s.hidden_size, CheckedMul(n, s.norms_per_layer));
  }
}

}  // namespace vramfit::inventory
