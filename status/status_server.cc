// StatusServer: uv_pipe listener; one write of the document per connection, then close.
#include "status/status_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <glog/logging.h>

namespace rlb {

StatusServer::StatusServer(uv_loop_t* loop, std::string path, DocumentFn document)
    : loop_(loop), path_(std::move(path)), document_(std::move(document)) {}

StatusServer::~StatusServer() = default;

Status StatusServer::Start() {
  struct stat st;
  if (lstat(path_.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return Status::InvalidArgument("status socket path " + path_ +
                                     " exists and is not a socket");
    }
    unlink(path_.c_str());
  }
  uv_pipe_init(loop_, &pipe_, 0);
  pipe_.data = this;
  // Owner-only from the moment it exists: no window with default permissions.
  mode_t old = umask(0177);
  int rc = uv_pipe_bind(&pipe_, path_.c_str());
  umask(old);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&pipe_), 16, &OnConnection);
  if (rc != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&pipe_), nullptr);
    return Status::IOError("cannot serve status on " + path_ + ": " + uv_strerror(rc));
  }
  chmod(path_.c_str(), 0600);
  open_ = true;
  return Status::OK();
}

void StatusServer::OnConnection(uv_stream_t* server, int status) {
  auto* self = static_cast<StatusServer*>(server->data);
  if (status < 0) return;
  auto* client = new uv_pipe_t;
  uv_pipe_init(self->loop_, client, 0);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(client)) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(client),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
    return;
  }
  struct Req {
    uv_write_t req;
    std::string data;
  };
  auto* w = new Req{{}, self->document_()};
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(client), &buf, 1,
                    [](uv_write_t* req, int) {
                      auto* w = reinterpret_cast<Req*>(req);
                      uv_close(reinterpret_cast<uv_handle_t*>(req->handle),
                               [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
                      delete w;
                    });
  if (rc != 0) {
    delete w;
    uv_close(reinterpret_cast<uv_handle_t*>(client),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
  }
}

void StatusServer::Close() {
  if (!open_) return;
  open_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&pipe_), nullptr);
  unlink(path_.c_str());
}

}  // namespace rlb
