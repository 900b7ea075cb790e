// The runtime registry: one line per runtime profile.
#include <array>

#include "profile.h"

namespace vramfit::runtimes {

namespace {
// Indexed by Runtime (workload.h); a new runtime adds its enumerator there
// and its profile here.
const std::array<const RuntimeProfile*, 3>& Registry() {
  static const std::array<const RuntimeProfile*, 3> kProfiles = {
      &HfProfile(),
      &VllmProfile(),
      &LlamaCppProfile(),
  };
  return kProfiles;
}
}  // namespace

const RuntimeProfile& ProfileFor(Runtime r) { return *Registry()[static_cast<size_t>(r)]; }

std::span<const RuntimeProfile* const> AllProfiles() { return Registry(); }

// --- Defaults shared by the profiles.

void RuntimeProfile::SetContext(InferenceSettings& s, int64_t tokens) const {
  s.ctx = tokens;
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
