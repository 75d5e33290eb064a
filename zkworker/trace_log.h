// TraceLog: the worker's request trace records (the `tracelog` option), in the original's
// format: "CODE ID YYYY-MM-DD HH:MM:SS.ffffff[ MESSAGE]" (.ffffff omitted when zero).
// Codes: S start, X stop, B request began, I input read, C app called, A app answered,
// E body done, and any code an application logs through environ['tracelog'].log().
// Thread rules: internally synchronized; one line per Record(), never interleaved.
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

 private:
  explicit TraceLog(FILE* f, bool owned) : file_(f), owned_(owned) {}
  std::mutex mu_;
  FILE* file_;
  bool owned_;
};

}  // namespace rlb::worker

#endif  // RESUMELB_ZKWORKER_TRACE_LOG_H_
