// Uncertainty bands: how far an estimate can be off, from the accuracy
// harness's own measured errors (bench/accuracy --write-bands writes them to
// data/accuracy_bands.json, which is embedded in the binary). Pure: the
// bands come in as numbers; reading the file is io's job
// (include/io/vramfit/io/accuracy_bands.h).
#ifndef VRAMFIT_UNCERTAINTY_H_
#define VRAMFIT_UNCERTAINTY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vramfit/estimate.h"
#include "vramfit/units.h"

namespace vramfit {

// The measured relative errors of one group of accuracy cases:
// err = (estimate - measured) / measured, signed.
struct AccuracyBand {
  std::string runtime;  // the estimate's runtime ("hf", "vllm", "sglang", "llamacpp"), or "train"
  std::string task;     // "inference", or "train/full" | "train/lora" | "train/qlora" | ...
  // What was compared: a device figure ("allocated", "reserved", "total",
  // "allocated+context") or a top-level component ("kv_cache"); a buffer kept
  // apart gets a suffix ("compute_buffer@host").
  std::string metric;
  int64_t n = 0;              // compared figures
  double median_abs = 0;      // median |err|
  double p10 = 0, p90 = 0;    // 10th / 90th percentile of the signed err
  std::vector<std::string> cases;  // the case ids, sorted, each once
};

struct AccuracyBands {
  std::vector<AccuracyBand> bands;
  // nullptr when no group has these keys.
  const AccuracyBand* Find(std::string_view runtime, std::string_view task, std::string_view metric) const;
};

// A band needs this many compared figures; a group with fewer is named in the
// basis, never used.
inline constexpr int64_t kMinBandFigures = 3;

// The q-th quantile (0..1) of values, linear between order statistics
// (numpy's default "linear" method). REQUIRES: values non-empty.
double Quantile(std::vector<double> values, double q);

// One group's band from its (case id, signed err) pairs. REQUIRES: errs
// non-empty. Ratios are rounded to 4 decimals (the data file's precision),
// so a band made here equals one read back from the file.
AccuracyBand MakeBand(std::string runtime, std::string task, std::string metric,
                      const std::vector<std::pair<std::string, double>>& errs);

// The group keys of an estimate: (runtime, task) from its echoed workload
// ("runtime"; a training estimate's "mode" train, "method" and "quant": LoRA
// over a quantized base is qlora).
std::pair<std::string, std::string> BandKey(const Estimate& e);

// One device's band. low/high are set only where a measured group applies;
// basis always says what it was computed from (or why there is none).
struct Uncertainty {
  std::optional<Bytes> low, high;
  std::string basis;
  int64_t n = 0;  // measured figures behind the band (0: none)
};

// The band of device d of estimate e. The truth behind a figure F estimated
// with err lies at F / (1 + err): the band puts the group's p90 and p10 there
// (high = F / (1 + p10)), on the figure the group was measured on:
//  - hf and training: the device figure with the most measured cases for the
//    task (the allocated peak, in practice); the rest of the total is held;
//  - llama.cpp: each top-level component with a group, added up (components
//    without one are held at their estimate, and named);
//  - vLLM / SGLang: the same per component, except the KV pool, which the
//    engine sizes from what the rest leaves and which is held.
Uncertainty DeviceUncertainty(const AccuracyBands& bands, const Estimate& e, const DeviceEstimate& d);

// The verdict of a device, and of the estimate: "fits", "tight" (the total
// fits but the band's high edge does not), "does not fit"; "" without a GPU.
// uncertainty: one per device of e, or empty (no bands: never "tight").
std::string DeviceVerdict(const Estimate& e, const DeviceEstimate& d, const Uncertainty* u);
std::string EstimateVerdict(const Estimate& e, const std::vector<Uncertainty>& uncertainty);

}  // namespace vramfit

#endif  // VRAMFIT_UNCERTAINTY_H_
