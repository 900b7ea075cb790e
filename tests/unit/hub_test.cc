// The Hub reader against a local fixture server (cpp-httplib on 127.0.0.1,
// never the internet) that serves repositories in the Hub's URL layout,
// /{org}/{name}/resolve/{rev}/{file}, with Range support, X-Repo-Commit, and
// the Hub's X-Error-Code answers (huggingface_hub utils/_http.py): 401/403
// GatedRepo, 401/404 RepoNotFound, 404 RevisionNotFound / EntryNotFound.
// The server counts the bytes each file was asked for, so the tests can
// assert that only header bytes cross the network.
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "cli/cli.h"
#include "data/fixtures.h"
#include "test_util.h"
#include "vramfit/io/hub.h"
#include "vramfit/io/source.h"
#include "vramfit/render.h"

namespace vramfit {
namespace {

namespace fs = std::filesystem;

constexpr char kCommit[] = "0123456789abcdef0123456789abcdef01234567";

class FixtureHub {
 public:
  struct File {
    std::string head;  // the bytes held; the rest of `size` reads as zeros
    int64_t size = 0;
  };
  struct Repo {
    std::map<std::string, File> files;
    bool gated = false;
    std::string token;  // required bearer token ("" = public)
  };

  FixtureHub() {
    server_.Get(R"(/([^/]+/[^/]+)/resolve/([^/]+)/(.+))",
                [this](const httplib::Request& req, httplib::Response& res) { Serve(req, res); });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 500 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~FixtureHub() {
    server_.stop();
    thread_.join();
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void Add(const std::string& repo, const std::string& file, std::string head, int64_t size = -1) {
    std::lock_guard<std::mutex> lock(mu_);
    File& f = repos_[repo].files[file];
    f.size = size < 0 ? static_cast<int64_t>(head.size()) : size;
    f.head = std::move(head);
  }
  void Gate(const std::string& repo) { repos_[repo].gated = true; }
  void Private(const std::string& repo, const std::string& token) { repos_[repo].token = token; }
  void FailNext(int n) { fail_next_ = n; }

  // Bytes requested of one file ("org/name/file"): range lengths, or the
  // whole size for a GET without Range.
  int64_t Requested(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    return requested_[key];
  }
  int64_t Requests() const { return requests_; }

 private:
  void Serve(const httplib::Request& req, httplib::Response& res) {
    ++requests_;
    const std::string repo = req.matches[1], rev = req.matches[2], file = req.matches[3];
    const std::string auth = req.get_header_value("Authorization");
    std::lock_guard<std::mutex> lock(mu_);
    auto r = repos_.find(repo);
    if (r == repos_.end() || (!r->second.token.empty() && auth != "Bearer " + r->second.token)) {
      res.status = auth.empty() ? 401 : 404;
      res.set_header("X-Error-Code", "RepoNotFound");
      return;
    }
    if (r->second.gated) {
      res.status = auth.empty() ? 401 : 403;
      res.set_header("X-Error-Code", "GatedRepo");
      return;
    }
    if (rev != "main" && rev != kCommit) {
      res.status = 404;
      res.set_header("X-Error-Code", "RevisionNotFound");
      return;
    }
    res.set_header("X-Repo-Commit", kCommit);
    if (fail_next_ > 0) {
      --fail_next_;
      res.status = 503;
      return;
    }
    auto f = r->second.files.find(file);
    if (f == r->second.files.end()) {
      res.status = 404;
      res.set_header("X-Error-Code", "EntryNotFound");
      return;
    }
    const File data = f->second;
    int64_t asked = data.size;
    if (req.ranges.size() == 1) {
      const int64_t a = req.ranges[0].first;
      const int64_t b = req.ranges[0].second < 0 ? data.size - 1 : std::min<int64_t>(req.ranges[0].second, data.size - 1);
      asked = std::max<int64_t>(0, b - a + 1);
    }
    requested_[repo + "/" + file] += asked;
    res.set_content_provider(static_cast<size_t>(data.size), "application/octet-stream",
                             [data](size_t offset, size_t length, httplib::DataSink& sink) {
                               std::string chunk(std::min<size_t>(length, 1 << 16), '\0');
                               for (size_t i = 0; i < chunk.size(); ++i) {
                                 const size_t at = offset + i;
                                 if (at < data.head.size()) chunk[i] = data.head[at];
                               }
                               return sink.write(chunk.data(), chunk.size());
                             });
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::map<std::string, Repo> repos_;
  std::map<std::string, int64_t> requested_;
  std::atomic<int> fail_next_{0};
  std::atomic<int64_t> requests_{0};
};

// The tiny Llama of data/fixtures.h as a Hub repository: config, index, two
// shards whose data sections are declared but never stored.
void AddTinyLlama(FixtureHub& hub, const std::string& repo) {
  const auto shards = fixtures::TinyLlamaShards();
  hub.Add(repo, "config.json", fixtures::kTinyLlamaConfig);
  hub.Add(repo, "model.safetensors.index.json", fixtures::IndexJson(shards));
  for (const auto& sh : shards) hub.Add(repo, sh.file, sh.st.header, sh.st.size());
}

// A GGUF of a small Llama with a tokenizer vocabulary long enough to push
// the header past the first 64 KiB range.
fixtures::GgufBuilder SmallGguf(int tokens) {
  fixtures::GgufBuilder b;
  b.Str("general.architecture", "llama").U32("llama.block_count", 1).U32("llama.embedding_length", 256)
      .U32("llama.attention.head_count", 2).U32("llama.context_length", 2048).U32("llama.feed_forward_length", 512);
  std::vector<std::string> vocab;
  for (int i = 0; i < tokens; ++i) vocab.push_back("token-" + std::to_string(i));
  b.ArrStr("tokenizer.ggml.tokens", vocab);
  b.Tensor("token_embd.weight", {256, 1000}, fixtures::kQ4_K)
      .Tensor("output_norm.weight", {256}, fixtures::kF32)
      .Tensor("output.weight", {256, 1000}, fixtures::kQ6_K)
      .Tensor("blk.0.attn_norm.weight", {256}, fixtures::kF32)
      .Tensor("blk.0.attn_q.weight", {256, 256}, fixtures::kQ4_K)
      .Tensor("blk.0.attn_k.weight", {256, 256}, fixtures::kQ4_K)
      .Tensor("blk.0.attn_v.weight", {256, 256}, fixtures::kQ6_K)
      .Tensor("blk.0.attn_output.weight", {256, 256}, fixtures::kQ4_K)
      .Tensor("blk.0.ffn_norm.weight", {256}, fixtures::kF32)
      .Tensor("blk.0.ffn_gate.weight", {256, 512}, fixtures::kQ4_K)
      .Tensor("blk.0.ffn_up.weight", {256, 512}, fixtures::kQ4_K)
      .Tensor("blk.0.ffn_down.weight", {512, 256}, fixtures::kQ6_K);
  return b;
}

HubOptions Options(const FixtureHub& hub, const fs::path& cache) {
  HubOptions o;
  o.endpoint = hub.endpoint();
  o.cache_dir = cache.string();
  o.retries = 2;
  o.retry_delay_ms = 5;
  o.timeout_s = 5;
  return o;
}

std::string Err(const Result<Model>& m) { return m.ok() ? "ok" : m.error().message; }

TEST(HubTest, ParsesReferences) {
  auto r = ParseHubRef("hf:meta-llama/Llama-3.1-8B@v1.0/sub/x-Q4_K_M.gguf");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->repo, "meta-llama/Llama-3.1-8B");
  EXPECT_EQ(r->revision, "v1.0");
  EXPECT_EQ(r->file, "sub/x-Q4_K_M.gguf");
  r = ParseHubRef("hf:org/name");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->revision, "main");
  EXPECT_TRUE(r->file.empty());
  for (const char* bad : {"hf:", "hf:org", "hf:org/", "hf:/name", "hf:org/na me", "hf:org/name@", "hf:org/name/../x.gguf",
                          "hf:../../etc/x.gguf"}) {
    auto b = ParseHubRef(bad);
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_EQ(b.error().message,
              std::string("model '") + bad + "': expected hf:ORG/NAME[@REV] or hf:ORG/NAME[@REV]/FILE.gguf");
  }
  auto st = ParseHubRef("hf:org/name/model.safetensors");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message,
            "model 'hf:org/name/model.safetensors': only a .gguf file can be named after the repository; for a "
            "safetensors model use hf:org/name");
}

TEST(HubTest, SafetensorsRepoReadsOnlyHeaderBytes) {
  FixtureHub hub;
  AddTinyLlama(hub, "org/tiny");
  const fs::path cache = fixtures::FreshDir("hub_cache_st");
  std::vector<std::string> notes;
  auto m = LoadHubModel("hf:org/tiny", Options(hub, cache), &notes);
  ASSERT_TRUE(m.ok()) << m.error().message;
  int64_t sum = 0;
  for (const FileTensor& t : m->file_tensors) sum += t.bytes;
  EXPECT_EQ(sum, 213632);  // the tiny Llama's 106816 bf16 params (fixtures.h)
  EXPECT_EQ(m->file_format, "safetensors");
  EXPECT_EQ(m->spec.id, "hf:org/tiny");
  // config.json and the index whole; of each shard exactly 8 + N header
  // bytes, none of its declared data.
  const auto shards = fixtures::TinyLlamaShards();
  EXPECT_EQ(hub.Requested("org/tiny/config.json"), static_cast<int64_t>(std::string(fixtures::kTinyLlamaConfig).size()));
  EXPECT_EQ(hub.Requested("org/tiny/model.safetensors.index.json"), static_cast<int64_t>(fixtures::IndexJson(shards).size()));
  for (const auto& sh : shards) {
    EXPECT_EQ(hub.Requested("org/tiny/" + sh.file), static_cast<int64_t>(sh.st.header.size())) << sh.file;
    EXPECT_LT(static_cast<int64_t>(sh.st.header.size()), sh.st.size());
  }
  // 1 config + 1 index + 2 x (length, header) requests.
  EXPECT_EQ(hub.Requests(), 6);

  // The cache: refs/main -> commit, whole small files, framed header
  // prefixes, and no temporary files left behind.
  const fs::path repo = cache / "models--org--tiny";
  std::ifstream ref(repo / "refs" / "main");
  std::string commit;
  ref >> commit;
  EXPECT_EQ(commit, kCommit);
  const fs::path snap = repo / "snapshots" / kCommit;
  EXPECT_TRUE(fs::exists(snap / "config.json"));
  EXPECT_TRUE(fs::exists(snap / "model-00001-of-00002.safetensors.vramfit-header"));
  for (const auto& e : fs::recursive_directory_iterator(cache)) {
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
  }

  // Offline: the same model from the cache, no request made.
  const int64_t before = hub.Requests();
  HubOptions off = Options(hub, cache);
  off.offline = true;
  auto again = LoadHubModel("hf:org/tiny", off, nullptr);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->file_tensors.size(), m->file_tensors.size());
  EXPECT_EQ(hub.Requests(), before);

  // Online again: the revision resolves to the same commit, so the shard
  // headers come from the cache (2 requests: config.json and the index...
  // which is cached too, so only config.json).
  auto online = LoadHubModel("hf:org/tiny", Options(hub, cache), nullptr);
  ASSERT_TRUE(online.ok()) << online.error().message;
  EXPECT_EQ(hub.Requests(), before + 1);
  fs::remove_all(cache);
}

TEST(HubTest, GgufFileGrowsTheRangeOnlyAsFarAsTheHeader) {
  FixtureHub hub;
  // 200 tokens: a header under 64 KiB. 12000 tokens (~200 KB of strings):
  // the first 64 KiB range is not enough and the range doubles.
  const fixtures::GgufBuilder small = SmallGguf(200), big = SmallGguf(12000);
  hub.Add("org/gguf", "small-Q4_K_M.gguf", small.Header(), small.FileSize());
  hub.Add("org/gguf", "big-Q4_K_M.gguf", big.Header(), big.FileSize() + (int64_t{1} << 30));
  const fs::path cache = fixtures::FreshDir("hub_cache_gguf");
  auto m = LoadHubModel("hf:org/gguf/small-Q4_K_M.gguf", Options(hub, cache), nullptr);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->file_format, "gguf");
  EXPECT_EQ(m->spec.id, "hf:org/gguf/small-Q4_K_M.gguf");
  // One range of 64 KiB covers a small header (the file is larger).
  EXPECT_LT(small.Header().size(), 65536u);
  EXPECT_GT(small.FileSize(), 65536);
  EXPECT_EQ(hub.Requested("org/gguf/small-Q4_K_M.gguf"), 65536);
  auto b = LoadHubModel("hf:org/gguf/big-Q4_K_M.gguf", Options(hub, cache), nullptr);
  ASSERT_TRUE(b.ok()) << b.error().message;
  // The big header (217888 bytes): 64 KiB, then the range doubles to
  // 128 KiB and 256 KiB: 262144 bytes requested in all (less than twice the
  // header), out of a file of more than 1 GiB.
  const int64_t header = static_cast<int64_t>(big.Header().size());
  EXPECT_EQ(header, 217888);
  EXPECT_EQ(hub.Requested("org/gguf/big-Q4_K_M.gguf"), 262144);
  // Offline from the cached prefix.
  HubOptions off = Options(hub, cache);
  off.offline = true;
  auto again = LoadHubModel("hf:org/gguf/big-Q4_K_M.gguf", off, nullptr);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->file_tensors.size(), 12u);
  fs::remove_all(cache);
}

TEST(HubTest, ErrorsAreOneClearLine) {
  FixtureHub hub;
  AddTinyLlama(hub, "org/tiny");
  AddTinyLlama(hub, "org/gated");
  hub.Gate("org/gated");
  std::string bad_gguf = "GGUF";
  fixtures::Le32(bad_gguf, 3);
  fixtures::Le64(bad_gguf, uint64_t{1} << 40);  // tensor count
  fixtures::Le64(bad_gguf, 0);
  hub.Add("org/gguf-only", "x.gguf", bad_gguf, 100000);
  const fs::path cache = fixtures::FreshDir("hub_cache_err");
  const HubOptions o = Options(hub, cache);
  EXPECT_EQ(Err(LoadHubModel("hf:org/missing", o, nullptr)),
            "hf:org/missing: repository not found (HTTP 401); if it is private, set HF_TOKEN");
  EXPECT_EQ(Err(LoadHubModel("hf:org/gated", o, nullptr)),
            "hf:org/gated: the repository is gated (HTTP 401): accept its terms at " + hub.endpoint() +
                "/org/gated and set HF_TOKEN");
  HubOptions with_token = o;
  with_token.token = "hf_abc";
  EXPECT_EQ(Err(LoadHubModel("hf:org/gated", with_token, nullptr)),
            "hf:org/gated: the repository is gated and your token has no access (HTTP 403): accept its terms at " +
                hub.endpoint() + "/org/gated");
  EXPECT_EQ(Err(LoadHubModel("hf:org/missing", with_token, nullptr)),
            "hf:org/missing: repository not found, or your token cannot see it (HTTP 404)");
  EXPECT_EQ(Err(LoadHubModel("hf:org/tiny@nope", o, nullptr)), "hf:org/tiny@nope: revision 'nope' not found (HTTP 404)");
  EXPECT_EQ(Err(LoadHubModel("hf:org/gguf-only", o, nullptr)),
            "hf:org/gguf-only: no config.json at revision 'main'; for a GGUF repository name the file: "
            "hf:org/gguf-only/FILE.gguf");
  EXPECT_EQ(Err(LoadHubModel("hf:org/gguf-only/y.gguf", o, nullptr)),
            "hf:org/gguf-only/y.gguf: y.gguf not found at revision 'main' (HTTP 404)");
  EXPECT_EQ(Err(LoadHubModel("hf:org/gguf-only/x.gguf", o, nullptr)),
            "hf:org/gguf-only/x.gguf: offset 8: tensor count 1099511627776 exceeds the limit of 1048576");
  HubOptions off = o;
  off.offline = true;
  EXPECT_EQ(Err(LoadHubModel("hf:org/never", off, nullptr)),
            "hf:org/never: revision 'main' is not in the cache and HF_HUB_OFFLINE=1 is set (cache: " +
                (cache / "models--org--never").string() + ")");
  // Nothing listens on the endpoint: a clear network error after retrying.
  HubOptions down = o;
  {
    FixtureHub gone;
    down.endpoint = gone.endpoint();
  }
  EXPECT_EQ(Err(LoadHubModel("hf:org/tiny", down, nullptr)),
            "hf:org/tiny: cannot reach " + down.endpoint +
                ": cannot connect (connection refused or unreachable) (after 3 attempts)");
  fs::remove_all(cache);
}

TEST(HubTest, RetriesTransientFailuresAndReportsProgress) {
  FixtureHub hub;
  AddTinyLlama(hub, "org/tiny");
  const fs::path cache = fixtures::FreshDir("hub_cache_retry");
  HubOptions o = Options(hub, cache);
  std::vector<std::string> lines;
  o.progress = [&lines](const std::string& line) { lines.push_back(line); };
  o.progress_after_ms = 0;
  hub.FailNext(2);  // two 503s, then the answer (retries = 2)
  auto m = LoadHubModel("hf:org/tiny", o, nullptr);
  ASSERT_TRUE(m.ok()) << m.error().message;
  ASSERT_GE(lines.size(), 4u);
  EXPECT_EQ(lines[0], "vramfit: hf:org/tiny: fetching config.json");
  EXPECT_EQ(lines[1], "vramfit: hf:org/tiny: HTTP 503 for config.json, retrying in 0.0 s");
  EXPECT_EQ(lines.back(), "");
  EXPECT_NE(std::find(lines.begin(), lines.end(),
                      "vramfit: hf:org/tiny: reading the header of model-00002-of-00002.safetensors (2/2)"),
            lines.end());
  hub.FailNext(3);  // more failures than retries
  auto failed = LoadHubModel("hf:org/tiny", Options(hub, cache), nullptr);
  EXPECT_EQ(Err(failed), "hf:org/tiny: config.json: the Hub answered HTTP 503");
  hub.FailNext(0);
  fs::remove_all(cache);
}

// The environment: HF_ENDPOINT, HF_HOME (cache and token file), HF_TOKEN,
// HF_HUB_OFFLINE, through LoadModel and the CLI.
class ScopedEnv {
 public:
  void Set(const char* k, const std::string& v) {
    const char* old = std::getenv(k);
    saved_.emplace_back(k, old ? std::optional<std::string>(old) : std::nullopt);
    setenv(k, v.c_str(), 1);
  }
  void Unset(const char* k) {
    const char* old = std::getenv(k);
    saved_.emplace_back(k, old ? std::optional<std::string>(old) : std::nullopt);
    unsetenv(k);
  }
  ~ScopedEnv() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) setenv(it->first.c_str(), it->second->c_str(), 1);
      else unsetenv(it->first.c_str());
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

TEST(HubTest, EnvironmentAndCli) {
  FixtureHub hub;
  AddTinyLlama(hub, "org/private");
  hub.Private("org/private", "hf_secret");
  const fs::path home = fixtures::FreshDir("hub_home");
  ScopedEnv env;
  env.Set("HF_ENDPOINT", hub.endpoint() + "/");
  env.Set("HF_HOME", home.string());
  env.Set("no_proxy", "127.0.0.1,localhost");
  env.Unset("HF_TOKEN");
  env.Unset("HUGGING_FACE_HUB_TOKEN");
  env.Unset("HF_TOKEN_PATH");
  env.Unset("HF_HUB_OFFLINE");
  const HubOptions o = HubOptionsFromEnv();
  EXPECT_EQ(o.endpoint, hub.endpoint());
  EXPECT_EQ(o.cache_dir, (home / "vramfit").string());
  EXPECT_TRUE(o.token.empty());
  EXPECT_EQ(Err(LoadModel("hf:org/private", ModelCatalog::Builtin(), nullptr)),
            "hf:org/private: repository not found (HTTP 401); if it is private, set HF_TOKEN");
  // The token file under HF_HOME (what `hf auth login` writes).
  std::ofstream(home / "token") << "hf_secret\n";
  std::ostringstream out, err;
  const int code = cli::Run({"inspect", "hf:org/private", "--json"}, out, err);
  ASSERT_EQ(code, 0) << err.str();
  auto j = nlohmann::json::parse(out.str());
  EXPECT_EQ(j["model"]["id"], "hf:org/private");
  EXPECT_EQ(j["model"]["weight_bytes"], 213632);
  EXPECT_EQ(j["file"]["format"], "safetensors");
  // Header bytes only: 8 + N per shard.
  for (const auto& sh : fixtures::TinyLlamaShards()) {
    EXPECT_EQ(hub.Requested("org/private/" + sh.file), static_cast<int64_t>(sh.st.header.size()));
  }
  // HF_TOKEN wins over the file.
  env.Set("HF_TOKEN", "hf_other");
  EXPECT_EQ(HubOptionsFromEnv().token, "hf_other");
  // Offline, from the cache the CLI run wrote.
  env.Unset("HF_TOKEN");
  env.Set("HF_HUB_OFFLINE", "1");
  env.Set("HF_ENDPOINT", "http://127.0.0.1:9");
  std::ostringstream out2, err2;
  EXPECT_EQ(cli::Run({"inspect", "hf:org/private", "--json"}, out2, err2), 0) << err2.str();
  EXPECT_EQ(nlohmann::json::parse(out2.str())["model"]["weight_bytes"], 213632);
  std::ostringstream out3, err3;
  EXPECT_EQ(cli::Run({"inspect", "hf:org/other"}, out3, err3), 2);
  EXPECT_EQ(err3.str(), "vramfit: error: hf:org/other: revision 'main' is not in the cache and HF_HUB_OFFLINE=1 is set "
                        "(cache: " + (home / "vramfit" / "models--org--other").string() + ")\n");
  fs::remove_all(home);
}

}  // namespace
}  // namespace vramfit
