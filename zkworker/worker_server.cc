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

}  // namespace

WorkerServer::WorkerServer(uv_loop_t* loop, WorkerServerOptions options, WsgiHost* host,
                           AppThreadPool* pool, ResumeTracker* tracker)
    : loop_(loop),
      options_(std::move(options)),
      host_(host),
      pool_(pool),
      tracker_(tracker),
      mailbox_(loop) {
  // These fail only on invalid arguments: a failure is a bug.
  CHECK_EQ(uv_tcp_init(loop_, &listener_), 0);
  listener_.data = this;
  CHECK_EQ(uv_timer_init(loop_, &drain_timer_), 0);
  drain_timer_.data = this;
  CHECK_EQ(uv_timer_init(loop_, &grace_timer_), 0);
  grace_timer_.data = this;
  CHECK_EQ(uv_idle_init(loop_, &reaper_), 0);
  reaper_.data = this;
}

// Connections whose handles closed after the reaper did are freed here, outside any of
// their callbacks.
WorkerServer::~WorkerServer() = default;

void WorkerServer::ReleaseClosedConnection(std::shared_ptr<BalancerConnection> conn) {
  closed_connections_.push_back(std::move(conn));
  if (reaper_closed_) return;  // freed by the destructor
  // An idle handle runs on the loop's next iteration (and makes that iteration's poll not
  // block), so the connection is freed soon, from a different callback than its own.
  CHECK_EQ(uv_idle_start(&reaper_, [](uv_idle_t* idle) {
    auto* self = static_cast<WorkerServer*>(idle->data);
    CHECK_EQ(uv_idle_stop(idle), 0);
    auto dead = std::move(self->closed_connections_);
    self->closed_connections_.clear();
  }), 0);
}

Status WorkerServer::Listen() {
  Status s = ListenTcp(&listener_, options_.address, 511, &OnConnection, &bound_);
  if (!s.ok()) return s;
  listening_ = true;
  return Status::OK();
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
  if (it != connections_.end() && it->second.get() == conn) connections_.erase(it);
  MaybeFinishShutdown();
}

void WorkerServer::Dispatch(std::shared_ptr<WorkerRequest> req) {
  req->MarkRunning();
  ++in_flight_;
  pool_->Submit([this, req]() mutable {
    bool due = false;
    if (!req->cancelled()) {
      auto t0 = std::chrono::steady_clock::now();
      bool complete = host_->Call(req->call);
      std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - t0;
      if (complete) due = tracker_->Record(req->request.request_class, elapsed.count());
    }
    RequestFinished(std::move(req), due);
  });
}

void WorkerServer::RequestFinished(std::shared_ptr<WorkerRequest> req, bool resume_due) {
  mailbox_.Post([this, req = std::move(req), resume_due] {
    --in_flight_;
    req->conn->RequestDone(req);
    if (resume_due) BroadcastResume();
    MaybeFinishShutdown();
  });
}

void WorkerServer::BroadcastResume() {
  std::string frame;
  proto::EncodeResume(&frame, tracker_->Entries());
  for (auto& [id, conn] : connections_) conn->SendFromLoop(std::string(frame));
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
  shutdown_done_ = std::move(done);
  if (listening_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
    listening_ = false;
  }
  std::string goaway;
  proto::EncodeGoAway(&goaway);
  for (auto& [id, conn] : connections_) conn->SendFromLoop(std::string(goaway));
  LOG(INFO) << "draining: " << in_flight_ << " request(s) in flight";
  // A REQUEST the LB sent before it read our GOAWAY may still be on its way: connections
  // are closed by their LBs once drained, or by us after this grace period.
  CHECK_EQ(uv_timer_start(&grace_timer_, [](uv_timer_t* t) {
    auto* self = static_cast<WorkerServer*>(t->data);
    self->grace_over_ = true;
    self->MaybeFinishShutdown();
  }, kGoAwayGraceMs, 0), 0);
  drain_timer_started_ = true;
  CHECK_EQ(uv_timer_start(&drain_timer_, [](uv_timer_t* t) {
    auto* self = static_cast<WorkerServer*>(t->data);
    LOG(WARNING) << "drain timeout: cancelling " << self->in_flight_ << " request(s)";
    self->drain_expired_ = true;  // finish even if the application never returns
    auto conns = self->connections_;
    for (auto& [id, conn] : conns) conn->Close(DisconnectCause::kDrainTimeout);
    self->MaybeFinishShutdown();
  }, static_cast<uint64_t>(options_.drain_timeout * 1000), 0), 0);
  MaybeFinishShutdown();
}

void WorkerServer::MaybeFinishShutdown() {
  if (!draining_ || !shutdown_done_) return;
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
  if (drain_timer_started_) CHECK_EQ(uv_timer_stop(&drain_timer_), 0);
  uv_close(reinterpret_cast<uv_handle_t*>(&drain_timer_), nullptr);
  CHECK_EQ(uv_timer_stop(&grace_timer_), 0);
  uv_close(reinterpret_cast<uv_handle_t*>(&grace_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&reaper_), nullptr);
  reaper_closed_ = true;
  if (listening_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
    listening_ = false;
  }
  mailbox_.Close();
  done();
}

}  // namespace rlb::worker
