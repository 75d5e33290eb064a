// LoopLagMonitor: lag = when the tick ran (hrtime) - when it was due.
#include "common/loop_lag.h"

#include <algorithm>

namespace rlb {

LoopLagMonitor::LoopLagMonitor(uv_loop_t* loop, uint64_t interval_ms)
    : interval_ns_(interval_ms * 1000000) {
  CHECK_EQ(timer_.Init(loop, this), 0);
  uv_unref(timer_.handle());
  due_ms_ = static_cast<double>(uv_now(loop)) + static_cast<double>(interval_ns_) / 1e6;
  CHECK_EQ(uv_timer_start(timer_.get(), &OnTick, interval_ms, interval_ms), 0);
}

double LoopLagMonitor::recent_max_ms() const {
  return *std::max_element(window_.begin(), window_.end());
}

void LoopLagMonitor::OnTick(uv_timer_t* t) {
  auto* self = static_cast<LoopLagMonitor*>(t->data);
  if (self == nullptr) return;
  // libuv's timers run at loop-iteration granularity (uv_now is cached per iteration, in
  // ms), so a lag below a millisecond or so is noise; what matters is a blocked loop.
  double now_ms = static_cast<double>(uv_hrtime()) / 1e6;
  double lag = std::max(0.0, now_ms - self->due_ms_);
  self->last_ms_ = lag;
  self->max_ms_ = std::max(self->max_ms_, lag);
  self->window_[self->next_] = lag;
  self->next_ = (self->next_ + 1) % kWindow;
  // libuv reschedules a repeating timer one interval after this iteration's loop time.
  self->due_ms_ = static_cast<double>(uv_now(t->loop)) + static_cast<double>(self->interval_ns_) / 1e6;
}

}  // namespace rlb
