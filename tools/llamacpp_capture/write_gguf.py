#!/usr/bin/env python3
"""Writes a header-only (sparse) GGUF of a real model's shapes.

The file holds the metadata llama.cpp's loader reads and every tensor info
with the shape llama.cpp's load_arch_tensors asks for; the data section is
left as a hole (the file is truncated to its full size), so the file takes
no disk and llama.cpp maps it with mmap. The vocabulary is a
placeholder SentencePiece list of the model's size (<unk>, <s>, </s>, the
256 byte tokens, then "tokN"), so node-llama-cpp can tokenize at load; the
model can be loaded and a context created, not run.

Usage: write_gguf.py MODEL OUT.gguf
       MODEL: lfm2-1.2b | mamba-2.8b | mamba2-2.7b | qwen3-next-80b-a3b

Shapes (ggml order: ne[0] is the row length) follow src/models/<arch>.cpp
load_arch_tensors of the llama.cpp release node-llama-cpp 3.21.1 bundles
(README.md); hyperparameters are those of data/models/hybrid.json (cited
there), written under the keys convert_hf_to_gguf.py uses.
"""
import struct
import sys

F32, F16, IQ1_S = 0, 1, 19
# (elements per block, bytes per block): ggml.c type_traits; IQ1_S is
# block_iq1_s (QK_K = 256: 2 + 32 + 16 bytes).
BLOCK = {F32: (1, 4), F16: (1, 2), IQ1_S: (256, 50)}
ALIGN = 32

# GGUF value types (ggml/include/gguf.h).
U32, I32, F32V, BOOL, STR, ARR = 4, 5, 6, 7, 8, 9


def lfm2_1_2b():
    # LiquidAI/LFM2-1.2B (data/models/hybrid.json): hidden 2048, 16 layers,
    # attention at full_attn_idxs [2, 5, 8, 10, 12, 14], 32 heads, 8 KV heads,
    # MLP 8192 (block_ff_dim 12288 auto-adjusted: 2*12288/3), conv_L_cache 3,
    # vocab 65536, tied embeddings.
    arch, h, n_layer, ff, vocab, heads, kv = "lfm2", 2048, 16, 8192, 65536, 32, 8
    attn = {2, 5, 8, 10, 12, 14}
    hd = h // heads
    kv_arr = [kv if i in attn else 0 for i in range(n_layer)]
    meta = [
        ("general.architecture", STR, arch),
        ("general.name", STR, "LFM2-1.2B (shapes only)"),
        (f"{arch}.context_length", U32, 128000),
        (f"{arch}.embedding_length", U32, h),
        (f"{arch}.block_count", U32, n_layer),
        (f"{arch}.feed_forward_length", U32, ff),
        (f"{arch}.attention.head_count", U32, heads),
        (f"{arch}.attention.head_count_kv", (ARR, I32), kv_arr),
        (f"{arch}.attention.layer_norm_rms_epsilon", F32V, 1e-5),
        (f"{arch}.rope.freq_base", F32V, 1000000.0),
        (f"{arch}.shortconv.l_cache", U32, 3),
        (f"{arch}.vocab_size", U32, vocab),
    ]
    t = [("token_embd.weight", [h, vocab], F16), ("token_embd_norm.weight", [h], F32)]
    for i in range(n_layer):
        b = f"blk.{i}."
        t.append((b + "attn_norm.weight", [h], F32))
        t.append((b + "ffn_norm.weight", [h], F32))
        t.append((b + "ffn_gate.weight", [h, ff], F16))
        t.append((b + "ffn_up.weight", [h, ff], F16))
        t.append((b + "ffn_down.weight", [ff, h], F16))
        if i in attn:
            t.append((b + "attn_q_norm.weight", [hd], F32))
            t.append((b + "attn_k_norm.weight", [hd], F32))
            t.append((b + "attn_q.weight", [h, h], F16))
            t.append((b + "attn_k.weight", [h, kv * hd], F16))
            t.append((b + "attn_v.weight", [h, kv * hd], F16))
            t.append((b + "attn_output.weight", [h, h], F16))
        else:
            t.append((b + "shortconv.conv.weight", [3, h], F32))
            t.append((b + "shortconv.in_proj.weight", [h, 3 * h], F16))
            t.append((b + "shortconv.out_proj.weight", [h, h], F16))
    return meta, t


def mamba_2_8b():
    # state-spaces/mamba-2.8b-hf (data/models/hybrid.json): d_model 2560,
    # 64 layers, d_inner 5120 (expand 2), d_state 16, d_conv 4, dt_rank 160,
    # vocab 50280, tied embeddings; attention head counts 0 (as
    # convert_hf_to_gguf.py MambaModel writes them).
    arch, h, n_layer, vocab = "mamba", 2560, 64, 50280
    d_inner, d_state, d_conv, dt_rank = 5120, 16, 4, 160
    meta = [
        ("general.architecture", STR, arch),
        ("general.name", STR, "mamba-2.8b (shapes only)"),
        (f"{arch}.context_length", U32, 1 << 20),
        (f"{arch}.embedding_length", U32, h),
        (f"{arch}.block_count", U32, n_layer),
        (f"{arch}.feed_forward_length", U32, 0),
        (f"{arch}.attention.head_count", U32, 0),
        (f"{arch}.attention.layer_norm_rms_epsilon", F32V, 1e-5),
        (f"{arch}.ssm.conv_kernel", U32, d_conv),
        (f"{arch}.ssm.inner_size", U32, d_inner),
        (f"{arch}.ssm.state_size", U32, d_state),
        (f"{arch}.ssm.time_step_rank", U32, dt_rank),
        (f"{arch}.vocab_size", U32, vocab),
    ]
    t = [("token_embd.weight", [h, vocab], F16), ("output_norm.weight", [h], F32)]
    for i in range(n_layer):
        b = f"blk.{i}."
        t.append((b + "attn_norm.weight", [h], F32))
        t.append((b + "ssm_in.weight", [h, 2 * d_inner], F16))
        t.append((b + "ssm_conv1d.weight", [d_conv, d_inner], F32))
        t.append((b + "ssm_conv1d.bias", [d_inner], F32))
        t.append((b + "ssm_x.weight", [d_inner, dt_rank + 2 * d_state], F16))
        t.append((b + "ssm_dt.weight", [dt_rank, d_inner], F16))
        t.append((b + "ssm_dt.bias", [d_inner], F32))
        t.append((b + "ssm_a", [d_state, d_inner], F32))
        t.append((b + "ssm_d", [d_inner], F32))
        t.append((b + "ssm_out.weight", [d_inner, h], F16))
    return meta, t


def mamba2_2_7b():
    # state-spaces/mamba2-2.7b: d_model 2560, n_layer 64, vocab 50277 padded
    # to a multiple of 16 (50288), tied; its config names only ssm_cfg.layer
    # "Mamba2", so the mixer is mamba_ssm Mamba2's defaults: d_state 128,
    # d_conv 4, expand 2 (d_inner 5120), headdim 64 (80 heads), ngroups 1.
    arch, h, n_layer, vocab = "mamba2", 2560, 64, 50288
    d_inner, d_state, d_conv, n_head, ng = 5120, 128, 4, 80, 1
    conv_dim = d_inner + 2 * ng * d_state
    meta = [
        ("general.architecture", STR, arch),
        ("general.name", STR, "mamba2-2.7b (shapes only)"),
        (f"{arch}.context_length", U32, 1 << 20),
        (f"{arch}.embedding_length", U32, h),
        (f"{arch}.block_count", U32, n_layer),
        (f"{arch}.feed_forward_length", U32, 0),
        (f"{arch}.attention.head_count", U32, 0),
        (f"{arch}.attention.layer_norm_rms_epsilon", F32V, 1e-5),
        (f"{arch}.ssm.conv_kernel", U32, d_conv),
        (f"{arch}.ssm.inner_size", U32, d_inner),
        (f"{arch}.ssm.state_size", U32, d_state),
        (f"{arch}.ssm.time_step_rank", U32, n_head),
        (f"{arch}.ssm.group_count", U32, ng),
    ]
    t = [("token_embd.weight", [h, vocab], F16), ("output_norm.weight", [h], F32)]
    for i in range(n_layer):
        b = f"blk.{i}."
        t.append((b + "attn_norm.weight", [h], F32))
        t.append((b + "ssm_in.weight", [h, 2 * d_inner + 2 * ng * d_state + n_head], F16))
        t.append((b + "ssm_conv1d.weight", [d_conv, conv_dim], F32))
        t.append((b + "ssm_conv1d.bias", [conv_dim], F32))
        t.append((b + "ssm_dt.bias", [n_head], F32))
        t.append((b + "ssm_a", [1, n_head], F32))
        t.append((b + "ssm_d", [1, n_head], F32))
        t.append((b + "ssm_norm.weight", [d_inner // ng, ng], F32))
        t.append((b + "ssm_out.weight", [d_inner, h], F16))
    return meta, t


def qwen3_next_80b_a3b():
    # Qwen/Qwen3-Next-80B-A3B-Instruct (data/models/hybrid.json): hidden 2048,
    # 48 layers (Gated DeltaNet but every 4th, full attention), 16 heads x 256,
    # 2 KV heads, linear attention 16 key / 32 value heads of 128, conv 4,
    # 512 experts of 512 (10 used) + a gated shared expert of 512, vocab
    # 151936, untied; no MTP block. Matrices are IQ1_S (1.56 bits: the file
    # is mapped and prefetched, so the smallest type keeps the page cache
    # small; IQ1_S has no CPU_REPACK layout, so nothing is copied).
    arch, h, n_layer, vocab, heads, hd, kvh = "qwen3next", 2048, 48, 151936, 16, 256, 2
    experts, ff_exp, shexp, nk, nv, dk, conv = 512, 512, 512, 16, 32, 128, 4
    key_dim, value_dim = nk * dk, nv * dk
    q = IQ1_S
    meta = [
        ("general.architecture", STR, arch),
        ("general.name", STR, "Qwen3-Next-80B-A3B (shapes only)"),
        (f"{arch}.context_length", U32, 262144),
        (f"{arch}.embedding_length", U32, h),
        (f"{arch}.block_count", U32, n_layer),
        (f"{arch}.feed_forward_length", U32, 5120),
        (f"{arch}.attention.head_count", U32, heads),
        (f"{arch}.attention.head_count_kv", U32, kvh),
        (f"{arch}.attention.key_length", U32, hd),
        (f"{arch}.attention.value_length", U32, hd),
        (f"{arch}.attention.layer_norm_rms_epsilon", F32V, 1e-6),
        (f"{arch}.rope.freq_base", F32V, 10000000.0),
        (f"{arch}.rope.dimension_count", U32, 64),
        (f"{arch}.expert_count", U32, experts),
        (f"{arch}.expert_used_count", U32, 10),
        (f"{arch}.expert_feed_forward_length", U32, ff_exp),
        (f"{arch}.expert_shared_feed_forward_length", U32, shexp),
        (f"{arch}.ssm.conv_kernel", U32, conv),
        (f"{arch}.ssm.state_size", U32, dk),
        (f"{arch}.ssm.group_count", U32, nk),
        (f"{arch}.ssm.time_step_rank", U32, nv),
        (f"{arch}.ssm.inner_size", U32, value_dim),
        (f"{arch}.full_attention_interval", U32, 4),
    ]
    t = [("token_embd.weight", [h, vocab], q), ("output_norm.weight", [h], F32), ("output.weight", [h, vocab], q)]
    for i in range(n_layer):
        b = f"blk.{i}."
        t.append((b + "attn_norm.weight", [h], F32))
        t.append((b + "post_attention_norm.weight", [h], F32))
        if (i + 1) % 4 == 0:
            t.append((b + "attn_q.weight", [h, 2 * heads * hd], q))
            t.append((b + "attn_k.weight", [h, kvh * hd], q))
            t.append((b + "attn_v.weight", [h, kvh * hd], q))
            t.append((b + "attn_output.weight", [heads * hd, h], q))
            t.append((b + "attn_q_norm.weight", [hd], F32))
            t.append((b + "attn_k_norm.weight", [hd], F32))
        else:
            t.append((b + "ssm_in.weight", [h, 2 * key_dim + 2 * value_dim], q))
            t.append((b + "ssm_conv1d.weight", [conv, 2 * key_dim + value_dim], F32))
            t.append((b + "ssm_dt.bias", [nv], F32))
            t.append((b + "ssm_a", [nv], F32))
            t.append((b + "ssm_ba.weight", [h, 2 * nv], q))
            t.append((b + "ssm_norm.weight", [dk], F32))
            t.append((b + "ssm_out.weight", [value_dim, h], q))
        t.append((b + "ffn_gate_inp.weight", [h, experts], F32))
        t.append((b + "ffn_gate_exps.weight", [h, ff_exp, experts], q))
        t.append((b + "ffn_up_exps.weight", [h, ff_exp, experts], q))
        t.append((b + "ffn_down_exps.weight", [ff_exp, h, experts], q))
        t.append((b + "ffn_gate_inp_shexp.weight", [h], F32))
        t.append((b + "ffn_gate_shexp.weight", [h, shexp], q))
        t.append((b + "ffn_up_shexp.weight", [h, shexp], q))
        t.append((b + "ffn_down_shexp.weight", [shexp, h], q))
    return meta, t


MODELS = {"lfm2-1.2b": lfm2_1_2b, "mamba-2.8b": mamba_2_8b, "mamba2-2.7b": mamba2_2_7b, "qwen3-next-80b-a3b": qwen3_next_80b_a3b}


def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def value(kind, v):
    if kind == U32:
        return struct.pack("<I", U32) + struct.pack("<I", v)
    if kind == F32V:
        return struct.pack("<I", F32V) + struct.pack("<f", v)
    if kind == STR:
        return struct.pack("<I", STR) + gstr(v)
    if isinstance(kind, tuple) and kind[1] == I32:
        return struct.pack("<IIQ", ARR, I32, len(v)) + b"".join(struct.pack("<i", x) for x in v)
    if isinstance(kind, tuple) and kind[1] == F32V:
        return struct.pack("<IIQ", ARR, F32V, len(v)) + b"".join(struct.pack("<f", x) for x in v)
    if isinstance(kind, tuple) and kind[1] == STR:
        return struct.pack("<IIQ", ARR, STR, len(v)) + b"".join(gstr(x) for x in v)
    raise ValueError(kind)


def nbytes(shape, typ):
    per, size = BLOCK[typ]
    n = shape[0] // per * size
    for d in shape[1:]:
        n *= d
    return n


def vocab_keys(n):
    # SentencePiece ("llama") placeholder: token types 2 unknown, 3 control,
    # 6 byte, 1 normal (llama_token_type).
    toks = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    toks += ["tok%d" % i for i in range(n - len(toks))]
    types += [1] * (n - len(types))
    return [
        ("tokenizer.ggml.model", STR, "llama"),
        ("tokenizer.ggml.tokens", (ARR, STR), toks),
        ("tokenizer.ggml.scores", (ARR, F32V), [0.0] * n),
        ("tokenizer.ggml.token_type", (ARR, I32), types),
        ("tokenizer.ggml.bos_token_id", U32, 1),
        ("tokenizer.ggml.eos_token_id", U32, 2),
    ]


def write(meta, tensors, path):
    vocab = next(shape[1] for name, shape, _ in tensors if name == "token_embd.weight")
    meta = [m for m in meta if not m[0].endswith(".vocab_size")] + vocab_keys(vocab)
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta)))
    for key, kind, v in meta:
        out += gstr(key) + value(kind, v)
    offset = 0
    for name, shape, typ in tensors:
        out += gstr(name) + struct.pack("<I", len(shape))
        out += b"".join(struct.pack("<Q", d) for d in shape)
        out += struct.pack("<IQ", typ, offset)
        offset += (nbytes(shape, typ) + ALIGN - 1) // ALIGN * ALIGN
    out += b"\0" * ((-len(out)) % ALIGN)
    with open(path, "wb") as f:
        f.write(out)
        f.truncate(len(out) + offset)  # the data section: a hole
    return len(out) + offset


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in MODELS:
        sys.exit("usage: write_gguf.py {%s} OUT.gguf" % "|".join(MODELS))
    meta, tensors = MODELS[sys.argv[1]]()
    size = write(meta, tensors, sys.argv[2])
    print(f"{sys.argv[2]}: {size} bytes, {len(tensors)} tensors")


if __name__ == "__main__":
    main()
