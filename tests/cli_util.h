// Runs the CLI in-process for whole-output tests.
#ifndef VRAMFIT_TESTS_CLI_UTIL_H_
#define VRAMFIT_TESTS_CLI_UTIL_H_

#include <sstream>
#include <string>
#include <vector>

#include "cli/cli.h"

namespace vramfit::testing {

struct CliRun {
  int code;
  std::string out;
  std::string err;
};

// `vramfit ARGS...`: exit code, stdout, stderr.
inline CliRun Cli(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const int code = cli::Run(args, out, err);
  return {code, out.str(), err.str()};
}

}  // namespace vramfit::testing

#endif  // VRAMFIT_TESTS_CLI_UTIL_H_
