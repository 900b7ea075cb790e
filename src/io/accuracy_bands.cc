// data/accuracy_bands.json reader and writer (include/io/vramfit/io/accuracy_bands.h).
#include "vramfit/io/accuracy_bands.h"

#include <fmt/format.h>

#include <algorithm>
#include <tuple>

#include "vramfit/io/embedded.h"
#include "vramfit/io/json_util.h"

namespace vramfit::io {

namespace {

constexpr char kSchema[] = "vramfit.accuracy_bands/1";
constexpr char kPath[] = "data/accuracy_bands.json";

Result<AccuracyBand> ParseBand(const Json& j, const std::string& where) {
  if (!j.is_object()) return Corrupt(where + ": not an object");
  AccuracyBand b;
  for (const auto& [key, out] : {std::pair<const char*, std::string*>{"runtime", &b.runtime},
                                 {"task", &b.task}, {"metric", &b.metric}}) {
    auto s = GetString(j, key, where);
    if (!s.ok()) return s.error();
    if (!*s || (*s)->empty()) return Corrupt(fmt::format("{}: \"{}\" missing", where, key));
    *out = **s;
  }
  auto n = GetInt(j, "n", where);
  if (!n.ok()) return n.error();
  if (!*n || **n <= 0) return Corrupt(where + ": \"n\" must be a positive integer");
  b.n = **n;
  for (const auto& [key, out] : {std::pair<const char*, double*>{"median_abs_rel_err", &b.median_abs},
                                 {"p10_rel_err", &b.p10}, {"p90_rel_err", &b.p90}}) {
    auto x = GetNumber(j, key, where);
    if (!x.ok()) return x.error();
    if (!*x) return Corrupt(fmt::format("{}: \"{}\" missing", where, key));
    *out = **x;
  }
  if (b.p10 > b.p90) return Corrupt(where + ": p10_rel_err above p90_rel_err");
  if (!j.contains("cases") || !j["cases"].is_array() || j["cases"].empty()) {
    return Corrupt(where + ": \"cases\" must be a non-empty list of case ids");
  }
  for (const Json& c : j["cases"]) {
    if (!c.is_string()) return Corrupt(where + ": \"cases\": every entry is a case id");
    b.cases.push_back(c.get<std::string>());
  }
  return b;
}

}  // namespace

Result<AccuracyBands> ParseAccuracyBands(std::string_view text, std::string_view where) {
  auto doc = ParseJson(text, where);
  if (!doc.ok()) return doc.error();
  const std::string w(where);
  if (!doc->is_object() || doc->value("schema", "") != kSchema) {
    return Corrupt(fmt::format("{}: not a {} document", w, kSchema));
  }
  if (!doc->contains("bands") || !(*doc)["bands"].is_array()) return Corrupt(w + ": no \"bands\" list");
  AccuracyBands out;
  const Json& list = (*doc)["bands"];
  for (size_t i = 0; i < list.size(); ++i) {
    auto b = ParseBand(list[i], fmt::format("{}: bands[{}]", w, i));
    if (!b.ok()) return b.error();
    if (out.Find(b->runtime, b->task, b->metric)) {
      return Corrupt(fmt::format("{}: bands[{}]: ({}, {}, {}) listed twice", w, i, b->runtime, b->task, b->metric));
    }
    out.bands.push_back(std::move(b.value()));
  }
  return out;
}

std::string AccuracyBandsJson(const AccuracyBands& bands) {
  std::vector<const AccuracyBand*> sorted;
  for (const AccuracyBand& b : bands.bands) sorted.push_back(&b);
  std::sort(sorted.begin(), sorted.end(), [](const AccuracyBand* a, const AccuracyBand* b) {
    return std::tie(a->runtime, a->task, a->metric) < std::tie(b->runtime, b->task, b->metric);
  });
  Json list = Json::array();
  for (const AccuracyBand* b : sorted) {
    list.push_back({{"runtime", b->runtime},
                    {"task", b->task},
                    {"metric", b->metric},
                    {"n", b->n},
                    {"median_abs_rel_err", b->median_abs},
                    {"p10_rel_err", b->p10},
                    {"p90_rel_err", b->p90},
                    {"cases", b->cases}});
  }
  Json doc = {{"schema", kSchema},
              {"generated_by", kWriteBandsCommand},
              {"note",
               "generated from bench/accuracy's measured errors (err = (estimate - measured) / measured); "
               "never edit by hand: regenerate with the command above (ctest accuracy_bands_current checks it)"},
              {"bands", std::move(list)}};
  // nlohmann::json (not ordered_json) keeps object keys sorted.
  return doc.dump(2) + "\n";
}

const AccuracyBands& BuiltinAccuracyBands() {
  static const AccuracyBands* bands = [] {
    auto* b = new AccuracyBands();
    for (size_t i = 0; i < kEmbeddedFileCount; ++i) {
      const EmbeddedFile& f = kEmbeddedFiles[i];
      if (std::string_view(f.name) != kPath) continue;
      auto r = ParseAccuracyBands(std::string_view(f.data, f.size), f.name);
      if (r.ok()) *b = std::move(r.value());
    }
    return b;
  }();
  return *bands;
}

}  // namespace vramfit::io
