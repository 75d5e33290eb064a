// WriteBatcher: writes gathered per loop turn. A StreamWriter that batches does not write
// when asked to flush; it is scheduled here, and everything scheduled during one turn of
// the loop is written just before the loop waits for I/O again (a uv_prepare_t: Redis's
// beforeSleep, handleClientsWithPendingWrites). Frames for several requests on one worker
// link, and a response's head, body and final chunk, thus leave in one write instead of
// one each, when the kernel takes them at once.
//
// Errors found then reach the writer's listener (OnWriteError), and a flush that wrote
// anything is reported as OnWritten — always from the prepare phase, never inside a
// caller's call.
//
// Thread rules: loop thread only. REQUIRES: outlives every writer that uses it (or they
// detach first).
#ifndef RESUMELB_COMMON_WRITE_BATCHER_H_
#define RESUMELB_COMMON_WRITE_BATCHER_H_

#include <uv.h>

#include <vector>

#include "common/uv_handle.h"

namespace rlb {

class StreamWriter;

class WriteBatcher {
 public:
  explicit WriteBatcher(uv_loop_t* loop);
  WriteBatcher(const WriteBatcher&) = delete;
  WriteBatcher& operator=(const WriteBatcher&) = delete;

  // Writes everything scheduled now (also what those writes schedule meanwhile).
  void FlushAll();
  // Closes the loop handle; writers still scheduled are flushed first.
  void Close();

 private:
  friend class StreamWriter;
  void Schedule(StreamWriter* writer);
  void Cancel(StreamWriter* writer);

  UvHandle<uv_prepare_t> prepare_;
  std::vector<StreamWriter*> scheduled_;  // null entries: cancelled
  // The list being flushed, kept between turns so that scheduling allocates nothing.
  std::vector<StreamWriter*> spare_;
};

}  // namespace rlb

#endif  // RESUMELB_COMMON_WRITE_BATCHER_H_
