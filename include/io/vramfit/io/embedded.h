// The catalog files compiled into the binary (see cmake/embed.cmake).
#ifndef VRAMFIT_SRC_CATALOG_EMBEDDED_H_
#define VRAMFIT_SRC_CATALOG_EMBEDDED_H_

#include <cstddef>

namespace vramfit::io {

struct EmbeddedFile {
  const char* name;  // path relative to the source tree, e.g. "data/gpus.json"
  const char* data;
  size_t size;
};

extern const EmbeddedFile kEmbeddedFiles[];
extern const size_t kEmbeddedFileCount;

}  // namespace vramfit::io

#endif  // VRAMFIT_SRC_CATALOG_EMBEDDED_H_
