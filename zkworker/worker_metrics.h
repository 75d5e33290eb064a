// WorkerMetrics: what the worker's /metrics page reports (zkworker --admin_address; the
// metric list is in docs/operations.md, "Metrics"), in the Prometheus text format: the
// requests the application ran, by status class, and its time per request (a histogram),
// the application threads (all, busy), the classes in the résumé, the load balancers
// connected, the requests in flight, the process's RSS, its start time and version.
//
// Thread rules — the application threads never touch loop state:
//   * RecordRequest() is called on the application threads, as each request finishes; it
//     only adds to atomics, so it never waits and never touches what the loop owns.
//   * Everything the loop owns (connections, requests in flight, draining) is read on the
//     loop thread into a WorkerGauges (WorkerServer::Gauges()) when a page is rendered.
//   * Snapshot() reads the atomics from any thread (the loop, when a page is rendered); a
//     page rendered while requests finish may be one request behind in some series.
//   * RenderWorkerMetrics() is a pure function.
#ifndef RESUMELB_ZKWORKER_WORKER_METRICS_H_
#define RESUMELB_ZKWORKER_WORKER_METRICS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rlb::worker {

// What only the loop knows, read on the loop thread.
struct WorkerGauges {
  int threads = 0;              // application threads
  int busy_threads = 0;         // running a request now
  size_t resume_classes = 0;    // classes with a score in the résumé
  size_t balancer_connections = 0;
  size_t requests_in_flight = 0;  // received in full and not finished by the application
  bool draining = false;        // SIGTERM: shutting down
};

// Everything one page shows.
struct WorkerMetricsSnapshot {
  // Requests the application ran, by the status class of the response it started: [1]..[5]
  // are 1xx..5xx, [0] is "other" (no response head was sent: the application failed or the
  // request was cancelled before start_response).
  uint64_t by_status_class[6] = {0, 0, 0, 0, 0, 0};
  // The application time histogram: bounds in seconds, one count per bucket (the last one
  // above every bound), their sum of seconds and total count.
  std::vector<double> bounds;
  std::vector<uint64_t> bucket_counts;
  double seconds_sum = 0;
  uint64_t count = 0;
  WorkerGauges gauges;
  double start_time = 0;   // epoch seconds
  uint64_t rss_bytes = 0;  // 0: unknown
  std::string version;
};

class WorkerMetrics {
 public:
  WorkerMetrics();  // the start time is now
  WorkerMetrics(const WorkerMetrics&) = delete;
  WorkerMetrics& operator=(const WorkerMetrics&) = delete;

  // Any thread (the application threads): the application finished one request whose
  // response started with `status` (0: none started) after `seconds` in the application.
  void RecordRequest(int status, double seconds);

  // Any thread: the counters now, with `gauges`, the RSS and the version.
  WorkerMetricsSnapshot Snapshot(const WorkerGauges& gauges) const;

 private:
  const double start_time_;
  std::atomic<uint64_t> by_status_class_[6] = {};
  std::vector<std::atomic<uint64_t>> buckets_;  // DurationBucketBounds().size() + 1
  std::atomic<double> seconds_sum_{0};
};

// The code of a WSGI status line such as "200 OK": 100 to 599, or 0 when the line does
// not start with such a code followed by a space or its end.
int StatusCodeOf(std::string_view status_line);

// The page, in the text exposition format version 0.0.4 (status/prometheus_text.h).
std::string RenderWorkerMetrics(const WorkerMetricsSnapshot& snapshot);

}  // namespace rlb::worker

#endif  // RESUMELB_ZKWORKER_WORKER_METRICS_H_
