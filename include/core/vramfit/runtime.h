// What the frontends may ask of the runtime profiles (src/core/runtimes/):
// which runtimes exist and which settings each takes.
#ifndef VRAMFIT_RUNTIME_H_
#define VRAMFIT_RUNTIME_H_

#include <string_view>
#include <vector>

#include "vramfit/workload.h"

namespace vramfit {

// Every registered runtime, in registration order.
std::vector<Runtime> AllRuntimes();

// Whether runtime r reads the runtime-specific setting `setting` (a flag
// name without dashes: "max-model-len", "cache-type-k", "attn").
bool RuntimeTakes(Runtime r, std::string_view setting);

// Whether runtime r prints launch flags (--print-flags).
bool RuntimeHasLaunchFlags(Runtime r);

}  // namespace vramfit

#endif  // VRAMFIT_RUNTIME_H_
