#include "vramfit/io/source.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "vramfit/io/hf_config.h"

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

Result<Model> Finish(ModelSpec spec) {
  Model m;
  m.spec = std::move(spec);
  try {
    m.inventory = BuildInventory(m.spec);
  } catch (const OverflowError&) {
    return Corrupt(fmt::format("{}: parameter count overflows 64 bits", m.spec.id));
  }
  return m;
}

}  // namespace

Result<Model> ModelFromCatalog(const CatalogModel& entry, std::vector<std::string>* notes) {
  auto spec = ParseHfConfig(entry.config_json, "catalog entry " + entry.id, notes);
  if (!spec.ok()) return spec.error();
  spec->id = entry.id;
  spec->published_params = entry.exact_params;
  spec->published_params_note = entry.exact_params_note;
  return Finish(std::move(spec.value()));
}

Result<Model> LoadModel(std::string_view ref, const ModelCatalog& catalog,
                        std::vector<std::string>* notes) {
  if (ref.empty()) return InvalidArgument("model: the model name is empty");
  if (const CatalogModel* m = catalog.Find(ref)) return ModelFromCatalog(*m, notes);

  if (ref.rfind("hf:", 0) == 0) {
    return Unsupported(fmt::format(
        "model '{}': reading from the Hugging Face Hub is not available in this build yet; "
        "download config.json and pass its path",
        ref));
  }
  const fs::path p{std::string(ref)};
  std::error_code ec;
  if (fs::exists(p, ec)) {
    fs::path cfg = p;
    if (fs::is_directory(p, ec)) {
      cfg = p / "config.json";
      if (!fs::exists(cfg, ec)) {
        return NotFound(fmt::format("{}: no config.json in this directory", p.string()));
      }
    } else if (p.extension() == ".gguf") {
      return Unsupported(fmt::format("{}: GGUF files are not readable in this build yet", p.string()));
    }
    auto text = ReadSmallFile(cfg);
    if (!text.ok()) return text.error();
    auto spec = ParseHfConfig(*text, cfg.string(), notes);
    if (!spec.ok()) return spec.error();
    spec->id = p.string();
    return Finish(std::move(spec.value()));
  }

  std::vector<std::string> sug = catalog.Suggest(ref);
  std::string hint = sug.empty() ? std::string(" (see 'vramfit models')")
                                 : fmt::format(" (did you mean {}?)", fmt::join(sug, ", "));
  return NotFound(fmt::format("model '{}': not in the catalog and not a file{}", ref, hint));
}

}  // namespace vramfit
