// Smoke test of the pool simulator (bench/sim/simulator.h): a tiny scenario per policy,
// checking invariants only (no timings): every request served or still in flight, rates in
// range, phases reported, the JSON and table formats.
#include <glog/logging.h>
#undef CHECK
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "bench/sim/simulator.h"

namespace rlb::sim {
namespace {

const bool kQuietLogs = (FLAGS_minloglevel = google::GLOG_WARNING, true);

Scenario Tiny() {
  Scenario s;
  s.workers = 3;
  s.classes = 12;
  s.objects_per_class = 10;
  s.objects_per_request = 3;
  s.clients = 6;
  s.resume_history = 20;
  s.speeds = {0.5};
  s.phases = {{"warm-up", 0.5, false},
              {"stationary", 0.5},
              {"shift", 0.5, true, true},
              {"add", 0.5, true, false, 1},
              {"remove", 0.5, true, false, 0, 1, 1}};
  return s;
}

TEST_CASE("simulator: every policy serves every request of a tiny scenario", "[sim]") {
  const Scenario s = Tiny();
  std::vector<SimResult> all;
  for (const char* name : {"classic", "resume", "balanced", "classless", "oracle", "hash"}) {
    for (double factor : {0.0, 1.5}) {
      if (factor > 0 && std::string(name) != "hash") continue;
      Policy p;
      p.name = name;
      p.hash_factor = factor;
      SimResult r;
      REQUIRE(Simulate(s, p, &r).ok());
      INFO(r.policy);
      CHECK(r.issued > 100);
      CHECK(r.completed + r.unserved == r.issued);
      CHECK(r.unserved <= static_cast<uint64_t>(s.clients));  // closed loop
      REQUIRE(r.phases.size() == 4);
      CHECK(r.phases[0].name == "stationary");
      for (const PhaseResult& ph : r.phases) {
        CHECK(ph.completed > 0);
        CHECK(ph.hit_rate >= 0);
        CHECK(ph.hit_rate <= 1);
        CHECK(ph.busiest_over_mean >= 1);
        CHECK(ph.p99_ms >= ph.p50_ms);
        CHECK(ph.p50_ms > 0);
      }
      CHECK(r.phases[2].newest_share >= 0);
      CHECK(r.phases[2].worker_requests.size() == 4);  // 3 + 1 joined
      CHECK(r.phases[3].worker_requests.size() == 3);  // one left
      all.push_back(r);
    }
  }
  const std::string json = ToJson("tiny", s, all);
  CHECK(json.find("\"policy\": \"hash-150\"") != std::string::npos);
  CHECK(json.find("\"hit_rate\"") != std::string::npos);
  CHECK(ToTable(all).find("balanced") != std::string::npos);
}

TEST_CASE("simulator: open loop and named scenarios", "[sim]") {
  Scenario s = Tiny();
  s.open_rate = 200;
  s.phases = {{"only", 1}};
  Policy p;
  SimResult r;
  REQUIRE(Simulate(s, p, &r).ok());
  CHECK(r.issued > 100);
  CHECK(r.completed + r.unserved == r.issued);
  REQUIRE(r.phases.size() == 1);

  for (const char* name : {"cache", "hot12", "hot14", "halfspeed"}) {
    Scenario named;
    CHECK(NamedScenario(name, 2, &named).ok());
    CHECK(named.workers == 8);
    CHECK_FALSE(named.phases.empty());
  }
  Scenario unused;
  CHECK(NamedScenario("nope", 1, &unused).IsInvalidArgument());
  p.name = "nope";
  CHECK(Simulate(Tiny(), p, &r).IsInvalidArgument());
  Scenario empty = Tiny();
  empty.phases.clear();
  p.name = "classic";
  CHECK(Simulate(empty, p, &r).IsInvalidArgument());
}

}  // namespace
}  // namespace rlb::sim
