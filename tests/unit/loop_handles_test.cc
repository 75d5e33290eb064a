// The loop-side helpers in common/ close every handle they open (LoopMailbox,
// ShutdownSignals, ZkSession), so that a main's CloseLoop() passes; and ZooKeeper's return
// codes map onto Status codes (StatusFromZk).
#include <signal.h>
#include <uv.h>
#include <zookeeper/zookeeper.h>

#include <atomic>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "common/loop_mailbox.h"
#include "common/shutdown_signals.h"
#include "common/zk_session.h"

namespace {

// A private loop; OpenHandles() runs it until idle and counts what is still open.
struct TestLoop {
  uv_loop_t loop;
  TestLoop() { REQUIRE(uv_loop_init(&loop) == 0); }
  ~TestLoop() { uv_loop_close(&loop); }
  int OpenHandles() {
    uv_run(&loop, UV_RUN_DEFAULT);
    int n = 0;
    uv_walk(&loop, [](uv_handle_t*, void* arg) { ++*static_cast<int*>(arg); }, &n);
    return n;
  }
};

}  // namespace

TEST_CASE("LoopMailbox runs posts from other threads in order, then closes", "[loop]") {
  TestLoop t;
  rlb::LoopMailbox mailbox(&t.loop);
  std::vector<int> got;
  std::thread poster([&] {
    for (int i = 0; i < 100; ++i) mailbox.Post([&got, i] { got.push_back(i); });
    mailbox.Post([&] { mailbox.Close(); });
  });
  uv_run(&t.loop, UV_RUN_DEFAULT);  // ends once the last post closed the mailbox
  poster.join();
  REQUIRE(got.size() == 100);
  for (int i = 0; i < 100; ++i) CHECK(got[i] == i);
  bool ran = false;
  mailbox.Post([&] { ran = true; });  // after Close(): dropped
  CHECK(t.OpenHandles() == 0);
  CHECK_FALSE(ran);
}

TEST_CASE("LoopMailbox's destructor closes its handle", "[loop]") {
  TestLoop t;
  { rlb::LoopMailbox mailbox(&t.loop); }
  CHECK(t.OpenHandles() == 0);
}

TEST_CASE("ShutdownSignals delivers SIGTERM and closes", "[loop]") {
  TestLoop t;
  std::vector<int> signals;
  rlb::ShutdownSignals s(&t.loop, [&](int signum) {
    signals.push_back(signum);
    s.Close();
  });
  REQUIRE(raise(SIGTERM) == 0);
  CHECK(t.OpenHandles() == 0);
  CHECK(signals == std::vector<int>{SIGTERM});
}

TEST_CASE("ZkSession closes its handles with or without Start()", "[zk]") {
  TestLoop t;
  {
    rlb::ZkSession zk(&t.loop, "127.0.0.1:1", 1000);  // nothing listens there
  }
  CHECK(t.OpenHandles() == 0);
  rlb::ZkSession zk(&t.loop, "127.0.0.1:1", 1000);
  REQUIRE(zk.Start().ok());
  zk.Close();
  CHECK(zk.state() == rlb::ZkSession::State::kClosed);
  bool called = false;
  zk.Get("/x", [&](const rlb::StatusOr<std::string>& data) {
    called = true;
    CHECK(data.status().IsUnavailable());
  });
  CHECK(called);
  CHECK(t.OpenHandles() == 0);
}

TEST_CASE("StatusFromZk maps ZooKeeper codes onto Status codes", "[zk]") {
  using Code = rlb::Status::Code;
  CHECK(rlb::StatusFromZk(ZOK, "x").ok());
  struct Case {
    int rc;
    Code code;
  };
  for (Case c : {Case{ZNONODE, Code::kNotFound}, Case{ZNODEEXISTS, Code::kAlreadyExists},
                 Case{ZCONNECTIONLOSS, Code::kUnavailable},
                 Case{ZSESSIONEXPIRED, Code::kUnavailable}, Case{ZCLOSING, Code::kUnavailable},
                 Case{ZINVALIDSTATE, Code::kUnavailable}, Case{ZOPERATIONTIMEOUT, Code::kTimeout},
                 Case{ZNOAUTH, Code::kPermissionDenied},
                 Case{ZBADARGUMENTS, Code::kInvalidArgument},
                 Case{ZNOTEMPTY, Code::kInvalidArgument}, Case{ZSYSTEMERROR, Code::kIOError},
                 Case{ZMARSHALLINGERROR, Code::kIOError}}) {
    INFO(c.rc);
    rlb::Status s = rlb::StatusFromZk(c.rc, "reading /lb");
    CHECK(s.code() == c.code);
    CHECK(s.message() == std::string("reading /lb: ") + zerror(c.rc));
  }
}
