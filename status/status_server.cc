// StatusServer: a uv_pipe listener; each connection gets the document through a
// StreamWriter and is closed once the kernel has taken it.
#include "status/status_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <glog/logging.h>

#include "common/stream_writer.h"

namespace rlb {

class StatusServer::Connection : public StreamWriter::Listener {
 public:
  explicit Connection(StatusServer* server) : server_(server), writer_(this) {}
  ~Connection() override {
    writer_.Detach();
    pipe_.Close();
  }

  UvHandle<uv_pipe_t>& pipe() { return pipe_; }
  StreamWriter& writer() { return writer_; }

  void OnWritten() override {
    if (writer_.idle()) server_->Finish(this);
  }
  void OnWriteError(int uv_error) override {
    VLOG(1) << "status connection: " << uv_strerror(uv_error);
    server_->Finish(this);
  }

 private:
  StatusServer* server_;
  UvHandle<uv_pipe_t> pipe_;
  StreamWriter writer_;
};

StatusServer::StatusServer(uv_loop_t* loop, std::string path, DocumentFn document)
    : loop_(loop), path_(std::move(path)), document_(std::move(document)), deleter_(loop) {}

StatusServer::~StatusServer() { Close(); }

Status StatusServer::Start(unsigned mode, std::optional<gid_t> group) {
  struct stat st;
  if (lstat(path_.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return Status::InvalidArgument("status socket path " + path_ +
                                     " exists and is not a socket");
    }
    unlink(path_.c_str());
  }
  int rc = listener_.Init(loop_, this);
  CHECK_EQ(rc, 0) << "uv_pipe_init: " << uv_strerror(rc);
  // Owner-only from the moment it exists: no window with default permissions.
  mode_t old = umask(0177);
  rc = uv_pipe_bind(listener_.get(), path_.c_str());
  umask(old);
  if (rc == 0) rc = uv_listen(listener_.stream(), 16, &OnConnection);
  if (rc != 0) {
    listener_.Close();
    return Status::IOError("cannot serve status on " + path_ + ": " + uv_strerror(rc) +
                           (rc == UV_ENOENT ? " (create its directory first)" : ""));
  }
  if ((group && chown(path_.c_str(), static_cast<uid_t>(-1), *group) != 0) ||
      chmod(path_.c_str(), static_cast<mode_t>(mode)) != 0) {
    Status error = Status::IOError("cannot set the group or mode of the status socket " + path_ +
                                   ": " + std::strerror(errno));
    listener_.Close();
    unlink(path_.c_str());
    return error;
  }
  return Status::OK();
}

void StatusServer::OnConnection(uv_stream_t* server, int status) {
  auto* self = static_cast<StatusServer*>(server->data);
  if (self == nullptr || status < 0) return;
  auto owned = std::make_unique<Connection>(self);
  Connection* conn = owned.get();
  int rc = conn->pipe().Init(self->loop_, conn);
  CHECK_EQ(rc, 0) << "uv_pipe_init: " << uv_strerror(rc);
  if (uv_accept(server, conn->pipe().stream()) != 0) return;  // `owned` closes the pipe
  self->connections_[conn] = std::move(owned);
  conn->writer().Attach(conn->pipe().stream());
  rc = conn->writer().Write(self->document_());
  if (rc != 0) VLOG(1) << "status connection: " << uv_strerror(rc);
  if (rc != 0 || conn->writer().idle()) self->Finish(conn);
  // Otherwise Connection::OnWritten finishes it once the kernel has taken everything.
}

void StatusServer::Finish(Connection* conn) {
  auto it = connections_.find(conn);
  if (it == connections_.end()) return;
  std::unique_ptr<Connection> owned = std::move(it->second);
  connections_.erase(it);
  owned->writer().Detach();
  owned->pipe().Close();
  deleter_.Defer(std::move(owned));
}

void StatusServer::Close() {
  if (closed_) return;
  closed_ = true;
  bool listening = listener_.open();
  listener_.Close();
  if (listening) unlink(path_.c_str());
  connections_.clear();  // their destructors close their pipes
  deleter_.Close();
}

}  // namespace rlb
