// Logging set-up: maps Python-style level specs onto glog's severities and verbosity.
#include "common/logging_setup.h"

#include <gflags/gflags.h>
#include <glog/logging.h>

#include <cstdio>
#include <string>

namespace rlb {

void InitLogging(const char* argv0) {
  FLAGS_logtostderr = true;
  FLAGS_colorlogtostderr = false;
  google::InitGoogleLogging(argv0);
}

Status ApplyLogLevel(std::string_view spec) {
  if (spec.empty()) return Status::OK();
  int level = -1;
  if (spec.find_first_not_of("0123456789") == std::string_view::npos && spec.size() < 4) {
    level = std::stoi(std::string(spec));
  } else if (spec == "DEBUG") {
    level = 10;
  } else if (spec == "INFO") {
    level = 20;
  } else if (spec == "WARNING" || spec == "WARN") {
    level = 30;
  } else if (spec == "ERROR") {
    level = 40;
  } else if (spec == "CRITICAL" || spec == "FATAL") {
    level = 50;
  } else {
    return Status::InvalidArgument("log level '" + std::string(spec) +
                                   "' is not a number or one of DEBUG, INFO, WARNING, ERROR, "
                                   "CRITICAL");
  }
  FLAGS_v = level <= 10 ? 1 : 0;
  FLAGS_minloglevel = level <= 20 ? google::GLOG_INFO
                      : level <= 30 ? google::GLOG_WARNING
                                    : google::GLOG_ERROR;
  return Status::OK();
}

void PrintError(std::string_view program, std::string_view message) {
  std::fprintf(stderr, "%.*s: error: %.*s\n", static_cast<int>(program.size()), program.data(),
               static_cast<int>(message.size()), message.data());
}

}  // namespace rlb
