// WorkerLink: connect / handshake / multiplex / keep-alive / reconnect for one worker.
#include "zklb/worker_link.h"

#include <unistd.h>

#include <algorithm>

#include <glog/logging.h>

#include "zklb/load_balancer.h"

namespace rlb::lb {
namespace {

constexpr size_t kHighWater = 1u << 20;   // uploads pause above this many queued bytes
constexpr uint64_t kTickMs = 100;         // timer resolution for deadlines and keep-alives
constexpr double kMaxBackoff = 2.0;       // seconds between failed connection attempts

double EpochSeconds() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct WriteReq {
  uv_write_t req;
  std::string data;
  WorkerLink* link;
};

struct ConnectReq {
  uv_connect_t req;
  WorkerLink* link;
};

}  // namespace

WorkerLink::WorkerLink(LoadBalancer* lb, uv_loop_t* loop, std::string name, HostPort address,
                       std::optional<std::string> version)
    : lb_(lb), loop_(loop), name_(std::move(name)), address_(std::move(address)),
      version_(std::move(version)) {
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
  open_handles_ = 1;
}

WorkerLink::~WorkerLink() = default;

void WorkerLink::Start() {
  uv_timer_start(&timer_, &OnTimer, kTickMs, kTickMs);
  Connect();
}

void WorkerLink::SetWanted(bool wanted, std::optional<std::string> version) {
  wanted_ = wanted;
  if (wanted) version_ = std::move(version);
  if (!wanted && state_ == State::kIdle) Stop();
}

void WorkerLink::Stop() {
  wanted_ = false;
  if (state_ != State::kIdle) Fail("load balancer stopping", false);
  if (!timer_closed_) {
    timer_closed_ = true;
    uv_timer_stop(&timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), [](uv_handle_t* h) {
      auto* self = static_cast<WorkerLink*>(h->data);
      --self->open_handles_;
      self->lb_->ReapLinks();
    });
  }
}

void WorkerLink::Connect() {
  auto addrs = Resolve(address_, false);
  if (!addrs.ok()) {
    LOG(WARNING) << "worker " << name_ << ": " << addrs.status().message();
    ScheduleReconnect(std::max(backoff_ * 2, 0.25));
    return;
  }
  tcp_ = new uv_tcp_t;
  uv_tcp_init(loop_, tcp_);
  ++open_handles_;
  tcp_->data = this;
  auto* req = new ConnectReq{{}, this};
  state_ = State::kConnecting;
  connect_started_ = static_cast<double>(uv_now(loop_));
  conn_version_ = version_;
  ++generation_;
  decoder_ = proto::FrameDecoder();
  got_hello_ = false;
  int rc = uv_tcp_connect(&req->req, tcp_, reinterpret_cast<const sockaddr*>(&addrs->front()),
                          &OnConnect);
  if (rc != 0) {
    delete req;
    Fail(std::string("connect: ") + uv_strerror(rc), false);
  }
}

void WorkerLink::OnConnect(uv_connect_t* req, int status) {
  auto* cr = reinterpret_cast<ConnectReq*>(req);
  WorkerLink* self = cr->link;
  delete cr;
  if (status == UV_ECANCELED) return;  // closed while connecting
  if (status != 0) {
    self->Fail(std::string("cannot connect: ") + uv_strerror(status), false);
    return;
  }
  uv_tcp_nodelay(self->tcp_, 1);
  self->state_ = State::kHandshake;
  self->last_read_ = self->last_write_ = static_cast<double>(uv_now(self->loop_));
  proto::Hello hello;
  hello.pid = static_cast<uint32_t>(getpid());
  hello.role = "lb";
  hello.software = "resumelb 0.1.0";
  proto::EncodeHello(&self->out_, hello);
  self->Flush();
  uv_read_start(reinterpret_cast<uv_stream_t*>(self->tcp_),
                [](uv_handle_t* h, size_t, uv_buf_t* buf) {
                  auto* link = static_cast<WorkerLink*>(h->data);
                  buf->base = link->read_buf_;
                  buf->len = sizeof link->read_buf_;
                },
                &OnRead);
}

void WorkerLink::OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<WorkerLink*>(s->data);
  if (nread < 0) {
    self->Fail(nread == UV_EOF ? "closed by the worker" : uv_strerror(static_cast<int>(nread)),
               false);
    return;
  }
  if (nread == 0) return;
  self->last_read_ = static_cast<double>(uv_now(self->loop_));
  self->decoder_.Feed(std::string_view(buf->base, static_cast<size_t>(nread)));
  self->HandleFrames();
}

void WorkerLink::HandleFrames() {
  uint64_t gen = generation_;  // a handler may fail the link and start a new connection
  Status s = proto::DispatchFrames(
      &decoder_, [&] { return gen == generation_ && state_ != State::kIdle; },
      [this](const proto::Frame& frame) { return HandleFrame(frame); });
  if (!s.ok()) Fail("malformed frame: " + s.message(), true);
}

Status WorkerLink::HandleFrame(const proto::Frame& frame) {
  using proto::Kind;
  if (!got_hello_) {
    proto::Hello hello;
    Status s = proto::CheckFirstFrame(frame, &hello);
    if (!s.ok()) return s;
    got_hello_ = true;
    return Status::OK();
  }
  switch (frame.kind) {
    case Kind::kResume: {
      proto::ResumeEntries entries;
      Status s = proto::ParseResume(frame.payload, &entries);
      if (!s.ok()) return s;
      resume_size_ = entries.size();
      Resume resume(entries.begin(), entries.end());
      if (state_ == State::kHandshake) {
        state_ = State::kReady;
        backoff_ = 0;
        pool_worker_ = std::make_shared<PoolWorker>(name_, conn_version_);
        pool_worker_->owner = this;
        LOG(INFO) << "worker connected " << name_;
      }
      if (state_ == State::kReady) lb_->OnLinkResume(this, std::move(resume));
      return Status::OK();
    }
    case Kind::kKeepAlive:
      return proto::ExpectEmpty(frame);
    case Kind::kGoAway: {
      Status s = proto::ExpectEmpty(frame);
      if (!s.ok()) return s;
      if (state_ == State::kReady) {
        LOG(INFO) << "worker " << name_ << " is draining (GOAWAY)";
        state_ = State::kDraining;
        if (pool_worker_) lb_->OnLinkRemoved(this);
        MaybeCloseDrained();
      }
      return Status::OK();
    }
    case Kind::kResponse: {
      proto::Response response;
      Status s = proto::ParseResponse(frame.payload, &response);
      if (!s.ok()) return s;
      auto it = requests_.find(frame.rno);
      if (it != requests_.end()) it->second.req->OnResponseStart(std::move(response));
      return Status::OK();
    }
    case Kind::kResponseBody: {
      Status s = proto::CheckBody(frame);
      if (!s.ok()) return s;
      auto it = requests_.find(frame.rno);
      if (it != requests_.end()) it->second.req->OnResponseBody(frame.payload);
      return Status::OK();
    }
    case Kind::kResponseEnd: {
      proto::Outcome outcome;
      Status s = proto::ParseResponseEnd(frame.payload, &outcome);
      if (!s.ok()) return s;
      auto it = requests_.find(frame.rno);
      if (it != requests_.end()) {
        LinkRequest* req = it->second.req;
        requests_.erase(it);
        req->OnResponseEnd(outcome);
        MaybeCloseDrained();
      }
      return Status::OK();
    }
    case Kind::kHello:
      return Status::ProtocolError("second HELLO");
    default:
      return Status::ProtocolError(std::string(proto::KindName(frame.kind)) +
                                   " is sent by load balancers, not by workers");
  }
}

uint32_t WorkerLink::NextRno() {
  for (;;) {
    last_rno_ = last_rno_ == 0xFFFFFFFFu ? 1 : last_rno_ + 1;
    if (!requests_.count(last_rno_)) return last_rno_;
  }
}

uint32_t WorkerLink::SendRequest(LinkRequest* req, std::string_view request_class,
                                 const proto::Pairs& environ) {
  uint32_t rno = NextRno();
  requests_[rno] = InFlight{req, EpochSeconds()};
  ++requests_sent_;
  proto::EncodeRequest(&out_, rno, request_class, environ);
  Flush();
  return rno;
}

void WorkerLink::SendBody(uint32_t rno, std::string_view data) {
  while (!data.empty()) {
    size_t n = std::min(data.size(), proto::kPreferredChunk);
    proto::EncodeRequestBody(&out_, rno, data.substr(0, n));
    data.remove_prefix(n);
  }
  Flush();
}

void WorkerLink::SendEnd(uint32_t rno) {
  proto::EncodeRequestEnd(&out_, rno);
  Flush();
}

void WorkerLink::Detach(uint32_t rno, bool cancel) {
  if (requests_.erase(rno) == 0) return;
  if (cancel && connected()) {
    proto::EncodeCancel(&out_, rno);
    Flush();
  }
  MaybeCloseDrained();
}

void WorkerLink::MaybeCloseDrained() {
  // After GOAWAY the LB closes the connection itself once its requests are done, so the
  // worker knows nothing more is coming. From the timer: callers may be mid-request.
  if (state_ == State::kDraining && requests_.empty() && deferred_failure_.empty()) {
    deferred_failure_ = "drained after GOAWAY";
    drained_close_ = true;
  }
}

bool WorkerLink::congested() const { return queued_bytes() > kHighWater; }

void WorkerLink::WaitWritable(LinkRequest* req) { wait_writable_.push_back(req); }

std::optional<double> WorkerLink::oldest_start() const {
  std::optional<double> oldest;
  for (const auto& [rno, f] : requests_) {
    if (!oldest || f.start < *oldest) oldest = f.start;
  }
  return oldest;
}

void WorkerLink::Flush() {
  if (writing_ || out_.empty() || !tcp_ || !deferred_failure_.empty() ||
      (state_ != State::kHandshake && state_ != State::kReady && state_ != State::kDraining)) {
    return;
  }
  last_write_ = static_cast<double>(uv_now(loop_));
  // Usually the kernel takes it all at once: no write request, no completion callback.
  uv_buf_t direct = uv_buf_init(out_.data(), static_cast<unsigned>(out_.size()));
  int n = uv_try_write(reinterpret_cast<uv_stream_t*>(tcp_), &direct, 1);
  if (n < 0 && n != UV_EAGAIN) {
    // Not Fail() here: callers are in the middle of sending a request. The timer fails
    // the link on its next tick.
    deferred_failure_ = std::string("write failed: ") + uv_strerror(n);
    return;
  }
  if (n > 0) {
    if (static_cast<size_t>(n) == out_.size()) {
      out_.clear();
      return;
    }
    out_.erase(0, static_cast<size_t>(n));
  }
  auto* w = new WriteReq{{}, std::move(out_), this};
  out_.clear();
  writing_ = true;
  writing_bytes_ = w->data.size();
  last_write_ = static_cast<double>(uv_now(loop_));
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(tcp_), &buf, 1,
                    [](uv_write_t* req, int status) {
                      auto* w = reinterpret_cast<WriteReq*>(req);
                      WorkerLink* self = w->link;
                      delete w;
                      self->writing_ = false;
                      self->writing_bytes_ = 0;
                      if (status == UV_ECANCELED) return;
                      if (status < 0) {
                        self->Fail(std::string("write failed: ") + uv_strerror(status), false);
                        return;
                      }
                      self->Flush();
                      if (!self->congested() && !self->wait_writable_.empty()) {
                        auto waiting = std::move(self->wait_writable_);
                        self->wait_writable_.clear();
                        for (LinkRequest* r : waiting) r->OnLinkWritable();
                      }
                    });
  if (rc != 0) {
    writing_ = false;
    writing_bytes_ = 0;
    delete w;
    deferred_failure_ = std::string("write failed: ") + uv_strerror(rc);
  }
}

void WorkerLink::Fail(const std::string& reason, bool log_as_warning) {
  deferred_failure_.clear();
  if (state_ == State::kIdle) return;
  bool was_established = state_ == State::kReady || state_ == State::kDraining;
  if (drained_close_) {  // a worker that said GOAWAY is shutting down: do not hurry back
    drained_close_ = false;
    was_established = false;
  }
  if (was_established || log_as_warning) {
    if (log_as_warning) {
      LOG(WARNING) << "worker disconnected " << name_ << ": " << reason;
    } else {
      LOG(INFO) << "worker disconnected " << name_ << ": " << reason;
    }
  } else {
    VLOG(1) << "worker " << name_ << ": " << reason;
  }
  state_ = State::kIdle;
  ++generation_;
  out_.clear();
  wait_writable_.clear();
  if (pool_worker_) lb_->OnLinkRemoved(this);
  auto requests = std::move(requests_);
  requests_.clear();
  if (tcp_) {
    uv_tcp_t* tcp = tcp_;
    tcp_ = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(tcp), [](uv_handle_t* h) {
      auto* self = static_cast<WorkerLink*>(h->data);
      delete reinterpret_cast<uv_tcp_t*>(h);
      --self->open_handles_;
      self->lb_->ReapLinks();
    });
  }
  for (auto& [rno, f] : requests) f.req->OnLinkLost(reason);
  PoolWorkerPtr old = std::move(pool_worker_);
  pool_worker_.reset();
  (void)old;  // in-flight requests hold their own reference for Put()
  if (wanted_) {
    ScheduleReconnect(was_established ? 0 : std::min(kMaxBackoff, std::max(0.1, backoff_ * 2)));
  }
}

void WorkerLink::ScheduleReconnect(double delay) {
  backoff_ = delay;
  reconnect_at_ = static_cast<double>(uv_now(loop_)) + delay * 1000;
}

void WorkerLink::OnTimer(uv_timer_t* t) {
  auto* self = static_cast<WorkerLink*>(t->data);
  const LbOptions& o = self->lb_->options();
  double now = static_cast<double>(uv_now(self->loop_));
  switch (self->state_) {
    case State::kIdle:
      if (self->wanted_ && now >= self->reconnect_at_) self->Connect();
      break;
    case State::kConnecting:
    case State::kHandshake:
      if (!self->deferred_failure_.empty()) {
        self->Fail(self->deferred_failure_, false);
      } else if (now - self->connect_started_ > o.connect_timeout * 1000) {
        self->Fail("no answer within " + std::to_string(o.connect_timeout) + " s of connecting",
                   false);
      }
      break;
    case State::kReady:
    case State::kDraining:
      if (!self->deferred_failure_.empty()) {
        self->Fail(self->deferred_failure_, false);
        break;
      }
      if (now - self->last_read_ > o.worker_timeout * 1000) {
        self->Fail("stopped answering (nothing read for " + std::to_string(o.worker_timeout) +
                   " s)", true);
        break;
      }
      // Ask for an answer whenever either direction has been quiet, at most once per
      // interval: a worker whose app threads are all busy still answers from its loop.
      if ((now - self->last_write_ >= o.worker_keepalive * 1000 ||
           now - self->last_read_ >= o.worker_keepalive * 1000) &&
          now - self->last_keepalive_ >= o.worker_keepalive * 1000) {
        self->last_keepalive_ = now;
        proto::EncodeKeepAlive(&self->out_);
        self->Flush();
      }
      break;
  }
}

}  // namespace rlb::lb
