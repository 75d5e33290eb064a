// The worker's /metrics counters and page (zkworker/worker_metrics.h): status classes, the
// application-time histogram, counting from many threads, and the rendered text.
#include "zkworker/worker_metrics.h"

#include <string>
#include <thread>
#include <vector>

#include "status/prometheus_text.h"

#include <catch2/catch.hpp>

using namespace rlb::worker;

namespace {

bool HasLine(const std::string& page, const std::string& line) {
  return page.find("\n" + line + "\n") != std::string::npos;
}

}  // namespace

TEST_CASE("StatusCodeOf reads the three-digit code of a WSGI status line") {
  CHECK(StatusCodeOf("200 OK") == 200);
  CHECK(StatusCodeOf("404 Not Found") == 404);
  CHECK(StatusCodeOf("599") == 599);
  CHECK(StatusCodeOf("100 Continue") == 100);
  CHECK(StatusCodeOf("") == 0);
  CHECK(StatusCodeOf("20") == 0);
  CHECK(StatusCodeOf("099 Low") == 0);
  CHECK(StatusCodeOf("600 High") == 0);
  CHECK(StatusCodeOf("2000 OK") == 0);
  CHECK(StatusCodeOf("2x0 OK") == 0);
  CHECK(StatusCodeOf("OK 200") == 0);
}

TEST_CASE("requests are counted by status class and in one histogram bucket each") {
  WorkerMetrics metrics;
  metrics.RecordRequest(200, 0.001);  // the first bucket (<= 5 ms)
  metrics.RecordRequest(204, 0.3);    // <= 0.5 s
  metrics.RecordRequest(404, 0.005);  // a bound is inclusive: <= 5 ms
  metrics.RecordRequest(503, 100);    // above every bound: +Inf
  metrics.RecordRequest(0, 0.02);     // no response started: "other"
  metrics.RecordRequest(302, -1);     // a negative time counts as 0
  WorkerGauges gauges;
  gauges.threads = 4;
  auto s = metrics.Snapshot(gauges);
  CHECK(s.by_status_class[0] == 1);
  CHECK(s.by_status_class[1] == 0);
  CHECK(s.by_status_class[2] == 2);
  CHECK(s.by_status_class[3] == 1);
  CHECK(s.by_status_class[4] == 1);
  CHECK(s.by_status_class[5] == 1);
  REQUIRE(s.bounds == rlb::DurationBucketBounds());
  REQUIRE(s.bucket_counts.size() == s.bounds.size() + 1);
  CHECK(s.bucket_counts[0] == 3);
  CHECK(s.bucket_counts[rlb::BucketIndex(s.bounds, 0.02)] == 1);
  CHECK(s.bucket_counts[rlb::BucketIndex(s.bounds, 0.3)] == 1);
  CHECK(s.bucket_counts.back() == 1);
  CHECK(s.count == 6);
  CHECK(s.seconds_sum == Approx(100.326));
  CHECK(s.gauges.threads == 4);
  CHECK(s.start_time > 0);
  CHECK(s.rss_bytes > 0);
  CHECK(!s.version.empty());
}

TEST_CASE("application threads count concurrently without losing a request") {
  WorkerMetrics metrics;
  constexpr int kThreads = 4;
  constexpr int kEach = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&metrics] {
      for (int i = 0; i < kEach; ++i) metrics.RecordRequest(200, 0.001);
    });
  }
  for (auto& t : threads) t.join();
  auto s = metrics.Snapshot(WorkerGauges{});
  CHECK(s.by_status_class[2] == kThreads * kEach);
  CHECK(s.count == kThreads * kEach);
  CHECK(s.seconds_sum == Approx(kThreads * kEach * 0.001));
}

TEST_CASE("the page has every family once, cumulative buckets and the gauges") {
  WorkerMetrics metrics;
  metrics.RecordRequest(200, 0.001);
  metrics.RecordRequest(200, 0.2);
  metrics.RecordRequest(500, 0.2);
  WorkerGauges gauges;
  gauges.threads = 8;
  gauges.busy_threads = 3;
  gauges.resume_classes = 17;
  gauges.balancer_connections = 2;
  gauges.requests_in_flight = 5;
  gauges.draining = true;
  auto snapshot = metrics.Snapshot(gauges);
  snapshot.version = "1.2.3";
  snapshot.rss_bytes = 1234567;
  snapshot.start_time = 1700000000.5;
  const std::string page = "\n" + RenderWorkerMetrics(snapshot);
  for (const char* family :
       {"zkworker_build_info", "zkworker_start_time_seconds", "process_resident_memory_bytes",
        "zkworker_draining", "zkworker_requests_total", "zkworker_app_duration_seconds",
        "zkworker_requests_in_flight", "zkworker_app_threads", "zkworker_app_threads_busy",
        "zkworker_resume_classes", "zkworker_balancer_connections"}) {
    INFO(family);
    const std::string type = std::string("\n# TYPE ") + family + " ";
    const size_t at = page.find(type);
    CHECK(at != std::string::npos);
    CHECK(page.find(type, at + 1) == std::string::npos);
  }
  CHECK(HasLine(page, "zkworker_build_info{version=\"1.2.3\"} 1"));
  CHECK(HasLine(page, "zkworker_start_time_seconds 1700000000.5"));
  CHECK(HasLine(page, "process_resident_memory_bytes 1234567"));
  CHECK(HasLine(page, "zkworker_draining 1"));
  CHECK(HasLine(page, "zkworker_requests_total{code=\"2xx\"} 2"));
  CHECK(HasLine(page, "zkworker_requests_total{code=\"5xx\"} 1"));
  CHECK(HasLine(page, "zkworker_requests_total{code=\"other\"} 0"));
  CHECK(HasLine(page, "zkworker_app_duration_seconds_bucket{le=\"0.0050000000000000001\"} 1"));
  CHECK(HasLine(page, "zkworker_app_duration_seconds_bucket{le=\"0.10000000000000001\"} 1"));
  CHECK(HasLine(page, "zkworker_app_duration_seconds_bucket{le=\"0.25\"} 3"));
  CHECK(HasLine(page, "zkworker_app_duration_seconds_bucket{le=\"+Inf\"} 3"));
  CHECK(HasLine(page, "zkworker_app_duration_seconds_count 3"));
  CHECK(HasLine(page, "zkworker_app_threads 8"));
  CHECK(HasLine(page, "zkworker_app_threads_busy 3"));
  CHECK(HasLine(page, "zkworker_resume_classes 17"));
  CHECK(HasLine(page, "zkworker_balancer_connections 2"));
  CHECK(HasLine(page, "zkworker_requests_in_flight 5"));
}
