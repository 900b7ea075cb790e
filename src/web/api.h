// The JSON API behind `vramfit serve` (docs/web.md), without the HTTP
// transport: every endpoint is a method that takes the request's query or
// body and returns a status and a JSON document, so tests and the server
// share one code path.
//
// Request bodies use the CLI's flag names without the leading dashes
// ({"model": "meta-llama/Llama-3.1-8B", "gpu": ["RTX-4090"], "ctx": 8192,
// "kv-dtype": "fp8"}; upstream aliases too); they become an app::Request and
// are parsed and checked by the settings table the CLI uses, so every message
// is the one the CLI prints.
// Responses are the CLI's --json documents; errors are vramfit.error/1 with a
// 4xx status (400 bad input, 404 unknown model/GPU/endpoint, 413 too large,
// 422 valid but not modelled, 501 not in this build).
//
// Nothing here reads or writes files: a model is a catalog id, a pasted
// config.json, or checkpoint headers uploaded to /api/v1/upload and held in
// memory (a small LRU) under an "upload:<key>" id.
#ifndef VRAMFIT_SRC_WEB_API_H_
#define VRAMFIT_SRC_WEB_API_H_

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vramfit/error.h"
#include "vramfit/model.h"

namespace vramfit::web {

// Limits (docs/web.md "Limits").
constexpr size_t kMaxBodyBytes = size_t{1} << 20;         // every POST but /upload
constexpr size_t kMaxUploadBytes = size_t{32} << 20;      // POST /api/v1/upload
constexpr size_t kMaxUploadFiles = 64;                    // files in one upload
constexpr size_t kUploadSlots = 8;                        // uploaded models held (LRU)
constexpr size_t kMaxWebDevices = 256;                    // devices one estimate may list
constexpr size_t kMaxSeriesPoints = 64;                   // points in one /series request
constexpr size_t kMaxSweepCells = 1024;                   // estimates in one /fit sweep

struct Response {
  int status = 200;
  std::string body;  // a JSON document, newline-terminated
  std::string content_type = "application/json";
};

// The status for an error from the library (the table above).
int HttpStatus(const Error& e);

// A vramfit.error/1 response with the status HttpStatus picks, or `status`.
Response ErrorResponse(const Error& e, int status = 0);

// The setting keys the API accepts for a mode ("infer" or "train"), with the
// leading dashes of their CLI flags removed: "batch", "kv-dtype", ...
std::vector<std::string> SettingKeys(std::string_view mode);

class Api {
 public:
  Api() = default;

  // POST /api/v1/estimate: body {"mode": "infer"|"train", model source,
  // settings...} -> vramfit.estimate/1.
  Response Estimate(std::string_view body);

  // POST /api/v1/series: the estimate body plus {"vary": "ctx"|"batch"|"seq",
  // "values": [n, ...]} -> vramfit.series/1, one point per value (the
  // device totals and top-level components of the estimate at that value,
  // or that value's error).
  Response Series(std::string_view body);

  // POST /api/v1/fit: the planner, as `vramfit fit --json`: the estimate
  // body plus {"solve": "max-context"|"max-batch"|"min-gpus"|"best-quant"|
  // "best-method"} or {"sweep": ["ctx=4096,8192", ...]}; "gpu": "all" ranks
  // every GPU kind. Catalog models only.
  Response Fit(std::string_view body);

  // GET /api/v1/models?q= and /api/v1/gpus?q=: the catalogs, as
  // `vramfit models --json` / `vramfit gpus --json`.
  Response Models(std::string_view query);
  Response Gpus(std::string_view query);

  // GET /api/v1/inspect?model=ID, or POST with a model source in the body
  // ({"config": {...}} or {"model": "upload:..."}) -> vramfit.inspect/1.
  Response InspectGet(std::string_view model);
  Response InspectPost(std::string_view body);

  // POST /api/v1/upload: {"files": [{"name", "size", "header": base64}],
  // "config": {...}?, "index": {...}?} -> vramfit.upload/1 with the
  // "upload:<key>" id to use as "model" in the other requests.
  Response Upload(std::string_view body);

  // GET /api/v1/version: the version and which optional features this build
  // has (the page greys out the rest).
  Response Version();

 private:
  struct Held {
    std::string key;
    std::shared_ptr<const Model> model;
    std::vector<std::string> notes;
  };
  // Uploaded models, most recently used first; at most kUploadSlots.
  std::mutex mu_;
  std::list<Held> uploads_;

 public:
  // Looks up an upload by key; nullptr (and no notes) when not held.
  std::shared_ptr<const Model> FindUpload(std::string_view key, std::vector<std::string>* notes);
  void Hold(Held h);
};

}  // namespace vramfit::web

#endif  // VRAMFIT_SRC_WEB_API_H_
