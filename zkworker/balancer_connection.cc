// BalancerConnection: HELLO, frame handling per request number, and the outbound write
// path of one load balancer's connection.
#include "zkworker/balancer_connection.h"

#include <unistd.h>

#include <glog/logging.h>

#include "common/net_address.h"
#include "zkworker/worker_server.h"

namespace rlb::worker {
namespace {

std::string Software() { return "zkworker 0.1.0"; }

}  // namespace

std::string DisconnectReason(DisconnectCause cause, const std::string& detail) {
  switch (cause) {
    case DisconnectCause::kClosedByBalancer: return "closed by the load balancer";
    case DisconnectCause::kReadError: return detail;
    case DisconnectCause::kWriteError: return "write failed: " + detail;
    case DisconnectCause::kMalformedFrame: return "malformed frame: " + detail;
    case DisconnectCause::kDrainTimeout: return "drain timeout";
    case DisconnectCause::kShutdown: return "worker shutting down";
  }
  return detail;
}

int DisconnectSeverity(DisconnectCause cause) {
  return cause == DisconnectCause::kMalformedFrame ? google::GLOG_WARNING : google::GLOG_INFO;
}

BalancerConnection::BalancerConnection(WorkerServer* server, int id)
    : server_(server), id_(id), outbox_(server->options().outbox_high_water) {}

BalancerConnection::~BalancerConnection() = default;

Status BalancerConnection::Accept(uv_stream_t* listener) {
  CHECK_EQ(uv_tcp_init(listener->loop, &tcp_), 0);  // fails only on invalid arguments
  tcp_.data = this;
  self_ = shared_from_this();
  int rc = uv_accept(listener, reinterpret_cast<uv_stream_t*>(&tcp_));
  if (rc != 0) {
    closing_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &OnClosed);
    return Status::IOError(std::string("accept: ") + uv_strerror(rc));
  }
  rc = uv_tcp_nodelay(&tcp_, 1);
  // Only latency suffers without TCP_NODELAY (e.g. the peer already reset): carry on.
  if (rc != 0) VLOG(1) << "cannot disable Nagle's algorithm: " << uv_strerror(rc);
  sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    peer_ip_ = SockaddrIp(reinterpret_cast<sockaddr*>(&ss));
    peer_port_ = SockaddrPort(reinterpret_cast<sockaddr*>(&ss));
    peer_ = SockaddrToString(reinterpret_cast<sockaddr*>(&ss));
  }
  return Status::OK();
}

void BalancerConnection::Start() {
  LOG(INFO) << "load balancer connected " << peer_ << "(" << id_ << ")";
  std::string frames;
  proto::Hello hello;
  hello.pid = static_cast<uint32_t>(getpid());
  hello.role = "worker";
  hello.software = Software();
  proto::EncodeHello(&frames, hello);
  proto::EncodeResume(&frames, server_->ResumeEntries());
  if (server_->draining()) proto::EncodeGoAway(&frames);
  SendFromLoop(std::move(frames));
  int rc = uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), &OnAlloc, &OnRead);
  if (rc != 0) Close(DisconnectCause::kReadError, uv_strerror(rc));
}

void BalancerConnection::OnClosed(uv_handle_t* h) {
  auto* self = static_cast<BalancerConnection*>(h->data);
  self->server_->ReleaseClosedConnection(std::move(self->self_));
}

void BalancerConnection::OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<BalancerConnection*>(h->data);
  buf->base = self->read_buf_;
  buf->len = sizeof self->read_buf_;
}

void BalancerConnection::OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<BalancerConnection*>(s->data);
  if (nread < 0) {
    if (nread == UV_EOF) {
      self->Close(DisconnectCause::kClosedByBalancer);
    } else {
      self->Close(DisconnectCause::kReadError, uv_strerror(static_cast<int>(nread)));
    }
    return;
  }
  if (nread == 0) return;
  self->decoder_.Feed(std::string_view(buf->base, static_cast<size_t>(nread)));
  self->HandleFrames();
}

void BalancerConnection::HandleFrames() {
  auto keep = shared_from_this();  // a handler may close the connection
  Status s = proto::DispatchFrames(
      &decoder_, [this] { return !closing_; },
      [this](const proto::Frame& frame) { return HandleFrame(frame); });
  if (!s.ok()) Close(DisconnectCause::kMalformedFrame, s.message());
}

Status BalancerConnection::HandleFrame(const proto::Frame& frame) {
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
      if (!it->second->receiving()) {
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
      if (!it->second->receiving()) {
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

void BalancerConnection::RequestDone(const std::shared_ptr<WorkerRequest>& req) {
  auto it = requests_.find(req->rno);
  if (it != requests_.end() && it->second == req) requests_.erase(it);
}

void BalancerConnection::SendFromLoop(std::string&& frames) {
  outbox_.Push(std::move(frames));
  FlushOnLoop();
}

void BalancerConnection::Flush() {
  server_->mailbox().Post([self = shared_from_this()] { self->FlushOnLoop(); });
}

namespace {
struct WriteReq {
  uv_write_t req;
  std::string data;
  std::shared_ptr<BalancerConnection> conn;
};
}  // namespace

void BalancerConnection::FlushOnLoop() {
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
                        conn->Close(DisconnectCause::kWriteError, uv_strerror(status));
                      } else {
                        conn->FlushOnLoop();
                      }
                    });
  if (rc != 0) {
    writing_ = false;
    outbox_.WriteDone(w->data.size());
    delete w;
    Close(DisconnectCause::kWriteError, uv_strerror(rc));
  }
}

void BalancerConnection::Close(DisconnectCause cause, const std::string& detail) {
  if (closing_) return;
  closing_ = true;
  google::LogMessage(__FILE__, __LINE__, DisconnectSeverity(cause)).stream()
      << "load balancer disconnected " << peer_ << "(" << id_
      << "): " << DisconnectReason(cause, detail);
  outbox_.Close();
  auto requests = std::move(requests_);
  requests_.clear();
  for (auto& [rno, req] : requests) req->Cancel();
  CHECK_EQ(uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_)), 0);
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &OnClosed);
  server_->ConnectionClosed(this);
}

}  // namespace rlb::worker
