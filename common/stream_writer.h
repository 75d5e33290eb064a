// StreamWriter: the one write path for libuv streams (client sockets, worker links, the
// worker's load-balancer connections, the status socket).
//
// Bytes are appended to a pending buffer and go out in order on Flush(): while nothing is in
// flight, uv_try_write first (usually the kernel takes everything: no request, no callback),
// and whatever it did not take goes out with one uv_write; bytes appended meanwhile wait and
// leave together when that write completes. queued_bytes() is what the kernel has not taken
// yet, for back-pressure against a high-water mark (the owner decides what to do).
//
// Errors: a failure inside Flush() is returned to the caller, never reported through the
// listener from inside the caller's call; a failure of an asynchronous write reaches
// Listener::OnWriteError from the loop. Either way the stream is unusable afterwards.
//
// Lifetime: Detach() (or the destructor) orphans the write in flight, so its callback
// (UV_ECANCELED after the stream is closed) touches nothing of the owner.
//
// Batching: with a WriteBatcher (BatchWith), Flush() only schedules the writer; its bytes
// go out when the batcher flushes, once per loop turn, and errors and progress then reach
// the listener (common/write_batcher.h).
//
// Thread rules: loop thread only.
#ifndef RESUMELB_COMMON_STREAM_WRITER_H_
#define RESUMELB_COMMON_STREAM_WRITER_H_

#include <uv.h>

#include <string>
#include <string_view>

#include "common/write_batcher.h"

namespace rlb {

class StreamWriter {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    // A write completed: queued_bytes() fell (maybe to 0). Called from the loop only.
    virtual void OnWritten() {}
    // An asynchronous write failed (never UV_ECANCELED). Called from the loop only.
    virtual void OnWriteError(int uv_error) = 0;
  };

  explicit StreamWriter(Listener* listener) : listener_(listener) {}
  ~StreamWriter() { Detach(); }
  StreamWriter(const StreamWriter&) = delete;
  StreamWriter& operator=(const StreamWriter&) = delete;

  // Starts writing to `stream` (a new connection). REQUIRES: not attached.
  void Attach(uv_stream_t* stream);
  // Gathers writes per loop turn through `batcher` (REQUIRES: it outlives this writer).
  void BatchWith(WriteBatcher* batcher) { batcher_ = batcher; }
  // Forgets the stream (it is being closed): pending bytes are dropped and the write in
  // flight is orphaned.
  void Detach();
  bool attached() const { return stream_ != nullptr; }

  // The pending buffer, for encoders that append in place; call Flush() afterwards.
  std::string* pending() { return &pending_; }
  void Append(std::string_view data) { pending_.append(data); }
  void Append(const char* data) { pending_.append(data); }
  void Append(std::string&& data);

  // Writes the pending bytes if no write is in flight (otherwise they follow it). Returns 0,
  // or a libuv error after which the stream is unusable. Not attached: keeps the bytes.
  // Batching: schedules the write and returns 0.
  int Flush();
  // Writes now, batching or not (a stream about to be closed: what was queued still goes).
  int FlushImmediately();
  int Write(std::string&& data) {
    Append(std::move(data));
    return Flush();
  }

  // Bytes accepted but not yet taken by the kernel (pending + in flight).
  size_t queued_bytes() const { return pending_.size() + in_flight_bytes_; }
  bool idle() const { return queued_bytes() == 0; }
  // Total bytes the kernel took, since construction.
  uint64_t bytes_written() const { return bytes_written_; }

 private:
  friend class WriteBatcher;
  struct WriteRequest;
  static void OnWriteDone(uv_write_t* req, int status);
  int FlushNow();
  void FlushScheduled();  // the batcher's turn

  Listener* listener_;
  uv_stream_t* stream_ = nullptr;
  std::string pending_;
  WriteRequest* in_flight_ = nullptr;
  size_t in_flight_bytes_ = 0;
  uint64_t bytes_written_ = 0;
  WriteBatcher* batcher_ = nullptr;
  bool scheduled_ = false;
  size_t batch_index_ = 0;  // in the batcher's list, while scheduled_
};

}  // namespace rlb

#endif  // RESUMELB_COMMON_STREAM_WRITER_H_
