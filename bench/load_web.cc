// A bounded load test of `vramfit serve` on loopback.
//
//   load_web [--requests 20000] [--connections 8] [--bad-every 5] [--slow 16] [--port P]
//
// Without --port it starts the server in-process on 127.0.0.1 (a free port,
// the default ServerOptions); with --port it targets a running
// `vramfit serve` on 127.0.0.1:P. Each connection is one keep-alive client
// sending a fixed, seeded mix: estimates over several models, GPUs, contexts
// and batches, series, catalog and inspect GETs; every `bad-every`-th request
// is malformed (broken JSON, unknown setting or model, a bad value, an
// oversized body, a wrong method, or raw garbage on a fresh socket).
// Then the limits: `--slow` connections (twice the workers by default) that
// stall mid-request (in the request line, in the headers, in a body shorter
// than its Content-Length) must each be closed by the server within its read
// timeout plus slack, while a good request still gets through; a declared
// 2 GB body and a streamed 2 MiB body must get 413 without the server
// reading them whole.
// Reports latency percentiles and status counts; exits 1 if any good request
// failed, any bad one got a 5xx or no answer, a limit did not hold, or the
// server stopped answering.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <httplib.h>

#include "web/server.h"

namespace {

struct Sample {
  double ms;
  int status;  // 0: no response
  bool bad;
  int kind;  // which kind of request (kKinds)
};

const char* const kKinds[] = {"estimate", "fit", "series", "catalog", "inspect",
                              "bad: cut JSON", "bad: unknown setting", "bad: unknown model", "bad: ctx -5",
                              "bad: [] or 1 MiB+", "bad: GET", "bad: garbage"};

const char* const kModels[] = {"meta-llama/Llama-3.1-8B", "Qwen/Qwen3-30B-A3B", "mistralai/Mixtral-8x7B-v0.1",
                               "meta-llama/Llama-3.1-70B", "Qwen/Qwen3-8B"};
const char* const kGpus[] = {"RTX-4090", "H100-80GB", "A100-80GBx2", "L4", "H100-80GBx8"};

// A TCP connection to the server on loopback; -1 if it cannot connect.
int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// A raw request on its own socket: garbage the HTTP parser must reject.
int RawGarbage(int port) {
  const int fd = Connect(port);
  if (fd < 0) return 0;
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const char req[] = "\x16\x03\x01 this is not HTTP\r\n\r\n";
  send(fd, req, sizeof req - 1, MSG_NOSIGNAL);
  char buf[64] = {};
  const ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
  close(fd);
  int status = 0;
  if (n > 12 && std::sscanf(buf, "HTTP/1.1 %d", &status) == 1) return status;
  return 0;
}

// A client that sends `prefix` and then nothing. Returns how long the server
// took to close the connection (seconds; -1 if it was still open after
// `give_up_s`) and the status it answered (0: none).
struct Stall {
  double answered_after_s = -1;  // the first byte of an answer
  double closed_after_s = -1;
  int status = 0;
};
Stall StallingClient(int port, const std::string& prefix, double give_up_s) {
  Stall out;
  const int fd = Connect(port);
  if (fd < 0) return out;
  const auto t0 = std::chrono::steady_clock::now();
  send(fd, prefix.data(), prefix.size(), MSG_NOSIGNAL);
  std::string got;
  char buf[512];
  for (;;) {
    const double left = give_up_s - std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left * 1000) + 1) <= 0) continue;
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      out.closed_after_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      break;
    }
    if (got.empty()) {
      out.answered_after_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    got.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  if (got.size() > 12) std::sscanf(got.c_str(), "HTTP/1.1 %d", &out.status);
  return out;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(v.size())));
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  int requests = 20000, connections = 8, bad_every = 5, slow = 16, port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const int v = std::atoi(argv[i + 1]);
    if (a == "--requests") requests = v;
    else if (a == "--connections") connections = v;
    else if (a == "--bad-every") bad_every = v;
    else if (a == "--slow") slow = v;
    else if (a == "--port") port = v;
    else {
      std::fprintf(stderr, "usage: load_web [--requests N] [--connections N] [--bad-every N] [--slow N] [--port P]\n");
      return 2;
    }
  }
  if (requests < 1 || connections < 1 || bad_every < 1 || slow < 0) return 2;

  std::unique_ptr<vramfit::web::Server> server;
  std::thread server_thread;
  if (port == 0) {
    vramfit::web::ServerOptions o;
    o.port = 0;
    server = std::make_unique<vramfit::web::Server>(o);
    auto p = server->Bind();
    if (!p.ok()) {
      std::fprintf(stderr, "load_web: %s\n", p.error().message.c_str());
      return 1;
    }
    port = *p;
    server_thread = std::thread([&] { server->Run(); });
    while (!server->running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  const std::string oversized(vramfit::web::kMaxBodyBytes + 100, ' ');
  std::vector<std::vector<Sample>> samples(static_cast<size_t>(connections));
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> clients;
  for (int t = 0; t < connections; ++t) {
    clients.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(1234 + t));
      httplib::Client c("127.0.0.1", port);
      c.set_read_timeout(30, 0);
      c.set_keep_alive(true);
      c.set_tcp_nodelay(true);  // as browsers do; httplib writes headers and body apart
      const int mine = requests / connections + (t < requests % connections ? 1 : 0);
      for (int i = 0; i < mine; ++i) {
        const int n = i * connections + t;  // global request number
        const bool bad = n % bad_every == bad_every - 1;
        const auto t0 = std::chrono::steady_clock::now();
        int status = 0;
        const char* model = kModels[rng() % 5];
        const char* gpu = kGpus[rng() % 5];
        const auto code = [](const httplib::Result& r) { return r ? r->status : 0; };
        int kind = 0;
        if (bad) {
          kind = 5 + (n / bad_every) % 7;
          switch ((n / bad_every) % 7) {
            case 0: status = code(c.Post("/api/v1/estimate", R"({"model": "meta-llama/Llama-3.1-8B", "ctx": )", "application/json")); break;
            case 1: status = code(c.Post("/api/v1/estimate", R"({"model": "meta-llama/Llama-3.1-8B", "bach": 4})", "application/json")); break;
            case 2: status = code(c.Post("/api/v1/estimate", R"({"model": "nobody/Nothing-7B", "gpu": "RTX-4090"})", "application/json")); break;
            case 3: status = code(c.Post("/api/v1/estimate", R"({"model": "meta-llama/Llama-3.1-8B", "ctx": -5})", "application/json")); break;
            case 4: status = (n / bad_every) % 49 == 4 ? code(c.Post("/api/v1/estimate", oversized, "application/json"))
                                                       : code(c.Post("/api/v1/estimate", "[]", "application/json"));
                    break;
            case 5: status = code(c.Get("/api/v1/estimate")); break;
            case 6: status = RawGarbage(port); break;
          }
        } else {
          const int k = static_cast<int>(rng() % 20);
          kind = k < 13 ? 0 : k < 14 ? 1 : k < 16 ? 2 : k < 18 ? 3 : 4;
          if (k < 13) {
            const std::string body = fmt::format(R"({{"model": "{}", "gpu": ["{}"], "ctx": {}, "batch": {}}})", model,
                                                 gpu, 512 << (rng() % 7), 1 + rng() % 8);
            status = code(c.Post("/api/v1/estimate", body, "application/json"));
          } else if (k < 14) {
            static const char* const kSolves[] = {"max-context", "max-batch", "best-quant", "min-gpus"};
            const std::string one_gpu = std::string(gpu).substr(0, std::string(gpu).find('x'));
            status = code(c.Post("/api/v1/fit",
                                 fmt::format(R"({{"model": "{}", "gpu": "{}", "solve": "{}"}})", model, one_gpu,
                                             kSolves[rng() % 4]),
                                 "application/json"));
          } else if (k < 16) {
            status = code(c.Post(
                "/api/v1/series",
                fmt::format(R"({{"model": "{}", "gpu": "{}", "vary": "ctx", "values": [1024, 4096, 16384, 65536]}})",
                            model, gpu),
                "application/json"));
          } else if (k < 18) {
            status = code(c.Get(k == 16 ? "/api/v1/models?q=llama" : "/api/v1/gpus?q=h100"));
          } else {
            std::string id = model;
            id.replace(id.find('/'), 1, "%2F");
            status = code(c.Get("/api/v1/inspect?model=" + id));
          }
        }
        const double ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        samples[static_cast<size_t>(t)].push_back({ms, status, bad, kind});
      }
    });
  }
  for (std::thread& t : clients) t.join();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // The limits. Stalled clients: more of them than workers, each must be
  // closed within the read timeout (5 s) plus slack, with a 4xx or nothing.
  const vramfit::web::ServerOptions defaults;
  // Workers take the stalled connections in rounds of `threads`. A stalled
  // read ends after the read timeout (5 s); a connection answered 400 then
  // waits the keep-alive timeout (3 s) for another request before it closes.
  const double rounds = std::ceil(static_cast<double>(slow) / static_cast<double>(defaults.threads));
  const double limit_s = rounds * (defaults.read_timeout_s + defaults.keep_alive_timeout_s) + 2.0;
  const char* const kStallNames[] = {"request line", "headers", "short body"};
  const std::string kStalls[] = {
      "GET /api/v1/vers",
      "GET /api/v1/version HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
      "POST /api/v1/estimate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Content-Length: 1000\r\n\r\n{\"model\": ",
  };
  std::vector<Stall> stalls(static_cast<size_t>(slow));
  std::vector<std::thread> stallers;
  const auto slow_start = std::chrono::steady_clock::now();
  for (int i = 0; i < slow; ++i) {
    stallers.emplace_back([&, i] { stalls[static_cast<size_t>(i)] = StallingClient(port, kStalls[i % 3], 30.0); });
  }
  // While they stall, a good request still gets an answer.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  double during_ms = -1;
  int during_status = 0;
  {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(30, 0);
    const auto t0 = std::chrono::steady_clock::now();
    auto r = c.Post("/api/v1/estimate", R"({"model": "meta-llama/Llama-3.1-8B", "gpu": "RTX-4090"})",
                    "application/json");
    during_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    during_status = r ? r->status : 0;
  }
  for (std::thread& t : stallers) t.join();
  const double slow_wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - slow_start).count();
  int stalls_held = 0;
  double stall_max = 0;
  std::map<std::string, std::map<int, int>> stall_status;
  for (int i = 0; i < slow; ++i) {
    const Stall& st = stalls[static_cast<size_t>(i)];
    stall_status[kStallNames[i % 3]][st.status] += 1;
    if (st.closed_after_s < 0 || st.closed_after_s > limit_s || (st.status != 0 && st.status < 400) ||
        st.status >= 500) {
      ++stalls_held;
    }
    stall_max = std::max(stall_max, st.closed_after_s < 0 ? 1e9 : st.closed_after_s);
  }
  // Oversized bodies: declared (never sent) and streamed.
  int oversized_declared = 0, oversized_streamed = 0;
  double declared_s = 0;
  {
    const auto t0 = std::chrono::steady_clock::now();
    const Stall st =
        StallingClient(port,
                       "POST /api/v1/estimate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       "Content-Length: 2000000000\r\n\r\n{",
                       30.0);
    oversized_declared = st.status;
    declared_s = st.answered_after_s;
    (void)t0;
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(30, 0);
    const std::string chunk(64 << 10, ' ');
    auto r = c.Post("/api/v1/estimate",
                    [&](size_t offset, httplib::DataSink& sink) {
                      if (offset < (size_t{2} << 20)) sink.write(chunk.data(), chunk.size());
                      else sink.done();
                      return true;
                    },
                    "application/json");
    oversized_streamed = r ? r->status : 0;
  }

  // Still up?
  httplib::Client probe("127.0.0.1", port);
  auto alive = probe.Get("/api/v1/version");
  const bool up = alive && alive->status == 200;

  std::vector<double> all, good_ms, bad_ms;
  std::map<int, int> good_status, bad_status;
  int good_failed = 0, bad_failed = 0;
  for (const auto& v : samples) {
    for (const Sample& s : v) {
      all.push_back(s.ms);
      (s.bad ? bad_ms : good_ms).push_back(s.ms);
      (s.bad ? bad_status : good_status)[s.status] += 1;
      if (!s.bad && s.status != 200) ++good_failed;
      if (s.bad && (s.status < 400 || s.status >= 500)) ++bad_failed;
    }
  }
  std::printf("load_web: %d requests over %d keep-alive connections to 127.0.0.1:%d (%s server), 1 in %d malformed\n",
              requests, connections, port, server ? "in-process" : "external", bad_every);
  std::printf("  wall %.2f s, %.0f requests/s\n", wall, static_cast<double>(requests) / wall);
  const auto line = [](const char* name, const std::vector<double>& v) {
    std::printf("  %-6s n=%-6zu p50 %7.2f ms   p90 %7.2f ms   p99 %7.2f ms   max %7.2f ms\n", name, v.size(),
                Percentile(v, 50), Percentile(v, 90), Percentile(v, 99), Percentile(v, 100));
  };
  line("all", all);
  line("good", good_ms);
  line("bad", bad_ms);
  // Per kind: where the time and the failures are.
  for (int k = 0; k < 12; ++k) {
    std::vector<double> v;
    std::map<int, int> st;
    for (const auto& per : samples) {
      for (const Sample& x : per) {
        if (x.kind != k) continue;
        v.push_back(x.ms);
        st[x.status] += 1;
      }
    }
    std::string ss;
    for (const auto& [code, n] : st) ss += fmt::format(" {}x{}", code, n);
    std::printf("    %-22s n=%-6zu p50 %7.2f ms   p99 %7.2f ms   max %7.2f ms  %s\n", kKinds[k], v.size(),
                Percentile(v, 50), Percentile(v, 99), Percentile(v, 100), ss.c_str());
  }
  std::string gs, bs;
  for (const auto& [k, n] : good_status) gs += fmt::format(" {}x{}", k, n);
  for (const auto& [k, n] : bad_status) bs += fmt::format(" {}x{}", k, n);
  std::printf("  good statuses:%s\n  bad statuses: %s\n", gs.c_str(), bs.c_str());
  std::printf("limits: %d stalled connections (%d workers by default), %.1f s in all\n", slow, static_cast<int>(defaults.threads),
              slow_wall);
  for (const auto& [name, st] : stall_status) {
    std::string ss;
    for (const auto& [k, n] : st) ss += fmt::format(" {}x{}", k == 0 ? std::string("none") : std::to_string(k), n);
    std::printf("  stalled in the %-12s answered:%s\n", name.c_str(), ss.c_str());
  }
  double answer_max = 0;
  for (const Stall& st : stalls) answer_max = std::max(answer_max, st.answered_after_s);
  std::printf("  every stalled connection closed by the server within %.2f s (limit %.0f s); %d held past it;"
              " answers (when any) within %.2f s\n",
              stall_max, limit_s, stalls_held, answer_max);
  std::printf("  a good request during the stall: %d in %.0f ms\n", during_status, during_ms);
  std::printf("  Content-Length 2000000000: %d in %.3f s; a streamed 2 MiB body: %d\n", oversized_declared, declared_s,
              oversized_streamed);
  const bool limits_ok = stalls_held == 0 && during_status == 200 && oversized_declared == 413 &&
                         oversized_streamed == 413;
  std::printf("  good requests failed: %d; bad requests without a 4xx: %d; limits %s; server %s afterwards\n",
              good_failed, bad_failed, limits_ok ? "held" : "DID NOT hold", up ? "answering" : "NOT answering");
  if (server) {
    server->Stop();
    server_thread.join();
  }
  return good_failed == 0 && bad_failed == 0 && limits_ok && up ? 0 : 1;
}
