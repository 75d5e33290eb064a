// AccessLog: the LB's access log file (one line per response, flushed per line), or stdout.
//
// Thread rules: loop thread only.
#ifndef RESUMELB_ZKLB_ACCESS_LOG_H_
#define RESUMELB_ZKLB_ACCESS_LOG_H_

#include <cstdio>
#include <string>

#include "common/status.h"

namespace rlb::lb {

class AccessLog {
 public:
  AccessLog() = default;
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // `path`: a file (appended to, created if missing), "-" for stdout, or "" for no log.
  Status Open(const std::string& path);
  bool enabled() const { return file_ != nullptr; }
  // Closes and reopens the file at the same path (after logrotate moved it). On error the
  // old file stays in use and the error is returned.
  Status Reopen();
  void Write(const std::string& line);

 private:
  FILE* file_ = nullptr;
  bool own_file_ = false;
  std::string path_;
};

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_ACCESS_LOG_H_
