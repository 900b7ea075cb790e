// The settings table: every setting a job takes, in one place. The CLI's
// flags, the web API's JSON keys and `fit --sweep` keys are generated from
// it, so each setting has one name, one parser, one help line and one rule
// for where it applies.
//
//   Request r;                       // settings as given, in order
//   r.Add("gpu-memory-utilization", "0.8");   // an upstream alias
//   auto job = BuildJob(r, kCmdInfer);        // parsed, checked, a Job
//
// A setting given where it does not apply is an error naming where it does
// ("--cache-type-k: applies to --runtime llamacpp, not vllm"), never ignored.
#ifndef VRAMFIT_APP_SETTINGS_H_
#define VRAMFIT_APP_SETTINGS_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vramfit/error.h"
#include "vramfit/plan.h"
#include "vramfit/training.h"
#include "vramfit/workload.h"

namespace vramfit::app {

// The commands that take job settings.
enum Command : unsigned { kCmdInfer = 1u << 0, kCmdTrain = 1u << 1, kCmdFit = 1u << 2 };

// Where a setting applies (a bit set).
enum Scope : unsigned {
  kInference = 1u << 0,  // inference jobs, every runtime
  kRuntime = 1u << 1,    // inference jobs on the runtimes whose profile lists it
  kTraining = 1u << 2,   // training jobs
  kAdapters = 1u << 3,   // training with --method lora or qlora
  kFreeze = 1u << 4,     // training with --method freeze
  kOutput = 1u << 5,     // how the CLI prints (not a job setting)
  kPlanner = 1u << 6,    // fit's own: --solve, --sweep
};

// Output settings of the CLI.
struct Output {
  bool json = false;
  std::string units = "gib";
  bool csv = false;
  bool print_flags = false;
  bool no_calibration = false;  // --no-calibration: this machine's calibration file is not read
};

// fit's own settings.
struct FitRequest {
  std::optional<std::string> solve;
  std::vector<std::string> sweep;  // KEY=V1,V2,...
};

// What the settings fill in, before they are checked against each other.
struct Draft {
  InferenceSettings infer;
  TrainingSettings train;
  HeadChoice head;                // --head, --num-labels
  std::vector<std::string> gpus;  // --gpu values as given (NAME[xN], comma lists)
  std::optional<int64_t> wired_limit_mib;  // --wired-limit: Apple iogpu.wired_limit_mb
  std::optional<int64_t> cuda_context_mib;  // --cuda-context: the measured CUDA context
  Output output;
  FitRequest fit;
  std::optional<int64_t> gpus_per_node;  // --gpus-per-node
  bool safety_p90 = false;                // --safety p90
};

struct Setting {
  std::string_view name;     // the CLI flag without "--"; the API key; the sweep key
  std::string_view metavar;  // "N", "FRAC", "TYPE"; empty for a switch
  std::string_view help;     // one line; the default in parentheses
  unsigned commands = 0;     // Command bits
  unsigned scope = 0;        // Scope bits
  // Parses `value` ("true" for a switch) into the draft. Errors name the flag.
  Status (*apply)(std::string_view value, Draft& d) = nullptr;
  bool repeatable = false;   // --gpu, --sweep: each occurrence adds
  bool numeric = false;      // a count: sweep JSON gives its values as numbers
  std::string_view hint;     // appended to "does not apply" errors
  bool is_switch() const { return metavar.empty(); }
};

// Every setting, in the order errors are reported.
std::span<const Setting> Settings();

// The training stacks for the end of `train --help`: one line each with
// what it is and the stack-specific settings it honours.
std::string StackHelp();

// The setting named `name` (without dashes; '_' counts as '-'), or nullptr.
// Aliases are not names: see Request::Add.
const Setting* FindSetting(std::string_view name);

// An upstream spelling of a setting (vLLM, llama.cpp, HF Trainer / TRL), as
// users type it: "-ngl", "--gpu-memory-utilization", "--optim".
struct Alias {
  std::string_view spelling;  // with its dashes
  std::string_view setting;   // the canonical setting
  // The upstream meaning as canonical settings ("-c 0" = the model's
  // trained context = "--ctx max"; "--optim adamw_torch_fused" = "--optimizer
  // adamw --optimizer-impl fused"); nullptr: the value as it is.
  Result<std::vector<std::pair<std::string, std::string>>> (*map)(std::string_view value) = nullptr;
  bool is_switch = false;  // takes no value ("--gradient-checkpointing")
  unsigned commands = 0;   // Command bits it belongs to; 0 = its setting's
};
std::span<const Alias> Aliases();

// One setting as given.
struct Given {
  const Setting* setting = nullptr;
  std::string value;
  std::string spelled;  // as the user wrote it ("-ngl"), for messages
};

// Settings as given, in order.
class Request {
 public:
  // Adds a setting by its name or an alias (with or without dashes; '_'
  // counts as '-'). Errors: an unknown name (with a suggestion among the
  // settings of `commands`), or an alias value its upstream rejects.
  Status Add(std::string_view name, std::string value, unsigned commands = kCmdInfer | kCmdTrain | kCmdFit);
  void AddGiven(const Setting* s, std::string value, std::string spelled);
  // Removes every value of the setting (a sweep cell overrides it).
  void Clear(std::string_view name);
  const std::vector<Given>& given() const { return given_; }
  bool Has(std::string_view name) const;

 private:
  std::vector<Given> given_;
};

// Rewrites command-line arguments that use an alias into the canonical
// flags, and '_' in a long flag's name into '-': {"-ngl", "20", "-c", "8k"} ->
// {"--gpu-layers", "20", "--ctx", "8k"}. Other arguments pass unchanged.
// An alias of another command's upstream (HF Trainer's with `infer`) is an
// error naming where it applies.
Result<std::vector<std::string>> ExpandAliases(const std::vector<std::string>& args,
                                               unsigned commands = kCmdInfer | kCmdTrain | kCmdFit);

// A parsed, checked job request.
struct JobRequest {
  Job job;
  std::vector<std::string> gpus;
  // --wired-limit MiB: the GPU memory macOS lets Metal wire
  // (sudo sysctl iogpu.wired_limit_mb=N), replacing the working-set limit
  // of the Apple GPUs; nullopt: Metal's recommendedMaxWorkingSetSize.
  std::optional<int64_t> wired_limit_mib;
  // --cuda-context MiB: the CUDA context as measured on the user's stack
  // (nvidia-smi after torch.ones(1).cuda(), or llama.cpp's unaccounted
  // memory), in place of the assumed one; a one-off form of `check --save`.
  std::optional<int64_t> cuda_context_mib;
  Output output;
  FitRequest fit;
};

// Parses every value, then checks every setting against where it applies:
// the command, inference vs training (fit: training when a training setting
// is given or `training` is set), the runtime's profile, the method.
Result<JobRequest> BuildJob(const Request& r, Command cmd, bool training = false);

// Whether a command's --help (and the web API's key list of that mode) shows
// the setting: it is the command's, and it can apply to the command's jobs.
bool ShownFor(const Setting& s, Command cmd);

// Whether the request holds a setting only training takes (fit decides the
// mode by it).
bool HasTrainingSettings(const Request& r);

// Parsers the table uses, public for the web API and tests.
// An integer: "--batch: expected an integer, got 'x'".
Result<int64_t> ParseInt(std::string_view flag, std::string_view value);
// A token count: an integer, or with a k (x1024) or m (x1048576) suffix:
// "8k" = 8192, "128k" = 131072, "1m" = 1048576.
Result<int64_t> ParseTokens(std::string_view flag, std::string_view value);
Result<bool> ParseSwitch(std::string_view flag, std::string_view value);

// The CLI's exit code for an error: 3 does not fit, 2 bad input or unknown
// name, 1 unsupported or unreadable.
int ExitCode(const Error& e);

}  // namespace vramfit::app

#endif  // VRAMFIT_APP_SETTINGS_H_
