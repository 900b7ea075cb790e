// `vramfit check LOG`: an engine's own report of what it allocated (its log,
// a PyTorch record, nvidia-smi CSV) against vramfit's estimate of exactly
// that job.
//
//   auto log = io::ParseEngineLog(text, "server.log");
//   auto r = app::Check(*log, flags, "meta-llama/Llama-3.1-8B");
//   std::cout << app::RenderCheckText(*r, Units::kGiB);
#ifndef VRAMFIT_APP_CHECK_H_
#define VRAMFIT_APP_CHECK_H_

#include <optional>
#include <string>
#include <vector>

#include "vramfit/app/settings.h"
#include "vramfit/estimate.h"
#include "vramfit/io/calibration.h"
#include "vramfit/io/engine_log.h"
#include "vramfit/measured.h"
#include "vramfit/render.h"

namespace vramfit::app {

// A setting of the job compared, and where it came from.
struct CheckSetting {
  std::string name;    // the vramfit setting ("ctx")
  std::string value;   // "4096"
  std::string source;  // "log line 123: n_ctx = 4096", "--ctx", "the log's format"
};

struct CheckResult {
  io::EngineLog log;
  std::string input;             // the log's name ("server.log", "-")
  std::string model;             // the model estimated; empty when none was
  std::string model_source;      // "--model", "the log (model=...)"
  std::string mode = "infer";    // "infer" | "train"
  std::string runtime;           // the runtime estimated ("llamacpp"); empty when none
  std::vector<CheckSetting> from_log;    // settings the log (or record) states, used
  std::vector<CheckSetting> from_flags;  // settings given as flags, used
  std::vector<std::string> unused;       // log settings not used, each with why
  std::optional<Estimate> estimate;      // nullopt: nothing to estimate (notes say why)
  std::vector<CheckRow> rows;
  std::optional<int64_t> estimated_kv_tokens;  // the estimate's KV capacity in tokens
  std::vector<std::string> notes;
};

// Infers the job from the log (its settings, model and GPUs), completes it
// with `flags` (the infer/train settings as given) and `model_flag` (MODEL:
// a catalog id, config.json, model directory or .gguf; empty: the log's
// own), estimates it and compares. A flag that contradicts the log is an
// error naming both. When no model is known (a llama.cpp log names only its
// architecture) or the engine has no runtime profile, the rows carry no
// estimate and the notes say why.
Result<CheckResult> Check(const io::EngineLog& log, std::string_view input, const Request& flags,
                          const std::string& model_flag);

// What `check --save` learns from a comparison: per GPU of the estimate, the
// memory the process holds beyond its own buffers, measured (llama.cpp's
// memory-breakdown "unaccounted"; a PyTorch record's nvml_used less its
// reserved peak) in place of the estimate's assumed cuda_context. `date` is
// the UTC day saved ("2026-12-07"). An error (one line) when the log holds
// no such figure, the job was not estimated on a catalog GPU, or the runtime
// is one whose unaccounted memory sizes its KV pool (vLLM, SGLang).
Result<std::vector<CalibrationEntry>> CalibrationFrom(const CheckResult& r, const std::string& date);

// The comparison as a table per device, and as JSON (schema vramfit.check/1).
std::string RenderCheckText(const CheckResult& r, Units u);
std::string RenderCheckJson(const CheckResult& r);

}  // namespace vramfit::app

#endif  // VRAMFIT_APP_CHECK_H_
