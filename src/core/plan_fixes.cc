// The planner's fixes: single changes that make a job fit (or fit better),
// and when none of them fits, combinations of two or three, each estimated
// and ranked by what it costs the user. docs/estimation.md ("planner:
// fixes").
#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>

#include <fmt/format.h>

#include "plan_internal.h"
#include "vramfit/check.h"
#include "runtimes/profile.h"

namespace vramfit {

namespace plan_detail {

std::string FlagsText(const Settings& settings) {
  std::string out;
  for (const auto& [k, v] : settings) out += fmt::format("{}--{} {}", out.empty() ? "" : " ", k, v);
  return out;
}

Job LaidOut(const Model& model, const Job& job, int64_t n, Settings* settings) {
  std::vector<Layout> ls = MinGpusLayouts(model, job, n, job.gpus_per_node.value_or(8));
  Layout& l = ls.front();
  for (auto& s : l.settings) {
    if (n > 1 || job.infer.tp != 1 || job.infer.pp != 1) settings->push_back(s);
  }
  return l.job;
}

int FormatCost(const std::string& quant, std::string* text) {
  const std::string q = Lower(quant);
  const auto has = [&](std::string_view s) { return q.find(s) != std::string::npos; };
  if (q == "none" || q == "bf16" || q == "f16" || q == "fp16") {
    *text = fmt::format("16-bit weights ({})", quant);
    return 0;
  }
  if (has("8") || q == "q6_k") {
    *text = fmt::format("8-bit weights ({}): near-lossless", quant);
    return 1;
  }
  if (has("q5") || has("q6")) {
    *text = fmt::format("5- to 6-bit weights ({}): slight quality loss", quant);
    return 2;
  }
  if (has("4") || has("nf4") || has("fp4")) {
    *text = fmt::format("4-bit weights ({}): small quality loss", quant);
    return 3;
  }
  *text = fmt::format("3-bit or fewer ({}): noticeable quality loss", quant);
  return 6;
}

}  // namespace plan_detail

namespace {

using namespace plan_detail;

// Largest power of two <= n (n >= 1).
int64_t PowerOfTwoBelow(int64_t n) {
  int64_t p = 1;
  while (p <= n / 2) p *= 2;
  return p;
}

// One change a fix can make: it edits the job (and the settings that say
// so); `gpus` > 0 puts the job on that many GPUs of the kind; `offload`
// searches llama.cpp's --gpu-layers last. A combination takes at most one
// change of each kind.
struct Change {
  std::function<void(Job&, Settings&)> apply;
  unsigned kinds = 0;
  int64_t gpus = 0;
  bool offload = false;
  int cost = 0;  // of the change alone (orders the combinations before estimating them)
};

enum Kind : unsigned {
  kQuant = 1u << 0, kKv = 1u << 1, kCtx = 1u << 2, kBatch = 1u << 3, kGpus = 1u << 4, kRuntimeKind = 1u << 5,
  kOffloadKind = 1u << 6, kCkpt = 1u << 7, kOptim = 1u << 8, kSeq = 1u << 9, kLoss = 1u << 10,
  kMethod = 1u << 11, kZero = 1u << 12, kOptOffload = 1u << 13,
};

// Sets key to value, replacing an earlier value of the same key.
void Put(Settings& s, const std::string& key, const std::string& value) {
  for (auto& [k, v] : s) {
    if (k == key) {
      v = value;
      return;
    }
  }
  s.push_back({key, value});
}

// What the job was: the numbers a fix's cost is measured against.
struct Base {
  const Model& model;
  const Job& job;
  const DeviceSet& devices;
  const Estimate& current;
  int64_t ctx = 0;     // tokens per sequence (inference) or per sample (training)
  int64_t batch = 1;
  int64_t layers = 0;  // repeating layers (llama.cpp -ngl counts them)
};

// What a set of settings costs the user: one phrase per part, and points
// (quality of the weight format 0-6, KV dtype 1, each halving of the context
// or the batch 2, each extra GPU 3, another GPU kind 6 per GPU (a larger kind: AddOtherKind), a runtime
// switch 1, layers in host memory 6; training: checkpointing, an 8-bit
// optimizer, ZeRO-3 and accumulation 1, LoRA 2, QLoRA 4, shorter samples 4,
// optimizer offload 3).
int CostOf(const Settings& set, const Base& b, std::vector<std::string>* texts) {
  int points = 0;
  bool kv_seen = false;
  const auto add = [&](int p, std::string t) {
    points += p;
    texts->push_back(std::move(t));
  };
  const auto halvings = [](int64_t from, int64_t to) {
    return to >= from || to <= 0 ? 0 : static_cast<int>(std::ceil(std::log2(static_cast<double>(from) / static_cast<double>(to))));
  };
  for (const auto& [k, v] : set) {
    if (k == "quant") {
      std::string t;
      const int p = FormatCost(v, &t);
      add(p, t);
    } else if ((k == "kv-dtype" || k == "cache-type-k" || k == "cache-type-v") && !kv_seen) {
      kv_seen = true;
      add(1, fmt::format("KV cache in {}: slight quality loss", v));
    } else if (k == "ctx" || k == "max-model-len" || k == "context-length") {
      const int64_t t = std::stoll(v);
      if (t < b.ctx) add(2 * halvings(b.ctx, t), fmt::format("context {} tokens instead of {}", Thousands(t), Thousands(b.ctx)));
    } else if (k == "batch") {
      const int64_t t = std::stoll(v);
      if (b.job.training) add(1, fmt::format("micro-batch {} with more accumulation: same effective batch, slower steps", t));
      else add(2 * halvings(b.batch, t), fmt::format("{} concurrent sequences instead of {}", t, b.batch));
    } else if (k == "gpu") {
      const GpuSpec& g = b.devices.gpus[0];
      const std::string prefix = g.name + "x";
      const bool same = v == g.name || v.rfind(prefix, 0) == 0;
      const size_t x = v.rfind('x');
      int64_t count = 1;
      if (x != std::string::npos && x + 1 < v.size() && std::isdigit(static_cast<unsigned char>(v[x + 1]))) {
        count = std::stoll(v.substr(x + 1));
      }
      const int64_t extra = count - static_cast<int64_t>(b.devices.size());
      if (same) add(3 * static_cast<int>(extra), fmt::format("{} more {}", extra, g.name));
      else add(6 * static_cast<int>(count), fmt::format("{} instead of {}", v, GpuFlag(b.devices)));
    } else if (k == "runtime") {
      add(1, fmt::format("switch to {}", v));
    } else if (k == "gpu-layers") {
      add(6, fmt::format("{} of {} layers on the GPU, the rest in host memory: decode at host-memory speed", v, b.layers));
    } else if (k == "grad-ckpt") {
      add(1, "checkpointing: about a third more compute per step");
    } else if (k == "optimizer") {
      add(1, fmt::format("{}: 8-bit optimizer states", v));
    } else if (k == "seq") {
      add(2 * halvings(b.ctx, std::stoll(v)), fmt::format("samples of {} tokens instead of {}", v, b.ctx));
    } else if (k == "loss") {
      add(0, fmt::format("{} loss: the same loss in less memory", v));
    } else if (k == "method") {
      add(v == "qlora" ? 4 : 2, v == "qlora" ? "QLoRA: adapters over a 4-bit base" : "LoRA adapters instead of full weights");
    } else if (k == "zero") {
      add(1, "ZeRO-3: more communication per step");
    } else if (k == "offload") {
      add(3, fmt::format("{} in host memory: slower steps", v));
    }
  }
  return points;
}

// The inference changes: shorter context, smaller batch, a smaller KV type,
// lighter weight formats, twice the GPUs, llama.cpp with partial offload.
std::vector<Change> InferenceChanges(const Base& b, const InferenceWorkload& w) {
  const runtimes::RuntimeProfile& rt = runtimes::ProfileFor(b.job.infer.runtime);
  std::vector<Change> out;
  const auto ctx_change = [&](int64_t tokens) {
    out.push_back({[tokens](Job& j, Settings& s) {
                     const runtimes::RuntimeProfile& p = runtimes::ProfileFor(j.infer.runtime);
                     p.SetContext(j.infer, tokens);
                     Put(s, p.ContextFlag(), std::to_string(tokens));
                   },
                   kCtx});
  };
  // llama.cpp in place of a PyTorch runtime: a 4-bit GGUF, the context kept,
  // and as many layers on the GPU as fit.
  if (b.job.infer.runtime != Runtime::kLlamaCpp) {
    const int64_t ctx = b.ctx;
    out.push_back({[ctx](Job& j, Settings& s) {
                     InferenceSettings next;
                     next.runtime = Runtime::kLlamaCpp;
                     next.dtype = j.infer.dtype;
                     next.batch = j.infer.batch;
                     next.ctx = ctx;
                     next.quant = *ParseWeightFormat("Q4_K_M");
                     j.infer = next;
                     Put(s, "runtime", "llamacpp");
                     Put(s, "quant", "Q4_K_M");
                     Put(s, "ctx", std::to_string(ctx));
                   },
                   kRuntimeKind | kQuant | kKv, 0, true});
  }
  if (rt.SizesKvPool() && b.ctx > 1) {
    // The pool holds what is left: the longest context whose sequences it
    // holds (the engine's own "estimated maximum model length"), and the
    // largest power of two below it, the number people type.
    const ProbeFn probe = [&](int64_t v) {
      Job j = b.job;
      rt.SetContext(j.infer, v);
      return Try(b.model, j, b.devices);
    };
    const SearchResult r = LargestFitting(1, b.ctx - 1, probe);
    if (r.best > 0) {
      const int64_t pow2 = PowerOfTwoBelow(r.best);
      ctx_change(pow2);
      if (pow2 != r.best) ctx_change(r.best);
    }
  } else {
    for (int64_t div : {2, 4}) {
      if (w.ctx / div >= 1) ctx_change(w.ctx / div);
    }
  }
  if (w.batch > 1) {
    const int64_t half = w.batch / 2;
    out.push_back({[half](Job& j, Settings& s) {
                     j.infer.batch = half;
                     Put(s, "batch", std::to_string(half));
                   },
                   kBatch});
  }
  // The runtime's first smaller KV type, when it saves bytes per element.
  if (const std::vector<std::string> kvs = rt.KvLadder(); !kvs.empty()) {
    const auto d = ParseDType(kvs.front());
    const DTypeInfo& now = Info(w.kv_dtype);
    if (d && Info(*d).block_bytes * now.block_elems < now.block_bytes * Info(*d).block_elems) {
      const std::string kv = kvs.front();
      out.push_back({[&rt, kv](Job& j, Settings& s) {
                       rt.ApplyKv(j.infer, kv);
                       for (const auto& [k, v] : rt.KvSettings(kv)) Put(s, k, v);
                     },
                     kKv});
    }
  }
  for (const std::string& q : rt.FixQuants()) {
    auto f = ParseWeightFormat(q);
    if (!f.ok() || f->Name() == w.quant.Name()) continue;
    const WeightFormat wf = *f;
    out.push_back({[wf, q](Job& j, Settings& s) {
                     j.infer.quant = wf;
                     Put(s, "quant", q);
                   },
                   kQuant});
  }
  if (b.job.infer.runtime == Runtime::kLlamaCpp) out.push_back({[](Job&, Settings&) {}, kOffloadKind, 0, true});
  return out;
}

// The training changes: checkpointing, an 8-bit optimizer, a smaller
// micro-batch, shorter samples, a smaller loss, LoRA / QLoRA, ZeRO-3,
// optimizer offload.
std::vector<Change> TrainingChanges(const Base& b, const TrainingWorkload& rw) {
  const TrainingSettings& s = b.job.train;
  std::vector<Change> out;
  const auto simple = [&](unsigned kind, std::string key, std::string value, std::function<void(Job&)> f) {
    out.push_back({[key, value, f](Job& j, Settings& set) {
                     f(j);
                     Put(set, key, value);
                   },
                   kind});
  };
  if (rw.grad_ckpt == GradCkpt::kNone) {
    simple(kCkpt, "grad-ckpt", "full", [](Job& j) { j.train.grad_ckpt = GradCkpt::kFull; });
  }
  if (rw.optimizer == Optimizer::kAdamW) {
    simple(kOptim, "optimizer", "adamw-8bit", [](Job& j) { j.train.optimizer = Optimizer::kAdamW8bit; });
  }
  if (s.batch > 1) {
    const int64_t half = s.batch / 2, accum = s.grad_accum * 2;
    out.push_back({[half, accum](Job& j, Settings& set) {
                     j.train.batch = half;
                     j.train.grad_accum = accum;
                     Put(set, "batch", std::to_string(half));
                     Put(set, "grad-accum", std::to_string(accum));
                   },
                   kBatch});
  }
  if (s.seq > 1) {
    const int64_t half = s.seq / 2;
    simple(kSeq, "seq", std::to_string(half), [half](Job& j) { j.train.seq = half; });
  }
  if (const auto smaller = StackSmallerLoss(s.stack, rw.loss)) {
    const LossImpl l = *smaller;
    simple(kLoss, "loss", LossName(l), [l](Job& j) { j.train.loss = l; });
  }
  if (s.method == TrainMethod::kFull) {
    simple(kMethod, "method", "lora", [](Job& j) { j.train.method = TrainMethod::kLora; });
  }
  if (s.method != TrainMethod::kQlora) {
    simple(kMethod, "method", "qlora", [](Job& j) {
      j.train.method = TrainMethod::kQlora;
      j.train.quant.reset();
    });
  }
  if (b.devices.size() > 1 && s.zero < 3 && !s.fsdp) {
    simple(kZero, "zero", "3", [](Job& j) { j.train.zero = 3; });
  }
  if ((s.zero > 0 || s.fsdp) && s.offload == Offload::kNone) {
    simple(kOptOffload, "offload", "optimizer", [](Job& j) { j.train.offload = Offload::kOptimizer; });
  }
  return out;
}

// Twice the GPUs of the kind (training: with ZeRO-3 when it had no sharding).
Change MoreGpus(const Base& b) {
  const int64_t n = 2 * static_cast<int64_t>(b.devices.size());
  if (!b.job.training) return {[](Job&, Settings&) {}, kGpus, n};
  const bool shard = b.job.train.zero == 0 && !b.job.train.fsdp;
  return {[shard](Job& j, Settings& s) {
            j.train.gpus.reset();
            if (shard) {
              j.train.zero = 3;
              Put(s, "zero", "3");
            }
          },
          kGpus | (shard ? kZero : 0u), n};
}

// Estimates the changes together: the job, its layout on the GPUs, and for
// llama.cpp the most layers on the GPU that fit. nullopt: an error.
std::optional<Fix> Evaluate(const Base& b, const std::vector<const Change*>& set) {
  Job j = b.job;
  Settings s;
  int64_t count = static_cast<int64_t>(b.devices.size());
  bool offload = false;
  for (const Change* c : set) {
    c->apply(j, s);
    if (c->gpus > 0) count = c->gpus;
    offload = offload || c->offload;
  }
  const GpuSpec& g = b.devices.gpus[0];
  DeviceSet d = b.devices;
  if (count != static_cast<int64_t>(b.devices.size())) {
    d = Repeat(g, count);
    Settings layout = {{"gpu", fmt::format("{}x{}", g.name, count)}};
    if (!j.training) j = LaidOut(b.model, j, count, &layout);
    s.insert(s.begin(), layout.begin(), layout.end());
  }
  Probe p = Try(b.model, j, d);
  if (offload && !p.fits && b.layers > 0) {
    const ProbeFn probe = [&](int64_t v) {
      Job k = j;
      k.infer.llamacpp.gpu_layers = v;
      return Try(b.model, k, d);
    };
    const SearchResult r = LargestFitting(1, b.layers, probe);
    if (r.best > 0) {
      j.infer.llamacpp.gpu_layers = r.best;
      Put(s, "gpu-layers", std::to_string(r.best));
      p = Probe{true, *r.at_best, j};
    }
  }
  if (!p.estimate.ok()) return std::nullopt;
  Fix f;
  f.change = FlagsText(s);
  f.settings = std::move(s);
  f.total = p.estimate->total;
  f.saves = b.current.total - p.estimate->total;
  f.fits = p.fits;
  f.changes = static_cast<int>(set.size());
  f.cost = CostOf(f.settings, b, &f.costs);
  return f;
}

// The cost of a change alone, as it would set its settings on the job
// (before any --gpu-layers search).
int StaticCost(const Base& b, const Change& c) {
  Job j = b.job;
  Settings s;
  c.apply(j, s);
  if (c.gpus > 0) s.push_back({"gpu", fmt::format("{}x{}", b.devices.gpus[0].name, c.gpus)});
  std::vector<std::string> texts;
  return CostOf(s, b, &texts);  // a lower bound: layers left in host memory add to it
}

// Whether a fix leaves layers in host memory (a set that adds GPUs to it may
// keep them all on the GPUs: not dominated by it).
bool Offloads(const Fix& f) {
  return std::any_of(f.settings.begin(), f.settings.end(), [](const auto& kv) { return kv.first == "gpu-layers"; });
}

// Combinations of two or three changes (one per kind), cheapest first, that
// cost less than `cutoff` and contain no set known to fit: estimated until
// three fit or the budget of estimates is spent.
void AddCombinations(const Base& b, const std::vector<Change>& changes, int cutoff,
                     std::vector<std::vector<size_t>> fitting, std::vector<Fix>* fixes) {
  struct Candidate {
    std::vector<size_t> idx;
    int cost;
  };
  std::vector<Candidate> cands;
  const size_t n = changes.size();
  for (size_t i = 0; i < n; ++i) {
    for (size_t k = i + 1; k < n; ++k) {
      if (changes[i].kinds & changes[k].kinds) continue;
      cands.push_back({{i, k}, changes[i].cost + changes[k].cost});
      for (size_t m = k + 1; m < n; ++m) {
        if ((changes[i].kinds | changes[k].kinds) & changes[m].kinds) continue;
        cands.push_back({{i, k, m}, changes[i].cost + changes[k].cost + changes[m].cost});
      }
    }
  }
  std::stable_sort(cands.begin(), cands.end(), [](const Candidate& x, const Candidate& y) {
    return x.cost != y.cost ? x.cost < y.cost : x.idx.size() < y.idx.size();  // fewer changes at equal cost
  });
  constexpr int kMaxFound = 3, kMaxEstimated = 96;
  int found = 0, estimated = 0;
  for (const Candidate& c : cands) {
    if (found >= kMaxFound || estimated >= kMaxEstimated || c.cost >= cutoff) break;
    const bool dominated = std::any_of(fitting.begin(), fitting.end(), [&](const std::vector<size_t>& f) {
      return std::all_of(f.begin(), f.end(), [&](size_t i) { return std::count(c.idx.begin(), c.idx.end(), i) > 0; });
    });
    if (dominated) continue;
    std::vector<const Change*> set;
    for (size_t i : c.idx) set.push_back(&changes[i]);
    ++estimated;
    auto f = Evaluate(b, set);
    if (!f || !f->fits || f->cost >= cutoff) continue;
    if (!Offloads(*f)) fitting.push_back(c.idx);
    ++found;
    fixes->push_back(std::move(*f));
  }
}

// The smallest other GPU kind with more memory than the first GPU on which
// the job fits, as many as it has now.
void AddOtherKind(const Base& b, const std::vector<GpuSpec>& others, std::vector<Fix>* fixes) {
  const GpuSpec& g = b.devices.gpus[0];
  const int64_t n = static_cast<int64_t>(b.devices.size());
  std::vector<const GpuSpec*> larger;
  for (const GpuSpec& o : others) {
    // Same vendor and the same memory kind: a discrete card is not offered
    // a unified-memory machine (Jetson, DGX Spark), nor the reverse.
    if (o.vendor == g.vendor && o.unified_memory == g.unified_memory && o.capacity > g.capacity &&
        o.name != g.name) {
      larger.push_back(&o);
    }
  }
  std::stable_sort(larger.begin(), larger.end(),
                   [](const GpuSpec* x, const GpuSpec* y) { return x->capacity < y->capacity; });
  for (const GpuSpec* o : larger) {
    Settings set = {{"gpu", n > 1 ? fmt::format("{}x{}", o->name, n) : o->name}};
    const Job j = LaidOut(b.model, b.job, n, &set);
    Probe p = Try(b.model, j, Repeat(*o, n));
    if (!p.fits) continue;
    Fix f;
    f.change = FlagsText(set);
    f.settings = std::move(set);
    f.total = p.estimate->total;
    f.saves = b.current.total - p.estimate->total;
    f.fits = true;
    // Money: a GPU with k times the memory costs at least as much as k of
    // the cards it replaces (3 points each, as an extra GPU).
    const double ratio = static_cast<double>(o->capacity.value()) / static_cast<double>(g.capacity.value());
    f.cost = 3 * static_cast<int>(n) * static_cast<int>(std::ceil(ratio));
    f.costs = {fmt::format("{} x {} ({:.1f}x the memory of a {}) instead of {}", n, o->name, ratio, g.name,
                           GpuFlag(b.devices))};
    fixes->push_back(std::move(f));
    return;
  }
}

}  // namespace

std::vector<Fix> SuggestFixes(const Model& model, const Job& job, const DeviceSet& devices,
                              const Estimate& current, const std::vector<GpuSpec>* other_gpus) {
  std::vector<Fix> fixes;
  if (devices.empty()) return fixes;
  Base b{model, job, devices, current};
  b.layers = model.spec.num_hidden_layers;
  std::vector<Change> changes;
  if (!job.training) {
    auto w = ResolveInference(model, job.infer, devices, nullptr);
    if (!w.ok()) return fixes;
    b.ctx = runtimes::ProfileFor(job.infer.runtime).ContextOf(*w);
    b.batch = w->batch;
    changes = InferenceChanges(b, *w);
  } else {
    auto rw = ResolveTraining(model, job.train, devices, nullptr);
    if (!rw.ok()) return fixes;
    b.ctx = job.train.seq;
    b.batch = job.train.batch;
    changes = TrainingChanges(b, *rw);
  }
  if (!IsApple(b.devices.gpus[0])) changes.push_back(MoreGpus(b));  // a Mac has one GPU: no "more of the same"
  // Each change alone, then (cheaper than any single change that fits) two or three together.
  int cutoff = 1 << 20;
  std::vector<std::vector<size_t>> fitting;
  for (size_t i = 0; i < changes.size(); ++i) {
    changes[i].cost = StaticCost(b, changes[i]);
    auto f = Evaluate(b, {&changes[i]});
    if (!f || (f->saves.value() <= 0 && !f->fits)) continue;
    if (f->fits) {
      cutoff = std::min(cutoff, f->cost);
      if (!Offloads(*f)) fitting.push_back({i});
    }
    fixes.push_back(std::move(*f));
  }
  AddCombinations(b, changes, cutoff, fitting, &fixes);
  if (other_gpus != nullptr && !job.training) AddOtherKind(b, *other_gpus, &fixes);
  std::stable_sort(fixes.begin(), fixes.end(), [](const Fix& x, const Fix& y) {
    if (x.fits != y.fits) return x.fits;
    if (x.fits) return x.cost < y.cost;
    return x.saves > y.saves;
  });
  return fixes;
}

}  // namespace vramfit
