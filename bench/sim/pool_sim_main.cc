// pool-sim: runs one named scenario (docs/benchmarks.md, "Simulator") against several
// routing policies and prints one JSON document on stdout and a short table on stderr.
//
//   pool-sim --scenario=cache --scale=10 --policies=classic,balanced,oracle,hash-150
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "bench/sim/simulator.h"

DEFINE_string(scenario, "cache", "cache, hot12, hot14 or halfspeed");
DEFINE_int32(scale, 1, "multiplies workers (4), classes (40) and clients (16)");
DEFINE_string(policies, "classic,balanced,oracle,hash-150",
              "comma-separated: classic (LRU placement), resume (ring placement, as several LBs use), balanced, balanced-ring, classless, oracle, "
              "hash-off, hash-NNN (bounded load factor NNN/100)");
DEFINE_double(variance, 4.0, "classic pool's variance (the resumelb command line's default)");
DEFINE_double(slack, rlb::lb::BalancedParams{}.slack, "balanced pool: slack");
DEFINE_double(recruit_slack, rlb::lb::BalancedParams{}.recruit_slack, "balanced: recruit_slack");
DEFINE_double(min_backlog, rlb::lb::BalancedParams{}.min_backlog, "balanced pool: min_backlog");
DEFINE_double(rate_window, rlb::lb::BalancedParams{}.rate_window, "balanced pool: rate_window s");
DEFINE_int32(recruit_candidates, rlb::lb::BalancedParams{}.recruit_candidates,
             "balanced pool: recruit_candidates");
DEFINE_double(takeover_below, rlb::lb::BalancedParams{}.takeover_below,
              "balanced pool: takeover_below (0: no takeovers)");
DEFINE_uint64(max_classes, rlb::lb::ClassLimits{}.total,
              "the résumé pools' limit on (worker, class) entries in all (the LB's --max_classes)");
DEFINE_int32(workers, 0, "override the number of workers");
DEFINE_int32(classes, 0, "override the number of classes");
DEFINE_int32(clients, 0, "override the closed-loop clients");
DEFINE_int32(threads, 0, "override threads per worker");
DEFINE_int32(objects_per_class, 0, "override objects per class (100)");
DEFINE_int32(objects_per_request, -1, "override objects per request (10)");
DEFINE_double(open_load, 0, "> 0: open loop at this fraction of the all-hit capacity");
DEFINE_double(duration_scale, 1, "multiplies every phase's duration");
DEFINE_uint64(seed, 1, "random seed");

int main(int argc, char** argv) {
  gflags::SetUsageMessage("pool-sim --scenario=NAME [--scale=N] [--policies=a,b]");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  FLAGS_minloglevel = google::GLOG_WARNING;  // the pools log every résumé at INFO

  rlb::sim::Scenario s;
  rlb::Status st = rlb::sim::NamedScenario(FLAGS_scenario, FLAGS_scale, &s);
  if (!st.ok()) {
    std::fprintf(stderr, "pool-sim: %s\n", st.message().c_str());
    return 2;
  }
  if (FLAGS_workers > 0) {
    const int old = s.workers;
    s.workers = FLAGS_workers;
    if (!s.speeds.empty()) {
      s.speeds.resize(s.workers, 1.0);
      for (int i = old; i < s.workers; ++i) s.speeds[i] = i % 4 == 0 ? 0.5 : 1.0;
    }
  }
  if (FLAGS_classes > 0) s.classes = FLAGS_classes;
  if (FLAGS_clients > 0) s.clients = FLAGS_clients;
  if (FLAGS_threads > 0) s.threads = FLAGS_threads;
  if (FLAGS_objects_per_class > 0) s.objects_per_class = FLAGS_objects_per_class;
  if (FLAGS_objects_per_request >= 0) s.objects_per_request = FLAGS_objects_per_request;
  for (auto& p : s.phases) p.duration *= FLAGS_duration_scale;
  s.seed = FLAGS_seed;
  if (FLAGS_open_load > 0) {
    double capacity = 0;
    for (int i = 0; i < s.workers; ++i) {
      const double speed = static_cast<size_t>(i) < s.speeds.size() ? s.speeds[i] : 1.0;
      capacity += s.threads * speed / (s.base_ms / 1000.0);
    }
    s.open_rate = FLAGS_open_load * capacity;
  }

  std::vector<rlb::sim::SimResult> results;
  std::string list = FLAGS_policies;
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(',', pos);
    std::string name = list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? list.size() + 1 : comma + 1;
    if (name.empty()) continue;
    rlb::sim::Policy policy;
    policy.variance = FLAGS_variance;
    policy.balanced.slack = FLAGS_slack;
    policy.balanced.recruit_slack = FLAGS_recruit_slack;
    policy.balanced.min_backlog = FLAGS_min_backlog;
    policy.balanced.rate_window = FLAGS_rate_window;
    policy.balanced.recruit_candidates = FLAGS_recruit_candidates;
    policy.balanced.takeover_below = FLAGS_takeover_below;
    policy.limits.total = std::max<size_t>(FLAGS_max_classes, policy.limits.per_worker);
    if (name.rfind("hash-", 0) == 0) {
      policy.name = "hash";
      policy.hash_factor = name == "hash-off" ? 0 : std::stod(name.substr(5)) / 100.0;
    } else {
      policy.name = name;
    }
    rlb::sim::SimResult result;
    st = rlb::sim::Simulate(s, policy, &result);
    if (!st.ok()) {
      std::fprintf(stderr, "pool-sim: %s\n", st.message().c_str());
      return 2;
    }
    results.push_back(std::move(result));
  }
  std::fputs(rlb::sim::ToJson(FLAGS_scenario, s, results).c_str(), stdout);
  std::fputs(rlb::sim::ToTable(results).c_str(), stderr);
  for (const auto& r : results) {
    std::fprintf(stderr, "%s: %llu requests, %.2f s wall\n", r.policy.c_str(),
                 static_cast<unsigned long long>(r.completed), r.wall_seconds);
  }
  return 0;
}
