// One entry of the built-in model catalog, as the catalog (io) reads it and
// the printers (render) list it.
#ifndef VRAMFIT_CATALOG_MODEL_H_
#define VRAMFIT_CATALOG_MODEL_H_

#include <cstdint>
#include <string>
#include <vector>

namespace vramfit {

struct CatalogModel {
  std::string id;                    // canonical Hugging Face repo id
  std::vector<std::string> also;     // other repos with the same architecture
  std::vector<std::string> aliases;  // short names
  std::string display;
  int64_t exact_params = 0;          // published count, 0 if unknown
  std::string exact_params_note;
  int64_t checkpoint_bytes = 0;      // safetensors index total_size, 0 if unknown
  std::string config_json;           // the config.json text
  std::string source;
};

}  // namespace vramfit

#endif  // VRAMFIT_CATALOG_MODEL_H_
