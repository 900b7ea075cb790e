// The steps of the llamacpp runtime, one per buffer llama.cpp's load log
// prints ("CUDA0 model buffer size", "KV buffer size", "compute buffer
// size", "output buffer size"). Internal to the core: llamacpp.cc chains
// them (EstimateLlamaCpp) and the unit tests call them one by one. Every
// term, its units and its llama.cpp source: docs/estimation.md, "llamacpp
// runtime".
//
// Knobs. The steps read w.llamacpp as the profile's Resolve left it
// (ResolveKnobs): build, ubatch, parallel, flash_attn, cache_type_k and
// cache_type_v hold values. Two knobs keep "not given" (nullopt), because
// the estimate's text depends on whether they were given and the workload
// has no other place to say so:
//   batch_size  -b is repeated in the launch flags only when given; its
//               default (kDefaultBatch) is applied by ContextCells.
//   gpu_layers  the "b<N> defaults to -ngl 0" note is given only when -ngl
//               was not; its default (all, or 0 before PR #15434) is
//               applied by ResolveGpuLayers.
// Derived in the steps, not in Resolve, because they are what llama.cpp
// computes from the settings rather than settings: the padded context and
// KV cells, n_batch = min(n_ctx, -b) and n_ubatch = min(n_batch, -ub)
// (llama_context's constructor clamps them; ContextCells), and the layer
// placement. -fa auto is resolved from the build alone: vramfit assumes a
// CUDA device with flash-attention kernels for every model (llama.cpp's
// auto also turns it off where a device lacks them; modelling that would
// need the devices, and would belong in a step).
#ifndef VRAMFIT_SRC_CORE_RUNTIMES_LLAMACPP_STEPS_H_
#define VRAMFIT_SRC_CORE_RUNTIMES_LLAMACPP_STEPS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "vramfit/estimate.h"
#include "vramfit/gguf_mix.h"
#include "vramfit/workload.h"

namespace vramfit::runtimes::llamacpp {

// common/common.h defaults (common_params).
inline constexpr int64_t kDefaultUbatch = 512;           // -ub, n_ubatch
inline constexpr int64_t kDefaultBatch = 2048;           // -b, n_batch
inline constexpr DType kDefaultCacheType = DType::kF16;  // -ctk / -ctv
// CUDA primary context, kernel modules loaded on first use and the cuBLAS
// handle/workspace of a llama.cpp process, per GPU. PR #20595 measures the
// primary context at 120-550 MB depending on the GPU; vramfit takes a middle
// value (an assumption, not a measurement; docs/estimation.md).
inline constexpr int64_t kCudaContextMiB = 384;
// ggml-backend op offload: ops with a batch of at least this many tokens
// run on the GPU even when their weights are in host memory
// (ggml-cuda.cu ggml_backend_cuda_device_offload_op, min_batch_size = 32).
inline constexpr int64_t kOffloadMinBatch = 32;

// llama.cpp's own name of a cache type ("f16", "q8_0").
std::string CacheTypeName(DType t);

// --- Settings.

// The runtime knobs' checks and defaults (common/arg.cpp ranges; defaults
// of common_params and llama_context_default_params): -ub, -b, -np and -ngl
// ranges; build, -ub, -np (the workload's batch), -fa (on since PR #15434),
// -ctk/-ctv (f16) filled; a quantized V cache needs -fa; K/V rows must
// divide into the cache types' blocks. Errors name the flag.
// REQUIRES: w->quant, w->weights_as_stored and w->batch resolved.
Status ResolveKnobs(const Model& model, InferenceWorkload* w);

// Hybrid and recurrent stacks llama.cpp's llama_memory_hybrid /
// llama_memory_recurrent hold as vramfit models them, else HybridRefusal's
// line: attention-only or recurrent-only layers, no sliding window, no
// KDA, and the tensors of a .gguf file. REQUIRES: w.weights_as_stored resolved.
Status CheckHybrid(const Model& model, const InferenceWorkload& w);

// -ngl as llama.cpp applies it (llama_model::load_tensors): slots offloaded,
// 0..n_layer + 1 (the last is the output layer), and whether it means "all".
struct GpuLayers {
  int64_t ngl = 0;
  bool all = false;
};
// Default: all since PR #15434, 0 before. REQUIRES: k.build filled.
GpuLayers ResolveGpuLayers(const LlamaCppKnobs& k, int64_t n_layer);

// --- Context and KV cells (llama_context constructor, llama_kv_cache and
// llama_kv_cache_iswa constructors). Tokens / cells.
struct Cells {
  int64_t n_ctx_req = 0;   // -c: the workload's ctx
  int64_t n_seq = 1;       // -np
  int64_t n_ctx = 0;       // after padding, all sequences
  int64_t n_ctx_seq = 0;   // per sequence
  int64_t n_stream = 1;    // KV streams: one per sequence (non-unified) from kPad256 on
  int64_t cells = 0;       // KV cells per stream, full-attention layers
  int64_t cells_swa = 0;   // KV cells per stream, sliding-window layers
  int64_t n_sliding = 0;   // layers with a sliding window
  bool mixed_swa = false;  // the model mixes sliding and full layers
  bool swa = false;        // sliding layers get the small cache (since PR #13194)
  int64_t n_batch = 0;     // min(n_ctx, -b)
  int64_t n_ubatch = 0;    // min(n_batch, -ub)
  int64_t tokens = 0;      // graph reservation: min(n_ctx, n_ubatch)
};
// The cells for ctx tokens per request: n_ctx padded (256 since PR #17046;
// before, 256 with -fa and 32 without), -np streams, the SWA cache.
Cells ContextCells(const ModelSpec& s, const LlamaCppKnobs& k, int64_t ctx);
// KV cells per stream of layer il (cells_swa on a sliding layer with swa).
int64_t LayerCells(const ModelSpec& s, const Cells& c, int64_t il);

// --- Layer placement (llama_model::load_tensors, get_layer_buft).
struct Placed;
struct Placement {
  int64_t n_dev = 1;              // GPUs (1 without --gpu)
  std::vector<int64_t> dev_of;    // slot 0..n_layer -> GPU, -1 the CPU
  int64_t offloaded = 0;          // slots on a GPU
  int64_t out_dev = -1;           // the output layer's GPU, -1 the CPU
  // GPUs llama.cpp loads (model->devices): all, or the main GPU alone with
  // --split-mode none (llama_prepare_model_devices). An unused GPU holds
  // no buffer and no CUDA context.
  std::vector<bool> used;
  // Op offload's GPU: the first one used (backend 0 of the scheduler), -1 none.
  int64_t offload_dev = 0;
  // After PlaceTensors: each GgufFile tensor's device (-1 host); empty =
  // every tensor on its slot's device.
  std::vector<int64_t> tensor_dev;
  // Per block: the device of its attention weights and of its FFN weights
  // (the routed experts in an MoE layer), -1 host. PlaceLayers sets the
  // block's device; PlaceTensors the devices the overrides leave.
  std::vector<int64_t> attn_dev, ffn_dev;
  int64_t head_dev = -1;          // the output matmul's weight (output.weight or the tied copy)
  int64_t tied_dev = -2;          // where a tied head's copy of token_embd sits; -2 no copy
  // The device of a tensor's slot; -1 for the input layer and skipped ones.
  int64_t OfSlot(int64_t slot) const;
  // Tensor i of the file (t) after the overrides.
  int64_t TensorDev(size_t i, const Placed& t) const;
};
// --tensor-split as cumulative fractions: the shares given (-ts; all zero:
// the default), else each GPU's memory (llama.cpp: free memory at load;
// vramfit: the total).
std::vector<float> TensorSplit(const DeviceSet& devices, const std::vector<double>& shares = {});
// -ts, -sm and -mg against the GPUs (n_gpus: at least 1): llama.cpp's
// ranges, row split refused (not modelled), -ts with -sm none refused (it
// changes nothing), a nonzero share past the last GPU refused.
Status CheckSplit(const LlamaCppKnobs& k, int64_t n_gpus);
// Slots to devices for n_layer blocks + the output layer under -ngl; the
// output layer counts first since PR #18148. -sm none keeps the main GPU
// alone; -ts sets the split. REQUIRES: CheckSplit(k) passed.
Placement PlaceLayers(int64_t n_layer, const GpuLayers& ngl, int64_t build,
                      const DeviceSet& devices, const LlamaCppKnobs& k = {});

// --- Tensor buffer-type overrides (common/arg.cpp -ot / --n-cpu-moe /
// --cpu-moe; llama_model::load_tensors: the first pattern whose
// std::regex_search finds a match in a tensor's name picks its buffer).
struct TensorOverride {
  std::string pattern;   // ECMAScript regex, as std::regex reads it
  int64_t dev = -1;      // -1 CPU, else GPU d (buffer type CUDA<d>)
  std::string source;    // the flag it came from, for messages
};
// common.h LLM_FFN_EXPS_REGEX and llm_ffn_block_regex(il, ...).
inline constexpr const char* kExpsRegex = "\\.ffn_(up|down|gate|gate_up)_(ch|)exps";
std::string BlockExpsRegex(int64_t il);
// The overrides in order: -ot entries as given (comma lists split), then
// --n-cpu-moe's blocks, then --cpu-moe. Errors name the flag: no '=', a
// buffer type other than CPU / CUDA0..CUDA<n-1>, a bad regex, an expert
// flag on a dense model, a negative --n-cpu-moe.
Result<std::vector<TensorOverride>> Overrides(const ModelSpec& s, const LlamaCppKnobs& k, int64_t n_gpus);
struct GgufFile;
// Each tensor's device under the overrides, the tied head's copy (made only
// where the output layer's buffer differs from token_embd's), and each
// block's attention / FFN weight devices. Errors: an override that matches
// no tensor; an -ot entry and an expert flag that put one tensor on
// different buffers (llama.cpp takes the first on its command line, which
// the settings do not keep).
Status PlaceTensors(const ModelSpec& s, const GgufFile& f, const std::vector<TensorOverride>& ov,
                    Placement* p);

// --- Weights: the GGUF file's tensors.

// A weight tensor with the slot it is loaded to: 0..n_layer-1 a block,
// n_layer the output layer, -1 the input layer (always host), -2 not loaded
// (multi-token-prediction blocks past n_layer, TENSOR_SKIP).
struct Placed {
  std::string name;
  Role role = Role::kMlp;
  int64_t slot = -1;
  DType type = DType::kF32;
  Bytes bytes;
  int64_t ne0 = 0, rows = 1, experts = 1;
};
struct GgufFile {
  std::vector<Placed> tensors;
  std::string mix_name;                  // "Q4_K_M", "as stored in the .gguf file"
  std::optional<GgufFtype> unquantized;  // no GGUF type given: the F16/BF16/F32 file assumed
  bool mla_latent = false;               // MlaLatent
  // llama_model_loader's "file size" / "model size" and BPW inputs.
  Bytes bytes;
  int64_t elements = 0;
  std::map<std::string, int64_t> type_count;  // tensors per ggml type
  bool has_output = false;                    // an output.weight (else tied)
  Bytes token_embd_bytes;
  DType token_embd_type = DType::kF16;
};
// Whether the weights are a .gguf file's own tensors (not a GgufMix replay).
bool FromGgufFile(const Model& model, const InferenceWorkload& w);
// Whether llama.cpp caches MLA's latent c_kv + rope key instead of per-head
// K and V: since PR #12801, and for a .gguf file only one that stores
// attn_k_b (an older conversion stores attn_kv_b). REQUIRES: build filled.
bool MlaLatent(const Model& model, const InferenceWorkload& w);
// The file's tensors, or GgufMix's for w.quant. Errors: GgufMix's.
Result<GgufFile> LoadGguf(const Model& model, const InferenceWorkload& w);
// "weights" per device, by role: [0] the host, [d + 1] GPU d. token_embd
// stays on the host; a tied head is copied to the output layer's GPU
// (TENSOR_DUPLICATED).
std::vector<Component> WeightsByDevice(const GgufFile& f, const Placement& p);

// --- KV cache.

// Attention geometry as llama.cpp runs it (llama-model.cpp hparams).
struct AttnShape {
  int64_t n_head = 0, n_head_kv = 0, d_k = 0, d_v = 0;
  int64_t k_width = 0, v_width = 0;  // KV cache row elements per layer
  bool mla_latent = false;
};
// vless: MLA keeps no V cache (since PR #19067).
AttnShape Shape(const ModelSpec& s, bool mla_latent, bool vless);
// K/V rows must be whole blocks of the cache types (llama_kv_cache).
Status CheckKvRows(const AttnShape& a, DType type_k, DType type_v);

struct KvCache {
  int64_t k_row = 0, v_row = 0;     // bytes per cell and layer
  Bytes per_token;                  // (k_row + v_row) x n_layer
  std::vector<Component> by_device; // "kv_cache": [0] the host, [d + 1] GPU d
};
// K and V of each layer, cells x streams, on its layer's device (offload_kqv).
KvCache KvByDevice(const ModelSpec& s, const AttnShape& a, const Cells& c,
                   const LlamaCppKnobs& k, const Placement& p);

// --- Recurrent state (llama_memory_recurrent, the recurrent half of
// llama_memory_hybrid): per recurrent layer an R tensor [n_embd_r, rows]
// (conv state, kernel - 1 columns) and an S tensor [n_embd_s, rows] (ssm /
// delta-rule state), both f32, rows = max(1, n_seq_max) on the layer's
// device. Printed as "<dev> RS buffer size".
struct RecurrentState {
  int64_t rows = 0;              // max(1, -np)
  int64_t r_row = 0, s_row = 0;  // elements per row and layer (n_embd_r, n_embd_s)
  Bytes per_sequence;            // R + S of one sequence, all layers
  std::vector<Component> by_device;  // "recurrent_state": [0] the host, [d + 1] GPU d
};
RecurrentState RsByDevice(const ModelSpec& s, const Cells& c, const Placement& p);

// --- Compute buffers (llama_context::graph_reserve -> ggml_gallocr): the
// peak of the tensors live at once, for a ubatch of `tokens` tokens.

// A term of a compute buffer: what is live at one point of the graph.
struct Term {
  std::string name;
  Bytes bytes;
  std::string formula;
};
// One layer's attention over n_kv cells, f32 activations (build_attn_mha).
Term AttentionTerm(const AttnShape& a, int64_t hidden, bool fa, int64_t n_kv, int64_t tokens);
// One layer's FFN, dense or routed experts (build_ffn, build_moe_ffn).
Term FfnTerm(const ModelSpec& s, bool moe, int64_t tokens);
// The logits and the final norm's input/output (build_inp_out_ids .. result_output).
Term OutputTerm(const ModelSpec& s, int64_t tokens);
// Whether matmuls of host weights run on GPU0 (op offload, >= 32 tokens).
bool OpOffload(int64_t tokens);
// Each GPU's largest term: its layers' attention and FFN, the output on
// the output layer's GPU, host layers and the staged host weight on GPU0
// under op offload.
std::vector<Term> GpuComputeTerms(const ModelSpec& s, const AttnShape& a, const Cells& c, bool fa,
                                  const KvCache& kv, const Placement& p, const GgufFile& f);
// The host compute buffer (CPU / CUDA_Host): graph inputs, and the CPU
// layers' largest term when op offload is off.
Component HostComputeBuffer(const ModelSpec& s, const AttnShape& a, const Cells& c, bool fa,
                            const Placement& p);
// ggml-cuda's pool on GPU dev: KQ converted to f16 without -fa, quantized
// K/V converted to f16 with it. Not in llama.cpp's log.
Term CudaPoolTerm(const ModelSpec& s, const AttnShape& a, const Cells& c, const LlamaCppKnobs& k,
                  const Placement& p, int64_t dev);

// --- Output buffer (llama_context::output_reserve): f32 logits for n_seq
// outputs, host memory.
Component OutputBuffer(int64_t vocab, int64_t n_seq);

// --- Echo, launch flags, notes.

// The resolved settings as llama.cpp reports them (n_ctx, n_batch,
// n_ubatch after clamping; cells per layer, all streams).
Echo EchoOf(const LlamaCppKnobs& k, const Cells& c, const GpuLayers& ngl, const Placement& p,
            const GgufFile& f, int64_t n_layer);
// The llama-server flags of this estimate, paired ("-ngl 99").
std::vector<std::string> LaunchFlags(const LlamaCppKnobs& k, const Cells& c, const GpuLayers& ngl,
                                     int64_t n_layer, const DeviceSet& devices);
// "-ngl", "99", "-fa" -> "-ngl 99", "-fa": a value joins the flag before it.
std::vector<std::string> PairFlags(const std::vector<std::string>& flags);
// The estimate's notes, in order: the file (type assumed, "model size" and
// BPW), the build modelled, the offload, SWA, MLA, split and op-offload
// remarks, the CUDA context assumption.
std::vector<std::string> Notes(const ModelSpec& s, const LlamaCppKnobs& k, const Cells& c,
                               const GpuLayers& ngl, const Placement& p, const GgufFile& f,
                               const AttnShape& a);

}  // namespace vramfit::runtimes::llamacpp

#endif  // VRAMFIT_SRC_CORE_RUNTIMES_LLAMACPP_STEPS_H_
