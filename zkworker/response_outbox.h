// ResponseOutbox: one load-balancer connection's outbound bytes, shared by the loop (which
// writes them to the socket) and the application threads (which produce responses).
//
// Flow control: an application thread producing a response waits in PushWhenRoom() while
// more than `high_water` bytes are queued or handed to uv_write and not yet written, so a
// slow load balancer slows the application down instead of growing memory. The loop never
// waits (Push()); TryPush() lets a producer holding the GIL find out, without waiting,
// whether it would have to.
//
// Direct writes (the hot path): once the loop has attached the socket (AttachSocket), a
// push that finds the outbox idle — nothing queued, nothing taken by the writer and not yet
// written, no flush due — writes its bytes to the socket itself, on the pushing thread,
// with a non-blocking send() under the outbox's mutex. What the kernel does not take is
// queued as usual and flush_needed asks for the loop. So a response usually leaves in one
// send() on the application thread, with no hand-off to the loop.
// Ownership of the socket's write side: whoever holds mu_ while the outbox is idle may
// send(); otherwise the loop's writer owns it, from Take() until WriteDone() has reported
// every taken byte. The loop honours this because every byte it writes goes through
// Take(); Close() (under mu_) detaches the socket before the loop closes it, so no
// producer ever writes to a closed or reused descriptor.
//
// Thread rules: any thread; internally synchronized. AttachSocket(), Take() and
// WriteDone() are the loop's (the writer's) side.
#ifndef RESUMELB_ZKWORKER_RESPONSE_OUTBOX_H_
#define RESUMELB_ZKWORKER_RESPONSE_OUTBOX_H_

#include <cstddef>
#include <functional>
#include <string>

#include "common/thread_annotations.h"
#include "common/annotated_mutex.h"

namespace rlb::worker {

class ResponseOutbox {
 public:
  // A producer's "give up" test (its request was cancelled). Evaluated with the outbox's
  // lock held: it must be quick and must not call back into the outbox.
  using AbandonedFn = std::function<bool()>;

  struct Pushed {
    bool queued = false;         // false: refused (closed or abandoned), nothing queued
    bool flush_needed = false;   // first bytes since the last Take(): the caller must get
                                 // the loop to Take() them (nobody else will)
    bool must_wait = false;      // TryPush(): over high water, nothing queued; use
                                 // PushWhenRoom()
  };

  explicit ResponseOutbox(size_t high_water) : high_water_(high_water) {}
  ResponseOutbox(const ResponseOutbox&) = delete;
  ResponseOutbox& operator=(const ResponseOutbox&) = delete;

  // Appends encoded frames without waiting, unless the outbox is closed or `abandoned`
  // (when given) returns true.
  Pushed Push(std::string&& frames, const AbandonedFn& abandoned = nullptr) EXCLUDES(mu_);
  // Like Push(), but first blocks while more than high_water bytes are queued or in flight.
  // Returns refused, without queueing, once `abandoned` returns true (after the canceller
  // called Wake()) or the outbox closes.
  Pushed PushWhenRoom(std::string&& frames, const AbandonedFn& abandoned) EXCLUDES(mu_);

  // Like PushWhenRoom(), but instead of waiting returns must_wait (nothing queued) while
  // more than high_water bytes are queued or in flight.
  Pushed TryPush(std::string&& frames, const AbandonedFn& abandoned) EXCLUDES(mu_);

  // Loop, once the connection is accepted: pushes may write to `fd` directly while the
  // outbox is idle (see above). REQUIRES: `fd` stays open until Close().
  void AttachSocket(int fd) EXCLUDES(mu_);

  // Writer: takes everything queued; it counts as in flight until WriteDone(its size).
  std::string Take() EXCLUDES(mu_);
  // Writer: `bytes` taken earlier have been written (or dropped); wakes waiting producers.
  void WriteDone(size_t bytes) EXCLUDES(mu_);

  // Wakes waiting producers so they re-evaluate `abandoned`: call it after making a
  // producer's AbandonedFn return true.
  void Wake() EXCLUDES(mu_);
  // Drops what is queued and refuses every later push; waiting producers return refused.
  // Detaches the socket: no producer writes to it afterwards.
  void Close() EXCLUDES(mu_);

  // Producers blocked in PushWhenRoom() right now (for tests).
  size_t waiting_producers() EXCLUDES(mu_);
  // Bytes producers wrote to the socket themselves (for tests).
  size_t direct_bytes() EXCLUDES(mu_);

 private:
  bool Refuses(const AbandonedFn& abandoned) REQUIRES(mu_);
  Pushed Append(std::string&& frames) REQUIRES(mu_);
  // Sends as much of `frames` as the socket takes now; returns how much it took (0 on
  // EAGAIN or an error, which the loop's writer then meets and reports).
  size_t SendDirect(const std::string& frames) REQUIRES(mu_);

  const size_t high_water_;
  Mutex mu_;
  CondVar room_;  // signalled when bytes are written, on Wake() and on Close()
  std::string pending_ GUARDED_BY(mu_);
  size_t in_flight_ GUARDED_BY(mu_) = 0;  // taken by the writer, WriteDone() not yet called
  bool flush_scheduled_ GUARDED_BY(mu_) = false;  // a Take() is due
  bool closed_ GUARDED_BY(mu_) = false;
  size_t waiting_ GUARDED_BY(mu_) = 0;
  int fd_ GUARDED_BY(mu_) = -1;  // the socket, for direct writes; -1: none (or closed)
  size_t direct_bytes_ GUARDED_BY(mu_) = 0;
};

}  // namespace rlb::worker

#endif  // RESUMELB_ZKWORKER_RESPONSE_OUTBOX_H_
