// This machine's calibration file (include/io/vramfit/io/calibration.h).
#include "vramfit/io/calibration.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "vramfit/io/json_util.h"

namespace vramfit {
namespace {

constexpr const char* kSchema = "vramfit.calibration/1";
constexpr size_t kMaxEntries = 4096;

Result<std::string> Field(const io::Json& e, const char* key, const std::string& where) {
  auto v = io::GetString(e, key, where);
  if (!v.ok()) return v.error();
  if (!*v || (*v)->empty() || (*v)->size() > 400) {
    return InvalidArgument(fmt::format("{}: '{}' must be a string of 1 to 400 characters", where, key));
  }
  return **v;
}

Result<int64_t> Figure(const io::Json& e, const char* key, const std::string& where) {
  auto v = io::GetInt(e, key, where);
  if (!v.ok()) return v.error();
  if (!*v || **v < 0 || **v > kMaxCalibratedBytes) {
    return InvalidArgument(fmt::format("{}: '{}' must be a byte count from 0 to {}", where, key, kMaxCalibratedBytes));
  }
  return **v;
}

Result<CalibrationEntry> EntryFrom(const io::Json& e, const std::string& where) {
  if (!e.is_object()) return InvalidArgument(fmt::format("{}: not an object", where));
  CalibrationEntry c;
  auto gpu = Field(e, "gpu", where);
  if (!gpu.ok()) return gpu.error();
  auto runtime = Field(e, "runtime", where);
  if (!runtime.ok()) return runtime.error();
  auto component = Field(e, "component", where);
  if (!component.ok()) return component.error();
  auto source = Field(e, "source", where);
  if (!source.ok()) return source.error();
  auto saved = Field(e, "saved", where);
  if (!saved.ok()) return saved.error();
  auto bytes = Figure(e, "bytes", where);
  if (!bytes.ok()) return bytes.error();
  auto assumed = Figure(e, "assumed_bytes", where);
  if (!assumed.ok()) return assumed.error();
  if (*runtime != "pytorch" && *runtime != "llamacpp") {
    return InvalidArgument(fmt::format("{}: runtime '{}' is not calibrated (pytorch, llamacpp)", where, *runtime));
  }
  if (*component != "cuda_context") {
    return InvalidArgument(fmt::format("{}: component '{}' is not calibrated (cuda_context)", where, *component));
  }
  return CalibrationEntry{*gpu, *runtime, *component, *bytes, *assumed, *source, *saved};
}

io::Json ToJson(const Calibration& c) {
  io::Json j;
  j["schema"] = kSchema;
  j["entries"] = io::Json::array();
  for (const CalibrationEntry& e : c.entries) {
    j["entries"].push_back({{"gpu", e.gpu},
                            {"runtime", e.runtime},
                            {"component", e.component},
                            {"bytes", e.bytes},
                            {"assumed_bytes", e.assumed_bytes},
                            {"source", e.source},
                            {"saved", e.saved}});
  }
  return j;
}

std::string Errno(const char* what, const std::string& path) {
  return fmt::format("calibration {}: {} failed: {}", path, what, std::strerror(errno));
}

// Writes text to path through a temporary file in the same directory,
// flushed to disk before the rename: a write killed midway leaves the old
// file whole, never half of the new one.
Status WriteAtomically(const std::string& path, const std::string& text) {
  const std::filesystem::path p(path);
  std::error_code ec;
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  if (ec) return Unsupported(fmt::format("calibration {}: cannot create its directory: {}", path, ec.message()));
  std::string tmp = path + ".XXXXXX";
  const int fd = mkstemp(tmp.data());
  if (fd < 0) return Unsupported(Errno("creating a temporary file", path));
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = Errno("writing", path);
      close(fd);
      unlink(tmp.c_str());
      return Unsupported(why);
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    const std::string why = Errno("flushing", path);
    unlink(tmp.c_str());
    return Unsupported(why);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = Errno("renaming the temporary file", path);
    unlink(tmp.c_str());
    return Unsupported(why);
  }
  return {};
}

}  // namespace

std::string CalibrationPath() {
  if (const char* p = std::getenv("VRAMFIT_CALIBRATION"); p && *p) return p;
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) return std::string(x) + "/vramfit/calibration.json";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.config/vramfit/calibration.json";
  return "";
}

Result<Calibration> LoadCalibration(const std::string& path) {
  Calibration c;
  std::error_code ec;
  if (path.empty() || !std::filesystem::exists(path, ec)) return c;
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(fmt::format("calibration {}: cannot be read", path));
  std::string text;
  char buf[65536];
  while (text.size() <= io::kMaxJsonBytes && in.read(buf, sizeof buf).gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
  }
  auto j = io::ParseJson(text, fmt::format("calibration {}", path));
  if (!j.ok()) return j.error();
  if (!j->is_object() || !j->contains("schema") || (*j)["schema"] != kSchema || !j->contains("entries") ||
      !(*j)["entries"].is_array()) {
    return InvalidArgument(fmt::format("calibration {}: not a {} file (give a valid one, or run "
                                       "'vramfit calibration clear')",
                                       path, kSchema));
  }
  if ((*j)["entries"].size() > kMaxEntries) {
    return InvalidArgument(fmt::format("calibration {}: more than {} entries", path, kMaxEntries));
  }
  size_t i = 0;
  for (const io::Json& e : (*j)["entries"]) {
    auto entry = EntryFrom(e, fmt::format("calibration {}: entries[{}]", path, i++));
    if (!entry.ok()) return entry.error();
    c.entries.push_back(std::move(*entry));
  }
  return c;
}

Status SaveCalibration(const std::string& path, const std::vector<CalibrationEntry>& add) {
  if (path.empty()) {
    return Unsupported("--save: no place for the calibration file (set VRAMFIT_CALIBRATION, XDG_CONFIG_HOME or HOME)");
  }
  auto old = LoadCalibration(path);
  if (!old.ok()) return old.error();
  Calibration c = std::move(*old);
  for (const CalibrationEntry& e : add) {
    bool replaced = false;
    for (CalibrationEntry& o : c.entries) {
      if (o.gpu == e.gpu && o.runtime == e.runtime && o.component == e.component) {
        o = e;
        replaced = true;
      }
    }
    if (!replaced) c.entries.push_back(e);
  }
  if (c.entries.size() > kMaxEntries) {
    return InvalidArgument(fmt::format("calibration {}: more than {} entries", path, kMaxEntries));
  }
  return WriteAtomically(path, ToJson(c).dump(2) + "\n");
}

Status ClearCalibration(const std::string& path) {
  std::error_code ec;
  if (path.empty() || !std::filesystem::exists(path, ec)) return {};
  if (!std::filesystem::remove(path, ec) || ec) {
    return Unsupported(fmt::format("calibration {}: cannot be removed: {}", path, ec.message()));
  }
  return {};
}

void AttachCalibration(const Calibration& c, DeviceSet* devices) {
  for (GpuSpec& g : devices->gpus) {
    for (const CalibrationEntry& e : c.entries) {
      if (e.gpu != g.name) continue;
      g.calibration.push_back(CalibratedTerm{
          e.runtime, e.component, Bytes(e.bytes), fmt::format("{}, saved {}", e.source, e.saved)});
    }
  }
}

}  // namespace vramfit
