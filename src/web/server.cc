// HTTP transport for the web API and the embedded page (cpp-httplib 0.11).
#include "server.h"

#include "vramfit/web/serve.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <ostream>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <httplib.h>

#include "vramfit/render.h"
#include "assets.h"

namespace vramfit::web {
namespace {

constexpr int kListenBacklog = 128;  // pending connections the kernel holds

// A fixed set of worker threads over a bounded queue of accepted
// connections. httplib's own ThreadPool queues without limit; here the
// accept loop waits once `max_queue` connections are waiting, so a flood of
// connections costs the kernel's listen backlog, not our memory.
class BoundedPool : public httplib::TaskQueue {
 public:
  BoundedPool(size_t threads, size_t max_queue) : max_queue_(max_queue == 0 ? 1 : max_queue) {
    for (size_t i = 0; i < (threads == 0 ? 1 : threads); ++i) {
      workers_.emplace_back([this] { Work(); });
    }
  }
  ~BoundedPool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::unique_lock<std::mutex> lock(mu_);
    not_full_.wait(lock, [&] { return jobs_.size() < max_queue_ || stopping_; });
    jobs_.push_back(std::move(fn));  // after shutdown too: each job closes its socket
    not_empty_.notify_one();
  }

  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ && workers_.empty()) return;
      stopping_ = true;
    }
    not_empty_.notify_all();
    not_full_.notify_all();
    for (std::thread& t : workers_) t.join();
    workers_.clear();
  }

 private:
  void Work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mu_);
        not_empty_.wait(lock, [&] { return !jobs_.empty() || stopping_; });
        if (jobs_.empty()) return;  // stopping, and nothing left to close
        fn = std::move(jobs_.front());
        jobs_.pop_front();
      }
      not_full_.notify_one();
      fn();
    }
  }

  const size_t max_queue_;
  std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> workers_;
  bool stopping_ = false;
};

std::string MiBText(size_t n) { return fmt::format("{} MiB", n >> 20); }

void SendJson(httplib::Response& res, const Response& r) {
  res.status = r.status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(r.body, r.content_type.c_str());
}

void SendError(httplib::Response& res, int status, const Error& e) { SendJson(res, ErrorResponse(e, status)); }

// The page's files by URL path ("/" -> web/index.html).
const io::EmbeddedFile* FindAsset(const std::string& path) {
  const std::string name = "web" + (path == "/" ? std::string("/index.html") : path);
  for (size_t i = 0; i < io::kWebAssetCount; ++i) {
    if (name == io::kWebAssets[i].name) return &io::kWebAssets[i];
  }
  return nullptr;
}

const char* ContentType(const std::string& name) {
  const auto ends = [&](const char* s) {
    const size_t n = std::strlen(s);
    return name.size() >= n && name.compare(name.size() - n, n, s) == 0;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".json")) return "application/json";
  return "application/octet-stream";
}

// The host part of a Host header ("localhost:8080" -> "localhost",
// "[::1]:80" -> "::1").
std::string HostOnly(const std::string& host_header) {
  if (!host_header.empty() && host_header.front() == '[') {
    const size_t close = host_header.find(']');
    return close == std::string::npos ? host_header : host_header.substr(1, close - 1);
  }
  return host_header.substr(0, host_header.find(':'));
}

}  // namespace

bool IsLoopback(std::string_view host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

struct Server::Impl {
  ServerOptions options;
  httplib::Server http;
  Api api;
  int port = -1;
  int listen_fd = -1;  // the socket httplib bound (seen by the socket options hook)
  std::atomic<int> uploads_in_flight{0};
  std::atomic<bool> stop_requested{false};

  // Reads a POST body through the content reader, keeping at most `limit`
  // bytes; past it, up to kMaxUploadBytes more are read and dropped so the
  // connection stays in step. On failure fills `res` and returns false.
  bool ReadBody(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader,
                size_t limit, std::string* body) {
    size_t seen = 0;
    const bool ok = reader([&](const char* data, size_t n) {
      seen += n;
      if (seen <= limit) {
        body->append(data, n);
        return true;
      }
      return seen <= kMaxUploadBytes;  // drop, then give up on endless streams
    });
    if (seen > limit || res.status == 413) {
      const std::string len = req.get_header_value("Content-Length");
      res.set_header("Connection", "close");
      SendError(res, 413,
                InvalidArgument(fmt::format("request: body of {} bytes exceeds the {} limit for {}",
                                            len.empty() ? fmt::format("more than {}", limit) : len,
                                            MiBText(limit), req.path)));
      return false;
    }
    if (!ok) {
      res.set_header("Connection", "close");
      SendError(res, 400, InvalidArgument("request: the body could not be read (truncated or too slow)"));
      return false;
    }
    return true;
  }

  // Registers a POST endpoint with its body limit; GET on it answers 405.
  void Post(const std::string& path, size_t limit, std::function<Response(std::string_view)> handle) {
    http.Post(path, [this, limit, handle](const httplib::Request& req, httplib::Response& res,
                                          const httplib::ContentReader& reader) {
      std::string body;
      if (!ReadBody(req, res, reader, limit, &body)) return;
      SendJson(res, handle(body));
    });
    http.Get(path, [path](const httplib::Request&, httplib::Response& res) {
      res.set_header("Allow", "POST");
      SendError(res, 405, InvalidArgument(fmt::format("request: {} takes POST with a JSON body", path)));
    });
  }

  // Registers a GET endpoint; POST on it answers 405 (after reading the
  // body, within the usual limit, so the connection stays in step).
  void Get(const std::string& path, std::function<Response(const httplib::Request&)> handle) {
    http.Get(path, [handle](const httplib::Request& req, httplib::Response& res) { SendJson(res, handle(req)); });
    http.Post(path, [this, path](const httplib::Request& req, httplib::Response& res,
                                 const httplib::ContentReader& reader) {
      std::string body;
      if (!ReadBody(req, res, reader, kMaxBodyBytes, &body)) return;
      res.set_header("Allow", "GET");
      SendError(res, 405, InvalidArgument(fmt::format("request: {} takes GET", path)));
    });
  }

  void Routes() {
    Post("/api/v1/estimate", kMaxBodyBytes, [this](std::string_view b) { return api.Estimate(b); });
    Post("/api/v1/series", kMaxBodyBytes, [this](std::string_view b) { return api.Series(b); });
    Post("/api/v1/fit", kMaxBodyBytes, [this](std::string_view b) { return api.Fit(b); });
    Post("/api/v1/upload", kMaxUploadBytes, [this](std::string_view b) {
      // At most two uploads are decoded at once: each may hold 32 MiB.
      if (uploads_in_flight.fetch_add(1) >= 2) {
        uploads_in_flight.fetch_sub(1);
        return ErrorResponse(Unsupported("upload: the server is reading other uploads; try again"), 503);
      }
      Response r = api.Upload(b);
      uploads_in_flight.fetch_sub(1);
      return r;
    });
    // inspect: GET ?model=ID, or POST {"config": ...} / {"model": ...}.
    http.Get("/api/v1/inspect", [this](const httplib::Request& req, httplib::Response& res) {
      SendJson(res, api.InspectGet(req.get_param_value("model")));
    });
    http.Post("/api/v1/inspect", [this](const httplib::Request& req, httplib::Response& res,
                                        const httplib::ContentReader& reader) {
      std::string body;
      if (!ReadBody(req, res, reader, kMaxBodyBytes, &body)) return;
      SendJson(res, api.InspectPost(body));
    });
    Get("/api/v1/models", [this](const httplib::Request& req) { return api.Models(req.get_param_value("q")); });
    Get("/api/v1/gpus", [this](const httplib::Request& req) { return api.Gpus(req.get_param_value("q")); });
    Get("/api/v1/version", [this](const httplib::Request&) { return api.Version(); });

    // The page: embedded files only; a path never reaches the file system.
    http.Get(R"(/|/[A-Za-z0-9_.-]+)", [](const httplib::Request& req, httplib::Response& res) {
      const io::EmbeddedFile* f = FindAsset(req.path);
      if (f == nullptr) {
        SendError(res, 404, NotFound(fmt::format("request: no page or endpoint at {}", req.path)));
        return;
      }
      res.set_header("Cache-Control", "no-cache");
      if (std::string_view(f->name).ends_with(".html")) {
        res.set_header("Content-Security-Policy",
                       "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
      }
      res.set_content(std::string(f->data, f->size), ContentType(f->name));
    });
  }

  void Configure() {
    http.new_task_queue = [this] { return new BoundedPool(options.threads, options.queue); };
    http.set_payload_max_length(kMaxUploadBytes);
    // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let
    // a second `vramfit serve` bind the same port and share its traffic.
    // TCP_NODELAY (inherited by accepted sockets): httplib writes a response's
    // headers and body separately, and with Nagle's algorithm the body waits
    // for the client's delayed ACK of the headers, ~40 ms per request on a
    // keep-alive connection (measured with bench/load_web: p50 88 ms without,
    // docs/web.md "Load test").
    http.set_tcp_nodelay(true);
    http.set_socket_options([this](socket_t sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
      setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
      listen_fd = sock;  // the last one offered is the one bound
    });
    http.set_read_timeout(options.read_timeout_s, 0);
    http.set_write_timeout(options.write_timeout_s, 0);
    http.set_keep_alive_timeout(options.keep_alive_timeout_s);
    http.set_keep_alive_max_count(options.keep_alive_max);
    http.set_default_headers({{"X-Content-Type-Options", "nosniff"},
                              {"Referrer-Policy", "no-referrer"},
                              {"X-Frame-Options", "DENY"}});
    const bool loopback = IsLoopback(options.host);
    http.set_pre_routing_handler([loopback](const httplib::Request& req, httplib::Response& res) {
      // DNS-rebinding guard: a page on another site that resolves its own
      // name to 127.0.0.1 sends its own Host; a loopback server answers
      // only to loopback names.
      if (loopback) {
        const std::string host = HostOnly(req.get_header_value("Host"));
        if (!IsLoopback(host)) {
          SendError(res, 403, InvalidArgument(fmt::format(
                                  "request: Host '{}' is not a loopback name; this server answers only to "
                                  "localhost and 127.0.0.1",
                                  host)));
          return httplib::Server::HandlerResponse::Handled;
        }
      }
      // A POST must say how long its body is (chunked bodies are read too,
      // within the same limits); without either there is no body to read.
      if (req.method == "POST" && !req.has_header("Content-Length") && !req.has_header("Transfer-Encoding")) {
        res.set_header("Connection", "close");
        SendError(res, 411, InvalidArgument("request: POST without Content-Length"));
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    // Errors httplib raises itself (bad request line, 404, 413, 414) get
    // the same JSON document as ours; responses with a body are ours.
    http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req,
                                                                   httplib::Response& res) {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      Error e = InvalidArgument(fmt::format("request: HTTP {}", res.status));
      switch (res.status) {
        case 400: e = InvalidArgument("request: malformed HTTP request"); break;
        case 404:
          e = NotFound(fmt::format("request: no endpoint {} {}", req.method, req.path));
          break;
        case 413:
          e = InvalidArgument(fmt::format("request: body of {} bytes exceeds the {} limit",
                                          req.get_header_value("Content-Length"), MiBText(kMaxUploadBytes)));
          break;
        case 414: e = InvalidArgument("request: the URI is longer than 8192 bytes"); break;
        default:
          if (res.status >= 500) e = Error{ErrorKind::kInternal, fmt::format("request: HTTP {}", res.status)};
      }
      SendJson(res, ErrorResponse(e, res.status));
      return httplib::Server::HandlerResponse::Handled;
    }));
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "unknown exception";
      try {
        if (ep) std::rethrow_exception(ep);
      } catch (const std::exception& ex) {
        what = ex.what();
      } catch (...) {
      }
      SendError(res, 422, Unsupported(fmt::format("request: could not be processed ({})", what)));
    });
    Routes();
  }
};

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->Configure();
}

Server::~Server() { Stop(); }

Result<int> Server::Bind() {
  const ServerOptions& o = impl_->options;
  if (o.port < 0 || o.port > 65535) {
    return InvalidArgument(fmt::format("--port: expected 0 to 65535, got {}", o.port));
  }
  errno = 0;
  int port = -1;
  if (o.port == 0) {
    port = impl_->http.bind_to_any_port(o.host);
  } else if (impl_->http.bind_to_port(o.host, o.port)) {
    port = o.port;
  }
  if (port <= 0) {
    return Error{ErrorKind::kIo, fmt::format("serve: cannot listen on {}:{}: {}", o.host, o.port,
                                             errno != 0 ? std::strerror(errno) : "the address is not usable")};
  }
  // httplib 0.11 listens with a backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG,
  // fixed in Debian's compiled library): more simultaneous connects than that
  // (a browser opens 6) lose their SYN and retry after 1 s, then 3 s
  // (bench/load_web saw 1 s and 3 s outliers). listen() again on the bound
  // socket only raises the backlog (Linux listen(2)).
  if (impl_->listen_fd >= 0) ::listen(impl_->listen_fd, kListenBacklog);
  impl_->port = port;
  return port;
}

void Server::Run() {
  if (impl_->stop_requested) return;
  impl_->http.listen_after_bind();
}

void Server::Stop() {
  impl_->stop_requested = true;
  impl_->http.stop();
}

bool Server::running() const { return impl_->http.is_running(); }

Api& Server::api() { return impl_->api; }

int Serve(const ServerOptions& options, std::ostream& out, std::ostream& err) {
  if (!IsLoopback(options.host)) {
    err << fmt::format(
        "vramfit: warning: --host {} is not a loopback address: anyone who can reach this machine on "
        "port {} can use this server (it reads no files; requests are limited in size and time)\n",
        options.host, options.port);
  }
  // SIGINT/SIGTERM are taken by one thread with sigwait; blocking them here,
  // before any worker starts, keeps them away from every other thread.
  sigset_t signals, old;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, &old);

  Server server(options);
  auto port = server.Bind();
  if (!port.ok()) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    err << "vramfit: error: " << port.error().message << "\n";
    return 1;
  }
  const std::string host = options.host.find(':') != std::string::npos ? "[" + options.host + "]" : options.host;
  out << fmt::format("vramfit: serving http://{}:{}/ (Ctrl-C stops)", host, *port) << std::endl;

  std::atomic<bool> done{false};
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    // Run may not have started listening yet: keep asking until it returns.
    while (!done) {
      server.Stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  server.Run();
  done = true;
  pthread_kill(waiter.native_handle(), SIGTERM);  // wakes the waiter if no signal came
  waiter.join();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return 0;
}

}  // namespace vramfit::web

namespace vramfit::web {

int Serve(const std::string& host, int port, std::ostream& out, std::ostream& err) {
  ServerOptions o;
  o.host = host;
  o.port = port;
  return Serve(o, out, err);
}

}  // namespace vramfit::web
