// Estimate(model, workload, devices): the memory a job takes, per device
// and per component. Pure: no I/O, no printing; errors come back as Error.
#ifndef VRAMFIT_ESTIMATE_H_
#define VRAMFIT_ESTIMATE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "vramfit/breakdown.h"
#include "vramfit/device.h"
#include "vramfit/error.h"
#include "vramfit/model.h"
#include "vramfit/workload.h"

namespace vramfit {

// One echoed setting of the resolved workload ("batch": 1).
using EchoValue = std::variant<int64_t, double, bool, std::string>;
using Echo = std::vector<std::pair<std::string, EchoValue>>;

struct DeviceEstimate {
  std::string name;                   // "gpu0"
  std::optional<GpuSpec> gpu;         // nullopt: no --gpu given
  std::vector<Component> components;  // top-level names per DESIGN.md
  Bytes total;                        // what nvidia-smi would show
  std::optional<Bytes> reserved_peak;   // torch max_memory_reserved (PyTorch runtimes)
  std::optional<Bytes> allocated_peak;  // torch max_memory_allocated (PyTorch runtimes)
  std::string peak_phase;             // "prefill", "decode", ...
  std::optional<Bytes> capacity() const {
    return gpu ? std::optional<Bytes>(gpu->capacity) : std::nullopt;
  }
};

// An engine's refusal to start with settings that are valid but do not fit
// (vLLM's "No available memory for the cache blocks", SGLang's "Not enough
// memory"): the estimate still carries the breakdown, with fits = false.
struct StartupFailure {
  std::string kind;     // stable name: "no_kv_memory", "kv_below_one_request", ...
  std::string message;  // the engine's own text (with vramfit's hint in brackets)
  std::string device;   // the device whose check failed ("gpu0")
};

struct Estimate {
  // Model summary.
  std::string model_id;
  int64_t params = 0;
  int64_t active_params = 0;
  Bytes weight_bytes;              // all weights as stored for this job
  Bytes kv_bytes_per_token;        // attention layers, one token, this job's KV dtype/layout
  Bytes state_bytes_per_sequence;  // recurrent state of one sequence (0: pure attention)

  Echo workload;
  std::vector<DeviceEstimate> devices;
  std::vector<Component> host;     // host (CPU) memory the job keeps
  std::optional<int64_t> kv_capacity_tokens;
  std::optional<int64_t> kv_max_concurrency;
  Bytes total;                     // largest device total
  std::optional<bool> fits;        // nullopt without --gpu; false with a failure
  // Set when the engine would refuse to start (fits is then false).
  std::optional<StartupFailure> failure;
  std::vector<std::string> notes;
  // Command-line settings that realise this estimate in the runtime
  // ("--max-model-len 32768", "-ngl 99"); empty for hf.
  std::vector<std::string> launch_flags;
  // The command those flags follow, one word each ({"vllm", "serve",
  // MODEL}; {"python", "-m", "sglang.launch_server", "--model-path",
  // MODEL}); empty where the runtime has no runnable command for this model
  // (llama.cpp without a GGUF file).
  std::vector<std::string> launch_command;
};

// How much of an estimate to build.
struct EstimateOptions {
  // false: numbers only. Every byte count, total, verdict, echoed setting
  // and launch flag is the same, but Component::formula stays empty and
  // there are no notes: the mode of the planner's searches and sweeps,
  // which call the estimator thousands of times and print neither.
  bool formulas = true;
};

// Estimates an inference job. REQUIRES: workload came from ResolveInference
// for this model and devices.
Result<Estimate> EstimateInference(const Model& model, const InferenceWorkload& w,
                                   const DeviceSet& devices, const EstimateOptions& options = {});

// Fills fits/total from the device totals (shared by every runtime).
void FinishVerdict(Estimate& e);

}  // namespace vramfit

#endif  // VRAMFIT_ESTIMATE_H_
