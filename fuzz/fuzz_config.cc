// fuzz_config: the parsers of start-up and live configuration.
//
// Byte 0 selects the target (byte0 % 9; bit 7 picks a variant where there is one), the rest
// is its input:
//   0 classifier spec      first line = spec (Classifier::Create), the rest = the value of
//                          every environ variable Classify() is run on
//   1 LB command line      NUL-separated argv -> TranslateArgs (resumelb or zkresumelb
//                          table), then the translated LB flags are set (gflags, restored
//                          after each run) and OptionsFromFlags validates them
//   2 pool settings        "key=value" lines -> ParsePoolSettings
//   3 HOST:PORT            ParseHostPort, and ToString() must parse back to the same address
//   4 résumé file          JSON written to a temp file -> LoadResumeFile -> ResumeTracker::Load
//                          -> the RESUME frame the worker would send (must be accepted) ->
//                          SaveResumeFile -> LoadResumeFile (must give the same résumé)
//   5 zkresumelb settings  ZooKeeper node JSON -> ParseLbSettingsJson -> the pool
//   6 worker node          ZooKeeper provider node JSON -> version (zk_discovery.cc OnChildData)
//                          -> single-version pool
//   7 zkworker settings    ZooKeeper node JSON -> ParseWorkerSettingsJson -> ResumeTracker
//   8 zc.zk link           parent path, link name, parent's JSON -> "NAME ->" target ->
//                          NormalizeZkPath (zk_session.cc's resolver)
// Targets 6 and 8 parse inside ZooKeeper callbacks that are not exposed, so their few lines
// are replicated below (kept in sync by hand: the comments name the originals); 5 and 7 call
// the real functions.
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "common/frame_codec.h"
#include "common/net_address.h"
#include "common/zk_session.h"
#include "fuzz/fuzz_util.h"
#include "zklb/classifier.h"
#include "zklb/lb_command_line.h"
#include "zklb/lb_options.h"
#include "zklb/pool.h"
#include "zklb/zk_discovery.h"
#include "zkworker/resume_tracker.h"

namespace {

using namespace rlb;

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    size_t at = s.find(sep);
    out.push_back(s.substr(0, at));
    if (at == std::string_view::npos) return out;
    s.remove_prefix(at + 1);
  }
}

// ------------------------------------------------------------------ 0: classifier
void FuzzClassifier(std::string_view in) {
  size_t nl = in.find('\n');
  std::string_view spec = in.substr(0, nl);
  std::string value(nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1));
  auto c = lb::Classifier::Create(spec);
  if (!c.ok()) {
    FUZZ_CHECK(!c.status().message().empty());
    return;
  }
  const lb::Classifier& cl = **c;
  proto::Pairs fixed = {{"REQUEST_METHOD", "GET"},   {"PATH_INFO", "/shop/cart"},
                        {"QUERY_STRING", "a=1&b=2"}, {"HTTP_HOST", "www.example.com"},
                        {"HTTP_COOKIE", "s=1"},      {"wsgi.url_scheme", "http"}};
  proto::Pairs fuzzed;
  for (const auto& [k, v] : fixed) fuzzed.emplace_back(k, value);
  // The spec's own key (re:KEY:...) with the fuzzed value, whatever the key is.
  if (spec.substr(0, 3) == "re:") {
    std::string_view rest = spec.substr(3);
    fuzzed.emplace_back(std::string(rest.substr(0, rest.find(':'))), value);
  }
  for (const proto::Pairs* env : {&fixed, &fuzzed}) {
    std::string cls = cl.Classify(*env);
    if (cls.empty()) continue;
    // A class is always a piece of some environ value (the host classifier lower-cases it).
    bool found = false;
    for (const auto& [k, v] : *env) {
      std::string lower(v);
      for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      found = found || v.find(cls) != std::string::npos || lower.find(cls) != std::string::npos;
    }
    FUZZ_CHECK(found);
  }
  FUZZ_CHECK(cl.Classify({}).empty());
}

// ------------------------------------------------------------------ 1: LB command line
// The LB's own flags (lb_command_line.cc). Others (gflags' flagfile, fromenv, help...) are
// never set: they read files or exit.
const std::set<std::string>& LbFlags() {
  static const std::set<std::string> flags = {
      "address", "backlog", "max_connections", "request_classifier", "pool", "single_version",
      "variance", "backlog_history", "unskilled_score", "access_log", "logger_configuration",
      "disconnect_message", "status_server", "socket_timeout", "header_timeout",
      "worker_wait_timeout", "worker_keepalive", "worker_timeout", "connect_timeout",
      "drain_timeout", "max_header_bytes", "max_headers", "max_body_bytes", "response_memory",
      "buffer_dir", "max_retries"};
  return flags;
}

// A duration the LB turns into libuv milliseconds (uint64_t) must convert without overflow.
bool ConvertibleSeconds(double s) { return std::isfinite(s) && s >= 0 && s * 1000 < 1.8e19; }

void FuzzCommandLine(std::string_view in, bool zk) {
  std::vector<std::string> args = {zk ? "zkresumelb" : "resumelb"};
  if (!in.empty()) {
    for (std::string_view a : Split(in, '\0')) args.emplace_back(a);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const auto& table = zk ? lb::ZkResumelbShortOptions() : lb::ResumelbShortOptions();
  auto out = lb::TranslateArgs(static_cast<int>(args.size()), argv.data(), table);
  if (!out.ok()) {
    FUZZ_CHECK(!out.status().message().empty());
    return;
  }
  const std::vector<std::string>& t = *out;
  FUZZ_CHECK(!t.empty() && t.size() <= args.size());
  FUZZ_CHECK(t[0] == args[0]);

  gflags::FlagSaver saver;  // every flag is restored when this run ends
  bool positional = false;
  for (size_t i = 1; i < t.size(); ++i) {
    const std::string& a = t[i];
    if (positional || a.size() < 2 || a[0] != '-') continue;
    if (a == "--") {
      positional = true;
      continue;
    }
    FUZZ_CHECK(a[1] == '-');  // every option comes out in the long form
    size_t eq = a.find('=');
    std::string name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    FUZZ_CHECK(name.find('-') == std::string::npos);
    if (!LbFlags().count(name)) continue;
    std::string value = eq == std::string::npos ? "true" : a.substr(eq + 1);
    (void)gflags::SetCommandLineOption(name.c_str(), value.c_str());
  }
  auto options = lb::OptionsFromFlags(zk ? 1.0 : 4.0);
  if (!options.ok()) {
    FUZZ_CHECK(!options.status().message().empty());
    return;
  }
  const lb::LbOptions& o = *options;
  FUZZ_CHECK(o.address.port >= 0 && o.address.port <= 65535);
  FUZZ_CHECK(o.listen_backlog >= 1 && o.max_connections >= 0 && o.max_retries >= 0);
  FUZZ_CHECK(o.pool == "balanced" || o.pool == "resume" || o.pool == "classic" ||
             o.pool == "classless");
  FUZZ_CHECK(o.max_classes >= 1 && o.max_classes <= (size_t{1} << 30));
  FUZZ_CHECK(o.pool_settings.variance > 0 && std::isfinite(o.pool_settings.variance));
  FUZZ_CHECK(o.pool_settings.backlog_history >= 1);
  FUZZ_CHECK(std::isfinite(o.pool_settings.unskilled_score));
  FUZZ_CHECK(lb::Classifier::Create(o.classifier).ok());
  for (double s : {o.socket_timeout, o.header_timeout, o.worker_wait_timeout,
                   o.worker_keepalive, o.worker_timeout, o.connect_timeout}) {
    FUZZ_CHECK(s > 0);
    FUZZ_CHECK(ConvertibleSeconds(s));
  }
  FUZZ_CHECK(ConvertibleSeconds(o.drain_timeout));
  FUZZ_CHECK(o.worker_timeout > o.worker_keepalive);
  FUZZ_CHECK(!o.buffer_dir.empty());
}

// ------------------------------------------------------------------ 2: pool settings
void FuzzPoolSettings(std::string_view in) {
  std::map<std::string, std::string> raw;
  for (std::string_view line : Split(in, '\n')) {
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    raw[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
  }
  lb::PoolSettings s{-7.0, -7, -7.0};  // a sentinel: untouched on error
  Status st = lb::ParsePoolSettings(raw, &s);
  if (!st.ok()) {
    FUZZ_CHECK(st.IsInvalidArgument() && !st.message().empty());
    FUZZ_CHECK(s.variance == -7.0 && s.backlog_history == -7 && s.unskilled_score == -7.0);
    return;
  }
  FUZZ_CHECK(s.variance > 0 && std::isfinite(s.variance));
  FUZZ_CHECK(s.backlog_history >= 1 && s.backlog_history <= 1000000000);
  FUZZ_CHECK(std::isfinite(s.unskilled_score));
  if (!raw.count("variance")) FUZZ_CHECK(s.variance == 1.0);
  if (!raw.count("backlog_history")) FUZZ_CHECK(s.backlog_history == 9);
  if (!raw.count("unskilled_score")) FUZZ_CHECK(s.unskilled_score == 1.0);
  // Settings the parser accepts are settings the pool accepts.
  auto pool = lb::NewResumePool(s, false);
  pool->UpdateSettings(s);
}

// ------------------------------------------------------------------ 3: HOST:PORT
void FuzzHostPort(std::string_view in) {
  auto hp = ParseHostPort(in);
  if (!hp.ok()) {
    FUZZ_CHECK(hp.status().IsInvalidArgument());
    return;
  }
  FUZZ_CHECK(hp->port >= 0 && hp->port <= 65535);
  std::string text = hp->ToString();
  auto again = ParseHostPort(text);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->host == hp->host && again->port == hp->port);
  FUZZ_CHECK(again->ToString() == text);
}

// ------------------------------------------------------------------ 4: résumé file
std::string TempDir() {
  static const std::string dir = [] {
    const char* env = std::getenv("RLB_FUZZ_TMPDIR");
    std::string base = env && *env ? env : (access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    return base;
  }();
  return dir;
}

bool NearlyEqual(double a, double b) {
  if (a == b) return true;
  double m = std::max(std::fabs(a), std::fabs(b));
  return std::fabs(a - b) <= 1e-15 * m || m < 1e-300;  // RapidJSON's default (fast) parsing
}

// This process's scratch files, removed at exit too (a run stopped by -max_total_time may
// end between writing and removing one).
const std::string& ScratchPath(const char* what) {
  static const std::string resume =
      TempDir() + "/rlb-fuzz-resume-" + std::to_string(getpid()) + ".json";
  static const std::string saved =
      TempDir() + "/rlb-fuzz-saved-" + std::to_string(getpid()) + ".json";
  static const bool registered = [] {
    std::atexit([] {
      std::remove(resume.c_str());
      std::remove(saved.c_str());
    });
    return true;
  }();
  (void)registered;
  return std::strcmp(what, "resume") == 0 ? resume : saved;
}

void FuzzResumeFile(std::string_view in) {
  const std::string& path = ScratchPath("resume");
  {
    FILE* f = std::fopen(path.c_str(), "wb");
    FUZZ_CHECK(f != nullptr);
    FUZZ_CHECK(std::fwrite(in.data(), 1, in.size(), f) == in.size());
    std::fclose(f);
  }
  std::map<std::string, double> resume;
  Status s = worker::LoadResumeFile(path, &resume);
  std::remove(path.c_str());
  if (!s.ok()) {
    FUZZ_CHECK(resume.empty());
    return;
  }
  // RapidJSON reads out-of-range literals such as 2e308 as +-inf without an error, so the
  // loaded map may hold them; the tracker must drop every score it cannot use.
  worker::ResumeTracker tracker(9, 0);
  tracker.Load(resume);
  std::map<std::string, double> snapshot = tracker.Snapshot();
  for (const auto& [cls, score] : resume) {
    bool usable = score > 0 && std::isfinite(score);
    FUZZ_CHECK(snapshot.count(cls) == (usable ? 1u : 0u));
    if (usable) FUZZ_CHECK(snapshot[cls] == score);  // reloaded scores are exact
  }
  FUZZ_CHECK(snapshot.size() <= resume.size());

  // The worker announces the résumé: every LB must accept the RESUME frame.
  proto::ResumeEntries entries = tracker.Entries();
  std::string wire;
  proto::EncodeResume(&wire, entries);
  proto::FrameDecoder decoder;
  decoder.Feed(wire);
  proto::Frame frame;
  Status error;
  FUZZ_CHECK(decoder.Next(&frame, &error) == proto::FrameDecoder::Result::kFrame);
  proto::ResumeEntries parsed;
  Status ps = proto::ParseResume(frame.payload, &parsed);
  if (!ps.ok()) std::fprintf(stderr, "LB rejects the RESUME: %s\n", ps.ToString().c_str());
  FUZZ_CHECK(ps.ok());
  FUZZ_CHECK(parsed == entries);

  // The worker saves its snapshot; loading the file again gives the same résumé.
  const std::string& saved = ScratchPath("saved");
  FUZZ_CHECK(worker::SaveResumeFile(saved, snapshot).ok());
  std::map<std::string, double> again;
  Status ls = worker::LoadResumeFile(saved, &again);
  std::remove(saved.c_str());
  if (!ls.ok()) std::fprintf(stderr, "saved resume does not load: %s\n", ls.ToString().c_str());
  FUZZ_CHECK(ls.ok());
  FUZZ_CHECK(again.size() == snapshot.size());
  for (const auto& [cls, score] : snapshot) {
    auto it = again.find(cls);
    FUZZ_CHECK(it != again.end());
    FUZZ_CHECK(NearlyEqual(it->second, score));
  }
}

// ------------------------------------------------------------------ 5-8: ZooKeeper JSON
// zkresumelb's settings node: ParseLbSettingsJson (zk_discovery.h), then the pool.
void FuzzLbSettings(const std::string& data) {
  auto parsed = lb::ParseLbSettingsJson(data);
  if (!parsed.ok()) {
    FUZZ_CHECK(!parsed.status().message().empty());
    return;
  }
  const lb::PoolSettings& settings = parsed->settings;
  FUZZ_CHECK(settings.variance > 0 && std::isfinite(settings.variance));
  FUZZ_CHECK(settings.backlog_history >= 1 && std::isfinite(settings.unskilled_score));
  FUZZ_CHECK(parsed->sources.size() == 3);
  for (const auto& [name, source] : parsed->sources) {
    FUZZ_CHECK(source == "default" || source == "zookeeper");
    // A rejected setting is not taken from ZooKeeper.
    FUZZ_CHECK(!(source == "zookeeper" && parsed->rejected.count(name)));
  }
  for (const auto& [name, reason] : parsed->rejected) {
    FUZZ_CHECK((parsed->sources.count(name) == 1 || name == "disabled") && !reason.empty());
  }
  // Disabled workers are addresses, and a rejected list disables none.
  for (const auto& name : parsed->disabled) FUZZ_CHECK(ParseHostPort(name).ok());
  FUZZ_CHECK(!(parsed->rejected.count("disabled") && !parsed->disabled.empty()));
  auto pool = lb::NewResumePool(lb::PoolSettings{}, false);
  pool->UpdateSettings(settings);
}

// A provider node's version: ParseWorkerVersion (zk_discovery.h), then the pool.
void FuzzWorkerNode(const std::string& data) {
  std::optional<std::string> version = lb::ParseWorkerVersion(data);
  // Workers grouped by version, as single-version mode does.
  auto pool = lb::NewClasslessPool(true);
  auto w = std::make_shared<lb::PoolWorker>("127.0.0.1:1", version);
  pool->NewResume(w, {});
  FUZZ_CHECK(pool->size() == 1);
  FUZZ_CHECK(pool->Status().active_version == version);
  pool->Remove(w);
}

// zkworker's settings node: ParseWorkerSettingsJson (resume_tracker.h), then the tracker.
void FuzzWorkerSettings(const std::string& data) {
  auto parsed = worker::ParseWorkerSettingsJson(data, worker::WorkerSettings{});
  if (!parsed.ok()) {
    FUZZ_CHECK(!parsed.status().message().empty());
    return;
  }
  int history = parsed->settings.history;
  int max_skill_age = parsed->settings.max_skill_age;
  FUZZ_CHECK(history >= 1 && history <= 1000000000);
  FUZZ_CHECK(max_skill_age == 0 || (max_skill_age >= 1 && max_skill_age <= 1000000000));
  worker::ResumeTracker tracker(worker::kDefaultHistory, 0);
  tracker.UpdateSettings(history, max_skill_age);
  FUZZ_CHECK(tracker.history() == history);
  FUZZ_CHECK(tracker.max_skill_age() >= 1);
  FUZZ_CHECK(tracker.decay() >= 0 && tracker.decay() < 1);
  for (int i = 0; i < 3; ++i) tracker.Record(i ? "/a" : "/b", 0.01);
  for (const auto& [cls, score] : tracker.Entries()) FUZZ_CHECK(std::isfinite(score) && score > 0);
}

void CheckNormalized(const std::string& p) {
  FUZZ_CHECK(!p.empty() && p[0] == '/');
  FUZZ_CHECK(p == "/" || p.back() != '/');
  FUZZ_CHECK(p.find("//") == std::string::npos);
  for (std::string_view part : Split(std::string_view(p).substr(1), '/')) {
    FUZZ_CHECK(part != "." && part != "..");
  }
  FUZZ_CHECK(NormalizeZkPath(p) == p);  // idempotent
}

// A zc.zk symbolic link "NAME ->": ZkLinkTarget (zk_session.h). Input: parent path, name
// and the parent's JSON data, one per line.
void FuzzZkLink(std::string_view in) {
  auto lines = Split(in, '\n');
  if (lines.size() < 3) return;
  std::string parent = NormalizeZkPath(std::string(lines[0]));
  CheckNormalized(parent);
  std::string name(lines[1]);
  std::string_view data = in.substr(lines[0].size() + lines[1].size() + 2);
  if (auto resolved = ZkLinkTarget(parent, name, data)) CheckNormalized(*resolved);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Keep glog quiet: the code under test logs rejected settings at INFO/WARNING.
  FLAGS_minloglevel = 2;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t selector = data[0];
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (selector % 9) {
    case 0: FuzzClassifier(in); break;
    case 1: FuzzCommandLine(in, selector & 0x80); break;
    case 2: FuzzPoolSettings(in); break;
    case 3: FuzzHostPort(in); break;
    case 4: FuzzResumeFile(in); break;
    case 5: FuzzLbSettings(std::string(in)); break;
    case 6: FuzzWorkerNode(std::string(in)); break;
    case 7: FuzzWorkerSettings(std::string(in)); break;
    case 8: FuzzZkLink(in); break;
  }
  return 0;
}
