#include <algorithm>
#include <cctype>
#include <cmath>
#include <mutex>

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

}  // namespace

Result<GpuCatalog> GpuCatalog::Parse(std::string_view text, std::string_view where) {
  auto doc = io::ParseJson(text, where);
  if (!doc.ok()) return doc.error();
  auto list = doc->find("gpus");
  if (!doc->is_object() || list == doc->end() || !list->is_array()) {
    return Corrupt(fmt::format("{}: expected an object with a 'gpus' list", where));
  }
  GpuCatalog cat;
  for (size_t i = 0; i < list->size(); ++i) {
    const Json& g = (*list)[i];
    const std::string w = fmt::format("{}: gpus[{}]", where, i);
    GpuSpec s;
    auto name = io::GetString(g, "name", w);
    if (!name.ok()) return name.error();
    if (!*name) return Corrupt(w + ": 'name' is missing");
    s.name = **name;
    auto mem = Num(g, "memory_mib", w, true);
    if (!mem.ok()) return mem.error();
    s.capacity = MiB(static_cast<int64_t>(*mem));
    auto cuda = Num(g, "cuda_total_mib", w, false);
    if (!cuda.ok()) return cuda.error();
    s.cuda_total = MiB(static_cast<int64_t>(*cuda));
    auto bw = Num(g, "bandwidth_gb_s", w, false);
    if (!bw.ok()) return bw.error();
    s.bandwidth_gb_s = *bw;
    auto tf = Num(g, "bf16_dense_tflops", w, false);
    if (!tf.ok()) return tf.error();
    s.bf16_tflops = *tf;
    auto f8 = Num(g, "fp8_dense_tflops", w, false);
    if (!f8.ok()) return f8.error();
    s.fp8_tflops = *f8;
    if (auto v = io::GetString(g, "vendor", w); v.ok() && *v) s.vendor = **v;
    if (auto v = io::GetString(g, "compute_capability", w); v.ok() && *v) s.compute_capability = **v;
    if (auto v = io::GetString(g, "arch", w); v.ok() && *v) s.arch = **v;
    if (auto v = io::GetString(g, "form", w); v.ok() && *v) s.form = **v;
    if (auto v = io::GetString(g, "memory_note", w); v.ok() && *v) s.memory_note = **v;
    if (auto v = io::GetBool(g, "unified_memory", w); v.ok() && *v) s.unified_memory = **v;
    auto aliases = g.find("aliases");
    if (aliases != g.end() && aliases->is_array()) {
      for (const Json& a : *aliases) {
        if (a.is_string()) s.aliases.push_back(a.get<std::string>());
      }
    }
    cat.gpus_.push_back(std::move(s));
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

const GpuSpec* GpuCatalog::Find(std::string_view name) const {
  const std::string key = GpuKey(name);
  if (key.empty()) return nullptr;
  for (const GpuSpec& g : All()) {
    if (GpuKey(g.name) == key) return &g;
  }
  for (const GpuSpec& g : All()) {
    for (const std::string& a : g.aliases) {
      if (GpuKey(a) == key) return &g;
    }
  }
  return nullptr;
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

Status AddGpus(std::string_view spec, const GpuCatalog& catalog, DeviceSet* set) {
  std::string name(spec);
  int64_t count = 1;
  // Trailing "xN" / "x N" / "*N": a count, unless the whole thing is a GPU
  // name ending in x (none do today, but check the catalog first).
  if (!catalog.Find(name)) {
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
  const GpuSpec* g = catalog.Find(name);
  if (!g) {
    std::vector<std::string> sug = catalog.Suggest(name);
    std::string hint = sug.empty() ? std::string(" (see 'vramfit gpus')")
                                   : fmt::format(" (did you mean {}?)", fmt::join(sug, ", "));
    return NotFound(fmt::format("--gpu: unknown GPU '{}'{}", name, hint));
  }
  for (int64_t i = 0; i < count; ++i) set->gpus.push_back(*g);
  return {};
}

}  // namespace vramfit
