// The load balancers' flags, short-option translation and validation.
#include "zklb/lb_command_line.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <grp.h>
#include <unistd.h>

#include <gflags/gflags.h>

#include "common/link_auth.h"
#include "common/logging_setup.h"
#include "common/process_group.h"
#include "common/process_policy.h"
#include "common/temp_file.h"
#include "zklb/balanced_pool.h"
#include "zklb/resume_pool.h"
#include "zklb/classifier.h"

DEFINE_string(address, ":0", "HTTP listen address HOST:PORT (-a); ':0' = all interfaces, any port");
DEFINE_int32(backlog, 511, "listen backlog (-b)");
DEFINE_int32(max_connections, 0, "maximum client connections, 0 = unlimited (-m)");
DEFINE_string(request_classifier, "host", "request classifier (-r)");
DEFINE_int64(max_classes, static_cast<int64_t>(rlb::lb::ClassLimits{}.total),
             "(worker, class) entries the pool tracks in all; raise it for more active classes");
DEFINE_string(pool, "balanced", "pool: balanced, resume, classic or classless (-p)");
DEFINE_string(placement, "auto", "where new classes go: auto, ring or lru");
DEFINE_bool(single_version, false, "use only workers of the majority version (zkresumelb -v)");
DEFINE_double(variance, -1, "maximum ratio of a worker's backlog to the mean (-v, resumelb)");
DEFINE_int32(backlog_history, 9, "backlog averaging horizon in requests");
DEFINE_double(unskilled_score, 1.0, "score for a worker doing a class it has no score for");
DEFINE_string(access_log, "", "access log path, '-' for stdout (-l)");
DEFINE_string(logger_configuration, "INFO", "log level: DEBUG INFO WARNING ERROR or a number (-L)");
DEFINE_string(disconnect_message, "", "file holding the 502 page body (-e)");
DEFINE_string(status_server, "", "unix socket path for the status server (-s)");
DEFINE_double(socket_timeout, 99.0, "client socket timeout in seconds (-t)");
DEFINE_double(header_timeout, 30.0, "seconds a client has to send its request headers (408)");
DEFINE_double(worker_wait_timeout, 30.0, "seconds a request waits for a worker (then 503)");
DEFINE_double(worker_keepalive, 1.0, "keep-alive interval on worker connections, seconds");
DEFINE_double(worker_timeout, 5.0, "a worker silent this many seconds is dropped");
DEFINE_double(connect_timeout, 3.0, "seconds to connect to a worker");
DEFINE_double(drain_timeout, 60.0, "seconds SIGTERM waits for requests in flight");
DEFINE_uint64(max_header_bytes, 64 * 1024, "request line + headers limit (431)");
DEFINE_uint64(max_headers, 100, "request header count limit (431)");
DEFINE_uint64(max_body_bytes, 1ull << 30, "request body limit (413)");
DEFINE_uint64(response_memory, 1u << 20, "response bytes buffered in memory per request "
                                         "before spilling to a temp file");
DEFINE_uint64(response_memory_total, 256ull << 20, "response bytes buffered in memory, all "
              "requests together; beyond it responses spill to disk");
DEFINE_uint64(response_disk_total, 4ull << 30, "response bytes buffered on disk, all requests "
              "together; beyond it the LB stops reading from that worker until the client reads");
DEFINE_string(buffer_dir, "", "directory for response buffer files (default $TMPDIR or /tmp)");
DEFINE_int32(max_retries, 1, "re-dispatches of an idempotent request after worker failures");
DEFINE_double(retry_budget, 0.2, "retries in flight, as a fraction of requests in flight");
DEFINE_int32(retry_budget_min, 10, "retries in flight always allowed, whatever the fraction");
DEFINE_string(status_socket_mode, "0600", "permission bits of the status socket, octal");
DEFINE_string(status_socket_group, "", "group of the status socket (a group name)");
DEFINE_string(admin_address, "", "admin HTTP listener HOST:PORT (/metrics, /status.json, /); "
              "off when empty");
DEFINE_int32(metrics_classes, 20, "request classes reported by name in /metrics and the "
             "status document; the rest together as \"other\"");
DEFINE_string(access_log_format, "text", "access log format: text or json");
DEFINE_int32(processes, 1, "event-loop processes sharing the listening port (1: no master)");
DEFINE_string(link_secret_file, "", "file holding the secret shared with the workers: links "
              "are authenticated (HMAC challenge-response); the file must be mode 0600");
DEFINE_bool(check, false, "validate the options and exit: 0 when they are valid, 2 if not");
DEFINE_bool(cancel_on_client_close, true, "a client's EOF before the answer cancels its request "
            "(499); false: EOF is a half-close and the answer is still sent");

namespace rlb::lb {

StatusOr<gid_t> LookUpGroup(const std::string& name) {
  std::vector<char> buf(16384);
  group g;
  group* found = nullptr;
  int rc = getgrnam_r(name.c_str(), &g, buf.data(), buf.size(), &found);
  if (rc != 0 || found == nullptr) {
    return Status::InvalidArgument("--status_socket_group: no group named '" + name + "'" +
                                   (rc != 0 ? std::string(": ") + std::strerror(rc) : ""));
  }
  return found->gr_gid;
}

bool CheckOnly() { return FLAGS_check; }

const std::vector<ShortOption>& ResumelbShortOptions() {
  static const std::vector<ShortOption> table = {
      {'a', "address", true},          {'b', "backlog", true},
      {'m', "max_connections", true},  {'r', "request_classifier", true},
      {'p', "pool", true},             {'v', "variance", true},
      {'l', "access_log", true},       {'L', "logger_configuration", true},
      {'e', "disconnect_message", true}, {'s', "status_server", true},
      {'t', "socket_timeout", true},
  };
  return table;
}

const std::vector<ShortOption>& ZkResumelbShortOptions() {
  static const std::vector<ShortOption> table = {
      {'a', "address", true},          {'b', "backlog", true},
      {'m', "max_connections", true},  {'r', "request_classifier", true},
      {'p', "pool", true},             {'v', "single_version", false},
      {'l', "access_log", true},       {'L', "logger_configuration", true},
      {'e', "disconnect_message", true}, {'s', "status_server", true},
      {'t', "socket_timeout", true},
  };
  return table;
}

StatusOr<std::vector<std::string>> TranslateArgs(int argc, char** argv,
                                                 const std::vector<ShortOption>& table) {
  std::vector<std::string> out = {argv[0]};
  bool positional_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (positional_only || a.size() < 2 || a[0] != '-') {
      out.push_back(a);
      continue;
    }
    if (a == "--") {
      positional_only = true;
      out.push_back(a);
      continue;
    }
    if (a[1] == '-') {  // --long-name[=value]: dashes in the name become underscores
      size_t eq = a.find('=');
      std::string name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      for (char& c : name) {
        if (c == '-') c = '_';
      }
      out.push_back("--" + name + (eq == std::string::npos ? "" : a.substr(eq)));
      continue;
    }
    const ShortOption* opt = nullptr;
    for (const auto& o : table) {
      if (o.letter == a[1]) opt = &o;
    }
    if (!opt) return Status::InvalidArgument("unknown option '" + a + "' (see --help)");
    if (!opt->takes_value) {
      if (a.size() > 2) return Status::InvalidArgument("option -" + std::string(1, a[1]) +
                                                       " takes no value");
      out.push_back(std::string("--") + opt->flag);
      continue;
    }
    std::string value;
    if (a.size() > 2) {
      value = a.substr(2);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return Status::InvalidArgument("option -" + std::string(1, a[1]) + " needs a value");
    }
    out.push_back(std::string("--") + opt->flag + "=" + value);
  }
  return out;
}

StatusOr<std::vector<std::string>> ParseFlags(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int argc = static_cast<int>(args.size());
  char** p = argv.data();
  // gflags reports unknown flags and bad values itself and exits with status 1.
  gflags::ParseCommandLineFlags(&argc, &p, true);
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) positional.push_back(p[i]);
  return positional;
}

StatusOr<LbOptions> OptionsFromFlags(double variance_default) {
  LbOptions o;
  auto addr = ParseHostPort(FLAGS_address);
  if (!addr.ok()) return addr.status();
  o.address = *addr;
  if (FLAGS_backlog < 1) return Status::InvalidArgument("--backlog must be at least 1");
  o.listen_backlog = FLAGS_backlog;
  if (FLAGS_max_connections < 0) return Status::InvalidArgument("--max_connections must be >= 0");
  o.max_connections = FLAGS_max_connections;
  o.classifier = FLAGS_request_classifier;
  auto classifier = Classifier::Create(o.classifier);  // validated here: one clear error line
  if (!classifier.ok()) return classifier.status();
  if (FLAGS_pool == "resume") {
    o.pool = "resume";
  } else if (FLAGS_pool == "classic" || FLAGS_pool == "zc.resumelb.lb:Pool") {
    o.pool = "classic";
  } else if (FLAGS_pool == "balanced") {
    o.pool = "balanced";
  } else if (FLAGS_pool == "classless" || FLAGS_pool == "zc.resumelb.classlesspool:ClasslessPool") {
    o.pool = "classless";
  } else {
    return Status::InvalidArgument("unknown pool '" + FLAGS_pool +
                                   "' (use balanced, classic, resume or classless)");
  }
  if (FLAGS_placement != "auto" && FLAGS_placement != "ring" && FLAGS_placement != "lru") {
    return Status::InvalidArgument("--placement must be auto, ring or lru, got '" +
                                   FLAGS_placement + "'");
  }
  o.placement = o.pool == "classic" ? "lru" : FLAGS_placement;
  if (FLAGS_max_classes < 1 || FLAGS_max_classes > (int64_t{1} << 30)) {
    return Status::InvalidArgument("--max_classes must be between 1 and 1073741824, got " +
                                   std::to_string(FLAGS_max_classes));
  }
  o.max_classes = static_cast<size_t>(FLAGS_max_classes);
  o.single_version = FLAGS_single_version;
  std::map<std::string, std::string> raw;
  auto exact = [](double v) {  // std::to_string keeps only 6 decimals: 1e-7 would become 0
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return std::string(buf);
  };
  raw["variance"] = exact(FLAGS_variance < 0 ? variance_default : FLAGS_variance);
  raw["backlog_history"] = std::to_string(FLAGS_backlog_history);
  raw["unskilled_score"] = exact(FLAGS_unskilled_score);
  Status s = ParsePoolSettings(raw, &o.pool_settings);
  if (!s.ok()) return s;
  o.access_log = FLAGS_access_log;
  o.disconnect_message_file = FLAGS_disconnect_message;
  o.status_socket = FLAGS_status_server;
  {
    const std::string& m = FLAGS_status_socket_mode;
    char* end = nullptr;
    unsigned long mode = m.empty() ? 0 : std::strtoul(m.c_str(), &end, 8);
    if (m.empty() || *end != '\0' || mode > 0777 || (mode & 0600) != 0600) {
      return Status::InvalidArgument("--status_socket_mode must be octal permission bits "
                                     "(at most 0777) that include 0600, got '" + m + "'");
    }
    o.status_socket_mode = static_cast<unsigned>(mode);
  }
  o.status_socket_group = FLAGS_status_socket_group;
  if (!o.status_socket_group.empty() && !LookUpGroup(o.status_socket_group).ok()) {
    return LookUpGroup(o.status_socket_group).status();
  }
  if (!FLAGS_admin_address.empty()) {
    auto admin = ParseHostPort(FLAGS_admin_address);
    if (!admin.ok()) {
      return Status::InvalidArgument("--admin_address: " + admin.status().message());
    }
    o.admin_address = *admin;
  }
  if (FLAGS_processes < 1 || FLAGS_processes > 256) {
    return Status::InvalidArgument("--processes must be from 1 to 256, got " +
                                   std::to_string(FLAGS_processes));
  }
  o.processes = FLAGS_processes;
  if (o.admin_address && o.admin_address->port != 0 &&
      o.admin_address->port + o.processes - 1 > 65535) {
    return Status::InvalidArgument("--admin_address: the last process's port " +
                                   std::to_string(o.admin_address->port + o.processes - 1) +
                                   " is past 65535 (PORT + process index)");
  }
  for (int i = 0; o.admin_address && o.admin_address->port != 0 && i < o.processes; ++i) {
    HostPort admin = *o.admin_address;
    admin.port += i;
    if (ProcessPortsOverlap(admin, o.address, 1)) {
      return Status::InvalidArgument("--admin_address: process " + std::to_string(i) +
                                     "'s admin port " + admin.ToString() +
                                     " is the listening address " + o.address.ToString());
    }
  }
  if (FLAGS_metrics_classes < 1 || FLAGS_metrics_classes > 1000) {
    return Status::InvalidArgument("--metrics_classes must be from 1 to 1000");
  }
  o.metrics_classes = static_cast<size_t>(FLAGS_metrics_classes);
  if (FLAGS_access_log_format != "text" && FLAGS_access_log_format != "json") {
    return Status::InvalidArgument("--access_log_format must be text or json, got '" +
                                   FLAGS_access_log_format + "'");
  }
  o.access_log_json = FLAGS_access_log_format == "json";
  // Durations become libuv milliseconds (uint64_t): infinite, NaN or absurdly large values
  // would overflow that conversion (found by fuzzing), so they are refused here.
  constexpr double kMaxSeconds = 1e9;  // ~31 years
  auto positive = [](double v, const char* name) -> Status {
    if (!(v > 0 && v <= kMaxSeconds)) {
      return Status::InvalidArgument(std::string("--") + name +
                                     " must be > 0 and at most 1e9 seconds");
    }
    return Status::OK();
  };
  for (auto [v, name] : {std::pair{FLAGS_socket_timeout, "socket_timeout"},
                         {FLAGS_header_timeout, "header_timeout"},
                         {FLAGS_worker_wait_timeout, "worker_wait_timeout"},
                         {FLAGS_worker_keepalive, "worker_keepalive"},
                         {FLAGS_worker_timeout, "worker_timeout"},
                         {FLAGS_connect_timeout, "connect_timeout"}}) {
    s = positive(v, name);
    if (!s.ok()) return s;
  }
  if (FLAGS_worker_timeout <= FLAGS_worker_keepalive) {
    return Status::InvalidArgument("--worker_timeout must be longer than --worker_keepalive");
  }
  o.socket_timeout = FLAGS_socket_timeout;
  o.header_timeout = FLAGS_header_timeout;
  o.worker_wait_timeout = FLAGS_worker_wait_timeout;
  o.worker_keepalive = FLAGS_worker_keepalive;
  o.worker_timeout = FLAGS_worker_timeout;
  o.connect_timeout = FLAGS_connect_timeout;
  if (!(FLAGS_drain_timeout >= 0 && FLAGS_drain_timeout <= kMaxSeconds)) {
    return Status::InvalidArgument("--drain_timeout must be >= 0 and at most 1e9 seconds");
  }
  o.drain_timeout = FLAGS_drain_timeout;
  // The environ must fit the protocol's limits (1 MiB, 4096 entries) with room for the
  // CGI variables, or a worker would reject the REQUEST and drop its whole connection.
  if (FLAGS_max_header_bytes < 1024 || FLAGS_max_header_bytes > 512 * 1024) {
    return Status::InvalidArgument("--max_header_bytes must be from 1024 to 524288");
  }
  if (FLAGS_max_headers < 1 || FLAGS_max_headers > 1000) {
    return Status::InvalidArgument("--max_headers must be from 1 to 1000");
  }
  o.http_limits.max_header_bytes = FLAGS_max_header_bytes;
  o.http_limits.max_headers = FLAGS_max_headers;
  o.http_limits.max_body_bytes = FLAGS_max_body_bytes;
  o.response_memory = FLAGS_response_memory;
  o.response_memory_total = FLAGS_response_memory_total;
  o.response_disk_total = FLAGS_response_disk_total;
  o.buffer_dir = FLAGS_buffer_dir;
  if (o.buffer_dir.empty()) o.buffer_dir = DefaultTempDir();
  if (FLAGS_max_retries < 0) return Status::InvalidArgument("--max_retries must be >= 0");
  o.max_retries = FLAGS_max_retries;
  if (!(FLAGS_retry_budget >= 0 && FLAGS_retry_budget <= 1)) {
    return Status::InvalidArgument("--retry_budget must be from 0 to 1");
  }
  if (FLAGS_retry_budget_min < 0) return Status::InvalidArgument("--retry_budget_min must be >= 0");
  o.retry_budget = FLAGS_retry_budget;
  o.retry_budget_min = FLAGS_retry_budget_min;
  o.cancel_on_client_close = FLAGS_cancel_on_client_close;
  if (!FLAGS_link_secret_file.empty()) {
    auto secret = ReadLinkSecretFile(FLAGS_link_secret_file);
    if (!secret.ok()) return secret.status();
    o.link_secret = std::move(*secret);
  }
  s = ApplyLogLevel(FLAGS_logger_configuration);
  if (!s.ok()) {
    return Status::InvalidArgument(s.message() +
                                   " (ZConfig logger configuration files are not supported)");
  }
  return o;
}

const char* LbFlagsHelp() {
  return R"(Options (short forms as in zc.resumelb; long forms accept - or _):
  -a, --address=HOST:PORT        HTTP listen address (:0 = all interfaces, a free port,
                                 which is logged)
  -r, --request_classifier=SPEC  how requests are classified (host):
                                   host | zc.resumelb.lb:host_classifier
                                       the Host header without a leading "www."
                                   re:KEY:REGEX | zc.resumelb.lb:re_classifier("KEY",r"REGEX")
                                       the (?P<class>...) group of an RE2 search of
                                       environ[KEY], e.g. re:PATH_INFO:^/(?P<class>[^/]+)
                                   none | zc.resumelb.classlesspool:classifier
                                       every request in one class
  -p, --pool=NAME                balanced (default: résumé affinity with capacity-aware
                                 bounds, spreading hot classes, new workers taking classes
                                 over; see --placement), classic (zc.resumelb's pool
                                 exactly: --placement=lru), resume (zc.resumelb's rule
                                 with --placement) or classless (least backlog);
                                 zc.resumelb's module:Class names work
      --max_classes=N            (worker, class) entries a résumé pool tracks in all
                                 (32768; at most 8192 per worker); past it the least
                                 recently asked-for are forgotten (each costs a few
                                 hundred bytes; raise it when more classes are active)
      --placement=P              where a résumé pool puts a class no worker is skilled
                                 in: auto (default: consistent hashing of the worker
                                 names while other LBs serve the same workers -- other
                                 zkresumelb registrations, or --processes -- so that all
                                 place it alike; this LB's least recently used worker
                                 otherwise), ring (always hashing: several resumelb
                                 without ZooKeeper) or lru (always, as zc.resumelb)
      --variance=X               max ratio of a worker's backlog to the mean (resumelb: -v)
      --backlog_history=N        backlog averaging horizon in requests (9)
      --unskilled_score=X        score for a worker new to a class (1.0)
  -l, --access_log=PATH          one line per request ('-' = stdout): client, time,
                                 request line, status, bytes, seconds, worker, Host,
                                 request class, User-Agent. A file path; the original's
                                 logger name (e.g. "access") is a file of that name
                                 in the current directory
  -L, --logger_configuration=L   log level: DEBUG, INFO, WARNING, ERROR or a number
  -e, --disconnect_message=FILE  body of the 502 page sent when a worker is lost
  -s, --status_server=PATH       serve the JSON status document on this unix socket
      --status_socket_mode=MODE  its permission bits, octal (0600: owner only; 0660
                                 lets --status_socket_group read it)
      --status_socket_group=NAME its group (default: the LB's own)
      --admin_address=HOST:PORT  admin HTTP listener: /metrics (Prometheus), /status.json
                                 (the status document) and / (a live status page); off by
                                 default; use loopback or a private network
      --metrics_classes=N        request classes reported by name (20); the rest "other"
      --access_log_format=F      text (default) or json (one JSON object per line)
      --processes=N              N event-loop processes share the listening port
                                 (SO_REUSEPORT) under a master that respawns them;
                                 each has its own worker links, status socket
                                 (lb.sock: lb.0.sock, lb.1.sock...) and admin
                                 port (PORT+i) (1: no master)
      --link_secret_file=PATH    authenticate worker links with the secret in PATH
                                 (mode 0600 or 0400: refused if group or others can
                                 read it; one trailing newline is ignored): a worker
                                 must prove it (HMAC-SHA256 challenge-response) before
                                 it is pooled, and every worker must have the same
                                 file. No encryption: see docs/operations.md
      --check                    validate the options and exit (0 valid, 2 not)
      --version                  print the versions and exit
  -t, --socket_timeout=SECONDS   idle/stalled client connections are closed (99)
  -m, --max_connections=N        beyond N client connections new ones wait (0 = no limit);
                                 worker connections leave N descriptors of the open-file
                                 limit to clients (0: a quarter of the limit)
  -b, --backlog=N                listen backlog (511)
      --header_timeout=SECONDS   request headers must arrive within this, else 408 (30)
      --worker_wait_timeout=S    a request waits this long for a worker, else 503 (30)
      --worker_keepalive=S       keep-alive interval on worker connections (1)
      --worker_timeout=S         a worker silent this long is dropped (5)
      --connect_timeout=S        connecting to a worker (3)
      --drain_timeout=S          SIGTERM waits this long for requests in flight (60)
      --max_header_bytes=N       request line + headers limit, else 431 (65536)
      --max_headers=N            header count limit, else 431 (100)
      --max_body_bytes=N         request body limit, else 413 (1073741824)
      --response_memory=N        response bytes kept in memory per request before
                                 spilling to a temp file (1048576)
      --buffer_dir=DIR           where those temp files go ($TMPDIR or /tmp)
      --response_memory_total=N  response bytes in memory, all requests together
                                 (268435456); beyond it responses spill to disk sooner
      --response_disk_total=N    response bytes on disk, all requests together
                                 (4294967296); beyond it (or when the disk is full) the
                                 LB stops reading from that worker until the client reads
      --max_retries=N            retries of an idempotent request after worker loss (1);
                                 a request that a second worker dies with is never
                                 retried (a suspected query of death: 502)
      --retry_budget=F           retries in flight at most F x requests in flight (0.2)...
      --retry_budget_min=N       ...or N, whichever is more (10); beyond it: 502
      --cancel_on_client_close=B a client's EOF before its answer cancels the request,
                                 logged 499 (true); false: EOF is a half-close and the
                                 answer is still sent (pipelined requests always are)
  -h, --help                     this text
)";
}

std::unique_ptr<Pool> NewPoolFromOptions(const LbOptions& options, const PoolSettings& settings) {
  if (options.pool == "classless") return NewClasslessPool(options.single_version);
  // "auto" starts with the LRU rule unless this LB is one of a process group; zkresumelb
  // switches when it sees other LBs registered (LoadBalancer::SetOtherBalancers).
  const bool ring = options.placement == "ring" ||
                    (options.placement == "auto" && options.processes > 1);
  const ClassPlacement placement =
      ring ? ClassPlacement::kHashRing : ClassPlacement::kLeastRecentlyUsed;
  ClassLimits limits;
  limits.total = options.max_classes;
  limits.per_worker = std::min(limits.per_worker, limits.total);
  if (options.pool == "balanced") {
    auto pool = NewBalancedPool(settings, BalancedParams{}, options.single_version, limits);
    pool->SetClassPlacement(placement);
    return pool;
  }
  return std::make_unique<ResumePool>(settings, options.single_version, limits, placement);
}

bool IsResumePool(const LbOptions& options) {
  return options.pool == "resume" || options.pool == "classic" || options.pool == "balanced";
}

StatusOr<int> RunLbProcesses(const std::string& program, const LbOptions& options,
                             const std::function<int(const LbOptions&)>& run) {
  if (options.processes <= 1) return run(options);
  HostPort bound;
  auto reserved = ReserveReusePort(options.address, &bound);
  if (!reserved.ok()) return reserved.status();
  LbOptions shared = options;
  shared.address = bound;  // port 0: the one free port every process listens on
  shared.reuse_port = true;
  ProcessGroupOptions group{program, options.processes};
  const int reserved_fd = *reserved;
  return RunProcessGroup(group, [&](int index) {
    close(reserved_fd);  // the master keeps the reservation
    LbOptions mine = shared;
    mine.status_socket = ProcessFilePath(options.status_socket, index);
    if (options.admin_address) mine.admin_address = *ProcessAddress(*options.admin_address, index);
    return run(mine);
  });
}

}  // namespace rlb::lb
