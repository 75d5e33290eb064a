// The loop lifetime pieces of common/: UvHandle, DeferredDeleter, StreamWriter and
// CloseLoop, on a real libuv loop with a real socket pair.
// Project headers first: they include glog, whose CHECK must not replace Catch's.
#include "common/deferred_delete.h"
#include "common/stream_writer.h"
#include "common/uv_handle.h"
#include "common/write_batcher.h"

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

namespace rlb {
namespace {

// A loop of its own per test; the destructor proves everything was closed.
struct Loop {
  uv_loop_t loop;
  Loop() { REQUIRE(uv_loop_init(&loop) == 0); }
  ~Loop() { CloseLoop(&loop); }
};

// Reads everything the peer end of a socket pair receives (blocking reads in the test).
std::string ReadAvailable(int fd, size_t want) {
  std::string out;
  char buf[65536];
  while (out.size() < want) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// One turn of the loop, kept alive for it by a timer (a loop with nothing active returns
// at once without running its prepare phase).
void Turn(uv_loop_t* loop) {
  UvHandle<uv_timer_t> t;
  REQUIRE(t.Init(loop, nullptr) == 0);
  uv_timer_start(t.get(), [](uv_timer_t*) {}, 0, 0);
  uv_run(loop, UV_RUN_ONCE);
}

class Recorder : public StreamWriter::Listener {
 public:
  void OnWritten() override { ++written; }
  void OnWriteError(int e) override { error = e; }
  int written = 0;
  int error = 0;
};

TEST_CASE("a deferred object outlives the callback that dropped it", "[loop]") {
  Loop l;
  DeferredDeleter deleter(&l.loop);
  auto alive = std::make_shared<int>(1);
  std::weak_ptr<int> watch = alive;
  struct Holder {
    std::shared_ptr<int> p;
  };
  UvHandle<uv_timer_t> timer;
  REQUIRE(timer.Init(&l.loop, nullptr) == 0);
  struct Ctx {
    DeferredDeleter* deleter;
    std::unique_ptr<Holder> holder;
    std::weak_ptr<int>* watch;
    bool alive_after_defer = false;
  } ctx{&deleter, std::make_unique<Holder>(Holder{std::move(alive)}), &watch};
  timer.get()->data = &ctx;
  uv_timer_start(timer.get(), [](uv_timer_t* t) {
    auto* c = static_cast<Ctx*>(t->data);
    c->deleter->Defer(std::move(c->holder));
    c->alive_after_defer = !c->watch->expired();  // still alive inside the callback
  }, 0, 0);
  uv_run(&l.loop, UV_RUN_DEFAULT);  // the idle handle keeps the loop turning to the sweep
  CHECK(ctx.alive_after_defer);
  CHECK(watch.expired());
  CHECK(deleter.pending() == 0);
  timer.Close();
  deleter.Close();
}

TEST_CASE("deferred objects of any type are destroyed once, also those their destructors "
          "defer, sweep after sweep", "[loop]") {
  Loop l;
  DeferredDeleter deleter(&l.loop);
  int destroyed = 0;
  struct Counted {
    explicit Counted(int* c) : count(c) {}
    ~Counted() { ++*count; }
    int* count;
  };
  struct Chain {  // defers one more object while being destroyed
    Chain(DeferredDeleter* d, int* c) : deleter(d), count(c) {}
    ~Chain() {
      ++*count;
      deleter->Defer(std::make_unique<Counted>(count));
    }
    DeferredDeleter* deleter;
    int* count;
  };
  for (int sweep = 1; sweep <= 3; ++sweep) {
    deleter.Defer(std::make_unique<Counted>(&destroyed));
    deleter.Defer(std::make_unique<Chain>(&deleter, &destroyed));
    deleter.Defer(std::unique_ptr<std::string>());  // null: nothing queued
    CHECK(deleter.pending() == 2);
    deleter.Sweep();
    CHECK(deleter.pending() == 0);
    CHECK(destroyed == 3 * sweep);
  }
  deleter.Close();
}

TEST_CASE("StreamWriter writes in order, queues what the kernel refuses, and orphans", "[loop]") {
  signal(SIGPIPE, SIG_IGN);  // as every daemon does: a dead peer is an error, not a signal
  Loop l;
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  UvHandle<uv_pipe_t> pipe;
  REQUIRE(pipe.Init(&l.loop, nullptr) == 0);
  REQUIRE(uv_pipe_open(pipe.get(), sv[0]) == 0);
  Recorder rec;
  auto writer = std::make_unique<StreamWriter>(&rec);
  writer->Attach(pipe.stream());

  SECTION("small writes go out at once, in order") {
    CHECK(writer->Write("abc") == 0);
    writer->Append("def");
    CHECK(writer->queued_bytes() == 3);
    CHECK(writer->Flush() == 0);
    CHECK(writer->idle());
    CHECK(ReadAvailable(sv[1], 6) == "abcdef");
    CHECK(writer->bytes_written() == 6);
  }
  SECTION("a large write waits in flight; later bytes follow it") {
    std::string big(8 << 20, 'x');
    big.back() = 'y';
    CHECK(writer->Write(std::string(big)) == 0);
    CHECK(writer->queued_bytes() > 0);  // the socket buffer is far smaller than 8 MiB
    CHECK(writer->Write("tail") == 0);
    size_t queued = writer->queued_bytes();
    CHECK(queued <= big.size() + 4);
    // Drain the peer while the loop writes.
    std::string got;
    while (got.size() < big.size() + 4) {
      uv_run(&l.loop, UV_RUN_NOWAIT);
      char buf[65536];
      ssize_t n = recv(sv[1], buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) got.append(buf, static_cast<size_t>(n));
    }
    CHECK(got.substr(got.size() - 5) == "ytail");
    uv_run(&l.loop, UV_RUN_NOWAIT);
    CHECK(writer->idle());
    CHECK(rec.written >= 1);
    CHECK(rec.error == 0);
  }
  SECTION("closing with a write in flight never calls back into a freed owner") {
    CHECK(writer->Write(std::string(8 << 20, 'z')) == 0);
    CHECK_FALSE(writer->idle());
    writer.reset();  // the owner goes away first...
    pipe.Close();    // ...then the stream: the write completes with UV_ECANCELED, orphaned
    uv_run(&l.loop, UV_RUN_DEFAULT);
    CHECK(rec.written == 0);
    CHECK(rec.error == 0);
  }
  SECTION("a write to a closed peer is an error, reported once") {
    close(sv[1]);
    sv[1] = -1;
    int rc = writer->Write(std::string(1 << 20, 'q'));
    if (rc == 0) {  // the kernel took some bytes; the rest fails asynchronously
      uv_run(&l.loop, UV_RUN_DEFAULT);
      CHECK(rec.error != 0);
    } else {
      CHECK(rc == UV_EPIPE);
    }
  }
  writer.reset();
  pipe.Close();
  if (sv[1] >= 0) close(sv[1]);
}

TEST_CASE("a batching StreamWriter writes once per loop turn", "[loop]") {
  signal(SIGPIPE, SIG_IGN);
  Loop l;
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  UvHandle<uv_pipe_t> pipe;
  REQUIRE(pipe.Init(&l.loop, nullptr) == 0);
  REQUIRE(uv_pipe_open(pipe.get(), sv[0]) == 0);
  WriteBatcher batcher(&l.loop);
  Recorder rec;
  StreamWriter writer(&rec);
  writer.BatchWith(&batcher);
  writer.Attach(pipe.stream());
  CHECK(writer.Write("head ") == 0);
  CHECK(writer.Write("body") == 0);
  CHECK(writer.bytes_written() == 0);  // nothing yet: it waits for the loop's turn
  CHECK(writer.queued_bytes() == 9);
  Turn(&l.loop);  // the prepare phase writes both at once
  CHECK(writer.bytes_written() == 9);
  CHECK(rec.written == 1);  // progress is reported from the loop
  CHECK(ReadAvailable(sv[1], 9) == "head body");
  SECTION("a detached writer is not flushed") {
    CHECK(writer.Write("lost") == 0);
    writer.Detach();
    Turn(&l.loop);
    CHECK(writer.bytes_written() == 9);
  }
  SECTION("an error reaches the listener, not the caller") {
    close(sv[1]);
    sv[1] = -1;
    CHECK(writer.Write("to nobody") == 0);
    Turn(&l.loop);
    CHECK(rec.error == UV_EPIPE);
  }
  SECTION("every later turn writes what it gathered (the batcher's lists are reused)") {
    for (int turn = 1; turn <= 3; ++turn) {
      CHECK(writer.Write(std::string(turn, 'a')) == 0);
      CHECK(writer.Write(std::string(40, 'b')) == 0);  // longer than the buffer's own
      Turn(&l.loop);
      CHECK(writer.idle());
    }
    CHECK(writer.bytes_written() == 9 + 6 + 3 * 40);
    CHECK(ReadAvailable(sv[1], 6 + 3 * 40) ==
          "a" + std::string(40, 'b') + "aa" + std::string(40, 'b') + "aaa" + std::string(40, 'b'));
  }
  SECTION("FlushImmediately writes without waiting for the turn") {
    CHECK(writer.Write("now") == 0);
    CHECK(writer.FlushImmediately() == 0);
    CHECK(writer.bytes_written() == 12);
  }
  writer.Detach();
  batcher.Close();
  pipe.Close();
  if (sv[1] >= 0) close(sv[1]);
}

TEST_CASE("UvHandle frees its handle after the owner is gone", "[loop]") {
  Loop l;
  {
    UvHandle<uv_timer_t> t;
    REQUIRE(t.Init(&l.loop, nullptr) == 0);
    CHECK(t.open());
    uv_timer_start(t.get(), [](uv_timer_t*) { FAIL("a closed timer fired"); }, 0, 0);
  }  // destroyed: closed; the memory is freed by the close callback below
  uv_run(&l.loop, UV_RUN_DEFAULT);
}

}  // namespace
}  // namespace rlb
