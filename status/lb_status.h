// LbStatusSnapshot: what a load balancer reports on its status socket, as plain data, and
// RenderLbStatusJson, the one place that turns it into the JSON document (its keys are
// documented in docs/operations.md; tests and get-lb-status read them). The LoadBalancer
// fills everything but `zookeeper`; zkresumelb's ZkDiscovery fills that.
//
// Thread rules: values; RenderLbStatusJson is a pure function.
#ifndef RESUMELB_STATUS_LB_STATUS_H_
#define RESUMELB_STATUS_LB_STATUS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rlb {

struct LbStatusSnapshot {
  // A worker of the pool, in the pool's order ("workers" and "workers_ex").
  struct PoolWorker {
    std::string name;                   // host:port
    int backlog = 0;                    // requests in flight
    std::optional<double> mean_backlog;  // decayed backlog; null when undefined
    std::optional<double> oldest_start;  // epoch seconds of its oldest request in flight
    uint64_t queued_bytes = 0;          // bytes queued on its link, not yet sent
  };
  // A worker link, sorted by name ("worker_details"), in the pool or not.
  struct Link {
    std::string name;
    bool connected = false;
    bool in_pool = false;
    std::optional<std::string> version;
    uint64_t resume_size = 0;
    uint64_t requests = 0;
    uint64_t in_flight = 0;
    std::optional<std::string> last_error;  // why its last connection attempt failed
    std::optional<double> last_error_time;  // epoch seconds of that failure
    std::string state;      // "idle", "resolving", "connecting", "handshake", "ready", "draining"
    uint64_t failures = 0;  // connection attempts that failed and connections lost, in all
    bool disabled = false;  // taken out of the pool by the operator (zkresumelb "disabled")
  };
  struct Pool {
    std::string kind;  // "resume", "classic", "balanced" or "classless"
    bool single_version = false;
    std::optional<std::string> active_version;
    double variance = 0;
    int backlog_history = 0;
    double unskilled_score = 0;
    // Where new classes go: "ring" (consistent hashing: several LBs agree) or "lru" (this
    // LB's least recently used worker); "" for pools that do not place classes.
    std::string placement;
  };
  struct Totals {
    uint64_t requests = 0;
    uint64_t responses = 0;
    uint64_t retries = 0;
    uint64_t bad_gateway = 0;  // "502"
    uint64_t unavailable = 0;  // "503"
    uint64_t client_errors = 0;
    uint64_t truncated = 0;
    uint64_t client_aborts = 0;
    uint64_t retries_refused = 0;
    uint64_t queries_of_death = 0;
    uint64_t invalid_responses = 0;
    uint64_t connections_accepted = 0;
    uint64_t connections_open = 0;
  };
  // zkresumelb only: the session, the paths, where each pool setting comes from
  // ("zookeeper" or "default"; the values are the pool's), and what of the settings node's
  // data was refused.
  struct ZooKeeper {
    std::string state;  // ZkSession::StateName()
    std::string hosts;
    uint64_t sessions = 0;
    std::string path;
    std::optional<std::string> workers_path;  // null until resolved
    std::string variance_source;
    std::string backlog_history_source;
    std::string unskilled_score_source;
    // Why the settings node's current data is not in force: setting (or the node's path,
    // for data that is not a JSON object) -> reason; rendered as "settings"."rejected"
    // when not empty.
    std::map<std::string, std::string> rejected_settings;
    // The workers the settings node disables ("zookeeper"."disabled"), sorted.
    std::vector<std::string> disabled;
    // Reads of worker provider nodes that found the node (single-version mode and pools
    // that need versions): each node once when it appears, once per change of its data,
    // and all once more in a new session ("zookeeper"."worker_node_reads").
    uint64_t worker_node_reads = 0;
  };

  // How late the LB's event loop runs what is due, in milliseconds ("loop_lag_ms").
  struct LoopLag {
    double last = 0;
    double recent_max = 0;  // over the last 10 s
    double max = 0;         // since start
  };
  int backlog = 0;
  std::optional<double> mean_backlog;
  std::vector<PoolWorker> workers;
  std::vector<Link> links;
  Pool pool;
  Totals totals;
  bool draining = false;
  LoopLag loop_lag;
  // Response bytes held for slow clients, all requests together ("response_buffers").
  struct ResponseBuffers {
    uint64_t memory = 0;
    uint64_t disk = 0;
  } response_buffers;
  // The open-file limit's share-out (zklb/fd_budget.h), "file_descriptors": the limit,
  // the descriptors open at start, those left to client connections, how many worker
  // connections fit and are open, the workers known but not connected for lack of a
  // descriptor, the link attempts that found none, and the accepts held back for lack of
  // one. Unset (not rendered) before the LB has started.
  struct FileDescriptors {
    uint64_t limit = 0;
    uint64_t base = 0;
    uint64_t client_reserve = 0;
    uint64_t link_capacity = 0;
    uint64_t links_open = 0;
    uint64_t workers_waiting = 0;
    uint64_t link_shortages = 0;
    uint64_t accept_pauses = 0;
  };
  std::optional<FileDescriptors> file_descriptors;
  std::optional<ZooKeeper> zookeeper;  // rendered as "zookeeper" and "settings"

  // Identity: "version" (common/version.h), "start_time" (epoch seconds) and "uptime"
  // (seconds).
  std::string version;
  double start_time = 0;
  double uptime = 0;

  // Request latency: counts per bucket of `bounds` (upper bounds, seconds) plus one for
  // +Inf, not cumulative.
  struct Histogram {
    std::vector<double> bounds;
    std::vector<uint64_t> counts;  // bounds.size() + 1
    double sum = 0;
    uint64_t count = 0;
  };
  // The busiest request classes ("classes"): requests and latency since the class became
  // one of them, and the pool workers whose résumé has the class (highest score first).
  struct Class {
    std::string name;
    uint64_t requests = 0;
    Histogram latency;
    struct Server {
      std::string worker;
      double score = 0;
    };
    std::vector<Server> workers;
  };
  // Every finished request (logged), by outcome: "requests_by_status", "latency_seconds",
  // "bytes" in the document; the histograms and classes also feed /metrics.
  struct Requests {
    uint64_t by_status_class[6] = {0, 0, 0, 0, 0, 0};  // [1]..[5]: 1xx..5xx; [0]: other
    Histogram latency;
    uint64_t request_body_bytes = 0;   // received from clients
    uint64_t response_body_bytes = 0;  // sent to clients
    std::vector<Class> classes;        // the busiest classes, most requests first
    Class other;                       // every other class together ("other")
  } requests;
  // 502s by cause (the rest of totals."502" is "worker_lost").
  uint64_t bad_gateway_invalid_head = 0;
  // Limits, for the metrics: the ResponseBudget's.
  uint64_t response_memory_limit = 0;
  uint64_t response_disk_limit = 0;
};

// The status document: one JSON object and a newline.
std::string RenderLbStatusJson(const LbStatusSnapshot& status);

// `text` with every byte that is not part of valid UTF-8 replaced by U+FFFD: request
// classes, Host and User-Agent values are client bytes, and JSON and Prometheus labels are
// UTF-8.
std::string ValidUtf8(std::string_view text);

}  // namespace rlb

#endif  // RESUMELB_STATUS_LB_STATUS_H_
