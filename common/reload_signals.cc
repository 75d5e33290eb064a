// ReloadSignals: three unreferenced uv_signal_t handles.
#include "common/reload_signals.h"

#include <csignal>
#include <cstring>

#include <glog/logging.h>

namespace rlb {

ReloadSignals::ReloadSignals(uv_loop_t* loop, std::function<void()> on_hangup)
    : on_hangup_(std::move(on_hangup)) {
  for (auto [handle, signum] : {std::pair{&hangup_, SIGHUP}, std::pair{&user1_, SIGUSR1},
                                std::pair{&user2_, SIGUSR2}}) {
    // These fail only on invalid arguments: a failure is a bug.
    CHECK_EQ(handle->Init(loop, this), 0);
    CHECK_EQ(uv_signal_start(handle->get(), &OnSignal, signum), 0);
    uv_unref(handle->handle());  // the server's own handles decide when the loop ends
  }
}

void ReloadSignals::OnSignal(uv_signal_t* handle, int signum) {
  auto* self = static_cast<ReloadSignals*>(handle->data);
  if (signum != SIGHUP) {
    VLOG(1) << "ignoring signal " << signum << " (" << strsignal(signum) << ")";
    return;
  }
  LOG(INFO) << "received SIGHUP: reopening log files";
  if (self->on_hangup_) self->on_hangup_();
}

void ReloadSignals::Close() {
  hangup_.Close();
  user1_.Close();
  user2_.Close();
}

}  // namespace rlb
