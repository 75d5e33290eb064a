// get-lb-status SOCKET...: prints a load balancer's status (read from its status socket) as
// the original's human report, or the raw JSON document with --json.
#include <cstdio>
#include <string>

#include <gflags/gflags.h>

#include "common/json.h"
#include "common/program.h"
#include "common/wall_clock.h"
#include "status/tool_client.h"

DEFINE_bool(json, false, "print the raw JSON document");
DEFINE_double(timeout, 5.0, "seconds to wait for each load balancer");

namespace {

constexpr char kUsage[] = R"(get-lb-status: print the status of resumelb load balancers.

Usage: get-lb-status [--json] [--timeout=SECONDS] SOCKET...

SOCKET is the path given to resumelb/zkresumelb with -s. For each one, prints its backlog,
mean backlog, and a row per worker: name, backlog, mean backlog and the age in seconds of
its oldest request in flight. --json prints the document as the LB sent it.
)";

std::string Fixed1(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

// The whole document the LB at `path` sends before closing the connection.
rlb::StatusOr<std::string> ReadStatus(const std::string& path) {
  auto conn = rlb::ToolConnection::ConnectUnix(path,
                                               rlb::ToolConnection::DeadlineIn(FLAGS_timeout));
  if (!conn.ok()) return conn.status();
  std::string text;
  rlb::Status s = (*conn)->ReadToEnd(&text);
  if (!s.ok()) return s;
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  rlb::StartProgram("get-lb-status", kUsage, argc, argv);
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (!(FLAGS_timeout > 0 && FLAGS_timeout <= 3600)) {
    return rlb::Fail("--timeout must be > 0 and at most 3600");
  }
  if (argc < 2) return rlb::Fail("give one or more status socket paths");
  int status = 0;
  for (int i = 1; i < argc; ++i) {
    auto read = ReadStatus(argv[i]);
    if (!read.ok()) {
      rlb::ReportError(std::string(argv[i]) + ": " + read.status().message());
      status = 1;
      continue;
    }
    const std::string& text = *read;
    if (FLAGS_json) {
      std::fputs(text.c_str(), stdout);
      continue;
    }
    rapidjson::Document doc;
    if (!rlb::ParseJsonObject(text, &doc) || !doc.HasMember("workers") ||
        !doc["workers"].IsArray()) {
      rlb::ReportError(std::string(argv[i]) + ": not a status document");
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
