// zkworker: hosts a WSGI application for resumelb load balancers.
//
//   zkworker CONFIG.ini                              (Paste Deploy: [app:main] + [server:main])
//   zkworker --app=MODULE:CALLABLE --address=HOST:PORT [options]
//
// Start-up order matters: Python is initialized and the app imported before the socket is
// bound, so a broken app or config exits non-zero with one error line and never listens.
//
// With --processes=N this process is the master (zkworker/supervisor.h): it reads the
// settings, then starts N worker processes, each one this program again (fork + exec, so
// the master never forks a process that runs Python threads) with --supervisor_fd, its own
// address and files; with --preload it imports the application first and forks the
// processes from itself instead.
//
// --version prints the versions and exits; --check stops after the application's import.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <glog/logging.h>
#include <uv.h>

#include "common/logging_setup.h"
#include "common/reload_signals.h"
#include "common/shutdown_signals.h"
#include "common/uv_handle.h"
#include "status/admin_server.h"
#include "status/prometheus_text.h"
#include "zkworker/app_thread_pool.h"
#include "zkworker/process_board.h"
#include "zkworker/resume_tracker.h"
#include "zkworker/supervisor.h"
#include "zkworker/trace_log.h"
#include "zkworker/worker_command_line.h"
#include "zkworker/worker_metrics.h"
#include "zkworker/worker_options.h"
#include "zkworker/worker_server.h"
#include "zkworker/wsgi_host.h"
#include "zkworker/zk_registration.h"

namespace {

using rlb::Status;
using rlb::StatusOr;
using rlb::worker::AppThreadPool;
using rlb::worker::LoadResumeFile;
using rlb::worker::ProcessBoard;
using rlb::worker::ProcessSpec;
using rlb::worker::RenderWorkerMetrics;
using rlb::worker::Supervisor;
using rlb::worker::SupervisorOptions;
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
  server_options.link_secret = options.link_secret;
  return server_options;
}

// The application's import (or Paste Deploy loading), with the final settings.
Status LoadApplication(const WorkerOptions& options, WsgiHost* host) {
  host->set_threads(options.threads);
  return options.ini_path.empty() ? host->LoadAppSpec(options.app)
                                  : host->LoadPasteApp(options.ini_path);
}

// The admin listener at `address`, serving `server`'s /metrics; logs its bound address.
// `reuse_port`: supervised (see WorkerServerOptions::reuse_port).
Status StartAdmin(uv_loop_t* loop, const rlb::HostPort& address, bool reuse_port,
                  const WorkerServer* server, std::unique_ptr<rlb::AdminServer>* admin) {
  rlb::AdminServer::Pages pages;
  auto render = [server] {
    return RenderWorkerMetrics(server->metrics().Snapshot(server->Gauges()));
  };
  pages["/metrics"] = {rlb::kPrometheusContentType, render, ""};
  auto started = std::make_unique<rlb::AdminServer>(loop, address, std::move(pages), reuse_port);
  Status s = started->Start();
  if (!s.ok()) return s;
  LOG(INFO) << "admin listener on " << started->address().ToString() << " (/metrics)";
  *admin = std::move(started);
  return Status::OK();
}

// Loads the application, listens (and registers in ZooKeeper mode), and serves until a
// signal's graceful shutdown completes. Returns the exit status.
// `board`: the master's board when supervised (the process reports on it), else null.
// `app_loaded`: --preload's children have the application already.
int Serve(const WorkerOptions& options, WsgiHost* host, ProcessBoard* board, bool app_loaded) {
  std::unique_ptr<TraceLog> tracelog;
  if (!options.tracelog.empty()) {
    auto t = TraceLog::Open(options.tracelog);
    if (!t.ok()) return Fail(t.status().message());
    tracelog.reset(*t);
  }
  // The host was built before the file was read: give it the final settings.
  host->set_tracelog(tracelog.get(), options.tracelog_key);
  Status s = app_loaded ? Status::OK() : LoadApplication(options, host);
  if (!s.ok()) return Fail(s.message());
  ResumeTracker tracker(options.history, options.max_skill_age);
  LoadResume(options.resume_file, &tracker);

  signal(SIGPIPE, SIG_IGN);
  uv_loop_t* loop = uv_default_loop();
  AppThreadPool pool(options.threads);
  WorkerServerOptions server_options = ServerOptions(options);
  server_options.board = board;
  server_options.reuse_port = board != nullptr;
  WorkerServer server(loop, server_options, host, &pool, &tracker);
  s = server.Listen();
  if (!s.ok()) {
    pool.Stop();
    host->Finalize();
    return Fail(s.message());
  }
  std::unique_ptr<rlb::AdminServer> admin;
  if (options.admin_address) {
    s = StartAdmin(loop, *options.admin_address, server_options.reuse_port, &server, &admin);
    if (!s.ok()) {
      pool.Stop();
      host->Finalize();
      return Fail(s.message());
    }
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
      if (admin) admin->Close();
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
    if (board) zk->set_on_registered([board] { board->SetRegistered(); });
  }
  // Supervised: the master may now count on this process (its signals are handled).
  if (board) board->SetListening(server.address().ToString());

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

// The signals the master catches, back to their defaults in a child before it runs
// anything (the master's libuv handlers must never run there).
void ResetSignalsInChild() {
  for (int signum : {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2, SIGPIPE}) {
    signal(signum, SIG_DFL);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // The master's death (even by SIGKILL) drains the process instead of orphaning it.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
}

// fork() with every signal blocked, so that none reaches the master's handlers in the
// child before ResetSignalsInChild(); the parent's mask is restored.
pid_t ForkBlocked() {
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &old);
  pid_t pid = fork();
  if (pid != 0) sigprocmask(SIG_SETMASK, &old, nullptr);
  return pid;
}

// The lazy launcher: the process is this program again, with the master's command line
// plus the per-process overrides (a flag given twice takes the last value, and a flag on
// the command line wins over [server:main]).
StatusOr<pid_t> ExecProcess(const std::vector<std::string>& master_argv,
                            const ProcessSpec& spec) {
  std::vector<std::string> args = master_argv;
  for (const char* reset : {"--processes=0", "--preload=false", "--harakiri=0",
                            "--max_requests=0", "--max_requests_jitter=0",
                            "--reload_on_rss=0", "--status_socket="}) {
    args.push_back(reset);
  }
  args.push_back("--address=" + spec.address.ToString());
  if (spec.admin_address) args.push_back("--admin_address=" + spec.admin_address->ToString());
  if (spec.advertise) args.push_back("--advertise=" + spec.advertise->ToString());
  args.push_back("--supervisor_fd=" + std::to_string(spec.board->fd()));
  if (!spec.resume_file.empty()) args.push_back("--resume_file=" + spec.resume_file);
  if (!spec.tracelog.empty()) args.push_back("--tracelog=" + spec.tracelog);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t master = getpid();
  pid_t pid = ForkBlocked();
  if (pid < 0) return Status::IOError(std::string("fork: ") + strerror(errno));
  if (pid == 0) {
    ResetSignalsInChild();
    if (getppid() != master) _exit(1);  // the master died before the line above
    fcntl(spec.board->fd(), F_SETFD, 0);  // the one descriptor the process inherits
    execv("/proc/self/exe", argv.data());
    std::fprintf(stderr, "zkworker: exec /proc/self/exe: %s\n", strerror(errno));
    _exit(127);
  }
  return pid;
}

// The preload launcher: the child runs Serve() with the application the master imported.
StatusOr<pid_t> ForkProcess(const WorkerOptions& options, WsgiHost* host,
                            Supervisor** supervisor, const ProcessSpec& spec) {
  int threads = host->PythonThreadCount();
  if (threads != 1) {
    return Status::InvalidArgument(
        "--preload: the application started " + std::to_string(threads - 1) +
        " Python thread(s) at import; forking would copy them mid-use (run without "
        "--preload)");
  }
  pid_t master = getpid();
  std::fflush(nullptr);
  host->BeforeFork();
  pid_t pid = ForkBlocked();
  if (pid < 0) {
    host->AfterForkParent();
    return Status::IOError(std::string("fork: ") + strerror(errno));
  }
  if (pid > 0) {
    host->AfterForkParent();
    return pid;
  }
  host->AfterForkChild();
  (*supervisor)->ForgetInChild(spec.board);
  ResetSignalsInChild();
  if (getppid() != master) _exit(1);
  WorkerOptions child = options;
  child.processes = 0;
  child.address = spec.address;
  child.admin_address = spec.admin_address;
  child.advertise = spec.advertise;
  child.resume_file = spec.resume_file;
  child.tracelog = spec.tracelog;
  int code = Serve(child, host, spec.board, /*app_loaded=*/true);
  google::FlushLogFiles(google::GLOG_INFO);
  std::fflush(nullptr);
  _exit(code);  // the master's objects are not this process's to destroy
}

// --check: the application's import as serving would do it, and nothing more (no socket,
// no ZooKeeper, no processes). 0 when it loads; 1, after its traceback and the error
// line, when it does not.
int CheckApplication(const WorkerOptions& options, WsgiHost* host) {
  host->set_print_load_traceback(true);
  Status s = LoadApplication(options, host);
  if (!s.ok()) {
    rlb::PrintError("zkworker", s.message());
    return 1;
  }
  host->Finalize();
  return 0;
}

// The master: supervises options.processes processes until SIGTERM.
int RunMaster(const WorkerOptions& options, WsgiHost* host,
              const std::vector<std::string>& argv) {
  if (options.preload) {
    Status s = LoadApplication(options, host);
    if (!s.ok()) return Fail(s.message());
  }
  signal(SIGPIPE, SIG_IGN);  // a status client that went away must not end the master
  SupervisorOptions so;
  so.processes = options.processes;
  so.address = options.address;
  so.admin_address = options.admin_address;
  so.advertise = options.advertise;
  so.zookeeper_mode = options.zookeeper_mode;
  so.threads = options.threads;
  so.harakiri = options.harakiri;
  so.max_requests = options.max_requests;
  so.max_requests_jitter = options.max_requests_jitter;
  so.reload_on_rss_mb = options.reload_on_rss;
  so.status_socket = options.status_socket;
  so.drain_timeout = options.drain_timeout;
  so.resume_file = options.resume_file;
  so.tracelog = options.tracelog;
  so.preload = options.preload;
  // Not the default loop: a --preload child runs its own server on that one.
  auto loop = std::make_unique<uv_loop_t>();
  CHECK_EQ(uv_loop_init(loop.get()), 0);
  Supervisor* self = nullptr;
  Supervisor::LaunchFn launch;
  if (options.preload) {
    launch = [&](const ProcessSpec& spec) { return ForkProcess(options, host, &self, spec); };
  } else {
    launch = [&](const ProcessSpec& spec) { return ExecProcess(argv, spec); };
  }
  int code;
  {
    Supervisor supervisor(loop.get(), so, launch);
    self = &supervisor;
    code = supervisor.Run();
  }
  rlb::CloseLoop(loop.get());
  host->Finalize();
  LOG(INFO) << "master exiting";
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  if (rlb::worker::WantsHelp(argc, argv)) {
    std::fputs(rlb::worker::WorkerUsage(), stdout);
    return 0;
  }
  if (rlb::worker::WantsVersion(argc, argv)) {
    std::fputs(rlb::worker::WorkerVersionText().c_str(), stdout);
    return 0;
  }
  rlb::InitLogging(argv[0]);
  std::vector<std::string> master_argv(argv, argv + argc);  // before gflags reorders it
  auto command_line = WorkerCommandLine::Parse(argc, argv);
  if (!command_line.ok()) return Fail(command_line.status().message());
  WsgiHost host(command_line->HostOptions());
  auto options = ConfigureHost(&*command_line, &host);
  if (!options.ok()) return Fail(options.status().message());
  if (options->check) return CheckApplication(*options, &host);
  if (options->processes > 0) return RunMaster(*options, &host, master_argv);
  std::unique_ptr<ProcessBoard> board;
  if (options->supervisor_fd >= 0) {
    auto b = ProcessBoard::Attach(options->supervisor_fd);
    if (!b.ok()) return Fail(b.status().message());
    board = std::move(*b);
  }
  return Serve(*options, &host, board.get(), /*app_loaded=*/false);
}
