// data/accuracy_bands.json: the accuracy harness's measured error bands
// (schema vramfit.accuracy_bands/1), written by
// `bench/accuracy --write-bands data/accuracy_bands.json` and embedded in the
// binary. docs/estimation.md "Uncertainty bands" describes the fields.
#ifndef VRAMFIT_IO_ACCURACY_BANDS_H_
#define VRAMFIT_IO_ACCURACY_BANDS_H_

#include <string>
#include <string_view>

#include "vramfit/error.h"
#include "vramfit/uncertainty.h"

namespace vramfit::io {

// The command that regenerates the file (in every message that asks for it).
inline constexpr char kWriteBandsCommand[] =
    "build/release/bench/accuracy --write-bands data/accuracy_bands.json";

// Parses a bands document; errors name `where` and the band's index.
Result<AccuracyBands> ParseAccuracyBands(std::string_view text, std::string_view where);

// The document for bands: keys sorted, bands sorted by (runtime, task,
// metric), ratios as given (MakeBand rounds them), two-space indent, a
// final newline. Deterministic: the same bands give the same bytes.
std::string AccuracyBandsJson(const AccuracyBands& bands);

// The embedded data/accuracy_bands.json, parsed once; empty (no bands) if it
// is missing or broken (tests/unit/uncertainty_test.cc parses it strictly).
const AccuracyBands& BuiltinAccuracyBands();

}  // namespace vramfit::io

#endif  // VRAMFIT_IO_ACCURACY_BANDS_H_
