// LoopMailbox: a mutex-protected closure queue drained by a uv_async_t callback.
#include "common/loop_mailbox.h"

namespace rlb {

LoopMailbox::LoopMailbox(uv_loop_t* loop) : async_(new uv_async_t) {
  uv_async_init(loop, async_, &LoopMailbox::OnAsync);
  async_->data = this;
}

LoopMailbox::~LoopMailbox() { Close(); }

void LoopMailbox::Post(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return;
  queue_.push_back(std::move(fn));
  uv_async_send(async_);  // coalesces; safe while mu_ is held since Close() also takes it
}

void LoopMailbox::OnAsync(uv_async_t* handle) {
  static_cast<LoopMailbox*>(handle->data)->Drain();
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
    async_->data = nullptr;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(async_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
}

}  // namespace rlb
