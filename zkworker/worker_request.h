// WorkerRequest: one request from one load balancer, from its REQUEST frame until the
// application has answered it (or it was cancelled). The loop collects the body (spooling
// a large one to an unlinked temp file) and dispatches it; the application thread writes
// the response through the ResponseSink methods, into the connection's ResponseOutbox.
//
// Thread rules: the loop thread, except the ResponseSink methods (the application thread)
// and cancelled()/ended(), which any thread may read. Shared (shared_ptr) by the
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

// One request from one LB. Body spooling and dispatch happen on the loop; the response
// side (ResponseSink) is called on the application thread.
class WorkerRequest : public ResponseSink {
 public:
  WorkerRequest(std::shared_ptr<BalancerConnection> conn, uint32_t rno, proto::Request req);
  ~WorkerRequest() override;

  // Loop thread.
  Status AppendBody(std::string_view data, size_t spool_threshold);
  void Cancel();

  // ResponseSink (application thread).
  bool Start(std::string_view status, proto::Pairs headers) override;
  bool Body(std::string_view data) override;
  void End(bool complete) override;

  bool cancelled() const { return cancelled_.load(); }
  // True once End() has queued RESPONSE_END. From then on the LB may reuse the request
  // number, possibly before RequestFinished() has reached the loop and erased this entry.
  bool ended() const { return ended_.load(std::memory_order_acquire); }

  std::shared_ptr<BalancerConnection> conn;
  uint32_t rno;
  proto::Request request;
  WsgiCall call;
  bool submitted = false;

 private:
  bool Send(std::string&& frames, bool wait);
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> ended_{false};
};

}  // namespace rlb::worker

#endif  // RESUMELB_ZKWORKER_WORKER_REQUEST_H_
