// Subcommands: a table of names, a parser per command, one error path.
#include <algorithm>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/cli.h"
#include "vramfit/estimate.h"
#include "vramfit/io/source.h"
#include "vramfit/training.h"
#include "web/server.h"

namespace vramfit::cli {
namespace {

struct Ctx {
  std::ostream& out;
  std::ostream& err;
  RawFlags flags;
  FitFlags fit;
  std::string model;
  std::string query;
  std::string host = "127.0.0.1";  // serve
  std::string port = "8080";       // serve
};

int Fail(Ctx& c, const Error& e) {
  if (c.flags.json) c.out << RenderErrorJson(e);
  c.err << "vramfit: error: " << e.message << "\n";
  if (e.kind == ErrorKind::kDoesNotFit) return 3;  // as an estimate that does not fit
  return e.kind == ErrorKind::kInvalidArgument || e.kind == ErrorKind::kNotFound ? 2 : 1;
}

int RunInspect(Ctx& c) {
  auto units = ToUnits(c.flags.units);
  if (!units.ok()) return Fail(c, units.error());
  std::vector<std::string> notes;
  auto m = LoadModel(c.model, ModelCatalog::Builtin(), &notes);
  if (!m.ok()) return Fail(c, m.error());
  c.out << (c.flags.json ? RenderInspectJson(*m, notes) : RenderInspectText(*m, notes, *units));
  return 0;
}

// infer and train: flags -> settings -> model -> estimate -> rendered
// estimate (with the fixes when it does not fit). Exit status: 0 fits (or
// no GPU given), 3 does not fit.
int RunEstimate(Ctx& c, bool training) {
  auto units = ToUnits(c.flags.units);
  if (!units.ok()) return Fail(c, units.error());
  Job job;
  job.training = training;
  if (training) {
    auto settings = ToTrainingSettings(c.flags);
    if (!settings.ok()) return Fail(c, settings.error());
    job.train = *settings;
  } else {
    auto settings = ToInferenceSettings(c.flags);
    if (!settings.ok()) return Fail(c, settings.error());
    job.infer = *settings;
  }
  auto devices = ToDevices(c.flags, GpuCatalog::Builtin());
  if (!devices.ok()) return Fail(c, devices.error());
  std::vector<std::string> notes;
  auto m = LoadModel(c.model, ModelCatalog::Builtin(), &notes);
  if (!m.ok()) return Fail(c, m.error());
  auto e = EstimateJob(*m, job, *devices);
  if (!e.ok()) return Fail(c, e.error());
  e->notes.insert(e->notes.begin(), notes.begin(), notes.end());
  const bool over = e->fits && !*e->fits;
  if (!training && c.flags.print_flags) {
    if (e->launch_flags.empty()) {
      return Fail(c, Unsupported(fmt::format("--print-flags: the {} runtime has no launch flags to print",
                                             RuntimeName(job.infer.runtime))));
    }
    std::string line;
    for (const std::string& f : e->launch_flags) line += (line.empty() ? "" : " ") + f;
    c.out << line << "\n";
    return over ? 3 : 0;
  }
  EstimateExtras extras;
  if (!devices->empty()) {
    if (!training) extras.throughput = EstimateThroughput(*m, *e, *devices);
    if (over) extras.fixes = SuggestFixes(*m, job, *devices, *e);
  }
  c.out << (c.flags.json ? RenderEstimateJson(*e, extras) : RenderEstimateText(*e, *units, extras));
  return over ? 3 : 0;
}

int RunInfer(Ctx& c) { return RunEstimate(c, false); }
int RunTrain(Ctx& c) { return RunEstimate(c, true); }

int RunFit(Ctx& c) {
  auto units = ToUnits(c.flags.units);
  if (!units.ok()) return Fail(c, units.error());
  return RunFitCommand(c.flags, c.fit, c.model, *units, c.out, c.err);
}

int RunModels(Ctx& c) {
  auto list = ModelCatalog::Builtin().Search(c.query);
  c.out << (c.flags.json ? RenderModelsJson(list) : RenderModelsText(list));
  return 0;
}

int RunGpus(Ctx& c) {
  auto units = ToUnits(c.flags.units);
  if (!units.ok()) return Fail(c, units.error());
  auto list = GpuCatalog::Builtin().Search(c.query);
  c.out << (c.flags.json ? RenderGpusJson(list) : RenderGpusText(list, *units));
  return 0;
}

int RunServe(Ctx& c) {
  auto port = ParseIntFlag("--port", c.port);
  if (!port.ok()) return Fail(c, port.error());
  if (*port < 0 || *port > 65535) {
    return Fail(c, InvalidArgument(fmt::format("--port: expected 0 to 65535, got {}", *port)));
  }
  if (c.host.empty()) return Fail(c, InvalidArgument("--host: the host is empty"));
  web::ServerOptions o;
  o.host = c.host;
  o.port = static_cast<int>(*port);
  return web::Serve(o, c.out, c.err);
}

void AddServeFlags(CLI::App* app, Ctx& c) {
  app->add_option("--host", c.host, "address to listen on (127.0.0.1; anything else is reachable by others)");
  app->add_option("--port", c.port, "port to listen on (8080; 0 picks a free one)");
}

struct Command {
  const char* name;
  const char* help;
  int (*run)(Ctx&);
  bool model_arg;   // takes MODEL
  bool query_arg;   // takes an optional QUERY
  bool infer_flags; // takes the inference flags
};

const Command kCommands[] = {
    {"infer", "memory to serve / generate with MODEL", RunInfer, true, false, true},
    {"train", "memory to fine-tune or pre-train MODEL (full, LoRA, QLoRA, freeze)", RunTrain, true, false, false},
    {"inspect", "architecture, exact parameter inventory, KV bytes per token", RunInspect, true, false, false},
    {"models", "list catalog models matching QUERY", RunModels, false, true, false},
    {"gpus", "list catalog GPUs matching QUERY", RunGpus, false, true, false},
    {"serve", "the web calculator and JSON API on http://127.0.0.1:8080/", RunServe, false, false, false},
    {"fit", "plan: max-batch, max-context, min-gpus, best-quant, best-method; --sweep; --gpu all", RunFit, true, false, true},
};
// Commands in DESIGN.md that this build does not have yet.
const char* kPlanned[] = {"fit-placeholder-unused"};

void AddCommon(CLI::App* app, Ctx& c) {
  app->add_flag("--json", c.flags.json, "print JSON (schema vramfit.*/1)");
  app->add_option("--units", c.flags.units, "gib (default) or gb");
}

// Flags only training takes (fit takes them next to the inference flags).
void AddTrainOnlyFlags(CLI::App* app, Ctx& c) {
  RawFlags& f = c.flags;
  app->add_option("--method", f.method, "full (default), lora, qlora, freeze");
  app->add_option("--precision", f.precision, "bf16-mixed (default), fp16-mixed, bf16, fp32");
  app->add_option("--optimizer", f.optimizer, "adamw (default), adamw-8bit, paged-adamw-8bit, adafactor, sgd, sgd-momentum, lion");
  app->add_option("--optimizer-impl", f.optimizer_impl, "foreach (default, torch's CUDA default) or fused");
  app->add_option("--seq", f.seq, "tokens per sample (2048)");
  app->add_option("--grad-accum", f.grad_accum, "gradient accumulation steps (1)");
  app->add_option("--grad-ckpt", f.grad_ckpt, "gradient checkpointing: none (default), full, selective");
  app->add_option("--loss", f.loss, "cross-entropy: hf (default), chunked, fused");
  app->add_option("--lora-rank", f.lora_rank, "LoRA rank (16)");
  app->add_option("--lora-targets", f.lora_targets, "all-linear (default), attn, mlp, or q,k,v,o,gate,up,down");
  app->add_option("--trainable-layers", f.trainable_layers, "freeze: train the last N layers (a quarter)");
  app->add_option("--zero", f.zero, "DeepSpeed ZeRO stage 0-3 (0)");
  app->add_flag("--fsdp", f.fsdp, "FSDP full sharding");
  app->add_option("--gpus", f.gpus_dp, "data-parallel GPUs (1, or as many as --gpu gives)");
  app->add_option("--offload", f.offload, "none (default), optimizer, params");
}

void AddTrainFlags(CLI::App* app, Ctx& c) {
  RawFlags& f = c.flags;
  app->add_option("--gpu", f.gpus, "GPU from the catalog, NAME[xN]; repeatable");
  app->add_option("--batch", f.batch, "micro-batch per GPU (1)");
  app->add_option("--attn", f.attn, "attention kernel: eager, sdpa (default), flash");
  app->add_option("--quant", f.quant, "frozen base format for lora/qlora (qlora: nf4-dq)");
  app->add_option("--tp", f.tp, "tensor-parallel degree (1)");
  app->add_option("--pp", f.pp, "pipeline-parallel degree (1)");
  app->add_option("--dtype", f.dtype, "(inference only; use --precision)");
  AddTrainOnlyFlags(app, c);
}

void AddInferFlags(CLI::App* app, Ctx& c) {
  RawFlags& f = c.flags;
  app->add_option("--gpu", f.gpus, "GPU from the catalog, NAME[xN]; repeatable");
  app->add_option("--runtime", f.runtime, "hf (default), vllm or llamacpp");
  app->add_option("--dtype", f.dtype, "compute dtype: fp32, fp16, bf16 (model's own)");
  app->add_option("--quant", f.quant, "weight format: none, int8, nf4, nf4-dq, fp4, fp4-dq, gptq-int4, awq-int4, fp8, fp8-block, mxfp4; with --runtime llamacpp a GGUF file type (Q4_K_M, Q8_0, IQ4_XS, F16...)");
  app->add_option("--batch", f.batch, "concurrent sequences (1)");
  app->add_option("--ctx", f.ctx, "tokens per sequence held in KV (4096, capped at the model's max)");
  app->add_option("--prompt", f.prompt, "prefill tokens per sequence");
  app->add_option("--new", f.new_tokens, "generated tokens per sequence");
  app->add_option("--kv-dtype", f.kv_dtype, "KV cache dtype: auto, fp16, bf16, fp8");
  app->add_option("--attn", f.attn, "attention kernel: eager, sdpa (default; eager before transformers 4.36), flash");
  app->add_option("--transformers", f.transformers, "transformers version to model for --runtime hf (4.56)");
  app->add_option("--tp", f.tp, "tensor-parallel degree (1)");
  // vLLM's own knobs, with vLLM's defaults.
  app->add_option("--gpu-mem-util", f.gpu_mem_util, "vllm: gpu_memory_utilization (0.9)");
  app->add_option("--max-model-len", f.max_model_len, "vllm: max_model_len (the model's max)");
  app->add_option("--max-num-seqs", f.max_num_seqs, "vllm: max_num_seqs");
  app->add_option("--max-num-batched-tokens", f.max_num_batched_tokens, "vllm: max_num_batched_tokens");
  app->add_option("--block-size", f.block_size, "vllm: KV block size in tokens (16)");
  app->add_flag("--enforce-eager", f.enforce_eager, "vllm: no CUDA graphs");
  // llama.cpp's own knobs (-ub, -b, -fa, -ctk, -ctv, -ngl, -np).
  app->add_option("--ubatch", f.ubatch, "llamacpp: -ub physical batch (512)");
  app->add_option("--batch-size", f.batch_size, "llamacpp: -b logical batch (2048)");
  app->add_option("--flash-attn", f.flash_attn, "llamacpp: -fa on|off|auto");
  app->add_option("--cache-type-k", f.cache_type_k, "llamacpp: -ctk (f16)");
  app->add_option("--cache-type-v", f.cache_type_v, "llamacpp: -ctv (f16)");
  app->add_option("--gpu-layers", f.gpu_layers, "llamacpp: -ngl (all)");
  app->add_option("--parallel", f.parallel, "llamacpp: -np sequences (1)");
  app->add_option("--llamacpp-build", f.llamacpp_build, "llamacpp: release to model, bNNNN (b8000)");
  app->add_flag("--print-flags", f.print_flags, "print the runtime's launch flags for this estimate");
  app->add_option("--pp", f.pp, "pipeline (layer split) degree (1)");
}

std::string Suggest(const std::string& word, const std::vector<std::string>& options) {
  std::string best;
  size_t bd = 3;
  for (const std::string& o : options) {
    const size_t d = EditDistance(word, o);
    if (d < bd) { bd = d; best = o; }
  }
  return best;
}

std::string Usage() {
  std::string u = "usage: vramfit <command> [options]\n\ncommands:\n";
  for (const Command& c : kCommands) u += fmt::format("  {:<9} {}\n", c.name, c.help);
  u += "\nRun 'vramfit <command> --help' for its options.\n";
  return u;
}

}  // namespace

int Run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Ctx c{out, err, {}, {}, {}, {}};
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    out << Usage();
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    out << "vramfit 0.1.0\n";
    return 0;
  }
  const Command* cmd = nullptr;
  for (const Command& k : kCommands) {
    if (args[0] == k.name) cmd = &k;
  }
  if (cmd == nullptr) {
    for (const char* p : kPlanned) {
      if (args[0] == p) {
        return Fail(c, Unsupported(fmt::format("{}: this command is not available in this build yet", p)));
      }
    }
    std::vector<std::string> names;
    for (const Command& k : kCommands) names.push_back(k.name);
    for (const char* p : kPlanned) names.push_back(p);
    const std::string s = Suggest(args[0], names);
    return Fail(c, InvalidArgument(fmt::format("unknown command '{}'{}", args[0],
                                               s.empty() ? " (see 'vramfit --help')" : " (did you mean " + s + "?)")));
  }

  CLI::App app{cmd->help, std::string("vramfit ") + cmd->name};
  app.set_help_flag("-h,--help", "show this help");
  app.allow_extras();
  AddCommon(&app, c);
  if (cmd->infer_flags) AddInferFlags(&app, c);
  if (std::string(cmd->name) == "train") AddTrainFlags(&app, c);
  if (std::string(cmd->name) == "fit") {
    AddTrainOnlyFlags(&app, c);
    app.add_option("--solve", c.fit.solve, "max-batch, max-context, min-gpus, best-quant, best-method");
    app.add_option("--sweep", c.fit.sweep, "KEY=V1,V2,... (repeatable): a grid of estimates");
    app.add_flag("--csv", c.fit.csv, "sweep as CSV");
  }
  if (std::string(cmd->name) == "serve") AddServeFlags(&app, c);
  if (cmd->model_arg) app.add_option("MODEL", c.model, "catalog id or alias, config.json, or model directory")->required();
  if (cmd->query_arg) app.add_option("QUERY", c.query, "words to match");

  std::vector<std::string> rest(args.begin() + 1, args.end());
  std::reverse(rest.begin(), rest.end());  // CLI11 takes the vector reversed
  try {
    app.parse(rest);
  } catch (const CLI::CallForHelp&) {
    out << app.help();
    return 0;
  } catch (const CLI::RequiredError&) {
    return Fail(c, InvalidArgument(fmt::format("{}: MODEL is required (e.g. vramfit {} meta-llama/Llama-3.1-8B)",
                                               cmd->name, cmd->name)));
  } catch (const CLI::ArgumentMismatch& e) {
    return Fail(c, InvalidArgument(fmt::format("{}: {}", cmd->name, e.what())));
  } catch (const CLI::ParseError& e) {
    return Fail(c, InvalidArgument(fmt::format("{}: {}", cmd->name, e.what())));
  }
  // Unknown options and stray arguments (collected with allow_extras so
  // they come back in command-line order).
  const std::vector<std::string> extras = app.remaining();
  if (!extras.empty()) {
    std::string first = extras.front();
    for (const std::string& x : extras) {
      if (x.rfind("-", 0) == 0) { first = x; break; }
    }
    if (first.rfind("-", 0) == 0) {
      const std::string flag = first.substr(0, first.find('='));
      std::vector<std::string> names;
      for (const CLI::Option* o : app.get_options()) {
        for (const std::string& l : o->get_lnames()) names.push_back("--" + l);
      }
      const std::string s = Suggest(flag, names);
      return Fail(c, InvalidArgument(fmt::format("{}: unknown option '{}'{}", cmd->name, flag,
                                                 s.empty() ? "" : " (did you mean " + s + "?)")));
    }
    return Fail(c, InvalidArgument(fmt::format("{}: unexpected argument '{}'", cmd->name, first)));
  }
  return cmd->run(c);
}

}  // namespace vramfit::cli
