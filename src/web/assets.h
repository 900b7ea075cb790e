// The page's static files (web/*), compiled into the binary by
// cmake/embed.cmake like the catalog data (src/catalog/embedded.h).
#ifndef VRAMFIT_SRC_WEB_ASSETS_H_
#define VRAMFIT_SRC_WEB_ASSETS_H_

#include <cstddef>

#include "vramfit/io/embedded.h"

namespace vramfit::io {

// Names are "web/index.html", "web/app.js", ...
extern const EmbeddedFile kWebAssets[];
extern const size_t kWebAssetCount;

}  // namespace vramfit::io

#endif  // VRAMFIT_SRC_WEB_ASSETS_H_
