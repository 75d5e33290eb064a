// BalancerConnection: the worker's end of one connection from a load balancer. It sends
// HELLO and the résumé (with a link secret: only once the LB proved it, common/link_auth.h),
// decodes the load balancer's frames (docs/protocol.md), keeps the table of that load
// balancer's requests in progress, and writes the connection's ResponseOutbox to the socket.
//
// Writing: the ResponseOutbox is the queue between threads. While it is idle, an
// application thread pushing a response sends it to the socket itself (its direct writes,
// under the outbox's lock); otherwise the loop takes what is queued and hands it to a
// StreamWriter (common/stream_writer.h), which writes it in order. The outbox counts those
// bytes as in flight until the kernel has taken them, so application threads wait for a
// slow load balancer (ResponseOutbox's flow control) and never write while the loop's
// writer holds bytes. Reading, closing and every other use of the socket stay the loop's.
//
// Thread rules: loop thread only, except Flush() and outbox() (any thread).
// Ownership: the WorkerServer's connection table and each WorkerRequest hold it
// (shared_ptr). Once closed it leaves the table through the server's DeferredDeleter, so
// it is never destroyed inside one of its own callbacks.
#ifndef RESUMELB_ZKWORKER_BALANCER_CONNECTION_H_
#define RESUMELB_ZKWORKER_BALANCER_CONNECTION_H_

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/frame_codec.h"
#include "common/link_auth.h"
#include "common/status.h"
#include "common/stream_writer.h"
#include "common/uv_handle.h"
#include "zkworker/response_outbox.h"
#include "zkworker/worker_request.h"

namespace rlb::worker {

class WorkerServer;

// Why a load balancer's connection ended. The log line's text and severity follow from it:
// a protocol violation is a WARNING (the peer is broken), every other end is INFO.
enum class DisconnectCause {
  kClosedByBalancer,  // the load balancer closed the connection (EOF)
  kReadError,         // reading failed; detail: the libuv error
  kWriteError,        // writing failed; detail: the libuv error
  kMalformedFrame,    // a frame broke docs/protocol.md; detail: what was wrong
  kDrainTimeout,      // the worker's drain timeout expired
  kShutdown,          // the worker is shutting down
  kAuthFailed,        // the link secret handshake failed; detail: why (common/link_auth.h)
};

// The reason as logged, e.g. "malformed frame: DETAIL" or "closed by the load balancer".
std::string DisconnectReason(DisconnectCause cause, const std::string& detail);
// The glog severity of the disconnect's log line: GLOG_WARNING or GLOG_INFO.
int DisconnectSeverity(DisconnectCause cause);

class BalancerConnection : public std::enable_shared_from_this<BalancerConnection>,
                           private StreamWriter::Listener {
 public:
  // `id` is the smallest id no open connection uses (the request trace ids start with it).
  // REQUIRES: `server` outlives the connection.
  BalancerConnection(WorkerServer* server, int id);
  ~BalancerConnection();
  BalancerConnection(const BalancerConnection&) = delete;
  BalancerConnection& operator=(const BalancerConnection&) = delete;

  // Accepts the pending connection of `listener`. On error nothing is left open.
  Status Accept(uv_stream_t* listener);
  // Logs the connection, sends HELLO, the résumé (and GOAWAY when draining), starts reading.
  void Start();
  // Queues frames from the loop thread (never blocks) and flushes.
  void SendFromLoop(std::string&& frames);
  // Schedules a flush from any thread.
  void Flush();
  // Closes and logs why (`detail` as DisconnectCause says); every request on it is
  // cancelled. Idempotent: only the first call logs.
  void Close(DisconnectCause cause, const std::string& detail = "");
  // The application finished `req` (loop thread): it leaves the request table unless the
  // load balancer already reused its number for a new request.
  void RequestDone(const std::shared_ptr<WorkerRequest>& req);

  int id() const { return id_; }
  const std::string& peer() const { return peer_; }
  const std::string& peer_ip() const { return peer_ip_; }
  int peer_port() const { return peer_port_; }
  ResponseOutbox& outbox() { return outbox_; }
  bool closed() const { return closing_; }
  // Whether the load balancer may have the résumé and send requests: it proved the link
  // secret, or this worker has none.
  bool authenticated() const { return auth_.peer_proved(); }
  size_t active_requests() const { return requests_.size(); }

 private:
  static void OnAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  void HandleFrames();
  Status HandleFrame(const proto::Frame& frame);
  // CHALLENGE/PROOF: answers, and once the LB proved the secret sends what Start() held back.
  Status HandleAuthFrame(const proto::Frame& frame);
  // Appends the résumé (and GOAWAY when draining): what an authenticated LB gets first.
  void AppendGreeting(std::string* frames);
  void FlushOnLoop();
  // Reports to the outbox the bytes the writer has handed to the kernel since last time.
  void ReportWritten();
  // StreamWriter::Listener
  void OnWritten() override;
  void OnWriteError(int uv_error) override;

  WorkerServer* server_;
  int id_;
  UvHandle<uv_tcp_t> tcp_;
  std::string peer_, peer_ip_;
  int peer_port_ = 0;
  proto::FrameDecoder decoder_;
  bool got_hello_ = false;
  LinkHandshake auth_;
  UvHandle<uv_timer_t> auth_deadline_;  // with a secret: closes an LB that does not prove it
  bool closing_ = false;
  ResponseOutbox outbox_;
  StreamWriter writer_;
  size_t outbox_in_writer_ = 0;  // bytes taken from the outbox the writer still holds
  std::unordered_map<uint32_t, std::shared_ptr<WorkerRequest>> requests_;
  char read_buf_[64 * 1024];
};

}  // namespace rlb::worker

#endif  // RESUMELB_ZKWORKER_BALANCER_CONNECTION_H_
