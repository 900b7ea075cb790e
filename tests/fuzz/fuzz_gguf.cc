// Fuzz target: the GGUF reader and its architecture mapping, then the
// renderers and an hf estimate over whatever model comes out. Every input
// must end in a Model or one Error; nothing may crash, leak or overflow.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "vramfit/io/file_reader.h"
#include "vramfit/io/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vramfit;
  auto file = NewMemoryReader("fuzz.gguf", std::string(reinterpret_cast<const char*>(data), size));
  // A split file's siblings are never there: the open fails cleanly.
  auto open = [](const std::string& name) -> Result<std::unique_ptr<FileReader>> {
    return NotFound(name + ": not here");
  };
  std::vector<std::string> notes;
  auto m = LoadGgufModel(*file, "fuzz-00001-of-00002.gguf", open, "fuzz.gguf", &notes);
  if (m.ok()) fuzz::Exercise(*m, notes);
  return 0;
}
