// Printers for estimates, inspections and catalog listings. Frontends hold
// no formula: they render what the core computed.
#ifndef VRAMFIT_RENDER_H_
#define VRAMFIT_RENDER_H_

#include <string>
#include <string_view>
#include <vector>

#include "vramfit/catalog_model.h"
#include "vramfit/device.h"
#include "vramfit/estimate.h"
#include "vramfit/inspect.h"
#include "vramfit/model.h"
#include "vramfit/plan.h"

namespace vramfit {

enum class Units { kGiB, kGB };

// "14.96 GiB" / "16.06 GB"; small values in MiB/KiB (MB/kB).
std::string FormatBytes(Bytes b, Units u);
// "8.03 B", "124.4 M".
std::string FormatCount(int64_t n);

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

std::string RenderGpuRankText(const std::vector<GpuRank>& ranks, Units u);
std::string RenderGpuRankJson(const std::vector<GpuRank>& ranks);

std::string RenderSweepText(const std::vector<SweepCell>& cells, Units u);
std::string RenderSweepJson(const std::vector<SweepCell>& cells);
std::string RenderSweepCsv(const std::vector<SweepCell>& cells);

// `inspect`: architecture, parameter inventory by role and dtype, KV per token.
std::string RenderInspectText(const Inspection& in, Units u);
std::string RenderInspectJson(const Inspection& in);

// --print-flags --json: vramfit.launch/1, {"schema", "runtime", "flags":
// ["--max-model-len 32768", ...], "argv": ["--max-model-len", "32768", ...]}.
std::string RenderLaunchJson(const Estimate& e, std::string_view runtime);
// The launch flags as argv tokens: each flag string split as a POSIX shell
// splits it (at spaces; '...' quotes, a backslash escapes), so a quoted
// llama.cpp -ot regex comes back as one token without its quotes.
std::vector<std::string> LaunchArgv(const std::vector<std::string>& flags);

std::string RenderModelsText(const std::vector<const CatalogModel*>& models);
std::string RenderModelsJson(const std::vector<const CatalogModel*>& models);
std::string RenderGpusText(const std::vector<const GpuSpec*>& gpus, Units u);
std::string RenderGpusJson(const std::vector<const GpuSpec*>& gpus);

// {"schema":"vramfit.error/1","error":{"kind":..., "message":...}}
std::string RenderErrorJson(const Error& e);

}  // namespace vramfit

#endif  // VRAMFIT_RENDER_H_
