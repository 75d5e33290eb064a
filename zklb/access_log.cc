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
  path_ = path;
  return Status::OK();
}

Status AccessLog::Reopen() {
  if (!own_file_) return Status::OK();
  FILE* f = std::fopen(path_.c_str(), "ae");
  if (!f) {
    return Status::IOError("cannot reopen access log " + path_ + ": " + std::strerror(errno));
  }
  std::fclose(file_);
  file_ = f;
  return Status::OK();
}

void AccessLog::Write(const std::string& line) {
  if (!file_) return;
  std::fputs(line.c_str(), file_);
  std::fputc('\n', file_);
  std::fflush(file_);
}

}  // namespace rlb::lb
