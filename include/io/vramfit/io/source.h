// Resolves a MODEL argument into a Model: a catalog id or alias, a path to
// a config.json, or a model directory holding one.
#ifndef VRAMFIT_IO_SOURCE_H_
#define VRAMFIT_IO_SOURCE_H_

#include <string>
#include <string_view>
#include <vector>

#include "vramfit/catalog.h"
#include "vramfit/error.h"
#include "vramfit/model.h"

namespace vramfit {

// Loads a model. Notes about assumptions go to *notes. Errors:
//   unknown model: "model 'llama-9b': not in the catalog (did you mean ...?)"
//   unreadable file: "<path>: cannot read: <reason>"
Result<Model> LoadModel(std::string_view ref, const ModelCatalog& catalog,
                        std::vector<std::string>* notes);

// Builds a Model from a catalog entry.
Result<Model> ModelFromCatalog(const CatalogModel& entry, std::vector<std::string>* notes);

}  // namespace vramfit

#endif  // VRAMFIT_IO_SOURCE_H_
