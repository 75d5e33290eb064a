// Program: help, usage/version registration and the error line of every executable.
#include "common/program.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include <gflags/gflags.h>

#include "common/logging_setup.h"
#include "common/version.h"

namespace rlb {
namespace {

std::string& ProgramName() {
  static std::string* name = new std::string("resumelb");
  return *name;
}

}  // namespace

void StartProgram(std::string_view name, std::string_view usage, int argc, char** argv) {
  ProgramName() = std::string(name);
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fwrite(usage.data(), 1, usage.size(), stdout);
      std::exit(0);
    }
  }
  // gflags prints "NAME: USAGE": drop the usage's own "NAME: " so it is not said twice.
  std::string prefix = std::string(name) + ": ";
  if (usage.substr(0, prefix.size()) == prefix) usage.remove_prefix(prefix.size());
  gflags::SetUsageMessage(std::string(usage));
  gflags::SetVersionString(kVersion);
}

void ReportError(std::string_view message) { PrintError(ProgramName(), message); }

int Fail(std::string_view message) {
  ReportError(message);
  return kExitUsage;
}

}  // namespace rlb
