// min-gpus as engineers deploy: GPUs come in nodes (--gpus-per-node),
// tensor parallel stays inside a node in powers of two that split the
// attention heads, pipeline stages (training: data parallel with ZeRO/FSDP)
// go across nodes; the answer is the fewest nodes, then the fewest GPUs
// within one node, then tensor over pipeline parallel. docs/estimation.md
// ("planner: min-gpus in nodes").
#include <algorithm>

#include <fmt/format.h>

#include "plan_internal.h"
#include "runtimes/profile.h"

namespace vramfit {

int64_t GpusPerNode(const Job& job, const DeviceSet& devices) {
  if (job.gpus_per_node) return *job.gpus_per_node;
  if (devices.empty()) return 8;
  const GpuSpec& g = devices.gpus[0];
  if (g.form == "soc") return 1;
  if (g.form == "consumer" && devices.size() > 1) return static_cast<int64_t>(devices.size());
  return 8;
}

namespace plan_detail {

bool TakesTp(const Model& model, const Job& job) {
  return !job.training && runtimes::ProfileFor(job.infer.runtime).PreferredTp(model, 1) > 0;
}

int64_t PowerOfTwoTp(const Model& model, int64_t limit) {
  const int64_t heads = model.spec.num_attention_heads;
  const int64_t kvh = model.spec.num_key_value_heads;
  int64_t best = 1;
  for (int64_t p = 2; p <= limit; p *= 2) {
    // vLLM and SGLang: heads % tp == 0, and KV heads divide tp or tp them.
    if (heads > 0 && heads % p != 0) break;
    if (kvh > 0 && (p >= kvh ? p % kvh : kvh % p) != 0) break;
    best = p;
  }
  return best;
}

std::string GpuFlag(const DeviceSet& d) {
  std::string out;
  for (const auto& [name, n] : KindRuns(d)) {
    if (!out.empty()) out += ",";
    out += n > 1 ? fmt::format("{}x{}", name, n) : name;
  }
  return out;
}

namespace {

int64_t CeilDivide(int64_t a, int64_t b) { return (a + b - 1) / b; }

std::vector<Layout> TrainingLayouts(const Job& job, int64_t n) {
  std::vector<Layout> out;
  for (int64_t z : {0, 1, 2, 3}) {
    if (job.train.zero > z || (job.train.fsdp && z != 3)) continue;
    Layout l{n > 1 ? (job.train.fsdp ? std::string("fsdp") : fmt::format("zero {}", z)) : "1 GPU", job, {}};
    l.job.train.gpus.reset();
    if (!job.train.fsdp) l.job.train.zero = n > 1 ? z : job.train.zero;
    if (n > 1 && !job.train.fsdp && z != job.train.zero) l.settings.push_back({"zero", std::to_string(z)});
    out.push_back(std::move(l));
    if (n == 1) break;
  }
  return out;
}

}  // namespace

std::vector<Layout> MinGpusLayouts(const Model& model, const Job& job, int64_t n, int64_t gpn) {
  const int64_t nodes = CeilDivide(n, gpn);
  const std::string where = nodes > 1 ? fmt::format("{} nodes, ", nodes) : "";
  std::vector<Layout> out = job.training ? TrainingLayouts(job, n) : std::vector<Layout>{};
  if (job.training) {
    for (Layout& l : out) l.label = where + l.label;
    return out;
  }
  Layout l{"", job, {}};
  if (TakesTp(model, job)) {
    // The largest power of two within a node that splits the heads and, across
    // nodes, fills each node with whole stages.
    int64_t tp = PowerOfTwoTp(model, std::min(n, gpn));
    while (tp > 1 && (n % tp != 0 || (nodes > 1 && gpn % tp != 0))) tp /= 2;
    l.job.infer.tp = tp;
    l.job.infer.pp = n / tp;
    l.label = where + fmt::format("tp {}{}", tp, n / tp > 1 ? fmt::format(" x pp {}", n / tp) : "");
    if (n > 1 || job.infer.tp != 1) l.settings.push_back({"tp", std::to_string(tp)});
    if (n / tp > 1 || job.infer.pp != 1) l.settings.push_back({"pp", std::to_string(n / tp)});
  } else {
    l.job.infer.tp = 1;
    l.job.infer.pp = 1;  // several GPUs: the runtime splits layers
    l.label = where + (n > 1 ? "layer split" : "1 GPU");
  }
  out.push_back(std::move(l));
  return out;
}

namespace {

// The GPU counts min-gpus tries, in order: within one node every count
// (tensor-parallel runtimes: the powers of two, and the whole node), then
// whole nodes when the job can span them.
std::vector<int64_t> Counts(int64_t gpn, bool tp_runtime, bool spans_nodes) {
  std::vector<int64_t> out;
  for (int64_t n = 1; n <= gpn; ++n) {
    const bool pow2 = (n & (n - 1)) == 0;
    if (!tp_runtime || pow2 || n == gpn) out.push_back(n);
  }
  if (!spans_nodes) return out;
  for (int64_t k = 2; k * gpn <= kMaxParallel; k = k < 16 ? k + 1 : k * 2) out.push_back(k * gpn);
  return out;
}

// Searches the counts below `below` for the first layout that fits.
bool SearchCounts(const Model& model, const Job& job, const GpuSpec& kind, int64_t gpn, int64_t below,
                  FitAnswer* a) {
  const bool tp = TakesTp(model, job);
  for (int64_t n : Counts(gpn, tp, job.training || tp)) {
    if (below > 0 && n >= below) break;
    if (TryLayouts(model, MinGpusLayouts(model, job, n, gpn), n, Repeat(kind, n), a)) return true;
  }
  return false;
}

// A lighter weight format on fewer GPUs than the answer (bf16 on two nodes:
// fp8 on one), up to two of them, fewest nodes first.
void AddAlternatives(const Model& model, const Job& job, const GpuSpec& kind, int64_t gpn, FitAnswer* a) {
  if (job.training) return;
  const runtimes::RuntimeProfile& rt = runtimes::ProfileFor(job.infer.runtime);
  auto w = ResolveInference(model, job.infer, Repeat(kind, 1), nullptr);
  const std::string now = w.ok() ? w->quant.Name() : "";
  for (const std::string& q : rt.FixQuants()) {
    auto f = ParseWeightFormat(q);
    if (!f.ok() || f->Name() == now || a->alternatives.size() >= 2) continue;
    Job j = job;
    j.infer.quant = *f;
    FitAnswer alt;
    // Fewer GPUs than the answer and than any lighter-loss format before it.
    int64_t below = a->found ? a->number : 0;
    for (const FitAnswer::Alternative& x : a->alternatives) below = below > 0 ? std::min(below, x.gpus) : x.gpus;
    if (!SearchCounts(model, j, kind, gpn, below, &alt)) continue;
    FitAnswer::Alternative x;
    x.gpus = alt.number;
    x.nodes = CeilDivide(alt.number, gpn);
    x.option = fmt::format("{} on {}", q, alt.value);
    x.settings = {{"quant", q}};
    x.settings.insert(x.settings.end(), alt.settings.begin(), alt.settings.end());
    const LadderStep& s = alt.ladder.back();
    x.total = s.total;
    x.capacity = s.capacity;
    std::string cost;
    FormatCost(q, &cost);
    x.reason = cost + "; " + s.reason;
    a->alternatives.push_back(std::move(x));
  }
  std::stable_sort(a->alternatives.begin(), a->alternatives.end(),
                   [](const FitAnswer::Alternative& x, const FitAnswer::Alternative& y) { return x.nodes < y.nodes; });
}

void AddTopologyNotes(const Job& job, const DeviceSet& devices, int64_t gpn, FitAnswer* a) {
  const GpuSpec& kind = devices.gpus[0];
  if (a->found && a->estimate && (kind.form == "consumer" || kind.form == "pcie")) {
    for (const auto& [k, v] : a->settings) {
      if (k == "tp" && std::stoll(v) > 2) {
        a->notes.push_back(fmt::format(
            "tp {} over PCIe: {} cards have no NVLink switch (a bridge, where a card has one, joins a pair), so "
            "every layer's all-reduce crosses PCIe and decode runs slower than the bandwidth figure (the memory "
            "is the same); fewer tensor-parallel ranks with pipeline stages (--tp 2 --pp {}) move less data",
            v, kind.name, std::stoll(v) / 2));
      }
    }
  }
  if (!job.gpus_per_node && (!a->found || a->nodes > 1)) {
    const char* why = kind.form == "soc"      ? "one chip per system"
                      : kind.form != "consumer" ? "the 8-GPU server"
                      : devices.size() > 1      ? "consumer cards: the count given"
                                                : "consumer cards: an 8-card server";
    a->notes.push_back(
        fmt::format("a node holds {} x {} ({}); give --gpus-per-node N for another size", gpn, kind.name, why));
  }
}

}  // namespace

Result<FitAnswer> SolveMinGpusTopology(const Model& model, const Job& job, const DeviceSet& devices,
                                       FitAnswer a) {
  const GpuSpec kind = devices.gpus[0];
  const int64_t gpn = GpusPerNode(job, devices);
  a.gpus_per_node = gpn;
  const bool spans = job.training || TakesTp(model, job);
  if (SearchCounts(model, job, kind, gpn, 0, &a)) {
    a.nodes = CeilDivide(a.number, gpn);
    a.reason = "fits on one GPU";
    if (a.ladder.size() >= 2) {
      const LadderStep& prev = a.ladder[a.ladder.size() - 2];
      a.reason = fmt::format("{}: {}", prev.option, prev.reason);
    }
  } else {
    a.value = "none";
    const std::string last = a.ladder.empty() ? std::string() : a.ladder.back().reason;
    a.reason = spans ? fmt::format("no count of {} up to {} fits ({})", kind.name, kMaxParallel, last)
                     : fmt::format("one node of {} x {} does not fit ({}); {} splits layers within one machine",
                                   gpn, kind.name, last, RuntimeName(job.infer.runtime));
  }
  AddAlternatives(model, job, kind, gpn, &a);
  AddTopologyNotes(job, devices, gpn, &a);
  return a;
}

}  // namespace plan_detail

}  // namespace vramfit
