// Byte quantities as a strong, overflow-checked integer type.
//
// Every memory figure in vramfit is a whole number of bytes. Arithmetic on
// Bytes is checked: an overflow throws vramfit::OverflowError, which the single
// public entry points (Estimate, the readers) turn into an Error. GiB/GB appear
// only at the edge, in the renderers.
#ifndef VRAMFIT_UNITS_H_
#define VRAMFIT_UNITS_H_

#include <cstdint>
#include <compare>
#include <stdexcept>
#include <string>

namespace vramfit {

// Thrown by checked arithmetic; never crosses a public entry point.
class OverflowError : public std::runtime_error {
 public:
  explicit OverflowError(const std::string& what) : std::runtime_error(what) {}
};

// Checked int64 helpers. REQUIRES nothing; throw OverflowError on overflow.
inline int64_t CheckedAdd(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) throw OverflowError("integer overflow in addition");
  return r;
}
inline int64_t CheckedMul(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) throw OverflowError("integer overflow in multiplication");
  return r;
}
inline int64_t CheckedSub(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) throw OverflowError("integer overflow in subtraction");
  return r;
}
// Ceiling division for non-negative a and positive b.
inline int64_t CeilDiv(int64_t a, int64_t b) { return a / b + (a % b != 0 ? 1 : 0); }
// Rounds a up to a multiple of m (m > 0).
inline int64_t RoundUp(int64_t a, int64_t m) { return CheckedMul(CeilDiv(a, m), m); }

// A byte count. Signed so that differences (headroom, shortfall) are natural.
class Bytes {
 public:
  constexpr Bytes() = default;
  constexpr explicit Bytes(int64_t v) : v_(v) {}

  constexpr int64_t value() const { return v_; }

  Bytes operator+(Bytes o) const { return Bytes(CheckedAdd(v_, o.v_)); }
  Bytes operator-(Bytes o) const { return Bytes(CheckedSub(v_, o.v_)); }
  Bytes operator*(int64_t k) const { return Bytes(CheckedMul(v_, k)); }
  Bytes& operator+=(Bytes o) { return *this = *this + o; }
  Bytes& operator-=(Bytes o) { return *this = *this - o; }
  constexpr auto operator<=>(const Bytes&) const = default;

 private:
  int64_t v_ = 0;
};

inline Bytes operator*(int64_t k, Bytes b) { return b * k; }

constexpr int64_t kKiB = 1024;
constexpr int64_t kMiB = 1024 * kKiB;
constexpr int64_t kGiB = 1024 * kMiB;

inline Bytes MiB(int64_t n) { return Bytes(CheckedMul(n, kMiB)); }
inline Bytes GiB(int64_t n) { return Bytes(CheckedMul(n, kGiB)); }

}  // namespace vramfit

#endif  // VRAMFIT_UNITS_H_
