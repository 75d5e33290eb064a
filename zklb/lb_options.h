// LbOptions: every setting of the load balancer, with its default and meaning. Filled from
// the command line by ParseLbCommandLine (shared by resumelb and zkresumelb).
#ifndef RESUMELB_ZKLB_LB_OPTIONS_H_
#define RESUMELB_ZKLB_LB_OPTIONS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/http_request_parser.h"
#include "common/net_address.h"
#include "zklb/pool.h"

namespace rlb::lb {

struct LbOptions {
  HostPort address{"", 0};            // -a: HTTP listen address (":0": all interfaces, any port)
  int listen_backlog = 511;           // -b
  int max_connections = 0;            // -m: 0 = unlimited; beyond it new ones wait in the backlog
  size_t max_classes = 32768;         // --max_classes: the pool's ClassLimits::total
  std::string classifier = "host";    // -r
  // -p: balanced (the default: docs/design.md, "The balanced pool") | resume (zc.resumelb's
  // rule, new classes placed by --placement) | classic (zc.resumelb's pool exactly) |
  // classless
  std::string pool = "balanced";
  // --placement: where the résumé pool puts a class no eligible worker is skilled in:
  // "auto" (consistent hashing when this LB knows it is one of several, else the least
  // recently used worker), "ring" (always hashing) or "lru" (always, zc.resumelb's rule;
  // what -p classic means).
  std::string placement = "auto";
  bool single_version = false;        // -v (zkresumelb)
  PoolSettings pool_settings{4.0, 9, 1.0};  // -v/--variance, --backlog-history, --unskilled-score
  std::string access_log;             // -l: path, "-" for stdout, empty = none
  std::string disconnect_message_file;  // -e
  std::string status_socket;          // -s
  unsigned status_socket_mode = 0600;  // its permission bits
  std::string status_socket_group;     // its group ("" = the process's)
  // The admin HTTP listener (/metrics, /status.json, the status page); off when unset.
  std::optional<HostPort> admin_address;
  size_t metrics_classes = 20;        // request classes reported by name; the rest "other"
  bool access_log_json = false;       // --access_log_format=json
  double socket_timeout = 99.0;       // -t: idle client connections; stalled reads/writes
  double header_timeout = 30.0;       // request headers must arrive within this
  double worker_wait_timeout = 30.0;  // a request waits this long for a worker, then 503
  double worker_keepalive = 1.0;      // keep-alive interval on idle worker connections
  double worker_timeout = 5.0;        // a worker silent this long is dropped
  double connect_timeout = 3.0;       // connecting to a worker
  double drain_timeout = 60.0;        // SIGTERM: wait this long for requests in flight
  size_t response_memory = 1u << 20;  // per request, before spilling to a temp file
  // Process-wide budgets for response bytes held for slow clients: past the memory one,
  // responses spill to disk sooner; past the disk one (or a full disk) the LB stops reading
  // from the worker until the client catches up.
  uint64_t response_memory_total = 256ull << 20;
  uint64_t response_disk_total = 4ull << 30;
  std::string buffer_dir = "/tmp";    // where response buffer files go (TMPDIR by default)
  HttpLimits http_limits;
  int max_retries = 1;                // re-dispatches of one idempotent request
  // Retry budget (as Envoy's): retries in flight may not exceed
  // max(retry_budget_min, retry_budget x requests in flight), so a crash loop cannot
  // multiply the load. A request over budget gets 502.
  double retry_budget = 0.2;
  int retry_budget_min = 10;
  // A client that closes its connection (EOF) while its request waits for a worker or runs
  // cancels it (logged 499, as nginx does); false: EOF is a half-close and the response is
  // still sent. A client that pipelined its requests always gets every answer.
  bool cancel_on_client_close = true;
  // --link_secret_file's secret (common/link_auth.h); empty: links are not authenticated.
  std::string link_secret;
  // --processes: event-loop processes sharing the listening port (SO_REUSEPORT), each with
  // its own worker links, status socket (lb.sock -> lb.I.sock) and admin port (PORT+I);
  // 1 = no master.
  int processes = 1;
  // Listen with SO_REUSEPORT (set for each process of a group).
  bool reuse_port = false;
};

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_LB_OPTIONS_H_
