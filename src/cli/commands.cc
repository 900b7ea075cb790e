// Subcommands: a table of names, flags generated from the settings table
// (include/vramfit/app/settings.h), one error path.
#include <algorithm>
#include <ctime>
#include <exception>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "vramfit/app/app.h"
#include "vramfit/app/check.h"
#include "vramfit/io/calibration.h"
#include "vramfit/io/engine_log.h"
#include "vramfit/app/settings.h"
#include "vramfit/io/source.h"
#include "vramfit/render.h"
#include "vramfit/runtime.h"
#include "vramfit/web/serve.h"

namespace vramfit::cli {
namespace {

struct Ctx {
  Ctx(std::ostream& o, std::ostream& e) : out(o), err(e) {}
  std::ostream& out;
  std::ostream& err;
  bool json = false;  // errors as vramfit.error/1 on stdout too
  app::Request request;
  std::string units = "gib";  // inspect, models, gpus
  std::string model;
  std::string query;
  std::string host = "127.0.0.1";  // serve
  std::string port = "8080";       // serve
  std::string logfile;             // check: LOGFILE or "-"
  bool save = false;               // check --save
  std::string action = "show";     // calibration: show | clear
};

int Fail(Ctx& c, const Error& e) {
  if (c.json) c.out << RenderErrorJson(e);
  c.err << "vramfit: error: " << e.message << "\n";
  return app::ExitCode(e);
}

Result<Units> ToUnits(const std::string& s) {
  if (s == "gib" || s == "GiB") return Units::kGiB;
  if (s == "gb" || s == "GB") return Units::kGB;
  return InvalidArgument(fmt::format("--units: expected gib or gb, got '{}'", s));
}

int RunInspect(Ctx& c) {
  auto units = ToUnits(c.units);
  if (!units.ok()) return Fail(c, units.error());
  std::vector<std::string> notes;
  auto m = LoadModel(c.model, ModelCatalog::Builtin(), &notes);
  if (!m.ok()) return Fail(c, m.error());
  const Inspection inspection = Inspect(*m, notes);
  c.out << (c.json ? RenderInspectJson(inspection) : RenderInspectText(inspection, *units));
  return 0;
}

// --print-flags: the runtime's launch flags, as one line or (--json) as argv
// tokens.
int PrintFlags(Ctx& c, const Estimate& e, Runtime runtime) {
  if (e.launch_flags.empty()) {
    return Fail(c, Unsupported(fmt::format("--print-flags: the {} runtime has no launch flags to print",
                                           RuntimeName(runtime))));
  }
  if (c.json) {
    c.out << RenderLaunchJson(e, RuntimeName(runtime));
  } else {
    // The whole command where the runtime has one (vllm serve MODEL ...),
    // else the flags alone.
    std::string line;
    for (const std::string& w : e.launch_command) line += (line.empty() ? "" : " ") + w;
    for (const std::string& f : e.launch_flags) line += (line.empty() ? "" : " ") + f;
    c.out << line << "\n";
  }
  return e.fits && !*e.fits ? 3 : 0;
}

// This machine's calibration file (vramfit check --save), unless
// --no-calibration; a file that cannot be read is an error naming it.
Result<Calibration> MachineCalibration(const app::Output& output) {
  if (output.no_calibration) return Calibration{};
  return LoadCalibration(CalibrationPath());
}

// infer and train: settings -> devices -> model -> estimate -> rendered
// estimate (with the fixes when it does not fit). Exit status: 0 fits (or
// no GPU given), 3 does not fit.
int RunEstimate(Ctx& c, app::Command cmd) {
  auto req = app::BuildJob(c.request, cmd);
  if (!req.ok()) return Fail(c, req.error());
  auto units = ToUnits(req->output.units);
  if (!units.ok()) return Fail(c, units.error());
  auto calibration = MachineCalibration(req->output);
  if (!calibration.ok()) return Fail(c, calibration.error());
  auto devices = app::ToDevices(*req, GpuCatalog::Builtin(), 0, &*calibration);
  if (!devices.ok()) return Fail(c, devices.error());
  std::vector<std::string> notes;
  auto m = LoadModel(c.model, ModelCatalog::Builtin(), &notes);
  if (!m.ok()) return Fail(c, m.error());
  const Job& job = req->job;
  if (req->output.print_flags && !RuntimeHasLaunchFlags(job.infer.runtime)) {
    return Fail(c, Unsupported(fmt::format("--print-flags: the {} runtime has no launch flags to print",
                                           RuntimeName(job.infer.runtime))));
  }
  auto r = app::EstimateWithExtras(*m, job, *devices, notes);
  if (!r.ok()) return Fail(c, r.error());
  if (req->output.print_flags) return PrintFlags(c, r->estimate, job.infer.runtime);
  const Estimate& e = r->estimate;
  c.out << (c.json ? RenderEstimateJson(e, r->extras) : RenderEstimateText(e, *units, r->extras));
  return e.fits && !*e.fits ? 3 : 0;
}

int RunInfer(Ctx& c) { return RunEstimate(c, app::kCmdInfer); }
int RunTrain(Ctx& c) { return RunEstimate(c, app::kCmdTrain); }

int RunFit(Ctx& c) {
  auto req = app::BuildJob(c.request, app::kCmdFit);
  if (!req.ok()) return Fail(c, req.error());
  auto units = ToUnits(req->output.units);
  if (!units.ok()) return Fail(c, units.error());
  std::vector<std::string> notes;
  auto model = LoadModel(c.model, ModelCatalog::Builtin(), &notes);
  if (!model.ok()) return Fail(c, model.error());
  auto calibration = MachineCalibration(req->output);
  if (!calibration.ok()) return Fail(c, calibration.error());
  auto fit = app::Fit(*model, c.request, 10000, false, &*calibration);
  if (!fit.ok()) return Fail(c, fit.error());
  switch (fit->kind) {
    case app::FitResult::Kind::kSweep:
      c.out << (req->output.csv ? RenderSweepCsv(fit->sweep)
                : c.json        ? RenderSweepJson(fit->sweep)
                                : RenderSweepText(fit->sweep, *units));
      return 0;
    case app::FitResult::Kind::kRanking:
      c.out << (c.json ? RenderGpuRankJson(fit->ranking) : RenderGpuRankText(fit->ranking, *units));
      return 0;
    case app::FitResult::Kind::kAnswer:
      c.out << (c.json ? RenderFitJson(*fit->answer) : RenderFitText(*fit->answer, *units));
      return fit->answer->found ? 0 : 3;
  }
  return 1;
}

int SaveCheck(Ctx& c, const app::CheckResult& r, Units u);

// check: the log -> the job it describes (completed by flags) -> the
// estimate -> measured vs estimated per device. Exit 2 for a log it cannot
// read.
int RunCheck(Ctx& c) {
  // At most one byte past the readers' 256 MiB limit, so that an endless
  // pipe or a huge file is refused by the reader, not read to the end.
  constexpr size_t kReadLimit = (size_t{256} << 20) + 1;
  const auto read_all = [&](std::istream& in) {
    std::string text;
    char buf[65536];
    while (text.size() < kReadLimit && in.read(buf, sizeof buf).gcount() > 0) {
      text.append(buf, static_cast<size_t>(in.gcount()));
    }
    return text;
  };
  std::string text;
  if (c.logfile == "-") {
    text = read_all(std::cin);
  } else {
    std::ifstream in(c.logfile, std::ios::binary);
    if (!in) return Fail(c, NotFound(fmt::format("{}: cannot open the log", c.logfile)));
    text = read_all(in);
  }
  auto log = io::ParseEngineLog(text, c.logfile);
  if (!log.ok()) return Fail(c, log.error());
  std::string units_name = "gib";
  for (const app::Given& g : c.request.given()) {
    if (g.setting->name == "units") units_name = g.value;
  }
  auto units = ToUnits(units_name);
  if (!units.ok()) return Fail(c, units.error());
  // The output settings are the CLI's; the rest describe the job.
  app::Request job_flags;
  for (const app::Given& g : c.request.given()) {
    if (!(g.setting->scope & app::kOutput)) {
      job_flags.AddGiven(g.setting, g.value, g.spelled);
    } else if (g.setting->name != "json" && g.setting->name != "units") {
      return Fail(c, InvalidArgument(fmt::format("{}: applies to {}, not check", g.spelled,
                                                 g.setting->name == "csv" ? "fit --sweep" : "infer")));
    }
  }
  auto r = app::Check(*log, c.logfile, job_flags, c.model);
  if (!r.ok()) return Fail(c, r.error());
  if (c.save) return SaveCheck(c, *r, *units);
  c.out << (c.json ? app::RenderCheckJson(*r) : app::RenderCheckText(*r, *units));
  return 0;
}

// The UTC day, "2026-12-07".
std::string Today() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

// check --save: the comparison, then what it learned, written to this
// machine's calibration file (the JSON document stays the comparison; the
// saved line goes to stderr then).
int SaveCheck(Ctx& c, const app::CheckResult& r, Units u) {
  auto entries = app::CalibrationFrom(r, Today());
  if (!entries.ok()) return Fail(c, entries.error());
  const std::string path = CalibrationPath();
  Status st = SaveCalibration(path, *entries);
  if (!st.ok()) return Fail(c, st.error());
  c.out << (c.json ? app::RenderCheckJson(r) : app::RenderCheckText(r, u));
  std::ostream& said = c.json ? c.err : c.out;
  for (const CalibrationEntry& e : *entries) {
    said << fmt::format("calibration: saved {} {} MiB for {} / {} (assumed {} MiB) to {}\n", e.component,
                        e.bytes / kMiB, e.gpu, e.runtime, e.assumed_bytes / kMiB, path);
  }
  return 0;
}

// calibration show|clear: this machine's calibration file.
int RunCalibration(Ctx& c) {
  const std::string path = CalibrationPath();
  if (c.action == "clear") {
    Status st = ClearCalibration(path);
    if (!st.ok()) return Fail(c, st.error());
    c.out << fmt::format("calibration: cleared {}\n", path.empty() ? std::string("(no file)") : path);
    return 0;
  }
  if (c.action != "show") {
    return Fail(c, InvalidArgument(fmt::format("calibration: expected show or clear, got '{}'", c.action)));
  }
  auto cal = LoadCalibration(path);
  if (!cal.ok()) return Fail(c, cal.error());
  if (c.json) {
    nlohmann::json j = {{"schema", "vramfit.calibration/1"}, {"path", path}, {"entries", nlohmann::json::array()}};
    for (const CalibrationEntry& e : cal->entries) {
      j["entries"].push_back({{"gpu", e.gpu}, {"runtime", e.runtime}, {"component", e.component},
                              {"bytes", e.bytes}, {"assumed_bytes", e.assumed_bytes}, {"source", e.source},
                              {"saved", e.saved}});
    }
    c.out << j.dump(2) << "\n";
    return 0;
  }
  c.out << fmt::format("calibration file: {}\n", path.empty() ? std::string("(none: no HOME)") : path);
  if (cal->entries.empty()) c.out << "  no entries (vramfit check LOG --save adds them)\n";
  for (const CalibrationEntry& e : cal->entries) {
    c.out << fmt::format("  {:<14} {:<9} {:<13} {:>6} MiB (assumed {} MiB)  {}, saved {}\n", e.gpu, e.runtime,
                         e.component, e.bytes / kMiB, e.assumed_bytes / kMiB, e.source, e.saved);
  }
  return 0;
}

int RunModels(Ctx& c) {
  auto list = ModelCatalog::Builtin().Search(c.query);
  c.out << (c.json ? RenderModelsJson(list) : RenderModelsText(list));
  return 0;
}

int RunGpus(Ctx& c) {
  auto units = ToUnits(c.units);
  if (!units.ok()) return Fail(c, units.error());
  auto list = GpuCatalog::Builtin().Search(c.query);
  c.out << (c.json ? RenderGpusJson(list) : RenderGpusText(list, *units));
  return 0;
}

int RunServe(Ctx& c) {
  auto port = app::ParseInt("--port", c.port);
  if (!port.ok()) return Fail(c, port.error());
  if (*port < 0 || *port > 65535) {
    return Fail(c, InvalidArgument(fmt::format("--port: expected 0 to 65535, got {}", *port)));
  }
  if (c.host.empty()) return Fail(c, InvalidArgument("--host: the host is empty"));
  return web::Serve(c.host, static_cast<int>(*port), c.out, c.err);
}

struct Command {
  const char* name;
  const char* help;
  int (*run)(Ctx&);
  bool model_arg;     // takes MODEL
  bool query_arg;     // takes an optional QUERY
  unsigned settings;  // app::Command bit: takes the job settings of that command; 0 none
};

const Command kCommands[] = {
    {"infer", "memory to serve / generate with MODEL", RunInfer, true, false, app::kCmdInfer},
    {"train", "memory to fine-tune or pre-train MODEL (full, LoRA, QLoRA, freeze)", RunTrain, true, false,
     app::kCmdTrain},
    {"inspect", "architecture, exact parameter inventory, KV bytes per token", RunInspect, true, false, 0},
    {"models", "list catalog models matching QUERY", RunModels, false, true, 0},
    {"gpus", "list catalog GPUs matching QUERY", RunGpus, false, true, 0},
    {"serve", "the web calculator and JSON API on http://127.0.0.1:8080/", RunServe, false, false, 0},
    {"check", "LOGFILE|-: an engine's log (llama.cpp, vLLM, SGLang, PyTorch, nvidia-smi) against the estimate",
     RunCheck, false, false, app::kCmdInfer | app::kCmdTrain},
    {"fit", "plan: max-batch, max-context, min-gpus, best-quant, best-method; --sweep; --gpu all", RunFit, true,
     false, app::kCmdFit},
    {"calibration", "show|clear: this machine's calibration (vramfit check LOG --save)", RunCalibration, false,
     false, 0},
};

// The job settings as CLI11 options, from the settings table: those of this
// command in its --help, the others hidden (so that giving one says where it
// applies instead of "unknown option"). Each occurrence lands in c.request
// in command-line order.
void AddSettings(CLI::App* app, Ctx& c, unsigned cmd) {
  for (const app::Setting& s : app::Settings()) {
    const std::string flag = "--" + std::string(s.name);
    const std::string help(s.help);
    CLI::Option* o = nullptr;
    if (s.is_switch()) {
      o = app->add_flag_callback(flag, [&c, &s] { c.request.AddGiven(&s, "true", "--" + std::string(s.name)); },
                                 help);
    } else {
      o = app->add_option_function<std::string>(
          flag, [&c, &s](const std::string& v) { c.request.AddGiven(&s, v, "--" + std::string(s.name)); }, help);
      o->type_name(std::string(s.metavar));
    }
    o->trigger_on_parse();
    if (!s.repeatable && !s.is_switch()) o->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    if (!app::ShownFor(s, static_cast<app::Command>(cmd))) o->group("");  // hidden
  }
}

// The upstream spellings this command takes, for the end of --help: one
// line per setting that has any.
std::string AliasHelp(app::Command cmd) {
  std::string out = "Upstream spellings (vLLM, llama.cpp, HF Trainer / TRL) of these settings:";
  for (const app::Setting& s : app::Settings()) {
    if (!app::ShownFor(s, cmd)) continue;
    std::string also;
    for (const app::Alias& a : app::Aliases()) {
      if (a.commands != 0 && !(a.commands & cmd)) continue;
      if (a.setting == s.name) also += (also.empty() ? "" : ", ") + std::string(a.spelling);
    }
    if (!also.empty()) out += fmt::format("\n  --{:<26} {}", s.name, also);
  }
  return out + "\n('_' counts as '-' in long flags; token counts take k and m: --ctx 128k)";
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

// Unknown options and stray arguments (collected with allow_extras so they
// come back in command-line order).
int Extras(Ctx& c, const Command& cmd, CLI::App& app) {
  const std::vector<std::string> extras = app.remaining();
  std::string first = extras.front();
  for (const std::string& x : extras) {
    if (x.rfind("-", 0) == 0) { first = x; break; }
  }
  if (first.rfind("-", 0) != 0) {
    return Fail(c, InvalidArgument(fmt::format("{}: unexpected argument '{}'", cmd.name, first)));
  }
  const std::string flag = first.substr(0, first.find('='));
  std::vector<std::string> names;
  for (const CLI::Option* o : app.get_options()) {
    if (o->get_group().empty()) continue;  // another command's setting
    for (const std::string& l : o->get_lnames()) names.push_back("--" + l);
  }
  const std::string s = Suggest(flag, names);
  return Fail(c, InvalidArgument(fmt::format("{}: unknown option '{}'{}", cmd.name, flag,
                                             s.empty() ? "" : " (did you mean " + s + "?)")));
}

int RunCommand(const Command& cmd, const std::vector<std::string>& given, Ctx& c) {
  auto expanded = app::ExpandAliases(given, cmd.settings != 0 ? cmd.settings : app::kCmdInfer | app::kCmdTrain | app::kCmdFit);
  if (!expanded.ok()) return Fail(c, expanded.error());
  std::vector<std::string> rest = std::move(expanded.value());
  c.json = std::find(rest.begin(), rest.end(), "--json") != rest.end();

  CLI::App app{cmd.help, std::string("vramfit ") + cmd.name};
  app.set_help_flag("-h,--help", "show this help");
  app.allow_extras();
  if (cmd.settings != 0) {
    AddSettings(&app, c, cmd.settings);
    std::string footer = AliasHelp(static_cast<app::Command>(cmd.settings));
    if (cmd.settings & app::kCmdTrain) footer += "\n\n" + app::StackHelp();
    app.footer(footer);
  } else {
    app.add_flag("--json", c.json, "print JSON (schema vramfit.*/1)");
    app.add_option("--units", c.units, "gib (default) or gb")->type_name("UNIT");
  }
  if (std::string(cmd.name) == "serve") {
    app.add_option("--host", c.host, "address to listen on (127.0.0.1; anything else is reachable by others)")
        ->type_name("HOST");
    app.add_option("--port", c.port, "port to listen on (8080; 0 picks a free one)")->type_name("PORT");
  }
  if (cmd.model_arg) {
    app.add_option("MODEL", c.model, "catalog id or alias, config.json, model directory, .gguf, hf:ORG/NAME")
        ->required()
        ->type_name("");
  }
  if (cmd.query_arg) app.add_option("QUERY", c.query, "words to match");
  const bool check = std::string(cmd.name) == "check";
  if (check) {
    app.add_option("LOGFILE", c.logfile, "the engine's log, a PyTorch JSON record or nvidia-smi CSV; - for stdin")
        ->required()
        ->type_name("");
    app.add_option("--model", c.model,
                   "MODEL for what the log does not name: catalog id, config.json, model directory, .gguf")
        ->type_name("MODEL");
    app.add_flag("--save", c.save,
                 "learn this machine's context overhead from the log (llama.cpp breakdown, PyTorch record) into "
                 "its calibration file");
  }
  if (std::string(cmd.name) == "calibration") {
    app.add_option("ACTION", c.action, "show (default) or clear")->type_name("");
  }

  std::reverse(rest.begin(), rest.end());  // CLI11 takes the vector reversed
  try {
    app.parse(rest);
  } catch (const CLI::CallForHelp&) {
    c.out << app.help();
    return 0;
  } catch (const CLI::RequiredError&) {
    if (check) {
      return Fail(c, InvalidArgument("check: LOGFILE is required (e.g. vramfit check server.log --model "
                                     "meta-llama/Llama-3.1-8B; - reads stdin)"));
    }
    return Fail(c, InvalidArgument(fmt::format("{}: MODEL is required (e.g. vramfit {} meta-llama/Llama-3.1-8B)",
                                               cmd.name, cmd.name)));
  } catch (const CLI::ParseError& e) {
    return Fail(c, InvalidArgument(fmt::format("{}: {}", cmd.name, e.what())));
  }
  if (!app.remaining().empty()) return Extras(c, cmd, app);
  return cmd.run(c);
}

}  // namespace

int Run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Ctx c(out, err);
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
    std::vector<std::string> names;
    for (const Command& k : kCommands) names.push_back(k.name);
    const std::string s = Suggest(args[0], names);
    return Fail(c, InvalidArgument(fmt::format("unknown command '{}'{}", args[0],
                                               s.empty() ? " (see 'vramfit --help')" : " (did you mean " + s + "?)")));
  }
  // The one entry point: anything a library call throws (a bug, or memory
  // exhausted by a hostile input that a check missed) is one clean line.
  try {
    return RunCommand(*cmd, std::vector<std::string>(args.begin() + 1, args.end()), c);
  } catch (const std::exception& e) {
    return Fail(c, Error{ErrorKind::kInternal, fmt::format("{}: internal error: {}", cmd->name, e.what())});
  }
}

}  // namespace vramfit::cli
