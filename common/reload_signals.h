// ReloadSignals: the signals operators send a running server that must not end it.
//
//   SIGHUP            calls `on_hangup` (the servers reopen their log files, so logrotate
//                     can rename them and have the next line go to a new file; systemd's
//                     `systemctl reload` sends it through ExecReload)
//   SIGUSR1, SIGUSR2  caught and ignored (logged at verbosity 1): by default either one
//                     would end the process, and a stray `kill -USR1` must not
//
// Only SIGTERM and SIGINT (common/shutdown_signals.h) end a server gracefully. The signals
// are caught with libuv handlers, not SIG_IGN, so child processes an application starts
// get the default dispositions back at exec.
//
// Thread rules: loop thread only. Close() before the loop ends.
#ifndef RESUMELB_COMMON_RELOAD_SIGNALS_H_
#define RESUMELB_COMMON_RELOAD_SIGNALS_H_

#include <uv.h>

#include <functional>

#include "common/uv_handle.h"

namespace rlb {

class ReloadSignals {
 public:
  // Starts catching the signals; the handles do not keep the loop alive.
  ReloadSignals(uv_loop_t* loop, std::function<void()> on_hangup);
  ~ReloadSignals() = default;  // closes the handles
  ReloadSignals(const ReloadSignals&) = delete;
  ReloadSignals& operator=(const ReloadSignals&) = delete;

  // Stops catching: the default dispositions are back (SIGHUP ends the process again).
  void Close();

 private:
  static void OnSignal(uv_signal_t* handle, int signum);

  std::function<void()> on_hangup_;
  UvHandle<uv_signal_t> hangup_;
  UvHandle<uv_signal_t> user1_;
  UvHandle<uv_signal_t> user2_;
};

}  // namespace rlb

#endif  // RESUMELB_COMMON_RELOAD_SIGNALS_H_
