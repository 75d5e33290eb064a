// WorkerServer: the listener, the connection table, dispatch to the application threads,
// the résumé broadcast and the graceful shutdown.
#include "zkworker/worker_server.h"

#include <chrono>
#include <utility>

#include <glog/logging.h>

#include "zkworker/balancer_connection.h"

namespace rlb::worker {
namespace {

constexpr uint64_t kGoAwayGraceMs = 500;  // see Shutdown()
// Finished requests queued for the loop before one wakes it anyway (bounds the requests a
// busy application keeps in the tables while the loop has nothing else to do).
constexpr size_t kMaxUnreconciled = 64;

// "METHOD HOST PATH" of a request, for the supervisor's harakiri log line.
std::string DescribeRequest(const proto::Request& request) {
  std::string_view method, host, path;
  for (const auto& [k, v] : request.environ) {
    if (k == "REQUEST_METHOD") method = v;
    else if (k == "HTTP_HOST") host = v;
    else if (k == "PATH_INFO") path = v;
  }
  std::string out;
  out.append(method).append(" ").append(host).append(" ").append(path);
  return out;
}

}  // namespace

WorkerServer::WorkerServer(uv_loop_t* loop, WorkerServerOptions options, WsgiHost* host,
                           AppThreadPool* pool, ResumeTracker* tracker)
    : loop_(loop),
      options_(std::move(options)),
      host_(host),
      pool_(pool),
      tracker_(tracker),
      mailbox_(loop),
      deleter_(loop) {
  // These fail only on invalid arguments: a failure is a bug.
  CHECK_EQ(listener_.Init(loop_, this), 0);
  CHECK_EQ(drain_timer_.Init(loop_, this), 0);
  CHECK_EQ(grace_timer_.Init(loop_, this), 0);
  CHECK_EQ(reconcile_.Init(loop_, this), 0);
  CHECK_EQ(uv_prepare_start(reconcile_.get(), [](uv_prepare_t* h) {
    static_cast<WorkerServer*>(h->data)->ReconcileFinished();
  }), 0);
  uv_unref(reinterpret_cast<uv_handle_t*>(reconcile_.get()));  // never keeps the loop alive
}

WorkerServer::~WorkerServer() = default;

Status WorkerServer::Listen() {
  if (options_.reuse_port) {
    Status s = OpenReusePortSocket(listener_.get(), options_.address);
    if (!s.ok()) return s;
  }
  return ListenTcp(listener_.get(), options_.address, 511, &OnConnection, &bound_);
}

int WorkerServer::AllocateConnectionId() {
  int id = 0;
  for (const auto& [used, conn] : connections_) {  // ordered: the first gap is the answer
    if (used != id) break;
    ++id;
  }
  return id;
}

void WorkerServer::OnConnection(uv_stream_t* listener, int status) {
  auto* self = static_cast<WorkerServer*>(listener->data);
  if (status < 0) {
    LOG(WARNING) << "accept failed: " << uv_strerror(status);
    return;
  }
  int id = self->AllocateConnectionId();
  auto conn = std::make_shared<BalancerConnection>(self, id);
  Status s = conn->Accept(listener);
  if (!s.ok()) {
    LOG(WARNING) << s.ToString();
    return;
  }
  self->connections_[id] = conn;
  conn->Start();
}

void WorkerServer::ConnectionClosed(BalancerConnection* conn) {
  auto it = connections_.find(conn->id());
  if (it != connections_.end() && it->second.get() == conn) {
    // Close() runs inside the connection's own callbacks: free it after they return.
    deleter_.Defer(std::make_unique<std::shared_ptr<BalancerConnection>>(std::move(it->second)));
    connections_.erase(it);
  }
  MaybeFinishShutdown();
}

void WorkerServer::Dispatch(std::shared_ptr<WorkerRequest> req) {
  req->MarkRunning();
  ++in_flight_;
  pool_->Submit([this, req]() mutable {
    bool due = false;
    if (!req->cancelled()) {
      auto t0 = std::chrono::steady_clock::now();
      ProcessBoard* board = options_.board;
      int slot = board ? board->RequestStarted(DescribeRequest(req->request)) : -1;
      bool complete = host_->Call(req->call);
      if (board) board->RequestFinished(slot);
      std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - t0;
      if (complete) due = tracker_->Record(req->request.request_class, elapsed.count());
      // After the résumé: once a request is counted, its class is in the résumé.
      metrics_.RecordRequest(req->status_code(), elapsed.count());
    }
    RequestFinished(std::move(req), due);
  });
}

void WorkerServer::RequestFinished(std::shared_ptr<WorkerRequest> req, bool resume_due) {
  bool wake = false;
  {
    MutexLock lock(&finished_mu_);
    --in_flight_;
    finished_.push_back(std::move(req));
    finished_pending_.store(true, std::memory_order_relaxed);
    finished_resume_due_ = finished_resume_due_ || resume_due;
    if ((resume_due || wake_on_finish_.load() || finished_.size() >= kMaxUnreconciled) &&
        !finished_wake_posted_) {
      finished_wake_posted_ = true;
      wake = true;
    }
  }
  if (wake) {
    mailbox_.Post([this] {
      ReconcileFinished();
      MaybeFinishShutdown();
    });
  }
}

void WorkerServer::ReconcileFinished() {
  // A stale false only delays the reconciliation: whatever cannot wait posts a wake-up.
  if (!finished_pending_.load(std::memory_order_relaxed)) return;
  std::vector<std::shared_ptr<WorkerRequest>> finished;
  bool resume_due;
  {
    MutexLock lock(&finished_mu_);
    finished.swap(finished_);
    finished_pending_.store(false, std::memory_order_relaxed);
    resume_due = finished_resume_due_;
    finished_resume_due_ = false;
    finished_wake_posted_ = false;
  }
  for (auto& req : finished) req->conn->RequestDone(req);
  if (resume_due) BroadcastResume();
}

WorkerGauges WorkerServer::Gauges() const {
  WorkerGauges g;
  g.threads = pool_->threads();
  g.busy_threads = pool_->busy();
  g.resume_classes = tracker_->classes();
  g.balancer_connections = connections_.size();
  g.requests_in_flight = in_flight_.load();  // exact: RequestFinished() decrements it
  g.draining = draining_;
  return g;
}

void WorkerServer::BroadcastResume() {
  std::string frame;
  proto::EncodeResume(&frame, tracker_->Entries());
  // A send can fail at once and close its connection, which erases it from connections_:
  // walk a copy (as every loop that may close one does).
  auto conns = connections_;
  for (auto& [id, conn] : conns) {
    if (conn->authenticated()) conn->SendFromLoop(std::string(frame));  // else: not yet
  }
  SaveResume();
}

void WorkerServer::SaveResume() {
  if (options_.resume_file.empty()) return;
  Status s = SaveResumeFile(options_.resume_file, tracker_->Snapshot());
  if (!s.ok()) LOG(WARNING) << "cannot save the resume: " << s.ToString();
}

void WorkerServer::Shutdown(std::function<void()> done) {
  if (draining_) return;
  draining_ = true;
  wake_on_finish_.store(true);  // before MaybeFinishShutdown() reconciles (see there)
  shutdown_done_ = std::move(done);
  listener_.Close();
  std::string goaway;
  proto::EncodeGoAway(&goaway);
  auto conns = connections_;  // a failed send closes (and erases) its connection
  for (auto& [id, conn] : conns) {
    if (conn->authenticated()) conn->SendFromLoop(std::string(goaway));  // else: at its PROOF
  }
  LOG(INFO) << "draining: " << in_flight_.load() << " request(s) in flight";
  // A REQUEST the LB sent before it read our GOAWAY may still be on its way: connections
  // are closed by their LBs once drained, or by us after this grace period.
  CHECK_EQ(uv_timer_start(grace_timer_.get(), [](uv_timer_t* t) {
    auto* self = static_cast<WorkerServer*>(t->data);
    self->grace_over_ = true;
    self->MaybeFinishShutdown();
  }, kGoAwayGraceMs, 0), 0);
  CHECK_EQ(uv_timer_start(drain_timer_.get(), [](uv_timer_t* t) {
    auto* self = static_cast<WorkerServer*>(t->data);
    LOG(WARNING) << "drain timeout: cancelling " << self->in_flight_.load() << " request(s)";
    self->drain_expired_ = true;  // finish even if the application never returns
    auto conns = self->connections_;
    for (auto& [id, conn] : conns) conn->Close(DisconnectCause::kDrainTimeout);
    self->MaybeFinishShutdown();
  }, static_cast<uint64_t>(options_.drain_timeout * 1000), 0), 0);
  MaybeFinishShutdown();
}

void WorkerServer::MaybeFinishShutdown() {
  if (!draining_ || !shutdown_done_) return;
  // Every finish queued before this point is reconciled here; every later one wakes the
  // loop (wake_on_finish_ was set first), so none is left waiting for a turn.
  ReconcileFinished();
  if (!drain_expired_) {
    if (in_flight_ > 0) return;
    for (auto& [id, conn] : connections_) {
      if (conn->active_requests() > 0) return;
    }
    if (!connections_.empty() && !grace_over_) return;
  }
  // Closing a connection calls back into this function (ConnectionClosed): take the
  // completion first so that nested call returns at once instead of closing handles twice.
  auto done = std::move(shutdown_done_);
  shutdown_done_ = nullptr;
  SaveResume();
  auto conns = connections_;
  for (auto& [id, conn] : conns) conn->Close(DisconnectCause::kShutdown);
  drain_timer_.Close();
  grace_timer_.Close();
  reconcile_.Close();
  listener_.Close();
  deleter_.Close();  // what is still queued is freed by its destructor
  mailbox_.Close();
  done();
}

}  // namespace rlb::worker
