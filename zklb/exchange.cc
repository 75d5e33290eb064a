// Exchange: request lifecycle and failure rules (see exchange.h for the states).
#include "zklb/exchange.h"

#include <cinttypes>
#include <cstdio>
#include <ctime>

#include <glog/logging.h>

#include "common/wall_clock.h"

namespace rlb::lb {
namespace {

std::string HostOf(const proto::Pairs& environ) {
  for (const auto& [key, value] : environ) {
    if (key == "HTTP_HOST") return value;
  }
  return "";
}

// Whether the worker itself failed while it had the request (as opposed to the LB closing
// the link): the failures a request can cause.
bool WorkerDied(LinkFailure cause) {
  switch (cause) {
    case LinkFailure::kClosedByWorker:
    case LinkFailure::kReadError:
    case LinkFailure::kWriteError:
    case LinkFailure::kMalformedFrame:
    case LinkFailure::kStoppedAnswering:
      return true;
    default:
      return false;
  }
}

constexpr size_t kPendingBodyLimit = 256 * 1024;  // upload bytes held before a worker is chosen

}  // namespace

Exchange::Exchange(ExchangeHost* host, ExchangeClient* client, const ExchangePolicy& policy,
                   const ParsedRequest& request, proto::Pairs environ, std::string request_class)
    : host_(host),
      client_(client),
      policy_(policy),
      method_(request.method),
      url_(request.url),
      host_header_(HostOf(environ)),
      http_minor_(request.http_minor),
      head_(request.method == "HEAD"),
      retryable_((request.method == "GET" || request.method == "HEAD") && !request.has_body()),
      client_keep_alive_(request.keep_alive),
      environ_(std::move(environ)),
      request_class_(std::move(request_class)),
      start_(EpochSeconds()) {
  ++policy_.stats->requests;
}

Exchange::~Exchange() { Finish(); }

void Exchange::Finish() {
  if (finished_) return;
  finished_ = true;
  if (queued_) {
    queued_ = false;
    host_->ForgetWaiting(this);
  }
  if (holds_retry_) {
    holds_retry_ = false;
    host_->ReleaseRetry();
  }
  DropWorker(/*cancel=*/true);
}

void Exchange::DropWorker(bool cancel) {
  if (link_) {
    RequestChannel* link = link_;
    link_ = nullptr;
    link->Detach(rno_, cancel);
  }
  ReleaseWorker();
}

std::string Exchange::Describe() const {
  return method_ + " " + host_header_ + " " + url_ + " (worker " + worker_name_ + ")";
}

void Exchange::ReleaseWorker() {
  if (worker_) {
    host_->ReleaseWorker(worker_);
    worker_.reset();
  }
}

void Exchange::MarkWaiting() {
  state_ = State::kWaiting;
  queued_ = true;
}

void Exchange::OnBody(std::string_view data) {
  request_body_bytes_ += data.size();
  if (finished_ || response_done() || (response_started() && !link_)) return;  // answered
  pending_body_.append(data);
  if (link_) {
    // Coalesced: a read of many tiny chunks becomes one frame (FlushBody after the read).
    if (pending_body_.size() >= proto::kPreferredChunk) FlushBody();
    return;
  }
  if (pending_body_.size() > kPendingBodyLimit) client_->PauseReading();
}

void Exchange::FlushBody() {
  if (!link_ || pending_body_.empty()) return;
  link_->SendBody(rno_, pending_body_);
  pending_body_.clear();
  if (link_->congested()) {
    client_->PauseReading();
    link_->WaitWritable(this);
  }
}

void Exchange::PauseResponse() {
  if (link_) link_->PauseReads(this);
}

void Exchange::ResumeResponse() {
  if (link_) link_->ResumeReads(this);
}

void Exchange::OnRequestComplete() {
  request_complete_ = true;
  if (link_) {
    FlushBody();
    link_->SendEnd(rno_);
  }
}

void Exchange::OnLinkWritable() {
  if (!finished_) client_->ResumeReading();
}

void Exchange::Assign(PoolWorkerPtr worker, RequestChannel* link) {
  CHECK(state_ == State::kNew || state_ == State::kWaiting || state_ == State::kSent)
      << "Assign in state " << static_cast<int>(state_);
  state_ = State::kSent;
  queued_ = false;
  worker_ = std::move(worker);
  link_ = link;
  worker_name_ = worker_->name();
  rno_ = link_->SendRequest(this, request_class_, environ_);
  if (!pending_body_.empty()) {
    link_->SendBody(rno_, pending_body_);
    std::string().swap(pending_body_);
  }
  if (request_complete_) {
    link_->SendEnd(rno_);
  } else if (link_->congested()) {
    client_->PauseReading();
    link_->WaitWritable(this);
  } else {
    client_->ResumeReading();
  }
}

void Exchange::NoWorker() {
  queued_ = false;
  ++policy_.stats->unavailable;
  SendOwnResponse(503, "no worker became available in time",
                  "<html><body>\nNo server is available to handle your request right now.\n"
                  "Please try again.\n</body></html>\n");
}

void Exchange::SendOwnResponse(int status, const std::string& reason, const std::string& body) {
  VLOG(1) << "answering " << status << " to " << method_ << " " << url_ << ": " << reason;
  state_ = State::kDone;
  status_ = status;
  // If the client is still sending a body we did not forward, the connection cannot be reused.
  if (!request_complete_ || !client_keep_alive_ || host_->draining()) close_after_ = true;
  body_bytes_ = head_ ? 0 : body.size();
  client_->WriteResponse(BuildOwnResponse(
      status, "text/html; charset=UTF-8", body, close_after_, head_,
      policy_.http_date ? policy_.http_date() : std::string_view(),
      /*announce_keep_alive=*/http_minor_ == 0));
  client_->ResponseDone();
}

void Exchange::OnResponseStart(const proto::Response& response) {
  if (state_ != State::kSent) return;
  ResponseContext context;
  context.http_minor = http_minor_;
  context.head = head_;
  context.must_close = !client_keep_alive_ || host_->draining() || !request_complete_;
  if (policy_.http_date) context.date = policy_.http_date();
  StatusOr<ResponseHead> head = BuildResponseHead(response, context);
  if (!head.ok()) {
    // The worker checks what its application sends; this is a worker that does not.
    LOG(WARNING) << "invalid response head for " << Describe() << ": "
                 << head.status().message() << "; answering 502";
    ++policy_.stats->invalid_responses;
    ++policy_.stats->invalid_heads;
    DropWorker(/*cancel=*/true);
    BadGateway("invalid response head");
    return;
  }
  state_ = State::kResponding;
  response_ = std::move(*head);
  status_ = response_.status;
  close_after_ = response_.close_after;
  client_->WriteResponse(response_.bytes);
  response_.bytes.clear();
}

void Exchange::OnResponseBody(std::string_view data) {
  if (state_ != State::kResponding || response_.no_body) return;
  if (response_.content_length && data.size() > *response_.content_length - body_bytes_) {
    // More than the head declared: the client would read the rest as the next response.
    const uint64_t declared = *response_.content_length;
    const uint64_t room = declared - body_bytes_;
    if (room > 0) client_->WriteResponse(data.substr(0, room));
    body_bytes_ = declared;
    LOG(WARNING) << "response to " << Describe() << " is longer than its Content-Length of "
                 << declared << " bytes: the rest is dropped and the client connection "
                 << "closed after the response";
    close_after_ = true;
    ++policy_.stats->invalid_responses;
    ++policy_.stats->invalid_heads;
    DropWorker(/*cancel=*/true);
    state_ = State::kDone;
    client_->ResponseDone();
    return;
  }
  body_bytes_ += data.size();
  if (response_.chunked) {
    client_->WriteResponse(EncodeChunk(data));
  } else {
    client_->WriteResponse(data);
  }
}

void Exchange::OnResponseEnd(proto::Outcome outcome) {
  link_ = nullptr;  // the link has forgotten this request number
  ReleaseWorker();  // the worker has sent the whole response: its backlog slot is free
  if (state_ == State::kSent) {  // a worker bug; never happens with ours
    ++policy_.stats->bad_gateway;
    SendOwnResponse(502, "worker ended a response it never started", *policy_.disconnect_message);
    return;
  }
  if (outcome == proto::Outcome::kFailed) {
    ++policy_.stats->truncated;
    state_ = State::kReset;
    client_->Reset("the worker could not complete the response");
    return;
  }
  if (!response_.no_body && response_.content_length &&
      body_bytes_ < *response_.content_length) {
    // Fewer bytes than declared: the client must not wait for the rest, nor reuse the
    // connection.
    LOG(WARNING) << "response to " << Describe() << " ended after " << body_bytes_ << " of its "
                 << *response_.content_length << " bytes (Content-Length): client connection "
                 << "closed";
    ++policy_.stats->truncated;
    state_ = State::kReset;
    client_->Reset("the response is shorter than its Content-Length");
    return;
  }
  if (response_.chunked) client_->WriteResponse(kLastChunk);
  state_ = State::kDone;
  client_->ResponseDone();
}

void Exchange::OnLinkLost(const LinkError& error) {
  link_ = nullptr;
  ReleaseWorker();
  if (state_ == State::kResponding) {
    LOG(WARNING) << "worker " << worker_name_ << " lost while returning the body of " << method_
                 << " " << url_ << ": " << error.ToString();
    ++policy_.stats->truncated;
    state_ = State::kReset;
    client_->Reset("worker lost mid-response");
    return;
  }
  const bool died = WorkerDied(error.cause);
  if (died && suspect_) {
    ++policy_.stats->queries_of_death;
    LOG(ERROR) << "suspected query of death: " << method_ << " " << host_header_ << " " << url_
               << ": a second worker (" << worker_name_ << ") was lost while running it ("
               << error.ToString() << "); not retried";
    BadGateway("suspected query of death");
    return;
  }
  if (died) suspect_ = true;
  if (retryable_ && retries_ < policy_.max_retries && !host_->draining()) {
    if (!holds_retry_ && !host_->AcquireRetry()) {
      ++policy_.stats->retries_refused;
      LOG(WARNING) << "retry budget spent: not retrying " << method_ << " " << host_header_
                   << " " << url_ << " (" << worker_name_ << ": " << error.ToString() << ")";
      BadGateway("retry budget spent");
      return;
    }
    holds_retry_ = true;
    ++retries_;
    ++policy_.stats->retries;
    LOG(INFO) << worker_name_ << " disconnected, retrying " << method_ << " " << url_;
    host_->Dispatch(this);
    return;
  }
  BadGateway("worker lost: " + error.ToString());
}

void Exchange::BadGateway(const std::string& reason) {
  ++policy_.stats->bad_gateway;
  SendOwnResponse(502, reason, *policy_.disconnect_message);
}

void Exchange::ClientGone() {
  CHECK(!response_started()) << "ClientGone after the response started";
  if (state_ == State::kAbandoned) return;
  state_ = State::kAbandoned;
  status_ = 499;
  ++policy_.stats->client_aborts;
}

RequestRecord Exchange::Record(double now) const {
  RequestRecord r;
  r.client_ip = client_->info().remote_ip;
  r.start = start_;
  r.duration = now - start_;
  r.method = method_;
  r.url = url_;
  r.http_minor = http_minor_;
  r.status = status_;
  r.body_bytes = body_bytes_;
  r.request_body_bytes = request_body_bytes_;
  r.worker = worker_name_;
  r.host = host_header_;
  r.request_class = request_class_;
  for (const auto& [key, value] : environ_) {
    if (key == "HTTP_USER_AGENT") r.user_agent = value;
  }
  return r;
}

std::string Exchange::AccessLogLine(double now) const { return FormatAccessLine(Record(now)); }

}  // namespace rlb::lb
