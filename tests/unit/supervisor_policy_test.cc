// The supervisor's pure decisions (zkworker/supervisor_policy.h) and the process board's
// bookkeeping (zkworker/process_board.h).
#include <unistd.h>

#include <catch2/catch.hpp>

#include "zkworker/process_board.h"
#include "zkworker/supervisor_policy.h"

using namespace rlb::worker;

TEST_CASE("respawn back-off: immediate first, then doubling to the cap") {
  CHECK(RespawnDelay(0) == 0.0);
  CHECK(RespawnDelay(1) == 0.0);
  CHECK(RespawnDelay(2) == 0.5);
  CHECK(RespawnDelay(3) == 1.0);
  CHECK(RespawnDelay(4) == 2.0);
  CHECK(RespawnDelay(8) == 30.0);
  CHECK(RespawnDelay(1000) == kMaxRespawnDelaySeconds);
}

TEST_CASE("max_requests jitter stays within 0..jitter and 0 means no limit") {
  CHECK(JitteredMaxRequests(0, 10, 12345) == 0);
  CHECK(JitteredMaxRequests(50, 0, 12345) == 50);
  for (uint64_t r = 0; r < 100; ++r) {
    uint64_t v = JitteredMaxRequests(50, 10, r * 7919);
    CHECK(v >= 50);
    CHECK(v <= 60);
  }
  CHECK(JitteredMaxRequests(50, 10, 10) == 60);
  CHECK(JitteredMaxRequests(50, 10, 11) == 50);
}

TEST_CASE("process addresses: PORT+i, port 0 stays 0, past 65535 is an error") {
  rlb::HostPort base{"127.0.0.1", 8000};
  CHECK(ProcessAddress(base, 0)->port == 8000);
  CHECK(ProcessAddress(base, 3)->port == 8003);
  CHECK(ProcessAddress(base, 3)->host == "127.0.0.1");
  CHECK(ProcessAddress(rlb::HostPort{"", 0}, 5)->port == 0);
  CHECK(ProcessAddress(rlb::HostPort{"h", 65535}, 0).ok());
  CHECK(!ProcessAddress(rlb::HostPort{"h", 65535}, 1).ok());
}

TEST_CASE("per-process files get the index before the extension") {
  CHECK(ProcessFilePath("", 1) == "");
  CHECK(ProcessFilePath("-", 1) == "-");
  CHECK(ProcessFilePath("/var/lib/w/resume.json", 2) == "/var/lib/w/resume.2.json");
  CHECK(ProcessFilePath("/var/log/trace", 0) == "/var/log/trace.0");
  CHECK(ProcessFilePath("/var/x.d/trace", 1) == "/var/x.d/trace.1");
  CHECK(ProcessFilePath("/var/log/.trace", 1) == "/var/log/.trace.1");
}

TEST_CASE("process board: requests, running requests and readiness") {
  auto board = ProcessBoard::Create(2);
  REQUIRE(board.ok());
  auto attached = ProcessBoard::Attach(dup((*board)->fd()));
  REQUIRE(attached.ok());
  ProcessBoard& master = **board;
  ProcessBoard& worker = **attached;
  CHECK(!master.listening());
  CHECK(master.address().empty());
  worker.SetListening("127.0.0.1:8000");
  CHECK(master.listening());
  CHECK(!master.registered());
  CHECK(master.address() == "127.0.0.1:8000");
  worker.SetRegistered();
  CHECK(master.registered());
  CHECK(!master.Longest(MonotonicMs()));
  int slot = worker.RequestStarted("GET example.test /slow");
  CHECK(master.running() == 1);
  auto longest = master.Longest(MonotonicMs() + 3000);
  REQUIRE(longest);
  CHECK(longest->what == "GET example.test /slow");
  CHECK(longest->seconds >= 3.0);
  worker.RequestFinished(slot);
  CHECK(master.running() == 0);
  CHECK(master.requests() == 1);
}

TEST_CASE("a descriptor that is not a board is refused") {
  CHECK(!ProcessBoard::Attach(0).ok());
}

TEST_CASE("process port ranges overlap only for fixed ports on the same or a wildcard host") {
  using rlb::HostPort;
  CHECK(ProcessPortsOverlap(HostPort{"127.0.0.1", 8000}, HostPort{"127.0.0.1", 8000}, 1));
  CHECK_FALSE(ProcessPortsOverlap(HostPort{"127.0.0.1", 8000}, HostPort{"127.0.0.1", 8001}, 1));
  CHECK(ProcessPortsOverlap(HostPort{"127.0.0.1", 8000}, HostPort{"127.0.0.1", 8003}, 4));
  CHECK(ProcessPortsOverlap(HostPort{"127.0.0.1", 8003}, HostPort{"127.0.0.1", 8000}, 4));
  CHECK_FALSE(ProcessPortsOverlap(HostPort{"127.0.0.1", 8000}, HostPort{"127.0.0.1", 8004}, 4));
  CHECK(ProcessPortsOverlap(HostPort{"", 8000}, HostPort{"127.0.0.1", 8000}, 1));
  CHECK(ProcessPortsOverlap(HostPort{"10.0.0.5", 8000}, HostPort{"0.0.0.0", 8000}, 1));
  CHECK(ProcessPortsOverlap(HostPort{"::", 8000}, HostPort{"10.0.0.5", 8000}, 1));
  CHECK_FALSE(ProcessPortsOverlap(HostPort{"10.0.0.5", 8000}, HostPort{"127.0.0.1", 8000}, 1));
  CHECK_FALSE(ProcessPortsOverlap(HostPort{"127.0.0.1", 0}, HostPort{"127.0.0.1", 0}, 4));
}
