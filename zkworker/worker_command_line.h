// zkworker's command line and Paste Deploy [server:main] section, parsed into WorkerOptions.
//
// The section can only be read once Python runs (PasteDeploy's loader does the reading),
// and Python needs some settings (virtualenv, pythonpath) from the command line first, so
// parsing has three steps, in this order:
//   1. WorkerCommandLine::Parse(argc, argv)   flags and the CONFIG.ini argument;
//   2. MergeServerSection(section)            [server:main]: a flag given on the command
//                                             line wins over the file;
//   3. Finish()                               validation, defaults, WorkerOptions.
// The gflags flags are defined and read only in worker_command_line.cc.
//
// Thread rules: main thread, before the loop runs. Errors are one line for the user.
#ifndef RESUMELB_ZKWORKER_WORKER_COMMAND_LINE_H_
#define RESUMELB_ZKWORKER_WORKER_COMMAND_LINE_H_

#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "zkworker/worker_options.h"
#include "zkworker/wsgi_host.h"

namespace rlb::worker {

// The most processes one master supervises.
inline constexpr int kMaxProcesses = 1024;

// True when argv asks for help (--help, -h or -help anywhere): print WorkerUsage() and
// exit 0 before anything else runs.
bool WantsHelp(int argc, char** argv);
// The --help text.
const char* WorkerUsage();

// True when an argument is exactly "--version" (before gflags, whose own --version would
// print only the project version): print WorkerVersionText() and exit 0.
bool WantsVersion(int argc, char** argv);
// "zkworker VERSION" and, one a line, "LIBRARY VERSION" for libuv, the ZooKeeper C client
// and the Python it runs applications with. Needs no initialized interpreter.
std::string WorkerVersionText();

class WorkerCommandLine {
 public:
  WorkerCommandLine() = default;  // empty; use Parse()

  // Parses the flags and the optional CONFIG.ini argument, which must be readable. An
  // unknown flag is InvalidArgument; a value a typed flag cannot parse is reported by
  // gflags itself, which exits 1.
  static StatusOr<WorkerCommandLine> Parse(int argc, char** argv);

  // The CONFIG.ini path; empty when the application is given by --app.
  const std::string& ini_path() const { return ini_path_; }
  // What Python is started with: the command line's virtualenv and pythonpath (plus the
  // current directory without CONFIG.ini, gunicorn's convention).
  WsgiHostOptions HostOptions() const;
  // The pythonpath setting as it stands (the section may add one).
  std::vector<std::string> PythonPath() const;

  // Applies a [server:main] section read from ini_path(). Unknown keys and invalid values
  // are errors; a key whose flag was given on the command line is ignored.
  Status MergeServerSection(const std::map<std::string, std::string>& section);

  // Validates every setting, applies the log level to glog and returns the options.
  StatusOr<WorkerOptions> Finish();

 private:
  std::string ini_path_;
  bool zookeeper_mode_ = false;  // set by [server:main] use = egg:zc.resumelb#zk
};

}  // namespace rlb::worker

#endif  // RESUMELB_ZKWORKER_WORKER_COMMAND_LINE_H_
