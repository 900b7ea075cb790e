// accuracy: vramfit's estimates against published measurements.
//
//   accuracy [TRUTH_DIR] [--cases FILE] [--json]
//            [--write-bands FILE | --check-bands FILE]
//
// Reads every case of TRUTH_DIR/*.jsonl (default ../shared/truth next to the
// source tree) and bench/accuracy_cases.json, which says for each case either
// how to express it (a catalog model, the CLI flags, which figure to compare)
// or why it cannot be expressed yet. Measured values come only from the truth
// files, converted to bytes by each file's unit convention
// (../shared/truth/README.md). For every expressed case it runs the estimator
// exactly as `vramfit infer` does (or, for a case with "mode": "train", as
// `vramfit train` does) and prints estimate vs measured, then the median and
// worst |relative error| per runtime, task and source (training: per method
// and source, then per source over all methods), the worst cases, and every
// skipped case with its reason.
//
// Capacity cases are kept apart from those medians: a case with "solve"
// ("max-batch" | "max-context") runs the planner as `vramfit fit --solve`
// does and compares its answer with the measured boundary; a case with
// "expect" ("oom" | "fits") checks one estimate's verdict. A record of
// tools/measure carries its own case ("vramfit"), so it needs no entry in
// accuracy_cases.json.
//
// --write-bands FILE writes the measured error bands per (runtime, task,
// metric) -- n, median |err|, p10 and p90 of the signed err, the case ids --
// as data/accuracy_bands.json (schema vramfit.accuracy_bands/1), which the
// binary embeds for every estimate's uncertainty band. --check-bands FILE
// exits 1 when FILE differs from what --write-bands would write now (ctest
// accuracy_bands_current), 77 when the truth directory is missing.
//
// A report, not a test: it exits 0 whatever the errors are, and 1 only when
// an input cannot be read.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "vramfit/app/app.h"
#include "vramfit/app/settings.h"
#include "vramfit/catalog.h"
#include "vramfit/estimate.h"
#include "vramfit/io/accuracy_bands.h"
#include "vramfit/io/source.h"
#include "vramfit/plan.h"
#include "vramfit/training.h"
#include "vramfit/uncertainty.h"
#include "vramfit/workload.h"

#ifndef VRAMFIT_TRUTH_DIR
#define VRAMFIT_TRUTH_DIR "../shared/truth"
#endif
#ifndef VRAMFIT_ACCURACY_CASES
#define VRAMFIT_ACCURACY_CASES "bench/accuracy_cases.json"
#endif

namespace vramfit::bench {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

constexpr double kGiBd = 1024.0 * 1024.0 * 1024.0;  // 2^30 B
constexpr double kMiBd = 1024.0 * 1024.0;           // 2^20 B

// One truth file: its stem ("pytorch") and its cases in file order.
struct TruthFile {
  std::string name;
  std::vector<Json> cases;
};

// One entry of accuracy_cases.json.
struct CaseSpec {
  std::string model;
  bool train = false;  // "mode": "train" runs `vramfit train`; "infer" (default) `vramfit infer`
  Json args = Json::object();
  std::string compare;
  int64_t device = 0;
  // llama.cpp cases: "device" may also be "host" (the host buffers: CPU,
  // CPU_Mapped, CUDA_Host...) or "gpus" (the sum over CUDA devices).
  std::string device_kind;
  // llama.cpp cases: several figures of one log, each {"compare", "device"};
  // every one becomes a row.
  Json compares = Json::array();
  std::string why;
  std::string skip;
  // Capacity cases (new in issue #12 item 4): "solve": "max-batch" |
  // "max-context" runs `vramfit fit --solve` and compares its answer with the
  // measured boundary; "expect": "oom" | "fits" checks the verdict of one
  // estimate against an OOM report. "models" lists several catalog models one
  // report covers (each a check).
  std::string solve;
  std::string expect;
  std::vector<std::string> models;
};

// One capacity boundary: the planner's answer against the measured one.
struct BoundaryRow {
  std::string file, id, source, solve, model, settings, unit, reason, why;
  double answer = 0, measured = 0;
  double rel_err = 0;    // (answer - measured) / measured
  bool ceiling = false;  // the search stopped at its ceiling (the model's max context, the batch cap)
};

// One verdict check: an estimate's fits / does not fit against a report.
struct CheckRow {
  std::string file, id, model, settings, expect, why;
  bool fits = false;
  double total = 0, capacity = 0;  // the largest device total and its capacity, bytes
};

// One expressed case with its estimate.
struct Row {
  std::string file, id, task, source, settings, compare, phase, why;
  std::string model;       // as the case names it
  std::string catalog_id;  // the catalog entry it resolved to
  // The uncertainty band's group: BandKey of the estimate, and the figure or
  // component compared (llama.cpp's host compute/output buffers apart:
  // "compute_buffer@host").
  std::string band_runtime, band_task, band_metric;
  bool tokens = false;     // the figure is a token count, not bytes
  double estimate = 0, measured = 0;
  double rel_err = 0;                               // (estimate - measured) / measured
  std::vector<std::pair<std::string, double>> top;  // largest components, share of the figure
  std::vector<std::string> notes;
};

struct Skipped {
  std::string file, id, reason;
};

struct Failed {
  std::string file, id, message;
};

struct Report {
  std::vector<Row> rows;
  std::vector<BoundaryRow> boundaries;
  std::vector<CheckRow> checks;
  std::vector<Skipped> skipped;
  std::vector<Failed> failed;
  std::vector<std::string> warnings;
  size_t total_cases = 0;
  std::vector<std::pair<std::string, size_t>> files;  // name, case count
};

// --- Input.

Result<std::string> ReadText(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return Error{ErrorKind::kIo, fmt::format("{}: cannot read", p.string())};
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Error{ErrorKind::kIo, fmt::format("{}: read failed", p.string())};
  return ss.str();
}

Result<TruthFile> ReadTruthFile(const fs::path& p) {
  auto text = ReadText(p);
  if (!text.ok()) return text.error();
  TruthFile f;
  f.name = p.stem().string();
  std::istringstream in(*text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object() || !j.contains("id") || !j["id"].is_string()) {
      return Corrupt(fmt::format("{}:{}: not a JSON object with a string \"id\"", p.string(), n));
    }
    f.cases.push_back(std::move(j));
  }
  return f;
}

Result<std::vector<TruthFile>> ReadTruth(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return NotFound(fmt::format(
        "{}: not a directory (pass the truth directory as the first argument)", dir.string()));
  }
  std::vector<fs::path> paths;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".jsonl") paths.push_back(entry.path());
  }
  if (ec) return Error{ErrorKind::kIo, fmt::format("{}: {}", dir.string(), ec.message())};
  if (paths.empty()) return NotFound(fmt::format("{}: no *.jsonl files", dir.string()));
  std::sort(paths.begin(), paths.end());
  std::vector<TruthFile> files;
  for (const fs::path& p : paths) {
    auto f = ReadTruthFile(p);
    if (!f.ok()) return f.error();
    files.push_back(std::move(f.value()));
  }
  return files;
}

std::string Str(const Json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_string()) return {};
  return j[key].get<std::string>();
}

// The capacity keys of one accuracy_cases.json entry: "solve", "expect",
// "models" (see CaseSpec). A capacity case compares no memory figure, so it
// takes no "compare".
Status ReadCapacitySpec(const Json& c, CaseSpec* s) {
  s->solve = Str(c, "solve");
  s->expect = Str(c, "expect");
  if (!s->solve.empty() && s->solve != "max-batch" && s->solve != "max-context") {
    return InvalidArgument(
        fmt::format("solve '{}': expected \"max-batch\" or \"max-context\"", s->solve));
  }
  if (!s->expect.empty() && s->expect != "oom" && s->expect != "fits") {
    return InvalidArgument(fmt::format("expect '{}': expected \"oom\" or \"fits\"", s->expect));
  }
  if (!s->solve.empty() && !s->expect.empty()) {
    return InvalidArgument("give \"solve\" or \"expect\", not both");
  }
  if ((!s->solve.empty() || !s->expect.empty()) && !Str(c, "compare").empty()) {
    return InvalidArgument("a \"solve\" or \"expect\" case compares no memory figure: drop \"compare\"");
  }
  if (c.contains("models")) {
    if (!c["models"].is_array() || c["models"].empty() || s->expect.empty()) {
      return InvalidArgument("\"models\": a non-empty list, for an \"expect\" case only");
    }
    for (const Json& m : c["models"]) {
      if (!m.is_string()) return InvalidArgument("\"models\": every entry is a catalog id");
      s->models.push_back(m.get<std::string>());
    }
    if (s->model.empty()) s->model = s->models.front();
  }
  if (s->models.empty() && !s->model.empty()) s->models.push_back(s->model);
  return {};
}

// cases[file stem][id] -> spec.
using CaseMap = std::map<std::string, std::map<std::string, CaseSpec>>;

Result<CaseMap> ReadCases(const fs::path& p) {
  auto text = ReadText(p);
  if (!text.ok()) return text.error();
  Json doc = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("files") ||
      !doc["files"].is_object()) {
    return Corrupt(fmt::format("{}: not a JSON object with a \"files\" object", p.string()));
  }
  CaseMap map;
  for (const auto& [file, list] : doc["files"].items()) {
    const std::string stem = fs::path(file).stem().string();
    if (!list.is_array())
      return Corrupt(fmt::format("{}: files.{}: not an array", p.string(), file));
    for (size_t i = 0; i < list.size(); ++i) {
      const Json& c = list[i];
      const std::string where = fmt::format("{}: files.{}[{}]", p.string(), file, i);
      if (!c.is_object() || Str(c, "id").empty()) {
        return Corrupt(fmt::format("{}: not an object with a string \"id\"", where));
      }
      CaseSpec s;
      s.skip = Str(c, "skip");
      s.model = Str(c, "model");
      s.compare = Str(c, "compare");
      s.why = Str(c, "why");
      const std::string mode = Str(c, "mode");
      if (mode != "" && mode != "infer" && mode != "train") {
        return Corrupt(fmt::format("{} ({}): mode '{}': expected \"infer\" or \"train\"", where,
                                   Str(c, "id"), mode));
      }
      s.train = mode == "train";
      if (c.contains("args")) s.args = c["args"];
      if (c.contains("device") && c["device"].is_number_integer())
        s.device = c["device"].get<int64_t>();
      if (c.contains("device") && c["device"].is_string()) s.device_kind = c["device"].get<std::string>();
      if (c.contains("compares") && c["compares"].is_array()) {
        s.compares = c["compares"];
        for (const Json& x : s.compares) {
          if (!x.is_object() || Str(x, "compare").empty()) {
            return Corrupt(fmt::format("{} ({}): \"compares\": every entry needs a \"compare\"", where,
                                       Str(c, "id")));
          }
        }
        if (s.compare.empty() && !s.compares.empty()) s.compare = Str(s.compares[0], "compare");
      }
      Status capacity = ReadCapacitySpec(c, &s);
      if (!capacity.ok()) {
        return Corrupt(fmt::format("{} ({}): {}", where, Str(c, "id"), capacity.error().message));
      }
      const bool has_figure = !s.compare.empty() || !s.solve.empty() || !s.expect.empty();
      if (s.skip.empty() && (s.model.empty() || !has_figure || !s.args.is_object())) {
        return Corrupt(fmt::format(
            "{} ({}): needs \"skip\", or \"model\", \"args\" and \"compare\" (or \"solve\" / \"expect\")",
            where, Str(c, "id")));
      }
      if (!map[stem].emplace(Str(c, "id"), std::move(s)).second) {
        return Corrupt(fmt::format("{}: case '{}' is listed twice", where, Str(c, "id")));
      }
    }
  }
  return map;
}

// --- Measured values, in bytes (or tokens), by each file's convention.

// README: "value_gib_normalized in pytorch.jsonl converts by the source's
// convention" (GiB = 2^30 B).
Result<double> MeasuredPytorch(const Json& t, const std::string& compare) {
  if (compare != "allocated" && compare != "reserved" && compare != "total" &&
      compare != "allocated+context") {
    return InvalidArgument(
        fmt::format("compare '{}': a PyTorch peak compares with allocated, reserved, total or "
                    "allocated+context",
                    compare));
  }
  const std::string kind = Str(t, "kind");
  if (kind != "peak_memory") {
    return InvalidArgument(fmt::format("kind '{}' has no measured peak to compare", kind));
  }
  // tools/measure records give the byte count itself (measured_unit "bytes").
  if (Str(t, "measured_unit") == "bytes" && t.contains("measured_value") &&
      t["measured_value"].is_number_integer()) {
    return t["measured_value"].get<double>();
  }
  if (!t.contains("value_gib_normalized") || !t["value_gib_normalized"].is_number()) {
    return InvalidArgument("no numeric value_gib_normalized");
  }
  return t["value_gib_normalized"].get<double>() * kGiBd;
}

// SGLang logs (the rows of vllm.jsonl and vllm.*.jsonl with "sglang_fields"):
// "KV Cache is allocated. #tokens: N, K size: X GB, V size: Y GB" (MLA: "KV
// size"), where SGLang's GB is 2^30 B (memory_pool.py GB = 1024 ** 3), and
// "mem usage" after loading the weights.
Result<double> MeasuredSglang(const Json& f, const std::string& compare, bool* tokens) {
  const auto num = [&](const char* k) { return f.contains(k) && f[k].is_number(); };
  if (compare == "kv_capacity_tokens") {
    *tokens = true;
    if (num("kv_tokens")) return f["kv_tokens"].get<double>();
    return InvalidArgument("no sglang_fields.kv_tokens in the case");
  }
  if (compare == "kv_cache") {
    if (num("K_size_GB") && num("V_size_GB")) {
      return (f["K_size_GB"].get<double>() + f["V_size_GB"].get<double>()) * kGiBd;
    }
    if (num("KV_size_GB")) return f["KV_size_GB"].get<double>() * kGiBd;
    return InvalidArgument("no sglang_fields K_size_GB + V_size_GB (or KV_size_GB) in the case");
  }
  if (compare == "weights") {
    if (num("weights_mem_usage_GB")) return f["weights_mem_usage_GB"].get<double>() * kGiBd;
    return InvalidArgument("no sglang_fields.weights_mem_usage_GB in the case");
  }
  return InvalidArgument(fmt::format("compare '{}' has no SGLang field", compare));
}

// vLLM logs print GiB (its "GB" is 2^30 B too).
Result<double> MeasuredVllm(const Json& t, const std::string& compare, bool* tokens) {
  if (t.contains("sglang_fields") && t["sglang_fields"].is_object()) {
    return MeasuredSglang(t["sglang_fields"], compare, tokens);
  }
  if (compare == "kv_capacity_tokens") {
    *tokens = true;
    if (t.contains("gpu_kv_cache_tokens") && t["gpu_kv_cache_tokens"].is_number()) {
      return t["gpu_kv_cache_tokens"].get<double>();
    }
    return InvalidArgument("no gpu_kv_cache_tokens in the case");
  }
  static const std::map<std::string, std::string> kField = {
      {"weights", "weights_gib"},        {"kv_cache", "kv_cache_gib"},
      {"non_torch", "non_torch_gib"},    {"activations", "activation_peak_gib"},
      {"cuda_graphs", "cuda_graph_gib"},
  };
  const auto it = kField.find(compare);
  if (it == kField.end())
    return InvalidArgument(fmt::format("compare '{}' has no vLLM field", compare));
  if (!t.contains(it->second) || !t[it->second].is_number()) {
    return InvalidArgument(fmt::format("no {} in the case", it->second));
  }
  return t[it->second].get<double>() * kGiBd;
}

// llama.cpp buffers are printed in MiB (2^20 B) per backend buffer
// ("CUDA0"); device N of the estimate is CUDA<N>. kind "host" sums the
// host buffers (every name but CUDA<N>: CPU, CPU_Mapped, CUDA_Host, AMX...),
// "gpus" the CUDA<N> buffers.
Result<double> MeasuredLlamaCpp(const Json& t, const std::string& compare, int64_t device,
                                const std::string& kind = "") {
  static const std::map<std::string, std::string> kField = {
      {"weights", "model_buffers_mib"},
      {"kv_cache", "kv_buffers_mib"},
      {"compute_buffer", "compute_buffers_mib"},
      {"output_buffer", "output_buffers_mib"},
  };
  const auto it = kField.find(compare);
  if (it == kField.end()) {
    return InvalidArgument(fmt::format("compare '{}' has no llama.cpp buffer", compare));
  }
  const std::string want = fmt::format("CUDA{}", device);
  if (!kind.empty() && t.contains(it->second) && t[it->second].is_array()) {
    double sum = 0;
    bool any = false;
    for (const Json& pair : t[it->second]) {
      if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() || !pair[1].is_number()) continue;
      const std::string name = pair[0].get<std::string>();
      const bool cuda = name.rfind("CUDA", 0) == 0 && name.size() > 4 &&
                        std::isdigit(static_cast<unsigned char>(name[4]));
      if ((kind == "gpus") == cuda) {
        sum += pair[1].get<double>();
        any = true;
      }
    }
    if (any) return sum * kMiBd;
    return InvalidArgument(fmt::format("no {} buffer in {}", kind, it->second));
  }
  if (t.contains(it->second) && t[it->second].is_array()) {
    for (const Json& pair : t[it->second]) {
      if (pair.is_array() && pair.size() == 2 && pair[0] == want && pair[1].is_number()) {
        return pair[1].get<double>() * kMiBd;
      }
    }
  }
  return InvalidArgument(fmt::format("no {} buffer in {}", want, it->second));
}

// The unit conventions of a truth file follow its kind, the stem before any
// dot: bench/truth/vllm.recorded.jsonl reads as vllm.jsonl does.
std::string Kind(const std::string& file) { return file.substr(0, file.find('.')); }

Result<double> Measured(const std::string& name, const Json& t, const CaseSpec& s, bool* tokens) {
  const std::string file = Kind(name);
  if (file == "pytorch") return MeasuredPytorch(t, s.compare);
  if (file == "vllm") return MeasuredVllm(t, s.compare, tokens);
  if (file == "llamacpp") return MeasuredLlamaCpp(t, s.compare, s.device, s.device_kind);
  return InvalidArgument(fmt::format("no unit convention known for {}.jsonl", file));
}

// --- Estimates.

// The settings of a case, the way the CLI receives them: each key a setting
// of the settings table (include/vramfit/app/settings.h), '_' for '-'
// ("gpus" is --gpus, the data-parallel degree; "gpu" the --gpu list;
// switches are true or false). A training case takes only `vramfit train`'s
// settings; an inference case none of them (BuildJob says which applies).
Result<app::Request> RequestFromArgs(const Json& args) {
  const auto text = [](const Json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); };
  app::Request r;
  for (const auto& [key, v] : args.items()) {
    const app::Setting* setting = app::FindSetting(key);
    if (setting == nullptr) return InvalidArgument(fmt::format("args: unknown flag '{}'", key));
    if (setting->is_switch() && !v.is_boolean()) {
      return InvalidArgument(fmt::format("args: '{}' must be true or false", key));
    }
    if (v.is_array() && setting->repeatable) {
      for (const Json& g : v) r.AddGiven(setting, text(g), key);
    } else {
      r.AddGiven(setting, text(v), key);
    }
  }
  return r;
}

Result<app::JobRequest> FlagsFromArgs(const Json& args, bool train = false) {
  auto r = RequestFromArgs(args);
  if (!r.ok()) return r.error();
  auto job = app::BuildJob(*r, train ? app::kCmdTrain : app::kCmdInfer);
  if (!job.ok()) return InvalidArgument("args: " + job.error().message);
  return job;
}

// Top-level components that make up each compared figure (DESIGN.md):
// allocated = everything below the allocator; reserved adds its slack;
// total adds the CUDA context. "allocated+context" is allocated plus the
// context, for sources that add (NVML - reserved) to the allocated peak.
bool InFigure(const std::string& compare, const std::string& component) {
  if (component == "allocator_reserve") return compare == "reserved" || compare == "total";
  // NCCL and other non-PyTorch buffers show only in nvidia-smi.
  if (component == "non_torch") return compare == "total";
  if (component == "cuda_context") return compare == "total" || compare == "allocated+context";
  return true;
}

Result<double> EstimatedFigure(const Estimate& e, const CaseSpec& s, Row* row) {
  if (s.compare == "kv_capacity_tokens") {
    row->tokens = true;
    if (!e.kv_capacity_tokens)
      return InvalidArgument("the estimate has no kv_cache.capacity_tokens");
    return static_cast<double>(*e.kv_capacity_tokens);
  }
  if (!s.device_kind.empty()) {
    // A component summed over the host ("host") or every device ("gpus").
    if (s.device_kind != "host" && s.device_kind != "gpus") {
      return InvalidArgument(fmt::format("device '{}': expected a GPU index, \"host\" or \"gpus\"",
                                         s.device_kind));
    }
    Bytes sum;
    bool any = false;
    const auto add = [&](const std::vector<Component>& list) {
      if (const Component* c = Find(list, s.compare)) {
        sum += c->bytes;
        any = true;
        for (const Component& ch : c->children)
          row->top.emplace_back(ch.name, static_cast<double>(ch.bytes.value()));
      }
    };
    if (s.device_kind == "host") add(e.host);
    else for (const DeviceEstimate& d : e.devices) add(d.components);
    if (!any) return InvalidArgument(fmt::format("compare '{}': no such {} component", s.compare, s.device_kind));
    const double v = static_cast<double>(sum.value());
    std::sort(row->top.begin(), row->top.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    if (row->top.size() > 2) row->top.resize(2);
    for (auto& t : row->top) t.second = v > 0 ? t.second / v : 0;
    return v;
  }
  if (s.device < 0 || static_cast<size_t>(s.device) >= e.devices.size()) {
    return InvalidArgument(
        fmt::format("device {} not in the estimate ({} devices)", s.device, e.devices.size()));
  }
  const DeviceEstimate& d = e.devices[static_cast<size_t>(s.device)];
  row->phase = d.peak_phase;
  const bool figure = s.compare == "allocated" || s.compare == "reserved" || s.compare == "total" ||
                      s.compare == "allocated+context";
  std::vector<std::pair<std::string, double>> parts;
  if (figure) {
    for (const Component& c : d.components) {
      if (InFigure(s.compare, c.name))
        parts.emplace_back(c.name, static_cast<double>(c.bytes.value()));
    }
  } else if (const Component* c = Find(d.components, s.compare)) {
    for (const Component& ch : c->children) {
      parts.emplace_back(ch.name, static_cast<double>(ch.bytes.value()));
    }
  }
  std::optional<Bytes> value;
  if (s.compare == "allocated") {
    value = d.allocated_peak;
  } else if (s.compare == "reserved") {
    value = d.reserved_peak;
  } else if (s.compare == "total") {
    value = d.total;
  } else if (s.compare == "allocated+context") {
    const Component* ctx = Find(d.components, "cuda_context");
    if (d.allocated_peak && ctx) value = *d.allocated_peak + ctx->bytes;
  } else if (const Component* c = Find(d.components, s.compare)) {
    value = c->bytes;
  } else {
    return InvalidArgument(fmt::format("compare '{}': no such figure or component", s.compare));
  }
  if (!value) {
    return InvalidArgument(
        fmt::format("compare '{}': the {} runtime does not report it", s.compare, row->file));
  }
  const double v = static_cast<double>(value->value());
  std::sort(parts.begin(), parts.end(),
            [](const auto& a, const auto& b) { return a.second > b.second; });
  for (size_t i = 0; i < parts.size() && i < 2; ++i) {
    if (v > 0) row->top.emplace_back(parts[i].first, parts[i].second / v);
  }
  return v;
}

std::string EchoText(const Echo& echo, const char* key) {
  for (const auto& [k, v] : echo) {
    if (k != key) continue;
    if (const auto* s = std::get_if<std::string>(&v)) return *s;
    if (const auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
    if (const auto* d = std::get_if<double>(&v)) return fmt::format("{}", *d);
    if (const auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  }
  return "?";
}

// "fp16 gptq-int4 b16 512+512 eager A100-80GB", from the resolved workload.
std::string Settings(const Estimate& e, const app::JobRequest& f) {
  if (EchoText(e.workload, "runtime") == "vllm") {
    // "fp8-block u0.9 len40960 seqs1024 mbt8192 tp4 4xH100-80GB".
    std::string s = fmt::format("{} u{} len{} seqs{} mbt{}", EchoText(e.workload, "quant"),
                                EchoText(e.workload, "gpu_memory_utilization"),
                                EchoText(e.workload, "max_model_len"), EchoText(e.workload, "max_num_seqs"),
                                EchoText(e.workload, "max_num_batched_tokens"));
    if (EchoText(e.workload, "kv_dtype") != EchoText(e.workload, "dtype")) {
      s += " kv-" + EchoText(e.workload, "kv_dtype");
    }
    if (EchoText(e.workload, "tp") != "1") s += " tp" + EchoText(e.workload, "tp");
    if (!e.devices.empty() && e.devices[0].gpu) s += fmt::format(" {}x{}", e.devices.size(), e.devices[0].gpu->name);
    return s;
  }
  if (EchoText(e.workload, "runtime") == "sglang") {
    // "fp8-block f0.93 len40960 chunk8192 bs512 tp4 4xH100-80GB".
    std::string s = fmt::format("{} f{} len{} chunk{} bs{}", EchoText(e.workload, "quant"),
                                EchoText(e.workload, "mem_fraction_static"),
                                EchoText(e.workload, "context_length"),
                                EchoText(e.workload, "chunked_prefill_size"),
                                EchoText(e.workload, "cuda_graph_max_bs"));
    if (EchoText(e.workload, "kv_dtype") != EchoText(e.workload, "dtype")) {
      s += " kv-" + EchoText(e.workload, "kv_dtype");
    }
    if (EchoText(e.workload, "tp") != "1") s += " tp" + EchoText(e.workload, "tp");
    if (!e.devices.empty() && e.devices[0].gpu) s += fmt::format(" {}x{}", e.devices.size(), e.devices[0].gpu->name);
    return s;
  }
  if (EchoText(e.workload, "runtime") == "llamacpp") {
    // "Q4_K_M c16384 ub512 fa0 f16/f16 ngl49/49 b5622".
    std::string s = fmt::format("{} c{} ub{} fa{} {}/{} ngl{} {}", EchoText(e.workload, "quant"),
                                EchoText(e.workload, "n_ctx"), EchoText(e.workload, "ubatch"),
                                EchoText(e.workload, "flash_attn") == "true" ? 1 : 0,
                                EchoText(e.workload, "cache_type_k"), EchoText(e.workload, "cache_type_v"),
                                EchoText(e.workload, "offloaded"), EchoText(e.workload, "build"));
    if (!f.gpus.empty()) s += fmt::format(" {}gpu", e.devices.size());
    return s;
  }
  std::string s = fmt::format("{} {} b{} {}+{} {}", EchoText(e.workload, "dtype"),
                              EchoText(e.workload, "quant"), EchoText(e.workload, "batch"),
                              EchoText(e.workload, "prompt"), EchoText(e.workload, "new"),
                              EchoText(e.workload, "attn"));
  for (const std::string& g : f.gpus) s += " " + g;
  return s;
}

// The method a training row is grouped under: LoRA over a quantized base is
// QLoRA whichever stack set it up (PEFT's --method qlora, or torchtune /
// lit-gpt --method lora --quant nf4).
std::string MethodLabel(const TrainingWorkload& w) {
  if (w.method == TrainMethod::kLora && w.quant.method != QuantMethod::kNone) return "qlora";
  return MethodName(w.method);
}

// LoRA targets as letters: "q,v" -> qv, all seven linears -> qkvogud.
std::string TargetLetters(const LoraTargets& t) {
  std::string s;
  for (const auto& [on, c] : {std::pair{t.q, 'q'}, {t.k, 'k'}, {t.v, 'v'}, {t.o, 'o'},
                              {t.gate, 'g'}, {t.up, 'u'}, {t.down, 'd'}, {t.experts, 'e'}}) {
    if (on) s += c;
  }
  return s;
}

// "lora r8 qv bf16 adamw b4x1034 chunked A100-40GB", from the resolved
// training workload (defaults left out: sdpa, hf loss, no checkpointing).
std::string TrainSettings(const TrainingWorkload& w, const app::JobRequest& f) {
  std::string s = MethodLabel(w);
  if (w.method == TrainMethod::kLora || w.method == TrainMethod::kQlora) {
    s += fmt::format(" r{} {}", w.lora_rank, TargetLetters(w.targets));
  }
  if (w.method == TrainMethod::kFreeze) s += fmt::format(" last{}", w.trainable_layers);
  if (w.quant.method != QuantMethod::kNone) s += " " + w.quant.Name();
  s += fmt::format(" {} {}{}", PrecisionName(w.precision), OptimizerName(w.optimizer),
                   w.optimizer_fused ? "(fused)" : "");
  s += fmt::format(" b{}x{}", w.batch, w.seq);
  if (w.grad_accum > 1) s += fmt::format(" ga{}", w.grad_accum);
  if (w.grad_ckpt != GradCkpt::kNone) s += fmt::format(" ckpt-{}", GradCkptName(w.grad_ckpt));
  if (w.attn != AttnImpl::kSdpa) s += fmt::format(" {}", AttnName(w.attn));
  if (w.loss != LossImpl::kHf) s += fmt::format(" {}", LossName(w.loss));
  if (w.zero > 0) s += fmt::format(" zero{}", w.zero);
  if (w.fsdp) s += " fsdp";
  if (w.offload != Offload::kNone) s += fmt::format(" offload-{}", OffloadName(w.offload));
  if (w.tp > 1) s += fmt::format(" tp{}", w.tp);
  if (w.pp > 1) s += fmt::format(" pp{}", w.pp);
  if (f.gpus.empty() && w.dp > 1) s += fmt::format(" dp{}", w.dp);
  for (const std::string& g : f.gpus) s += " " + g;
  return s;
}

// Runs one training case the way `vramfit train` does (cli/commands.cc
// RunTrain); sets the row's task to "train/<method>" and its settings.
Result<Estimate> EstimateTrainCase(const Model& model, const app::JobRequest& f,
                                   const DeviceSet& devices, std::vector<std::string>* notes,
                                   Row* row) {
  auto w = ResolveTraining(model, f.job.train, devices, notes);
  if (!w.ok()) return w.error();
  auto e = EstimateTraining(model, *w, devices);
  if (!e.ok()) return e.error();
  row->task = "train/" + MethodLabel(*w);
  row->settings = TrainSettings(*w, f);
  return e;
}

// Runs one expressed case the way `vramfit infer` (or `vramfit train`) does.
Status Evaluate(const std::string& name, const Json& truth, const CaseSpec& s, Row* row) {
  const std::string file = Kind(name);
  row->file = name;
  row->id = Str(truth, "id");
  row->task = file == "pytorch" ? Str(truth, "task") : "inference";
  row->compare = s.compare;
  if (file == "llamacpp") {
    // One summary line per buffer kind; the metric names the device.
    row->task = s.compare;
    row->compare = fmt::format("{}@{}", s.compare,
                               s.device_kind.empty() ? fmt::format("CUDA{}", s.device) : s.device_kind);
  }
  row->why = s.why;
  const std::string source = file == "pytorch" ? Str(truth, "source") : Str(truth, "engine");
  row->source = source.substr(0, source.find(' '));
  if (file == "pytorch" && row->source.find('/') == std::string::npos) {
    // "University HPC docs ... reproducing meta-llama/llama-recipes ...":
    // group under the first owner/repo the source names.
    std::istringstream words(source);
    for (std::string w; words >> w;) {
      if (w.find('/') != std::string::npos) {
        row->source = w;
        break;
      }
    }
  }

  auto measured = Measured(file, truth, s, &row->tokens);
  if (!measured.ok()) return measured.error();
  if (!(*measured > 0)) return InvalidArgument("the measured value is not positive");
  row->measured = *measured;

  auto flags = FlagsFromArgs(s.args, s.train);
  if (!flags.ok()) return flags.error();
  auto devices = app::ToDevices(*flags, GpuCatalog::Builtin(), 0, nullptr);
  if (!devices.ok()) return devices.error();
  const ModelCatalog& catalog = ModelCatalog::Builtin();
  const CatalogModel* entry = catalog.Find(s.model);
  if (entry == nullptr) {
    std::string hint;
    for (const std::string& n : catalog.Suggest(s.model)) hint += (hint.empty() ? "" : ", ") + n;
    return NotFound(fmt::format("model '{}': not in the catalog{}", s.model,
                                hint.empty() ? "" : " (did you mean " + hint + "?)"));
  }
  std::vector<std::string> notes;
  auto model = ModelFromCatalog(*entry, &notes);
  if (!model.ok()) return model.error();
  row->model = s.model;
  row->catalog_id = entry->id;
  Result<Estimate> e = Estimate{};
  if (s.train) {
    e = EstimateTrainCase(*model, *flags, *devices, &notes, row);
    if (!e.ok()) return e.error();
  } else {
    auto w = ResolveInference(*model, flags->job.infer, *devices, &notes);
    if (!w.ok()) return w.error();
    e = EstimateInference(*model, *w, *devices);
    if (!e.ok()) return e.error();
    row->settings = Settings(*e, *flags);
  }
  row->notes = std::move(notes);
  row->notes.insert(row->notes.end(), e->notes.begin(), e->notes.end());
  std::tie(row->band_runtime, row->band_task) = BandKey(*e);
  row->band_metric = s.compare;
  // Weights and KV are sized by one formula wherever their layers live; the
  // host's compute and output buffers are other graph allocations.
  if (s.device_kind == "host" && (s.compare == "compute_buffer" || s.compare == "output_buffer")) {
    row->band_metric += "@host";
  }

  auto estimate = EstimatedFigure(*e, s, row);
  if (!estimate.ok()) return estimate.error();
  row->estimate = *estimate;
  row->rel_err = (row->estimate - row->measured) / row->measured;
  return {};
}

// A truth record written by tools/measure/measure.py carries the vramfit
// command that expresses it: {"vramfit": {"model", "mode", "args",
// "compare"}} (tools/measure/README.md). Such a record needs no entry in
// accuracy_cases.json; an entry there, if any, wins.
std::optional<CaseSpec> SpecFromRecord(const Json& t) {
  if (!t.contains("vramfit") || !t["vramfit"].is_object()) return std::nullopt;
  const Json& v = t["vramfit"];
  CaseSpec s;
  s.model = Str(v, "model");
  s.compare = Str(v, "compare");
  s.train = Str(v, "mode") == "train";
  if (v.contains("args")) s.args = v["args"];
  s.why = "measured by tools/measure (" + Str(t, "source_section") + "); settings: " + Str(v, "command");
  if (s.model.empty() || s.compare.empty() || !s.args.is_object()) {
    s.skip = "tools/measure record: its \"vramfit\" object lacks model, args or compare";
  }
  return s;
}

// --- Capacity cases: boundaries (fit --solve) and OOM verdict checks.

Result<Model> CatalogModelFor(const std::string& name) {
  const ModelCatalog& catalog = ModelCatalog::Builtin();
  const CatalogModel* entry = catalog.Find(name);
  if (entry == nullptr) return NotFound(fmt::format("model '{}': not in the catalog", name));
  std::vector<std::string> notes;
  return ModelFromCatalog(*entry, &notes);
}

// "method=qlora lora_rank=32 ... RTX-3060": the case's args as given, the GPU
// last (a boundary's own knob, --seq or --batch, is what the planner varies).
std::string ArgsText(const Json& args) {
  std::string s, gpu;
  for (const auto& [k, v] : args.items()) {
    const std::string text = v.is_string() ? v.get<std::string>() : v.dump();
    if (k == "gpu") {
      gpu = text;
      continue;
    }
    s += fmt::format("{}{}={}", s.empty() ? "" : " ", k, text);
  }
  return gpu.empty() ? s : s + " " + gpu;
}

std::string SourceLabel(const Json& truth) {
  const std::string source = Str(truth, "source");
  return source.substr(0, source.find(' '));
}

// A "solve" case: `vramfit fit --solve max-batch|max-context` with the case's
// settings (the same app::Fit call as the CLI), its answer against the
// truth's measured boundary (a token or sample count).
Status EvaluateBoundary(const std::string& name, const Json& truth, const CaseSpec& s, BoundaryRow* row) {
  row->file = name;
  row->id = Str(truth, "id");
  row->source = SourceLabel(truth);
  row->solve = s.solve;
  row->model = s.model;
  row->why = s.why;
  row->settings = ArgsText(s.args);
  if (Str(truth, "kind") != "capacity_boundary") {
    return InvalidArgument(fmt::format("kind '{}': a \"solve\" case needs a capacity_boundary", Str(truth, "kind")));
  }
  if (!truth.contains("measured_value") || !truth["measured_value"].is_number()) {
    return InvalidArgument("no numeric measured_value (the boundary)");
  }
  row->measured = truth["measured_value"].get<double>();
  if (!(row->measured > 0)) return InvalidArgument("the measured boundary is not positive");
  const std::string unit = Str(truth, "measured_unit");
  row->unit = s.solve == "max-context" ? "tokens" : "samples";
  if (unit.rfind(row->unit, 0) != 0) {
    return InvalidArgument(fmt::format("--solve {} answers {}, but the case measures '{}'", s.solve, row->unit, unit));
  }
  auto request = RequestFromArgs(s.args);
  if (!request.ok()) return request.error();
  request->AddGiven(app::FindSetting("solve"), s.solve, "solve");
  auto model = CatalogModelFor(s.model);
  if (!model.ok()) return model.error();
  auto fit = app::Fit(*model, *request, 10000, s.train);
  if (!fit.ok()) return InvalidArgument("args: " + fit.error().message);
  if (fit->kind != app::FitResult::Kind::kAnswer || !fit->answer) {
    return InvalidArgument("fit did not answer one --solve (give one --gpu kind)");
  }
  const FitAnswer& a = *fit->answer;
  row->reason = a.reason;
  row->answer = static_cast<double>(a.found ? a.number : 0);
  // Found with no "one step beyond" estimate: every value up to the search's
  // ceiling fits, so the answer is a lower bound, not a boundary.
  row->ceiling = a.found && !a.next;
  row->rel_err = (row->answer - row->measured) / row->measured;
  return {};
}

// An "expect" case: one estimate per model, its verdict against the report
// ("oom": the job ran out of memory; "fits": it ran).
Status EvaluateChecks(const std::string& name, const Json& truth, const CaseSpec& s, std::vector<CheckRow>* out) {
  const std::string kind = Str(truth, "kind");
  if (s.expect == "oom" && kind != "oom_boundary") {
    return InvalidArgument(fmt::format("kind '{}': an \"expect\": \"oom\" case needs an oom_boundary", kind));
  }
  auto flags = FlagsFromArgs(s.args, s.train);
  if (!flags.ok()) return flags.error();
  auto devices = app::ToDevices(*flags, GpuCatalog::Builtin(), 0, nullptr);
  if (!devices.ok()) return devices.error();
  if (devices->empty()) return InvalidArgument("an \"expect\" case needs a \"gpu\"");
  for (const std::string& m : s.models) {
    auto model = CatalogModelFor(m);
    if (!model.ok()) return model.error();
    auto e = EstimateJob(*model, flags->job, *devices, EstimateOptions{.formulas = false});
    if (!e.ok()) return InvalidArgument(fmt::format("{}: {}", m, e.error().message));
    CheckRow row;
    row.file = name;
    row.id = Str(truth, "id");
    row.model = m;
    row.settings = ArgsText(s.args);
    row.expect = s.expect;
    row.why = s.why;
    row.fits = Fits(*e, flags->job);
    for (const DeviceEstimate& d : e->devices) {
      if (static_cast<double>(d.total.value()) < row.total) continue;
      row.total = static_cast<double>(d.total.value());
      row.capacity = d.capacity() ? static_cast<double>(d.capacity()->value()) : 0;
    }
    out->push_back(std::move(row));
  }
  return {};
}

// Runs a "solve" or "expect" case into the report (a failure is listed with
// the memory cases' failures).
void EvaluateCapacity(const std::string& name, const Json& truth, const CaseSpec& s, Report* r) {
  Status st;
  if (!s.solve.empty()) {
    BoundaryRow row;
    st = EvaluateBoundary(name, truth, s, &row);
    if (st.ok()) r->boundaries.push_back(std::move(row));
  } else {
    st = EvaluateChecks(name, truth, s, &r->checks);
  }
  if (!st.ok()) {
    r->failed.push_back({name, Str(truth, "id"), fmt::format("{}: {}", s.solve.empty() ? "expect " + s.expect
                                                                                       : "solve " + s.solve,
                                                           st.error().message)});
  }
}

Result<Report> BuildReport(const fs::path& truth_dir, const fs::path& cases_path) {
  auto files = ReadTruth(truth_dir);
  if (!files.ok()) return files.error();
  // Cases the project recorded itself from public sources (bench/truth/,
  // next to accuracy_cases.json), with the same schema as the shared files.
  const fs::path recorded = cases_path.parent_path() / "truth";
  std::error_code ec;
  if (fs::is_directory(recorded, ec)) {
    auto more = ReadTruth(recorded);
    if (!more.ok()) return more.error();
    for (TruthFile& f : *more) files->push_back(std::move(f));
  }
  auto cases = ReadCases(cases_path);
  if (!cases.ok()) return cases.error();

  Report r;
  for (const TruthFile& f : *files) {
    r.files.emplace_back(f.name, f.cases.size());
    r.total_cases += f.cases.size();
    const auto& specs = (*cases)[f.name];
    std::set<std::string> seen;
    for (const Json& t : f.cases) {
      const std::string id = Str(t, "id");
      if (!seen.insert(id).second) {
        r.warnings.push_back(
            fmt::format("{}.jsonl: case '{}' appears twice; both counted", f.name, id));
      }
      const auto it = specs.find(id);
      // A record of tools/measure carries its own spec ("vramfit").
      const std::optional<CaseSpec> own = it == specs.end() ? SpecFromRecord(t) : std::nullopt;
      if (it == specs.end() && !own) {
        r.skipped.push_back({f.name, id, "not listed in accuracy_cases.json"});
        continue;
      }
      const CaseSpec& spec = own ? *own : it->second;
      if (!spec.skip.empty()) {
        r.skipped.push_back({f.name, id, spec.skip});
        continue;
      }
      if (!spec.solve.empty() || !spec.expect.empty()) {
        EvaluateCapacity(f.name, t, spec, &r);
        continue;
      }
      // A case with "compares" gives one row per figure.
      std::vector<CaseSpec> figures;
      if (spec.compares.empty()) {
        figures.push_back(spec);
      } else {
        for (const Json& x : spec.compares) {
          CaseSpec one = spec;
          one.compare = Str(x, "compare");
          one.device = 0;
          one.device_kind.clear();
          if (x.contains("device") && x["device"].is_number_integer()) one.device = x["device"].get<int64_t>();
          if (x.contains("device") && x["device"].is_string()) one.device_kind = x["device"].get<std::string>();
          figures.push_back(std::move(one));
        }
      }
      for (const CaseSpec& fig : figures) {
        Row row;
        Status st = Evaluate(f.name, t, fig, &row);
        if (!st.ok()) {
          r.failed.push_back({f.name, id, fmt::format("{}: {}", fig.compare, st.error().message)});
          continue;
        }
        r.rows.push_back(std::move(row));
      }
    }
    for (const auto& [id, spec] : specs) {
      if (!seen.count(id)) {
        r.warnings.push_back(
            fmt::format("accuracy_cases.json: {}.jsonl has no case '{}'", f.name, id));
      }
    }
  }
  for (const auto& [file, specs] : *cases) {
    const bool known = std::any_of(files->begin(), files->end(),
                                   [&](const TruthFile& f) { return f.name == file; });
    if (!known) {
      r.warnings.push_back(
          fmt::format("accuracy_cases.json: no {}.jsonl in {}", file, truth_dir.string()));
    }
  }
  return r;
}

// --- Summaries.

struct Group {
  std::string file, task, source, compare;  // compare: "mixed" if rows differ
  size_t n = 0;
  double median = 0;  // of |rel err|
  double mean_signed = 0;
  const Row* worst = nullptr;
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

// Groups by (file, task, source), then one "(all)" line per (file, task).
// Training rows ("train/<method>") are also rolled up over all methods, per
// source and in all, under the task "train" after the per-method groups.
constexpr char kTrainAll[] = "train/~";  // '~' sorts after every method

std::vector<Group> Summarize(const std::vector<Row>& rows) {
  std::map<std::tuple<std::string, std::string, std::string>, std::vector<const Row*>> by;
  for (const Row& r : rows) {
    by[{r.file, r.task, r.source}].push_back(&r);
    by[{r.file, r.task, "~(all)"}].push_back(&r);  // '~' sorts the roll-up last
    if (r.task.rfind("train/", 0) == 0) {
      by[{r.file, kTrainAll, r.source}].push_back(&r);
      by[{r.file, kTrainAll, "~(all)"}].push_back(&r);
    }
  }
  std::vector<Group> out;
  for (const auto& [key, list] : by) {
    Group g;
    g.file = std::get<0>(key);
    g.task = std::get<1>(key) == kTrainAll ? "train" : std::get<1>(key);
    g.source = std::get<2>(key) == "~(all)" ? "(all)" : std::get<2>(key);
    g.n = list.size();
    std::vector<double> abs;
    double sum = 0;
    for (const Row* r : list) {
      abs.push_back(std::fabs(r->rel_err));
      sum += r->rel_err;
      if (!g.worst || std::fabs(r->rel_err) > std::fabs(g.worst->rel_err)) g.worst = r;
      if (g.compare.empty())
        g.compare = r->compare;
      else if (g.compare != r->compare)
        g.compare = "mixed";
    }
    g.median = Median(abs);
    g.mean_signed = sum / static_cast<double>(list.size());
    out.push_back(std::move(g));
  }
  return out;
}

bool IsTrain(const Row& r) { return r.task.rfind("train/", 0) == 0; }

// The n largest |errors| among the inference rows (train false) or the
// training rows (train true).
std::vector<const Row*> Worst(const std::vector<Row>& rows, size_t n, bool train) {
  std::vector<const Row*> v;
  for (const Row& r : rows) {
    if (IsTrain(r) == train) v.push_back(&r);
  }
  std::sort(v.begin(), v.end(), [](const Row* a, const Row* b) {
    return std::fabs(a->rel_err) > std::fabs(b->rel_err);
  });
  if (v.size() > n) v.resize(n);
  return v;
}

// --- Rendering.

std::string Figure(double v, bool tokens) {
  return tokens ? fmt::format("{:.0f}", v) : fmt::format("{:.3f}", v / kGiBd);
}

std::string Pct(double x) { return fmt::format("{:+.1f}%", 100.0 * x); }

std::string Top(const Row& r) {
  std::string s;
  for (const auto& [name, share] : r.top) {
    if (!s.empty()) s += ", ";
    s += fmt::format("{} {:.0f}%", name, 100.0 * share);
  }
  return s;
}

// Wraps text at width columns, every line indented by indent spaces.
std::string Wrap(const std::string& text, size_t width, size_t indent) {
  std::string out, line;
  std::istringstream words(text);
  std::string w;
  while (words >> w) {
    if (!line.empty() && line.size() + 1 + w.size() > width) {
      out += std::string(indent, ' ') + line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + w;
  }
  if (!line.empty()) out += std::string(indent, ' ') + line + "\n";
  return out;
}

std::string ShortModel(const std::string& id) {
  const size_t slash = id.rfind('/');
  return slash == std::string::npos ? id : id.substr(slash + 1);
}

// --- Capacity cases: their own rows and summary, apart from the memory medians.

struct BoundarySummary {
  size_t n = 0;        // compared (answers below the search ceiling)
  size_t capped = 0;   // answers at the ceiling (lower bounds)
  double median = 0;   // of |rel err|
  double mean_signed = 0;
  const BoundaryRow* worst = nullptr;
};

BoundarySummary SummarizeBoundaries(const std::vector<BoundaryRow>& rows) {
  BoundarySummary b;
  std::vector<double> abs;
  double sum = 0;
  for (const BoundaryRow& r : rows) {
    if (r.ceiling) {
      ++b.capped;
      continue;
    }
    abs.push_back(std::fabs(r.rel_err));
    sum += r.rel_err;
    if (!b.worst || std::fabs(r.rel_err) > std::fabs(b.worst->rel_err)) b.worst = &r;
  }
  b.n = abs.size();
  b.median = Median(abs);
  b.mean_signed = b.n ? sum / static_cast<double>(b.n) : 0;
  return b;
}

bool Agrees(const CheckRow& c) { return c.fits == (c.expect == "fits"); }

size_t CheckCases(const std::vector<CheckRow>& checks) {
  std::set<std::string> ids;
  for (const CheckRow& c : checks) ids.insert(c.file + "/" + c.id);
  return ids.size();
}

std::string CapacityRowsText(const Report& r) {
  std::string o;
  if (!r.boundaries.empty()) {
    o += "\ncapacity boundaries: `vramfit fit --solve` answer vs the measured boundary; "
         "err = (answer - measured) / measured\n";
    o += fmt::format("  {:<5} {:<24} {:<11} {:>8} {:>8} {:>7}  {}\n", "id", "model", "solve", "answer",
                     "measured", "err", "settings");
    for (const BoundaryRow& b : r.boundaries) {
      o += fmt::format("  {:<5} {:<24} {:<11} {:>8} {:>8.0f} {:>7}  {}\n", b.id, ShortModel(b.model), b.solve,
                       b.ceiling ? fmt::format(">={:.0f}", b.answer) : fmt::format("{:.0f}", b.answer),
                       b.measured, b.ceiling ? "capped" : Pct(b.rel_err), b.settings);
      o += Wrap("planner: " + b.reason, 100, 8);
    }
  }
  if (!r.checks.empty()) {
    o += "\nOOM checks: one estimate's verdict against a report that the job ran out of memory (or ran)\n";
    o += fmt::format("  {:<5} {:<24} {:<6} {:>9} {:>9}  {:<5}  {}\n", "id", "model", "report", "estimate",
                     "capacity", "agree", "settings");
    for (const CheckRow& c : r.checks) {
      o += fmt::format("  {:<5} {:<24} {:<6} {:>9.3f} {:>9.3f}  {:<5}  {}\n", c.id, ShortModel(c.model), c.expect,
                       c.total / kGiBd, c.capacity / kGiBd, Agrees(c) ? "yes" : "NO", c.settings);
    }
  }
  return o;
}

std::string CapacitySummaryText(const Report& r) {
  std::string o;
  if (!r.boundaries.empty()) {
    const BoundarySummary b = SummarizeBoundaries(r.boundaries);
    o += fmt::format("\ncapacity boundaries (not in the medians above): {} compared", b.n);
    if (b.worst) {
      o += fmt::format(", median |err| {:.1f}%, bias {}, worst {} ({})", 100.0 * b.median, Pct(b.mean_signed),
                       Pct(b.worst->rel_err), b.worst->id);
    }
    if (b.capped) o += fmt::format("; {} capped at the search ceiling (not compared)", b.capped);
    o += "\n";
  }
  if (!r.checks.empty()) {
    const size_t agree = static_cast<size_t>(std::count_if(r.checks.begin(), r.checks.end(), Agrees));
    o += fmt::format("OOM checks: {} of {} verdicts agree ({} cases)\n", agree, r.checks.size(),
                     CheckCases(r.checks));
  }
  return o;
}

Json CapacityJson(const Report& r) {
  Json out;
  Json rows = Json::array();
  for (const BoundaryRow& b : r.boundaries) {
    rows.push_back({{"file", b.file + ".jsonl"}, {"id", b.id}, {"source", b.source}, {"solve", b.solve},
                    {"model", b.model}, {"settings", b.settings}, {"unit", b.unit},
                    {"answer", static_cast<int64_t>(b.answer)}, {"measured", b.measured},
                    {"rel_err", b.ceiling ? Json(nullptr) : Json(b.rel_err)}, {"capped", b.ceiling},
                    {"reason", b.reason}, {"why", b.why}});
  }
  out["boundaries"] = std::move(rows);
  const BoundarySummary b = SummarizeBoundaries(r.boundaries);
  out["boundary_summary"] = {{"n", b.n}, {"capped", b.capped},
                             {"median_abs_rel_err", b.worst ? Json(b.median) : Json(nullptr)},
                             {"mean_rel_err", b.worst ? Json(b.mean_signed) : Json(nullptr)},
                             {"worst", b.worst ? Json{{"id", b.worst->id}, {"rel_err", b.worst->rel_err}}
                                               : Json(nullptr)}};
  Json checks = Json::array();
  for (const CheckRow& c : r.checks) {
    checks.push_back({{"file", c.file + ".jsonl"}, {"id", c.id}, {"model", c.model}, {"settings", c.settings},
                      {"expect", c.expect}, {"fits", c.fits}, {"agrees", Agrees(c)},
                      {"total", static_cast<int64_t>(c.total)}, {"capacity", static_cast<int64_t>(c.capacity)},
                      {"why", c.why}});
  }
  out["oom_checks"] = std::move(checks);
  return out;
}

std::string RenderText(const Report& r, const fs::path& truth_dir) {
  std::string o;
  o += fmt::format("vramfit accuracy report: {} cases in {}\n", r.total_cases, truth_dir.string());
  o += "estimate and measured in GiB (2^30 B); err = (estimate - measured) / measured\n\n";

  // Rows grouped by (file, task, source), groups in order of first
  // appearance, rows in file order within a group.
  const auto group_of = [](const Row& row) {
    return fmt::format("{} / {} / {}", row.file, row.task, row.source);
  };
  std::map<std::string, size_t> first_seen;
  std::map<std::string, std::pair<size_t, size_t>> widths;  // settings, phase
  for (const Row& row : r.rows) {
    const std::string g = group_of(row);
    first_seen.emplace(g, first_seen.size());
    auto& [ws, wp] = widths.emplace(g, std::pair<size_t, size_t>{42, 7}).first->second;
    ws = std::max(ws, row.settings.size());
    wp = std::max(wp, row.phase.size());
  }
  std::vector<const Row*> ordered;
  for (const Row& row : r.rows) ordered.push_back(&row);
  std::stable_sort(ordered.begin(), ordered.end(), [&](const Row* a, const Row* b) {
    return first_seen[group_of(*a)] < first_seen[group_of(*b)];
  });
  std::string last_group;
  for (const Row* rp : ordered) {
    const Row& row = *rp;
    const std::string group = group_of(row);
    const auto [ws, wp] = widths[group];
    if (group != last_group) {
      o += fmt::format("{}\n", group);
      o += fmt::format("  {:<5} {:<24} {:<{}} {:<17} {:>8} {:>8} {:>7}  {:<{}} {}\n", "id", "model",
                       "settings", ws, "metric", "estimate", "measured", "err", "phase", wp,
                       "largest components (share of estimate)");
      last_group = group;
    }
    o += fmt::format("  {:<5} {:<24} {:<{}} {:<17} {:>8} {:>8} {:>7}  {:<{}} {}\n", row.id,
                     ShortModel(row.model), row.settings, ws, row.compare,
                     Figure(row.estimate, row.tokens), Figure(row.measured, row.tokens),
                     Pct(row.rel_err), row.phase, wp, Top(row));
  }

  o += CapacityRowsText(r);

  o += "\nsummary: |relative error| per runtime, task and source\n";
  o += fmt::format("  {:<9} {:<11} {:<26} {:<17} {:>3} {:>7} {:>7}  {}\n", "runtime", "task",
                   "source", "metric", "n", "median", "bias", "worst");
  for (const Group& g : Summarize(r.rows)) {
    o += fmt::format("  {:<9} {:<11} {:<26} {:<17} {:>3} {:>6.1f}% {:>7}  {} ({})\n", g.file,
                     g.task, g.source, g.compare, g.n, 100.0 * g.median, Pct(g.mean_signed),
                     Pct(g.worst->rel_err), g.worst->id);
  }
  o += "  (bias = mean signed error: negative means vramfit under-estimates)\n";
  o += CapacitySummaryText(r);

  for (const bool train : {false, true}) {
    const std::vector<const Row*> worst = Worst(r.rows, train ? 8 : 5, train);
    if (worst.empty()) continue;
    o += train ? "\nworst training cases\n" : "\nworst cases\n";
    for (const Row* w : worst) {
      o += fmt::format("  {} {:>7}  {} ({}; {})\n", w->id, Pct(w->rel_err), ShortModel(w->model),
                       w->settings, w->compare);
      o += Wrap(w->why, 100, 16);
    }
  }

  if (!r.failed.empty()) {
    o += fmt::format("\nfailed ({}): listed as expressible, but the estimate could not be made\n",
                     r.failed.size());
    for (const Failed& f : r.failed)
      o += fmt::format("  {}.jsonl {}: {}\n", f.file, f.id, f.message);
  }

  // Skipped cases, grouped by reason in first-seen order.
  std::vector<std::pair<std::string, std::vector<std::string>>> reasons;
  for (const Skipped& s : r.skipped) {
    const std::string key = fmt::format("{}.jsonl: {}", s.file, s.reason);
    auto it =
        std::find_if(reasons.begin(), reasons.end(), [&](const auto& p) { return p.first == key; });
    if (it == reasons.end()) {
      reasons.push_back({key, {}});
      it = reasons.end() - 1;
    }
    it->second.push_back(s.id);
  }
  o += fmt::format("\nskipped ({}): cases vramfit cannot express yet\n", r.skipped.size());
  for (const auto& [reason, ids] : reasons) {
    std::string list;
    for (const std::string& id : ids) list += (list.empty() ? "" : " ") + id;
    o += fmt::format("  {} [{}]: {}\n", reason, ids.size(), list);
  }

  for (const std::string& w : r.warnings) o += fmt::format("\nwarning: {}", w);
  if (!r.warnings.empty()) o += "\n";

  o += "\ntotals:";
  for (const auto& [name, n] : r.files) o += fmt::format(" {}.jsonl {},", name, n);
  const size_t capacity = r.boundaries.size() + CheckCases(r.checks);
  o += fmt::format(" {} cases; expressed {} (estimated {}, capacity {}, failed {}), skipped {}\n", r.total_cases,
                   r.rows.size() + capacity + r.failed.size(), r.rows.size(), capacity, r.failed.size(),
                   r.skipped.size());
  return o;
}

Json RowJson(const Row& row) {
  Json j;
  j["file"] = row.file + ".jsonl";
  j["id"] = row.id;
  j["task"] = row.task;
  j["source"] = row.source;
  j["model"] = row.model;
  j["catalog_id"] = row.catalog_id;
  j["settings"] = row.settings;
  j["compare"] = row.compare;
  j["unit"] = row.tokens ? "tokens" : "bytes";
  // Bytes as integers (DESIGN.md: integers are bytes); token counts as read.
  j["estimate"] =
      row.tokens ? Json(row.estimate) : Json(static_cast<int64_t>(std::llround(row.estimate)));
  j["measured"] =
      row.tokens ? Json(row.measured) : Json(static_cast<int64_t>(std::llround(row.measured)));
  j["rel_err"] = row.rel_err;
  j["peak_phase"] = row.phase;
  Json top = Json::array();
  for (const auto& [name, share] : row.top) top.push_back({{"name", name}, {"share", share}});
  j["largest_components"] = std::move(top);
  j["why"] = row.why;
  j["notes"] = row.notes;
  return j;
}

std::string RenderJson(const Report& r, const fs::path& truth_dir) {
  Json doc;
  doc["schema"] = "vramfit.accuracy/1";
  doc["truth_dir"] = truth_dir.string();
  Json cases = Json::array();
  for (const Row& row : r.rows) cases.push_back(RowJson(row));
  doc["cases"] = std::move(cases);
  Json groups = Json::array();
  for (const Group& g : Summarize(r.rows)) {
    groups.push_back({{"file", g.file + ".jsonl"},
                      {"task", g.task},
                      {"source", g.source},
                      {"compare", g.compare},
                      {"n", g.n},
                      {"median_abs_rel_err", g.median},
                      {"mean_rel_err", g.mean_signed},
                      {"worst", {{"id", g.worst->id}, {"rel_err", g.worst->rel_err}}}});
  }
  doc["groups"] = std::move(groups);
  Json worst = Json::array();
  for (const bool train : {false, true}) {
    for (const Row* w : Worst(r.rows, train ? 8 : 5, train)) {
      worst.push_back({{"id", w->id}, {"task", w->task}, {"rel_err", w->rel_err}});
    }
  }
  doc["worst"] = std::move(worst);
  const Json capacity = CapacityJson(r);
  for (const auto& [k, v] : capacity.items()) doc[k] = v;
  Json failed = Json::array();
  for (const Failed& f : r.failed) {
    failed.push_back({{"file", f.file + ".jsonl"}, {"id", f.id}, {"error", f.message}});
  }
  doc["failed"] = std::move(failed);
  Json skipped = Json::array();
  for (const Skipped& s : r.skipped) {
    skipped.push_back({{"file", s.file + ".jsonl"}, {"id", s.id}, {"reason", s.reason}});
  }
  doc["skipped"] = std::move(skipped);
  doc["warnings"] = r.warnings;
  Json files = Json::object();
  for (const auto& [name, n] : r.files) files[name + ".jsonl"] = n;
  doc["totals"] = {{"cases", r.total_cases},
                   {"files", std::move(files)},
                   {"expressed", r.rows.size() + r.boundaries.size() + CheckCases(r.checks) + r.failed.size()},
                   {"estimated", r.rows.size()},
                   {"capacity", r.boundaries.size() + CheckCases(r.checks)},
                   {"failed", r.failed.size()},
                   {"skipped", r.skipped.size()}};
  return doc.dump(2) + "\n";
}

// --- Uncertainty bands (data/accuracy_bands.json).

// One band per (runtime, task, metric) over the byte rows (token counts are
// not bytes: no band).
AccuracyBands BuildBands(const Report& r) {
  std::map<std::tuple<std::string, std::string, std::string>, std::vector<std::pair<std::string, double>>> by;
  for (const Row& row : r.rows) {
    if (row.tokens || row.band_runtime.empty()) continue;
    by[{row.band_runtime, row.band_task, row.band_metric}].emplace_back(row.id, row.rel_err);
  }
  AccuracyBands bands;
  for (const auto& [key, errs] : by) {
    bands.bands.push_back(MakeBand(std::get<0>(key), std::get<1>(key), std::get<2>(key), errs));
  }
  return bands;
}

// The groups whose line differs between two band documents ("hf inference
// allocated: n 40 -> 41"), for --check-bands.
std::string BandsDiff(const std::string& committed, const AccuracyBands& now) {
  auto old = io::ParseAccuracyBands(committed, "committed file");
  if (!old.ok()) return "  " + old.error().message + "\n";
  const auto line = [](const AccuracyBand& b) {
    return fmt::format("n {}, median |err| {:.4f}, p10 {:+.4f}, p90 {:+.4f}", b.n, b.median_abs, b.p10, b.p90);
  };
  std::string o;
  for (const AccuracyBand& b : now.bands) {
    const AccuracyBand* was = old->Find(b.runtime, b.task, b.metric);
    if (!was) {
      o += fmt::format("  {} {} {}: new ({})\n", b.runtime, b.task, b.metric, line(b));
    } else if (line(*was) != line(b) || was->cases != b.cases) {
      o += fmt::format("  {} {} {}: {} -> {}{}\n", b.runtime, b.task, b.metric, line(*was), line(b),
                       was->cases != b.cases ? " (cases changed)" : "");
    }
  }
  for (const AccuracyBand& b : old->bands) {
    if (!now.Find(b.runtime, b.task, b.metric)) {
      o += fmt::format("  {} {} {}: gone (was {})\n", b.runtime, b.task, b.metric, line(b));
    }
  }
  return o;
}

// --check-bands: 0 when the file is what --write-bands would write, else 1.
int CheckBands(const fs::path& path, const std::string& want) {
  auto have = ReadText(path);
  if (have.ok() && *have == want) {
    std::cout << "accuracy: " << path.string() << " is current\n";
    return 0;
  }
  std::cerr << "accuracy: " << path.string()
            << (have.ok() ? " differs from the errors measured now" : ": cannot read")
            << " (the estimator, accuracy_cases.json or the truth files changed).\n";
  if (have.ok()) {
    auto now = io::ParseAccuracyBands(want, "now");
    if (now.ok()) std::cerr << BandsDiff(*have, *now);
  }
  std::cerr << "Regenerate it from the source tree and commit it:\n  " << io::kWriteBandsCommand << "\n";
  return 1;
}

int Main(int argc, char** argv) {
  fs::path truth_dir = fs::path(VRAMFIT_TRUTH_DIR).lexically_normal();
  fs::path cases_path = VRAMFIT_ACCURACY_CASES;
  bool json = false;
  bool dir_given = false;
  std::string write_bands, check_bands;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json") {
      json = true;
    } else if (a == "--cases" && i + 1 < argc) {
      cases_path = argv[++i];
    } else if (a == "--write-bands" && i + 1 < argc) {
      write_bands = argv[++i];
    } else if (a == "--check-bands" && i + 1 < argc) {
      check_bands = argv[++i];
    } else if (a == "-h" || a == "--help") {
      std::cout << "usage: accuracy [TRUTH_DIR] [--cases FILE] [--json] [--write-bands FILE | --check-bands FILE]\n"
                << "  TRUTH_DIR      default " << VRAMFIT_TRUTH_DIR << "\n"
                << "  --cases        default " << VRAMFIT_ACCURACY_CASES << "\n"
                << "  --write-bands  write the measured error bands (data/accuracy_bands.json) instead of the report\n"
                << "  --check-bands  exit 1 when FILE differs from what --write-bands would write\n";
      return 0;
    } else if (!a.empty() && a[0] != '-' && !dir_given) {
      truth_dir = a;
      dir_given = true;
    } else {
      std::cerr << "accuracy: error: unknown argument '" << a
                << "' (usage: accuracy [TRUTH_DIR] [--cases FILE] [--json])\n";
      return 2;
    }
  }
  if (!write_bands.empty() && !check_bands.empty()) {
    std::cerr << "accuracy: error: give --write-bands or --check-bands, not both\n";
    return 2;
  }
  std::error_code ec;
  if (!check_bands.empty() && !fs::is_directory(truth_dir, ec)) {
    std::cout << "accuracy: skipped: no truth directory " << truth_dir.string() << "\n";
    return 77;
  }
  auto report = BuildReport(truth_dir, cases_path);
  if (!report.ok()) {
    std::cerr << "accuracy: error: " << report.error().message << "\n";
    return 1;
  }
  if (!write_bands.empty() || !check_bands.empty()) {
    const std::string doc = io::AccuracyBandsJson(BuildBands(*report));
    if (!check_bands.empty()) return CheckBands(check_bands, doc);
    std::ofstream out(write_bands, std::ios::binary);
    out << doc;
    if (!out.flush()) {
      std::cerr << "accuracy: error: " << write_bands << ": cannot write\n";
      return 1;
    }
    std::cout << "accuracy: wrote " << write_bands << "\n";
    return 0;
  }
  std::cout << (json ? RenderJson(*report, truth_dir) : RenderText(*report, truth_dir));
  return 0;
}

}  // namespace
}  // namespace vramfit::bench

int main(int argc, char** argv) {
  try {
    return vramfit::bench::Main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "accuracy: error: " << e.what() << "\n";
    return 1;
  }
}
