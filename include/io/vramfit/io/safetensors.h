// safetensors headers: the exact tensor table of a Hugging Face checkpoint,
// read without touching tensor data.
//
// Layout (docs/formats.md §4): an 8-byte little-endian header length N, N
// bytes of JSON {"name": {"dtype": "BF16", "shape": [..], "data_offsets":
// [begin, end]}, "__metadata__": {..}}, then the data section; offsets are
// relative to byte 8 + N.
#ifndef VRAMFIT_IO_SAFETENSORS_H_
#define VRAMFIT_IO_SAFETENSORS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vramfit/error.h"
#include "vramfit/io/file_reader.h"
#include "vramfit/model.h"

namespace vramfit {

// Largest header accepted (the JSON limit of src/io/json_util.h; real shards
// carry a few MiB at most).
constexpr int64_t kMaxSafetensorsHeaderBytes = int64_t{64} << 20;

struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::kBF16;
  std::vector<int64_t> shape;
  int64_t begin = 0;  // data_offsets[0], relative to the data section
  int64_t end = 0;    // data_offsets[1]; end - begin = exact bytes
};

struct SafetensorsHeader {
  int64_t header_length = 0;  // N, the JSON's byte length
  int64_t data_start = 0;     // 8 + N: file offset of the data section
  std::vector<SafetensorsTensor> tensors;  // in the header's key order
  std::vector<std::pair<std::string, std::string>> metadata;  // "__metadata__"
};

// Reads and checks one file's header: reads 8 bytes, then exactly N.
// Every failure names the file and the offset or tensor, e.g.
//   "<file>: header length 900 at offset 0 runs past the end of the file (100 bytes)"
//   "<file>: header: tensor 'w': unknown dtype 'F4'"
// (docs/formats.md §4.2 lists them all).
Result<SafetensorsHeader> ReadSafetensorsHeader(FileReader& file);

// Where a tensor of a Hugging Face checkpoint belongs: its role and its
// decoder layer (-1 when not per layer). Tensors of multi-token-prediction
// modules get a layer >= num_hidden_layers, so no pipeline stage holds them
// (transformers does not load them); vision and audio towers get -1.
struct TensorPlace {
  Role role = Role::kMlp;
  int64_t layer = -1;
};
TensorPlace PlaceHfTensor(std::string_view name, int64_t num_hidden_layers);

// model.safetensors.index.json: the shard files (sorted, unique) and the
// weight_map pairs (tensor, shard). Shard names must be plain relative
// paths: "<where>: weight_map: shard name '../x' is not a file in the
// checkpoint".
struct SafetensorsIndex {
  std::vector<std::string> shards;
  std::vector<std::pair<std::string, std::string>> weight_map;
};
Result<SafetensorsIndex> ParseSafetensorsIndex(std::string_view json_text, std::string_view where);

// Opens one shard of a checkpoint by its relative name.
using OpenShardFn = std::function<Result<std::unique_ptr<FileReader>>(const std::string& shard)>;

// Reads every shard's header and returns the checkpoint's tensors, placed
// with PlaceHfTensor. When `index` is given, every tensor it names must be in
// the shard it names. Errors: the header errors above, a tensor stored in two
// shards, an index entry not found.
Result<std::vector<FileTensor>> ReadSafetensorsCheckpoint(const std::vector<std::string>& shards,
                                                          const OpenShardFn& open,
                                                          const ModelSpec& spec,
                                                          const SafetensorsIndex* index,
                                                          std::string_view index_where);

// A Hugging Face checkpoint: config.json text plus the safetensors shards
// (none: the model is read from config.json alone). Parses the config,
// builds the inventory, reads every shard header into Model::file_tensors
// (file_format "safetensors") and notes how the tensors compare with the
// config-derived inventory. `id` names the model (a path or hf: reference).
Result<Model> ModelFromCheckpoint(std::string_view config_json, std::string_view config_where,
                                  const std::vector<std::string>& shards,
                                  const SafetensorsIndex* index, std::string_view index_where,
                                  const OpenShardFn& open, const std::string& id,
                                  std::vector<std::string>* notes);

}  // namespace vramfit

#endif  // VRAMFIT_IO_SAFETENSORS_H_
