// Tests for the classless (least-backlog) pool: the original's classlesspool.test
// (docs/design.md, "The classless pool"), its single-version sub-scenario, and the fix of
// the original's backlog reset (re-added workers keep their backlog; docs/design.md, "Kept
// and fixed behaviours"). mean_backlog uses true division (the original printed Python 2 integer
// division: 1/2 -> 0).
#include <catch2/catch.hpp>

#include <cmath>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "zklb/classless_pool.h"
#include "zklb/pool.h"

namespace rlb::lb {
namespace {

PoolWorkerPtr W(const std::string& name, std::optional<std::string> version = std::nullopt) {
  return std::make_shared<PoolWorker>(name, std::move(version));
}

using Row = std::tuple<std::string, int, double>;  // (name, backlog, mbacklog)

std::vector<Row> Rows(const PoolStatus& status) {
  std::vector<Row> rows;
  for (const auto& w : status.workers) rows.emplace_back(w.name, w.backlog, w.mbacklog);
  return rows;
}

TEST_CASE("Classless pool: least backlog, LRU ties", "[classless]") {
  ClasslessPool pool(false);
  CHECK(pool.Get("foo") == nullptr);

  auto w1 = W("w1"), w2 = W("w2");
  pool.NewResume(w1, {});
  CHECK(pool.Get("foo") == w1);

  // w2 has backlog 0; then equal backlogs alternate by LRU order.
  pool.NewResume(w2, {});
  CHECK(pool.Get("foo") == w2);
  CHECK(pool.Get("foo") == w1);
  CHECK(pool.Get("foo") == w2);
  // The request class does not matter.
  CHECK(pool.Get("bar") == w1);
  CHECK(pool.Get("bar") == w2);

  PoolStatus status = pool.Status();
  CHECK(status.backlog == 6);
  CHECK(status.mean_backlog == 3.0);
  CHECK(Rows(status) == std::vector<Row>{{"w1", 3, 3.0}, {"w2", 3, 3.0}});
  CHECK_FALSE(status.single_version);

  pool.Put(w2);
  pool.Put(w2);
  status = pool.Status();
  CHECK(status.backlog == 4);
  CHECK(status.mean_backlog == 2.0);
  CHECK(Rows(status) == std::vector<Row>{{"w1", 3, 3.0}, {"w2", 1, 1.0}});
  CHECK(pool.DebugString() ==
        "Backlogs:\n"
        "  overall backlog: 4 Avg: 2.0\n"
        "  1: [w2]\n"
        "  3: [w1]");

  // w2 is preferred until its backlog grows.
  CHECK(pool.Get("bar") == w2);
  CHECK(pool.Get("bar") == w2);
  CHECK(pool.Get("bar") == w1);

  // Disconnects: the removed worker's puts still drain the pool backlog.
  pool.Remove(w1);
  for (int i = 0; i < 4; ++i) pool.Put(w1);
  status = pool.Status();
  CHECK(status.backlog == 3);
  CHECK(status.mean_backlog == 3.0);
  CHECK(Rows(status) == std::vector<Row>{{"w2", 3, 3.0}});

  pool.Remove(w2);
  for (int i = 0; i < 3; ++i) pool.Put(w2);
  status = pool.Status();
  CHECK(status.backlog == 0);
  CHECK(std::isnan(status.mean_backlog));
  CHECK(status.workers.empty());
  CHECK(pool.DebugString() == "Backlogs:\n  overall backlog: 0 Avg: None");
}

TEST_CASE("Classless pool: single version", "[classless][single_version]") {
  auto w1 = W("w1", "1"), w2 = W("w2", "2"), w3 = W("w3", "2");
  std::unique_ptr<Pool> owned = NewClasslessPool(true);
  auto& pool = static_cast<ClasslessPool&>(*owned);

  pool.NewResume(w1, {});
  CHECK(pool.active_version() == "1");
  pool.NewResume(w2, {{"ignored", 1.0}});
  CHECK(pool.active_version() == "1");
  CHECK(pool.Get("") == w1);
  PoolStatus status = pool.Status();
  CHECK(status.backlog == 1);
  CHECK(status.mean_backlog == 1.0);
  CHECK(Rows(status) == std::vector<Row>{{"w1", 1, 1.0}});
  CHECK(status.active_version == "1");
  CHECK(status.single_version);

  pool.NewResume(w3, {});
  CHECK(pool.active_version() == "2");
  CHECK(pool.Get("") == w2);
  status = pool.Status();
  CHECK(status.backlog == 2);  // still includes w1's request
  CHECK(status.mean_backlog == 1.0);
  CHECK(Rows(status) == std::vector<Row>{{"w2", 1, 1.0}, {"w3", 0, 0.0}});
  CHECK(pool.DebugString() ==
        "Version: 2\n"
        "  Inactive: 1: set([w1])\n"
        "Backlogs:\n"
        "  overall backlog: 2 Avg: 1.0\n"
        "  0: [w3]\n"
        "  1: [w2]");

  pool.Put(w1);
  status = pool.Status();
  CHECK(status.backlog == 1);
  CHECK(status.mean_backlog == 0.5);  // the original printed 0 (integer division)
  CHECK(Rows(status) == std::vector<Row>{{"w2", 1, 1.0}, {"w3", 0, 0.0}});
  CHECK(w2->resume().empty());  // résumés are ignored
}

TEST_CASE("Classless pool: a re-added worker keeps its backlog", "[classless][bugfix]") {
  ClasslessPool pool(true);
  auto w1 = W("w1", "1"), w2 = W("w2", "2"), w3 = W("w3", "2");
  pool.NewResume(w1, {});
  CHECK(pool.Get("") == w1);
  CHECK(pool.Get("") == w1);

  pool.NewResume(w2, {});
  pool.NewResume(w3, {});  // switch to 2
  CHECK_FALSE(w1->in_pool());
  pool.Remove(w2);
  pool.Remove(w3);  // back to 1: w1 re-added
  CHECK(pool.active_version() == "1");
  REQUIRE(w1->in_pool());
  CHECK(w1->backlog() == 2);
  CHECK(w1->mbacklog() == 2.0);
  pool.Put(w1);
  pool.Put(w1);  // the original's reset made this trip its assertion
  CHECK(w1->backlog() == 0);
  CHECK(pool.backlog() == 0);
}

TEST_CASE("Classless pool: Remove of unknown workers and settings", "[classless]") {
  for (bool single_version : {false, true}) {
    ClasslessPool pool(single_version);
    auto w = W("w", "1");
    pool.Remove(w);
    pool.Remove(nullptr);
    pool.NewResume(w, {});
    pool.Remove(W("other", "1"));
    CHECK(pool.size() == 1);
    pool.Remove(w);
    pool.Remove(w);
    CHECK(pool.size() == 0);
    CHECK(pool.Get("") == nullptr);

    PoolSettings s;
    s.variance = 4;
    pool.UpdateSettings(s);  // accepted, no effect
    CHECK(pool.settings().variance == 4);
  }
}

TEST_CASE("Classless pool: a worker with backlog 0 near the head wins", "[classless]") {
  ClasslessPool pool(false);
  auto a = W("a"), b = W("b"), c = W("c");
  pool.NewResume(a, {});
  pool.NewResume(b, {});
  pool.NewResume(c, {});  // LRU: c, b, a
  CHECK(pool.Get("") == c);
  CHECK(pool.Get("") == b);
  CHECK(pool.Get("") == a);
  pool.Put(b);  // b: 0, the others 1
  CHECK(pool.Get("") == b);
  CHECK(pool.Get("") == c);  // all 1: LRU order c, a, b
  CHECK(pool.Get("") == a);
}

}  // namespace
}  // namespace rlb::lb
