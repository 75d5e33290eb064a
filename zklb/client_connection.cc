// ClientConnection / Exchange implementation: HTTP in, frames out, frames in, HTTP out.
#include "zklb/client_connection.h"

#include <strings.h>

#include <cinttypes>
#include <cstdio>
#include <ctime>

#include <glog/logging.h>

#include "common/net_address.h"
#include "zklb/load_balancer.h"

namespace rlb::lb {
namespace {

constexpr size_t kClientHighWater = 256 * 1024;   // bytes queued in libuv before buffering
constexpr size_t kPendingBodyLimit = 256 * 1024;  // upload bytes held before a worker is chosen
constexpr size_t kKeptBytesLimit = 1u << 20;      // pipelined bytes held while one is served

double EpochSeconds() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

bool IsHopByHop(std::string_view name) {
  for (const char* h : {"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding",
                        "TE", "Trailer", "Upgrade"}) {
    if (IEquals(name, h)) return true;
  }
  return false;
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
  }
  return "Error";
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

proto::Pairs BuildEnviron(const ParsedRequest& r, const ConnectionInfo& info) {
  proto::Pairs env;
  env.reserve(16 + r.headers.size());
  std::string_view target = r.url;
  // absolute-form (a proxy request): keep only the path and query
  if (target.size() > 7 && (target.substr(0, 7) == "http://" || target.substr(0, 8) == "https://")) {
    size_t slash = target.find('/', target.find("//") + 2);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  size_t hash = query.find('#');
  if (hash != std::string_view::npos) query = query.substr(0, hash);
  env.emplace_back("REQUEST_METHOD", r.method);
  env.emplace_back("SCRIPT_NAME", "");
  env.emplace_back("PATH_INFO", PercentDecode(path));
  env.emplace_back("QUERY_STRING", std::string(query));
  env.emplace_back("SERVER_NAME", info.local_ip);
  env.emplace_back("SERVER_PORT", std::to_string(info.local_port));
  env.emplace_back("SERVER_PROTOCOL", "HTTP/" + std::to_string(r.http_major) + "." +
                                          std::to_string(r.http_minor));
  env.emplace_back("REMOTE_ADDR", info.remote_ip);
  env.emplace_back("REMOTE_PORT", std::to_string(info.remote_port));
  env.emplace_back("wsgi.url_scheme", "http");
  // HTTP_* for every header; repeats joined with ", " (Cookie with "; "), as PEP 3333 / CGI.
  std::vector<std::pair<std::string, std::string>> hdrs;
  for (const auto& [name, value] : r.headers) {
    if (name.find('_') != std::string::npos) continue;  // ambiguous with '-': dropped (nginx)
    std::string key;
    if (IEquals(name, "Content-Type")) {
      key = "CONTENT_TYPE";
    } else if (IEquals(name, "Content-Length")) {
      key = "CONTENT_LENGTH";
    } else if (IEquals(name, "Transfer-Encoding")) {
      continue;  // the body is de-chunked; the worker gives the app its real length
    } else {
      key = "HTTP_";
      for (char c : name) key.push_back(c == '-' ? '_' : static_cast<char>(toupper(c)));
    }
    bool merged = false;
    for (auto& [k, v] : hdrs) {
      if (k == key) {
        if (key == "CONTENT_LENGTH") { merged = true; break; }  // llhttp refuses repeats
        v += key == "HTTP_COOKIE" ? "; " : ", ";
        v += value;
        merged = true;
        break;
      }
    }
    if (!merged) hdrs.emplace_back(std::move(key), value);
  }
  for (auto& h : hdrs) env.push_back(std::move(h));
  return env;
}

// ------------------------------------------------------------------ Exchange

Exchange::Exchange(ClientConnection* conn, const ParsedRequest& request)
    : conn_(conn),
      lb_(conn->lb()),
      method_(request.method),
      url_(request.url),
      http_minor_(request.http_minor),
      head_(request.method == "HEAD"),
      retryable_((request.method == "GET" || request.method == "HEAD") && !request.has_body()),
      client_keep_alive_(request.keep_alive),
      has_body_(request.has_body()),
      environ_(BuildEnviron(request, conn->info())),
      start_(EpochSeconds()) {
  request_class_ = lb_->classifier().Classify(environ_);
  ++lb_->counters().requests;
}

Exchange::~Exchange() {
  if (waiting_) lb_->ForgetWaiting(this);
  if (link_) link_->Detach(rno_, /*cancel=*/true);
  ReleaseWorker();
}

void Exchange::ReleaseWorker() {
  if (worker_) {
    lb_->pool()->Put(worker_);
    worker_.reset();
  }
}

void Exchange::OnBody(std::string_view data) {
  if (response_done_ || (response_started_ && !link_)) return;  // answered already; discard
  if (link_) {
    link_->SendBody(rno_, data);
    if (link_->congested()) {
      conn_->PauseReading();
      link_->WaitWritable(this);
    }
    return;
  }
  pending_body_.append(data);
  if (pending_body_.size() > kPendingBodyLimit) conn_->PauseReading();
}

void Exchange::OnRequestComplete() {
  request_complete_ = true;
  if (link_) link_->SendEnd(rno_);
}

void Exchange::OnLinkWritable() { conn_->ResumeReading(); }

void Exchange::Assign(PoolWorkerPtr worker) {
  waiting_ = false;
  worker_ = std::move(worker);
  link_ = static_cast<WorkerLink*>(worker_->owner);
  worker_name_ = worker_->name();
  rno_ = link_->SendRequest(this, request_class_, environ_);
  if (!pending_body_.empty()) {
    link_->SendBody(rno_, pending_body_);
    std::string().swap(pending_body_);
  }
  if (request_complete_) {
    link_->SendEnd(rno_);
  } else if (link_->congested()) {
    conn_->PauseReading();
    link_->WaitWritable(this);
  } else {
    conn_->ResumeReading();
  }
}

void Exchange::NoWorker() {
  waiting_ = false;
  ++lb_->counters().unavailable;
  SendOwnResponse(503, "no worker became available in time", "text/html; charset=UTF-8",
                  "<html><body>\nNo server is available to handle your request right now.\n"
                  "Please try again.\n</body></html>\n");
}

void Exchange::SendOwnResponse(int status, const std::string& reason,
                               const std::string& content_type, const std::string& body) {
  VLOG(1) << "answering " << status << " to " << method_ << " " << url_ << ": " << reason;
  response_started_ = true;
  status_ = status;
  // If the client is still sending a body we did not forward, the connection cannot be reused.
  if (!request_complete_ || !client_keep_alive_ || lb_->draining()) close_after_ = true;
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + ReasonPhrase(status) +
                     "\r\nContent-Type: " + content_type +
                     "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  if (close_after_) head += "Connection: close\r\n";
  head += "\r\n";
  if (!head_) head += body;
  body_bytes_ = head_ ? 0 : body.size();
  Write(std::move(head));
  response_done_ = true;
  conn_->ExchangeResponseDone();
}

void Exchange::Write(std::string data) { conn_->WriteRaw(std::move(data)); }

void Exchange::OnResponseStart(proto::Response response) {
  if (response_started_) return;
  response_started_ = true;
  status_ = std::atoi(response.status.c_str());
  no_body_ = head_ || status_ < 200 || status_ == 204 || status_ == 304;
  bool has_length = false;
  std::string head = "HTTP/1.1 " + response.status + "\r\n";
  for (const auto& [name, value] : response.headers) {
    if (IsHopByHop(name)) {
      if (IEquals(name, "Connection") && value.find("close") != std::string::npos) {
        close_after_ = true;  // the application asked for it
      }
      continue;
    }
    if (IEquals(name, "Content-Length")) has_length = true;
    head += name;
    head += ": ";
    head += value;
    head += "\r\n";
  }
  if (!no_body_ && !has_length) {
    if (http_minor_ >= 1) {
      chunked_ = true;
      head += "Transfer-Encoding: chunked\r\n";
    } else {
      close_after_ = true;  // HTTP/1.0: the end of the body is the end of the connection
    }
  }
  if (http_minor_ == 0) close_after_ = true;
  if (!client_keep_alive_ || lb_->draining() || !request_complete_) close_after_ = true;
  if (close_after_) head += "Connection: close\r\n";
  head += "\r\n";
  Write(std::move(head));
}

void Exchange::OnResponseBody(std::string_view data) {
  if (!response_started_ || no_body_) return;
  body_bytes_ += data.size();
  if (chunked_) {
    char size[24];
    int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    std::string out;
    out.reserve(data.size() + n + 2);
    out.append(size, static_cast<size_t>(n));
    out.append(data);
    out.append("\r\n");
    Write(std::move(out));
  } else {
    Write(std::string(data));
  }
}

void Exchange::OnResponseEnd(proto::Outcome outcome) {
  link_ = nullptr;  // the link has forgotten this request number
  ReleaseWorker();  // the worker has sent the whole response: its backlog slot is free
  if (!response_started_) {  // a worker bug; never happens with ours
    ++lb_->counters().bad_gateway;
    SendOwnResponse(502, "worker ended a response it never started", "text/html; charset=UTF-8",
                    lb_->disconnect_message());
    return;
  }
  if (outcome == proto::Outcome::kFailed) {
    ++lb_->counters().truncated;
    conn_->Abort("the worker could not complete the response");
    return;
  }
  if (chunked_) Write("0\r\n\r\n");
  response_done_ = true;
  conn_->ExchangeResponseDone();
}

void Exchange::OnLinkLost(const std::string& reason) {
  link_ = nullptr;
  ReleaseWorker();
  if (response_started_) {
    LOG(WARNING) << "worker " << worker_name_ << " lost while returning the body of " << method_
                 << " " << url_ << ": " << reason;
    ++lb_->counters().truncated;
    conn_->Abort("worker lost mid-response");
    return;
  }
  if (retryable_ && retries_ < lb_->options().max_retries && !lb_->draining()) {
    ++retries_;
    ++lb_->counters().retries;
    LOG(INFO) << worker_name_ << " disconnected, retrying " << method_ << " " << url_;
    lb_->Dispatch(this);
    return;
  }
  ++lb_->counters().bad_gateway;
  SendOwnResponse(502, "worker lost: " + reason, "text/html; charset=UTF-8",
                  lb_->disconnect_message());
}

std::string Exchange::AccessLogLine(double now) const {
  char when[64];
  time_t t = static_cast<time_t>(start_);
  tm local;
  localtime_r(&t, &local);
  std::strftime(when, sizeof when, "%d/%b/%Y:%H:%M:%S %z", &local);
  const ConnectionInfo& info = conn_->info();
  char buf[256];
  std::snprintf(buf, sizeof buf, "\" %d %" PRIu64 " %.6f %s", status_, body_bytes_, now - start_,
                worker_name_.c_str());
  return info.remote_ip + " - - [" + when + "] \"" + method_ + " " + url_ + " HTTP/1." +
         std::to_string(http_minor_) + buf;
}

// ------------------------------------------------------------------ ClientConnection

class ClientConnection::ParserHandler : public HttpRequestParser::Handler {
 public:
  explicit ParserHandler(ClientConnection* c) : c_(c) {}
  void OnRequestHeaders(ParsedRequest& request) override {
    c_->exchange_ = std::make_unique<Exchange>(c_, request);
    if (request.expect_continue && request.has_body()) c_->WriteRaw("HTTP/1.1 100 Continue\r\n\r\n");
    c_->lb_->Dispatch(c_->exchange_.get());
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

ClientConnection::ClientConnection(LoadBalancer* lb) : lb_(lb) {
  handler_ = std::make_unique<ParserHandler>(this);
  parser_ = std::make_unique<HttpRequestParser>(handler_.get(), lb_->options().http_limits);
}

ClientConnection::~ClientConnection() = default;

Status ClientConnection::Accept(uv_stream_t* listener) {
  uv_tcp_init(listener->loop, &tcp_);
  tcp_.data = this;
  uv_timer_init(listener->loop, &timer_);
  timer_.data = this;
  open_handles_ = 2;
  int rc = uv_accept(listener, reinterpret_cast<uv_stream_t*>(&tcp_));
  if (rc != 0) {
    Close(false);
    return Status::IOError(std::string("accept: ") + uv_strerror(rc));
  }
  uv_tcp_nodelay(&tcp_, 1);
  sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    info_.remote_ip = SockaddrIp(reinterpret_cast<sockaddr*>(&ss));
    info_.remote_port = SockaddrPort(reinterpret_cast<sockaddr*>(&ss));
  }
  len = sizeof ss;
  if (uv_tcp_getsockname(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    info_.local_ip = SockaddrIp(reinterpret_cast<sockaddr*>(&ss));
    info_.local_port = SockaddrPort(reinterpret_cast<sockaddr*>(&ss));
  }
  return Status::OK();
}

void ClientConnection::Start() {
  last_progress_ = static_cast<double>(uv_now(tcp_.loop));
  StartReading();
  UpdateTimer();
}

void ClientConnection::StartReading() {
  if (reading_ || closing_ || read_eof_) return;
  reading_ = true;
  uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_),
                [](uv_handle_t* h, size_t, uv_buf_t* buf) {
                  auto* self = static_cast<ClientConnection*>(h->data);
                  buf->base = self->read_buf_;
                  buf->len = sizeof self->read_buf_;
                },
                &OnRead);
}

void ClientConnection::PauseReading() {
  pause_requested_ = true;
  if (reading_) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    reading_ = false;
  }
  UpdateTimer();
}

void ClientConnection::ResumeReading() {
  if (!pause_requested_) return;
  pause_requested_ = false;
  StartReading();
  UpdateTimer();
}

void ClientConnection::OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<ClientConnection*>(s->data);
  if (self->closing_) return;
  if (nread == UV_EOF) {
    self->read_eof_ = true;
    self->reading_ = false;
    uv_read_stop(s);
    // A half-closed client still gets the response to a complete request.
    if (self->exchange_ && self->exchange_->request_complete()) return;
    if (self->exchange_ && !self->exchange_->response_done()) {
      self->Close(false);  // upload cut short: the exchange cancels the worker's request
      return;
    }
    if (!self->exchange_) self->Close(false);
    return;
  }
  if (nread < 0) {
    self->Close(true);
    return;
  }
  if (nread == 0) return;
  double now = static_cast<double>(uv_now(s->loop));
  self->last_progress_ = now;
  if (!self->exchange_ && !self->parser_->in_message()) self->message_start_ = now;
  auto state = self->parser_->Execute(std::string_view(buf->base, static_cast<size_t>(nread)));
  self->HandleParserState(state);
}

void ClientConnection::HandleParserState(HttpRequestParser::State state) {
  if (closing_) return;
  if (state == HttpRequestParser::State::kError) {
    ParseError(parser_->error_status(), parser_->error_reason());
    return;
  }
  if (state == HttpRequestParser::State::kPaused && parser_->has_kept_bytes() &&
      exchange_ && !exchange_->response_done()) {
    // Pipelined requests wait their turn; stop reading if too many pile up.
    if (reading_ && parser_->kept_bytes() > kKeptBytesLimit) PauseReading();
  }
  UpdateTimer();
}

void ClientConnection::ParseError(int status, const std::string& reason) {
  ++lb_->counters().client_errors;
  LOG(INFO) << "client " << info_.remote_ip << ":" << info_.remote_port << ": " << status << " "
            << reason;
  if (exchange_ && exchange_->response_started()) {  // mid-body error after a response began
    Close(true);
    return;
  }
  exchange_.reset();  // cancels whatever was sent to a worker
  std::string body = "<html><body>\n" + std::to_string(status) + " " + ReasonPhrase(status) +
                     "\n</body></html>\n";
  WriteRaw("HTTP/1.1 " + std::to_string(status) + " " + ReasonPhrase(status) +
           "\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
  close_after_flush_ = true;
  if (reading_) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    reading_ = false;
  }
  MaybeFinishExchange();
}

void ClientConnection::WriteRaw(std::string data) {
  if (closing_ || reset_pending_ || data.empty()) return;
  if (queued_bytes_ < kClientHighWater && (!buffer_ || buffer_->empty())) {
    if (queued_bytes_ == 0) {
      // Usually the kernel takes it all at once: no write request, no completion callback.
      uv_buf_t b = uv_buf_init(data.data(), static_cast<unsigned>(data.size()));
      int n = uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1);
      if (n < 0 && n != UV_EAGAIN) {
        DeferReset();  // the caller may be the exchange that Close() would delete
        return;
      }
      if (n > 0) {
        last_progress_ = static_cast<double>(uv_now(tcp_.loop));
        if (static_cast<size_t>(n) == data.size()) return;
        data.erase(0, static_cast<size_t>(n));
      }
    }
    struct Req {
      uv_write_t req;
      std::string data;
    };
    auto* w = new Req{{}, std::move(data)};
    w->req.data = this;
    queued_bytes_ += w->data.size();
    uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1,
                      [](uv_write_t* req, int status) {
                        auto* w = reinterpret_cast<Req*>(req);
                        auto* self = static_cast<ClientConnection*>(req->data);
                        self->queued_bytes_ -= w->data.size();
                        delete w;
                        if (status == UV_ECANCELED || self->closing_) return;
                        if (status < 0) {
                          self->Close(true);
                          return;
                        }
                        self->last_progress_ = static_cast<double>(uv_now(self->tcp_.loop));
                        self->Refill();
                        self->MaybeFinishExchange();
                        if (!self->closing_) self->UpdateTimer();
                      });
    if (rc != 0) {
      queued_bytes_ -= w->data.size();
      delete w;
      DeferReset();
      return;
    }
    // Bytes now wait for the client: arm the -t deadline. (uv_try_write completes without
    // a callback, so a client that never reads might otherwise never get one.)
    if (exchange_) UpdateTimer();
    return;
  }
  if (!buffer_) buffer_ = std::make_unique<ResponseBuffer>(lb_->options().response_memory,
                                                           lb_->options().buffer_dir);
  Status s = buffer_->Append(data);
  if (!s.ok()) {
    LOG(ERROR) << "client " << info_.remote_ip << ":" << info_.remote_port << ": " << s.ToString();
    ++lb_->counters().truncated;
    DeferReset();  // not Abort(): the caller may be the exchange that Close() would delete
    return;
  }
  if (exchange_) UpdateTimer();
}

void ClientConnection::Refill() {
  while (buffer_ && !buffer_->empty() && queued_bytes_ < kClientHighWater && !closing_) {
    std::string chunk;
    Status s = buffer_->Take(64 * 1024, &chunk);
    if (!s.ok()) {
      LOG(ERROR) << s.ToString();
      Abort("cannot read the response buffer");
      return;
    }
    if (chunk.empty()) break;
    // Bypass the buffer check in WriteRaw: these bytes come from its front.
    std::unique_ptr<ResponseBuffer> held = std::move(buffer_);
    WriteRaw(std::move(chunk));
    if (!buffer_) buffer_ = std::move(held);
  }
}

void ClientConnection::ExchangeResponseDone() { MaybeFinishExchange(); }

void ClientConnection::MaybeFinishExchange() {
  if (closing_) return;
  bool flushed = queued_bytes_ == 0 && (!buffer_ || buffer_->empty());
  if (exchange_ && exchange_->response_done() && flushed) {
    if (lb_->access_log_enabled()) lb_->AccessLog(exchange_->AccessLogLine(EpochSeconds()));
    ++lb_->counters().responses;
    bool close = exchange_->close_after() || close_when_idle_;
    // A request whose body was never fully read leaves the connection unusable.
    if (!exchange_->request_complete()) close = true;
    exchange_.reset();
    buffer_.reset();
    if (close) {
      Close(false);
      return;
    }
    // Next pipelined request, if any (also after the client half-closed its side).
    auto state = parser_->Resume();
    if (!read_eof_) {
      ResumeReading();
      StartReading();
    }
    HandleParserState(state);
    if (!closing_ && read_eof_ && !exchange_) Close(false);
    return;
  }
  if (!exchange_ && close_after_flush_ && flushed) Close(false);
}

void ClientConnection::Abort(const std::string& reason) {
  VLOG(1) << "client " << info_.remote_ip << ":" << info_.remote_port << " reset: " << reason;
  if (exchange_ && exchange_->response_started() && lb_->access_log_enabled()) {
    lb_->AccessLog(exchange_->AccessLogLine(EpochSeconds()));
  }
  Close(true);
}

void ClientConnection::CloseWhenIdle() {
  close_when_idle_ = true;
  if (!exchange_ && !parser_->in_message()) Close(false);
}

void ClientConnection::Close(bool reset) {
  if (closing_) return;
  closing_ = true;
  exchange_.reset();  // detaches from the worker link (cancel) and releases the pool slot
  buffer_.reset();
  uv_timer_stop(&timer_);
  auto on_close = [](uv_handle_t* h) {
    auto* self = static_cast<ClientConnection*>(h->data);
    if (--self->open_handles_ == 0) {
      self->lb_->ConnectionClosed(self);
      delete self;
    }
  };
  if (reset) {
    uv_tcp_close_reset(&tcp_, on_close);
  } else {
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_close);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_close);
}

void ClientConnection::DeferReset() {
  if (closing_ || reset_pending_) return;
  reset_pending_ = true;
  uv_timer_start(&timer_, &OnTimer, 0, 0);
}

void ClientConnection::UpdateTimer() {
  if (closing_ || reset_pending_) return;
  const LbOptions& o = lb_->options();
  double now = static_cast<double>(uv_now(tcp_.loop));
  double deadline = -1;
  if (!exchange_) {
    if (parser_->in_message()) {
      deadline = message_start_ + o.header_timeout * 1000;  // slowloris
    } else {
      deadline = last_progress_ + o.socket_timeout * 1000;  // idle keep-alive
    }
  } else if (!exchange_->request_complete() && !pause_requested_) {
    deadline = last_progress_ + o.socket_timeout * 1000;  // a stalled upload
  } else if (queued_bytes_ > 0 || (buffer_ && !buffer_->empty())) {
    deadline = last_progress_ + o.socket_timeout * 1000;  // a client not reading
  }
  if (deadline < 0) {
    uv_timer_stop(&timer_);
    return;
  }
  uv_timer_start(&timer_, &OnTimer, static_cast<uint64_t>(std::max(0.0, deadline - now)) + 1, 0);
}

void ClientConnection::OnTimer(uv_timer_t* t) {
  auto* self = static_cast<ClientConnection*>(t->data);
  if (self->closing_) return;
  if (self->reset_pending_) {
    self->Close(true);
    return;
  }
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
