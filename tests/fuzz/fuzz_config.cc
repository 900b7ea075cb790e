// Fuzz target: the config.json reader (every model_type mapping, JSON size
// and depth caps), then the inventory, renderers and an hf estimate.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "vramfit/io/hf_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vramfit;
  std::vector<std::string> notes;
  auto spec = ParseHfConfig(std::string_view(reinterpret_cast<const char*>(data), size), "config.json", &notes);
  if (!spec.ok()) return 0;
  Model m;
  m.spec = std::move(spec.value());
  try {
    m.inventory = BuildInventory(m.spec);
  } catch (const OverflowError&) {
    return 0;  // the sources report this as one error (source.cc Finish)
  }
  fuzz::Exercise(m, notes);
  return 0;
}
