// Program: the preamble every executable (daemons and tools) shares: -h/--help, the usage
// and version gflags reports, and the one-line error a bad command line gets.
//
// Thread rules: StartProgram() once, first thing in main(), before other threads start;
// Fail() afterwards from the main thread.
#ifndef RESUMELB_COMMON_PROGRAM_H_
#define RESUMELB_COMMON_PROGRAM_H_

#include <string_view>

namespace rlb {

// The exit status of a program refusing its command line or configuration.
inline constexpr int kExitUsage = 2;

// Prints `usage` on stdout and exits 0 when an argument is exactly "-h" or "--help" (before
// gflags, whose --help would list every library's flags). Otherwise registers `usage` and
// the project version with gflags, so that --helpfull and --version work without gflags'
// "SetUsageMessage() never called" warning, and remembers `name` for Fail().
void StartProgram(std::string_view name, std::string_view usage, int argc, char** argv);

// Prints "NAME: error: MESSAGE" on stderr (NAME as given to StartProgram).
void ReportError(std::string_view message);

// ReportError(message), then returns kExitUsage, for `return Fail(...)` in main().
int Fail(std::string_view message);

}  // namespace rlb

#endif  // RESUMELB_COMMON_PROGRAM_H_
