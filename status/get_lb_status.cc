// get-lb-status SOCKET...: prints a load balancer's status (read from its status socket) as
// the original's human report, or the raw JSON document with --json.
#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <gflags/gflags.h>

#include "common/json.h"
#include "common/wall_clock.h"

DEFINE_bool(json, false, "print the raw JSON document");
DEFINE_double(timeout, 5.0, "seconds to wait for each load balancer");

namespace {

constexpr char kUsage[] = R"(get-lb-status: print the status of resumelb load balancers.

Usage: get-lb-status [--json] [--timeout=SECONDS] SOCKET...

SOCKET is the path given to resumelb/zkresumelb with -s. For each one, prints its backlog,
mean backlog, and a row per worker: name, backlog, mean backlog and the age in seconds of
its oldest request in flight. --json prints the document as the LB sent it.
)";

bool ReadAll(const std::string& path, std::string* out, std::string* error) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::strerror(errno);
    return false;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    close(fd);
    *error = "socket path too long";
    return false;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    *error = std::strerror(errno);
    close(fd);
    return false;
  }
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(FLAGS_timeout * 1000)) != 1) {
      *error = "no answer in time";
      close(fd);
      return false;
    }
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = std::strerror(errno);
      close(fd);
      return false;
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return true;
}

std::string Fixed1(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
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
    std::fputs("get-lb-status: error: --timeout must be > 0 and at most 3600\n", stderr);
    return 2;
  }
  if (argc < 2) {
    std::fputs("get-lb-status: error: give one or more status socket paths\n", stderr);
    return 2;
  }
  int status = 0;
  for (int i = 1; i < argc; ++i) {
    std::string text, error;
    if (!ReadAll(argv[i], &text, &error)) {
      std::fprintf(stderr, "get-lb-status: error: %s: %s\n", argv[i], error.c_str());
      status = 1;
      continue;
    }
    if (FLAGS_json) {
      std::fputs(text.c_str(), stdout);
      continue;
    }
    rapidjson::Document doc;
    if (!rlb::ParseJsonObject(text, &doc) || !doc.HasMember("workers") ||
        !doc["workers"].IsArray()) {
      std::fprintf(stderr, "get-lb-status: error: %s: not a status document\n", argv[i]);
      status = 1;
      continue;
    }
    std::printf("status for %s\n", argv[i]);
    const auto& workers = doc["workers"].GetArray();
    if (workers.Empty()) {
      std::printf("This load-balancer has no workers!\n");
      continue;
    }
    double backlog = doc["backlog"].GetDouble();
    double mean = doc["mean_backlog"].IsNumber() ? doc["mean_backlog"].GetDouble() : 0.0;
    std::printf("  backlog: %s, mean backlog: %s\n",
                doc["backlog"].IsInt() ? std::to_string(doc["backlog"].GetInt()).c_str()
                                       : Fixed1(backlog).c_str(),
                Fixed1(mean).c_str());
    std::printf("  workers: %u, mean backlog per worker: %s\n\n", workers.Size(),
                Fixed1(mean / workers.Size()).c_str());
    std::printf("%30s%8s%8s%8s\n", "worker", "backlog", "mean bl", "age");
    double t = rlb::EpochSeconds();
    for (const auto& w : workers) {
      if (!w.IsArray() || w.Size() < 4) continue;
      std::string age = w[3].IsNumber() ? Fixed1(t - w[3].GetDouble()) : "-";
      std::string mbl = w[2].IsNumber() ? Fixed1(w[2].GetDouble()) : "-";
      std::printf("%30s%8d%8s%8s\n", w[0].GetString(), w[1].GetInt(), mbl.c_str(), age.c_str());
    }
  }
  return status;
}
