// The `sglang` runtime: SGLang's start-up memory plan, as
// `python -m sglang.launch_server` runs it, modelled on SGLang 0.5
// (server_args.py _handle_gpu_memory_settings as PR #10975 wrote it;
// model_runner_kv_cache_mixin.py at commit 226149ac).
//
// Every term, its units and its source are in docs/estimation.md, section
// "sglang runtime". Per GPU rank:
//   free_before = GPU total - CUDA context (- NCCL)   (init_torch_distributed)
//   f           = --mem-fraction-static, or round((gpu_mem - reserved) / gpu_mem, 3)
//   rest        = (free_before - weights) - free_before x (1 - f)
//   #tokens     = int(rest x 2^30) // cell_size, page-rounded, the minimum over ranks
//   K, V        = (#tokens + page_size) x heads x head_dim x layers x elem
// The static part (weights + KV) fills f x free_before; the req_to_token
// index, the chunked-prefill activations, CUDA graphs and kernels live in
// the (1 - f) share. SGLang starts whenever #tokens > 0.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "../formula.h"
#include "vramfit/check.h"
#include "profile.h"
#include "runtimes.h"
#include "sglang_steps.h"
#include "vllm_steps.h"

namespace vramfit::runtimes {
namespace sglang {
namespace {

// The release whose behaviour is modelled (echoed as "sglang").
constexpr const char* kSglangVersion = "0.5";

// ServerArgs.page_size default on CUDA backends (flashinfer, fa3, triton).
constexpr int64_t kDefaultPageSize = 1;
// ReqToTokenPool(max_context_len = context_len + 4): 4 extra slots per
// request (init_memory_pool, extra_max_context_len).
constexpr int64_t kReqExtraSlots = 4;
// The CUDA context each rank holds before init_torch_distributed measures
// free memory; the NCCL communicators of world > 1 (NVLink: NCCL + custom
// all-reduce buffers; PCIe: NCCL). The same torch / NCCL stack as vLLM's,
// whose logs measure them (vllm.cc kCudaContextMiB, kNcclInitMiB,
// kCollectivesPcieMiB).
constexpr int64_t kCudaContextMiB = 624;
constexpr int64_t kNcclNvlinkMiB = 952;
constexpr int64_t kNcclPcieMiB = 128;
// Kernel images and library handles loaded after the pool (first forward,
// CUDA graph capture), as vLLM measures them (vllm.cc kNonTorchMiB).
constexpr int64_t kNonTorchMiB = 133;
// Driver memory per captured CUDA graph piece, as vllm.cc (kGraphExecKiB).
constexpr int64_t kGraphExecKiB = 64;
// Largest --page-size / --cuda-graph-max-bs / --chunked-prefill-size taken.
constexpr int64_t kMaxPageSize = 4096;
constexpr int64_t kMaxGraphBs = 8192;

std::string Gb(double bytes) { return fmt::format("{:.2f}", bytes / static_cast<double>(kGiB)); }

Status Invalid(const std::string& m) { return InvalidArgument(m); }

bool AllResolved(const SglangKnobs& k) {
  return k.mem_fraction_static && k.context_length && k.chunked_prefill_size && k.cuda_graph_max_bs &&
         k.page_size;
}

// nvidia-smi's total in MiB (get_device_memory_capacity), of the first GPU.
std::optional<int64_t> GpuMemMib(const DeviceSet& devices) {
  if (devices.empty()) return std::nullopt;
  return devices.gpus[0].capacity.value() / kMiB;
}

// SGLang's kv_cache_dtype spelling.
const char* KvName(DType d, DType model) {
  if (d == DType::kF8E4M3) return "fp8_e4m3";
  if (d == DType::kF8E5M2) return "fp8_e5m2";
  if (d == model) return "auto";
  return d == DType::kBF16 ? "bf16" : "fp16";
}

bool HasVision(const Model& m) {
  for (const TensorGroup& g : m.inventory.extra) {
    if (g.role == Role::kVision) return true;
  }
  return false;
}

}  // namespace

GpuDefaults DefaultsFor(std::optional<int64_t> gpu_mem, int64_t tp) {
  if (!gpu_mem) return {4096, 160};
  const int64_t m = *gpu_mem;
  if (m < 20 * 1024) return {2048, 8};
  if (m < 35 * 1024) return {2048, tp < 4 ? 24 : 80};
  if (m < 60 * 1024) return {4096, tp < 4 ? 32 : 160};
  if (m < 160 * 1024) return {8192, tp < 4 ? 256 : 512};
  return {16384, 512};
}

double ReservedMib(int64_t gpu_mem, int64_t chunked, int64_t graph_bs, int64_t tp, int64_t pp) {
  double reserved = 512;                                                   // constant metadata
  reserved += static_cast<double>(std::max<int64_t>(chunked, 2048)) * 1.5;  // large prefill
  reserved += static_cast<double>(graph_bs) * 2;                           // CUDA graphs
  reserved += static_cast<double>(tp * pp) / 8 * 1024;                     // large parallel size
  if (gpu_mem > 60 * 1024) reserved = std::max(reserved, 10.0 * 1024);
  return reserved;
}

double DefaultMemFraction(std::optional<int64_t> gpu_mem, int64_t chunked, int64_t graph_bs, int64_t tp,
                          int64_t pp) {
  if (!gpu_mem) return 0.88;
  const double m = static_cast<double>(*gpu_mem);
  const double f = (m - ReservedMib(*gpu_mem, chunked, graph_bs, tp, pp)) / m;
  return std::round(f * 1000.0) / 1000.0;  // Python round(x, 3)
}

int64_t CellBytes(const ModelSpec& s, int64_t tp, DType kv_dtype, int64_t layers) {
  const int64_t elem = Info(kv_dtype).block_bytes;
  if (s.attn_kind == AttnKind::kMla) {
    return CheckedMul(CheckedMul(s.kv_lora_rank + s.qk_rope_head_dim, layers), elem);
  }
  const int64_t heads = std::max<int64_t>(1, s.num_key_value_heads / tp);
  return CheckedMul(CheckedMul(CheckedMul(heads, s.head_dim + s.v_head_dim), layers), elem);
}

int64_t MaxTotalNumTokens(double free_before, double weights, double fraction, int64_t cell,
                          int64_t page_size) {
  const double gib = static_cast<double>(kGiB);
  // get_available_gpu_memory returns GiB floats; rest in GiB.
  const double rest = (free_before - weights) / gib - free_before / gib * (1.0 - fraction);
  const double rest_bytes = rest * gib;
  if (rest_bytes <= 0) return static_cast<int64_t>(rest_bytes) / cell;  // <= 0: no pool
  const int64_t tokens = static_cast<int64_t>(rest_bytes) / cell;
  return tokens / page_size * page_size;
}

int64_t DefaultMaxNumReqs(int64_t tokens, int64_t context_len) {
  const int64_t by_pool = static_cast<int64_t>(static_cast<double>(tokens) /
                                               static_cast<double>(context_len) * 512.0);
  return std::min<int64_t>(std::max<int64_t>(by_pool, 2048), 4096);
}

std::vector<int64_t> CaptureSizes(int64_t max_bs) {
  std::vector<int64_t> sizes = {1, 2, 4, 8, 12};
  for (int64_t x = 16; x < 257; x += 8) sizes.push_back(x);
  for (int64_t x = 272; x < 512; x += 16) sizes.push_back(x);
  for (int64_t x = 512; x <= max_bs; x += 32) sizes.push_back(x);
  std::erase_if(sizes, [&](int64_t x) { return x > max_bs; });
  return sizes;
}

namespace {

// --- Resolve.

// The settings SGLang refuses, or that vramfit does not model for it.
Status CheckModel(const Model& model, const InferenceWorkload& w, const DeviceSet& devices) {
  const ModelSpec& s = model.spec;
  if (s.topology != Topology::kDecoder) {
    return Unsupported(fmt::format(
        "--runtime sglang: {} is an {} model; SGLang's embedding / encoder-decoder runners are not "
        "modelled; use --runtime hf",
        s.id, TopologyName(s.topology)));
  }
  for (const LayerSpec& l : s.layers) {
    if (l.attention != LayerAttention::kFull) {
      // vLLM's hybrid KV-cache manager is modelled for sliding-window layers
      // and for the recurrent mixers vllm::CheckStateLayout accepts.
      const bool vllm_ok = vllm::CheckStateLayout(s, w.tp).ok();
      return Unsupported(fmt::format(
          "--runtime sglang: {} has sliding-window, linear-attention or state-space layers; SGLang's "
          "hybrid pools (SWAKVPool, HybridLinearKVPool, Mamba cache) are not modelled{}",
          s.id, vllm_ok ? "; use --runtime vllm" : ""));
    }
  }
  for (const GpuSpec& g : devices.gpus) {
    if (g.vendor == "apple") {
      return Unsupported(fmt::format("--runtime sglang: {} is an Apple GPU; vramfit models SGLang on CUDA and "
                                     "ROCm GPUs",
                                     g.name));
    }
  }
  if (w.quant.method == QuantMethod::kGguf || IsTorchao(w.quant.method)) {
    return Unsupported(fmt::format("--quant {}: modelled for --runtime {}, not sglang", w.quant.Name(),
                                   w.quant.method == QuantMethod::kGguf ? "llamacpp" : "hf"));
  }
  const DType kvd = w.kv_dtype;
  if (kvd != w.dtype && kvd != DType::kF16 && kvd != DType::kBF16 && kvd != DType::kF8E4M3 &&
      kvd != DType::kF8E5M2) {
    return Invalid(fmt::format(
        "--kv-cache-dtype: SGLang's kv_cache_dtype is auto, bf16, fp8_e4m3 or fp8_e5m2, got '{}'", Name(kvd)));
  }
  const int64_t kvh = s.num_key_value_heads;
  if (s.attn_kind != AttnKind::kMla && w.tp > 1 && kvh > 0 && (w.tp >= kvh ? w.tp % kvh : kvh % w.tp) != 0) {
    return Invalid(fmt::format("--tp: {} KV heads do not split over {} GPUs (one must divide the other)", kvh,
                               w.tp));
  }
  return {};
}

Status ResolveKnobs(const Model& model, const DeviceSet& devices, int64_t tp, int64_t pp, SglangKnobs* k,
                    std::vector<std::string>* notes) {
  const ModelSpec& s = model.spec;
  const int64_t derived = vllm::DerivedMaxLen(s);
  if (k->context_length) {
    VRAMFIT_TRY(CheckRange("--context-length", *k->context_length, 1, kMaxTokens));
    if (*k->context_length > derived) {
      return Invalid(fmt::format(
          "--context-length: {} is greater than the derived context_length {} of the model's config; "
          "SGLang refuses it unless SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN=1",
          *k->context_length, derived));
    }
  }
  k->context_length = k->context_length.value_or(derived);
  if (k->chunked_prefill_size) {
    VRAMFIT_TRY(CheckRange("--chunked-prefill-size", *k->chunked_prefill_size, 1, kMaxTokens));
  }
  if (k->cuda_graph_max_bs) VRAMFIT_TRY(CheckRange("--cuda-graph-max-bs", *k->cuda_graph_max_bs, 1, kMaxGraphBs));
  if (k->page_size) VRAMFIT_TRY(CheckRange("--page-size", *k->page_size, 1, kMaxPageSize));
  if (k->max_running_requests) {
    VRAMFIT_TRY(CheckRange("--max-running-requests", *k->max_running_requests, 1, kMaxBatch));
  }
  const std::optional<int64_t> gpu_mem = GpuMemMib(devices);
  const GpuDefaults d = DefaultsFor(gpu_mem, tp);
  k->chunked_prefill_size = k->chunked_prefill_size.value_or(d.chunked_prefill_size);
  k->cuda_graph_max_bs = k->cuda_graph_max_bs.value_or(d.cuda_graph_max_bs);
  k->page_size = k->page_size.value_or(kDefaultPageSize);
  if (!k->mem_fraction_static) {
    if (HasVision(model)) {
      return Unsupported(
          "--mem-fraction-static: SGLang lowers its default for multimodal models "
          "(adjust_mem_fraction_for_vlm), which vramfit does not model; give --mem-fraction-static");
    }
    k->mem_fraction_static =
        DefaultMemFraction(gpu_mem, *k->chunked_prefill_size, *k->cuda_graph_max_bs, tp, pp);
    if (notes && gpu_mem) {
      notes->push_back(fmt::format(
          "mem_fraction_static {} is SGLang's default for a {} MiB GPU: (gpu_mem - reserved) / gpu_mem with "
          "reserved = {:.0f} MiB (512 + max(chunked_prefill_size, 2048) x 1.5 + cuda_graph_max_bs x 2 + tp x pp / "
          "8 x 1024, at least 10240 above 60 GiB)",
          *k->mem_fraction_static, *gpu_mem,
          ReservedMib(*gpu_mem, *k->chunked_prefill_size, *k->cuda_graph_max_bs, tp, pp)));
    } else if (notes) {
      notes->push_back("no --gpu: mem_fraction_static 0.88, SGLang's default when it cannot read the GPU memory");
    }
  }
  return {};
}

// --- Estimate.

struct Rank {
  DeviceEstimate d;
  Component weights, activations, non_torch;
  Bytes context;
  LayerRange range;
  int64_t cell = 0;            // bytes per token on this rank
  double free_before = 0;      // bytes
  int64_t tokens = 0;          // profile_max_num_token on this rank (page-rounded)
  Bytes graphs;
};

Bytes GpuTotal(const GpuSpec& g) { return vllm::GpuTotal(g); }

// Every rank before the pool: weights, activations, CUDA graphs, and the
// pool it would size on its own (profile_max_num_token).
std::vector<Rank> BuildRanks(const Model& model, const InferenceWorkload& w, const DeviceSet& devices,
                             const std::vector<int64_t>& sizes, Bytes context) {
  const ModelSpec& s = model.spec;
  const SglangKnobs& k = w.sglang;
  const double f = *k.mem_fraction_static;
  const int64_t page = *k.page_size;
  const int64_t tp = w.tp, stages = w.pp;
  const int64_t dt = Info(w.dtype).block_bytes;
  std::vector<Rank> ranks;
  for (int64_t stage = 0; stage < stages; ++stage) {
    for (int64_t r = 0; r < tp; ++r) {
      Rank rk;
      rk.range = StageLayers(s.num_hidden_layers, stages, stage);
      const bool first = stage == 0, last = stage == stages - 1;
      const int64_t idx = stage * tp + r;
      rk.d.name = "gpu" + std::to_string(idx);
      if (static_cast<size_t>(idx) < devices.gpus.size()) rk.d.gpu = devices.gpus[static_cast<size_t>(idx)];
      rk.weights = vllm::WorkerWeights(model, w, rk.range, first, last);
      // The chunked prefill's forward temporaries (vLLM's profile-run
      // formula at chunked_prefill_size tokens).
      std::vector<Component> fwd = vllm::ForwardPeak(s, rk.range, *k.chunked_prefill_size, tp, dt);
      rk.activations = Parent("activations", std::move(fwd),
                              Formula("chunked prefill of {} tokens", *k.chunked_prefill_size));
      rk.d.peak_phase = "prefill";
      rk.non_torch = Parent("non_torch", {Leaf("kernels + libraries", MiB(kNonTorchMiB),
                                               "as vLLM logs at TP1, loaded after the pool")});
      rk.context = context;
      rk.cell = CellBytes(s, tp, w.kv_dtype, rk.range.size());
      if (!sizes.empty() && rk.range.size() > 0) {
        // One layer's temporaries at the largest batch plus a graph piece
        // per layer and size (as vllm::CudaGraphBytes).
        const int64_t cap = sizes.back();
        const int64_t inter = std::max(CeilDiv(s.intermediate_size, tp),
                                       CeilDiv(s.moe_intermediate_size, tp) *
                                           std::max<int64_t>(1, s.num_experts_per_tok));
        rk.graphs = Bytes(CheckedMul(cap, 2 * s.hidden_size + 3 * inter)) * dt +
                    Bytes(CheckedMul(static_cast<int64_t>(sizes.size()) * (rk.range.size() + 1),
                                     kGraphExecKiB * kKiB));
      }
      if (rk.d.gpu) {
        rk.free_before = static_cast<double>((GpuTotal(*rk.d.gpu) - context).value());
        rk.tokens = MaxTotalNumTokens(rk.free_before, static_cast<double>(rk.weights.bytes.value()), f, rk.cell,
                                      page);
      }
      ranks.push_back(std::move(rk));
    }
  }
  return ranks;
}


// The launch flags that realise this estimate: the sizing settings
// always, the rest where they differ from SGLang's defaults.
void SglangLaunchFlags(const ModelSpec& s, const InferenceWorkload& w, Estimate& e) {
  const SglangKnobs& k = w.sglang;
  const double f = *k.mem_fraction_static;
  const int64_t ctx_len = *k.context_length, page = *k.page_size;
  const int64_t tp = w.tp, stages = w.pp;
  std::vector<std::string>& fl = e.launch_flags;
  fl.push_back(fmt::format("--mem-fraction-static {}", f));
  fl.push_back(fmt::format("--context-length {}", ctx_len));
  fl.push_back(fmt::format("--chunked-prefill-size {}", *k.chunked_prefill_size));
  fl.push_back(fmt::format("--cuda-graph-max-bs {}", *k.cuda_graph_max_bs));
  if (k.max_running_requests) fl.push_back(fmt::format("--max-running-requests {}", *k.max_running_requests));
  if (tp > 1) fl.push_back(fmt::format("--tp-size {}", tp));
  if (stages > 1) fl.push_back(fmt::format("--pp-size {}", stages));
  if (w.dtype != s.torch_dtype) fl.push_back(fmt::format("--dtype {}", w.dtype == DType::kF16 ? "float16" : w.dtype == DType::kBF16 ? "bfloat16" : "float32"));
  if (w.kv_dtype != w.dtype) fl.push_back(fmt::format("--kv-cache-dtype {}", KvName(w.kv_dtype, w.dtype)));
  if (page != kDefaultPageSize) fl.push_back(fmt::format("--page-size {}", page));
  if (k.disable_cuda_graph) fl.push_back("--disable-cuda-graph");
  if (!w.quant_from_checkpoint && w.quant.method == QuantMethod::kFp8) fl.push_back("--quantization fp8");
}

// What the notes need from the pool.
struct PoolNotes {
  int64_t pool = 0, shown = 0, max_running = 0, cell = 0;
  double k_bytes = 0, v_bytes = 0;  // the first rank's K and V buffers
  bool have_gpu = false;
};

// The notes: a failure, what is modelled, SGLang's log lines, what is not.
void SglangNotes(const ModelSpec& s, const InferenceWorkload& w, const PoolNotes& n, Estimate& e) {
  const double f = *w.sglang.mem_fraction_static;
  const int64_t ctx_len = *w.sglang.context_length;
  const int64_t pool = n.pool, shown = n.shown, max_running = n.max_running;
  const bool have_gpu = n.have_gpu, mla = s.attn_kind == AttnKind::kMla;
  const double k_bytes_logged = n.k_bytes, v_bytes_logged = n.v_bytes;
  if (e.failure) {
    e.notes.push_back(fmt::format("SGLang would not start: {}{}", e.failure->message,
                                  shown != pool ? fmt::format(" (kv_cache above is what one {}-token request needs, "
                                                              "not what is left)",
                                                              ctx_len)
                                                : ""));
  }
  e.notes.push_back(fmt::format(
      "modelled: SGLang {} as `python -m sglang.launch_server` starts it: KV tokens = (free memory after the "
      "weights - free before x (1 - {})) / {} B per token; the req_to_token index, chunked-prefill "
      "activations and CUDA graphs use the (1 - mem_fraction_static) share",
      kSglangVersion, f, n.cell));
  if (have_gpu && !e.failure) {
    e.notes.push_back(
        mla ? fmt::format("SGLang logs: KV Cache is allocated. #tokens: {}, KV size: {} GB", pool,
                          Gb(k_bytes_logged))
            : fmt::format("SGLang logs: KV Cache is allocated. #tokens: {}, K size: {} GB, V size: {} GB", pool,
                          Gb(k_bytes_logged), Gb(v_bytes_logged)));
    e.notes.push_back(fmt::format("max_total_num_tokens={}, max_running_requests={}, context_len={}; the pool holds "
                                  "{} full-length requests; requests are capped at {} input tokens",
                                  pool, max_running, ctx_len, pool / ctx_len,
                                  std::min(ctx_len - 1, pool - 1)));
  }
  if (!have_gpu) {
    e.notes.push_back(fmt::format(
        "no --gpu: the KV pool shown holds one {}-token request; on a GPU SGLang sizes it from the free memory",
        ctx_len));
  }
  if (mla) e.notes.push_back("MLA: one latent of kv_lora_rank + qk_rope_head_dim per token and layer, on every rank");
  if (w.batch != 1) {
    e.notes.push_back("--batch does not apply to SGLang; the pool's concurrency is reported instead (set "
                      "--max-running-requests to cap running requests)");
  }
  e.notes.push_back("not modelled: speculative decoding (its draft model and reserve), DP attention, "
                    "--max-total-tokens; the radix cache shares this pool and adds no memory");
}

}  // namespace
}  // namespace sglang

Status EstimateSglang(const Model& model, const InferenceWorkload& w, const DeviceSet& devices, Estimate& e) {
  using namespace sglang;
  const ModelSpec& s = model.spec;
  const SglangKnobs& k = w.sglang;
  if (!AllResolved(k)) {
    return Error{ErrorKind::kInternal, "sglang: the workload's SGLang settings were not resolved"};
  }
  const double f = *k.mem_fraction_static;
  const int64_t ctx_len = *k.context_length;
  const int64_t page = *k.page_size;
  const int64_t tp = w.tp, stages = w.pp, world = tp * stages;
  const bool mla = s.attn_kind == AttnKind::kMla;
  const bool have_gpu = !devices.empty();
  const bool nvlink = have_gpu && devices.gpus[0].form == "sxm";
  const int64_t elem = Info(w.kv_dtype).block_bytes;
  const Bytes context = MiB(kCudaContextMiB) +
                        (world > 1 ? MiB(nvlink ? kNcclNvlinkMiB : kNcclPcieMiB) : Bytes(0));
  e.kv_bytes_per_token = KvBytesPerToken(s, w.kv_dtype, KvLayout::kLatent);
  e.weight_bytes = Bytes(0);
  for (size_t gi = 0; gi < model.inventory.groups.size(); ++gi) {
    e.weight_bytes += GroupBytes(model.inventory.groups[gi], gi, w.quant, w.dtype);
  }
  const std::vector<int64_t> sizes = k.disable_cuda_graph ? std::vector<int64_t>{}
                                                           : CaptureSizes(*k.cuda_graph_max_bs);

  // Every rank before the pool.
  std::vector<Rank> ranks = BuildRanks(model, w, devices, sizes, context);

  // The pool: the minimum over ranks (pp ranks all-reduce MIN; tp ranks
  // measure the minimum free memory over the group).
  int64_t tokens = INT64_MAX;
  for (const Rank& rk : ranks) tokens = std::min(tokens, rk.tokens);
  if (!have_gpu) tokens = RoundUp(ctx_len, page);  // the smallest pool: one context_length request
  // A start-up failure: weights larger than what is free (CUDA OOM while
  // loading), or nothing left for the pool (init_memory_pool).
  for (const Rank& rk : ranks) {
    if (!have_gpu || e.failure) break;
    if (static_cast<double>(rk.weights.bytes.value()) > rk.free_before) {
      e.failure = StartupFailure{
          "oom_loading_weights",
          fmt::format("sglang: {}: torch.OutOfMemoryError: CUDA out of memory while loading the weights "
                      "({} GiB on this rank, {} GiB free after the CUDA context) [split the model with --tp or "
                      "use a smaller --quant]",
                      rk.d.name, Gb(static_cast<double>(rk.weights.bytes.value())), Gb(rk.free_before)),
          rk.d.name};
    } else if (rk.tokens <= 0) {
      e.failure = StartupFailure{
          "not_enough_memory",
          fmt::format("sglang: {}: RuntimeError: Not enough memory. Please try to increase --mem-fraction-static. "
                      "Current value: self.server_args.mem_fraction_static={} [weights {} GiB leave nothing of "
                      "{} x {} GiB free for the KV cache; raise --mem-fraction-static or split the model with "
                      "--tp]",
                      rk.d.name, f, Gb(static_cast<double>(rk.weights.bytes.value())), f,
                      Gb(rk.free_before)),
          rk.d.name};
    }
  }
  const int64_t pool = std::max<int64_t>(0, tokens);
  // With a failure, the breakdown shows the KV one context_length request needs.
  const int64_t shown = e.failure ? std::max(pool, RoundUp(ctx_len, page)) : pool;
  const int64_t max_num_reqs = k.max_running_requests.value_or(DefaultMaxNumReqs(pool, ctx_len));

  double k_bytes_logged = 0, v_bytes_logged = 0;
  for (Rank& rk : ranks) {
    const int64_t layers = rk.range.size();
    const int64_t slots = CheckedAdd(shown, page);  // buffers of size + page_size rows
    std::vector<Component> kv;
    if (mla) {
      const int64_t width = s.kv_lora_rank + s.qk_rope_head_dim;
      kv.push_back(Leaf("latent", Bytes(CheckedMul(CheckedMul(slots, width), layers)) * elem,
                        Formula("({} + {}) tok x {} x {} layers x {} B", shown, page, width, layers, elem)));
    } else {
      const int64_t heads = std::max<int64_t>(1, s.num_key_value_heads / tp);
      kv.push_back(Leaf("K", Bytes(CheckedMul(CheckedMul(slots, heads * s.head_dim), layers)) * elem,
                        Formula("({} + {}) tok x {} heads x {} x {} layers x {} B", shown, page, heads, s.head_dim,
                                layers, elem)));
      kv.push_back(Leaf("V", Bytes(CheckedMul(CheckedMul(slots, heads * s.v_head_dim), layers)) * elem,
                        Formula("({} + {}) tok x {} heads x {} x {} layers x {} B", shown, page, heads,
                                s.v_head_dim, layers, elem)));
    }
    Component kv_cache = Parent("kv_cache", std::move(kv));
    if (&rk == &ranks.front()) {
      k_bytes_logged = static_cast<double>(kv_cache.children[0].bytes.value());
      v_bytes_logged = mla ? 0 : static_cast<double>(kv_cache.children[1].bytes.value());
    }
    // ReqToTokenPool: an int32 slot index per (request, position).
    const Component req = Leaf(
        "req_to_token_pool", Bytes(CheckedMul(max_num_reqs, ctx_len + kReqExtraSlots)) * 4,
        Formula("{} requests x ({} + {}) positions x 4 B", max_num_reqs, ctx_len, kReqExtraSlots));
    DeviceEstimate d = std::move(rk.d);
    const Bytes act = rk.activations.bytes;
    d.components.push_back(std::move(rk.weights));
    d.components.push_back(std::move(kv_cache));
    d.components.push_back(req);
    d.components.push_back(std::move(rk.activations));
    d.components.push_back(Leaf("cuda_graphs", rk.graphs,
                                k.disable_cuda_graph
                                    ? "--disable-cuda-graph: none"
                                    : Formula("{} batch sizes up to {}", sizes.size(),
                                              sizes.empty() ? 0 : sizes.back())));
    d.components.push_back(std::move(rk.non_torch));
    d.components.push_back(Parent(
        "cuda_context",
        world > 1 ? std::vector<Component>{Leaf("CUDA context", MiB(kCudaContextMiB), "before SGLang measures free memory"),
                                           Leaf("NCCL communicators", MiB(nvlink ? kNcclNvlinkMiB : kNcclPcieMiB),
                                                nvlink ? "NVLink" : "PCIe")}
                  : std::vector<Component>{Leaf("CUDA context", MiB(kCudaContextMiB),
                                                "before SGLang measures free memory")}));
    const Bytes static_part = d.components[0].bytes + d.components[1].bytes;
    d.allocated_peak = static_part + req.bytes + act;
    d.reserved_peak = *d.allocated_peak + rk.graphs;
    d.total = *d.reserved_peak + MiB(kNonTorchMiB) + rk.context;
    e.devices.push_back(std::move(d));
  }

  e.kv_capacity_tokens = pool;
  e.kv_max_concurrency = pool / ctx_len;
  const int64_t max_running = std::min(max_num_reqs, std::max<int64_t>(1, pool));
  e.workload = {
      {"runtime", std::string("sglang")},
      {"sglang", std::string(kSglangVersion)},
      {"dtype", std::string(Name(w.dtype))},
      {"quant", w.quant.Name()},
      {"kv_dtype", std::string(Name(w.kv_dtype))},
      {"mem_fraction_static", f},
      {"context_length", ctx_len},
      {"chunked_prefill_size", *k.chunked_prefill_size},
      {"max_running_requests", max_num_reqs},
      {"cuda_graph_max_bs", *k.cuda_graph_max_bs},
      {"disable_cuda_graph", k.disable_cuda_graph},
      {"page_size", page},
      {"tp", tp},
      {"pp", stages},
  };

  SglangLaunchFlags(s, w, e);

  PoolNotes notes_in{pool, shown, max_running, ranks.empty() ? 0 : ranks.front().cell, k_bytes_logged,
                     v_bytes_logged, have_gpu};
  SglangNotes(s, w, notes_in, e);
  return {};
}

// --- The profile.
namespace {

class SglangRuntime final : public RuntimeProfile {
 public:
  Runtime id() const override { return Runtime::kSglang; }

  std::span<const std::string_view> Settings() const override {
    static constexpr std::string_view kSettings[] = {"mem-fraction-static", "context-length",
                                                     "chunked-prefill-size", "max-running-requests",
                                                     "cuda-graph-max-bs",   "disable-cuda-graph",
                                                     "page-size"};
    return kSettings;
  }

  Status Resolve(const Model& model, const InferenceSettings& s, const DeviceSet& devices, InferenceWorkload* w,
                 std::vector<std::string>* notes) const override {
    if (!s.dtype && w->dtype == DType::kF32) {
      return InvalidArgument(
          "--dtype: the checkpoint is fp32; give --dtype bf16 or fp16 (SGLang's dtype auto rule for fp32 "
          "checkpoints is not modelled)");
    }
    VRAMFIT_TRY(sglang::CheckModel(model, *w, devices));
    // SGLang holds --ctx (or --prompt + --new) tokens per request when
    // sized by --context-length.
    if (!w->sglang.context_length && (s.ctx || s.ctx_from_model || s.prompt || s.new_tokens)) {
      w->sglang.context_length = w->ctx;
    }
    const int64_t n = static_cast<int64_t>(devices.size());
    if (s.tp == 1 && s.pp == 1 && n > 1) {
      return InvalidArgument(fmt::format(
          "--gpu: {} GPUs given; SGLang uses one unless --tp/--pp say how to split the model (e.g. --tp {})", n,
          n));
    }
    return sglang::ResolveKnobs(model, devices, w->tp, w->pp, &w->sglang, notes);
  }

  Status Estimate(const Model& model, const InferenceWorkload& w, const DeviceSet& devices,
                  vramfit::Estimate& e) const override {
    return EstimateSglang(model, w, devices, e);
  }

  void SetContext(InferenceSettings& s, int64_t tokens) const override {
    RuntimeProfile::SetContext(s, tokens);
    s.sglang.context_length = tokens;
  }
  std::string ContextFlag() const override { return "context-length"; }
  std::vector<std::string> LaunchCommand(const Model& model) const override {
    return {"python", "-m", "sglang.launch_server", "--model-path", model.spec.id};
  }
  int64_t ContextOf(const InferenceWorkload& w) const override { return w.sglang.context_length.value_or(w.ctx); }
  bool SizesKvPool() const override { return true; }
  std::vector<std::string> QuantLadder() const override {
    return {"none", "fp8", "gptq-int8", "awq-int4", "gptq-int4"};
  }
  std::vector<std::string> FixQuants() const override { return {"fp8", "awq-int4"}; }
  std::vector<std::string> KvLadder() const override { return {"fp8"}; }
  int64_t PreferredTp(const Model& model, int64_t n) const override {
    const int64_t heads = model.spec.num_attention_heads;
    for (int64_t tp = std::min<int64_t>(n, 8); tp >= 1; --tp) {
      if (n % tp == 0 && heads % tp == 0) return tp;
    }
    return 1;
  }
};

}  // namespace

const RuntimeProfile& SglangProfile() {
  static const SglangRuntime kProfile;
  return kProfile;
}

}  // namespace vramfit::runtimes
