// RequestMetrics: what the LB's finished requests add up to, for /metrics and the status
// document: counts by status class, a latency histogram, body bytes, and the same per
// request class for the busiest classes.
//
// Per-class series are bounded, so a client inventing classes (distinct Host headers)
// cannot make the metrics grow: at most `max_classes` classes are reported by name, the
// rest together as "other". Which classes those are follows the traffic: candidates are
// counted with the Space-Saving algorithm (Metwally et al.; at most 8 x max_classes
// counters, decayed by half every minute), and every 10 s a candidate busier than twice the
// quietest reported class takes its place. The evicted class's counts move into "other",
// so every reported counter only grows (Prometheus's rule for counters); a newly reported
// class starts from zero.
//
// Thread rules: loop thread only.
#ifndef RESUMELB_ZKLB_REQUEST_METRICS_H_
#define RESUMELB_ZKLB_REQUEST_METRICS_H_

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "status/lb_status.h"
#include "zklb/access_log.h"

namespace rlb::lb {

class RequestMetrics {
 public:
  // The latency histogram's upper bounds, seconds.
  static const std::vector<double>& LatencyBounds();

  // REQUIRES: max_classes >= 1.
  explicit RequestMetrics(size_t max_classes = 20);

  // Counts one finished request. `now`: a monotonic clock in seconds, for the decay.
  void Record(const RequestRecord& record, double now);
  void Record(const RequestRecord& record);  // now = the steady clock

  // Fills status->requests (the reported classes without their workers, busiest first).
  void Fill(LbStatusSnapshot* status) const;

 private:
  struct ClassStats {
    uint64_t requests = 0;
    LbStatusSnapshot::Histogram latency;
  };
  static ClassStats Fresh();  // zero counts, the latency bounds
  void Observe(ClassStats* stats, double seconds) const;
  void Rebalance(double now);

  const size_t max_classes_;
  const size_t max_candidates_;
  LbStatusSnapshot::Requests totals_;
  std::unordered_map<std::string, ClassStats> reported_;
  ClassStats other_;
  std::unordered_map<std::string, double> candidates_;  // class -> decayed count
  double last_rebalance_ = -1;
  double last_decay_ = -1;
};

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_REQUEST_METRICS_H_
