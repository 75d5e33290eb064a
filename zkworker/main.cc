// zkworker: hosts a WSGI application for resumelb load balancers.
//
//   zkworker CONFIG.ini                              (Paste Deploy: [app:main] + [server:main])
//   zkworker --app=MODULE:CALLABLE --address=HOST:PORT [options]
//
// Start-up order matters: Python is initialized and the app imported before the socket is
// bound, so a broken app or config exits non-zero with one error line and never listens.
#include <signal.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gflags/gflags.h>
#include <glog/logging.h>
#include <uv.h>

#include "common/logging_setup.h"
#include "common/net_address.h"
#include "zkworker/app_thread_pool.h"
#include "zkworker/resume_tracker.h"
#include "zkworker/trace_log.h"
#include "zkworker/worker_server.h"
#include "zkworker/wsgi_host.h"

DEFINE_string(app, "", "WSGI application as MODULE:CALLABLE (the callable part may be an "
                       "expression such as create_app())");
DEFINE_string(address, "", "listen address HOST:PORT; port 0 picks a free port (logged)");
DEFINE_int32(history, rlb::worker::kDefaultHistory,
             "roughly the number of requests the résumé reflects; also how often (in "
             "requests) the résumé is sent to load balancers");
DEFINE_int32(max_skill_age, 0, "requests without a request of a class before the class is "
                               "dropped from the résumé (0: 10 x history)");
DEFINE_int32(threads, 1, "application threads");
DEFINE_string(resume_file, "", "JSON file the résumé is loaded from and saved to");
DEFINE_string(tracelog, "", "file to write request trace records to ('-': stderr)");
DEFINE_string(tracelog_key, "tracelog", "environ key of the application trace logger");
DEFINE_string(pythonpath, "", "directories (colon-separated) put first on sys.path");
DEFINE_string(virtualenv, "", "virtualenv (made by Debian's /usr/bin/python3) to run in");
DEFINE_uint64(spool_threshold, 1u << 20, "request bodies larger than this many bytes are "
                                         "spooled to a temp file");
DEFINE_double(drain_timeout, 60.0, "seconds SIGTERM waits for requests in flight");
DEFINE_string(log_level, "INFO", "log level: DEBUG, INFO, WARNING, ERROR or a number");

namespace {

constexpr char kUsage[] = R"(zkworker: runs a WSGI application as a resumelb worker.

Usage:
  zkworker CONFIG.ini [--FLAG=VALUE ...]
  zkworker --app=MODULE:CALLABLE --address=HOST:PORT [--FLAG=VALUE ...]

CONFIG.ini is a Paste Deploy file: [app:main] is loaded with PasteDeploy and
[server:main] holds the worker options below (use = egg:zc.resumelb). Flags given on
the command line override the file.

Options (flag / [server:main] key):
  --app=MODULE:CALLABLE     the WSGI application (without CONFIG.ini)
  --address=HOST:PORT       listen address; port 0 binds a free port and logs it
  --history=N               résumé horizon and send period in requests (9999)
  --max_skill_age=N         drop classes unseen for N requests (10 x history)
  --threads=N               application threads (1)
  --resume_file=PATH        JSON résumé, loaded at start, saved atomically
  --tracelog=PATH           trace records (S X B I C A E) to PATH, '-' for stderr
  --tracelog_key=KEY        environ key of the application trace logger (tracelog)
  --pythonpath=DIR[:DIR]    prepend to sys.path
  --virtualenv=DIR          run inside a venv made by /usr/bin/python3
  --spool_threshold=BYTES   spool larger request bodies to a temp file (1048576)
  --drain_timeout=SECONDS   how long SIGTERM waits for requests in flight (60)
  --log_level=LEVEL         DEBUG, INFO, WARNING, ERROR or a number (INFO)
  --help                    this text

SIGTERM/SIGINT: stop accepting, tell load balancers to send nothing new, finish the
requests in flight, save the résumé, exit 0.
)";

// Keys a [server:main] section may hold, mapped to flags.
const std::set<std::string> kIniKeys = {"use", "address", "history", "max_skill_age", "threads",
                                        "resume_file", "tracelog", "tracelog_key", "pythonpath",
                                        "spool_threshold", "drain_timeout", "log_level"};

// Applies [server:main] options, unless the same flag was given on the command line.
rlb::Status ApplyIni(const std::map<std::string, std::string>& ini, const std::string& path) {
  for (const auto& [key, value] : ini) {
    if (!kIniKeys.count(key)) {
      return rlb::Status::InvalidArgument(path + ": unknown option '" + key +
                                          "' in [server:main]");
    }
    if (key == "use") {
      if (value == "egg:zc.resumelb" || value == "egg:zc.resumelb#main") continue;
      if (value == "egg:zc.resumelb#zk") {
        return rlb::Status::InvalidArgument(
            path + ": 'use = egg:zc.resumelb#zk' (ZooKeeper mode) is not supported by this "
                   "zkworker yet; use egg:zc.resumelb with an address");
      }
      return rlb::Status::InvalidArgument(path + ": [server:main] use = '" + value +
                                          "' is not egg:zc.resumelb");
    }
    gflags::CommandLineFlagInfo info;
    if (!gflags::GetCommandLineFlagInfo(key.c_str(), &info)) continue;
    if (!info.is_default) continue;  // the command line wins
    if (gflags::SetCommandLineOption(key.c_str(), value.c_str()).empty()) {
      return rlb::Status::InvalidArgument(path + ": invalid value '" + value + "' for " + key);
    }
  }
  return rlb::Status::OK();
}

std::vector<std::string> SplitPath(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(':', start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

int Fail(const std::string& message) {
  rlb::PrintError("zkworker", message);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h" || a == "-help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
  }
  rlb::InitLogging(argv[0]);
  gflags::SetUsageMessage("see zkworker --help");
  gflags::ParseCommandLineFlags(&argc, &argv, true);  // unknown flags: gflags exits non-zero
  if (argc > 2) return Fail("expected at most one CONFIG.ini, got " + std::to_string(argc - 1));
  std::string ini_path = argc == 2 ? argv[1] : "";
  if (ini_path.empty() && FLAGS_app.empty()) {
    return Fail("give a CONFIG.ini or --app=MODULE:CALLABLE (see --help)");
  }
  if (!ini_path.empty() && access(ini_path.c_str(), R_OK) != 0) {
    return Fail("cannot read config file " + ini_path);
  }

  rlb::worker::WsgiHostOptions host_options;
  host_options.virtualenv = FLAGS_virtualenv;
  host_options.pythonpath = SplitPath(FLAGS_pythonpath);
  if (ini_path.empty()) {
    // gunicorn's convention: the current directory is importable.
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd)) host_options.pythonpath.push_back(cwd);
  }
  rlb::worker::WsgiHost host(host_options);
  rlb::Status s = host.Init();
  if (!s.ok()) return Fail(s.message());

  if (!ini_path.empty()) {
    auto ini = host.ReadServerSection(ini_path);
    if (!ini.ok()) return Fail(ini.status().message());
    s = ApplyIni(*ini, ini_path);
    if (!s.ok()) return Fail(s.message());
  }
  s = rlb::ApplyLogLevel(FLAGS_log_level);
  if (!s.ok()) return Fail(s.message());
  if (FLAGS_address.empty()) return Fail("no address: give --address=HOST:PORT");
  auto address = rlb::ParseHostPort(FLAGS_address);
  if (!address.ok()) return Fail(address.status().message());
  if (FLAGS_history < 1) return Fail("history must be at least 1");
  if (FLAGS_max_skill_age < 0) return Fail("max_skill_age must not be negative");
  if (FLAGS_threads < 0) return Fail("threads must not be negative");
  if (FLAGS_drain_timeout < 0) return Fail("drain_timeout must not be negative");
  int threads = FLAGS_threads == 0 ? 1 : FLAGS_threads;

  std::unique_ptr<rlb::worker::TraceLog> tracelog;
  if (!FLAGS_tracelog.empty()) {
    auto t = rlb::worker::TraceLog::Open(FLAGS_tracelog);
    if (!t.ok()) return Fail(t.status().message());
    tracelog.reset(*t);
  }
  // The host was built before the file was read: give it the final settings.
  host.set_threads(threads);
  host.set_tracelog(tracelog.get(), FLAGS_tracelog_key);

  s = ini_path.empty() ? host.LoadAppSpec(FLAGS_app) : host.LoadPasteApp(ini_path);
  if (!s.ok()) return Fail(s.message());

  rlb::worker::ResumeTracker tracker(FLAGS_history, FLAGS_max_skill_age);
  if (!FLAGS_resume_file.empty()) {
    std::map<std::string, double> saved;
    s = rlb::worker::LoadResumeFile(FLAGS_resume_file, &saved);
    if (!s.ok()) {
      LOG(WARNING) << s.message() << "; starting with an empty resume";
    } else {
      tracker.Load(saved);
    }
  }

  signal(SIGPIPE, SIG_IGN);
  uv_loop_t* loop = uv_default_loop();
  rlb::worker::AppThreadPool pool(threads);
  rlb::worker::WorkerServerOptions options;
  options.address = *address;
  options.spool_threshold = FLAGS_spool_threshold;
  options.resume_file = FLAGS_resume_file;
  options.drain_timeout = FLAGS_drain_timeout;
  rlb::worker::WorkerServer server(loop, options, &host, &pool, &tracker);
  s = server.Listen();
  if (!s.ok()) {
    pool.Stop();
    host.Finalize();
    return Fail(s.message());
  }
  host.ReleaseMainThread();
  host.Trace("S", "0", "");
  LOG(INFO) << "zkworker listening on " << server.address().ToString() << " (pid " << getpid()
            << ", " << threads << " thread" << (threads == 1 ? "" : "s") << ")";

  uv_signal_t sigterm, sigint;
  uv_signal_init(loop, &sigterm);
  uv_signal_init(loop, &sigint);
  struct SignalCtx {
    rlb::worker::WorkerServer* server;
    uv_signal_t* handles[2];
  } ctx{&server, {&sigterm, &sigint}};
  sigterm.data = sigint.data = &ctx;
  auto on_signal = [](uv_signal_t* h, int signum) {
    auto* c = static_cast<SignalCtx*>(h->data);
    LOG(INFO) << "received signal " << signum << ": shutting down";
    c->server->Shutdown([c] {
      for (uv_signal_t* sh : c->handles) uv_close(reinterpret_cast<uv_handle_t*>(sh), nullptr);
    });
  };
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_signal_start(&sigint, on_signal, SIGINT);

  uv_run(loop, UV_RUN_DEFAULT);

  pool.Stop();
  host.Trace("X", "0", "");
  host.Finalize();
  uv_loop_close(loop);
  LOG(INFO) << "exiting";
  return 0;
}
