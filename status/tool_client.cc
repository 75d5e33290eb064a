// ToolConnection: a non-blocking socket driven with poll() against one deadline.
#include "status/tool_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace rlb {
namespace {

Status Errno(const char* what, int err) {
  return Status::IOError(std::string(what) + ": " + std::strerror(err));
}

}  // namespace

ToolConnection::Clock::time_point ToolConnection::DeadlineIn(double seconds) {
  return Clock::now() +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

StatusOr<std::unique_ptr<ToolConnection>> ToolConnection::ConnectUnix(
    const std::string& path, Clock::time_point deadline) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return Status::InvalidArgument("socket path too long");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return Connect(&addr, sizeof addr, deadline);
}

StatusOr<std::unique_ptr<ToolConnection>> ToolConnection::ConnectTcp(
    const HostPort& hp, Clock::time_point deadline) {
  auto addrs = Resolve(hp, false);
  if (!addrs.ok()) return addrs.status();
  const sockaddr_storage& ss = addrs->front();
  return Connect(&ss, ss.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in),
                 deadline);
}

StatusOr<std::unique_ptr<ToolConnection>> ToolConnection::Connect(const void* addr,
                                                                   unsigned len,
                                                                   Clock::time_point deadline) {
  const auto* sa = static_cast<const sockaddr*>(addr);
  int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket", errno);
  std::unique_ptr<ToolConnection> conn(new ToolConnection(fd, deadline));
  if (connect(fd, sa, len) == 0) return conn;
  if (errno != EINPROGRESS) return Errno("connect", errno);
  Status s = conn->Wait(POLLOUT);
  if (!s.ok()) return s.IsTimeout() ? Status::Timeout("connect timed out") : s;
  int err = 0;
  socklen_t elen = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) err = errno;
  if (err != 0) return Errno("connect", err);
  return conn;
}

ToolConnection::~ToolConnection() { close(fd_); }

Status ToolConnection::Wait(short events) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
    pollfd p{fd_, events, 0};
    int n = poll(&p, 1, static_cast<int>(std::max<long long>(0, left.count())));
    if (n == 1) return Status::OK();
    if (n == 0) return Status::Timeout("no answer in time");
    if (errno != EINTR) return Errno("poll", errno);
  }
}

Status ToolConnection::Send(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n >= 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return Errno("send", errno);
    Status s = Wait(POLLOUT);
    if (!s.ok()) return s;
  }
  return Status::OK();
}

StatusOr<bool> ToolConnection::Read(std::string* out) {
  char buf[65536];
  for (;;) {
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      out->append(buf, static_cast<size_t>(n));
      return true;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return Errno("recv", errno);
    Status s = Wait(POLLIN);
    if (!s.ok()) return s;
  }
}

Status ToolConnection::ReadToEnd(std::string* out) {
  for (;;) {
    StatusOr<bool> more = Read(out);
    if (!more.ok()) return more.status();
    if (!*more) return Status::OK();
  }
}

}  // namespace rlb
