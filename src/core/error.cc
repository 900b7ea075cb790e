#include "vramfit/error.h"

namespace vramfit {

const char* ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidArgument: return "invalid_argument";
    case ErrorKind::kNotFound: return "not_found";
    case ErrorKind::kUnsupported: return "unsupported";
    case ErrorKind::kCorrupt: return "corrupt";
    case ErrorKind::kIo: return "io";
    case ErrorKind::kNetwork: return "network";
    case ErrorKind::kInternal: return "internal";
    case ErrorKind::kDoesNotFit: return "does_not_fit";
  }
  return "internal";
}

}  // namespace vramfit
