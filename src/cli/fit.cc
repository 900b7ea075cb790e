// `vramfit fit`: the planner's frontend (answers, GPU rankings, sweeps).
#include <algorithm>
#include <ostream>

#include <fmt/format.h>

#include "cli/cli.h"
#include "vramfit/io/source.h"

namespace vramfit::cli {

int ReportError(const Error& e, bool json, std::ostream& out, std::ostream& err) {
  if (json) out << RenderErrorJson(e);
  err << "vramfit: error: " << e.message << "\n";
  if (e.kind == ErrorKind::kDoesNotFit) return 3;  // as an estimate that does not fit
  return e.kind == ErrorKind::kInvalidArgument || e.kind == ErrorKind::kNotFound ? 2 : 1;
}

bool HasTrainingFlags(const RawFlags& f) {
  return f.method || f.precision || f.optimizer || f.optimizer_impl || f.seq || f.grad_ckpt || f.lora_rank ||
         f.lora_targets || f.zero || f.gpus_dp || f.offload || f.grad_accum || f.loss || f.trainable_layers || f.fsdp;
}

Result<Job> ToJob(const RawFlags& f, bool training) {
  Job j;
  j.training = training || HasTrainingFlags(f);
  if (j.training) {
    auto t = ToTrainingSettings(f);
    if (!t.ok()) return t.error();
    j.train = *t;
  } else {
    auto i = ToInferenceSettings(f);
    if (!i.ok()) return i.error();
    j.infer = *i;
  }
  return j;
}

namespace {

// Applies KEY=VALUE to a copy of the flags, as if given on the command line.
Status SetFlag(RawFlags& f, const std::string& key, const std::string& value) {
  std::optional<std::string>* slot = nullptr;
  const std::pair<const char*, std::optional<std::string> RawFlags::*> kKeys[] = {
      {"ctx", &RawFlags::ctx},         {"batch", &RawFlags::batch},
      {"prompt", &RawFlags::prompt},   {"new", &RawFlags::new_tokens},
      {"quant", &RawFlags::quant},     {"dtype", &RawFlags::dtype},
      {"kv-dtype", &RawFlags::kv_dtype}, {"attn", &RawFlags::attn},
      {"tp", &RawFlags::tp},           {"pp", &RawFlags::pp},
      {"seq", &RawFlags::seq},         {"method", &RawFlags::method},
      {"optimizer", &RawFlags::optimizer}, {"precision", &RawFlags::precision},
      {"grad-ckpt", &RawFlags::grad_ckpt}, {"lora-rank", &RawFlags::lora_rank},
      {"zero", &RawFlags::zero},       {"gpus", &RawFlags::gpus_dp},
      {"max-model-len", &RawFlags::max_model_len}, {"gpu-mem-util", &RawFlags::gpu_mem_util},
      {"ubatch", &RawFlags::ubatch},   {"gpu-layers", &RawFlags::gpu_layers},
      {"cache-type-k", &RawFlags::cache_type_k}, {"cache-type-v", &RawFlags::cache_type_v},
  };
  if (key == "gpu") {
    f.gpus = {value};
    return {};
  }
  if (key == "runtime") {
    f.runtime = value;
    return {};
  }
  for (const auto& [name, member] : kKeys) {
    if (key == name) slot = &(f.*member);
  }
  if (slot == nullptr) {
    return InvalidArgument(fmt::format(
        "--sweep: unknown key '{}' (expected ctx, batch, prompt, new, gpu, quant, dtype, kv-dtype, attn, tp, pp, "
        "runtime, seq, method, optimizer, precision, grad-ckpt, lora-rank, zero, gpus, max-model-len, gpu-mem-util, "
        "ubatch, gpu-layers, cache-type-k, cache-type-v)",
        key));
  }
  *slot = value;
  return {};
}

struct SweepAxis {
  std::string key;
  std::vector<std::string> values;
};

Result<std::vector<SweepAxis>> ParseSweep(const std::vector<std::string>& specs) {
  std::vector<SweepAxis> axes;
  size_t cells = 1;
  for (const std::string& s : specs) {
    const size_t eq = s.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 >= s.size()) {
      return InvalidArgument(fmt::format("--sweep: expected KEY=V1,V2,..., got '{}'", s));
    }
    SweepAxis a;
    a.key = s.substr(0, eq);
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
    if (cells > 10000) return InvalidArgument("--sweep: more than 10,000 combinations");
    axes.push_back(std::move(a));
  }
  return axes;
}

}  // namespace

int RunFitCommand(const RawFlags& flags, const FitFlags& fit, const std::string& model_ref, Units units,
                  std::ostream& out, std::ostream& err) {
  const bool json = flags.json;
  const auto fail = [&](const Error& e) { return ReportError(e, json, out, err); };
  std::vector<std::string> notes;
  auto model = LoadModel(model_ref, ModelCatalog::Builtin(), &notes);
  if (!model.ok()) return fail(model.error());

  // --sweep: a grid of estimates.
  if (!fit.sweep.empty()) {
    if (fit.solve) return fail(InvalidArgument("--sweep: give either --sweep or --solve, not both"));
    auto axes = ParseSweep(fit.sweep);
    if (!axes.ok()) return fail(axes.error());
    std::vector<SweepCell> cells;
    std::vector<size_t> idx(axes->size(), 0);
    while (true) {
      RawFlags f = flags;
      SweepCell cell;
      for (size_t a = 0; a < axes->size(); ++a) {
        const std::string& v = (*axes)[a].values[idx[a]];
        cell.keys.push_back({(*axes)[a].key, v});
        Status st = SetFlag(f, (*axes)[a].key, v);
        if (!st.ok()) return fail(st.error());
      }
      auto job = ToJob(f, false);
      Result<Estimate> e = Error{};
      if (job.ok()) {
        auto devices = ToDevices(f, GpuCatalog::Builtin());
        // A cell shows its total and verdict only: numbers-only estimates.
        e = devices.ok() ? EstimateJob(*model, *job, *devices, EstimateOptions{.formulas = false})
                         : Result<Estimate>(devices.error());
      } else {
        e = job.error();
      }
      if (e.ok()) {
        cell.fits = Fits(*e, *job);
        cell.estimate = std::move(e.value());
      } else {
        cell.error = e.error().message;
      }
      cells.push_back(std::move(cell));
      size_t a = axes->size();
      while (a > 0) {
        --a;
        if (++idx[a] < (*axes)[a].values.size()) break;
        idx[a] = 0;
        if (a == 0) { a = SIZE_MAX; break; }
      }
      if (a == SIZE_MAX) break;
    }
    out << (fit.csv ? RenderSweepCsv(cells) : json ? RenderSweepJson(cells) : RenderSweepText(cells, units));
    return 0;
  }

  if (!fit.solve && !(flags.gpus.size() == 1 && flags.gpus[0] == "all")) {
    return fail(InvalidArgument("fit: give --solve max-batch|max-context|min-gpus|best-quant|best-method, "
                                "--sweep KEY=V1,V2,..., or --gpu all"));
  }
  Solve solve = Solve::kMinGpus;
  if (fit.solve) {
    auto s = ParseSolve(*fit.solve);
    if (!s.ok()) return fail(s.error());
    solve = *s;
  }
  auto job = ToJob(flags, solve == Solve::kBestMethod);
  if (!job.ok()) return fail(job.error());

  // --gpu all, or several GPU kinds with min-gpus: rank the kinds.
  std::vector<GpuSpec> kinds;
  const bool all = flags.gpus.size() == 1 && flags.gpus[0] == "all";
  if (all) {
    kinds = GpuCatalog::Builtin().gpus();
  } else {
    auto devices = ToDevices(flags, GpuCatalog::Builtin());
    if (!devices.ok()) return fail(devices.error());
    if (devices->empty()) return fail(InvalidArgument(fmt::format("--solve {}: give --gpu", SolveName(solve))));
    // min-gpus over one of each of several kinds ("--gpu A100-80GB,RTX-4090")
    // ranks the kinds. Anything else goes to the planner as given, a list
    // with counts ("--gpu H100-80GBx2,RTX-4090x4") being the set the user
    // has, of which it picks the smallest part that fits.
    const auto& g = devices->gpus;
    const bool each_once = std::all_of(g.begin(), g.end(), [&](const GpuSpec& x) {
      return std::count_if(g.begin(), g.end(), [&](const GpuSpec& y) { return y.name == x.name; }) == 1;
    });
    if (solve == Solve::kMinGpus && g.size() > 1 && each_once) {
      kinds = g;
    } else {
      auto a = Plan(*model, *job, *devices, solve);
      if (!a.ok()) return fail(a.error());
      out << (json ? RenderFitJson(*a) : RenderFitText(*a, units));
      return a->found ? 0 : 3;
    }
  }
  if (all && solve != Solve::kMinGpus) {
    return fail(InvalidArgument("--gpu all: ranks GPUs by --solve min-gpus"));
  }
  std::vector<GpuRank> ranks;
  for (const GpuSpec& g : kinds) {
    DeviceSet one;
    one.gpus.push_back(g);
    auto a = Plan(*model, *job, one, Solve::kMinGpus);
    if (!a.ok()) return fail(a.error());
    GpuRank r{g, std::move(a.value()), std::nullopt};
    if (r.answer.found && r.answer.estimate) {
      DeviceSet set;
      set.gpus.assign(static_cast<size_t>(r.answer.number), g);
      r.throughput = EstimateThroughput(*model, *r.answer.estimate, set);
    }
    ranks.push_back(std::move(r));
  }
  // Fewest GPUs first, then the faster decode.
  std::stable_sort(ranks.begin(), ranks.end(), [](const GpuRank& a, const GpuRank& b) {
    if (a.answer.found != b.answer.found) return a.answer.found;
    if (a.answer.number != b.answer.number) return a.answer.number < b.answer.number;
    const double ta = a.throughput ? a.throughput->decode_tokens_per_s : 0;
    const double tb = b.throughput ? b.throughput->decode_tokens_per_s : 0;
    return ta > tb;
  });
  out << (json ? RenderGpuRankJson(ranks) : RenderGpuRankText(ranks, units));
  return 0;
}

}  // namespace vramfit::cli
