// Tests for the balanced pool's rules (docs/design.md, "The balanced pool"): affinity to
// the most senior skilled worker, capacity-aware bounds, spreading and gathering a class,
// recruitment from the LRU head, speed measurement on an injected clock, removal and
// complexity. glog is included first and its CHECK dropped, so CHECK is Catch's.
#include <glog/logging.h>
#undef CHECK
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "zklb/balanced_pool.h"

namespace rlb::lb {
namespace {

const bool kQuietLogs = (FLAGS_minloglevel = google::GLOG_WARNING, true);

PoolWorkerPtr W(const std::string& name) { return std::make_shared<PoolWorker>(name, std::nullopt); }

// A pool on a manual clock.
struct Fixture {
  explicit Fixture(BalancedParams params = {})
      : pool(PoolSettings{}, params, false, [this] { return now; }) {}
  double now = 0;
  BalancedPool pool;
};

TEST_CASE("balanced: empty pool, then an unknown class goes to the LRU head", "[balanced]") {
  Fixture f;
  CHECK(f.pool.Get("a") == nullptr);
  CHECK(f.pool.class_count() == 0);
  auto w1 = W("w1"), w2 = W("w2");
  f.pool.NewResume(w1, {});
  f.pool.NewResume(w2, {});  // at the head
  CHECK(f.pool.Get("a") == w2);
  CHECK(w2->resume().at("a") == 1.0);  // assigned at unskilled_score
  CHECK(f.pool.class_count() == 1);
}

TEST_CASE("balanced: a class stays on its most senior skilled worker within bound",
          "[balanced]") {
  Fixture f;
  auto w1 = W("w1"), w2 = W("w2"), w3 = W("w3");
  f.pool.NewResume(w1, {{"a", 5.0}});
  f.pool.NewResume(w2, {{"a", 50.0}});  // a better score, but junior
  f.pool.NewResume(w3, {});
  // min_backlog 2: w1 alone takes two requests.
  CHECK(f.pool.Get("a") == w1);
  CHECK(f.pool.Get("a") == w1);
  // At its bound (3 > max(2, 1.1 * 3/3)), the next most senior skilled worker takes it.
  CHECK(f.pool.Get("a") == w2);
  // A résumé refresh that keeps the class keeps its seniority.
  f.pool.NewResume(w1, {{"a", 6.0}, {"b", 1.0}});
  f.pool.Put(w1);
  CHECK(f.pool.Get("a") == w1);
}

TEST_CASE("balanced: a hot class spreads over as many workers as its load needs",
          "[balanced]") {
  Fixture f;
  std::vector<PoolWorkerPtr> w;
  for (int i = 0; i < 8; ++i) {
    w.push_back(W("w" + std::to_string(i)));
    f.pool.NewResume(w.back(), {});
  }
  f.pool.NewResume(w[0], {{"hot", 10.0}});
  // One class, 24 in flight on 8 workers: the senior worker keeps it up to its recruiting
  // bound max(2, 4 * (B + 1) / 8), then the class spreads, each holder up to its bound.
  std::vector<PoolWorkerPtr> got;
  for (int i = 0; i < 24; ++i) got.push_back(f.pool.Get("hot"));
  CHECK(f.pool.backlog() == 24);
  int used = 0;
  for (const auto& x : w) used += x->backlog() > 0;
  CHECK(used >= 2);
  CHECK(w[0]->backlog() <= 4 * 24 / 8 + 1);
  for (const auto& x : got) f.pool.Put(x);
  CHECK(f.pool.backlog() == 0);
}

TEST_CASE("balanced: with few workers one class is not spread below 4x its share "
          "(recruit_slack: a cold worker's misses cost more than a queue)", "[balanced]") {
  Fixture f;
  auto w1 = W("w1"), w2 = W("w2");
  f.pool.NewResume(w1, {{"a", 5.0}});
  f.pool.NewResume(w2, {});
  // w1 at k in flight: recruit bound 4 * (k + 1) / 2 >= k + 1, so it keeps the class.
  std::vector<PoolWorkerPtr> got;
  for (int i = 0; i < 10; ++i) got.push_back(f.pool.Get("a"));
  CHECK(w1->backlog() == 10);
  for (const auto& x : got) f.pool.Put(x);
}

TEST_CASE("balanced: spread load gathers back on the senior worker when it falls",
          "[balanced]") {
  Fixture f;
  auto w1 = W("w1"), w2 = W("w2");
  f.pool.NewResume(w1, {{"a", 5.0}});
  f.pool.NewResume(w2, {{"a", 5.0}});
  // Heavy: both used.
  std::vector<PoolWorkerPtr> got;
  for (int i = 0; i < 6; ++i) got.push_back(f.pool.Get("a"));
  CHECK(w1->backlog() > 0);
  CHECK(w2->backlog() > 0);
  for (const auto& x : got) f.pool.Put(x);
  // Light (one at a time): always the senior w1.
  for (int i = 0; i < 5; ++i) {
    PoolWorkerPtr x = f.pool.Get("a");
    CHECK(x == w1);
    f.pool.Put(x);
  }
}

TEST_CASE("balanced: in an idle pool new classes go round the workers, whatever their "
          "measured speeds", "[balanced]") {
  Fixture f;
  auto fast = W("fast"), slow = W("slow"), mid = W("mid");
  f.pool.NewResume(fast, {{"a", 1.0}});
  f.pool.NewResume(slow, {{"b", 1.0}});
  f.pool.NewResume(mid, {{"c", 1.0}});
  // Speeds measured: fast 100/s, mid 50/s, slow 25/s.
  for (int i = 0; i < 100; ++i) {
    PoolWorkerPtr a = f.pool.Get("a"), b = f.pool.Get("b"), c = f.pool.Get("c");
    f.now += 0.01;
    f.pool.Put(a);
    f.now += 0.01;
    f.pool.Put(c);
    f.now += 0.02;
    f.pool.Put(b);
  }
  REQUIRE(f.pool.SpeedOf(*fast) > 1.5 * f.pool.SpeedOf(*mid));
  REQUIRE(f.pool.SpeedOf(*mid) > 1.5 * f.pool.SpeedOf(*slow));
  // Idle: 9 new classes, each answered at once, land 3 on each worker.
  std::map<std::string, int> got;
  for (int i = 0; i < 9; ++i) {
    PoolWorkerPtr w = f.pool.Get("new" + std::to_string(i));
    ++got[w->name()];
    f.pool.Put(w);
  }
  CHECK(got == std::map<std::string, int>{{"fast", 3}, {"mid", 3}, {"slow", 3}});
}

TEST_CASE("balanced: the bound follows a worker's measured speed", "[balanced]") {
  Fixture f;
  auto fast = W("fast"), slow = W("slow");
  f.pool.NewResume(fast, {{"a", 1.0}});
  f.pool.NewResume(slow, {{"b", 1.0}});
  CHECK(f.pool.SpeedOf(*fast) == 1.0);  // no measurement yet: the prior
  // fast completes a request every 10 ms, slow every 20 ms, one at a time, for 4 s.
  for (int i = 0; i < 200; ++i) {
    PoolWorkerPtr a = f.pool.Get("a");
    PoolWorkerPtr b = f.pool.Get("b");
    REQUIRE(a == fast);
    REQUIRE(b == slow);
    f.now += 0.01;
    f.pool.Put(a);
    a = f.pool.Get("a");
    f.now += 0.01;
    f.pool.Put(a);
    f.pool.Put(b);
  }
  CHECK(f.pool.SpeedOf(*fast) == Approx(100).epsilon(0.05));
  CHECK(f.pool.SpeedOf(*slow) == Approx(50).epsilon(0.05));
  // With 20 in flight the fast worker's share is twice the slow one's.
  std::vector<PoolWorkerPtr> held;
  for (int i = 0; i < 19; ++i) held.push_back(f.pool.Get(i % 2 ? "a" : "b"));
  CHECK(f.pool.BoundOf(*fast) == Approx(2 * f.pool.BoundOf(*slow)).epsilon(0.05));
  for (const auto& x : held) f.pool.Put(x);
}

TEST_CASE("balanced: a class with no eligible worker is recruited by the lowest load "
          "relative to its bound among the LRU candidates", "[balanced]") {
  BalancedParams p;
  p.recruit_candidates = 2;
  Fixture f(p);
  auto w1 = W("w1"), w2 = W("w2"), w3 = W("w3");
  f.pool.NewResume(w1, {});
  f.pool.NewResume(w2, {});
  f.pool.NewResume(w3, {});  // LRU: w3, w2, w1
  PoolWorkerPtr busy = f.pool.Get("x");  // w3 (head), now at the tail: w2, w1, w3
  CHECK(busy == w3);
  // Two candidates examined (w2, w1), both idle: the one nearer the head wins.
  CHECK(f.pool.Get("y") == w2);
  CHECK(f.pool.entries_scanned_for_test() == 2);
}

TEST_CASE("balanced: a new worker takes the classes nobody holds", "[balanced]") {
  Fixture f;
  auto w1 = W("w1");
  f.pool.NewResume(w1, {{"a", 5.0}});
  std::vector<PoolWorkerPtr> held;
  for (int i = 0; i < 3; ++i) held.push_back(f.pool.Get("a"));
  auto fresh = W("fresh");
  f.pool.NewResume(fresh, {});
  CHECK(f.pool.Get("b") == fresh);  // the idle newcomer at the LRU head
  CHECK(f.pool.Get("c") == fresh);
  held.push_back(fresh);
  held.push_back(fresh);
  for (const auto& x : held) f.pool.Put(x);
  CHECK(f.pool.backlog() == 0);
}

// Two workers, one holding class "a", the other "b", each with 4 requests in flight (those
// of a worker named in `busy_now` arrive at `now` = 10, the others at 0); the clock ends
// at 10. Returns the requests, to be Put.
std::vector<PoolWorkerPtr> TwoBusyHolders(Fixture& f, const PoolWorkerPtr& a,
                                          const PoolWorkerPtr& b, bool a_busy_since_start) {
  f.pool.NewResume(a, {{"a", 5.0}});
  f.pool.NewResume(b, {{"b", 5.0}});
  std::vector<PoolWorkerPtr> held;
  for (int i = 0; i < 4; ++i) held.push_back(f.pool.Get("b"));
  if (!a_busy_since_start) f.now = 10;
  for (int i = 0; i < 4; ++i) held.push_back(f.pool.Get("a"));
  f.now = 10;
  return held;
}

TEST_CASE("balanced: an under-used worker takes over a class from a busy holder, "
          "and only then", "[balanced]") {
  Fixture f;
  auto w1 = W("w1"), w2 = W("w2");
  // Both busy for a while: 4 in flight each.
  std::vector<PoolWorkerPtr> held = TwoBusyHolders(f, w1, w2, true);
  CHECK(w1->backlog() == 4);
  CHECK(w2->backlog() == 4);
  // A newcomer: the others' share shrinks to (8 + 1) / 3 = 3, their tight bound to 3.3, so
  // w1 is past it (5 with this request) and has been busy on average (4 > 8 / 3): the idle
  // newcomer takes "a" over and becomes its most senior holder.
  auto fresh = W("fresh");
  f.pool.NewResume(fresh, {});
  CHECK(f.pool.Get("a") == fresh);
  CHECK(fresh->resume().count("a") == 1);
  CHECK(f.pool.Get("a") == fresh);  // senior and within min_backlog 2
  held.push_back(fresh);
  held.push_back(fresh);
  // Takeovers off: the class overflows to its skilled holder instead.
  Fixture g(BalancedParams{.takeover_below = 0});
  auto v1 = W("v1"), v2 = W("v2");
  TwoBusyHolders(g, v1, v2, true);
  auto fresh2 = W("fresh2");
  g.pool.NewResume(fresh2, {});
  CHECK(g.pool.Get("a") == v1);
  // A holder that is not busy on average is not relieved: the same step, but u1's four
  // requests arrived just now (its average backlog is still about 0; u2 busy on average).
  Fixture h;
  auto u1 = W("u1"), u2 = W("u2");
  TwoBusyHolders(h, u1, u2, false);
  CHECK(u1->backlog() == 4);
  auto fresh3 = W("fresh3");
  h.pool.NewResume(fresh3, {});
  // u1 is past its bound (5 > 1.1 * (8 + 1) / 3), but not busy on average: "a" overflows
  // to its skilled holder (u1, the quickest within the recruiting bound).
  CHECK(h.pool.Get("a") == u1);
  CHECK(fresh3->resume().count("a") == 0);
  for (const auto& x : held) f.pool.Put(x);
  CHECK(f.pool.backlog() == 0);
}

TEST_CASE("balanced: removal drops a worker's classes; its requests still drain",
          "[balanced]") {
  Fixture f;
  auto w1 = W("w1"), w2 = W("w2");
  f.pool.NewResume(w1, {{"a", 1.0}});
  f.pool.NewResume(w2, {{"b", 1.0}});
  PoolWorkerPtr x = f.pool.Get("a");
  CHECK(x == w1);
  f.pool.Remove(w1);
  CHECK(f.pool.size() == 1);
  CHECK(f.pool.class_count() == 1);
  CHECK(f.pool.Get("a") == w2);  // recruited
  f.pool.Put(w1);                // after removal
  f.pool.Put(w2);
  CHECK(f.pool.backlog() == 0);
  f.pool.Remove(w1);  // twice: harmless
  f.pool.Remove(W("stranger"));
  f.pool.Remove(w2);
  CHECK(f.pool.class_count() == 0);
  CHECK(f.pool.Get("a") == nullptr);
}

TEST_CASE("balanced: class memory is bounded per worker and in all, least recently asked "
          "for first", "[balanced]") {
  ClassLimits limits;
  limits.per_worker = 4;
  limits.total = 6;
  double now = 0;
  BalancedPool pool(PoolSettings{}, BalancedParams{}, false, [&now] { return now; }, limits);
  auto w1 = W("w1"), w2 = W("w2");
  // A résumé is cut to its per_worker best-scoring classes.
  pool.NewResume(w1, {{"a", 5.0}, {"b", 4.0}, {"c", 3.0}, {"d", 2.0}, {"e", 1.0}});
  CHECK(w1->resume().size() == 4);
  CHECK(w1->resume().count("e") == 0);
  pool.NewResume(w2, {});
  // A flood of new classes (each request returned at once): never more than 6 entries, 4
  // per worker; the class asked for is always kept.
  for (int i = 0; i < 100; ++i) {
    const std::string name = "flood" + std::to_string(i);
    PoolWorkerPtr got = pool.Get(name);
    REQUIRE(got != nullptr);
    CHECK(got->resume().count(name) == 1);
    pool.Put(got);
    CHECK(pool.entry_count() <= 6);
    CHECK(w1->resume().size() <= 4);
    CHECK(w2->resume().size() <= 4);
  }
  // The index and the résumés agree.
  size_t in_resumes = w1->resume().size() + w2->resume().size();
  CHECK(in_resumes == pool.entry_count());
  // A class asked for again is the most recent: it outlives newer, unasked ones.
  PoolWorkerPtr k = pool.Get("keep");
  pool.Put(k);
  pool.Put(pool.Get("x1"));
  pool.Put(pool.Get("keep"));
  pool.Put(pool.Get("x2"));
  pool.Put(pool.Get("x3"));
  CHECK(k->resume().count("keep") == 1);
  pool.Remove(w1);
  pool.Remove(w2);
  CHECK(pool.class_count() == 0);
  CHECK(pool.entry_count() == 0);
}

TEST_CASE("balanced: with ring placement, LBs that list the workers in different orders "
          "recruit the same worker for a new class", "[balanced]") {
  std::vector<std::string> names;
  for (int i = 0; i < 20; ++i) names.push_back("10.0.0." + std::to_string(i) + ":8080");
  auto make = [&](bool reversed) {
    auto pool = std::make_unique<BalancedPool>(PoolSettings{}, BalancedParams{}, false,
                                               [] { return 0.0; });
    pool->SetClassPlacement(ClassPlacement::kHashRing);
    for (size_t i = 0; i < names.size(); ++i) {
      pool->NewResume(W(names[reversed ? names.size() - 1 - i : i]), {});
    }
    return pool;
  };
  auto a = make(false), b = make(true);
  CHECK(std::string(a->ClassPlacementName()) == "ring");
  int same = 0, lru_same = 0;
  for (int c = 0; c < 200; ++c) {
    const std::string cls = "site" + std::to_string(c);
    PoolWorkerPtr x = a->Get(cls), y = b->Get(cls);
    same += x->name() == y->name();
    a->Put(x);
    b->Put(y);
  }
  CHECK(same == 200);
  // The LRU rule depends on each LB's own order: they disagree.
  auto c = make(false), d = make(true);
  c->SetClassPlacement(ClassPlacement::kLeastRecentlyUsed);
  d->SetClassPlacement(ClassPlacement::kLeastRecentlyUsed);
  CHECK(std::string(c->ClassPlacementName()) == "lru");
  for (int i = 0; i < 200; ++i) {
    const std::string cls = "site" + std::to_string(i);
    PoolWorkerPtr x = c->Get(cls), y = d->Get(cls);
    lru_same += x->name() == y->name();
    c->Put(x);
    d->Put(y);
  }
  CHECK(lru_same < 100);
}

TEST_CASE("balanced: Get cost is bounded by skilled workers plus recruit candidates",
          "[balanced][perf]") {
  Fixture f;
  std::vector<PoolWorkerPtr> workers;
  for (int i = 0; i < 1000; ++i) {
    workers.push_back(W("w" + std::to_string(i)));
    f.pool.NewResume(workers.back(), {});
  }
  f.pool.NewResume(workers[500], {{"hot", 5.0}});
  CHECK(f.pool.Get("hot") == workers[500]);
  CHECK(f.pool.entries_scanned_for_test() == 1);
  PoolWorkerPtr chosen = f.pool.Get("new-class");
  CHECK(f.pool.entries_scanned_for_test() ==
        static_cast<size_t>(f.pool.params().recruit_candidates));
  CHECK(f.pool.class_count() == 2);
  f.pool.Put(chosen);
  f.pool.Put(workers[500]);
  CHECK(f.pool.backlog() == 0);
}

TEST_CASE("balanced: status and debug string", "[balanced]") {
  Fixture f;
  auto w = W("127.0.0.1:1");
  f.pool.NewResume(w, {{"a", 2.5}});
  CHECK(f.pool.Get("a") == w);
  PoolStatus st = f.pool.Status();
  CHECK(st.backlog == 1);
  CHECK(st.mean_backlog == Approx(1.0));
  REQUIRE(st.workers.size() == 1);
  CHECK(st.workers[0].mbacklog == 1);
  CHECK(f.pool.DebugString() ==
        "Request classes:\n"
        "  a: 127.0.0.1:1(2.5,1)\n"
        "Workers:\n"
        "  127.0.0.1:1: backlog 1 speed 1.0 bound 2.2");  // max(2, 1.1 * (1 + 1) / 1)
  std::unique_ptr<Pool> real = NewBalancedPool(PoolSettings{}, BalancedParams{}, true);
  CHECK(real->size() == 0);
}

}  // namespace
}  // namespace rlb::lb
