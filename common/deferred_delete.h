// DeferredDeleter: the one lifetime rule of every event loop in this project.
//
// An object is never destroyed inside one of its own callbacks or methods: code that wants
// an object gone (a connection that failed mid-write, an exchange that finished inside a
// frame handler) hands it here, and it is destroyed after the current callback has returned,
// from the loop's check phase of the same iteration (an idle handle keeps the loop from
// blocking in between). This is Redis's freeClientAsync/beforeSleep and Envoy's
// deferredDelete. Objects are still in their final state until then: callers check their
// own "closed" state after any call that can end them.
//
// Thread rules: loop thread only.
#ifndef RESUMELB_COMMON_DEFERRED_DELETE_H_
#define RESUMELB_COMMON_DEFERRED_DELETE_H_

#include <uv.h>

#include <memory>
#include <vector>

#include "common/uv_handle.h"

namespace rlb {

class DeferredDeleter {
 public:
  explicit DeferredDeleter(uv_loop_t* loop);
  ~DeferredDeleter();  // frees whatever is still queued
  DeferredDeleter(const DeferredDeleter&) = delete;
  DeferredDeleter& operator=(const DeferredDeleter&) = delete;

  // Destroys `object` after the current callback returns. After Close(), objects are freed
  // by the destructor instead (shutdown).
  template <typename T>
  void Defer(std::unique_ptr<T> object) {
    if (!object) return;
    DeferErased(Erased(object.release(), [](void* p) { delete static_cast<T*>(p); }));
  }

  // Frees everything queued now (also what destructors queue meanwhile).
  void Sweep();
  size_t pending() const { return queue_.size(); }
  // Closes the loop handles so the loop can end.
  void Close();

 private:
  // An object with its type's deleter (no allocation, unlike a shared_ptr<void>).
  using Erased = std::unique_ptr<void, void (*)(void*)>;
  void DeferErased(Erased object);
  UvHandle<uv_check_t> check_;
  UvHandle<uv_idle_t> idle_;
  std::vector<Erased> queue_;
  std::vector<Erased> spare_;  // the batch being freed, kept for its capacity
};

}  // namespace rlb

#endif  // RESUMELB_COMMON_DEFERRED_DELETE_H_
