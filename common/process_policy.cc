// Pure decisions of a process supervisor: back-off, per-process addresses and files.
#include "common/process_policy.h"

#include <algorithm>
#include <cmath>

namespace rlb {

double RespawnDelay(int quick_deaths) {
  if (quick_deaths <= 1) return 0.0;
  double delay = 0.5 * std::pow(2.0, std::min(quick_deaths - 2, 16));
  return std::min(delay, kMaxRespawnDelaySeconds);
}

StatusOr<HostPort> ProcessAddress(const HostPort& base, int index) {
  if (base.port == 0) return base;
  int port = base.port + index;
  if (index < 0 || port > 65535) {
    return Status::InvalidArgument("process " + std::to_string(index) + "'s port " +
                                   std::to_string(port) + " is past 65535 (" +
                                   base.ToString() + " + process index)");
  }
  HostPort out = base;
  out.port = port;
  return out;
}

bool ProcessPortsOverlap(const HostPort& a, const HostPort& b, int count) {
  if (a.port == 0 || b.port == 0) return false;
  auto wildcard = [](const std::string& host) {
    return host.empty() || host == "0.0.0.0" || host == "::";
  };
  if (a.host != b.host && !wildcard(a.host) && !wildcard(b.host)) return false;
  return a.port < b.port + count && b.port < a.port + count;
}

std::string ProcessFilePath(const std::string& path, int index) {
  if (path.empty() || path == "-") return path;
  std::string suffix = "." + std::to_string(index);
  size_t slash = path.rfind('/');
  size_t dot = path.rfind('.');
  bool has_ext = dot != std::string::npos && (slash == std::string::npos || dot > slash + 1);
  if (!has_ext) return path + suffix;
  return path.substr(0, dot) + suffix + path.substr(dot);
}

}  // namespace rlb
