// `vramfit check` (include/vramfit/app/check.h): the job a log describes,
// completed by flags, estimated and compared with what the engine printed.
#include "vramfit/app/check.h"
#include "vramfit/check.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "vramfit/app/app.h"
#include "vramfit/catalog.h"
#include "vramfit/io/source.h"
#include "vramfit/plan.h"
#include "vramfit/runtime.h"

namespace vramfit::app {

namespace {

// The runtime profile an engine's log is estimated with, looked up by name
// in the registry (so a profile added later, e.g. sglang, is picked up).
std::optional<Runtime> RuntimeNamed(std::string_view name) {
  for (Runtime r : AllRuntimes()) {
    if (name == RuntimeName(r)) return r;
  }
  return std::nullopt;
}

const char* EngineRuntime(io::LogFormat f) {
  switch (f) {
    case io::LogFormat::kLlamaCpp: return "llamacpp";
    case io::LogFormat::kVllm: return "vllm";
    case io::LogFormat::kSglang: return "sglang";
    default: return nullptr;
  }
}

// "NVIDIA GeForce RTX 4090" x2 -> "RTX-4090x2"; nullopt if any is not in the catalog.
std::optional<std::string> GpuSetting(const std::vector<std::string>& names, std::vector<std::string>* notes) {
  if (names.empty()) return std::nullopt;
  std::vector<std::string> canon;
  for (const std::string& n : names) {
    const GpuSpec* g = GpuCatalog::Builtin().Find(n);
    if (g == nullptr) {
      notes->push_back(fmt::format("the log's GPU '{}' is not in the GPU catalog: give --gpu to judge the fit", n));
      return std::nullopt;
    }
    canon.push_back(g->name);
  }
  if (std::all_of(canon.begin(), canon.end(), [&](const std::string& c) { return c == canon[0]; })) {
    return canon.size() == 1 ? canon[0] : fmt::format("{}x{}", canon[0], canon.size());
  }
  return fmt::format("{}", fmt::join(canon, ","));
}

bool SameValue(const std::string& a, const std::string& b) {
  if (a == b) return true;
  char* ea = nullptr;
  char* eb = nullptr;
  const double x = std::strtod(a.c_str(), &ea);
  const double y = std::strtod(b.c_str(), &eb);
  return !a.empty() && !b.empty() && *ea == '\0' && *eb == '\0' && x == y;
}

// Whether setting s can apply to a job of this kind on this runtime.
std::string WhyNot(const Setting& s, bool training, std::optional<Runtime> runtime) {
  if (s.scope & (kOutput | kPlanner)) return "not a job setting";
  if (training) return s.scope & (kTraining | kAdapters | kFreeze) ? "" : "applies to inference, not training";
  if (s.scope & kInference) return "";
  if (s.scope & kRuntime) {
    if (runtime && RuntimeTakes(*runtime, s.name)) return "";
    return fmt::format("--runtime {} does not take it", runtime ? RuntimeName(*runtime) : "hf");
  }
  return "applies to training, not inference";
}

struct Candidate {
  std::string name, value, source;
};

std::vector<Candidate> LogCandidates(const io::EngineLog& log, std::vector<std::string>* notes) {
  std::vector<Candidate> out;
  for (const io::LogSetting& s : log.settings) out.push_back({s.name, s.value, "log " + s.source});
  for (const auto& [k, v] : log.record_args) out.push_back({k, v, "the record's vramfit.args"});
  if (auto g = GpuSetting(log.gpu_names, notes)) {
    out.push_back({"gpu", *g, fmt::format("the log's device list ({})", fmt::join(log.gpu_names, ", "))});
  }
  return out;
}

// The memory-breakdown rows: llama.cpp's "self" (the sum of its buffers on
// the device) and "unaccounted" (total - free - self: driver, context, the
// ggml pool and other processes) against the estimate.
void BreakdownRows(CheckResult& r) {
  for (const io::BreakdownRow& b : r.log.breakdown) {
    if (b.vramfit_device.empty()) continue;
    const DeviceEstimate* dev = nullptr;
    if (r.estimate) {
      for (const DeviceEstimate& d : r.estimate->devices) {
        if (d.name == b.vramfit_device) dev = &d;
      }
    }
    const auto add = [&](std::string component, std::string term, int64_t mib, std::optional<Bytes> est,
                         std::string what) {
      CheckRow row;
      row.device = b.vramfit_device;
      row.component = std::move(component);
      row.term = std::move(term);
      row.engine_names = std::move(what);
      row.printed = fmt::format("{} MiB", mib);
      row.measured = MiB(mib);
      row.half_ulp = Bytes(int64_t{1} << 19);
      row.estimated = est;
      if (est && mib != 0) {
        row.error = static_cast<double>(est->value() - row.measured.value()) / static_cast<double>(row.measured.value());
      }
      r.rows.push_back(std::move(row));
    };
    if (b.self_mib) {
      std::optional<Bytes> est;
      if (b.vramfit_device == "host" && r.estimate) {
        est = Total(r.estimate->host);
      } else if (dev) {
        Bytes sum(0);
        for (const Component& c : dev->components) {
          if (c.name != "cuda_context") sum += c.bytes;
        }
        est = sum;
      }
      add("breakdown_self", "sum of buffers (total less cuda_context)", *b.self_mib, est,
          "memory breakdown: self = model + context + compute");
    }
    if (b.unaccounted_mib && b.total_mib) {
      if (*b.unaccounted_mib < 0 || *b.unaccounted_mib > *b.total_mib) {
        r.notes.push_back(fmt::format(
            "line {}: {} unaccounted {} MiB is not a real figure (llama.cpp prints total - free - self, which goes "
            "wrong when other processes allocate or free meanwhile): not compared",
            b.line, b.device, *b.unaccounted_mib));
        continue;
      }
      std::optional<Bytes> est;
      if (dev) {
        const Component* c = Find(dev->components, "cuda_context");
        est = c ? c->bytes : Bytes(0);
      }
      add("breakdown_unaccounted", "cuda_context", *b.unaccounted_mib, est,
          "memory breakdown: unaccounted = total - free - self (includes other processes)");
    }
  }
}

// The log's settings, then the flags for what it does not say, into req;
// r records where each came from.
Status MergeSettings(const io::EngineLog& log, const std::vector<Candidate>& candidates, const Request& flags,
                     bool training, std::optional<Runtime> runtime, Request& req, CheckResult& r) {
  for (const Candidate& c : candidates) {
    const Setting* s = FindSetting(c.name);
    if (s == nullptr) {
      r.unused.push_back(fmt::format("{} = {} ({}): vramfit has no such setting", c.name, c.value, c.source));
      continue;
    }
    if (c.name == "gpu" && flags.Has("gpu")) {
      r.notes.push_back(fmt::format("GPUs from --gpu (the log names {})", c.value));
      continue;
    }
    bool given = false;
    for (const Given& g : flags.given()) {
      if (g.setting != s) continue;
      if (!SameValue(g.value, c.value)) {
        return InvalidArgument(fmt::format("{} {}: contradicts the {} ({}); drop the flag", g.spelled, g.value,
                                           log.format == io::LogFormat::kMeasureRecord ? "record" : "log", c.source));
      }
      given = true;
    }
    const std::string why = WhyNot(*s, training, runtime);
    if (!why.empty()) {
      r.unused.push_back(fmt::format("{} = {} ({}): {}", c.name, c.value, c.source, why));
      continue;
    }
    Draft scratch;
    if (Status st = s->apply(c.value, scratch); !st.ok()) {
      r.unused.push_back(fmt::format("{} = {} ({}): {}", c.name, c.value, c.source, st.error().message));
      continue;
    }
    if (!given) req.AddGiven(s, c.value, "--" + std::string(s->name));
    r.from_log.push_back({c.name, c.value, c.source});
  }
  for (const Given& g : flags.given()) {
    bool from_log = false;
    for (const CheckSetting& c : r.from_log) from_log = from_log || c.name == g.setting->name;
    req.AddGiven(g.setting, g.value, g.spelled);
    if (!from_log && !(g.setting->scope & kOutput)) r.from_flags.push_back({std::string(g.setting->name), g.value, g.spelled});
  }

  return {};
}

}  // namespace

Result<CheckResult> Check(const io::EngineLog& log, std::string_view input, const Request& flags,
                          const std::string& model_flag) {
  CheckResult r;
  r.log = log;
  r.input = std::string(input);
  r.notes = log.notes;
  const bool training = log.record_mode && *log.record_mode == "train";
  r.mode = training ? "train" : "infer";

  // The runtime: the engine's, else the record's or the flags'.
  std::optional<Runtime> runtime;
  bool estimable = true;
  Request req;
  if (const char* engine = EngineRuntime(log.format)) {
    runtime = RuntimeNamed(engine);
    if (!runtime) {
      estimable = false;
      r.notes.push_back(fmt::format("no {} runtime profile in this build: the measured figures are shown without "
                                    "an estimate",
                                    engine));
    } else {
      r.runtime = engine;
      for (const Given& g : flags.given()) {
        if (g.setting->name == "runtime" && g.value != engine) {
          return InvalidArgument(fmt::format("{} {}: the log is {}'s (drop the flag)", g.spelled, g.value,
                                             io::LogFormatName(log.format)));
        }
      }
      if (Status st = req.Add("runtime", engine); !st.ok()) return st.error();
      r.from_log.push_back({"runtime", engine, fmt::format("the log's format ({})", io::LogFormatName(log.format))});
    }
  }
  std::vector<Candidate> candidates = LogCandidates(log, &r.notes);
  if (!runtime && !training) {
    for (const Candidate& c : candidates) {
      if (c.name == "runtime") runtime = RuntimeNamed(c.value);
    }
    for (const Given& g : flags.given()) {
      if (g.setting->name == "runtime") {
        if (auto p = ParseRuntime(g.value); p.ok()) runtime = *p;
      }
    }
  }

  if (!runtime && !training) runtime = Runtime::kHf;  // vramfit's default runtime
  VRAMFIT_TRY(MergeSettings(log, candidates, flags, training, runtime, req, r));

  if (!estimable && !model_flag.empty()) {
    return InvalidArgument(fmt::format("--model: not used: this build has no {} runtime profile to estimate the log's "
                                       "job with",
                                       EngineRuntime(log.format)));
  }
  // The model.
  std::optional<Model> model;
  std::vector<std::string> load_notes;
  if (!model_flag.empty()) {
    auto m = LoadModel(model_flag, ModelCatalog::Builtin(), &load_notes);
    if (!m.ok()) return m.error();
    model = std::move(m.value());
    r.model = model_flag;
    r.model_source = "--model";
    if (log.model) r.notes.push_back(fmt::format("the log names the model '{}'; --model {} is estimated", *log.model, model_flag));
  } else if (log.model && estimable) {
    auto m = LoadModel(*log.model, ModelCatalog::Builtin(), &load_notes);
    if (m.ok()) {
      model = std::move(m.value());
      r.model = *log.model;
      r.model_source = "the log";
    } else {
      r.notes.push_back(fmt::format("the log's model '{}' is not a catalog model or a file here: give --model MODEL "
                                    "to estimate it",
                                    *log.model));
    }
  } else if (estimable) {
    r.notes.push_back(log.arch ? fmt::format("the log names the architecture '{}', not a model: give --model MODEL "
                                             "(a catalog id, config.json or .gguf) to estimate it",
                                             *log.arch)
                               : std::string("the log does not name the model: give --model MODEL to estimate it"));
  }

  // Flags describe the job to estimate; with nothing to estimate they
  // would be accepted and ignored.
  if (!model || !estimable) {
    for (const Given& g : flags.given()) {
      if (g.setting->scope & kOutput) continue;
      return InvalidArgument(fmt::format(
          "{}: not used: {}", g.spelled,
          !estimable ? fmt::format("this build has no {} runtime profile to estimate the log's job with",
                                   EngineRuntime(log.format))
                     : std::string("no model to estimate (give --model MODEL)")));
    }
    r.from_flags.clear();
  }
  if (model && estimable) {
    auto job = BuildJob(req, training ? kCmdTrain : kCmdInfer);
    if (!job.ok()) return job.error();
    auto devices = ToDevices(*job, GpuCatalog::Builtin());
    if (!devices.ok()) return devices.error();
    auto e = EstimateJob(*model, job->job, *devices);
    if (!e.ok()) return e.error();
    e->notes.insert(e->notes.begin(), load_notes.begin(), load_notes.end());
    r.estimate = std::move(e.value());
    r.estimated_kv_tokens = r.estimate->kv_capacity_tokens;
    if (!r.estimated_kv_tokens && log.format == io::LogFormat::kLlamaCpp) {
      // llama.cpp's KV cells (the estimate's echo; the log's "size = ... N cells").
      for (const auto& [k, v] : r.estimate->workload) {
        if (k == "kv_cells" && std::holds_alternative<int64_t>(v)) r.estimated_kv_tokens = std::get<int64_t>(v);
      }
    }
  }
  if (!log.kv_capacity_tokens && log.max_concurrency) {
    for (const CheckSetting& s : r.from_log) {
      if (s.name != "max-model-len") continue;
      r.notes.push_back(fmt::format(
          "the log prints no KV capacity; its concurrency {:.2f}x x max_model_len {} is about {} tokens (the "
          "concurrency is rounded to 2 decimals)",
          *log.max_concurrency, s.value, static_cast<int64_t>(std::llround(*log.max_concurrency * std::stod(s.value)))));
    }
  }
  r.rows = CompareToEstimate(log.figures, r.estimate ? &*r.estimate : nullptr);
  BreakdownRows(r);
  if (r.rows.empty()) r.notes.push_back("the log holds no memory figure (truncated before the engine allocated?)");
  return r;
}

namespace {

std::string JobCommand(const CheckResult& r) {
  std::string cmd = fmt::format("vramfit {} {}", r.mode, r.model.empty() ? "MODEL" : r.model);
  const auto add = [&](const CheckSetting& s) {
    const Setting* st = FindSetting(s.name);
    if (st && st->is_switch()) {
      cmd += s.value == "true" ? " --" + s.name : " --" + s.name + "=" + s.value;
    } else {
      cmd += " --" + s.name + " " + s.value;
    }
  };
  for (const CheckSetting& s : r.from_log) add(s);
  for (const CheckSetting& s : r.from_flags) add(s);
  return cmd;
}


std::string Signed(Bytes b, Units u) {
  return b.value() < 0 ? "-" + FormatBytes(Bytes(-b.value()), u) : "+" + FormatBytes(b, u);
}

std::vector<std::string> Devices(const CheckResult& r) {
  std::vector<std::string> out;
  for (const CheckRow& row : r.rows) {
    if (std::find(out.begin(), out.end(), row.device) == out.end()) out.push_back(row.device);
  }
  return out;
}

}  // namespace

namespace {

const DeviceEstimate* EstimatedDevice(const CheckResult& r, const std::string& name) {
  if (!r.estimate) return nullptr;
  for (const DeviceEstimate& d : r.estimate->devices) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

const CheckRow* RowOf(const CheckResult& r, const std::string& device, const char* component) {
  for (const CheckRow& row : r.rows) {
    if (row.device == device && row.component == component) return &row;
  }
  return nullptr;
}

// The context a device's process holds beyond its buffers, as the log
// measured it, and the figures it came from; nullopt when the log has none.
std::optional<std::pair<Bytes, std::string>> MeasuredContext(const CheckResult& r, const std::string& device) {
  if (const CheckRow* u = RowOf(r, device, "breakdown_unaccounted")) {
    return std::make_pair(u->measured, fmt::format("llama.cpp memory breakdown: unaccounted {}", u->printed));
  }
  const CheckRow* total = RowOf(r, device, "total");
  const CheckRow* reserved = RowOf(r, device, "reserved_peak");
  if (total && reserved && total->measured >= reserved->measured) {
    return std::make_pair(total->measured - reserved->measured,
                          fmt::format("{} less {}", total->engine_names, reserved->engine_names));
  }
  return std::nullopt;
}

}  // namespace

Result<std::vector<CalibrationEntry>> CalibrationFrom(const CheckResult& r, const std::string& date) {
  if (r.runtime == "vllm" || r.runtime == "sglang") {
    return Unsupported(fmt::format(
        "--save: {}'s memory outside its buffers sizes its KV pool, so it is not an additive term; calibrating {} "
        "is not built",
        r.runtime, r.runtime));
  }
  if (!r.estimate) return Unsupported("--save: the log's job was not estimated (the notes say why): nothing to learn");
  const std::string family = r.mode == "train" || r.runtime == "hf" ? "pytorch" : r.runtime;
  if (family != "pytorch" && family != "llamacpp") {
    return Unsupported(fmt::format("--save: the {} runtime is not calibrated", r.runtime));
  }
  std::vector<CalibrationEntry> out;
  for (const DeviceEstimate& d : r.estimate->devices) {
    if (!d.gpu) continue;
    auto measured = MeasuredContext(r, d.name);
    if (!measured) continue;
    const Component* assumed = Find(d.components, "cuda_context");
    if (!assumed) continue;
    if (measured->first.value() > kMaxCalibratedBytes) {
      return InvalidArgument(fmt::format("--save: {} holds {} MiB outside its buffers by this log; over {} GiB is "
                                         "not a context (other processes?): not saved",
                                         d.name, measured->first.value() / kMiB, kMaxCalibratedBytes >> 30));
    }
    // Several devices of one kind: the largest, so that the estimate keeps
    // the headroom the worst of them needed.
    CalibrationEntry e{d.gpu->name, family, "cuda_context", measured->first.value(), assumed->bytes.value(),
                       fmt::format("vramfit check {} on {} ({})", r.input, d.name, measured->second), date};
    auto same = std::find_if(out.begin(), out.end(), [&](const CalibrationEntry& o) { return o.gpu == e.gpu; });
    if (same == out.end()) {
      out.push_back(std::move(e));
    } else if (e.bytes > same->bytes) {
      *same = std::move(e);
    }
  }
  if (out.empty()) {
    return Unsupported(
        "--save: the log has no figure of what the process holds beyond its buffers on a GPU of the estimate "
        "(llama.cpp's memory breakdown table, or a PyTorch record with nvml_used and reserved_peak; give --gpu)");
  }
  return out;
}

std::string RenderCheckText(const CheckResult& r, Units u) {
  std::string out = fmt::format("check {} ({})\n", r.input, io::LogFormatName(r.log.format));
  if (!r.estimate) {
    out += "job: not estimated (the notes say why)\n";
  } else {
    out += fmt::format("job: {}\n", JobCommand(r));
  }
  const bool record = r.log.format == io::LogFormat::kMeasureRecord;
  for (const CheckSetting& s : r.from_log) {
    out += fmt::format("  from the {}: {} {}  ({})\n", record ? "record" : "log", s.name, s.value, s.source);
  }
  for (const CheckSetting& s : r.from_flags) out += fmt::format("  from flags:   {} {}  ({})\n", s.name, s.value, s.source);
  if (!r.model.empty()) out += fmt::format("  model:        {}  ({})\n", r.model, r.model_source);
  if (r.estimate) out += "  everything else: vramfit's defaults for the runtime\n";
  for (const std::string& s : r.unused) out += fmt::format("  not used: {}\n", s);
  for (const std::string& dev : Devices(r)) {
    std::string gpu;
    if (r.estimate) {
      for (const DeviceEstimate& d : r.estimate->devices) {
        if (d.name == dev && d.gpu) gpu = "  " + d.gpu->name;
      }
    }
    out += fmt::format("\n{}{}\n", dev, gpu);
    out += fmt::format("  {:<22} {:>14} {:>12} {:>12} {:>8}  {:<16} {}\n", "component", "measured", "estimated",
                       "difference", "error", "estimate term", "engine figure");
    for (const CheckRow& row : r.rows) {
      if (row.device != dev) continue;
      const std::string est = row.estimated ? FormatBytes(*row.estimated, u) : "null";
      const std::string diff = row.estimated ? Signed(*row.estimated - row.measured, u) : "";
      const std::string err = row.error ? fmt::format("{:+.1f}%", *row.error * 100) : "";
      out += fmt::format("  {:<22} {:>14} {:>12} {:>12} {:>8}  {:<16} {}\n", row.component,
                         row.printed.size() <= 14 ? row.printed : FormatBytes(row.measured, u), est, diff, err,
                         row.term.empty() ? "(none)" : row.term, row.engine_names);
    }
  }
  if (r.log.kv_capacity_tokens || r.estimated_kv_tokens) {
    const auto tok = [](std::optional<int64_t> t) { return t ? Thousands(*t) + " tokens" : std::string("null"); };
    std::string err;
    if (r.log.kv_capacity_tokens && r.estimated_kv_tokens && *r.log.kv_capacity_tokens > 0) {
      err = fmt::format(" ({:+.1f}%)", 100.0 * static_cast<double>(*r.estimated_kv_tokens - *r.log.kv_capacity_tokens) /
                                           static_cast<double>(*r.log.kv_capacity_tokens));
    }
    out += fmt::format("\nKV capacity: measured {}, estimated {}{}\n", tok(r.log.kv_capacity_tokens),
                       tok(r.estimated_kv_tokens), err);
  }
  if (r.log.max_concurrency) out += fmt::format("max concurrency (the log): {:.2f}x\n", *r.log.max_concurrency);
  std::vector<std::string> notes = r.notes;
  if (r.estimate) notes.insert(notes.end(), r.estimate->notes.begin(), r.estimate->notes.end());
  if (!notes.empty()) {
    out += "notes:\n";
    for (const std::string& n : notes) out += "  - " + n + "\n";
  }
  return out;
}

std::string RenderCheckJson(const CheckResult& r) {
  using nlohmann::ordered_json;
  ordered_json j;
  j["schema"] = "vramfit.check/1";
  j["input"] = r.input;
  j["format"] = io::LogFormatName(r.log.format);
  ordered_json job;
  job["mode"] = r.mode;
  job["model"] = r.model.empty() ? ordered_json(nullptr) : ordered_json(r.model);
  job["model_source"] = r.model_source.empty() ? ordered_json(nullptr) : ordered_json(r.model_source);
  job["runtime"] = r.runtime.empty() ? ordered_json(nullptr) : ordered_json(r.runtime);
  job["command"] = r.estimate ? ordered_json(JobCommand(r)) : ordered_json(nullptr);
  j["job"] = job;
  const auto settings = [](const std::vector<CheckSetting>& v) {
    ordered_json a = ordered_json::array();
    for (const CheckSetting& s : v) a.push_back({{"name", s.name}, {"value", s.value}, {"source", s.source}});
    return a;
  };
  j["settings"] = {{"from_log", settings(r.from_log)}, {"from_flags", settings(r.from_flags)}, {"unused", r.unused}};
  ordered_json rows = ordered_json::array();
  for (const CheckRow& row : r.rows) {
    ordered_json o;
    o["device"] = row.device;
    o["component"] = row.component;
    o["measured_bytes"] = row.measured.value();
    o["estimated_bytes"] = row.estimated ? ordered_json(row.estimated->value()) : ordered_json(nullptr);
    o["error"] = row.error ? ordered_json(std::round(*row.error * 1e4) / 1e4) : ordered_json(nullptr);
    o["rounding_bytes"] = row.half_ulp.value();
    o["term"] = row.term.empty() ? ordered_json(nullptr) : ordered_json(row.term);
    o["engine_figures"] = row.engine_names;
    o["printed"] = row.printed;
    rows.push_back(std::move(o));
  }
  j["rows"] = rows;
  const auto opt = [](auto v) { return v ? ordered_json(*v) : ordered_json(nullptr); };
  j["kv_cache"] = {{"measured_capacity_tokens", opt(r.log.kv_capacity_tokens)},
                   {"estimated_capacity_tokens", opt(r.estimated_kv_tokens)},
                   {"measured_max_concurrency", opt(r.log.max_concurrency)}};
  j["estimate_total_bytes"] = r.estimate ? ordered_json(r.estimate->total.value()) : ordered_json(nullptr);
  std::vector<std::string> notes = r.notes;
  if (r.estimate) notes.insert(notes.end(), r.estimate->notes.begin(), r.estimate->notes.end());
  j["notes"] = notes;
  return j.dump(2) + "\n";
}

}  // namespace vramfit::app
