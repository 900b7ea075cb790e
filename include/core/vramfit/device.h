// GPUs and device sets.
#ifndef VRAMFIT_DEVICE_H_
#define VRAMFIT_DEVICE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "vramfit/units.h"

namespace vramfit {

// A term measured on this machine (`vramfit check --save`) that replaces
// the estimate's assumption for one GPU kind and runtime family. Only terms
// outside the physics are calibrated: what the process holds beyond its own
// buffers (the CUDA context, driver and library memory).
struct CalibratedTerm {
  std::string runtime;    // "pytorch" (hf inference and every training stack) | "llamacpp"
  std::string component;  // the estimate's top-level component: "cuda_context"
  Bytes bytes;
  std::string source;     // "server.log line 412 (llama.cpp memory breakdown), saved 2026-12-07"
  bool given = false;     // from --cuda-context, not this machine's calibration file
};

// One GPU model from the catalog (data/gpus.json).
struct GpuSpec {
  std::string name;            // canonical: "H100-80GB"
  std::string vendor;          // nvidia | amd | apple | intel
  // The memory a fit is judged against: the total as nvidia-smi (rocm-smi,
  // xpu-smi) reports it; on Apple silicon Metal's working-set limit
  // (recommendedMaxWorkingSetSize), or --wired-limit when given.
  Bytes capacity;
  Bytes cuda_total;            // what cudaMemGetInfo reports; 0 if unknown
  Bytes ram;                   // unified-memory machines: the RAM capacity shares; 0 otherwise
  double bandwidth_gb_s = 0;   // peak memory bandwidth, 1e9 B/s; 0 if unknown
  double bf16_tflops = 0;      // dense bf16 tensor TFLOPS; 0 if unknown or none (T4, V100)
  double fp16_tflops = 0;      // dense fp16 tensor TFLOPS; 0 if unknown
  double fp8_tflops = 0;       // dense fp8, 0 if none
  std::string compute_capability;
  std::string arch;
  std::string form;            // sxm | pcie | consumer | laptop | oam | soc (interconnect class)
  bool unified_memory = false;
  bool wired_limit = false;    // capacity is a --wired-limit, not the default working set
  std::vector<std::string> aliases;
  std::string memory_note;
  std::string memory_source;   // where capacity comes from (data/gpus.json "sources")
  std::string specs_source;    // where bandwidth and TFLOPS come from
  // Read off this machine (--gpu local): the tool that reported it ("NVML",
  // "nvidia-smi"), the name it printed, and the memory other processes
  // already hold (counted on the device as other_processes).
  std::string detected;
  std::string detected_name;
  Bytes in_use;
  bool in_use_known = true;
  // This machine's calibration for this GPU kind (CLI infer/train; empty
  // with --no-calibration or no calibration file).
  std::vector<CalibratedTerm> calibration;
};

// Whether the GPU is Apple silicon: Metal, no CUDA context, capacity is the
// working-set limit (docs/estimation.md "Device capacity").
bool IsApple(const GpuSpec& g);

// The dense half-precision tensor rate the compute runs at: bf16, else fp16
// (GPUs without bf16 tensor cores run fp16); 0 if neither is known.
double HalfTensorTflops(const GpuSpec& g);

// The devices a job runs on: one entry per physical device.
struct DeviceSet {
  std::vector<GpuSpec> gpus;  // empty: no --gpu given (no verdict)
  bool empty() const { return gpus.empty(); }
  size_t size() const { return gpus.size(); }
};

// Compute capability as major x 10 + minor ("7.5" -> 75); 0 for a GPU that
// is not NVIDIA or whose capability the catalog does not list.
int ComputeCapability(const GpuSpec& g);

// What needs a minimum compute capability on NVIDIA GPUs (docs/estimation.md
// "Capabilities"): bf16 (8.0: torch.cuda.is_bf16_supported, the training
// stacks' checks), FlashAttention-2 (8.0: flash-attn's own check).
inline constexpr int kMinCcBf16 = 80;
inline constexpr int kMinCcFlashAttn2 = 80;

// The first GPU of the set below min_cc, or nullptr (GPUs of unknown
// capability and non-NVIDIA GPUs are not judged).
const GpuSpec* FirstBelow(const DeviceSet& devices, int min_cc);

}  // namespace vramfit

#endif  // VRAMFIT_DEVICE_H_
