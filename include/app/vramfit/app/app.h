// The application layer: what a frontend (the CLI, the web API) asks, as
// library calls that return result structs. Frontends parse their input into
// an app::Request (settings.h), call these, and render the results; neither
// frontend calls the other.
#ifndef VRAMFIT_APP_APP_H_
#define VRAMFIT_APP_APP_H_

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "vramfit/app/settings.h"
#include "vramfit/catalog.h"
#include "vramfit/device.h"
#include "vramfit/io/calibration.h"
#include "vramfit/error.h"
#include "vramfit/estimate.h"
#include "vramfit/model.h"
#include "vramfit/plan.h"

namespace vramfit::app {

// The devices the --gpu values name. Each value is NAME[xN] or NxNAME, or a
// comma list of them; "--gpu A,B" == "--gpu A --gpu B"; "local" is every GPU
// of this machine as NVML / nvidia-smi report it, with the memory other
// processes hold (include/io/vramfit/io/local_gpus.h). `max_devices` caps
// the total (the web API's limit; the web API also refuses "local"); 0 = no
// cap and "local" allowed. `calibration` (this machine's, from
// include/io/vramfit/io/calibration.h) is attached to the GPUs it covers.
Result<DeviceSet> ToDevices(const std::vector<std::string>& gpus, const GpuCatalog& catalog,
                            size_t max_devices = 0, const Calibration* calibration = nullptr);
// The devices of a job: its --gpu values, with --wired-limit applied to the
// Apple GPUs (it is refused, one line, for a set without one, and above the
// machine's RAM), and this machine's calibration attached.
Result<DeviceSet> ToDevices(const JobRequest& request, const GpuCatalog& catalog, size_t max_devices = 0,
                            const Calibration* calibration = nullptr);

// An estimate as a frontend shows it: the estimate, the loader's notes first,
// and the planner's extras (the fixes when it does not fit; the throughput of
// an inference job on GPUs).
struct EstimateResult {
  Estimate estimate;
  EstimateExtras extras;
};
Result<EstimateResult> EstimateWithExtras(const Model& model, const Job& job, const DeviceSet& devices,
                                          const std::vector<std::string>& notes);

// What `fit` answers: one solve, a ranking of GPU kinds, or a sweep grid.
struct FitResult {
  enum class Kind { kAnswer, kRanking, kSweep };
  Kind kind = Kind::kAnswer;
  std::optional<FitAnswer> answer;
  std::vector<GpuRank> ranking;
  std::vector<SweepCell> sweep;
};

// Runs `fit` for the request (its --solve, --sweep and --gpu settings):
// --sweep KEY=V1,V2 grids (at most max_sweep_cells estimates), --gpu all or
// one of each of several kinds ranks the kinds by min-gpus, anything else
// answers --solve on the devices given.
// `training` plans a training job even when no training setting is given.
Result<FitResult> Fit(const Model& model, const Request& request, size_t max_sweep_cells = 10000,
                      bool training = false, const Calibration* calibration = nullptr);

// The settings one sweep key can take: every job setting that has a value.
bool Sweepable(const Setting& s);

}  // namespace vramfit::app

#endif  // VRAMFIT_APP_APP_H_
