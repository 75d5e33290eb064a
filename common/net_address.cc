// NetAddress implementation: parsing with explicit errors, resolution via getaddrinfo.
#include "common/net_address.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace rlb {

std::string HostPort::ToString() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

StatusOr<HostPort> ParseHostPort(std::string_view text) {
  HostPort hp;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Status::InvalidArgument("address '" + std::string(text) +
                                     "' is not of the form [IPv6]:PORT");
    }
    hp.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return Status::InvalidArgument("address '" + std::string(text) +
                                     "' is not of the form HOST:PORT");
    }
    hp.host = std::string(text.substr(0, colon));
    if (hp.host.find(':') != std::string::npos) {
      return Status::InvalidArgument("address '" + std::string(text) +
                                     "': write IPv6 hosts in brackets, [::1]:PORT");
    }
    port_text = text.substr(colon + 1);
  }
  // A host is a name or an address: brackets only delimit an IPv6 address, and spaces or
  // control bytes are never part of one. Refusing them here also keeps ToString() a
  // faithful inverse ("[[x]:1" would otherwise print as "[x:1").
  for (char c : hp.host) {
    if (c == '[' || c == ']' || static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return Status::InvalidArgument("address '" + std::string(text) +
                                     "' has an invalid character in its host");
    }
  }
  int port = -1;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port < 0 || port > 65535) {
    return Status::InvalidArgument("address '" + std::string(text) + "' has an invalid port '" +
                                   std::string(port_text) + "'");
  }
  hp.port = port;
  return hp;
}

StatusOr<std::vector<sockaddr_storage>> Resolve(const HostPort& hp, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  std::string port = std::to_string(hp.port);
  const char* host = hp.host.empty() ? (passive ? nullptr : "127.0.0.1") : hp.host.c_str();
  if (hp.host.empty() && passive) hints.ai_family = AF_INET;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host, port.c_str(), &hints, &res);
  if (rc != 0) {
    return Status::InvalidArgument("cannot resolve '" + hp.ToString() + "': " + gai_strerror(rc));
  }
  std::vector<sockaddr_storage> out;
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    sockaddr_storage ss{};
    std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    out.push_back(ss);
  }
  freeaddrinfo(res);
  if (out.empty()) return Status::InvalidArgument("no address for '" + hp.ToString() + "'");
  return out;
}

bool IsWildcardHost(const std::string& host) {
  return host.empty() || host == "0.0.0.0" || host == "::";
}

std::string RegistrationHost(const std::string& host) {
  return IsWildcardHost(host) ? PrimaryAddress() : host;
}

namespace {

bool IsLoopbackOrUnspecified(const std::string& ip) {
  return ip.empty() || ip.rfind("127.", 0) == 0 || ip == "0.0.0.0";
}

// The source address the kernel would use towards a public address (the default route's),
// nullopt without such a route.
std::optional<std::string> DefaultRouteSource() {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_port = htons(53);  // connect() on UDP picks a route and sends nothing
  inet_pton(AF_INET, "8.8.8.8", &remote.sin_addr);
  std::optional<std::string> out;
  sockaddr_in local{};
  socklen_t len = sizeof local;
  if (connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof remote) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0) {
    out = SockaddrIp(reinterpret_cast<sockaddr*>(&local));
  }
  close(fd);
  return out;
}

}  // namespace

std::string ChoosePrimaryAddress(const std::optional<std::string>& route_source,
                                 const std::vector<std::string>& interface_addresses) {
  if (route_source && !IsLoopbackOrUnspecified(*route_source)) return *route_source;
  for (const auto& ip : interface_addresses) {
    if (!IsLoopbackOrUnspecified(ip)) return ip;
  }
  return "127.0.0.1";
}

std::string PrimaryAddress() {
  std::vector<std::string> addresses;
  ifaddrs* ifs = nullptr;
  if (getifaddrs(&ifs) == 0) {
    for (ifaddrs* i = ifs; i; i = i->ifa_next) {
      if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
      addresses.push_back(SockaddrIp(i->ifa_addr));
    }
    freeifaddrs(ifs);
  }
  return ChoosePrimaryAddress(DefaultRouteSource(), addresses);
}

StatusOr<int> ReusePortSocket(const HostPort& address) {
  auto addrs = Resolve(address, /*passive=*/true);
  if (!addrs.ok()) return addrs.status();
  int fd = socket(addrs->front().ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Status::IOError(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    int e = errno;
    close(fd);
    return Status::IOError(std::string("SO_REUSEPORT: ") + std::strerror(e));
  }
  return fd;
}

StatusOr<int> ReserveReusePort(const HostPort& address, HostPort* bound) {
  auto addrs = Resolve(address, /*passive=*/true);
  if (!addrs.ok()) return addrs.status();
  auto fd = ReusePortSocket(address);
  if (!fd.ok()) return fd.status();
  const sockaddr_storage& ss = addrs->front();
  socklen_t len = ss.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (bind(*fd, reinterpret_cast<const sockaddr*>(&ss), len) != 0) {
    int e = errno;
    close(*fd);
    return Status::IOError("cannot listen on " + address.ToString() + ": " + std::strerror(e));
  }
  sockaddr_storage got;
  socklen_t got_len = sizeof got;
  getsockname(*fd, reinterpret_cast<sockaddr*>(&got), &got_len);
  *bound = HostPort{address.host, SockaddrPort(reinterpret_cast<sockaddr*>(&got))};
  return *fd;
}

Status ListenTcp(uv_tcp_t* tcp, const HostPort& address, int backlog,
                 uv_connection_cb on_connection, HostPort* bound, bool reuse_port) {
  auto addrs = Resolve(address, /*passive=*/true);
  if (!addrs.ok()) return addrs.status();
  if (reuse_port) {
    Status opened = OpenReusePortSocket(tcp, address);
    if (!opened.ok()) return opened;
  }
  int rc = uv_tcp_bind(tcp, reinterpret_cast<const sockaddr*>(&addrs->front()), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(tcp), backlog, on_connection);
  if (rc != 0) {
    return Status::IOError("cannot listen on " + address.ToString() + ": " + uv_strerror(rc));
  }
  sockaddr_storage ss;
  int len = sizeof ss;
  uv_tcp_getsockname(tcp, reinterpret_cast<sockaddr*>(&ss), &len);
  *bound = HostPort{address.host, SockaddrPort(reinterpret_cast<sockaddr*>(&ss))};
  return Status::OK();
}

std::string AcceptedTcp::PeerToString() const {
  return peer_ip.empty() ? std::string() : HostPort{peer_ip, peer_port}.ToString();
}

Status OpenReusePortSocket(uv_tcp_t* tcp, const HostPort& address) {
  auto fd = ReusePortSocket(address);
  if (!fd.ok()) return fd.status();
  int rc = uv_tcp_open(tcp, *fd);
  if (rc != 0) {
    close(*fd);
    return Status::IOError(std::string("uv_tcp_open: ") + uv_strerror(rc));
  }
  return Status::OK();
}

StatusOr<AcceptedTcp> AcceptTcp(uv_stream_t* listener, uv_tcp_t* tcp) {
  int rc = uv_accept(listener, reinterpret_cast<uv_stream_t*>(tcp));
  if (rc != 0) return Status::IOError(std::string("accept: ") + uv_strerror(rc));
  uv_tcp_nodelay(tcp, 1);
  AcceptedTcp out;
  sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    out.peer_ip = SockaddrIp(reinterpret_cast<sockaddr*>(&ss));
    out.peer_port = SockaddrPort(reinterpret_cast<sockaddr*>(&ss));
  }
  len = sizeof ss;
  if (uv_tcp_getsockname(tcp, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    out.local_ip = SockaddrIp(reinterpret_cast<sockaddr*>(&ss));
    out.local_port = SockaddrPort(reinterpret_cast<sockaddr*>(&ss));
  }
  return out;
}

std::string SockaddrIp(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
  } else if (sa->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

int SockaddrPort(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(sa)->sin_port);
  if (sa->sa_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port);
  }
  return 0;
}

std::string SockaddrToString(const sockaddr* sa) {
  HostPort hp{SockaddrIp(sa), SockaddrPort(sa)};
  return hp.ToString();
}

}  // namespace rlb
