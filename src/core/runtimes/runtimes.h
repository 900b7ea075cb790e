// Runtime profiles: each turns (model, workload, devices) into per-device
// breakdowns. Internal to the core; Estimate* in estimate.h dispatches here.
#ifndef VRAMFIT_SRC_CORE_RUNTIMES_RUNTIMES_H_
#define VRAMFIT_SRC_CORE_RUNTIMES_RUNTIMES_H_

#include <vector>

#include "vramfit/estimate.h"

namespace vramfit::runtimes {

// transformers + PyTorch generate(). Fills e.devices and notes.
void EstimateHf(const Model& model, const InferenceWorkload& w, const DeviceSet& devices,
                Estimate& e);

// The same for encoder and encoder-decoder models (hf_encoder.cc): one
// bidirectional forward (embedding / reranker serving) or the encoder pass
// plus the decoder's generate() with self and cross-attention caches.
void EstimateHfEncoder(const Model& model, const InferenceWorkload& w, const DeviceSet& devices,
                       Estimate& e);

// vLLM: start-up memory profile -> KV pool -> capacity and concurrency.
// Errors: settings vLLM itself would reject (no room for the KV cache...).
// The compute dtype vLLM's --dtype auto picks for this model on these GPUs
// (config/model.py _resolve_auto_dtype): the checkpoint's, except that fp32
// checkpoints are downcast to bf16 (fp16 below sm80; fp32 stays for the
// model types vLLM keeps off fp16 there: gemma2, gemma3, plamo2, glm4).
DType VllmAutoDtype(const ModelSpec& spec, const DeviceSet& devices);

Status EstimateVllm(const Model& model, const InferenceWorkload& w, const DeviceSet& devices,
                    Estimate& e);

// SGLang: weights, then the static pool mem_fraction_static x free memory ->
// max_total_num_tokens (sglang.cc). A start-up failure is Estimate::failure.
Status EstimateSglang(const Model& model, const InferenceWorkload& w, const DeviceSet& devices,
                      Estimate& e);

// llama.cpp: model/KV/compute/output buffers per device, host buffers.
Status EstimateLlamaCpp(const Model& model, const InferenceWorkload& w, const DeviceSet& devices,
                        Estimate& e);

// Shared building blocks.

// Which decoder layers stage `stage` of `stages` holds: [first, last).
struct LayerRange {
  int64_t first = 0;
  int64_t last = 0;
  int64_t size() const { return last - first; }
};
LayerRange StageLayers(int64_t num_layers, int64_t stages, int64_t stage);

// Weights of one device as a "weights" component with a child per role.
// Per-layer groups are taken for the layers in `range`; embeddings go to the
// first stage, the final norm and lm_head to the last; linear weights and
// embedding tables are divided by tp (norms replicated).
Component WeightsComponent(const Model& model, const WeightFormat& fmt, DType dense,
                           LayerRange range, bool first_stage, bool last_stage, int64_t tp);

// The same from a checkpoint's exact tensors (Model::file_tensors). With
// cast_floats, F32/F16/BF16 tensors take the compute dtype `dense` (as
// from_pretrained(torch_dtype=...) loads them); other types stay as stored.
// Tensors with layer < 0 named like the output head or final norm go to the
// last stage, the rest to the first.
Component FileWeightsComponent(const Model& model, DType dense, bool cast_floats, LayerRange range,
                               bool first_stage, bool last_stage, int64_t tp);

// The tail every estimator shares: parent == sum of children on every device
// (an internal error naming the path otherwise), the verdict (FinishVerdict),
// and no notes in numbers-only mode.
Status FinishEstimate(Estimate& e, const EstimateOptions& options);

// An arithmetic overflow inside an estimator, as its one clean error.
Error OverflowToError(const OverflowError& ex);

// The note every runtime but vLLM (which refuses it) gives when the context
// exceeds the model's max_position_embeddings.
void NoteContextOverMax(const Model& model, const InferenceWorkload& w,
                        std::vector<std::string>* notes);

// Tokens a layer keeps in the KV cache for a sequence of ctx tokens.
int64_t CachedTokens(const ModelSpec& spec, int64_t layer, int64_t ctx, bool window_aware);

// The note on a PyTorch process's assumed CUDA context ("cuda_context is
// 512 MiB per process ..."), shared by hf inference and training; it starts
// with the component's name so that a calibration replacing the figure
// drops it (estimate.cc ApplyCalibration).
std::string TorchCudaContextNote(int64_t mib);

}  // namespace vramfit::runtimes

#endif  // VRAMFIT_SRC_CORE_RUNTIMES_RUNTIMES_H_
