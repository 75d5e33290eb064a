// WorkerServer: the worker's network side. It listens for load balancers, keeps one
// BalancerConnection per accepted connection, hands each complete WorkerRequest to the
// AppThreadPool, sends the résumé, and runs the graceful shutdown (docs/protocol.md).
//
// Thread rules: loop thread only, except RequestFinished() and in_flight() (any thread).
// Finishing a request costs the loop no wake-up: RequestFinished() (application thread)
// counts it out of in_flight() and queues it in finished_, which the loop reconciles —
// removes it from its connection's table — at its next turn (a uv_prepare_t: the loop
// turns anyway for the next request). Only what cannot wait reaches the loop through the
// LoopMailbox at once: a résumé that is due, any finish while draining, or a long queue.
// The application threads also count each request in metrics() (atomics only: WorkerMetrics).
// Lifetime: a closed connection leaves the table through the DeferredDeleter (never
// destroyed inside its own callbacks); every handle is closed when Shutdown() completes.
#ifndef RESUMELB_ZKWORKER_WORKER_SERVER_H_
#define RESUMELB_ZKWORKER_WORKER_SERVER_H_

#include <uv.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/annotated_mutex.h"
#include "common/deferred_delete.h"
#include "common/frame_codec.h"
#include "common/loop_mailbox.h"
#include "common/net_address.h"
#include "common/status.h"
#include "common/uv_handle.h"
#include "zkworker/app_thread_pool.h"
#include "zkworker/process_board.h"
#include "zkworker/resume_tracker.h"
#include "zkworker/worker_metrics.h"
#include "zkworker/worker_request.h"
#include "zkworker/wsgi_host.h"

namespace rlb::worker {

struct WorkerServerOptions {
  HostPort address;
  size_t spool_threshold = 1u << 20;  // request bodies above this go to a temp file
  size_t outbox_high_water = 1u << 20;  // app threads wait while more is queued
  std::string resume_file;            // saved on every résumé send and at shutdown
  double drain_timeout = 60.0;        // seconds SIGTERM waits for requests in flight
  // Load balancers must prove this secret before they get anything (common/link_auth.h);
  // empty: links are not authenticated.
  std::string link_secret;
  // Supervised (zkworker --processes): the master's board, told about every request, and
  // SO_REUSEPORT on the listener, so that a replacement can listen on the address while
  // this process still does.
  ProcessBoard* board = nullptr;
  bool reuse_port = false;
};

class BalancerConnection;

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
  // résumé is due. Wakes the loop only when it must act now (see above).
  void RequestFinished(std::shared_ptr<WorkerRequest> req, bool resume_due)
      EXCLUDES(finished_mu_);

  // Loop-thread services used by connections.
  LoopMailbox& mailbox() { return mailbox_; }
  const WorkerServerOptions& options() const { return options_; }
  WsgiHost* host() { return host_; }
  void Dispatch(std::shared_ptr<WorkerRequest> req);
  // A connection closed: it leaves the table (freed once the current callback returns).
  void ConnectionClosed(BalancerConnection* conn);
  proto::ResumeEntries ResumeEntries() const { return tracker_->Entries(); }
  bool draining() const { return draining_; }
  // The drain timeout expired: requests may still be running in the application.
  bool drain_expired() const { return drain_expired_; }
  // Requests dispatched to the application and not finished (exact from any thread).
  size_t in_flight() const { return in_flight_.load(); }
  // Completes a Shutdown() once nothing is in flight (loop thread).
  void MaybeFinishShutdown() EXCLUDES(finished_mu_);

  // The counters of the requests the application ran (any thread).
  const WorkerMetrics& metrics() const { return metrics_; }
  // The loop's side of the metrics, now (loop thread).
  WorkerGauges Gauges() const;

 private:
  static void OnConnection(uv_stream_t* server, int status);
  void SaveResume();
  int AllocateConnectionId();
  // Loop: takes the finished requests out of their connections' tables; broadcasts the
  // résumé if one is due.
  void ReconcileFinished() EXCLUDES(finished_mu_);

  uv_loop_t* loop_;
  WorkerServerOptions options_;
  WsgiHost* host_;
  AppThreadPool* pool_;
  ResumeTracker* tracker_;
  WorkerMetrics metrics_;  // RecordRequest() on the application threads
  LoopMailbox mailbox_;
  DeferredDeleter deleter_;
  UvHandle<uv_tcp_t> listener_;
  HostPort bound_;
  std::map<int, std::shared_ptr<BalancerConnection>> connections_;  // by connection id
  // Dispatched to the app pool and not finished: incremented by the loop (Dispatch),
  // decremented by the application thread (RequestFinished).
  std::atomic<size_t> in_flight_{0};
  // Finished requests the loop has not reconciled yet (RequestFinished -> ReconcileFinished).
  Mutex finished_mu_;
  std::vector<std::shared_ptr<WorkerRequest>> finished_ GUARDED_BY(finished_mu_);
  bool finished_resume_due_ GUARDED_BY(finished_mu_) = false;
  bool finished_wake_posted_ GUARDED_BY(finished_mu_) = false;
  std::atomic<bool> finished_pending_{false};  // finished_ not empty (a hint, read unlocked)
  std::atomic<bool> wake_on_finish_{false};    // draining: every finish wakes the loop
  UvHandle<uv_prepare_t> reconcile_;           // ReconcileFinished() every loop turn
  bool draining_ = false;
  bool drain_expired_ = false;
  std::function<void()> shutdown_done_;
  UvHandle<uv_timer_t> drain_timer_;
  UvHandle<uv_timer_t> grace_timer_;
  bool grace_over_ = false;
};

}  // namespace rlb::worker

#endif  // RESUMELB_ZKWORKER_WORKER_SERVER_H_
