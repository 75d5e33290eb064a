// instant-worker: a worker that answers every request at once with a fixed small 200 (the
// same 14-byte "Hello, world!\n" text/plain body as bench/apps/benchapp.py's /hello), so
// that a benchmark of the load balancer in front of it measures the balancer alone: the
// per-request cost benchmark (bench/percost.py, docs/benchmarks.md "Per-request cost")
// puts resumelb in front of it as HAProxy and nginx are put in front of nginx's
// `return 200`. A test tool, built by CMake and not installed.
//
//   instant-worker --address=127.0.0.1:0     prints "listening on HOST:PORT", then serves
//
// It speaks the LB <-> worker protocol (docs/protocol.md) with the project's codec
// (common/frame_codec.h): HELLO and an empty RESUME when a balancer connects, a KEEPALIVE
// for each KEEPALIVE, and for each request, at its REQUEST_END, RESPONSE + RESPONSE_BODY +
// RESPONSE_END; the answers to everything one read brought leave in one write. Request
// bodies and cancels are ignored. SIGTERM/SIGINT close everything and exit 0.
//
// Thread rules: one thread, the libuv loop's.
#include <uv.h>

#include <cstdio>
#include <memory>
#include <string>
#include <unordered_set>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "common/frame_codec.h"
#include "common/logging_setup.h"
#include "common/net_address.h"
#include "common/program.h"
#include "common/shutdown_signals.h"
#include "common/stream_writer.h"
#include "common/uv_handle.h"

DEFINE_string(address, "127.0.0.1:0", "HOST:PORT to listen on (port 0: any free port)");

namespace rlb::bench {
namespace {

constexpr char kUsage[] = R"(instant-worker: answers every request of a resumelb at once (a benchmark tool).

Usage: instant-worker [--address=HOST:PORT]

Listens for load balancers (the resumelb protocol, docs/protocol.md), prints
"listening on HOST:PORT" on stdout once it does, and answers every request with
"200 OK", Content-Type text/plain and the 14-byte body "Hello, world!\n" as soon as
its REQUEST_END arrives. SIGTERM or SIGINT exit 0.

Flags:
  --address=HOST:PORT   where to listen (default 127.0.0.1:0: a free port)
)";

constexpr std::string_view kBody = "Hello, world!\n";

class Server;

// One balancer's connection: frames in, answers out (one write per read).
class Connection : private StreamWriter::Listener {
 public:
  explicit Connection(Server* server) : server_(server), writer_(this) {}
  // Accepts from `listener`, sends HELLO and an empty RESUME, starts reading.
  Status Start(uv_stream_t* listener);
  void Close();

 private:
  static void OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  Status HandleFrame(const proto::Frame& frame);
  void OnWriteError(int uv_error) override;

  Server* server_;
  UvHandle<uv_tcp_t> tcp_;
  StreamWriter writer_;
  proto::FrameDecoder decoder_;
  bool got_hello_ = false;
  char read_buf_[64 * 1024];
};

class Server {
 public:
  explicit Server(uv_loop_t* loop) : loop_(loop) {}
  Status Listen(const HostPort& address, HostPort* bound) {
    CHECK_EQ(listener_.Init(loop_, this), 0);
    return ListenTcp(listener_.get(), address, 128, &OnConnection, bound);
  }
  // Closes the listener and every connection (shutdown).
  void Close() {
    listener_.Close();
    while (!connections_.empty()) (*connections_.begin())->Close();
  }
  void Forget(Connection* c) {
    connections_.erase(c);
    delete c;
  }
  const proto::Pairs& headers() const { return headers_; }

 private:
  static void OnConnection(uv_stream_t* listener, int status) {
    auto* self = static_cast<Server*>(listener->data);
    if (self == nullptr || status != 0) return;
    auto* c = new Connection(self);
    self->connections_.insert(c);
    Status s = c->Start(listener);
    if (!s.ok()) LOG(WARNING) << s.ToString();
  }

  uv_loop_t* loop_;
  UvHandle<uv_tcp_t> listener_;
  std::unordered_set<Connection*> connections_;
  const proto::Pairs headers_ = {{"Content-Type", "text/plain"},
                                 {"Content-Length", std::to_string(kBody.size())}};
};

Status Connection::Start(uv_stream_t* listener) {
  int rc = tcp_.Init(listener->loop, this);
  if (rc != 0) {
    server_->Forget(this);
    return Status::IOError(std::string("socket: ") + uv_strerror(rc));
  }
  StatusOr<AcceptedTcp> ends = AcceptTcp(listener, tcp_.get());
  if (!ends.ok()) {
    Close();
    return ends.status();
  }
  writer_.Attach(tcp_.stream());
  proto::EncodeHello(writer_.pending(), proto::MakeHello("worker", "instant-worker"));
  proto::EncodeResume(writer_.pending(), {});
  rc = writer_.Flush();
  if (rc == 0) {
    rc = uv_read_start(tcp_.stream(),
                       [](uv_handle_t* h, size_t, uv_buf_t* buf) {
                         auto* c = static_cast<Connection*>(h->data);
                         buf->base = c->read_buf_;
                         buf->len = sizeof c->read_buf_;
                       },
                       &OnRead);
  }
  if (rc != 0) {
    Close();
    return Status::IOError(std::string("new connection: ") + uv_strerror(rc));
  }
  return Status::OK();
}

void Connection::Close() {
  writer_.Detach();
  tcp_.Close();
  server_->Forget(this);  // deletes this
}

void Connection::OnWriteError(int uv_error) {
  LOG(WARNING) << "write: " << uv_strerror(uv_error);
  Close();
}

void Connection::OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<Connection*>(s->data);
  if (self == nullptr || nread == 0) return;
  if (nread < 0) {  // the balancer went away (EOF) or the socket failed
    self->Close();
    return;
  }
  self->decoder_.Feed(std::string_view(buf->base, static_cast<size_t>(nread)));
  Status st = proto::DispatchFrames(
      &self->decoder_, [] { return true; },
      [self](const proto::Frame& frame) { return self->HandleFrame(frame); });
  if (!st.ok()) {
    LOG(WARNING) << "closing a balancer's connection: " << st.ToString();
    self->Close();
    return;
  }
  // Everything this read asked for leaves in one write.
  int rc = self->writer_.Flush();
  if (rc != 0) {
    LOG(WARNING) << "write: " << uv_strerror(rc);
    self->Close();
  }
}

Status Connection::HandleFrame(const proto::Frame& frame) {
  using proto::Kind;
  if (!got_hello_) {
    proto::Hello hello;
    Status s = proto::CheckFirstFrame(frame, &hello);
    if (s.ok()) got_hello_ = true;
    return s;
  }
  switch (frame.kind) {
    case Kind::kKeepAlive:
      proto::EncodeKeepAlive(writer_.pending());
      return Status::OK();
    case Kind::kRequestEnd:
      proto::EncodeResponse(writer_.pending(), frame.rno, "200 OK", server_->headers());
      proto::EncodeResponseBody(writer_.pending(), frame.rno, kBody);
      proto::EncodeResponseEnd(writer_.pending(), frame.rno, proto::Outcome::kComplete);
      return Status::OK();
    case Kind::kRequest:
    case Kind::kRequestBody:
    case Kind::kCancel:
      return Status::OK();
    default:
      return Status::ProtocolError(std::string(proto::KindName(frame.kind)) +
                                   " is not sent by load balancers");
  }
}

}  // namespace
}  // namespace rlb::bench

int main(int argc, char** argv) {
  rlb::StartProgram("instant-worker", rlb::bench::kUsage, argc, argv);
  rlb::InitLogging(argv[0]);
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (argc > 1) return rlb::Fail(std::string("unexpected argument '") + argv[1] + "'");
  auto address = rlb::ParseHostPort(FLAGS_address);
  if (!address.ok()) return rlb::Fail(address.status().message());
  uv_loop_t loop;
  CHECK_EQ(uv_loop_init(&loop), 0);
  {
    rlb::bench::Server server(&loop);
    rlb::HostPort bound;
    rlb::Status s = server.Listen(*address, &bound);
    if (!s.ok()) {
      server.Close();
      rlb::CloseLoop(&loop);
      return rlb::Fail(s.message());
    }
    std::printf("listening on %s\n", bound.ToString().c_str());
    std::fflush(stdout);
    rlb::ShutdownSignals signals(&loop, [&](int) {
      server.Close();
      signals.Close();
    });
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  rlb::CloseLoop(&loop);
  return 0;
}
