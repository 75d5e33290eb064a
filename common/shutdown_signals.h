// ShutdownSignals: SIGTERM and SIGINT on a libuv loop, delivered once to a callback that
// starts a graceful shutdown. The callback must eventually call Close() (typically when
// the drain is done) so that the loop can end. Thread rules: loop thread only.
#ifndef RESUMELB_COMMON_SHUTDOWN_SIGNALS_H_
#define RESUMELB_COMMON_SHUTDOWN_SIGNALS_H_

#include <uv.h>

#include <functional>

#include "common/uv_handle.h"

namespace rlb {

class ShutdownSignals {
 public:
  ShutdownSignals(uv_loop_t* loop, std::function<void(int signum)> on_signal);
  ~ShutdownSignals() = default;  // closes the handles
  ShutdownSignals(const ShutdownSignals&) = delete;
  ShutdownSignals& operator=(const ShutdownSignals&) = delete;
  // Stops listening; the loop can then end. Idempotent.
  void Close();

 private:
  static void OnSignal(uv_signal_t* handle, int signum);
  UvHandle<uv_signal_t> term_;
  UvHandle<uv_signal_t> int_;
  std::function<void(int)> on_signal_;
  bool fired_ = false;
};

}  // namespace rlb

#endif  // RESUMELB_COMMON_SHUTDOWN_SIGNALS_H_
