// The planner: exact searches over the estimator. docs/estimation.md
// ("planner") describes each solve and the throughput model.
#include "vramfit/plan.h"
#include "vramfit/check.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include <fmt/format.h>

#include "plan_internal.h"
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
  if (!job.training && runtimes::ProfileFor(job.infer.runtime).SizesKvPool() && e.kv_max_concurrency &&
      *e.kv_max_concurrency < job.infer.batch) {
    return false;
  }
  if (job.safety) {
    // --safety p90: every device's band must fit too (a device without a
    // measured band is judged by its estimate).
    for (const DeviceEstimate& d : e.devices) {
      const Uncertainty u = DeviceUncertainty(*job.safety, e, d);
      if (d.gpu && u.high && *u.high > d.gpu->capacity) return false;
    }
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

namespace plan_detail {

std::string GiBText(Bytes b) { return fmt::format("{:.2f} GiB", static_cast<double>(b.value()) / kGiB); }


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

std::string ShortMessage(const std::string& message) {
  // The first sentence, without vramfit's bracketed hint, at most 100 characters.
  size_t cut = std::min(message.find(". "), message.find(" ["));
  if (cut == std::string::npos) cut = message.size();
  std::string out = message.substr(0, cut);
  while (!out.empty() && (out.back() == ' ' || out.back() == '.')) out.pop_back();
  if (out.size() > 100) out = out.substr(0, 97) + "...";
  return out;
}

namespace {

// The tokens each sequence takes of the pool, as the estimate echoes them
// (vLLM: max_model_len in whole blocks; SGLang: context_length).
int64_t HeldTokens(const Estimate& e) {
  int64_t held = 0, block = 1;
  for (const auto& [k, v] : e.workload) {
    if (!std::holds_alternative<int64_t>(v)) continue;
    if (k == "max_model_len" || k == "context_length") held = std::get<int64_t>(v);
    if (k == "block_size") block = std::max<int64_t>(1, std::get<int64_t>(v));
  }
  return (held + block - 1) / block * block;
}

}  // namespace

std::string ReasonOf(const Estimate& e, const Job& job) {
  const DeviceEstimate* d = Tightest(e);
  if (e.failure) return ShortMessage(e.failure->message);
  if (!e.fits.value_or(false) && d) {
    return fmt::format("{} over the {} of {} ({})", GiBText(d->total - d->gpu->capacity),
                       GiBText(d->gpu->capacity), d->name, d->gpu->name);
  }
  if (!Fits(e, job) && e.kv_max_concurrency) {
    const int64_t held = HeldTokens(e);
    const int64_t batch = job.infer.batch;
    if (e.kv_capacity_tokens && held > 0 && batch * held > *e.kv_capacity_tokens) {
      return fmt::format("KV pool holds {} x {} tokens; batch {} needs {} > {}", *e.kv_max_concurrency, held,
                         batch, Thousands(batch * held), Thousands(*e.kv_capacity_tokens));
    }
    return fmt::format("KV pool holds {} sequences; batch {} needs {}", *e.kv_max_concurrency, batch, batch);
  }
  if (job.safety) {
    // --safety p90: the band's high edge decides (Fits); say which device's edge is over.
    for (const DeviceEstimate& dev : e.devices) {
      const Uncertainty u = DeviceUncertainty(*job.safety, e, dev);
      if (dev.gpu && u.high && *u.high > dev.gpu->capacity) {
        return fmt::format("its error band's high edge, {}, is over the {} of {} ({})", GiBText(*u.high),
                           GiBText(dev.gpu->capacity), dev.name, dev.gpu->name);
      }
    }
    if (d) {
      const Uncertainty u = DeviceUncertainty(*job.safety, e, *d);
      if (u.high) {
        return fmt::format("fits with {} headroom at its error band's high edge ({} at the estimate) on {}",
                           GiBText(d->gpu->capacity - *u.high), GiBText(d->gpu->capacity - d->total), d->name);
      }
    }
  }
  if (d) return fmt::format("fits with {} headroom on {}", GiBText(d->gpu->capacity - d->total), d->name);
  return "";
}

bool TryLayouts(const Model& model, const std::vector<Layout>& layouts, int64_t n, const DeviceSet& d, FitAnswer* a) {
  for (const Layout& l : layouts) {
    Probe p = Try(model, l.job, d);
    const std::string option = fmt::format("{} ({})", SetLabel(d), l.label);
    a->ladder.push_back(Step(option, p.estimate, l.job, &a->notes));
    if (!p.fits) continue;
    a->found = true;
    a->number = n;
    a->value = option;
    a->estimate = Full(model, l.job, d, *p.estimate);
    a->settings = {{"gpu", GpuFlag(d)}};
    a->settings.insert(a->settings.end(), l.settings.begin(), l.settings.end());
    return true;
  }
  return false;
}

LadderStep Step(std::string option, const Result<Estimate>& e, const Job& job, std::vector<std::string>* notes) {
  LadderStep s;
  s.option = std::move(option);
  const auto note_once = [&](const std::string& text) {
    // Once per kind of message: the first full text of each short one,
    // named by the option it came from (its figures are that option's).
    const std::string short_text = ShortMessage(text);
    if (notes && short_text != text &&
        std::none_of(notes->begin(), notes->end(),
                     [&](const std::string& n) { return n.find(short_text) != std::string::npos; })) {
      notes->push_back(fmt::format("{}: {}", s.option, text));
    }
  };
  if (!e.ok()) {
    s.reason = ShortMessage(e.error().message);
    note_once(e.error().message);
    return s;
  }
  s.fits = Fits(*e, job);
  if (const DeviceEstimate* d = Tightest(*e)) {
    s.total = d->total;
    s.capacity = d->gpu->capacity;
  }
  s.reason = ReasonOf(*e, job);
  if (e->failure) note_once(e->failure->message);
  return s;
}

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

std::vector<std::pair<std::string, int64_t>> KindRuns(const DeviceSet& d) {
  std::vector<std::pair<std::string, int64_t>> runs;
  for (const GpuSpec& g : d.gpus) {
    if (runs.empty() || runs.back().first != g.name) runs.emplace_back(g.name, 0);
    ++runs.back().second;
  }
  return runs;
}

// "2 x H100-80GB + 1 x RTX-4090": a device set by kind, in its order.
std::string SetLabel(const DeviceSet& d) {
  std::string out;
  for (const auto& [name, n] : KindRuns(d)) out += fmt::format("{}{} x {}", out.empty() ? "" : " + ", n, name);
  return out;
}

}  // namespace plan_detail

namespace {

using namespace plan_detail;

using LayoutsFn = std::function<std::vector<Layout>(int64_t)>;

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

// One reason for a best-quant / best-method answer: how many better options
// were tried and why the nearest one does not fit.
std::string BetterOptionsReason(const std::vector<LadderStep>& ladder, const std::string& answer,
                                const std::string& when_first) {
  int better = 0;
  const LadderStep* nearest = nullptr;
  for (const LadderStep& s : ladder) {
    if (s.option == answer) break;
    if (s.fits) continue;
    ++better;
    nearest = &s;
  }
  if (nearest == nullptr) return when_first;
  if (better == 1) return fmt::format("the better option, {}, does not fit: {}", nearest->option, nearest->reason);
  return fmt::format("{} better options do not fit; the nearest, {}: {}", better, nearest->option, nearest->reason);
}

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
    if (r.next) {
      a.ladder.push_back(Step(fmt::format("{} 1", what), *r.next, r.next_job, &a.notes));
      a.reason += ": " + a.ladder.back().reason;
    }
    return a;
  }
  a.value = std::to_string(r.best);
  a.ladder.push_back(Step(fmt::format("{} {}", what, r.best), *r.at_best, r.at_best_job, &a.notes));
  if (r.hit_ceiling) {
    a.reason = batch ? fmt::format("every {} up to {} fits", what, hi)
                     : fmt::format("the model's whole context ({} tokens) fits", hi);
  } else if (r.next) {
    // One reason: why one step beyond does not fit (judged as that job).
    a.ladder.push_back(Step(fmt::format("{} {}", what, r.best + 1), *r.next, r.next_job, &a.notes));
    const std::string& over = a.ladder.back().reason;
    a.reason = over.rfind("KV pool", 0) == 0 ? over : fmt::format("{} {}: {}", what, r.best + 1, over);
  } else {
    a.reason = fmt::format("{} {} is the largest that fits", what, r.best);
  }
  return a;
}

Result<FitAnswer> SolveMinGpus(const Model& model, const Job& job, const DeviceSet& devices, Solve,
                               FitAnswer a) {
  const GpuSpec& kind = devices.gpus[0];
  bool mixed = false;
  for (const GpuSpec& g : devices.gpus) mixed = mixed || g.name != kind.name;
  if (!mixed) return SolveMinGpusTopology(model, job, devices, std::move(a));
  // The user's own GPUs: any subset, laid out as the runtime prefers.
  const int64_t gpn = GpusPerNode(job, devices);
  const LayoutsFn layouts = [&](int64_t n) { return MinGpusLayouts(model, job, n, gpn); };
  return MinGpusFromPool(model, devices, layouts, std::move(a));
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
      a.ladder.push_back(Step(option, p.estimate, j, &a.notes));
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
  a.reason = BetterOptionsReason(a.ladder, a.value, "the highest-fidelity format fits");
  for (const LadderStep& s : a.ladder) {
    if (s.fits && s.option != a.value) {
      a.reason += fmt::format("; runner-up {}", s.option);
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
      a.ladder.push_back(Step(option, p.estimate, j, &a.notes));
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
        a.reason = BetterOptionsReason(a.ladder, a.value, "full fine-tuning with AdamW fits");
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
  if (e.failure) return std::nullopt;  // an engine that does not start decodes nothing
  std::string mode, runtime;
  for (const auto& [k, v] : e.workload) {
    if (k == "mode" && std::holds_alternative<std::string>(v)) mode = std::get<std::string>(v);
    if (k == "runtime" && std::holds_alternative<std::string>(v)) runtime = std::get<std::string>(v);
  }
  if (mode == "train") return std::nullopt;
  const int64_t tp = EchoInt(e.workload, "tp", 1);
  // Sequences decoding together and the tokens each holds. hf and llama.cpp
  // allocate exactly the tokens held; vLLM's and SGLang's pools are larger
  // than what one sequence holds: one sequence of max_model_len /
  // context_length tokens (at most the pool), and for the batch figure as
  // many as the pool holds at once.
  int64_t seqs = EchoInt(e.workload, "batch", 1);
  int64_t batch_seqs = seqs;
  int64_t held = EchoInt(e.workload, "ctx", 0);
  double pool_share = 1.0, batch_pool_share = 1.0;
  if (runtime == "llamacpp") {
    seqs = batch_seqs = EchoInt(e.workload, "parallel", 1);
    held = EchoInt(e.workload, "n_ctx_seq", 0);
  } else if (runtime == "vllm" || runtime == "sglang") {
    const int64_t cap = e.kv_capacity_tokens.value_or(0);
    if (cap <= 0) return std::nullopt;
    held = std::min(EchoInt(e.workload, runtime == "vllm" ? "max_model_len" : "context_length", cap), cap);
    seqs = 1;
    batch_seqs = std::max<int64_t>(1, cap / std::max<int64_t>(1, held));
    pool_share = static_cast<double>(held) / static_cast<double>(cap);
    batch_pool_share = std::min(1.0, static_cast<double>(batch_seqs * held) / static_cast<double>(cap));
    if (e.state_bytes_per_sequence.value() > 0 && e.kv_max_concurrency.value_or(0) > 0) {
      // A hybrid pool's logged tokens (num_blocks // groups x block) are
      // not the tokens it holds: a request takes 1 / max_concurrency of it.
      batch_seqs = *e.kv_max_concurrency;
      pool_share = 1.0 / static_cast<double>(batch_seqs);
      batch_pool_share = 1.0;
    }
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
      runtime == "vllm" || runtime == "sglang" ? fmt::format("; the batch figure: {} x {}", batch_seqs, held)
                                               : std::string(),
      host_bw > 0 && host_bytes_w + host_bytes_kv > 0
          ? fmt::format(", the layers in host memory at {:.0f} GB/s after the GPU layers", host_bw)
          : std::string());
  return t;
}

}  // namespace vramfit
