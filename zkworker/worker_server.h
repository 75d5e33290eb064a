// WorkerServer: the worker's network side. It accepts load-balancer connections on a libuv
// loop, speaks the wire protocol (docs/protocol.md), spools request bodies, and hands each
// complete request to the AppThreadPool; application threads send the response back
// through the connection's ResponseOutbox, blocking there while the connection is backed up.
//
// Thread rules: everything here belongs to the loop thread except ResponseOutbox and the
// WorkerRequest methods documented as application-thread ones; application threads reach
// the loop only through LoopMailbox::Post.
#ifndef RESUMELB_ZKWORKER_WORKER_SERVER_H_
#define RESUMELB_ZKWORKER_WORKER_SERVER_H_

#include <uv.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>

#include "common/frame_codec.h"
#include "common/loop_mailbox.h"
#include "common/net_address.h"
#include "common/status.h"
#include "zkworker/app_thread_pool.h"
#include "zkworker/response_outbox.h"
#include "zkworker/resume_tracker.h"
#include "zkworker/worker_request.h"
#include "zkworker/wsgi_host.h"

namespace rlb::worker {

struct WorkerServerOptions {
  HostPort address;
  size_t spool_threshold = 1u << 20;  // request bodies above this go to a temp file
  size_t outbox_high_water = 1u << 20;  // app threads wait while more is queued
  std::string resume_file;            // saved on every résumé send and at shutdown
  double drain_timeout = 60.0;        // seconds SIGTERM waits for requests in flight
};

class WorkerConnection;

class WorkerServer {
 public:
  WorkerServer(uv_loop_t* loop, WorkerServerOptions options, WsgiHost* host,
               AppThreadPool* pool, ResumeTracker* tracker);
  ~WorkerServer();

  // Binds and listens; the bound address is then address().
  Status Listen();
  const HostPort& address() const { return bound_; }

  // Graceful stop: stop accepting, send GOAWAY, wait for requests in flight (at most
  // drain_timeout), save the résumé, close connections; then `done` runs on the loop.
  void Shutdown(std::function<void()> done);

  // Sends the current résumé to every connection and saves the résumé file (loop thread).
  void BroadcastResume();
  // Application thread: a request has finished (or was skipped); Record() says whether the
  // résumé is due.
  void RequestFinished(std::shared_ptr<WorkerRequest> req, bool resume_due);

  // Loop-thread services used by connections.
  LoopMailbox& mailbox() { return mailbox_; }
  const WorkerServerOptions& options() const { return options_; }
  WsgiHost* host() { return host_; }
  void Dispatch(std::shared_ptr<WorkerRequest> req);
  void ConnectionClosed(WorkerConnection* conn);
  proto::ResumeEntries ResumeEntries() const { return tracker_->Entries(); }
  bool draining() const { return draining_; }
  // The drain timeout expired: requests may still be running in the application.
  bool drain_expired() const { return drain_expired_; }
  size_t in_flight() const { return in_flight_; }
  // Completes a Shutdown() once nothing is in flight (loop thread).
  void MaybeFinishShutdown();

 private:
  static void OnConnection(uv_stream_t* server, int status);
  void SaveResume();
  int AllocateConnectionId();

  uv_loop_t* loop_;
  WorkerServerOptions options_;
  WsgiHost* host_;
  AppThreadPool* pool_;
  ResumeTracker* tracker_;
  LoopMailbox mailbox_;
  uv_tcp_t listener_;
  bool listening_ = false;
  HostPort bound_;
  std::map<int, std::shared_ptr<WorkerConnection>> connections_;  // by connection id
  size_t in_flight_ = 0;  // requests dispatched to the app pool and not finished
  bool draining_ = false;
  bool drain_expired_ = false;
  std::function<void()> shutdown_done_;
  uv_timer_t drain_timer_;
  bool drain_timer_started_ = false;
  uv_timer_t grace_timer_;
  bool grace_over_ = false;
};

// One accepted LB connection (loop thread).
class WorkerConnection : public std::enable_shared_from_this<WorkerConnection> {
 public:
  WorkerConnection(WorkerServer* server, int id);
  ~WorkerConnection();
  Status Accept(uv_stream_t* listener);
  void Start();
  // Queues frames from the loop thread (never blocks) and flushes.
  void SendFromLoop(std::string&& frames);
  // Schedules a flush from any thread.
  void Flush();
  // Closes with a logged reason; every request on it is cancelled.
  void Close(const std::string& reason);
  void RequestDone(const std::shared_ptr<WorkerRequest>& req);

  int id() const { return id_; }
  const std::string& peer() const { return peer_; }
  const std::string& peer_ip() const { return peer_ip_; }
  int peer_port() const { return peer_port_; }
  ResponseOutbox& outbox() { return outbox_; }
  bool closed() const { return closing_; }
  size_t active_requests() const { return requests_.size(); }

 private:
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
  std::shared_ptr<WorkerConnection> self_;  // keeps this alive until the handle is closed
  char read_buf_[64 * 1024];
};

}  // namespace rlb::worker

#endif  // RESUMELB_ZKWORKER_WORKER_SERVER_H_
