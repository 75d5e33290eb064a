// AdminServer: a listener, and per connection a socket, a deadline timer, the request
// parser and a StreamWriter; each connection is closed once its one answer is written.
#include "status/admin_server.h"

#include <glog/logging.h>

#include "common/http_request_parser.h"
#include "common/reason_phrase.h"
#include "common/stream_writer.h"

namespace rlb {
namespace {

constexpr size_t kReadBufferSize = 4096;

std::string Answer(int status, const std::string& content_type, const std::string& body,
                   bool head, const std::string& extra_headers = "") {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + ReasonPhrase(status) + "\r\n";
  out += "Content-Type: " + content_type + "\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  out += "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n";
  out += extra_headers;
  out += "\r\n";
  if (!head) out += body;
  return out;
}

}  // namespace

class AdminServer::Connection : public StreamWriter::Listener, HttpRequestParser::Handler {
 public:
  explicit Connection(AdminServer* server)
      : server_(server),
        writer_(this),
        parser_(this, HttpLimits{.max_header_bytes = 8192, .max_headers = 64,
                                 .max_body_bytes = 0}) {}
  ~Connection() override { Stop(); }

  // Closes the socket and timer: no callback reaches the connection afterwards.
  void Stop() {
    writer_.Detach();
    timer_.Close();
    tcp_.Close();
  }

  Status Accept(uv_stream_t* listener) {
    int rc = tcp_.Init(listener->loop, this);
    if (rc == 0) rc = timer_.Init(listener->loop, this);
    if (rc == 0) rc = uv_accept(listener, tcp_.stream());
    if (rc != 0) return Status::IOError(std::string("admin accept: ") + uv_strerror(rc));
    writer_.Attach(tcp_.stream());
    uv_timer_start(timer_.get(), [](uv_timer_t* t) {
      auto* self = static_cast<Connection*>(t->data);
      if (self) self->server_->Finish(self);
    }, kTimeoutMs, 0);
    return Status::OK();
  }

  void StartReading() {
    uv_read_start(tcp_.stream(),
                  [](uv_handle_t* h, size_t, uv_buf_t* buf) {
                    auto* self = static_cast<Connection*>(h->data);
                    buf->base = self ? self->read_buffer_ : nullptr;
                    buf->len = self ? sizeof self->read_buffer_ : 0;
                  },
                  [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
                    auto* self = static_cast<Connection*>(s->data);
                    if (self) self->OnRead(nread, buf);
                  });
  }

  // StreamWriter::Listener.
  void OnWritten() override {
    if (answered_ && writer_.idle()) server_->Finish(this);
  }
  void OnWriteError(int uv_error) override {
    VLOG(1) << "admin connection: " << uv_strerror(uv_error);
    server_->Finish(this);
  }

  // HttpRequestParser::Handler.
  void OnRequestHeaders(ParsedRequest& request) override {
    method_ = request.method;
    target_ = request.target;
  }
  void OnRequestBody(std::string_view) override {}
  void OnRequestComplete() override { Send(server_->Respond(method_, target_)); }

 private:
  void OnRead(ssize_t nread, const uv_buf_t* buf) {
    if (answered_) return;
    if (nread < 0) {
      server_->Finish(this);
      return;
    }
    auto state = parser_.Execute(std::string_view(buf->base, static_cast<size_t>(nread)));
    if (state == HttpRequestParser::State::kError && !answered_) {
      int status = parser_.error_status();
      Send(Answer(status, "text/plain; charset=utf-8",
                  std::to_string(status) + " " + ReasonPhrase(status) + "\n", false));
    }
  }

  void Send(std::string response) {
    if (answered_) return;
    answered_ = true;
    uv_read_stop(tcp_.stream());
    int rc = writer_.Write(std::move(response));
    if (rc != 0 || writer_.idle()) server_->Finish(this);
  }

  AdminServer* server_;
  UvHandle<uv_tcp_t> tcp_;
  UvHandle<uv_timer_t> timer_;
  StreamWriter writer_;
  HttpRequestParser parser_;
  std::string method_, target_;
  bool answered_ = false;
  char read_buffer_[kReadBufferSize];
};

AdminServer::AdminServer(uv_loop_t* loop, HostPort address, Pages pages, bool reuse_port)
    : loop_(loop),
      address_(std::move(address)),
      pages_(std::move(pages)),
      reuse_port_(reuse_port),
      deleter_(loop) {}

AdminServer::~AdminServer() { Close(); }

Status AdminServer::Start() {
  int rc = listener_.Init(loop_, this);
  CHECK_EQ(rc, 0) << "uv_tcp_init: " << uv_strerror(rc);
  Status s = reuse_port_ ? OpenReusePortSocket(listener_.get(), address_) : Status::OK();
  if (s.ok()) s = ListenTcp(listener_.get(), address_, 16, &OnConnection, &bound_);
  if (!s.ok()) {
    listener_.Close();
    return Status::IOError("admin listener: " + s.message());
  }
  return Status::OK();
}

void AdminServer::OnConnection(uv_stream_t* server, int status) {
  auto* self = static_cast<AdminServer*>(server->data);
  if (self == nullptr || status < 0) return;
  auto owned = std::make_unique<Connection>(self);
  Connection* conn = owned.get();
  if (!conn->Accept(server).ok() ||
      self->connections_.size() >= kMaxConnections) {  // over the limit: closed at once
    conn->Stop();
    self->deleter_.Defer(std::move(owned));
    return;
  }
  self->connections_[conn] = std::move(owned);
  conn->StartReading();
}

std::string AdminServer::Respond(const std::string& method, const std::string& target) {
  const std::string path = target.substr(0, target.find('?'));
  const bool head = method == "HEAD";
  if (method != "GET" && !head) {
    return Answer(405, "text/plain; charset=utf-8", "405 Method Not Allowed\n", false,
                  "Allow: GET, HEAD\r\n");
  }
  auto it = pages_.find(path);
  if (it == pages_.end()) {
    return Answer(404, "text/plain; charset=utf-8", "404 Not Found\n", head);
  }
  return Answer(200, it->second.content_type, it->second.render(), head,
                it->second.extra_headers);
}

void AdminServer::Finish(Connection* conn) {
  auto it = connections_.find(conn);
  if (it == connections_.end()) return;
  std::unique_ptr<Connection> owned = std::move(it->second);
  connections_.erase(it);
  owned->Stop();
  deleter_.Defer(std::move(owned));
}

void AdminServer::Close() {
  if (closed_) return;
  closed_ = true;
  listener_.Close();
  connections_.clear();
  deleter_.Close();
}

}  // namespace rlb
