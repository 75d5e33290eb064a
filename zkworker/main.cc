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
#include <cstdlib>
#include <optional>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gflags/gflags.h>
#include <glog/logging.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <uv.h>

#include "common/logging_setup.h"
#include "common/net_address.h"
#include "common/shutdown_signals.h"
#include "common/zk_session.h"
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
DEFINE_string(zookeeper, "", "ZooKeeper connection string: register there (ZooKeeper mode)");
DEFINE_string(path, "", "ZooKeeper node of this kind of worker, e.g. /lb/workers: settings "
                        "are read from its data, the address registered under PATH/providers");
DEFINE_string(description, "", "free text registered with the worker (ZooKeeper mode)");
DEFINE_string(app_version, "", "software version registered with the worker (ZooKeeper "
                               "mode; ini key: version); used by single-version LBs");
DEFINE_double(zookeeper_session_timeout, 10.0, "ZooKeeper session timeout, seconds");

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
                            (ini key: log_level or loggers)
  --help                    this text

ZooKeeper mode ([server:main] use = egg:zc.resumelb#zk, or --zookeeper and --path):
  --zookeeper=HOSTS         ZooKeeper connection string
  --path=PATH               e.g. /lb/workers: history and max_skill_age are read live
                            from PATH's JSON data (a key removed reverts to its default);
                            the worker registers an ephemeral PATH/providers/HOST:PORT
                            with {"pid", "description", "version"}; the address
                            defaults to :0 (a free port; an empty host registers every
                            non-loopback address of the machine)
  --description=TEXT        registered description
  --app_version=VERSION     registered version (ini key: version)
  --zookeeper_session_timeout=S  (10)

SIGTERM/SIGINT: deregister from ZooKeeper, stop accepting, tell load balancers to send
nothing new, finish the requests in flight, save the résumé, exit 0.
)";

// Keys a [server:main] section may hold, mapped to flags.
const std::set<std::string> kIniKeys = {
    "use", "address", "history", "max_skill_age", "threads", "resume_file", "tracelog",
    "tracelog_key", "pythonpath", "spool_threshold", "drain_timeout", "log_level", "loggers",
    "zookeeper", "path", "description", "version", "backdoor", "zookeeper_session_timeout"};

// [server:main] keys whose flag has another name.
std::string FlagForKey(const std::string& key) {
  if (key == "version") return "app_version";
  if (key == "loggers") return "log_level";
  return key;
}

bool g_zk_mode = false;

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
        g_zk_mode = true;
        continue;
      }
      return rlb::Status::InvalidArgument(path + ": [server:main] use = '" + value +
                                          "' is not egg:zc.resumelb or egg:zc.resumelb#zk");
    }
    if (key == "backdoor") {
      if (value == "true") {
        LOG(WARNING) << path << ": backdoor = true ignored: zkworker has no backdoor (the "
                     << "original's was an unauthenticated Python REPL)";
      }
      continue;
    }
    std::string flag = FlagForKey(key);
    gflags::CommandLineFlagInfo info;
    if (!gflags::GetCommandLineFlagInfo(flag.c_str(), &info)) continue;
    if (!info.is_default) continue;  // the command line wins
    if (gflags::SetCommandLineOption(flag.c_str(), value.c_str()).empty()) {
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
    std::string pythonpath_before = FLAGS_pythonpath;
    s = ApplyIni(*ini, ini_path);
    if (!s.ok()) return Fail(s.message());
    // sys.path was set up by Init(), before the file was read: add the file's pythonpath.
    if (FLAGS_pythonpath != pythonpath_before) host.PrependPythonPath(SplitPath(FLAGS_pythonpath));
  }
  s = rlb::ApplyLogLevel(FLAGS_log_level);
  if (!s.ok()) {
    return Fail(s.message() + " (ZConfig logger configuration is not supported; give a level)");
  }
  if (!FLAGS_zookeeper.empty() || !FLAGS_path.empty()) g_zk_mode = true;
  if (g_zk_mode) {
    if (FLAGS_zookeeper.empty()) return Fail("ZooKeeper mode needs zookeeper (--zookeeper)");
    if (FLAGS_path.empty() || FLAGS_path[0] != '/') {
      return Fail("ZooKeeper mode needs an absolute path (--path), e.g. /lb/workers");
    }
    if (!(FLAGS_zookeeper_session_timeout > 0 && FLAGS_zookeeper_session_timeout <= 3600)) {
      return Fail("zookeeper_session_timeout must be > 0 and at most 3600 seconds");
    }
    if (FLAGS_address.empty()) FLAGS_address = ":0";
  }
  if (FLAGS_address.empty()) return Fail("no address: give --address=HOST:PORT");
  auto address = rlb::ParseHostPort(FLAGS_address);
  if (!address.ok()) return Fail(address.status().message());
  if (FLAGS_history < 1) return Fail("history must be at least 1");
  if (FLAGS_max_skill_age < 0) return Fail("max_skill_age must not be negative");
  if (FLAGS_threads < 0) return Fail("threads must not be negative");
  if (!(FLAGS_drain_timeout >= 0 && FLAGS_drain_timeout <= 1e9)) {
    return Fail("drain_timeout must be from 0 to 1e9 seconds");
  }
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

  std::unique_ptr<rlb::ZkSession> zk;
  if (g_zk_mode) {
    zk = std::make_unique<rlb::ZkSession>(
        loop, FLAGS_zookeeper, static_cast<int>(FLAGS_zookeeper_session_timeout * 1000));
    s = zk->Start();
    if (!s.ok()) return Fail(s.message());
    std::string node = rlb::NormalizeZkPath(FLAGS_path);
    // Registration data: {"pid": N, "description"?: ..., "version"?: ...}
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("pid");
    w.Int(getpid());
    if (!FLAGS_description.empty()) {
      w.Key("description");
      w.String(FLAGS_description.c_str());
    }
    if (!FLAGS_app_version.empty()) {
      w.Key("version");
      w.String(FLAGS_app_version.c_str());
    }
    w.EndObject();
    for (const auto& host : rlb::RegistrationHosts(server.address().host)) {
      rlb::HostPort hp{host, server.address().port};
      zk->RegisterEphemeral(node + "/providers/" + hp.ToString(), buf.GetString());
    }
    // Live settings: history and max_skill_age; a key removed reverts to its default.
    zk->WatchData(node, [&tracker, node](const std::optional<std::string>& data) {
      int history, max_skill_age;
      rlb::Status s = rlb::worker::ParseWorkerSettingsJson(data ? *data : std::string(),
                                                           &history, &max_skill_age);
      if (!s.ok()) {
        LOG(WARNING) << node << ": " << s.message() << "; settings unchanged";
        return;
      }
      tracker.UpdateSettings(history, max_skill_age);
      LOG(INFO) << "settings: history=" << tracker.history()
                << " max_skill_age=" << tracker.max_skill_age();
    });
  }

  rlb::ShutdownSignals signals(loop, [&](int) {
    if (zk) zk->UnregisterAll();  // deregister first, then drain
    server.Shutdown([&] {
      if (zk) zk->Close();
      signals.Close();
    });
  });

  uv_run(loop, UV_RUN_DEFAULT);

  if (server.drain_expired() && !pool.WaitIdle(2.0)) {
    // The application did not return even after its requests were cancelled: joining its
    // threads or finalizing Python would hang. The résumé was saved; leave now.
    LOG(WARNING) << "application threads still busy after the drain timeout; exiting";
    host.Trace("X", "0", "");
    google::FlushLogFiles(google::GLOG_INFO);
    std::fflush(nullptr);
    _exit(0);
  }
  pool.Stop();
  host.Trace("X", "0", "");
  host.Finalize();
  uv_loop_close(loop);
  LOG(INFO) << "exiting";
  return 0;
}
