// A bounded load test of `vramfit serve` on loopback.
//
//   load_web [--requests 20000] [--connections 8] [--bad-every 5] [--port P]
//
// Without --port it starts the server in-process on 127.0.0.1 (a free port,
// the default ServerOptions); with --port it targets a running
// `vramfit serve` on 127.0.0.1:P. Each connection is one keep-alive client
// sending a fixed, seeded mix: estimates over several models, GPUs, contexts
// and batches, series, catalog and inspect GETs; every `bad-every`-th request
// is malformed (broken JSON, unknown setting or model, a bad value, an
// oversized body, a wrong method, or raw garbage on a fresh socket).
// Reports latency percentiles and status counts; exits 1 if any good request
// failed, any bad one got a 5xx or no answer, or the server stopped answering.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
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
};

const char* const kModels[] = {"meta-llama/Llama-3.1-8B", "Qwen/Qwen3-30B-A3B", "mistralai/Mixtral-8x7B-v0.1",
                               "meta-llama/Llama-3.1-70B", "Qwen/Qwen3-8B"};
const char* const kGpus[] = {"RTX-4090", "H100-80GB", "A100-80GBx2", "L4", "H100-80GBx8"};

// A raw request on its own socket: garbage the HTTP parser must reject.
int RawGarbage(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return 0;
  }
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

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(v.size())));
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  int requests = 20000, connections = 8, bad_every = 5, port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const int v = std::atoi(argv[i + 1]);
    if (a == "--requests") requests = v;
    else if (a == "--connections") connections = v;
    else if (a == "--bad-every") bad_every = v;
    else if (a == "--port") port = v;
    else {
      std::fprintf(stderr, "usage: load_web [--requests N] [--connections N] [--bad-every N] [--port P]\n");
      return 2;
    }
  }
  if (requests < 1 || connections < 1 || bad_every < 1) return 2;

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
      const int mine = requests / connections + (t < requests % connections ? 1 : 0);
      for (int i = 0; i < mine; ++i) {
        const int n = i * connections + t;  // global request number
        const bool bad = n % bad_every == bad_every - 1;
        const auto t0 = std::chrono::steady_clock::now();
        int status = 0;
        const char* model = kModels[rng() % 5];
        const char* gpu = kGpus[rng() % 5];
        const auto code = [](const httplib::Result& r) { return r ? r->status : 0; };
        if (bad) {
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
          const int kind = static_cast<int>(rng() % 20);
          if (kind < 14) {
            const std::string body = fmt::format(R"({{"model": "{}", "gpu": ["{}"], "ctx": {}, "batch": {}}})", model,
                                                 gpu, 512 << (rng() % 7), 1 + rng() % 8);
            status = code(c.Post("/api/v1/estimate", body, "application/json"));
          } else if (kind < 16) {
            status = code(c.Post(
                "/api/v1/series",
                fmt::format(R"({{"model": "{}", "gpu": "{}", "vary": "ctx", "values": [1024, 4096, 16384, 65536]}})",
                            model, gpu),
                "application/json"));
          } else if (kind < 18) {
            status = code(c.Get(kind == 16 ? "/api/v1/models?q=llama" : "/api/v1/gpus?q=h100"));
          } else {
            std::string id = model;
            id.replace(id.find('/'), 1, "%2F");
            status = code(c.Get("/api/v1/inspect?model=" + id));
          }
        }
        const double ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        samples[static_cast<size_t>(t)].push_back({ms, status, bad});
      }
    });
  }
  for (std::thread& t : clients) t.join();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

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
  std::string gs, bs;
  for (const auto& [k, n] : good_status) gs += fmt::format(" {}x{}", k, n);
  for (const auto& [k, n] : bad_status) bs += fmt::format(" {}x{}", k, n);
  std::printf("  good statuses:%s\n  bad statuses: %s\n", gs.c_str(), bs.c_str());
  std::printf("  good requests failed: %d; bad requests without a 4xx: %d; server %s afterwards\n", good_failed,
              bad_failed, up ? "answering" : "NOT answering");
  if (server) {
    server->Stop();
    server_thread.join();
  }
  return good_failed == 0 && bad_failed == 0 && up ? 0 : 1;
}
