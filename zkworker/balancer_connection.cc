// BalancerConnection: HELLO, frame handling per request number, and the outbound write
// path of one load balancer's connection.
#include "zkworker/balancer_connection.h"

#include <glog/logging.h>

#include "common/net_address.h"
#include "zkworker/worker_server.h"

namespace rlb::worker {

std::string DisconnectReason(DisconnectCause cause, const std::string& detail) {
  switch (cause) {
    case DisconnectCause::kClosedByBalancer: return "closed by the load balancer";
    case DisconnectCause::kReadError: return detail;
    case DisconnectCause::kWriteError: return "write failed: " + detail;
    case DisconnectCause::kMalformedFrame: return "malformed frame: " + detail;
    case DisconnectCause::kDrainTimeout: return "drain timeout";
    case DisconnectCause::kShutdown: return "worker shutting down";
    case DisconnectCause::kAuthFailed: return "link refused: the load balancer " + detail;
  }
  return detail;
}

int DisconnectSeverity(DisconnectCause cause) {
  return cause == DisconnectCause::kMalformedFrame || cause == DisconnectCause::kAuthFailed
             ? google::GLOG_WARNING
             : google::GLOG_INFO;
}

BalancerConnection::BalancerConnection(WorkerServer* server, int id)
    : server_(server), id_(id),
      auth_(&server->options().link_secret, LinkHandshake::Side::kAccepting),
      outbox_(server->options().outbox_high_water), writer_(this) {}

BalancerConnection::~BalancerConnection() = default;

Status BalancerConnection::Accept(uv_stream_t* listener) {
  CHECK_EQ(tcp_.Init(listener->loop, this), 0);  // fails only on invalid arguments
  auto accepted = AcceptTcp(listener, tcp_.get());
  if (!accepted.ok()) {
    closing_ = true;
    tcp_.Close();
    return accepted.status();
  }
  peer_ip_ = accepted->peer_ip;
  peer_port_ = accepted->peer_port;
  peer_ = accepted->PeerToString();
  writer_.Attach(tcp_.stream());
  uv_os_fd_t fd;
  CHECK_EQ(uv_fileno(reinterpret_cast<uv_handle_t*>(tcp_.get()), &fd), 0);  // it is open
  outbox_.AttachSocket(fd);  // producers may now write responses themselves
  return Status::OK();
}

void BalancerConnection::Start() {
  LOG(INFO) << "load balancer connected " << peer_ << "(" << id_ << ")";
  std::string frames;
  proto::EncodeHello(&frames, proto::MakeHello("worker", "zkworker"));
  if (auth_.has_secret()) {  // the résumé waits for the LB's PROOF
    auth_.AppendOpening(&frames);
    CHECK_EQ(auth_deadline_.Init(tcp_.get()->loop, this), 0);
    CHECK_EQ(uv_timer_start(auth_deadline_.get(), [](uv_timer_t* t) {
      static_cast<BalancerConnection*>(t->data)->Close(
          DisconnectCause::kAuthFailed,
          "did not prove the link secret within " +
              std::to_string(static_cast<int>(kLinkHandshakeDeadline)) + " s");
    }, static_cast<uint64_t>(kLinkHandshakeDeadline * 1000), 0), 0);
  } else {
    AppendGreeting(&frames);
  }
  SendFromLoop(std::move(frames));
  if (closing_) return;  // the first write failed
  int rc = uv_read_start(tcp_.stream(), &OnAlloc, &OnRead);
  if (rc != 0) Close(DisconnectCause::kReadError, uv_strerror(rc));
}

void BalancerConnection::AppendGreeting(std::string* frames) {
  proto::EncodeResume(frames, server_->ResumeEntries());
  if (server_->draining()) proto::EncodeGoAway(frames);
}

void BalancerConnection::OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<BalancerConnection*>(h->data);
  buf->base = self->read_buf_;
  buf->len = sizeof self->read_buf_;
}

void BalancerConnection::OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<BalancerConnection*>(s->data);
  if (nread < 0) {
    if (!self->auth_.peer_proved()) {  // EOF or a reset before the LB proved the secret
      self->Close(DisconnectCause::kAuthFailed,
                  "closed the connection without proving the link secret (it has no link "
                  "secret?)");
    } else if (nread == UV_EOF) {
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
  if (!s.ok()) {
    Close(s.code() == Status::Code::kPermissionDenied ? DisconnectCause::kAuthFailed
                                                      : DisconnectCause::kMalformedFrame,
          s.message());
  }
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
  if (frame.kind == Kind::kChallenge || frame.kind == Kind::kProof) return HandleAuthFrame(frame);
  if (!auth_.peer_proved()) return auth_.RefuseUnproved(frame);  // no REQUEST unproven
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
      if (server_->host()->tracing()) {
        std::string line;
        for (const auto& [k, v] : r->request.environ) {
          if (k == "REQUEST_METHOD") line = v + " " + line;
          if (k == "PATH_INFO") line += v;
        }
        for (const auto& [k, v] : r->request.environ) {
          if (k == "QUERY_STRING" && !v.empty()) line += "?" + v;
        }
        server_->host()->Trace("B", r->call.TraceId(), line);
      }
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
        LOG(ERROR) << "request " << it->second->call.TraceId() << ": " << s.ToString();
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
      if (server_->host()->tracing()) {
        std::string declared = "0";
        for (const auto& [k, v] : it->second->request.environ) {
          if (k == "CONTENT_LENGTH" && !v.empty()) declared = v;
        }
        server_->host()->Trace("I", it->second->call.TraceId(), declared);
      }
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

Status BalancerConnection::HandleAuthFrame(const proto::Frame& frame) {
  const bool was_proved = auth_.peer_proved();
  std::string frames;
  Status s = auth_.OnFrame(frame, &frames);
  if (!s.ok()) return s;
  if (!was_proved && auth_.peer_proved()) {
    auth_deadline_.Close();
    VLOG(1) << "load balancer " << peer_ << "(" << id_ << ") proved the link secret";
    AppendGreeting(&frames);
  }
  if (!frames.empty()) SendFromLoop(std::move(frames));
  return Status::OK();
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

void BalancerConnection::FlushOnLoop() {
  if (closing_) return;
  std::string data = outbox_.Take();
  outbox_in_writer_ += data.size();
  writer_.Append(std::move(data));
  int rc = writer_.Flush();
  if (rc != 0) {
    Close(DisconnectCause::kWriteError, uv_strerror(rc));
    return;
  }
  ReportWritten();
}

void BalancerConnection::ReportWritten() {
  // Every byte the writer holds came from the outbox (SendFromLoop queues there too).
  size_t held = writer_.queued_bytes();
  if (held >= outbox_in_writer_) return;
  outbox_.WriteDone(outbox_in_writer_ - held);
  outbox_in_writer_ = held;
}

void BalancerConnection::OnWritten() {
  ReportWritten();
  FlushOnLoop();  // what producers queued meanwhile
}

void BalancerConnection::OnWriteError(int uv_error) {
  Close(DisconnectCause::kWriteError, uv_strerror(uv_error));
}

void BalancerConnection::Close(DisconnectCause cause, const std::string& detail) {
  if (closing_) return;
  closing_ = true;
  auth_deadline_.Close();
  // A refused LB may retry every second or two: its warning is repeated once a minute.
  const int severity = cause == DisconnectCause::kAuthFailed && !AuthWarningDue(peer_ip_ + detail)
                           ? google::GLOG_INFO
                           : DisconnectSeverity(cause);
  google::LogMessage(__FILE__, __LINE__, severity).stream()
      << "load balancer disconnected " << peer_ << "(" << id_
      << "): " << DisconnectReason(cause, detail);
  outbox_.Close();
  auto requests = std::move(requests_);
  requests_.clear();
  for (auto& [rno, req] : requests) req->Cancel();
  writer_.Detach();
  CHECK_EQ(uv_read_stop(tcp_.stream()), 0);
  tcp_.Close();
  server_->ConnectionClosed(this);
}

}  // namespace rlb::worker
