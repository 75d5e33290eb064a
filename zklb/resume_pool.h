// ResumePool: the résumé-based pool (zc.resumelb's lb.Pool); the algorithm and its formulas
// are in docs/design.md, "The résumé pool".
//
// Each worker's résumé maps request classes to scores. Get(class) prefers the skilled
// worker with the best score divided by its in-flight backlog (undivided for backlog <= 1),
// skipping workers whose decayed backlog is too far above the least-recently-used
// worker's; with no eligible skilled worker it assigns the class at unskilled_score to the
// LRU head (ClassPlacement::kLeastRecentlyUsed, the original) or to the first worker within
// the backlog bound clockwise from the class on a consistent-hash ring of the worker names
// (kHashRing, so that independent LBs agree).
// Ties go to the worker nearer the LRU head.
//
// Costs: Get is O(workers skilled in the class), plus O(log workers) when it places a class
// on the ring (and the ring points it walks past busy workers), and creates no per-class state unless a
// worker is assigned; Put is O(1); NewResume/Remove are O(résumé size). Class entries that
// become empty are erased, so per-class memory is bounded by the current résumés (the
// original kept them forever, a memory DoS through Host headers; docs/design.md, "Kept and
// fixed behaviours").
//
// Bounded classes (docs/design.md, "Bounded classes"): class names are bounded by
// BoundClassName (zklb/class_name.h), in Get and in résumés alike; each active worker holds
// at most ClassLimits::per_worker entries and all of them together at most
// ClassLimits::total, the least recently seen entry being dropped first. An entry is seen
// when it is created (résumé or assignment) and whenever Get chooses its worker for its
// class. Within the limits, every decision is the original's.
//
// Thread rules: loop thread only (see pool.h).
#ifndef RESUMELB_ZKLB_RESUME_POOL_H_
#define RESUMELB_ZKLB_RESUME_POOL_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "zklb/placement_ring.h"
#include "zklb/pool.h"

namespace rlb::lb {

class ResumePool final : public PoolBase {
 public:
  // REQUIRES: settings are valid; limits.total >= limits.per_worker >= 1.
  ResumePool(const PoolSettings& settings, bool single_version, ClassLimits limits = {},
             ClassPlacement placement = ClassPlacement::kLeastRecentlyUsed);
  ResumePool(const ResumePool&) = delete;
  ResumePool& operator=(const ResumePool&) = delete;

  PoolWorkerPtr Get(std::string_view request_class) override;
  void Put(const PoolWorkerPtr& worker) override;
  void UpdateSettings(const PoolSettings& settings) override;
  const PoolSettings& settings() const override { return settings_; }
  PoolStatus Status() const override;
  std::string DebugString() const override;
  void SetClassPlacement(ClassPlacement placement) override { placement_ = placement; }
  const char* ClassPlacementName() const override {
    return placement_ == ClassPlacement::kHashRing ? "ring" : "lru";
  }

  double mbacklog() const { return mbacklog_; }          // decayed TOTAL backlog
  double worker_decay() const { return worker_decay_; }  // 1 - 1/(2*backlog_history)
  double decay() const { return decay_; }                // 1 - 1/(2*backlog_history*n)
  size_t class_count() const { return skilled_.size(); }
  // (worker, class) entries of the active workers; at most limits().total.
  size_t entry_count() const { return seen_.size(); }
  const ClassLimits& limits() const { return limits_; }
  // Number of (score, worker) entries the last Get examined. For complexity tests.
  size_t entries_scanned_for_test() const { return entries_scanned_; }

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  // One (worker, class) entry. Entries live in seen_, least recently seen first.
  struct Skill;
  using SkillRef = std::list<Skill>::iterator;
  struct Skill {
    PoolWorker* worker;
    const std::string* name;  // the key of its class in skilled_
    double score;
    std::list<SkillRef>::iterator in_worker;  // its place in worker_seen_[worker]
  };
  // The workers skilled in one class and their scores.
  using ClassEntry = std::vector<SkillRef>;

  void DoNewResume(const PoolWorkerPtr& worker, Resume resume) override;
  void DoRemove(const PoolWorkerPtr& worker) override;
  size_t MaxClassesPerWorker() const override { return limits_.per_worker; }
  void UnindexResume(PoolWorker* worker);
  // The first worker clockwise from the class's point on the placement ring whose decayed
  // backlog is within the bound Get computed. O(log ring) plus the points walked past.
  PoolWorker* RingChoice(std::string_view request_class, double min_backlog,
                         double max_backlog) const;
  // Gives the worker the class at unskilled_score, making room within the class limits.
  // REQUIRES: the worker has no entry for the class.
  void Assign(PoolWorker* worker, std::string_view request_class);
  // Adds an entry as the most recently seen. REQUIRES: the worker has none for the class.
  void Index(PoolWorker* worker, const std::string& name, double score);
  // Drops an entry from the index and from its worker's résumé.
  void Evict(SkillRef skill);
  // Marks an entry as the most recently seen.
  void Touch(SkillRef skill);
  void UpdateDecay();

  PoolSettings settings_;
  double worker_decay_ = 0;
  double decay_ = 0;
  // Pool-level backlog counters (docs/design.md, "Backlog accounting"); the pool backlog
  // includes removed workers' requests.
  double dbacklog_ = 0;
  double nbacklog_ = 0;
  double mbacklog_ = 0;
  const ClassLimits limits_;
  ClassPlacement placement_;
  mutable PlacementRing ring_;  // kHashRing's placement
  std::unordered_map<std::string, ClassEntry, StringHash, std::equal_to<>> skilled_;
  std::list<Skill> seen_;  // every entry, least recently seen first
  // Each active worker's entries, least recently seen first.
  std::unordered_map<PoolWorker*, std::list<SkillRef>> worker_seen_;
  mutable size_t entries_scanned_ = 0;
};

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_RESUME_POOL_H_
