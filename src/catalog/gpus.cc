#include <algorithm>
#include <cctype>
#include <cmath>
#include <mutex>
#include <optional>

#include <fmt/format.h>

#include "vramfit/io/embedded.h"
#include "vramfit/io/json_util.h"
#include "vramfit/catalog.h"

namespace vramfit {

using io::Json;

namespace {

// NormalizeName without the vendor words people and nvidia-smi prepend.
std::string GpuKey(std::string_view s) {
  std::string k = NormalizeName(s);
  for (bool again = true; again;) {
    again = false;
    for (const char* p : {"nvidia", "geforce", "tesla", "amd", "instinct", "apple", "radeon"}) {
      const std::string_view pre(p);
      if (k.size() > pre.size() && k.compare(0, pre.size(), pre) == 0) {
        k.erase(0, pre.size());
        again = true;
      }
    }
  }
  return k;
}

Result<double> Num(const Json& g, const char* key, const std::string& where, bool required) {
  auto v = io::GetNumber(g, key, where);
  if (!v.ok()) return v.error();
  if (!*v) {
    if (required) return Corrupt(fmt::format("{}: '{}' is missing", where, key));
    return 0.0;
  }
  if (!std::isfinite(**v) || **v < 0) return Corrupt(fmt::format("{}: '{}' must be >= 0", where, key));
  return **v;
}

// A source key of an entry ("memory_source", "specs_source"), resolved to
// its text in the document's "sources": every figure says where it is from.
Result<std::string> SourceText(const Json& g, const Json& sources, const char* key, const std::string& where) {
  auto k = io::GetString(g, key, where);
  if (!k.ok()) return k.error();
  if (!*k || (*k)->empty()) return Corrupt(fmt::format("{}: '{}' is missing (every figure needs its source)", where, key));
  auto it = sources.find(**k);
  if (it == sources.end() || !it->is_string() || it->get<std::string>().empty()) {
    return Corrupt(fmt::format("{}: {} '{}' is not in 'sources'", where, key, **k));
  }
  return it->get<std::string>();
}

// Figures that may be null or absent: unknown, kept as 0.
Status Figures(const Json& g, const std::string& w, GpuSpec& s) {
  struct Field {
    const char* key;
    double* out;
  };
  for (const Field& f : {Field{"bandwidth_gb_s", &s.bandwidth_gb_s}, Field{"bf16_dense_tflops", &s.bf16_tflops},
                         Field{"fp16_dense_tflops", &s.fp16_tflops}, Field{"fp8_dense_tflops", &s.fp8_tflops}}) {
    auto v = Num(g, f.key, w, false);
    if (!v.ok()) return v.error();
    *f.out = *v;
  }
  auto cuda = Num(g, "cuda_total_mib", w, false);
  if (!cuda.ok()) return cuda.error();
  s.cuda_total = MiB(static_cast<int64_t>(*cuda));
  return {};
}

// Capacity: memory_mib; on Apple silicon memory_mib is the RAM and the
// capacity is Metal's working-set limit, working_set_mib (required there).
Status Capacity(const Json& g, const std::string& w, GpuSpec& s) {
  auto mem = Num(g, "memory_mib", w, true);
  if (!mem.ok()) return mem.error();
  s.capacity = MiB(static_cast<int64_t>(*mem));
  auto ws = Num(g, "working_set_mib", w, false);
  if (!ws.ok()) return ws.error();
  auto ram = Num(g, "ram_mib", w, false);
  if (!ram.ok()) return ram.error();
  if (s.unified_memory) s.ram = *ram > 0 ? MiB(static_cast<int64_t>(*ram)) : s.capacity;
  if (IsApple(s)) {
    if (*ws <= 0 || *ws > *mem) {
      return Corrupt(fmt::format("{}: Apple GPUs need 'working_set_mib' in (0, memory_mib]", w));
    }
    s.capacity = MiB(static_cast<int64_t>(*ws));
  } else if (*ws > 0) {
    return Corrupt(fmt::format("{}: 'working_set_mib' applies to Apple GPUs only", w));
  }
  return {};
}

Result<GpuSpec> ParseGpu(const Json& g, const Json& sources, const std::string& w) {
  GpuSpec s;
  auto name = io::GetString(g, "name", w);
  if (!name.ok()) return name.error();
  if (!*name) return Corrupt(w + ": 'name' is missing");
  s.name = **name;
  if (auto v = io::GetString(g, "vendor", w); v.ok() && *v) s.vendor = **v;
  if (auto v = io::GetString(g, "compute_capability", w); v.ok() && *v) s.compute_capability = **v;
  if (auto v = io::GetString(g, "arch", w); v.ok() && *v) s.arch = **v;
  if (auto v = io::GetString(g, "form", w); v.ok() && *v) s.form = **v;
  if (auto v = io::GetString(g, "memory_note", w); v.ok() && *v) s.memory_note = **v;
  if (auto v = io::GetBool(g, "unified_memory", w); v.ok() && *v) s.unified_memory = **v;
  for (Status st : {Capacity(g, w, s), Figures(g, w, s)}) {
    if (!st.ok()) return st.error();
  }
  auto mem_src = SourceText(g, sources, "memory_source", w);
  if (!mem_src.ok()) return mem_src.error();
  s.memory_source = *mem_src;
  auto spec_src = SourceText(g, sources, "specs_source", w);
  if (!spec_src.ok()) return spec_src.error();
  s.specs_source = *spec_src;
  auto aliases = g.find("aliases");
  if (aliases != g.end() && aliases->is_array()) {
    for (const Json& a : *aliases) {
      if (a.is_string()) s.aliases.push_back(a.get<std::string>());
    }
  }
  return s;
}

}  // namespace

Result<GpuCatalog> GpuCatalog::Parse(std::string_view text, std::string_view where) {
  auto doc = io::ParseJson(text, where);
  if (!doc.ok()) return doc.error();
  auto list = doc->find("gpus");
  if (!doc->is_object() || list == doc->end() || !list->is_array()) {
    return Corrupt(fmt::format("{}: expected an object with a 'gpus' list", where));
  }
  static const Json kNone = Json::object();
  auto src = doc->find("sources");
  const Json& sources = src != doc->end() && src->is_object() ? *src : kNone;
  GpuCatalog cat;
  for (size_t i = 0; i < list->size(); ++i) {
    auto g = ParseGpu((*list)[i], sources, fmt::format("{}: gpus[{}]", where, i));
    if (!g.ok()) return g.error();
    cat.gpus_.push_back(std::move(*g));
  }
  return cat;
}

struct GpuCatalog::Lazy {
  std::once_flag parsed;
  std::vector<GpuSpec> all;
};

const GpuCatalog& GpuCatalog::Builtin() {
  static const GpuCatalog* cat = [] {
    auto* c = new GpuCatalog();
    c->lazy_ = std::make_shared<Lazy>();
    return c;
  }();
  return *cat;
}

const std::vector<GpuSpec>& GpuCatalog::All() const {
  if (!lazy_) return gpus_;
  std::call_once(lazy_->parsed, [this] {
    for (size_t i = 0; i < io::kEmbeddedFileCount; ++i) {
      const io::EmbeddedFile& f = io::kEmbeddedFiles[i];
      if (std::string_view(f.name) == "data/gpus.json") {
        auto r = Parse(std::string_view(f.data, f.size), f.name);
        // A broken data file fails the tests; at run time, an empty catalog.
        if (r.ok()) lazy_->all = std::move(r->gpus_);
      }
    }
  });
  return lazy_->all;
}

const std::vector<GpuSpec>& GpuCatalog::gpus() const { return All(); }

namespace {

bool KeyIs(const GpuSpec& g, const std::string& key) {
  if (GpuKey(g.name) == key) return true;
  return std::any_of(g.aliases.begin(), g.aliases.end(), [&](const std::string& a) { return GpuKey(a) == key; });
}

// What may follow a shortened name: a memory size ("40gb") or a form.
bool SizeOrForm(std::string_view rest) {
  for (std::string_view form : {"pcie", "sxm", "sxm4", "sxm5", "nvl"}) {
    if (rest == form) return true;
  }
  if (rest.size() < 3 || rest.substr(rest.size() - 2) != "gb") return false;
  return std::all_of(rest.begin(), rest.end() - 2, [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

}  // namespace

std::vector<const GpuSpec*> GpuCatalog::Matches(std::string_view name) const {
  const std::string key = GpuKey(name);
  if (key.empty()) return {};
  // 1. The name or an alias.
  for (const GpuSpec& g : All()) {
    if (GpuKey(g.name) == key) return {&g};
  }
  for (const GpuSpec& g : All()) {
    if (KeyIs(g, key)) return {&g};
  }
  // 2. Without the family word people drop: "4090" = "RTX 4090".
  const std::string rtx = "rtx" + key;
  for (const GpuSpec& g : All()) {
    if (KeyIs(g, rtx)) return {&g};
  }
  // 3. Without the size or form that tells variants apart: "A100" is
  // A100-40GB or A100-80GB, and that must be said, not guessed.
  std::vector<const GpuSpec*> out;
  for (const GpuSpec& g : All()) {
    const std::string k = GpuKey(g.name);
    for (const std::string& q : {key, rtx}) {
      if (k.size() > q.size() && k.compare(0, q.size(), q) == 0 && SizeOrForm(std::string_view(k).substr(q.size()))) {
        out.push_back(&g);
        break;
      }
    }
  }
  return out;
}

const GpuSpec* GpuCatalog::Find(std::string_view name) const {
  const std::vector<const GpuSpec*> m = Matches(name);
  return m.size() == 1 ? m[0] : nullptr;
}

std::vector<std::string> GpuCatalog::Suggest(std::string_view name, size_t n) const {
  const std::string key = GpuKey(name);
  std::vector<std::pair<size_t, std::string>> scored;
  for (const GpuSpec& g : All()) {
    size_t best = EditDistance(key, GpuKey(g.name));
    for (const std::string& a : g.aliases) best = std::min(best, EditDistance(key, GpuKey(a)));
    if (!key.empty() && GpuKey(g.name).find(key) != std::string::npos) best = 0;
    scored.push_back({best, g.name});
  }
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (const auto& [d, nm] : scored) {
    if (out.size() >= n || d > std::max<size_t>(3, key.size() / 2)) break;
    out.push_back(nm);
  }
  return out;
}

std::vector<const GpuSpec*> GpuCatalog::Search(std::string_view query) const {
  const std::string key = GpuKey(query);
  std::vector<const GpuSpec*> out;
  for (const GpuSpec& g : All()) {
    bool hit = key.empty() || GpuKey(g.name).find(key) != std::string::npos;
    for (const std::string& a : g.aliases) hit = hit || GpuKey(a).find(key) != std::string::npos;
    if (hit) out.push_back(&g);
  }
  return out;
}

namespace {

// "2x3090", "2 x RTX-3090", "2*3090": a leading count. Returns the rest, or
// nullopt when the spec has no leading count.
std::optional<std::string> LeadingCount(const std::string& name, int64_t* count) {
  size_t i = 0;
  while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i]))) ++i;
  if (i == 0 || i > 4) return std::nullopt;
  size_t j = i;
  while (j < name.size() && name[j] == ' ') ++j;
  if (j >= name.size() || (name[j] != 'x' && name[j] != 'X' && name[j] != '*')) return std::nullopt;
  ++j;
  while (j < name.size() && name[j] == ' ') ++j;
  if (j >= name.size()) return std::nullopt;
  *count = std::stoll(name.substr(0, i));
  return name.substr(j);
}

}  // namespace

Status AddGpus(std::string_view spec, const GpuCatalog& catalog, DeviceSet* set) {
  std::string name(spec);
  int64_t count = 1;
  // A count: trailing "xN" / "x N" / "*N" or leading "Nx", unless the whole
  // thing is a GPU name (check the catalog first).
  if (catalog.Matches(name).empty()) {
    int64_t lead = 1;
    if (auto rest = LeadingCount(name, &lead); rest && !catalog.Matches(*rest).empty()) {
      name = *rest;
      count = lead;
    }
  }
  if (count == 1 && catalog.Matches(name).empty()) {
    const size_t pos = name.find_last_of("xX*");
    if (pos != std::string::npos && pos + 1 < name.size()) {
      std::string digits = name.substr(pos + 1);
      digits.erase(std::remove(digits.begin(), digits.end(), ' '), digits.end());
      if (!digits.empty() && std::all_of(digits.begin(), digits.end(), ::isdigit)) {
        if (digits.size() > 4) {
          return InvalidArgument(fmt::format("--gpu: '{}': count {} is out of range (1..4096)", spec, digits));
        }
        count = std::stoll(digits);
        name = name.substr(0, pos);
        while (!name.empty() && name.back() == ' ') name.pop_back();
      }
    }
  }
  if (count < 1 || count > 4096) {
    return InvalidArgument(fmt::format("--gpu: '{}': count {} is out of range (1..4096)", spec, count));
  }
  const std::vector<const GpuSpec*> m = catalog.Matches(name);
  if (m.size() > 1) {
    std::vector<std::string> names;
    for (const GpuSpec* g : m) names.push_back(g->name);
    return InvalidArgument(fmt::format("--gpu: '{}' is ambiguous: {} (give one of them)", name, fmt::join(names, ", ")));
  }
  if (m.empty()) {
    std::vector<std::string> sug = catalog.Suggest(name);
    std::string hint = sug.empty() ? std::string(" (see 'vramfit gpus')")
                                   : fmt::format(" (did you mean {}?)", fmt::join(sug, ", "));
    return NotFound(fmt::format("--gpu: unknown GPU '{}'{}", name, hint));
  }
  for (int64_t i = 0; i < count; ++i) set->gpus.push_back(*m[0]);
  return {};
}

}  // namespace vramfit
