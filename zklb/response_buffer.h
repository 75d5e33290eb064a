// ResponseBuffer: the LB's per-request store for response bytes a slow client has not
// taken yet, so a worker never waits for a client. Bytes stay in memory up to a bound,
// then go to an unlinked temp file (nothing is ever left on disk), and come out in order.
//
// Thread rules: loop thread only. Errors (e.g. disk full) come back as Status; the caller
// fails that one request.
#ifndef RESUMELB_ZKLB_RESPONSE_BUFFER_H_
#define RESUMELB_ZKLB_RESPONSE_BUFFER_H_

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "common/status.h"

namespace rlb::lb {

class ResponseBuffer {
 public:
  // `memory_limit`: bytes kept in memory before spilling; `dir`: where temp files go.
  ResponseBuffer(size_t memory_limit, std::string dir);
  ~ResponseBuffer();
  ResponseBuffer(const ResponseBuffer&) = delete;
  ResponseBuffer& operator=(const ResponseBuffer&) = delete;

  Status Append(std::string_view data);
  // Takes up to `max` bytes from the front into *out (replacing its contents).
  Status Take(size_t max, std::string* out);
  bool empty() const { return size() == 0; }
  uint64_t size() const { return memory_bytes_ + (file_write_ - file_read_); }
  bool spilled() const { return fd_ >= 0; }

 private:
  size_t memory_limit_;
  std::string dir_;
  std::deque<std::string> memory_;
  size_t front_offset_ = 0;  // consumed bytes of memory_.front()
  uint64_t memory_bytes_ = 0;
  int fd_ = -1;
  uint64_t file_read_ = 0, file_write_ = 0;
};

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_RESPONSE_BUFFER_H_
