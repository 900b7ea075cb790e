// PyTorch measurements and nvidia-smi output:
//   - a JSON object of torch.cuda.memory_stats() ("allocated_bytes.all.peak",
//     "reserved_bytes.all.peak", ...: bytes, torch/cuda/memory.py);
//   - tools/measure/measure.py records (JSON lines in ../shared/truth/pytorch.jsonl's
//     format, "measured_unit": "bytes", each with its "vramfit" job object;
//     tools/measure/README.md), or a JSON array of them;
//   - the small record {"allocated_peak", "reserved_peak", "nvml_used", "job": {...}};
//   - nvidia-smi --query-gpu=index,name,memory.used,memory.total --format=csv
//     (with or without "nounits"; MiB = 2^20 B).
#include <map>
#include <set>

#include <fmt/format.h>

#include "engine_log_util.h"
#include "vramfit/io/json_util.h"

namespace vramfit::io {

namespace {

using log::Line;

// A JSON value as a command-line argument value.
std::optional<std::string> ArgValue(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number_float()) return fmt::format("{}", v.get<double>());
  return std::nullopt;
}

// obj[key] when it is a string, else `fallback` (never throws on a wrong type).
std::string StrOr(const Json& obj, const char* key, const std::string& fallback) {
  if (!obj.is_object() || !obj.contains(key) || !obj[key].is_string()) return fallback;
  return obj[key].get<std::string>();
}

Status AddBytes(EngineLog& out, std::string_view where, int line, std::string component, std::string engine_name,
                const Json& v) {
  if (out.figures.size() >= log::kMaxFigures) {
    return InvalidArgument(fmt::format("{}: more than {} measurements in one file", where, log::kMaxFigures));
  }
  if (!v.is_number_integer() || v.get<int64_t>() < 0) {
    return InvalidArgument(fmt::format("{}: {}: expected a byte count, got {}", where, engine_name, Preview(v)));
  }
  const int64_t b = v.get<int64_t>();
  if (b > (int64_t{1} << 53)) {
    return InvalidArgument(fmt::format("{}: {}: {} bytes is larger than any device", where, engine_name, b));
  }
  Measured m;
  m.device = "gpu0";
  m.engine_name = std::move(engine_name);
  m.component = std::move(component);
  m.bytes = Bytes(b);
  m.half_ulp = Bytes(0);
  m.printed = fmt::format("{} B", b);
  m.line = line;
  out.figures.push_back(std::move(m));
  return {};
}

Status JobArgs(EngineLog& out, const Json& job, std::string_view where) {
  if (!job.is_object()) return InvalidArgument(fmt::format("{}: \"job\" is not an object", where));
  for (const auto& [k, v] : job.items()) {
    if (k == "model") {
      if (!v.is_string()) return InvalidArgument(fmt::format("{}: job.model is not a string", where));
      out.model = v.get<std::string>();
    } else if (k == "mode") {
      const std::string m = v.is_string() ? v.get<std::string>() : "";
      if (m != "infer" && m != "train") {
        return InvalidArgument(fmt::format("{}: job.mode: expected \"infer\" or \"train\", got {}", where, Preview(v)));
      }
      out.record_mode = m;
    } else if (k == "args") {
      VRAMFIT_TRY(JobArgs(out, v, where));
    } else if (k == "compare" || k == "command") {
      continue;
    } else if (auto a = ArgValue(v)) {
      out.record_args.emplace_back(k, *a);
    } else {
      return InvalidArgument(fmt::format("{}: job.{}: expected a string, number or bool, got {}", where, k, Preview(v)));
    }
  }
  return {};
}

// One tools/measure record (a line of a .jsonl file).
Status MeasureRecord(EngineLog& out, const Json& r, std::string_view where, int line, std::string* job_key) {
  const Json* vf = r.contains("vramfit") ? &r["vramfit"] : nullptr;
  if (vf == nullptr || !vf->is_object()) {
    return InvalidArgument(fmt::format("{}: record without a \"vramfit\" job object (tools/measure/README.md)", where));
  }
  const std::string key = StrOr(*vf, "command", "");
  if (!job_key->empty() && key != *job_key) {
    return InvalidArgument(fmt::format(
        "{}: the records are of more than one job (check compares one job: keep one job's records)", where));
  }
  *job_key = key;
  auto unit = GetString(r, "measured_unit", where);
  if (!unit.ok()) return unit.error();
  if (*unit != "bytes") {
    return InvalidArgument(fmt::format("{}: measured_unit: expected \"bytes\", got {}", where,
                                       *unit ? "\"" + **unit + "\"" : std::string("null")));
  }
  const std::string compare = StrOr(*vf, "compare", "");
  std::string component;
  if (compare == "allocated") component = "allocated_peak";
  else if (compare == "reserved") component = "reserved_peak";
  else if (compare == "total") component = "total";
  else return InvalidArgument(fmt::format("{}: vramfit.compare: expected allocated, reserved or total, got '{}'", where, compare));
  if (!r.contains("measured_value") || r["measured_value"].is_null()) {
    return InvalidArgument(fmt::format("{}: measured_value is null (a --dry-run template, not a measurement)", where));
  }
  VRAMFIT_TRY(AddBytes(out, where, line, component, StrOr(r, "metric", compare).substr(0, 60), r["measured_value"]));
  if (out.record_args.empty() && !out.record_mode) {
    Json job = *vf;
    VRAMFIT_TRY(JobArgs(out, job, where));
  }
  return {};
}

Status MemoryStats(EngineLog& out, const Json& s, std::string_view where) {
  static constexpr std::pair<std::string_view, std::string_view> kKeys[] = {
      {"allocated_bytes.all.peak", "allocated_peak"},
      {"reserved_bytes.all.peak", "reserved_peak"},
      {"active_bytes.all.peak", "active_peak"},
      {"allocated_bytes.all.current", "allocated_current"},
      {"reserved_bytes.all.current", "reserved_current"},
  };
  for (const auto& [key, component] : kKeys) {
    if (!s.contains(key)) continue;
    const bool counterpart = component == "allocated_peak" || component == "reserved_peak";
    VRAMFIT_TRY(AddBytes(out, where, 1, std::string(component), std::string(key), s[std::string(key)]));
    out.figures.back().has_counterpart = counterpart;
  }
  return {};
}

}  // namespace

Result<EngineLog> ParseTorchJson(std::string_view text, std::string_view name) {
  EngineLog out;
  // JSON lines (tools/measure output) or one document.
  std::vector<std::pair<Json, int>> docs;
  auto whole = ParseJson(text, name);
  if (whole.ok()) {
    if (whole->is_array()) {
      for (const Json& j : *whole) docs.emplace_back(j, 1);
    } else {
      docs.emplace_back(std::move(whole.value()), 1);
    }
  } else {
    auto lines = log::SplitLines(text, name, &out.notes);
    if (!lines.ok()) return lines.error();
    size_t pos = 0;
    int no = 0;
    while (pos < text.size()) {
      size_t end = text.find('\n', pos);
      if (end == std::string_view::npos) end = text.size();
      ++no;
      const std::string_view l = log::Trim(text.substr(pos, end - pos));
      if (!l.empty()) {
        auto j = ParseJson(l, fmt::format("{}:{}", name, no));
        if (!j.ok()) {
          // A truncated last line yields what the lines before hold.
          if (end == text.size() && !docs.empty()) {
            out.notes.push_back(fmt::format("line {}: not complete JSON (a truncated file?), skipped", no));
            break;
          }
          return j.error();
        }
        docs.emplace_back(std::move(j.value()), no);
      }
      pos = end + 1;
    }
  }
  if (docs.empty()) return InvalidArgument(fmt::format("{}: no JSON record", name));
  std::string job_key;
  for (const auto& [d, no] : docs) {
    const std::string where = fmt::format("{}:{}", name, no);
    if (!d.is_object()) return InvalidArgument(fmt::format("{}: expected a JSON object", where));
    if (d.contains("record_template") || d.contains("dry_run")) {
      return InvalidArgument(fmt::format("{}: a measure.py --dry-run listing, not a measurement", where));
    }
    if (d.contains("measured_value")) {
      out.format = LogFormat::kMeasureRecord;
      VRAMFIT_TRY(MeasureRecord(out, d, where, no, &job_key));
    } else if (d.contains("allocated_peak") || d.contains("reserved_peak") || d.contains("nvml_used")) {
      out.format = LogFormat::kMeasureRecord;
      if (d.contains("allocated_peak")) VRAMFIT_TRY(AddBytes(out, where, no, "allocated_peak", "allocated_peak", d["allocated_peak"]));
      if (d.contains("reserved_peak")) VRAMFIT_TRY(AddBytes(out, where, no, "reserved_peak", "reserved_peak", d["reserved_peak"]));
      if (d.contains("nvml_used")) VRAMFIT_TRY(AddBytes(out, where, no, "total", "nvml_used", d["nvml_used"]));
      if (d.contains("job")) VRAMFIT_TRY(JobArgs(out, d["job"], where));
    } else if (d.contains("allocated_bytes.all.peak") || d.contains("reserved_bytes.all.peak")) {
      out.format = LogFormat::kTorchMemoryStats;
      VRAMFIT_TRY(MemoryStats(out, d, where));
    } else {
      return InvalidArgument(fmt::format(
          "{}: a JSON object with none of measured_value (tools/measure record), allocated_peak / reserved_peak / "
          "nvml_used, or allocated_bytes.all.peak (torch.cuda.memory_stats())",
          where));
    }
  }
  return out;
}

namespace {

std::vector<std::string> SplitCsv(std::string_view line) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    const size_t c = line.find(',', pos);
    out.emplace_back(log::Trim(line.substr(pos, c == std::string_view::npos ? std::string_view::npos : c - pos)));
    if (c == std::string_view::npos) break;
    pos = c + 1;
  }
  return out;
}

}  // namespace

Result<EngineLog> ParseNvidiaSmiCsv(std::string_view text, std::string_view name) {
  EngineLog out;
  out.format = LogFormat::kNvidiaSmi;
  auto lines = log::SplitLines(text, name, &out.notes);
  if (!lines.ok()) return lines.error();
  if (lines->empty()) return InvalidArgument(fmt::format("{}: empty", name));
  const std::vector<std::string> header = SplitCsv((*lines)[0].text);
  int used = -1, total = -1, index = -1, gpu = -1;
  for (size_t i = 0; i < header.size(); ++i) {
    const std::string& h = header[i];
    if (h.rfind("memory.used", 0) == 0) used = static_cast<int>(i);
    else if (h.rfind("memory.total", 0) == 0) total = static_cast<int>(i);
    else if (h == "index") index = static_cast<int>(i);
    else if (h == "name") gpu = static_cast<int>(i);
  }
  if (used < 0) {
    return InvalidArgument(fmt::format(
        "{}:{}: expected nvidia-smi's CSV header with memory.used (run nvidia-smi "
        "--query-gpu=index,name,memory.used,memory.total --format=csv; a noheader CSV does not say which column is which)",
        name, (*lines)[0].no));
  }
  // Per GPU the largest memory.used of the samples (nvidia-smi -l prints one
  // row per GPU and interval).
  std::map<std::string, size_t> by_device;
  std::map<std::string, int> samples;
  for (size_t r = 1; r < lines->size(); ++r) {
    const Line& l = (*lines)[r];
    const std::vector<std::string> f = SplitCsv(l.text);
    if (f.size() != header.size()) {
      if (r + 1 == lines->size()) {
        out.notes.push_back(fmt::format("line {}: {} of {} columns (a truncated file?), skipped", l.no, f.size(), header.size()));
        break;
      }
      return InvalidArgument(fmt::format("{}:{}: {} columns, the header has {}", name, l.no, f.size(), header.size()));
    }
    std::string value = f[static_cast<size_t>(used)];
    std::string unit = "MiB";
    if (value.size() > 4 && value.substr(value.size() - 4) == " MiB") value.resize(value.size() - 4);
    const std::string device = index >= 0 ? "gpu" + f[static_cast<size_t>(index)] : fmt::format("gpu{}", r - 1);
    if (index >= 0 && log::NumberAt(f[static_cast<size_t>(index)]) != f[static_cast<size_t>(index)]) {
      return InvalidArgument(fmt::format("{}:{}: index: expected a GPU number, got '{}'", name, l.no, f[static_cast<size_t>(index)]));
    }
    EngineLog one;
    VRAMFIT_TRY(log::AddFigure(one, name, l, device, gpu >= 0 ? f[static_cast<size_t>(gpu)] : std::string(),
                               "memory.used", "total", true, value, int64_t{1} << 20, unit));
    ++samples[device];
    auto it = by_device.find(device);
    if (it == by_device.end()) {
      by_device[device] = out.figures.size();
      out.figures.push_back(std::move(one.figures[0]));
      if (gpu >= 0) out.gpu_names.push_back(f[static_cast<size_t>(gpu)]);
      if (total >= 0) {
        out.notes.push_back(fmt::format("{}: memory.total {}", device, f[static_cast<size_t>(total)]));
      }
    } else if (one.figures[0].bytes > out.figures[it->second].bytes) {
      out.figures[it->second] = std::move(one.figures[0]);
    }
  }
  if (out.figures.empty()) return InvalidArgument(fmt::format("{}: the nvidia-smi CSV has a header but no row", name));
  for (const auto& [d, n] : samples) {
    if (n > 1) out.notes.push_back(fmt::format("{}: {} samples, the largest memory.used taken", d, n));
  }
  out.notes.push_back("nvidia-smi memory.used counts every process on the GPU, not only the job's");
  return out;
}

}  // namespace vramfit::io
