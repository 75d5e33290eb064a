// Tests for the LB's bounds on request classes (docs/design.md, "Bounded classes"): class
// names bounded by BoundClassName, résumés bounded by BoundResume, and the résumé pool's
// per-worker and total entry limits, the least recently seen entry dropped first.
// glog is included first and its CHECK dropped, so CHECK below is Catch's assertion.
#include <glog/logging.h>
#undef CHECK
#include <catch2/catch.hpp>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "zklb/class_name.h"
#include "zklb/pool.h"
#include "zklb/resume_pool.h"

namespace rlb::lb {
namespace {

const bool kQuietLogs = (FLAGS_minloglevel = google::GLOG_WARNING, true);

PoolWorkerPtr W(const std::string& name) { return std::make_shared<PoolWorker>(name, std::nullopt); }

// Every active worker's résumé is what the index holds for it, within the limits.
void CheckConsistent(const ResumePool& pool, const std::vector<PoolWorkerPtr>& workers) {
  size_t entries = 0;
  for (const PoolWorkerPtr& w : workers) {
    if (!w->in_pool()) continue;
    CHECK(w->resume().size() <= pool.limits().per_worker);
    entries += w->resume().size();
  }
  CHECK(entries == pool.entry_count());
  CHECK(pool.entry_count() <= pool.limits().total);
  CHECK(pool.class_count() <= pool.entry_count());
}

TEST_CASE("FNV-1a-64 test vectors", "[class_name]") {
  CHECK(Fnv1a64("") == 0xcbf29ce484222325ull);
  CHECK(Fnv1a64("a") == 0xaf63dc4c8601ec8cull);
  CHECK(Fnv1a64("foobar") == 0x85944171f73967e8ull);
}

TEST_CASE("BoundClassName keeps short names and replaces long ones by a stable stand-in",
          "[class_name]") {
  CHECK(BoundClassName("") == "");
  CHECK(BoundClassName("example.com") == "example.com");
  const std::string at_limit(kMaxClassNameBytes, 'h');
  CHECK(BoundClassName(at_limit) == at_limit);

  const std::string long_name = std::string(4000, 'x') + "-1";
  const std::string bounded = BoundClassName(long_name);
  CHECK(bounded.size() == kMaxClassNameBytes);
  CHECK(bounded.substr(0, 111) == long_name.substr(0, 111));
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(Fnv1a64(long_name)));
  CHECK(bounded.substr(111) == "#" + std::string(hex));
  CHECK(BoundClassName(long_name) == bounded);  // stable
  // Names that differ only past the prefix stay distinct.
  CHECK(BoundClassName(std::string(4000, 'x') + "-2") != bounded);
  CHECK(BoundClassName(at_limit + "h").size() == kMaxClassNameBytes);
}

TEST_CASE("BoundResume drops long classes and keeps the best-scoring ones", "[class_bounds]") {
  Resume small = {{"a", 1.0}, {"b", 2.0}};
  BoundResume(&small, 2);
  CHECK(small == Resume{{"a", 1.0}, {"b", 2.0}});

  Resume r = {{"a", 1.0}, {"b", 3.0}, {"c", 2.0}, {"d", 2.0}, {std::string(129, 'l'), 9.0}};
  BoundResume(&r, 2);
  CHECK(r == Resume{{"b", 3.0}, {"c", 2.0}});  // equal scores: the smaller name first
}

TEST_CASE("Classes of one worker: past the limit its least recently seen entry goes",
          "[class_bounds]") {
  ResumePool pool(PoolSettings{}, false, ClassLimits{3, 100});
  auto w = W("w");
  pool.NewResume(w, {});
  for (const char* cls : {"a", "b", "c"}) pool.Put(pool.Get(cls));
  CHECK(w->resume().size() == 3);
  pool.Put(pool.Get("a"));  // a is seen again: b is now the least recently seen
  pool.Put(pool.Get("d"));
  CHECK(w->resume() == Resume{{"a", 1.0}, {"c", 1.0}, {"d", 1.0}});
  CHECK(pool.class_count() == 3);
  CHECK(pool.entry_count() == 3);
  CheckConsistent(pool, {w});
}

TEST_CASE("Classes of all workers: past the total the pool's least recently seen entry goes",
          "[class_bounds]") {
  ResumePool pool(PoolSettings{}, false, ClassLimits{3, 4});
  auto w1 = W("w1"), w2 = W("w2");
  pool.NewResume(w1, {{"a", 5.0}, {"b", 4.0}});
  pool.NewResume(w2, {{"c", 5.0}});
  pool.Put(pool.Get("a"));  // w1's a is the most recently seen; b the least
  pool.Put(pool.Get("x"));  // assigned to the LRU head: 4 entries
  CHECK(pool.entry_count() == 4);
  PoolWorkerPtr y = pool.Get("y");  // one too many: b goes
  pool.Put(y);
  CHECK(pool.entry_count() == 4);
  CHECK(w1->resume().count("b") == 0);
  CHECK(w1->resume().count("a") == 1);
  CHECK(y->resume().count("y") == 1);
  CheckConsistent(pool, {w1, w2});
}

TEST_CASE("A résumé over the limits keeps its best classes and makes room from others",
          "[class_bounds]") {
  ResumePool pool(PoolSettings{}, false, ClassLimits{3, 4});
  auto w1 = W("w1"), w2 = W("w2");
  pool.NewResume(w1, {{"old1", 1.0}, {"old2", 1.0}});
  pool.NewResume(w2, {{"a", 1.0}, {"b", 4.0}, {"c", 3.0}, {"d", 2.0}, {std::string(200, 'x'), 9.0}});
  CHECK(w2->resume() == Resume{{"b", 4.0}, {"c", 3.0}, {"d", 2.0}});
  CHECK(pool.entry_count() == 4);
  CHECK(w1->resume().size() == 1);  // one of w1's entries made room
  CheckConsistent(pool, {w1, w2});
  // A later résumé replaces the worker's entries, the assigned ones too.
  pool.NewResume(w2, {{"e", 1.0}});
  CHECK(w2->resume() == Resume{{"e", 1.0}});
  CheckConsistent(pool, {w1, w2});
}

TEST_CASE("Get knows a long class by its stand-in, as a résumé reports it", "[class_bounds]") {
  ResumePool pool(PoolSettings{}, false);
  auto w1 = W("w1"), w2 = W("w2");
  const std::string long_class = std::string(300, 'h') + ".example";
  pool.NewResume(w1, {{BoundClassName(long_class), 5.0}});
  pool.NewResume(w2, {});
  PoolWorkerPtr chosen = pool.Get(long_class);
  CHECK(chosen == w1);
  pool.Put(chosen);
  chosen = pool.Get(std::string(300, 'z'));
  CHECK(chosen->resume().count(BoundClassName(std::string(300, 'z'))) == 1);
  pool.Put(chosen);
  CHECK(pool.class_count() == 2);
}

TEST_CASE("A flood of classes leaves the pool within its limits, consistent", "[class_bounds]") {
  const ClassLimits limits{50, 120};
  ResumePool pool(PoolSettings{}, false, limits);
  std::vector<PoolWorkerPtr> workers;
  for (int i = 0; i < 4; ++i) {
    workers.push_back(W("w" + std::to_string(i)));
    pool.NewResume(workers.back(), {});
  }
  std::mt19937 rng(7);
  std::vector<PoolWorkerPtr> in_flight;
  for (int i = 0; i < 20000; ++i) {
    switch (rng() % 8) {
      case 0: {  // a résumé, sometimes over the per-worker limit
        Resume r;
        const int n = static_cast<int>(rng() % 80);
        for (int k = 0; k < n; ++k) r["c" + std::to_string(rng() % 500)] = (rng() % 100) / 10.0;
        pool.NewResume(workers[rng() % workers.size()], std::move(r));
        break;
      }
      case 1:  // a worker leaves and comes back (its in-flight requests drain later)
        if (rng() % 10 == 0) {
          PoolWorkerPtr w = workers[rng() % workers.size()];
          pool.Remove(w);
          pool.NewResume(w, {});
        }
        break;
      case 2:
        if (!in_flight.empty()) {
          pool.Put(in_flight.back());
          in_flight.pop_back();
        }
        break;
      default:  // mostly new classes, some seen before
        in_flight.push_back(pool.Get("c" + std::to_string(rng() % 5000)));
        break;
    }
    if (i % 500 == 0) CheckConsistent(pool, workers);
  }
  CheckConsistent(pool, workers);
  CHECK(pool.entry_count() == limits.total);
  for (const PoolWorkerPtr& w : in_flight) pool.Put(w);
  CHECK(pool.backlog() == 0);
}

TEST_CASE("An inactive worker's kept résumé is bounded too", "[class_bounds]") {
  ResumePool pool(PoolSettings{}, true, ClassLimits{2, 4});
  auto a = std::make_shared<PoolWorker>("a", "1");
  auto b = std::make_shared<PoolWorker>("b", "2");
  pool.NewResume(a, {});
  pool.NewResume(b, {{"x", 1.0}, {"y", 2.0}, {"z", 3.0}});  // version 2 is inactive: kept
  CHECK(b->resume() == Resume{{"y", 2.0}, {"z", 3.0}});
}

}  // namespace
}  // namespace rlb::lb
