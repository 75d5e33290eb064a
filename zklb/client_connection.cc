// ClientConnection: socket, timers and write path of one HTTP client (see the header).
#include "zklb/client_connection.h"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <algorithm>
#include <ctime>

#include <glog/logging.h>

#include "common/wall_clock.h"

#include "common/net_address.h"
#include "zklb/class_name.h"
#include "zklb/response_head.h"

namespace rlb::lb {
namespace {

constexpr size_t kClientHighWater = 256 * 1024;  // bytes queued in libuv before buffering
// Pipelined bytes held while a request is served: reads are this small then, and past
// this much the connection is not read (nginx keeps one client_header_buffer_size).
constexpr size_t kPipelineBytes = 16 * 1024;
// Lingering close: input discarded for at most this long in total, this long between
// reads, and this many bytes (nginx: lingering_time 30 s, lingering_timeout 5 s).
constexpr double kLingerTotalMs = 30e3;
constexpr double kLingerIdleMs = 5e3;
constexpr uint64_t kLingerMaxBytes = 4u << 20;
// How often a client connection that is not being read (back-pressure) is checked for a
// reset from its client, which only a read would otherwise reveal.
constexpr double kPausedProbeMs = 1000;

}  // namespace

class ClientConnection::ParserHandler : public HttpRequestParser::Handler {
 public:
  explicit ParserHandler(ClientConnection* c) : c_(c) {}
  void OnRequestHeaders(ParsedRequest& request) override {
    if (c_->resuming_) c_->pipelined_ = true;
    // The header values move into the environ: nothing reads them after this.
    proto::Pairs environ = BuildEnviron(std::move(request), c_->info_);
    std::string request_class = BoundClassName(c_->context_->classifier->Classify(environ));
    c_->exchange_ = std::make_unique<Exchange>(c_->host_, c_, c_->context_->policy, request,
                                               std::move(environ), std::move(request_class));
    if (request.expect_continue && request.has_body()) {
      c_->WriteResponse("HTTP/1.1 100 Continue\r\n\r\n");
    }
    if (c_->state_ == State::kOpen) c_->host_->Dispatch(c_->exchange_.get());
  }
  void OnRequestBody(std::string_view data) override {
    if (c_->exchange_) c_->exchange_->OnBody(data);
  }
  void OnRequestComplete() override {
    if (c_->exchange_) c_->exchange_->OnRequestComplete();
  }

 private:
  ClientConnection* c_;
};

ClientConnection::ClientConnection(ClientConnectionHost* host, const ClientContext* context)
    : host_(host), context_(context), writer_(this) {
  if (context_->write_batcher) writer_.BatchWith(context_->write_batcher);
  handler_ = std::make_unique<ParserHandler>(this);
  parser_ = std::make_unique<HttpRequestParser>(handler_.get(), context_->options->http_limits);
}

ClientConnection::~ClientConnection() = default;

double ClientConnection::Now() const { return static_cast<double>(uv_now(tcp_.loop())); }

Status ClientConnection::Accept(uv_stream_t* listener) {
  int rc = tcp_.Init(listener->loop, this);
  if (rc == 0) rc = timer_.Init(listener->loop, this);
  StatusOr<AcceptedTcp> ends =
      rc == 0 ? AcceptTcp(listener, tcp_.get())
              : StatusOr<AcceptedTcp>(Status::IOError(std::string("accept: ") + uv_strerror(rc)));
  if (!ends.ok()) {
    timer_.Close();
    tcp_.Close();
    state_ = State::kClosed;
    host_->ConnectionClosed(this);
    return ends.status();
  }
  writer_.Attach(tcp_.stream());
  info_.remote_ip = ends->peer_ip;
  info_.remote_port = ends->peer_port;
  info_.local_ip = ends->local_ip;
  info_.local_port = ends->local_port;
  return Status::OK();
}

void ClientConnection::Start() {
  last_progress_ = Now();
  StartReading();
  UpdateTimer();
}

void ClientConnection::StartReading() {
  if ((state_ != State::kOpen && state_ != State::kLingering) ||
      read_state_ == ReadState::kReading ||
      read_state_ == ReadState::kEof || read_state_ == ReadState::kStopped) {
    return;
  }
  int rc = uv_read_start(tcp_.stream(),
                         [](uv_handle_t* h, size_t, uv_buf_t* buf) {
                           auto* self = static_cast<ClientConnection*>(h->data);
                           buf->base = self->context_->read_buffer;
                           buf->len = self->context_->read_buffer_size;
                           // Reading ahead of a request being served: small reads.
                           if (self->exchange_ && self->exchange_->request_complete()) {
                             buf->len = std::min(buf->len, kPipelineBytes);
                           }
                         },
                         &OnRead);
  if (rc != 0) {
    LOG(WARNING) << "client " << info_.remote_ip << ":" << info_.remote_port
                 << ": cannot read: " << uv_strerror(rc);
    Close(true);
    return;
  }
  read_state_ = ReadState::kReading;
}

void ClientConnection::StopReading(ReadState next) {
  if (read_state_ == ReadState::kReading) uv_read_stop(tcp_.stream());
  read_state_ = next;
}

void ClientConnection::PauseReading() {
  if (state_ == State::kClosed) return;
  if (read_state_ == ReadState::kReading || read_state_ == ReadState::kIdle) {
    StopReading(ReadState::kPaused);
  }
  UpdateTimer();
}

void ClientConnection::ResumeReading() {
  if (state_ == State::kClosed || read_state_ != ReadState::kPaused) return;
  read_state_ = ReadState::kIdle;
  StartReading();
  UpdateTimer();
}

void ClientConnection::OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<ClientConnection*>(s->data);
  if (self == nullptr || self->state_ == State::kClosed) return;
  if (self->state_ == State::kLingering) {  // discard; the answer has been sent
    if (nread == UV_EOF) {
      self->Close(false);
    } else if (nread < 0) {
      self->Close(true);
    } else {
      self->lingered_bytes_ += static_cast<uint64_t>(nread);
      self->last_progress_ = self->Now();
      if (self->lingered_bytes_ > kLingerMaxBytes) {
        self->Close(true);
      } else {
        self->UpdateTimer();
      }
    }
    return;
  }
  if (nread == UV_EOF) {
    self->StopReading(ReadState::kEof);
    if (self->exchange_ && self->exchange_->request_complete()) {
      // A client that pipelined, or one whose answer has started, is half-closing: it
      // still gets every answer. Otherwise EOF means the client gave up (unless the LB is
      // told to treat every EOF as a half-close).
      if (self->context_->options->cancel_on_client_close &&
          !self->exchange_->response_started() && !self->pipelined_ &&
          !self->parser_->has_kept_bytes()) {
        self->ClientLeft(false);
      }
      return;
    }
    if (self->exchange_ && !self->exchange_->response_done()) {
      self->ClientLeft(false);  // upload cut short: the exchange cancels the worker's request
      return;
    }
    if (!self->exchange_) self->Close(false);
    return;
  }
  if (nread < 0) {
    self->ClientLeft(true);
    return;
  }
  if (nread == 0) return;
  double now = self->Now();
  self->last_progress_ = now;
  if (!self->exchange_ && !self->parser_->in_message()) self->message_start_ = now;
  auto state = self->parser_->Execute(std::string_view(buf->base, static_cast<size_t>(nread)));
  if (self->exchange_) self->exchange_->FlushBody();  // one frame for the whole read
  self->HandleParserState(state);
}

void ClientConnection::HandleParserState(HttpRequestParser::State state) {
  if (state_ == State::kClosed) return;
  if (state == HttpRequestParser::State::kError) {
    ParseError(parser_->error_status(), parser_->error_reason());
    return;
  }
  if (state == HttpRequestParser::State::kPaused && parser_->has_kept_bytes() && exchange_ &&
      !exchange_->response_done()) {
    // Pipelined requests wait their turn; stop reading if too many pile up.
    if (read_state_ == ReadState::kReading && parser_->kept_bytes() >= kPipelineBytes) {
      PauseReading();
    }
  }
  UpdateTimer();
}

void ClientConnection::ParseError(int status, const std::string& reason) {
  ++context_->policy.stats->client_errors;
  LOG(INFO) << "client " << info_.remote_ip << ":" << info_.remote_port << ": " << status << " "
            << reason;
  if (exchange_ && exchange_->response_started()) {  // mid-body error after a response began
    Close(true);
    return;
  }
  LogParseError(status, reason);
  DropExchange();  // cancels whatever was sent to a worker
  std::string body = "<html><body>\n" + std::to_string(status) + " " + ReasonPhrase(status) +
                     "\n</body></html>\n";
  WriteResponse(BuildOwnResponse(status, "text/html; charset=UTF-8", body, /*close=*/true,
                                 /*head=*/false));
  if (state_ == State::kClosed) return;
  state_ = State::kClosingAfterFlush;
  StopReading(ReadState::kStopped);
  MaybeFinishExchange();
}

void ClientConnection::LogParseError(int status, const std::string& reason) {
  // What can be known: the request, when its headers were complete; else only the client.
  const double now = EpochSeconds();
  RequestRecord record;
  if (exchange_) {
    record = exchange_->Record(now);
  } else {
    record.client_ip = info_.remote_ip;
    record.duration = std::max(0.0, (Now() - message_start_) / 1000);
    record.start = now - record.duration;
    record.has_request_line = false;
    record.classified = false;
  }
  record.status = status;
  record.body_bytes = 0;
  record.error = reason;
  context_->access_log->Record(record);
}

void ClientConnection::WriteResponse(std::string_view bytes) {
  if (state_ == State::kClosed || bytes.empty()) return;
  if (writer_.queued_bytes() < kClientHighWater && (!buffer_ || buffer_->empty())) {
    WriteToSocket(bytes);
    return;
  }
  if (!buffer_) {
    buffer_ = std::make_unique<ResponseBuffer>(context_->options->response_memory,
                                               context_->options->buffer_dir,
                                               context_->response_budget);
  }
  bool over_budget = false;
  Status s = buffer_->Append(bytes, &over_budget);
  if (!s.ok()) {
    LOG(ERROR) << "client " << info_.remote_ip << ":" << info_.remote_port << ": " << s.ToString();
    ++context_->policy.stats->truncated;
    Close(true);
    return;
  }
  if (over_budget && exchange_ && !response_paused_) {
    const ResponseBudget& b = *context_->response_budget;
    LOG_IF(WARNING, !budget_warned_) << "client " << info_.remote_ip << ":" << info_.remote_port
                 << ": response buffers full (memory " << b.memory_used() << "/"
                 << b.memory_limit() << ", disk " << b.disk_used() << "/" << b.disk_limit()
                 << " bytes, or the disk is full): its worker waits until it reads";
    budget_warned_ = true;  // once per connection: it may pause and resume often
    response_paused_ = true;
    exchange_->PauseResponse();  // the worker waits for this client
  }
  if (exchange_) UpdateTimer();
}

void ClientConnection::WriteToSocket(std::string_view data) {
  uint64_t before = writer_.bytes_written();
  writer_.Append(data);
  int rc = writer_.Flush();
  if (rc != 0) {
    VLOG(1) << "client " << info_.remote_ip << ":" << info_.remote_port
            << ": write failed: " << uv_strerror(rc);
    Close(true);
    return;
  }
  if (writer_.bytes_written() != before) last_progress_ = Now();
  // Bytes now wait for the client: arm the -t deadline. (A write the kernel took at once
  // has no completion callback, so a client that never reads might otherwise never get one.)
  if (!writer_.idle() && exchange_) UpdateTimer();
}

void ClientConnection::OnWritten() {
  if (state_ == State::kClosed) return;
  last_progress_ = Now();
  Refill();
  MaybeFinishExchange();
  if (state_ != State::kClosed) UpdateTimer();
}

void ClientConnection::OnWriteError(int uv_error) {
  VLOG(1) << "client " << info_.remote_ip << ":" << info_.remote_port
          << ": write failed: " << uv_strerror(uv_error);
  Close(true);
}

void ClientConnection::Refill() {
  while (buffer_ && !buffer_->empty() && writer_.queued_bytes() < kClientHighWater &&
         state_ != State::kClosed) {
    std::string chunk;
    Status s = buffer_->Take(64 * 1024, &chunk);
    if (!s.ok()) {
      LOG(ERROR) << s.ToString();
      Reset("cannot read the response buffer");
      return;
    }
    if (chunk.empty()) break;
    WriteToSocket(chunk);  // these bytes come from the buffer's front
  }
  if (response_paused_ && exchange_ && state_ != State::kClosed &&
      (!buffer_ || !buffer_->over_budget())) {
    response_paused_ = false;
    exchange_->ResumeResponse();
  }
}

bool ClientConnection::Flushed() const { return writer_.idle() && (!buffer_ || buffer_->empty()); }

void ClientConnection::ResponseDone() { MaybeFinishExchange(); }

void ClientConnection::DropExchange() {
  if (!exchange_) return;
  exchange_->Finish();
  context_->deleter->Defer(std::move(exchange_));
}

void ClientConnection::MaybeFinishExchange() {
  if (state_ == State::kClosed) return;
  if (exchange_ && exchange_->response_done() && Flushed()) {
    context_->access_log->Record(exchange_->Record(EpochSeconds()));
    ++context_->policy.stats->responses;
    bool close = exchange_->close_after() || close_when_idle_;
    // A request whose body was never fully read leaves the connection unusable.
    if (!exchange_->request_complete()) close = true;
    bool client_may_send = !exchange_->request_complete();
    response_paused_ = false;
    DropExchange();
    buffer_.reset();
    if (close) {
      if (client_may_send) {
        StartLingering();
      } else {
        Close(false);
      }
      return;
    }
    // Next pipelined request, if any (also after the client half-closed its side).
    resuming_ = true;
    auto state = parser_->Resume();
    resuming_ = false;
    if (exchange_) exchange_->FlushBody();
    if (read_state_ != ReadState::kEof) {
      ResumeReading();
      StartReading();
    }
    HandleParserState(state);
    if (state_ != State::kClosed && read_state_ == ReadState::kEof && !exchange_) Close(false);
    return;
  }
  if (!exchange_ && state_ == State::kClosingAfterFlush && Flushed()) StartLingering();
}

void ClientConnection::StartLingering() {
  if (state_ == State::kClosed || state_ == State::kLingering) return;
  if (read_state_ == ReadState::kEof) {  // the client has stopped sending already
    Close(false);
    return;
  }
  state_ = State::kLingering;
  linger_start_ = last_progress_ = Now();
  auto* req = new uv_shutdown_t;
  if (uv_shutdown(req, tcp_.stream(), [](uv_shutdown_t* r, int) { delete r; }) != 0) {
    delete req;
    Close(false);
    return;
  }
  if (read_state_ != ReadState::kReading) {
    read_state_ = ReadState::kIdle;
    StartReading();
  }
  UpdateTimer();
}

void ClientConnection::Reset(const std::string& reason) {
  if (state_ == State::kClosed) return;
  VLOG(1) << "client " << info_.remote_ip << ":" << info_.remote_port << " reset: " << reason;
  if (exchange_ && exchange_->response_started()) {
    context_->access_log->Record(exchange_->Record(EpochSeconds()));
  }
  Close(true);
}

void ClientConnection::ClientLeft(bool reset) {
  if (exchange_ && !exchange_->response_started() &&
      exchange_->state() != Exchange::State::kReset) {
    exchange_->ClientGone();
    VLOG(1) << "client " << info_.remote_ip << ":" << info_.remote_port
            << " left before the answer";
    context_->access_log->Record(exchange_->Record(EpochSeconds()));
  }
  Close(reset);
}

void ClientConnection::CloseWhenIdle() {
  close_when_idle_ = true;
  if (!exchange_ && !parser_->in_message()) Close(false);
}

void ClientConnection::Close(bool reset) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  DropExchange();  // detaches from the worker link (cancel) and releases the pool slot
  buffer_.reset();
  writer_.FlushImmediately();  // what this turn queued (an answer, a head) still goes out
  writer_.Detach();
  timer_.Close();
  if (reset) {
    tcp_.CloseReset();
  } else {
    tcp_.Close();
  }
  host_->ConnectionClosed(this);
}

double ClientConnection::Deadline() const {
  const LbOptions& o = *context_->options;
  double deadline = -1;
  if (state_ == State::kLingering) {
    deadline = std::min(linger_start_ + kLingerTotalMs, last_progress_ + kLingerIdleMs);
  } else if (!exchange_) {
    if (parser_->in_message()) {
      deadline = message_start_ + o.header_timeout * 1000;  // slowloris
    } else {
      deadline = last_progress_ + o.socket_timeout * 1000;  // idle keep-alive
    }
  } else if (!exchange_->request_complete() && read_state_ != ReadState::kPaused) {
    deadline = last_progress_ + o.socket_timeout * 1000;  // a stalled upload
  } else if (!Flushed()) {
    deadline = last_progress_ + o.socket_timeout * 1000;  // a client not reading
  }
  return deadline;
}

bool ClientConnection::Probing() const {
  return read_state_ == ReadState::kPaused && exchange_ && !exchange_->response_started();
}

void ClientConnection::UpdateTimer() {
  if (state_ == State::kClosed) return;
  const double now = Now();
  double wake = Deadline();
  // A connection the LB is not reading cannot see its client leave: probe it.
  if (Probing()) wake = wake < 0 ? now + kPausedProbeMs : std::min(wake, now + kPausedProbeMs);
  // The timer is armed lazily, as nginx and HAProxy do: deadlines are recomputed from
  // timestamps when it fires, so it is set again only when the wake-up moves earlier (a
  // deadline that moves later, the common case, costs nothing until the timer fires).
  if (wake < 0) return;  // none: a timer still armed fires once and finds nothing due
  if (armed_at_ >= 0 && armed_at_ <= wake) return;
  const uint64_t delay = static_cast<uint64_t>(std::max(0.0, wake - now)) + 1;
  CHECK_EQ(uv_timer_start(timer_.get(), &OnTimer, delay, 0), 0);
  armed_at_ = now + static_cast<double>(delay);
}

bool ClientConnection::PeerReset() const {
  uv_os_fd_t fd;
  if (uv_fileno(tcp_.handle(), &fd) != 0) return false;
  tcp_info info{};
  socklen_t len = sizeof info;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return false;
  return info.tcpi_state == TCP_CLOSE;  // a RST arrived (a FIN alone gives CLOSE_WAIT)
}

void ClientConnection::OnTimer(uv_timer_t* t) {
  auto* self = static_cast<ClientConnection*>(t->data);
  if (self == nullptr || self->state_ == State::kClosed) return;
  self->armed_at_ = -1;
  const double deadline = self->Deadline();
  if (deadline < 0 || self->Now() < deadline) {  // a probe, or a deadline that moved later
    if (self->Probing() && self->PeerReset()) {
      self->ClientLeft(true);
    } else {
      self->UpdateTimer();
    }
    return;
  }
  if (self->state_ == State::kLingering) {
    self->Close(false);  // lingered long enough
    return;
  }
  if (self->state_ == State::kOpen && !self->exchange_ && self->parser_->in_message()) {
    self->ParseError(408, "request headers not received in time");
    return;
  }
  if (self->exchange_) {
    VLOG(1) << "client " << self->info_.remote_ip << ":" << self->info_.remote_port
            << " timed out mid-request";
    self->Close(true);
    return;
  }
  self->Close(false);  // idle keep-alive connection
}

}  // namespace rlb::lb
