// Printers for estimates, inspections and catalog listings. Frontends hold
// no formula: they render what the core computed.
#ifndef VRAMFIT_RENDER_H_
#define VRAMFIT_RENDER_H_

#include <string>
#include <vector>

#include "vramfit/catalog.h"
#include "vramfit/estimate.h"
#include "vramfit/model.h"
#include "vramfit/plan.h"

namespace vramfit {

enum class Units { kGiB, kGB };

// "14.96 GiB" / "16.06 GB"; small values in MiB/KiB (MB/kB).
std::string FormatBytes(Bytes b, Units u);
// "8.03 B", "124.4 M".
std::string FormatCount(int64_t n);

// What the planner adds to an estimate: the changes that would make it fit
// (or fit better) and the throughput next to the memory.
struct EstimateExtras {
  std::vector<Fix> fixes;
  std::optional<Throughput> throughput;
};

// Human table with a bar per component and the verdict.
std::string RenderEstimateText(const Estimate& e, Units u);
std::string RenderEstimateText(const Estimate& e, Units u, const EstimateExtras& x);
// vramfit.estimate/1 (DESIGN.md), pretty-printed; extras as "fixes" and
// "throughput" keys.
std::string RenderEstimateJson(const Estimate& e);
std::string RenderEstimateJson(const Estimate& e, const EstimateExtras& x);

// vramfit.fit/1: {"schema","solve","answer":{"value","reason"},"estimate","next","ladder"}.
std::string RenderFitJson(const FitAnswer& a);
std::string RenderFitText(const FitAnswer& a, Units u);

// A ranking of GPU kinds for one job (fit --gpu all, or several kinds).
struct GpuRank {
  GpuSpec gpu;
  FitAnswer answer;                      // min-gpus for this kind
  std::optional<Throughput> throughput;  // at the answer
};
std::string RenderGpuRankText(const std::vector<GpuRank>& ranks, Units u);
std::string RenderGpuRankJson(const std::vector<GpuRank>& ranks);

// A sweep grid: one row per combination of the swept keys.
struct SweepCell {
  std::vector<std::pair<std::string, std::string>> keys;  // key -> value, in sweep order
  std::optional<Estimate> estimate;                      // nullopt: the error below
  std::string error;
  bool fits = false;
};
std::string RenderSweepText(const std::vector<SweepCell>& cells, Units u);
std::string RenderSweepJson(const std::vector<SweepCell>& cells);
std::string RenderSweepCsv(const std::vector<SweepCell>& cells);

// `inspect`: architecture, parameter inventory by role and dtype, KV per token.
std::string RenderInspectText(const Model& m, const std::vector<std::string>& notes, Units u);
std::string RenderInspectJson(const Model& m, const std::vector<std::string>& notes);

std::string RenderModelsText(const std::vector<const CatalogModel*>& models);
std::string RenderModelsJson(const std::vector<const CatalogModel*>& models);
std::string RenderGpusText(const std::vector<const GpuSpec*>& gpus, Units u);
std::string RenderGpusJson(const std::vector<const GpuSpec*>& gpus);

// {"schema":"vramfit.error/1","error":{"kind":..., "message":...}}
std::string RenderErrorJson(const Error& e);

}  // namespace vramfit

#endif  // VRAMFIT_RENDER_H_
