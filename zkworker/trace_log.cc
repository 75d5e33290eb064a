// TraceLog: formats and appends trace records under a mutex.
#include "zkworker/trace_log.h"

#include <sys/time.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace rlb::worker {

namespace {

StatusOr<FILE*> OpenForAppend(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "ae");
  if (!f) return Status::IOError("cannot open tracelog " + path + ": " + std::strerror(errno));
  return f;
}

}  // namespace

StatusOr<TraceLog*> TraceLog::Open(const std::string& destination) {
  if (destination == "-") return new TraceLog(stderr, "");
  auto f = OpenForAppend(destination);
  if (!f.ok()) return f.status();
  return new TraceLog(*f, destination);
}

TraceLog::~TraceLog() {
  if (!path_.empty()) std::fclose(file_);
}

Status TraceLog::Reopen() {
  if (path_.empty()) return Status::OK();
  auto f = OpenForAppend(path_);
  if (!f.ok()) return f.status();
  FILE* old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    old = file_;
    file_ = *f;
  }
  std::fclose(old);  // every record was flushed when written
  return Status::OK();
}

void TraceLog::Record(std::string_view code, std::string_view id, std::string_view message) {
  timeval tv;
  gettimeofday(&tv, nullptr);
  tm local;
  localtime_r(&tv.tv_sec, &local);
  char when[64];
  size_t n = std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &local);
  if (tv.tv_usec != 0) std::snprintf(when + n, sizeof when - n, ".%06ld", long(tv.tv_usec));
  std::lock_guard<std::mutex> lock(mu_);
  std::fprintf(file_, "%.*s %.*s %s", int(code.size()), code.data(), int(id.size()), id.data(),
               when);
  if (!message.empty()) std::fprintf(file_, " %.*s", int(message.size()), message.data());
  std::fputc('\n', file_);
  std::fflush(file_);
}

}  // namespace rlb::worker
