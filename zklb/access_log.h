// AccessLog: the record of every finished request. Each one (a response, a 499 for a client
// that left, a 4xx for a request that could not be parsed) is counted in the RequestMetrics
// given to it, if any, and written to the access log file (one line per request, flushed
// per line), or stdout, in one of two formats:
//
//   text (default): CLIENT - - [TIME] "METHOD URL HTTP/1.x" STATUS BODY_BYTES SECONDS WORKER
//                   "HOST" "CLASS" "USER_AGENT"
//   json:           one JSON object per line (keys in docs/operations.md, "Logs")
//
// A request that could not be parsed has "-" for its request line in the text format.
//
// Thread rules: loop thread only.
#ifndef RESUMELB_ZKLB_ACCESS_LOG_H_
#define RESUMELB_ZKLB_ACCESS_LOG_H_

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "common/status.h"

namespace rlb::lb {

class RequestMetrics;

// One finished request, as the access log and the metrics see it. The views point into
// the exchange or connection that made the record; they are used at once.
struct RequestRecord {
  std::string_view client_ip;
  double start = 0;     // epoch seconds the request began
  double duration = 0;  // seconds until it ended
  bool has_request_line = true;  // false: the request could not be parsed (no method, URL)
  std::string_view method;
  std::string_view url;
  int http_minor = 1;
  int status = 0;
  uint64_t body_bytes = 0;          // response body bytes sent
  uint64_t request_body_bytes = 0;  // request body bytes received
  std::string_view worker = "-";
  std::string_view host;           // the Host header as sent ("" if none)
  std::string_view request_class;  // "" also for a request not classified
  bool classified = true;          // false: never classified (parse error)
  std::string_view user_agent;
  std::string_view error;  // why the LB answered by itself (parse errors); "" otherwise
};

class AccessLog {
 public:
  enum class Format { kText, kJson };

  AccessLog() = default;
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // `path`: a file (appended to, created if missing), "-" for stdout, or "" for no log.
  Status Open(const std::string& path, Format format = Format::kText);
  bool enabled() const { return file_ != nullptr; }
  // Every record is also counted there. REQUIRES: `metrics` outlives this log.
  void set_metrics(RequestMetrics* metrics) { metrics_ = metrics; }
  // Closes and reopens the file at the same path (after logrotate moved it). On error the
  // old file stays in use and the error is returned.
  Status Reopen();
  // Counts the request and writes its line (when a file is open).
  void Record(const RequestRecord& record);
  void Write(const std::string& line);

 private:
  FILE* file_ = nullptr;
  bool own_file_ = false;
  std::string path_;
  Format format_ = Format::kText;
  RequestMetrics* metrics_ = nullptr;
};

// The record's line in each format (without the newline).
std::string FormatAccessLine(const RequestRecord& record);
std::string FormatAccessJson(const RequestRecord& record);

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_ACCESS_LOG_H_
