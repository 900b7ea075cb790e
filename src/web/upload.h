// Checkpoint headers uploaded by the page (POST /api/v1/upload): the bytes a
// browser read from the start of a dropped .gguf or .safetensors file, turned
// into a Model by the same readers `vramfit infer FILE` uses. Never touches
// the file system: each file is a FileReader over the bytes sent, declared
// with the file's real size, so a reader asking for more than the header
// gets a clear error.
#ifndef VRAMFIT_SRC_WEB_UPLOAD_H_
#define VRAMFIT_SRC_WEB_UPLOAD_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "vramfit/error.h"
#include "vramfit/model.h"

namespace vramfit::web {

// Model ids of uploads: "upload:" + 16 hex digits of the content's hash.
inline constexpr std::string_view kUploadPrefix = "upload:";

// Whether this build links the GGUF and safetensors readers (src/io/gguf.cc,
// src/io/safetensors.cc); without one, an upload of that format answers 501.
bool HaveGgufReader();
bool HaveSafetensorsReader();

enum class UploadFormat { kGguf, kSafetensors };

// The format of an upload, from its file names (all .gguf, or all
// .safetensors). Errors name the offending entry: "files[2].name: ...".
Result<UploadFormat> UploadFormatOf(const nlohmann::json& body);

// The 501 error for a format whose reader this build lacks, or nullopt.
std::optional<Error> MissingReader(UploadFormat f);

struct Upload {
  std::string key;  // 16 hex digits
  std::shared_ptr<const Model> model;
  std::vector<std::string> notes;
};

// Validates the body {"files": [{"name", "size", "header"}], "config"?,
// "index"?} and reads the model. REQUIRES: MissingReader(format) is nullopt.
Result<Upload> ReadUpload(const nlohmann::json& body);

// Strict base64 (RFC 4648 §4, "=" padding optional). `where` names the
// value in errors: "files[0].header: not base64 at character 17".
Result<std::string> DecodeBase64(std::string_view text, std::string_view where);

}  // namespace vramfit::web

#endif  // VRAMFIT_SRC_WEB_UPLOAD_H_
