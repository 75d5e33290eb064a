// BalancerConnection: the worker's end of one connection from a load balancer. It sends
// HELLO and the résumé, decodes the load balancer's frames (docs/protocol.md), keeps the
// table of that load balancer's requests in progress, and writes the connection's
// ResponseOutbox to the socket.
//
// Thread rules: loop thread only, except Flush() and outbox() (any thread).
// Ownership: the WorkerServer's connection table and each WorkerRequest hold it
// (shared_ptr); it also holds itself while its libuv handle is open.
#ifndef RESUMELB_ZKWORKER_BALANCER_CONNECTION_H_
#define RESUMELB_ZKWORKER_BALANCER_CONNECTION_H_

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/frame_codec.h"
#include "common/status.h"
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
};

// The reason as logged, e.g. "malformed frame: DETAIL" or "closed by the load balancer".
std::string DisconnectReason(DisconnectCause cause, const std::string& detail);
// The glog severity of the disconnect's log line: GLOG_WARNING or GLOG_INFO.
int DisconnectSeverity(DisconnectCause cause);

class BalancerConnection : public std::enable_shared_from_this<BalancerConnection> {
 public:
  // `id` is the smallest id no open connection uses (the request trace ids start with it).
  // REQUIRES: `server` outlives the connection.
  BalancerConnection(WorkerServer* server, int id);
  ~BalancerConnection();
  BalancerConnection(const BalancerConnection&) = delete;
  BalancerConnection& operator=(const BalancerConnection&) = delete;

  // Accepts the pending connection of `listener`. REQUIRES: owned by a shared_ptr.
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
  size_t active_requests() const { return requests_.size(); }

 private:
  static void OnClosed(uv_handle_t* h);
  static void OnAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  void HandleFrames();
  Status HandleFrame(const proto::Frame& frame);
  void FlushOnLoop();

  WorkerServer* server_;
  int id_;
  uv_tcp_t tcp_;
  std::string peer_, peer_ip_;
  int peer_port_ = 0;
  proto::FrameDecoder decoder_;
  bool got_hello_ = false;
  bool closing_ = false;
  bool writing_ = false;
  ResponseOutbox outbox_;
  std::unordered_map<uint32_t, std::shared_ptr<WorkerRequest>> requests_;
  // Keeps this alive until the handle is closed; then handed to the server to drop.
  std::shared_ptr<BalancerConnection> self_;
  char read_buf_[64 * 1024];
};

}  // namespace rlb::worker

#endif  // RESUMELB_ZKWORKER_BALANCER_CONNECTION_H_
