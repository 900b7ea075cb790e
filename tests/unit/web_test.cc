// `vramfit serve`: the JSON API (web::Api, no sockets) and the HTTP server
// (web::Server on 127.0.0.1, a free port, in-process).
//
// The reference for every response is the CLI: the same request must give
// the CLI's --json document byte for byte, and the same messages. Numbers
// checked by hand cite where they come from.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <sstream>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "web/api.h"
#include "web/server.h"
#include "web/upload.h"
#include "vramfit/catalog.h"

namespace vramfit {
namespace {

using nlohmann::json;

std::string CliOut(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  cli::Run(args, out, err);
  return out.str();
}

std::string Message(const web::Response& r) {
  const json j = json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("error")) return "(not an error document: " + r.body.substr(0, 80) + ")";
  return j["error"]["message"].get<std::string>();
}

// ---- The API, without HTTP --------------------------------------------------

TEST(WebApiTest, EstimateIsTheCliJsonDocument) {
  web::Api api;
  const struct {
    std::string body;
    std::vector<std::string> cli;
  } cases[] = {
      {R"({"model": "meta-llama/Llama-3.1-8B", "gpu": ["RTX-4090"], "ctx": 8192})",
       {"infer", "meta-llama/Llama-3.1-8B", "--gpu", "RTX-4090", "--ctx", "8192", "--json"}},
      // A single GPU as a string, numbers as strings, underscores for dashes.
      {R"({"model": "llama-3.1-8b", "gpu": "A100-80GBx2", "batch": "4", "kv_dtype": "fp8", "attn": "eager"})",
       {"infer", "llama-3.1-8b", "--gpu", "A100-80GBx2", "--batch", "4", "--kv-dtype", "fp8", "--attn", "eager",
        "--json"}},
      {R"({"model": "Qwen/Qwen3-30B-A3B", "gpu": ["H100-80GB"], "prompt": 1024, "new": 1024, "batch": 8})",
       {"infer", "Qwen/Qwen3-30B-A3B", "--gpu", "H100-80GB", "--prompt", "1024", "--new", "1024", "--batch", "8",
        "--json"}},
      {R"({"model": "meta-llama/Llama-3.1-8B", "quant": "nf4-dq", "gpu": ["T4"]})",
       {"infer", "meta-llama/Llama-3.1-8B", "--quant", "nf4-dq", "--gpu", "T4", "--json"}},
      // Training routes to the training estimator, as `vramfit train`.
      {R"({"mode": "train", "model": "meta-llama/Llama-3.1-8B", "gpu": "H100-80GB", "method": "qlora", "seq": 1024})",
       {"train", "meta-llama/Llama-3.1-8B", "--gpu", "H100-80GB", "--method", "qlora", "--seq", "1024", "--json"}},
      {R"({"mode": "train", "model": "meta-llama/Llama-3.1-8B", "gpu": "H100-80GBx8", "zero": 3, "grad-ckpt": "full"})",
       {"train", "meta-llama/Llama-3.1-8B", "--gpu", "H100-80GBx8", "--zero", "3", "--grad-ckpt", "full", "--json"}},
  };
  for (const auto& c : cases) {
    const web::Response r = api.Estimate(c.body);
    EXPECT_EQ(r.status, 200) << c.body << "\n" << r.body;
    EXPECT_EQ(r.body, CliOut(c.cli)) << c.body;
  }
}

TEST(WebApiTest, EstimateNumbers) {
  // Llama-3.1-8B in bf16: 8,030,261,248 parameters (Meta's model card; the
  // safetensors index total_size is 16,060,522,496 = 2 B each), KV per
  // token = 32 layers x 8 KV heads x 128 head_dim x 2 (K, V) x 2 B = 131072.
  web::Api api;
  const web::Response r = api.Estimate(R"({"model": "meta-llama/Llama-3.1-8B", "gpu": ["RTX-4090"]})");
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  EXPECT_EQ(j["schema"], "vramfit.estimate/1");
  EXPECT_EQ(j["model"]["params"], 8030261248);
  EXPECT_EQ(j["model"]["weight_bytes"], 16060522496);
  EXPECT_EQ(j["model"]["kv_bytes_per_token"], 131072);
  // RTX 4090: 24564 MiB as nvidia-smi reports it (data/gpus.json).
  EXPECT_EQ(j["devices"][0]["capacity_bytes"], int64_t{24564} * 1024 * 1024);
  // The device total is the sum of its components (DESIGN.md).
  int64_t sum = 0;
  for (const auto& c : j["devices"][0]["components"]) sum += c["bytes"].get<int64_t>();
  EXPECT_EQ(j["devices"][0]["total_bytes"], sum);
}

TEST(WebApiTest, ExactErrors) {
  web::Api api;
  std::string deep(100, '[');
  deep += std::string(100, ']');
  const struct {
    std::string body;
    int status;
    std::string message;  // exact; a trailing '*' matches a prefix
  } cases[] = {
      {"", 400, "request body: empty (expected a JSON object)"},
      {"[1,2]", 400, "request body: expected a JSON object, got [1,2]"},
      {R"({"model":)", 400,
       "request body: malformed JSON at byte 10: parse error at line 1, column 10: syntax error while parsing value - "
       "unexpected end of input; expected '[', '{', or a literal"},
      {deep, 400, "request body: JSON nested deeper than 64 levels at byte 64"},
      {"{}", 400, R"(request body: no model (give "model": a catalog id, or "config": a config.json object))"},
      {R"({"model": "llama-3.1-8b", "config": {"model_type": "llama"}})", 400,
       "request body: give either model or config, not both"},
      {R"({"model": 5})", 400, "model: expected a catalog id, got 5"},
      {R"({"model": ""})", 400, "model: the model name is empty"},
      {R"({"model": "meta-llama/Llama-3.1-9B"})", 404,
       "model 'meta-llama/Llama-3.1-9B': not in the catalog (did you mean meta-llama/Llama-3.1-8B, "
       "meta-llama/Llama-3.1-70B, meta-llama/Llama-3.2-1B?)"},
      // A path is never opened: requests have no file system access.
      {R"({"model": "/etc/passwd"})", 404, "model '/etc/passwd': not in the catalog*"},
      {R"({"model": "hf:meta-llama/Llama-3.1-8B"})", 422,
       "model 'hf:meta-llama/Llama-3.1-8B': the web calculator fetches nothing from the Hugging Face Hub; paste "
       "the model's config.json or drop its files"},
      {R"({"model": "upload:0123456789abcdef"})", 404,
       "model 'upload:0123456789abcdef': this server does not hold that upload (it keeps the last 8 in memory "
       "until it stops); drop the file again"},
      {R"({"model": "llama-3.1-8b", "gpu": "RTX-4099"})", 404,
       "--gpu: unknown GPU 'RTX-4099' (did you mean RTX-4090*"},
      {R"({"model": "llama-3.1-8b", "gpu": ["H100-80GBx200", "H100-80GBx100"]})", 422,
       "--gpu: more than 256 devices; the web API estimates at most 256 (the CLI has no such limit)"},
      {R"({"model": "llama-3.1-8b", "gpu": [null]})", 400, "--gpu: a GPU name is null"},
      {R"({"model": "llama-3.1-8b", "bach": 2})", 400, "request body: unknown setting 'bach' (did you mean batch?)"},
      {R"({"model": "llama-3.1-8b", "frobnicate": 2})", 400, "request body: unknown setting 'frobnicate'"},
      {R"({"model": "llama-3.1-8b", "seq": 2048})", 400, "--seq: applies to training (vramfit train), not inference"},
      {R"({"mode": "train", "model": "llama-3.1-8b", "ctx": 2048})", 400,
       "--ctx: applies to inference, not training (--seq sets the tokens per sample)"},
      {R"({"model": "llama-3.1-8b", "mode": "pretrain"})", 400, R"(mode: expected infer or train, got "pretrain")"},
      {R"({"model": "llama-3.1-8b", "json": true})", 400,
       "request body: 'json' does not apply to the API (it always answers JSON, in bytes)"},
      {R"({"model": "llama-3.1-8b", "kv_dtype": "fp8", "kv-dtype": "fp8"})", 400,
       "request body: 'kv-dtype' and 'kv_dtype' name the same setting"},
      // Values go through the CLI's validators, so the messages are the CLI's.
      {R"({"model": "llama-3.1-8b", "batch": "two"})", 400, "--batch: expected an integer, got 'two'"},
      {R"({"model": "llama-3.1-8b", "batch": 0})", 400, "--batch: must be a positive integer, got 0"},
      {R"({"model": "llama-3.1-8b", "ctx": true})", 400, "--ctx: expected an integer, got 'true'"},
      {R"({"model": "llama-3.1-8b", "ctx": 1.5})", 400, "--ctx: expected an integer, got '1.5'"},
      {R"({"model": "llama-3.1-8b", "ctx": 99999999999999999999})", 400, "--ctx: expected an integer, got '1e+20'"},
      {R"({"model": "llama-3.1-8b", "ctx": 100000000})", 400, "--ctx: 100000000 is out of range (1..67108864)"},
      {R"({"model": "llama-3.1-8b", "quant": "int3"})", 400, "--quant: unknown format 'int3'*"},
      {R"({"model": "llama-3.1-8b", "enforce-eager": "yes"})", 400,
       R"(--enforce-eager: expected true or false, got '"yes"')"},
      {R"({"config": 5})", 400, "config: expected a config.json object, got 5"},
      {R"({"config": {"model_type": "llama"}})", 400, "config.json: required key 'hidden_size' is missing"},
  };
  for (const auto& c : cases) {
    const web::Response r = api.Estimate(c.body);
    EXPECT_EQ(r.status, c.status) << c.body << "\n" << r.body;
    const std::string got = Message(r);
    if (!c.message.empty() && c.message.back() == '*') {
      const std::string prefix = c.message.substr(0, c.message.size() - 1);
      EXPECT_EQ(got.substr(0, prefix.size()), prefix) << c.body;
    } else {
      EXPECT_EQ(got, c.message) << c.body;
    }
    EXPECT_EQ(json::parse(r.body)["schema"], "vramfit.error/1");
  }
}

TEST(WebApiTest, ErrorsAreTheCliErrorDocuments) {
  // The same bad setting gives the CLI's vramfit.error/1 document.
  web::Api api;
  EXPECT_EQ(api.Estimate(R"({"model": "meta-llama/Llama-3.1-8B", "batch": "two"})").body,
            CliOut({"infer", "meta-llama/Llama-3.1-8B", "--batch", "two", "--json"}));
  EXPECT_EQ(api.Estimate(R"({"model": "meta-llama/Llama-3.1-8B", "gpu": ["RTX-4099"]})").body,
            CliOut({"infer", "meta-llama/Llama-3.1-8B", "--gpu", "RTX-4099", "--json"}));
  EXPECT_EQ(api.Estimate(R"({"mode": "train", "model": "meta-llama/Llama-3.1-8B", "method": "dora"})").body,
            CliOut({"train", "meta-llama/Llama-3.1-8B", "--method", "dora", "--json"}));
}

TEST(WebApiTest, PastedConfig) {
  // A config.json pasted in the page estimates like the catalog entry it
  // came from (the catalog holds the real config.json text).
  web::Api api;
  const CatalogModel* entry = ModelCatalog::Builtin().Find("meta-llama/Llama-3.1-8B");
  ASSERT_NE(entry, nullptr);
  json body = {{"config", json::parse(entry->config_json)}, {"gpu", "RTX-4090"}};
  const web::Response r = api.Estimate(body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  EXPECT_EQ(j["model"]["id"], "config.json");
  EXPECT_EQ(j["model"]["weight_bytes"], 16060522496);  // as above: 8,030,261,248 x 2 B
  const json catalog = json::parse(api.Estimate(R"({"model": "meta-llama/Llama-3.1-8B", "gpu": "RTX-4090"})").body);
  EXPECT_EQ(j["total_bytes"], catalog["total_bytes"]);
}

TEST(WebApiTest, SeriesPointsAreEstimates) {
  web::Api api;
  const web::Response r = api.Series(
      R"({"model": "meta-llama/Llama-3.1-8B", "gpu": ["RTX-4090"], "vary": "ctx", "values": [1024, 8192, 0, 131072]})");
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  EXPECT_EQ(j["schema"], "vramfit.series/1");
  ASSERT_EQ(j["points"].size(), 4u);
  for (int i : {0, 1, 3}) {
    const json& p = j["points"][i];
    const json e = json::parse(api.Estimate(json({{"model", "meta-llama/Llama-3.1-8B"},
                                                  {"gpu", {"RTX-4090"}},
                                                  {"ctx", p["value"]}})
                                                .dump())
                                   .body);
    EXPECT_EQ(p["total_bytes"], e["total_bytes"]) << p["value"];
    EXPECT_EQ(p["fits"], e["fits"]);
    EXPECT_EQ(p["devices"][0]["capacity_bytes"], e["devices"][0]["capacity_bytes"]);
    ASSERT_EQ(p["components"].size(), e["devices"][0]["components"].size());
    EXPECT_EQ(p["components"][1]["name"], "kv_cache");
    EXPECT_EQ(p["components"][1]["bytes"], e["devices"][0]["components"][1]["bytes"]);
  }
  // The KV cache grows linearly: 131072 B per token (see EstimateNumbers).
  EXPECT_EQ(j["points"][1]["components"][1]["bytes"].get<int64_t>() -
                j["points"][0]["components"][1]["bytes"].get<int64_t>(),
            int64_t{131072} * (8192 - 1024));
  // 128K tokens of KV alone (16 GiB) plus 15 GiB of weights: not on a 24 GiB card.
  EXPECT_EQ(j["points"][3]["fits"], false);
  // A bad point reports its own error; the others stand.
  EXPECT_EQ(j["points"][2]["error"]["message"], "--ctx: must be a positive integer, got 0");

  std::string many = "[1";
  for (int i = 0; i < 64; ++i) many += ",1";
  many += "]";  // 65 values
  const struct { std::string body; std::string message; } bad[] = {
      {R"({"model": "llama-3.1-8b", "vary": "seq", "values": [1]})", R"(vary: expected ctx or batch, got "seq")"},
      {R"({"model": "llama-3.1-8b", "values": [1]})", "vary: expected ctx or batch, got nothing"},
      {R"({"mode": "train", "model": "llama-3.1-8b", "vary": "ctx", "values": [1]})",
       R"(vary: expected batch or seq, got "ctx")"},
      {R"({"model": "llama-3.1-8b", "vary": "ctx", "values": []})", "values: expected a list of 1 to 64 integers"},
      {R"({"model": "llama-3.1-8b", "vary": "ctx", "values": 5})", "values: expected a list of 1 to 64 integers"},
      {R"({"model": "llama-3.1-8b", "vary": "ctx", "values": )" + many + "}",
       "values: 65 points; at most 64 per request"},
  };
  for (const auto& b : bad) {
    const web::Response e = api.Series(b.body);
    EXPECT_EQ(e.status, 400) << b.body;
    EXPECT_EQ(Message(e), b.message) << b.body;
  }
}

TEST(WebApiTest, FitIsTheCliJsonDocument) {
  // POST /api/v1/fit runs the CLI's own planner frontend (src/cli/fit.cc,
  // docs/web.md "Switch points"): the answer is what `vramfit fit ... --json`
  // prints, byte for byte, for every question and for the GPU ranking.
  web::Api api;
  const struct {
    std::string body;
    std::vector<std::string> cli;
  } cases[] = {
      {R"({"model": "meta-llama/Llama-3.1-8B", "gpu": "RTX-4090", "solve": "max-context"})",
       {"fit", "meta-llama/Llama-3.1-8B", "--gpu", "RTX-4090", "--solve", "max-context", "--json"}},
      {R"({"model": "meta-llama/Llama-3.1-8B", "gpu": ["L4"], "ctx": 4096, "solve": "max-batch"})",
       {"fit", "meta-llama/Llama-3.1-8B", "--gpu", "L4", "--ctx", "4096", "--solve", "max-batch", "--json"}},
      {R"({"model": "meta-llama/Llama-3.1-70B", "gpu": "A100-80GB", "solve": "min-gpus"})",
       {"fit", "meta-llama/Llama-3.1-70B", "--gpu", "A100-80GB", "--solve", "min-gpus", "--json"}},
      {R"({"model": "meta-llama/Llama-3.1-70B", "gpu": "RTX-4090", "solve": "best-quant"})",
       {"fit", "meta-llama/Llama-3.1-70B", "--gpu", "RTX-4090", "--solve", "best-quant", "--json"}},
      {R"({"mode": "train", "model": "llama-3.1-8b", "gpu": "RTX-4090", "solve": "best-method"})",
       {"fit", "llama-3.1-8b", "--gpu", "RTX-4090", "--solve", "best-method", "--method", "full", "--json"}},
      {R"({"model": "Qwen/Qwen3-8B", "gpu": "L4", "sweep": ["ctx=4096,32768", "batch=1,8"]})",
       {"fit", "Qwen/Qwen3-8B", "--gpu", "L4", "--sweep", "ctx=4096,32768", "--sweep", "batch=1,8", "--json"}},
      {R"({"model": "meta-llama/Llama-3.1-8B", "gpu": "all", "ctx": 8192})",
       {"fit", "meta-llama/Llama-3.1-8B", "--gpu", "all", "--ctx", "8192", "--json"}},
  };
  for (const auto& c : cases) {
    const web::Response r = api.Fit(c.body);
    EXPECT_EQ(r.status, 200) << c.body << "\n" << r.body;
    EXPECT_EQ(r.body, CliOut(c.cli)) << c.body;
  }
}

TEST(WebApiTest, FitAnswers) {
  web::Api api;
  // Llama-3.1-70B in bf16 is 70.6e9 params x 2 B = 141 GB of weights
  // (config.json of meta-llama/Llama-3.1-70B): more than one 80 GB A100,
  // so the fewest A100-80GB is at least 2 (docs/planning.md, min-gpus).
  const json gpus = json::parse(api.Fit(R"({"model": "meta-llama/Llama-3.1-70B", "gpu": "A100-80GB",
                                            "solve": "min-gpus"})").body);
  EXPECT_EQ(gpus["schema"], "vramfit.fit/1");
  EXPECT_EQ(gpus["solve"], "min-gpus");
  ASSERT_TRUE(gpus["answer"]["value"].is_number_integer()) << gpus.dump();
  EXPECT_GE(gpus["answer"]["value"].get<int>(), 2);
  // The answer's estimate fits; it is the CLI's estimate document.
  EXPECT_EQ(gpus["estimate"]["schema"], "vramfit.estimate/1");
  EXPECT_EQ(gpus["estimate"]["fits"], true);
  // The longest context of Llama-3.1-8B on a 24 GB RTX 4090 is below its
  // 131,072-token max_position_embeddings (16 GB of bf16 weights leave
  // ~6 GB for a 128 KiB-per-token KV cache: 32 layers x 8 KV heads x 128 x
  // 2 (K,V) x 2 B = 131,072 B/token), and more than the 4,096 default.
  const json ctx = json::parse(api.Fit(R"({"model": "meta-llama/Llama-3.1-8B", "gpu": "RTX-4090",
                                           "solve": "max-context"})").body);
  ASSERT_TRUE(ctx["answer"]["value"].is_number_integer()) << ctx.dump();
  EXPECT_GT(ctx["answer"]["value"].get<int64_t>(), 4096);
  EXPECT_LT(ctx["answer"]["value"].get<int64_t>(), 131072);
}

TEST(WebApiTest, FitErrors) {
  web::Api api;
  const struct {
    std::string body;
    int status;
    std::string message;  // exact; a trailing '*' matches a prefix
  } cases[] = {
      // Malformed bodies.
      {"", 400, "request body: empty (expected a JSON object)"},
      {"{", 400,
       "request body: malformed JSON at byte 2: parse error at line 1, column 2: syntax error while parsing object "
       "key - unexpected end of input; expected string literal"},
      {"[1,2]", 400, "request body: expected a JSON object, got [1,2]"},
      {R"({"model": "llama-3.1-8b", "gpu": "RTX-4090", "solve": "max-context", "bach": 2})", 400,
       "request body: unknown setting 'bach' (did you mean batch?)"},
      {R"({"model": "llama-3.1-8b", "gpu": "RTX-4090", "solve": "max-context", "ctx": "long"})", 400,
       "--ctx: expected an integer, got 'long'"},
      // Unknown or missing questions: the planner's own messages
      // (src/core/plan.cc ParseSolve, src/cli/fit.cc).
      {R"({"model": "llama-3.1-8b", "gpu": "RTX-4090", "solve": "max-speed"})", 400,
       "--solve: unknown question 'max-speed' (expected max-batch, max-context, min-gpus, best-quant or "
       "best-method)"},
      {R"({"model": "llama-3.1-8b", "gpu": "RTX-4090"})", 400,
       "fit: give --solve max-batch|max-context|min-gpus|best-quant|best-method, --sweep KEY=V1,V2,..., or --gpu "
       "all"},
      {R"({"model": "llama-3.1-8b", "gpu": "RTX-4090", "solve": "max-batch", "sweep": ["ctx=1024,2048"]})", 400,
       "--sweep: give either --sweep or --solve, not both"},
      // 32 x 33 = 1,056 cells: over the web's 1,024 (web/api.h kMaxSweepCells).
      {R"({"model": "llama-3.1-8b", "gpu": "RTX-4090", "sweep": ["ctx=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32", "batch=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33"]})",
       422, "--sweep: more than 1024 combinations; the web API sweeps at most 1024 (the CLI 10,000)"},
      // Unknown model and GPU: 404, the CLI's messages.
      {R"({"model": "meta-llama/Llama-3.1-9B", "gpu": "RTX-4090", "solve": "max-context"})", 404,
       "model 'meta-llama/Llama-3.1-9B': not in the catalog (did you mean meta-llama/Llama-3.1-8B, "
       "meta-llama/Llama-3.1-70B, meta-llama/Llama-3.2-1B?)"},
      {R"({"model": "/etc/passwd", "gpu": "RTX-4090", "solve": "max-context"})", 404,
       "model '/etc/passwd': not in the catalog*"},
      {R"({"model": "llama-3.1-8b", "gpu": "RTX-4099", "solve": "max-context"})", 404,
       "--gpu: unknown GPU 'RTX-4099' (did you mean RTX-4090*"},
      // The planner takes catalog models only.
      {R"({"config": {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
          "num_attention_heads": 4, "vocab_size": 1000}, "gpu": "RTX-4090", "solve": "max-context"})",
       422, R"(fit: the web API plans for catalog models (give "model": a catalog id))"},
  };
  for (const auto& c : cases) {
    const web::Response r = api.Fit(c.body);
    EXPECT_EQ(r.status, c.status) << c.body << "\n" << r.body;
    const std::string got = Message(r);
    if (!c.message.empty() && c.message.back() == '*') {
      const std::string prefix = c.message.substr(0, c.message.size() - 1);
      EXPECT_EQ(got.substr(0, prefix.size()), prefix) << c.body;
    } else {
      EXPECT_EQ(got, c.message) << c.body;
    }
    EXPECT_EQ(json::parse(r.body)["schema"], "vramfit.error/1") << c.body;
  }
  // The same mistakes give the CLI's error documents, byte for byte. (An
  // unknown model differs on purpose: the CLI adds "and not a file", the web
  // API never opens files.)
  EXPECT_EQ(api.Fit(R"({"model": "llama-3.1-8b", "gpu": "RTX-4090", "solve": "max-speed"})").body,
            CliOut({"fit", "llama-3.1-8b", "--gpu", "RTX-4090", "--solve", "max-speed", "--json"}));
  EXPECT_EQ(api.Fit(R"({"model": "llama-3.1-8b", "gpu": "RTX-4099", "solve": "max-context"})").body,
            CliOut({"fit", "llama-3.1-8b", "--gpu", "RTX-4099", "--solve", "max-context", "--json"}));
  EXPECT_EQ(api.Fit(R"({"model": "llama-3.1-8b", "gpu": "RTX-4090"})").body,
            CliOut({"fit", "llama-3.1-8b", "--gpu", "RTX-4090", "--json"}));
}

TEST(WebApiTest, CatalogsAndInspectAreTheCliDocuments) {
  web::Api api;
  EXPECT_EQ(api.Models("qwen3").body, CliOut({"models", "qwen3", "--json"}));
  EXPECT_EQ(api.Models("").body, CliOut({"models", "--json"}));
  EXPECT_EQ(api.Gpus("h100").body, CliOut({"gpus", "h100", "--json"}));
  EXPECT_EQ(api.InspectGet("mistralai/Mixtral-8x7B-v0.1").body,
            CliOut({"inspect", "mistralai/Mixtral-8x7B-v0.1", "--json"}));
  EXPECT_EQ(api.InspectGet("").status, 400);
  EXPECT_EQ(api.InspectGet("nope/nope").status, 404);
  EXPECT_EQ(api.InspectPost(R"({"model": "meta-llama/Llama-3.1-8B"})").body,
            CliOut({"inspect", "meta-llama/Llama-3.1-8B", "--json"}));
  const web::Response bad = api.InspectPost(R"({"model": "meta-llama/Llama-3.1-8B", "gpu": "T4"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(Message(bad), "request body: unknown key 'gpu' (inspect takes model or config)");
}

TEST(WebApiTest, SettingKeysCoverEveryCliFlag) {
  // Every option of `vramfit infer --help` / `train --help` is an API key
  // (minus the output flags), so the API never falls behind the CLI.
  for (const std::string mode : {"infer", "train"}) {
    const std::string help = CliOut({mode, "--help"});
    const std::vector<std::string> keys = web::SettingKeys(mode);
    std::istringstream in(help);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
      // Option lines: "  --batch TEXT   description" (CLI11's layout).
      std::istringstream words(line);
      std::string word;
      words >> word;
      if (word.rfind("--", 0) != 0 || word.size() < 3) continue;
      std::string flag = word.substr(2);
      flag = flag.substr(0, flag.find_first_of(" ,=[<"));
      if (flag == "help" || flag == "json" || flag == "units" || flag == "print-flags" || flag == "no-calibration") {
        continue;  // output flags (the web API reads no calibration file)
      }
      EXPECT_NE(std::find(keys.begin(), keys.end(), flag), keys.end()) << mode << ": --" << flag;
      ++n;
    }
    EXPECT_GE(n, 10) << help;
  }
}

TEST(WebApiTest, Version) {
  // vramfit.version/1 (docs/web.md, API table): the features of this build,
  // each mode's setting keys and the limits of web/api.h.
  web::Api api;
  const web::Response r = api.Version();
  EXPECT_EQ(r.status, 200);
  const json j = json::parse(r.body);
  EXPECT_EQ(j["schema"], "vramfit.version/1");
  EXPECT_TRUE(j["version"].is_string());
  EXPECT_EQ(j["features"]["infer"], true);
  EXPECT_EQ(j["features"]["train"], true);
  EXPECT_EQ(j["features"]["fit"], true);  // the planner is wired (Api::Fit)
  EXPECT_EQ(j["features"]["upload_gguf"], web::HaveGgufReader());
  EXPECT_EQ(j["features"]["upload_safetensors"], web::HaveSafetensorsReader());
  EXPECT_EQ(j["limits"]["body_bytes"], 1048576);     // 1 MiB
  EXPECT_EQ(j["limits"]["upload_bytes"], 33554432);  // 32 MiB
  EXPECT_EQ(j["limits"]["upload_files"], 64);
  EXPECT_EQ(j["limits"]["uploads_held"], 8);
  EXPECT_EQ(j["limits"]["devices"], 256);
  EXPECT_EQ(j["limits"]["series_points"], 64);
  EXPECT_EQ(j["limits"]["sweep_cells"], 1024);
  // "gpu" first, then "runtime" (infer only), then the CLI's flags.
  EXPECT_EQ(j["settings"]["infer"][0], "gpu");
  EXPECT_EQ(j["settings"]["infer"][1], "runtime");
  EXPECT_EQ(j["settings"]["train"][0], "gpu");
  EXPECT_EQ(j["settings"]["infer"].get<std::vector<std::string>>(), web::SettingKeys("infer"));
  EXPECT_EQ(j["settings"]["train"].get<std::vector<std::string>>(), web::SettingKeys("train"));
}

TEST(WebUploadTest, Base64) {
  EXPECT_EQ(*web::DecodeBase64("", "h"), "");
  EXPECT_EQ(*web::DecodeBase64("TWFu", "h"), "Man");   // RFC 4648 §10 style vectors
  EXPECT_EQ(*web::DecodeBase64("Zm9vYg==", "h"), "foob");
  EXPECT_EQ(*web::DecodeBase64("Zm9vYg", "h"), "foob");
  EXPECT_EQ(*web::DecodeBase64("Zm9vYmE=", "h"), "fooba");
  EXPECT_EQ(web::DecodeBase64("Zm9v!mE=", "files[0].header").error().message,
            "files[0].header: not base64 at character 4");
  EXPECT_EQ(web::DecodeBase64("Zm9vY", "h").error().message, "h: not base64 (truncated)");
}

// A tiny Llama in one safetensors file: the header the page would send.
// Hand count (bf16, 2 B per element): embed 256x64 + q,k,v,o 4 x 64x64 +
// gate,up 2 x 128x64 + down 64x128 + 3 norms x 64 + lm_head 256x64
// = 16384 + 16384 + 16384 + 8192 + 192 + 16384 = 73,920 params = 147,840 B.
constexpr char kTinyConfig[] = R"({"model_type": "llama", "architectures": ["LlamaForCausalLM"],
  "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4,
  "num_key_value_heads": 4, "vocab_size": 256, "max_position_embeddings": 512,
  "torch_dtype": "bfloat16", "tie_word_embeddings": false})";

std::string TinySafetensorsHeader(int64_t* file_size) {
  const std::vector<std::pair<std::string, std::vector<int64_t>>> tensors = {
      {"model.embed_tokens.weight", {256, 64}},
      {"model.layers.0.self_attn.q_proj.weight", {64, 64}},
      {"model.layers.0.self_attn.k_proj.weight", {64, 64}},
      {"model.layers.0.self_attn.v_proj.weight", {64, 64}},
      {"model.layers.0.self_attn.o_proj.weight", {64, 64}},
      {"model.layers.0.mlp.gate_proj.weight", {128, 64}},
      {"model.layers.0.mlp.up_proj.weight", {128, 64}},
      {"model.layers.0.mlp.down_proj.weight", {64, 128}},
      {"model.layers.0.input_layernorm.weight", {64}},
      {"model.layers.0.post_attention_layernorm.weight", {64}},
      {"model.norm.weight", {64}},
      {"lm_head.weight", {256, 64}},
  };
  json h = json::object();
  int64_t offset = 0;
  for (const auto& [name, shape] : tensors) {
    int64_t n = 2;
    for (int64_t d : shape) n *= d;
    h[name] = {{"dtype", "BF16"}, {"shape", shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  const std::string text = h.dump();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  out += text;
  *file_size = static_cast<int64_t>(out.size()) + offset;
  return out;
}

std::string Base64(const std::string& in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 63]);
  while (out.size() % 4 != 0) out.push_back('=');
  return out;
}

TEST(WebUploadTest, SafetensorsHeaderBecomesAModel) {
  if (!web::HaveSafetensorsReader()) GTEST_SKIP() << "this build has no safetensors reader";
  web::Api api;
  int64_t size = 0;
  const std::string header = TinySafetensorsHeader(&size);
  const json body = {{"files", {{{"name", "model.safetensors"}, {"size", size}, {"header", Base64(header)}}}},
                     {"config", json::parse(kTinyConfig)}};
  const web::Response up = api.Upload(body.dump());
  ASSERT_EQ(up.status, 200) << up.body;
  const json u = json::parse(up.body);
  EXPECT_EQ(u["schema"], "vramfit.upload/1");
  EXPECT_EQ(u["file_format"], "safetensors");
  EXPECT_EQ(u["params"], 73920);  // hand count above
  EXPECT_EQ(u["tensors"], 12);
  const std::string id = u["model"];
  EXPECT_EQ(id.rfind("upload:", 0), 0u);
  // The same bytes give the same id.
  EXPECT_EQ(json::parse(api.Upload(body.dump()).body)["model"], id);
  // Estimates and inspect take the upload id as the model.
  const web::Response e = api.Estimate(json({{"model", id}, {"ctx", 128}}).dump());
  ASSERT_EQ(e.status, 200) << e.body;
  EXPECT_EQ(json::parse(e.body)["model"]["weight_bytes"], 147840);  // hand count above
  EXPECT_EQ(api.InspectGet(id).status, 200);
  // Only kUploadSlots uploads are held; the oldest goes first.
  for (int i = 0; i < 8; ++i) {
    json other = body;
    other["files"][0]["name"] = "model-" + std::to_string(i) + ".safetensors";
    ASSERT_EQ(api.Upload(other.dump()).status, 200);
  }
  EXPECT_EQ(api.Estimate(json({{"model", id}}).dump()).status, 404);
}

TEST(WebUploadTest, ExactErrors) {
  web::Api api;
  int64_t size = 0;
  const std::string header = TinySafetensorsHeader(&size);
  const json file = {{"name", "model.safetensors"}, {"size", size}, {"header", Base64(header)}};
  const struct { json body; int status; std::string message; } cases[] = {
      {json::object(), 400, R"(files: expected a list of {"name", "size", "header"} objects)"},
      {{{"files", json::array()}}, 400, R"(files: expected a list of {"name", "size", "header"} objects)"},
      {{{"files", {file}}, {"extra", 1}}, 400, "request body: unknown key 'extra' (upload takes files, config, index)"},
      {{{"files", {{{"name", "weights.bin"}}}}}, 400, "files[0].name: 'weights.bin' is not a .gguf or .safetensors file"},
      {{{"files", {file, {{"name", "x.gguf"}}}}}, 400, "files: GGUF and safetensors files cannot be mixed in one upload"},
      {{{"files", {file}}}, 400,
       "config: safetensors headers need the model's config.json (drop it with the .safetensors files)"},
      {{{"files", {{{"name", "../x.safetensors"}, {"size", 8}, {"header", ""}}}}, {"config", json::parse(kTinyConfig)}},
       400, R"(files[0].name: expected a file name without directories, got "../x.safetensors")"},
      {{{"files", {{{"name", "x.safetensors"}, {"size", 1}, {"header", "AAAA"}}}}, {"config", json::parse(kTinyConfig)}},
       400, "files[0].size: 1 bytes, but the header sent holds 3 (and at most 1 PiB)"},
      {{{"files", {{{"name", "x.safetensors"}, {"size", 10}, {"header", "@@@@"}}}}, {"config", json::parse(kTinyConfig)}},
       400, "files[0].header: not base64 at character 0"},
      {{{"files", {file, file}}, {"config", json::parse(kTinyConfig)}}, 400,
       "files[1].name: 'model.safetensors' is sent twice"},
  };
  for (const auto& c : cases) {
    const web::Response r = api.Upload(c.body.dump());
    EXPECT_EQ(r.status, c.status) << c.body.dump().substr(0, 200);
    EXPECT_EQ(Message(r), c.message) << c.body.dump().substr(0, 200);
  }
  if (web::HaveGgufReader()) {
    // A zip file dropped as .gguf: the reader's own message (docs/formats.md §5).
    const json zip = {{"files", {{{"name", "model.gguf"}, {"size", 1000}, {"header", Base64("PK\x03\x04 junk")}}}}};
    const web::Response r = api.Upload(zip.dump());
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_NE(Message(r).find("model.gguf"), std::string::npos) << r.body;
  }
}

// ---- The HTTP server ----------------------------------------------------------

class WebServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    web::ServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.threads = 4;
    o.read_timeout_s = 2;
    o.write_timeout_s = 2;
    o.keep_alive_timeout_s = 1;
    server_ = new web::Server(o);
    auto port = server_->Bind();
    ASSERT_TRUE(port.ok()) << port.error().message;
    port_ = *port;
    thread_ = new std::thread([] { server_->Run(); });
    for (int i = 0; i < 400 && !server_->running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_TRUE(server_->running());
  }
  static void TearDownTestSuite() {
    server_->Stop();
    thread_->join();
    delete thread_;
    delete server_;
  }

  static httplib::Client Client() {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(10, 0);
    c.set_connection_timeout(5, 0);
    return c;
  }

  // Sends raw bytes and returns everything the server answers before it
  // closes the connection (or 5 s pass).
  // (No half-close: httplib 0.11 drops the answer to a client that shut down
  // its sending side.)
  static std::string Raw(const std::string& request) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close(fd);
      return "(connect failed)";
    }
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t sent = 0;
    while (sent < request.size()) {
      const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    std::string out;
    char buf[4096];
    for (;;) {
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    return out;
  }

  static web::Server* server_;
  static std::thread* thread_;
  static int port_;
};
web::Server* WebServerTest::server_ = nullptr;
std::thread* WebServerTest::thread_ = nullptr;
int WebServerTest::port_ = 0;

std::string HttpMessage(const httplib::Result& r) {
  if (!r) return "(no response)";
  return Message(web::Response{r->status, r->body});
}

TEST_F(WebServerTest, EveryEndpointAnswersAsTheApi) {
  httplib::Client c = Client();
  web::Api api;
  const std::string body = R"({"model": "meta-llama/Llama-3.1-8B", "gpu": ["RTX-4090"], "ctx": 8192})";
  auto r = c.Post("/api/v1/estimate", body, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(r->body, api.Estimate(body).body);
  EXPECT_EQ(r->get_header_value("X-Content-Type-Options"), "nosniff");

  r = c.Post("/api/v1/series", R"({"model": "llama-3.1-8b", "vary": "batch", "values": [1, 2]})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body)["points"].size(), 2u);

  const std::string fit = R"({"model": "meta-llama/Llama-3.1-8B", "gpu": "RTX-4090", "solve": "max-context"})";
  r = c.Post("/api/v1/fit", fit, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, CliOut({"fit", "meta-llama/Llama-3.1-8B", "--gpu", "RTX-4090", "--solve", "max-context",
                             "--json"}));
  r = c.Post("/api/v1/fit", R"({"model": "llama-3.1-8b", "gpu": "RTX-4090", "solve": "max-speed"})",
             "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(HttpMessage(r),
            "--solve: unknown question 'max-speed' (expected max-batch, max-context, min-gpus, best-quant or "
            "best-method)");
  r = c.Post("/api/v1/fit", R"({"model": "nope/nope", "gpu": "RTX-4090", "solve": "max-context"})",
             "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  r = c.Get("/api/v1/fit");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(HttpMessage(r), "request: /api/v1/fit takes POST with a JSON body");

  r = c.Get("/api/v1/models?q=qwen3");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, CliOut({"models", "qwen3", "--json"}));
  r = c.Get("/api/v1/gpus?q=h100");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, CliOut({"gpus", "h100", "--json"}));
  r = c.Get("/api/v1/inspect?model=meta-llama%2FLlama-3.1-8B");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, CliOut({"inspect", "meta-llama/Llama-3.1-8B", "--json"}));
  r = c.Post("/api/v1/inspect", R"({"model": "meta-llama/Llama-3.1-8B"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  r = c.Get("/api/v1/version");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, api.Version().body);
  r = c.Post("/api/v1/upload", R"({"files": []})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(HttpMessage(r), R"(files: expected a list of {"name", "size", "header"} objects)");
}

TEST_F(WebServerTest, ThePage) {
  httplib::Client c = Client();
  auto r = c.Get("/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(r->body.find("<title>vramfit"), std::string::npos);
  // Nothing from other origins: scripts, styles and requests stay on this server.
  EXPECT_NE(r->get_header_value("Content-Security-Policy").find("default-src 'self'"), std::string::npos);
  EXPECT_EQ(r->body.find("http://"), std::string::npos);
  EXPECT_EQ(r->body.find("https://"), std::string::npos);
  for (const char* path : {"/app.js", "/style.css", "/favicon.svg"}) {
    r = c.Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path;
  }
  EXPECT_EQ(c.Get("/app.js")->get_header_value("Content-Type"), "text/javascript; charset=utf-8");
  // Paths never reach the file system.
  for (const char* path : {"/nope.html", "/..", "/../CMakeLists.txt", "/%2e%2e/CMakeLists.txt", "/web/app.js",
                           "/etc/passwd"}) {
    r = c.Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 404) << path;
    EXPECT_EQ(json::parse(r->body)["schema"], "vramfit.error/1") << path;
  }
}

TEST_F(WebServerTest, BadRequestsGetJsonErrors) {
  httplib::Client c = Client();
  // Wrong method.
  auto r = c.Get("/api/v1/estimate");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->get_header_value("Allow"), "POST");
  EXPECT_EQ(HttpMessage(r), "request: /api/v1/estimate takes POST with a JSON body");
  r = c.Post("/api/v1/models", "{}", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(HttpMessage(r), "request: /api/v1/models takes GET");
  // Unknown endpoint.
  r = c.Post("/api/v2/estimate", "{}", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(HttpMessage(r), "request: no endpoint POST /api/v2/estimate");
  // Malformed bodies.
  // Not UTF-8: the message quotes the bytes, replaced (U+FFFD), not thrown on.
  r = c.Post("/api/v1/estimate", "\xff\xfe not json", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(HttpMessage(r).substr(0, 42), "request body: malformed JSON at byte 1: pa");
  r = c.Post("/api/v1/estimate", R"({"model": "nope/nope"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(HttpMessage(r).substr(0, 35), "model 'nope/nope': not in the catal");
  // Too large: 1 MiB + 1 for the JSON endpoints.
  const std::string big(web::kMaxBodyBytes + 1, ' ');
  r = c.Post("/api/v1/estimate", big, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(HttpMessage(r), "request: body of 1048577 bytes exceeds the 1 MiB limit for /api/v1/estimate");
  // Beyond the upload limit, httplib refuses before reading (same JSON).
  const std::string huge(web::kMaxUploadBytes + 1, ' ');
  httplib::Client c2 = Client();
  r = c2.Post("/api/v1/upload", huge, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(HttpMessage(r), "request: body of 33554433 bytes exceeds the 32 MiB limit for /api/v1/upload");
  // The URI limit.
  httplib::Client c3 = Client();
  r = c3.Get("/api/v1/models?q=" + std::string(9000, 'a'));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 414);
  EXPECT_EQ(HttpMessage(r), "request: the URI is longer than 8192 bytes");
}

TEST_F(WebServerTest, EveryPostEndpointRefusesBadBodies) {
  // For each POST endpoint: malformed JSON (400), an unknown model (404)
  // and a body one byte over its limit (413), with the exact messages.
  const std::string big(web::kMaxBodyBytes + 1, ' ');
  for (const std::string path : {"/api/v1/estimate", "/api/v1/series", "/api/v1/fit", "/api/v1/inspect"}) {
    httplib::Client c = Client();
    auto r = c.Post(path, R"({"model": )", "application/json");
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 400) << path;
    EXPECT_EQ(HttpMessage(r),
              "request body: malformed JSON at byte 11: parse error at line 1, column 11: syntax error while parsing "
              "value - unexpected end of input; expected '[', '{', or a literal")
        << path;
    const std::string unknown = path == "/api/v1/series"
                                    ? R"({"model": "nope/Nope-7B", "vary": "ctx", "values": [1024]})"
                                : path == "/api/v1/fit" ? R"({"model": "nope/Nope-7B", "gpu": "L4", "solve": "max-batch"})"
                                                        : R"({"model": "nope/Nope-7B"})";
    r = c.Post(path, unknown, "application/json");
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 404) << path << "\n" << r->body;
    EXPECT_EQ(HttpMessage(r).substr(0, 40), "model 'nope/Nope-7B': not in the catalog") << path;
    httplib::Client c2 = Client();
    r = c2.Post(path, big, "application/json");
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 413) << path;
    EXPECT_EQ(HttpMessage(r), "request: body of 1048577 bytes exceeds the 1 MiB limit for " + path);
  }
  // The upload endpoint takes 32 MiB; its malformed bodies are 400 too.
  httplib::Client c = Client();
  auto r = c.Post("/api/v1/upload", "{]", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(HttpMessage(r).substr(0, 35), "request body: malformed JSON at byt");
  EXPECT_TRUE(server_->running());
}

TEST_F(WebServerTest, ChunkedBodiesKeepTheLimit) {
  httplib::Client c = Client();
  const std::string small = R"({"model": "llama-3.1-8b"})";
  auto r = c.Post("/api/v1/estimate",
                  [&](size_t offset, httplib::DataSink& sink) {
                    if (offset == 0) sink.write(small.data(), small.size());
                    sink.done();
                    return true;
                  },
                  "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  // 2 MiB in 64 KiB chunks: refused at the 1 MiB limit.
  const std::string chunk(64 << 10, ' ');
  httplib::Client c2 = Client();
  r = c2.Post("/api/v1/estimate",
              [&](size_t offset, httplib::DataSink& sink) {
                if (offset < (size_t{2} << 20)) sink.write(chunk.data(), chunk.size());
                else sink.done();
                return true;
              },
              "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(HttpMessage(r), "request: body of more than 1048576 bytes exceeds the 1 MiB limit for /api/v1/estimate");
}

TEST_F(WebServerTest, RawProtocolAbuse) {
  // Garbage instead of a request line.
  std::string out = Raw("NOT HTTP AT ALL\r\n\r\n");
  EXPECT_EQ(out.rfind("HTTP/1.1 400", 0), 0u) << out;
  EXPECT_NE(out.find("request: malformed HTTP request"), std::string::npos) << out;
  // POST without a length.
  out = Raw("POST /api/v1/estimate HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  EXPECT_EQ(out.rfind("HTTP/1.1 411", 0), 0u) << out;
  EXPECT_NE(out.find("request: POST without Content-Length"), std::string::npos) << out;
  // A body shorter than its Content-Length (the client gives up).
  out = Raw("POST /api/v1/estimate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"model\"");
  EXPECT_EQ(out.rfind("HTTP/1.1 400", 0), 0u) << out;
  // DNS-rebinding guard: a loopback server answers only to loopback names.
  out = Raw("GET /api/v1/version HTTP/1.1\r\nHost: attacker.example:8080\r\n\r\n");
  EXPECT_EQ(out.rfind("HTTP/1.1 403", 0), 0u) << out;
  EXPECT_NE(out.find("request: Host 'attacker.example' is not a loopback name"), std::string::npos) << out;
  for (const char* host : {"localhost:1234", "127.0.0.1", "[::1]:80"}) {
    out = Raw(std::string("GET /api/v1/version HTTP/1.1\r\nHost: ") + host + "\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(out.rfind("HTTP/1.1 200", 0), 0u) << host << "\n" << out;
  }
  // Still serving after all that.
  EXPECT_TRUE(server_->running());
  EXPECT_EQ(Client().Get("/api/v1/version")->status, 200);
}

TEST_F(WebServerTest, IdleConnectionsDoNotStarveTheWorkers) {
  // As many silent connections as workers: each is dropped after the
  // keep-alive timeout (1 s here), so a real request still gets through.
  std::vector<int> idle;
  for (int i = 0; i < 4; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    idle.push_back(fd);
  }
  const auto start = std::chrono::steady_clock::now();
  auto r = Client().Get("/api/v1/version");
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_LT(waited, 5.0);
  for (int fd : idle) close(fd);
}

TEST_F(WebServerTest, ConcurrentGoodAndBadRequests) {
  // 6 clients x 40 requests, every third one malformed: the good ones all
  // succeed, the bad ones all get a 4xx, nothing is dropped.
  std::atomic<int> good_ok{0}, bad_4xx{0}, other{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 6; ++t) {
    clients.emplace_back([&, t] {
      httplib::Client c("127.0.0.1", port_);
      c.set_read_timeout(10, 0);
      for (int i = 0; i < 40; ++i) {
        const bool bad = (i + t) % 3 == 0;
        auto r = c.Post("/api/v1/estimate",
                        bad ? std::string(R"({"model": "llama-3.1-8b", "ctx": "x)") + std::to_string(i) + "\"}"
                            : std::string(R"({"model": "llama-3.1-8b", "gpu": "RTX-4090", "ctx": )") +
                                  std::to_string(1024 * (1 + i)) + "}",
                        "application/json");
        if (!r) ++other;
        else if (!bad && r->status == 200) ++good_ok;
        else if (bad && r->status == 400) ++bad_4xx;
        else ++other;
      }
    });
  }
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(good_ok + bad_4xx, 240);
  EXPECT_EQ(bad_4xx, 80);
  EXPECT_EQ(other, 0);
}

TEST(WebServerBindTest, Errors) {
  web::ServerOptions o;
  o.port = 70000;
  EXPECT_EQ(web::Server(o).Bind().error().message, "--port: expected 0 to 65535, got 70000");
  // A port already taken.
  web::ServerOptions a;
  a.port = 0;
  web::Server first(a);
  auto port = first.Bind();
  ASSERT_TRUE(port.ok());
  web::ServerOptions b;
  b.port = *port;
  auto again = web::Server(b).Bind();
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().message.rfind("serve: cannot listen on 127.0.0.1:" + std::to_string(*port) + ": ", 0), 0u)
      << again.error().message;
  EXPECT_TRUE(web::IsLoopback("127.0.0.1"));
  EXPECT_TRUE(web::IsLoopback("localhost"));
  EXPECT_TRUE(web::IsLoopback("::1"));
  EXPECT_FALSE(web::IsLoopback("0.0.0.0"));
  EXPECT_FALSE(web::IsLoopback("192.168.1.2"));
}

TEST(WebCliTest, ServeFlags) {
  std::ostringstream out, err;
  EXPECT_EQ(cli::Run({"serve", "--port", "http"}, out, err), 2);
  EXPECT_EQ(err.str(), "vramfit: error: --port: expected an integer, got 'http'\n");
  std::ostringstream out2, err2;
  EXPECT_EQ(cli::Run({"serve", "--port", "-1"}, out2, err2), 2);
  EXPECT_EQ(err2.str(), "vramfit: error: --port: expected 0 to 65535, got -1\n");
  std::ostringstream out3, err3;
  EXPECT_EQ(cli::Run({"serve", "--hots", "0.0.0.0"}, out3, err3), 2);
  EXPECT_EQ(err3.str(), "vramfit: error: serve: unknown option '--hots' (did you mean --host?)\n");
}

}  // namespace
}  // namespace vramfit
