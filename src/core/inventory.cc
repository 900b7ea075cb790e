// Exact parameter inventory of a decoder LLM from its ModelSpec.
//
// Tensor shapes follow the Hugging Face modeling code of each family
// (modeling_llama.py, modeling_qwen3_moe.py, modeling_deepseek_v3.py,
// modeling_gpt_oss.py, modeling_falcon.py, ...); the config reader maps each
// family onto the generic fields used here. docs/estimation.md, section
// "Parameter inventory", lists every tensor.
#include <string>
#include <utility>

#include "inventory_builder.h"
#include "vramfit/model.h"

namespace vramfit {

const char* RoleName(Role r) {
  switch (r) {
    case Role::kEmbed: return "embed";
    case Role::kPosEmbed: return "pos_embed";
    case Role::kAttention: return "attention";
    case Role::kMlp: return "mlp";
    case Role::kExperts: return "experts";
    case Role::kSharedExperts: return "shared_experts";
    case Role::kRouter: return "router";
    case Role::kNorm: return "norms";
    case Role::kLmHead: return "lm_head";
    case Role::kVision: return "vision";
    case Role::kMtp: return "mtp";
    case Role::kHead: return "head";
    case Role::kMixer: return "mixer";
  }
  return "?";
}

namespace inventory {

// Norm weights (and biases for LayerNorm) of width n, count copies.
void Norm(Builder& b, const ModelSpec& s, const std::string& name, Role role, int64_t n,
          int64_t count) {
  b.Vector(name + ".weight", role, n, count);
  if (s.norm_kind == NormKind::kLayerNorm) b.Vector(name + ".bias", role, n, count);
}

void Attention(Builder& b, const ModelSpec& s, const std::string& p, int64_t n, Role role) {
  const int64_t h = s.hidden_size;
  const int64_t heads = s.num_attention_heads;
  if (s.attn_kind == AttnKind::kMla) {
    const int64_t qk = s.qk_nope_head_dim + s.qk_rope_head_dim;
    if (s.q_lora_rank > 0) {
      b.Linear(p + "q_a_proj.weight", role, s.q_lora_rank, h, n);
      b.Vector(p + "q_a_layernorm.weight", role, s.q_lora_rank, n);
      b.Linear(p + "q_b_proj.weight", role, heads * qk, s.q_lora_rank, n);
    } else {
      b.Linear(p + "q_proj.weight", role, heads * qk, h, n);
    }
    b.Linear(p + "kv_a_proj_with_mqa.weight", role, s.kv_lora_rank + s.qk_rope_head_dim, h, n);
    b.Vector(p + "kv_a_layernorm.weight", role, s.kv_lora_rank, n);
    b.Linear(p + "kv_b_proj.weight", role, heads * (s.qk_nope_head_dim + s.v_head_dim),
             s.kv_lora_rank, n);
    b.Linear(p + "o_proj.weight", role, h, heads * s.v_head_dim, n);
    return;
  }
  const int64_t q_out = heads * s.head_dim;
  const int64_t k_out = s.num_key_value_heads * s.head_dim;
  const int64_t v_out = s.num_key_value_heads * s.v_head_dim;
  if (s.fused_qkv) {
    b.Linear(p + "qkv_proj.weight", role, q_out + k_out + v_out, h, n);
    if (s.q_bias) b.Vector(p + "qkv_proj.bias", role, q_out + k_out + v_out, n);
  } else {
    // Qwen3-Next gated attention: q_proj yields the query and a sigmoid
    // gate per head (modeling_qwen3_next.py Qwen3NextAttention).
    const int64_t q_rows = s.attn_output_gate ? 2 * q_out : q_out;
    b.Linear(p + "q_proj.weight", role, q_rows, h, n);
    b.Linear(p + "k_proj.weight", role, k_out, h, n);
    b.Linear(p + "v_proj.weight", role, v_out, h, n);
    if (s.q_bias) b.Vector(p + "q_proj.bias", role, q_rows, n);
    if (s.k_bias) b.Vector(p + "k_proj.bias", role, k_out, n);
    if (s.v_bias) b.Vector(p + "v_proj.bias", role, v_out, n);
  }
  b.Linear(p + "o_proj.weight", role, h, heads * s.v_head_dim, n);
  if (s.o_bias) b.Vector(p + "o_proj.bias", role, h, n);
  if (s.qk_norm == QkNorm::kPerHead) {
    b.Vector(p + "q_norm.weight", role, s.head_dim, n);
    b.Vector(p + "k_norm.weight", role, s.head_dim, n);
    if (s.qk_norm_bias) {
      b.Vector(p + "q_norm.bias", role, s.head_dim, n);
      b.Vector(p + "k_norm.bias", role, s.head_dim, n);
    }
  } else if (s.qk_norm == QkNorm::kFull) {
    b.Vector(p + "q_norm.weight", role, q_out, n);
    b.Vector(p + "k_norm.weight", role, k_out, n);
    if (s.qk_norm_bias) {
      b.Vector(p + "q_norm.bias", role, q_out, n);
      b.Vector(p + "k_norm.bias", role, k_out, n);
    }
  }
  if (s.attention_sinks) b.Vector(p + "sinks", role, heads, n);
}

// A dense MLP of width `inter`, n copies.
void DenseMlp(Builder& b, const ModelSpec& s, const std::string& p, int64_t inter, int64_t n,
              Role role, bool bias) {
  const int64_t h = s.hidden_size;
  if (s.mlp_kind == MlpKind::kGated) {
    if (s.fused_gate_up) {
      b.Linear(p + "gate_up_proj.weight", role, 2 * inter, h, n);
      if (bias) b.Vector(p + "gate_up_proj.bias", role, 2 * inter, n);
    } else {
      b.Linear(p + "gate_proj.weight", role, inter, h, n);
      b.Linear(p + "up_proj.weight", role, inter, h, n);
      if (bias) {
        b.Vector(p + "gate_proj.bias", role, inter, n);
        b.Vector(p + "up_proj.bias", role, inter, n);
      }
    }
  } else {
    b.Linear(p + "fc1.weight", role, inter, h, n);
    if (bias) b.Vector(p + "fc1.bias", role, inter, n);
  }
  b.Linear(p + (s.mlp_kind == MlpKind::kGated ? "down_proj.weight" : "fc2.weight"), role, h,
           inter, n);
  if (bias) b.Vector(p + (s.mlp_kind == MlpKind::kGated ? "down_proj.bias" : "fc2.bias"), role, h, n);
}

// Routed experts, router and shared experts of n MoE layers.
void MoeMlp(Builder& b, const ModelSpec& s, const std::string& p, int64_t n, Role expert_role,
            Role shared_role, Role router_role) {
  const int64_t h = s.hidden_size;
  const int64_t e = s.num_experts;
  const int64_t mi = s.moe_intermediate_size;
  b.Linear(p + "router.weight", router_role, e, h, n);
  if (s.router_bias) b.Vector(p + "router.bias", router_role, e, n);
  if (s.router_score_bias) b.Vector(p + "router.e_score_correction_bias", router_role, e, n);
  const int64_t ne = CheckedMul(n, e);
  if (s.mlp_kind == MlpKind::kGated) {
    if (s.fused_gate_up) {
      b.Linear(p + "experts.*.gate_up_proj", expert_role, 2 * mi, h, ne);
      if (s.expert_bias) b.Vector(p + "experts.*.gate_up_proj_bias", expert_role, 2 * mi, ne);
    } else {
      b.Linear(p + "experts.*.gate_proj.weight", expert_role, mi, h, ne);
      b.Linear(p + "experts.*.up_proj.weight", expert_role, mi, h, ne);
    }
    b.Linear(p + "experts.*.down_proj.weight", expert_role, h, mi, ne);
    if (s.expert_bias) b.Vector(p + "experts.*.down_proj_bias", expert_role, h, ne);
  } else {
    b.Linear(p + "experts.*.fc1.weight", expert_role, mi, h, ne);
    b.Linear(p + "experts.*.fc2.weight", expert_role, h, mi, ne);
  }
  if (s.shared_expert_intermediate_size > 0) {
    ModelSpec dense = s;
    dense.fused_gate_up = false;
    DenseMlp(b, dense, p + "shared_experts.", s.shared_expert_intermediate_size, n, shared_role,
             false);
    if (s.shared_expert_gate) b.Linear(p + "shared_expert_gate.weight", shared_role, 1, h, n);
  }
}

namespace {

// One decoder layer stack: n layers, all dense or all MoE.
void Layers(Builder& b, const ModelSpec& s, const std::string& p, int64_t n, bool moe,
            bool mtp) {
  if (n <= 0) return;
  const Role attn = mtp ? Role::kMtp : Role::kAttention;
  Attention(b, s, p + "self_attn.", n, attn);
  if (moe) {
    MoeMlp(b, s, p + "mlp.", n, mtp ? Role::kMtp : Role::kExperts,
           mtp ? Role::kMtp : Role::kSharedExperts, mtp ? Role::kMtp : Role::kRouter);
  } else {
    DenseMlp(b, s, p + "mlp.", s.intermediate_size, n, mtp ? Role::kMtp : Role::kMlp,
             s.mlp_bias);
  }
  Norm(b, s, p + "norm", mtp ? Role::kMtp : Role::kNorm, s.hidden_size,
       CheckedMul(n, s.norms_per_layer));
}

}  // namespace

int64_t Sum(const std::vector<TensorGroup>& g) {
  int64_t t = 0;
  for (const TensorGroup& x : g) t = CheckedAdd(t, x.elements());
  return t;
}

void Tally(const ModelSpec& s, Inventory& inv) {
  inv.params = Sum(inv.groups);
  inv.extra_params = Sum(inv.extra);
  for (const TensorGroup& g : inv.groups) {
    int64_t& slot = inv.params_by_role[static_cast<int>(g.role)];
    slot = CheckedAdd(slot, g.elements());
  }
  // Active parameters: routed experts count top-k of num_experts.
  const int64_t experts = inv.params_by_role[static_cast<int>(Role::kExperts)];
  inv.active_params = inv.params;
  if (s.num_experts > 0 && experts > 0) {
    const int64_t inactive = experts / s.num_experts * (s.num_experts - s.num_experts_per_tok);
    inv.active_params = inv.params - inactive;
  }
  inv.base_params = inv.params;
}

}  // namespace inventory

using inventory::Builder;
using inventory::Layers;
using inventory::Norm;

Inventory BuildInventory(const ModelSpec& s) {
  Inventory inv;
  if (s.topology != Topology::kDecoder) {
    inventory::BuildEncoderGroups(s, inv);
    inventory::Tally(s, inv);
    // The backbone as AutoModel builds it: the same layout with the base
    // head (BERT's pooler included).
    ModelSpec backbone = s;
    backbone.head = HeadKind::kBase;
    Inventory base;
    inventory::BuildEncoderGroups(backbone, base);
    inv.base_params = inventory::Sum(base.groups);
    return inv;
  }
  Builder b(&inv.groups, s.torch_dtype);
  const int64_t h = s.hidden_size;
  const int64_t emb_dim = s.word_embed_proj_dim > 0 ? s.word_embed_proj_dim : h;

  b.Table("embed_tokens.weight", Role::kEmbed, s.vocab_size, emb_dim);
  if (s.learned_positions > 0) b.Table("embed_positions.weight", Role::kPosEmbed, s.learned_positions, h);
  if (emb_dim != h) {
    b.Linear("project_in.weight", Role::kEmbed, h, emb_dim, 1);
    b.Linear("project_out.weight", Role::kEmbed, emb_dim, h, 1);
  }
  if (s.embed_norm) Norm(b, s, "embed_norm", Role::kNorm, h, 1);

  if (inventory::IsHybrid(s)) {
    inventory::HybridLayers(b, s);
  } else {
    int64_t n_moe = 0;
    for (const LayerSpec& l : s.layers) n_moe += l.moe ? 1 : 0;
    const int64_t n_dense = s.num_hidden_layers - n_moe;
    b.SetLayers(n_dense, false);
    Layers(b, s, "layers.*.", n_dense, false, false);
    b.SetLayers(n_moe, true);
    Layers(b, s, "layers.*.", n_moe, true, false);
  }
  b.SetLayers(0, false);

  if (s.final_norm) Norm(b, s, "norm", Role::kNorm, h, 1);
  if (!s.tie_word_embeddings) b.Linear("lm_head.weight", Role::kLmHead, s.vocab_size, emb_dim, 1);
  if (s.lm_head_bias) b.Vector("lm_head.bias", Role::kLmHead, s.vocab_size, 1);

  // Multi-token prediction modules (DeepSeek-V3 "layer 61"): embed, two
  // norms, eh_proj [h, 2h], one MoE decoder layer, shared head norm + head.
  if (s.num_nextn_predict_layers > 0 && s.mtp_shared_embed) {
    // Qwen3-Next (vLLM qwen3_next_mtp.py Qwen3NextMultiTokenPredictor):
    // fc [h, 2h], two pre-fc norms, full-attention MoE layers, a final norm;
    // embeddings and head are the main model's.
    Builder x(&inv.extra, s.torch_dtype);
    const int64_t m = s.num_nextn_predict_layers;
    x.Linear("mtp.fc.weight", Role::kMtp, h, 2 * h, 1);
    x.Vector("mtp.pre_fc_norm_embedding.weight", Role::kMtp, h, 1);
    x.Vector("mtp.pre_fc_norm_hidden.weight", Role::kMtp, h, 1);
    Layers(x, s, "mtp.layers.*.", m, s.num_experts > 0, true);
    x.Vector("mtp.norm.weight", Role::kMtp, h, 1);
  } else if (s.num_nextn_predict_layers > 0) {
    Builder x(&inv.extra, s.torch_dtype);
    const int64_t m = s.num_nextn_predict_layers;
    x.Table("mtp.*.embed_tokens.weight", Role::kMtp, s.vocab_size, h, m);
    x.Vector("mtp.*.enorm.weight", Role::kMtp, h, m);
    x.Vector("mtp.*.hnorm.weight", Role::kMtp, h, m);
    x.Linear("mtp.*.eh_proj.weight", Role::kMtp, h, 2 * h, m);
    Layers(x, s, "mtp.*.", m, s.num_experts > 0, true);
    x.Vector("mtp.*.shared_head.norm.weight", Role::kMtp, h, m);
    x.Linear("mtp.*.shared_head.head.weight", Role::kMtp, s.vocab_size, h, m);
  }
  if (s.vision_params > 0) {
    inv.extra.push_back({"vision_tower+projector", Role::kVision, s.vision_params, 1, 1, false,
                         s.torch_dtype, 0, false});
  }

  inventory::Tally(s, inv);
  return inv;
}

KvElements KvElementsPerToken(const ModelSpec& s, KvLayout layout) {
  if (s.attn_kind == AttnKind::kMla) {
    if (layout == KvLayout::kLatent) return {s.kv_lora_rank + s.qk_rope_head_dim, 0};
    return {s.num_attention_heads * (s.qk_nope_head_dim + s.qk_rope_head_dim),
            s.num_attention_heads * s.v_head_dim};
  }
  return {s.num_key_value_heads * s.head_dim, s.num_key_value_heads * s.v_head_dim};
}

Bytes KvBytesPerToken(const ModelSpec& s, DType kv_dtype, KvLayout layout) {
  const KvElements e = KvElementsPerToken(s, layout);
  const Bytes per_layer = StorageBytes(kv_dtype, e.k) + StorageBytes(kv_dtype, e.v);
  // Only layers with softmax attention cache K/V (sliding ones too: each
  // holds the token); an encoder caches nothing, an encoder-decoder its
  // decoder's self-attention.
  return per_layer * AttentionLayerCount(s);
}

Result<Model> ModelFromSpec(ModelSpec spec) {
  Model m;
  m.spec = std::move(spec);
  try {
    m.inventory = BuildInventory(m.spec);
  } catch (const OverflowError&) {
    return Corrupt(m.spec.id + ": parameter count overflows 64 bits");
  }
  return m;
}

}  // namespace vramfit
