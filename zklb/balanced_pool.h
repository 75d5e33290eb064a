// BalancedPool: the résumé pool with capacity-aware bounds (`--pool=balanced`); the rule,
// why each part is there and its parameters are in docs/design.md, "The balanced pool".
//
// Like the classic ResumePool it keeps classes on the workers whose résumés list them, but:
//   * a worker's share of the in-flight requests is scaled by its own measured speed
//     (1 / mean time a request spends in flight on it, a time-decayed average): share =
//     (B + 1) / n * speed / mean speed, B the active workers' in-flight requests;
//   * a class goes to its most senior skilled worker (the one that acquired it first) while
//     that worker holds at most max(min_backlog, (1 + slack) * share), else to the skilled
//     worker with the shortest expected wait, (backlog + 1) / speed, up to
//     (1 + recruit_slack) * share;
//   * a worker idle on average (new, or left with little) takes over a class whose holder
//     has been busy on average, becoming its most senior holder: new workers get work and
//     load rebalances by moving classes, not splitting them;
//   * past every skilled worker's recruiting bound, one more worker is recruited among the
//     first `recruit_candidates` of the LRU line (or, with ring placement, of the class's
//     order on the consistent-hash ring, so that independent LBs agree): the least loaded
//     relative to its bound, ties to the one nearer the head.
//
// Class memory is bounded as the classic pool's (ClassLimits): a résumé keeps its
// per_worker best-scoring classes; a worker given a class while it holds per_worker drops
// its least recently asked-for one; past `total` entries in all, the least recently asked-for
// classes are forgotten (every holder's entry).
//
// Costs: Get is O(workers skilled in the class + recruit_candidates) and creates per-class
// state only when it assigns a class; Put is O(1); NewResume/Remove are O(résumé size).
//
// Time: the pool reads a clock (seconds, monotonic) at each Get and Put; tests and the
// simulator inject theirs.
//
// Thread rules: loop thread only (see pool.h).
#ifndef RESUMELB_ZKLB_BALANCED_POOL_H_
#define RESUMELB_ZKLB_BALANCED_POOL_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "zklb/placement_ring.h"
#include "zklb/pool.h"

namespace rlb::lb {

// The balanced pool's own parameters (not settable through ZooKeeper yet; the shared
// PoolSettings' unskilled_score is used, variance and backlog_history are ignored).
struct BalancedParams {
  // How far above its capacity share of the in-flight requests a worker may go before a
  // class it is skilled in looks elsewhere. Must be >= 0.
  double slack = 0.1;
  // How far above its share a worker skilled in the class may go, when its more senior
  // peers are at their bound, before the class is given to one more worker. A cold worker
  // pays misses, so recruiting needs a clearly longer queue than spreading. Must be >= slack.
  double recruit_slack = 3.0;
  // Requests a worker may always hold, whatever its share (a worker runs several at once;
  // below this there is no queueing to avoid). Must be >= 1.
  double min_backlog = 2;
  // Time constant, in seconds, of the speed measurement. Must be > 0.
  double rate_window = 2.0;
  // LRU-head workers examined when a class must be given to one more worker. Must be >= 1.
  int recruit_candidates = 8;
  // A worker whose time-averaged backlog is below this fraction of its share is under-used
  // (new, or left with too little): it may take over a class whose skilled workers are all
  // past their tight bound. 0 turns takeovers off. Must be in [0, 1].
  double takeover_below = 0.4;
};

// A monotonic clock in seconds.
using PoolClock = std::function<double()>;

class BalancedPool final : public PoolBase {
 public:
  // REQUIRES: settings and params are valid; clock is monotonic.
  BalancedPool(const PoolSettings& settings, const BalancedParams& params, bool single_version,
               PoolClock clock, ClassLimits limits = {});
  BalancedPool(const BalancedPool&) = delete;
  BalancedPool& operator=(const BalancedPool&) = delete;

  PoolWorkerPtr Get(std::string_view request_class) override;
  void Put(const PoolWorkerPtr& worker) override;
  void UpdateSettings(const PoolSettings& settings) override { settings_ = settings; }
  const PoolSettings& settings() const override { return settings_; }
  // mean_backlog is the active workers' backlog / n (NaN when empty); a worker's mbacklog
  // is its backlog.
  PoolStatus Status() const override;
  // [version lines] "Request classes:" ("  cls: name(score,backlog), ..." sorted by score,
  // then name), "Workers:" ("  name: backlog B speed S bound L" in name order).
  std::string DebugString() const override;

  // kHashRing: workers are recruited for a class (and take classes over) in the class's
  // order on the consistent-hash ring of worker names instead of from the LRU head, so
  // that independent LBs in front of the same workers pick the same ones.
  void SetClassPlacement(ClassPlacement placement) override { placement_ = placement; }
  const char* ClassPlacementName() const override {
    return placement_ == ClassPlacement::kHashRing ? "ring" : "lru";
  }

  const BalancedParams& params() const { return params_; }
  size_t class_count() const { return skilled_.size(); }
  // (worker, class) entries of the active workers; at most limits().total.
  size_t entry_count() const { return entries_; }
  const ClassLimits& limits() const { return limits_; }
  // The measured speed (requests per second in flight) the bound uses for `worker`; the
  // prior (mean of the measured ones, or 1) while it has none. REQUIRES: worker in the pool.
  double SpeedOf(const PoolWorker& worker) const;
  // The most requests `worker` may hold before its classes look elsewhere.
  double BoundOf(const PoolWorker& worker) const;
  // (score, worker) entries plus LRU candidates the last Get examined. For complexity tests.
  size_t entries_scanned_for_test() const { return entries_scanned_; }

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  // A worker's skill in one class: its score and when it acquired the class (a pool-wide
  // sequence; smaller is more senior).
  struct Skill {
    double score;
    int64_t since;
  };
  // The workers skilled in one class, and the class's place in class_lru_.
  struct ClassEntry {
    std::unordered_map<PoolWorker*, Skill> holders;
    std::list<const std::string*>::iterator lru;
  };
  using ClassMap = std::unordered_map<std::string, ClassEntry, StringHash, std::equal_to<>>;
  // A worker's speed measurement: time-decayed completions over time-decayed
  // request-seconds in flight (Little's law: their ratio is 1 / mean time in flight).
  struct Meter {
    double last = 0;       // clock at the last update
    double done = 0;       // decayed completions
    double area = 0;       // decayed integral of the backlog over time
    double speed = 0;      // done / area once measured, else 0
  };

  void DoNewResume(const PoolWorkerPtr& worker, Resume resume) override;
  void DoRemove(const PoolWorkerPtr& worker) override;
  size_t MaxClassesPerWorker() const override { return limits_.per_worker; }
  void UnindexResume(PoolWorker* worker);
  // Brings the meter to now (backlog as it was since the last update), then counts
  // `completed` completions.
  void Advance(PoolWorker* worker, Meter& meter, double now, int completed);
  // The meter's decayed backlog integral brought to `now`, the backlog having been
  // `backlog` since its last update; *decay is the factor applied to older history.
  double AreaAt(const Meter& meter, int backlog, double now, double* decay) const;
  double MeanSpeed() const;
  // The worker's backlog averaged over about the last rate_window seconds, brought to
  // `now` (its backlog has been constant since its meter's last update). A worker that
  // joined less than rate_window ago counts the time before it joined as idle.
  double AverageBacklog(const PoolWorker& worker, double now) const;
  // The in-flight requests the worker's speed entitles it to: (B + 1) / n * speed / mean,
  // B the active workers' in-flight requests (this one's included).
  double Share(const PoolWorker& worker, double mean_speed) const;
  double Bound(const PoolWorker& worker, double mean_speed) const;
  // The workers examined when the class must go to a worker not yet skilled in it: the
  // first recruit_candidates of the LRU line, or (kHashRing) the first distinct workers
  // clockwise from the class on the ring.
  void Candidates(std::string_view request_class, std::vector<PoolWorker*>* out);

  PoolSettings settings_;
  const BalancedParams params_;
  ClassPlacement placement_ = ClassPlacement::kLeastRecentlyUsed;
  PlacementRing ring_;
  std::vector<PoolWorker*> candidates_;  // scratch for Get
  const PoolClock clock_;
  int active_backlog_ = 0;     // in-flight requests of the active workers
  double measured_sum_ = 0;    // sum of the measured speeds of active workers
  int measured_count_ = 0;     // active workers with a measured speed
  std::unordered_map<PoolWorker*, Meter> meters_;  // active workers
  // Gives `worker` the class at unskilled_score with seniority `since`, making room within
  // the class limits first (the worker's least recently asked-for class, then the pool's).
  // Returns the class's entry. REQUIRES: the worker does not hold the class.
  ClassMap::iterator Assign(std::string_view request_class, PoolWorker* worker, int64_t since);
  // Adds (or, for a holder, updates) one holder of a class; a new class is the most
  // recently asked-for.
  ClassMap::iterator AddHolder(std::string_view request_class, PoolWorker* worker, Skill skill);
  // Drops one holder; a class left with none is forgotten. Not the worker's résumé.
  void DropHolder(ClassMap::iterator cls, PoolWorker* worker);
  // Forgets a class: its entry and every holder's résumé entry.
  void EvictClass(ClassMap::iterator cls);
  // Evicts the least recently asked-for classes (never `keep`) until the pool holds at most
  // `room` entries.
  void EvictDownTo(size_t room, const std::string* keep);

  const ClassLimits limits_;
  ClassMap skilled_;
  std::list<const std::string*> class_lru_;  // classes, least recently asked for first
  size_t entries_ = 0;  // (worker, class) entries of the active workers
  int64_t since_ = 0;   // the last seniority given to a worker that joins a class
  int64_t first_ = 0;   // the last seniority given to a worker that takes a class over
  size_t entries_scanned_ = 0;
};

// The balanced pool on the steady clock.
std::unique_ptr<Pool> NewBalancedPool(const PoolSettings& settings, const BalancedParams& params,
                                      bool single_version, ClassLimits limits = {});

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_BALANCED_POOL_H_
