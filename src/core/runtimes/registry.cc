// The runtime registry: one line per runtime profile.
#include <array>

#include "profile.h"
#include "vramfit/runtime.h"

namespace vramfit::runtimes {

namespace {
// Indexed by Runtime (workload.h); a new runtime adds its enumerator there
// and its profile here.
const std::array<const RuntimeProfile*, 4>& Registry() {
  static const std::array<const RuntimeProfile*, 4> kProfiles = {
      &HfProfile(),
      &VllmProfile(),
      &LlamaCppProfile(),
      &SglangProfile(),
  };
  return kProfiles;
}
}  // namespace

const RuntimeProfile& ProfileFor(Runtime r) { return *Registry()[static_cast<size_t>(r)]; }

std::span<const RuntimeProfile* const> AllProfiles() { return Registry(); }

// --- Defaults shared by the profiles.

void RuntimeProfile::SetContext(InferenceSettings& s, int64_t tokens) const {
  s.ctx = tokens;
  s.ctx_from_model = false;
  s.prompt.reset();
  s.new_tokens.reset();
}

void RuntimeProfile::ApplyKv(InferenceSettings& s, std::string_view label) const {
  if (auto d = ParseDType(label)) s.kv_dtype = *d;
}

std::vector<std::pair<std::string, std::string>> RuntimeProfile::KvSettings(
    std::string_view label) const {
  return {{"kv-dtype", std::string(label)}};
}

int64_t RuntimeProfile::PreferredTp(const Model&, int64_t) const { return 0; }

}  // namespace vramfit::runtimes

namespace vramfit {

std::vector<Runtime> AllRuntimes() {
  std::vector<Runtime> out;
  for (const runtimes::RuntimeProfile* p : runtimes::AllProfiles()) out.push_back(p->id());
  return out;
}

bool RuntimeTakes(Runtime r, std::string_view setting) {
  for (std::string_view s : runtimes::ProfileFor(r).Settings()) {
    if (s == setting) return true;
  }
  return false;
}

bool RuntimeHasLaunchFlags(Runtime r) { return runtimes::ProfileFor(r).HasLaunchFlags(); }

}  // namespace vramfit
