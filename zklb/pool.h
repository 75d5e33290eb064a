// The worker pool: the LB's choice of which worker serves a request.
//
// A Pool tracks the workers that have sent a résumé, chooses a worker for each request
// class (Get), and counts in-flight requests per worker (Get/Put). Two implementations:
//   * NewResumePool: the résumé-based algorithm of zc.resumelb's lb.Pool (resume_pool.h);
//   * NewClasslessPool: least-backlog balancing that ignores classes (classless_pool.h).
// Both support single-version mode (only the largest version group receives work), which
// lives in PoolBase below, as in the original's PoolBase.
//
// The algorithm, its formulas and the worked scenarios are specified in docs/design.md
// ("The résumé pool"); the original's bugs are fixed, not reproduced (docs/design.md,
// "Kept and fixed behaviours").
//
// Thread rules: pools and PoolWorker bookkeeping belong to the LB's event-loop thread. No
// method is thread-safe; the LB calls them all from its loop thread only.
#ifndef RESUMELB_ZKLB_POOL_H_
#define RESUMELB_ZKLB_POOL_H_

#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/status.h"

namespace rlb::lb {

class PoolWorker;
using PoolWorkerPtr = std::shared_ptr<PoolWorker>;
// A worker's résumé: request class -> score (decayed requests per second).
using Resume = std::unordered_map<std::string, double>;

// How many request classes the résumé pool tracks (docs/design.md, "Bounded classes").
// An entry is one (worker, class) pair: a class of a worker's résumé or a class the LB
// assigned to it. Class names are at most kMaxClassNameBytes (zklb/class_name.h).
struct ClassLimits {
  // Entries one worker may hold. A résumé with more keeps its best-scoring classes; an
  // assignment to a full worker first drops that worker's least recently seen entry.
  size_t per_worker = 8192;
  // Entries of all active workers together, whatever their number; past it the least
  // recently seen entry of the whole pool is dropped. REQUIRES: total >= per_worker >= 1.
  size_t total = 32768;
};

// Bounds a résumé as the pool keeps it: classes longer than kMaxClassNameBytes are dropped
// (the LB sends a long class as its shorter stand-in, zklb/class_name.h, so a longer name
// can never be asked for), and if more than `max_classes` remain, only the `max_classes`
// best-scoring are kept (equal scores: the smaller name first). O(size); a résumé within
// both bounds is left untouched.
void BoundResume(Resume* resume, size_t max_classes);

// Per-worker state the pool keeps. Owned via shared_ptr by both the pool and the LB's
// connection object, so a Put() after Remove() is valid (in-flight requests drain).
// A PoolWorker may be given to one pool only. The counters survive removal and re-adding
// (single-version flapping, docs/design.md "Single-version mode"), so a re-added worker
// keeps its backlog.
//
// Thread rules: loop thread only, like the pool that owns it.
class PoolWorker {
 public:
  PoolWorker(std::string name, std::optional<std::string> version);
  PoolWorker(const PoolWorker&) = delete;
  PoolWorker& operator=(const PoolWorker&) = delete;

  const std::string& name() const { return name_; }  // "host:port"
  // The software version the worker registered with; nullopt is a version group of its own.
  const std::optional<std::string>& version() const { return version_; }
  int backlog() const { return backlog_; }         // in-flight requests
  double mbacklog() const { return mbacklog_; }    // decayed mean backlog (classless: backlog)
  // The last résumé, including LB-assigned unskilled entries. Empty for the classless pool.
  const Resume& resume() const { return resume_; }
  bool in_pool() const { return in_pool_; }       // currently eligible (in the active set)
  // A 64-bit hash of name(): where its points are on the placement ring (same on every LB).
  uint64_t name_hash() const { return name_hash_; }


 private:
  friend class LruList;
  friend class PoolBase;
  friend class ResumePool;
  friend class ClasslessPool;
  friend class BalancedPool;

  // Applies one backlog sample: the event-weighted moving average (docs/design.md,
  // "Backlog accounting").
  void Decay(double decay);

  const std::string name_;
  const std::optional<std::string> version_;
  const uint64_t name_hash_;
  int backlog_ = 0;
  double dbacklog_ = 0;  // decayed sum of backlog samples
  double nbacklog_ = 0;  // decayed sample count; 0 means never sampled
  double mbacklog_ = 0;  // dbacklog_ / nbacklog_
  Resume resume_;
  bool in_pool_ = false;
  // LRU bookkeeping (valid while in_pool_). lru_seq_ strictly increases from the LRU head
  // to the tail, so "nearer the head" is one integer comparison.
  std::list<PoolWorkerPtr>::iterator lru_pos_;
  int64_t lru_seq_ = 0;
};

// Pool settings. A missing key in the mapping they are parsed from means the default.
struct PoolSettings {
  // How far (in multiples of the pool's mean backlog per worker) a skilled worker's decayed
  // backlog may rise above the least-recently-used worker's before it is skipped. Higher:
  // classes stick to fewer workers; lower: work spreads out. Pool default 1.0 (the resumelb
  // CLI passes 4.0). Must be > 0.
  double variance = 1.0;
  // Roughly how many requests the per-worker backlog average covers; the pool's covers
  // backlog_history * nworkers. Must be >= 1.
  int backlog_history = 9;
  // The score given to a worker that is assigned a class it has no score for.
  double unskilled_score = 1.0;
};

// Parses a settings mapping as ZooKeeper or the CLI give it. Each value is the text of a
// number; coercion follows the original's (docs/design.md, "Settings and decay"): variance
// and unskilled_score as float(), backlog_history as int() of the number, truncating
// ("6.2" -> 6, "7" -> 7). Surrounding whitespace is allowed. A missing key gives the
// default; unknown keys are ignored.
// On success sets *out and returns OK. On error returns InvalidArgument naming the key
// (non-numeric, NaN or infinite values, backlog_history < 1 or too large, variance <= 0)
// and leaves *out untouched.
Status ParsePoolSettings(const std::map<std::string, std::string>& raw, PoolSettings* out);

// What the status server reports (docs/operations.md, "Status").
struct PoolStatus {
  int backlog = 0;  // in-flight requests, including those of removed workers
  // Resume pool: the pool's decayed TOTAL backlog (not per worker).
  // Classless pool: backlog / nworkers as a double, NaN if there are no workers.
  double mean_backlog = 0;
  struct Worker {
    std::string name;
    int backlog;
    double mbacklog;
    size_t resume_size;
  };
  std::vector<Worker> workers;  // active workers, sorted by name
  std::optional<std::string> active_version;  // single-version mode, once a version is active
  bool single_version = false;
};

// Where the résumé pool puts a class that no eligible worker is skilled in
// (docs/design.md, "Placing new classes").
enum class ClassPlacement {
  // The least recently used worker, as zc.resumelb does (`--pool=classic`). Each LB has its
  // own LRU order, so several LBs place the same new class on different workers.
  kLeastRecentlyUsed,
  // Consistent hashing with bounded load (`--pool=resume`, the default): the first worker
  // within the backlog bound clockwise from the class on a ring of the worker names' hash
  // points. Every LB that knows the same workers makes the same first choice, and the same
  // next one, without talking to the others.
  kHashRing,
};

// The pool interface the LB is written against. One instance, used only on the LB's
// event-loop thread (not thread-safe).
class Pool {
 public:
  virtual ~Pool() = default;
  // Chooses a worker for the class and counts one more request on it; nullptr if the pool
  // is empty. Every non-null result must be matched by exactly one Put().
  virtual PoolWorkerPtr Get(std::string_view request_class) = 0;
  // One request dispatched by Get() has finished with `worker` (valid even after Remove()).
  // REQUIRES: a Get() that returned `worker` has not yet been matched by a Put().
  virtual void Put(const PoolWorkerPtr& worker) = 0;
  // A résumé arrived; the first one adds the worker (subject to single-version rules).
  virtual void NewResume(const PoolWorkerPtr& worker, Resume resume) = 0;
  // The worker is gone. Harmless for unknown workers. Its in-flight requests stay counted
  // in backlog() until they are Put().
  virtual void Remove(const PoolWorkerPtr& worker) = 0;
  // Replaces all settings (absent keys were already defaulted by ParsePoolSettings).
  // REQUIRES: settings are valid (as ParsePoolSettings guarantees).
  virtual void UpdateSettings(const PoolSettings& settings) = 0;
  virtual const PoolSettings& settings() const = 0;
  virtual int backlog() const = 0;
  virtual size_t size() const = 0;  // active workers
  virtual PoolStatus Status() const = 0;
  virtual std::string DebugString() const = 0;  // docs/design.md "Debug format"; for tests
  // Where classes no eligible worker is skilled in go from now on (pools that place
  // classes; the others ignore it). Classes already placed stay where they are.
  virtual void SetClassPlacement(ClassPlacement) {}
  // "lru", "ring", or "" for pools that do not place classes (the status document).
  virtual const char* ClassPlacementName() const { return ""; }
};

// REQUIRES: settings are valid.
std::unique_ptr<Pool> NewResumePool(const PoolSettings& settings, bool single_version,
                                    ClassPlacement placement = ClassPlacement::kLeastRecentlyUsed);
std::unique_ptr<Pool> NewClasslessPool(bool single_version);

// ---------------------------------------------------------------------------------------
// Building blocks shared by the implementations.

// The LRU line of active workers: head = least recently chosen, tail = most recently.
// Holds a reference to each member. All operations O(1).
// Thread rules: loop thread only.
class LruList {
 public:
  bool empty() const { return list_.empty(); }
  size_t size() const { return list_.size(); }
  PoolWorker* front() const { return list_.front().get(); }
  // Inserts at the head; the worker's sequence becomes smaller than every other member's.
  // REQUIRES: the worker is not in any LruList.
  void PushFront(const PoolWorkerPtr& worker);
  // Marks the worker as the most recently used. REQUIRES: worker is a member.
  void MoveToBack(PoolWorker* worker);
  // REQUIRES: worker is a member. Drops the list's reference.
  void Erase(PoolWorker* worker);
  std::list<PoolWorkerPtr>::const_iterator begin() const { return list_.begin(); }
  std::list<PoolWorkerPtr>::const_iterator end() const { return list_.end(); }

 private:
  std::list<PoolWorkerPtr> list_;
  int64_t head_seq_ = 0;  // the last sequence given at the head (decreasing)
  int64_t tail_seq_ = 0;  // the last sequence given at the tail (increasing)
};

// Formats a double as Python 2's str(float) does ("%.12g", plus ".0" when it looks
// integral), which is what the debug format prints (docs/design.md, "Debug format").
std::string PyFloatStr(double value);
// "None" for nullopt, else the version text.
std::string VersionStr(const std::optional<std::string>& version);

// Single-version logic (docs/design.md, "Single-version mode") shared by both pools, like
// the original's PoolBase.
//
// In single-version mode workers are grouped by version(); nullopt is a group of its own.
// The first worker's group becomes active ("no active version yet" is a separate state).
// Only the active group's workers are in the pool. When another group becomes strictly
// larger than the active one, the active workers are dropped (their counters are kept)
// and the new group's workers are added with their last résumés, so that the LRU line
// then lists them in ascending name order from the head. Ties keep the current version.
// Among several equally large challengers, the smallest version (nullopt first) wins.
//
// Thread rules: loop thread only.
class PoolBase : public Pool {
 public:
  void NewResume(const PoolWorkerPtr& worker, Resume resume) final;
  void Remove(const PoolWorkerPtr& worker) final;
  size_t size() const final { return lru_.size(); }
  int backlog() const final { return backlog_; }

  bool single_version() const { return single_version_; }
  // True once a version is active (single-version mode only).
  bool has_active_version() const { return has_active_version_; }
  // REQUIRES: has_active_version().
  const std::optional<std::string>& active_version() const { return active_version_; }

 protected:
  explicit PoolBase(bool single_version) : single_version_(single_version) {}

  // Adds the worker (at the LRU head, keeping its counters) or replaces its résumé: the
  // original's _new_resume. Logs "new resume: <name>".
  virtual void DoNewResume(const PoolWorkerPtr& worker, Resume resume) = 0;
  // Takes the worker out of the active set: the original's _remove. Does not reduce the
  // pool backlog. Harmless if the worker is not in the pool.
  virtual void DoRemove(const PoolWorkerPtr& worker) = 0;
  // Whether an inactive worker's résumé is kept for its activation (classless: no).
  virtual bool KeepsResumes() const { return true; }
  // The most classes an inactive worker's kept résumé may hold (see BoundResume).
  virtual size_t MaxClassesPerWorker() const { return SIZE_MAX; }

  // The "Version: ..." and "  Inactive: ..." lines of the debug format (empty unless
  // single-version). Inactive members are listed in ascending name order.
  std::string VersionLines() const;
  // The status document both pools share: the given pool backlogs, the active workers in
  // name order, and the version fields.
  PoolStatus BaseStatus(int backlog, double mean_backlog) const;

  // The end every Get() shares: `worker` goes to the LRU tail and counts one more request,
  // on itself and on the pool. Returns the caller's reference to it.
  PoolWorkerPtr CountGet(PoolWorker* worker);
  // The start every Put() shares: checks that a Get() matches it, then counts one request
  // less on the worker and on the pool.
  void CountPut(PoolWorker* worker);

  LruList lru_;  // the active workers
  int backlog_ = 0;  // in-flight requests, including removed workers' ones

 private:
  using Group = std::unordered_set<PoolWorkerPtr>;
  size_t GroupSize(const std::optional<std::string>& version) const;
  void UpdateQuorum();

  const bool single_version_;
  bool has_active_version_ = false;
  std::optional<std::string> active_version_;
  // Every known worker (active or not) by version; empty groups are erased.
  std::map<std::optional<std::string>, Group> by_version_;
};

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_POOL_H_
