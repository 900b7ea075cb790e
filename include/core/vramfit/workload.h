// Workloads: the settings of a job, as given (Settings, with "auto" left
// open) and fully resolved (Workload, nothing left to decide).
#ifndef VRAMFIT_WORKLOAD_H_
#define VRAMFIT_WORKLOAD_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vramfit/device.h"
#include "vramfit/dtype.h"
#include "vramfit/error.h"
#include "vramfit/model.h"
#include "vramfit/quant.h"

namespace vramfit {

enum class Runtime { kHf, kVllm, kLlamaCpp, kSglang };
enum class AttnImpl { kEager, kSdpa, kFlash };

const char* RuntimeName(Runtime r);  // "hf", "vllm", "llamacpp", "sglang"
const char* AttnName(AttnImpl a);    // "eager", "sdpa", "flash"
Result<Runtime> ParseRuntime(std::string_view s);
Result<AttnImpl> ParseAttn(std::string_view s);

// vLLM engine arguments (vllm/engine/arg_utils.py); nullopt = vLLM's default.
struct VllmKnobs {
  std::optional<double> gpu_memory_utilization;  // --gpu-mem-util (0.9)
  std::optional<int64_t> max_model_len;          // --max-model-len (the model's max)
  std::optional<int64_t> max_num_seqs;           // --max-num-seqs
  std::optional<int64_t> max_num_batched_tokens; // --max-num-batched-tokens
  std::optional<int64_t> block_size;             // --block-size (16)
  bool enforce_eager = false;                    // --enforce-eager
  // Recurrent state dtypes (CacheConfig mamba_cache_dtype /
  // mamba_ssm_cache_dtype, vLLM 0.11 MambaDType "auto" | "float32"):
  // nullopt = auto (conv: the model dtype; SSM: the conv dtype); else fp32.
  std::optional<DType> mamba_cache_dtype;        // --mamba-cache-dtype (auto)
  std::optional<DType> mamba_ssm_cache_dtype;    // --mamba-ssm-cache-dtype (auto)
};

// SGLang server arguments (python/sglang/srt/server_args.py); nullopt =
// SGLang's default, most of them by GPU memory size (sglang.cc).
struct SglangKnobs {
  std::optional<double> mem_fraction_static;    // --mem-fraction-static (the reserve rule)
  std::optional<int64_t> context_length;        // --context-length (--ctx, else the model's)
  std::optional<int64_t> chunked_prefill_size;  // --chunked-prefill-size (2048..16384 by GPU)
  std::optional<int64_t> max_running_requests;  // --max-running-requests (from the pool)
  std::optional<int64_t> cuda_graph_max_bs;     // --cuda-graph-max-bs (8..512 by GPU and tp)
  bool disable_cuda_graph = false;              // --disable-cuda-graph
  std::optional<int64_t> page_size;             // --page-size (1)
};

// llama.cpp's --split-mode (llama.h llama_split_mode): none = one GPU
// (--main-gpu), layer = whole layers per GPU by --tensor-split, row = each
// matrix's rows over the GPUs (not modelled: refused).
enum class LlamaSplitMode { kNone, kLayer, kRow };

// llama.cpp context parameters (common/arg.cpp); nullopt = llama.cpp's default.
struct LlamaCppKnobs {
  std::optional<int64_t> ubatch;        // -ub (512)
  std::optional<int64_t> batch_size;    // -b (2048)
  std::optional<bool> flash_attn;       // -fa on|off (auto)
  std::optional<DType> cache_type_k;    // -ctk (f16)
  std::optional<DType> cache_type_v;    // -ctv (f16)
  std::optional<int64_t> gpu_layers;    // -ngl (all)
  std::optional<int64_t> parallel;      // -np (1)
  std::optional<double> host_mem_bw;    // --host-mem-bw: host memory bandwidth, GB/s (decode
                                        // speed of layers left on the CPU; unknown if unset)
  std::optional<int64_t> build;         // --llamacpp-build: release tag bNNNN to model
                                        // (llamacpp_build::kDefault, gguf_mix.h)
  // Placement (common/arg.cpp): tensor buffer-type overrides and the split
  // over several GPUs. Checked against the model and GPUs by the profile.
  std::optional<int64_t> n_cpu_moe;     // --n-cpu-moe N: expert tensors of blocks 0..N-1 on the CPU
  bool cpu_moe = false;                 // --cpu-moe: every expert tensor on the CPU
  std::vector<std::string> override_tensor;  // -ot REGEX=BUFTYPE[,...], in the order given
  std::vector<double> tensor_split;     // -ts shares per GPU (empty: by each GPU's memory)
  std::optional<LlamaSplitMode> split_mode;  // -sm (layer)
  std::optional<int64_t> main_gpu;      // -mg: the GPU of -sm none (0; -1 = none)
};

// Inference settings as the user gave them. nullopt = the default.
struct InferenceSettings {
  Runtime runtime = Runtime::kHf;
  std::optional<DType> dtype;            // Default: the model's torch_dtype (fp32 -> bf16)
  std::optional<WeightFormat> quant;     // Default: the checkpoint's own format, else none
  int64_t batch = 1;                     // concurrent sequences
  std::optional<int64_t> ctx;            // tokens held in KV per sequence
  bool ctx_from_model = false;           // --ctx max (llama.cpp -c 0): the model's trained context
  std::optional<int64_t> prompt;         // prefill tokens
  std::optional<int64_t> new_tokens;     // generated tokens
  std::optional<DType> kv_dtype;         // Default: the compute dtype
  std::optional<AttnImpl> attn;         // Default: sdpa (eager before transformers 4.36)
  int64_t tp = 1;
  int64_t pp = 1;
  // transformers version whose generate() to model, as major*100 + minor
  // (4.56 -> 456). Default: kHfVersionDefault.
  std::optional<int64_t> hf_version;
  VllmKnobs vllm;
  LlamaCppKnobs llamacpp;
  SglangKnobs sglang;
};

// The transformers release the hf runtime models by default (4.56: layered
// DynamicCache with sliding-window layers, last-position logits).
constexpr int64_t kHfVersionDefault = 456;

// transformers made sdpa the default attention kernel in 4.36
// (modeling_utils.py _autoset_attn_implementation, v4.36.0).
constexpr int64_t kHfVersionSdpaDefault = 436;

// Tokens per sequence when neither --ctx nor --prompt/--new is given.
constexpr int64_t kDefaultContext = 4096;

// Parses "4.56" / "4.33.2" into 456 / 433.
Result<int64_t> ParseHfVersion(std::string_view s);

// Fully resolved inference job.
struct InferenceWorkload {
  Runtime runtime = Runtime::kHf;
  DType dtype = DType::kBF16;
  WeightFormat quant;
  bool quant_from_checkpoint = false;
  // No --quant given: weights stay as the checkpoint stores them (exact
  // file tensors when the model came from files).
  bool weights_as_stored = true;
  int64_t batch = 1;
  int64_t prompt = 0;       // prefill tokens per sequence
  int64_t new_tokens = 0;   // generated tokens per sequence
  int64_t ctx = 0;          // prompt + new_tokens
  DType kv_dtype = DType::kBF16;
  AttnImpl attn = AttnImpl::kSdpa;
  int64_t tp = 1;
  int64_t pp = 1;
  int64_t hf_version = kHfVersionDefault;
  // Runtime knobs. The runtime's profile (src/core/runtimes/profile.h)
  // fills its own knobs' defaults in ResolveInference.
  VllmKnobs vllm;
  LlamaCppKnobs llamacpp;
  SglangKnobs sglang;
};

// Largest values accepted, far above any real job; they keep every product
// in the estimators inside int64.
constexpr int64_t kMaxBatch = 1 << 20;
constexpr int64_t kMaxTokens = int64_t{1} << 26;  // 67M tokens per sequence
constexpr int64_t kMaxParallel = 4096;

// Resolves defaults and checks the settings against the model and devices.
// Errors name the flag ("--ctx: ..."). Assumptions go to *notes.
Result<InferenceWorkload> ResolveInference(const Model& model, const InferenceSettings& s,
                                           const DeviceSet& devices,
                                           std::vector<std::string>* notes);

}  // namespace vramfit

#endif  // VRAMFIT_WORKLOAD_H_
