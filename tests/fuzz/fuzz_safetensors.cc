// Fuzz target: one safetensors shard of a small Llama checkpoint (header
// reader, tensor placement, totals), then the renderers and an hf estimate.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "vramfit/io/file_reader.h"
#include "vramfit/io/safetensors.h"

namespace {
constexpr char kConfig[] = R"({"model_type":"llama","hidden_size":64,"intermediate_size":128,
  "num_attention_heads":4,"num_key_value_heads":2,"num_hidden_layers":2,"vocab_size":256})";
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vramfit;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  {
    auto file = NewMemoryReader("fuzz.safetensors", bytes);
    auto h = ReadSafetensorsHeader(*file);
    (void)h;
  }
  auto open = [&bytes](const std::string& name) -> Result<std::unique_ptr<FileReader>> {
    return NewMemoryReader(name, bytes);
  };
  std::vector<std::string> notes;
  auto m = ModelFromCheckpoint(kConfig, "config.json", {"model.safetensors"}, nullptr, "", open, "fuzz", &notes);
  if (m.ok()) fuzz::Exercise(*m, notes);
  // The same bytes as an index.
  auto idx = ParseSafetensorsIndex(bytes, "model.safetensors.index.json");
  (void)idx;
  return 0;
}
