// ResumeTracker: the original's résumé test vectors (worker.test) and the reload fix.
#include "zkworker/resume_tracker.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>

using rlb::worker::ResumeTracker;

TEST_CASE("settings defaults and decay", "[resume]") {
  ResumeTracker t(2, 0);
  CHECK(t.history() == 2);
  CHECK(t.max_skill_age() == 20);
  t.UpdateSettings(5, 0);
  CHECK(t.max_skill_age() == 50);
  CHECK(t.decay() == Approx(0.8));
  t.UpdateSettings(5, 9);
  CHECK(t.max_skill_age() == 9);
  t.UpdateSettings(1, 0);
  CHECK(t.decay() == 0.0);
  t.UpdateSettings(32, 90);
  CHECK(t.decay() == Approx(0.96875));
  t.UpdateSettings(1000000000, 0);  // 10 x history would overflow an int
  CHECK(t.max_skill_age() == 2147483647);
  t.UpdateSettings(214748364, 0);
  CHECK(t.max_skill_age() == 2147483640);
}

TEST_CASE("decay 0: the score is the last request's rate", "[resume]") {
  ResumeTracker t(1, 0);
  CHECK(t.Record("test", 1.0));  // history 1: every request is a send point
  CHECK(t.Snapshot().at("test") == Approx(1.0));
  t.Record("test", 2.0);
  CHECK(t.Snapshot().at("test") == Approx(0.5));
}

TEST_CASE("decay 0 then 0.5: the worker.test sequence ends at 0.875", "[resume]") {
  ResumeTracker t(1, 0);
  t.Record("test", 1.0);
  t.Record("test", 2.0);  // {'test': 0.5}: time 2, count 1
  t.UpdateSettings(2, 0);  // decay 0.5
  t.Record("test", 2.0);   // time 3, count 1.5
  CHECK(t.Snapshot().at("test") == Approx(0.5));
  t.Record("test", 0.5);   // time 2, count 1.75
  CHECK(t.Snapshot().at("test") == Approx(0.875));
}

TEST_CASE("lazy decay counts requests of every class", "[resume]") {
  ResumeTracker t(2, 0);  // decay 0.5
  t.Record("a", 1.0);     // a: time 1, count 1 at generation 1
  t.Record("b", 1.0);
  t.Record("b", 1.0);
  t.Record("a", 1.0);     // a decays by 0.5^3: time 1.125, count 1.125
  CHECK(t.Snapshot().at("a") == Approx(1.0));
  t.Record("a", 0.5);     // time 1.125*.5+.5 = 1.0625, count 1.5625
  CHECK(t.Snapshot().at("a") == Approx(1.5625 / 1.0625));
}

TEST_CASE("pruning at send points: [a b test] then [test]", "[resume]") {
  ResumeTracker t(2, 3);
  t.Load({{"a", 1.0}, {"b", 2.0}});
  t.Record("test", 0.01);
  CHECK(t.Record("test", 0.01));
  auto snap = t.Snapshot();
  CHECK(snap.size() == 3);
  t.Record("test", 0.01);
  CHECK(t.Record("test", 0.01));
  snap = t.Snapshot();
  REQUIRE(snap.size() == 1);
  CHECK(snap.count("test") == 1);
}

TEST_CASE("a reloaded class keeps its saved score on its next request", "[resume]") {
  ResumeTracker t(9999, 0);
  t.Load({{"a", 10.0}});
  CHECK(t.Snapshot().at("a") == Approx(10.0));
  t.Record("a", 0.1);  // at exactly the saved rate
  CHECK(t.Snapshot().at("a") == Approx(10.0));
  t.Record("a", 0.2);  // slower: the score moves a little, not by a factor of history
  double s = t.Snapshot().at("a");
  CHECK(s < 10.0);
  CHECK(s > 9.9);
}

TEST_CASE("class names are bounded: the least recently seen go first", "[resume]") {
  // Bound 1000 bytes; classes of 100 bytes: ten fit.
  ResumeTracker t(9999, 0, 1000);
  auto cls = [](int i) { return std::string(97, 'x') + std::to_string(100 + i); };
  for (int i = 0; i < 10; ++i) t.Record(cls(i), 0.01);
  CHECK(t.class_bytes() == 1000);
  CHECK(t.evicted() == 0);
  t.Record(cls(0), 0.01);  // class 0 is now the most recently seen
  t.Record(cls(10), 0.01);  // over the bound: drop the oldest until a quarter is free
  CHECK(t.evicted() == 4);  // classes 1-4 (350 bytes then, with 100 to add)
  CHECK(t.class_bytes() == 700);
  auto snap = t.Snapshot();
  CHECK(snap.size() == 7);
  CHECK(snap.count(cls(0)) == 1);
  CHECK(snap.count(cls(10)) == 1);
  for (int i = 1; i <= 4; ++i) CHECK(snap.count(cls(i)) == 0);
  // A flood of new classes never takes it over the bound.
  for (int i = 11; i < 5000; ++i) {
    t.Record(cls(i), 0.01);
    REQUIRE(t.class_bytes() <= 1000);
  }
  CHECK(t.Snapshot().count(cls(4999)) == 1);
}

TEST_CASE("the bound counts loaded classes and pruning gives bytes back", "[resume]") {
  ResumeTracker t(2, 3, 1 << 20);
  t.Load({{"aa", 1.0}, {"bbb", 2.0}});
  CHECK(t.class_bytes() == 5);
  t.Load({{"aa", 3.0}});  // replacing a class does not count it twice
  CHECK(t.class_bytes() == 5);
  for (int i = 0; i < 4; ++i) t.Record("test", 0.01);  // the old classes are pruned
  CHECK(t.Snapshot().size() == 1);
  CHECK(t.class_bytes() == 4);
  ResumeTracker small(9999, 0, 4);
  small.Load({{"aa", 1.0}, {"bb", 1.0}, {"cc", 1.0}});  // a file over the bound is trimmed
  CHECK(small.class_bytes() <= 4);
}

TEST_CASE("resume file round trip, missing and corrupt files", "[resume]") {
  char dir[] = "/tmp/rlb-resume-XXXXXX";
  REQUIRE(mkdtemp(dir));
  std::string path = std::string(dir) + "/resume.json";
  std::map<std::string, double> loaded;
  CHECK(rlb::worker::LoadResumeFile(path, &loaded).ok());  // missing: empty, OK
  CHECK(loaded.empty());
  std::map<std::string, double> saved = {{"h1.com", 12.5}, {"caf\xc3\xa9", 0.25}};
  REQUIRE(rlb::worker::SaveResumeFile(path, saved).ok());
  REQUIRE(rlb::worker::LoadResumeFile(path, &loaded).ok());
  CHECK(loaded == saved);
  std::ofstream(path) << "{not json";
  auto s = rlb::worker::LoadResumeFile(path, &loaded);
  CHECK_FALSE(s.ok());
  CHECK(loaded.empty());
  std::ofstream(path) << R"({"a": "x"})";
  CHECK_FALSE(rlb::worker::LoadResumeFile(path, &loaded).ok());
  std::remove(path.c_str());
  rmdir(dir);
}

TEST_CASE("worker settings from ZooKeeper JSON: coercion, defaults, errors", "[resume]") {
  using rlb::worker::ParseWorkerSettingsJson;
  const rlb::worker::WorkerSettings defaults;  // no flag, no ini value
  auto parse = [&](const char* json) { return ParseWorkerSettingsJson(json, defaults); };
  auto p = parse("");
  REQUIRE(p.ok());
  CHECK(p->settings.history == 9999);
  CHECK(p->settings.max_skill_age == 0);
  p = parse(R"({"history": 32, "max_skill_age": 90})");
  REQUIRE(p.ok());
  CHECK(p->settings.history == 32);
  CHECK(p->settings.max_skill_age == 90);
  p = parse(R"({"max_skill_age": 99})");
  REQUIRE(p.ok());
  CHECK(p->settings.history == 9999);  // a removed key reverts to its default
  CHECK(p->settings.max_skill_age == 99);
  p = parse(R"({"history": "5"})");
  REQUIRE(p.ok());
  CHECK(p->settings.history == 5);
  p = parse(R"({"history": 6.2})");
  REQUIRE(p.ok());
  CHECK(p->settings.history == 6);
  // Strings are read as the LB reads its settings (common/json.h JsonNumber, Python float()
  // rules): surrounding whitespace allowed.
  p = parse(R"({"history": " 8 ", "max_skill_age": "1e2"})");
  REQUIRE(p.ok());
  CHECK(p->settings.history == 8);
  CHECK(p->settings.max_skill_age == 100);
  for (const char* bad : {"[1]", "{", R"({"history": 0})", R"({"history": "x"})",
                          R"({"history": "5x"})", R"({"history": "nan"})",
                          R"({"history": "1e10"})", R"({"history": ""})",
                          R"({"max_skill_age": -3})", R"({"history": [5]})",
                          R"({"history": true})"}) {
    INFO(bad);
    auto r = parse(bad);
    REQUIRE_FALSE(r.ok());
    CHECK_FALSE(r.status().message().empty());
  }
}

TEST_CASE("worker settings: null and missing keys fall back to the ini's values", "[resume]") {
  using rlb::worker::ParseWorkerSettingsJson;
  // history = 500 in the ini (or --history=500), max_skill_age not given.
  const rlb::worker::WorkerSettings ini{500, 0};
  for (const char* json : {"", "{}", R"({"history": null})",
                           R"({"history": null, "max_skill_age": null})"}) {
    INFO(json);
    auto p = ParseWorkerSettingsJson(json, ini);
    REQUIRE(p.ok());
    CHECK(p->settings == ini);
    CHECK(p->unknown_keys.empty());
  }
  auto p = ParseWorkerSettingsJson(R"({"max_skill_age": 70})", ini);
  REQUIRE(p.ok());
  CHECK(p->settings == rlb::worker::WorkerSettings{500, 70});
  p = ParseWorkerSettingsJson(R"({"history": 7})", rlb::worker::WorkerSettings{500, 4000});
  REQUIRE(p.ok());
  CHECK(p->settings == rlb::worker::WorkerSettings{7, 4000});
}

TEST_CASE("worker settings: unknown keys are listed, links are not settings", "[resume]") {
  auto p = rlb::worker::ParseWorkerSettingsJson(
      R"({"histroy": 5, "history": 3, "workers ->": "/x", "colour": null, " ->": 1})",
      rlb::worker::WorkerSettings{});
  REQUIRE(p.ok());
  CHECK(p->settings.history == 3);
  CHECK(p->unknown_keys == std::vector<std::string>{"histroy", "colour", " ->"});
}
