// `vramfit serve`: the JSON API (web/api.h) and the embedded page over HTTP
// (cpp-httplib), with the limits in docs/web.md: loopback by default, 1 MiB
// request bodies (32 MiB for header uploads), read/write timeouts, a bounded
// worker pool, no file system access from requests.
#ifndef VRAMFIT_SRC_WEB_SERVER_H_
#define VRAMFIT_SRC_WEB_SERVER_H_

#include <cstddef>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>

#include "vramfit/error.h"
#include "api.h"

namespace vramfit::web {

struct ServerOptions {
  std::string host = "127.0.0.1";  // Default: loopback only
  int port = 8080;                 // 0: any free port (Bind returns it)
  size_t threads = 32;             // worker threads; each serves one connection at a time,
                                   // idle keep-alive ones included, so a new connection waits
                                   // only when more than this many clients are connected
  size_t queue = 64;               // accepted connections waiting for a worker; beyond it
                                   // accept() waits (the kernel's backlog holds the rest)
  int read_timeout_s = 5;          // per read on a connection
  int write_timeout_s = 5;         // per write
  int keep_alive_timeout_s = 3;    // an idle keep-alive connection is closed after this
  size_t keep_alive_max = 100;     // requests per connection
};

// True for 127.0.0.0/8, ::1 and "localhost".
bool IsLoopback(std::string_view host);

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();  // stops and joins
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket. Returns the port (the chosen one when
  // options.port is 0). Error: "serve: cannot listen on 127.0.0.1:80: <reason>".
  Result<int> Bind();

  // Serves until Stop(). REQUIRES: Bind() succeeded.
  void Run();

  // Stops Run(); safe from any thread, idempotent; returns at once (Run
  // returns after the workers finish their current requests).
  void Stop();

  // True while Run() is accepting connections.
  bool running() const;

  Api& api();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The whole `vramfit serve` command: warns on stderr when the host is not a
// loopback address, binds, prints "vramfit: serving http://HOST:PORT/" on
// out, and serves until SIGINT or SIGTERM. Returns the exit code (0, or 1
// when it cannot listen, with "vramfit: error: ..." on err).
int Serve(const ServerOptions& options, std::ostream& out, std::ostream& err);

}  // namespace vramfit::web

#endif  // VRAMFIT_SRC_WEB_SERVER_H_
