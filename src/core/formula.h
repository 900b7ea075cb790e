// Formula text for breakdown components, built only when the estimate wants
// it. The planner's searches and sweeps run thousands of estimates and read
// only their numbers (EstimateOptions::formulas = false); the CLI's printed
// estimate keeps every formula. Internal to the core.
#ifndef VRAMFIT_SRC_CORE_FORMULA_H_
#define VRAMFIT_SRC_CORE_FORMULA_H_

#include <string>
#include <utility>

#include <fmt/format.h>

namespace vramfit {

namespace internal {
// Per thread: whether the estimate being built on this thread wants its
// formula strings. Set only through FormulaScope.
inline thread_local bool tl_formulas = true;
}  // namespace internal

inline bool FormulasOn() { return internal::tl_formulas; }

// Sets the mode for the estimate being built on this thread; restores the
// previous one on exit (estimates may nest: a planner search inside a
// printed estimate).
class FormulaScope {
 public:
  explicit FormulaScope(bool on) : prev_(internal::tl_formulas) { internal::tl_formulas = on; }
  ~FormulaScope() { internal::tl_formulas = prev_; }
  FormulaScope(const FormulaScope&) = delete;
  FormulaScope& operator=(const FormulaScope&) = delete;

 private:
  bool prev_;
};

// fmt::format for formula text: empty (no allocation, no formatting) in
// numbers-only mode. Use only for Component::formula values.
template <typename... T>
std::string Formula(fmt::format_string<T...> f, T&&... args) {
  if (!internal::tl_formulas) return std::string();
  return fmt::format(f, std::forward<T>(args)...);
}

}  // namespace vramfit

#endif  // VRAMFIT_SRC_CORE_FORMULA_H_
