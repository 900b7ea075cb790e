// The inventory builder shared by the decoder (inventory.cc) and the
// encoder / encoder-decoder (inventory_encoder.cc) layouts. Internal to the
// core.
#ifndef VRAMFIT_SRC_CORE_INVENTORY_BUILDER_H_
#define VRAMFIT_SRC_CORE_INVENTORY_BUILDER_H_

#include <string>
#include <utility>
#include <vector>

#include "vramfit/model.h"

namespace vramfit::inventory {

class Builder {
 public:
  explicit Builder(std::vector<TensorGroup>* out, DType stored) : out_(out), stored_(stored) {}

  // Tags groups added from now on as spanning `layers` decoder layers.
  void SetLayers(int64_t layers, bool moe) { layers_ = layers; moe_ = moe; by_class_ = false; }
  // Hybrid stacks: tags groups added from now on as spanning the `layers`
  // layers of class c (LayerSpec::SameClass).
  void SetClass(int64_t layers, const LayerSpec& c) {
    layers_ = layers;
    moe_ = c.moe;
    by_class_ = true;
    class_ = c;
  }

  // A 2-D projection weight [rows, cols], count copies.
  void Linear(std::string name, Role role, int64_t rows, int64_t cols, int64_t count) {
    if (count <= 0 || rows <= 0 || cols <= 0) return;
    Push({std::move(name), role, rows, cols, count, true, stored_, layers_, moe_});
  }
  // A 1-D tensor (norm weight, bias, sink logits) of length n, count copies.
  void Vector(std::string name, Role role, int64_t n, int64_t count) {
    if (count <= 0 || n <= 0) return;
    Push({std::move(name), role, n, 1, count, false, stored_, layers_, moe_});
  }
  // A 2-D table that is not a projection (embeddings).
  void Table(std::string name, Role role, int64_t rows, int64_t cols, int64_t count = 1) {
    if (count <= 0 || rows <= 0 || cols <= 0) return;
    Push({std::move(name), role, rows, cols, count, false, stored_, layers_, moe_});
  }

 private:
  void Push(TensorGroup g) {
    g.by_class = by_class_;
    g.layer_class = class_;
    out_->push_back(std::move(g));
  }

  std::vector<TensorGroup>* out_;
  DType stored_;
  int64_t layers_ = 0;
  bool moe_ = false;
  bool by_class_ = false;
  LayerSpec class_;
};

// Norm weights (and biases for LayerNorm) of width n, count copies.
void Norm(Builder& b, const ModelSpec& s, const std::string& name, Role role, int64_t n,
          int64_t count);
// Self-attention projections of n layers under prefix p ("layers.*.self_attn.").
void Attention(Builder& b, const ModelSpec& s, const std::string& p, int64_t n, Role role);
// A dense MLP of width `inter`, n copies.
void DenseMlp(Builder& b, const ModelSpec& s, const std::string& p, int64_t inter, int64_t n,
              Role role, bool bias);
// Routed experts, router and shared experts of n MoE layers.
void MoeMlp(Builder& b, const ModelSpec& s, const std::string& p, int64_t n, Role expert_role,
            Role shared_role, Role router_role);
// True when the decoder stack is not uniform softmax attention + MLP (a
// recurrent mixer, a layer without attention or without MLP).
bool IsHybrid(const ModelSpec& s);
// The layers of a hybrid decoder stack, one set of groups per layer class
// (inventory_hybrid.cc). REQUIRES: IsHybrid(s).
void HybridLayers(Builder& b, const ModelSpec& s);
// Sum of the elements of the groups.
int64_t Sum(const std::vector<TensorGroup>& g);
// Fills params, params_by_role and active_params from the groups.
void Tally(const ModelSpec& s, Inventory& inv);

// The encoder / encoder-decoder inventory (inventory_encoder.cc).
// REQUIRES: s.topology != Topology::kDecoder.
void BuildEncoderGroups(const ModelSpec& s, Inventory& inv);

}  // namespace vramfit::inventory

#endif  // VRAMFIT_SRC_CORE_INVENTORY_BUILDER_H_
