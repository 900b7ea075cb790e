// Small checks and text helpers every layer shares (one copy each).
#ifndef VRAMFIT_CHECK_H_
#define VRAMFIT_CHECK_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "vramfit/error.h"

namespace vramfit {

// v in [lo, hi], else "--batch: must be a positive integer, got 0" (lo 1)
// or "--ctx: 100000000 is out of range (1..67108864)".
Status CheckRange(std::string_view flag, int64_t v, int64_t lo, int64_t hi);

// ASCII lower case.
std::string Lower(std::string_view s);

// 158656 -> "158,656": token counts as vLLM and the planner print them.
std::string Thousands(int64_t n);

}  // namespace vramfit

#endif  // VRAMFIT_CHECK_H_
