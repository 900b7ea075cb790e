#include "vramfit/check.h"

#include <cctype>

#include <fmt/format.h>

namespace vramfit {

Status CheckRange(std::string_view flag, int64_t v, int64_t lo, int64_t hi) {
  if (v >= lo && v <= hi) return {};
  if (lo == 1 && v < 1) return InvalidArgument(fmt::format("{}: must be a positive integer, got {}", flag, v));
  return InvalidArgument(fmt::format("{}: {} is out of range ({}..{})", flag, v, lo, hi));
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace vramfit
