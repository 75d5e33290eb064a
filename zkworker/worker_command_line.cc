// zkworker's flags, the [server:main] keys that map onto them, and their validation.
#include "zkworker/worker_command_line.h"

#include <Python.h>
#include <unistd.h>
#include <uv.h>
#include <zookeeper/zookeeper_version.h>

#include <algorithm>
#include <set>
#include <string>
#include <string_view>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "common/link_auth.h"
#include "common/logging_setup.h"
#include "common/version.h"
#include "zkworker/supervisor_policy.h"

DEFINE_string(app, "", "WSGI application as MODULE:CALLABLE (the callable part may be an "
                       "expression such as create_app())");
DEFINE_string(address, "", "listen address HOST:PORT; port 0 picks a free port (logged)");
DEFINE_string(admin_address, "", "admin HTTP listener HOST:PORT serving /metrics "
                                 "(Prometheus); off when empty");
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
DEFINE_string(advertise, "", "ZooKeeper mode: HOST:PORT to register instead of the listening "
                            "address (port 0: the bound port; with --processes, PORT+i)");
DEFINE_string(description, "", "free text registered with the worker (ZooKeeper mode)");
DEFINE_string(app_version, "", "software version registered with the worker (ZooKeeper "
                               "mode; ini key: version); used by single-version LBs");
DEFINE_double(zookeeper_session_timeout, 10.0, "ZooKeeper session timeout, seconds");
DEFINE_string(zookeeper_auth, "", "ZooKeeper credentials: digest:USER:PASSWORD or file:PATH");
DEFINE_string(link_secret_file, "", "file holding the secret shared with the load balancers: "
              "links are authenticated (HMAC challenge-response); the file must be mode 0600");
DEFINE_int32(processes, 0, "run as a master supervising this many worker processes (0: "
                           "this process is the worker)");
DEFINE_bool(preload, false, "with --processes: import the application in the master and "
                            "fork the processes from it");
DEFINE_double(harakiri, 0, "with --processes: kill (and respawn) a process whose request "
                           "runs longer than this many seconds; 0: never");
DEFINE_uint64(max_requests, 0, "with --processes: replace a process gracefully after this "
                               "many requests; 0: never");
DEFINE_uint64(max_requests_jitter, 0, "with --processes: add 0..N to each process's "
                                      "max_requests");
DEFINE_uint64(reload_on_rss, 0, "with --processes: replace a process gracefully once its "
                                "RSS passes this many MB; 0: never");
DEFINE_string(status_socket, "", "with --processes: unix socket serving the master's "
                                 "status as JSON");
DEFINE_bool(check, false, "import the application and exit: 0 when it loads, 1 if its import "
            "fails (traceback on stderr), 2 for bad options; binds and registers nothing");
DEFINE_int32(supervisor_fd, -1, "internal: set by the master for the processes it starts");

namespace rlb::worker {
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
  --admin_address=HOST:PORT admin HTTP listener serving /metrics (Prometheus text
                            format); off by default; port 0 binds a free port and
                            logs it; use loopback or a private network
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
  --link_secret_file=PATH   authenticate load balancer links with the secret in PATH
                            (mode 0600 or 0400: refused if group or others can read
                            it; one trailing newline is ignored): a load balancer must
                            prove it (HMAC-SHA256 challenge-response) before it gets
                            the résumé or may send a request; give every LB the same
                            file. No encryption: see docs/operations.md
                            (ini key: link_secret_file)
  --check                   import the application (as serving would) and exit: 0 it
                            loads, 1 its import failed (traceback on stderr), 2 bad
                            options; binds nothing, registers nothing
  --version                 the versions of zkworker and of the libraries it runs on
  --help                    this text

ZooKeeper mode ([server:main] use = egg:zc.resumelb#zk, or --zookeeper and --path):
  --zookeeper=HOSTS         ZooKeeper connection string
  --path=PATH               e.g. /lb/workers: history and max_skill_age are read live
                            from PATH's JSON data (a key missing or null there takes
                            the flag's or ini's value); the worker registers an
                            ephemeral PATH/providers/HOST:PORT with {"pid",
                            "description", "version"} once no other session holds it
                            (waiting up to the session timeout + 5 s, else exit 2); the
                            address defaults to :0 (a free port); one node only: for a
                            host of :0, 0.0.0.0 or :: the machine's primary address (the
                            default route's source address, else the first non-loopback
                            IPv4 address)
  --advertise=HOST:PORT     register this address instead (NAT, several interfaces);
                            port 0: the port bound; with --processes process i
                            registers PORT+i (a port of 0 stays 0: each its own)
  --description=TEXT        registered description
  --app_version=VERSION     registered version (ini key: version)
  --zookeeper_session_timeout=S  (10)
  --zookeeper_auth=digest:USER:PASSWORD  authenticate to ZooKeeper (a tree made with
                            deploy/zk-tree --auth); the registration is then writable
                            by USER only, readable by all. file:PATH reads that text
                            from a file, keeping the password out of the process list
                            (ini key: zookeeper_auth)

Supervisor (recommended in production; ini keys have the same names):
  --processes=N             a master starts N worker processes and supervises them:
                            process i listens on PORT+i (port 0: a free port each,
                            registered in ZooKeeper mode) and serves admin_address on
                            ADMIN_PORT+i; its résumé file and tracelog get ".i" before
                            the extension; a process that dies is respawned (with a
                            back-off while it keeps dying at start-up)
  --preload                 import the application once in the master, then fork the
                            processes (less memory; SIGHUP does not pick up new code)
  --harakiri=SECONDS        kill and respawn a process whose request runs longer (0: off)
  --max_requests=N          replace a process gracefully after N requests (0: off)
  --max_requests_jitter=N   add 0..N to each process's limit (0)
  --reload_on_rss=MB        replace a process gracefully once its RSS passes MB (0: off)
  --status_socket=PATH      the master's status as JSON on a unix socket
  With --processes, SIGHUP to the master makes every process reopen its tracelog and
  then replaces the processes one at a time (a rolling reload: the new one serves before
  the old one drains); SIGTERM/SIGINT drains every process and exits 0.

SIGTERM/SIGINT: deregister from ZooKeeper, stop accepting, tell load balancers to send
nothing new, finish the requests in flight, save the résumé, exit 0.
SIGHUP: reopen the tracelog file (after logrotate renamed it). SIGUSR1, SIGUSR2: ignored.
)";

// Keys a [server:main] section may hold, mapped to flags.
const std::set<std::string> kIniKeys = {
    "use", "address", "admin_address", "history", "max_skill_age", "threads", "resume_file",
    "tracelog", "tracelog_key", "pythonpath", "spool_threshold", "drain_timeout", "log_level",
    "loggers", "zookeeper", "path", "advertise", "description", "version", "backdoor",
    "zookeeper_session_timeout", "zookeeper_auth", "processes", "preload", "harakiri", "max_requests",
    "max_requests_jitter", "reload_on_rss", "status_socket",
    "link_secret_file"};

// [server:main] keys whose flag has another name.
std::string FlagForKey(const std::string& key) {
  if (key == "version") return "app_version";
  if (key == "loggers") return "log_level";
  return key;
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

// gflags reports an unknown flag by exiting 1, which --check means "the import failed":
// the names are checked first, so that a command line this program refuses exits 2
// (kExitUsage) with one error line. Arguments are read as gflags reads them: "--" ends
// the flags, "--no" negates a bool flag, a non-bool flag without "=" takes the next
// argument as its value.
Status CheckFlagNames(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--") break;
    if (a.size() < 2 || a[0] != '-') continue;
    a.remove_prefix(a[1] == '-' ? 2 : 1);
    size_t eq = a.find('=');
    std::string name(a.substr(0, eq));
    gflags::CommandLineFlagInfo info;
    if (gflags::GetCommandLineFlagInfo(name.c_str(), &info)) {
      if (eq == std::string_view::npos && info.type != "bool") ++i;  // "--flag VALUE"
      continue;
    }
    if (name.rfind("no", 0) == 0 && eq == std::string_view::npos &&
        gflags::GetCommandLineFlagInfo(name.c_str() + 2, &info) && info.type == "bool") {
      continue;
    }
    return Status::InvalidArgument("unknown flag --" + name + " (see --help)");
  }
  return Status::OK();
}

}  // namespace

bool WantsHelp(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h" || a == "-help") return true;
  }
  return false;
}

const char* WorkerUsage() { return kUsage; }

bool WantsVersion(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--version") return true;
  }
  return false;
}

std::string WorkerVersionText() {
  // Py_GetVersion() is "3.11.2 (main, ...) [GCC ...]": the version is its first word.
  std::string python = Py_GetVersion();
  python = python.substr(0, python.find(' '));
  return std::string("zkworker ") + kVersion + "\n" + "libuv " + uv_version_string() + "\n" +
         "ZooKeeper C client " + ZOO_VERSION + "\n" + "Python " + python + "\n";
}

StatusOr<WorkerCommandLine> WorkerCommandLine::Parse(int argc, char** argv) {
  Status names = CheckFlagNames(argc, argv);
  if (!names.ok()) return names;
  gflags::SetUsageMessage("see zkworker --help");
  gflags::ParseCommandLineFlags(&argc, &argv, true);  // unknown flags: gflags exits non-zero
  if (argc > 2) {
    return Status::InvalidArgument("expected at most one CONFIG.ini, got " +
                                   std::to_string(argc - 1));
  }
  WorkerCommandLine command_line;
  command_line.ini_path_ = argc == 2 ? argv[1] : "";
  if (command_line.ini_path_.empty() && FLAGS_app.empty()) {
    return Status::InvalidArgument("give a CONFIG.ini or --app=MODULE:CALLABLE (see --help)");
  }
  if (!command_line.ini_path_.empty() && access(command_line.ini_path_.c_str(), R_OK) != 0) {
    return Status::InvalidArgument("cannot read config file " + command_line.ini_path_);
  }
  return command_line;
}

WsgiHostOptions WorkerCommandLine::HostOptions() const {
  WsgiHostOptions host_options;
  host_options.virtualenv = FLAGS_virtualenv;
  host_options.pythonpath = SplitPath(FLAGS_pythonpath);
  if (ini_path_.empty()) {
    // gunicorn's convention: the current directory is importable.
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd)) host_options.pythonpath.push_back(cwd);
  }
  return host_options;
}

std::vector<std::string> WorkerCommandLine::PythonPath() const {
  return SplitPath(FLAGS_pythonpath);
}

Status WorkerCommandLine::MergeServerSection(const std::map<std::string, std::string>& section) {
  const std::string& path = ini_path_;
  for (const auto& [key, value] : section) {
    if (!kIniKeys.count(key)) {
      return Status::InvalidArgument(path + ": unknown option '" + key + "' in [server:main]");
    }
    if (key == "use") {
      if (value == "egg:zc.resumelb" || value == "egg:zc.resumelb#main") continue;
      if (value == "egg:zc.resumelb#zk") {
        zookeeper_mode_ = true;
        continue;
      }
      return Status::InvalidArgument(path + ": [server:main] use = '" + value +
                                     "' is not egg:zc.resumelb or egg:zc.resumelb#zk");
    }
    if (key == "backdoor") {
      if (value == "true") {
        LOG(WARNING) << path << ": backdoor = true ignored: zkworker has no backdoor (the "
                     << "original's was an unauthenticated Python REPL)";
      }
      continue;
    }
    // The flags are the store until Finish(): gflags parses the value exactly as it would
    // on the command line, and knows which flags the command line set.
    std::string flag = FlagForKey(key);
    gflags::CommandLineFlagInfo info;
    if (!gflags::GetCommandLineFlagInfo(flag.c_str(), &info)) continue;
    if (!info.is_default) continue;  // the command line wins
    if (gflags::SetCommandLineOption(flag.c_str(), value.c_str()).empty()) {
      return Status::InvalidArgument(path + ": invalid value '" + value + "' for " + key);
    }
  }
  return Status::OK();
}

StatusOr<WorkerOptions> WorkerCommandLine::Finish() {
  Status s = ApplyLogLevel(FLAGS_log_level);
  if (!s.ok()) {
    return Status::InvalidArgument(
        s.message() + " (ZConfig logger configuration is not supported; give a level)");
  }
  WorkerOptions o;
  o.ini_path = ini_path_;
  o.app = FLAGS_app;
  o.log_level = FLAGS_log_level;
  o.zookeeper_mode = zookeeper_mode_ || !FLAGS_zookeeper.empty() || !FLAGS_path.empty();
  std::string address = FLAGS_address;
  if (o.zookeeper_mode) {
    if (FLAGS_zookeeper.empty()) {
      return Status::InvalidArgument("ZooKeeper mode needs zookeeper (--zookeeper)");
    }
    if (FLAGS_path.empty() || FLAGS_path[0] != '/') {
      return Status::InvalidArgument(
          "ZooKeeper mode needs an absolute path (--path), e.g. /lb/workers");
    }
    if (!(FLAGS_zookeeper_session_timeout > 0 && FLAGS_zookeeper_session_timeout <= 3600)) {
      return Status::InvalidArgument(
          "zookeeper_session_timeout must be > 0 and at most 3600 seconds");
    }
    if (address.empty()) address = ":0";
    if (!FLAGS_zookeeper_auth.empty()) {
      auto auth = ParseZkAuth(FLAGS_zookeeper_auth);
      if (!auth.ok()) return auth.status();
      o.zookeeper_auth = *auth;
    }
  }
  if (address.empty()) return Status::InvalidArgument("no address: give --address=HOST:PORT");
  if (!FLAGS_link_secret_file.empty()) {
    auto secret = ReadLinkSecretFile(FLAGS_link_secret_file);
    if (!secret.ok()) return secret.status();
    o.link_secret = std::move(*secret);
  }
  auto parsed = ParseHostPort(address);
  if (!parsed.ok()) return parsed.status();
  o.address = *parsed;
  if (!FLAGS_admin_address.empty()) {
    auto admin = ParseHostPort(FLAGS_admin_address);
    if (!admin.ok()) {
      return Status::InvalidArgument("admin_address: " + admin.status().message());
    }
    o.admin_address = *admin;
  }
  if (FLAGS_history < 1) return Status::InvalidArgument("history must be at least 1");
  if (FLAGS_max_skill_age < 0) {
    return Status::InvalidArgument("max_skill_age must not be negative");
  }
  if (FLAGS_threads < 0) return Status::InvalidArgument("threads must not be negative");
  if (!(FLAGS_drain_timeout >= 0 && FLAGS_drain_timeout <= 1e9)) {
    return Status::InvalidArgument("drain_timeout must be from 0 to 1e9 seconds");
  }
  o.history = FLAGS_history;
  o.max_skill_age = FLAGS_max_skill_age;
  o.threads = FLAGS_threads == 0 ? 1 : FLAGS_threads;
  o.resume_file = FLAGS_resume_file;
  o.tracelog = FLAGS_tracelog;
  o.tracelog_key = FLAGS_tracelog_key;
  o.pythonpath = SplitPath(FLAGS_pythonpath);
  o.virtualenv = FLAGS_virtualenv;
  o.spool_threshold = FLAGS_spool_threshold;
  o.drain_timeout = FLAGS_drain_timeout;
  o.zookeeper = FLAGS_zookeeper;
  o.path = FLAGS_path;
  o.description = FLAGS_description;
  o.app_version = FLAGS_app_version;
  o.zookeeper_session_timeout = FLAGS_zookeeper_session_timeout;

  if (FLAGS_processes < 0 || FLAGS_processes > kMaxProcesses) {
    return Status::InvalidArgument("processes must be from 0 to " +
                                   std::to_string(kMaxProcesses));
  }
  if (!(FLAGS_harakiri >= 0 && FLAGS_harakiri <= 1e6)) {
    return Status::InvalidArgument("harakiri must be from 0 to 1e6 seconds");
  }
  o.processes = FLAGS_processes;
  o.preload = FLAGS_preload;
  o.harakiri = FLAGS_harakiri;
  o.max_requests = FLAGS_max_requests;
  o.max_requests_jitter = FLAGS_max_requests_jitter;
  o.reload_on_rss = FLAGS_reload_on_rss;
  o.status_socket = FLAGS_status_socket;
  o.supervisor_fd = FLAGS_supervisor_fd;
  o.check = FLAGS_check;
  if (o.processes == 0 && o.supervisor_fd < 0) {
    // Only a master can kill or replace a process: these need --processes.
    const char* needs_master =
        o.harakiri > 0 ? "harakiri"
        : o.max_requests > 0 ? "max_requests"
        : o.reload_on_rss > 0 ? "reload_on_rss"
        : !o.status_socket.empty() ? "status_socket"
        : o.preload ? "preload" : nullptr;
    if (needs_master) {
      return Status::InvalidArgument(std::string(needs_master) +
                                     " needs processes (--processes=N): the master does it");
    }
  }
  if (o.admin_address &&
      ProcessPortsOverlap(o.address, *o.admin_address, std::max(o.processes, 1))) {
    return Status::InvalidArgument("admin_address " + o.admin_address->ToString() +
                                   " overlaps the ports of address " + o.address.ToString() +
                                   (o.processes > 0 ? " (PORT+i for each process i)" : ""));
  }
  if (!FLAGS_advertise.empty()) {
    if (!o.zookeeper_mode) {
      return Status::InvalidArgument("advertise needs ZooKeeper mode (--zookeeper, --path)");
    }
    auto advertise = ParseHostPort(FLAGS_advertise);
    if (!advertise.ok()) {
      return Status::InvalidArgument("advertise: " + advertise.status().message());
    }
    if (IsWildcardHost(advertise->host)) {
      return Status::InvalidArgument("advertise " + FLAGS_advertise +
                                     ": give the host load balancers should connect to");
    }
    o.advertise = *advertise;
  }
  if (o.processes > 0) {
    auto last = ProcessAddress(o.address, o.processes - 1);
    if (!last.ok()) return last.status();
    if (o.admin_address) {
      auto last_admin = ProcessAddress(*o.admin_address, o.processes - 1);
      if (!last_admin.ok()) {
        return Status::InvalidArgument("admin_address: " + last_admin.status().message());
      }
    }
    if (o.advertise) {
      last = ProcessAddress(*o.advertise, o.processes - 1);
      if (!last.ok()) return Status::InvalidArgument("advertise: " + last.status().message());
    }
  }
  return o;
}

}  // namespace rlb::worker
