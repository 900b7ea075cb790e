// Internal helpers for reading untrusted JSON documents with clear errors.
#ifndef VRAMFIT_SRC_IO_JSON_UTIL_H_
#define VRAMFIT_SRC_IO_JSON_UTIL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "vramfit/error.h"

namespace vramfit::io {

using Json = nlohmann::json;

// Largest JSON document vramfit parses (config.json, safetensors headers).
constexpr size_t kMaxJsonBytes = 64 << 20;
// Deepest nesting accepted; real documents nest < 10 levels.
constexpr int kMaxJsonDepth = 64;

// Parses text; rejects oversize, over-deep and malformed documents with
// "<where>: ..." errors (the parser's byte offset included).
Result<Json> ParseJson(std::string_view text, std::string_view where);

// Typed getters. Each returns nullopt when the key is absent or null, and an
// error when the key is present with the wrong type or out of range.
Result<std::optional<int64_t>> GetInt(const Json& obj, std::string_view key,
                                      std::string_view where);
Result<std::optional<double>> GetNumber(const Json& obj, std::string_view key,
                                        std::string_view where);
Result<std::optional<bool>> GetBool(const Json& obj, std::string_view key,
                                    std::string_view where);
Result<std::optional<std::string>> GetString(const Json& obj, std::string_view key,
                                             std::string_view where);

// Short rendering of a JSON value for error messages (at most ~40 chars).
std::string Preview(const Json& v);

}  // namespace vramfit::io

#endif  // VRAMFIT_SRC_IO_JSON_UTIL_H_
