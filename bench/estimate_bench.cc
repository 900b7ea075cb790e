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

// One hf estimate (resolve + estimate), the unit of work of every fit search,
// in both modes: full (formula text, as `vramfit infer` prints it) and
// numbers_only (EstimateOptions{.formulas = false}, as the planner runs it).
void BM_EstimateInference(benchmark::State& state, const char* model_id, bool formulas) {
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
    auto e = EstimateInference(*model, *w, devices, EstimateOptions{.formulas = formulas});
    benchmark::DoNotOptimize(e);
    notes.clear();
  }
}
BENCHMARK_CAPTURE(BM_EstimateInference, llama31_8b/full, "meta-llama/Llama-3.1-8B", true);
BENCHMARK_CAPTURE(BM_EstimateInference, llama31_8b/numbers_only, "meta-llama/Llama-3.1-8B", false);
BENCHMARK_CAPTURE(BM_EstimateInference, qwen3_30b_a3b/full, "Qwen/Qwen3-30B-A3B", true);
BENCHMARK_CAPTURE(BM_EstimateInference, qwen3_30b_a3b/numbers_only, "Qwen/Qwen3-30B-A3B", false);
BENCHMARK_CAPTURE(BM_EstimateInference, deepseek_v3/full, "deepseek-ai/DeepSeek-V3", true);
BENCHMARK_CAPTURE(BM_EstimateInference, deepseek_v3/numbers_only, "deepseek-ai/DeepSeek-V3", false);

}  // namespace
}  // namespace vramfit
