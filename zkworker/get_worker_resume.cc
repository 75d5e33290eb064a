// get-worker-resume HOST:PORT...: prints each worker's address, then its résumé as a JSON
// object with sorted keys. A worker that does not answer within --timeout seconds gets one
// error line on stderr and makes the exit status non-zero; the others are still printed.
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include <gflags/gflags.h>

#include "common/frame_codec.h"
#include "common/json.h"
#include "common/net_address.h"

DEFINE_double(timeout, 5.0, "seconds to wait for each worker");

namespace {

constexpr char kUsage[] = R"(get-worker-resume: print the résumé of resumelb workers.

Usage: get-worker-resume [--timeout=SECONDS] HOST:PORT...

For each worker: its address on one line, then its résumé (request class -> score in
requests per second) as a JSON object with sorted keys. A worker that does not answer
within the timeout (5 s) gets an error line on stderr; the exit status is then 1.
)";

using Clock = std::chrono::steady_clock;

rlb::StatusOr<rlb::proto::ResumeEntries> Fetch(const std::string& addr_text, double timeout) {
  auto hp = rlb::ParseHostPort(addr_text);
  if (!hp.ok()) return hp.status();
  auto addrs = rlb::Resolve(*hp, false);
  if (!addrs.ok()) return addrs.status();
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(timeout));
  auto remaining_ms = [&] {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return static_cast<int>(std::max<long long>(0, left.count()));
  };
  const sockaddr* sa = reinterpret_cast<const sockaddr*>(&addrs->front());
  int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return rlb::Status::IOError(std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  socklen_t len = sa->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (connect(fd, sa, len) != 0 && errno != EINPROGRESS) {
    return rlb::Status::IOError(std::string("connect: ") + std::strerror(errno));
  }
  pollfd p{fd, POLLOUT, 0};
  if (poll(&p, 1, remaining_ms()) != 1) return rlb::Status::Unavailable("connect timed out");
  int err = 0;
  socklen_t elen = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
  if (err != 0) return rlb::Status::IOError(std::string("connect: ") + std::strerror(err));

  std::string hello;
  rlb::proto::EncodeHello(&hello, rlb::proto::MakeHello("tool", "get-worker-resume"));
  (void)!send(fd, hello.data(), hello.size(), MSG_NOSIGNAL);

  rlb::proto::FrameDecoder decoder;
  bool got_hello = false;
  char buf[65536];
  for (;;) {
    rlb::proto::Frame frame;
    rlb::Status error;
    auto r = decoder.Next(&frame, &error);
    if (r == rlb::proto::FrameDecoder::Result::kError) return error;
    if (r == rlb::proto::FrameDecoder::Result::kFrame) {
      if (frame.kind == rlb::proto::Kind::kHello) {
        rlb::proto::Hello peer;
        rlb::Status s = rlb::proto::ParseHello(frame.payload, &peer);
        if (!s.ok()) return s;
        got_hello = true;
      } else if (frame.kind == rlb::proto::Kind::kResume) {
        if (!got_hello) return rlb::Status::ProtocolError("RESUME before HELLO");
        rlb::proto::ResumeEntries entries;
        rlb::Status s = rlb::proto::ParseResume(frame.payload, &entries);
        if (!s.ok()) return s;
        return entries;
      }
      continue;
    }
    pollfd in{fd, POLLIN, 0};
    if (poll(&in, 1, remaining_ms()) != 1) {
      return rlb::Status::Unavailable("no résumé within " + std::to_string(timeout) + " s");
    }
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0) return rlb::Status::IOError("connection closed before the résumé arrived");
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return rlb::Status::IOError(std::string("recv: ") + std::strerror(errno));
    }
    decoder.Feed(std::string_view(buf, static_cast<size_t>(n)));
  }
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::fputs(kUsage, stdout);
      return 0;
    }
  }
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (!(FLAGS_timeout > 0 && FLAGS_timeout <= 3600)) {
    std::fputs("get-worker-resume: error: --timeout must be > 0 and at most 3600\n", stderr);
    return 2;
  }
  if (argc < 2) {
    std::fputs("get-worker-resume: error: give one or more worker addresses HOST:PORT\n", stderr);
    return 2;
  }
  int status = 0;
  for (int i = 1; i < argc; ++i) {
    auto entries = Fetch(argv[i], FLAGS_timeout);
    if (!entries.ok()) {
      std::fprintf(stderr, "get-worker-resume: error: %s: %s\n", argv[i],
                   entries.status().message().c_str());
      status = 1;
      continue;
    }
    std::sort(entries->begin(), entries->end());
    rlb::proto::ResumeEntries& e = *entries;
    rapidjson::StringBuffer out;
    rlb::JsonWriter w(out);
    w.StartObject();
    for (const auto& [cls, score] : e) {
      w.Key(cls.data(), static_cast<rapidjson::SizeType>(cls.size()));
      w.Double(score);
    }
    w.EndObject();
    std::printf("%s\n%s\n", argv[i], out.GetString());
    std::fflush(stdout);
  }
  return status;
}
