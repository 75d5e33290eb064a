// WorkerOptions: every setting of zkworker, with its meaning and default. Filled from the
// command line and a Paste Deploy file's [server:main] section by WorkerCommandLine
// (zkworker/worker_command_line.h); --help lists the same settings for users.
#ifndef RESUMELB_ZKWORKER_WORKER_OPTIONS_H_
#define RESUMELB_ZKWORKER_WORKER_OPTIONS_H_

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "common/net_address.h"
#include "common/zk_session.h"
#include "zkworker/resume_tracker.h"

namespace rlb::worker {

struct WorkerOptions {
  // CONFIG.ini, the Paste Deploy file ([app:main] is the application, [server:main] holds
  // these options); empty when the application is given by `app`.
  std::string ini_path;
  // --app: the WSGI application as MODULE:CALLABLE (used without CONFIG.ini).
  std::string app;
  // --address / address: listen HOST:PORT; port 0 binds a free port. Required, except in
  // ZooKeeper mode where it defaults to ":0".
  HostPort address;
  // --admin_address / admin_address: the admin HTTP listener HOST:PORT serving /metrics
  // (status/admin_server.h); port 0 binds a free port (logged); unset: none. With
  // processes, process i serves it at ProcessAddress(admin_address, i), like `address`.
  std::optional<HostPort> admin_address;
  // --history: roughly the number of requests the résumé reflects; also how often, in
  // requests, the résumé is sent to load balancers. At least 1.
  int history = kDefaultHistory;
  // --max_skill_age: requests without one of a class before the class leaves the résumé;
  // 0 means 10 x history.
  int max_skill_age = 0;
  // --threads: application threads (the flag's 0 is taken as 1). Default 1.
  int threads = 1;
  // --resume_file: JSON file the résumé is loaded from at start and saved to; empty: none.
  std::string resume_file;
  // --tracelog: file the request trace records go to, "-" for stderr; empty: no tracing.
  std::string tracelog;
  // --tracelog_key: environ key of the application's trace logger.
  std::string tracelog_key = "tracelog";
  // --pythonpath: directories put first on sys.path, in order (given colon-separated).
  std::vector<std::string> pythonpath;
  // --virtualenv: a virtualenv made by Debian's /usr/bin/python3 to run in; empty: none.
  std::string virtualenv;
  // --spool_threshold: request bodies larger than this many bytes go to a temp file.
  size_t spool_threshold = 1u << 20;
  // --drain_timeout: seconds SIGTERM waits for requests in flight (0 to 1e9).
  double drain_timeout = 60.0;
  // --log_level (ini: log_level or loggers): DEBUG, INFO, WARNING, ERROR or a number;
  // already applied to glog when the options are returned.
  std::string log_level = "INFO";

  // ZooKeeper mode: [server:main] use = egg:zc.resumelb#zk, or --zookeeper / --path given.
  bool zookeeper_mode = false;
  // --zookeeper: ZooKeeper connection string (required in ZooKeeper mode).
  std::string zookeeper;
  // --path: absolute ZooKeeper node of this kind of worker, e.g. /lb/workers; settings
  // are read from its data, the address registered under PATH/providers.
  std::string path;
  // --advertise / advertise: the HOST:PORT registered in ZooKeeper instead of the listening
  // address (port 0: the port bound); with processes, process i advertises PORT+i, as it
  // listens on address PORT+i. Unset: the listening address, with the machine's primary
  // address for a wildcard host (zkworker/zk_registration.h).
  std::optional<HostPort> advertise;
  // --description: free text registered with the worker; empty: not registered.
  std::string description;
  // --app_version (ini: version): software version registered with the worker, used by
  // single-version load balancers; empty: not registered.
  std::string app_version;
  // --zookeeper_session_timeout: seconds, > 0 and at most 3600.
  double zookeeper_session_timeout = 10.0;
  // --zookeeper_auth: digest credentials for every session; none when unset.
  std::optional<ZkAuth> zookeeper_auth;
  // --link_secret_file's secret (common/link_auth.h); empty: links are not authenticated.
  std::string link_secret;

  // The supervisor (zkworker/supervisor.h). --processes: N > 0 makes this process the
  // master of N worker processes; 0 (the default): this process is the worker.
  int processes = 0;
  // --preload: the master imports the application once and forks the processes (less
  // memory, faster respawns; a reload does not pick up new code). Default: each process
  // is a fresh zkworker that imports the application itself.
  bool preload = false;
  // --harakiri: seconds a request may run before its process is killed; 0: no limit.
  double harakiri = 0;
  // --max_requests: requests after which a process is replaced gracefully; 0: never.
  uint64_t max_requests = 0;
  // --max_requests_jitter: each process's limit is max_requests + 0..jitter.
  uint64_t max_requests_jitter = 0;
  // --reload_on_rss: MB of RSS past which a process is replaced gracefully; 0: never.
  uint64_t reload_on_rss = 0;
  // --status_socket: unix socket on which the master serves its status (JSON).
  std::string status_socket;
  // --check: import the application as serving would, then exit (0: it loaded, 1: its
  // import failed); nothing is bound, registered or started.
  bool check = false;
  // --supervisor_fd (internal, set by the master): this process is supervised and reports
  // on the ProcessBoard behind this descriptor; -1: not supervised.
  int supervisor_fd = -1;
};

}  // namespace rlb::worker

#endif  // RESUMELB_ZKWORKER_WORKER_OPTIONS_H_
