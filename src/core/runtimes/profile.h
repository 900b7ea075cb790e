// Runtime profiles: one per serving engine, each in its own file
// (hf.cc, vllm.cc, llamacpp.cc), registered in registry.cc. A profile
// resolves the runtime's own settings (every default filled once, so the
// workload that reaches the components is fully resolved), builds the
// per-device components, and answers the planner's questions about the
// runtime ("which setting holds the context", "which weight formats to
// try"), so nothing outside src/core/runtimes/ tests which runtime it is.
//
// Adding a runtime: docs/estimation.md "Adding a runtime".
#ifndef VRAMFIT_SRC_CORE_RUNTIMES_PROFILE_H_
#define VRAMFIT_SRC_CORE_RUNTIMES_PROFILE_H_

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vramfit/estimate.h"
#include "vramfit/workload.h"

namespace vramfit::runtimes {

class RuntimeProfile {
 public:
  virtual ~RuntimeProfile() = default;

  virtual Runtime id() const = 0;
  const char* name() const { return RuntimeName(id()); }

  // The settings (CLI flag names without the dashes) this runtime reads
  // besides the common ones (model, gpu, dtype, quant, batch, ctx, prompt,
  // new, kv-dtype, tp, pp); any other runtime-specific setting given with
  // this runtime is refused ("--cache-type-k: applies to --runtime llamacpp,
  // not vllm").
  virtual std::span<const std::string_view> Settings() const = 0;

  // Runtime checks and defaults, after the common ones (ResolveInference):
  // on success every runtime knob of *w holds a value. Errors name the flag.
  virtual Status Resolve(const Model& model, const InferenceSettings& s, const DeviceSet& devices,
                         InferenceWorkload* w, std::vector<std::string>* notes) const = 0;

  // Fills e.devices (components, totals, peak phase), e.host, the KV pool
  // figures, e.workload (the echo), e.launch_flags and e.notes.
  // REQUIRES: w came from Resolve.
  virtual Status Estimate(const Model& model, const InferenceWorkload& w, const DeviceSet& devices,
                          vramfit::Estimate& e) const = 0;

  // Whether Estimate fills e.launch_flags (--print-flags).
  virtual bool HasLaunchFlags() const { return true; }
  // The command the launch flags follow for this model, one word each
  // (Estimate::launch_command); empty: none that would run.
  virtual std::vector<std::string> LaunchCommand(const Model&) const { return {}; }

  // --- The planner's questions.

  // Sets the tokens each sequence holds (the max-context search and the
  // "shorter context" fix).
  virtual void SetContext(InferenceSettings& s, int64_t tokens) const;
  // The flag (without dashes) a user sets for that context ("ctx"; vLLM
  // "max-model-len", SGLang "context-length"), and the tokens each sequence
  // holds in a resolved workload.
  virtual std::string ContextFlag() const { return "ctx"; }
  virtual int64_t ContextOf(const InferenceWorkload& w) const { return w.ctx; }
  // Whether the runtime pre-sizes a KV pool from what is left (vLLM): then a
  // job fits only when the pool holds `batch` sequences as well.
  virtual bool SizesKvPool() const { return false; }
  // Weight formats to try for best-quant, best first.
  virtual std::vector<std::string> QuantLadder() const = 0;
  // Weight formats the "does not fit" fixes offer, smallest change first.
  virtual std::vector<std::string> FixQuants() const = 0;
  // KV element types to try for best-quant after the default ("auto").
  // Labels are the setting values ("fp8", "q8_0").
  virtual std::vector<std::string> KvLadder() const = 0;
  // Selects the KV element type `label` in s, and the settings that say so
  // ({"kv-dtype", "fp8"}; llama.cpp: -ctk and -ctv).
  virtual void ApplyKv(InferenceSettings& s, std::string_view label) const;
  virtual std::vector<std::pair<std::string, std::string>> KvSettings(std::string_view label) const;
  // The tensor-parallel degree to try first for n GPUs (0: this runtime
  // splits whole layers across GPUs and takes no --tp).
  virtual int64_t PreferredTp(const Model& model, int64_t n) const;
};

// The profile of a runtime.
const RuntimeProfile& ProfileFor(Runtime r);
// Every registered profile, in registration order.
std::span<const RuntimeProfile* const> AllProfiles();

// The registered profiles (one line each in registry.cc).
const RuntimeProfile& HfProfile();
const RuntimeProfile& VllmProfile();
const RuntimeProfile& LlamaCppProfile();
const RuntimeProfile& SglangProfile();

}  // namespace vramfit::runtimes

#endif  // VRAMFIT_SRC_CORE_RUNTIMES_PROFILE_H_
