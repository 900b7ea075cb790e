// vramfit: GPU memory for LLM inference and training, before the GPU-hour.
#include <iostream>
#include <string>
#include <vector>

#include "cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return vramfit::cli::Run(args, std::cout, std::cerr);
}
