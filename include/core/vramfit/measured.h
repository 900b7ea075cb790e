// What an engine reported it allocated (read from its log by
// include/io/vramfit/io/engine_log.h), and how that compares with an
// estimate of the same job. Pure data and a pure comparison: no I/O.
#ifndef VRAMFIT_MEASURED_H_
#define VRAMFIT_MEASURED_H_

#include <optional>
#include <string>
#include <vector>

#include "vramfit/estimate.h"
#include "vramfit/units.h"

namespace vramfit {

// One figure an engine printed, in exact units.
struct Measured {
  std::string device;         // vramfit's device: "gpu0", "gpu1", ..., or "host"
  std::string engine_device;  // as printed: "CUDA0", "CPU_Mapped", "TP0"; empty when not printed
  std::string engine_name;    // the engine's figure: "model buffer", "Model loading took"
  // The estimate's top-level component it measures ("weights", "kv_cache",
  // ...), or, for a figure with no counterpart, its own name.
  std::string component;
  bool has_counterpart = true;  // false: `component` is the figure's own name
  Bytes bytes;                  // the printed value x its unit, to the nearest byte
  // Half of the last printed digit x the unit: the true value lies within
  // bytes +- half_ulp (llama.cpp "448.00 MiB" -> 5243 B). 0 for exact bytes.
  Bytes half_ulp;
  std::string printed;  // as printed: "448.00 MiB"
  int line = 0;         // 1-based line of the log
};

// One row of a comparison: the measured figures of one device and component,
// summed, against the estimate's component of that name on that device.
struct CheckRow {
  std::string device;
  std::string component;
  std::string term;          // the estimate term compared ("weights"); empty: none
  std::string engine_names;  // the engine figures summed, "; "-joined
  std::string printed;       // their printed values, " + "-joined
  Bytes measured;
  Bytes half_ulp;                   // summed rounding intervals
  std::optional<Bytes> estimated;   // nullopt: no counterpart, or no estimate
  // (estimated - measured) / measured; nullopt without an estimate or when
  // measured is 0.
  std::optional<double> error;
};

// Sums the figures by (device, component), in the order first seen, and
// pairs each sum with the same-named top-level component of `estimate`
// (its device of that name, or its host components for "host"). Figures
// without a counterpart, and every row when `estimate` is null, get no
// estimate.
std::vector<CheckRow> CompareToEstimate(const std::vector<Measured>& figures, const Estimate* estimate);

}  // namespace vramfit

#endif  // VRAMFIT_MEASURED_H_
