// Error and Result<T>: how every fallible vramfit call reports failure.
//
// The core never throws across a public header and never prints. A failure is
// an Error with a kind and a one-line message that names where and what, e.g.
//   Error{kInvalidArgument, "--batch: must be a positive integer, got '0'"}
// The CLI prints it as "vramfit: error: <message>" and exits non-zero.
#ifndef VRAMFIT_ERROR_H_
#define VRAMFIT_ERROR_H_

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace vramfit {

enum class ErrorKind {
  kInvalidArgument,  // a setting that cannot be used (zero batch, unknown flag value)
  kNotFound,         // unknown model, GPU, file
  kUnsupported,      // a valid input vramfit does not model (yet); message says what
  kCorrupt,          // a malformed file or document (JSON, GGUF, safetensors)
  kIo,               // a read/write failure
  kNetwork,          // a Hub fetch failure
  kInternal,         // a bug or arithmetic overflow; should not happen
  kDoesNotFit,       // the job cannot start on the given GPUs (vLLM's start-up checks); CLI exit 3
};

// Short stable name of a kind ("invalid_argument", ...), used in JSON errors.
const char* ErrorKindName(ErrorKind kind);

struct Error {
  ErrorKind kind = ErrorKind::kInternal;
  std::string message;  // one line: "<where>: <what>"
};

inline Error InvalidArgument(std::string m) { return {ErrorKind::kInvalidArgument, std::move(m)}; }
inline Error NotFound(std::string m) { return {ErrorKind::kNotFound, std::move(m)}; }
inline Error Unsupported(std::string m) { return {ErrorKind::kUnsupported, std::move(m)}; }
inline Error Corrupt(std::string m) { return {ErrorKind::kCorrupt, std::move(m)}; }

// Either a value or an Error. Access value() only after checking ok().
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}      // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }

  const T& value() const& { assert(ok()); return std::get<T>(v_); }
  T& value() & { assert(ok()); return std::get<T>(v_); }
  T&& value() && { assert(ok()); return std::get<T>(std::move(v_)); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

  const Error& error() const { assert(!ok()); return std::get<Error>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result<void> equivalent.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error e) : e_(std::move(e)) {}  // NOLINT: implicit by design
  bool ok() const { return !e_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const { assert(!ok()); return *e_; }

 private:
  std::optional<Error> e_;
};

}  // namespace vramfit

// Propagates an error from an expression yielding Result<T> or Status.
#define VRAMFIT_TRY(expr)                         \
  do {                                            \
    auto&& vramfit_try_r_ = (expr);               \
    if (!vramfit_try_r_.ok()) return vramfit_try_r_.error(); \
  } while (0)

#endif  // VRAMFIT_ERROR_H_
