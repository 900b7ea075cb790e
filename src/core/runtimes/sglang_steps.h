// The steps of the `sglang` runtime (sglang.cc), declared so that tests can
// check each against a hand computation (tests/unit/sglang_test.cc).
// Internal to the core. Units: bytes, MiB where SGLang works in MB (its
// "MB" is MiB: get_device_memory_capacity reads nvidia-smi's MiB), tokens.
// Sources: SGLang 0.5 (docs/estimation.md section "sglang runtime"):
//   python/sglang/srt/server_args.py  _handle_gpu_memory_settings (PR #10975)
//   python/sglang/srt/model_executor/model_runner_kv_cache_mixin.py at
//   226149ac (get_cell_size_per_token, profile_max_num_token, init_memory_pool)
//   python/sglang/srt/mem_cache/memory_pool.py (MHATokenToKVPool, MLATokenToKVPool,
//   ReqToTokenPool)
#ifndef VRAMFIT_SRC_CORE_RUNTIMES_SGLANG_STEPS_H_
#define VRAMFIT_SRC_CORE_RUNTIMES_SGLANG_STEPS_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "runtimes.h"
#include "vramfit/estimate.h"

namespace vramfit::runtimes::sglang {

// The GPU-size defaults of _handle_gpu_memory_settings, from gpu_mem (MiB,
// nvidia-smi's total; nullopt without a GPU): chunked_prefill_size and
// cuda_graph_max_bs by bucket (< 20 GiB: 2048 / 8; < 35: 2048 / 24, 80 at
// tp >= 4; < 60: 4096 / 32, 160; < 90 and < 160: 8192 / 256, 512; else
// 16384 / 512; no GPU: 4096 / 160).
struct GpuDefaults {
  int64_t chunked_prefill_size = 0;
  int64_t cuda_graph_max_bs = 0;
};
GpuDefaults DefaultsFor(std::optional<int64_t> gpu_mem_mib, int64_t tp);

// reserved_mem in MiB: 512 + max(chunked_prefill_size, 2048) x 1.5 +
// cuda_graph_max_bs x 2 + tp x pp / 8 x 1024, at least 10240 on GPUs
// above 60 GiB (no speculative decoding, no DP attention).
double ReservedMib(int64_t gpu_mem_mib, int64_t chunked_prefill_size, int64_t cuda_graph_max_bs,
                   int64_t tp, int64_t pp);

// mem_fraction_static when unset: round((gpu_mem - reserved) / gpu_mem, 3);
// 0.88 without a GPU.
double DefaultMemFraction(std::optional<int64_t> gpu_mem_mib, int64_t chunked_prefill_size,
                          int64_t cuda_graph_max_bs, int64_t tp, int64_t pp);

// get_cell_size_per_token: bytes of one token over `layers` layers of one
// rank: kv_heads(tp) x (head_dim + v_head_dim) x layers x elem, or for MLA
// (kv_lora_rank + qk_rope_head_dim) x layers x elem.
int64_t CellBytes(const ModelSpec& spec, int64_t tp, DType kv_dtype, int64_t layers);

// profile_max_num_token: int(rest x 2^30) // cell, rest = free after the
// weights - free before x (1 - f) (GiB floats), then page rounding
// (init_memory_pool). free_before: bytes free after the CUDA context;
// weights: bytes the load took. May be <= 0 (SGLang's "Not enough memory").
int64_t MaxTotalNumTokens(double free_before, double weights, double fraction, int64_t cell,
                          int64_t page_size);

// init_memory_pool's max_num_reqs when --max-running-requests is unset:
// min(max(int(tokens / context_len x 512), 2048), 4096).
int64_t DefaultMaxNumReqs(int64_t max_total_num_tokens, int64_t context_len);

// CUDA graph batch sizes (_generate_cuda_graph_batch_sizes, no speculative
// decoding): [1, 2, 4, 8, 12] + range(16, 257, 8) + range(272, 512, 16) +
// range(512, max_bs + 1, 32), up to max_bs.
std::vector<int64_t> CaptureSizes(int64_t max_bs);

}  // namespace vramfit::runtimes::sglang

#endif  // VRAMFIT_SRC_CORE_RUNTIMES_SGLANG_STEPS_H_
