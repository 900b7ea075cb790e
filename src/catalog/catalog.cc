#include <algorithm>
#include <cctype>
#include <set>

#include <fmt/format.h>

#include "catalog/embedded.h"
#include "io/json_util.h"
#include "vramfit/catalog.h"

namespace vramfit {

using io::Json;

std::string NormalizeName(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == ' ' || c == '-' || c == '_' || c == '.') {
      // '.' separates versions ("3.1"): keep it distinct from nothing by
      // mapping it to a letter that never appears otherwise.
      if (c == '.') out.push_back('p');
      continue;
    }
    out.push_back(static_cast<char>(std::tolower(u)));
  }
  return out;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t sub = prev[j - 1] + (std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                                                std::tolower(static_cast<unsigned char>(b[j - 1]))
                                            ? 0
                                            : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::vector<std::string> Ranked(std::string_view name, const std::vector<std::string>& names,
                                size_t n) {
  const std::string key = Lower(name);
  std::vector<std::pair<size_t, std::string>> scored;
  for (const std::string& c : names) {
    const std::string lc = Lower(c);
    size_t d = EditDistance(key, lc);
    // Substring hits rank first.
    if (!key.empty() && lc.find(key) != std::string::npos) d = 0;
    scored.push_back({d, c});
  }
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<std::string> out;
  const size_t limit = std::max<size_t>(3, key.size() / 2 + 1);
  for (const auto& [d, c] : scored) {
    if (out.size() >= n) break;
    if (d <= limit && std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  }
  return out;
}

Result<std::vector<std::string>> Strings(const Json& obj, const char* key, const std::string& where) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_array()) return Corrupt(fmt::format("{}: '{}' must be a list of strings", where, key));
  for (const Json& v : *it) {
    if (!v.is_string()) return Corrupt(fmt::format("{}: '{}' must be a list of strings", where, key));
    out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace

Result<ModelCatalog> ModelCatalog::Parse(
    const std::vector<std::pair<std::string, std::string>>& docs) {
  ModelCatalog cat;
  std::set<std::string> seen;
  for (const auto& [name, text] : docs) {
    auto doc = io::ParseJson(text, name);
    if (!doc.ok()) return doc.error();
    auto models = doc->find("models");
    if (!doc->is_object() || models == doc->end() || !models->is_array()) {
      return Corrupt(fmt::format("{}: expected an object with a 'models' list", name));
    }
    for (size_t i = 0; i < models->size(); ++i) {
      const Json& m = (*models)[i];
      const std::string where = fmt::format("{}: models[{}]", name, i);
      CatalogModel cm;
      auto id = io::GetString(m, "id", where);
      if (!id.ok()) return id.error();
      if (!*id) return Corrupt(where + ": 'id' is missing");
      cm.id = **id;
      auto also = Strings(m, "also", where);
      if (!also.ok()) return also.error();
      cm.also = *also;
      auto aliases = Strings(m, "aliases", where);
      if (!aliases.ok()) return aliases.error();
      cm.aliases = *aliases;
      if (auto d = io::GetString(m, "display", where); d.ok() && *d) cm.display = **d;
      if (auto p = io::GetInt(m, "exact_params", where); p.ok() && *p) cm.exact_params = **p;
      if (auto p = io::GetString(m, "exact_params_note", where); p.ok() && *p) cm.exact_params_note = **p;
      if (auto p = io::GetInt(m, "checkpoint_bytes", where); p.ok() && *p) cm.checkpoint_bytes = **p;
      if (auto p = io::GetString(m, "source", where); p.ok() && *p) cm.source = **p;
      auto cfg = m.find("config");
      if (cfg == m.end() || !cfg->is_object()) return Corrupt(where + ": 'config' object is missing");
      cm.config_json = cfg->dump();
      for (const std::string& n : [&] {
             std::vector<std::string> all = {cm.id};
             all.insert(all.end(), cm.also.begin(), cm.also.end());
             all.insert(all.end(), cm.aliases.begin(), cm.aliases.end());
             return all;
           }()) {
        if (!seen.insert(Lower(n)).second) {
          return Corrupt(fmt::format("{}: name '{}' is used twice in the catalog", where, n));
        }
      }
      cat.models_.push_back(std::move(cm));
    }
  }
  return cat;
}

const ModelCatalog& ModelCatalog::Builtin() {
  static const ModelCatalog* cat = [] {
    std::vector<std::pair<std::string, std::string>> docs;
    for (size_t i = 0; i < io::kEmbeddedFileCount; ++i) {
      const io::EmbeddedFile& f = io::kEmbeddedFiles[i];
      if (std::string_view(f.name).rfind("data/models/", 0) == 0) {
        docs.push_back({f.name, std::string(f.data, f.size)});
      }
    }
    auto r = Parse(docs);
    // The embedded data is checked by the tests; a broken build yields an
    // empty catalog rather than a crash.
    return new ModelCatalog(r.ok() ? std::move(r.value()) : ModelCatalog());
  }();
  return *cat;
}

const CatalogModel* ModelCatalog::Find(std::string_view name) const {
  const std::string key = Lower(name);
  for (const CatalogModel& m : models_) {
    if (Lower(m.id) == key) return &m;
    for (const std::string& a : m.also) if (Lower(a) == key) return &m;
    for (const std::string& a : m.aliases) if (Lower(a) == key) return &m;
  }
  return nullptr;
}

std::vector<std::string> ModelCatalog::Suggest(std::string_view name, size_t n) const {
  std::vector<std::string> names;
  for (const CatalogModel& m : models_) {
    names.push_back(m.id);
    names.insert(names.end(), m.aliases.begin(), m.aliases.end());
  }
  // Compare against the repo name part too: "Llama-3.1-8b" vs "meta-llama/Llama-3.1-8B".
  std::vector<std::string> out = Ranked(name, names, n);
  if (out.empty() && name.find('/') == std::string_view::npos) {
    std::vector<std::string> tails;
    for (const CatalogModel& m : models_) tails.push_back(m.id.substr(m.id.find('/') + 1));
    for (const std::string& t : Ranked(name, tails, n)) {
      for (const CatalogModel& m : models_) {
        if (m.id.size() >= t.size() && m.id.compare(m.id.size() - t.size(), t.size(), t) == 0) {
          out.push_back(m.id);
          break;
        }
      }
    }
  }
  return out;
}

std::vector<const CatalogModel*> ModelCatalog::Search(std::string_view query) const {
  std::vector<std::string> words;
  std::string w;
  for (char c : Lower(query)) {
    if (c == ' ') { if (!w.empty()) words.push_back(w); w.clear(); }
    else w.push_back(c);
  }
  if (!w.empty()) words.push_back(w);
  std::vector<const CatalogModel*> out;
  for (const CatalogModel& m : models_) {
    std::string hay = Lower(m.id + " " + m.display);
    for (const std::string& a : m.also) hay += " " + Lower(a);
    for (const std::string& a : m.aliases) hay += " " + Lower(a);
    const std::string norm_hay = NormalizeName(hay);
    bool all = true;
    for (const std::string& word : words) {
      if (hay.find(word) == std::string::npos && norm_hay.find(NormalizeName(word)) == std::string::npos) {
        all = false;
        break;
      }
    }
    if (all) out.push_back(&m);
  }
  return out;
}

}  // namespace vramfit
