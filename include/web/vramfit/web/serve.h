// The web library's one public entry point: `vramfit serve`.
#ifndef VRAMFIT_WEB_SERVE_H_
#define VRAMFIT_WEB_SERVE_H_

#include <iosfwd>
#include <string>

namespace vramfit::web {

// Serves the web calculator and its JSON API on host:port (0 picks a free
// port) until interrupted; prints the address to out and errors to err.
// Returns the process exit code.
int Serve(const std::string& host, int port, std::ostream& out, std::ostream& err);

}  // namespace vramfit::web

#endif  // VRAMFIT_WEB_SERVE_H_
