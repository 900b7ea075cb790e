// Uncertainty bands (include/core/vramfit/uncertainty.h) and their data file
// (include/io/vramfit/io/accuracy_bands.h). The bands here come from small
// synthetic error tables, so every expected byte count is worked by hand:
// the truth behind an estimate F with error err is F / (1 + err).
#include "vramfit/uncertainty.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "vramfit/io/accuracy_bands.h"
#include "vramfit/units.h"

namespace vramfit {
namespace {

constexpr int64_t G = int64_t{1} << 30;

Estimate WithRuntime(const std::string& runtime) {
  Estimate e;
  e.workload = {{"runtime", runtime}};
  return e;
}

DeviceEstimate Device(Bytes total, std::optional<Bytes> allocated, int64_t capacity) {
  DeviceEstimate d;
  d.name = "gpu0";
  d.total = total;
  d.allocated_peak = allocated;
  if (capacity > 0) {
    GpuSpec g;
    g.name = "TEST";
    g.capacity = Bytes(capacity);
    d.gpu = g;
  }
  return d;
}

// Four measured errors: -10%, 0%, +5%, +20%.
AccuracyBand HfBand() {
  return MakeBand("hf", "inference", "allocated", {{"c003", 0.2}, {"c001", -0.1}, {"c002", 0.0}, {"c001", 0.05}});
}

TEST(UncertaintyTest, QuantileIsLinearBetweenOrderStatistics) {
  // numpy.quantile([-0.1, 0, 0.05, 0.2], 0.1) = -0.1 + 0.3 x 0.1 = -0.07;
  // at 0.9: 0.05 + 0.7 x 0.15 = 0.155; the median of |err| {0, .05, .1, .2} = 0.075.
  const std::vector<double> v = {0.2, -0.1, 0.0, 0.05};
  EXPECT_NEAR(Quantile(v, 0.1), -0.07, 1e-12);
  EXPECT_NEAR(Quantile(v, 0.9), 0.155, 1e-12);
  EXPECT_NEAR(Quantile(v, 0.5), 0.025, 1e-12);
  EXPECT_DOUBLE_EQ(Quantile({0.3}, 0.1), 0.3);
}

TEST(UncertaintyTest, MakeBandRoundsAndListsEachCaseOnce) {
  const AccuracyBand b = HfBand();
  EXPECT_EQ(b.n, 4);
  EXPECT_DOUBLE_EQ(b.p10, -0.07);
  EXPECT_DOUBLE_EQ(b.p90, 0.155);
  EXPECT_DOUBLE_EQ(b.median_abs, 0.075);
  EXPECT_EQ(b.cases, (std::vector<std::string>{"c001", "c002", "c003"}));
  // Rounded to 4 decimals: 1/3 -> 0.3333.
  EXPECT_DOUBLE_EQ(MakeBand("a", "b", "c", {{"x", 1.0 / 3}}).p10, 0.3333);
}

TEST(UncertaintyTest, HfBandIsOnTheAllocatedPeak) {
  AccuracyBands bands{{HfBand()}};
  // allocated 10 GiB of a 12 GiB total: low = 2 GiB + 10 GiB / 1.155,
  // high = 2 GiB + 10 GiB / 0.93 (python: round(2*G + 10*G/1.155) ...).
  const Estimate e = WithRuntime("hf");
  const DeviceEstimate d = Device(Bytes(12 * G), Bytes(10 * G), 0);
  const Uncertainty u = DeviceUncertainty(bands, e, d);
  ASSERT_TRUE(u.low && u.high);
  EXPECT_EQ(u.low->value(), 11443949657);
  EXPECT_EQ(u.high->value(), 13693094659);
  EXPECT_EQ(u.n, 3);
  EXPECT_EQ(u.basis,
            "4 measured figures of hf inference, allocated peak (the band is applied to it; the rest of the total is "
            "held): c001, c002, c003 (median |err| 7.5%)");
}

TEST(UncertaintyTest, VerdictIsTightWhenTheCapacityLiesInTheBand) {
  AccuracyBands bands{{HfBand()}};
  Estimate e = WithRuntime("hf");
  // 12 GiB total, band up to 12.75 GiB (13693094659 B).
  for (const auto& [capacity, want] : std::vector<std::pair<int64_t, std::string>>{
           {13 * G, "fits"}, {12 * G + G / 2, "tight"}, {12 * G, "tight"}, {11 * G, "does not fit"}}) {
    e.devices = {Device(Bytes(12 * G), Bytes(10 * G), capacity)};
    e.fits = e.devices[0].total <= Bytes(capacity);
    const std::vector<Uncertainty> u = {DeviceUncertainty(bands, e, e.devices[0])};
    EXPECT_EQ(DeviceVerdict(e, e.devices[0], &u[0]), want) << capacity;
    EXPECT_EQ(EstimateVerdict(e, u), want) << capacity;
    // Without bands, never "tight".
    EXPECT_EQ(EstimateVerdict(e, {}), want == "tight" ? "fits" : want) << capacity;
  }
  e.devices = {Device(Bytes(12 * G), Bytes(10 * G), 0)};
  e.fits.reset();
  EXPECT_EQ(EstimateVerdict(e, {}), "");
  EXPECT_EQ(DeviceVerdict(e, e.devices[0], nullptr), "");
}

TEST(UncertaintyTest, NoBandWithoutEnoughMeasuredCases) {
  const Estimate e = WithRuntime("hf");
  const DeviceEstimate d = Device(Bytes(12 * G), Bytes(10 * G), 0);
  const Uncertainty none = DeviceUncertainty(AccuracyBands{}, e, d);
  EXPECT_FALSE(none.low || none.high);
  EXPECT_EQ(none.basis, "no measured cases for hf inference: no band");
  AccuracyBands two{{MakeBand("hf", "inference", "allocated", {{"c001", 0.1}, {"c002", -0.1}})}};
  const Uncertainty few = DeviceUncertainty(two, e, d);
  EXPECT_FALSE(few.low || few.high);
  EXPECT_EQ(few.basis, "only 2 measured figures for hf inference (c001, c002; fewer than 3): no band");
}

TEST(UncertaintyTest, LlamaCppAddsEachComponentsBand) {
  // weights 4 GiB (2 figures: held), kv_cache 1 GiB (p10 -5%, p90 +10%),
  // compute_buffer 0.5 GiB (p10 -20%, p90 +30%), cuda_context 0.25 GiB (no
  // group: held). low = 5.75 GiB + (1/1.1 - 1) GiB + (0.5/1.3 - 0.5) GiB,
  // high = 5.75 GiB + (1/0.95 - 1) GiB + (0.5/0.8 - 0.5) GiB.
  AccuracyBands bands{{MakeBand("llamacpp", "inference", "weights", {{"c1", 0.0}, {"c2", 0.001}}),
                       MakeBand("llamacpp", "inference", "kv_cache", {{"c1", -0.05}, {"c2", -0.05}, {"c3", 0.1}, {"c4", 0.1}}),
                       MakeBand("llamacpp", "inference", "compute_buffer", {{"c5", -0.2}, {"c6", -0.2}, {"c7", 0.3}, {"c8", 0.3}}),
                       MakeBand("llamacpp", "inference", "compute_buffer@host", {{"c9", 5.0}})}};
  ASSERT_DOUBLE_EQ(bands.bands[1].p10, -0.05);
  ASSERT_DOUBLE_EQ(bands.bands[2].p90, 0.3);
  const Estimate e = WithRuntime("llamacpp");
  DeviceEstimate d = Device(Bytes(5 * G + 3 * G / 4), std::nullopt, 0);
  d.components = {Leaf("weights", Bytes(4 * G)), Leaf("kv_cache", Bytes(G)), Leaf("compute_buffer", Bytes(G / 2)),
                  Leaf("cuda_context", Bytes(G / 4))};
  const Uncertainty u = DeviceUncertainty(bands, e, d);
  ASSERT_TRUE(u.low && u.high);
  EXPECT_EQ(u.low->value(), 5952509308);
  EXPECT_EQ(u.high->value(), 6364745944);
  EXPECT_EQ(u.n, 8);  // c1..c8
  EXPECT_NE(u.basis.find("held at the estimate: weights (only 2 measured figures: c1, c2), cuda_context (no "
                         "measured cases)"),
            std::string::npos)
      << u.basis;
}

TEST(UncertaintyTest, VllmHoldsTheKvPool) {
  AccuracyBands bands{{MakeBand("vllm", "inference", "kv_cache", {{"a", 0.5}, {"b", 0.5}, {"c", 0.5}}),
                       MakeBand("vllm", "inference", "weights", {{"a", 0.0}, {"b", 0.0}, {"c", 0.0}})}};
  const Estimate e = WithRuntime("vllm");
  DeviceEstimate d = Device(Bytes(10 * G), std::nullopt, 0);
  d.components = {Leaf("weights", Bytes(4 * G)), Leaf("kv_cache", Bytes(6 * G))};
  const Uncertainty u = DeviceUncertainty(bands, e, d);
  ASSERT_TRUE(u.low && u.high);
  // Weights measured exact: no width; the pool's +50% is not applied.
  EXPECT_EQ(u.low->value(), 10 * G);
  EXPECT_EQ(u.high->value(), 10 * G);
  EXPECT_NE(u.basis.find("kv_cache (the engine sizes its pool from what the rest leaves)"), std::string::npos);
}

TEST(UncertaintyTest, TrainingKeysByMethod) {
  Estimate e;
  e.workload = {{"mode", std::string("train")}, {"method", std::string("lora")}, {"quant", std::string("nf4")}};
  EXPECT_EQ(BandKey(e), (std::pair<std::string, std::string>{"train", "train/qlora"}));
  e.workload = {{"mode", std::string("train")}, {"method", std::string("full")}, {"quant", std::string("none")}};
  EXPECT_EQ(BandKey(e), (std::pair<std::string, std::string>{"train", "train/full"}));
  EXPECT_EQ(BandKey(WithRuntime("sglang")), (std::pair<std::string, std::string>{"sglang", "inference"}));
}

TEST(AccuracyBandsFileTest, WritesSortedAndReadsBack) {
  AccuracyBands bands{{HfBand(), MakeBand("llamacpp", "inference", "kv_cache", {{"c2", 0.01}, {"c1", -0.02}})}};
  const std::string text = io::AccuracyBandsJson(bands);
  // Sorted by runtime (hf before llamacpp, whichever order they come in);
  // keys sorted within each band.
  EXPECT_LT(text.find("\"hf\""), text.find("\"llamacpp\""));
  EXPECT_LT(text.find("\"cases\""), text.find("\"median_abs_rel_err\""));
  auto back = io::ParseAccuracyBands(text, "t.json");
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_EQ(back->bands.size(), 2u);
  const AccuracyBand* hf = back->Find("hf", "inference", "allocated");
  ASSERT_NE(hf, nullptr);
  EXPECT_DOUBLE_EQ(hf->p10, -0.07);
  EXPECT_DOUBLE_EQ(hf->p90, 0.155);
  EXPECT_EQ(hf->cases, (std::vector<std::string>{"c001", "c002", "c003"}));
  // Deterministic: the order given does not matter, and writing what was read gives the same bytes.
  AccuracyBands reversed{{bands.bands[1], bands.bands[0]}};
  EXPECT_EQ(io::AccuracyBandsJson(reversed), text);
  EXPECT_EQ(io::AccuracyBandsJson(*back), text);
}

TEST(AccuracyBandsFileTest, RefusesBrokenDocuments) {
  auto bad = [](const std::string& text) {
    auto r = io::ParseAccuracyBands(text, "b.json");
    return r.ok() ? std::string("ok") : r.error().message;
  };
  EXPECT_EQ(bad(R"({"schema": "x", "bands": []})"), "b.json: not a vramfit.accuracy_bands/1 document");
  EXPECT_EQ(bad(R"({"schema": "vramfit.accuracy_bands/1"})"), "b.json: no \"bands\" list");
  const std::string head = R"({"schema": "vramfit.accuracy_bands/1", "bands": [)";
  const std::string band =
      R"({"runtime": "hf", "task": "inference", "metric": "allocated", "n": 3, "median_abs_rel_err": 0.1,
          "p10_rel_err": -0.1, "p90_rel_err": 0.2, "cases": ["c1"]})";
  EXPECT_EQ(bad(head + band + "]}"), "ok");
  EXPECT_EQ(bad(head + band + "," + band + "]}"), "b.json: bands[1]: (hf, inference, allocated) listed twice");
  std::string swapped = band;
  swapped.replace(swapped.find("-0.1"), 4, "0.3");
  EXPECT_EQ(bad(head + swapped + "]}"), "b.json: bands[0]: p10_rel_err above p90_rel_err");
  std::string no_cases = band;
  no_cases.replace(no_cases.find("[\"c1\"]"), 6, "[]");
  EXPECT_EQ(bad(head + no_cases + "]}"), "b.json: bands[0]: \"cases\" must be a non-empty list of case ids");
}

// The embedded data/accuracy_bands.json parses, and holds the groups the
// estimates use (it is generated by bench/accuracy --write-bands; ctest
// accuracy_bands_current checks it is current).
TEST(AccuracyBandsFileTest, BuiltinFileHasTheMeasuredGroups) {
  const AccuracyBands& b = io::BuiltinAccuracyBands();
  for (const auto& [runtime, task, metric] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"hf", "inference", "allocated"},
           {"train", "train/full", "allocated"},
           {"train", "train/lora", "allocated"},
           {"train", "train/qlora", "allocated"},
           {"llamacpp", "inference", "compute_buffer"},
           {"llamacpp", "inference", "kv_cache"},
           {"vllm", "inference", "weights"}}) {
    const AccuracyBand* band = b.Find(runtime, task, metric);
    ASSERT_NE(band, nullptr) << runtime << " " << task << " " << metric;
    EXPECT_GE(band->n, kMinBandFigures) << runtime << " " << task << " " << metric;
    EXPECT_LE(band->p10, band->p90);
    EXPECT_FALSE(band->cases.empty());
  }
}

}  // namespace
}  // namespace vramfit
