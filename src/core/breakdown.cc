#include "vramfit/breakdown.h"

#include <fmt/format.h>

#include "formula.h"

namespace vramfit {

// In numbers-only mode (formula.h) no component keeps a formula, even one
// passed in as a literal.
Component Leaf(std::string name, Bytes bytes, std::string formula) {
  if (!FormulasOn()) formula.clear();
  return Component{std::move(name), bytes, std::move(formula), {}};
}

Component Leaf(std::string name, Bytes bytes, const char* formula) {
  return Component{std::move(name), bytes, FormulasOn() ? std::string(formula) : std::string(), {}};
}

Component Parent(std::string name, std::vector<Component> children, std::string formula) {
  if (!FormulasOn()) formula.clear();
  Component c{std::move(name), Bytes(0), std::move(formula), std::move(children)};
  for (const Component& ch : c.children) c.bytes += ch.bytes;
  return c;
}

Bytes Total(const std::vector<Component>& components) {
  Bytes t;
  for (const Component& c : components) t += c.bytes;
  return t;
}

const Component* Find(const std::vector<Component>& components, std::string_view name) {
  for (const Component& c : components) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

namespace {
// The first component under c (c included) that breaks the rules, or
// nullptr; *path gets its path below c ("/attention") only then, so a sound
// tree costs no string building.
const Component* Check(const Component& c, std::string* path) {
  if (c.bytes.value() < 0) return &c;
  if (c.children.empty()) return nullptr;
  Bytes sum;
  for (const Component& ch : c.children) {
    if (const Component* bad = Check(ch, path)) {
      *path = "/" + ch.name + *path;
      return bad;
    }
    sum += ch.bytes;
  }
  return sum != c.bytes ? &c : nullptr;
}
}  // namespace

Status CheckTree(const std::vector<Component>& components) {
  for (const Component& c : components) {
    std::string below;
    const Component* bad = Check(c, &below);
    if (bad == nullptr) continue;
    const std::string path = c.name + below;
    if (bad->bytes.value() < 0) {
      return Error{ErrorKind::kInternal, fmt::format("breakdown {}: negative bytes", path)};
    }
    Bytes sum;
    for (const Component& ch : bad->children) sum += ch.bytes;
    return Error{ErrorKind::kInternal, fmt::format("breakdown {}: {} bytes but children sum to {}", path,
                                                   bad->bytes.value(), sum.value())};
  }
  return {};
}

}  // namespace vramfit
