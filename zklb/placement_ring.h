// PlacementRing: the consistent-hash ring of the active workers' names on which the résumé
// pools place classes nobody is skilled in when several load balancers share the workers
// (ClassPlacement::kHashRing; docs/design.md, "Placing new classes"). Every LB that sees the
// same workers builds the same ring, so it walks the same workers in the same order for a
// class: their choices agree without talking to each other.
//
// Cost: a walk is O(log points) plus the points walked past; the ring is rebuilt lazily,
// O(n log n), at the first walk after the membership changed (a burst of joins costs one
// rebuild).
//
// Thread rules: loop thread only, as its pool.
#ifndef RESUMELB_ZKLB_PLACEMENT_RING_H_
#define RESUMELB_ZKLB_PLACEMENT_RING_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "zklb/pool.h"

namespace rlb::lb {

class PlacementRing {
 public:
  // Points per worker: with 100, a worker's share of the classes is within about ±10 % of
  // 1/n, as with HAProxy's and nginx's consistent hashing.
  static constexpr int kPointsPerWorker = 100;

  // The membership changed: the next walk rebuilds the ring from the workers it is given.
  void MarkDirty() { dirty_ = true; }

  // Visits the ring's points clockwise from the class's position, at most one turn, and
  // returns the first worker for which `stop` returns true (nullptr after a whole turn or
  // on an empty ring). A worker with several points is visited at each of them. `workers`
  // are the active workers (used when the ring must be rebuilt).
  // A template, not std::function: placing must not allocate.
  template <typename Stop>
  PoolWorker* Walk(std::string_view request_class, const LruList& workers, Stop&& stop) {
    const size_t start = Start(request_class, workers);
    for (size_t walked = 0; walked < points_.size(); ++walked) {
      PoolWorker* w = points_[(start + walked) % points_.size()].worker;
      if (stop(w)) return w;
    }
    return nullptr;
  }

 private:
  // Rebuilds the ring if the membership changed; the index of the first point at or
  // after the class's position (points_.size() wraps to 0 in Walk).
  size_t Start(std::string_view request_class, const LruList& workers);
  struct Point {
    uint64_t point;
    PoolWorker* worker;
  };
  void Rebuild(const LruList& workers);

  std::vector<Point> points_;
  bool dirty_ = true;
};

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_PLACEMENT_RING_H_
