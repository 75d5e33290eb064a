// ClasslessPool: least-backlog balancing that ignores request classes, résumés and
// settings (zc.resumelb's classlesspool.ClasslessPool; docs/design.md, "The classless pool").
//
// Get() returns the active worker with the smallest in-flight backlog; ties go to the one
// nearer the LRU head (so a worker with backlog 0 nearest the head wins outright). There
// is no decay: a worker's mbacklog() equals its backlog(). Unlike the original, a worker
// re-added after a single-version switch keeps its backlog (docs/design.md, "Kept and
// fixed behaviours").
//
// Costs: Get is O(active workers); Put is O(1); NewResume/Remove are O(1).
//
// Thread rules: loop thread only (see pool.h).
#ifndef RESUMELB_ZKLB_CLASSLESS_POOL_H_
#define RESUMELB_ZKLB_CLASSLESS_POOL_H_

#include <string>
#include <string_view>

#include "zklb/pool.h"

namespace rlb::lb {

class ClasslessPool final : public PoolBase {
 public:
  explicit ClasslessPool(bool single_version) : PoolBase(single_version) {}
  ClasslessPool(const ClasslessPool&) = delete;
  ClasslessPool& operator=(const ClasslessPool&) = delete;

  PoolWorkerPtr Get(std::string_view request_class) override;
  void Put(const PoolWorkerPtr& worker) override;
  // Stored for settings(), otherwise ignored.
  void UpdateSettings(const PoolSettings& settings) override { settings_ = settings; }
  const PoolSettings& settings() const override { return settings_; }
  // mean_backlog is backlog / nworkers (true division; the original's Python 2 integer
  // division is not reproduced), NaN when there are no workers.
  PoolStatus Status() const override;
  // [version lines] "Backlogs:", "  overall backlog: B Avg: A", "  n: [names]" lines.
  std::string DebugString() const override;

 private:
  void DoNewResume(const PoolWorkerPtr& worker, Resume resume) override;
  void DoRemove(const PoolWorkerPtr& worker) override;
  bool KeepsResumes() const override { return false; }

  PoolSettings settings_;
};

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_CLASSLESS_POOL_H_
