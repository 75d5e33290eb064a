// WorkerRequest: body collection and spooling on the loop; the response side on the
// application thread.
#include "zkworker/worker_request.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <glog/logging.h>

#include "common/temp_file.h"
#include "zkworker/balancer_connection.h"
#include "zkworker/worker_metrics.h"

namespace rlb::worker {
namespace {

Status WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::IOError(std::string("spooling the request body: ") + std::strerror(errno));
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::OK();
}

}  // namespace

WorkerRequest::WorkerRequest(std::shared_ptr<BalancerConnection> c, uint32_t n, proto::Request req)
    : conn(std::move(c)), rno(n), request(std::move(req)) {
  call.request_class = request.request_class;
  call.environ = &request.environ;
  call.lb_ip = conn->peer_ip();
  call.lb_port = conn->peer_port();
  call.conn_id = conn->id();
  call.rno = rno;
  call.sink = this;
}

WorkerRequest::~WorkerRequest() {
  if (call.body_fd >= 0) ::close(call.body_fd);
}

Status WorkerRequest::AppendBody(std::string_view data, size_t spool_threshold) {
  if (call.body_fd < 0 && call.memory_body.size() + data.size() > spool_threshold) {
    auto fd = CreateUnlinkedTempFile(DefaultTempDir(), "rlbwi-");
    if (!fd.ok()) return fd.status();
    call.body_fd = *fd;
    Status s = WriteAll(call.body_fd, call.memory_body);
    std::string().swap(call.memory_body);
    if (!s.ok()) return s;
  }
  if (call.body_fd >= 0) {
    Status s = WriteAll(call.body_fd, data);
    if (!s.ok()) return s;
  } else {
    call.memory_body.append(data);
  }
  call.body_size += data.size();
  return Status::OK();
}

void WorkerRequest::MarkRunning() {
  RequestState expected = RequestState::kReceiving;
  CHECK(state_.compare_exchange_strong(expected, RequestState::kRunning))
      << "request " << call.TraceId() << " dispatched twice";
}

void WorkerRequest::Cancel() {
  state_.store(RequestState::kCancelled);
  conn->outbox().Wake();
}

bool WorkerRequest::Send(std::string&& frames, bool wait) {
  auto cancelled = [this] { return this->cancelled(); };
  ResponseOutbox::Pushed pushed = wait
                                       ? conn->outbox().PushWhenRoom(std::move(frames), cancelled)
                                       : conn->outbox().Push(std::move(frames), cancelled);
  if (pushed.flush_needed) conn->Flush();
  return pushed.queued;
}

bool WorkerRequest::Start(std::string_view status, proto::Pairs headers) {
  // The glue refuses such heads with a 500 before they get here (wsgi_glue.py); this is
  // the backstop that keeps an over-limit frame — which the LB would take as a broken
  // protocol and drop the whole connection for — from ever being sent.
  size_t bytes = status.size();
  for (const auto& [name, value] : headers) bytes += name.size() + value.size();
  if (headers.size() > proto::kMaxHeaders || bytes > proto::kMaxHeaderBytes ||
      status.size() > proto::kMaxTextField) {
    LOG(ERROR) << "request " << call.TraceId() << ": response head over the protocol's limits ("
               << headers.size() << " headers, " << bytes << " bytes); not sent";
    return false;
  }
  if (cancelled()) return false;
  proto::EncodeResponse(&held_, rno, status, headers);  // leaves with the body or the end
  status_code_ = StatusCodeOf(status);
  return true;
}

ResponseSink::Sent WorkerRequest::Body(std::string_view data, bool more) {
  if (cancelled()) return Sent::kCancelled;
  if (data.size() > proto::kPreferredChunk) return Sent::kMustWait;  // BodyWait chunks it
  if (!data.empty()) proto::EncodeResponseBody(&held_, rno, data);  // empty: flush only
  if (held_.empty() || (more && held_.size() < proto::kPreferredChunk)) return Sent::kOk;
  // TryPush leaves held_ untouched unless it queues it.
  ResponseOutbox::Pushed pushed =
      conn->outbox().TryPush(std::move(held_), [this] { return this->cancelled(); });
  if (pushed.must_wait) return Sent::kMustWait;
  held_.clear();
  if (!pushed.queued) return Sent::kCancelled;
  if (pushed.flush_needed) conn->Flush();
  return Sent::kOk;
}

bool WorkerRequest::BodyWait(std::string_view data) {
  if (!held_.empty()) {
    std::string frames = std::move(held_);
    held_.clear();
    if (!Send(std::move(frames), true)) return false;
  }
  while (!data.empty()) {
    size_t n = std::min(data.size(), proto::kPreferredChunk);
    std::string frame;
    proto::EncodeResponseBody(&frame, rno, data.substr(0, n));
    if (!Send(std::move(frame), true)) return false;
    data.remove_prefix(n);
  }
  return true;
}

void WorkerRequest::End(bool complete) {
  std::string frames = std::move(held_);
  held_.clear();
  proto::EncodeResponseEnd(&frames, rno,
                           complete ? proto::Outcome::kComplete : proto::Outcome::kFailed);
  // kEnded before the frame can reach the LB (the outbox mutex orders the store before a
  // direct send or the loop's Take()), so a REQUEST reusing this number always finds this
  // request ended.
  RequestState running = RequestState::kRunning;
  state_.compare_exchange_strong(running, RequestState::kEnded);  // fails only if cancelled
  Send(std::move(frames), false);
}

}  // namespace rlb::worker
