// PrometheusText: builds a page in the Prometheus text exposition format (version 0.0.4),
// the /metrics page of the LB (status/lb_metrics.h) and of the worker
// (zkworker/worker_metrics.h): one HELP and TYPE line per metric family, then its samples.
// Label values are made valid UTF-8 and escaped; numbers are printed exactly ("%.17g",
// NaN, +Inf, -Inf).
//
// Thread rules: one instance per page being rendered; no shared state.
#ifndef RESUMELB_STATUS_PROMETHEUS_TEXT_H_
#define RESUMELB_STATUS_PROMETHEUS_TEXT_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rlb {

// The Content-Type of the text format.
inline constexpr char kPrometheusContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// The upper bounds, in seconds, of the duration histograms (the LB's request duration, the
// worker's application time): 5 ms to 60 s.
const std::vector<double>& DurationBucketBounds();
// The bucket of `value` in a histogram with these upper bounds: the first bound >= value,
// or bounds.size() (the +Inf bucket).
size_t BucketIndex(const std::vector<double>& bounds, double value);

class PrometheusText {
 public:
  using Labels = std::initializer_list<std::pair<const char*, std::string_view>>;

  // Starts a metric family; `type` is "counter", "gauge" or "histogram".
  void Family(const char* name, const char* type, const char* help);
  // One sample. `extra`: one more label already written as name="value" (a bucket's le).
  void Sample(std::string_view name, Labels labels, double value, std::string_view extra = {});
  // A family with a single sample without labels.
  void Single(const char* name, const char* type, const char* help, double value);
  // A histogram's samples (after its Family line): cumulative NAME_bucket{le=...} for each
  // of `bounds` and +Inf, then NAME_sum and NAME_count. `counts` holds one count per bucket
  // (not cumulative), the last one above every bound: bounds.size() + 1 of them.
  void Histogram(const std::string& name, Labels labels, const std::vector<double>& bounds,
                 const std::vector<uint64_t>& counts, double sum, uint64_t count);

  // The page; the instance is empty afterwards.
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace rlb

#endif  // RESUMELB_STATUS_PROMETHEUS_TEXT_H_
