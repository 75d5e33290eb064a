// zkworker: hosts a WSGI application for resumelb load balancers.
//
//   zkworker CONFIG.ini                              (Paste Deploy: [app:main] + [server:main])
//   zkworker --app=MODULE:CALLABLE --address=HOST:PORT [options]
//
// Start-up order matters: Python is initialized and the app imported before the socket is
// bound, so a broken app or config exits non-zero with one error line and never listens.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <glog/logging.h>
#include <uv.h>

#include "common/logging_setup.h"
#include "common/reload_signals.h"
#include "common/shutdown_signals.h"
#include "common/uv_handle.h"
#include "zkworker/app_thread_pool.h"
#include "zkworker/resume_tracker.h"
#include "zkworker/trace_log.h"
#include "zkworker/worker_command_line.h"
#include "zkworker/worker_options.h"
#include "zkworker/worker_server.h"
#include "zkworker/wsgi_host.h"
#include "zkworker/zk_registration.h"

namespace {

using rlb::Status;
using rlb::StatusOr;
using rlb::worker::AppThreadPool;
using rlb::worker::LoadResumeFile;
using rlb::worker::ResumeTracker;
using rlb::worker::TraceLog;
using rlb::worker::WorkerCommandLine;
using rlb::worker::WorkerOptions;
using rlb::worker::WorkerServer;
using rlb::worker::WorkerServerOptions;
using rlb::worker::WsgiHost;
using rlb::worker::ZkRegistration;

int Fail(const std::string& message) {
  rlb::PrintError("zkworker", message);
  return 2;
}

// Starts Python with the command line's settings, merges the ini file's [server:main]
// (read by Python) and returns the final options.
StatusOr<WorkerOptions> ConfigureHost(WorkerCommandLine* command_line, WsgiHost* host) {
  Status s = host->Init();
  if (!s.ok()) return s;
  if (!command_line->ini_path().empty()) {
    auto section = host->ReadServerSection(command_line->ini_path());
    if (!section.ok()) return section.status();
    auto pythonpath_before = command_line->PythonPath();
    s = command_line->MergeServerSection(*section);
    if (!s.ok()) return s;
    // sys.path was set up by Init(), before the file was read: add the file's pythonpath.
    auto pythonpath = command_line->PythonPath();
    if (pythonpath != pythonpath_before) host->PrependPythonPath(pythonpath);
  }
  return command_line->Finish();
}

// A missing or unreadable résumé file is not fatal: the worker starts with an empty one.
void LoadResume(const std::string& path, ResumeTracker* tracker) {
  if (path.empty()) return;
  std::map<std::string, double> saved;
  Status s = LoadResumeFile(path, &saved);
  if (!s.ok()) {
    LOG(WARNING) << s.message() << "; starting with an empty resume";
    return;
  }
  tracker->Load(saved);
}

// SIGHUP: the tracelog goes on in a new file at its path. A file that cannot be opened
// leaves the old one in use (nothing is lost).
void ReopenLogs(TraceLog* tracelog) {
  if (tracelog == nullptr) return;
  Status s = tracelog->Reopen();
  if (!s.ok()) LOG(WARNING) << s.message() << "; still writing to the old file";
}

WorkerServerOptions ServerOptions(const WorkerOptions& options) {
  WorkerServerOptions server_options;
  server_options.address = options.address;
  server_options.spool_threshold = options.spool_threshold;
  server_options.resume_file = options.resume_file;
  server_options.drain_timeout = options.drain_timeout;
  return server_options;
}

// Loads the application, listens (and registers in ZooKeeper mode), and serves until a
// signal's graceful shutdown completes. Returns the exit status.
int Serve(const WorkerOptions& options, WsgiHost* host) {
  std::unique_ptr<TraceLog> tracelog;
  if (!options.tracelog.empty()) {
    auto t = TraceLog::Open(options.tracelog);
    if (!t.ok()) return Fail(t.status().message());
    tracelog.reset(*t);
  }
  // The host was built before the file was read: give it the final settings.
  host->set_threads(options.threads);
  host->set_tracelog(tracelog.get(), options.tracelog_key);
  Status s = options.ini_path.empty() ? host->LoadAppSpec(options.app)
                                      : host->LoadPasteApp(options.ini_path);
  if (!s.ok()) return Fail(s.message());
  ResumeTracker tracker(options.history, options.max_skill_age);
  LoadResume(options.resume_file, &tracker);

  signal(SIGPIPE, SIG_IGN);
  uv_loop_t* loop = uv_default_loop();
  AppThreadPool pool(options.threads);
  WorkerServer server(loop, ServerOptions(options), host, &pool, &tracker);
  s = server.Listen();
  if (!s.ok()) {
    pool.Stop();
    host->Finalize();
    return Fail(s.message());
  }
  host->ReleaseMainThread();
  host->Trace("S", "0", "");
  LOG(INFO) << "zkworker listening on " << server.address().ToString() << " (pid " << getpid()
            << ", " << options.threads << " thread" << (options.threads == 1 ? "" : "s")
            << ")";
  // The one way out: SIGTERM/SIGINT, or a registration that cannot be made. Deregister
  // first (load balancers stop choosing this worker), then drain.
  int exit_code = 0;
  bool stopping = false;
  std::unique_ptr<ZkRegistration> zk;
  // SIGHUP reopens the tracelog (logrotate renamed it); glog writes to stderr, which needs
  // nothing. SIGUSR1 and SIGUSR2 are ignored.
  rlb::ReloadSignals reload(loop, [&] { ReopenLogs(tracelog.get()); });
  std::function<void()> stop;
  rlb::ShutdownSignals signals(loop, [&](int) { stop(); });
  stop = [&] {
    if (stopping) return;
    stopping = true;
    if (zk) zk->Unregister();
    server.Shutdown([&] {
      if (zk) zk->Close();
      signals.Close();
      reload.Close();
    });
  };
  if (options.zookeeper_mode) {
    zk = std::make_unique<ZkRegistration>(loop, options, &tracker);
    s = zk->Start(server.address(), [&](const Status& error) {
      rlb::PrintError("zkworker", error.message());
      exit_code = 2;
      stop();
    });
    if (!s.ok()) return Fail(s.message());
  }

  // Returns once every handle is closed: the shutdown completed (nothing calls uv_stop).
  CHECK_EQ(uv_run(loop, UV_RUN_DEFAULT), 0);
  // The reload handles are closed: a late SIGHUP must not turn this clean exit into a kill.
  for (int signum : {SIGHUP, SIGUSR1, SIGUSR2}) signal(signum, SIG_IGN);

  if (server.drain_expired() && !pool.WaitIdle(2.0)) {
    // The application did not return even after its requests were cancelled: joining its
    // threads or finalizing Python would hang. The résumé was saved; leave now.
    LOG(WARNING) << "application threads still busy after the drain timeout; exiting";
    host->Trace("X", "0", "");
    google::FlushLogFiles(google::GLOG_INFO);
    std::fflush(nullptr);
    _exit(exit_code);
  }
  pool.Stop();
  host->Trace("X", "0", "");
  host->Finalize();
  rlb::CloseLoop(loop);
  LOG(INFO) << "exiting";
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  if (rlb::worker::WantsHelp(argc, argv)) {
    std::fputs(rlb::worker::WorkerUsage(), stdout);
    return 0;
  }
  rlb::InitLogging(argv[0]);
  auto command_line = WorkerCommandLine::Parse(argc, argv);
  if (!command_line.ok()) return Fail(command_line.status().message());
  WsgiHost host(command_line->HostOptions());
  auto options = ConfigureHost(&*command_line, &host);
  if (!options.ok()) return Fail(options.status().message());
  return Serve(*options, &host);
}
