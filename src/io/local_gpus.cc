// `--gpu local` (include/io/vramfit/io/local_gpus.h): NVML through dlopen,
// nvidia-smi's CSV query as the fallback, then the catalog match.
#include "vramfit/io/local_gpus.h"

#include <dlfcn.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include <fmt/format.h>

#include "engine_log_util.h"

namespace vramfit {
namespace {

constexpr size_t kMaxSmiOutput = 64 * 1024;  // 64 KiB: a few hundred devices
constexpr int64_t kMaxMib = int64_t{1} << 30;  // 1 PiB in MiB: beyond any device

using io::log::Trim;

// A MiB field: digits, or nullopt for "[N/A]" / "N/A" (unified memory).
Result<std::optional<int64_t>> MibField(std::string_view f, size_t line, std::string_view what) {
  f = Trim(f);
  if (f == "[N/A]" || f == "N/A" || f == "[Not Supported]") return std::optional<int64_t>{};
  int64_t v = 0;
  if (f.empty()) return InvalidArgument(fmt::format("nvidia-smi line {}: empty {}", line, what));
  for (char c : f) {
    if (c < '0' || c > '9') {
      return InvalidArgument(fmt::format("nvidia-smi line {}: {} '{}' is not a MiB count", line, what, f));
    }
    v = v * 10 + (c - '0');
    if (v > kMaxMib) return InvalidArgument(fmt::format("nvidia-smi line {}: {} '{}' is out of range", line, what, f));
  }
  return std::optional<int64_t>(v);
}

// --- NVML, declared here as its C ABI (nvml.h, NVML API v2 entry points).
using NvmlDevice = void*;
struct NvmlMemory {
  unsigned long long total, free, used;  // nvmlMemory_t (v1): bytes
};
using NvmlInitFn = int (*)();
using NvmlCountFn = int (*)(unsigned int*);
using NvmlHandleFn = int (*)(unsigned int, NvmlDevice*);
using NvmlNameFn = int (*)(NvmlDevice, char*, unsigned int);
using NvmlMemoryFn = int (*)(NvmlDevice, NvmlMemory*);
using NvmlShutdownFn = int (*)();

struct DlCloser {
  void operator()(void* h) const {
    if (h) dlclose(h);
  }
};

template <typename Fn>
Fn Symbol(void* lib, const char* name) {
  return reinterpret_cast<Fn>(dlsym(lib, name));
}

// The devices NVML reports, or an error saying why not.
Result<std::vector<LocalGpu>> FromNvml(const std::string& library) {
  const std::string path = library.empty() ? "libnvidia-ml.so.1" : library;
  std::unique_ptr<void, DlCloser> lib(dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL));
  if (!lib) return NotFound(fmt::format("NVML: {} not loadable", path));
  auto init = Symbol<NvmlInitFn>(lib.get(), "nvmlInit_v2");
  auto count = Symbol<NvmlCountFn>(lib.get(), "nvmlDeviceGetCount_v2");
  auto handle = Symbol<NvmlHandleFn>(lib.get(), "nvmlDeviceGetHandleByIndex_v2");
  auto name = Symbol<NvmlNameFn>(lib.get(), "nvmlDeviceGetName");
  auto memory = Symbol<NvmlMemoryFn>(lib.get(), "nvmlDeviceGetMemoryInfo");
  auto shutdown = Symbol<NvmlShutdownFn>(lib.get(), "nvmlShutdown");
  if (!init || !count || !handle || !name || !memory || !shutdown) {
    return NotFound(fmt::format("NVML: {} lacks the v2 entry points", path));
  }
  if (init() != 0) return NotFound("NVML: nvmlInit failed (no driver loaded)");
  std::vector<LocalGpu> out;
  unsigned int n = 0;
  int rc = count(&n);
  for (unsigned int i = 0; rc == 0 && i < n && i < 4096; ++i) {
    NvmlDevice dev = nullptr;
    char buf[96] = {};
    NvmlMemory mem{};
    if ((rc = handle(i, &dev)) != 0 || (rc = name(dev, buf, sizeof(buf) - 1)) != 0) break;
    LocalGpu g{buf, std::nullopt, std::nullopt, "NVML"};
    // Unified-memory devices (GB10) answer NOT_SUPPORTED here: no figure.
    if (memory(dev, &mem) == 0) {
      g.total_mib = static_cast<int64_t>(mem.total >> 20);
      g.used_mib = static_cast<int64_t>(mem.used >> 20);
    }
    out.push_back(std::move(g));
  }
  shutdown();
  if (rc != 0) return NotFound(fmt::format("NVML: device query failed (error {})", rc));
  if (out.empty()) return NotFound("NVML: no device");
  return out;
}

// Runs nvidia-smi's query; its output, or an error.
Result<std::vector<LocalGpu>> FromNvidiaSmi(const std::string& command) {
  const std::string cmd =
      command + " --query-gpu=name,memory.total,memory.used --format=csv,noheader,nounits 2>/dev/null";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return NotFound("nvidia-smi: could not be run");
  std::string text;
  char buf[4096];
  size_t got = 0;
  while ((got = fread(buf, 1, sizeof(buf), pipe)) > 0 && text.size() < kMaxSmiOutput) text.append(buf, got);
  while (got > 0) got = fread(buf, 1, sizeof(buf), pipe);  // drain, so the child can exit
  const int status = pclose(pipe);
  if (status == -1 || !WIFEXITED(status)) return NotFound("nvidia-smi: did not exit normally");
  if (WEXITSTATUS(status) == 127) return NotFound("nvidia-smi: not found on PATH");
  if (WEXITSTATUS(status) != 0) return NotFound(fmt::format("nvidia-smi: exited with status {}", WEXITSTATUS(status)));
  if (text.size() >= kMaxSmiOutput) return InvalidArgument("nvidia-smi: output over 64 KiB; not a GPU query");
  auto parsed = ParseNvidiaSmiQuery(text);
  if (!parsed.ok()) return parsed.error();
  if (parsed->empty()) return NotFound("nvidia-smi: no device");
  return parsed;
}

// The catalog entry for a name as a vendor tool prints it: the name itself
// (catalog aliases hold the nvidia-smi spellings), then without the vendor
// words ("NVIDIA", "GeForce", "Tesla"); where the size tells variants apart,
// the entry whose capacity is nearest the total reported.
const GpuSpec* MatchLocal(const GpuCatalog& catalog, const LocalGpu& g) {
  std::string name = g.name;
  for (int pass = 0; pass < 2; ++pass) {
    const std::vector<const GpuSpec*> m = catalog.Matches(name);
    if (m.size() == 1) return m[0];
    if (m.size() > 1 && g.total_mib) {
      const GpuSpec* best = nullptr;
      int64_t best_gap = 0;
      for (const GpuSpec* s : m) {
        const int64_t gap = std::llabs(s->capacity.value() / kMiB - *g.total_mib);
        if (!best || gap < best_gap) best = s, best_gap = gap;
      }
      // Within 8% (ECC on takes 1/16) it is that variant; else none.
      if (best && best_gap * 100 <= *g.total_mib * 8) return best;
      return nullptr;
    }
    for (std::string_view word : {"NVIDIA ", "GeForce ", "Tesla "}) {
      if (const size_t p = name.find(word); p != std::string::npos) name.erase(p, word.size());
    }
  }
  return nullptr;
}

}  // namespace

Result<std::vector<LocalGpu>> ParseNvidiaSmiQuery(std::string_view text) {
  std::vector<LocalGpu> out;
  size_t line_no = 0;
  while (!text.empty()) {
    const size_t nl = std::min(text.find('\n'), text.size());
    const std::string_view line = Trim(text.substr(0, nl));
    text.remove_prefix(std::min(nl + 1, text.size()));
    ++line_no;
    if (line.empty()) continue;
    // The name may not hold a comma (nvidia-smi's names do not); the last
    // two fields are the figures.
    const size_t c2 = line.rfind(',');
    const size_t c1 = c2 == std::string_view::npos || c2 == 0 ? std::string_view::npos : line.rfind(',', c2 - 1);
    if (c1 == std::string_view::npos) {
      return InvalidArgument(fmt::format(
          "nvidia-smi line {}: expected 'NAME, TOTAL_MIB, USED_MIB' (--format=csv,noheader,nounits), got '{}'",
          line_no, line.substr(0, 80)));
    }
    LocalGpu g;
    g.name = std::string(Trim(line.substr(0, c1)));
    if (g.name.empty() || g.name.size() > 95) {
      return InvalidArgument(fmt::format("nvidia-smi line {}: no device name", line_no));
    }
    auto total = MibField(line.substr(c1 + 1, c2 - c1 - 1), line_no, "memory.total");
    if (!total.ok()) return total.error();
    auto used = MibField(line.substr(c2 + 1), line_no, "memory.used");
    if (!used.ok()) return used.error();
    if (*total && *used && **used > **total) {
      return InvalidArgument(fmt::format("nvidia-smi line {}: memory.used {} MiB above memory.total {} MiB",
                                         line_no, **used, **total));
    }
    g.total_mib = *total;
    g.used_mib = *used;
    g.source = "nvidia-smi";
    out.push_back(std::move(g));
    if (out.size() > 4096) return InvalidArgument("nvidia-smi: more than 4096 devices");
  }
  return out;
}

LocalGpuProbe ProbeFromEnvironment() {
  LocalGpuProbe p;
  if (const char* lib = std::getenv("VRAMFIT_NVML_LIBRARY")) p.nvml_library = lib;
  return p;
}

Result<std::vector<LocalGpu>> DetectLocalGpus(const LocalGpuProbe& probe) {
  std::string nvml_why = "NVML: skipped (VRAMFIT_NVML_LIBRARY=none)";
  if (probe.nvml_library != "none") {
    auto nvml = FromNvml(probe.nvml_library);
    if (nvml.ok()) return nvml;
    nvml_why = nvml.error().message;
  }
  auto smi = FromNvidiaSmi(probe.nvidia_smi);
  if (smi.ok()) return smi;
  if (smi.error().kind == ErrorKind::kInvalidArgument) {
    return InvalidArgument(fmt::format("--gpu local: {}", smi.error().message));
  }
  return NotFound(fmt::format(
      "--gpu local: no GPU found ({}; {}); AMD (rocm-smi) and Apple detection are not built: name the GPU "
      "instead (see 'vramfit gpus')",
      nvml_why, smi.error().message));
}

Status AddLocalGpus(const std::vector<LocalGpu>& found, const GpuCatalog& catalog, DeviceSet* set) {
  for (const LocalGpu& g : found) {
    const GpuSpec* spec = MatchLocal(catalog, g);
    if (!spec) {
      return NotFound(fmt::format(
          "--gpu local: {} reports '{}'{}, which the GPU catalog does not know; name the nearest catalog GPU "
          "instead (see 'vramfit gpus')",
          g.source, g.name, g.total_mib ? fmt::format(" ({} MiB)", *g.total_mib) : std::string()));
    }
    GpuSpec d = *spec;
    d.detected = g.source;
    d.detected_name = g.name;
    if (g.total_mib) {
      d.capacity = MiB(*g.total_mib);
      d.in_use = MiB(g.used_mib.value_or(0));
      d.in_use_known = g.used_mib.has_value();
    } else {
      d.in_use_known = false;  // unified memory: the catalog's capacity, what is in use unknown
    }
    set->gpus.push_back(std::move(d));
  }
  return {};
}

}  // namespace vramfit
