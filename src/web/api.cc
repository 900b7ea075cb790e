// The JSON API of `vramfit serve`: request bodies -> cli::RawFlags -> the
// same library calls as the CLI -> the CLI's JSON renderers.
#include "web/api.h"

#include <algorithm>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "io/json_util.h"
#include "vramfit/catalog.h"
#include "vramfit/estimate.h"
#include "vramfit/io/hf_config.h"
#include "vramfit/io/source.h"
#include "vramfit/plan.h"
#include "vramfit/render.h"
#include "vramfit/training.h"
#include "web/upload.h"

#ifndef VRAMFIT_VERSION
#define VRAMFIT_VERSION "0.0.0"
#endif

namespace vramfit::web {

using Json = nlohmann::ordered_json;
using cli::RawFlags;

// ---------------------------------------------------------------------------
// Switch points for features other issues build in parallel (docs/web.md
// "Switch points"): the planner is wired (below, Api::Fit); checkpoint
// uploads follow the readers vramfit_io compiles (web/upload.h).
constexpr bool kHavePlanner = true;
// ---------------------------------------------------------------------------

namespace {

constexpr unsigned kInfer = 1, kTrain = 2;

// Settings whose value is a string flag of the CLI.
struct StrSetting {
  const char* key;  // the CLI flag without "--"
  unsigned modes;
  std::optional<std::string> RawFlags::*field;
};
const StrSetting kStrSettings[] = {
    {"dtype", kInfer | kTrain, &RawFlags::dtype},
    {"quant", kInfer | kTrain, &RawFlags::quant},
    {"batch", kInfer | kTrain, &RawFlags::batch},
    {"ctx", kInfer, &RawFlags::ctx},
    {"prompt", kInfer, &RawFlags::prompt},
    {"new", kInfer, &RawFlags::new_tokens},
    {"kv-dtype", kInfer, &RawFlags::kv_dtype},
    {"attn", kInfer | kTrain, &RawFlags::attn},
    {"transformers", kInfer, &RawFlags::transformers},
    {"tp", kInfer | kTrain, &RawFlags::tp},
    {"pp", kInfer | kTrain, &RawFlags::pp},
    {"gpu-mem-util", kInfer, &RawFlags::gpu_mem_util},
    {"max-model-len", kInfer, &RawFlags::max_model_len},
    {"max-num-seqs", kInfer, &RawFlags::max_num_seqs},
    {"max-num-batched-tokens", kInfer, &RawFlags::max_num_batched_tokens},
    {"block-size", kInfer, &RawFlags::block_size},
    {"ubatch", kInfer, &RawFlags::ubatch},
    {"batch-size", kInfer, &RawFlags::batch_size},
    {"flash-attn", kInfer, &RawFlags::flash_attn},
    {"cache-type-k", kInfer, &RawFlags::cache_type_k},
    {"cache-type-v", kInfer, &RawFlags::cache_type_v},
    {"gpu-layers", kInfer, &RawFlags::gpu_layers},
    {"parallel", kInfer, &RawFlags::parallel},
    {"llamacpp-build", kInfer, &RawFlags::llamacpp_build},
    {"method", kTrain, &RawFlags::method},
    {"precision", kTrain, &RawFlags::precision},
    {"optimizer", kTrain, &RawFlags::optimizer},
    {"optimizer-impl", kTrain, &RawFlags::optimizer_impl},
    {"seq", kTrain, &RawFlags::seq},
    {"grad-accum", kTrain, &RawFlags::grad_accum},
    {"grad-ckpt", kTrain, &RawFlags::grad_ckpt},
    {"loss", kTrain, &RawFlags::loss},
    {"lora-rank", kTrain, &RawFlags::lora_rank},
    {"lora-targets", kTrain, &RawFlags::lora_targets},
    {"trainable-layers", kTrain, &RawFlags::trainable_layers},
    {"zero", kTrain, &RawFlags::zero},
    {"gpus", kTrain, &RawFlags::gpus_dp},
    {"offload", kTrain, &RawFlags::offload},
};
// Settings that are CLI switches (--enforce-eager): true or false.
struct BoolSetting {
  const char* key;
  unsigned modes;
  bool RawFlags::*field;
};
const BoolSetting kBoolSettings[] = {
    {"enforce-eager", kInfer, &RawFlags::enforce_eager},
    {"fsdp", kTrain, &RawFlags::fsdp},
};
// "gpu" (a string or a list) and "runtime" are handled by name.
constexpr unsigned kGpuModes = kInfer | kTrain, kRuntimeModes = kInfer;
// Keys every request may carry besides the settings.
const char* const kControlKeys[] = {"mode", "model", "config"};
// CLI output flags that mean nothing to the API.
const char* const kOutputFlags[] = {"json", "units", "print-flags"};

unsigned ModeBit(std::string_view mode) { return mode == "train" ? kTrain : kInfer; }

// A JSON value as the text the CLI would have received for the flag:
// strings as they are, numbers as written, anything else as JSON (so the
// CLI's validators reject it with their own message). nullopt for null.
std::optional<std::string> FlagText(const nlohmann::json& v) {
  if (v.is_null()) return std::nullopt;
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

std::string NormalizeKey(std::string k) {
  std::replace(k.begin(), k.end(), '_', '-');
  return k;
}

Result<nlohmann::json> ParseBody(std::string_view body) {
  if (body.empty()) return InvalidArgument("request body: empty (expected a JSON object)");
  auto j = io::ParseJson(body, "request body");
  if (!j.ok()) return j.error();
  if (!j->is_object()) {
    return InvalidArgument(fmt::format("request body: expected a JSON object, got {}", io::Preview(*j)));
  }
  return std::move(j.value());
}

Result<std::string> ModeOf(const nlohmann::json& body) {
  auto it = body.find("mode");
  if (it == body.end() || it->is_null()) return std::string("infer");
  if (it->is_string() && (*it == "infer" || *it == "train")) return it->get<std::string>();
  return InvalidArgument(fmt::format("mode: expected infer or train, got {}", io::Preview(*it)));
}

// Fills RawFlags from the body's settings for `mode`. `extra` lists further
// keys the endpoint reads itself (series: "vary", "values").
Status FillFlags(const nlohmann::json& body, std::string_view mode,
                 const std::vector<std::string>& extra, RawFlags* f) {
  const unsigned bit = ModeBit(mode);
  std::map<std::string, std::string> seen;  // normalized -> as written
  for (const auto& [raw_key, value] : body.items()) {
    const std::string key = NormalizeKey(raw_key);
    if (auto [it, fresh] = seen.emplace(key, raw_key); !fresh) {
      return InvalidArgument(fmt::format("request body: '{}' and '{}' name the same setting", it->second, raw_key));
    }
    if (std::find(std::begin(kControlKeys), std::end(kControlKeys), key) != std::end(kControlKeys) ||
        std::find(extra.begin(), extra.end(), key) != extra.end()) {
      continue;
    }
    if (std::find(std::begin(kOutputFlags), std::end(kOutputFlags), key) != std::end(kOutputFlags)) {
      return InvalidArgument(fmt::format(
          "request body: '{}' does not apply to the API (it always answers JSON, in bytes)", raw_key));
    }
    unsigned modes = 0;
    if (key == "gpu") {
      modes = kGpuModes;
      if (modes & bit) {
        if (value.is_array()) {
          for (const auto& g : value) {
            auto t = FlagText(g);
            if (!t) return InvalidArgument("--gpu: a GPU name is null");
            f->gpus.push_back(*t);
          }
        } else if (auto t = FlagText(value)) {
          f->gpus.push_back(*t);
        }
      }
    } else if (key == "runtime") {
      modes = kRuntimeModes;
      if (modes & bit) {
        if (auto t = FlagText(value)) f->runtime = *t;
      }
    } else {
      for (const StrSetting& s : kStrSettings) {
        if (key != s.key) continue;
        modes = s.modes;
        if (modes & bit) f->*(s.field) = FlagText(value);
      }
      for (const BoolSetting& s : kBoolSettings) {
        if (key != s.key) continue;
        modes = s.modes;
        if (!(modes & bit) || value.is_null()) continue;
        if (!value.is_boolean()) {
          return InvalidArgument(fmt::format("--{}: expected true or false, got '{}'", s.key, value.dump()));
        }
        f->*(s.field) = value.get<bool>();
      }
    }
    if (modes == 0) {
      std::vector<std::string> all = SettingKeys("infer");
      for (const std::string& k : SettingKeys("train")) all.push_back(k);
      std::string best;
      size_t bd = 3;
      for (const std::string& k : all) {
        const size_t d = EditDistance(key, k);
        if (d < bd) { bd = d; best = k; }
      }
      return InvalidArgument(fmt::format("request body: unknown setting '{}'{}", raw_key,
                                         best.empty() ? "" : " (did you mean " + best + "?)"));
    }
    if (!(modes & bit)) {
      return InvalidArgument(fmt::format("request body: setting '{}' does not apply to mode {}", raw_key, mode));
    }
  }
  return {};
}

// cli::ToDevices, after checking that the device list stays small enough to
// estimate per device (a "H100-80GBx4096" entry is 4096 devices).
Result<DeviceSet> Devices(const RawFlags& f) {
  size_t n = 0;
  for (const std::string& g : f.gpus) {
    DeviceSet one;
    if (!AddGpus(g, GpuCatalog::Builtin(), &one).ok()) break;  // ToDevices names the error
    n += one.size();
    if (n > kMaxWebDevices) {
      return Unsupported(fmt::format("--gpu: more than {} devices; the web API estimates at most {} "
                                     "(the CLI has no such limit)",
                                     kMaxWebDevices, kMaxWebDevices));
    }
  }
  return cli::ToDevices(f, GpuCatalog::Builtin());
}

}  // namespace

int HttpStatus(const Error& e) {
  switch (e.kind) {
    case ErrorKind::kInvalidArgument:
    case ErrorKind::kCorrupt:
      return 400;
    case ErrorKind::kNotFound:
      return 404;
    case ErrorKind::kUnsupported:
    case ErrorKind::kDoesNotFit:
      return 422;
    case ErrorKind::kNetwork:
      return 502;
    case ErrorKind::kIo:
    case ErrorKind::kInternal:
      return 500;
  }
  return 500;
}

Response ErrorResponse(const Error& e, int status) {
  return {status != 0 ? status : HttpStatus(e), RenderErrorJson(e)};
}

std::vector<std::string> SettingKeys(std::string_view mode) {
  const unsigned bit = ModeBit(mode);
  std::vector<std::string> keys;
  if (kGpuModes & bit) keys.push_back("gpu");
  if (kRuntimeModes & bit) keys.push_back("runtime");
  for (const StrSetting& s : kStrSettings) {
    if (s.modes & bit) keys.push_back(s.key);
  }
  for (const BoolSetting& s : kBoolSettings) {
    if (s.modes & bit) keys.push_back(s.key);
  }
  return keys;
}

namespace {

// The model a request names: {"model": catalog id | alias | "upload:KEY"} or
// {"config": {config.json}}. Never touches the file system.
Result<std::shared_ptr<const Model>> ResolveModel(Api& api, const nlohmann::json& body,
                                                  std::vector<std::string>* notes) {
  const auto m = body.find("model");
  const auto c = body.find("config");
  const bool has_m = m != body.end() && !m->is_null();
  const bool has_c = c != body.end() && !c->is_null();
  if (has_m == has_c) {
    return InvalidArgument(has_m ? "request body: give either model or config, not both"
                                 : "request body: no model (give \"model\": a catalog id, or \"config\": "
                                   "a config.json object)");
  }
  if (has_c) {
    if (!c->is_object()) {
      return InvalidArgument(fmt::format("config: expected a config.json object, got {}", io::Preview(*c)));
    }
    auto spec = ParseHfConfig(c->dump(), "config.json", notes);
    if (!spec.ok()) return spec.error();
    spec->id = "config.json";
    auto model = ModelFromSpec(std::move(spec.value()));
    if (!model.ok()) return model.error();
    return std::make_shared<const Model>(std::move(model.value()));
  }
  if (!m->is_string()) {
    return InvalidArgument(fmt::format("model: expected a catalog id, got {}", io::Preview(*m)));
  }
  const std::string ref = m->get<std::string>();
  if (ref.empty()) return InvalidArgument("model: the model name is empty");
  if (ref.rfind(kUploadPrefix, 0) == 0) {
    if (auto held = api.FindUpload(ref.substr(kUploadPrefix.size()), notes)) return held;
    return NotFound(fmt::format(
        "model '{}': this server does not hold that upload (it keeps the last {} in memory until it "
        "stops); drop the file again",
        ref, kUploadSlots));
  }
  const ModelCatalog& catalog = ModelCatalog::Builtin();
  if (const CatalogModel* entry = catalog.Find(ref)) {
    auto model = ModelFromCatalog(*entry, notes);
    if (!model.ok()) return model.error();
    return std::make_shared<const Model>(std::move(model.value()));
  }
  if (ref.rfind("hf:", 0) == 0) {
    return Unsupported(fmt::format(
        "model '{}': the web calculator fetches nothing from the Hugging Face Hub; paste the model's "
        "config.json or drop its files",
        ref));
  }
  std::vector<std::string> sug = catalog.Suggest(ref);
  return NotFound(fmt::format("model '{}': not in the catalog{}", ref,
                              sug.empty() ? std::string(" (see /api/v1/models)")
                                          : fmt::format(" (did you mean {}?)", fmt::join(sug, ", "))));
}

// One estimate from validated parts: the CLI's RunInfer / RunTrain steps,
// with the planner's extras the CLI adds (the fixes when it does not fit,
// the throughput for inference on GPUs).
struct Estimated {
  vramfit::Estimate estimate;
  EstimateExtras extras;
};
Result<Estimated> EstimateWith(const Model& model, const RawFlags& f, std::string_view mode,
                               const DeviceSet& devices, std::vector<std::string> notes) {
  Estimated out;
  if (mode == "train") {
    auto settings = cli::ToTrainingSettings(f);
    if (!settings.ok()) return settings.error();
    auto w = ResolveTraining(model, *settings, devices, &notes);
    if (!w.ok()) return w.error();
    auto e = EstimateTraining(model, *w, devices);
    if (!e.ok()) return e.error();
    e->model_id = model.spec.id;
    e->notes.insert(e->notes.begin(), notes.begin(), notes.end());
    out.estimate = std::move(e.value());
    if (!devices.empty() && out.estimate.fits && !*out.estimate.fits) {
      Job job;
      job.training = true;
      job.train = *settings;
      out.extras.fixes = SuggestFixes(model, job, devices, out.estimate);
    }
    return out;
  }
  auto settings = cli::ToInferenceSettings(f);
  if (!settings.ok()) return settings.error();
  auto w = ResolveInference(model, *settings, devices, &notes);
  if (!w.ok()) return w.error();
  auto e = EstimateInference(model, *w, devices);
  if (!e.ok()) return e.error();
  e->notes.insert(e->notes.begin(), notes.begin(), notes.end());
  out.estimate = std::move(e.value());
  if (!devices.empty()) {
    out.extras.throughput = EstimateThroughput(model, out.estimate, devices);
    if (out.estimate.fits && !*out.estimate.fits) {
      Job job;
      job.infer = *settings;
      out.extras.fixes = SuggestFixes(model, job, devices, out.estimate);
    }
  }
  return out;
}

// Everything an estimate needs from a body, checked in the CLI's order:
// settings, devices, then the model.
struct Prepared {
  std::string mode;
  RawFlags flags;
  DeviceSet devices;
  std::shared_ptr<const Model> model;
  std::vector<std::string> notes;
};

Result<Prepared> Prepare(Api& api, const nlohmann::json& body, const std::vector<std::string>& extra) {
  Prepared p;
  auto mode = ModeOf(body);
  if (!mode.ok()) return mode.error();
  p.mode = *mode;
  VRAMFIT_TRY(FillFlags(body, p.mode, extra, &p.flags));
  // Settings are validated before devices and the model, as the CLI does.
  if (p.mode == "train") {
    auto s = cli::ToTrainingSettings(p.flags);
    if (!s.ok()) return s.error();
  } else {
    auto s = cli::ToInferenceSettings(p.flags);
    if (!s.ok()) return s.error();
  }
  auto devices = Devices(p.flags);
  if (!devices.ok()) return devices.error();
  p.devices = std::move(devices.value());
  auto model = ResolveModel(api, body, &p.notes);
  if (!model.ok()) return model.error();
  p.model = std::move(model.value());
  return p;
}

// Runs fn, turning an escaped exception (a bug) into a 500 response: one bad
// request must never take the server down.
template <typename Fn>
Response Guard(Fn&& fn) {
  try {
    return fn();
  } catch (const OverflowError& e) {
    return ErrorResponse(Error{ErrorKind::kInternal, fmt::format("estimate: {}", e.what())});
  } catch (const std::exception& e) {
    return ErrorResponse(Error{ErrorKind::kInternal, fmt::format("internal error: {}", e.what())});
  }
}

}  // namespace

Response Api::Estimate(std::string_view body) {
  return Guard([&]() -> Response {
    auto j = ParseBody(body);
    if (!j.ok()) return ErrorResponse(j.error());
    auto p = Prepare(*this, *j, {});
    if (!p.ok()) return ErrorResponse(p.error());
    auto e = EstimateWith(*p->model, p->flags, p->mode, p->devices, p->notes);
    if (!e.ok()) return ErrorResponse(e.error());
    return {200, RenderEstimateJson(e->estimate, e->extras)};
  });
}

Response Api::Series(std::string_view body) {
  return Guard([&]() -> Response {
    auto j = ParseBody(body);
    if (!j.ok()) return ErrorResponse(j.error());
    auto p = Prepare(*this, *j, {"vary", "values"});
    if (!p.ok()) return ErrorResponse(p.error());
    // "vary": which setting the points change.
    const auto vary_it = j->find("vary");
    const std::string vary = vary_it != j->end() && vary_it->is_string() ? vary_it->get<std::string>() : "";
    std::optional<std::string> RawFlags::*field = nullptr;
    if (vary == "batch") field = &RawFlags::batch;
    else if (vary == "ctx" && p->mode == "infer") field = &RawFlags::ctx;
    else if (vary == "seq" && p->mode == "train") field = &RawFlags::seq;
    if (field == nullptr) {
      return ErrorResponse(InvalidArgument(fmt::format(
          "vary: expected {}, got {}", p->mode == "train" ? "batch or seq" : "ctx or batch",
          vary_it == j->end() ? std::string("nothing") : io::Preview(*vary_it))));
    }
    const auto values = j->find("values");
    if (values == j->end() || !values->is_array() || values->empty()) {
      return ErrorResponse(InvalidArgument("values: expected a list of 1 to 64 integers"));
    }
    if (values->size() > kMaxSeriesPoints) {
      return ErrorResponse(InvalidArgument(fmt::format("values: {} points; at most {} per request",
                                                       values->size(), kMaxSeriesPoints)));
    }
    Json out;
    out["schema"] = "vramfit.series/1";
    out["vary"] = vary;
    out["points"] = Json::array();
    for (const auto& v : *values) {
      RawFlags f = p->flags;
      f.*field = FlagText(v).value_or("null");
      if (vary == "ctx") f.prompt.reset(), f.new_tokens.reset();
      Json point;
      point["value"] = v;
      auto e = EstimateWith(*p->model, f, p->mode, p->devices, p->notes);
      if (!e.ok()) {
        point["error"] = {{"kind", ErrorKindName(e.error().kind)}, {"message", e.error().message}};
        out["points"].push_back(point);
        continue;
      }
      point["total_bytes"] = e->estimate.total.value();
      point["fits"] = e->estimate.fits ? Json(*e->estimate.fits) : Json(nullptr);
      point["devices"] = Json::array();
      const DeviceEstimate* largest = nullptr;
      for (const DeviceEstimate& d : e->estimate.devices) {
        point["devices"].push_back({{"name", d.name},
                                    {"total_bytes", d.total.value()},
                                    {"capacity_bytes", d.gpu ? Json(d.gpu->capacity.value()) : Json(nullptr)}});
        if (largest == nullptr || d.total > largest->total) largest = &d;
      }
      point["components"] = Json::array();
      if (largest != nullptr) {
        for (const Component& c : largest->components) {
          point["components"].push_back({{"name", c.name}, {"bytes", c.bytes.value()}});
        }
      }
      out["points"].push_back(point);
    }
    return {200, out.dump(2) + "\n"};
  });
}

Response Api::Fit(std::string_view body) {
  return Guard([&]() -> Response {
    if (!kHavePlanner) {
      return ErrorResponse(Unsupported("fit: the planner is not available in this build yet"), 501);
    }
    auto j = ParseBody(body);
    if (!j.ok()) return ErrorResponse(j.error());
    auto mode = ModeOf(*j);
    if (!mode.ok()) return ErrorResponse(mode.error());
    RawFlags f;
    if (Status st = FillFlags(*j, *mode, {"solve", "sweep"}, &f); !st.ok()) return ErrorResponse(st.error());
    cli::FitFlags fit;
    if (auto it = j->find("solve"); it != j->end()) fit.solve = FlagText(*it);
    if (auto it = j->find("sweep"); it != j->end() && !it->is_null()) {
      size_t cells = 1;
      for (const auto& v : it->is_array() ? *it : nlohmann::json::array({*it})) {
        const std::string spec = FlagText(v).value_or("null");
        cells *= 1 + static_cast<size_t>(std::count(spec.begin(), spec.end(), ','));
        if (cells > kMaxSweepCells) {
          return ErrorResponse(Unsupported(fmt::format(
              "--sweep: more than {} combinations; the web API sweeps at most {} (the CLI 10,000)", kMaxSweepCells,
              kMaxSweepCells)));
        }
        fit.sweep.push_back(spec);
      }
    }
    // "gpu": "all" ranks every GPU kind; anything else is a device list.
    if (!(f.gpus.size() == 1 && f.gpus[0] == "all")) {
      auto devices = Devices(f);
      if (!devices.ok()) return ErrorResponse(devices.error());
    }
    // The planner's frontend (src/cli/fit.cc) takes a model reference; the
    // web gives it catalog ids only, which LoadModel resolves without
    // touching the file system.
    std::vector<std::string> notes;
    auto model = ResolveModel(*this, *j, &notes);
    if (!model.ok()) return ErrorResponse(model.error());
    if (!j->contains("model") || ModelCatalog::Builtin().Find(j->at("model").get<std::string>()) == nullptr) {
      return ErrorResponse(Unsupported("fit: the web API plans for catalog models (give \"model\": a catalog id)"));
    }
    // Training mode with no training flag still plans a training job.
    if (*mode == "train" && !cli::HasTrainingFlags(f)) f.method = "full";
    f.json = true;
    std::ostringstream out, err;
    const int code = cli::RunFitCommand(f, fit, j->at("model").get<std::string>(), Units::kGiB, out, err);
    if (code == 0 || code == 3) return {200, out.str()};  // 3: answered, nothing fits
    const nlohmann::json doc = nlohmann::json::parse(out.str(), nullptr, false);
    const std::string kind = doc.is_object() ? doc["error"].value("kind", "internal") : "internal";
    Error e{ErrorKind::kInternal, err.str()};
    for (ErrorKind k : {ErrorKind::kInvalidArgument, ErrorKind::kNotFound, ErrorKind::kUnsupported,
                        ErrorKind::kCorrupt, ErrorKind::kIo, ErrorKind::kNetwork, ErrorKind::kDoesNotFit}) {
      if (kind == ErrorKindName(k)) e.kind = k;
    }
    return {HttpStatus(e), doc.is_object() ? out.str() : RenderErrorJson(e)};
  });
}

Response Api::Models(std::string_view query) {
  return Guard([&]() -> Response {
    return {200, RenderModelsJson(ModelCatalog::Builtin().Search(query))};
  });
}

Response Api::Gpus(std::string_view query) {
  return Guard([&]() -> Response {
    return {200, RenderGpusJson(GpuCatalog::Builtin().Search(query))};
  });
}

Response Api::InspectGet(std::string_view model) {
  return Guard([&]() -> Response {
    nlohmann::json body = nlohmann::json::object();
    if (!model.empty()) body["model"] = std::string(model);
    std::vector<std::string> notes;
    auto m = ResolveModel(*this, body, &notes);
    if (!m.ok()) return ErrorResponse(m.error());
    return {200, RenderInspectJson(**m, notes)};
  });
}

Response Api::InspectPost(std::string_view body) {
  return Guard([&]() -> Response {
    auto j = ParseBody(body);
    if (!j.ok()) return ErrorResponse(j.error());
    for (const auto& [key, value] : j->items()) {
      if (key != "model" && key != "config") {
        return ErrorResponse(InvalidArgument(fmt::format("request body: unknown key '{}' (inspect takes model or config)", key)));
      }
    }
    std::vector<std::string> notes;
    auto m = ResolveModel(*this, *j, &notes);
    if (!m.ok()) return ErrorResponse(m.error());
    return {200, RenderInspectJson(**m, notes)};
  });
}

Response Api::Upload(std::string_view body) {
  return Guard([&]() -> Response {
    auto j = ParseBody(body);
    if (!j.ok()) return ErrorResponse(j.error());
    auto format = UploadFormatOf(*j);
    if (!format.ok()) return ErrorResponse(format.error());
    // Switch point: a format whose reader this build lacks answers 501.
    if (auto missing = MissingReader(*format)) return ErrorResponse(*missing, 501);
    auto up = ReadUpload(*j);
    if (!up.ok()) return ErrorResponse(up.error());
    const Model& m = *up->model;
    Json out;
    out["schema"] = "vramfit.upload/1";
    out["model"] = std::string(kUploadPrefix) + up->key;
    out["id"] = m.spec.id;
    out["file_format"] = m.file_format;
    out["params"] = m.inventory.params;
    out["tensors"] = m.file_tensors.size();
    out["notes"] = up->notes;
    Hold({up->key, up->model, up->notes});
    return {200, out.dump(2) + "\n"};
  });
}

Response Api::Version() {
  Json j;
  j["schema"] = "vramfit.version/1";
  j["version"] = VRAMFIT_VERSION;
  j["features"] = {{"infer", true},
                   {"train", true},
                   {"fit", kHavePlanner},
                   {"upload_gguf", HaveGgufReader()},
                   {"upload_safetensors", HaveSafetensorsReader()}};
  j["settings"] = {{"infer", SettingKeys("infer")}, {"train", SettingKeys("train")}};
  j["limits"] = {{"body_bytes", kMaxBodyBytes},
                 {"upload_bytes", kMaxUploadBytes},
                 {"upload_files", kMaxUploadFiles},
                 {"uploads_held", kUploadSlots},
                 {"devices", kMaxWebDevices},
                 {"series_points", kMaxSeriesPoints},
                 {"sweep_cells", kMaxSweepCells}};
  return {200, j.dump(2) + "\n"};
}

std::shared_ptr<const Model> Api::FindUpload(std::string_view key, std::vector<std::string>* notes) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = uploads_.begin(); it != uploads_.end(); ++it) {
    if (it->key != key) continue;
    uploads_.splice(uploads_.begin(), uploads_, it);  // most recently used first
    if (notes != nullptr) notes->insert(notes->end(), it->notes.begin(), it->notes.end());
    return it->model;
  }
  return nullptr;
}

void Api::Hold(Held h) {
  std::lock_guard<std::mutex> lock(mu_);
  uploads_.remove_if([&](const Held& x) { return x.key == h.key; });
  uploads_.push_front(std::move(h));
  while (uploads_.size() > kUploadSlots) uploads_.pop_back();
}

}  // namespace vramfit::web
