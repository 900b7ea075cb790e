// MODEL resolution (docs/formats.md, "How MODEL is resolved"): catalog id or
// alias, hf: reference, a .gguf file, a model directory (config.json +
// safetensors headers), or a config.json path.
#include "vramfit/io/source.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "vramfit/io/file_reader.h"
#include "vramfit/io/gguf.h"
#include "vramfit/io/hf_config.h"
#include "vramfit/io/hub.h"
#include "vramfit/io/safetensors.h"

namespace vramfit {
namespace fs = std::filesystem;

namespace {

constexpr uintmax_t kMaxConfigBytes = 16 << 20;

Result<std::string> ReadSmallFile(const fs::path& p) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(p, ec);
  if (ec) return Error{ErrorKind::kIo, fmt::format("{}: cannot read: {}", p.string(), ec.message())};
  if (size > kMaxConfigBytes) {
    return Corrupt(fmt::format("{}: {} bytes is too large for a config.json (limit {} MiB)",
                               p.string(), size, kMaxConfigBytes >> 20));
  }
  std::ifstream in(p, std::ios::binary);
  if (!in) return Error{ErrorKind::kIo, fmt::format("{}: cannot open", p.string())};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool HasSuffix(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The *.gguf files of a directory, sorted.
std::vector<std::string> GgufFilesIn(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (HasSuffix(name, ".gguf")) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A model directory: config.json plus the safetensors shards named by
// model.safetensors.index.json, else model.safetensors, else every
// *.safetensors (adapter_*.safetensors excluded).
Result<Model> LoadDirectory(const fs::path& dir, std::vector<std::string>* notes) {
  std::error_code ec;
  const fs::path cfg = dir / "config.json";
  if (!fs::exists(cfg, ec)) {
    const std::vector<std::string> ggufs = GgufFilesIn(dir);
    if (!ggufs.empty()) {
      std::vector<std::string> shown(ggufs.begin(), ggufs.begin() + std::min<size_t>(ggufs.size(), 4));
      return NotFound(fmt::format("{}: no config.json in this directory (it holds GGUF files: pass one, e.g. {})",
                                  dir.string(), (dir / shown[0]).string()));
    }
    return NotFound(fmt::format("{}: no config.json in this directory", dir.string()));
  }
  auto text = ReadSmallFile(cfg);
  if (!text.ok()) return text.error();

  std::vector<std::string> shards;
  std::optional<SafetensorsIndex> index;
  const fs::path index_path = dir / "model.safetensors.index.json";
  if (fs::exists(index_path, ec)) {
    auto idx_text = ReadSmallFile(index_path);
    if (!idx_text.ok()) return idx_text.error();
    auto idx = ParseSafetensorsIndex(*idx_text, index_path.string());
    if (!idx.ok()) return idx.error();
    index = std::move(idx.value());
    shards = index->shards;
  } else if (fs::exists(dir / "model.safetensors", ec)) {
    shards = {"model.safetensors"};
  } else {
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (HasSuffix(name, ".safetensors") && name.rfind("adapter_", 0) != 0) shards.push_back(name);
    }
    std::sort(shards.begin(), shards.end());
  }
  auto open = [&dir](const std::string& shard) { return OpenLocalFile((dir / shard).string()); };
  auto m = ModelFromCheckpoint(*text, cfg.string(), shards, index ? &*index : nullptr, index_path.string(), open,
                               dir.string(), notes);
  if (m.ok() && shards.empty() && notes != nullptr) {
    notes->push_back(fmt::format("{} holds no *.safetensors files: weights are sized from config.json", dir.string()));
  }
  return m;
}

Result<Model> LoadGgufPath(const fs::path& p, std::vector<std::string>* notes) {
  auto file = OpenLocalFile(p.string());
  if (!file.ok()) return file.error();
  const fs::path dir = p.parent_path();
  auto open = [&dir](const std::string& name) { return OpenLocalFile((dir / name).string()); };
  return LoadGgufModel(**file, p.filename().string(), open, p.string(), notes);
}

}  // namespace

Result<Model> ModelFromCatalog(const CatalogModel& entry, std::vector<std::string>* notes) {
  auto spec = ParseHfConfig(entry.config_json, "catalog entry " + entry.id, notes);
  if (!spec.ok()) return spec.error();
  spec->id = entry.id;
  spec->published_params = entry.exact_params;
  spec->published_params_note = entry.exact_params_note;
  return ModelFromSpec(std::move(spec.value()));
}

Result<Model> LoadModel(std::string_view ref, const ModelCatalog& catalog,
                        std::vector<std::string>* notes) {
  if (ref.empty()) return InvalidArgument("model: the model name is empty");
  if (const CatalogModel* m = catalog.Find(ref)) return ModelFromCatalog(*m, notes);

  if (ref.rfind("hf:", 0) == 0) return LoadHubModel(ref, HubOptionsFromEnv(), notes);

  const fs::path p{std::string(ref)};
  std::error_code ec;
  if (fs::exists(p, ec)) {
    if (fs::is_directory(p, ec)) return LoadDirectory(p, notes);
    if (p.extension() == ".gguf") return LoadGgufPath(p, notes);
    if (p.extension() == ".safetensors") {
      return InvalidArgument(fmt::format("{}: a safetensors file alone does not say the architecture; pass the "
                                         "directory that holds it and its config.json", p.string()));
    }
    auto text = ReadSmallFile(p);
    if (!text.ok()) return text.error();
    auto spec = ParseHfConfig(*text, p.string(), notes);
    if (!spec.ok()) return spec.error();
    spec->id = p.string();
    return ModelFromSpec(std::move(spec.value()));
  }

  std::vector<std::string> sug = catalog.Suggest(ref);
  std::string hint = sug.empty() ? std::string(" (see 'vramfit models')")
                                 : fmt::format(" (did you mean {}?)", fmt::join(sug, ", "));
  return NotFound(fmt::format("model '{}': not in the catalog and not a file{}", ref, hint));
}

}  // namespace vramfit
