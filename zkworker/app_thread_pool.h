// AppThreadPool: the N threads that run the WSGI application (the `threads` option).
//
// The event loop submits one job per request; a job runs entirely on one pool thread (the
// app call, the body iteration and close()), holding the GIL while in Python.
//
// Hand-off: a thread with nothing to do sleeps on a POSIX semaphore, counted in sleeping_;
// Submit() queues the job and posts the semaphore only if a thread sleeps and no wake-up
// is already on its way to it, so while the threads are busy a request costs the loop no
// system call. Not a std::condition_variable: glibc marks the mutex contended when a
// woken waiter re-takes it, so every request would cost the woken thread one more futex
// call at its next unlock. Not std::atomic::wait or std::counting_semaphore: libstdc++
// spins on sched_yield before it sleeps (measured: 2.5 sched_yield per request).
//
// Thread rules: Submit() from any thread; Stop() once, from the thread that constructed it.
#ifndef RESUMELB_ZKWORKER_APP_THREAD_POOL_H_
#define RESUMELB_ZKWORKER_APP_THREAD_POOL_H_

#include <semaphore.h>

#include <condition_variable>
#include <cstdint>
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
  // How many of up to `n` sleeping threads to wake: those no wake-up is on its way to,
  // counted as waking. REQUIRES: mu_ held. Post() that many after unlocking (a thread
  // woken while mu_ is still held would block on it at once).
  int WakeLocked(int n);
  void Post(int n);

  mutable std::mutex mu_;
  std::deque<std::function<void()>> jobs_;  // guarded by mu_
  bool stopping_ = false;                   // guarded by mu_
  int running_ = 0;                         // guarded by mu_: jobs being run
  int sleeping_ = 0;                        // guarded by mu_: threads in sem_wait (or about to)
  int waking_ = 0;                          // guarded by mu_: posts they have not taken yet
  // One post per wake-up. A post made between a thread's check (under mu_) and its
  // sem_wait is kept by the semaphore, so it is never missed.
  sem_t wake_;
  std::condition_variable idle_cv_;  // WaitIdle() (shutdown only)
  std::vector<std::thread> threads_;
  const int thread_count_;
};

}  // namespace rlb::worker

#endif  // RESUMELB_ZKWORKER_APP_THREAD_POOL_H_
