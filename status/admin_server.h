// AdminServer: the admin HTTP listener of the LB and of the worker (their --admin_address):
// a few read-only pages, such as /metrics, /status.json and the LB's status page, each
// rendered on demand by a callback.
//
// It shares the program's event loop, so it is kept small enough that it can never slow the
// data path: at most kMaxConnections connections (more are accepted and closed at once), one
// request per connection (answered with Connection: close), requests of at most 8 KiB
// without a body, parsed by the LB's own HttpRequestParser (common/http_request_parser.h;
// a malformed one gets its 4xx), and kTimeoutMs for the whole exchange. Only GET and HEAD
// are served (405 otherwise); an unknown path is a 404. Pages are not cached
// (Cache-Control: no-store).
//
// Thread rules: loop thread only. Connections are freed through a DeferredDeleter.
#ifndef RESUMELB_STATUS_ADMIN_SERVER_H_
#define RESUMELB_STATUS_ADMIN_SERVER_H_

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "common/deferred_delete.h"
#include "common/net_address.h"
#include "common/status.h"
#include "common/uv_handle.h"

namespace rlb {

class AdminServer {
 public:
  static constexpr size_t kMaxConnections = 8;
  static constexpr uint64_t kTimeoutMs = 5000;

  struct Page {
    std::string content_type;
    std::function<std::string()> render;  // called once per GET or HEAD
    // Extra response header lines, each ending in "\r\n" (e.g. a Content-Security-Policy).
    std::string extra_headers;
  };
  // Path (without the query) -> page.
  using Pages = std::map<std::string, Page>;

  // `reuse_port`: listen with SO_REUSEPORT (OpenReusePortSocket), for a supervised
  // worker whose replacement serves the same address while it drains.
  AdminServer(uv_loop_t* loop, HostPort address, Pages pages, bool reuse_port = false);
  ~AdminServer();  // Close()
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds and listens; IOError when the address cannot be bound.
  Status Start();
  const HostPort& address() const { return bound_; }
  // Stops listening and drops every connection. Idempotent.
  void Close();

 private:
  class Connection;
  static void OnConnection(uv_stream_t* server, int status);
  // The response to `method` `target` (status line, headers, body).
  std::string Respond(const std::string& method, const std::string& target);
  void Finish(Connection* conn);

  uv_loop_t* loop_;
  const HostPort address_;
  const Pages pages_;
  const bool reuse_port_;
  HostPort bound_;
  UvHandle<uv_tcp_t> listener_;
  DeferredDeleter deleter_;
  std::map<Connection*, std::unique_ptr<Connection>> connections_;
  bool closed_ = false;
};

}  // namespace rlb

#endif  // RESUMELB_STATUS_ADMIN_SERVER_H_
