// Printers for estimates, inspections and catalog listings. Frontends hold
// no formula: they render what the core computed.
#ifndef VRAMFIT_RENDER_H_
#define VRAMFIT_RENDER_H_

#include <string>
#include <vector>

#include "vramfit/catalog.h"
#include "vramfit/estimate.h"
#include "vramfit/model.h"

namespace vramfit {

enum class Units { kGiB, kGB };

// "14.96 GiB" / "16.06 GB"; small values in MiB/KiB (MB/kB).
std::string FormatBytes(Bytes b, Units u);
// "8.03 B", "124.4 M".
std::string FormatCount(int64_t n);

// Human table with a bar per component and the verdict.
std::string RenderEstimateText(const Estimate& e, Units u);
// vramfit.estimate/1 (DESIGN.md), pretty-printed.
std::string RenderEstimateJson(const Estimate& e);

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
