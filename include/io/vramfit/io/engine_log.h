// Readers of what engines print about their memory: llama.cpp load logs,
// vLLM (V0 and V1) and SGLang start-up logs, PyTorch torch.cuda.memory_stats()
// JSON and tools/measure records, and nvidia-smi --query-gpu CSV. Each
// returns the figures with exact units and the job settings the text states.
//
//   auto log = ParseEngineLog(text, "server.log");   // recognises the format
//   for (const Measured& m : log->figures) ...        // m.bytes, m.half_ulp
//
// Units as each engine means them: llama.cpp MiB = 2^20 B; vLLM "GiB" and its
// older "GB" = 2^30 B; SGLang "GB" = 2^30 B; nvidia-smi MiB = 2^20 B. A printed
// decimal is kept with its rounding interval (Measured::half_ulp), never made
// more precise than printed. Line prefixes (timestamps, "INFO 05-12 ...",
// "(EngineCore pid=...)", ANSI colours, CR) are skipped. Errors are one line
// naming the file and line; a truncated log yields what it holds.
#ifndef VRAMFIT_IO_ENGINE_LOG_H_
#define VRAMFIT_IO_ENGINE_LOG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vramfit/error.h"
#include "vramfit/measured.h"

namespace vramfit::io {

enum class LogFormat { kLlamaCpp, kVllm, kSglang, kTorchMemoryStats, kMeasureRecord, kNvidiaSmi };
const char* LogFormatName(LogFormat f);  // "llama.cpp", "vLLM", "SGLang", ...

// A job setting the log states, as a vramfit setting (settings.h names).
struct LogSetting {
  std::string name;    // "ctx", "ubatch", "quant", "gpu-mem-util", "tp", ...
  std::string value;   // as the setting parses it: "4096", "Q4_K_M", "0.9"
  std::string source;  // where the log says it: "line 123: n_ctx = 4096"
};

// One device row of llama.cpp's "memory breakdown" table, in MiB as printed
// (integers). A field the row does not print is nullopt.
struct BreakdownRow {
  std::string device;          // as printed: "CUDA0 (RTX 4090)", "Host"
  std::string vramfit_device;  // "gpu0", "host"; empty for a device vramfit does not know
  std::optional<int64_t> total_mib, free_mib, self_mib, model_mib, context_mib, compute_mib, unaccounted_mib;
  int line = 0;
};

struct EngineLog {
  LogFormat format = LogFormat::kLlamaCpp;
  std::vector<Measured> figures;
  std::vector<LogSetting> settings;   // each setting once, the first statement wins
  std::optional<std::string> model;   // the model the log names (vLLM model=, SGLang model_path=)
  std::optional<std::string> arch;    // llama.cpp general.architecture; vLLM resolved architecture
  std::vector<std::string> gpu_names; // device names as printed, in device order
  std::optional<int64_t> kv_capacity_tokens;  // vLLM "GPU KV cache size", SGLang "#tokens", V0 blocks x block size
  std::optional<double> max_concurrency;      // vLLM "Maximum concurrency ...: X x"
  std::vector<BreakdownRow> breakdown;        // llama.cpp memory breakdown (the last table printed)
  std::vector<std::string> notes;             // what was read, skipped or assumed
  // A PyTorch record: which job it measured, as vramfit command arguments.
  std::optional<std::string> record_mode;     // "infer" | "train"
  std::vector<std::pair<std::string, std::string>> record_args;
};

// Recognises the format and parses. `name` names the input in errors
// ("server.log", "-"). Errors: a text with no line of any known format
// (naming what was expected), a malformed JSON record, a hostile number.
Result<EngineLog> ParseEngineLog(std::string_view text, std::string_view name);

// The readers, one per format. Each errors when the text holds no line it
// knows.
Result<EngineLog> ParseLlamaCppLog(std::string_view text, std::string_view name);
Result<EngineLog> ParseVllmLog(std::string_view text, std::string_view name);
Result<EngineLog> ParseSglangLog(std::string_view text, std::string_view name);
Result<EngineLog> ParseTorchJson(std::string_view text, std::string_view name);  // memory_stats or a record
Result<EngineLog> ParseNvidiaSmiCsv(std::string_view text, std::string_view name);

// --- Helpers shared by the readers, public for tests.

// A printed decimal ("448.00", "1,234", "0.58") times `unit` bytes: the value
// to the nearest byte and half its last digit. Errors on anything but digits,
// one '.', thousands commas; on more than 15 significant digits; on a value
// above 2^53 bytes.
struct PrintedBytes {
  Bytes bytes;
  Bytes half_ulp;
};
Result<PrintedBytes> ParsePrintedBytes(std::string_view number, int64_t unit);

// A log line without its prefixes and decorations: ANSI escapes and a
// trailing CR removed, then any of "(EngineCore pid=1) ", "[2025-01-01 10:00:00 TP0] ",
// "INFO 05-12 10:00:00 [file.py:12] ", "INFO 05-12 10:00:00 file.py:12] ",
// "1.14.608.510 I ", "time=... level=INFO ... msg=" skipped. `tag` receives a
// rank/device tag the prefix names ("TP0", "rank=1"), if any.
std::string StripLogPrefix(std::string_view line, std::string* tag = nullptr);

}  // namespace vramfit::io

#endif  // VRAMFIT_IO_ENGINE_LOG_H_
