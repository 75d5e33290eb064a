// LoadBalancer: the résumé-based HTTP load balancer on one libuv loop.
//
// Data flows one way: client socket -> HttpRequestParser -> Exchange (environ, class) ->
// Pool (choice of worker) -> WorkerLink (frames) and back: WorkerLink -> Exchange ->
// client socket (through a ResponseBuffer when the client is slower than the worker).
// The LoadBalancer owns the listener, the pool, the worker links, the requests waiting for
// a worker, the access log and the counters the status server reports.
//
// Links and connections report to it through narrow interfaces (WorkerLink::Observer,
// ClientConnectionHost); nothing below it includes this header. Objects are freed through
// its DeferredDeleter, never inside their own callbacks.
//
// Thread rules: loop thread only. Other threads (ZooKeeper) reach it through a LoopMailbox.
#ifndef RESUMELB_ZKLB_LOAD_BALANCER_H_
#define RESUMELB_ZKLB_LOAD_BALANCER_H_

#include <uv.h>

#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>
#include <string>

#include "common/deferred_delete.h"
#include "common/loop_lag.h"
#include "common/write_batcher.h"
#include "common/status.h"
#include "common/uv_handle.h"
#include "status/lb_status.h"
#include "zklb/access_log.h"
#include "zklb/classifier.h"
#include "zklb/client_connection.h"
#include "zklb/fd_budget.h"
#include "zklb/lb_options.h"
#include "zklb/lb_stats.h"
#include "zklb/pool.h"
#include "zklb/request_metrics.h"
#include "zklb/worker_link.h"

namespace rlb::lb {

class LoadBalancer : public ClientConnectionHost, private WorkerLink::Observer {
 public:
  LoadBalancer(uv_loop_t* loop, LbOptions options, std::unique_ptr<Pool> pool,
               std::shared_ptr<Classifier> classifier);
  ~LoadBalancer() override;

  // Reads the disconnect message and opens the access log; binds the HTTP listener.
  Status Start();
  const HostPort& address() const { return bound_; }

  // The set of worker addresses ("host:port" -> version), from the command line or ZooKeeper.
  void SetWorkers(const std::map<std::string, std::optional<std::string>>& workers);
  // How many other load balancers serve the same workers (zkresumelb: the other LB
  // registrations). With --placement=auto the pool places new classes by consistent
  // hashing while there are any (or while this LB is one of a --processes group), on the
  // least recently used worker otherwise (docs/operations.md, "Running several load
  // balancers").
  void SetOtherBalancers(size_t count);
  void UpdateSettings(const PoolSettings& settings);
  // The workers (names as in SetWorkers) taken out of the pool by the operator (zkresumelb's
  // "disabled" setting): no new request goes to them, those in flight finish, the link stays
  // connected and its résumés are kept, so that a worker enabled again rejoins at once. A
  // name not (yet) known applies when it appears. In single-version mode a disabled worker
  // does not count towards its version's quorum.
  void SetDisabled(const std::set<std::string>& names);
  // SIGHUP: reopens the access log and re-reads the disconnect page. A file that cannot be
  // read leaves the old one in use (logged).
  void ReopenFiles();
  // SIGTERM: stop accepting, let requests in flight finish (at most drain_timeout), close
  // worker links and client connections; `done` runs (once) when nothing is left, after the
  // LB's own handles are closed.
  void Shutdown(std::function<void()> done);

  // What the status server reports (all but the ZooKeeper part); see status/lb_status.h.
  LbStatusSnapshot StatusSnapshot() const;
  const LbStats& stats() const { return stats_; }
  const PoolSettings& pool_settings() const { return pool_->settings(); }

  // ExchangeHost.
  void Dispatch(Exchange* exchange) override;
  void ForgetWaiting(Exchange* exchange) override;
  void ReleaseWorker(const PoolWorkerPtr& worker) override;
  bool draining() const override { return draining_; }
  bool AcquireRetry() override;
  void ReleaseRetry() override;
  // ClientConnectionHost.
  void ConnectionClosed(ClientConnection* conn) override;

 private:
  // WorkerLink::Observer.
  void OnLinkResume(WorkerLink* link, Resume resume) override;
  void OnLinkRemoved(WorkerLink* link) override;
  void OnLinkIdle(WorkerLink* link) override;
  void OnLinkFdShortage(WorkerLink* link) override;

  static void OnConnection(uv_stream_t* server, int status);
  Status ReadDisconnectMessage();
  void AcceptPending();
  void Assign(Exchange* exchange, PoolWorkerPtr worker);
  void ReapLinks();
  void ServeWaiters();
  void ArmWaitTimer();
  void MaybeFinishShutdown();
  // Wanted links that are not connected because their last attempt found no descriptor.
  size_t FdStarvedLinks() const;
  // WARNING (at most once a minute) when more workers are known than fit the budget.
  void CheckFdLimitForWorkers();

  uv_loop_t* loop_;
  const LbOptions options_;
  std::unique_ptr<Pool> pool_;
  std::shared_ptr<Classifier> classifier_;
  std::string disconnect_message_;
  RequestMetrics request_metrics_;  // declared before the access log, which feeds it
  AccessLog access_log_;
  LbStats stats_;
  const double start_time_;  // epoch seconds
  ResponseBudget response_budget_;
  // The open-file limit's share-out (zklb/fd_budget.h), measured by Start(); declared
  // before the links and the deleter: outlives every link.
  std::optional<FdBudget> fd_budget_;
  double last_fd_warning_ = -1e18;         // loop ms of the last shortage WARNING
  double last_accept_fd_warning_ = -1e18;  // loop ms of the last paused-accept WARNING
  size_t fd_warned_workers_ = 0;           // the worker count last warned about
  uint64_t accept_pauses_ = 0;        // accepts held back for lack of descriptors
  uint64_t link_fd_shortages_ = 0;    // link connection attempts without a descriptor
  WriteBatcher write_batcher_;  // declared before the deleter: outlives what it frees
  DeferredDeleter deleter_;
  LoopLagMonitor loop_lag_;
  ClientContext client_context_;
  std::unique_ptr<char[]> read_buffer_;  // shared by every client connection's reads
  UvHandle<uv_tcp_t> listener_;
  bool accept_pending_ = false;
  HostPort bound_;
  std::map<std::string, std::unique_ptr<WorkerLink>> links_;
  std::set<std::string> disabled_;
  // The last résumé of each disabled worker that sent one while disabled: the pool gets it
  // when the worker is enabled again.
  std::map<std::string, Resume> held_resumes_;
  std::unordered_map<ClientConnection*, std::unique_ptr<ClientConnection>> connections_;
  std::deque<std::pair<Exchange*, double>> waiters_;  // (exchange, deadline in loop ms)
  UvHandle<uv_timer_t> wait_timer_;
  UvHandle<uv_timer_t> drain_timer_;
  int retries_in_flight_ = 0;
  bool draining_ = false;
  bool shut_down_ = false;
  std::function<void()> shutdown_done_;
};

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_LOAD_BALANCER_H_
