// The command-line frontend: a table of subcommands over the application
// layer (include/vramfit/app/). It starts the web server only through the
// web library's public entry point (include/vramfit/web/serve.h).
#ifndef VRAMFIT_SRC_CLI_CLI_H_
#define VRAMFIT_SRC_CLI_CLI_H_

#include <iosfwd>
#include <string>
#include <vector>

namespace vramfit::cli {

// Runs the CLI on args (without argv[0]); returns the exit code.
// Output goes to out, errors ("vramfit: error: ...") to err.
int Run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace vramfit::cli

#endif  // VRAMFIT_SRC_CLI_CLI_H_
