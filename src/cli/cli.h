// The command-line frontend: a table of subcommands over the library.
#ifndef VRAMFIT_SRC_CLI_CLI_H_
#define VRAMFIT_SRC_CLI_CLI_H_

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "vramfit/catalog.h"
#include "vramfit/error.h"
#include "vramfit/render.h"
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
      parallel;
  bool print_flags = false;
};

// Parses an integer flag value: "--batch: must be a positive integer, got 'x'".
Result<int64_t> ParseIntFlag(const std::string& flag, const std::string& value);

// Validates raw flags into settings and devices.
Result<InferenceSettings> ToInferenceSettings(const RawFlags& f);
Result<DeviceSet> ToDevices(const RawFlags& f, const GpuCatalog& catalog);
Result<Units> ToUnits(const std::string& s);

}  // namespace vramfit::cli

#endif  // VRAMFIT_SRC_CLI_CLI_H_
