// LoopLagMonitor: how late the event loop runs what is due — the latency every callback on
// this loop adds. A repeating timer notes, each tick, how long after its due time it ran;
// the largest lag of the last window and the latest one are reported (status document,
// tests that attack the LB assert it stays small).
//
// It does not keep the loop alive (the timer is unref'd). Thread rules: loop thread only.
#ifndef RESUMELB_COMMON_LOOP_LAG_H_
#define RESUMELB_COMMON_LOOP_LAG_H_

#include <uv.h>

#include <array>
#include <cstdint>

#include "common/uv_handle.h"

namespace rlb {

class LoopLagMonitor {
 public:
  // Ticks every `interval_ms`; "recent" covers the last kWindow ticks.
  explicit LoopLagMonitor(uv_loop_t* loop, uint64_t interval_ms = 100);
  LoopLagMonitor(const LoopLagMonitor&) = delete;
  LoopLagMonitor& operator=(const LoopLagMonitor&) = delete;

  double last_ms() const { return last_ms_; }
  // The largest lag over the last kWindow ticks (10 s at the default interval).
  double recent_max_ms() const;
  // The largest lag since start.
  double max_ms() const { return max_ms_; }
  void Close() { timer_.Close(); }

  static constexpr size_t kWindow = 100;

 private:
  static void OnTick(uv_timer_t* t);
  UvHandle<uv_timer_t> timer_;
  uint64_t interval_ns_;
  double due_ms_ = 0;  // loop time (uv_now, ms) the next tick is due
  double last_ms_ = 0;
  double max_ms_ = 0;
  std::array<double, kWindow> window_{};
  size_t next_ = 0;
};

}  // namespace rlb

#endif  // RESUMELB_COMMON_LOOP_LAG_H_
