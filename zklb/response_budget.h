// ResponseBudget: the process-wide budget for response bytes the LB holds for slow clients,
// in memory and in temp files (docs/security.md, "Worst case"). ResponseBuffers reserve
// from it as they store bytes and give back as they release them; when memory is used up
// they spill to disk sooner, and when disk is used up too the LB stops reading from the
// worker (the slow client then holds its worker) instead of failing other requests.
//
// Thread rules: loop thread only.
#ifndef RESUMELB_ZKLB_RESPONSE_BUDGET_H_
#define RESUMELB_ZKLB_RESPONSE_BUDGET_H_

#include <cstddef>
#include <cstdint>

namespace rlb::lb {

class ResponseBudget {
 public:
  ResponseBudget(uint64_t memory_limit, uint64_t disk_limit)
      : memory_limit_(memory_limit), disk_limit_(disk_limit) {}

  // Reserves `n` bytes if they fit; false leaves the budget unchanged.
  bool TryMemory(uint64_t n) { return Try(&memory_used_, memory_limit_, n); }
  bool TryDisk(uint64_t n) { return Try(&disk_used_, disk_limit_, n); }
  // Bytes held over budget (a read that had to land somewhere): counted, never refused.
  void ForceMemory(uint64_t n) { memory_used_ += n; }
  void ReleaseMemory(uint64_t n) { memory_used_ -= n; }
  void ReleaseDisk(uint64_t n) { disk_used_ -= n; }

  uint64_t memory_used() const { return memory_used_; }
  uint64_t disk_used() const { return disk_used_; }
  uint64_t memory_limit() const { return memory_limit_; }
  uint64_t disk_limit() const { return disk_limit_; }

 private:
  static bool Try(uint64_t* used, uint64_t limit, uint64_t n) {
    if (*used + n > limit) return false;
    *used += n;
    return true;
  }
  const uint64_t memory_limit_, disk_limit_;
  uint64_t memory_used_ = 0, disk_used_ = 0;
};

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_RESPONSE_BUDGET_H_
