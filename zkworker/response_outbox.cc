// ResponseOutbox: the queue between application threads and the loop's socket writes.
#include "zkworker/response_outbox.h"

#include <sys/socket.h>

#include <cerrno>
#include <utility>

namespace rlb::worker {

bool ResponseOutbox::Refuses(const AbandonedFn& abandoned) {
  return closed_ || (abandoned && abandoned());
}

size_t ResponseOutbox::SendDirect(const std::string& frames) {
  for (;;) {
    ssize_t n = ::send(fd_, frames.data(), frames.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) return 0;
  }
}

ResponseOutbox::Pushed ResponseOutbox::Append(std::string&& frames) {
  Pushed result;
  result.queued = true;
  if (fd_ >= 0 && pending_.empty() && in_flight_ == 0 && !flush_scheduled_) {
    size_t sent = SendDirect(frames);
    direct_bytes_ += sent;
    if (sent == frames.size()) return result;
    frames.erase(0, sent);
  }
  if (pending_.empty()) {
    pending_ = std::move(frames);
  } else {
    pending_.append(frames);
  }
  if (!flush_scheduled_) {
    flush_scheduled_ = true;
    result.flush_needed = true;
  }
  return result;
}

ResponseOutbox::Pushed ResponseOutbox::Push(std::string&& frames, const AbandonedFn& abandoned) {
  MutexLock lock(&mu_);
  if (Refuses(abandoned)) return Pushed{};
  return Append(std::move(frames));
}

ResponseOutbox::Pushed ResponseOutbox::PushWhenRoom(std::string&& frames,
                                                    const AbandonedFn& abandoned) {
  MutexLock lock(&mu_);
  ++waiting_;
  while (!Refuses(abandoned) && pending_.size() + in_flight_ > high_water_) room_.Wait(&mu_);
  --waiting_;
  if (Refuses(abandoned)) return Pushed{};
  return Append(std::move(frames));
}

ResponseOutbox::Pushed ResponseOutbox::TryPush(std::string&& frames,
                                               const AbandonedFn& abandoned) {
  MutexLock lock(&mu_);
  if (Refuses(abandoned)) return Pushed{};
  if (pending_.size() + in_flight_ > high_water_) {
    Pushed result;
    result.must_wait = true;
    return result;
  }
  return Append(std::move(frames));
}

void ResponseOutbox::AttachSocket(int fd) {
  MutexLock lock(&mu_);
  if (!closed_) fd_ = fd;
}

std::string ResponseOutbox::Take() {
  MutexLock lock(&mu_);
  flush_scheduled_ = false;
  std::string out;
  out.swap(pending_);
  in_flight_ += out.size();
  return out;
}

void ResponseOutbox::WriteDone(size_t bytes) {
  {
    MutexLock lock(&mu_);
    in_flight_ -= bytes;
  }
  room_.SignalAll();
}

void ResponseOutbox::Wake() {
  // Taking the lock orders the caller's earlier store (the one its AbandonedFn reads)
  // before a waiter's next check: a waiter is either before its check (and sees it) or
  // already blocked (and gets this signal).
  { MutexLock lock(&mu_); }
  room_.SignalAll();
}

void ResponseOutbox::Close() {
  {
    MutexLock lock(&mu_);
    closed_ = true;
    fd_ = -1;
    pending_.clear();
  }
  room_.SignalAll();
}

size_t ResponseOutbox::direct_bytes() {
  MutexLock lock(&mu_);
  return direct_bytes_;
}

size_t ResponseOutbox::waiting_producers() {
  MutexLock lock(&mu_);
  return waiting_;
}

}  // namespace rlb::worker
