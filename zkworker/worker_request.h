// WorkerRequest: one request from one load balancer, from its REQUEST frame until the
// application has answered it (or it was cancelled). The loop collects the body (spooling
// a large one to an unlinked temp file) and dispatches it; the application thread writes
// the response through the ResponseSink methods, into the connection's ResponseOutbox —
// usually straight to the socket (ResponseOutbox's direct writes): the head and small
// chunks are held in held_ and pushed together, so a small response is one push.
//
// Thread rules: the loop thread, except the ResponseSink methods, status_code() and held_
// (the one application thread running the request, which owns them from Dispatch on) and
// state() with its predicates, which any thread may read. Shared (shared_ptr) by the
// connection's request table and the application thread running it.
#ifndef RESUMELB_ZKWORKER_WORKER_REQUEST_H_
#define RESUMELB_ZKWORKER_WORKER_REQUEST_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/frame_codec.h"
#include "common/status.h"
#include "zkworker/wsgi_host.h"

namespace rlb::worker {

class BalancerConnection;

// Where a request is in its life. Allowed transitions (any other is a bug):
//   kReceiving -> kRunning     loop: REQUEST_END arrived, the request goes to the
//                              application (MarkRunning)
//   kRunning   -> kEnded       application thread: End() is queueing RESPONSE_END
//   kReceiving, kRunning, kEnded -> kCancelled
//                              loop: CANCEL, the connection closed or the drain timed out
// kCancelled is final: End() on a cancelled request leaves it cancelled. Once kEnded the
// load balancer may reuse the request number, possibly before RequestFinished() has
// reached the loop and removed this request from its connection's table.
enum class RequestState { kReceiving, kRunning, kEnded, kCancelled };

// One request from one LB. Body spooling and dispatch happen on the loop; the response
// side (ResponseSink) is called on the application thread.
class WorkerRequest : public ResponseSink {
 public:
  WorkerRequest(std::shared_ptr<BalancerConnection> conn, uint32_t rno, proto::Request req);
  ~WorkerRequest() override;

  // Loop thread. REQUIRES: state() == kReceiving.
  Status AppendBody(std::string_view data, size_t spool_threshold);
  // Loop thread: kReceiving -> kRunning. REQUIRES: state() == kReceiving.
  void MarkRunning();
  // Loop thread: -> kCancelled; a producer blocked in the outbox gives up.
  void Cancel();

  // ResponseSink (application thread). Each refuses output once cancelled. Only BodyWait()
  // blocks.
  bool Start(std::string_view status, proto::Pairs headers) override;
  Sent Body(std::string_view data, bool more) override;
  bool BodyWait(std::string_view data) override;
  void End(bool complete) override;

  // The application thread running the request: the status code of the response head
  // Start() queued (StatusCodeOf()), 0 while none was.
  int status_code() const { return status_code_; }

  // Any thread.
  RequestState state() const { return state_.load(); }
  bool receiving() const { return state() == RequestState::kReceiving; }
  bool cancelled() const { return state() == RequestState::kCancelled; }
  bool ended() const { return state() == RequestState::kEnded; }

  std::shared_ptr<BalancerConnection> conn;
  uint32_t rno;
  proto::Request request;
  WsgiCall call;

 private:
  bool Send(std::string&& frames, bool wait);
  std::atomic<RequestState> state_{RequestState::kReceiving};
  int status_code_ = 0;  // the application thread running the request only
  std::string held_;  // encoded frames not pushed yet (application thread)
};

}  // namespace rlb::worker

#endif  // RESUMELB_ZKWORKER_WORKER_REQUEST_H_
