// RenderLbMetrics: the snapshot's numbers, family by family, through PrometheusText.
#include "status/lb_metrics.h"

#include <cmath>

#include "status/prometheus_text.h"

namespace rlb {

namespace {

void Histogram(PrometheusText* w, const std::string& name, PrometheusText::Labels labels,
               const LbStatusSnapshot::Histogram& h) {
  w->Histogram(name, labels, h.bounds, h.counts, h.sum, h.count);
}

}  // namespace

std::string RenderLbMetrics(const LbStatusSnapshot& st) {
  PrometheusText w;
  auto d = [](uint64_t v) { return static_cast<double>(v); };
  w.Family("resumelb_build_info", "gauge", "The running version (always 1).");
  w.Sample("resumelb_build_info", {{"version", st.version}}, 1);
  w.Single("resumelb_start_time_seconds", "gauge", "When the load balancer started, epoch seconds.",
           st.start_time);
  w.Single("resumelb_draining", "gauge", "1 while shutting down (SIGTERM), else 0.",
           st.draining ? 1 : 0);

  // Clients and requests.
  w.Single("resumelb_client_connections_accepted_total", "counter",
           "Client connections accepted.", d(st.totals.connections_accepted));
  w.Single("resumelb_client_connections", "gauge", "Client connections open.",
           d(st.totals.connections_open));
  w.Single("resumelb_requests_received_total", "counter", "HTTP requests received.",
           d(st.totals.requests));
  w.Family("resumelb_requests_total", "counter",
           "Requests finished, by status class (499: the client left first).");
  static const char* const kCodes[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
  for (int i = 1; i <= 5; ++i) {
    w.Sample("resumelb_requests_total", {{"code", kCodes[i]}}, d(st.requests.by_status_class[i]));
  }
  w.Family("resumelb_request_duration_seconds", "histogram",
           "Time from a request's first byte to the end of its response.");
  Histogram(&w, "resumelb_request_duration_seconds", {}, st.requests.latency);
  w.Single("resumelb_retries_total", "counter",
           "Requests re-dispatched after their worker was lost.", d(st.totals.retries));
  // 502s by cause: the rest of the 502 count is workers lost without a retry.
  const uint64_t known = st.totals.retries_refused + st.totals.queries_of_death +
                         st.bad_gateway_invalid_head;
  const uint64_t lost = st.totals.bad_gateway > known ? st.totals.bad_gateway - known : 0;
  w.Family("resumelb_gateway_errors_total", "counter",
           "Requests the load balancer answered 502 or 503 itself, by cause.");
  w.Sample("resumelb_gateway_errors_total", {{"code", "502"}, {"cause", "worker_lost"}}, d(lost));
  w.Sample("resumelb_gateway_errors_total", {{"code", "502"}, {"cause", "retry_budget"}},
           d(st.totals.retries_refused));
  w.Sample("resumelb_gateway_errors_total", {{"code", "502"}, {"cause", "query_of_death"}},
           d(st.totals.queries_of_death));
  w.Sample("resumelb_gateway_errors_total", {{"code", "502"}, {"cause", "invalid_response"}},
           d(st.bad_gateway_invalid_head));
  w.Sample("resumelb_gateway_errors_total", {{"code", "503"}, {"cause", "no_worker"}},
           d(st.totals.unavailable));
  w.Single("resumelb_client_errors_total", "counter",
           "Requests answered 4xx or 505 by the load balancer (malformed, too large, ...).",
           d(st.totals.client_errors));
  w.Single("resumelb_client_aborts_total", "counter",
           "Requests whose client left before the answer (logged 499).",
           d(st.totals.client_aborts));
  w.Single("resumelb_truncated_responses_total", "counter",
           "Responses cut off after they started (client connection reset).",
           d(st.totals.truncated));
  w.Single("resumelb_invalid_responses_total", "counter",
           "Worker responses with an invalid head or longer than their Content-Length.",
           d(st.totals.invalid_responses));
  w.Single("resumelb_request_body_bytes_total", "counter",
           "Request body bytes received from clients.", d(st.requests.request_body_bytes));
  w.Single("resumelb_response_body_bytes_total", "counter",
           "Response body bytes sent to clients.", d(st.requests.response_body_bytes));

  // Resources.
  w.Family("resumelb_response_buffer_bytes", "gauge",
           "Response bytes held for slow clients, all requests together.");
  w.Sample("resumelb_response_buffer_bytes", {{"medium", "memory"}}, d(st.response_buffers.memory));
  w.Sample("resumelb_response_buffer_bytes", {{"medium", "disk"}}, d(st.response_buffers.disk));
  w.Family("resumelb_response_buffer_limit_bytes", "gauge",
           "The budgets for those bytes (--response_memory_total, --response_disk_total).");
  w.Sample("resumelb_response_buffer_limit_bytes", {{"medium", "memory"}},
           d(st.response_memory_limit));
  w.Sample("resumelb_response_buffer_limit_bytes", {{"medium", "disk"}}, d(st.response_disk_limit));
  w.Single("resumelb_event_loop_lag_seconds", "gauge",
           "How late the event loop last ran a timer that was due.", st.loop_lag.last / 1000);
  w.Single("resumelb_event_loop_lag_recent_max_seconds", "gauge",
           "The largest event loop lag over the last 10 seconds.", st.loop_lag.recent_max / 1000);
  w.Single("resumelb_event_loop_lag_max_seconds", "gauge",
           "The largest event loop lag since start.", st.loop_lag.max / 1000);

  // Pool and settings.
  w.Single("resumelb_backlog", "gauge", "Requests in flight at workers.", st.backlog);
  w.Single("resumelb_mean_backlog", "gauge",
           "The pool's decayed backlog (NaN when undefined).",
           st.mean_backlog ? *st.mean_backlog : std::nan(""));
  w.Family("resumelb_setting", "gauge", "Pool settings in force.");
  w.Sample("resumelb_setting", {{"setting", "variance"}}, st.pool.variance);
  w.Sample("resumelb_setting", {{"setting", "backlog_history"}}, st.pool.backlog_history);
  w.Sample("resumelb_setting", {{"setting", "unskilled_score"}}, st.pool.unskilled_score);
  if (st.zookeeper) {
    static const char* const kStates[] = {"connecting", "connected", "closed"};
    w.Family("resumelb_zookeeper_session_state", "gauge",
             "1 for the ZooKeeper session's current state, 0 for the others.");
    bool known_state = false;
    for (const char* s : kStates) {
      known_state |= st.zookeeper->state == s;
      w.Sample("resumelb_zookeeper_session_state", {{"state", s}},
               st.zookeeper->state == s ? 1 : 0);
    }
    if (!known_state) {
      w.Sample("resumelb_zookeeper_session_state", {{"state", st.zookeeper->state}}, 1);
    }
    w.Single("resumelb_zookeeper_sessions_total", "counter", "ZooKeeper sessions established.",
             d(st.zookeeper->sessions));
  }

  // Workers.
  w.Family("resumelb_worker_up", "gauge", "1 when the LB is connected to the worker.");
  for (const auto& l : st.links) w.Sample("resumelb_worker_up", {{"worker", l.name}}, l.connected);
  w.Family("resumelb_worker_in_pool", "gauge", "1 when the worker receives new requests.");
  for (const auto& l : st.links) w.Sample("resumelb_worker_in_pool", {{"worker", l.name}}, l.in_pool);
  w.Family("resumelb_worker_in_flight", "gauge", "Requests on the worker's connection.");
  for (const auto& l : st.links) {
    w.Sample("resumelb_worker_in_flight", {{"worker", l.name}}, d(l.in_flight));
  }
  w.Family("resumelb_worker_requests_total", "counter", "Requests sent to the worker.");
  for (const auto& l : st.links) {
    w.Sample("resumelb_worker_requests_total", {{"worker", l.name}}, d(l.requests));
  }
  w.Family("resumelb_worker_failures_total", "counter",
           "Failed connection attempts and lost connections.");
  for (const auto& l : st.links) {
    w.Sample("resumelb_worker_failures_total", {{"worker", l.name}}, d(l.failures));
  }
  w.Family("resumelb_worker_resume_classes", "gauge", "Classes in the worker's résumé.");
  for (const auto& l : st.links) {
    w.Sample("resumelb_worker_resume_classes", {{"worker", l.name}}, d(l.resume_size));
  }
  w.Family("resumelb_worker_backlog", "gauge", "The pool's backlog of the worker.");
  for (const auto& p : st.workers) w.Sample("resumelb_worker_backlog", {{"worker", p.name}}, p.backlog);
  w.Family("resumelb_worker_mean_backlog", "gauge", "The worker's decayed backlog.");
  for (const auto& p : st.workers) {
    w.Sample("resumelb_worker_mean_backlog", {{"worker", p.name}},
             p.mean_backlog ? *p.mean_backlog : std::nan(""));
  }
  w.Family("resumelb_worker_oldest_request_start_seconds", "gauge",
           "When the worker's oldest request in flight began, epoch seconds (0: none).");
  for (const auto& p : st.workers) {
    w.Sample("resumelb_worker_oldest_request_start_seconds", {{"worker", p.name}},
             p.oldest_start.value_or(0));
  }
  w.Family("resumelb_worker_queued_bytes", "gauge", "Bytes queued to the worker, not yet sent.");
  for (const auto& p : st.workers) {
    w.Sample("resumelb_worker_queued_bytes", {{"worker", p.name}}, d(p.queued_bytes));
  }

  // The busiest classes, then the rest as "other".
  w.Family("resumelb_class_requests_total", "counter",
           "Requests finished, by request class (the busiest classes; the rest: other).");
  for (const auto& c : st.requests.classes) {
    w.Sample("resumelb_class_requests_total", {{"class", c.name}}, d(c.requests));
  }
  w.Sample("resumelb_class_requests_total", {{"class", "other"}}, d(st.requests.other.requests));
  w.Family("resumelb_class_request_duration_seconds", "histogram",
           "Request duration by request class (the busiest classes; the rest: other).");
  for (const auto& c : st.requests.classes) {
    Histogram(&w, "resumelb_class_request_duration_seconds", {{"class", c.name}}, c.latency);
  }
  Histogram(&w, "resumelb_class_request_duration_seconds", {{"class", "other"}},
            st.requests.other.latency);
  return w.Take();
}

}  // namespace rlb
