// NetAddress: "HOST:PORT" parsing and resolution, shared by every executable.
//
// Accepted forms: "host:port", ":port" (all interfaces), "[v6addr]:port", "port" is not
// accepted (ambiguous). Ports are 0..65535; 0 means "any free port" when listening.
// Thread rules: pure functions; Resolve() blocks (getaddrinfo) and is meant for start-up.
#ifndef RESUMELB_COMMON_NET_ADDRESS_H_
#define RESUMELB_COMMON_NET_ADDRESS_H_

#include <netinet/in.h>
#include <sys/socket.h>
#include <uv.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace rlb {

struct HostPort {
  std::string host;  // empty: all interfaces (listen) / loopback is NOT implied
  int port = 0;
  std::string ToString() const;  // "host:port", "[v6]:port" or ":port"
};

StatusOr<HostPort> ParseHostPort(std::string_view text);

// Resolves to socket addresses (numeric hosts need no DNS). An empty host resolves to the
// IPv4 wildcard when listening (passive) and to 127.0.0.1 otherwise.
StatusOr<std::vector<sockaddr_storage>> Resolve(const HostPort& hp, bool passive);

// Whether `host` means every interface when listening: "", "0.0.0.0" or "::".
bool IsWildcardHost(const std::string& host);

// The one host under which a server listening on `host` registers itself: `host` itself,
// or, when it is a wildcard (IsWildcardHost), the machine's primary address
// (PrimaryAddress()). Never one registration per interface: a load balancer would take
// each for a worker of its own.
std::string RegistrationHost(const std::string& host);

// The machine's primary IPv4 address: the source address of the default route, i.e. the
// address the kernel picks for a UDP socket connect()ed to a public address (8.8.8.8:53;
// connect() on UDP sends nothing), when it is not a loopback address; else
// the first non-loopback IPv4 address of the interfaces (getifaddrs order); else
// 127.0.0.1. Blocks only on local system calls.
std::string PrimaryAddress();

// PrimaryAddress()'s choice, pure: `route_source` (the default route's source address,
// nullopt when there is no route) unless it is missing or a loopback/unspecified address,
// then the first non-loopback address of `interface_addresses`, then "127.0.0.1".
std::string ChoosePrimaryAddress(const std::optional<std::string>& route_source,
                                 const std::vector<std::string>& interface_addresses);

// Binds `tcp` to `address` (resolved passively), listens with `backlog` and `on_connection`,
// and sets *bound to the address with the port actually bound (port 0 picks a free one).
// Shared by the LB's HTTP listener and the worker's listener. With `reuse_port` the socket
// gets SO_REUSEPORT first, so that several processes listen on the same port and the kernel
// spreads the connections over them.
Status ListenTcp(uv_tcp_t* tcp, const HostPort& address, int backlog,
                 uv_connection_cb on_connection, HostPort* bound, bool reuse_port = false);

// A socket (SOCK_CLOEXEC) of `address`'s first resolved family with SO_REUSEPORT set, not
// yet bound: the caller binds it (or gives it to libuv with uv_tcp_open). Returns the fd.
StatusOr<int> ReusePortSocket(const HostPort& address);

// Reserves `address` for a group of processes that will each listen on it with SO_REUSEPORT:
// binds a SO_REUSEPORT socket without listening (it receives no connections) and returns its
// fd, to keep open while the port is to stay reserved; *bound gets the port bound (port 0:
// a free one, which the processes then use). An error names the address (e.g. in use).
StatusOr<int> ReserveReusePort(const HostPort& address, HostPort* bound);

// Opens `tcp`'s socket, for `address`'s first resolved family, with SO_REUSEPORT, so that
// another process may listen on the same address (a supervised worker's replacement
// starts while the process it replaces still serves); ListenTcp() then binds and listens
// on it. REQUIRES: `tcp` is initialized and has no socket yet.
Status OpenReusePortSocket(uv_tcp_t* tcp, const HostPort& address);

// Both ends of an accepted TCP connection. A field stays ""/0 when the kernel cannot tell
// (getpeername fails once the peer has already reset the connection).
struct AcceptedTcp {
  std::string peer_ip;
  int peer_port = 0;
  std::string local_ip;
  int local_port = 0;
  // "ip:port" / "[ip6]:port" of the peer (as SockaddrToString), "" when unknown.
  std::string PeerToString() const;
};

// Accepts the pending connection of `listener` into `tcp`, turns on TCP_NODELAY and reads
// both addresses. Loop thread only (the listener's loop).
// REQUIRES: uv_tcp_init(listener->loop, tcp) was called. On error (IOError "accept: ...")
// `tcp` is still an initialized handle the caller must uv_close(); either way the caller
// owns it.
StatusOr<AcceptedTcp> AcceptTcp(uv_stream_t* listener, uv_tcp_t* tcp);

// "ip:port" (or "[ip6]:port") of a socket address.
std::string SockaddrToString(const sockaddr* sa);
// The numeric IP and the port of a socket address.
std::string SockaddrIp(const sockaddr* sa);
int SockaddrPort(const sockaddr* sa);

}  // namespace rlb

#endif  // RESUMELB_COMMON_NET_ADDRESS_H_
