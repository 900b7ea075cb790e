// The JSON API of `vramfit serve`: request bodies -> app::Request (the
// settings table) -> the application layer the CLI calls too -> the JSON
// renderers the CLI uses.
#include "api.h"

#include <algorithm>
#include <exception>
#include <new>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "vramfit/io/json_util.h"
#include "vramfit/app/app.h"
#include "vramfit/app/settings.h"
#include "vramfit/catalog.h"
#include "vramfit/estimate.h"
#include "vramfit/io/hf_config.h"
#include "vramfit/inspect.h"
#include "vramfit/io/source.h"
#include "vramfit/plan.h"
#include "vramfit/render.h"
#include "vramfit/training.h"
#include "upload.h"

#ifndef VRAMFIT_VERSION
#define VRAMFIT_VERSION "0.0.0"
#endif

namespace vramfit::web {

using Json = nlohmann::ordered_json;

// ---------------------------------------------------------------------------
// Switch points for features other issues build in parallel (docs/web.md
// "Switch points"): the planner is wired (below, Api::Fit); checkpoint
// uploads follow the readers vramfit_io compiles (web/upload.h).
constexpr bool kHavePlanner = true;
// ---------------------------------------------------------------------------

namespace {

// Keys every request may carry besides the settings.
const char* const kControlKeys[] = {"mode", "model", "config"};

// The command whose settings a mode takes.
app::Command CommandOf(std::string_view mode) { return mode == "train" ? app::kCmdTrain : app::kCmdInfer; }

// A JSON value as the text the CLI would have received for the flag:
// strings as they are, numbers as written, anything else as JSON (so the
// validators reject it with their own message). nullopt for null.
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

// One body key's value(s) into the request.
Status AddValue(const std::string& key, const std::string& raw_key, const nlohmann::json& value,
                unsigned commands, app::Request* r) {
  if (value.is_null()) return {};
  const app::Setting* s = app::FindSetting(key);
  if (s != nullptr && (s->scope & app::kOutput)) {
    return InvalidArgument(fmt::format(
        "request body: '{}' does not apply to the API (it always answers JSON, in bytes)", raw_key));
  }
  if (s != nullptr && s->is_switch()) {
    if (!value.is_boolean()) {
      return InvalidArgument(fmt::format("--{}: expected true or false, got '{}'", s->name, value.dump()));
    }
    r->AddGiven(s, value.get<bool>() ? "true" : "false", "--" + std::string(s->name));
    return {};
  }
  if (s != nullptr && s->repeatable && value.is_array()) {
    for (const auto& v : value) {
      auto t = FlagText(v);
      if (!t) return InvalidArgument(fmt::format("--{}: a {} is null", s->name, s->name == "gpu" ? "GPU name" : "value"));
      r->AddGiven(s, *t, "--" + std::string(s->name));
    }
    return {};
  }
  Status st = r->Add(key, FlagText(value).value_or(""), commands);
  if (!st.ok()) return InvalidArgument("request body: " + st.error().message);
  return {};
}

// The body's settings as a request. `extra` lists further keys the endpoint
// reads itself (series: "vary", "values").
Status FillRequest(const nlohmann::json& body, unsigned commands, const std::vector<std::string>& extra,
                   app::Request* r) {
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
    VRAMFIT_TRY(AddValue(key, raw_key, value, commands, r));
  }
  return {};
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
  std::vector<std::string> keys;
  for (const app::Setting& st : app::Settings()) {
    if (app::ShownFor(st, CommandOf(mode)) && !(st.scope & app::kOutput)) keys.emplace_back(st.name);
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

// Everything an estimate needs from a body, checked in the CLI's order:
// settings, devices, then the model.
struct Prepared {
  std::string mode;
  app::Request request;
  Job job;
  DeviceSet devices;
  std::shared_ptr<const Model> model;
  std::vector<std::string> notes;
};

Result<Prepared> Prepare(Api& api, const nlohmann::json& body, const std::vector<std::string>& extra) {
  Prepared p;
  auto mode = ModeOf(body);
  if (!mode.ok()) return mode.error();
  p.mode = *mode;
  VRAMFIT_TRY(FillRequest(body, CommandOf(p.mode), extra, &p.request));
  auto req = app::BuildJob(p.request, CommandOf(p.mode));
  if (!req.ok()) return req.error();
  p.job = std::move(req->job);
  auto devices = app::ToDevices(*req, GpuCatalog::Builtin(), kMaxWebDevices);
  if (!devices.ok()) return devices.error();
  p.devices = std::move(devices.value());
  auto model = ResolveModel(api, body, &p.notes);
  if (!model.ok()) return model.error();
  p.model = std::move(model.value());
  return p;
}

// Runs fn, turning an escaped exception into a 4xx response with its
// message: one bad request must never take the server down, and what the
// library could not process is the request's problem to report (an overflow
// from its settings: 400; anything else, memory exhausted by a hostile input
// a check missed included: 422), never a 500.
template <typename Fn>
Response Guard(Fn&& fn) {
  try {
    return fn();
  } catch (const OverflowError& e) {
    return ErrorResponse(InvalidArgument(fmt::format("estimate: the settings overflow 64-bit byte counts ({})", e.what())));
  } catch (const std::bad_alloc&) {
    return ErrorResponse(Unsupported("request: the input needs more memory than this server gives a request"));
  } catch (const std::exception& e) {
    return ErrorResponse(Unsupported(fmt::format("request: could not be processed ({})", e.what())));
  }
}

}  // namespace

Response Api::Estimate(std::string_view body) {
  return Guard([&]() -> Response {
    auto j = ParseBody(body);
    if (!j.ok()) return ErrorResponse(j.error());
    auto p = Prepare(*this, *j, {});
    if (!p.ok()) return ErrorResponse(p.error());
    auto e = app::EstimateWithExtras(*p->model, p->job, p->devices, p->notes);
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
    const bool varies = vary == "batch" || (vary == "ctx" && p->mode == "infer") ||
                        (vary == "seq" && p->mode == "train");
    if (!varies) {
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
      app::Request r = p->request;
      r.Clear(vary);
      if (vary == "ctx") r.Clear("prompt"), r.Clear("new");
      r.AddGiven(app::FindSetting(vary), FlagText(v).value_or("null"), "--" + vary);
      Json point;
      point["value"] = v;
      Result<app::EstimateResult> e = Error{};
      if (auto job = app::BuildJob(r, CommandOf(p->mode)); job.ok()) {
        e = app::EstimateWithExtras(*p->model, job->job, p->devices, p->notes);
      } else {
        e = job.error();
      }
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
    app::Request r;
    if (Status st = FillRequest(*j, app::kCmdFit, {}, &r); !st.ok()) return ErrorResponse(st.error());
    size_t cells = 1;
    for (const app::Given& g : r.given()) {
      if (g.setting->name != "sweep") continue;
      cells *= 1 + static_cast<size_t>(std::count(g.value.begin(), g.value.end(), ','));
      if (cells > kMaxSweepCells) {
        return ErrorResponse(Unsupported(fmt::format(
            "--sweep: more than {} combinations; the web API sweeps at most {} (the CLI 10,000)", kMaxSweepCells,
            kMaxSweepCells)));
      }
    }
    const bool training = *mode == "train";
    auto req = app::BuildJob(r, app::kCmdFit, training);
    if (!req.ok()) return ErrorResponse(req.error());
    // "gpu": "all" ranks every GPU kind; anything else is a device list.
    if (!(req->gpus.size() == 1 && req->gpus[0] == "all")) {
      auto devices = app::ToDevices(*req, GpuCatalog::Builtin(), kMaxWebDevices);
      if (!devices.ok()) return ErrorResponse(devices.error());
    }
    std::vector<std::string> notes;
    auto model = ResolveModel(*this, *j, &notes);
    if (!model.ok()) return ErrorResponse(model.error());
    if (!j->contains("model") || !j->at("model").is_string() ||
        ModelCatalog::Builtin().Find(j->at("model").get<std::string>()) == nullptr) {
      return ErrorResponse(Unsupported("fit: the web API plans for catalog models (give \"model\": a catalog id)"));
    }
    auto fit = app::Fit(**model, r, kMaxSweepCells, training);
    if (!fit.ok()) return ErrorResponse(fit.error());
    switch (fit->kind) {
      case app::FitResult::Kind::kSweep: return {200, RenderSweepJson(fit->sweep)};
      case app::FitResult::Kind::kRanking: return {200, RenderGpuRankJson(fit->ranking)};
      case app::FitResult::Kind::kAnswer: return {200, RenderFitJson(*fit->answer)};
    }
    return ErrorResponse(Error{ErrorKind::kInternal, "fit: no answer"});
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
    return {200, RenderInspectJson(Inspect(**m, std::move(notes)))};
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
    return {200, RenderInspectJson(Inspect(**m, std::move(notes)))};
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
