// ToolConnection: the client end of a socket for the command-line tools (get-lb-status reads
// an LB's status socket, get-worker-resume asks a worker for its résumé). Connect, send and
// read are blocking from the caller's view and bounded together by one deadline, so a peer
// that accepts and then says nothing cannot hang a tool.
//
// Thread rules: one thread at a time. Owns its socket (closed by the destructor).
#ifndef RESUMELB_STATUS_TOOL_CLIENT_H_
#define RESUMELB_STATUS_TOOL_CLIENT_H_

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "common/net_address.h"
#include "common/status.h"

namespace rlb {

class ToolConnection {
 public:
  using Clock = std::chrono::steady_clock;

  // The deadline `seconds` from now.
  static Clock::time_point DeadlineIn(double seconds);

  // Connects to the unix socket at `path` / to the first address `hp` resolves to.
  // Errors: IOError("connect: <reason>") and the like; Timeout when the deadline passes.
  static StatusOr<std::unique_ptr<ToolConnection>> ConnectUnix(const std::string& path,
                                                               Clock::time_point deadline);
  static StatusOr<std::unique_ptr<ToolConnection>> ConnectTcp(const HostPort& hp,
                                                              Clock::time_point deadline);
  ~ToolConnection();
  ToolConnection(const ToolConnection&) = delete;
  ToolConnection& operator=(const ToolConnection&) = delete;

  // Sends all of `data` (before the deadline).
  Status Send(std::string_view data);
  // Waits (until the deadline) for bytes and appends them to *out. Returns true when bytes
  // were read, false at end of stream; Timeout when the deadline passes first.
  StatusOr<bool> Read(std::string* out);
  // Reads until the peer closes; everything read is appended to *out.
  Status ReadToEnd(std::string* out);

 private:
  ToolConnection(int fd, Clock::time_point deadline) : fd_(fd), deadline_(deadline) {}
  static StatusOr<std::unique_ptr<ToolConnection>> Connect(const void* addr, unsigned len,
                                                           Clock::time_point deadline);
  // Waits for `events` on the socket; Timeout at the deadline.
  Status Wait(short events);

  int fd_;
  Clock::time_point deadline_;
};

}  // namespace rlb

#endif  // RESUMELB_STATUS_TOOL_CLIENT_H_
