// Printers for the planner: fit answers, GPU rankings, sweeps.
#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "vramfit/render.h"

namespace vramfit {

using Json = nlohmann::ordered_json;

Json EstimateDoc(const Estimate& e, const EstimateExtras& x);  // json.cc

namespace {

Json LadderJson(const std::vector<LadderStep>& ladder) {
  Json l = Json::array();
  for (const LadderStep& s : ladder) {
    l.push_back({{"option", s.option},
                 {"fits", s.fits},
                 {"total_bytes", s.total.value()},
                 {"capacity_bytes", s.capacity.value()},
                 {"reason", s.reason}});
  }
  return l;
}

Json FitDoc(const FitAnswer& a) {
  Json j;
  j["schema"] = "vramfit.fit/1";
  j["solve"] = SolveName(a.solve);
  Json value = a.number > 0 ? Json(a.number) : Json(a.value);
  if (!a.found) value = nullptr;
  j["answer"] = {{"value", value}, {"label", a.value}, {"reason", a.reason}};
  if (!a.settings.empty()) {
    Json s = Json::object();
    for (const auto& [k, v] : a.settings) s[k] = v;
    j["answer"]["settings"] = s;
  }
  if (a.nodes > 0) {
    j["answer"]["nodes"] = a.nodes;
    j["answer"]["gpus_per_node"] = a.gpus_per_node;
  }
  j["estimate"] = a.estimate ? EstimateDoc(*a.estimate, {.uncertainty = a.estimate_uncertainty}) : Json(nullptr);
  j["next"] = a.next ? EstimateDoc(*a.next, {.uncertainty = a.next_uncertainty}) : Json(nullptr);
  j["ladder"] = LadderJson(a.ladder);
  Json alts = Json::array();
  for (const FitAnswer::Alternative& x : a.alternatives) {
    Json set = Json::object();
    for (const auto& [k, v] : x.settings) set[k] = v;
    alts.push_back({{"option", x.option}, {"settings", set}, {"gpus", x.gpus}, {"nodes", x.nodes},
                    {"total_bytes", x.total.value()}, {"capacity_bytes", x.capacity.value()}, {"reason", x.reason}});
  }
  j["alternatives"] = alts;
  j["notes"] = a.notes;
  return j;
}

std::string Cell(const SweepCell& c, Units u) {
  if (!c.estimate) return "error";
  return FormatBytes(c.estimate->total, u) + (c.fits ? " ok" : c.estimate->fits ? " OOM" : "");
}

}  // namespace

std::string RenderFitJson(const FitAnswer& a) {
  return FitDoc(a).dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::string RenderFitText(const FitAnswer& a, Units u) {
  std::string out = fmt::format("{}: {}\n  {}\n", SolveName(a.solve), a.value, a.reason);
  if (!a.settings.empty()) {
    out += "  flags:";
    for (const auto& [k, v] : a.settings) out += fmt::format(" --{} {}", k, v);
    out += "\n";
  }
  if (!a.alternatives.empty()) {
    out += "  alternatives:\n";
    for (const FitAnswer::Alternative& x : a.alternatives) {
      std::string flags;
      for (const auto& [k, v] : x.settings) flags += fmt::format(" --{} {}", k, v);
      out += fmt::format("    {}: {}\n      flags:{}\n", x.option, x.reason, flags);
    }
  }
  out += "\n";
  if (!a.notes.empty()) {
    out += "notes:\n";
    for (const std::string& n : a.notes) out += "  - " + n + "\n";
    out += "\n";
  }
  if (!a.ladder.empty()) {
    out += "tried:\n";
    for (const LadderStep& s : a.ladder) {
      out += fmt::format("  {} {:<58} {}\n", s.fits ? "+" : "-", s.option, s.reason);
    }
    out += "\n";
  }
  if (a.estimate) {
    out += "at the answer:\n";
    out += RenderEstimateText(*a.estimate, u);
  }
  return out;
}

std::string RenderGpuRankText(const std::vector<GpuRank>& ranks, Units u) {
  std::string out = fmt::format("{:<24}{:>6}  {:<22}{:>12}{:>12}{:>10}{:>14}\n", "gpu", "count", "layout", "headroom",
                                "memory", "GB/s", "decode tok/s");
  for (const GpuRank& r : ranks) {
    if (!r.answer.found) {
      out += fmt::format("{:<24}{:>6}  {}\n", r.gpu.name, "-", r.answer.reason);
      continue;
    }
    const DeviceEstimate* tight = nullptr;
    for (const DeviceEstimate& d : r.answer.estimate->devices) {
      if (!tight || (d.gpu && tight->gpu && d.gpu->capacity - d.total < tight->gpu->capacity - tight->total)) tight = &d;
    }
    const Bytes headroom = tight && tight->gpu ? tight->gpu->capacity - tight->total : Bytes(0);
    std::string layout = r.answer.value;
    const size_t paren = layout.find('(');
    if (paren != std::string::npos) layout = layout.substr(paren + 1, layout.size() - paren - 2);
    out += fmt::format("{:<24}{:>6}  {:<22}{:>12}{:>12}{:>10}{:>14}\n", r.gpu.name, r.answer.number, layout,
                       FormatBytes(headroom, u), FormatBytes(r.gpu.capacity, u),
                       r.gpu.bandwidth_gb_s > 0 ? fmt::format("{:.0f}", r.gpu.bandwidth_gb_s) : "?",
                       r.throughput ? fmt::format("{:.0f}", r.throughput->decode_tokens_per_s) : "-");
  }
  return out;
}

std::string RenderGpuRankJson(const std::vector<GpuRank>& ranks) {
  Json j;
  j["schema"] = "vramfit.gpu-ranking/1";
  j["gpus"] = Json::array();
  for (const GpuRank& r : ranks) {
    Json g = FitDoc(r.answer);
    g["gpu"] = r.gpu.name;
    g["bandwidth_gb_s"] = r.gpu.bandwidth_gb_s > 0 ? Json(r.gpu.bandwidth_gb_s) : Json(nullptr);
    g["decode_tokens_per_s"] = r.throughput ? Json(r.throughput->decode_tokens_per_s) : Json(nullptr);
    j["gpus"].push_back(g);
  }
  return j.dump(2) + "\n";
}

std::string RenderSweepText(const std::vector<SweepCell>& cells, Units u) {
  if (cells.empty()) return "";
  const size_t nkeys = cells[0].keys.size();
  std::string out;
  if (nkeys == 2) {
    // A grid: first key down, second key across.
    std::vector<std::string> rows, cols;
    for (const SweepCell& c : cells) {
      if (std::find(rows.begin(), rows.end(), c.keys[0].text) == rows.end()) rows.push_back(c.keys[0].text);
      if (std::find(cols.begin(), cols.end(), c.keys[1].text) == cols.end()) cols.push_back(c.keys[1].text);
    }
    out += fmt::format("{:<16}", cells[0].keys[0].name + " \\ " + cells[0].keys[1].name);
    for (const std::string& c : cols) out += fmt::format("{:>20}", c);
    out += "\n";
    for (const std::string& r : rows) {
      out += fmt::format("{:<16}", r);
      for (const std::string& c : cols) {
        std::string v = "-";
        for (const SweepCell& cell : cells) {
          if (cell.keys[0].text == r && cell.keys[1].text == c) v = Cell(cell, u);
        }
        out += fmt::format("{:>20}", v);
      }
      out += "\n";
    }
  } else {
    for (const SweepCell& c : cells) {
      std::string k;
      for (const SweepKey& key : c.keys) k += (k.empty() ? "" : ", ") + key.name + "=" + key.text;
      out += fmt::format("{:<48}{:>20}{}\n", k, Cell(c, u), c.estimate ? "" : "  " + c.error);
    }
  }
  out += "(total as nvidia-smi shows it on the fullest GPU; ok = fits, OOM = does not fit)\n";
  return out;
}

std::string RenderSweepJson(const std::vector<SweepCell>& cells) {
  Json j;
  j["schema"] = "vramfit.sweep/1";
  j["cells"] = Json::array();
  for (const SweepCell& c : cells) {
    Json k = Json::object();
    for (const SweepKey& key : c.keys) std::visit([&](const auto& x) { k[key.name] = x; }, key.value);
    j["cells"].push_back({{"settings", k},
                          {"total_bytes", c.estimate ? Json(c.estimate->total.value()) : Json(nullptr)},
                          {"fits", c.estimate ? Json(c.fits) : Json(nullptr)},
                          {"error", c.estimate ? Json(nullptr) : Json(c.error)}});
  }
  return j.dump(2) + "\n";
}

std::string RenderSweepCsv(const std::vector<SweepCell>& cells) {
  if (cells.empty()) return "";
  std::string out;
  for (const SweepKey& key : cells[0].keys) out += key.name + ",";
  out += "total_bytes,fits,error\n";
  for (const SweepCell& c : cells) {
    for (const SweepKey& key : c.keys) out += key.text + ",";
    out += c.estimate ? fmt::format("{},{},", c.estimate->total.value(), c.fits ? "true" : "false") : ",,";
    std::string err = c.error;
    std::replace(err.begin(), err.end(), ',', ';');
    out += err + "\n";
  }
  return out;
}

}  // namespace vramfit
