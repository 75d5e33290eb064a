// LoadBalancer: the résumé-based HTTP load balancer on one libuv loop.
//
// Data flows one way: client socket -> HttpRequestParser -> Exchange (environ, class) ->
// Pool (choice of worker) -> WorkerLink (frames) and back: WorkerLink -> Exchange ->
// client socket (through a ResponseBuffer when the client is slower than the worker).
// The LoadBalancer owns the listener, the pool, the worker links, the requests waiting for
// a worker, the access log and the counters the status server reports.
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
#include <string>

#include "common/status.h"
#include "zklb/classifier.h"
#include "zklb/lb_options.h"
#include "zklb/pool.h"
#include "zklb/worker_link.h"

namespace rlb::lb {

class ClientConnection;
class Exchange;

struct LbCounters {
  uint64_t requests = 0;      // HTTP requests received
  uint64_t responses = 0;     // responses completed
  uint64_t retries = 0;       // re-dispatches after a worker failure
  uint64_t bad_gateway = 0;   // 502s
  uint64_t unavailable = 0;   // 503s
  uint64_t client_errors = 0; // 4xx/505 answered by the LB itself
  uint64_t truncated = 0;     // responses cut off after they started
  uint64_t connections = 0;   // client connections accepted
};

class LoadBalancer {
 public:
  LoadBalancer(uv_loop_t* loop, LbOptions options, std::unique_ptr<Pool> pool,
               std::shared_ptr<Classifier> classifier);
  ~LoadBalancer();

  // Reads the disconnect message and opens the access log; binds the HTTP listener.
  Status Start();
  const HostPort& address() const { return bound_; }

  // The set of worker addresses ("host:port" -> version), from the command line or ZooKeeper.
  void SetWorkers(const std::map<std::string, std::optional<std::string>>& workers);
  void UpdateSettings(const PoolSettings& settings);
  // SIGTERM: stop accepting, let requests in flight finish (at most drain_timeout), close
  // worker links and client connections; `done` runs when nothing is left.
  void Shutdown(std::function<void()> done);

  // The status document (JSON) the status server serves. `extra` is merged in (zkresumelb).
  std::string StatusJson(const std::function<void(void* writer)>& extra = nullptr) const;

  // --- used by links, connections and exchanges (loop thread) ---
  const LbOptions& options() const { return options_; }
  Pool* pool() { return pool_.get(); }
  const Classifier& classifier() const { return *classifier_; }
  LbCounters& counters() { return counters_; }
  const std::string& disconnect_message() const { return disconnect_message_; }
  void OnLinkResume(WorkerLink* link, Resume resume);
  void OnLinkRemoved(WorkerLink* link);
  void ReapLinks();
  // Chooses a worker for the exchange, or queues it until one is available.
  void Dispatch(Exchange* exchange);
  void ForgetWaiting(Exchange* exchange);
  void AccessLog(const std::string& line);
  bool access_log_enabled() const { return access_log_ != nullptr; }
  void ConnectionClosed(ClientConnection* conn);
  bool draining() const { return draining_; }
  uv_loop_t* loop() { return loop_; }

 private:
  static void OnConnection(uv_stream_t* server, int status);
  void AcceptPending();
  void ServeWaiters();
  void ArmWaitTimer();
  void MaybeFinishShutdown();

  uv_loop_t* loop_;
  LbOptions options_;
  std::unique_ptr<Pool> pool_;
  std::shared_ptr<Classifier> classifier_;
  std::string disconnect_message_;
  FILE* access_log_ = nullptr;
  bool own_access_log_ = false;
  uv_tcp_t listener_;
  bool listening_ = false;
  bool accept_pending_ = false;
  HostPort bound_;
  std::map<std::string, std::unique_ptr<WorkerLink>> links_;
  std::vector<std::unique_ptr<WorkerLink>> dying_links_;
  std::set<ClientConnection*> connections_;
  std::deque<std::pair<Exchange*, double>> waiters_;  // (exchange, deadline in loop ms)
  uv_timer_t wait_timer_;
  LbCounters counters_;
  bool draining_ = false;
  std::function<void()> shutdown_done_;
  uv_timer_t drain_timer_;
};

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_LOAD_BALANCER_H_
