// ShutdownSignals: two uv_signal_t handles sharing one once-only callback.
#include "common/shutdown_signals.h"

#include <csignal>

#include <glog/logging.h>

namespace rlb {

ShutdownSignals::ShutdownSignals(uv_loop_t* loop, std::function<void(int)> on_signal)
    : on_signal_(std::move(on_signal)) {
  for (auto [handle, signum] : {std::pair{&term_, SIGTERM}, std::pair{&int_, SIGINT}}) {
    int rc = handle->Init(loop, this);
    CHECK_EQ(rc, 0) << "uv_signal_init: " << uv_strerror(rc);
    rc = uv_signal_start(handle->get(), &OnSignal, signum);
    CHECK_EQ(rc, 0) << "uv_signal_start(" << signum << "): " << uv_strerror(rc);
  }
}

void ShutdownSignals::OnSignal(uv_signal_t* handle, int signum) {
  auto* self = static_cast<ShutdownSignals*>(handle->data);
  if (self == nullptr || self->fired_) return;
  self->fired_ = true;
  LOG(INFO) << "received signal " << signum << ": shutting down";
  uv_signal_stop(self->term_.get());
  uv_signal_stop(self->int_.get());
  self->on_signal_(signum);
}

void ShutdownSignals::Close() {
  term_.Close();
  int_.Close();
}

}  // namespace rlb
