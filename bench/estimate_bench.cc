// estimate_bench: how long the library takes to answer, so that interactive
// frontends (the web UI recomputes on every keystroke) and the fit searches
// (many estimates per answer) stay fast. Not run by ctest.
//
//   build/bench/estimate_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "vramfit/catalog.h"
#include "vramfit/estimate.h"
#include "vramfit/io/source.h"
#include "vramfit/workload.h"

namespace vramfit {
namespace {

// Building a Model from a catalog entry: config parse + tensor inventory.
void BM_ModelFromCatalog(benchmark::State& state) {
  const CatalogModel* entry = ModelCatalog::Builtin().Find("meta-llama/Llama-3.1-8B");
  if (entry == nullptr) {
    state.SkipWithError("meta-llama/Llama-3.1-8B is not in the catalog");
    return;
  }
  for (auto _ : state) {
    std::vector<std::string> notes;
    auto m = ModelFromCatalog(*entry, &notes);
    benchmark::DoNotOptimize(m);
  }
}
BENCHMARK(BM_ModelFromCatalog);

// One hf estimate (resolve + estimate), the unit of work of every fit search.
void BM_EstimateInference(benchmark::State& state, const char* model_id) {
  const CatalogModel* entry = ModelCatalog::Builtin().Find(model_id);
  DeviceSet devices;
  if (entry == nullptr || !AddGpus("H100-80GB", GpuCatalog::Builtin(), &devices).ok()) {
    state.SkipWithError("model or GPU missing from the catalog");
    return;
  }
  std::vector<std::string> notes;
  auto model = ModelFromCatalog(*entry, &notes);
  if (!model.ok()) {
    state.SkipWithError(model.error().message.c_str());
    return;
  }
  InferenceSettings s;
  s.batch = 8;
  s.prompt = 2048;
  s.new_tokens = 512;
  for (auto _ : state) {
    auto w = ResolveInference(*model, s, devices, &notes);
    if (!w.ok()) {
      state.SkipWithError(w.error().message.c_str());
      return;
    }
    auto e = EstimateInference(*model, *w, devices);
    benchmark::DoNotOptimize(e);
    notes.clear();
  }
}
BENCHMARK_CAPTURE(BM_EstimateInference, llama31_8b, "meta-llama/Llama-3.1-8B");
BENCHMARK_CAPTURE(BM_EstimateInference, qwen3_30b_a3b, "Qwen/Qwen3-30B-A3B");
BENCHMARK_CAPTURE(BM_EstimateInference, deepseek_v3, "deepseek-ai/DeepSeek-V3");

}  // namespace
}  // namespace vramfit
