// StatusServer: serves the LB's status document on a unix socket. Each connection gets one
// JSON document (the original's keys and more, see docs/operations.md) and is closed; the
// server reads nothing from clients. The socket file is created owner-only (0600), any
// stale file at the path is replaced, and Close() removes it.
// Thread rules: loop thread only.
#ifndef RESUMELB_STATUS_STATUS_SERVER_H_
#define RESUMELB_STATUS_STATUS_SERVER_H_

#include <uv.h>

#include <functional>
#include <string>

#include "common/status.h"

namespace rlb {

class StatusServer {
 public:
  using DocumentFn = std::function<std::string()>;
  StatusServer(uv_loop_t* loop, std::string path, DocumentFn document);
  ~StatusServer();
  Status Start();
  void Close();

 private:
  static void OnConnection(uv_stream_t* server, int status);
  uv_loop_t* loop_;
  std::string path_;
  DocumentFn document_;
  uv_pipe_t pipe_;
  bool open_ = false;
};

}  // namespace rlb

#endif  // RESUMELB_STATUS_STATUS_SERVER_H_
