// The Hugging Face Hub: `hf:ORG/NAME[@REV]` (config.json + safetensors
// headers) and `hf:ORG/NAME[@REV]/FILE.gguf` (a GGUF header), fetched with
// HTTP range requests so that only header bytes cross the network, and kept
// in a local cache for offline use. docs/formats.md §6 describes the URLs,
// the cache layout and every message.
#ifndef VRAMFIT_IO_HUB_H_
#define VRAMFIT_IO_HUB_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "vramfit/error.h"
#include "vramfit/model.h"

namespace vramfit {

struct HubRef {
  std::string repo;               // "org/name"
  std::string revision = "main";  // branch, tag or commit
  std::string file;               // "" or a path in the repository ("x-Q4_K_M.gguf")
  std::string text;               // the reference as given ("hf:org/name@rev")
};

// Parses "hf:ORG/NAME[@REV][/PATH.gguf]". Errors (kInvalidArgument):
//   "model 'hf:x': expected hf:ORG/NAME[@REV] or hf:ORG/NAME[@REV]/FILE.gguf"
Result<HubRef> ParseHubRef(std::string_view ref);

struct HubOptions {
  std::string endpoint = "https://huggingface.co";  // HF_ENDPOINT, no trailing '/'
  std::string token;       // HF_TOKEN, else the token file; "" = anonymous
  std::string cache_dir;   // root of vramfit's header cache; "" = no cache
  bool offline = false;    // HF_HUB_OFFLINE=1: answer from the cache only
  int64_t timeout_s = 10;  // connect timeout, and the stall limit of a transfer
  int retries = 3;         // extra attempts after a transient failure
  int64_t retry_delay_ms = 1000;  // first back-off; doubled per attempt
  // Receives a one-line status ("fetching ... (3/30)") once the load has
  // taken more than progress_after_ms, and "" when the load ends. Null: silent.
  std::function<void(const std::string&)> progress;
  int64_t progress_after_ms = 1000;
};

// Options from the environment: HF_ENDPOINT; HF_TOKEN (then
// HUGGING_FACE_HUB_TOKEN, then the file HF_TOKEN_PATH or $HF_HOME/token);
// HF_HOME (default $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface),
// cache in $HF_HOME/vramfit; HF_HUB_OFFLINE; HF_HUB_DOWNLOAD_TIMEOUT
// (seconds). Progress goes to stderr. Proxies: libcurl reads http_proxy,
// https_proxy, all_proxy and no_proxy itself.
HubOptions HubOptionsFromEnv();

// Loads a model from the Hub (or, offline, from the cache). Errors are one
// line naming the reference: "hf:org/name: repository not found (HTTP 404)".
Result<Model> LoadHubModel(std::string_view ref, const HubOptions& options,
                           std::vector<std::string>* notes);

}  // namespace vramfit

#endif  // VRAMFIT_IO_HUB_H_
