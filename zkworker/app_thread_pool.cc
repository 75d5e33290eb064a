// AppThreadPool: a job queue with a fixed set of threads that sleep on a semaphore.
#include "zkworker/app_thread_pool.h"

#include <chrono>

namespace rlb::worker {

AppThreadPool::AppThreadPool(int threads) : thread_count_(threads) {
  sem_init(&wake_, 0, 0);
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
}

AppThreadPool::~AppThreadPool() {
  Stop();
  sem_destroy(&wake_);
}

int AppThreadPool::WakeLocked(int n) {
  // A busy thread finds the job when it is done; only a sleeping one needs a post.
  int wake = 0;
  for (; n > 0 && waking_ < sleeping_; --n, ++wake) ++waking_;
  return wake;
}

void AppThreadPool::Post(int n) {
  // A system call only if the thread already sleeps in the kernel.
  for (; n > 0; --n) sem_post(&wake_);
}

void AppThreadPool::Submit(std::function<void()> job) {
  int wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(std::move(job));
    wake = WakeLocked(1);
  }
  Post(wake);
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
  int wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    wake = WakeLocked(static_cast<int>(threads_.size()));
  }
  Post(wake);
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void AppThreadPool::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    while (jobs_.empty() && !stopping_) {
      ++sleeping_;
      lock.unlock();
      while (sem_wait(&wake_) != 0) {}  // EINTR only
      lock.lock();
      --sleeping_;
      --waking_;
    }
    if (jobs_.empty()) return;  // stopping and drained
    std::function<void()> job = std::move(jobs_.front());
    jobs_.pop_front();
    ++running_;
    lock.unlock();
    job();
    job = nullptr;  // the job's captures go before the thread counts as idle
    lock.lock();
    --running_;
    if (running_ == 0 && jobs_.empty()) idle_cv_.notify_all();
  }
}

}  // namespace rlb::worker
