// ResumeTracker: the worker's skill measurement (its résumé), exactly as zc.resumelb
// computes it (docs/design.md, "The worker's résumé").
//
// Per request class it keeps a decayed service time and a decayed request count; the score
// is count / time, i.e. requests per second. Decay is lazy: one factor of
// decay = 1 - 1/history per request of ANY class since the class was last updated.
// Every `history` requests the classes unseen for more than max_skill_age requests are
// pruned and Record() says it is time to send the résumé to every LB.
//
// Past the original: the class names it holds are bounded (max_class_bytes, by default one
// RESUME frame's worth, 16 MiB). Clients choose classes (the Host header by default), and
// without a bound a flood of distinct 4 KiB classes would cost a worker ~400 MB before the
// max_skill_age pruning caught up. When a new class takes it over the bound, the classes
// seen least recently are dropped until a quarter of the bound is free (so the cost is
// amortized); a deployment never near the bound sees exactly the original's résumé.
//
// Thread rules: internally synchronized; Record() is called from application threads,
// the rest from the event loop.
#ifndef RESUMELB_ZKWORKER_RESUME_TRACKER_H_
#define RESUMELB_ZKWORKER_RESUME_TRACKER_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/frame_codec.h"
#include "common/status.h"

namespace rlb::worker {

constexpr int kDefaultHistory = 9999;
constexpr size_t kDefaultMaxClassBytes = proto::kMaxPayload;

class ResumeTracker {
 public:
  // max_skill_age <= 0 means the default, 10 * history. max_class_bytes bounds the total
  // length of the class names held.
  ResumeTracker(int history, int max_skill_age,
                size_t max_class_bytes = kDefaultMaxClassBytes);

  // Applies new settings (history >= 1). max_skill_age <= 0 means 10 * history (at most
  // INT_MAX).
  void UpdateSettings(int history, int max_skill_age);
  int history() const;
  int max_skill_age() const;
  double decay() const;

  // Seeds the résumé from a saved one. Each class keeps its saved score on its next request:
  // it is weighted as `history` requests at that rate (the original weighted the time as one
  // request and the count as `history`, so a reloaded score jumped by a factor of history).
  void Load(const std::map<std::string, double>& saved);

  // Records one completed request of `request_class` that took `elapsed` seconds. Returns
  // true when the résumé should be sent now (every `history` requests, after pruning).
  bool Record(const std::string& request_class, double elapsed);

  // The current résumé, sorted by class.
  std::map<std::string, double> Snapshot() const;
  proto::ResumeEntries Entries() const;
  // How many classes Snapshot() holds, counted without copying them (for the metrics).
  size_t classes() const;
  uint64_t generation() const;
  // Total length of the class names held, and how many classes were dropped to respect
  // max_class_bytes (for the log and tests).
  size_t class_bytes() const;
  uint64_t evicted() const;

 private:
  struct ClassStats {
    uint64_t generation;  // when last updated
    double time;          // decayed total service time
    double count;         // decayed request count
    double loaded = 0;    // a score loaded from the file, reported exactly until updated
  };
  // The class's score in the résumé; nullopt: not in it (no time measured yet).
  static std::optional<double> Score(const ClassStats& stats);
  // Drops the least recently seen classes until class_bytes_ <= target. REQUIRES mu_.
  void EvictOldest(size_t target);
  // A copy of one field guarded by mu_, read under it (the one-value getters).
  template <typename T>
  T ReadLocked(const T& field) const {
    std::lock_guard<std::mutex> lock(mu_);
    return field;
  }

  mutable std::mutex mu_;
  const size_t max_class_bytes_;
  size_t class_bytes_ = 0;  // guarded by mu_
  uint64_t evicted_ = 0;    // guarded by mu_
  int history_;
  int max_skill_age_;
  double decay_;
  uint64_t generation_ = 0;
  std::unordered_map<std::string, ClassStats> stats_;  // guarded by mu_
};

// The worker's settings ZooKeeper can change while it runs.
struct WorkerSettings {
  int history = kDefaultHistory;
  int max_skill_age = 0;  // 0: 10 x history
  bool operator==(const WorkerSettings&) const = default;
};

// What the worker's ZooKeeper node says.
struct ParsedWorkerSettings {
  WorkerSettings settings;
  // Keys that are not settings of the worker, in the node's order (the caller warns).
  // zc.zk link properties ("NAME -> ") are not settings and never listed.
  std::vector<std::string> unknown_keys;
};

// Parses the worker settings in its ZooKeeper node's JSON data: history and max_skill_age
// (numbers or numeric strings from 1 to 1e9, truncated like Python's int()). A key that is
// missing or null takes its value from `fallback`: the worker's own settings (its command
// line and ini file, themselves the built-in defaults when not given there). Empty data
// means {}. InvalidArgument when the data is not a JSON object or a value is out of range.
StatusOr<ParsedWorkerSettings> ParseWorkerSettingsJson(std::string_view json,
                                                       const WorkerSettings& fallback);

// The résumé file is a JSON object {"class": score, ...}.
// Load: a missing file is an empty résumé (OK); an unreadable or corrupt one is an error the
// caller logs as a warning before starting empty.
Status LoadResumeFile(const std::string& path, std::map<std::string, double>* out);
// Writes atomically: a temp file in the same directory, fsync, then rename over `path`.
Status SaveResumeFile(const std::string& path, const std::map<std::string, double>& resume);

}  // namespace rlb::worker

#endif  // RESUMELB_ZKWORKER_RESUME_TRACKER_H_
