// The `llamacpp` runtime profile (not implemented yet: see issue tracker).
#include <fmt/format.h>

#include "runtimes.h"

namespace vramfit::runtimes {

Status EstimateLlamaCpp(const Model&, const InferenceWorkload& w, const DeviceSet&, Estimate&) {
  return Unsupported(fmt::format(
      "--runtime {}: this runtime's allocation profile is not implemented yet; use --runtime hf",
      RuntimeName(w.runtime)));
}

}  // namespace vramfit::runtimes
