// GPUs and device sets.
#ifndef VRAMFIT_DEVICE_H_
#define VRAMFIT_DEVICE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "vramfit/units.h"

namespace vramfit {

// One GPU model from the catalog (data/gpus.json).
struct GpuSpec {
  std::string name;            // canonical: "H100-80GB"
  std::string vendor;          // nvidia | amd | apple
  Bytes capacity;              // total as nvidia-smi (rocm-smi, Metal) reports it
  Bytes cuda_total;            // what cudaMemGetInfo reports; 0 if unknown
  double bandwidth_gb_s = 0;   // peak memory bandwidth, 1e9 B/s
  double bf16_tflops = 0;      // dense bf16/fp16 tensor TFLOPS
  double fp8_tflops = 0;       // dense fp8, 0 if none
  std::string compute_capability;
  std::string arch;
  std::string form;            // sxm | pcie | consumer | oam | soc (interconnect class)
  bool unified_memory = false;
  std::vector<std::string> aliases;
  std::string memory_note;
  // Read off this machine (--gpu local): the tool that reported it ("NVML",
  // "nvidia-smi"), the name it printed, and the memory other processes
  // already hold (counted on the device as other_processes).
  std::string detected;
  std::string detected_name;
  Bytes in_use;
  bool in_use_known = true;
};

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
