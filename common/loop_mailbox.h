// LoopMailbox: how other threads hand work to a libuv loop.
//
// Post() queues a closure from any thread and wakes the loop through a uv_async_t; the loop
// runs the closures in order, on its own thread. This is the only way a ZooKeeper callback
// or a Python application thread reaches loop-owned state.
//
// Thread rules: Post() is safe from any thread, including the loop's own. Construct, Close()
// and destroy on the loop thread. Closures posted after Close() are dropped.
#ifndef RESUMELB_COMMON_LOOP_MAILBOX_H_
#define RESUMELB_COMMON_LOOP_MAILBOX_H_

#include <uv.h>

#include <functional>
#include <mutex>
#include <vector>

#include "common/uv_handle.h"

namespace rlb {

class LoopMailbox {
 public:
  explicit LoopMailbox(uv_loop_t* loop);
  ~LoopMailbox();  // Close()
  LoopMailbox(const LoopMailbox&) = delete;
  LoopMailbox& operator=(const LoopMailbox&) = delete;

  void Post(std::function<void()> fn);
  // Stops accepting work and closes the async handle (the loop can then exit).
  void Close();

 private:
  static void OnAsync(uv_async_t* handle);
  void Drain();

  std::mutex mu_;
  UvHandle<uv_async_t> async_;  // open until Close(); other threads touch it under mu_ only
  std::vector<std::function<void()>> queue_;  // guarded by mu_
  bool closed_ = false;                       // guarded by mu_
};

}  // namespace rlb

#endif  // RESUMELB_COMMON_LOOP_MAILBOX_H_
