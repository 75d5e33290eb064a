// TraceLog: the worker's request trace records (the `tracelog` option), in the original's
// format: "CODE ID YYYY-MM-DD HH:MM:SS.ffffff[ MESSAGE]" (.ffffff omitted when zero).
// Codes: S start, X stop, B request began, I input read, C app called, A app answered,
// E body done, and any code an application logs through environ['tracelog'].log().
// Thread rules: internally synchronized; one line per Record(), never interleaved.
// Reopen() (SIGHUP, after logrotate renamed the file) switches files between two records.
#ifndef RESUMELB_ZKWORKER_TRACE_LOG_H_
#define RESUMELB_ZKWORKER_TRACE_LOG_H_

#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>

#include "common/status.h"

namespace rlb::worker {

class TraceLog {
 public:
  // `destination` is a file path (appended to) or "-" for stderr.
  static StatusOr<TraceLog*> Open(const std::string& destination);
  ~TraceLog();
  void Record(std::string_view code, std::string_view id, std::string_view message = {});
  // Opens the destination path again (appending; created when it was renamed or removed)
  // and closes the old file; records go to the new file from then on. For stderr, nothing
  // to do. IOError when the path cannot be opened: the old file stays in use.
  Status Reopen();

 private:
  TraceLog(FILE* f, std::string path) : file_(f), path_(std::move(path)) {}
  std::mutex mu_;
  FILE* file_;        // guarded by mu_
  std::string path_;  // empty: stderr, not owned
};

}  // namespace rlb::worker

#endif  // RESUMELB_ZKWORKER_TRACE_LOG_H_
