// Fuzz target: the engine-log readers (llama.cpp, vLLM, SGLang, PyTorch
// JSON, nvidia-smi CSV; docs/check.md), each on the same bytes, then the
// comparison of what they read.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "vramfit/io/engine_log.h"
#include "vramfit/measured.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vramfit;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (auto parse : {io::ParseEngineLog, io::ParseLlamaCppLog, io::ParseVllmLog, io::ParseSglangLog,
                     io::ParseTorchJson, io::ParseNvidiaSmiCsv}) {
    auto log = parse(text, "fuzz.log");
    if (log.ok()) (void)CompareToEstimate(log->figures, nullptr);
  }
  return 0;
}
