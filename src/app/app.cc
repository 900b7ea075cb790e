// The application layer (include/vramfit/app/app.h): devices from --gpu,
// estimates with their extras, and `fit`'s three answers.
#include "vramfit/app/app.h"

#include <algorithm>

#include <fmt/format.h>

#include "vramfit/io/accuracy_bands.h"
#include "vramfit/io/local_gpus.h"

namespace vramfit::app {

Result<DeviceSet> ToDevices(const std::vector<std::string>& gpus, const GpuCatalog& catalog,
                            size_t max_devices, const Calibration* calibration) {
  DeviceSet set;
  for (const std::string& g : gpus) {
    size_t start = 0;
    do {
      const size_t comma = std::min(g.find(',', start), g.size());
      if (comma == start) return InvalidArgument(fmt::format("--gpu: empty GPU name in '{}'", g));
      const std::string one = g.substr(start, comma - start);
      Status st;
      if (NormalizeName(one) == "local") {
        if (max_devices > 0) {
          return Unsupported("--gpu local: the web API does not read the server's GPUs; name the GPU");
        }
        auto found = DetectLocalGpus(ProbeFromEnvironment());
        if (!found.ok()) return found.error();
        st = AddLocalGpus(*found, catalog, &set);
      } else {
        st = AddGpus(one, catalog, &set);
      }
      if (!st.ok()) return st.error();
      if (max_devices > 0 && set.size() > max_devices) {
        return Unsupported(fmt::format("--gpu: more than {} devices; the web API estimates at most {} "
                                       "(the CLI has no such limit)",
                                       max_devices, max_devices));
      }
      start = comma + 1;
    } while (start <= g.size());
  }
  if (calibration) AttachCalibration(*calibration, &set);
  return set;
}

namespace {

// --cuda-context: the user's measured CUDA context replaces the assumed one
// on every GPU, through the calibration path (it wins over a saved
// calibration of the same term). vLLM and SGLang size their KV pool around
// the memory they see in use at start-up, which the context is part of, so
// there it would move the pool by a rule vramfit does not model.
Status GivenCudaContext(const JobRequest& request, DeviceSet* set) {
  const int64_t mib = *request.cuda_context_mib;
  const Runtime rt = request.job.infer.runtime;
  if (!request.job.training && (rt == Runtime::kVllm || rt == Runtime::kSglang)) {
    return InvalidArgument(fmt::format(
        "--cuda-context: {} counts the context in the memory it profiles at start-up, which sizes its KV "
        "pool; vramfit models {}'s own context only (hf, llamacpp and training jobs take --cuda-context)",
        RuntimeName(rt), RuntimeName(rt)));
  }
  if (set->empty()) return InvalidArgument("--cuda-context: applies to a GPU; give one with --gpu");
  const std::string family = request.job.training || rt == Runtime::kHf ? "pytorch" : RuntimeName(rt);
  for (GpuSpec& g : set->gpus) {
    if (IsApple(g)) {
      return InvalidArgument(fmt::format("--cuda-context: {} runs Metal, which has no CUDA context", g.name));
    }
    std::erase_if(g.calibration, [&](const CalibratedTerm& t) {
      return t.runtime == family && t.component == "cuda_context";
    });
    g.calibration.push_back(
        CalibratedTerm{family, "cuda_context", MiB(mib), fmt::format("--cuda-context {}", mib), true});
  }
  return {};
}

}  // namespace

Result<DeviceSet> ToDevices(const JobRequest& request, const GpuCatalog& catalog, size_t max_devices,
                            const Calibration* calibration) {
  auto set = ToDevices(request.gpus, catalog, max_devices, calibration);
  if (!set.ok()) return set;
  if (request.cuda_context_mib) {
    VRAMFIT_TRY(GivenCudaContext(request, &*set));
  }
  if (!request.wired_limit_mib) return set;
  const int64_t mib = *request.wired_limit_mib;
  if (set->empty()) return InvalidArgument("--wired-limit: applies to Apple GPUs; give one with --gpu (M3-Max-128GB)");
  for (const GpuSpec& g : set->gpus) {
    if (!IsApple(g)) {
      return InvalidArgument(fmt::format(
          "--wired-limit: applies to Apple GPUs (macOS iogpu.wired_limit_mb); {} is not one", g.name));
    }
    if (MiB(mib) > g.ram) {
      return InvalidArgument(fmt::format("--wired-limit: {} MiB is more than the {} MiB of RAM of {}", mib,
                                         g.ram.value() / kMiB, g.name));
    }
  }
  for (GpuSpec& g : set->gpus) {
    g.capacity = MiB(mib);
    g.wired_limit = true;
  }
  return set;
}

Result<EstimateResult> EstimateWithExtras(const Model& model, const Job& job, const DeviceSet& devices,
                                          const std::vector<std::string>& notes) {
  auto e = EstimateJob(model, job, devices);
  if (!e.ok()) return e.error();
  EstimateResult out;
  out.estimate = std::move(e.value());
  out.estimate.notes.insert(out.estimate.notes.begin(), notes.begin(), notes.end());
  if (!devices.empty()) {
    if (!job.training) {
      out.extras.throughput = EstimateThroughput(model, out.estimate, devices);
      const Component* host_weights = Find(out.estimate.host, "weights");
      const Component* host_embed = host_weights ? Find(host_weights->children, "embed") : nullptr;
      if (!out.extras.throughput && host_weights &&
          host_weights->bytes.value() > (host_embed ? host_embed->bytes.value() : 0) &&
          !job.infer.llamacpp.host_mem_bw) {
        out.estimate.notes.push_back(
            "decode speed not estimated: layers stay in host memory and their speed depends on its bandwidth; "
            "give --host-mem-bw GBPS (dual-channel DDR5-5600: 89.6, DDR4-3200: 51.2)");
      }
    }
  }
  // Every device's band from the measured errors (data/accuracy_bands.json).
  for (const DeviceEstimate& d : out.estimate.devices) {
    out.extras.uncertainty.push_back(DeviceUncertainty(io::BuiltinAccuracyBands(), out.estimate, d));
  }
  if (!devices.empty()) {
    if (out.estimate.fits && !*out.estimate.fits) {
      out.extras.fixes = SuggestFixes(model, job, devices, out.estimate, &GpuCatalog::Builtin().gpus());
    }
  }
  return out;
}

namespace {

// The measured bands of a fit answer's two estimates (FitAnswer::estimate_uncertainty).
void AttachBands(FitAnswer* a) {
  const AccuracyBands& bands = io::BuiltinAccuracyBands();
  for (auto [e, out] : {std::pair{&a->estimate, &a->estimate_uncertainty}, {&a->next, &a->next_uncertainty}}) {
    if (!*e) continue;
    for (const DeviceEstimate& d : (*e)->devices) out->push_back(DeviceUncertainty(bands, **e, d));
  }
}

}  // namespace

bool Sweepable(const Setting& s) {
  return !(s.scope & (kOutput | kPlanner)) && !s.is_switch();
}

namespace {

struct SweepAxis {
  const Setting* setting = nullptr;
  std::vector<std::string> values;
};

Result<std::vector<SweepAxis>> ParseSweep(const std::vector<std::string>& specs, size_t max_cells) {
  std::vector<SweepAxis> axes;
  size_t cells = 1;
  for (const std::string& s : specs) {
    const size_t eq = s.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 >= s.size()) {
      return InvalidArgument(fmt::format("--sweep: expected KEY=V1,V2,..., got '{}'", s));
    }
    SweepAxis a;
    const std::string key = s.substr(0, eq);
    a.setting = FindSetting(key);
    if (a.setting == nullptr || !Sweepable(*a.setting)) {
      std::vector<std::string> names;
      for (const Setting& x : Settings()) {
        if (Sweepable(x)) names.emplace_back(x.name);
      }
      return InvalidArgument(fmt::format("--sweep: unknown key '{}' (expected one of {})", key,
                                         fmt::join(names, ", ")));
    }
    size_t pos = eq + 1;
    while (pos <= s.size()) {
      const size_t comma = s.find(',', pos);
      std::string v = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      if (v.empty()) return InvalidArgument(fmt::format("--sweep: empty value in '{}'", s));
      a.values.push_back(v);
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
    cells *= a.values.size();
    if (cells > max_cells) {
      return InvalidArgument(fmt::format("--sweep: more than {} combinations",
                                         max_cells == 10000 ? std::string("10,000") : std::to_string(max_cells)));
    }
    axes.push_back(std::move(a));
  }
  return axes;
}

// One sweep key as the grid shows it: counts as numbers in JSON.
SweepKey KeyOf(const Setting& s, const std::string& text) {
  SweepKey k{std::string(s.name), text, text};
  if (s.numeric) {
    if (auto n = ParseTokens("--" + std::string(s.name), text); n.ok()) k.value = *n;
  }
  return k;
}

// Estimates one cell: the request with each swept key set to its value.
SweepCell SweepOne(const Model& model, const Request& base, const std::vector<SweepAxis>& axes,
                   const std::vector<size_t>& idx, bool training, const Calibration* calibration) {
  Request r = base;
  SweepCell cell;
  for (size_t a = 0; a < axes.size(); ++a) {
    const std::string& v = axes[a].values[idx[a]];
    cell.keys.push_back(KeyOf(*axes[a].setting, v));
    r.Clear(axes[a].setting->name);
    r.AddGiven(axes[a].setting, v, "--" + std::string(axes[a].setting->name));
  }
  r.Clear("sweep");
  Result<Estimate> e = Error{};
  auto job = BuildJob(r, kCmdFit, training);
  if (job.ok()) {
    auto devices = ToDevices(*job, GpuCatalog::Builtin(), 0, calibration);
    // A cell shows its total and verdict only: numbers-only estimates.
    e = devices.ok() ? EstimateJob(model, job->job, *devices, EstimateOptions{.formulas = false})
                     : Result<Estimate>(devices.error());
  } else {
    e = job.error();
  }
  if (e.ok()) {
    cell.fits = Fits(*e, job->job);
    cell.estimate = std::move(e.value());
  } else {
    cell.error = e.error().message;
  }
  return cell;
}

Result<std::vector<SweepCell>> Sweep(const Model& model, const Request& r, const FitRequest& fit,
                                     size_t max_cells, bool training, const Calibration* calibration) {
  if (fit.solve) return InvalidArgument("--sweep: give either --sweep or --solve, not both");
  auto axes = ParseSweep(fit.sweep, max_cells);
  if (!axes.ok()) return axes.error();
  std::vector<SweepCell> cells;
  std::vector<size_t> idx(axes->size(), 0);
  while (true) {
    cells.push_back(SweepOne(model, r, *axes, idx, training, calibration));
    size_t a = axes->size();
    while (a > 0) {
      --a;
      if (++idx[a] < (*axes)[a].values.size()) break;
      idx[a] = 0;
      if (a == 0) return cells;
    }
    if (axes->empty()) return cells;
  }
}

// min-gpus for each kind, fewest GPUs first, then the faster decode.
Result<std::vector<GpuRank>> RankGpus(const Model& model, const Job& job, const std::vector<GpuSpec>& kinds) {
  std::vector<GpuRank> ranks;
  for (const GpuSpec& g : kinds) {
    DeviceSet one;
    one.gpus.push_back(g);
    auto a = Plan(model, job, one, Solve::kMinGpus);
    if (!a.ok()) return a.error();
    GpuRank r{g, std::move(a.value()), std::nullopt};
    // A Mac, a laptop or a unified-memory machine (Jetson, DGX Spark, Strix
    // Halo) has one GPU: several would be several machines, not modelled.
    const bool one_per_machine = IsApple(g) || g.form == "laptop" || g.unified_memory;
    if (one_per_machine && r.answer.found && r.answer.number > 1) {
      r.answer.found = false;
      r.answer.estimate.reset();
      r.answer.reason = fmt::format("does not fit on its one GPU ({:.2f} GiB {}); a machine has one",
                                    static_cast<double>(g.capacity.value()) / kGiB,
                                    IsApple(g) ? "working set" : "memory");
    }
    if (r.answer.found && r.answer.estimate) {
      DeviceSet set;
      set.gpus.assign(static_cast<size_t>(r.answer.number), g);
      r.throughput = EstimateThroughput(model, *r.answer.estimate, set);
    }
    ranks.push_back(std::move(r));
  }
  std::stable_sort(ranks.begin(), ranks.end(), [](const GpuRank& a, const GpuRank& b) {
    if (a.answer.found != b.answer.found) return a.answer.found;
    if (a.answer.number != b.answer.number) return a.answer.number < b.answer.number;
    const double ta = a.throughput ? a.throughput->decode_tokens_per_s : 0;
    const double tb = b.throughput ? b.throughput->decode_tokens_per_s : 0;
    return ta > tb;
  });
  return ranks;
}

// Whether a device set is one GPU of each of several kinds ("--gpu
// A100-80GB,RTX-4090"): min-gpus then ranks the kinds.
bool OneOfEachKind(const DeviceSet& d) {
  const auto& g = d.gpus;
  return g.size() > 1 && std::all_of(g.begin(), g.end(), [&](const GpuSpec& x) {
           return std::count_if(g.begin(), g.end(), [&](const GpuSpec& y) { return y.name == x.name; }) == 1;
         });
}

}  // namespace

Result<FitResult> Fit(const Model& model, const Request& request, size_t max_sweep_cells, bool training,
                      const Calibration* calibration) {
  FitResult out;
  // Parse the request once up front: errors in any setting surface first.
  auto first = BuildJob(request, kCmdFit, training);
  if (!first.ok()) return first.error();
  const FitRequest& fit = first->fit;
  if (!fit.sweep.empty()) {
    auto cells = Sweep(model, request, fit, max_sweep_cells, training, calibration);
    if (!cells.ok()) return cells.error();
    out.kind = FitResult::Kind::kSweep;
    out.sweep = std::move(cells.value());
    return out;
  }
  const bool all = first->gpus.size() == 1 && first->gpus[0] == "all";
  if (!fit.solve && !all) {
    return InvalidArgument("fit: give --solve max-batch|max-context|min-gpus|best-quant|best-method, "
                           "--sweep KEY=V1,V2,..., or --gpu all");
  }
  Solve solve = Solve::kMinGpus;
  if (fit.solve) {
    auto s = ParseSolve(*fit.solve);
    if (!s.ok()) return s.error();
    solve = *s;
  }
  auto req = BuildJob(request, kCmdFit, training || solve == Solve::kBestMethod);
  if (!req.ok()) return req.error();
  const Job& job = req->job;
  std::vector<GpuSpec> kinds;
  if (all) {
    if (solve != Solve::kMinGpus) return InvalidArgument("--gpu all: ranks GPUs by --solve min-gpus");
    kinds = GpuCatalog::Builtin().gpus();
  } else {
    auto devices = ToDevices(*req, GpuCatalog::Builtin(), 0, calibration);
    if (!devices.ok()) return devices.error();
    if (devices->empty()) return InvalidArgument(fmt::format("--solve {}: give --gpu", SolveName(solve)));
    // A list with counts ("--gpu H100-80GBx2,RTX-4090x4") is the set the
    // user has, of which min-gpus picks the smallest part that fits.
    if (solve != Solve::kMinGpus || !OneOfEachKind(*devices)) {
      auto a = Plan(model, job, *devices, solve);
      if (!a.ok()) return a.error();
      out.answer = std::move(a.value());
      AttachBands(&*out.answer);
      if (job.safety) {
        out.answer->reason += " (--safety p90: every estimate judged at the high edge of its measured error band)";
      }
      return out;
    }
    kinds = devices->gpus;
  }
  auto ranks = RankGpus(model, job, kinds);
  if (!ranks.ok()) return ranks.error();
  out.kind = FitResult::Kind::kRanking;
  out.ranking = std::move(ranks.value());
  for (GpuRank& r : out.ranking) AttachBands(&r.answer);
  return out;
}

}  // namespace vramfit::app
