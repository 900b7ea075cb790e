// Hugging Face Hub client: config.json, the safetensors index and shard
// headers, or a GGUF header, over HTTP range requests (libcurl).
//
// URL layout (huggingface_hub file_download.py hf_hub_url):
//   {endpoint}/{repo}/resolve/{quote(revision, safe="")}/{quote(path)}
// Responses carry X-Repo-Commit (the commit the revision resolved to) and,
// on errors, X-Error-Code (RepoNotFound, GatedRepo, RevisionNotFound,
// EntryNotFound) — huggingface_hub utils/_http.py hf_raise_for_status.
#include "vramfit/io/hub.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <type_traits>

// libcurl's types only: the library itself is loaded with dlopen on the
// first download (LoadCurl), so that commands which never touch the network
// do not pay for loading it and its ~30 dependencies at every start.
#include <curl/curl.h>
#include <dlfcn.h>
#include <fmt/format.h>
#include <unistd.h>

#include "vramfit/io/file_reader.h"
#include "vramfit/io/gguf.h"
#include "vramfit/io/safetensors.h"

namespace vramfit {
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kMaxSmallFile = 16 << 20;          // config.json, index
constexpr int64_t kGgufFirstRange = 64 * 1024;       // first GGUF range, doubled as needed
constexpr int64_t kMaxHeaderFetch = int64_t{512} << 20;  // prefix fetched from one file
constexpr char kHeaderMagic[] = "vramfit-header 1\n";

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

std::string Trim(std::string s) {
  const auto ws = [](unsigned char c) { return std::isspace(c) != 0; };
  while (!s.empty() && ws(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && ws(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

// Percent-encoding of one path segment (RFC 3986 unreserved kept).
std::string Quote(std::string_view s, bool keep_slash) {
  std::string out;
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += ch;
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

// A repository-relative path we are willing to request and cache.
bool SafePath(std::string_view p) {
  if (p.empty() || p.front() == '/' || p.size() > 1024) return false;
  size_t start = 0;
  while (start <= p.size()) {
    size_t slash = p.find('/', start);
    if (slash == std::string_view::npos) slash = p.size();
    const std::string_view seg = p.substr(start, slash - start);
    if (seg.empty() || seg == "." || seg == "..") return false;
    start = slash + 1;
  }
  return std::none_of(p.begin(), p.end(), [](char ch) {
    const unsigned char c = static_cast<unsigned char>(ch);
    return c < 0x20 || c == 0x7f || ch == '\\';
  });
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}

bool SafeName(std::string_view s) {
  return !s.empty() && s.size() <= 96 && s != "." && s != ".." &&
         std::all_of(s.begin(), s.end(), [](char ch) {
           return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.';
         });
}

bool IsCommitHash(std::string_view s) {
  return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char ch) {
           return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
         });
}

// ---------------------------------------------------------------------------
// The cache: <root>/models--ORG--NAME/{refs/<rev>, snapshots/<commit>/<path>}.
// Every write goes to a temporary file that is renamed into place, so a run
// interrupted at any point leaves either the old file or the new one.

Status AtomicWrite(const fs::path& path, const std::string& data) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return Error{ErrorKind::kIo, fmt::format("{}: cannot create: {}", path.parent_path().string(), ec.message())};
  static int counter = 0;
  const fs::path tmp = path.string() + fmt::format(".tmp.{}.{}", ::getpid(), ++counter);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    out.flush();
    if (!out) {
      fs::remove(tmp, ec);
      return Error{ErrorKind::kIo, fmt::format("{}: cannot write", tmp.string())};
    }
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return Error{ErrorKind::kIo, fmt::format("{}: cannot write: {}", path.string(), ec.message())};
  }
  return {};
}

std::optional<std::string> ReadCacheFile(const fs::path& p, int64_t limit) {
  std::error_code ec;
  const auto size = fs::file_size(p, ec);
  if (ec || size > static_cast<uintmax_t>(limit)) return std::nullopt;
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A cached header prefix: kHeaderMagic, the file's full size, a newline,
// then the prefix bytes.
std::string EncodeHeader(int64_t size, const std::string& bytes) {
  return std::string(kHeaderMagic) + std::to_string(size) + "\n" + bytes;
}
std::optional<std::pair<int64_t, std::string>> DecodeHeader(const std::string& s) {
  const std::string magic = kHeaderMagic;
  if (s.compare(0, magic.size(), magic) != 0) return std::nullopt;
  const size_t nl = s.find('\n', magic.size());
  // At most 18 digits: the size stays below 10^18 < 2^63 (no overflow).
  if (nl == std::string::npos || nl - magic.size() > 18) return std::nullopt;
  int64_t size = 0;
  for (size_t i = magic.size(); i < nl; ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    size = size * 10 + (s[i] - '0');
  }
  std::string bytes = s.substr(nl + 1);
  if (static_cast<int64_t>(bytes.size()) > size) return std::nullopt;
  return std::make_pair(size, std::move(bytes));
}

// ---------------------------------------------------------------------------
// HTTP with libcurl.

struct Response {
  long status = 0;
  std::vector<std::map<std::string, std::string>> headers;  // one map per response (redirects)
  std::string body;
  CURLcode code = CURLE_OK;
  std::string curl_error;
  bool too_big = false;

  // The last response's header (lower-case name), or any earlier one's.
  std::string Header(const std::string& name) const {
    for (auto it = headers.rbegin(); it != headers.rend(); ++it) {
      auto h = it->find(name);
      if (h != it->end()) return h->second;
    }
    return {};
  }
  std::string FinalHeader(const std::string& name) const {
    if (headers.empty()) return {};
    auto h = headers.back().find(name);
    return h == headers.back().end() ? std::string() : h->second;
  }
};

// The libcurl entry points vramfit uses, resolved from libcurl.so.4 (the
// soname of every libcurl 7.x/8.x) on first use.
struct CurlApi {
  CURLcode (*global_init)(long);
  CURL* (*easy_init)();
  void (*easy_cleanup)(CURL*);
  void (*easy_reset)(CURL*);
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...);
  CURLcode (*easy_perform)(CURL*);
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...);
  const char* (*easy_strerror)(CURLcode);
  curl_slist* (*slist_append)(curl_slist*, const char*);
  void (*slist_free_all)(curl_slist*);
};

// The loaded API, or nullptr with *why set ("cannot load libcurl.so.4: ...").
// Loaded once per process; the library stays loaded.
const CurlApi* LoadCurl(std::string* why) {
  static std::string error;
  static const CurlApi* api = [] () -> const CurlApi* {
    void* lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      const char* e = dlerror();
      error = fmt::format("cannot load libcurl.so.4, which hf: models need ({}); install libcurl (Debian: "
                          "apt-get install libcurl4)", e != nullptr ? e : "unknown reason");
      return nullptr;
    }
    static CurlApi a;
    bool all = true;
    const auto sym = [&](auto& fn, const char* name) {
      void* p = dlsym(lib, name);
      if (p == nullptr) {
        if (all) error = fmt::format("libcurl.so.4 has no {}: the library is too old or broken", name);
        all = false;
      }
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(p);
    };
    sym(a.global_init, "curl_global_init");
    sym(a.easy_init, "curl_easy_init");
    sym(a.easy_cleanup, "curl_easy_cleanup");
    sym(a.easy_reset, "curl_easy_reset");
    sym(a.easy_setopt, "curl_easy_setopt");
    sym(a.easy_perform, "curl_easy_perform");
    sym(a.easy_getinfo, "curl_easy_getinfo");
    sym(a.easy_strerror, "curl_easy_strerror");
    sym(a.slist_append, "curl_slist_append");
    sym(a.slist_free_all, "curl_slist_free_all");
    if (!all) return nullptr;
    a.global_init(CURL_GLOBAL_DEFAULT);
    return &a;
  }();
  if (api == nullptr && why != nullptr) *why = error;
  return api;
}

class Http {
 public:
  explicit Http(const HubOptions& o) : o_(o) {}
  ~Http() {
    if (curl_ != nullptr) api_->easy_cleanup(curl_);
  }
  Http(const Http&) = delete;
  Http& operator=(const Http&) = delete;

  // Loads libcurl and makes the handle, once; the error text when that fails.
  std::optional<std::string> Init() {
    if (curl_ != nullptr) return std::nullopt;
    std::string why;
    api_ = LoadCurl(&why);
    if (api_ == nullptr) return why;
    curl_ = api_->easy_init();
    if (curl_ == nullptr) return std::string("cannot initialise libcurl");
    return std::nullopt;
  }

  // One GET of `url`, bytes [first, first + n) when n > 0, else the whole
  // body; at most `limit` body bytes are accepted. REQUIRES: Init() succeeded.
  Response Get(const std::string& url, int64_t first, int64_t n, int64_t limit) {
    Response r;
    if (curl_ == nullptr) {
      r.code = CURLE_FAILED_INIT;
      r.curl_error = "cannot initialise libcurl";
      return r;
    }
    const CurlApi& c = *api_;
    c.easy_reset(curl_);
    char err[CURL_ERROR_SIZE] = {0};
    Sink sink{&r, limit};
    c.easy_setopt(curl_, CURLOPT_URL, url.c_str());
    c.easy_setopt(curl_, CURLOPT_FOLLOWLOCATION, 1L);
    c.easy_setopt(curl_, CURLOPT_MAXREDIRS, 10L);
    c.easy_setopt(curl_, CURLOPT_ERRORBUFFER, err);
    c.easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    c.easy_setopt(curl_, CURLOPT_USERAGENT, "vramfit/0.1 (libcurl)");
    c.easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT, static_cast<long>(o_.timeout_s));
    // A transfer that moves less than 1 byte/s for timeout_s is stalled.
    c.easy_setopt(curl_, CURLOPT_LOW_SPEED_LIMIT, 1L);
    c.easy_setopt(curl_, CURLOPT_LOW_SPEED_TIME, static_cast<long>(o_.timeout_s));
    c.easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &Http::OnBody);
    c.easy_setopt(curl_, CURLOPT_WRITEDATA, &sink);
    c.easy_setopt(curl_, CURLOPT_HEADERFUNCTION, &Http::OnHeader);
    c.easy_setopt(curl_, CURLOPT_HEADERDATA, &r);
    std::string range;
    if (n > 0) {
      range = fmt::format("{}-{}", first, first + n - 1);
      c.easy_setopt(curl_, CURLOPT_RANGE, range.c_str());
    }
    struct curl_slist* hdrs = nullptr;
    std::string auth;
    if (!o_.token.empty()) {
      // libcurl (>= 7.58) sends a custom Authorization header only to the
      // host of the original URL, never to a redirect target (the CDN).
      auth = "Authorization: Bearer " + o_.token;
      hdrs = c.slist_append(hdrs, auth.c_str());
    }
    hdrs = c.slist_append(hdrs, "Accept-Encoding: identity");
    c.easy_setopt(curl_, CURLOPT_HTTPHEADER, hdrs);
    r.code = c.easy_perform(curl_);
    c.easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &r.status);
    c.slist_free_all(hdrs);
    if (r.code != CURLE_OK) r.curl_error = err[0] != 0 ? std::string(err) : c.easy_strerror(r.code);
    return r;
  }

 private:
  struct Sink {
    Response* r;
    int64_t limit;
  };
  static size_t OnBody(char* p, size_t size, size_t n, void* user) {
    Sink* s = static_cast<Sink*>(user);
    const size_t bytes = size * n;
    if (static_cast<int64_t>(s->r->body.size() + bytes) > s->limit) {
      s->r->too_big = true;
      return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
    }
    s->r->body.append(p, bytes);
    return bytes;
  }
  static size_t OnHeader(char* p, size_t size, size_t n, void* user) {
    Response* r = static_cast<Response*>(user);
    const size_t bytes = size * n;
    std::string line(p, bytes);
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
    if (line.rfind("HTTP/", 0) == 0) {
      r->headers.emplace_back();
      return bytes;
    }
    const size_t colon = line.find(':');
    if (colon == std::string::npos || r->headers.empty()) return bytes;
    std::string key = line.substr(0, colon);
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    r->headers.back()[key] = Trim(line.substr(colon + 1));
    return bytes;
  }

  const HubOptions& o_;
  const CurlApi* api_ = nullptr;
  CURL* curl_ = nullptr;
};

// ---------------------------------------------------------------------------

// What was fetched from one file: its full size and the prefix held.
struct Fetched {
  int64_t size = -1;
  std::string bytes;
  bool whole = false;  // a small file fetched whole (config, index)
};

class Client;

// A Hub file read through range requests: a growing prefix [0, held).
// Safetensors reads ask for exactly what they need; GGUF reads grow the
// range by doubling, since the header's end is not known in advance.
class RemoteFile : public FileReader {
 public:
  RemoteFile(Client* c, std::string path, std::string name, Fetched* f, bool grow)
      : c_(c), path_(std::move(path)), name_(std::move(name)), f_(f), grow_(grow) {}
  const std::string& name() const override { return name_; }
  int64_t size() const override { return f_->size; }
  Result<std::string> Read(int64_t offset, int64_t n) override;

 private:
  Client* c_;
  std::string path_;
  std::string name_;
  Fetched* f_;
  bool grow_;
};

class Client {
 public:
  Client(const HubRef& ref, const HubOptions& o)
      : ref_(ref), o_(o), http_(o), start_(Clock::now()), where_(ref.text) {}
  ~Client() {
    if (progress_shown_ && o_.progress) o_.progress("");
  }

  const std::string& where() const { return where_; }
  const HubOptions& options() const { return o_; }
  const std::string& commit() const { return commit_; }

  fs::path RepoCache() const {
    const size_t slash = ref_.repo.find('/');
    return fs::path(o_.cache_dir) /
           fmt::format("models--{}--{}", ref_.repo.substr(0, slash), ref_.repo.substr(slash + 1));
  }
  fs::path Snapshot() const { return RepoCache() / "snapshots" / commit_; }
  fs::path RefFile() const { return RepoCache() / "refs" / Quote(ref_.revision, false); }

  std::string Url(const std::string& path) const {
    return fmt::format("{}/{}/resolve/{}/{}", o_.endpoint, ref_.repo, Quote(ref_.revision, false),
                       Quote(path, true));
  }

  void Progress(const std::string& what) {
    if (!o_.progress) return;
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start_).count();
    if (ms < o_.progress_after_ms) return;
    progress_shown_ = true;
    o_.progress(fmt::format("vramfit: {}: {}", where_, what));
  }

  // GET with retries. n > 0: a range. A missing file is answered with
  // status 404 (and *missing = true) when missing != nullptr.
  Result<Response> Fetch(const std::string& path, int64_t first, int64_t n, int64_t limit, bool* missing) {
    if (auto why = http_.Init()) return Unsupported(fmt::format("{}: {}", where_, *why));
    const std::string url = Url(path);
    int64_t delay = o_.retry_delay_ms;
    for (int attempt = 0;; ++attempt) {
      Response r = http_.Get(url, first, n, limit);
      const bool last = attempt >= o_.retries;
      if (r.code == CURLE_OK) {
        if (r.status == 429 || r.status == 500 || r.status == 502 || r.status == 503 || r.status == 504) {
          if (!last) {
            int64_t wait = delay;
            const std::string ra = r.FinalHeader("retry-after");
            if (AllDigits(ra) && ra.size() < 4) {
              wait = std::min<int64_t>(std::stoll(ra) * 1000, 60000);
            }
            Progress(fmt::format("HTTP {} for {}, retrying in {:.1f} s", r.status, path, static_cast<double>(wait) / 1000.0));
            std::this_thread::sleep_for(std::chrono::milliseconds(wait));
            delay *= 2;
            continue;
          }
        }
        const std::string commit = r.Header("x-repo-commit");
        if (!commit.empty() && commit_.empty() && (IsCommitHash(commit) || SafeName(commit))) commit_ = commit;
        if (r.status == 200 || r.status == 206) return r;
        return HttpError(r, path, missing);
      }
      if (r.too_big) {
        if (n > 0) {
          return Error{ErrorKind::kNetwork,
                       fmt::format("{}: {}: the server ignored the HTTP range request (sent more than {} "
                                   "bytes); refusing to download the whole file", where_, path, limit)};
        }
        return Corrupt(fmt::format("{}: {} is larger than {} MiB", where_, path, limit >> 20));
      }
      const bool transient = r.code == CURLE_OPERATION_TIMEDOUT || r.code == CURLE_COULDNT_CONNECT ||
                             r.code == CURLE_RECV_ERROR || r.code == CURLE_SEND_ERROR ||
                             r.code == CURLE_GOT_NOTHING || r.code == CURLE_PARTIAL_FILE;
      if (!transient || last) return NetError(r, attempt + 1);
      Progress(fmt::format("{}, retrying in {:.1f} s", Describe(r), static_cast<double>(delay) / 1000.0));
      std::this_thread::sleep_for(std::chrono::milliseconds(delay));
      delay *= 2;
    }
  }

  // A small file fetched whole (config.json, the index).
  Result<std::string> GetSmall(const std::string& path, bool* missing) {
    Progress(fmt::format("fetching {}", path));
    auto r = Fetch(path, 0, 0, kMaxSmallFile, missing);
    if (!r.ok()) return r.error();
    Fetched& f = fetched_[path];
    f.size = static_cast<int64_t>(r->body.size());
    f.bytes = r->body;
    f.whole = true;
    return std::move(r->body);
  }

  // Opens a large file: fetches its first `first_n` bytes (which also tells
  // its size).
  Result<std::unique_ptr<FileReader>> OpenRemote(const std::string& path, int64_t first_n, bool grow,
                                                 bool* missing) {
    Progress(fmt::format("reading the header of {}{}", path, counter_text_));
    auto r = Fetch(path, 0, first_n, first_n, missing);
    if (!r.ok()) return r.error();
    Fetched& f = fetched_[path];
    f.bytes = r->body;
    if (r->status == 206) {
      // Content-Range: bytes 0-7/12345
      const std::string cr = r->FinalHeader("content-range");
      const size_t slash = cr.rfind('/');
      int64_t total = -1;
      // At most 18 digits, so std::stoll cannot throw out_of_range.
      if (slash != std::string::npos && slash + 1 < cr.size() && slash + 1 + 18 >= cr.size()) {
        const std::string t = cr.substr(slash + 1);
        if (AllDigits(t)) total = std::stoll(t);
      }
      if (total < static_cast<int64_t>(f.bytes.size())) {
        return Error{ErrorKind::kNetwork, fmt::format("{}: {}: the server's Content-Range '{}' does not give the "
                                                      "file size", where_, path, cr.substr(0, 64))};
      }
      f.size = total;
    } else {
      f.size = static_cast<int64_t>(f.bytes.size());  // 200: the whole (small) file
    }
    return std::unique_ptr<FileReader>(new RemoteFile(this, path, FileName(path), &f, grow));
  }

  // Fetches more of a remote file; called by RemoteFile::Read.
  Status Extend(const std::string& path, Fetched& f, int64_t need_end, bool grow) {
    const int64_t held = static_cast<int64_t>(f.bytes.size());
    int64_t end = need_end;
    if (grow) end = std::max(need_end, std::min(f.size, held * 2));
    end = std::min(end, f.size);
    if (end > kMaxHeaderFetch) {
      return Corrupt(fmt::format("{}/{}: the header needs more than {} MiB; refusing to fetch more", where_,
                                 path, kMaxHeaderFetch >> 20));
    }
    Progress(fmt::format("reading the header of {}{} ({} KiB so far)", path, counter_text_, held / 1024));
    auto r = Fetch(path, held, end - held, end - held, nullptr);
    if (!r.ok()) return r.error();
    if (r->status != 206 || static_cast<int64_t>(r->body.size()) != end - held) {
      return Error{ErrorKind::kNetwork, fmt::format("{}/{}: the server answered bytes {}-{} with {} bytes (HTTP {})",
                                                    where_, path, held, end - 1, r->body.size(), r->status)};
    }
    f.bytes += r->body;
    return {};
  }

  // A file's name in messages: "hf:org/name[@rev]/path".
  std::string FileName(const std::string& path) const {
    const bool rev = ref_.text.find('@') != std::string::npos;
    return fmt::format("hf:{}{}/{}", ref_.repo, rev ? "@" + ref_.revision : "", path);
  }

  void SetCounter(size_t i, size_t n) { counter_text_ = n > 1 ? fmt::format(" ({}/{})", i, n) : ""; }

  // Writes what was fetched to the cache (small files whole, large files as
  // header prefixes) and the revision -> commit ref. Failures become a note.
  void SaveCache(std::vector<std::string>* notes) {
    if (o_.cache_dir.empty() || o_.offline) return;
    if (commit_.empty()) commit_ = SafeName(ref_.revision) ? ref_.revision : Quote(ref_.revision, false);
    Status st = AtomicWrite(RefFile(), commit_);
    for (const auto& [path, f] : fetched_) {
      if (!st.ok()) break;
      const fs::path p = Snapshot() / path;
      st = f.whole ? AtomicWrite(p, f.bytes) : AtomicWrite(p.string() + ".vramfit-header", EncodeHeader(f.size, f.bytes));
    }
    if (!st.ok() && notes != nullptr) notes->push_back("the Hub header cache was not written: " + st.error().message);
  }

  // Offline / cache lookups, in the snapshot of commit_.
  std::optional<std::string> CachedSmall(const std::string& path) const {
    if (o_.cache_dir.empty() || commit_.empty()) return std::nullopt;
    return ReadCacheFile(Snapshot() / path, kMaxSmallFile);
  }
  std::unique_ptr<FileReader> CachedHeader(const std::string& path) const {
    if (o_.cache_dir.empty() || commit_.empty()) return nullptr;
    auto raw = ReadCacheFile(Snapshot() / (path + ".vramfit-header"), kMaxHeaderFetch + 64);
    if (!raw) return nullptr;
    auto h = DecodeHeader(*raw);
    if (!h) return nullptr;
    return NewMemoryReader(FileName(path), std::move(h->second), h->first);
  }
  // Resolves the revision from refs/ (offline).
  bool ResolveOffline() {
    if (IsCommitHash(ref_.revision)) {
      commit_ = ref_.revision;
      return true;
    }
    auto c = ReadCacheFile(RefFile(), 256);
    if (!c) return false;
    const std::string commit = Trim(*c);
    if (!(IsCommitHash(commit) || SafeName(commit))) return false;
    commit_ = commit;
    return true;
  }
  void SetCommitIfUnknown() {
    if (commit_.empty()) commit_ = SafeName(ref_.revision) ? ref_.revision : Quote(ref_.revision, false);
  }
  bool CommitIsHash() const { return IsCommitHash(commit_); }

 private:
  static std::string Describe(const Response& r) {
    switch (r.code) {
      case CURLE_COULDNT_RESOLVE_HOST: return "cannot resolve the host name";
      case CURLE_COULDNT_RESOLVE_PROXY: return "cannot resolve the proxy host name";
      case CURLE_COULDNT_CONNECT: return "cannot connect (connection refused or unreachable)";
      case CURLE_OPERATION_TIMEDOUT: return "timed out";
      case CURLE_SSL_CONNECT_ERROR: case CURLE_PEER_FAILED_VERIFICATION: return "TLS error: " + r.curl_error;
      case CURLE_TOO_MANY_REDIRECTS: return "too many redirects";
      default: return r.curl_error;
    }
  }
  Error NetError(const Response& r, int attempts) const {
    return Error{ErrorKind::kNetwork,
                 fmt::format("{}: cannot reach {}: {}{}", where_, o_.endpoint, Describe(r),
                             attempts > 1 ? fmt::format(" (after {} attempts)", attempts) : "")};
  }
  Error HttpError(const Response& r, const std::string& path, bool* missing) const {
    const std::string code = r.Header("x-error-code");
    const std::string page = fmt::format("{}/{}", o_.endpoint, ref_.repo);
    const bool token = !o_.token.empty();
    if (code == "GatedRepo" || (r.status == 403 && code != "RepoNotFound")) {
      return Error{ErrorKind::kNetwork,
                   token ? fmt::format("{}: the repository is gated and your token has no access (HTTP {}): "
                                       "accept its terms at {}", where_, r.status, page)
                         : fmt::format("{}: the repository is gated (HTTP {}): accept its terms at {} and set "
                                       "HF_TOKEN", where_, r.status, page)};
    }
    if (r.status == 401 || code == "RepoNotFound") {
      return Error{ErrorKind::kNotFound,
                   token ? fmt::format("{}: repository not found, or your token cannot see it (HTTP {})", where_,
                                       r.status)
                         : fmt::format("{}: repository not found (HTTP {}); if it is private, set HF_TOKEN",
                                       where_, r.status)};
    }
    if (code == "RevisionNotFound") {
      return NotFound(fmt::format("{}: revision '{}' not found (HTTP {})", where_, ref_.revision, r.status));
    }
    if (r.status == 404) {
      if (missing != nullptr) *missing = true;
      return NotFound(fmt::format("{}: {} not found at revision '{}' (HTTP 404)", where_, path, ref_.revision));
    }
    std::string msg = r.Header("x-error-message");
    if (msg.size() > 120) msg = msg.substr(0, 117) + "...";
    return Error{ErrorKind::kNetwork, fmt::format("{}: {}: the Hub answered HTTP {}{}", where_, path, r.status,
                                                  msg.empty() ? "" : ": " + msg)};
  }

  HubRef ref_;
  const HubOptions& o_;
  Http http_;
  Clock::time_point start_;
  std::string where_;
  std::string commit_;
  std::map<std::string, Fetched> fetched_;  // node-stable: RemoteFile keeps pointers
  std::string counter_text_;
  bool progress_shown_ = false;
};

Result<std::string> RemoteFile::Read(int64_t offset, int64_t n) {
  if (offset < 0 || n < 0 || offset > f_->size || n > f_->size - offset) {
    return Error{ErrorKind::kInternal, fmt::format("{}: read of {} bytes at offset {} is outside the file ({} bytes)",
                                                   name_, n, offset, f_->size)};
  }
  if (offset + n > static_cast<int64_t>(f_->bytes.size())) {
    VRAMFIT_TRY(c_->Extend(path_, *f_, offset + n, grow_));
  }
  CountRead(n);
  return f_->bytes.substr(static_cast<size_t>(offset), static_cast<size_t>(n));
}

Error OfflineMiss(const Client& c, const std::string& what) {
  return NotFound(fmt::format("{}: {} is not in the cache and HF_HUB_OFFLINE=1 is set (cache: {})", c.where(),
                              what, c.options().cache_dir.empty() ? "none" : c.RepoCache().string()));
}

Result<Model> LoadGgufFromHub(Client& c, const HubRef& ref, std::vector<std::string>* notes) {
  const bool offline = c.options().offline;
  if (offline && !c.ResolveOffline()) return OfflineMiss(c, "revision '" + ref.revision + "'");
  auto open = [&](const std::string& path) -> Result<std::unique_ptr<FileReader>> {
    if (offline) {
      auto r = c.CachedHeader(path);
      if (!r) return OfflineMiss(c, path);
      return r;
    }
    return c.OpenRemote(path, kGgufFirstRange, /*grow=*/true, nullptr);
  };
  auto first = open(ref.file);
  if (!first.ok()) return first.error();
  auto m = LoadGgufModel(**first, ref.file, open, ref.text, notes);
  if (!m.ok()) return m.error();
  c.SaveCache(notes);
  return m;
}

Result<Model> LoadSafetensorsFromHub(Client& c, const HubRef& ref, std::vector<std::string>* notes) {
  const bool offline = c.options().offline;
  std::string config;
  if (offline) {
    if (!c.ResolveOffline()) return OfflineMiss(c, "revision '" + ref.revision + "'");
    auto cached = c.CachedSmall("config.json");
    if (!cached) return OfflineMiss(c, "config.json");
    config = std::move(*cached);
  } else {
    bool missing = false;
    auto r = c.GetSmall("config.json", &missing);
    if (!r.ok()) {
      if (missing) {
        return NotFound(fmt::format("{}: no config.json at revision '{}'; for a GGUF repository name the file: "
                                    "hf:{}/FILE.gguf", ref.text, ref.revision, ref.repo));
      }
      return r.error();
    }
    config = std::move(r.value());
    c.SetCommitIfUnknown();
  }
  // Cached headers are reused online only when the revision resolved to a
  // commit hash (a branch name may have moved).
  const bool use_cache = offline || c.CommitIsHash();

  const std::string index_name = "model.safetensors.index.json";
  std::optional<SafetensorsIndex> index;
  std::string index_where = ref.text + "/" + index_name;
  std::optional<std::string> index_text = use_cache ? c.CachedSmall(index_name) : std::nullopt;
  if (!index_text && !offline) {
    bool missing = false;
    auto r = c.GetSmall(index_name, &missing);
    if (r.ok()) index_text = std::move(r.value());
    else if (!missing) return r.error();
  }
  std::vector<std::string> shards;
  if (index_text) {
    auto idx = ParseSafetensorsIndex(*index_text, index_where);
    if (!idx.ok()) return idx.error();
    index = std::move(idx.value());
    shards = index->shards;
  } else {
    shards = {"model.safetensors"};
  }

  size_t opened = 0;
  bool single_missing = false;
  auto open = [&](const std::string& shard) -> Result<std::unique_ptr<FileReader>> {
    c.SetCounter(++opened, shards.size());
    if (use_cache) {
      if (auto r = c.CachedHeader(shard)) return r;
    }
    if (offline) return OfflineMiss(c, shard);
    bool missing = false;
    auto r = c.OpenRemote(shard, 8, /*grow=*/false, &missing);
    if (!r.ok() && missing && !index) single_missing = true;
    return r;
  };
  std::vector<std::string> local;
  auto m = ModelFromCheckpoint(config, ref.text + "/config.json", shards, index ? &*index : nullptr, index_where,
                               open, ref.text, &local);
  const bool no_weights_online = !m.ok() && single_missing;
  const bool no_headers_cached = !m.ok() && offline && !index && m.error().kind == ErrorKind::kNotFound;
  if (no_weights_online || no_headers_cached) {
    // No index and no model.safetensors (a checkpoint in another format,
    // such as pytorch_model.bin), or none cached: size it from config.json.
    local.clear();
    m = ModelFromCheckpoint(config, ref.text + "/config.json", {}, nullptr, "", open, ref.text, &local);
    if (m.ok()) {
      local.push_back(no_weights_online
                          ? fmt::format("{} has no safetensors weights: weights are sized from config.json", ref.text)
                          : fmt::format("no safetensors header of {} is in the cache: weights are sized from "
                                        "config.json", ref.text));
    }
  }
  if (notes != nullptr) notes->insert(notes->end(), local.begin(), local.end());
  if (!m.ok()) return m.error();
  c.SaveCache(notes);
  return m;
}

}  // namespace

Result<HubRef> ParseHubRef(std::string_view text) {
  const auto bad = [&] {
    return InvalidArgument(fmt::format("model '{}': expected hf:ORG/NAME[@REV] or hf:ORG/NAME[@REV]/FILE.gguf",
                                       text.size() > 200 ? std::string(text.substr(0, 200)) + "..." : std::string(text)));
  };
  if (text.rfind("hf:", 0) != 0) return bad();
  HubRef r;
  r.text = std::string(text);
  std::string_view s = text.substr(3);
  const size_t slash1 = s.find('/');
  if (slash1 == std::string_view::npos) return bad();
  const std::string_view org = s.substr(0, slash1);
  std::string_view rest = s.substr(slash1 + 1);
  const size_t slash2 = rest.find('/');
  std::string_view name = rest.substr(0, slash2);
  std::string_view file = slash2 == std::string_view::npos ? std::string_view() : rest.substr(slash2 + 1);
  const size_t at = name.find('@');
  if (at != std::string_view::npos) {
    r.revision = std::string(name.substr(at + 1));
    name = name.substr(0, at);
    if (r.revision.empty() || !SafePath(r.revision)) return bad();
  }
  if (!SafeName(org) || !SafeName(name)) return bad();
  if (slash2 != std::string_view::npos) {
    if (!SafePath(file)) return bad();
    const std::string_view ext = ".gguf";
    if (file.size() <= ext.size() || file.substr(file.size() - ext.size()) != ext) {
      return InvalidArgument(fmt::format("model '{}': only a .gguf file can be named after the repository; for "
                                         "a safetensors model use hf:{}/{}", text, org, name));
    }
    r.file = std::string(file);
  }
  r.repo = fmt::format("{}/{}", org, name);
  return r;
}

HubOptions HubOptionsFromEnv() {
  HubOptions o;
  std::string ep = Env("HF_ENDPOINT");
  while (!ep.empty() && ep.back() == '/') ep.pop_back();
  if (!ep.empty()) o.endpoint = ep;
  std::string home = Env("HF_HOME");
  if (home.empty()) {
    const std::string xdg = Env("XDG_CACHE_HOME");
    const std::string user = Env("HOME");
    if (!xdg.empty()) home = xdg + "/huggingface";
    else if (!user.empty()) home = user + "/.cache/huggingface";
  }
  o.token = Trim(Env("HF_TOKEN"));
  if (o.token.empty()) o.token = Trim(Env("HUGGING_FACE_HUB_TOKEN"));
  if (o.token.empty()) {
    std::string path = Env("HF_TOKEN_PATH");
    if (path.empty() && !home.empty()) path = home + "/token";
    if (!path.empty()) {
      if (auto t = ReadCacheFile(path, 4096)) o.token = Trim(*t);
    }
  }
  if (!home.empty()) o.cache_dir = home + "/vramfit";
  const std::string off = Env("HF_HUB_OFFLINE");
  o.offline = off == "1" || off == "ON" || off == "on" || off == "true" || off == "TRUE" || off == "yes";
  const std::string t = Env("HF_HUB_DOWNLOAD_TIMEOUT");
  if (AllDigits(t) && t.size() < 6 && std::stoll(t) > 0) {
    o.timeout_s = std::stoll(t);
  }
  const bool tty = ::isatty(2) != 0;
  o.progress = [tty, shown = false, last = Clock::time_point()](const std::string& line) mutable {
    if (line.empty()) {
      if (shown && tty) std::cerr << "\n";
      return;
    }
    if (tty) {
      std::cerr << "\r" << line << "\x1b[K" << std::flush;
      shown = true;
    } else if (Clock::now() - last > std::chrono::seconds(2)) {
      std::cerr << line << "\n";
      last = Clock::now();
      shown = true;
    }
  };
  return o;
}

Result<Model> LoadHubModel(std::string_view text, const HubOptions& options, std::vector<std::string>* notes) {
  auto ref = ParseHubRef(text);
  if (!ref.ok()) return ref.error();
  Client c(*ref, options);
  try {
    return ref->file.empty() ? LoadSafetensorsFromHub(c, *ref, notes) : LoadGgufFromHub(c, *ref, notes);
  } catch (const OverflowError&) {
    return Corrupt(fmt::format("{}: sizes overflow 64 bits", ref->text));
  } catch (const std::bad_alloc&) {
    return Error{ErrorKind::kIo, fmt::format("{}: out of memory while reading headers", ref->text)};
  }
}

}  // namespace vramfit
