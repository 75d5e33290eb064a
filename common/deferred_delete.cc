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

void DeferredDeleter::DeferErased(Erased object) {
  queue_.push_back(std::move(object));
  if (idle_.open() && !uv_is_active(idle_.handle())) {
    CHECK_EQ(uv_idle_start(idle_.get(), [](uv_idle_t*) {}), 0);
  }
}

void DeferredDeleter::Sweep() {
  if (!queue_.empty()) {
    std::vector<Erased> batch;  // the lists trade places and keep their capacity
    batch.swap(spare_);
    while (!queue_.empty()) {
      batch.swap(queue_);
      batch.clear();  // destructors may Defer() more: the loop takes those too
    }
    spare_.swap(batch);
  }
  if (idle_.open()) uv_idle_stop(idle_.get());
}

void DeferredDeleter::Close() {
  check_.Close();
  idle_.Close();
}

}  // namespace rlb
