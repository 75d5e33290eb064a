// WorkerServer: accept loop, per-connection frame handling, body spooling, dispatch to the
// application threads, the outbound write path and graceful shutdown.
#include "zkworker/worker_server.h"

#include <unistd.h>

#include <chrono>

#include <glog/logging.h>

namespace rlb::worker {
namespace {

constexpr uint64_t kGoAwayGraceMs = 500;  // see Shutdown()

std::string Software() { return "zkworker 0.1.0"; }

}  // namespace

// ---------------------------------------------------------------- WorkerServer

WorkerServer::WorkerServer(uv_loop_t* loop, WorkerServerOptions options, WsgiHost* host,
                           AppThreadPool* pool, ResumeTracker* tracker)
    : loop_(loop),
      options_(std::move(options)),
      host_(host),
      pool_(pool),
      tracker_(tracker),
      mailbox_(loop) {
  uv_tcp_init(loop_, &listener_);
  listener_.data = this;
  uv_timer_init(loop_, &drain_timer_);
  drain_timer_.data = this;
  uv_timer_init(loop_, &grace_timer_);
  grace_timer_.data = this;
}

WorkerServer::~WorkerServer() = default;

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
  auto conn = std::make_shared<WorkerConnection>(self, id);
  Status s = conn->Accept(listener);
  if (!s.ok()) {
    LOG(WARNING) << s.ToString();
    return;
  }
  self->connections_[id] = conn;
  conn->Start();
}

void WorkerServer::ConnectionClosed(WorkerConnection* conn) {
  auto it = connections_.find(conn->id());
  if (it != connections_.end() && it->second.get() == conn) connections_.erase(it);
  MaybeFinishShutdown();
}

void WorkerServer::Dispatch(std::shared_ptr<WorkerRequest> req) {
  req->submitted = true;
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
  uv_timer_start(&grace_timer_, [](uv_timer_t* t) {
    auto* self = static_cast<WorkerServer*>(t->data);
    self->grace_over_ = true;
    self->MaybeFinishShutdown();
  }, kGoAwayGraceMs, 0);
  drain_timer_started_ = true;
  uv_timer_start(&drain_timer_, [](uv_timer_t* t) {
    auto* self = static_cast<WorkerServer*>(t->data);
    LOG(WARNING) << "drain timeout: cancelling " << self->in_flight_ << " request(s)";
    self->drain_expired_ = true;  // finish even if the application never returns
    auto conns = self->connections_;
    for (auto& [id, conn] : conns) conn->Close("drain timeout");
    self->MaybeFinishShutdown();
  }, static_cast<uint64_t>(options_.drain_timeout * 1000), 0);
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
  for (auto& [id, conn] : conns) conn->Close("worker shutting down");
  if (drain_timer_started_) uv_timer_stop(&drain_timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&drain_timer_), nullptr);
  uv_timer_stop(&grace_timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&grace_timer_), nullptr);
  if (listening_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
    listening_ = false;
  }
  mailbox_.Close();
  done();
}

// ---------------------------------------------------------------- WorkerConnection

WorkerConnection::WorkerConnection(WorkerServer* server, int id)
    : server_(server), id_(id), outbox_(server->options().outbox_high_water) {}

WorkerConnection::~WorkerConnection() = default;

Status WorkerConnection::Accept(uv_stream_t* listener) {
  uv_tcp_init(listener->loop, &tcp_);
  tcp_.data = this;
  self_ = shared_from_this();
  int rc = uv_accept(listener, reinterpret_cast<uv_stream_t*>(&tcp_));
  if (rc != 0) {
    closing_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), [](uv_handle_t* h) {
      static_cast<WorkerConnection*>(h->data)->self_.reset();
    });
    return Status::IOError(std::string("accept: ") + uv_strerror(rc));
  }
  uv_tcp_nodelay(&tcp_, 1);
  sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    peer_ip_ = SockaddrIp(reinterpret_cast<sockaddr*>(&ss));
    peer_port_ = SockaddrPort(reinterpret_cast<sockaddr*>(&ss));
    peer_ = SockaddrToString(reinterpret_cast<sockaddr*>(&ss));
  }
  return Status::OK();
}

void WorkerConnection::Start() {
  LOG(INFO) << "worker connected " << peer_ << "(" << id_ << ")";
  std::string frames;
  proto::Hello hello;
  hello.pid = static_cast<uint32_t>(getpid());
  hello.role = "worker";
  hello.software = Software();
  proto::EncodeHello(&frames, hello);
  proto::EncodeResume(&frames, server_->ResumeEntries());
  if (server_->draining()) proto::EncodeGoAway(&frames);
  SendFromLoop(std::move(frames));
  uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), &OnAlloc, &OnRead);
}

void WorkerConnection::OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<WorkerConnection*>(h->data);
  buf->base = self->read_buf_;
  buf->len = sizeof self->read_buf_;
}

void WorkerConnection::OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<WorkerConnection*>(s->data);
  if (nread < 0) {
    self->Close(nread == UV_EOF ? "closed by the load balancer" : uv_strerror(static_cast<int>(nread)));
    return;
  }
  if (nread == 0) return;
  self->decoder_.Feed(std::string_view(buf->base, static_cast<size_t>(nread)));
  self->HandleFrames();
}

void WorkerConnection::HandleFrames() {
  auto keep = shared_from_this();  // a handler may close the connection
  Status s = proto::DispatchFrames(
      &decoder_, [this] { return !closing_; },
      [this](const proto::Frame& frame) { return HandleFrame(frame); });
  if (!s.ok()) Close("malformed frame: " + s.message());
}

Status WorkerConnection::HandleFrame(const proto::Frame& frame) {
  using proto::Kind;
  if (!got_hello_) {
    proto::Hello hello;
    Status s = proto::CheckFirstFrame(frame, &hello);
    if (!s.ok()) return s;
    got_hello_ = true;
    VLOG(1) << "hello from " << peer_ << ": " << hello.role << " " << hello.software << " pid "
            << hello.pid;
    return Status::OK();
  }
  switch (frame.kind) {
    case Kind::kKeepAlive: {
      Status s = proto::ExpectEmpty(frame);
      if (!s.ok()) return s;
      std::string reply;
      proto::EncodeKeepAlive(&reply);
      SendFromLoop(std::move(reply));
      return Status::OK();
    }
    case Kind::kRequest: {
      // A finished request whose RequestFinished() is still on its way to the loop does not
      // hold its number: RESPONSE_END went out, so the LB may reuse it. RequestDone() then
      // leaves the new entry alone (it only erases its own request).
      auto busy = requests_.find(frame.rno);
      if (busy != requests_.end() && !busy->second->ended()) {
        return Status::ProtocolError("REQUEST for request number " + std::to_string(frame.rno) +
                                     " already in flight");
      }
      proto::Request req;
      Status s = proto::ParseRequest(frame.payload, &req);
      if (!s.ok()) return s;
      auto r = std::make_shared<WorkerRequest>(shared_from_this(), frame.rno, std::move(req));
      std::string line;
      for (const auto& [k, v] : r->request.environ) {
        if (k == "REQUEST_METHOD") line = v + " " + line;
        if (k == "PATH_INFO") line += v;
      }
      for (const auto& [k, v] : r->request.environ) {
        if (k == "QUERY_STRING" && !v.empty()) line += "?" + v;
      }
      server_->host()->Trace("B", r->call.trace_id, line);
      requests_[frame.rno] = std::move(r);
      return Status::OK();
    }
    case Kind::kRequestBody: {
      Status s = proto::CheckBody(frame);
      if (!s.ok()) return s;
      auto it = requests_.find(frame.rno);
      if (it == requests_.end()) return Status::OK();  // cancelled or unknown: ignored
      if (it->second->submitted) {
        return Status::ProtocolError("REQUEST_BODY after REQUEST_END for request " +
                                     std::to_string(frame.rno));
      }
      s = it->second->AppendBody(frame.payload, server_->options().spool_threshold);
      if (!s.ok()) {
        // The body cannot be stored (e.g. disk full): answer 500 ourselves and forget it.
        LOG(ERROR) << "request " << it->second->call.trace_id << ": " << s.ToString();
        std::string frames;
        proto::EncodeResponse(&frames, frame.rno, "500 Internal Server Error",
                              {{"Content-Type", "text/plain"}, {"Content-Length", "0"}});
        proto::EncodeResponseEnd(&frames, frame.rno, proto::Outcome::kComplete);
        requests_.erase(it);
        SendFromLoop(std::move(frames));
      }
      return Status::OK();
    }
    case Kind::kRequestEnd: {
      Status s = proto::ExpectEmpty(frame);
      if (!s.ok()) return s;
      auto it = requests_.find(frame.rno);
      if (it == requests_.end()) return Status::OK();
      if (it->second->submitted) {
        return Status::ProtocolError("second REQUEST_END for request " + std::to_string(frame.rno));
      }
      auto& call = it->second->call;
      std::string declared = "0";
      for (const auto& [k, v] : it->second->request.environ) {
        if (k == "CONTENT_LENGTH" && !v.empty()) declared = v;
      }
      server_->host()->Trace("I", call.trace_id, declared);
      server_->Dispatch(it->second);
      return Status::OK();
    }
    case Kind::kCancel: {
      Status s = proto::ExpectEmpty(frame);
      if (!s.ok()) return s;
      auto it = requests_.find(frame.rno);
      if (it == requests_.end()) return Status::OK();  // finished already: ignored
      it->second->Cancel();
      requests_.erase(it);
      server_->MaybeFinishShutdown();
      return Status::OK();
    }
    case Kind::kHello:
      return Status::ProtocolError("second HELLO");
    default:
      return Status::ProtocolError(std::string(proto::KindName(frame.kind)) +
                                   " is sent by workers, not by load balancers");
  }
}

void WorkerConnection::RequestDone(const std::shared_ptr<WorkerRequest>& req) {
  auto it = requests_.find(req->rno);
  if (it != requests_.end() && it->second == req) requests_.erase(it);
}

void WorkerConnection::SendFromLoop(std::string&& frames) {
  outbox_.Push(std::move(frames));
  FlushOnLoop();
}

void WorkerConnection::Flush() {
  server_->mailbox().Post([self = shared_from_this()] { self->FlushOnLoop(); });
}

namespace {
struct WriteReq {
  uv_write_t req;
  std::string data;
  std::shared_ptr<WorkerConnection> conn;
};
}  // namespace

void WorkerConnection::FlushOnLoop() {
  if (writing_ || closing_) return;
  std::string data = outbox_.Take();
  if (data.empty()) return;
  auto* w = new WriteReq{{}, std::move(data), shared_from_this()};
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  writing_ = true;
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1,
                    [](uv_write_t* req, int status) {
                      auto* w = reinterpret_cast<WriteReq*>(req);
                      auto conn = std::move(w->conn);
                      conn->outbox_.WriteDone(w->data.size());
                      delete w;
                      conn->writing_ = false;
                      if (status < 0) {
                        conn->Close(std::string("write failed: ") + uv_strerror(status));
                      } else {
                        conn->FlushOnLoop();
                      }
                    });
  if (rc != 0) {
    writing_ = false;
    outbox_.WriteDone(w->data.size());
    delete w;
    Close(std::string("write failed: ") + uv_strerror(rc));
  }
}

void WorkerConnection::Close(const std::string& reason) {
  if (closing_) return;
  closing_ = true;
  if (reason.rfind("malformed", 0) == 0) {
    LOG(WARNING) << "worker disconnected " << peer_ << "(" << id_ << "): " << reason;
  } else {
    LOG(INFO) << "worker disconnected " << peer_ << "(" << id_ << "): " << reason;
  }
  outbox_.Close();
  auto requests = std::move(requests_);
  requests_.clear();
  for (auto& [rno, req] : requests) req->Cancel();
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), [](uv_handle_t* h) {
    static_cast<WorkerConnection*>(h->data)->self_.reset();
  });
  server_->ConnectionClosed(this);
}

}  // namespace rlb::worker
