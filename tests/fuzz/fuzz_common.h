// Shared tail of the fuzz targets: what a user would do next with a model
// that loaded (inspect it, estimate it) must not crash either.
#ifndef VRAMFIT_TESTS_FUZZ_FUZZ_COMMON_H_
#define VRAMFIT_TESTS_FUZZ_FUZZ_COMMON_H_

#include <string>
#include <vector>

#include "vramfit/estimate.h"
#include "vramfit/render.h"

namespace vramfit::fuzz {

inline void Exercise(const Model& m, const std::vector<std::string>& notes) {
  (void)RenderInspectText(Inspect(m, notes), Units::kGiB);
  (void)RenderInspectJson(Inspect(m, notes));
  InferenceSettings s;
  s.ctx = 64;
  DeviceSet devices;
  auto w = ResolveInference(m, s, devices, nullptr);
  if (!w.ok()) return;
  auto e = EstimateInference(m, *w, devices);
  if (e.ok()) (void)RenderEstimateJson(*e);
}

}  // namespace vramfit::fuzz

#endif  // VRAMFIT_TESTS_FUZZ_FUZZ_COMMON_H_
