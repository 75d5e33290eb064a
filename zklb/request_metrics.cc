// RequestMetrics: counting, the Space-Saving candidates and the periodic rebalance.
#include "zklb/request_metrics.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "status/prometheus_text.h"

namespace rlb::lb {
namespace {

constexpr double kRebalanceSeconds = 10;
constexpr double kHalfLifeSeconds = 60;

double SteadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void Merge(LbStatusSnapshot::Histogram* into, const LbStatusSnapshot::Histogram& from) {
  for (size_t i = 0; i < into->counts.size(); ++i) into->counts[i] += from.counts[i];
  into->sum += from.sum;
  into->count += from.count;
}

}  // namespace

const std::vector<double>& RequestMetrics::LatencyBounds() { return DurationBucketBounds(); }

RequestMetrics::RequestMetrics(size_t max_classes)
    : max_classes_(std::max<size_t>(1, max_classes)), max_candidates_(8 * max_classes_) {
  totals_.latency = Fresh().latency;
  other_ = Fresh();
}

RequestMetrics::ClassStats RequestMetrics::Fresh() {
  ClassStats stats;
  stats.latency.bounds = LatencyBounds();
  stats.latency.counts.assign(stats.latency.bounds.size() + 1, 0);
  return stats;
}

void RequestMetrics::Observe(ClassStats* stats, double seconds) const {
  ++stats->requests;
  auto& h = stats->latency;
  ++h.counts[BucketIndex(h.bounds, seconds)];
  h.sum += seconds;
  ++h.count;
}

void RequestMetrics::Record(const RequestRecord& record) { Record(record, SteadySeconds()); }

void RequestMetrics::Record(const RequestRecord& r, double now) {
  const double seconds = std::max(0.0, r.duration);
  const int status_class = r.status / 100;
  ++totals_.by_status_class[status_class >= 1 && status_class <= 5 ? status_class : 0];
  ClassStats all{0, std::move(totals_.latency)};
  Observe(&all, seconds);
  totals_.latency = std::move(all.latency);
  totals_.request_body_bytes += r.request_body_bytes;
  totals_.response_body_bytes += r.body_bytes;
  if (!r.classified) return;  // a parse error has no class

  // Space-Saving: a class not counted yet replaces the least counted one, inheriting its
  // count (an upper bound of the newcomer's own).
  std::string name(r.request_class);
  auto c = candidates_.find(name);
  if (c != candidates_.end()) {
    c->second += 1;
  } else if (candidates_.size() < max_candidates_) {
    candidates_.emplace(name, 1.0);
  } else {
    auto min = std::min_element(candidates_.begin(), candidates_.end(),
                                [](const auto& a, const auto& b) { return a.second < b.second; });
    double count = min->second + 1;
    candidates_.erase(min);
    candidates_.emplace(name, count);
  }
  if (last_rebalance_ < 0 || now - last_rebalance_ >= kRebalanceSeconds ||
      (reported_.size() < max_classes_ && !reported_.count(name))) {
    Rebalance(now);
  }
  auto it = reported_.find(name);
  Observe(it != reported_.end() ? &it->second : &other_, seconds);
}

void RequestMetrics::Rebalance(double now) {
  if (last_decay_ < 0) last_decay_ = now;
  if (now - last_decay_ >= kHalfLifeSeconds) {
    const double factor = std::exp2(-(now - last_decay_) / kHalfLifeSeconds);
    for (auto& [name, count] : candidates_) count *= factor;
    last_decay_ = now;
  }
  last_rebalance_ = now;
  std::vector<std::pair<double, const std::string*>> busiest;
  for (const auto& [name, count] : candidates_) {
    if (!reported_.count(name)) busiest.emplace_back(count, &name);
  }
  std::sort(busiest.begin(), busiest.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : *a.second < *b.second;
  });
  auto count_of = [this](const std::string& name) {
    auto it = candidates_.find(name);
    return it == candidates_.end() ? 0.0 : it->second;
  };
  for (const auto& [count, name] : busiest) {
    if (reported_.size() < max_classes_) {
      reported_.emplace(*name, Fresh());
      continue;
    }
    auto quietest = std::min_element(
        reported_.begin(), reported_.end(),
        [&](const auto& a, const auto& b) { return count_of(a.first) < count_of(b.first); });
    if (count <= 2 * count_of(quietest->first)) break;  // hysteresis: no flapping
    other_.requests += quietest->second.requests;
    Merge(&other_.latency, quietest->second.latency);
    reported_.erase(quietest);
    reported_.emplace(*name, Fresh());
  }
}

void RequestMetrics::Fill(LbStatusSnapshot* status) const {
  status->requests = totals_;
  status->requests.classes.clear();
  for (const auto& [name, stats] : reported_) {
    LbStatusSnapshot::Class& c = status->requests.classes.emplace_back();
    c.name = name;
    c.requests = stats.requests;
    c.latency = stats.latency;
  }
  std::sort(status->requests.classes.begin(), status->requests.classes.end(),
            [](const auto& a, const auto& b) {
              return a.requests != b.requests ? a.requests > b.requests : a.name < b.name;
            });
  status->requests.other.name = "other";
  status->requests.other.requests = other_.requests;
  status->requests.other.latency = other_.latency;
}

}  // namespace rlb::lb
