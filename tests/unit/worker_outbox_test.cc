// ResponseOutbox: queueing, flush scheduling, high-water blocking and the ways a blocked
// producer is released (room, cancel + Wake, Close). Threads synchronize through polls
// with deadlines, never sleeps. Direct writes (a producer sending to the socket itself)
// are checked on a socketpair.
#include "zkworker/response_outbox.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

using rlb::worker::ResponseOutbox;

namespace {

// Polls `cond` until it holds or 10 seconds pass; returns whether it held.
bool Eventually(const std::function<bool()>& cond) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

// A producer thread blocked in PushWhenRoom (or not): its result once it returns.
struct Producer {
  std::atomic<bool> done{false};
  std::atomic<bool> queued{false};
  std::atomic<bool> abandoned{false};
  std::thread thread;

  void Start(ResponseOutbox* outbox, std::string frames) {
    thread = std::thread([this, outbox, frames = std::move(frames)]() mutable {
      auto r = outbox->PushWhenRoom(std::move(frames), [this] { return abandoned.load(); });
      queued = r.queued;
      done = true;
    });
  }
  ~Producer() {
    if (thread.joinable()) thread.join();
  }
};

// Both ends of a stream socketpair, closed at the end of the test.
struct SocketPair {
  int fd[2] = {-1, -1};
  SocketPair() { REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, fd) == 0); }
  ~SocketPair() {
    close(fd[0]);
    close(fd[1]);
  }
  // What the peer has received so far (without waiting).
  std::string Received() {
    std::string out;
    char buf[65536];
    for (;;) {
      ssize_t n = recv(fd[1], buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
};

}  // namespace

TEST_CASE("push and take: bytes in order, one flush request per batch", "[outbox]") {
  ResponseOutbox outbox(100);
  auto a = outbox.Push("ab");
  CHECK(a.queued);
  CHECK(a.flush_needed);
  auto b = outbox.Push("cd");
  CHECK(b.queued);
  CHECK_FALSE(b.flush_needed);  // the first push's flush will take these too
  CHECK(outbox.Take() == "abcd");
  CHECK(outbox.Take().empty());
  CHECK(outbox.Push("e").flush_needed);  // after a Take() a new flush is due
  CHECK(outbox.Take() == "e");
}

TEST_CASE("an abandoned producer's frames are refused", "[outbox]") {
  ResponseOutbox outbox(100);
  auto r = outbox.Push("x", [] { return true; });
  CHECK_FALSE(r.queued);
  CHECK_FALSE(r.flush_needed);
  CHECK(outbox.Push("y", [] { return false; }).queued);
  CHECK(outbox.Take() == "y");
}

TEST_CASE("close drops what is queued and refuses later pushes", "[outbox]") {
  ResponseOutbox outbox(100);
  CHECK(outbox.Push("queued").queued);
  outbox.Close();
  CHECK(outbox.Take().empty());
  CHECK_FALSE(outbox.Push("late").queued);
  CHECK_FALSE(outbox.PushWhenRoom("late", nullptr).queued);
}

TEST_CASE("push when room: up to high water counts queued and in-flight bytes", "[outbox]") {
  ResponseOutbox outbox(4);
  CHECK(outbox.Push("1234").queued);  // exactly high water: not over it
  Producer p;
  p.Start(&outbox, "5");
  REQUIRE(Eventually([&] { return p.done.load(); }));
  CHECK(p.queued);
  CHECK(outbox.Take() == "12345");
  CHECK(outbox.waiting_producers() == 0);
}

TEST_CASE("push when room blocks over high water until the writer catches up", "[outbox]") {
  ResponseOutbox outbox(4);
  CHECK(outbox.Push("12345").queued);  // one over
  Producer p;
  p.Start(&outbox, "6");
  REQUIRE(Eventually([&] { return outbox.waiting_producers() == 1; }));
  std::string taken = outbox.Take();  // now in flight: still over high water
  CHECK(taken == "12345");
  CHECK_FALSE(p.done);
  CHECK(outbox.waiting_producers() == 1);
  outbox.WriteDone(taken.size());  // written: room again
  REQUIRE(Eventually([&] { return p.done.load(); }));
  CHECK(p.queued);
  CHECK(outbox.waiting_producers() == 0);
  CHECK(outbox.Take() == "6");
}

TEST_CASE("a cancelled producer is released by Wake without queueing", "[outbox]") {
  ResponseOutbox outbox(0);
  CHECK(outbox.Push("x").queued);
  Producer p;
  p.Start(&outbox, "never");
  REQUIRE(Eventually([&] { return outbox.waiting_producers() == 1; }));
  p.abandoned = true;
  outbox.Wake();
  REQUIRE(Eventually([&] { return p.done.load(); }));
  CHECK_FALSE(p.queued);
  CHECK(outbox.Take() == "x");
}

TEST_CASE("close releases every blocked producer", "[outbox]") {
  ResponseOutbox outbox(0);
  CHECK(outbox.Push("x").queued);
  Producer p1, p2;
  p1.Start(&outbox, "a");
  p2.Start(&outbox, "b");
  REQUIRE(Eventually([&] { return outbox.waiting_producers() == 2; }));
  outbox.Close();
  REQUIRE(Eventually([&] { return p1.done && p2.done; }));
  CHECK_FALSE(p1.queued);
  CHECK_FALSE(p2.queued);
  CHECK(outbox.Take().empty());
}

TEST_CASE("wake without a cancel leaves blocked producers blocked", "[outbox]") {
  ResponseOutbox outbox(0);
  CHECK(outbox.Push("x").queued);
  Producer p;
  p.Start(&outbox, "y");
  REQUIRE(Eventually([&] { return outbox.waiting_producers() == 1; }));
  outbox.Wake();
  // Released only by room: the writer finishing "x". Until then it keeps waiting.
  std::string taken = outbox.Take();
  CHECK(outbox.waiting_producers() == 1);
  CHECK_FALSE(p.done);
  outbox.WriteDone(taken.size());
  REQUIRE(Eventually([&] { return p.done.load(); }));
  CHECK(p.queued);
  CHECK(outbox.Take() == "y");
}

TEST_CASE("many producers and one writer: every byte once, each producer in order",
          "[outbox]") {
  constexpr int kProducers = 4;
  constexpr int kFrames = 2000;
  ResponseOutbox outbox(64);
  std::atomic<int> finished{0};
  std::atomic<int> refused{0};  // Catch2's assertions are for the test's own thread
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < kFrames; ++i) {
        std::string frame = std::string(1, static_cast<char>('a' + p)) + std::to_string(i) + ";";
        if (!outbox.PushWhenRoom(std::move(frame), nullptr).queued) ++refused;
      }
      ++finished;
    });
  }
  std::string all;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    std::string chunk = outbox.Take();
    if (chunk.empty()) {
      if (finished == kProducers) break;  // a last push may be queued: taken after join
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::yield();
      continue;
    }
    outbox.WriteDone(chunk.size());
    all += chunk;
  }
  for (auto& t : producers) t.join();
  all += outbox.Take();
  CHECK(refused == 0);
  std::vector<int> next(kProducers, 0);
  size_t pos = 0;
  while (pos < all.size()) {
    size_t end = all.find(';', pos);
    REQUIRE(end != std::string::npos);
    int p = all[pos] - 'a';
    REQUIRE((p >= 0 && p < kProducers));
    CHECK(std::stoi(all.substr(pos + 1, end - pos - 1)) == next[p]);
    ++next[p];
    pos = end + 1;
  }
  for (int p = 0; p < kProducers; ++p) CHECK(next[p] == kFrames);
}

TEST_CASE("direct write: a push into an idle outbox goes to the socket at once", "[outbox]") {
  SocketPair sp;
  ResponseOutbox outbox(100);
  outbox.AttachSocket(sp.fd[0]);
  auto r = outbox.Push("hello");
  CHECK(r.queued);
  CHECK_FALSE(r.flush_needed);  // nothing for the loop to do
  CHECK(outbox.direct_bytes() == 5);
  CHECK(outbox.Take().empty());
  CHECK(sp.Received() == "hello");
}

TEST_CASE("direct write: never while bytes are queued, due or held by the writer", "[outbox]") {
  SocketPair sp;
  ResponseOutbox outbox(100);
  CHECK(outbox.Push("ab").flush_needed);  // queued before the socket is attached
  outbox.AttachSocket(sp.fd[0]);
  CHECK_FALSE(outbox.Push("cd").flush_needed);  // queued behind "ab", flush already due
  std::string taken = outbox.Take();            // the writer holds them now
  CHECK(taken == "abcd");
  CHECK(outbox.Push("ef").flush_needed);  // behind what the writer holds
  outbox.WriteDone(taken.size());
  CHECK_FALSE(outbox.Push("gh").flush_needed);  // "ef" still queued: behind it
  CHECK(outbox.direct_bytes() == 0);
  CHECK(sp.Received().empty());
  taken = outbox.Take();
  CHECK(taken == "efgh");
  outbox.WriteDone(taken.size());
  CHECK_FALSE(outbox.Push("ij").flush_needed);  // idle again: written directly
  CHECK(outbox.direct_bytes() == 2);
  CHECK(sp.Received() == "ij");
}

TEST_CASE("direct write: what a full socket does not take is queued for the loop", "[outbox]") {
  SocketPair sp;
  ResponseOutbox outbox(1u << 30);
  outbox.AttachSocket(sp.fd[0]);
  std::string big(8u << 20, 'x');  // more than a socket buffer holds
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + i / 4096 % 26);
  auto r = outbox.Push(std::string(big));
  CHECK(r.queued);
  CHECK(r.flush_needed);
  size_t direct = outbox.direct_bytes();
  CHECK(direct > 0);
  CHECK(direct < big.size());
  std::string rest = outbox.Take();
  CHECK(rest.size() == big.size() - direct);
  CHECK(big.compare(direct, std::string::npos, rest) == 0);  // the rest, in order
}

TEST_CASE("direct write: none after Close", "[outbox]") {
  SocketPair sp;
  ResponseOutbox outbox(100);
  outbox.AttachSocket(sp.fd[0]);
  outbox.Close();
  CHECK_FALSE(outbox.Push("late").queued);
  outbox.AttachSocket(sp.fd[0]);  // a closed outbox stays detached
  CHECK_FALSE(outbox.Push("later").queued);
  CHECK(outbox.direct_bytes() == 0);
  CHECK(sp.Received().empty());
}

TEST_CASE("direct writes and a writer thread: the socket gets each producer's bytes in order",
          "[outbox]") {
  constexpr int kProducers = 4;
  constexpr int kFrames = 3000;
  SocketPair sp;
  ResponseOutbox outbox(256);
  outbox.AttachSocket(sp.fd[0]);
  std::atomic<int> finished{0};
  std::atomic<bool> reading{true};
  std::atomic<size_t> received_bytes{0};
  std::string received;  // the reader's until it is joined
  std::thread reader([&] {  // the peer: reads until everything arrived
    char buf[4096];
    while (reading) {
      ssize_t n = recv(sp.fd[1], buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        received.append(buf, static_cast<size_t>(n));
        received_bytes += static_cast<size_t>(n);
      } else {
        std::this_thread::yield();
      }
    }
  });
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < kFrames; ++i) {
        std::string frame = std::string(1, static_cast<char>('a' + p)) + std::to_string(i) + ";";
        if (i % 7 == 0) frame += std::string(300, '.') + ";";  // over high water: waits
        outbox.PushWhenRoom(std::move(frame), nullptr);
      }
      ++finished;
    });
  }
  // The loop's part: what producers could not write goes out here, through the same socket.
  auto write_all = [&](const std::string& chunk) {
    size_t off = 0;
    while (off < chunk.size()) {
      ssize_t n = send(sp.fd[0], chunk.data() + off, chunk.size() - off, MSG_NOSIGNAL);
      REQUIRE(n > 0);
      off += static_cast<size_t>(n);
    }
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    std::string chunk = outbox.Take();
    if (chunk.empty()) {
      if (finished == kProducers) break;
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::yield();
      continue;
    }
    write_all(chunk);
    outbox.WriteDone(chunk.size());
  }
  for (auto& t : producers) t.join();
  std::string last = outbox.Take();
  write_all(last);
  outbox.WriteDone(last.size());
  size_t expected = 0;
  for (int p = 0; p < kProducers; ++p) {
    for (int i = 0; i < kFrames; ++i) {
      expected += 2 + std::to_string(i).size() + (i % 7 == 0 ? 301 : 0);
    }
  }
  bool all_arrived = Eventually([&] { return received_bytes.load() >= expected; });
  reading = false;
  reader.join();
  REQUIRE(all_arrived);
  CHECK(received.size() == expected);
  CHECK(outbox.direct_bytes() > 0);
  std::vector<int> next(kProducers, 0);
  size_t pos = 0;
  while (pos < received.size()) {
    size_t end = received.find(';', pos);
    REQUIRE(end != std::string::npos);
    if (received[pos] == '.') {  // the padding after a frame
      pos = end + 1;
      continue;
    }
    int p = received[pos] - 'a';
    REQUIRE((p >= 0 && p < kProducers));
    CHECK(std::stoi(received.substr(pos + 1, end - pos - 1)) == next[p]);
    ++next[p];
    pos = end + 1;
  }
  for (int p = 0; p < kProducers; ++p) CHECK(next[p] == kFrames);
}
