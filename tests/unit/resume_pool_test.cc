// Tests for the résumé-based pool: the worked scenarios of docs/design.md ("Worked
// scenarios": P1, P2, P3, S1, S2), reaching the original's decisions and printed numbers,
// plus the fixes listed in docs/design.md ("Kept and fixed behaviours") and complexity
// guards.
//
// Differences from the original doctest text, by design:
//   * class entries that become empty are erased, so "  foo: " lines do not appear;
//   * "Inactive" sets list workers in ascending name order (Python printed hash order).
// glog is included first and its CHECK dropped, so CHECK below is Catch's assertion.
#include <glog/logging.h>
#undef CHECK
#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "zklb/pool.h"
#include "zklb/resume_pool.h"

namespace rlb::lb {
namespace {

// Keeps the test output readable; tests that check log lines lower it temporarily.
const bool kQuietLogs = (FLAGS_minloglevel = google::GLOG_WARNING, true);

PoolWorkerPtr W(const std::string& name, std::optional<std::string> version = std::nullopt) {
  return std::make_shared<PoolWorker>(name, std::move(version));
}

// doctest ELLIPSIS matching: "..." in the pattern matches any text.
bool EllipsisMatch(std::string_view pattern, std::string_view text) {
  size_t marker = pattern.find("...");
  if (marker == std::string_view::npos) return pattern == text;
  std::string_view head = pattern.substr(0, marker);
  if (text.substr(0, head.size()) != head) return false;
  pattern.remove_prefix(marker + 3);
  text.remove_prefix(head.size());
  for (size_t skip = 0; skip <= text.size(); ++skip) {
    if (EllipsisMatch(pattern, text.substr(skip))) return true;
  }
  return false;
}

#define CHECK_REPR(pool, expected)                                    \
  do {                                                                \
    const std::string actual_repr = (pool).DebugString();             \
    INFO("actual:\n" << actual_repr << "\nexpected:\n" << (expected)); \
    CHECK(EllipsisMatch((expected), actual_repr));                    \
  } while (0)

std::string Names(const std::vector<PoolWorkerPtr>& workers) {
  std::string out;
  for (const auto& w : workers) out += (out.empty() ? "" : ",") + (w ? w->name() : "null");
  return out;
}

std::vector<PoolWorkerPtr> GetN(Pool& pool, std::string_view rclass, int n) {
  std::vector<PoolWorkerPtr> out;
  for (int i = 0; i < n; ++i) out.push_back(pool.Get(rclass));
  return out;
}

PoolSettings Settings(double variance, int backlog_history, double unskilled_score) {
  PoolSettings s;
  s.variance = variance;
  s.backlog_history = backlog_history;
  s.unskilled_score = unskilled_score;
  return s;
}

// Collects glog INFO lines while alive.
class LogCapture : public google::LogSink {
 public:
  LogCapture() : saved_(FLAGS_minloglevel) {
    FLAGS_minloglevel = google::GLOG_INFO;
    google::AddLogSink(this);
  }
  ~LogCapture() override {
    google::RemoveLogSink(this);
    FLAGS_minloglevel = saved_;
  }
  void send(google::LogSeverity, const char*, const char*, int, const google::LogMessageTime&,
            const char* message, size_t message_len) override {
    std::lock_guard<std::mutex> lock(mu_);
    lines_.emplace_back(message, message_len);
  }
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }

 private:
  int saved_;
  std::mutex mu_;
  std::vector<std::string> lines_;
};

TEST_CASE("P1: basic behaviour", "[pool][P1]") {
  ResumePool pool(Settings(1.5, 2, .5), false);
  CHECK(pool.worker_decay() == Approx(.75));

  // 1: empty pool.
  CHECK(pool.Get("foo") == nullptr);
  CHECK(pool.class_count() == 0);

  // 2: one unskilled worker gets foo at the unskilled score.
  auto w1 = W("w1"), w2 = W("w2"), w3 = W("w3"), w4 = W("w4"), w5 = W("w5");
  pool.NewResume(w1, {});
  CHECK(pool.Get("foo") == w1);
  CHECK(w1->resume().at("foo") == .5);

  // 3: w1 is skilled and eligible, so it keeps foo.
  pool.NewResume(w2, {});
  CHECK(pool.decay() == Approx(1 - 1.0 / 8));
  CHECK(pool.Get("foo") == w1);
  // 4: bar is unknown: LRU head w2.
  CHECK(pool.Get("bar") == w2);
  // 5.
  CHECK_REPR(pool,
             "Request classes:\n"
             "  bar: w2(0.5,1.0)\n"
             "  foo: w1(0.5,1.57...)\n"
             "Backlogs:\n"
             "  overall backlog: 3 Decayed: 2.08... Avg: 1.04...\n"
             "  1: [w2]\n"
             "  2: [w1]");

  // 6.
  pool.NewResume(w3, {});
  CHECK(Names(GetN(pool, "foo", 2)) == "w1,w1");
  // 7.
  CHECK_REPR(pool,
             "Request classes:\n"
             "  bar: w2(0.5,1.0)\n"
             "  foo: w1(0.5,2.85...)\n"
             "Backlogs:\n"
             "  overall backlog: 5 Decayed: 3.21... Avg: 1.07...\n"
             "  0: [w3]\n"
             "  1: [w2]\n"
             "  4: [w1]");

  // 8: w1 excluded by backlog, w3 picked up; then alternating with exact ties to w1.
  CHECK(Names(GetN(pool, "foo", 10)) == "w3,w3,w3,w3,w1,w3,w1,w3,w1,w3");
  // 9.
  CHECK_REPR(pool,
             "Request classes:\n"
             "  bar: w2(0.5,1.0)\n"
             "  foo: w1(0.5,5.07...), w3(0.5,5.07...)\n"
             "Backlogs:\n"
             "  overall backlog: 15 Decayed: 9.61... Avg: 3.20...\n"
             "  1: [w2]\n"
             "  7: [w1, w3]");

  // 10.
  pool.NewResume(w4, {});
  pool.NewResume(w5, {});
  CHECK_REPR(pool,
             "Request classes:\n"
             "  bar: w2(0.5,1.0)\n"
             "  foo: w1(0.5,5.07...), w3(0.5,5.07...)\n"
             "Backlogs:\n"
             "  overall backlog: 15 Decayed: 9.61... Avg: 1.92...\n"
             "  0: [w4, w5]\n"
             "  1: [w2]\n"
             "  7: [w1, w3]");

  // 11: the newest worker (LRU head) takes foo, then stays skilled.
  CHECK(Names(GetN(pool, "foo", 2)) == "w5,w5");

  // 12.
  for (int i = 0; i < 7; ++i) pool.Put(w1);
  for (int i = 0; i < 7; ++i) pool.Put(w3);
  CHECK_REPR(pool,
             "Request classes:\n"
             "  bar: w2(0.5,1.0)\n"
             "  foo: w1(0.5,2.29...), w3(0.5,2.29...), w5(0.5,1.57...)\n"
             "Backlogs:\n"
             "  overall backlog: 3 Decayed: 9.41... Avg: 1.88...\n"
             "  0: [w1, w3, w4]\n"
             "  1: [w2]\n"
             "  2: [w5]");

  // 13: tie between w1 and w3 goes to the LRU-earlier w1.
  CHECK(pool.Get("foo") == w1);

  // 14: real résumés replace the LB-assigned entries.
  pool.NewResume(w1, {{"foo", 5.9}});
  pool.NewResume(w2, {{"bar", 2.0}, {"foo", 2.0}});
  pool.NewResume(w3, {{"foo", 3.8}});
  CHECK_REPR(pool,
             "Request classes:\n"
             "  bar: w2(2.0,1.0)\n"
             "  foo: w5(0.5,1.57...), w2(2.0,1.0), w3(3.8,2.29...), w1(5.9,1.96...)\n"
             "Backlogs:\n"
             "  overall backlog: 4 Decayed: 9.0... Avg: 1.8...\n"
             "  0: [w3, w4]\n"
             "  1: [w1, w2]\n"
             "  2: [w5]");

  // 15.
  CHECK(Names(GetN(pool, "foo", 3)) == "w1,w3,w3");
  // 16.
  CHECK_REPR(pool,
             "Request classes:\n"
             "  bar: w2(2.0,1.0)\n"
             "  foo: w5(0.5,1.5...), w2(2.0,1.0), w3(3.8,1.97...), w1(5.9,1.9...)\n"
             "Backlogs:\n"
             "  overall backlog: 7 Decayed: 8.5... Avg: 1.7...\n"
             "  0: [w4]\n"
             "  1: [w2]\n"
             "  2: [w1, w3, w5]");

  // 17.
  CHECK(Names(GetN(pool, "foo", 3)) == "w1,w2,w1");

  // 18.
  pool.Put(w1);
  pool.Put(w3);
  pool.Put(w3);
  CHECK_REPR(pool,
             "Request classes:\n"
             "  bar: w2(2.0,1.5...)\n"
             "  foo: w5(0.5,1.5...), w2(2.0,1.5...), w3(3.8,1.2...), w1(5.9,2.7...)\n"
             "Backlogs:\n"
             "  overall backlog: 7 Decayed: 8.4... Avg: 1.6...\n"
             "  0: [w3, w4]\n"
             "  2: [w2, w5]\n"
             "  3: [w1]");

  // 19.
  CHECK(Names(GetN(pool, "foo", 5)) == "w3,w3,w1,w3,w1");

  // 20: removed workers vanish; their later puts still drain the pool backlog.
  pool.Remove(w1);
  for (int i = 0; i < 5; ++i) pool.Put(w1);
  pool.Remove(w3);
  for (int i = 0; i < 3; ++i) pool.Put(w3);
  CHECK_REPR(pool,
             "Request classes:\n"
             "  bar: w2(2.0,1.57...)\n"
             "  foo: w5(0.5,1.57...), w2(2.0,1.57...)\n"
             "Backlogs:\n"
             "  overall backlog: 4 Decayed: 8.2... Avg: 2.7...\n"
             "  0: [w4]\n"
             "  2: [w2, w5]");
  CHECK(pool.size() == 3);
  CHECK_FALSE(w1->in_pool());
  CHECK(w1->backlog() == 0);
  CHECK(w3->backlog() == 0);
}

TEST_CASE("P2: settings, decay and coercion", "[pool][P2]") {
  ResumePool pool(PoolSettings{}, false);
  pool.NewResume(W("w1"), {{"foo", 6.0}});
  pool.NewResume(W("w2"), {{"bar", 2.0}, {"foo", 2.0}});
  pool.NewResume(W("w3"), {{"foo", 3.8}});
  auto check_settings = [&](double variance, int history, double unskilled) {
    CHECK(pool.settings().variance == variance);
    CHECK(pool.settings().backlog_history == history);
    CHECK(pool.settings().unskilled_score == unskilled);
  };
  check_settings(1.0, 9, 1.0);
  CHECK(pool.worker_decay() == Approx(17.0 / 18));
  CHECK(pool.decay() == Approx(53.0 / 54));
  CHECK(PyFloatStr(pool.worker_decay()).rfind("0.9444", 0) == 0);
  CHECK(PyFloatStr(pool.decay()).rfind("0.98148", 0) == 0);

  PoolSettings s;
  REQUIRE(ParsePoolSettings({{"variance", "2.0"}}, &s).ok());
  pool.UpdateSettings(s);
  check_settings(2.0, 9, 1.0);
  CHECK(pool.worker_decay() == Approx(17.0 / 18));
  CHECK(pool.decay() == Approx(53.0 / 54));

  REQUIRE(ParsePoolSettings(
              {{"variance", "3.0"}, {"backlog_history", "6"}, {"unskilled_score", ".25"}}, &s)
              .ok());
  pool.UpdateSettings(s);
  check_settings(3.0, 6, 0.25);
  CHECK(pool.worker_decay() == Approx(11.0 / 12));
  CHECK(pool.decay() == Approx(35.0 / 36));
  CHECK(PyFloatStr(pool.worker_decay()).rfind("0.91666", 0) == 0);
  CHECK(PyFloatStr(pool.decay()).rfind("0.97222", 0) == 0);

  // Absent settings revert to their defaults.
  REQUIRE(ParsePoolSettings({}, &s).ok());
  pool.UpdateSettings(s);
  check_settings(1.0, 9, 1.0);
  CHECK(pool.worker_decay() == Approx(17.0 / 18));
  CHECK(pool.decay() == Approx(53.0 / 54));

  // Coercion: variance=3, backlog_history=6.2, unskilled_score=2.
  REQUIRE(ParsePoolSettings(
              {{"variance", "3"}, {"backlog_history", "6.2"}, {"unskilled_score", "2"}}, &s)
              .ok());
  pool.UpdateSettings(s);
  check_settings(3.0, 6, 2.0);

  REQUIRE(ParsePoolSettings(
              {{"variance", "2"}, {"backlog_history", "7"}, {"unskilled_score", "1"}}, &s)
              .ok());
  pool.UpdateSettings(s);
  check_settings(2.0, 7, 1.0);

  // Extra keys are ignored; surrounding whitespace is accepted.
  REQUIRE(ParsePoolSettings({{"variance", " 4 "}, {"foo", "bar"}}, &s).ok());
  CHECK(s.variance == 4.0);
  CHECK(s.backlog_history == 9);
}

TEST_CASE("ParsePoolSettings rejects invalid values, naming the key", "[pool][settings]") {
  struct Case {
    const char* key;
    const char* value;
  };
  const Case cases[] = {
      {"variance", "abc"},         {"variance", ""},          {"variance", "0"},
      {"variance", "-1"},          {"variance", "nan"},       {"variance", "inf"},
      {"variance", "1e999"},       {"variance", "2x"},        {"backlog_history", "0"},
      {"backlog_history", "0.5"},  {"backlog_history", "-3"}, {"backlog_history", "1e12"},
      {"backlog_history", "seven"}, {"unskilled_score", "NaN"}, {"unskilled_score", "x"},
  };
  for (const Case& c : cases) {
    PoolSettings s;
    s.variance = 42;
    Status status = ParsePoolSettings({{c.key, c.value}}, &s);
    INFO(c.key << "=" << c.value);
    CHECK(status.IsInvalidArgument());
    CHECK(status.message().find(c.key) != std::string::npos);
    CHECK(s.variance == 42);  // untouched on error
  }
}

TEST_CASE("P3: new workers are used under heavy load", "[pool][P3]") {
  ResumePool pool(Settings(2.0, 7, 1.0), false);
  auto w1 = W("w1"), w2 = W("w2"), w3 = W("w3");
  pool.NewResume(w1, {{"foo", 6.0}});
  pool.NewResume(w2, {{"bar", 2.0}, {"foo", 2.0}});
  pool.NewResume(w3, {{"foo", 3.8}});
  PoolSettings s;
  REQUIRE(ParsePoolSettings({{"variance", "1"}}, &s).ok());
  pool.UpdateSettings(s);
  pool.NewResume(w1, {{"bar", 2.0}});
  pool.NewResume(w2, {{"bar", 2.0}});
  pool.NewResume(w3, {{"bar", 2.0}});
  CHECK(pool.class_count() == 1);  // foo is empty, hence erased
  GetN(pool, "bar", 30);
  CHECK_REPR(pool,
             "Request classes:\n"
             "  bar: w1(2.0,5.96898355541), w2(2.0,5.96898355541), w3(2.0,5.96898355541)\n"
             "Backlogs:\n"
             "  overall backlog: 30 Decayed: 16.8930595654 Avg: 5.63101985512\n"
             "  10: [w1, w2, w3]");
  CHECK(w1->mbacklog() == Approx(5.96898355541));
  CHECK(pool.mbacklog() == Approx(16.8930595654));

  auto w6 = W("w6");
  pool.NewResume(w6, {});
  CHECK(pool.Get("bar") == w6);
}

TEST_CASE("S1: single-version pool", "[pool][S1]") {
  ResumePool pool(PoolSettings{}, true);
  auto w1 = W("w1", "1"), w2 = W("w2", "1"), w3 = W("w3", "2"), w4 = W("w4", "2"),
       w5 = W("w5", "2");
  CHECK_FALSE(pool.has_active_version());
  CHECK(pool.Get("a") == nullptr);

  pool.NewResume(w1, {});
  pool.NewResume(w2, {});
  REQUIRE(pool.has_active_version());
  CHECK(pool.active_version() == "1");

  // 2: the skilled w3 has the wrong version.
  pool.NewResume(w3, {{"a", .1}});
  CHECK_FALSE(w3->in_pool());
  CHECK(pool.Get("a") == w2);
  // 3: 2 = 2 is a tie: no switch.
  pool.NewResume(w4, {{"b", .1}});
  CHECK(pool.Get("b") == w1);
  // 4.
  CHECK_REPR(pool,
             "Version: 1\n"
             "  Inactive: 2: set([w3, w4])\n"
             "Request classes:\n"
             "  a: w2(1.0,1.0)\n"
             "  b: w1(1.0,1.0)\n"
             "Backlogs:\n"
             "  overall backlog: 2 Decayed: 1.50... Avg: 0.75...\n"
             "  1: [w1, w2]");

  // 5: 3 > 2: switch to version 2.
  pool.NewResume(w5, {{"c", .1}});
  CHECK(pool.active_version() == "2");
  CHECK_FALSE(w1->in_pool());
  CHECK(w1->backlog() == 1);
  // 6.
  CHECK(pool.Get("c") == w5);
  CHECK(pool.Get("a") == w3);
  // 7.
  CHECK_REPR(pool,
             "Version: 2\n"
             "  Inactive: 1: set([w1, w2])\n"
             "Request classes:\n"
             "  a: w3(0.1,1.0)\n"
             "  b: w4(0.1,0)\n"
             "  c: w5(0.1,1.0)\n"
             "Backlogs:\n"
             "  overall backlog: 4 Decayed: 2.52686361662 Avg: 0.842287872206\n"
             "  0: [w4]\n"
             "  1: [w3, w5]");

  // 8.
  pool.Put(w1);
  CHECK_REPR(pool,
             "Version: 2\n"
             "  Inactive: 1: set([w1, w2])\n"
             "Request classes:\n"
             "  a: w3(0.1,1.0)\n"
             "  b: w4(0.1,0)\n"
             "  c: w5(0.1,1.0)\n"
             "Backlogs:\n"
             "  overall backlog: 3 Decayed: 2.62523984999 Avg: 0.875079949996\n"
             "  0: [w4]\n"
             "  1: [w3, w5]");
  PoolStatus status = pool.Status();
  CHECK(status.backlog == 3);
  CHECK(status.mean_backlog == Approx(2.62523984999));
  CHECK(status.single_version);
  CHECK(status.active_version == "2");
  REQUIRE(status.workers.size() == 3);
  CHECK(status.workers[0].name == "w3");
  CHECK(status.workers[1].name == "w4");
  CHECK(status.workers[1].resume_size == 1);

  // 9: tie 2:2 keeps version 2; then 2 > 1 switches back to 1.
  pool.Remove(w4);
  CHECK(pool.active_version() == "2");
  pool.Remove(w5);
  CHECK(pool.active_version() == "1");
  pool.Put(w5);
  CHECK_REPR(pool,
             "Version: 1\n"
             "  Inactive: 2: set([w3])\n"
             "Request classes:\n"
             "  a: w2(1.0,1.0)\n"
             "  b: w1(1.0,0.48...)\n"
             "Backlogs:\n"
             "  overall backlog: 2 Decayed: 2.5... Avg: 1.2...\n"
             "  0: [w1]\n"
             "  1: [w2]");

  // 10.
  CHECK(pool.Get("b") == w1);
  // 11: removing the last inactive worker drops the Inactive line.
  pool.Remove(w3);
  pool.Put(w3);
  CHECK_REPR(pool,
             "Version: 1\n"
             "Request classes:\n"
             "  a: w2(1.0,1.0)\n"
             "  b: w1(1.0,0.66...)\n"
             "Backlogs:\n"
             "  overall backlog: 2 Decayed: 2.5... Avg: 1.2...\n"
             "  1: [w1, w2]");
}

TEST_CASE("S2: backlogs survive quorum flapping", "[pool][S2]") {
  ResumePool pool(PoolSettings{}, true);
  auto w1 = W("w1", "1"), w2 = W("w2", "2"), w3 = W("w3", "2");
  pool.NewResume(w1, {});
  for (int i = 0; i < 9; ++i) REQUIRE(pool.Get("x") == w1);
  CHECK(pool.backlog() == 9);
  const double mbacklog = w1->mbacklog();

  pool.NewResume(w2, {});
  pool.NewResume(w3, {});
  CHECK(pool.active_version() == "2");
  CHECK(pool.backlog() == 9);
  CHECK(pool.size() == 2);

  pool.Remove(w2);
  pool.Remove(w3);
  CHECK(pool.active_version() == "1");
  CHECK(w1->in_pool());
  CHECK(w1->backlog() == 9);
  CHECK(w1->mbacklog() == mbacklog);
  CHECK(w1->resume().at("x") == 1.0);  // its assigned class came back with it
  for (int i = 0; i < 9; ++i) pool.Put(w1);
  CHECK(pool.backlog() == 0);
  CHECK(w1->backlog() == 0);
}

TEST_CASE("VERSION and new resume log lines", "[pool][log]") {
  LogCapture capture;
  ResumePool pool(PoolSettings{}, true);
  pool.NewResume(W("127.0.0.1:1", "1"), {});
  pool.NewResume(W("127.0.0.1:2", "2"), {});
  pool.NewResume(W("127.0.0.1:3", "2"), {});
  std::vector<std::string> lines = capture.lines();
  std::vector<std::string> expected = {"VERSION: 1", "new resume: 127.0.0.1:1", "VERSION: 2",
                                       "new resume: 127.0.0.1:3", "new resume: 127.0.0.1:2"};
  CHECK(lines == expected);
}

TEST_CASE("Remove of a never-added worker is harmless", "[pool][bugfix]") {
  for (bool single_version : {false, true}) {
    ResumePool pool(PoolSettings{}, single_version);
    auto stranger = W("stranger", "1");
    pool.Remove(stranger);  // empty pool
    auto w1 = W("w1", "1");
    pool.NewResume(w1, {{"a", 1.0}});
    pool.Remove(stranger);
    pool.Remove(nullptr);
    CHECK(pool.size() == 1);
    CHECK(pool.Get("a") == w1);
    pool.Remove(w1);
    pool.Remove(w1);  // twice
    CHECK(pool.size() == 0);
    CHECK(pool.class_count() == 0);
    pool.Put(w1);
    CHECK(pool.backlog() == 0);
  }
}

TEST_CASE("Versionless workers are a version group of their own", "[pool][bugfix]") {
  SECTION("versionless first") {
    ResumePool pool(PoolSettings{}, true);
    auto none1 = W("n1"), v1 = W("v1", "2"), v2 = W("v2", "2");
    pool.NewResume(none1, {});
    REQUIRE(pool.has_active_version());
    CHECK(pool.active_version() == std::nullopt);
    // The original silently adopted "2" here while keeping n1 active.
    pool.NewResume(v1, {});
    CHECK(pool.active_version() == std::nullopt);
    CHECK(pool.size() == 1);
    CHECK_FALSE(v1->in_pool());
    CHECK(pool.Get("x") == none1);
    CHECK(pool.DebugString().rfind("Version: None\n  Inactive: 2: set([v1])\n", 0) == 0);
    pool.NewResume(v2, {});
    CHECK(pool.active_version() == "2");
    CHECK_FALSE(none1->in_pool());
    CHECK(pool.size() == 2);
    CHECK(pool.Status().active_version == "2");
  }
  SECTION("versioned first") {
    ResumePool pool(PoolSettings{}, true);
    auto v1 = W("v1", "1"), n1 = W("n1"), n2 = W("n2");
    pool.NewResume(v1, {});
    pool.NewResume(n1, {});
    CHECK(pool.active_version() == "1");
    CHECK(pool.size() == 1);
    pool.NewResume(n2, {});
    CHECK(pool.active_version() == std::nullopt);
    CHECK(pool.size() == 2);
    CHECK_FALSE(v1->in_pool());
    CHECK(pool.DebugString().rfind("Version: None\n  Inactive: 1: set([v1])\n", 0) == 0);
  }
}

TEST_CASE("Empty pool: the active version stays until a larger group appears", "[pool]") {
  ResumePool pool(PoolSettings{}, true);
  auto a = W("a", "1"), b = W("b", "2");
  pool.NewResume(a, {});
  pool.Remove(a);
  CHECK(pool.size() == 0);
  CHECK(pool.active_version() == "1");
  pool.NewResume(b, {});  // 1 > 0
  CHECK(pool.active_version() == "2");
  CHECK(pool.Get("x") == b);
}

TEST_CASE("Ties between equal adjusted scores go to the worker nearer the LRU head",
          "[pool][tiebreak]") {
  ResumePool pool(Settings(100, 9, 1.0), false);
  auto a = W("a"), b = W("b"), c = W("c");
  // Inserted at the head: LRU order is c, b, a.
  pool.NewResume(a, {{"x", 2.0}});
  pool.NewResume(b, {{"x", 2.0}});
  pool.NewResume(c, {{"x", 2.0}});
  CHECK(Names(GetN(pool, "x", 3)) == "c,b,a");
  CHECK(Names(GetN(pool, "x", 3)) == "c,b,a");  // all bl 1: undivided, still tied
}

TEST_CASE("Get cost is bounded by the skilled workers of the class", "[pool][perf]") {
  ResumePool pool(PoolSettings{}, false);
  CHECK(pool.Get("unknown") == nullptr);
  CHECK(pool.class_count() == 0);  // an empty pool creates no class state

  std::vector<PoolWorkerPtr> workers;
  for (int i = 0; i < 1000; ++i) {
    workers.push_back(W("w" + std::to_string(i)));
    pool.NewResume(workers.back(), {});
  }
  CHECK(pool.class_count() == 0);
  pool.NewResume(workers[500], {{"hot", 5.0}});
  CHECK(pool.class_count() == 1);

  CHECK(pool.Get("hot") == workers[500]);
  CHECK(pool.entries_scanned_for_test() == 1);

  // An unknown class examines nothing and creates exactly one entry for the assigned worker.
  PoolWorkerPtr chosen = pool.Get("evil.example");
  CHECK(chosen == workers[999]);  // the LRU head: the last added
  CHECK(pool.entries_scanned_for_test() == 0);
  CHECK(pool.class_count() == 2);

  // Once the worker reports a résumé without it, the class entry is gone.
  pool.NewResume(chosen, {});
  CHECK(pool.class_count() == 1);
  pool.Put(chosen);
  pool.Remove(workers[500]);
  CHECK(pool.class_count() == 0);
  pool.Put(workers[500]);
  CHECK(pool.backlog() == 0);
}

// ---------------------------------------------------------------- ring placement (consistent hashing)
// Several LBs, each with its own pool, its own worker order and its own traffic history:
// with ClassPlacement::kHashRing a new class lands on the same worker at every one of
// them (docs/design.md, "Placing new classes"); with the LRU placement they disagree.
std::vector<std::string> PlaceClasses(ClassPlacement placement, int lb_index, int nclasses) {
  ResumePool pool(PoolSettings{}, false, ClassLimits{}, placement);
  std::vector<PoolWorkerPtr> workers;
  for (int i = 0; i < 30; ++i) workers.push_back(W("10.0.0." + std::to_string(i) + ":8080"));
  // Each LB learns of the workers in its own order and has served its own warm-up traffic.
  std::rotate(workers.begin(), workers.begin() + 7 * lb_index, workers.end());
  for (const auto& w : workers) pool.NewResume(w, {});
  for (int i = 0; i < 5 * lb_index + 3; ++i) pool.Put(pool.Get("warm-up"));
  std::vector<std::string> chosen;
  for (int c = 0; c < nclasses; ++c) {
    PoolWorkerPtr w = pool.Get("site" + std::to_string(c) + ".example");
    chosen.push_back(w->name());
    pool.Put(w);
  }
  return chosen;
}

TEST_CASE("Ring placement: independent pools place a new class alike", "[pool]") {
  const std::vector<std::string> first = PlaceClasses(ClassPlacement::kHashRing, 0, 20);
  for (int lb = 1; lb < 3; ++lb) {
    CHECK(PlaceClasses(ClassPlacement::kHashRing, lb, 20) == first);
  }
  // The choice spreads over the workers (20 classes, 30 workers: not all on a few).
  CHECK(std::set<std::string>(first.begin(), first.end()).size() >= 10);
  // The original's LRU placement: the same three LBs disagree on most classes.
  const std::vector<std::string> lru0 = PlaceClasses(ClassPlacement::kLeastRecentlyUsed, 0, 20);
  const std::vector<std::string> lru1 = PlaceClasses(ClassPlacement::kLeastRecentlyUsed, 1, 20);
  int same = 0;
  for (size_t i = 0; i < lru0.size(); ++i) same += lru0[i] == lru1[i];
  CHECK(same < 10);
}

TEST_CASE("Ring placement: the class stays, and overflows in the same order", "[pool]") {
  ResumePool pool(PoolSettings{}, false, ClassLimits{}, ClassPlacement::kHashRing);
  std::vector<PoolWorkerPtr> workers;
  for (int i = 0; i < 4; ++i) workers.push_back(W("w" + std::to_string(i) + ":1"));
  for (const auto& w : workers) pool.NewResume(w, {});
  PoolWorkerPtr first = pool.Get("hot");
  pool.Put(first);
  // Skilled now (assigned at unskilled_score): chosen again while within the bound.
  for (int i = 0; i < 5; ++i) {
    PoolWorkerPtr again = pool.Get("hot");
    CHECK(again == first);
    pool.Put(again);
  }
  CHECK(first->resume().count("hot") == 1);
  // Hold requests on it until it is past the bound: the class goes to one more worker,
  // never to the first again while it is overloaded.
  std::vector<PoolWorkerPtr> held;
  PoolWorkerPtr second;
  for (int i = 0; i < 50 && !second; ++i) {
    PoolWorkerPtr w = pool.Get("hot");
    held.push_back(w);
    if (w != first) second = w;
  }
  REQUIRE(second != nullptr);
  CHECK(second->resume().count("hot") == 1);
  for (const auto& w : held) pool.Put(w);
  // Another pool with the same workers in another order overflows to the same worker.
  ResumePool other(PoolSettings{}, false, ClassLimits{}, ClassPlacement::kHashRing);
  std::vector<PoolWorkerPtr> copies;
  for (int i = 3; i >= 0; --i) copies.push_back(W("w" + std::to_string(i) + ":1"));
  for (const auto& w : copies) other.NewResume(w, {});
  PoolWorkerPtr other_first = other.Get("hot");
  CHECK(other_first->name() == first->name());
  std::vector<PoolWorkerPtr> other_held = {other_first};
  PoolWorkerPtr other_second;
  for (int i = 0; i < 50 && !other_second; ++i) {
    PoolWorkerPtr w = other.Get("hot");
    other_held.push_back(w);
    if (w->name() != first->name()) other_second = w;
  }
  REQUIRE(other_second != nullptr);
  CHECK(other_second->name() == second->name());
  for (const auto& w : other_held) other.Put(w);
}

TEST_CASE("Rendezvous placement respects the class limits", "[pool]") {
  ResumePool pool(PoolSettings{}, false, ClassLimits{4, 6}, ClassPlacement::kHashRing);
  std::vector<PoolWorkerPtr> workers;
  for (int i = 0; i < 3; ++i) workers.push_back(W("w" + std::to_string(i) + ":1"));
  for (const auto& w : workers) pool.NewResume(w, {});
  for (int c = 0; c < 100; ++c) pool.Put(pool.Get("c" + std::to_string(c)));
  CHECK(pool.entry_count() <= 6);
  for (const auto& w : workers) CHECK(w->resume().size() <= 4);
}

TEST_CASE("Factory, status and empty-pool formatting", "[pool]") {
  std::unique_ptr<Pool> pool = NewResumePool(PoolSettings{}, false);
  CHECK(pool->size() == 0);
  CHECK(pool->DebugString() ==
        "Request classes:\n"
        "Backlogs:\n"
        "  overall backlog: 0 Decayed: 0 Avg: None");
  auto w = W("127.0.0.1:8080");
  pool->NewResume(w, {{"a", 1.5}, {"b", 2.5}});
  CHECK(pool->DebugString() ==
        "Request classes:\n"
        "  a: 127.0.0.1:8080(1.5,0)\n"
        "  b: 127.0.0.1:8080(2.5,0)\n"
        "Backlogs:\n"
        "  overall backlog: 0 Decayed: 0 Avg: 0\n"
        "  0: [127.0.0.1:8080]");
  CHECK(pool->Get("a") == w);
  PoolStatus status = pool->Status();
  CHECK(status.backlog == 1);
  CHECK(status.mean_backlog == Approx(1.0));
  CHECK_FALSE(status.single_version);
  CHECK_FALSE(status.active_version.has_value());
  REQUIRE(status.workers.size() == 1);
  CHECK(status.workers[0].name == "127.0.0.1:8080");
  CHECK(status.workers[0].backlog == 1);
  CHECK(status.workers[0].mbacklog == Approx(1.0));
  CHECK(status.workers[0].resume_size == 2);
}

TEST_CASE("EllipsisMatch helper", "[pool]") {
  CHECK(EllipsisMatch("a(1.57...)", "a(1.5714)"));
  CHECK(EllipsisMatch("x...y...z", "xAyBz"));
  CHECK_FALSE(EllipsisMatch("a(1.57...)", "a(1.58)"));
  CHECK_FALSE(EllipsisMatch("a...c", "abd"));
  CHECK_FALSE(EllipsisMatch("abc", "abcd"));
}

TEST_CASE("PyFloatStr follows Python 2 str(float)", "[pool]") {
  CHECK(PyFloatStr(1.0) == "1.0");
  CHECK(PyFloatStr(0.5) == "0.5");
  CHECK(PyFloatStr(5.968983555409) == "5.96898355541");
  CHECK(PyFloatStr(1e20) == "1e+20");
  CHECK(PyFloatStr(-2.0) == "-2.0");
}

}  // namespace
}  // namespace rlb::lb
