// RenderLbMetrics: the load balancer's status snapshot in the Prometheus text exposition
// format (version 0.0.4), served at /metrics on the admin listener. Names follow
// Prometheus's conventions: a "resumelb_" prefix, base units (seconds, bytes), "_total" on
// counters, "_seconds" histograms; workers are labelled worker="host:port", request classes
// class="..." (the busiest ones only, the rest class="other": see zklb/request_metrics.h).
// The metric list is in docs/operations.md, "Metrics".
//
// Thread rules: a pure function.
#ifndef RESUMELB_STATUS_LB_METRICS_H_
#define RESUMELB_STATUS_LB_METRICS_H_

#include <string>

#include "status/lb_status.h"
#include "status/prometheus_text.h"  // kPrometheusContentType

namespace rlb {

std::string RenderLbMetrics(const LbStatusSnapshot& status);

}  // namespace rlb

#endif  // RESUMELB_STATUS_LB_METRICS_H_
