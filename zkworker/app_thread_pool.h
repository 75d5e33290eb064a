// AppThreadPool: the N threads that run the WSGI application (the `threads` option).
//
// The event loop submits one job per request; a job runs entirely on one pool thread (the
// app call, the body iteration and close()), taking the GIL only while in Python.
// Thread rules: Submit(), queued(), threads() and busy() from any thread; Stop() once, from
// the thread that constructed it.
#ifndef RESUMELB_ZKWORKER_APP_THREAD_POOL_H_
#define RESUMELB_ZKWORKER_APP_THREAD_POOL_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace rlb::worker {

class AppThreadPool {
 public:
  explicit AppThreadPool(int threads);
  ~AppThreadPool();
  void Submit(std::function<void()> job);
  // Runs the queued jobs, then joins every thread.
  void Stop();
  // Waits up to `seconds` for every thread to be idle with nothing queued.
  bool WaitIdle(double seconds);
  size_t queued() const;
  // The threads, and those running a job now (for the metrics).
  int threads() const { return thread_count_; }
  int busy() const;

 private:
  void Run();
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;  // guarded by mu_
  bool stopping_ = false;                   // guarded by mu_
  int running_ = 0;                         // guarded by mu_: jobs being run
  std::condition_variable idle_cv_;
  std::vector<std::thread> threads_;
  const int thread_count_;
};

}  // namespace rlb::worker

#endif  // RESUMELB_ZKWORKER_APP_THREAD_POOL_H_
