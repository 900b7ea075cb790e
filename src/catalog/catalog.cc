#include <algorithm>
#include <cctype>
#include <map>
#include <mutex>
#include <set>

#include <fmt/format.h>

#include "vramfit/check.h"
#include "vramfit/io/embedded.h"
#include "vramfit/io/json_util.h"
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

// The model answering to `key` (lower-case) by id, also or alias.
const CatalogModel* FindIn(const std::vector<CatalogModel>& models, const std::string& key) {
  for (const CatalogModel& m : models) {
    if (Lower(m.id) == key) return &m;
    for (const std::string& a : m.also) if (Lower(a) == key) return &m;
    for (const std::string& a : m.aliases) if (Lower(a) == key) return &m;
  }
  return nullptr;
}

// One catalog entry ("models"[i]) as a CatalogModel.
Result<CatalogModel> ModelEntry(const Json& m, const std::string& where) {
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
  return cm;
}

// A skim of catalog JSON text: where each "models" entry is and the names it
// answers to, without building a document. Handles what the catalog files
// hold (objects, arrays, strings with escapes, numbers, literals); anything
// unexpected makes the skim fail and the catalog is parsed whole instead.
class Skim {
 public:
  explicit Skim(std::string_view s) : s_(s) {}

  struct Entry {
    size_t begin = 0, end = 0;        // the entry object's text
    std::vector<std::string> names;   // id, also, aliases, lower-case
  };

  // The entries of the document's top-level "models" list.
  bool Models(std::vector<Entry>* out) {
    if (!Lit('{')) return false;
    while (true) {
      std::string key;
      if (!String(&key) || !Lit(':')) return false;
      if (key == "models") {
        if (!Lit('[')) return false;
        if (Peek() == ']') return ++i_, true;
        while (true) {
          Entry e;
          if (!Object(&e)) return false;
          out->push_back(std::move(e));
          if (Lit(']')) break;
          if (!Lit(',')) return false;
        }
      } else if (!Value()) {
        return false;
      }
      if (Lit('}')) return true;
      if (!Lit(',')) return false;
    }
  }

 private:
  char Peek() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) ++i_;
    return i_ < s_.size() ? s_[i_] : '\0';
  }
  bool Lit(char c) {
    if (Peek() != c) return false;
    ++i_;
    return true;
  }
  // A string; *out gets its text when out != nullptr (escapes other than
  // \" and \\ fail the skim only when the text is wanted).
  bool String(std::string* out) {
    if (!Lit('"')) return false;
    while (i_ < s_.size()) {
      const char c = s_[i_++];
      if (c == '"') return true;
      if (c == '\\') {
        if (i_ >= s_.size()) return false;
        const char x = s_[i_++];
        if (out == nullptr) continue;
        if (x != '"' && x != '\\') return false;
        out->push_back(x);
      } else if (out != nullptr) {
        out->push_back(c);
      }
    }
    return false;
  }
  bool Value() {
    const char c = Peek();
    if (c == '"') return String(nullptr);
    if (c == '{' || c == '[') {
      const char close = c == '{' ? '}' : ']';
      ++i_;
      if (Lit(close)) return true;
      while (true) {
        if (c == '{' && (!String(nullptr) || !Lit(':'))) return false;
        if (!Value()) return false;
        if (Lit(close)) return true;
        if (!Lit(',')) return false;
      }
    }
    // Number or literal.
    const size_t start = i_;
    while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '-' ||
                              s_[i_] == '+' || s_[i_] == '.')) {
      ++i_;
    }
    return i_ > start;
  }
  // One "models" entry: its extent and names.
  bool Object(Entry* e) {
    Peek();
    e->begin = i_;
    if (!Lit('{')) return false;
    if (Lit('}')) return false;  // no id: let the full parse say so
    while (true) {
      std::string key;
      if (!String(&key) || !Lit(':')) return false;
      if (key == "id") {
        std::string v;
        if (!String(&v)) return false;
        e->names.push_back(Lower(v));
      } else if (key == "also" || key == "aliases") {
        if (!Lit('[')) return false;
        if (!Lit(']')) {
          while (true) {
            std::string v;
            if (!String(&v)) return false;
            e->names.push_back(Lower(v));
            if (Lit(']')) break;
            if (!Lit(',')) return false;
          }
        }
      } else if (!Value()) {
        return false;
      }
      if (Lit('}')) break;
      if (!Lit(',')) return false;
    }
    e->end = i_;
    return true;
  }

  std::string_view s_;
  size_t i_ = 0;
};

// The embedded model documents, in embedding order.
std::vector<std::pair<std::string, std::string_view>> EmbeddedModelDocs() {
  std::vector<std::pair<std::string, std::string_view>> docs;
  for (size_t i = 0; i < io::kEmbeddedFileCount; ++i) {
    const io::EmbeddedFile& f = io::kEmbeddedFiles[i];
    if (std::string_view(f.name).rfind("data/models/", 0) == 0) {
      docs.push_back({f.name, std::string_view(f.data, f.size)});
    }
  }
  return docs;
}

}  // namespace

struct ModelCatalog::Lazy {
  struct Entry {
    std::string_view text;            // the entry's JSON object
    std::string where;                // "data/models/core.json: models[3]"
    std::vector<std::string> names;   // lower-case
  };
  std::vector<Entry> index;
  bool indexed = false;               // false: the skim failed, parse whole
  std::once_flag parsed;
  std::vector<CatalogModel> all;
  std::mutex mu;
  std::map<size_t, CatalogModel> converted;  // node-stable: Find hands out pointers
};

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
      const std::string where = fmt::format("{}: models[{}]", name, i);
      auto entry = ModelEntry((*models)[i], where);
      if (!entry.ok()) return entry.error();
      CatalogModel& cm = *entry;
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
    auto* c = new ModelCatalog();
    c->lazy_ = std::make_shared<Lazy>();
    Lazy& lz = *c->lazy_;
    lz.indexed = true;
    for (const auto& [name, text] : EmbeddedModelDocs()) {
      std::vector<Skim::Entry> entries;
      if (!Skim(text).Models(&entries)) {
        lz.indexed = false;
        break;
      }
      for (size_t i = 0; i < entries.size(); ++i) {
        lz.index.push_back({text.substr(entries[i].begin, entries[i].end - entries[i].begin),
                            fmt::format("{}: models[{}]", name, i), std::move(entries[i].names)});
      }
    }
    return c;
  }();
  return *cat;
}

const std::vector<CatalogModel>& ModelCatalog::All() const {
  if (!lazy_) return models_;
  std::call_once(lazy_->parsed, [this] {
    std::vector<std::pair<std::string, std::string>> docs;
    for (const auto& [name, text] : EmbeddedModelDocs()) docs.push_back({name, std::string(text)});
    auto r = Parse(docs);
    // The embedded data is checked by the tests; a broken build yields an
    // empty catalog rather than a crash.
    if (r.ok()) lazy_->all = std::move(r->models_);
  });
  return lazy_->all;
}

const std::vector<CatalogModel>& ModelCatalog::models() const { return All(); }

const CatalogModel* ModelCatalog::Find(std::string_view name) const {
  const std::string key = Lower(name);
  if (lazy_ && lazy_->indexed) {
    Lazy& lz = *lazy_;
    for (size_t i = 0; i < lz.index.size(); ++i) {
      const Lazy::Entry& e = lz.index[i];
      if (std::find(e.names.begin(), e.names.end(), key) == e.names.end()) continue;
      std::lock_guard<std::mutex> lock(lz.mu);
      auto it = lz.converted.find(i);
      if (it != lz.converted.end()) return &it->second;
      auto doc = io::ParseJson(e.text, e.where);
      auto m = doc.ok() ? ModelEntry(*doc, e.where) : Result<CatalogModel>(doc.error());
      if (m.ok()) return &lz.converted.emplace(i, std::move(m.value())).first->second;
      // A broken entry: the whole parse below decides (as Builtin always did).
      return FindIn(All(), key);
    }
    return nullptr;
  }
  return FindIn(All(), key);
}

std::vector<std::string> ModelCatalog::Suggest(std::string_view name, size_t n) const {
  std::vector<std::string> names;
  for (const CatalogModel& m : All()) {
    names.push_back(m.id);
    names.insert(names.end(), m.aliases.begin(), m.aliases.end());
  }
  // Compare against the repo name part too: "Llama-3.1-8b" vs "meta-llama/Llama-3.1-8B".
  std::vector<std::string> out = Ranked(name, names, n);
  if (out.empty() && name.find('/') == std::string_view::npos) {
    std::vector<std::string> tails;
    for (const CatalogModel& m : All()) tails.push_back(m.id.substr(m.id.find('/') + 1));
    for (const std::string& t : Ranked(name, tails, n)) {
      for (const CatalogModel& m : All()) {
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
  for (const CatalogModel& m : All()) {
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
