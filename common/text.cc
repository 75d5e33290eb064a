// Text helpers: ASCII comparison, trimming and number parsing.
#include "common/text.h"

#include <strings.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace rlb {

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string_view Trim(std::string_view s, std::string_view chars) {
  size_t begin = s.find_first_not_of(chars);
  if (begin == std::string_view::npos) return s.substr(s.size());
  size_t end = s.find_last_not_of(chars);
  return s.substr(begin, end - begin + 1);
}

std::optional<double> ParseFiniteDouble(std::string_view text) {
  std::string trimmed(Trim(text));  // strtod needs a terminated string
  if (trimmed.empty()) return std::nullopt;
  errno = 0;
  char* stop = nullptr;
  double value = std::strtod(trimmed.c_str(), &stop);
  if (stop != trimmed.c_str() + trimmed.size()) return std::nullopt;
  if (errno == ERANGE && std::isinf(value)) return std::nullopt;
  if (!std::isfinite(value)) return std::nullopt;
  return value;
}

std::string SecondsText(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", seconds);
  return buf;
}

}  // namespace rlb
