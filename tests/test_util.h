// Shared helpers for the unit tests.
#ifndef VRAMFIT_TESTS_TEST_UTIL_H_
#define VRAMFIT_TESTS_TEST_UTIL_H_

#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "vramfit/catalog.h"
#include "vramfit/estimate.h"
#include "vramfit/io/source.h"

namespace vramfit::testing {

// A catalog model; fails the test if it does not load.
inline Model CatalogModelOrDie(const std::string& id) {
  const CatalogModel* m = ModelCatalog::Builtin().Find(id);
  EXPECT_NE(m, nullptr) << id;
  if (m == nullptr) return {};
  auto r = ModelFromCatalog(*m, nullptr);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? r.value() : Model{};
}

// A two-block model as read from a .gguf file, for placement tests: h 256,
// 4 heads and 1 KV head of 64, I 512, vocab 1000; with `moe`, 4 experts of
// 128 (2 per token) in both blocks; `tied`: the head shares token_embd.
// The caller lists m.file_tensors.
inline Model TinyGgufModel(const std::string& id, const std::string& model_type, bool moe, bool tied) {
  Model m;
  ModelSpec& s = m.spec;
  s.id = id;
  s.model_type = model_type;
  s.vocab_size = 1000;
  s.hidden_size = 256;
  s.num_hidden_layers = 2;
  s.num_attention_heads = 4;
  s.num_key_value_heads = 1;
  s.head_dim = s.v_head_dim = 64;
  s.intermediate_size = 512;
  if (moe) {
    s.moe_intermediate_size = 128;
    s.num_experts = 4;
    s.num_experts_per_tok = 2;
  }
  s.tie_word_embeddings = tied;
  s.layers.assign(2, {});
  for (LayerSpec& l : s.layers) l.moe = moe;
  m.inventory = BuildInventory(s);
  m.file_format = "gguf";
  return m;
}

// One Q4_K tensor of a .gguf file.
inline FileTensor GgufTensor(const char* name, Role role, int64_t layer, int64_t bytes,
                             std::vector<int64_t> shape) {
  FileTensor f;
  f.name = name;
  f.role = role;
  f.layer = layer;
  f.bytes = bytes;
  f.dtype = DType::kQ4_K;
  f.shape = std::move(shape);
  return f;
}

// "H100-80GBx2" or a comma list of such, as --gpu takes them.
inline DeviceSet Gpus(const std::string& spec) {
  DeviceSet set;
  size_t start = 0;
  while (start < spec.size()) {
    const size_t comma = std::min(spec.find(',', start), spec.size());
    Status st = AddGpus(spec.substr(start, comma - start), GpuCatalog::Builtin(), &set);
    EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().message);
    start = comma + 1;
  }
  return set;
}

// Resolves and estimates; checks parent == sum(children) on every device.
inline Estimate EstimateOrDie(const Model& m, const InferenceSettings& s,
                              const DeviceSet& devices = {}) {
  auto w = ResolveInference(m, s, devices, nullptr);
  EXPECT_TRUE(w.ok()) << (w.ok() ? "" : w.error().message);
  if (!w.ok()) return {};
  auto e = EstimateInference(m, *w, devices);
  EXPECT_TRUE(e.ok()) << (e.ok() ? "" : e.error().message);
  if (!e.ok()) return {};
  for (const DeviceEstimate& d : e->devices) {
    Status st = CheckTree(d.components);
    EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().message);
    EXPECT_EQ(Total(d.components), d.total) << d.name << ": components must add up to total";
    if (d.allocated_peak && d.reserved_peak) {
      EXPECT_LE(*d.allocated_peak, *d.reserved_peak);
      EXPECT_LE(*d.reserved_peak, d.total);
    }
  }
  return e.value();
}

inline int64_t ComponentBytes(const DeviceEstimate& d, const std::string& name) {
  const Component* c = Find(d.components, name);
  return c ? c->bytes.value() : -1;
}

}  // namespace vramfit::testing

#endif  // VRAMFIT_TESTS_TEST_UTIL_H_
