// LoopMailbox: a mutex-protected closure queue drained by a uv_async_t callback.
#include "common/loop_mailbox.h"

#include <glog/logging.h>

namespace rlb {

LoopMailbox::LoopMailbox(uv_loop_t* loop) {
  int rc = async_.Init(loop, this, &LoopMailbox::OnAsync);
  CHECK_EQ(rc, 0) << "uv_async_init: " << uv_strerror(rc);
}

LoopMailbox::~LoopMailbox() { Close(); }

void LoopMailbox::Post(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return;
  queue_.push_back(std::move(fn));
  // Coalesces. Under mu_: Close() sets closed_ under mu_ before it closes the handle.
  int rc = uv_async_send(async_.get());
  CHECK_EQ(rc, 0) << "uv_async_send: " << uv_strerror(rc);
}

void LoopMailbox::OnAsync(uv_async_t* handle) {
  if (auto* self = static_cast<LoopMailbox*>(handle->data)) self->Drain();
}

void LoopMailbox::Drain() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(queue_);
  }
  for (auto& fn : batch) fn();
}

void LoopMailbox::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    closed_ = true;
    queue_.clear();
  }
  async_.Close();  // no Post() reaches the handle any more: closed_ is set
}

}  // namespace rlb
