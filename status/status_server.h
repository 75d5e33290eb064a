// StatusServer: serves the LB's status document on a unix socket. Each connection gets one
// JSON document (the original's keys and more, see docs/operations.md) and is closed; the
// server reads nothing from clients. The socket file is created owner-only (0600); Start()
// then gives it its group and mode (e.g. 0660 for a monitoring group), in that order, so no
// other group can ever connect. Any stale file at the path is replaced; Close() removes it.
//
// Thread rules: loop thread only.
#ifndef RESUMELB_STATUS_STATUS_SERVER_H_
#define RESUMELB_STATUS_STATUS_SERVER_H_

#include <sys/types.h>
#include <uv.h>

#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>

#include "common/deferred_delete.h"
#include "common/status.h"
#include "common/uv_handle.h"

namespace rlb {

class StatusServer {
 public:
  // Renders the document, once per connection.
  using DocumentFn = std::function<std::string()>;
  StatusServer(uv_loop_t* loop, std::string path, DocumentFn document);
  ~StatusServer();  // Close()
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

  // Binds and listens; the socket gets `group` (when given) and then `mode`. InvalidArgument
  // when the path exists and is not a socket; IOError when it cannot be bound, or its group
  // or mode cannot be set.
  Status Start(unsigned mode = 0600, std::optional<gid_t> group = std::nullopt);
  // Stops listening, drops the connections still being written to, removes the socket file
  // and closes every handle. Idempotent.
  void Close();

 private:
  class Connection;
  static void OnConnection(uv_stream_t* server, int status);
  // The connection is done (written, failed): close it and free it after this callback.
  void Finish(Connection* conn);

  uv_loop_t* loop_;
  std::string path_;
  DocumentFn document_;
  UvHandle<uv_pipe_t> listener_;
  DeferredDeleter deleter_;
  std::map<Connection*, std::unique_ptr<Connection>> connections_;  // being written to
  bool closed_ = false;
};

}  // namespace rlb

#endif  // RESUMELB_STATUS_STATUS_SERVER_H_
