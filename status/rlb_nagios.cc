// rlb-nagios: a Nagios (monitoring-plugins) check of a resumelb load balancer, read from its
// status socket, as zc.resumelb's plugin of the same name, with its faults fixed: a check on
// the request age alone is accepted, an LB without workers is checked (not a crash), the
// mean backlog is per worker whatever the pool, the -w/-W help says what they do, the
// perfdata's unit is Nagios's "s", and an unreadable socket is UNKNOWN (3), not a traceback.
//
//   rlb-nagios [-b N] [-B N] [-x N] [-X N] [-a S] [-A S] [-w N] [-W N] [-m] SOCKET
//
// Exit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (socket missing or unreadable, not a
// status document, or nothing asked).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/text.h"
#include "common/version.h"
#include "common/wall_clock.h"
#include "status/tool_client.h"

namespace {

constexpr int kOk = 0, kWarning = 1, kCritical = 2, kUnknown = 3;

constexpr char kUsage[] = R"USAGE(rlb-nagios: a Nagios check of a resumelb load balancer.

Usage: rlb-nagios [options] SOCKET

SOCKET is the LB's status socket (resumelb/zkresumelb -s). Each threshold is optional; a
value at or above a backlog or age threshold (at or below a worker-count threshold) gives
WARNING (lower-case option) or CRITICAL (upper-case option).

  -b, --worker-mean-backlog-warn=N    mean of the workers' decayed backlogs
  -B, --worker-mean-backlog-error=N
  -x, --worker-max-backlog-warn=N     largest backlog of one worker
  -X, --worker-max-backlog-error=N
  -a, --worker-request-age-warn=S     age in seconds of the oldest request in flight
  -A, --worker-request-age-error=S
  -w, --minimum-worker-warn=N         number of workers in the pool (at or below N)
  -W, --minimum-worker-error=N
  -m, --metrics                       append performance data
      --timeout=S                     seconds to wait for the LB (5)
  -h, --help                          this text
      --version                       the version

Output: the triggered checks ("mean backlog high (V)", "max backlog high (V)", "max age too
high (V)", "too few workers (V)"), or "OK WORKERS MEAN_BACKLOG MAX_BACKLOG MAX_AGE"; with -m,
"|workers=N mean_backlog=V max_backlog=N max_age=Vs". Exit status: 0 OK, 1 WARNING,
2 CRITICAL, 3 UNKNOWN (the socket cannot be read, or neither a threshold nor -m is given).
)USAGE";

struct Options {
  std::optional<double> mean_warn, mean_error, max_warn, max_error, age_warn, age_error,
      workers_warn, workers_error;
  bool metrics = false;
  double timeout = 5;
  std::string socket;
};

int Unknown(const std::string& message) {
  std::printf("UNKNOWN: %s\n", message.c_str());
  return kUnknown;
}

// "3", "5.63": at most two decimals, no trailing zeros.
std::string Format(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s = buf;
  while (s.find('.') != std::string::npos && (s.back() == '0' || s.back() == '.')) {
    bool dot = s.back() == '.';
    s.pop_back();
    if (dot) break;
  }
  return s;
}

// Parses the command line; an error message, or "" when it is valid.
std::string ParseArgs(int argc, char** argv, Options* o) {
  struct Spec {
    char letter;
    const char* name;
    std::optional<double> Options::*field;
  };
  static const Spec kSpecs[] = {
      {'b', "worker-mean-backlog-warn", &Options::mean_warn},
      {'B', "worker-mean-backlog-error", &Options::mean_error},
      {'x', "worker-max-backlog-warn", &Options::max_warn},
      {'X', "worker-max-backlog-error", &Options::max_error},
      {'a', "worker-request-age-warn", &Options::age_warn},
      {'A', "worker-request-age-error", &Options::age_error},
      {'w', "minimum-worker-warn", &Options::workers_warn},
      {'W', "minimum-worker-error", &Options::workers_error},
  };
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-m" || a == "--metrics") {
      o->metrics = true;
      continue;
    }
    std::string name, value;
    bool has_value = false;
    if (a.rfind("--", 0) == 0 && a.size() > 2) {
      size_t eq = a.find('=');
      name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      std::replace(name.begin(), name.end(), '_', '-');
      if (eq != std::string::npos) {
        value = a.substr(eq + 1);
        has_value = true;
      }
    } else if (a.size() >= 2 && a[0] == '-') {
      for (const Spec& s : kSpecs) {
        if (s.letter == a[1]) name = s.name;
      }
      if (name.empty()) return "unknown option '" + a + "'";
      if (a.size() > 2) {
        value = a.substr(2);
        has_value = true;
      }
    } else {
      positional.push_back(a);
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc) return "option '" + a + "' needs a value";
      value = argv[++i];
    }
    std::optional<double> number = rlb::ParseFiniteDouble(value);
    if (!number || *number < 0) return "option '" + a + "' needs a number >= 0, got '" + value + "'";
    if (name == "timeout") {
      if (*number <= 0 || *number > 3600) return "--timeout must be > 0 and at most 3600";
      o->timeout = *number;
      continue;
    }
    bool known = false;
    for (const Spec& s : kSpecs) {
      if (name == s.name) {
        o->*s.field = *number;
        known = true;
      }
    }
    if (!known) return "unknown option '" + a + "'";
  }
  if (positional.size() != 1) return "give one status socket path";
  o->socket = positional[0];
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return kOk;
    }
    if (a == "--version") {
      std::printf("rlb-nagios %s\n", rlb::kVersion);
      return kOk;
    }
  }
  Options o;
  std::string error = ParseArgs(argc, argv, &o);
  if (!error.empty()) return Unknown(error + " (see --help)");
  bool any = o.metrics;
  for (const auto* t : {&o.mean_warn, &o.mean_error, &o.max_warn, &o.max_error, &o.age_warn,
                        &o.age_error, &o.workers_warn, &o.workers_error}) {
    any |= t->has_value();
  }
  if (!any) return Unknown("You need to request metrics and/or alert settings");

  auto conn = rlb::ToolConnection::ConnectUnix(o.socket,
                                               rlb::ToolConnection::DeadlineIn(o.timeout));
  std::string text;
  rlb::Status s = conn.ok() ? (*conn)->ReadToEnd(&text) : conn.status();
  if (!s.ok()) return Unknown("cannot read the status of " + o.socket + ": " + s.message());
  rapidjson::Document doc;
  if (!rlb::ParseJsonObject(text, &doc) || !doc.HasMember("workers") ||
      !doc["workers"].IsArray()) {
    return Unknown(o.socket + " did not send a status document");
  }

  // The pool's workers: [name, backlog, decayed backlog or null, oldest start or null].
  const double now = rlb::EpochSeconds();
  double mean_sum = 0, max_backlog = 0, max_age = 0;
  size_t workers = 0;
  for (const auto& w : doc["workers"].GetArray()) {
    if (!w.IsArray() || w.Size() < 4) continue;
    ++workers;
    if (w[1].IsNumber()) max_backlog = std::max(max_backlog, w[1].GetDouble());
    if (w[2].IsNumber()) mean_sum += w[2].GetDouble();
    if (w[3].IsNumber()) max_age = std::max(max_age, now - w[3].GetDouble());
  }
  const double mean = workers ? mean_sum / static_cast<double>(workers) : 0;

  int status = kOk;
  std::vector<std::string> messages;
  auto check = [&](double value, const std::optional<double>& warn,
                   const std::optional<double>& error, bool low_is_bad, const std::string& text) {
    auto hit = [&](const std::optional<double>& t) {
      return t && (low_is_bad ? value <= *t : value >= *t);
    };
    if (hit(error)) {
      status = kCritical;
    } else if (hit(warn)) {
      status = std::max(status, kWarning);
    } else {
      return;
    }
    messages.push_back(text);
  };
  check(mean, o.mean_warn, o.mean_error, false, "mean backlog high (" + Format(mean) + ")");
  check(max_backlog, o.max_warn, o.max_error, false,
        "max backlog high (" + Format(max_backlog) + ")");
  char age[64];
  std::snprintf(age, sizeof age, "%.1f", max_age);
  check(max_age, o.age_warn, o.age_error, false, std::string("max age too high (") + age + ")");
  check(static_cast<double>(workers), o.workers_warn, o.workers_error, true,
        "too few workers (" + std::to_string(workers) + ")");

  std::string out;
  if (messages.empty()) {
    out = "OK " + std::to_string(workers) + " " + Format(mean) + " " + Format(max_backlog) + " " +
          std::to_string(static_cast<long long>(max_age + 0.5));
  } else {
    for (const auto& m : messages) out += (out.empty() ? "" : " ") + m;
  }
  if (o.metrics) {
    out += "|workers=" + std::to_string(workers) + " mean_backlog=" + Format(mean) +
           " max_backlog=" + Format(max_backlog) + " max_age=" + age + "s";
  }
  std::printf("%s\n", out.c_str());
  return status;
}
