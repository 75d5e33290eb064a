// Mutex, MutexLock and CondVar: std::mutex and std::condition_variable with the clang
// thread-safety annotations of common/thread_annotations.h, so that members declared
// GUARDED_BY(mu_) are checked by -Wthread-safety (std::mutex itself carries none).
//
// Thread rules: any thread (they are the synchronization). Not copyable.
#ifndef RESUMELB_COMMON_ANNOTATED_MUTEX_H_
#define RESUMELB_COMMON_ANNOTATED_MUTEX_H_

#include <condition_variable>
#include <mutex>

#include "common/thread_annotations.h"

namespace rlb {

class CondVar;

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds a Mutex for its scope.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// A condition variable used with one Mutex. Wait with the predicate in the caller's code
// (`while (!ready_) cv_.Wait(&mu_);`) so the analysis sees the guarded reads.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Releases `mu` while blocked; holds it again on return (spurious wake-ups happen).
  void Wait(Mutex* mu) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();  // the caller still owns the mutex
  }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace rlb

#endif  // RESUMELB_COMMON_ANNOTATED_MUTEX_H_
