// safetensors header reader (format: huggingface/safetensors README,
// "Format"; docs/formats.md §4). Reads the 8-byte length and the JSON header
// only; tensor data is never read.
#include "vramfit/io/safetensors.h"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "vramfit/io/json_util.h"
#include "vramfit/io/hf_config.h"

namespace vramfit {
namespace {

using io::Json;

uint64_t LoadLe64(const std::string& b) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[static_cast<size_t>(i)]);
  return v;
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

// A non-negative JSON integer that fits int64, or nullopt.
std::optional<int64_t> NonNegative(const Json& v) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (i < 0) return std::nullopt;
    return i;
  }
  return std::nullopt;
}

Result<SafetensorsTensor> ReadEntry(const std::string& key, const Json& v, const std::string& where,
                                    int64_t data_bytes) {
  const std::string at = fmt::format("{}: tensor '{}'", where, key);
  if (!v.is_object()) {
    return Corrupt(at + ": expected an object with dtype, shape and data_offsets");
  }
  SafetensorsTensor t;
  t.name = key;
  auto dt = v.find("dtype");
  if (dt == v.end() || !dt->is_string()) return Corrupt(at + ": 'dtype' is missing or not a string");
  const std::string dtype = dt->get<std::string>();
  auto d = DTypeFromSafetensors(dtype);
  if (!d) {
    return Unsupported(fmt::format("{}: unknown dtype '{}'", at, dtype.size() > 16 ? dtype.substr(0, 16) + "..." : dtype));
  }
  t.dtype = *d;

  auto sh = v.find("shape");
  if (sh == v.end() || !sh->is_array()) return Corrupt(at + ": 'shape' is missing or not a list");
  if (sh->size() > 8) return Corrupt(fmt::format("{}: shape has {} dimensions (at most 8)", at, sh->size()));
  int64_t elems = 1;
  bool overflow = false;
  for (const Json& x : *sh) {
    auto n = NonNegative(x);
    if (!n) return Corrupt(fmt::format("{}: shape entry {} is not a non-negative integer", at, io::Preview(x)));
    t.shape.push_back(*n);
    if (!overflow && __builtin_mul_overflow(elems, *n, &elems)) overflow = true;
  }
  if (overflow) return Corrupt(fmt::format("{}: shape {} overflows 64 bits", at, ShapeText(t.shape)));
  int64_t need = 0;
  const DTypeInfo& info = Info(t.dtype);
  if (__builtin_mul_overflow(CeilDiv(elems, info.block_elems), info.block_bytes, &need)) {
    return Corrupt(fmt::format("{}: shape {} overflows 64 bits", at, ShapeText(t.shape)));
  }

  auto off = v.find("data_offsets");
  if (off == v.end() || !off->is_array() || off->size() != 2) {
    return Corrupt(at + ": 'data_offsets' must be a list [begin, end]");
  }
  auto b = NonNegative((*off)[0]);
  auto e = NonNegative((*off)[1]);
  if (!b || !e || *b > *e) {
    return Corrupt(fmt::format("{}: data_offsets {} must be two integers with 0 <= begin <= end", at,
                               io::Preview(*off)));
  }
  t.begin = *b;
  t.end = *e;
  if (t.end - t.begin != need) {
    return Corrupt(fmt::format("{}: data_offsets [{}, {}] hold {} bytes, but shape {} of {} needs {}",
                               at, t.begin, t.end, t.end - t.begin, ShapeText(t.shape), dtype, need));
  }
  if (t.end > data_bytes) {
    return Corrupt(fmt::format("{}: data_offsets [{}, {}] run past the end of the file ({} bytes of data)",
                               at, t.begin, t.end, data_bytes));
  }
  return t;
}

// The part of a name split at dots.
std::vector<std::string_view> Segments(std::string_view name) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) dot = name.size();
    out.push_back(name.substr(start, dot - start));
    start = dot + 1;
  }
  return out;
}

// A short decimal index (a layer or an expert), or -1.
int64_t SmallIndex(std::string_view s) {
  if (s.empty() || s.size() > 9) return -1;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

bool In(std::string_view s, std::initializer_list<std::string_view> set) {
  return std::find(set.begin(), set.end(), s) != set.end();
}

}  // namespace

Result<SafetensorsHeader> ReadSafetensorsHeader(FileReader& file) {
  const std::string& f = file.name();
  const int64_t size = file.size();
  if (size < 8) {
    return Corrupt(fmt::format("{}: truncated: the 8-byte header length needs 8 bytes at offset 0, "
                               "the file has {}", f, size));
  }
  auto len_bytes = file.Read(0, 8);
  if (!len_bytes.ok()) return len_bytes.error();
  const uint64_t n = LoadLe64(*len_bytes);
  if (n > static_cast<uint64_t>(size - 8)) {
    return Corrupt(fmt::format("{}: header length {} at offset 0 runs past the end of the file ({} bytes)",
                               f, n, size));
  }
  if (n > static_cast<uint64_t>(kMaxSafetensorsHeaderBytes)) {
    return Corrupt(fmt::format("{}: header length {} at offset 0 exceeds the limit of {} bytes", f, n,
                               kMaxSafetensorsHeaderBytes));
  }
  if (n < 2) {
    return Corrupt(fmt::format("{}: header length {} at offset 0 is too small for a JSON object", f, n));
  }
  SafetensorsHeader h;
  h.header_length = static_cast<int64_t>(n);
  h.data_start = 8 + h.header_length;
  auto text = file.Read(8, h.header_length);
  if (!text.ok()) return text.error();
  const std::string where = f + ": header";
  auto doc = io::ParseJson(*text, where);
  if (!doc.ok()) return doc.error();
  if (!doc->is_object()) return Corrupt(where + ": expected a JSON object");
  const int64_t data_bytes = size - h.data_start;
  for (auto it = doc->begin(); it != doc->end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) return Corrupt(where + ": '__metadata__' must be an object of strings");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (m->is_string()) h.metadata.emplace_back(m.key(), m->get<std::string>());
      }
      continue;
    }
    auto t = ReadEntry(it.key(), *it, where, data_bytes);
    if (!t.ok()) return t.error();
    h.tensors.push_back(std::move(t.value()));
  }
  return h;
}

TensorPlace PlaceHfTensor(std::string_view name, int64_t num_hidden_layers) {
  const std::vector<std::string_view> seg = Segments(name);
  TensorPlace p;
  for (std::string_view s : seg) {
    if (In(s, {"vision_tower", "vision_model", "visual", "vision", "multi_modal_projector",
               "mm_projector", "image_newline", "audio_tower", "audio", "embed_vision",
               "embed_audio", "vision_embed_tokens"})) {
      return {Role::kVision, -1};
    }
  }
  for (size_t i = 0; i + 1 < seg.size(); ++i) {
    if (In(seg[i], {"layers", "h", "blocks", "layer", "block"})) {
      const int64_t l = SmallIndex(seg[i + 1]);
      if (l >= 0) {
        p.layer = l;
        break;
      }
    }
  }
  const bool mtp_seg = std::any_of(seg.begin(), seg.end(), [](std::string_view s) {
    return s == "mtp" || s == "nextn";
  });
  if (mtp_seg || (num_hidden_layers > 0 && p.layer >= num_hidden_layers)) {
    p.role = Role::kMtp;
    if (p.layer < num_hidden_layers) p.layer = num_hidden_layers + std::max<int64_t>(p.layer, 0);
    return p;
  }
  auto any = [&](auto pred) { return std::any_of(seg.begin(), seg.end(), pred); };
  if (!seg.empty() && (seg[0] == "lm_head" || any([](std::string_view s) {
        return s == "lm_head" || s == "embed_out" || s == "output_layer";
      }))) {
    p.role = Role::kLmHead;
  } else if (any([](std::string_view s) {
               return In(s, {"embed_tokens", "wte", "word_embeddings", "embed_in", "tok_embeddings",
                             "project_in", "project_out"});
             })) {
    p.role = Role::kEmbed;
  } else if (any([](std::string_view s) {
               return In(s, {"wpe", "embed_positions", "position_embeddings"});
             })) {
    p.role = Role::kPosEmbed;
  } else if (any([](std::string_view s) { return In(s, {"mamba", "linear_attn"}); }) ||
             (p.layer >= 0 && any([](std::string_view s) { return s == "conv"; }) &&
              name.find(fmt::format(".{}.conv.", p.layer)) != std::string_view::npos) ||
             (any([](std::string_view s) { return s == "mixer"; }) && !seg.empty() &&
              In(seg.size() >= 2 && (seg.back() == "weight" || seg.back() == "bias") ? seg[seg.size() - 2] : seg.back(),
                 {"in_proj", "conv1d", "A_log", "D", "dt_bias", "x_proj", "dt_proj", "out_proj", "norm"}))) {
    // Recurrent mixers: Mamba / Mamba-2 (Jamba, Granite-4.0-H "mamba";
    // Nemotron-H "mixer", whose attention blocks use q/k/v/o_proj and MLP
    // blocks up/down_proj), Gated DeltaNet ("linear_attn"), LFM2 short
    // convolutions ("conv").
    p.role = Role::kMixer;
  } else if (any([](std::string_view s) { return s == "mixer"; }) && seg.size() >= 2 &&
             In(seg[seg.size() - 2], {"q_proj", "k_proj", "v_proj", "o_proj"})) {
    p.role = Role::kAttention;  // Nemotron-H '*' blocks
  } else if (any([](std::string_view s) { return s == "experts"; })) {
    p.role = Role::kExperts;
  } else if (any([](std::string_view s) { return s.rfind("shared_expert", 0) == 0; })) {
    p.role = Role::kSharedExperts;
  } else if (any([](std::string_view s) { return s == "gate" || s == "router"; })) {
    p.role = Role::kRouter;
  } else if (any([](std::string_view s) {
               return In(s, {"self_attn", "attn", "attention", "self_attention", "rotary_emb"});
             })) {
    p.role = Role::kAttention;
  } else if (any([](std::string_view s) {
               return s.find("norm") != std::string_view::npos || s.rfind("ln_", 0) == 0;
             })) {
    p.role = Role::kNorm;
  } else {
    p.role = Role::kMlp;
  }
  return p;
}

Result<SafetensorsIndex> ParseSafetensorsIndex(std::string_view json_text, std::string_view where) {
  auto doc = io::ParseJson(json_text, where);
  if (!doc.ok()) return doc.error();
  if (!doc->is_object()) return Corrupt(fmt::format("{}: expected a JSON object at the top level", where));
  auto wm = doc->find("weight_map");
  if (wm == doc->end() || !wm->is_object()) {
    return Corrupt(fmt::format("{}: 'weight_map' is missing or not an object", where));
  }
  SafetensorsIndex idx;
  std::set<std::string> shards;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it->is_string()) {
      return Corrupt(fmt::format("{}: weight_map: tensor '{}': expected a file name, got {}", where,
                                 it.key(), io::Preview(*it)));
    }
    const std::string shard = it->get<std::string>();
    // A shard is a file next to the index: no directories climbing out,
    // no absolute paths.
    const bool bad = shard.empty() || shard[0] == '/' || shard.find("..") != std::string::npos ||
                     shard.find('\\') != std::string::npos || shard.find('\0') != std::string::npos;
    if (bad) {
      return Corrupt(fmt::format("{}: weight_map: shard name '{}' is not a file in the checkpoint",
                                 where, shard.size() > 64 ? shard.substr(0, 64) + "..." : shard));
    }
    shards.insert(shard);
    idx.weight_map.emplace_back(it.key(), shard);
  }
  if (shards.empty()) return Corrupt(fmt::format("{}: 'weight_map' names no tensors", where));
  idx.shards.assign(shards.begin(), shards.end());
  return idx;
}

Result<std::vector<FileTensor>> ReadSafetensorsCheckpoint(const std::vector<std::string>& shards,
                                                          const OpenShardFn& open,
                                                          const ModelSpec& spec,
                                                          const SafetensorsIndex* index,
                                                          std::string_view index_where) {
  std::vector<FileTensor> out;
  std::map<std::string, std::string> where_stored;  // tensor -> shard
  for (const std::string& shard : shards) {
    auto file = open(shard);
    if (!file.ok()) return file.error();
    auto h = ReadSafetensorsHeader(**file);
    if (!h.ok()) return h.error();
    for (SafetensorsTensor& t : h->tensors) {
      auto [it, fresh] = where_stored.emplace(t.name, shard);
      if (!fresh) {
        return Corrupt(fmt::format("{}: tensor '{}' is also stored in {}", (*file)->name(), t.name,
                                   it->second));
      }
      FileTensor ft;
      const TensorPlace place = PlaceHfTensor(t.name, spec.num_hidden_layers);
      ft.name = std::move(t.name);
      ft.role = place.role;
      ft.layer = place.layer;
      ft.shape = std::move(t.shape);
      ft.dtype = t.dtype;
      ft.bytes = t.end - t.begin;
      out.push_back(std::move(ft));
    }
  }
  if (index != nullptr) {
    for (const auto& [tensor, shard] : index->weight_map) {
      auto it = where_stored.find(tensor);
      if (it == where_stored.end() || it->second != shard) {
        return Corrupt(fmt::format("{}: weight_map: tensor '{}' is not in {}", index_where, tensor, shard));
      }
    }
  }
  return out;
}

Result<Model> ModelFromCheckpoint(std::string_view config_json, std::string_view config_where,
                                  const std::vector<std::string>& shards,
                                  const SafetensorsIndex* index, std::string_view index_where,
                                  const OpenShardFn& open, const std::string& id,
                                  std::vector<std::string>* notes) {
  auto spec = ParseHfConfig(config_json, config_where, notes);
  if (!spec.ok()) return spec.error();
  spec->id = id;
  auto model = ModelFromSpec(std::move(spec.value()));
  if (!model.ok()) return model.error();
  Model& m = *model;
  if (shards.empty()) return model;
  auto tensors = ReadSafetensorsCheckpoint(shards, open, m.spec, index, index_where);
  if (!tensors.ok()) return tensors.error();
  m.file_tensors = std::move(tensors.value());
  m.file_format = "safetensors";
  // Totals are checked here, once, so every later sum of these tensors
  // (renderers, estimators) stays inside 64 bits.
  int64_t bytes = 0, elems = 0, all_elems = 0;
  bool all_float = true;
  try {
    for (const FileTensor& t : m.file_tensors) {
      bytes = CheckedAdd(bytes, t.bytes);
      int64_t n = 1;
      for (int64_t d : t.shape) n = CheckedMul(n, d);
      all_elems = CheckedAdd(all_elems, n);
      if (t.role == Role::kVision || t.role == Role::kMtp) continue;
      elems = CheckedAdd(elems, n);
      all_float = all_float && (t.dtype == DType::kF32 || t.dtype == DType::kF16 || t.dtype == DType::kBF16);
    }
  } catch (const OverflowError&) {
    return Corrupt(fmt::format("{}: the tensors' sizes add up past 64 bits", m.spec.id));
  }
  if (notes != nullptr) {
    notes->push_back(fmt::format("read {} safetensors header{}: {} tensors, {} bytes of weights",
                                 shards.size(), shards.size() == 1 ? "" : "s", m.file_tensors.size(), bytes));
    if (all_float && !m.spec.checkpoint_quant && elems != m.inventory.params) {
      notes->push_back(fmt::format("the safetensors hold {} parameters (text decoder); the config-derived "
                                   "inventory counts {}", elems, m.inventory.params));
    }
  }
  return model;
}

}  // namespace vramfit
