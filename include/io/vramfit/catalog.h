// The built-in catalogs of models and GPUs (data/*.json, embedded at build
// time), and lookup by id, alias or forgiving spelling.
#ifndef VRAMFIT_CATALOG_H_
#define VRAMFIT_CATALOG_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vramfit/device.h"
#include "vramfit/error.h"
#include "vramfit/catalog_model.h"
#include "vramfit/model.h"

namespace vramfit {


class ModelCatalog {
 public:
  // The embedded catalog. Never fails at run time (a broken data file fails
  // the build's tests). Parsed lazily: Find converts only the entry it
  // returns (the start-up path of `vramfit infer MODEL`); models(), Suggest
  // and Search parse the whole catalog once.
  static const ModelCatalog& Builtin();

  // Parses catalog documents ("vramfit.models/1"); for tests and tools.
  static Result<ModelCatalog> Parse(const std::vector<std::pair<std::string, std::string>>& docs);

  const std::vector<CatalogModel>& models() const;

  // Exact match on id, "also" or alias, case-insensitive. nullptr if none.
  const CatalogModel* Find(std::string_view name) const;

  // Up to n closest names (id/also/alias) for "did you mean".
  std::vector<std::string> Suggest(std::string_view name, size_t n = 3) const;

  // Models whose id, also, alias or display contains every word of query.
  std::vector<const CatalogModel*> Search(std::string_view query) const;

 private:
  struct Lazy;  // the built-in catalog's index and its parse-once state
  const std::vector<CatalogModel>& All() const;

  std::vector<CatalogModel> models_;
  std::shared_ptr<Lazy> lazy_;  // null: models_ is complete
};

class GpuCatalog {
 public:
  // The embedded catalog, parsed on first use (a command without --gpu
  // does not parse it).
  static const GpuCatalog& Builtin();
  static Result<GpuCatalog> Parse(std::string_view json_text, std::string_view where);

  const std::vector<GpuSpec>& gpus() const;

  // Forgiving match: case, spaces, dashes and underscores ignored, and the
  // prefixes NVIDIA / GeForce / Tesla / AMD / Instinct / Apple dropped.
  const GpuSpec* Find(std::string_view name) const;
  // Every GPU a name may mean: one for a name, an alias or a name without
  // its family word ("4090" = RTX-4090); several for a name without the size
  // that tells variants apart ("A100": A100-40GB, A100-80GB); none if unknown.
  std::vector<const GpuSpec*> Matches(std::string_view name) const;
  std::vector<std::string> Suggest(std::string_view name, size_t n = 3) const;
  std::vector<const GpuSpec*> Search(std::string_view query) const;

 private:
  struct Lazy;  // the built-in catalog's parse-once state
  const std::vector<GpuSpec>& All() const;

  std::vector<GpuSpec> gpus_;
  std::shared_ptr<Lazy> lazy_;  // null: gpus_ is complete
};

// Parses --gpu values ("RTX-4090", "H100-80GBx8", "A100-80GB x 2") into a
// device set, appending to *set. Errors: unknown GPU with "did you mean".
Status AddGpus(std::string_view spec, const GpuCatalog& catalog, DeviceSet* set);

// Normalized key for forgiving matches: lowercase, no separators.
std::string NormalizeName(std::string_view s);

// Edit distance, for suggestions.
size_t EditDistance(std::string_view a, std::string_view b);

}  // namespace vramfit

#endif  // VRAMFIT_CATALOG_H_
