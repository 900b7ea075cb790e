// `--gpu local`: the GPUs of this machine and the memory other processes
// already hold on them, read through NVML (libnvidia-ml.so.1, loaded with
// dlopen so the binary runs where there is none) or, failing that,
// `nvidia-smi --query-gpu=name,memory.total,memory.used
// --format=csv,noheader,nounits`. Every device found is matched to its
// catalog entry for bandwidth, TFLOPS and capability; its capacity is the
// total this machine reports. docs/formats.md §8 lists what is read.
#ifndef VRAMFIT_IO_LOCAL_GPUS_H_
#define VRAMFIT_IO_LOCAL_GPUS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vramfit/catalog.h"
#include "vramfit/device.h"
#include "vramfit/error.h"

namespace vramfit {

// One device as this machine reports it.
struct LocalGpu {
  std::string name;                 // "NVIDIA GeForce RTX 4090"
  std::optional<int64_t> total_mib; // nullopt where the tool prints [N/A] (unified memory)
  std::optional<int64_t> used_mib;
  std::string source;               // "NVML" | "nvidia-smi"
};

// Parses nvidia-smi's `--format=csv,noheader,nounits` output of
// `--query-gpu=name,memory.total,memory.used`: one "NAME, TOTAL, USED" line
// per device, MiB. Errors name the line and what is wrong with it.
Result<std::vector<LocalGpu>> ParseNvidiaSmiQuery(std::string_view text);

// How detection looks: the NVML library to load ("" = libnvidia-ml.so.1;
// "none" skips NVML; the environment's VRAMFIT_NVML_LIBRARY sets it) and
// the nvidia-smi command (found on PATH).
struct LocalGpuProbe {
  std::string nvml_library;
  std::string nvidia_smi = "nvidia-smi";
};

// The probe as the environment sets it (VRAMFIT_NVML_LIBRARY).
LocalGpuProbe ProbeFromEnvironment();

// Reads the devices of this machine: NVML first, nvidia-smi second. An error
// (kNotFound) when neither finds a GPU, saying what each attempt met.
Result<std::vector<LocalGpu>> DetectLocalGpus(const LocalGpuProbe& probe);

// Appends the devices found to `set`, each matched to its catalog entry
// (the name as the tool prints it, with or without the vendor words) with
// the capacity and in-use memory read off this machine. A device the
// catalog does not know is an error naming it: its bandwidth and
// capability would be guesses.
Status AddLocalGpus(const std::vector<LocalGpu>& found, const GpuCatalog& catalog, DeviceSet* set);

}  // namespace vramfit

#endif  // VRAMFIT_IO_LOCAL_GPUS_H_
