// ResumePool: the résumé-based pool (zc.resumelb's lb.Pool); the algorithm and its formulas
// are in docs/design.md, "The résumé pool".
//
// Each worker's résumé maps request classes to scores. Get(class) prefers the skilled
// worker with the best score divided by its in-flight backlog (undivided for backlog <= 1),
// skipping workers whose decayed backlog is too far above the least-recently-used
// worker's; with no eligible skilled worker it assigns the class to the LRU head at
// unskilled_score. Ties go to the worker nearer the LRU head.
//
// Costs: Get is O(workers skilled in the class) and creates no per-class state unless a
// worker is assigned; Put is O(1); NewResume/Remove are O(résumé size). Class entries that
// become empty are erased, so per-class memory is bounded by the current résumés (the
// original kept them forever, a memory DoS through Host headers; docs/design.md, "Kept and
// fixed behaviours").
//
// Thread rules: loop thread only (see pool.h).
#ifndef RESUMELB_ZKLB_RESUME_POOL_H_
#define RESUMELB_ZKLB_RESUME_POOL_H_

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "zklb/pool.h"

namespace rlb::lb {

class ResumePool final : public PoolBase {
 public:
  // REQUIRES: settings are valid.
  ResumePool(const PoolSettings& settings, bool single_version);
  ResumePool(const ResumePool&) = delete;
  ResumePool& operator=(const ResumePool&) = delete;

  PoolWorkerPtr Get(std::string_view request_class) override;
  void Put(const PoolWorkerPtr& worker) override;
  void UpdateSettings(const PoolSettings& settings) override;
  const PoolSettings& settings() const override { return settings_; }
  PoolStatus Status() const override;
  std::string DebugString() const override;

  double mbacklog() const { return mbacklog_; }          // decayed TOTAL backlog
  double worker_decay() const { return worker_decay_; }  // 1 - 1/(2*backlog_history)
  double decay() const { return decay_; }                // 1 - 1/(2*backlog_history*n)
  size_t class_count() const { return skilled_.size(); }
  // Number of (score, worker) entries the last Get examined. For complexity tests.
  size_t entries_scanned_for_test() const { return entries_scanned_; }

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  // The workers skilled in one class and their scores.
  using ClassEntry = std::unordered_map<PoolWorker*, double>;

  void DoNewResume(const PoolWorkerPtr& worker, Resume resume) override;
  void DoRemove(const PoolWorkerPtr& worker) override;
  void UnindexResume(PoolWorker* worker);
  void UpdateDecay();

  PoolSettings settings_;
  double worker_decay_ = 0;
  double decay_ = 0;
  // Pool-level backlog counters (docs/design.md, "Backlog accounting"); the pool backlog
  // includes removed workers' requests.
  double dbacklog_ = 0;
  double nbacklog_ = 0;
  double mbacklog_ = 0;
  std::unordered_map<std::string, ClassEntry, StringHash, std::equal_to<>> skilled_;
  size_t entries_scanned_ = 0;
};

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_RESUME_POOL_H_
