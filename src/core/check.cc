#include "vramfit/check.h"

#include <cstdlib>

#include <cctype>

#include <fmt/format.h>

#include "vramfit/device.h"

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

int ComputeCapability(const GpuSpec& g) {
  if (g.vendor != "nvidia" || g.compute_capability.empty()) return 0;
  const std::string& cc = g.compute_capability;
  const size_t dot = cc.find('.');
  const int major = std::atoi(cc.substr(0, dot).c_str());
  const int minor = dot == std::string::npos ? 0 : std::atoi(cc.substr(dot + 1).c_str());
  return major > 0 ? major * 10 + minor : 0;
}

bool IsApple(const GpuSpec& g) { return g.vendor == "apple"; }

double HalfTensorTflops(const GpuSpec& g) { return g.bf16_tflops > 0 ? g.bf16_tflops : g.fp16_tflops; }

const GpuSpec* FirstBelow(const DeviceSet& devices, int min_cc) {
  for (const GpuSpec& g : devices.gpus) {
    const int cc = ComputeCapability(g);
    if (cc > 0 && cc < min_cc) return &g;
  }
  return nullptr;
}

std::string Thousands(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

}  // namespace vramfit
