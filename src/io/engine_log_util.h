// Shared pieces of the engine-log readers (src/io/engine_log*.cc).
#ifndef VRAMFIT_SRC_IO_ENGINE_LOG_UTIL_H_
#define VRAMFIT_SRC_IO_ENGINE_LOG_UTIL_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vramfit/io/engine_log.h"

namespace vramfit::io::log {

// Inputs and lines above these are refused or skipped (hostile input).
inline constexpr size_t kMaxLogBytes = size_t{256} << 20;  // 256 MiB
inline constexpr size_t kMaxLineChars = 64 * 1024;
// Figures one log may hold: far above any start-up (16 GPUs x 5 buffers), and
// low enough that their sum stays inside int64 (512 x 2^53 < 2^63).
inline constexpr size_t kMaxFigures = 512;

struct Line {
  std::string text;  // without prefixes (StripLogPrefix)
  std::string tag;   // rank / device tag of the prefix, if any
  int no = 0;        // 1-based
};

// Errors: a text over kMaxLogBytes, binary data (a NUL byte, or control
// bytes over 1% of the first 64 KiB).
Status CheckText(std::string_view text, std::string_view name);

// The text's lines, prefixes stripped; lines over kMaxLineChars skipped and
// counted in a note. Errors: a text over kMaxLogBytes, binary data.
Result<std::vector<Line>> SplitLines(std::string_view text, std::string_view name, std::vector<std::string>* notes);

// The number token at the start of s (after spaces): digits, ',', one '.',
// an optional leading '-'. Empty when s does not start with one.
std::string_view NumberAt(std::string_view s);

// The text after the first `key` in s; nullopt when s lacks it.
std::optional<std::string_view> After(std::string_view s, std::string_view key);

std::string_view Trim(std::string_view s);

// "12,345" -> 12345; errors on anything else or above 2^53.
Result<int64_t> ParseCount(std::string_view number, std::string_view where);

// A printed decimal in [lo, hi] ("0.90"): errors otherwise.
Result<double> ParseDecimal(std::string_view number, std::string_view where);

// "file:line: " for messages.
std::string Where(std::string_view name, int line);

// Adds the setting unless one of that name is already there.
void AddSetting(EngineLog& log, std::string name, std::string value, const Line& l, std::string_view said);

// A figure in `unit` bytes at line l.
Status AddFigure(EngineLog& log, std::string_view name, const Line& l, std::string device, std::string engine_device,
                 std::string engine_name, std::string component, bool counterpart, std::string_view number,
                 int64_t unit, std::string_view unit_label);

}  // namespace vramfit::io::log

#endif  // VRAMFIT_SRC_IO_ENGINE_LOG_UTIL_H_
