// The per-tensor types llama-quantize chooses for a GGUF file type.
//
// Source: llama.cpp src/llama-quant.cpp -- llama_ftype_get_default_type,
// tensor_allows_quantization, llama_tensor_get_type(_impl),
// tensor_type_fallback -- and the tensor names and layouts of
// convert_hf_to_gguf.py / gguf-py/gguf/tensor_mapping.py. Every rule is
// listed in docs/estimation.md, "llamacpp runtime", with the same names.
#include "vramfit/gguf_mix.h"

#include <algorithm>
#include <cctype>
#include <string>

#include <fmt/format.h>

namespace vramfit {
namespace {

using F = GgufFtype;

struct FtypeInfo {
  GgufFtype ftype;
  const char* name;
  DType base;  // llama_ftype_get_default_type
};

// llama_ftype_get_default_type (llama-quant.cpp). Note IQ2_S -> IQ2_XS,
// IQ2_M -> IQ2_S and IQ3_XS -> IQ3_S.
constexpr FtypeInfo kFtypes[] = {
    {F::kF32, "F32", DType::kF32},           {F::kF16, "F16", DType::kF16},
    {F::kBF16, "BF16", DType::kBF16},        {F::kQ4_0, "Q4_0", DType::kQ4_0},
    {F::kQ4_1, "Q4_1", DType::kQ4_1},        {F::kQ5_0, "Q5_0", DType::kQ5_0},
    {F::kQ5_1, "Q5_1", DType::kQ5_1},        {F::kQ8_0, "Q8_0", DType::kQ8_0},
    {F::kQ2_K, "Q2_K", DType::kQ2_K},        {F::kQ2_K_S, "Q2_K_S", DType::kQ2_K},
    {F::kQ3_K_S, "Q3_K_S", DType::kQ3_K},    {F::kQ3_K_M, "Q3_K_M", DType::kQ3_K},
    {F::kQ3_K_L, "Q3_K_L", DType::kQ3_K},    {F::kQ4_K_S, "Q4_K_S", DType::kQ4_K},
    {F::kQ4_K_M, "Q4_K_M", DType::kQ4_K},    {F::kQ5_K_S, "Q5_K_S", DType::kQ5_K},
    {F::kQ5_K_M, "Q5_K_M", DType::kQ5_K},    {F::kQ6_K, "Q6_K", DType::kQ6_K},
    {F::kIQ2_XXS, "IQ2_XXS", DType::kIQ2_XXS}, {F::kIQ2_XS, "IQ2_XS", DType::kIQ2_XS},
    {F::kIQ2_S, "IQ2_S", DType::kIQ2_XS},    {F::kIQ2_M, "IQ2_M", DType::kIQ2_S},
    {F::kIQ3_XXS, "IQ3_XXS", DType::kIQ3_XXS}, {F::kIQ3_XS, "IQ3_XS", DType::kIQ3_S},
    {F::kIQ3_S, "IQ3_S", DType::kIQ3_S},     {F::kIQ3_M, "IQ3_M", DType::kIQ3_S},
    {F::kIQ1_S, "IQ1_S", DType::kIQ1_S},     {F::kIQ1_M, "IQ1_M", DType::kIQ1_M},
    {F::kIQ4_NL, "IQ4_NL", DType::kIQ4_NL},  {F::kIQ4_XS, "IQ4_XS", DType::kIQ4_XS},
    {F::kTQ1_0, "TQ1_0", DType::kTQ1_0},     {F::kTQ2_0, "TQ2_0", DType::kTQ2_0},
    {F::kMXFP4_MOE, "MXFP4_MOE", DType::kMXFP4},
};

std::string Upper(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

// tensor_get_category (llama-quant.cpp): broad categories by name substring.
enum class Cat {
  kTokenEmbd, kAttnQ, kAttnV, kAttnK, kAttnQkv, kAttnKvB, kAttnOutput, kFfnUp, kFfnGate,
  kFfnDown, kOutput, kOther,
};

Cat Category(const std::string& name) {
  if (name == "output.weight") return Cat::kOutput;
  if (name == "token_embd.weight") return Cat::kTokenEmbd;
  const auto has = [&](const char* s) { return name.find(s) != std::string::npos; };
  if (has("attn_qkv.weight")) return Cat::kAttnQkv;
  if (has("attn_kv_b.weight")) return Cat::kAttnKvB;
  if (has("attn_v.weight")) return Cat::kAttnV;
  if (has("attn_k.weight")) return Cat::kAttnK;
  if (has("attn_q.weight")) return Cat::kAttnQ;
  if (has("attn_output.weight")) return Cat::kAttnOutput;
  if (has("ffn_up")) return Cat::kFfnUp;
  if (has("ffn_gate")) return Cat::kFfnGate;
  if (has("ffn_down")) return Cat::kFfnDown;
  return Cat::kOther;
}

// A tensor before its type is chosen.
struct Raw {
  std::string name;
  Role role;
  int64_t layer;
  int64_t ne0, rows, experts;
  bool quantizable;  // tensor_allows_quantization: >= 2-D weights but norms and the router
};

bool IsIqLowFamily(F f) {  // the IQ1/IQ2 branch of llama_tensor_get_type_impl
  return f == F::kIQ2_XXS || f == F::kIQ2_XS || f == F::kIQ1_S || f == F::kIQ2_S ||
         f == F::kIQ2_M || f == F::kIQ1_M;
}

// Whether llama-quantize refuses the file type without an importance matrix
// (tensor_requires_imatrix: IQ1/IQ2/IQ3_XXS targets, Q2_K under Q2_K_S).
bool NeedsImatrix(F f) { return IsIqLowFamily(f) || f == F::kIQ3_XXS || f == F::kQ2_K_S; }

// The llama.cpp architectures whose rules differ, from the HF model_type.
bool IsFalcon(const ModelSpec& s) { return s.model_type == "falcon"; }

// LLM_TYPE_70B (llama-model.cpp load_hparams): 80-layer llama with GQA
// (65B when n_head == n_head_kv), 80-layer qwen2.
bool Is70B(const ModelSpec& s) {
  if (s.num_hidden_layers != 80) return false;
  if (s.model_type == "llama" || s.model_type == "mistral") {
    return s.num_attention_heads != s.num_key_value_heads;
  }
  return s.model_type == "qwen2";
}

// The GGUF tensors of one inventory group, per layer copy: (name, ne0,
// rows, experts). Returns false for groups GGUF files do not carry.
struct Part {
  std::string base;
  int64_t ne0, rows, experts;
  bool quantizable;
};

std::vector<Part> GgufParts(const TensorGroup& g, const ModelSpec& s, int64_t build) {
  std::string n = g.name;
  if (n.rfind("layers.*.", 0) == 0) n = n.substr(9);
  const int64_t in = g.cols;
  const int64_t out = g.rows;
  const auto ends = [&](const char* suffix) {
    const std::string x(suffix);
    return n.size() >= x.size() && n.compare(n.size() - x.size(), x.size(), x) == 0;
  };
  // 1-D tensors (norms, biases, sinks) are F32 in converted files and never
  // quantized (convert_hf_to_gguf: n_dims <= 1 -> F32).
  if (!g.linear && g.cols == 1) {
    std::string base = n;
    for (char& c : base) c = c == '.' || c == '*' ? '_' : c;
    return {{base, out, 1, 1, false}};
  }
  if (n == "embed_tokens.weight") return {{"token_embd.weight", in, out, 1, true}};
  if (n == "embed_positions.weight") return {{"position_embd.weight", in, out, 1, false}};
  if (n == "lm_head.weight") return {{"output.weight", in, out, 1, true}};
  if (n == "project_in.weight" || n == "project_out.weight") {
    return {{n == "project_in.weight" ? "proj_in.weight" : "proj_out.weight", in, out, 1, true}};
  }
  // Attention.
  if (ends("self_attn.q_proj.weight")) return {{"attn_q.weight", in, out, 1, true}};
  if (ends("self_attn.k_proj.weight")) return {{"attn_k.weight", in, out, 1, true}};
  if (ends("self_attn.v_proj.weight")) return {{"attn_v.weight", in, out, 1, true}};
  if (ends("self_attn.qkv_proj.weight")) return {{"attn_qkv.weight", in, out, 1, true}};
  if (ends("self_attn.o_proj.weight")) return {{"attn_output.weight", in, out, 1, true}};
  if (ends("self_attn.q_a_proj.weight")) return {{"attn_q_a.weight", in, out, 1, true}};
  if (ends("self_attn.q_b_proj.weight")) return {{"attn_q_b.weight", in, out, 1, true}};
  if (ends("self_attn.kv_a_proj_with_mqa.weight")) return {{"attn_kv_a_mqa.weight", in, out, 1, true}};
  if (ends("self_attn.kv_b_proj.weight")) {
    if (build < llamacpp_build::kMla) return {{"attn_kv_b.weight", in, out, 1, true}};
    // convert_hf_to_gguf.py (DeepseekV2Model.modify_tensors) splits kv_b
    // per head: attn_k_b [nope, kv_lora, heads] (transposed) and attn_v_b
    // [kv_lora, v_head_dim, heads].
    const int64_t heads = s.num_attention_heads;
    return {{"attn_k_b.weight", s.qk_nope_head_dim, s.kv_lora_rank, heads, true},
            {"attn_v_b.weight", s.kv_lora_rank, s.v_head_dim, heads, true}};
  }
  // Routed experts, merged per layer into 3-D tensors [ne0, rows, experts].
  const int64_t e = s.num_experts;
  if (ends("experts.*.gate_up_proj")) {
    const int64_t mi = out / 2;
    return {{"ffn_gate_exps.weight", in, mi, e, true}, {"ffn_up_exps.weight", in, mi, e, true}};
  }
  if (ends("experts.*.gate_proj.weight")) return {{"ffn_gate_exps.weight", in, out, e, true}};
  if (ends("experts.*.up_proj.weight") || ends("experts.*.fc1.weight")) {
    return {{"ffn_up_exps.weight", in, out, e, true}};
  }
  if (ends("experts.*.down_proj.weight") || ends("experts.*.fc2.weight")) {
    return {{"ffn_down_exps.weight", in, out, e, true}};
  }
  // The MoE router stays F32 (convert_hf_to_gguf keeps FFN_GATE_INP in F32;
  // tensor_allows_quantization skips ffn_gate_inp.weight).
  if (ends("mlp.router.weight")) return {{"ffn_gate_inp.weight", in, out, 1, false}};
  // Shared experts.
  if (ends("shared_experts.gate_proj.weight")) return {{"ffn_gate_shexp.weight", in, out, 1, true}};
  if (ends("shared_experts.up_proj.weight")) return {{"ffn_up_shexp.weight", in, out, 1, true}};
  if (ends("shared_experts.down_proj.weight")) return {{"ffn_down_shexp.weight", in, out, 1, true}};
  if (ends("shared_expert_gate.weight")) return {{"ffn_gate_inp_shexp.weight", in * out, 1, 1, false}};
  // Dense MLP. A fused gate_up (Phi-3) is llama.cpp's ffn_up [n_embd, 2 n_ff].
  if (ends("mlp.gate_proj.weight")) return {{"ffn_gate.weight", in, out, 1, true}};
  if (ends("mlp.up_proj.weight") || ends("mlp.gate_up_proj.weight") || ends("mlp.fc1.weight")) {
    return {{"ffn_up.weight", in, out, 1, true}};
  }
  if (ends("mlp.down_proj.weight") || ends("mlp.fc2.weight")) return {{"ffn_down.weight", in, out, 1, true}};
  // Anything else 2-D: quantizable under its own name.
  return {{n, in, out, 1, true}};
}

// Sort key of llama_model_loader::weight_name_comparer: layer, then name.
bool LoadOrder(const Raw& a, const Raw& b) {
  if (a.layer != b.layer) return a.layer < b.layer;
  return a.name < b.name;
}

// tensor_type_fallback (llama-quant.cpp): a row length the chosen block
// does not divide takes a compatible type; if even that fails, F16.
Result<DType> Fallback(const Raw& t, DType type) {
  const int64_t blck = Info(type).block_elems;
  if (t.ne0 % blck == 0) return type;
  DType r;
  switch (type) {
    case DType::kIQ1_S: case DType::kIQ1_M: case DType::kIQ2_XXS: case DType::kIQ2_XS:
    case DType::kIQ2_S: case DType::kIQ3_XXS: case DType::kIQ3_S: case DType::kIQ4_XS:
      r = DType::kIQ4_NL;
      break;
    case DType::kQ2_K: case DType::kQ3_K: case DType::kTQ1_0: case DType::kTQ2_0:
      r = DType::kQ4_0;
      break;
    case DType::kQ4_K: r = DType::kQ5_0; break;
    case DType::kQ5_K: r = DType::kQ5_1; break;
    case DType::kQ6_K: r = DType::kQ8_0; break;
    default:
      return InvalidArgument(fmt::format(
          "--quant: {}: rows of {} elements do not divide into {} blocks, and llama-quantize has "
          "no fallback for {}",
          t.name, t.ne0, Name(type), Name(type)));
  }
  if (t.ne0 % Info(r).block_elems != 0) r = DType::kF16;
  return r;
}

}  // namespace

const char* FtypeName(GgufFtype f) {
  if (f == F::kPure) return "pure";
  for (const FtypeInfo& i : kFtypes) {
    if (i.ftype == f) return i.name;
  }
  return "?";
}

std::optional<GgufFtype> ParseFtype(std::string_view s) {
  const std::string u = Upper(s);
  for (const FtypeInfo& i : kFtypes) {
    if (u == i.name) return i.ftype;
  }
  return std::nullopt;
}

DType FtypeDefaultType(GgufFtype f) {
  for (const FtypeInfo& i : kFtypes) {
    if (i.ftype == f) return i.base;
  }
  return DType::kF16;
}

Bytes GgufBytes(const std::vector<GgufTensor>& tensors) {
  Bytes b;
  for (const GgufTensor& t : tensors) b += t.bytes;
  return b;
}

int64_t GgufElements(const std::vector<GgufTensor>& tensors) {
  int64_t n = 0;
  for (const GgufTensor& t : tensors) {
    n = CheckedAdd(n, CheckedMul(CheckedMul(t.ne0, t.rows), t.experts));
  }
  return n;
}

namespace {

// The file's tensors, one entry per tensor, in llama.cpp's load order.
// Per-layer groups give count / layers copies in each layer of the group's
// kind (dense or MoE); merged experts are one tensor per layer.
std::vector<Raw> TensorList(const Model& model, int64_t build) {
  const ModelSpec& s = model.spec;
  std::vector<Raw> raw;
  for (const TensorGroup& g : model.inventory.groups) {
    const std::vector<Part> parts = GgufParts(g, s, build);
    if (g.layers > 0) {
      int64_t per_layer = g.count / g.layers;
      const bool merged = parts.front().experts > 1;
      if (merged) per_layer = 1;
      for (int64_t il = 0; il < s.num_hidden_layers; ++il) {
        if (!GroupInLayer(g, s.layers[static_cast<size_t>(il)])) continue;
        for (int64_t k = 0; k < per_layer; ++k) {
          for (const Part& p : parts) {
            std::string name = fmt::format("blk.{}.{}", il, p.base);
            if (per_layer > 1) name = fmt::format("blk.{}.{}.{}", il, p.base, k);
            raw.push_back({name, g.role, il, p.ne0, p.rows, p.experts, p.quantizable});
          }
        }
      }
    } else {
      for (int64_t k = 0; k < g.count; ++k) {
        for (const Part& p : parts) {
          std::string name = p.base;
          if (g.name == "norm.weight") name = "output_norm.weight";
          if (g.name == "norm.bias") name = "output_norm.bias";
          if (g.count > 1) name += fmt::format(".{}", k);
          raw.push_back({name, g.role, -1, p.ne0, p.rows, p.experts, p.quantizable});
        }
      }
    }
  }
  std::stable_sort(raw.begin(), raw.end(), LoadOrder);
  return raw;
}

// quantize_state_impl: what llama_tensor_get_type_impl reads about the
// model and file type, and the per-category counters it advances.
struct QuantState {
  F ftype = F::kPure;
  DType base = DType::kF32;      // the ftype's default type (or --pure's)
  bool quantized_base = false;   // base is a block type
  bool category_refactor = false;  // build >= kQuantCategory
  bool tied = false;             // no output.weight: token_embd is the head
  bool falcon = false;
  bool is70b = false;
  bool imatrix = false;          // NeedsImatrix(ftype)
  int64_t n_expert = 0;
  int64_t n_gqa = 1;             // n_head / n_head_kv of layer 0
  int64_t n_ffn = 0;             // n_ffn_down = n_ffn_gate = n_ffn_up = n_layer
  int64_t n_attention_wv = 0;
  int64_t i_attention_wv = 0, i_ffn_down = 0, i_ffn_gate = 0, i_ffn_up = 0;

  // Since the tensor_category refactor attn_qkv and attn_kv_b follow the
  // attn_v rules; before it only attn_v did (attn_qkv had its own branch).
  bool IsAttnV(Cat c) const {
    return c == Cat::kAttnV || (category_refactor && (c == Cat::kAttnQkv || c == Cat::kAttnKvB));
  }
  // layer_info: MoE models take the layer from the name, dense ones the counter.
  int64_t LayerOf(const Raw& t, int64_t counter) const { return n_expert > 1 ? t.layer : counter; }
};

// init_quantize_state_counters and the model facts the rules test.
QuantState InitQuantState(const ModelSpec& s, const std::vector<Raw>& raw, F ftype,
                          DType pure_type, int64_t build) {
  QuantState q;
  q.ftype = ftype;
  q.base = ftype == F::kPure ? pure_type : FtypeDefaultType(ftype);
  q.quantized_base = Info(q.base).block_elems > 1;
  q.category_refactor = build >= llamacpp_build::kQuantCategory;
  bool has_output = false;
  for (const Raw& t : raw) {
    const Cat c = Category(t.name);
    if (c == Cat::kAttnV || c == Cat::kAttnQkv || c == Cat::kAttnKvB) ++q.n_attention_wv;
    if (c == Cat::kOutput) has_output = true;
  }
  q.tied = !has_output;
  q.n_ffn = s.num_hidden_layers;
  q.n_expert = s.num_experts;
  // n_gqa() of layer 0; MLA GGUFs store n_head_kv = 1.
  const bool mla_latent = s.attn_kind == AttnKind::kMla && build >= llamacpp_build::kMla;
  q.n_gqa = mla_latent ? s.num_attention_heads
            : s.num_key_value_heads > 0 ? s.num_attention_heads / s.num_key_value_heads
                                        : 1;
  q.falcon = IsFalcon(s);
  q.is70b = Is70B(s);
  q.imatrix = NeedsImatrix(ftype);
  return q;
}

// use_more_bits (llama-quant.cpp): the first and last eighth of the layers
// and every third one between.
bool UseMoreBits(int64_t i, int64_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

// The output head (or a tied token_embd): Q8_0 for MXFP4_MOE, Falcon or a
// row the block does not divide; Q5_K for the IQ1/IQ2/IQ3_XXS files; Q6_K.
DType OutputType(const QuantState& q, const Raw& t) {
  const F f = q.ftype;
  DType type = q.base;
  const int64_t blck = Info(type).block_elems;
  if (f == F::kMXFP4_MOE) type = DType::kQ8_0;
  else if (q.falcon || t.ne0 % blck != 0) type = DType::kQ8_0;
  else if (f == F::kIQ2_XXS || f == F::kIQ2_XS || f == F::kIQ3_XXS || f == F::kIQ1_S ||
           f == F::kIQ2_S || f == F::kIQ2_M || f == F::kIQ1_M)
    type = DType::kQ5_K;
  else if (type != DType::kQ8_0) type = DType::kQ6_K;
  return type;
}

// An untied token_embd: smaller K/IQ types for the lowest-bit files.
DType TokenEmbdType(const QuantState& q) {
  const F f = q.ftype;
  if (f == F::kIQ2_XXS || f == F::kIQ2_XS || f == F::kIQ1_S || f == F::kIQ1_M) return DType::kQ2_K;
  if (f == F::kIQ2_S || f == F::kIQ2_M || f == F::kIQ3_XXS) return DType::kIQ3_S;
  if (f == F::kTQ1_0 || f == F::kTQ2_0) return DType::kQ4_K;
  return q.base;
}

// The IQ1/IQ2 branch: attn_v, Mixtral's attn_k, the first eighth of
// ffn_down and attn_output get more bits.
DType IqLowType(QuantState& q, Cat c) {
  const F f = q.ftype;
  DType type = q.base;
  const bool iq2sm = f == F::kIQ2_S || f == F::kIQ2_M;
  if (q.IsAttnV(c)) {
    if (q.n_gqa >= 4 || q.n_expert >= 4) type = DType::kQ4_K;
    else type = iq2sm ? DType::kIQ3_S : DType::kQ2_K;
    ++q.i_attention_wv;
  } else if (q.n_expert == 8 && c == Cat::kAttnK) {
    type = DType::kQ4_K;
  } else if (c == Cat::kFfnDown) {
    if (q.i_ffn_down < q.n_ffn / 8) type = iq2sm ? DType::kIQ3_S : DType::kQ2_K;
    ++q.i_ffn_down;
  } else if (c == Cat::kAttnOutput) {
    if (q.n_expert == 8) type = DType::kQ5_K;
    else if (f == F::kIQ1_S || f == F::kIQ1_M) type = DType::kIQ2_XXS;
    else if (iq2sm) type = DType::kIQ3_S;
  }
  return type;
}

// attn_v (and, since the refactor, attn_qkv / attn_kv_b): more bits with
// GQA, on use_more_bits layers for *_M files, for 70B and Mixtral.
DType AttnVType(QuantState& q) {
  const F f = q.ftype;
  const int64_t n_gqa = q.n_gqa;
  DType type = q.base;
  if (f == F::kQ2_K) type = n_gqa >= 4 ? DType::kQ4_K : DType::kQ3_K;
  else if (f == F::kQ2_K_S && n_gqa >= 4) type = DType::kQ4_K;
  else if (f == F::kIQ3_XXS)
    type = n_gqa >= 4 ? DType::kQ4_K : !q.imatrix ? DType::kIQ3_S : DType::kIQ3_XXS;
  else if ((f == F::kIQ3_XS || f == F::kIQ3_S) && n_gqa >= 4) type = DType::kQ4_K;
  else if (f == F::kIQ3_M) type = DType::kQ4_K;
  else if (f == F::kQ3_K_M) type = q.i_attention_wv < 2 ? DType::kQ5_K : DType::kQ4_K;
  else if (f == F::kQ3_K_L) type = DType::kQ5_K;
  else if ((f == F::kIQ4_NL || f == F::kIQ4_XS) && n_gqa >= 4) type = DType::kQ5_K;
  else if ((f == F::kQ4_K_M || f == F::kQ5_K_M) && UseMoreBits(q.i_attention_wv, q.n_attention_wv))
    type = DType::kQ6_K;
  else if (f == F::kQ4_K_S && q.i_attention_wv < 4) type = DType::kQ5_K;
  // 70B: attn_v is 8x smaller than attn_q, so it gets more bits.
  if (q.is70b && (type == DType::kQ3_K || type == DType::kQ4_K)) type = DType::kQ5_K;
  if (q.n_expert == 8) type = DType::kQ8_0;  // Mixtral
  ++q.i_attention_wv;
  return type;
}

// attn_k and attn_q: Mixtral's attn_k in Q8_0, fewer bits in IQ3_XS/XXS files.
DType AttnKQType(const QuantState& q, Cat c) {
  const F f = q.ftype;
  if (c == Cat::kAttnK && q.n_expert == 8) return DType::kQ8_0;
  if (f == F::kIQ3_XS) return DType::kIQ3_XXS;
  if (f == F::kIQ3_XXS) return DType::kIQ2_S;
  return q.base;
}

// ffn_down: more bits on the first layers or use_more_bits layers, per file type.
DType FfnDownType(QuantState& q, const Raw& t) {
  const F f = q.ftype;
  const int64_t il = q.LayerOf(t, q.i_ffn_down);
  const int64_t nl = q.n_ffn;
  const bool falcon = q.falcon, imatrix = q.imatrix;
  DType type = q.base;
  if (f == F::kQ2_K) type = DType::kQ3_K;
  else if (f == F::kQ2_K_S) { if (il < nl / 8) type = DType::kQ4_K; }
  else if (f == F::kIQ3_XXS && !imatrix) type = il < nl / 8 ? DType::kQ4_K : DType::kQ3_K;
  else if (f == F::kQ3_K_M)
    type = il < nl / 16 ? DType::kQ5_K
           : !falcon || UseMoreBits(il, nl) ? DType::kQ4_K : DType::kQ3_K;
  else if (f == F::kIQ3_M && (il < nl / 8 || (q.n_expert == 8 && UseMoreBits(il, nl))))
    type = DType::kQ4_K;
  else if (f == F::kQ3_K_L) type = falcon ? DType::kQ4_K : DType::kQ5_K;
  else if (f == F::kQ4_K_M) {
    if (falcon) type = il < nl / 16 ? DType::kQ6_K : UseMoreBits(il, nl) ? DType::kQ5_K : DType::kQ4_K;
    else if (UseMoreBits(il, nl)) type = DType::kQ6_K;
  }
  else if (il < nl / 8 && (f == F::kIQ4_NL || f == F::kIQ4_XS) && !imatrix) type = DType::kQ5_K;
  else if (f == F::kQ5_K_M && UseMoreBits(il, nl)) type = DType::kQ6_K;
  else if (f == F::kQ4_K_S && !falcon && il < nl / 8) type = DType::kQ5_K;
  else if ((f == F::kQ4_0 || f == F::kQ5_0) && imatrix && il < nl / 8)
    type = f == F::kQ4_0 ? DType::kQ4_1 : DType::kQ5_1;
  ++q.i_ffn_down;
  return type;
}

// attn_output: Q5_K in Mixtral's low-bit files; a step up in Q2/Q3/IQ3 files.
DType AttnOutputType(const QuantState& q) {
  const F f = q.ftype;
  if (q.falcon) return f == F::kQ3_K_L ? DType::kQ4_K : q.base;
  if (q.n_expert == 8) {
    if (f == F::kQ2_K || f == F::kIQ3_XS || f == F::kIQ3_XXS || f == F::kQ3_K_S ||
        f == F::kQ3_K_M || f == F::kIQ4_NL || f == F::kQ4_K_S || f == F::kQ4_K_M ||
        f == F::kIQ3_S || f == F::kIQ3_M || f == F::kIQ4_XS)
      return DType::kQ5_K;
    return q.base;
  }
  if (f == F::kQ2_K) return DType::kQ3_K;
  if (f == F::kIQ3_XXS) return DType::kIQ3_S;
  if (f == F::kQ3_K_M) return DType::kQ4_K;
  if (f == F::kQ3_K_L) return DType::kQ5_K;
  if (f == F::kIQ3_M) return DType::kQ4_K;
  return q.base;
}

// A fused attn_qkv before the refactor (after it IsAttnV takes it).
DType AttnQkvType(const QuantState& q) {
  const F f = q.ftype;
  if (f == F::kQ3_K_M || f == F::kQ3_K_L || f == F::kIQ3_M) return DType::kQ4_K;
  if (f == F::kQ4_K_M) return DType::kQ5_K;
  if (f == F::kQ5_K_M) return DType::kQ6_K;
  return q.base;
}

// ffn_gate / ffn_up: IQ3_XXS on the middle layers of an IQ3_XS file.
DType FfnGateUpType(QuantState& q, const Raw& t, Cat c) {
  int64_t& counter = c == Cat::kFfnGate ? q.i_ffn_gate : q.i_ffn_up;
  const int64_t il = q.LayerOf(t, counter);
  DType type = q.base;
  if (q.ftype == F::kIQ3_XS && il >= q.n_ffn / 8 && il < 7 * q.n_ffn / 8) type = DType::kIQ3_XXS;
  ++counter;
  return type;
}

// llama_tensor_get_type_impl: the type of one tensor, before the shape
// fallback. Branches in llama.cpp's order; some advance q's counters.
DType TensorType(QuantState& q, const Raw& t) {
  if (!t.quantizable) return DType::kF32;  // norms, biases, router: F32 as converted
  if (!q.quantized_base || q.ftype == F::kPure) return q.base;  // F16/BF16/F32 files, --pure
  const Cat c = Category(t.name);
  if (c == Cat::kOutput || (q.tied && c == Cat::kTokenEmbd)) return OutputType(q, t);
  if (q.ftype == F::kMXFP4_MOE) return t.experts > 1 ? DType::kMXFP4 : DType::kQ8_0;
  if (c == Cat::kTokenEmbd) return TokenEmbdType(q);
  if (IsIqLowFamily(q.ftype)) return IqLowType(q, c);
  if (q.IsAttnV(c)) return AttnVType(q);
  if (c == Cat::kAttnK || c == Cat::kAttnQ) return AttnKQType(q, c);
  if (c == Cat::kFfnDown) return FfnDownType(q, t);
  if (c == Cat::kAttnOutput) return AttnOutputType(q);
  if (c == Cat::kAttnQkv) return AttnQkvType(q);
  if (c == Cat::kFfnGate || c == Cat::kFfnUp) return FfnGateUpType(q, t, c);
  return q.base;
}

}  // namespace

Result<std::vector<GgufTensor>> GgufMix(const Model& model, GgufFtype ftype, DType pure_type,
                                        int64_t build) {
  const std::vector<Raw> raw = TensorList(model, build);
  QuantState q = InitQuantState(model.spec, raw, ftype, pure_type, build);
  std::vector<GgufTensor> out;
  out.reserve(raw.size());
  for (const Raw& t : raw) {
    DType type = TensorType(q, t);
    if (t.quantizable && q.quantized_base) {
      auto fb = Fallback(t, type);
      if (!fb.ok()) return fb.error();
      type = *fb;
    }
    GgufTensor g;
    g.name = t.name;
    g.role = t.role;
    g.layer = t.layer;
    g.ne0 = t.ne0;
    g.rows = t.rows;
    g.experts = t.experts;
    g.type = type;
    g.bytes = StorageBytes(type, t.ne0) * CheckedMul(t.rows, t.experts);
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace vramfit
