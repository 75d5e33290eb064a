// AppThreadPool: a plain job queue with a fixed set of threads.
#include "zkworker/app_thread_pool.h"

#include <chrono>

namespace rlb::worker {

AppThreadPool::AppThreadPool(int threads) : thread_count_(threads) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
}

AppThreadPool::~AppThreadPool() { Stop(); }

void AppThreadPool::Submit(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

size_t AppThreadPool::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return jobs_.size();
}

int AppThreadPool::busy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return running_;
}

bool AppThreadPool::WaitIdle(double seconds) {
  std::unique_lock<std::mutex> lock(mu_);
  return idle_cv_.wait_for(lock, std::chrono::duration<double>(seconds),
                           [this] { return running_ == 0 && jobs_.empty(); });
}

void AppThreadPool::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void AppThreadPool::Run() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping and drained
      job = std::move(jobs_.front());
      jobs_.pop_front();
      ++running_;
    }
    job();
    {
      std::lock_guard<std::mutex> lock(mu_);
      --running_;
    }
    idle_cv_.notify_all();
  }
}

}  // namespace rlb::worker
