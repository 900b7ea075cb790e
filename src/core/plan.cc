// The planner: exact searches over the estimator. docs/estimation.md
// ("planner") describes each solve and the throughput model.
#include "vramfit/plan.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include <fmt/format.h>

#include "runtimes/profile.h"

namespace vramfit {

Result<Estimate> EstimateJob(const Model& model, const Job& job, const DeviceSet& devices,
                             const EstimateOptions& options) {
  std::vector<std::string> notes;
  std::vector<std::string>* wanted = options.formulas ? &notes : nullptr;  // numbers-only: no notes
  Result<Estimate> e = Error{};
  std::optional<Model> headed;  // the model with --head applied, when given
  if (job.head.given()) {
    auto m = WithHead(model, job.head);
    if (!m.ok()) return m.error();
    headed = std::move(*m);
  }
  const Model& used = headed ? *headed : model;
  if (job.training) {
    auto w = ResolveTraining(used, job.train, devices, wanted);
    if (!w.ok()) return w.error();
    e = EstimateTraining(used, *w, devices, options);
  } else {
    auto w = ResolveInference(used, job.infer, devices, wanted);
    if (!w.ok()) return w.error();
    e = EstimateInference(used, *w, devices, options);
  }
  if (!e.ok()) return e.error();
  e->model_id = model.spec.id;
  e->notes.insert(e->notes.begin(), notes.begin(), notes.end());
  return e;
}

bool Fits(const Estimate& e, const Job& job) {
  if (!e.fits.value_or(false)) return false;
  if (!job.training && runtimes::ProfileFor(job.infer.runtime).SizesKvPool() && e.kv_max_concurrency) {
    return *e.kv_max_concurrency >= job.infer.batch;
  }
  return true;
}

const char* SolveName(Solve s) {
  switch (s) {
    case Solve::kMaxBatch: return "max-batch";
    case Solve::kMaxContext: return "max-context";
    case Solve::kMinGpus: return "min-gpus";
    case Solve::kBestQuant: return "best-quant";
    case Solve::kBestMethod: return "best-method";
  }
  return "?";
}

Result<Solve> ParseSolve(std::string_view s) {
  for (Solve v : {Solve::kMaxBatch, Solve::kMaxContext, Solve::kMinGpus, Solve::kBestQuant, Solve::kBestMethod}) {
    if (s == SolveName(v)) return v;
  }
  return InvalidArgument(fmt::format(
      "--solve: unknown question '{}' (expected max-batch, max-context, min-gpus, best-quant or best-method)", s));
}

namespace {

std::string GiBText(Bytes b) { return fmt::format("{:.2f} GiB", static_cast<double>(b.value()) / kGiB); }

// The tightest device of an estimate: the largest total relative to capacity.
const DeviceEstimate* Tightest(const Estimate& e) {
  const DeviceEstimate* best = nullptr;
  double worst = -1;
  for (const DeviceEstimate& d : e.devices) {
    if (!d.gpu) continue;
    const double r = static_cast<double>(d.total.value()) / static_cast<double>(d.gpu->capacity.value());
    if (r > worst) { worst = r; best = &d; }
  }
  return best;
}

LadderStep Step(std::string option, const Result<Estimate>& e, const Job& job) {
  LadderStep s;
  s.option = std::move(option);
  if (!e.ok()) {
    s.reason = e.error().message;
    return s;
  }
  s.fits = Fits(*e, job);
  const DeviceEstimate* d = Tightest(*e);
  if (d) {
    s.total = d->total;
    s.capacity = d->gpu->capacity;
  }
  if (!e->fits.value_or(false) && d) {
    s.reason = fmt::format("{} over the {} of {} ({})", GiBText(d->total - d->gpu->capacity),
                           GiBText(d->gpu->capacity), d->name, d->gpu->name);
  } else if (!s.fits && e->kv_max_concurrency) {
    s.reason = fmt::format("the KV pool holds {} sequences, fewer than the {} asked", *e->kv_max_concurrency,
                           job.infer.batch);
  } else if (d) {
    s.reason = fmt::format("fits with {} headroom on {}", GiBText(d->gpu->capacity - d->total), d->name);
  }
  return s;
}

// Largest v in [lo, hi] for which fits(v) holds, assuming fits is true up
// to some point and false after. Exponential then binary search.
// The searches estimate numbers-only (no formula text); an answer that is
// shown is estimated again with formulas (Full).
constexpr EstimateOptions kNumbersOnly{.formulas = false};

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

SearchResult LargestFitting(int64_t lo, int64_t hi, const ProbeFn& probe) {
  SearchResult r;
  Probe p = probe(lo);
  if (!p.fits) {
    if (p.estimate.ok()) {
      r.next = std::move(*p.estimate);
      r.next_job = p.job;
    }
    return r;
  }
  int64_t good = lo;
  std::optional<Estimate> good_e = std::move(*p.estimate);
  Job good_job = p.job;
  int64_t bad = -1;
  int64_t step = 1;
  while (true) {
    const int64_t v = std::min(hi, good + step);
    if (v == good) break;
    Probe q = probe(v);
    if (q.fits) {
      good = v;
      good_e = std::move(*q.estimate);
      good_job = q.job;
      if (v == hi) break;
      step = std::min<int64_t>(step * 2, int64_t{1} << 40);
    } else {
      bad = v;
      break;
    }
  }
  if (bad < 0) {
    r.best = good;
    r.at_best = std::move(good_e);
    r.at_best_job = good_job;
    r.hit_ceiling = true;
    return r;
  }
  while (bad - good > 1) {
    const int64_t mid = good + (bad - good) / 2;
    Probe q = probe(mid);
    if (q.fits) {
      good = mid;
      good_e = std::move(*q.estimate);
      good_job = q.job;
    } else {
      bad = mid;
    }
  }
  r.best = good;
  r.at_best = std::move(good_e);
  r.at_best_job = good_job;
  Probe n = probe(good + 1);
  if (n.estimate.ok()) {
    r.next = std::move(*n.estimate);
    r.next_job = n.job;
  }
  return r;
}

Probe Try(const Model& model, const Job& job, const DeviceSet& devices) {
  Probe p;
  p.estimate = EstimateJob(model, job, devices, kNumbersOnly);
  p.fits = p.estimate.ok() && Fits(*p.estimate, job);
  p.job = job;
  return p;
}

// An answer as shown: the searched estimate again, with its formulas. The
// numbers are the same (the estimator is deterministic, and numbers-only
// mode changes no number); the searched one stands if this fails.
Estimate Full(const Model& model, const Job& job, const DeviceSet& devices, Estimate searched) {
  auto e = EstimateJob(model, job, devices);
  return e.ok() ? std::move(e.value()) : std::move(searched);
}

DeviceSet Repeat(const GpuSpec& g, int64_t n) {
  DeviceSet d;
  d.gpus.assign(static_cast<size_t>(n), g);
  return d;
}

// "2 x H100-80GB + 1 x RTX-4090": a device set by kind, in its order.
std::string SetLabel(const DeviceSet& d) {
  std::string out;
  for (size_t i = 0; i < d.gpus.size();) {
    size_t j = i;
    while (j < d.gpus.size() && d.gpus[j].name == d.gpus[i].name) ++j;
    if (!out.empty()) out += " + ";
    out += fmt::format("{} x {}", j - i, d.gpus[i].name);
    i = j;
  }
  return out;
}

using Layouts = std::vector<std::pair<std::string, Job>>;  // ("tp 4", the job so laid out)
using LayoutsFn = std::function<Layouts(int64_t)>;

// Tries each layout of n GPUs on d, adding each to the ladder; at the first
// that fits, fills the answer and returns true.
bool TryLayouts(const Model& model, const Layouts& layouts, int64_t n, const DeviceSet& d, FitAnswer* a) {
  for (const auto& [label, j] : layouts) {
    Probe p = Try(model, j, d);
    const std::string option = fmt::format("{} ({})", SetLabel(d), label);
    a->ladder.push_back(Step(option, p.estimate, j));
    if (!p.fits) continue;
    a->found = true;
    a->number = n;
    a->value = option;
    a->estimate = Full(model, j, d, *p.estimate);
    return true;
  }
  return false;
}

// min-gpus over a mixed set: the GPUs given are what the user has, so the
// answer is the smallest subset of them that fits. For each count n it tries
// the n largest GPUs (most memory first), then n GPUs of each single kind
// present (an even tensor-parallel or ZeRO split is limited by its smallest
// member, so a uniform subset can fit where a mixed one of the same size does
// not). Layers go to each device as the runtime places them (llama.cpp in
// proportion to memory, transformers' balanced device_map evenly).
Result<FitAnswer> MinGpusFromPool(const Model& model, const DeviceSet& devices, const LayoutsFn& layouts,
                                  FitAnswer a) {
  DeviceSet pool = devices;
  // Most memory first (to the GiB: a 3090's 24.00 and a 4090's 23.99 GiB are
  // the same class), then the most bandwidth (faster decode).
  const auto gib = [](const GpuSpec& g) { return std::llround(static_cast<double>(g.capacity.value()) / kGiB); };
  std::stable_sort(pool.gpus.begin(), pool.gpus.end(), [&](const GpuSpec& x, const GpuSpec& y) {
    if (gib(x) != gib(y)) return gib(x) > gib(y);
    return x.bandwidth_gb_s > y.bandwidth_gb_s;
  });
  const int64_t total = static_cast<int64_t>(pool.gpus.size());
  for (int64_t n = 1; n <= total; ++n) {
    std::vector<DeviceSet> candidates;
    DeviceSet prefix;
    prefix.gpus.assign(pool.gpus.begin(), pool.gpus.begin() + n);
    candidates.push_back(prefix);
    for (size_t i = 0; i < pool.gpus.size(); ++i) {
      if (i > 0 && pool.gpus[i].name == pool.gpus[i - 1].name) continue;
      int64_t count = 0;
      for (const GpuSpec& g : pool.gpus) count += g.name == pool.gpus[i].name ? 1 : 0;
      if (count < n) continue;
      const DeviceSet same = Repeat(pool.gpus[i], n);
      if (SetLabel(same) != SetLabel(prefix)) candidates.push_back(same);
    }
    for (const DeviceSet& d : candidates) {
      if (TryLayouts(model, layouts(n), n, d, &a)) {
        a.reason = n == 1 ? fmt::format("fits on one GPU of the {} given", total)
                          : fmt::format("{} of the {} GPUs given fit; no {} of them did", n, total,
                                        n == 2 ? std::string("single one") : std::to_string(n - 1));
        return a;
      }
    }
  }
  a.value = "none";
  a.reason = fmt::format("all {} GPUs given ({}) together do not fit", total, SetLabel(pool));
  return a;
}

}  // namespace

namespace {

Result<FitAnswer> SolveLargest(const Model& model, const Job& job, const DeviceSet& devices, Solve solve,
                        FitAnswer a) {
  const bool batch = solve == Solve::kMaxBatch;
  int64_t hi = batch ? kMaxBatch : kMaxTokens;
  if (!batch && model.spec.max_position_embeddings > 0) hi = model.spec.max_position_embeddings;
  const ProbeFn probe = [&](int64_t v) {
    Job j = job;
    if (batch) {
      if (j.training) j.train.batch = v;
      else j.infer.batch = v;
    } else if (j.training) {
      j.train.seq = v;
    } else {
      runtimes::ProfileFor(j.infer.runtime).SetContext(j.infer, v);
    }
    return Try(model, j, devices);
  };
  SearchResult r = LargestFitting(1, hi, probe);
  a.found = r.best > 0;
  a.number = r.best;
  if (r.at_best) a.estimate = Full(model, r.at_best_job, devices, *r.at_best);
  if (r.next) a.next = Full(model, r.next_job, devices, *r.next);
  const char* what = batch ? (job.training ? "micro-batch" : "batch") : (job.training ? "sequence length" : "context");
  if (!a.found) {
    a.value = "none";
    a.reason = fmt::format("even a {} of 1 does not fit", what);
    if (r.next) a.ladder.push_back(Step(fmt::format("{} 1", what), *r.next, job));
  } else {
    a.value = std::to_string(r.best);
    if (r.hit_ceiling) {
      a.reason = batch ? fmt::format("every {} up to {} fits", what, hi)
                       : fmt::format("the model's whole context ({} tokens) fits", hi);
    } else {
      const LadderStep over = Step(fmt::format("{} {}", what, r.best + 1), r.next ? Result<Estimate>(*r.next)
                                                                                : Result<Estimate>(Error{}), job);
      a.reason = fmt::format("{} {} fits; {} does not: {}", what, r.best, r.best + 1, over.reason);
    }
    a.ladder.push_back(Step(fmt::format("{} {}", what, r.best), *r.at_best, job));
    if (r.next) a.ladder.push_back(Step(fmt::format("{} {}", what, r.best + 1), *r.next, job));
  }
  return a;
}

Result<FitAnswer> SolveMinGpus(const Model& model, const Job& job, const DeviceSet& devices, Solve,
                        FitAnswer a) {
  const GpuSpec kind = devices.gpus[0];
  bool mixed = false;
  for (const GpuSpec& g : devices.gpus) mixed = mixed || g.name != kind.name;
  // Layouts per GPU count, preferred first.
  const auto layouts = [&](int64_t n) {
    std::vector<std::pair<std::string, Job>> out;
    if (job.training) {
      for (int64_t z : {0, 1, 2, 3}) {
        if (job.train.zero > z || (job.train.fsdp && z != 3)) continue;
        Job j = job;
        j.train.gpus.reset();
        if (!job.train.fsdp) j.train.zero = n > 1 ? z : job.train.zero;
        out.push_back({n > 1 ? (job.train.fsdp ? std::string("fsdp") : fmt::format("zero {}", j.train.zero)) : "1 GPU", j});
        if (n == 1) break;
      }
      return out;
    }
    if (const int64_t tp = runtimes::ProfileFor(job.infer.runtime).PreferredTp(model, n); tp > 0) {
      Job j = job;
      j.infer.tp = tp;
      j.infer.pp = n / tp;
      out.push_back({fmt::format("tp {}{}", tp, n / tp > 1 ? fmt::format(" x pp {}", n / tp) : ""), j});
    } else {
      Job j = job;
      j.infer.tp = 1;
      j.infer.pp = 1;  // several GPUs: the runtime splits layers
      out.push_back({n > 1 ? "layer split" : "1 GPU", j});
    }
    return out;
  };
  if (mixed) return MinGpusFromPool(model, devices, layouts, std::move(a));
  int64_t n = 1;
  while (n <= kMaxParallel) {
    const Layouts ls = layouts(n);
    const bool any_valid = !ls.empty();
    if (TryLayouts(model, ls, n, Repeat(kind, n), &a)) {
      a.reason = n == 1 ? "fits on one GPU"
                        : fmt::format("{} GPUs fit; {} did not ({})", n, n - 1,
                                      a.ladder.size() >= 2 ? a.ladder[a.ladder.size() - 2].reason : "");
      return a;
    }
    if (!any_valid && n > 512) break;
    n = n < 16 ? n + 1 : n * 2;
  }
  a.value = "none";
  a.reason = fmt::format("no count of {} up to {} fits", kind.name, kMaxParallel);
  return a;
}

Result<FitAnswer> SolveBestQuant(const Model& model, const Job& job, const DeviceSet& devices, Solve,
                        FitAnswer a) {
  if (job.training) return InvalidArgument("--solve best-quant: applies to inference; use best-method for training");
  const runtimes::RuntimeProfile& rt = runtimes::ProfileFor(job.infer.runtime);
  std::vector<std::string> kvs = {"auto"};
  for (std::string& kv : rt.KvLadder()) kvs.push_back(std::move(kv));
  int found = 0;
  for (const std::string& q : rt.QuantLadder()) {
    auto fmt_q = ParseWeightFormat(q);
    if (!fmt_q.ok()) continue;  // a format this build does not size
    for (const std::string& kv : kvs) {
      Job j = job;
      j.infer.quant = *fmt_q;
      if (kv != "auto") rt.ApplyKv(j.infer, kv);
      // "none" is the ladder's top: the checkpoint's own weights.
      const std::string weights = q == "none" ? "unquantized (--quant none)" : q;
      const std::string option = kv == "auto" ? weights : weights + " + KV " + kv;
      Probe p = Try(model, j, devices);
      a.ladder.push_back(Step(option, p.estimate, j));
      if (p.fits) {
        if (found == 0) {
          a.found = true;
          a.value = option;
          a.estimate = Full(model, j, devices, *p.estimate);
          a.settings.push_back({"quant", q});
          if (kv != "auto") {
            for (auto& setting : rt.KvSettings(kv)) a.settings.push_back(std::move(setting));
          }
        }
        ++found;
        break;  // the best KV dtype for this weight format
      }
    }
    if (found >= 2) break;  // the answer and its runner-up
  }
  if (!a.found) {
    a.value = "none";
    a.reason = "no weight format in the ladder fits";
    return a;
  }
  std::string why;
  for (const LadderStep& s : a.ladder) {
    if (s.option == a.value) break;
    if (!s.fits) why += (why.empty() ? "" : "; ") + s.option + ": " + s.reason;
  }
  a.reason = why.empty() ? "the highest-fidelity format fits" : "better formats do not fit: " + why;
  for (const LadderStep& s : a.ladder) {
    if (s.fits && s.option != a.value) {
      a.reason += fmt::format("; runner-up {} ({})", s.option, s.reason);
      break;
    }
  }
  return a;
}

Result<FitAnswer> SolveBestMethod(const Model& model, const Job& job, const DeviceSet& devices, Solve,
                        FitAnswer a) {
  if (!job.training) return InvalidArgument("--solve best-method: applies to training (vramfit fit ... --method ...)");
  struct Option { TrainMethod m; Optimizer o; GradCkpt c; };
  const Option ladder[] = {
      {TrainMethod::kFull, Optimizer::kAdamW, GradCkpt::kNone},
      {TrainMethod::kFull, Optimizer::kAdamW, GradCkpt::kFull},
      {TrainMethod::kFull, Optimizer::kAdamW8bit, GradCkpt::kNone},
      {TrainMethod::kFull, Optimizer::kAdamW8bit, GradCkpt::kFull},
      {TrainMethod::kFull, Optimizer::kPagedAdamW8bit, GradCkpt::kFull},
      {TrainMethod::kLora, Optimizer::kAdamW, GradCkpt::kNone},
      {TrainMethod::kLora, Optimizer::kAdamW, GradCkpt::kFull},
      {TrainMethod::kLora, Optimizer::kAdamW8bit, GradCkpt::kFull},
      {TrainMethod::kQlora, Optimizer::kAdamW, GradCkpt::kNone},
      {TrainMethod::kQlora, Optimizer::kAdamW, GradCkpt::kFull},
      {TrainMethod::kQlora, Optimizer::kPagedAdamW8bit, GradCkpt::kFull},
  };
  const int64_t batch = job.train.batch;
  const int64_t accum = job.train.grad_accum;
  for (const Option& o : ladder) {
    // Keep the effective batch: halve the micro-batch, double grad-accum.
    for (int64_t b = batch, k = accum; b >= 1; b /= 2, k *= 2) {
      Job j = job;
      j.train.method = o.m;
      j.train.optimizer = o.o;
      j.train.grad_ckpt = o.c;
      j.train.batch = b;
      j.train.grad_accum = k;
      if (o.m != TrainMethod::kQlora && j.train.quant && j.train.quant->method != QuantMethod::kNone &&
          o.m != TrainMethod::kLora) {
        j.train.quant.reset();
      }
      std::string option = fmt::format("{} + {} + grad-ckpt {}", MethodName(o.m), OptimizerName(o.o),
                                       GradCkptName(o.c));
      if (b != batch) option += fmt::format(" + micro-batch {} x grad-accum {}", b, k);
      Probe p = Try(model, j, devices);
      a.ladder.push_back(Step(option, p.estimate, j));
      if (p.fits) {
        a.found = true;
        a.value = option;
        a.estimate = Full(model, j, devices, *p.estimate);
        a.settings = {{"method", MethodName(o.m)},
                      {"optimizer", OptimizerName(o.o)},
                      {"grad-ckpt", GradCkptName(o.c)},
                      {"batch", std::to_string(b)},
                      {"grad-accum", std::to_string(k)}};
        if (job.train.quant && !j.train.quant) a.settings.push_back({"quant", "none"});
        std::string why;
        for (const LadderStep& s : a.ladder) {
          if (!s.fits) why += (why.empty() ? "" : "; ") + s.option + ": " + s.reason;
        }
        a.reason = why.empty() ? "full fine-tuning with AdamW fits" : "better settings do not fit: " + why;
        return a;
      }
      if (b == 1) break;
    }
  }
  a.value = "none";
  a.reason = "not even QLoRA with paged 8-bit AdamW, checkpointing and micro-batch 1 fits";
  return a;
}

}  // namespace

Result<FitAnswer> Plan(const Model& model, const Job& job, const DeviceSet& devices, Solve solve) {
  if (devices.empty()) {
    return InvalidArgument(fmt::format("--solve {}: give the GPUs to plan for with --gpu", SolveName(solve)));
  }
  FitAnswer a;
  a.solve = solve;
  // The job as given must at least be valid (errors in the settings surface
  // here, not as "does not fit").
  {
    auto base = EstimateJob(model, job, devices, kNumbersOnly);
    if (!base.ok()) {
      // Running out of memory is an answer, not an error, for the searches.
      if (base.error().kind != ErrorKind::kInvalidArgument && base.error().kind != ErrorKind::kUnsupported &&
          base.error().kind != ErrorKind::kNotFound) {
        // fall through: e.g. vLLM's "no memory for the KV cache"
      } else if (solve != Solve::kBestQuant && solve != Solve::kMinGpus && solve != Solve::kBestMethod) {
        return base.error();
      }
    }
  }

  switch (solve) {
    case Solve::kMaxBatch:
    case Solve::kMaxContext: return SolveLargest(model, job, devices, solve, std::move(a));
    case Solve::kMinGpus: return SolveMinGpus(model, job, devices, solve, std::move(a));
    case Solve::kBestQuant: return SolveBestQuant(model, job, devices, solve, std::move(a));
    case Solve::kBestMethod: return SolveBestMethod(model, job, devices, solve, std::move(a));
  }
  return Error{ErrorKind::kInternal, "plan: unknown solve"};
}

namespace {

// Largest power of two <= n (n >= 1).
int64_t PowerOfTwoBelow(int64_t n) {
  int64_t p = 1;
  while (p <= n / 2) p *= 2;
  return p;
}

// "--gpu RTX-4090x2 --tp 2": a fix's settings as the flags a user types.
std::string FlagsText(const std::vector<std::pair<std::string, std::string>>& settings) {
  std::string out;
  for (const auto& [k, v] : settings) out += fmt::format("{}--{} {}", out.empty() ? "" : " ", k, v);
  return out;
}

using Settings = std::vector<std::pair<std::string, std::string>>;

// The inference job laid out on n GPUs as the runtime prefers, and the
// settings that say so.
Job LaidOut(const Model& model, const Job& job, int64_t n, Settings* settings) {
  Job j = job;
  if (const int64_t tp = runtimes::ProfileFor(j.infer.runtime).PreferredTp(model, n); tp > 0) {
    j.infer.tp = tp;
    j.infer.pp = n / tp;
    if (n > 1 || job.infer.tp != 1) settings->push_back({"tp", std::to_string(j.infer.tp)});
    if (j.infer.pp != 1 || job.infer.pp != 1) settings->push_back({"pp", std::to_string(j.infer.pp)});
  } else {
    j.infer.tp = 1;
    j.infer.pp = 1;
  }
  return j;
}

// Estimates a changed job and keeps the change when it saves memory or
// makes the job fit.
struct FixAdder {
  const Model& model;
  const Estimate& current;
  std::vector<Fix>* fixes;
  void operator()(std::string change, Settings settings, const Job& j, const DeviceSet& d) const {
    auto e = EstimateJob(model, j, d, kNumbersOnly);
    if (!e.ok()) return;
    Fix f;
    f.change = std::move(change);
    f.settings = std::move(settings);
    f.total = e->total;
    f.saves = current.total - e->total;
    f.fits = Fits(*e, j);
    if (f.saves.value() > 0 || f.fits) fixes->push_back(std::move(f));
  }
};

// The training changes: checkpointing, an 8-bit optimizer, a smaller
// micro-batch, shorter samples, a smaller loss, LoRA / QLoRA, ZeRO-3,
// optimizer offload.
void AddTrainingFixes(const FixAdder& add, const Job& job, const DeviceSet& devices) {
  const TrainingSettings& s = job.train;
  auto rw = ResolveTraining(add.model, s, devices, nullptr);
  if (!rw.ok()) return;
  if (rw->grad_ckpt == GradCkpt::kNone) {
    Job j = job;
    j.train.grad_ckpt = GradCkpt::kFull;
    add("--grad-ckpt full", {{"grad-ckpt", "full"}}, j, devices);
  }
  if (rw->optimizer == Optimizer::kAdamW) {
    Job j = job;
    j.train.optimizer = Optimizer::kAdamW8bit;
    add("--optimizer adamw-8bit", {{"optimizer", "adamw-8bit"}}, j, devices);
  }
  if (s.batch > 1) {
    Job j = job;
    j.train.batch = s.batch / 2;
    j.train.grad_accum = s.grad_accum * 2;
    add(fmt::format("--batch {} --grad-accum {}", s.batch / 2, s.grad_accum * 2),
        {{"batch", std::to_string(s.batch / 2)}, {"grad-accum", std::to_string(s.grad_accum * 2)}}, j,
        devices);
  }
  if (s.seq > 1) {
    Job j = job;
    j.train.seq = s.seq / 2;
    add(fmt::format("--seq {}", s.seq / 2), {{"seq", std::to_string(s.seq / 2)}}, j, devices);
  }
  if (const auto smaller = StackSmallerLoss(s.stack, rw->loss)) {
    Job j = job;
    j.train.loss = *smaller;
    add(fmt::format("--loss {}", LossName(*smaller)), {{"loss", LossName(*smaller)}}, j, devices);
  }
  if (s.method == TrainMethod::kFull) {
    Job j = job;
    j.train.method = TrainMethod::kLora;
    add("--method lora", {{"method", "lora"}}, j, devices);
  }
  if (s.method != TrainMethod::kQlora) {
    Job j = job;
    j.train.method = TrainMethod::kQlora;
    j.train.quant.reset();
    add("--method qlora", {{"method", "qlora"}}, j, devices);
  }
  if (devices.size() > 1 && s.zero < 3 && !s.fsdp) {
    Job j = job;
    j.train.zero = 3;
    add("--zero 3", {{"zero", "3"}}, j, devices);
  }
  if ((s.zero > 0 || s.fsdp) && s.offload == Offload::kNone) {
    Job j = job;
    j.train.offload = Offload::kOptimizer;
    add("--offload optimizer", {{"offload", "optimizer"}}, j, devices);
  }
}

}  // namespace

std::vector<Fix> SuggestFixes(const Model& model, const Job& job, const DeviceSet& devices,
                              const Estimate& current, const std::vector<GpuSpec>* other_gpus) {
  std::vector<Fix> fixes;
  if (devices.empty()) return fixes;
  const FixAdder add{model, current, &fixes};
  if (!job.training) {
    const InferenceSettings& s = job.infer;
    const runtimes::RuntimeProfile& rt = runtimes::ProfileFor(s.runtime);
    auto w = ResolveInference(model, s, devices, nullptr);
    if (!w.ok()) return fixes;
    const int64_t ctx = rt.ContextOf(*w);
    const std::string ctx_flag = rt.ContextFlag();
    const auto add_ctx = [&](int64_t tokens) {
      Job j = job;
      rt.SetContext(j.infer, tokens);
      Settings set = {{ctx_flag, std::to_string(tokens)}};
      add(FlagsText(set), set, j, devices);
    };
    if (rt.SizesKvPool() && ctx > 1) {
      // The pool holds what is left: the longest context whose sequences it
      // holds (the engine's own "estimated maximum model length"), and the
      // largest power of two below it, the number people type.
      const ProbeFn probe = [&](int64_t v) {
        Job j = job;
        rt.SetContext(j.infer, v);
        return Try(model, j, devices);
      };
      const SearchResult r = LargestFitting(1, ctx - 1, probe);
      if (r.best > 0) {
        const int64_t pow2 = PowerOfTwoBelow(r.best);
        add_ctx(pow2);
        if (pow2 != r.best) add_ctx(r.best);
      }
    } else {
      for (int64_t div : {2, 4}) {
        if (w->ctx / div < 1) continue;
        add_ctx(w->ctx / div);
      }
    }
    if (w->batch > 1) {
      Job j = job;
      j.infer.batch = w->batch / 2;
      add(fmt::format("--batch {}", w->batch / 2), {{"batch", std::to_string(w->batch / 2)}}, j, devices);
    }
    // The runtime's first smaller KV type, when it saves bytes per element.
    if (const std::vector<std::string> kvs = rt.KvLadder(); !kvs.empty()) {
      const auto d = ParseDType(kvs.front());
      const DTypeInfo& now = Info(w->kv_dtype);
      if (d && Info(*d).block_bytes * now.block_elems < now.block_bytes * Info(*d).block_elems) {
        Job j = job;
        rt.ApplyKv(j.infer, kvs.front());
        Settings set = rt.KvSettings(kvs.front());
        add(FlagsText(set), set, j, devices);
      }
    }
    for (const std::string& q : rt.FixQuants()) {
      auto f = ParseWeightFormat(q);
      if (!f.ok() || f->Name() == w->quant.Name()) continue;
      Job j = job;
      j.infer.quant = *f;
      add("--quant " + q, {{"quant", q}}, j, devices);
    }
  } else {
    AddTrainingFixes(add, job, devices);
  }
  // More GPUs of the same kind.
  const GpuSpec& g = devices.gpus[0];
  const int64_t n = static_cast<int64_t>(devices.size());
  const std::string more = fmt::format("{}x{}", g.name, 2 * n);
  // A Mac has one GPU: no "more of the same" there.
  if (IsApple(g)) {
  } else if (job.training) {
    Job j = job;
    j.train.gpus.reset();
    Settings set = {{"gpu", more}};
    if (j.train.zero == 0 && !j.train.fsdp) {
      j.train.zero = 3;
      set.push_back({"zero", "3"});
    }
    add(FlagsText(set), set, j, Repeat(g, 2 * n));
  } else {
    Settings set = {{"gpu", more}};
    const Job j = LaidOut(model, job, 2 * n, &set);
    add(FlagsText(set), set, j, Repeat(g, 2 * n));
  }
  // Another GPU kind: the smallest one with more memory than the first GPU
  // on which the job fits, as many as it has now.
  if (other_gpus != nullptr && !job.training) {
    std::vector<const GpuSpec*> larger;
    for (const GpuSpec& o : *other_gpus) {
      // Same vendor and the same memory kind: a discrete card is not offered
      // a unified-memory machine (Jetson, DGX Spark), nor the reverse.
      if (o.vendor == g.vendor && o.unified_memory == g.unified_memory && o.capacity > g.capacity &&
          o.name != g.name) {
        larger.push_back(&o);
      }
    }
    std::stable_sort(larger.begin(), larger.end(),
                     [](const GpuSpec* a, const GpuSpec* b) { return a->capacity < b->capacity; });
    for (const GpuSpec* o : larger) {
      Settings set = {{"gpu", n > 1 ? fmt::format("{}x{}", o->name, n) : o->name}};
      const Job j = LaidOut(model, job, n, &set);
      Probe p = Try(model, j, Repeat(*o, n));
      if (!p.fits) continue;
      add(FlagsText(set), set, j, Repeat(*o, n));
      break;
    }
  }
  std::stable_sort(fixes.begin(), fixes.end(), [](const Fix& a, const Fix& b) {
    if (a.fits != b.fits) return a.fits;
    return a.saves > b.saves;
  });
  return fixes;
}

namespace {

int64_t EchoInt(const Echo& echo, std::string_view key, int64_t fallback) {
  for (const auto& [k, v] : echo) {
    if (k == key && std::holds_alternative<int64_t>(v)) return std::get<int64_t>(v);
  }
  return fallback;
}

double EchoDouble(const Echo& echo, std::string_view key) {
  for (const auto& [k, v] : echo) {
    if (k == key && std::holds_alternative<double>(v)) return std::get<double>(v);
  }
  return 0;
}

int64_t ComponentBytesOf(const std::vector<Component>& comps, std::string_view name) {
  const Component* c = Find(comps, name);
  return c ? c->bytes.value() : 0;
}

}  // namespace

std::optional<Throughput> EstimateThroughput(const Model& model, const Estimate& e, const DeviceSet& devices) {
  if (devices.empty() || e.devices.empty()) return std::nullopt;
  std::string mode, runtime;
  for (const auto& [k, v] : e.workload) {
    if (k == "mode" && std::holds_alternative<std::string>(v)) mode = std::get<std::string>(v);
    if (k == "runtime" && std::holds_alternative<std::string>(v)) runtime = std::get<std::string>(v);
  }
  if (mode == "train") return std::nullopt;
  const int64_t tp = EchoInt(e.workload, "tp", 1);
  // Sequences decoding together and the tokens each holds. hf and llama.cpp
  // allocate exactly the tokens held; vLLM's pool is larger than what one
  // sequence holds: one sequence of max_model_len tokens (at most the pool),
  // and for the batch figure as many as the pool holds at once.
  int64_t seqs = EchoInt(e.workload, "batch", 1);
  int64_t batch_seqs = seqs;
  int64_t held = EchoInt(e.workload, "ctx", 0);
  double pool_share = 1.0, batch_pool_share = 1.0;
  if (runtime == "llamacpp") {
    seqs = batch_seqs = EchoInt(e.workload, "parallel", 1);
    held = EchoInt(e.workload, "n_ctx_seq", 0);
  } else if (runtime == "vllm") {
    const int64_t cap = e.kv_capacity_tokens.value_or(0);
    if (cap <= 0) return std::nullopt;
    held = std::min(EchoInt(e.workload, "max_model_len", cap), cap);
    seqs = 1;
    batch_seqs = std::max<int64_t>(1, cap / std::max<int64_t>(1, held));
    pool_share = static_cast<double>(held) / static_cast<double>(cap);
    batch_pool_share = std::min(1.0, static_cast<double>(batch_seqs * held) / static_cast<double>(cap));
  }
  // Assumptions: decode reaches 80% of peak memory bandwidth (GPU and host);
  // prefill 40% of dense bf16 TFLOPS (model FLOPs utilisation); each
  // tensor-parallel doubling keeps 90% (all-reduce cost); pipeline stages
  // and host layers run one after another for one token.
  constexpr double kBwEff = 0.8, kMfu = 0.4, kTpEff = 0.9;
  const double tp_eff = std::pow(kTpEff, std::log2(static_cast<double>(std::max<int64_t>(tp, 1))));
  const ModelSpec& s = model.spec;
  // The share of the weights a step reads: the experts it touches (top-k
  // per token, up to all experts for a large batch).
  auto weight_share = [&](int64_t n) {
    if (s.num_experts <= 0 || model.inventory.params <= 0) return 1.0;
    const double active = static_cast<double>(model.inventory.active_params) / static_cast<double>(model.inventory.params);
    const double touched = std::min(1.0, static_cast<double>(n * s.num_experts_per_tok) / static_cast<double>(s.num_experts));
    return std::min(1.0, active + (1.0 - active) * touched);
  };
  // Layers left in host memory are read at the host's bandwidth; the input
  // embedding table is a row lookup (get_rows), not a read of the table.
  double host_bytes_w = 0;
  if (const Component* hw = Find(e.host, "weights")) {
    host_bytes_w = static_cast<double>(hw->bytes.value() - ComponentBytesOf(hw->children, "embed"));
  }
  const double host_bytes_kv = static_cast<double>(ComponentBytesOf(e.host, "kv_cache"));
  const double host_bw = EchoDouble(e.workload, "host_mem_bw_gb_s");
  if (host_bytes_w + host_bytes_kv > 0 && host_bw <= 0) return std::nullopt;
  auto step_time = [&](int64_t n, double kv_share) -> double {
    double step_s = 0;
    // Devices in order; a pipeline stage is `tp` consecutive devices.
    for (size_t i = 0; i < e.devices.size(); i += static_cast<size_t>(tp)) {
      double stage = 0;
      for (size_t r = i; r < i + static_cast<size_t>(tp) && r < e.devices.size(); ++r) {
        const DeviceEstimate& d = e.devices[r];
        if (!d.gpu || d.gpu->bandwidth_gb_s <= 0) return 0;
        const double bytes = static_cast<double>(ComponentBytesOf(d.components, "weights")) * weight_share(n) +
                             static_cast<double>(ComponentBytesOf(d.components, "kv_cache")) * kv_share;
        stage = std::max(stage, bytes / (d.gpu->bandwidth_gb_s * 1e9 * kBwEff));
      }
      step_s += stage;
    }
    if (step_s <= 0) return 0;
    step_s /= tp_eff;
    if (host_bw > 0) step_s += (host_bytes_w * weight_share(n) + host_bytes_kv) / (host_bw * 1e9 * kBwEff);
    return step_s;
  };
  const double one = step_time(seqs, pool_share);
  const double all = step_time(batch_seqs, batch_pool_share);
  if (one <= 0 || all <= 0) return std::nullopt;
  double flops_tps = 0;
  for (const DeviceEstimate& d : e.devices) flops_tps += d.gpu ? HalfTensorTflops(*d.gpu) * 1e12 * kMfu : 0;
  Throughput t;
  t.decode_tokens_per_s = 1.0 / one;
  t.decode_batch_tokens_per_s = static_cast<double>(batch_seqs) / all;
  const double flops_per_token = 2.0 * static_cast<double>(model.inventory.active_params);
  const double stages = static_cast<double>(e.devices.size()) / static_cast<double>(std::max<int64_t>(1, tp));
  t.prefill_tokens_per_s = flops_per_token > 0 ? flops_tps / stages * tp_eff / flops_per_token : 0;
  t.note = fmt::format(
      "decode at 80% of memory bandwidth reading the weights{} and the KV cache of the tokens held ({} x {} "
      "tokens{}) each step{}; prefill at 40% of dense bf16 TFLOPS; tensor parallel keeps 90% per doubling",
      s.num_experts > 0 ? " of the experts it touches" : "", seqs, held,
      runtime == "vllm" ? fmt::format("; the batch figure: {} x {}", batch_seqs, held) : std::string(),
      host_bw > 0 && host_bytes_w + host_bytes_kv > 0
          ? fmt::format(", the layers in host memory at {:.0f} GB/s after the GPU layers", host_bw)
          : std::string());
  return t;
}

}  // namespace vramfit
