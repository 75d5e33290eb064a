// The load balancers' command line (resumelb and zkresumelb share it).
//
// gflags parses long options (--address=:8080). The original's short options
// (-a :8080, -LINFO, -r SPEC, ...) and dashed long names (--backlog-history=9) are rewritten
// into that form first, per program, because -v means --variance for resumelb and
// --single_version for zkresumelb.
#ifndef RESUMELB_ZKLB_LB_COMMAND_LINE_H_
#define RESUMELB_ZKLB_LB_COMMAND_LINE_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "zklb/lb_options.h"

namespace rlb::lb {

struct ShortOption {
  char letter;
  const char* flag;
  bool takes_value;
};

// The short options of resumelb / zkresumelb.
const std::vector<ShortOption>& ResumelbShortOptions();
const std::vector<ShortOption>& ZkResumelbShortOptions();

// Rewrites argv into gflags' form. Unknown short options are an error.
StatusOr<std::vector<std::string>> TranslateArgs(int argc, char** argv,
                                                 const std::vector<ShortOption>& table);

// Parses the (translated) command line with gflags; returns the positional arguments.
StatusOr<std::vector<std::string>> ParseFlags(std::vector<std::string> args);

// Builds the options from the parsed flags. `variance_default` is the variance when the
// flag is not given (4.0 for resumelb, the pool's 1.0 for zkresumelb).
StatusOr<LbOptions> OptionsFromFlags(double variance_default);

// The group named `name` (for --status_socket_group); InvalidArgument when there is none.
StatusOr<gid_t> LookUpGroup(const std::string& name);

// True when --check was given: validate, print nothing more, exit.
bool CheckOnly();

// The pool `options.pool` names, with `settings` (zkresumelb passes the defaults: its
// settings come from ZooKeeper). REQUIRES: options came from OptionsFromFlags.
std::unique_ptr<Pool> NewPoolFromOptions(const LbOptions& options, const PoolSettings& settings);

// True for the pools that keep résumés and place classes (balanced, resume, classic).
bool IsResumePool(const LbOptions& options);

// Runs `run(options_for_process)` as options.processes processes under a master
// (common/process_group.h) and returns the master's exit status; with processes == 1,
// simply returns run(options). For a group the listening address is first reserved with
// SO_REUSEPORT (port 0 becomes one free port for all); each process gets reuse_port, its
// own status socket (ProcessFilePath: lb.sock -> lb.I.sock) and admin port (PORT+I; 0
// stays 0).
// Returns the error of the reservation (e.g. the address in use) without starting any.
StatusOr<int> RunLbProcesses(const std::string& program, const LbOptions& options,
                             const std::function<int(const LbOptions&)>& run);

// The flags' section of --help, shared by both programs.
const char* LbFlagsHelp();

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_LB_COMMAND_LINE_H_
