// The planner's shared pieces (plan.cc, plan_topology.cc, plan_fixes.cc):
// probes over the estimator, the exact largest-fitting search, ladder steps
// and their one-line reasons. Not a public header.
#ifndef VRAMFIT_SRC_CORE_PLAN_INTERNAL_H_
#define VRAMFIT_SRC_CORE_PLAN_INTERNAL_H_

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "vramfit/plan.h"

namespace vramfit::plan_detail {

using Settings = std::vector<std::pair<std::string, std::string>>;

// The searches estimate numbers-only (no formula text); an answer that is
// shown is estimated again with formulas (Full).
inline constexpr EstimateOptions kNumbersOnly{.formulas = false};

struct Probe {
  bool fits = false;
  Result<Estimate> estimate = Error{};
  Job job;  // the job estimated
};
using ProbeFn = std::function<Probe(int64_t)>;

struct SearchResult {
  int64_t best = 0;              // 0 when even lo does not fit
  std::optional<Estimate> at_best;
  std::optional<Estimate> next;  // at best + 1 (when <= hi)
  Job at_best_job, next_job;     // the jobs behind them
  bool hit_ceiling = false;      // hi fits
};

// Largest v in [lo, hi] for which probe(v) fits, assuming it fits up to some
// point and not after. Exponential then binary search.
SearchResult LargestFitting(int64_t lo, int64_t hi, const ProbeFn& probe);

// Estimates the job numbers-only and judges it.
Probe Try(const Model& model, const Job& job, const DeviceSet& devices);

// An answer as shown: the searched estimate again, with its formulas (the
// searched one stands if this fails).
Estimate Full(const Model& model, const Job& job, const DeviceSet& devices, Estimate searched);

DeviceSet Repeat(const GpuSpec& g, int64_t n);
// A device set as runs of one kind, in its order: {("H100-80GB", 2), ("RTX-4090", 1)}.
std::vector<std::pair<std::string, int64_t>> KindRuns(const DeviceSet& d);
// "2 x H100-80GB + 1 x RTX-4090": a device set by kind, in its order.
std::string SetLabel(const DeviceSet& d);
std::string GiBText(Bytes b);
// The tightest device of an estimate: the largest total relative to capacity.
const DeviceEstimate* Tightest(const Estimate& e);

// One short reason for an estimate of `job`: "fits with 3.79 GiB headroom on
// gpu0", "2.40 GiB over the 23.99 GiB of gpu0 (RTX-4090)", "KV pool holds 19
// x 8192 tokens; batch 20 needs 163,840 > 156,816", or the first sentence of
// an engine's start-up failure. Never says "fits" for a job that does not fit.
std::string ReasonOf(const Estimate& e, const Job& job);
// The first sentence of a long message (without a bracketed hint, at most
// 100 characters): what a ladder line shows of an engine's text.
std::string ShortMessage(const std::string& message);

// A ladder step for a tried option. An error's or failure's full text goes
// to *notes once (when notes is given); the step keeps its first clause.
LadderStep Step(std::string option, const Result<Estimate>& e, const Job& job,
                std::vector<std::string>* notes = nullptr);

// "--gpu RTX-4090x2 --tp 2": settings as the flags a user types.
std::string FlagsText(const Settings& settings);

// The inference job laid out on n GPUs as the runtime prefers, and the
// settings that say so.
Job LaidOut(const Model& model, const Job& job, int64_t n, Settings* settings);

// Whether the runtime of an inference job takes --tp (vLLM, SGLang).
bool TakesTp(const Model& model, const Job& job);

// The largest power-of-two tensor-parallel degree <= limit that the model's
// attention heads split over (1 when none does).
int64_t PowerOfTwoTp(const Model& model, int64_t limit);

// A layout of a job on n GPUs: its label ("tp 8 x pp 2", "zero 3", "layer
// split"), the job so laid out, and the settings that say so.
struct Layout {
  std::string label;
  Job job;
  Settings settings;
};
// The layouts min-gpus tries on n GPUs, preferred first (tensor parallel in
// a power of two within `gpn` GPUs, pipeline stages beyond; training: DP with
// ZeRO 0..3 or FSDP; runtimes without --tp: a layer split).
std::vector<Layout> MinGpusLayouts(const Model& model, const Job& job, int64_t n, int64_t gpn);
// Tries each layout of n GPUs on d, adding each to the ladder; at the first
// that fits, fills the answer (value, estimate, settings) and returns true.
bool TryLayouts(const Model& model, const std::vector<Layout>& layouts, int64_t n, const DeviceSet& d,
                FitAnswer* a);
// "H100-80GBx16", "H100-80GB,RTX-4090x2": a device set as --gpu takes it.
std::string GpuFlag(const DeviceSet& d);
// What a weight format costs in quality, in the planner's cost points, and
// in words ("4-bit weights (awq-int4): small quality loss").
int FormatCost(const std::string& quant, std::string* text);

// min-gpus over one GPU kind, in nodes (plan_topology.cc).
Result<FitAnswer> SolveMinGpusTopology(const Model& model, const Job& job, const DeviceSet& devices,
                                       FitAnswer a);

}  // namespace vramfit::plan_detail

#endif  // VRAMFIT_SRC_CORE_PLAN_INTERNAL_H_
