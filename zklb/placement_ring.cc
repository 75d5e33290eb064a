// PlacementRing: consistent-hash ring of worker names (placement_ring.h).
#include "zklb/placement_ring.h"

#include <algorithm>

#include "zklb/class_name.h"

namespace rlb::lb {

namespace {

// splitmix64's finaliser: spreads a 64-bit hash (FNV-1a's low bits are weak) over the ring.
uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

void PlacementRing::Rebuild(const LruList& workers) {
  points_.clear();
  points_.reserve(workers.size() * kPointsPerWorker);
  for (const PoolWorkerPtr& worker : workers) {
    for (uint64_t j = 0; j < kPointsPerWorker; ++j) {
      points_.push_back({Mix64(worker->name_hash() + j * 0x9e3779b97f4a7c15ull), worker.get()});
    }
  }
  // Equal points (never seen with 64 bits, but possible): the smaller name first, so that
  // every LB has the same ring.
  std::sort(points_.begin(), points_.end(), [](const Point& a, const Point& b) {
    return a.point != b.point ? a.point < b.point : a.worker->name() < b.worker->name();
  });
  dirty_ = false;
}

size_t PlacementRing::Start(std::string_view request_class, const LruList& workers) {
  if (dirty_) Rebuild(workers);
  const uint64_t position = Mix64(Fnv1a64(request_class));
  return std::lower_bound(points_.begin(), points_.end(), position,
                          [](const Point& p, uint64_t v) { return p.point < v; }) -
         points_.begin();
}

}  // namespace rlb::lb
