// common/net_address.h: AcceptTcp on a real loopback connection.
#include "common/net_address.h"

#include <netinet/tcp.h>
#include <sys/socket.h>

#include <optional>
#include <string>

#include <catch2/catch.hpp>

namespace {

// A loop with a listener on 127.0.0.1; its connection callback runs AcceptTcp into `server`
// and keeps the result. (No Catch assertions inside libuv callbacks: they would throw
// through C frames.)
struct AcceptFixture {
  uv_loop_t loop;
  uv_tcp_t listener, client, server;
  uv_connect_t connect_req;
  bool client_open = false, server_open = false;
  int listen_status = 1, connect_status = 1;
  rlb::HostPort bound;
  std::optional<rlb::StatusOr<rlb::AcceptedTcp>> result;

  AcceptFixture() {
    uv_loop_init(&loop);
    uv_tcp_init(&loop, &listener);
    listener.data = this;
    rlb::Status s = rlb::ListenTcp(&listener, rlb::HostPort{"127.0.0.1", 0}, 8,
                                   [](uv_stream_t* l, int status) {
                                     auto* self = static_cast<AcceptFixture*>(l->data);
                                     self->listen_status = status;
                                     uv_tcp_init(l->loop, &self->server);
                                     self->server_open = true;
                                     self->result = rlb::AcceptTcp(l, &self->server);
                                   },
                                   &bound);
    REQUIRE(s.ok());
  }
  ~AcceptFixture() {
    uv_close(reinterpret_cast<uv_handle_t*>(&listener), nullptr);
    if (client_open) uv_close(reinterpret_cast<uv_handle_t*>(&client), nullptr);
    if (server_open) uv_close(reinterpret_cast<uv_handle_t*>(&server), nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
};

}  // namespace

TEST_CASE("AcceptTcp accepts and reports both ends", "[accept]") {
  AcceptFixture f;
  uv_tcp_init(&f.loop, &f.client);
  f.client_open = true;
  f.client.data = &f;
  auto addrs = rlb::Resolve(f.bound, false);
  REQUIRE(addrs.ok());
  REQUIRE(uv_tcp_connect(&f.connect_req, &f.client,
                         reinterpret_cast<const sockaddr*>(&addrs->front()),
                         [](uv_connect_t* req, int status) {
                           static_cast<AcceptFixture*>(req->handle->data)->connect_status = status;
                         }) == 0);
  for (int i = 0; i < 1000 && !(f.result && f.connect_status != 1); ++i) {
    uv_run(&f.loop, UV_RUN_ONCE);
  }
  REQUIRE(f.result.has_value());
  REQUIRE(f.listen_status == 0);
  REQUIRE(f.connect_status == 0);
  REQUIRE(f.result->ok());
  sockaddr_storage ss;
  int len = sizeof ss;
  REQUIRE(uv_tcp_getsockname(&f.client, reinterpret_cast<sockaddr*>(&ss), &len) == 0);
  const rlb::AcceptedTcp& a = f.result->value();
  CHECK(a.peer_ip == "127.0.0.1");
  CHECK(a.peer_port == rlb::SockaddrPort(reinterpret_cast<sockaddr*>(&ss)));
  CHECK(a.local_ip == "127.0.0.1");
  CHECK(a.local_port == f.bound.port);
  CHECK(a.PeerToString() == "127.0.0.1:" + std::to_string(a.peer_port));
  CHECK(rlb::AcceptedTcp{}.PeerToString().empty());
  int nodelay = 0;
  socklen_t optlen = sizeof nodelay;
  uv_os_fd_t fd;
  REQUIRE(uv_fileno(reinterpret_cast<uv_handle_t*>(&f.server), &fd) == 0);
  REQUIRE(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &optlen) == 0);
  CHECK(nodelay != 0);
}

TEST_CASE("AcceptTcp without a pending connection is an IOError", "[accept]") {
  AcceptFixture f;
  uv_tcp_init(&f.loop, &f.server);
  f.server_open = true;
  auto r = rlb::AcceptTcp(reinterpret_cast<uv_stream_t*>(&f.listener), &f.server);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == rlb::Status::Code::kIOError);
  CHECK(r.status().message().rfind("accept: ", 0) == 0);
}


TEST_CASE("one registration host: the given host, or the primary address", "[register]") {
  using rlb::ChoosePrimaryAddress;
  using rlb::IsWildcardHost;
  for (const char* wildcard : {"", "0.0.0.0", "::"}) CHECK(IsWildcardHost(wildcard));
  for (const char* host : {"10.0.0.5", "127.0.0.1", "::1", "worker.example"}) {
    CHECK_FALSE(IsWildcardHost(host));
    CHECK(rlb::RegistrationHost(host) == host);
  }
  // The default route's source address wins over the interfaces' order.
  CHECK(ChoosePrimaryAddress("10.0.0.7", {"127.0.0.1", "192.168.1.2", "10.0.0.7"}) ==
        "10.0.0.7");
  // No default route (or a loopback/unspecified answer): the first non-loopback address.
  CHECK(ChoosePrimaryAddress(std::nullopt, {"127.0.0.1", "192.168.1.2", "10.0.0.7"}) ==
        "192.168.1.2");
  CHECK(ChoosePrimaryAddress("127.0.0.1", {"127.0.0.1", "172.17.0.3"}) == "172.17.0.3");
  CHECK(ChoosePrimaryAddress("0.0.0.0", {"172.17.0.3"}) == "172.17.0.3");
  // Nothing but loopback: 127.0.0.1.
  CHECK(ChoosePrimaryAddress(std::nullopt, {"127.0.0.1"}) == "127.0.0.1");
  CHECK(ChoosePrimaryAddress(std::nullopt, {}) == "127.0.0.1");
  // The machine's own answer is one address, and a wildcard registers exactly it.
  std::string primary = rlb::PrimaryAddress();
  CHECK_FALSE(primary.empty());
  CHECK(rlb::RegistrationHost("") == primary);
  CHECK(rlb::RegistrationHost("0.0.0.0") == primary);
}
