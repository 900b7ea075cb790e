// This machine's calibration file: the terms `vramfit check --save`
// measured (what a process holds beyond its own buffers, per GPU kind and
// runtime family), which later estimates on this machine use in place of
// the assumed ones. docs/check.md §6 describes the file and its rules.
//
//   $VRAMFIT_CALIBRATION, else $XDG_CONFIG_HOME/vramfit/calibration.json,
//   else $HOME/.config/vramfit/calibration.json
//
// Written atomically (a temporary file in the same directory, flushed to
// disk, then renamed over the old one): a write killed midway leaves the old
// file whole.
#ifndef VRAMFIT_IO_CALIBRATION_H_
#define VRAMFIT_IO_CALIBRATION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "vramfit/device.h"
#include "vramfit/error.h"

namespace vramfit {

struct CalibrationEntry {
  std::string gpu;        // catalog name: "RTX-4090"
  std::string runtime;    // "pytorch" | "llamacpp"
  std::string component;  // "cuda_context"
  int64_t bytes = 0;
  int64_t assumed_bytes = 0;  // what the estimate assumed when it was measured
  std::string source;         // "server.log line 412 (llama.cpp memory breakdown)"
  std::string saved;          // UTC date, "2026-12-07"
};

struct Calibration {
  std::vector<CalibrationEntry> entries;
};

// The file's path as the environment sets it; "" when neither
// VRAMFIT_CALIBRATION, XDG_CONFIG_HOME nor HOME is set.
std::string CalibrationPath();

// Reads the file; a missing file is an empty calibration. A file that is
// not one (bad JSON, wrong schema, a figure out of range) is an error naming
// the path and what is wrong.
Result<Calibration> LoadCalibration(const std::string& path);

// Adds the entries (one per GPU kind, runtime and component: a new
// measurement replaces the old) and writes the file atomically, creating its
// directory.
Status SaveCalibration(const std::string& path, const std::vector<CalibrationEntry>& add);

// Removes the file (no file: nothing to do).
Status ClearCalibration(const std::string& path);

// The terms of `c` for each device's GPU kind, attached to the devices.
void AttachCalibration(const Calibration& c, DeviceSet* devices);

// The upper bound of a calibrated term: no process's context is near it.
inline constexpr int64_t kMaxCalibratedBytes = int64_t{16} << 30;  // 16 GiB

}  // namespace vramfit

#endif  // VRAMFIT_IO_CALIBRATION_H_
