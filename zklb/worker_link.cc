// WorkerLink: connect / handshake / multiplex / keep-alive / reconnect for one worker.
#include "zklb/worker_link.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ctime>
#include <string_view>
#include <utility>
#include <vector>

#include <glog/logging.h>

#include "common/text.h"
#include "common/wall_clock.h"
#include "zklb/class_name.h"

namespace rlb::lb {
namespace {

constexpr size_t kHighWater = 1u << 20;   // uploads pause above this many queued bytes
constexpr uint64_t kTickMs = 100;         // timer resolution for deadlines and keep-alives
constexpr double kMaxBackoff = 2.0;       // seconds between failed attempts (resolve or connect)
constexpr int kMaxLookups = 3;             // name lookups in flight per worker address
constexpr double kErrorLogInterval = 60e3;  // ms: a repeated attempt failure is logged this often
// Map nodes of finished requests kept for the next ones (an allocation less per request).
constexpr size_t kSpareNodes = 64;

double NextBackoff(double previous) { return std::min(kMaxBackoff, std::max(0.1, previous * 2)); }

bool IsIpLiteral(const std::string& host) {
  if (host.empty()) return true;  // the loopback default
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

struct ConnectReq {
  uv_connect_t req;
  WorkerLink* link;
};

// A RESUME payload, read as proto::ParseResume reads it (the same checks and errors), but
// keeping only the `max_classes` best-scoring classes (equal scores: the smaller name
// first) of at most kMaxClassNameBytes: the LB never sends a longer class (it sends its
// stand-in, zklb/class_name.h), so a longer one can never be asked for and is ignored, as
// the pool would (BoundResume). Nothing is copied for a class that is not kept, and the work is O(classes) whatever their number: candidates are collected as
// views into the payload and culled with nth_element whenever 2 * max_classes have
// gathered, after which only a class beating the current cut-off is a candidate. A résumé
// at the protocol's limits (2^20 classes, 16 MiB) therefore costs milliseconds of loop
// time, not the second that copying and indexing every class took. Sets *count to the
// number of classes the worker sent.
Status ParseBestResume(std::string_view payload, size_t max_classes, Resume* out, size_t* count) {
  auto truncated = [] { return Status::ProtocolError("malformed RESUME (truncated field or over limit)"); };
  auto u32 = [&payload](uint32_t* v) {
    if (payload.size() < 4) return false;
    const auto* u = reinterpret_cast<const unsigned char*>(payload.data());
    *v = (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
    payload.remove_prefix(4);
    return true;
  };
  uint32_t n;
  if (!u32(&n)) return truncated();
  if (n > proto::kMaxResumeEntries) return Status::ProtocolError("RESUME has too many classes");
  if (n > payload.size() / 12) return truncated();
  using Candidate = std::pair<double, std::string_view>;
  auto better = [](const Candidate& a, const Candidate& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  };
  std::vector<Candidate> best;
  best.reserve(std::min<size_t>(n, 2 * max_classes));
  bool culled = false;  // once culled, best[max_classes - 1] is the cut-off
  Candidate cutoff;
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t len, hi, lo;
    if (!u32(&len) || len > proto::kMaxClassBytes || payload.size() < len) return truncated();
    std::string_view name = payload.substr(0, len);
    payload.remove_prefix(len);
    if (!u32(&hi) || !u32(&lo)) return truncated();
    const uint64_t bits = (uint64_t{hi} << 32) | lo;
    double score;
    std::memcpy(&score, &bits, sizeof score);
    if (!std::isfinite(score) || score < 0) {
      return Status::ProtocolError("RESUME score for class '" + std::string(name) +
                                   "' is not finite or is negative");
    }
    if (name.size() > kMaxClassNameBytes) continue;
    if (culled && !better(Candidate(score, name), cutoff)) continue;
    best.emplace_back(score, name);
    if (best.size() == 2 * max_classes) {
      std::nth_element(best.begin(), best.begin() + static_cast<ptrdiff_t>(max_classes - 1),
                       best.end(), better);
      best.resize(max_classes);
      cutoff = best.back();
      culled = true;
    }
  }
  if (!payload.empty()) return Status::ProtocolError("malformed RESUME (trailing bytes)");
  if (best.size() > max_classes) {
    std::nth_element(best.begin(), best.begin() + static_cast<ptrdiff_t>(max_classes - 1),
                     best.end(), better);
    best.resize(max_classes);
  }
  *count = n;
  out->clear();
  out->reserve(best.size());
  for (const auto& [score, name] : best) out->try_emplace(std::string(name), score);
  return Status::OK();
}

}  // namespace

// One uv_getaddrinfo in flight. `link` is cleared when the link gives up on it (timeout,
// stop), so a late answer only frees it; the link never waits on a lookup thread.
struct WorkerLink::ResolveRequest {
  uv_getaddrinfo_t req;
  WorkerLink* link;
  std::shared_ptr<int> lookups_in_flight;
};

WorkerLink::WorkerLink(Observer* observer, const LbOptions* options, uv_loop_t* loop,
                       std::string name, HostPort address, std::optional<std::string> version,
                       WriteBatcher* batcher)
    : observer_(observer), options_(options), loop_(loop), name_(std::move(name)),
      address_(std::move(address)), version_(std::move(version)), writer_(this) {
  if (batcher) writer_.BatchWith(batcher);
  CHECK_EQ(timer_.Init(loop_, this), 0);
}

WorkerLink::~WorkerLink() {
  if (holds_fd_slot_) fd_budget_->ReleaseLink();
}

void WorkerLink::Start() {
  CHECK_EQ(uv_timer_start(timer_.get(), &OnTimer, kTickMs, kTickMs), 0);
  Connect();
}

void WorkerLink::SetWanted(bool wanted, std::optional<std::string> version) {
  wanted_ = wanted;
  if (wanted) version_ = std::move(version);
}

void WorkerLink::Stop() {
  wanted_ = false;
  stopped_ = true;
  if (resolving_) {
    resolving_->link = nullptr;
    resolving_ = nullptr;
  }
  if (state_ == State::kResolving) state_ = State::kIdle;
  if (state_ != State::kIdle) Fail({LinkFailure::kStopping, ""});
  timer_.Close();
}

void WorkerLink::Connect() {
  conn_version_ = version_;
  ++generation_;
  state_ = State::kResolving;  // the attempt has begun (AttemptFailed needs to see it)
  if (IsIpLiteral(address_.host)) {  // no DNS: resolved inline, never blocks
    auto addrs = Resolve(address_, false);
    if (!addrs.ok()) {
      AttemptFailed({LinkFailure::kResolveFailed, addrs.status().message()});
      return;
    }
    ConnectTo(reinterpret_cast<const sockaddr*>(&addrs->front()));
    return;
  }
  // Abandoned lookups still hold resolver threads (a resolver that never answers holds
  // one until the C library gives up): a few may overlap, so a name that becomes
  // resolvable is found at the next attempt, but never more than kMaxLookups.
  if (*lookups_in_flight_ >= kMaxLookups) {
    AttemptFailed({LinkFailure::kResolveFailed,
                   "'" + address_.ToString() + "': " + std::to_string(kMaxLookups) +
                       " lookups still unanswered"});
    return;
  }
  auto* r = new ResolveRequest{{}, this, lookups_in_flight_};
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  std::string port = std::to_string(address_.port);
  int rc = uv_getaddrinfo(loop_, &r->req, &OnResolved, address_.host.c_str(), port.c_str(), &hints);
  if (rc != 0) {
    delete r;
    AttemptFailed({LinkFailure::kResolveFailed, uv_strerror(rc)});
    return;
  }
  resolving_ = r;
  ++*lookups_in_flight_;
  resolve_started_ = static_cast<double>(uv_now(loop_));
}

void WorkerLink::OnResolved(uv_getaddrinfo_t* req, int status, addrinfo* res) {
  auto* r = reinterpret_cast<ResolveRequest*>(req);
  WorkerLink* self = r->link;
  --*r->lookups_in_flight;
  delete r;
  if (self == nullptr) {  // abandoned: the link gave up on it, or is gone
    uv_freeaddrinfo(res);
    return;
  }
  self->resolving_ = nullptr;
  if (status != 0 || res == nullptr) {
    uv_freeaddrinfo(res);
    self->AttemptFailed({LinkFailure::kResolveFailed,
                         "'" + self->address_.ToString() + "': " + uv_strerror(status)});
    return;
  }
  sockaddr_storage address{};
  std::memcpy(&address, res->ai_addr, res->ai_addrlen);
  uv_freeaddrinfo(res);
  self->ConnectTo(reinterpret_cast<const sockaddr*>(&address));
}

void WorkerLink::ConnectTo(const sockaddr* address) {
  if (fd_budget_ && !holds_fd_slot_) {
    if (!fd_budget_->TryAcquireLink()) {
      FdShortage("no file descriptor to spare: " + std::to_string(fd_budget_->links_open()) +
                 " worker connections open, the most the open-file limit (" +
                 std::to_string(fd_budget_->limit()) + ") leaves beside client connections");
      return;
    }
    holds_fd_slot_ = true;
  }
  int rc = tcp_.Init(loop_, this);
  if (rc != 0) {
    state_ = State::kConnecting;
    AttemptFailed({LinkFailure::kConnectFailed, std::string("socket: ") + uv_strerror(rc)});
    return;
  }
  auto* req = new ConnectReq{{}, this};
  state_ = State::kConnecting;
  connect_started_ = static_cast<double>(uv_now(loop_));
  decoder_ = proto::FrameDecoder();
  got_hello_ = false;
  auth_ = LinkHandshake(&options_->link_secret, LinkHandshake::Side::kConnecting);
  rc = uv_tcp_connect(&req->req, tcp_.get(), address, &OnConnect);
  if (rc != 0) {
    delete req;
    if (rc == UV_EMFILE || rc == UV_ENFILE) {  // socket(): the kernel's limit
      FdShortage(std::string("socket: ") + uv_strerror(rc));
      return;
    }
    Fail({LinkFailure::kConnectFailed, uv_strerror(rc)});
  }
}

void WorkerLink::FdShortage(const std::string& detail) {
  state_ = State::kConnecting;  // an attempt that failed (AttemptFailed needs a state)
  AttemptFailed({LinkFailure::kConnectFailed, detail}, /*fd_shortage=*/true);
  if (!stopped_) observer_->OnLinkFdShortage(this);
}

void WorkerLink::CloseSocket() {
  tcp_.Close();
  if (holds_fd_slot_) {
    holds_fd_slot_ = false;
    fd_budget_->ReleaseLink();
  }
}

const char* WorkerLink::state_name() const {
  switch (state_) {
    case State::kIdle: return "idle";
    case State::kResolving: return "resolving";
    case State::kConnecting: return "connecting";
    case State::kHandshake: return "handshake";
    case State::kReady: return "ready";
    case State::kDraining: return "draining";
  }
  return "?";
}

void WorkerLink::RecordError(const LinkError& error) {
  ++failures_;
  last_error_ = error.ToString();
  last_error_time_ = EpochSeconds();
}

void WorkerLink::AttemptFailed(LinkError error, bool fd_shortage) {
  if (state_ == State::kIdle) return;
  fd_starved_ = fd_shortage;
  if (resolving_) {  // give up on the lookup; its late answer is dropped
    resolving_->link = nullptr;
    resolving_ = nullptr;
  }
  std::string text = error.ToString();
  double now = static_cast<double>(uv_now(loop_));
  // Operators see every new reason at once, and a persisting one once a minute.
  if (fd_shortage) {  // the owner reports shortages for all links at once
    VLOG(1) << "worker " << name_ << ": " << text;
  } else if (text != last_error_ || now - last_error_logged_ >= kErrorLogInterval) {
    LOG(WARNING) << "worker " << name_
                 << (error.cause == LinkFailure::kAuthFailed ? " " + error.detail
                                                            : " unreachable: " + text)
                 << (wanted_ ? " (retrying)" : "");
    last_error_logged_ = now;
  } else {
    VLOG(1) << "worker " << name_ << ": " << text;
  }
  RecordError(error);
  state_ = State::kIdle;
  ++generation_;
  writer_.Detach();  // a failed handshake had attached it: the next connection attaches again
  CloseSocket();
  if (wanted_) {
    ScheduleReconnect(NextBackoff(backoff_));
  } else if (!stopped_) {
    observer_->OnLinkIdle(this);
  }
}

void WorkerLink::OnConnect(uv_connect_t* req, int status) {
  auto* cr = reinterpret_cast<ConnectReq*>(req);
  WorkerLink* self = cr->link;
  delete cr;
  if (status == UV_ECANCELED) return;  // closed while connecting: the link may be gone
  if (status != 0) {
    self->Fail({LinkFailure::kConnectFailed, uv_strerror(status)});
    return;
  }
  uv_tcp_nodelay(self->tcp_.get(), 1);  // best effort
  self->state_ = State::kHandshake;
  self->last_read_ = self->last_write_ = static_cast<double>(uv_now(self->loop_));
  self->writer_.Attach(self->tcp_.stream());
  proto::EncodeHello(self->writer_.pending(), proto::MakeHello("lb", "resumelb"));
  self->auth_.AppendOpening(self->writer_.pending());
  self->Flush();
  self->StartReading();
}

void WorkerLink::StartReading() {
  int rc = uv_read_start(tcp_.stream(),
                         [](uv_handle_t* h, size_t, uv_buf_t* buf) {
                           auto* link = static_cast<WorkerLink*>(h->data);
                           buf->base = link->read_buf_;
                           buf->len = sizeof link->read_buf_;
                         },
                         &OnRead);
  if (rc != 0) deferred_failure_ = LinkError{LinkFailure::kReadError, uv_strerror(rc)};
}

void WorkerLink::PauseReads(LinkRequest* req) {
  bool was_reading = read_pausers_.empty();
  read_pausers_.insert(req);
  if (was_reading && tcp_.open() && state_ != State::kConnecting) {
    uv_read_stop(tcp_.stream());
    VLOG(1) << "worker " << name_ << ": not reading (a client's response buffer is full)";
  }
}

void WorkerLink::ResumeReads(LinkRequest* req) {
  if (read_pausers_.erase(req) == 0 || !read_pausers_.empty()) return;
  if (tcp_.open() && state_ != State::kIdle && state_ != State::kConnecting) {
    last_read_ = static_cast<double>(uv_now(loop_));  // the silence deadline starts again
    StartReading();
  }
}

void WorkerLink::OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<WorkerLink*>(s->data);
  if (self == nullptr) return;
  if (nread < 0) {
    if (nread == UV_EOF) {
      self->Fail({LinkFailure::kClosedByWorker, ""});
    } else {
      self->Fail({LinkFailure::kReadError, uv_strerror(static_cast<int>(nread))});
    }
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
  if (!s.ok()) {
    Fail({s.code() == Status::Code::kPermissionDenied ? LinkFailure::kAuthFailed
                                                      : LinkFailure::kMalformedFrame,
          s.message()});
  }
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
  if (frame.kind == Kind::kChallenge || frame.kind == Kind::kProof) {
    Status s = auth_.OnFrame(frame, writer_.pending());
    // Our PROOF leaves now, even when this same read then fails the link: a worker with
    // another secret can then log the mismatch instead of a bare close.
    if (!writer_.pending()->empty()) {
      int rc = writer_.FlushImmediately();
      if (rc != 0) deferred_failure_ = LinkError{LinkFailure::kWriteError, uv_strerror(rc)};
    }
    return s;
  }
  if (!auth_.peer_proved()) return auth_.RefuseUnproved(frame);  // never pooled unproven
  switch (frame.kind) {
    case Kind::kResume: {
      // Only what the pool can keep is taken (pool.h, ClassLimits).
      const uint64_t started = uv_hrtime();
      Resume resume;
      size_t count = 0;
      Status s = ParseBestResume(frame.payload, ClassLimits{}.per_worker, &resume, &count);
      if (!s.ok()) return s;
      resume_size_ = count;
      VLOG(1) << "resume from " << name_ << ": " << count << " classes, " << resume.size()
              << " kept, read in " << static_cast<double>(uv_hrtime() - started) / 1e6 << " ms";
      if (state_ == State::kHandshake) {
        state_ = State::kReady;
        backoff_ = 0;
        fd_starved_ = false;
        if (!last_error_.empty()) {
          LOG(INFO) << "worker " << name_ << " reachable again (last error: " << last_error_
                    << ")";
          last_error_.clear();
          last_error_logged_ = -1e18;
        }
        pool_worker_ = std::make_shared<PoolWorker>(name_, conn_version_);
        LOG(INFO) << "worker connected " << name_;
      }
      if (state_ == State::kReady) observer_->OnLinkResume(this, std::move(resume));
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
        if (pool_worker_) observer_->OnLinkRemoved(this);
        MaybeCloseDrained();
      }
      return Status::OK();
    }
    case Kind::kResponse: {
      // Parsed into the link's own Response: its header list is reused.
      Status s = proto::ParseResponse(frame.payload, &response_);
      if (!s.ok()) return s;
      auto it = requests_.find(frame.rno);
      if (it != requests_.end()) it->second.req->OnResponseStart(response_);
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
        Forget(it);
        ResumeReads(req);
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
  if (spare_nodes_.empty()) {
    requests_.emplace(rno, InFlight{req, EpochSeconds()});
  } else {  // a node of a finished request: no allocation
    auto node = std::move(spare_nodes_.back());
    spare_nodes_.pop_back();
    node.key() = rno;
    node.mapped() = InFlight{req, EpochSeconds()};
    requests_.insert(std::move(node));
  }
  ++requests_sent_;
  proto::EncodeRequest(writer_.pending(), rno, request_class, environ);
  Flush();
  return rno;
}

void WorkerLink::SendBody(uint32_t rno, std::string_view data) {
  while (!data.empty()) {
    size_t n = std::min(data.size(), proto::kPreferredChunk);
    proto::EncodeRequestBody(writer_.pending(), rno, data.substr(0, n));
    data.remove_prefix(n);
  }
  Flush();
}

void WorkerLink::SendEnd(uint32_t rno) {
  proto::EncodeRequestEnd(writer_.pending(), rno);
  Flush();
}

void WorkerLink::Detach(uint32_t rno, bool cancel) {
  auto it = requests_.find(rno);
  if (it == requests_.end()) return;
  LinkRequest* req = it->second.req;
  Forget(it);
  ResumeReads(req);
  if (cancel && connected()) {
    proto::EncodeCancel(writer_.pending(), rno);
    Flush();
  }
  MaybeCloseDrained();
}

void WorkerLink::Forget(RequestMap::iterator it) {
  if (spare_nodes_.size() < kSpareNodes) {
    spare_nodes_.push_back(requests_.extract(it));
  } else {
    requests_.erase(it);
  }
}

void WorkerLink::MaybeCloseDrained() {
  // After GOAWAY the LB closes the connection itself once its requests are done, so the
  // worker knows nothing more is coming. From the timer: callers may be mid-request.
  if (state_ == State::kDraining && requests_.empty() && !deferred_failure_) {
    deferred_failure_ = LinkError{LinkFailure::kDrained, ""};
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
  if (!writer_.attached() || deferred_failure_ ||
      (state_ != State::kHandshake && state_ != State::kReady && state_ != State::kDraining)) {
    return;
  }
  if (!writer_.pending()->empty()) last_write_ = static_cast<double>(uv_now(loop_));
  int rc = writer_.Flush();
  if (rc != 0) {
    // Not Fail() here: callers are in the middle of sending a request. The timer fails
    // the link on its next tick.
    deferred_failure_ = LinkError{LinkFailure::kWriteError, uv_strerror(rc)};
  }
}

void WorkerLink::OnWritten() {
  if (!congested() && !wait_writable_.empty()) {
    auto waiting = std::move(wait_writable_);
    wait_writable_.clear();
    for (LinkRequest* r : waiting) r->OnLinkWritable();
  }
}

void WorkerLink::OnWriteError(int uv_error) {
  Fail({LinkFailure::kWriteError, uv_strerror(uv_error)});
}

void WorkerLink::Fail(LinkError error) {
  deferred_failure_.reset();
  if (state_ == State::kIdle) return;
  bool was_established = state_ == State::kReady || state_ == State::kDraining;
  if (!was_established && error.cause != LinkFailure::kStopping) {
    AttemptFailed(std::move(error));  // nothing was in flight on it
    return;
  }
  if (resolving_) {
    resolving_->link = nullptr;
    resolving_ = nullptr;
  }
  // A worker that said GOAWAY is shutting down: do not hurry back.
  if (error.cause == LinkFailure::kDrained) was_established = false;
  bool alarming = IsLinkFailureAlarming(error.cause);
  if (alarming) {
    LOG(WARNING) << "worker disconnected " << name_ << ": " << error.ToString();
  } else if (was_established) {
    LOG(INFO) << "worker disconnected " << name_ << ": " << error.ToString();
  } else {
    VLOG(1) << "worker " << name_ << ": " << error.ToString();
  }
  if (error.cause != LinkFailure::kDrained && error.cause != LinkFailure::kStopping) {
    RecordError(error);
  }
  state_ = State::kIdle;
  ++generation_;
  writer_.Detach();
  wait_writable_.clear();
  read_pausers_.clear();
  if (pool_worker_) observer_->OnLinkRemoved(this);
  auto requests = std::move(requests_);
  requests_.clear();
  CloseSocket();
  for (auto& [rno, f] : requests) f.req->OnLinkLost(error);
  pool_worker_.reset();  // in-flight requests hold their own reference for the pool slot
  if (wanted_) {
    ScheduleReconnect(was_established ? 0 : NextBackoff(backoff_));
  } else if (!stopped_) {
    observer_->OnLinkIdle(this);
  }
}

void WorkerLink::ScheduleReconnect(double delay) {
  backoff_ = delay;
  reconnect_at_ = static_cast<double>(uv_now(loop_)) + delay * 1000;
}

void WorkerLink::OnTimer(uv_timer_t* t) {
  auto* self = static_cast<WorkerLink*>(t->data);
  if (self == nullptr) return;
  const LbOptions& o = *self->options_;
  double now = static_cast<double>(uv_now(self->loop_));
  switch (self->state_) {
    case State::kIdle:
      if (self->wanted_ && now >= self->reconnect_at_) {
        self->Connect();
      } else if (!self->wanted_ && !self->stopped_) {
        self->observer_->OnLinkIdle(self);  // unwanted before it ever connected
      }
      break;
    case State::kResolving:
      if (now - self->resolve_started_ > o.connect_timeout * 1000) {
        self->AttemptFailed({LinkFailure::kResolveFailed,
                             "'" + self->address_.ToString() + "': no answer within " +
                                 SecondsText(o.connect_timeout)});
      }
      break;
    case State::kConnecting:
    case State::kHandshake:
      if (self->deferred_failure_) {
        self->Fail(*self->deferred_failure_);
      } else if (now - self->connect_started_ > o.connect_timeout * 1000) {
        self->Fail(
            {LinkFailure::kConnectTimeout, "within " + SecondsText(o.connect_timeout)});
      }
      break;
    case State::kReady:
    case State::kDraining:
      if (self->deferred_failure_) {
        self->Fail(*self->deferred_failure_);
        break;
      }
      if (!self->read_pausers_.empty()) break;  // not reading: silence proves nothing
      if (now - self->last_read_ > o.worker_timeout * 1000) {
        self->Fail({LinkFailure::kStoppedAnswering,
                    "nothing read for " + SecondsText(o.worker_timeout)});
        break;
      }
      // Ask for an answer whenever either direction has been quiet, at most once per
      // interval: a worker whose app threads are all busy still answers from its loop.
      if ((now - self->last_write_ >= o.worker_keepalive * 1000 ||
           now - self->last_read_ >= o.worker_keepalive * 1000) &&
          now - self->last_keepalive_ >= o.worker_keepalive * 1000) {
        self->last_keepalive_ = now;
        proto::EncodeKeepAlive(self->writer_.pending());
        self->Flush();
      }
      break;
  }
}

}  // namespace rlb::lb
