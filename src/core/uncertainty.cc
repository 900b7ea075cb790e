// Uncertainty bands from measured errors (include/core/vramfit/uncertainty.h).
#include "vramfit/uncertainty.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

namespace vramfit {

namespace {

// The data file's precision for ratios (4 decimals: 0.01 percentage points).
double Round4(double x) { return std::round(x * 1e4) / 1e4; }

std::string EchoString(const Echo& echo, std::string_view key) {
  for (const auto& [k, v] : echo) {
    if (k == key && std::holds_alternative<std::string>(v)) return std::get<std::string>(v);
  }
  return {};
}

std::string Percent(double x) { return fmt::format("{:.1f}%", 100.0 * x); }

// "c001, c003, c007".
std::string CaseList(const std::vector<std::string>& cases) {
  std::string s;
  for (const std::string& c : cases) s += (s.empty() ? "" : ", ") + c;
  return s;
}

// The group's band applied to one figure of F bytes: how far the truth
// behind F lies from F at the group's p90 (low) and p10 (high), in bytes.
// F / (1 + err) is the measured value an estimate F with error err had.
// nullopt when an error reaches -100% (an estimate of 0: no ratio to invert).
std::optional<std::pair<double, double>> Shift(const AccuracyBand& b, double f) {
  if (1.0 + b.p10 <= 0.01 || 1.0 + b.p90 <= 0.01) return std::nullopt;
  return std::pair{f / (1.0 + b.p90) - f, f / (1.0 + b.p10) - f};
}

// "40 measured cases of hf inference, allocated peak: c001, ... (median |err| 4.1%)".
std::string GroupText(const AccuracyBand& b, std::string_view what) {
  return fmt::format("{} measured {} of {} {}, {}: {} (median |err| {})", b.n, b.n == 1 ? "figure" : "figures",
                     b.runtime, b.task, what, CaseList(b.cases), Percent(b.median_abs));
}

Bytes Round(double x) { return Bytes(std::max<int64_t>(0, static_cast<int64_t>(std::llround(x)))); }

// hf and training: the device figure measured most often for the task.
Uncertainty FigureBand(const AccuracyBands& bands, const std::string& runtime, const std::string& task,
                       const DeviceEstimate& d) {
  Uncertainty u;
  const AccuracyBand* best = nullptr;
  for (const char* metric : {"allocated", "reserved", "total", "allocated+context"}) {
    const AccuracyBand* b = bands.Find(runtime, task, metric);
    if (b && (!best || b->n > best->n)) best = b;
  }
  if (!best) {
    u.basis = fmt::format("no measured cases for {} {}: no band", runtime, task);
    return u;
  }
  if (best->n < kMinBandFigures) {
    u.basis = fmt::format("only {} measured {} for {} {} ({}; fewer than {}): no band", best->n,
                          best->n == 1 ? "figure" : "figures", runtime, task, CaseList(best->cases),
                          kMinBandFigures);
    return u;
  }
  std::optional<Bytes> figure;
  std::string what;
  if (best->metric == "allocated") {
    figure = d.allocated_peak;
    what = "allocated peak";
  } else if (best->metric == "reserved") {
    figure = d.reserved_peak;
    what = "reserved peak";
  } else if (best->metric == "total") {
    figure = d.total;
    what = "total";
  } else {
    const Component* ctx = Find(d.components, "cuda_context");
    if (d.allocated_peak && ctx) figure = *d.allocated_peak + ctx->bytes;
    what = "allocated peak + CUDA context";
  }
  if (!figure) {
    u.basis = fmt::format("the estimate has no {} figure, on which {} {} was measured: no band", what, runtime, task);
    return u;
  }
  const auto shift = Shift(*best, static_cast<double>(figure->value()));
  if (!shift) {
    u.basis = fmt::format("{} {}: a measured error reaches -100%: no band", runtime, task);
    return u;
  }
  const double total = static_cast<double>(d.total.value());
  u.low = Round(total + shift->first);
  u.high = Round(total + shift->second);
  u.n = static_cast<int64_t>(best->cases.size());
  u.basis = GroupText(*best, what + " (the band is applied to it; the rest of the total is held)");
  return u;
}

// llama.cpp, vLLM, SGLang: per top-level component.
Uncertainty ComponentBand(const AccuracyBands& bands, const std::string& runtime, const std::string& task,
                          const DeviceEstimate& d) {
  Uncertainty u;
  const bool pool_held = runtime == "vllm" || runtime == "sglang";
  double low = 0, high = 0;
  std::set<std::string> cases;
  std::vector<std::string> used, held;
  for (const Component& c : d.components) {
    if (c.bytes.value() == 0) continue;
    if (pool_held && c.name == "kv_cache") {
      held.push_back("kv_cache (the engine sizes its pool from what the rest leaves)");
      continue;
    }
    const AccuracyBand* b = bands.Find(runtime, task, c.name);
    if (!b) {
      held.push_back(c.name + " (no measured cases)");
      continue;
    }
    if (b->n < kMinBandFigures) {
      held.push_back(fmt::format("{} (only {} measured {}: {})", c.name, b->n, b->n == 1 ? "figure" : "figures",
                                 CaseList(b->cases)));
      continue;
    }
    const auto shift = Shift(*b, static_cast<double>(c.bytes.value()));
    if (!shift) {
      held.push_back(c.name + " (a measured error reaches -100%)");
      continue;
    }
    low += shift->first;
    high += shift->second;
    cases.insert(b->cases.begin(), b->cases.end());
    used.push_back(GroupText(*b, c.name));
  }
  std::string held_text;
  for (const std::string& h : held) held_text += (held_text.empty() ? "" : ", ") + h;
  if (used.empty()) {
    u.basis = fmt::format("no measured cases for {} {} with {} or more figures of a component{}: no band", runtime,
                          task, kMinBandFigures, held_text.empty() ? "" : " (" + held_text + ")");
    return u;
  }
  const double total = static_cast<double>(d.total.value());
  u.low = Round(total + low);
  u.high = Round(total + high);
  u.n = static_cast<int64_t>(cases.size());
  std::string text;
  for (const std::string& s : used) text += (text.empty() ? "" : "; ") + s;
  u.basis = fmt::format("per component, each at its own p10-p90, added up: {}{}", text,
                        held_text.empty() ? "" : "; held at the estimate: " + held_text);
  return u;
}

}  // namespace

const AccuracyBand* AccuracyBands::Find(std::string_view runtime, std::string_view task,
                                        std::string_view metric) const {
  for (const AccuracyBand& b : bands) {
    if (b.runtime == runtime && b.task == task && b.metric == metric) return &b;
  }
  return nullptr;
}

double Quantile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  const double pos = q * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  return values[lo] + (values[hi] - values[lo]) * frac;
}

AccuracyBand MakeBand(std::string runtime, std::string task, std::string metric,
                      const std::vector<std::pair<std::string, double>>& errs) {
  AccuracyBand b;
  b.runtime = std::move(runtime);
  b.task = std::move(task);
  b.metric = std::move(metric);
  b.n = static_cast<int64_t>(errs.size());
  std::vector<double> signed_err, abs_err;
  std::set<std::string> ids;
  for (const auto& [id, err] : errs) {
    signed_err.push_back(err);
    abs_err.push_back(std::fabs(err));
    ids.insert(id);
  }
  b.median_abs = Round4(Quantile(abs_err, 0.5));
  b.p10 = Round4(Quantile(signed_err, 0.1));
  b.p90 = Round4(Quantile(signed_err, 0.9));
  b.cases.assign(ids.begin(), ids.end());
  return b;
}

std::pair<std::string, std::string> BandKey(const Estimate& e) {
  if (EchoString(e.workload, "mode") == "train") {
    std::string method = EchoString(e.workload, "method");
    const std::string quant = EchoString(e.workload, "quant");
    if (method == "lora" && !quant.empty() && quant != "none") method = "qlora";
    return {"train", "train/" + method};
  }
  return {EchoString(e.workload, "runtime"), "inference"};
}

Uncertainty DeviceUncertainty(const AccuracyBands& bands, const Estimate& e, const DeviceEstimate& d) {
  const auto [runtime, task] = BandKey(e);
  if (runtime == "hf" || runtime == "train") return FigureBand(bands, runtime, task, d);
  return ComponentBand(bands, runtime, task, d);
}

std::string DeviceVerdict(const Estimate& e, const DeviceEstimate& d, const Uncertainty* u) {
  if (!d.gpu) return {};
  if (e.failure && e.failure->device == d.name) return "does not fit";
  if (d.total > d.gpu->capacity) return "does not fit";
  if (u && u->high && *u->high > d.gpu->capacity) return "tight";
  return "fits";
}

std::string EstimateVerdict(const Estimate& e, const std::vector<Uncertainty>& uncertainty) {
  if (!e.fits) return {};
  if (!*e.fits) return "does not fit";
  for (size_t i = 0; i < e.devices.size(); ++i) {
    const Uncertainty* u = i < uncertainty.size() ? &uncertainty[i] : nullptr;
    if (DeviceVerdict(e, e.devices[i], u) == "tight") return "tight";
  }
  return "fits";
}

}  // namespace vramfit
