// The command-line frontend: a table of subcommands over the library.
#ifndef VRAMFIT_SRC_CLI_CLI_H_
#define VRAMFIT_SRC_CLI_CLI_H_

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "vramfit/catalog.h"
#include "vramfit/error.h"
#include "vramfit/plan.h"
#include "vramfit/render.h"
#include "vramfit/training.h"
#include "vramfit/workload.h"

namespace vramfit::cli {

// Runs the CLI on args (without argv[0]); returns the exit code.
// Output goes to out, errors ("vramfit: error: ...") to err.
int Run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// Flag values as strings, before validation (so errors name the flag).
struct RawFlags {
  bool json = false;
  std::string units = "gib";
  std::vector<std::string> gpus;
  std::string runtime = "hf";
  std::optional<std::string> dtype, quant, batch, ctx, prompt, new_tokens, kv_dtype, attn, tp, pp,
      transformers;
  // vLLM knobs.
  std::optional<std::string> gpu_mem_util, max_model_len, max_num_seqs, max_num_batched_tokens,
      block_size;
  bool enforce_eager = false;
  // llama.cpp knobs.
  std::optional<std::string> ubatch, batch_size, flash_attn, cache_type_k, cache_type_v, gpu_layers,
      parallel, llamacpp_build;
  bool print_flags = false;
  // Training.
  std::optional<std::string> method, precision, optimizer, optimizer_impl, seq, grad_ckpt, lora_rank,
      lora_targets, zero, gpus_dp, offload, grad_accum, loss, trainable_layers;
  bool fsdp = false;
};

// Flags only `fit` takes.
struct FitFlags {
  std::optional<std::string> solve;
  std::vector<std::string> sweep;  // KEY=V1,V2,...
  bool csv = false;
};

// `vramfit fit`: answers --solve, ranks GPUs for --gpu all, or prints a
// --sweep grid. Returns the exit code.
int RunFitCommand(const RawFlags& flags, const FitFlags& fit, const std::string& model, Units units,
                  std::ostream& out, std::ostream& err);

// The job the flags describe: training when any training-only flag is
// given (or `training` is set), else inference.
Result<Job> ToJob(const RawFlags& f, bool training);
bool HasTrainingFlags(const RawFlags& f);

// Prints "vramfit: error: <message>" (and the JSON error document when
// json) and returns the exit code for the error's kind.
int ReportError(const Error& e, bool json, std::ostream& out, std::ostream& err);

// Validates raw flags into training settings.
Result<TrainingSettings> ToTrainingSettings(const RawFlags& f);

// Parses an integer flag value: "--batch: must be a positive integer, got 'x'".
Result<int64_t> ParseIntFlag(const std::string& flag, const std::string& value);

// Validates raw flags into settings and devices.
Result<InferenceSettings> ToInferenceSettings(const RawFlags& f);
Result<DeviceSet> ToDevices(const RawFlags& f, const GpuCatalog& catalog);
Result<Units> ToUnits(const std::string& s);

}  // namespace vramfit::cli

#endif  // VRAMFIT_SRC_CLI_CLI_H_
