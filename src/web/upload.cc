// POST /api/v1/upload: checkpoint headers sent by the page -> a Model.
#include "upload.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "vramfit/io/json_util.h"
#include "api.h"
#if defined(VRAMFIT_WEB_HAVE_GGUF) || defined(VRAMFIT_WEB_HAVE_SAFETENSORS)
#define VRAMFIT_WEB_HAVE_A_READER 1
#include "vramfit/io/file_reader.h"
#endif
#ifdef VRAMFIT_WEB_HAVE_GGUF
#include "vramfit/io/gguf.h"
#endif
#ifdef VRAMFIT_WEB_HAVE_SAFETENSORS
#include "vramfit/io/safetensors.h"
#endif

namespace vramfit::web {
namespace {

// Largest file size an upload may declare (1 PiB): real checkpoints are far
// below, and it keeps offsets well inside int64.
constexpr int64_t kMaxDeclaredFileSize = int64_t{1} << 50;

struct UploadedFile {
  std::string name;
  int64_t size = 0;
  std::string bytes;  // the header prefix
};

bool EndsWithNoCase(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  for (size_t i = 0; i < suffix.size(); ++i) {
    const char a = s[s.size() - suffix.size() + i];
    if (std::tolower(static_cast<unsigned char>(a)) != suffix[i]) return false;
  }
  return true;
}

Result<const nlohmann::json*> FilesOf(const nlohmann::json& body) {
  for (const auto& [key, value] : body.items()) {
    if (key != "files" && key != "config" && key != "index") {
      return InvalidArgument(fmt::format("request body: unknown key '{}' (upload takes files, config, index)", key));
    }
  }
  const auto it = body.find("files");
  if (it == body.end() || !it->is_array() || it->empty()) {
    return InvalidArgument("files: expected a list of {\"name\", \"size\", \"header\"} objects");
  }
  if (it->size() > kMaxUploadFiles) {
    return InvalidArgument(fmt::format("files: {} files; at most {} per upload", it->size(), kMaxUploadFiles));
  }
  return &*it;
}

// A file name as a label only: no directories, no control characters.
Status CheckName(const std::string& name, size_t i) {
  const bool bad = name.empty() || name.size() > 255 || name == "." || name == ".." ||
                   std::any_of(name.begin(), name.end(), [](char c) {
                     return c == '/' || c == '\\' || static_cast<unsigned char>(c) < 0x20;
                   });
  if (bad) {
    return InvalidArgument(fmt::format("files[{}].name: expected a file name without directories, got {}", i,
                                       io::Preview(nlohmann::json(name))));
  }
  return {};
}

Result<std::vector<UploadedFile>> ReadFiles(const nlohmann::json& files) {
  std::vector<UploadedFile> out;
  for (size_t i = 0; i < files.size(); ++i) {
    const nlohmann::json& f = files[i];
    const std::string where = fmt::format("files[{}]", i);
    if (!f.is_object()) return InvalidArgument(fmt::format("{}: expected an object, got {}", where, io::Preview(f)));
    auto name = io::GetString(f, "name", where);
    if (!name.ok()) return name.error();
    auto size = io::GetInt(f, "size", where);
    if (!size.ok()) return size.error();
    auto header = io::GetString(f, "header", where);
    if (!header.ok()) return header.error();
    if (!*name || !*size || !*header) {
      return InvalidArgument(fmt::format("{}: expected \"name\", \"size\" and \"header\"", where));
    }
    VRAMFIT_TRY(CheckName(**name, i));
    UploadedFile u;
    u.name = **name;
    u.size = **size;
    auto bytes = DecodeBase64(**header, where + ".header");
    if (!bytes.ok()) return bytes.error();
    u.bytes = std::move(bytes.value());
    if (u.size < static_cast<int64_t>(u.bytes.size()) || u.size > kMaxDeclaredFileSize) {
      return InvalidArgument(fmt::format("{}.size: {} bytes, but the header sent holds {} (and at most 1 PiB)",
                                         where, u.size, u.bytes.size()));
    }
    for (const UploadedFile& prev : out) {
      if (prev.name == u.name) return InvalidArgument(fmt::format("{}.name: '{}' is sent twice", where, u.name));
    }
    out.push_back(std::move(u));
  }
  return out;
}

// FNV-1a, 64 bits, over names, sizes, bytes and the JSON parts: a content
// key, not a security boundary (an upload only ever names itself).
std::string ContentKey(const std::vector<UploadedFile>& files, const nlohmann::json& body) {
  uint64_t h = 1469598103934665603ull;
  const auto mix = [&](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
    h ^= 0xff;
    h *= 1099511628211ull;
  };
  for (const UploadedFile& f : files) {
    mix(f.name);
    mix(std::to_string(f.size));
    mix(f.bytes);
  }
  for (const char* k : {"config", "index"}) {
    const auto it = body.find(k);
    mix(it == body.end() ? std::string() : it->dump());
  }
  return fmt::format("{:016x}", h);
}

}  // namespace

Result<std::string> DecodeBase64(std::string_view text, std::string_view where) {
  const auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  size_t end = text.size();
  while (end > 0 && text.size() - end < 2 && text[end - 1] == '=') --end;
  if (end % 4 == 1) return InvalidArgument(fmt::format("{}: not base64 (truncated)", where));
  std::string out;
  out.reserve(end / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < end; ++i) {
    const int v = value(text[i]);
    if (v < 0) return InvalidArgument(fmt::format("{}: not base64 at character {}", where, i));
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

Result<UploadFormat> UploadFormatOf(const nlohmann::json& body) {
  auto files = FilesOf(body);
  if (!files.ok()) return files.error();
  std::optional<UploadFormat> format;
  for (size_t i = 0; i < (*files)->size(); ++i) {
    const nlohmann::json& f = (**files)[i];
    const auto name = f.is_object() ? f.find("name") : f.end();
    if (!f.is_object() || name == f.end() || !name->is_string()) {
      return InvalidArgument(fmt::format("files[{}]: expected an object with a \"name\"", i));
    }
    const std::string n = name->get<std::string>();
    UploadFormat this_one;
    if (EndsWithNoCase(n, ".gguf")) this_one = UploadFormat::kGguf;
    else if (EndsWithNoCase(n, ".safetensors")) this_one = UploadFormat::kSafetensors;
    else {
      return InvalidArgument(fmt::format("files[{}].name: '{}' is not a .gguf or .safetensors file", i, n));
    }
    if (format && *format != this_one) {
      return InvalidArgument("files: GGUF and safetensors files cannot be mixed in one upload");
    }
    format = this_one;
  }
  return *format;
}

// CMake defines the macros when vramfit_io compiles the readers.
bool HaveGgufReader() {
#ifdef VRAMFIT_WEB_HAVE_GGUF
  return true;
#else
  return false;
#endif
}

bool HaveSafetensorsReader() {
#ifdef VRAMFIT_WEB_HAVE_SAFETENSORS
  return true;
#else
  return false;
#endif
}

std::optional<Error> MissingReader(UploadFormat f) {
  if (f == UploadFormat::kGguf && !HaveGgufReader()) {
    return Unsupported("upload: reading GGUF headers is not available in this build yet");
  }
  if (f == UploadFormat::kSafetensors && !HaveSafetensorsReader()) {
    return Unsupported("upload: reading safetensors headers is not available in this build yet");
  }
  return std::nullopt;
}

Result<Upload> ReadUpload(const nlohmann::json& body) {
  auto format = UploadFormatOf(body);
  if (!format.ok()) return format.error();
  if (auto missing = MissingReader(*format)) return *missing;
  auto list = FilesOf(body);
  if (!list.ok()) return list.error();
  auto files = ReadFiles(**list);
  if (!files.ok()) return files.error();
  Upload up;
  up.key = ContentKey(*files, body);

#ifdef VRAMFIT_WEB_HAVE_A_READER
  // Each uploaded file opens as a reader over its header bytes.
  std::map<std::string, const UploadedFile*> by_name;
  for (const UploadedFile& f : *files) by_name[f.name] = &f;
  const auto open = [&](const std::string& name, const char* hint) -> Result<std::unique_ptr<FileReader>> {
    auto it = by_name.find(name);
    if (it == by_name.end()) return NotFound(fmt::format("{}: not uploaded ({})", name, hint));
    return NewMemoryReader(it->second->name, it->second->bytes, it->second->size);
  };
#endif

  Result<Model> model = Error{ErrorKind::kInternal, "upload: no reader ran"};
  if (*format == UploadFormat::kGguf) {
    if (body.contains("config") || body.contains("index")) {
      return InvalidArgument("upload: a GGUF file carries its own metadata; send no config or index with it");
    }
#ifdef VRAMFIT_WEB_HAVE_GGUF
    // The first part of a split GGUF names the others (split.count); a
    // single file is its own first part.
    std::string first = files->front().name;
    for (const UploadedFile& f : *files) {
      if (f.name.find("-00001-of-") != std::string::npos) first = f.name;
    }
    auto reader = open(first, "drop every part of a split GGUF together");
    if (!reader.ok()) return reader.error();
    model = LoadGgufModel(
        **reader, first,
        [&](const std::string& name) { return open(name, "drop every part of a split GGUF together"); },
        first, &up.notes);
#endif
  } else {
    const auto config = body.find("config");
    if (config == body.end() || !config->is_object()) {
      return InvalidArgument(
          "config: safetensors headers need the model's config.json (drop it with the .safetensors files)");
    }
#ifdef VRAMFIT_WEB_HAVE_SAFETENSORS
    std::optional<SafetensorsIndex> index;
    const auto idx = body.find("index");
    if (idx != body.end() && !idx->is_null()) {
      auto parsed = ParseSafetensorsIndex(idx->dump(), "model.safetensors.index.json");
      if (!parsed.ok()) return parsed.error();
      index = std::move(parsed.value());
    }
    std::vector<std::string> shards;
    if (index) {
      shards = index->shards;
    } else {
      for (const UploadedFile& f : *files) shards.push_back(f.name);
      std::sort(shards.begin(), shards.end());
    }
    const std::string id = shards.size() == 1 ? shards.front()
                                              : fmt::format("{} (+{} shards)", shards.front(), shards.size() - 1);
    model = ModelFromCheckpoint(
        config->dump(), "config.json", shards, index ? &*index : nullptr, "model.safetensors.index.json",
        [&](const std::string& name) { return open(name, "drop every shard the index names"); }, id,
        &up.notes);
#endif
  }
  if (!model.ok()) return model.error();
  up.model = std::make_shared<const Model>(std::move(model.value()));
  return up;
}

}  // namespace vramfit::web
