// AccessLog: stdio, line-buffered by an explicit flush so a crash loses no finished line.
#include "zklb/access_log.h"

#include <cerrno>
#include <cstring>

namespace rlb::lb {

AccessLog::~AccessLog() {
  if (own_file_ && file_) std::fclose(file_);
}

Status AccessLog::Open(const std::string& path) {
  if (path.empty()) return Status::OK();
  if (path == "-") {
    file_ = stdout;
    return Status::OK();
  }
  file_ = std::fopen(path.c_str(), "ae");
  if (!file_) {
    return Status::InvalidArgument("cannot open access log " + path + ": " + std::strerror(errno));
  }
  own_file_ = true;
  return Status::OK();
}

void AccessLog::Write(const std::string& line) {
  if (!file_) return;
  std::fputs(line.c_str(), file_);
  std::fputc('\n', file_);
  std::fflush(file_);
}

}  // namespace rlb::lb
