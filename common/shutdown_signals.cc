// ShutdownSignals: two uv_signal_t handles sharing one once-only callback.
#include "common/shutdown_signals.h"

#include <csignal>

#include <glog/logging.h>

namespace rlb {

ShutdownSignals::ShutdownSignals(uv_loop_t* loop, std::function<void(int)> on_signal)
    : on_signal_(std::move(on_signal)) {
  for (auto [handle, signum] : {std::pair{&term_, SIGTERM}, std::pair{&int_, SIGINT}}) {
    uv_signal_init(loop, handle);
    handle->data = this;
    uv_signal_start(handle, &OnSignal, signum);
  }
}

void ShutdownSignals::OnSignal(uv_signal_t* handle, int signum) {
  auto* self = static_cast<ShutdownSignals*>(handle->data);
  if (self->fired_) return;
  self->fired_ = true;
  LOG(INFO) << "received signal " << signum << ": shutting down";
  uv_signal_stop(&self->term_);
  uv_signal_stop(&self->int_);
  self->on_signal_(signum);
}

void ShutdownSignals::Close() {
  if (closed_) return;
  closed_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&term_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&int_), nullptr);
}

}  // namespace rlb
