// plan_bench: the planner's speed targets (issue #6). Not run by ctest.
//   one estimate < 5 us, the catalog sweep (every model x every GPU x 8
//   contexts x 4 weight formats) < 1 s on one core.
//
//   build/release/bench/plan_bench
//
// Each estimate benchmark runs in both modes of the estimator:
//   .../full          formula text built, as `vramfit infer` prints it;
//   .../numbers_only  EstimateOptions{.formulas = false}, as the planner's
//                     searches and sweeps run it (the targets apply here).
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "vramfit/catalog.h"
#include "vramfit/io/source.h"
#include "vramfit/plan.h"

namespace vramfit {
namespace {

const Model& Llama8b() {
  static const Model m = [] {
    auto r = ModelFromCatalog(*ModelCatalog::Builtin().Find("meta-llama/Llama-3.1-8B"), nullptr);
    return r.value();
  }();
  return m;
}

DeviceSet Gpu(const char* name) {
  DeviceSet d;
  (void)AddGpus(name, GpuCatalog::Builtin(), &d);
  return d;
}

constexpr EstimateOptions kFull{};
constexpr EstimateOptions kNumbersOnly{.formulas = false};

// One estimate: resolve + estimate, default settings, one GPU.
void BM_OneEstimate(benchmark::State& state, EstimateOptions options) {
  const Model& m = Llama8b();
  const DeviceSet d = Gpu("RTX-4090");
  Job job;
  job.infer.ctx = 8192;
  for (auto _ : state) {
    auto e = EstimateJob(m, job, d, options);
    benchmark::DoNotOptimize(e);
  }
}
BENCHMARK_CAPTURE(BM_OneEstimate, full, kFull)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_OneEstimate, numbers_only, kNumbersOnly)->Unit(benchmark::kMicrosecond);

// One max-context solve (exponential + binary search): the probes run
// numbers-only, the answer and the step beyond it are estimated again with
// formulas (as `vramfit fit` prints them).
void BM_MaxContextSolve(benchmark::State& state) {
  const Model& m = Llama8b();
  const DeviceSet d = Gpu("RTX-4090");
  Job job;
  for (auto _ : state) {
    auto a = Plan(m, job, d, Solve::kMaxContext);
    benchmark::DoNotOptimize(a);
  }
}
BENCHMARK(BM_MaxContextSolve)->Unit(benchmark::kMicrosecond);

const Model& ModelById(const char* id) {
  static std::vector<std::pair<std::string, Model>> cache;
  for (const auto& [k, m] : cache) {
    if (k == id) return m;
  }
  cache.emplace_back(id, ModelFromCatalog(*ModelCatalog::Builtin().Find(id), nullptr).value());
  return cache.back().second;
}

// The fixes of a job no single change makes fit (issue 16: Llama-3.1-70B on
// one RTX 4090): single changes, then combinations, each estimated.
void BM_CombinedFixes(benchmark::State& state) {
  const Model& m = ModelById("meta-llama/Llama-3.1-70B");
  const DeviceSet d = Gpu("RTX-4090");
  Job job;
  const Estimate e = EstimateJob(m, job, d).value();
  for (auto _ : state) {
    auto f = SuggestFixes(m, job, d, e, &GpuCatalog::Builtin().gpus());
    benchmark::DoNotOptimize(f);
  }
}
BENCHMARK(BM_CombinedFixes)->Unit(benchmark::kMillisecond);

// min-gpus in nodes with its alternatives (Llama-3.1-405B, vLLM, 128k, H100).
void BM_MinGpusInNodes(benchmark::State& state) {
  const Model& m = ModelById("meta-llama/Llama-3.1-405B");
  const DeviceSet d = Gpu("H100-80GB");
  Job job;
  job.infer.runtime = Runtime::kVllm;
  job.infer.ctx = 131072;
  for (auto _ : state) {
    auto a = Plan(m, job, d, Solve::kMinGpus);
    benchmark::DoNotOptimize(a);
  }
}
BENCHMARK(BM_MinGpusInNodes)->Unit(benchmark::kMillisecond);

// The catalog sweep: every model x every GPU x 8 contexts x 4 formats.
void BM_CatalogSweep(benchmark::State& state, EstimateOptions options) {
  std::vector<Model> models;
  for (const CatalogModel& c : ModelCatalog::Builtin().models()) {
    auto m = ModelFromCatalog(c, nullptr);
    if (m.ok()) models.push_back(std::move(m.value()));
  }
  std::vector<DeviceSet> gpus;
  for (const GpuSpec& g : GpuCatalog::Builtin().gpus()) {
    DeviceSet d;
    d.gpus.push_back(g);
    gpus.push_back(d);
  }
  const int64_t contexts[] = {512, 1024, 2048, 4096, 8192, 16384, 32768, 65536};
  const char* formats[] = {"none", "fp8", "int8", "nf4"};
  std::vector<WeightFormat> fmts;
  for (const char* f : formats) fmts.push_back(*ParseWeightFormat(f));
  int64_t n = 0;
  for (auto _ : state) {
    for (const Model& m : models) {
      for (const DeviceSet& d : gpus) {
        for (int64_t ctx : contexts) {
          for (const WeightFormat& f : fmts) {
            Job job;
            job.infer.ctx = ctx;
            job.infer.quant = f;
            auto e = EstimateJob(m, job, d, options);
            benchmark::DoNotOptimize(e);
            ++n;
          }
        }
      }
    }
  }
  state.counters["estimates"] = static_cast<double>(n) / static_cast<double>(state.iterations());
}
BENCHMARK_CAPTURE(BM_CatalogSweep, full, kFull)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK_CAPTURE(BM_CatalogSweep, numbers_only, kNumbersOnly)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace
}  // namespace vramfit
