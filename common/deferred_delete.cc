// DeferredDeleter: a check-phase sweep; the idle handle only stops poll from blocking.
#include "common/deferred_delete.h"

namespace rlb {

DeferredDeleter::DeferredDeleter(uv_loop_t* loop) {
  CHECK_EQ(check_.Init(loop, this), 0);
  CHECK_EQ(idle_.Init(loop, this), 0);
  CHECK_EQ(uv_check_start(check_.get(),
                          [](uv_check_t* h) { static_cast<DeferredDeleter*>(h->data)->Sweep(); }),
           0);
  // The check handle must not keep the loop alive by itself.
  uv_unref(check_.handle());
}

DeferredDeleter::~DeferredDeleter() {
  Close();
  Sweep();
}

void DeferredDeleter::DeferErased(std::shared_ptr<void> object) {
  queue_.push_back(std::move(object));
  if (idle_.open() && !uv_is_active(idle_.handle())) {
    CHECK_EQ(uv_idle_start(idle_.get(), [](uv_idle_t*) {}), 0);
  }
}

void DeferredDeleter::Sweep() {
  while (!queue_.empty()) {
    std::vector<std::shared_ptr<void>> batch;
    batch.swap(queue_);
    batch.clear();  // destructors may Defer() more: the loop takes those too
  }
  if (idle_.open()) uv_idle_stop(idle_.get());
}

void DeferredDeleter::Close() {
  check_.Close();
  idle_.Close();
}

}  // namespace rlb
