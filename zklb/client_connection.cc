// ClientConnection: socket, timers and write path of one HTTP client (see the header).
#include "zklb/client_connection.h"

#include <ctime>

#include <glog/logging.h>

#include "common/wall_clock.h"

#include "common/net_address.h"
#include "zklb/response_head.h"

namespace rlb::lb {
namespace {

constexpr size_t kClientHighWater = 256 * 1024;  // bytes queued in libuv before buffering
constexpr size_t kKeptBytesLimit = 1u << 20;     // pipelined bytes held while one is served

}  // namespace

class ClientConnection::ParserHandler : public HttpRequestParser::Handler {
 public:
  explicit ParserHandler(ClientConnection* c) : c_(c) {}
  void OnRequestHeaders(ParsedRequest& request) override {
    if (c_->resuming_) c_->pipelined_ = true;
    proto::Pairs environ = BuildEnviron(request, c_->info_);
    std::string request_class = c_->context_->classifier->Classify(environ);
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
  if (state_ != State::kOpen || read_state_ == ReadState::kReading ||
      read_state_ == ReadState::kEof || read_state_ == ReadState::kStopped) {
    return;
  }
  int rc = uv_read_start(tcp_.stream(),
                         [](uv_handle_t* h, size_t, uv_buf_t* buf) {
                           auto* self = static_cast<ClientConnection*>(h->data);
                           buf->base = self->read_buf_;
                           buf->len = sizeof self->read_buf_;
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
    if (read_state_ == ReadState::kReading && parser_->kept_bytes() > kKeptBytesLimit) {
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

void ClientConnection::WriteResponse(std::string&& bytes) {
  if (state_ == State::kClosed || bytes.empty()) return;
  if (writer_.queued_bytes() < kClientHighWater && (!buffer_ || buffer_->empty())) {
    WriteToSocket(std::move(bytes));
    return;
  }
  if (!buffer_) {
    buffer_ = std::make_unique<ResponseBuffer>(context_->options->response_memory,
                                               context_->options->buffer_dir);
  }
  Status s = buffer_->Append(bytes);
  if (!s.ok()) {
    LOG(ERROR) << "client " << info_.remote_ip << ":" << info_.remote_port << ": " << s.ToString();
    ++context_->policy.stats->truncated;
    Close(true);
    return;
  }
  if (exchange_) UpdateTimer();
}

void ClientConnection::WriteToSocket(std::string&& data) {
  uint64_t before = writer_.bytes_written();
  int rc = writer_.Write(std::move(data));
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
    WriteToSocket(std::move(chunk));  // these bytes come from the buffer's front
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
    if (context_->access_log->enabled()) {
      context_->access_log->Write(exchange_->AccessLogLine(EpochSeconds()));
    }
    ++context_->policy.stats->responses;
    bool close = exchange_->close_after() || close_when_idle_;
    // A request whose body was never fully read leaves the connection unusable.
    if (!exchange_->request_complete()) close = true;
    DropExchange();
    buffer_.reset();
    if (close) {
      Close(false);
      return;
    }
    // Next pipelined request, if any (also after the client half-closed its side).
    resuming_ = true;
    auto state = parser_->Resume();
    resuming_ = false;
    if (read_state_ != ReadState::kEof) {
      ResumeReading();
      StartReading();
    }
    HandleParserState(state);
    if (state_ != State::kClosed && read_state_ == ReadState::kEof && !exchange_) Close(false);
    return;
  }
  if (!exchange_ && state_ == State::kClosingAfterFlush && Flushed()) Close(false);
}

void ClientConnection::Reset(const std::string& reason) {
  if (state_ == State::kClosed) return;
  VLOG(1) << "client " << info_.remote_ip << ":" << info_.remote_port << " reset: " << reason;
  if (exchange_ && exchange_->response_started() && context_->access_log->enabled()) {
    context_->access_log->Write(exchange_->AccessLogLine(EpochSeconds()));
  }
  Close(true);
}

void ClientConnection::ClientLeft(bool reset) {
  if (exchange_ && !exchange_->response_started() &&
      exchange_->state() != Exchange::State::kReset) {
    exchange_->ClientGone();
    VLOG(1) << "client " << info_.remote_ip << ":" << info_.remote_port
            << " left before the answer";
    if (context_->access_log->enabled()) {
      context_->access_log->Write(exchange_->AccessLogLine(EpochSeconds()));
    }
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
  writer_.Detach();
  timer_.Close();
  if (reset) {
    tcp_.CloseReset();
  } else {
    tcp_.Close();
  }
  host_->ConnectionClosed(this);
}

void ClientConnection::UpdateTimer() {
  if (state_ == State::kClosed) return;
  const LbOptions& o = *context_->options;
  double now = Now();
  double deadline = -1;
  if (!exchange_) {
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
  if (deadline < 0) {
    uv_timer_stop(timer_.get());
    return;
  }
  uv_timer_start(timer_.get(), &OnTimer,
                 static_cast<uint64_t>(std::max(0.0, deadline - now)) + 1, 0);
}

void ClientConnection::OnTimer(uv_timer_t* t) {
  auto* self = static_cast<ClientConnection*>(t->data);
  if (self == nullptr || self->state_ == State::kClosed) return;
  if (!self->exchange_ && self->parser_->in_message()) {
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
