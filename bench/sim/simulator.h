// The pool simulator: a discrete-event replay of the cache workload of docs/benchmarks.md
// (classes with Zipf popularities, per-class working sets, per-worker LRU caches, service
// time with hit and miss costs) against a routing policy, without sockets or processes.
//
// The résumé-based policies are the real pools (zklb/*_pool.h) driven through the Pool
// interface, with each simulated worker keeping its résumé with the real ResumeTracker
// (zkworker/resume_tracker.h) and sending it every `resume_history` requests, as zkworker
// does. The static oracle and consistent hashing (with or without bounded loads) are
// modelled here. docs/benchmarks.md ("Simulator") has the scenarios and results.
//
// Thread rules: Simulate() is a pure function of its arguments; it may run on any thread.
#ifndef RESUMELB_BENCH_SIM_SIMULATOR_H_
#define RESUMELB_BENCH_SIM_SIMULATOR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "zklb/balanced_pool.h"

namespace rlb::sim {

// What happens at the start of a phase.
struct PhaseSpec {
  std::string name;
  double duration = 6;     // seconds of simulated time
  bool measured = true;    // false: warm-up, left out of the report
  bool shift = false;      // permute the popularity ranking (seeded)
  int add_workers = 0;     // cold workers that join, at speed add_speed
  double add_speed = 1;
  int remove_workers = 0;  // the oldest active workers leave (their queued requests finish)
  double zipf = 0;         // > 0: new Zipf exponent
};

struct Scenario {
  int workers = 4;
  int threads = 2;                 // concurrent requests a worker serves
  std::vector<double> speeds;      // per initial worker; missing entries are 1
  int classes = 40;
  double zipf = 1.0;
  int objects_per_class = 100;
  int objects_per_request = 10;
  double cache_factor = 1.25;      // cache entries per worker = factor * working set / workers
  double base_ms = 5;              // service time of a request with no miss (at speed 1)
  double miss_ms = 5;              // added per missed object
  int clients = 16;                // closed loop: clients with one request each, no think time
  double open_rate = 0;            // > 0: open loop, Poisson arrivals at this many requests/s
  int resume_history = 200;        // a worker sends its résumé every this many requests
  double bin_seconds = 1;          // hit-rate time series resolution (recovery)
  uint64_t seed = 1;
  std::vector<PhaseSpec> phases;
};

// The routing policy. "classic", "resume", "balanced", "classless" are the real pools;
// "oracle" a static partition by known popularity and speed, recomputed (moving few
// classes) when workers join or leave, not told about shifts; "hash" consistent hashing of
// the class on a ring (100 points per worker) with bounded load factor hash_factor (0: no
// bound; 1.5 = HAProxy's hash-balance-factor 150).
struct Policy {
  std::string name = "balanced";
  double variance = 4.0;      // classic: the resumelb command line's default
  double hash_factor = 0;
  lb::BalancedParams balanced;  // balanced: its parameters
  lb::ClassLimits limits;       // the résumé pools' class limits (the LB's defaults)
  std::string Label() const;  // e.g. "hash-150"
};

struct PhaseResult {
  std::string name;
  double duration = 0;
  uint64_t completed = 0;       // requests completed in the phase
  double throughput = 0;        // completed / duration
  double hit_rate = 0;          // object hits / accesses, in [0, 1]
  double busiest_over_mean = 0; // requests of the busiest active worker / the mean
  double p50_ms = 0;
  double p99_ms = 0;            // arrival to completion, including queueing anywhere
  // Seconds from the phase start until every later bin's hit rate is >= 0.95 x the first
  // measured phase's; -1 if it never is.
  double recovery_s = 0;
  // The last-joined worker's requests / the mean worker's (add phases; else 0).
  double newest_share = 0;
  // max over active workers of |requests share / capacity share - 1| (speed-weighted).
  double capacity_share_error = 0;
  std::vector<uint64_t> worker_requests;  // per active worker at the phase end
};

struct SimResult {
  std::string policy;
  uint64_t issued = 0;
  uint64_t completed = 0;
  uint64_t unserved = 0;  // still in flight or queued at the end (closed loop: <= clients)
  double wall_seconds = 0;
  std::vector<PhaseResult> phases;  // measured phases only
};

// REQUIRES: at least one phase; workers >= 1; policy name known (else InvalidArgument).
Status Simulate(const Scenario& scenario, const Policy& policy, SimResult* out);

// The named scenarios of docs/benchmarks.md: "cache" (stationary, shift, add, remove),
// "hot12", "hot14" (one hot site), "halfspeed" (one worker at half speed), each scaled by
// `scale` (workers, classes and clients multiplied). Unknown name: InvalidArgument.
Status NamedScenario(const std::string& name, int scale, Scenario* out);

// One JSON document with the scenario and every result.
std::string ToJson(const std::string& scenario_name, const Scenario& scenario,
                   const std::vector<SimResult>& results);
// A short text table: one line per policy and phase.
std::string ToTable(const std::vector<SimResult>& results);

}  // namespace rlb::sim

#endif  // RESUMELB_BENCH_SIM_SIMULATOR_H_
