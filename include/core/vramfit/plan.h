// The planner: searches over estimates to answer "what is the best I can
// do on this hardware, and what should I change when it does not fit".
//
// Every answer is exact for the estimator: the answer fits and one step
// beyond does not (searches assume, and the tests check, that memory is
// monotone in batch, context and GPU count).
#ifndef VRAMFIT_PLAN_H_
#define VRAMFIT_PLAN_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vramfit/device.h"
#include "vramfit/error.h"
#include "vramfit/estimate.h"
#include "vramfit/model.h"
#include "vramfit/training.h"
#include "vramfit/uncertainty.h"
#include "vramfit/workload.h"

namespace vramfit {

// An inference or training job as given (defaults still open).
struct Job {
  bool training = false;
  InferenceSettings infer;
  TrainingSettings train;
  HeadChoice head;  // --head / --num-labels (encoders); default: the checkpoint's
  // --gpus-per-node: GPUs one machine holds. Default: GpusPerNode.
  std::optional<int64_t> gpus_per_node;
  // --safety p90: the measured error bands the planner judges each estimate
  // by (it fits only where its band's high edge fits); nullptr (p50,
  // default): the estimate itself. Not owned.
  const AccuracyBands* safety = nullptr;
};

// The GPUs one node holds for a job on `devices`: --gpus-per-node when given;
// else 8 for data-centre GPUs (SXM, PCIe, OAM boards: the 8-GPU server), for
// consumer cards the count given when it is more than one (the user's box),
// else 8 (8-card consumer servers are what rental clouds offer); 1 for a
// system-on-chip (Apple, Jetson).
int64_t GpusPerNode(const Job& job, const DeviceSet& devices);

// Resolves and estimates a job on a device set (with job.head applied to
// the model, WithHead). The searches below run it
// numbers-only (EstimateOptions::formulas = false) and re-estimate their
// answers with formulas.
Result<Estimate> EstimateJob(const Model& model, const Job& job, const DeviceSet& devices,
                             const EstimateOptions& options = {});

// Whether an estimate answers the job on its devices: every device within
// capacity, and for vLLM the KV pool holding `batch` sequences.
bool Fits(const Estimate& e, const Job& job);

enum class Solve { kMaxBatch, kMaxContext, kMinGpus, kBestQuant, kBestMethod };
const char* SolveName(Solve s);
Result<Solve> ParseSolve(std::string_view s);

// One option the planner tried.
struct LadderStep {
  std::string option;     // "nf4", "lora + adamw-8bit + grad-ckpt full", "tp 4"
  bool fits = false;
  Bytes total;            // largest device total
  Bytes capacity;         // that device's capacity
  std::string reason;     // "fits with 3.1 GiB headroom" / "2.4 GiB over on gpu0"
};

struct FitAnswer {
  Solve solve = Solve::kMaxBatch;
  bool found = false;
  std::string value;      // "12", "32768", "4 x H100-80GB (tp 4)", "Q4_K_M", ...
  int64_t number = 0;     // numeric answers (batch, tokens, GPU count); 0 otherwise
  std::string reason;
  std::optional<Estimate> estimate;  // at the answer
  std::optional<Estimate> next;      // one step beyond, which does not fit
  std::vector<LadderStep> ladder;    // options tried, best first
  // The settings that realise a best-quant / best-method answer, by CLI flag
  // name without the dashes (the web API's setting names): {"quant", "Q4_K_M"},
  // {"cache-type-k", "q8_0"}, {"method", "qlora"}, {"grad-ckpt", "full"}, ...
  std::vector<std::pair<std::string, std::string>> settings;
  // min-gpus: the nodes of the answer and the GPUs each holds (0 otherwise).
  int64_t nodes = 0;
  int64_t gpus_per_node = 0;
  // Other answers to the same question, ranked (min-gpus: a lighter weight
  // format on fewer nodes, e.g. fp8 on one node instead of bf16 on two).
  struct Alternative {
    std::string option;   // "fp8 on 8 x H100-80GB (1 node, tp 8)"
    std::vector<std::pair<std::string, std::string>> settings;
    int64_t gpus = 0, nodes = 0;
    Bytes total, capacity;  // the tightest device
    std::string reason;     // what it costs and its headroom
  };
  std::vector<Alternative> alternatives;
  // Said once for the whole answer: an engine's full start-up message (the
  // ladder keeps its first clause), the interconnect (tp > 2 over PCIe).
  std::vector<std::string> notes;
  // The uncertainty band of each device of `estimate` and of `next` (one per
  // device, in order), where the frontend attached the measured bands; empty
  // otherwise (their verdicts are then never "tight").
  std::vector<Uncertainty> estimate_uncertainty, next_uncertainty;
};

// Answers `solve` for the job. REQUIRES: devices non-empty. min-gpus with
// one GPU kind answers how many of that kind; with a mixed set (the GPUs the
// user has) it answers the smallest subset of them that fits.
Result<FitAnswer> Plan(const Model& model, const Job& job, const DeviceSet& devices, Solve solve);

// A change that would make a job fit (or fit better), with its effect.
struct Fix {
  std::string change;     // "--ctx 4096", "--kv-dtype fp8", "--quant nf4", "--gpu H100-80GBx2"
  // Every setting the change makes, by CLI flag name without the dashes
  // (as FitAnswer::settings): {"max-model-len", "65536"}, {"gpu",
  // "RTX-4090x2"}, {"tp", "2"}.
  std::vector<std::pair<std::string, std::string>> settings;
  Bytes total;            // largest device total after the change
  Bytes saves;            // reduction against the original
  bool fits = false;
  // What the change costs the user, one phrase per part ("4-bit weights
  // (awq-int4): small quality loss", "1 more RTX-4090"), and their sum in the
  // planner's cost points (ranks the fixes that fit, cheapest first).
  std::vector<std::string> costs;
  int cost = 0;
  int changes = 1;  // how many changes it makes (a combination: 2 or 3)
};

// The "OOM checklist" as numbers: single changes, and when no single change
// of the job's own GPU kind fits, combinations of two or three (weight
// format, KV dtype, context, batch, GPU count, llama.cpp with partial
// offload; training: method, optimizer, checkpointing, ...), each estimated.
// Those that fit come first, cheapest to the user first (Fix::cost); the
// others by what they save. Empty when the job has no GPU.
// For runtimes that size a KV pool (vLLM, SGLang) the context fixes are the
// longest context that fits and the largest power of two below it. With
// `other_gpus` (the catalog), the smallest other GPU kind on which the job
// fits, as many of it as the job has devices, is offered too.
std::vector<Fix> SuggestFixes(const Model& model, const Job& job, const DeviceSet& devices,
                              const Estimate& current, const std::vector<GpuSpec>* other_gpus = nullptr);

// Throughput next to memory (inference): decode from memory bandwidth,
// prefill from dense compute. Assumptions are stated in `note`.
struct Throughput {
  double decode_tokens_per_s = 0;   // per sequence, batch-1 step time
  double decode_batch_tokens_per_s = 0;  // all sequences together
  double prefill_tokens_per_s = 0;
  std::string note;
};
std::optional<Throughput> EstimateThroughput(const Model& model, const Estimate& e,
                                             const DeviceSet& devices);

// What the planner adds to an estimate: the changes that would make it fit
// (or fit better), the throughput next to the memory, and each device's
// uncertainty band (one per device of the estimate, in order; empty: none
// computed, and the verdict is never "tight").
struct EstimateExtras {
  std::vector<Fix> fixes;
  std::optional<Throughput> throughput;
  std::vector<Uncertainty> uncertainty;
};

// A ranking of GPU kinds for one job (fit --gpu all, or several kinds).
struct GpuRank {
  GpuSpec gpu;
  FitAnswer answer;                      // min-gpus for this kind
  std::optional<Throughput> throughput;  // at the answer
};

// A sweep grid: one row per combination of the swept keys.
struct SweepKey {
  std::string name;  // the setting ("ctx")
  std::string text;  // its value as given ("8k")
  EchoValue value;   // as JSON gives it: counts as numbers (8192), else the text
};
struct SweepCell {
  std::vector<SweepKey> keys;  // in sweep order
  std::optional<Estimate> estimate;  // nullopt: the error below
  std::string error;
  bool fits = false;
};

}  // namespace vramfit

#endif  // VRAMFIT_PLAN_H_
