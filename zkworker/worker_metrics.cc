// WorkerMetrics: atomic counters for the application threads, and the page's families.
#include "zkworker/worker_metrics.h"

#include <unistd.h>

#include "common/version.h"
#include "common/wall_clock.h"
#include "status/prometheus_text.h"
#include "zkworker/supervisor.h"  // ProcessRssBytes

namespace rlb::worker {

WorkerMetrics::WorkerMetrics()
    : start_time_(EpochSeconds()), buckets_(DurationBucketBounds().size() + 1) {}

void WorkerMetrics::RecordRequest(int status, double seconds) {
  // Relaxed: each counter only grows, and nothing else is ordered by them.
  const int status_class = status / 100;
  by_status_class_[status_class >= 1 && status_class <= 5 ? status_class : 0].fetch_add(
      1, std::memory_order_relaxed);
  if (!(seconds >= 0)) seconds = 0;  // a clock oddity must not make a negative sum
  buckets_[BucketIndex(DurationBucketBounds(), seconds)].fetch_add(1, std::memory_order_relaxed);
  seconds_sum_.fetch_add(seconds, std::memory_order_relaxed);
}

WorkerMetricsSnapshot WorkerMetrics::Snapshot(const WorkerGauges& gauges) const {
  WorkerMetricsSnapshot s;
  for (int i = 0; i < 6; ++i) {
    s.by_status_class[i] = by_status_class_[i].load(std::memory_order_relaxed);
  }
  s.bounds = DurationBucketBounds();
  for (const auto& bucket : buckets_) {
    s.bucket_counts.push_back(bucket.load(std::memory_order_relaxed));
    s.count += s.bucket_counts.back();  // so that _count always equals the +Inf bucket
  }
  s.seconds_sum = seconds_sum_.load(std::memory_order_relaxed);
  s.gauges = gauges;
  s.start_time = start_time_;
  s.rss_bytes = ProcessRssBytes(getpid());
  s.version = kVersion;
  return s;
}

int StatusCodeOf(std::string_view status_line) {
  if (status_line.size() < 3 || (status_line.size() > 3 && status_line[3] != ' ')) return 0;
  int code = 0;
  for (int i = 0; i < 3; ++i) {
    char c = status_line[i];
    if (c < '0' || c > '9') return 0;
    code = code * 10 + (c - '0');
  }
  return code >= 100 && code <= 599 ? code : 0;
}

std::string RenderWorkerMetrics(const WorkerMetricsSnapshot& s) {
  PrometheusText w;
  auto d = [](uint64_t v) { return static_cast<double>(v); };
  w.Family("zkworker_build_info", "gauge", "The running version (always 1).");
  w.Sample("zkworker_build_info", {{"version", s.version}}, 1);
  w.Single("zkworker_start_time_seconds", "gauge",
           "When the worker process started, epoch seconds.", s.start_time);
  w.Single("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
           d(s.rss_bytes));
  w.Single("zkworker_draining", "gauge", "1 while shutting down (SIGTERM), else 0.",
           s.gauges.draining ? 1 : 0);

  w.Family("zkworker_requests_total", "counter",
           "Requests the application ran, by the status class of its response (other: it "
           "sent none).");
  static const char* const kCodes[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
  for (int i = 0; i <= 5; ++i) {
    w.Sample("zkworker_requests_total", {{"code", kCodes[i]}}, d(s.by_status_class[i]));
  }
  w.Family("zkworker_app_duration_seconds", "histogram",
           "Time the application took per request (the call and its response body).");
  w.Histogram("zkworker_app_duration_seconds", {}, s.bounds, s.bucket_counts, s.seconds_sum,
              s.count);
  w.Single("zkworker_requests_in_flight", "gauge",
           "Requests received in full and not yet finished by the application.",
           d(s.gauges.requests_in_flight));

  w.Single("zkworker_app_threads", "gauge", "Application threads (--threads).",
           s.gauges.threads);
  w.Single("zkworker_app_threads_busy", "gauge", "Application threads running a request.",
           s.gauges.busy_threads);
  w.Single("zkworker_resume_classes", "gauge", "Request classes in the worker's résumé.",
           d(s.gauges.resume_classes));
  w.Single("zkworker_balancer_connections", "gauge", "Load balancer connections open.",
           d(s.gauges.balancer_connections));
  return w.Take();
}

}  // namespace rlb::worker
