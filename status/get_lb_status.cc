// get-lb-status SOCKET...: prints a load balancer's status (read from its status socket) as
// the original's human report, or the raw JSON document with --json.
#include <unistd.h>

#include <cstdio>
#include <map>
#include <string>

#include <gflags/gflags.h>

#include "common/json.h"
#include "common/program.h"
#include "common/wall_clock.h"
#include "status/tool_client.h"

DEFINE_bool(json, false, "print the raw JSON document (--format=json)");
DEFINE_string(format, "auto", "auto (a table on a terminal, else the report), table, report "
              "or json");
DEFINE_double(timeout, 5.0, "seconds to wait for each load balancer");

namespace {

constexpr char kUsage[] = R"(get-lb-status: print the status of resumelb load balancers.

Usage: get-lb-status [--format=auto|table|report|json] [--json] [--timeout=SECONDS] SOCKET...

SOCKET is the path given to resumelb/zkresumelb with -s. For each one:
  --format=report  the original's report: its backlog, mean backlog, and a row per worker:
                   name, backlog, mean backlog and the age in seconds of its oldest request
                   in flight (the default when the output is not a terminal);
  --format=table   a table for people (the default on a terminal): version, uptime and
                   totals, then per worker its state, backlogs, requests in flight, oldest
                   request age, version and last error, then the busiest request classes
                   and the workers that serve them;
  --format=json, --json  the document as the LB sent it.
)";

std::string Fixed1(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

// The human table of --format=table.
void PrintTable(const char* path, const rapidjson::Document& doc) {
  auto num = [](const rapidjson::Value& obj, const char* key) {
    const rapidjson::Value* v = rlb::FindJsonMember(obj, key);
    return v && v->IsNumber() ? v->GetDouble() : 0.0;
  };
  auto str = [](const rapidjson::Value& obj, const char* key) -> std::string {
    const rapidjson::Value* v = rlb::FindJsonMember(obj, key);
    return v && v->IsString() ? std::string(v->GetString(), v->GetStringLength()) : "-";
  };
  const double now = rlb::EpochSeconds();
  std::printf("%s: resumelb %s, up %.0f s, backlog %d", path, str(doc, "version").c_str(),
              num(doc, "uptime"), static_cast<int>(num(doc, "backlog")));
  if (const rapidjson::Value* totals = rlb::FindJsonMember(doc, "totals")) {
    std::printf(", %.0f requests, %.0f connections open, %.0f 502, %.0f 503",
                num(*totals, "requests"), num(*totals, "connections_open"), num(*totals, "502"),
                num(*totals, "503"));
  }
  std::printf("\n\n%-24s %-10s %4s %7s %7s %9s %8s %9s %-10s %s\n", "WORKER", "STATE", "POOL",
              "BACKLOG", "MEAN", "IN FLIGHT", "OLDEST", "REQUESTS", "VERSION", "LAST ERROR");
  std::map<std::string, const rapidjson::Value*> rows;
  if (const rapidjson::Value* workers = rlb::FindJsonMember(doc, "workers")) {
    for (const auto& w : workers->GetArray()) {
      if (w.IsArray() && w.Size() >= 4 && w[0].IsString()) rows[w[0].GetString()] = &w;
    }
  }
  if (const rapidjson::Value* details = rlb::FindJsonMember(doc, "worker_details")) {
    for (const auto& d : details->GetArray()) {
      std::string name = str(d, "name");
      const rapidjson::Value* w = rows.count(name) ? rows[name] : nullptr;
      const rapidjson::Value* in_pool = rlb::FindJsonMember(d, "in_pool");
      std::string backlog = w ? std::to_string((*w)[1].GetInt()) : "-";
      std::string mean = w && (*w)[2].IsNumber() ? Fixed1((*w)[2].GetDouble()) : "-";
      std::string oldest = w && (*w)[3].IsNumber() ? Fixed1(now - (*w)[3].GetDouble()) + "s" : "-";
      std::printf("%-24s %-10s %4s %7s %7s %9.0f %8s %9.0f %-10s %s\n", name.c_str(),
                  str(d, "state").c_str(), in_pool && in_pool->IsTrue() ? "yes" : "no",
                  backlog.c_str(), mean.c_str(), num(d, "in_flight"), oldest.c_str(),
                  num(d, "requests"), str(d, "version").c_str(),
                  str(d, "last_error") == "-" ? "" : str(d, "last_error").c_str());
    }
  }
  const rapidjson::Value* classes = rlb::FindJsonMember(doc, "classes");
  if (classes && classes->IsArray() && !classes->Empty()) {
    std::printf("\n%-32s %9s  %s\n", "CLASS", "REQUESTS", "WORKERS (SCORE)");
    for (const auto& c : classes->GetArray()) {
      std::string servers;
      if (const rapidjson::Value* ws = rlb::FindJsonMember(c, "workers")) {
        for (const auto& w : ws->GetArray()) {
          if (!w.IsArray() || w.Size() < 2) continue;
          servers += (servers.empty() ? "" : ", ") + std::string(w[0].GetString()) + " (" +
                     Fixed1(w[1].GetDouble()) + ")";
        }
      }
      std::printf("%-32s %9.0f  %s\n", str(c, "class").c_str(), num(c, "requests"),
                  servers.c_str());
    }
  }
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
  std::string format = FLAGS_json ? "json" : FLAGS_format;
  if (format == "auto") format = isatty(STDOUT_FILENO) ? "table" : "report";
  if (format != "table" && format != "report" && format != "json") {
    return rlb::Fail("--format must be auto, table, report or json");
  }
  int status = 0;
  for (int i = 1; i < argc; ++i) {
    auto read = ReadStatus(argv[i]);
    if (!read.ok()) {
      rlb::ReportError(std::string(argv[i]) + ": " + read.status().message());
      status = 1;
      continue;
    }
    const std::string& text = *read;
    if (format == "json") {
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
    if (format == "table") {
      PrintTable(argv[i], doc);
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
