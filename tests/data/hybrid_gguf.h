// Header-only GGUFs of real hybrid and recurrent models (the tensor tables
// llama.cpp's load_arch_tensors asks for), shared by the llamacpp hybrid
// tests and the golden transcripts. tools/llamacpp_capture/write_gguf.py
// writes the same tables for the live llama.cpp captures.
#ifndef VRAMFIT_TESTS_DATA_HYBRID_GGUF_H_
#define VRAMFIT_TESTS_DATA_HYBRID_GGUF_H_

#include <string>
#include <vector>

#include "fixtures.h"

namespace vramfit::fixtures {

// LiquidAI/LFM2-1.2B (data/models/hybrid.json; write_gguf.py lfm2_1_2b).
inline GgufBuilder Lfm2() {
  const int64_t h = 2048, ff = 8192, vocab = 65536, kv = 8, hd = 64;
  const std::vector<int32_t> kv_arr = {0, 0, 8, 0, 0, 8, 0, 0, 8, 0, 8, 0, 8, 0, 8, 0};
  GgufBuilder b;
  b.Str("general.architecture", "lfm2").U32("lfm2.context_length", 128000).U32("lfm2.embedding_length", h);
  b.U32("lfm2.block_count", 16).U32("lfm2.feed_forward_length", ff).U32("lfm2.attention.head_count", 32);
  b.ArrI32("lfm2.attention.head_count_kv", kv_arr).U32("lfm2.shortconv.l_cache", 3);
  b.Tensor("token_embd.weight", {h, vocab}, kF16).Tensor("token_embd_norm.weight", {h}, kF32);
  for (int il = 0; il < 16; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    b.Tensor(p + "attn_norm.weight", {h}, kF32).Tensor(p + "ffn_norm.weight", {h}, kF32);
    b.Tensor(p + "ffn_gate.weight", {h, ff}, kF16).Tensor(p + "ffn_up.weight", {h, ff}, kF16);
    b.Tensor(p + "ffn_down.weight", {ff, h}, kF16);
    if (kv_arr[static_cast<size_t>(il)] != 0) {
      b.Tensor(p + "attn_q_norm.weight", {hd}, kF32).Tensor(p + "attn_k_norm.weight", {hd}, kF32);
      b.Tensor(p + "attn_q.weight", {h, h}, kF16).Tensor(p + "attn_k.weight", {h, kv * hd}, kF16);
      b.Tensor(p + "attn_v.weight", {h, kv * hd}, kF16).Tensor(p + "attn_output.weight", {h, h}, kF16);
    } else {
      b.Tensor(p + "shortconv.conv.weight", {3, h}, kF32);
      b.Tensor(p + "shortconv.in_proj.weight", {h, 3 * h}, kF16);
      b.Tensor(p + "shortconv.out_proj.weight", {h, h}, kF16);
    }
  }
  return b;
}

// state-spaces/mamba-2.8b-hf (data/models/hybrid.json; write_gguf.py mamba_2_8b).
inline GgufBuilder Mamba() {
  const int64_t h = 2560, d_inner = 5120, d_state = 16, d_conv = 4, dt_rank = 160;
  GgufBuilder b;
  b.Str("general.architecture", "mamba").U32("mamba.context_length", 1 << 20).U32("mamba.embedding_length", h);
  b.U32("mamba.block_count", 64).U32("mamba.feed_forward_length", 0).U32("mamba.attention.head_count", 0);
  b.U32("mamba.ssm.conv_kernel", d_conv).U32("mamba.ssm.inner_size", d_inner);
  b.U32("mamba.ssm.state_size", d_state).U32("mamba.ssm.time_step_rank", dt_rank);
  b.Tensor("token_embd.weight", {h, 50280}, kF16).Tensor("output_norm.weight", {h}, kF32);
  for (int il = 0; il < 64; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    b.Tensor(p + "attn_norm.weight", {h}, kF32).Tensor(p + "ssm_in.weight", {h, 2 * d_inner}, kF16);
    b.Tensor(p + "ssm_conv1d.weight", {d_conv, d_inner}, kF32).Tensor(p + "ssm_conv1d.bias", {d_inner}, kF32);
    b.Tensor(p + "ssm_x.weight", {d_inner, dt_rank + 2 * d_state}, kF16);
    b.Tensor(p + "ssm_dt.weight", {dt_rank, d_inner}, kF16).Tensor(p + "ssm_dt.bias", {d_inner}, kF32);
    b.Tensor(p + "ssm_a", {d_state, d_inner}, kF32).Tensor(p + "ssm_d", {d_inner}, kF32);
    b.Tensor(p + "ssm_out.weight", {d_inner, h}, kF16);
  }
  return b;
}

// state-spaces/mamba2-2.7b (write_gguf.py mamba2_2_7b: d_model 2560, 64
// layers, vocab 50288, mamba_ssm Mamba2 defaults d_state 128, d_conv 4,
// expand 2, headdim 64, ngroups 1), as src/models/mamba2.cpp asks for it.
inline GgufBuilder Mamba2() {
  const int64_t h = 2560, d_inner = 5120, d_state = 128, d_conv = 4, heads = 80, ng = 1;
  const int64_t conv_dim = d_inner + 2 * ng * d_state;
  GgufBuilder b;
  b.Str("general.architecture", "mamba2").U32("mamba2.context_length", 1 << 20).U32("mamba2.embedding_length", h);
  b.U32("mamba2.block_count", 64).U32("mamba2.feed_forward_length", 0).U32("mamba2.attention.head_count", 0);
  b.U32("mamba2.ssm.conv_kernel", d_conv).U32("mamba2.ssm.inner_size", d_inner);
  b.U32("mamba2.ssm.state_size", d_state).U32("mamba2.ssm.time_step_rank", heads).U32("mamba2.ssm.group_count", ng);
  b.Tensor("token_embd.weight", {h, 50288}, kF16).Tensor("output_norm.weight", {h}, kF32);
  for (int il = 0; il < 64; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    b.Tensor(p + "attn_norm.weight", {h}, kF32);
    b.Tensor(p + "ssm_in.weight", {h, 2 * d_inner + 2 * ng * d_state + heads}, kF16);
    b.Tensor(p + "ssm_conv1d.weight", {d_conv, conv_dim}, kF32).Tensor(p + "ssm_conv1d.bias", {conv_dim}, kF32);
    b.Tensor(p + "ssm_dt.bias", {heads}, kF32).Tensor(p + "ssm_a", {1, heads}, kF32);
    b.Tensor(p + "ssm_d", {1, heads}, kF32).Tensor(p + "ssm_norm.weight", {d_inner / ng, ng}, kF32);
    b.Tensor(p + "ssm_out.weight", {d_inner, h}, kF16);
  }
  return b;
}

// Qwen/Qwen3-Next-80B-A3B-Instruct (data/models/hybrid.json) as
// src/models/qwen3next.cpp load_arch_tensors asks for it, without the MTP
// block; the fused ssm_in spelling. Matrices in `q` (write_gguf.py writes
// IQ1_S, the type of the captured logs), norms, conv, router and gates f32.
inline GgufBuilder Qwen3Next(GgmlType q = kIQ1_S) {
  const int64_t h = 2048, heads = 16, hd = 256, kvh = 2, experts = 512, ff_exp = 512, vocab = 151936;
  const int64_t nk = 16, nv = 32, dk = 128, conv = 4;
  const int64_t key_dim = nk * dk, value_dim = nv * dk;
  GgufBuilder b;
  b.Str("general.architecture", "qwen3next").U32("qwen3next.context_length", 262144);
  b.U32("qwen3next.embedding_length", h).U32("qwen3next.block_count", 48);
  b.U32("qwen3next.feed_forward_length", 5120).U32("qwen3next.attention.head_count", heads);
  b.U32("qwen3next.attention.head_count_kv", kvh).U32("qwen3next.attention.key_length", hd);
  b.U32("qwen3next.attention.value_length", hd).U32("qwen3next.expert_count", experts);
  b.U32("qwen3next.expert_used_count", 10).U32("qwen3next.expert_feed_forward_length", ff_exp);
  b.U32("qwen3next.expert_shared_feed_forward_length", 512).U32("qwen3next.ssm.conv_kernel", conv);
  b.U32("qwen3next.ssm.state_size", dk).U32("qwen3next.ssm.group_count", nk);
  b.U32("qwen3next.ssm.time_step_rank", nv).U32("qwen3next.ssm.inner_size", value_dim);
  b.U32("qwen3next.full_attention_interval", 4);
  b.Tensor("token_embd.weight", {h, vocab}, q).Tensor("output_norm.weight", {h}, kF32);
  b.Tensor("output.weight", {h, vocab}, q);
  for (int il = 0; il < 48; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    b.Tensor(p + "attn_norm.weight", {h}, kF32).Tensor(p + "post_attention_norm.weight", {h}, kF32);
    if ((il + 1) % 4 == 0) {
      b.Tensor(p + "attn_q.weight", {h, 2 * heads * hd}, q).Tensor(p + "attn_k.weight", {h, kvh * hd}, q);
      b.Tensor(p + "attn_v.weight", {h, kvh * hd}, q).Tensor(p + "attn_output.weight", {heads * hd, h}, q);
      b.Tensor(p + "attn_q_norm.weight", {hd}, kF32).Tensor(p + "attn_k_norm.weight", {hd}, kF32);
    } else {
      b.Tensor(p + "ssm_in.weight", {h, 2 * key_dim + 2 * value_dim}, q);
      b.Tensor(p + "ssm_conv1d.weight", {conv, 2 * key_dim + value_dim}, kF32);
      b.Tensor(p + "ssm_dt.bias", {nv}, kF32).Tensor(p + "ssm_a", {nv}, kF32);
      b.Tensor(p + "ssm_ba.weight", {h, 2 * nv}, q).Tensor(p + "ssm_norm.weight", {dk}, kF32);
      b.Tensor(p + "ssm_out.weight", {value_dim, h}, q);
    }
    b.Tensor(p + "ffn_gate_inp.weight", {h, experts}, kF32);
    b.Tensor(p + "ffn_gate_exps.weight", {h, ff_exp, experts}, q);
    b.Tensor(p + "ffn_up_exps.weight", {h, ff_exp, experts}, q);
    b.Tensor(p + "ffn_down_exps.weight", {ff_exp, h, experts}, q);
    b.Tensor(p + "ffn_gate_inp_shexp.weight", {h}, kF32);
    b.Tensor(p + "ffn_gate_shexp.weight", {h, 512}, q).Tensor(p + "ffn_up_shexp.weight", {h, 512}, q);
    b.Tensor(p + "ffn_down_shexp.weight", {512, h}, q);
  }
  return b;
}

}  // namespace vramfit::fixtures

#endif  // VRAMFIT_TESTS_DATA_HYBRID_GGUF_H_
