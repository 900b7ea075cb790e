#include "vramfit/breakdown.h"

#include <fmt/format.h>

namespace vramfit {

Component Leaf(std::string name, Bytes bytes, std::string formula) {
  return Component{std::move(name), bytes, std::move(formula), {}};
}

Component Parent(std::string name, std::vector<Component> children, std::string formula) {
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
Status Check(const Component& c, const std::string& path) {
  if (c.bytes.value() < 0) {
    return Error{ErrorKind::kInternal, fmt::format("breakdown {}: negative bytes", path)};
  }
  if (c.children.empty()) return {};
  Bytes sum;
  for (const Component& ch : c.children) {
    VRAMFIT_TRY(Check(ch, path + "/" + ch.name));
    sum += ch.bytes;
  }
  if (sum != c.bytes) {
    return Error{ErrorKind::kInternal,
                 fmt::format("breakdown {}: {} bytes but children sum to {}", path,
                             c.bytes.value(), sum.value())};
  }
  return {};
}
}  // namespace

Status CheckTree(const std::vector<Component>& components) {
  for (const Component& c : components) VRAMFIT_TRY(Check(c, c.name));
  return {};
}

}  // namespace vramfit
