// The breakdown tree: named byte components whose parents equal the sum of
// their children. Top-level names are stable API (DESIGN.md).
#ifndef VRAMFIT_BREAKDOWN_H_
#define VRAMFIT_BREAKDOWN_H_

#include <string>
#include <string_view>
#include <vector>

#include "vramfit/error.h"
#include "vramfit/units.h"

namespace vramfit {

struct Component {
  std::string name;     // "weights", "kv_cache", "attention", ...
  Bytes bytes;          // == sum of children when children is non-empty
  std::string formula;  // the main factors, e.g. "2 x 32 layers x 8 heads x 128 x 2 B x 4096 tok"
  std::vector<Component> children;
};

// A leaf.
Component Leaf(std::string name, Bytes bytes, std::string formula = {});
// The same with a literal formula, copied only when formulas are wanted.
Component Leaf(std::string name, Bytes bytes, const char* formula);
// A parent whose bytes are the sum of its children.
Component Parent(std::string name, std::vector<Component> children, std::string formula = {});

// Sum of the top-level components.
Bytes Total(const std::vector<Component>& components);

// Finds a top-level component by name; nullptr if absent.
const Component* Find(const std::vector<Component>& components, std::string_view name);

// Verifies parent == sum(children) everywhere. Returns the first violation
// as an internal error naming the path ("weights/attention").
Status CheckTree(const std::vector<Component>& components);

}  // namespace vramfit

#endif  // VRAMFIT_BREAKDOWN_H_
