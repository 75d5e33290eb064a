// Deliberately wrong locking, for check_thread_safety.sh: clang's -Wthread-safety must
// reject this file (a guarded member written without its mutex). Never built or linked.
#include "common/annotated_mutex.h"

namespace {

class Counter {
 public:
  void Increment() { ++count_; }  // missing MutexLock lock(&mu_);

 private:
  rlb::Mutex mu_;
  int count_ GUARDED_BY(mu_) = 0;
};

}  // namespace

void UseCounter() {
  Counter c;
  c.Increment();
}
