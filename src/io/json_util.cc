#include "vramfit/io/json_util.h"

#include <cmath>

#include <fmt/format.h>

namespace vramfit::io {

namespace {

// Scans for nesting depth outside strings, so the recursive parser never
// sees a document deep enough to exhaust the stack.
std::optional<size_t> TooDeepAt(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '{' || c == '[') {
      if (++depth > kMaxJsonDepth) return i;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return std::nullopt;
}

}  // namespace

Result<Json> ParseJson(std::string_view text, std::string_view where) {
  if (text.size() > kMaxJsonBytes) {
    return Corrupt(fmt::format("{}: JSON document of {} bytes exceeds the {} MiB limit", where,
                               text.size(), kMaxJsonBytes >> 20));
  }
  if (auto at = TooDeepAt(text)) {
    return Corrupt(fmt::format("{}: JSON nested deeper than {} levels at byte {}", where,
                               kMaxJsonDepth, *at));
  }
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::parse_error& e) {
    // e.byte is 1-based position of the error.
    std::string what = e.what();
    const auto pos = what.find("parse error");
    if (pos != std::string::npos) what = what.substr(pos);
    return Corrupt(fmt::format("{}: malformed JSON at byte {}: {}", where, e.byte, what));
  } catch (const std::exception& e) {
    return Corrupt(fmt::format("{}: malformed JSON: {}", where, e.what()));
  }
}

std::string Preview(const Json& v) {
  std::string s = v.dump();
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

Result<std::optional<int64_t>> GetInt(const Json& obj, std::string_view key,
                                      std::string_view where) {
  if (!obj.is_object()) return std::optional<int64_t>();
  auto it = obj.find(std::string(key));
  if (it == obj.end() || it->is_null()) return std::optional<int64_t>();
  if (it->is_number_integer()) {
    if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      return Corrupt(fmt::format("{}: key '{}': integer {} is out of range", where, key,
                                 Preview(*it)));
    }
    return std::optional<int64_t>(it->get<int64_t>());
  }
  if (it->is_number_float()) {
    const double d = it->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) {
      return std::optional<int64_t>(static_cast<int64_t>(d));
    }
  }
  return Corrupt(fmt::format("{}: key '{}': expected an integer, got {}", where, key,
                             Preview(*it)));
}

Result<std::optional<double>> GetNumber(const Json& obj, std::string_view key,
                                        std::string_view where) {
  if (!obj.is_object()) return std::optional<double>();
  auto it = obj.find(std::string(key));
  if (it == obj.end() || it->is_null()) return std::optional<double>();
  if (it->is_number()) return std::optional<double>(it->get<double>());
  return Corrupt(fmt::format("{}: key '{}': expected a number, got {}", where, key,
                             Preview(*it)));
}

Result<std::optional<bool>> GetBool(const Json& obj, std::string_view key,
                                    std::string_view where) {
  if (!obj.is_object()) return std::optional<bool>();
  auto it = obj.find(std::string(key));
  if (it == obj.end() || it->is_null()) return std::optional<bool>();
  if (it->is_boolean()) return std::optional<bool>(it->get<bool>());
  return Corrupt(fmt::format("{}: key '{}': expected true or false, got {}", where, key,
                             Preview(*it)));
}

Result<std::optional<std::string>> GetString(const Json& obj, std::string_view key,
                                             std::string_view where) {
  if (!obj.is_object()) return std::optional<std::string>();
  auto it = obj.find(std::string(key));
  if (it == obj.end() || it->is_null()) return std::optional<std::string>();
  if (it->is_string()) return std::optional<std::string>(it->get<std::string>());
  return Corrupt(fmt::format("{}: key '{}': expected a string, got {}", where, key,
                             Preview(*it)));
}

}  // namespace vramfit::io
