// Engine logs (include/vramfit/io/engine_log.h): what is shared by every
// reader (lines, prefixes, printed numbers) and the format recognition.
#include "vramfit/io/engine_log.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "engine_log_util.h"

namespace vramfit::io {

const char* LogFormatName(LogFormat f) {
  switch (f) {
    case LogFormat::kLlamaCpp: return "llama.cpp";
    case LogFormat::kVllm: return "vLLM";
    case LogFormat::kSglang: return "SGLang";
    case LogFormat::kTorchMemoryStats: return "torch.cuda.memory_stats() JSON";
    case LogFormat::kMeasureRecord: return "tools/measure record";
    case LogFormat::kNvidiaSmi: return "nvidia-smi CSV";
  }
  return "?";
}

namespace {

constexpr int64_t kMaxExactBytes = int64_t{1} << 53;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// ESC '[' parameters final-byte sequences (colours) and a trailing CR.
std::string RemoveAnsi(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\x1b' && i + 1 < s.size() && s[i + 1] == '[') {
      size_t j = i + 2;
      while (j < s.size() && !(s[j] >= '@' && s[j] <= '~')) ++j;
      i = j;  // the final byte, skipped by the loop
      continue;
    }
    // The same codes pasted without their ESC byte ("[34m...[0m", as issue
    // text often shows them): '[' digits and ';' then 'm'.
    if (s[i] == '[' && i + 2 < s.size() && IsDigit(s[i + 1])) {
      size_t j = i + 1;
      while (j < s.size() && j < i + 12 && (IsDigit(s[j]) || s[j] == ';')) ++j;
      if (j < s.size() && s[j] == 'm') {
        i = j;
        continue;
      }
    }
    if (s[i] == '\r' && i + 1 == s.size()) break;
    out.push_back(s[i]);
  }
  return out;
}

// "TP0", "rank=1", "DP0 TP1": the rank tag inside a prefix.
std::string TagIn(std::string_view s) {
  for (size_t i = 0; i + 2 < s.size(); ++i) {
    if (s.substr(i, 2) == "TP" && IsDigit(s[i + 2]) && (i == 0 || !std::isalpha(static_cast<unsigned char>(s[i - 1])))) {
      size_t j = i + 2;
      while (j < s.size() && IsDigit(s[j])) ++j;
      return std::string(s.substr(i, j - i));
    }
  }
  if (auto p = s.find("rank="); p != std::string_view::npos) {
    size_t j = p + 5;
    while (j < s.size() && IsDigit(s[j])) ++j;
    if (j > p + 5) return "TP" + std::string(s.substr(p + 5, j - p - 5));
  }
  return {};
}

bool IsLevel(std::string_view w) {
  return w == "INFO" || w == "WARNING" || w == "WARN" || w == "DEBUG" || w == "ERROR" || w == "CRITICAL";
}

// One prefix off the front of s; false when s starts with none.
bool StripOne(std::string_view& s, std::string* tag) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  if (s.empty()) return false;
  // "(EngineCore_DP0 pid=10258) ", "(VllmWorker rank=0 pid=7482) "
  if (s.front() == '(') {
    const size_t close = s.find(')');
    if (close != std::string_view::npos && close < 80 && s.substr(0, close).find("pid=") != std::string_view::npos) {
      const std::string t = TagIn(s.substr(0, close));
      if (!t.empty() && tag) *tag = t;
      s.remove_prefix(close + 1);
      return true;
    }
    return false;
  }
  // "[2026-09-12 00:22:48 TP0] " (SGLang)
  if (s.front() == '[' && s.size() > 12 && IsDigit(s[1]) && s[5] == '-') {
    const size_t close = s.find(']');
    if (close != std::string_view::npos && close < 80) {
      const std::string t = TagIn(s.substr(0, close));
      if (!t.empty() && tag) *tag = t;
      s.remove_prefix(close + 1);
      return true;
    }
    return false;
  }
  // "INFO 05-12 10:00:00 [file.py:12] " and "INFO 03-05 19:36:10 file.py:527] "
  const size_t sp = s.find(' ');
  if (sp != std::string_view::npos && IsLevel(s.substr(0, sp))) {
    std::string_view rest = s.substr(sp + 1);
    if (rest.size() >= 15 && IsDigit(rest[0]) && rest[2] == '-' && rest[5] == ' ') {
      const size_t close = rest.find("] ");
      if (close != std::string_view::npos && close < 80) {
        s = rest.substr(close + 2);
        return true;
      }
    }
    s = rest;  // "INFO: ..." style without a date
    return true;
  }
  // llama.cpp's timestamps (-lv/--log-timestamps): "1.14.608.510 I "
  if (IsDigit(s.front())) {
    size_t j = 0;
    while (j < s.size() && (IsDigit(s[j]) || s[j] == '.')) ++j;
    if (j >= 5 && j + 3 <= s.size() && s[j] == ' ' && std::string_view("IWED").find(s[j + 1]) != std::string_view::npos &&
        s[j + 2] == ' ') {
      s.remove_prefix(j + 3);
      return true;
    }
    // ISO times: "2025-12-11 00:06:54,210 - INFO - " / "2025-01-01T10:00:00Z "
    if (s.size() > 20 && s[4] == '-' && s[7] == '-' && (s[10] == 'T' || s[10] == ' ') && IsDigit(s[11])) {
      size_t k = 11;
      while (k < s.size() && s[k] != ' ') ++k;
      std::string_view rest = s.substr(std::min(k, s.size()));
      while (!rest.empty() && (rest.front() == ' ' || rest.front() == '-')) rest.remove_prefix(1);
      const size_t w = rest.find(' ');
      if (w != std::string_view::npos && IsLevel(rest.substr(0, w))) {
        rest.remove_prefix(w);
        while (!rest.empty() && (rest.front() == ' ' || rest.front() == '-')) rest.remove_prefix(1);
      }
      s = rest;
      return true;
    }
    return false;
  }
  // Ollama's Go log: "time=... level=INFO source=... msg=..."
  if (StartsWith(s, "time=")) {
    if (auto m = s.find(" msg="); m != std::string_view::npos) {
      s.remove_prefix(m + 5);
      if (!s.empty() && s.front() == '"') s.remove_prefix(1);
      return true;
    }
    return false;
  }
  // docker compose: "qwen3.5-122    | "
  const size_t bar = s.find(" | ");
  if (bar != std::string_view::npos && bar < 64 && s.front() != '|') {
    const std::string_view name = log::Trim(s.substr(0, bar));
    const bool plain = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    });
    if (plain) {
      s.remove_prefix(bar + 3);
      return true;
    }
  }
  return false;
}

}  // namespace

std::string StripLogPrefix(std::string_view line, std::string* tag) {
  const std::string clean = RemoveAnsi(line);
  std::string_view s = clean;
  for (int i = 0; i < 6 && StripOne(s, tag); ++i) {
  }
  return std::string(log::Trim(s));
}

Result<PrintedBytes> ParsePrintedBytes(std::string_view number, int64_t unit) {
  const std::string shown(number);
  bool neg = false;
  if (!number.empty() && number.front() == '-') {
    neg = true;
    number.remove_prefix(1);
  }
  int64_t mantissa = 0;
  int digits = 0;
  int decimals = -1;  // digits after '.', -1 before it
  for (char c : number) {
    if (c == ',' && decimals < 0) continue;
    if (c == '.' && decimals < 0) {
      decimals = 0;
      continue;
    }
    if (!IsDigit(c)) return InvalidArgument(fmt::format("'{}' is not a number", shown));
    if (mantissa != 0 || c != '0') ++digits;
    if (digits > 15) return InvalidArgument(fmt::format("'{}' has more digits than any real figure", shown));
    mantissa = mantissa * 10 + (c - '0');
    if (decimals >= 0) ++decimals;
  }
  if (number.empty() || number == "." || (decimals < 0 && number.find_first_of("0123456789") == std::string_view::npos)) {
    return InvalidArgument(fmt::format("'{}' is not a number", shown));
  }
  if (decimals < 0) decimals = 0;
  if (decimals > 12) return InvalidArgument(fmt::format("'{}' has more digits than any real figure", shown));
  __int128 scale = 1;
  for (int i = 0; i < decimals; ++i) scale *= 10;
  const __int128 num = static_cast<__int128>(mantissa) * unit;
  const __int128 bytes = (num * 2 + scale) / (scale * 2);  // round half up
  if (bytes > kMaxExactBytes) {
    return InvalidArgument(fmt::format("'{}' is larger than any device (over 2^53 bytes)", shown));
  }
  // Half the last printed digit: unit / (2 x 10^decimals), rounded; a count
  // of whole bytes is exact.
  __int128 half = unit == 1 && decimals == 0 ? 0 : (static_cast<__int128>(unit) + scale) / (scale * 2);
  PrintedBytes out;
  out.bytes = Bytes(static_cast<int64_t>(neg ? -bytes : bytes));
  out.half_ulp = Bytes(static_cast<int64_t>(half));
  return out;
}

namespace log {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string_view NumberAt(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  const size_t start = i;
  if (i < s.size() && s[i] == '-') ++i;
  const size_t first_digit = i;
  bool dot = false;
  while (i < s.size() && (IsDigit(s[i]) || (s[i] == ',' && i + 1 < s.size() && IsDigit(s[i + 1]) && i > first_digit) ||
                          (s[i] == '.' && !dot && i + 1 < s.size() && IsDigit(s[i + 1])))) {
    if (s[i] == '.') dot = true;
    ++i;
  }
  if (i == first_digit) return {};
  return s.substr(start, i - start);
}

std::optional<std::string_view> After(std::string_view s, std::string_view key) {
  const size_t p = s.find(key);
  if (p == std::string_view::npos) return std::nullopt;
  return s.substr(p + key.size());
}

std::string Where(std::string_view name, int line) { return fmt::format("{}:{}: ", name, line); }

Result<int64_t> ParseCount(std::string_view number, std::string_view where) {
  auto b = ParsePrintedBytes(number, 1);
  if (!b.ok() || number.find('.') != std::string_view::npos || b->bytes.value() < 0) {
    return InvalidArgument(fmt::format("{}expected a whole count, got '{}'", where, number));
  }
  return b->bytes.value();
}

Result<double> ParseDecimal(std::string_view number, std::string_view where) {
  const std::string s(number);
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !std::isfinite(v) || s.size() > 24) {
    return InvalidArgument(fmt::format("{}expected a number, got '{}'", where, number));
  }
  return v;
}

void AddSetting(EngineLog& log, std::string name, std::string value, const Line& l, std::string_view said) {
  for (const LogSetting& s : log.settings) {
    if (s.name == name) return;
  }
  log.settings.push_back({std::move(name), std::move(value), fmt::format("line {}: {}", l.no, said)});
}

Status AddFigure(EngineLog& log, std::string_view name, const Line& l, std::string device, std::string engine_device,
                 std::string engine_name, std::string component, bool counterpart, std::string_view number,
                 int64_t unit, std::string_view unit_label) {
  if (log.figures.size() >= kMaxFigures) {
    return InvalidArgument(Where(name, l.no) + fmt::format("more than {} memory figures (several runs in one log? give "
                                                           "one run's lines)",
                                                           kMaxFigures));
  }
  auto b = ParsePrintedBytes(number, unit);
  if (!b.ok()) return InvalidArgument(Where(name, l.no) + b.error().message);
  Measured m;
  m.device = std::move(device);
  m.engine_device = std::move(engine_device);
  m.engine_name = std::move(engine_name);
  m.component = std::move(component);
  m.has_counterpart = counterpart;
  m.bytes = b->bytes;
  m.half_ulp = b->half_ulp;
  m.printed = fmt::format("{} {}", number, unit_label);
  m.line = l.no;
  log.figures.push_back(std::move(m));
  return {};
}

Status CheckText(std::string_view text, std::string_view name) {
  if (text.size() > kMaxLogBytes) {
    return InvalidArgument(fmt::format("{}: over {} MiB, more than any start-up log (give the start-up lines)", name,
                                       kMaxLogBytes >> 20));
  }
  // Binary data: NUL bytes, or control bytes making up over 1% of the head.
  const std::string_view head = text.substr(0, 65536);
  size_t control = 0;
  for (size_t i = 0; i < head.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(head[i]);
    if (c == 0) return InvalidArgument(fmt::format("{}: not a text log (a NUL byte at offset {})", name, i));
    if (c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != 0x1b) ++control;
  }
  if (control * 100 > head.size() + 100) {
    return InvalidArgument(fmt::format("{}: not a text log ({} control bytes in the first {})", name, control, head.size()));
  }
  return {};
}

Result<std::vector<Line>> SplitLines(std::string_view text, std::string_view name, std::vector<std::string>* notes) {
  VRAMFIT_TRY(CheckText(text, name));
  std::vector<Line> lines;
  int no = 0;
  int skipped = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    ++no;
    const std::string_view raw = text.substr(pos, end - pos);
    if (raw.size() > kMaxLineChars) {
      ++skipped;
    } else if (!raw.empty()) {
      Line l;
      l.no = no;
      l.text = StripLogPrefix(raw, &l.tag);
      if (!l.text.empty()) lines.push_back(std::move(l));
    }
    if (end == text.size()) break;
    pos = end + 1;
  }
  if (skipped > 0 && notes) {
    notes->push_back(fmt::format("{} line(s) over {} characters skipped", skipped, kMaxLineChars));
  }
  return lines;
}

}  // namespace log

namespace {

int Hits(std::string_view text, std::initializer_list<std::string_view> markers) {
  int n = 0;
  for (std::string_view m : markers) {
    size_t p = 0;
    while ((p = text.find(m, p)) != std::string_view::npos && n < 1000) {
      ++n;
      p += m.size();
    }
  }
  return n;
}

}  // namespace

Result<EngineLog> ParseEngineLog(std::string_view text, std::string_view name) {
  VRAMFIT_TRY(log::CheckText(text, name));
  const std::string_view body = log::Trim(text.substr(0, std::min(text.size(), log::kMaxLogBytes + 1)));
  // A JSON document or JSON lines; '[' also opens SGLang's "[date] ..." lines.
  const bool json_array = !body.empty() && body.front() == '[' &&
                          std::string_view("{]").find(log::Trim(body.substr(1, 64)).substr(0, 1)) != std::string_view::npos &&
                          log::Trim(body.substr(1, 64)).size() > 0;
  if (!body.empty() && (body.front() == '{' || json_array)) return ParseTorchJson(text, name);
  const std::string_view first = body.substr(0, body.find('\n'));
  if (first.find("memory.used") != std::string_view::npos || first.find("memory.total") != std::string_view::npos) {
    return ParseNvidiaSmiCsv(text, name);
  }
  const int llama = Hits(text, {" buffer size = ", "llama_model_loader:", "load_tensors:", "llama_context:",
                                "llama_kv_cache", "llama_new_context_with_model:", "memory_breakdown"});
  const int vllm = Hits(text, {"Model loading took", "Loading model weights took", "Available KV cache memory",
                               "GPU KV cache size", "# GPU blocks", "Maximum concurrency for", "vLLM", "vllm"});
  const int sglang = Hits(text, {"KV Cache is allocated", "Load weight end", "max_total_num_tokens", "sglang",
                                 "ServerArgs(", "Memory pool end"});
  const auto generic = [&] {
    return InvalidArgument(fmt::format(
        "{}: no line of a known engine log (expected a llama.cpp log with \"<device> model buffer size = X MiB\", "
        "a vLLM log with \"Model loading took X GiB\" or \"GPU KV cache size: N tokens\", an SGLang log with "
        "\"KV Cache is allocated. #tokens: N\", a torch.cuda.memory_stats() JSON or tools/measure record, or "
        "nvidia-smi --query-gpu=memory.used,... --format=csv output)",
        name));
  };
  if (llama == 0 && vllm == 0 && sglang == 0) return generic();
  Result<EngineLog> r = llama >= vllm && llama >= sglang ? ParseLlamaCppLog(text, name)
                        : sglang > vllm                  ? ParseSglangLog(text, name)
                                                         : ParseVllmLog(text, name);
  // A text that only mentions an engine ("vllm", a quoted line in prose)
  // holds no line of it: the error names every format expected.
  if (!r.ok() && r.error().message.rfind(std::string(name) + ": no ", 0) == 0 &&
      r.error().message.find(" line found") != std::string::npos) {
    return generic();
  }
  return r;
}

}  // namespace vramfit::io
