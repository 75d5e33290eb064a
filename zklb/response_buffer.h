// ResponseBuffer: the LB's per-request store for response bytes a slow client has not
// taken yet, so a worker never waits for a client. Bytes stay in memory up to a per-request
// bound (and while the process-wide ResponseBudget allows), then go to an unlinked temp
// file (nothing is ever left on disk), and come out in order. When neither memory nor disk
// budget is left (or the disk is full), the bytes are still kept — in an overflow queue
// counted over budget — and Append says so: the caller must stop the flow of response
// bytes (the LB stops reading that worker link) until the buffer drains.
//
// Thread rules: loop thread only. Real I/O errors come back as Status; the caller fails
// that one request.
#ifndef RESUMELB_ZKLB_RESPONSE_BUFFER_H_
#define RESUMELB_ZKLB_RESPONSE_BUFFER_H_

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "common/status.h"
#include "zklb/response_budget.h"

namespace rlb::lb {

class ResponseBuffer {
 public:
  // `memory_limit`: bytes kept in memory before spilling; `dir`: where temp files go;
  // `budget`: the process-wide budget (REQUIRES: outlives the buffer).
  ResponseBuffer(size_t memory_limit, std::string dir, ResponseBudget* budget);
  ~ResponseBuffer();  // gives everything back to the budget
  ResponseBuffer(const ResponseBuffer&) = delete;
  ResponseBuffer& operator=(const ResponseBuffer&) = delete;

  // Stores `data`. *over_budget is set when the bytes had to be kept over budget: stop
  // feeding the buffer until over_budget() is false again.
  Status Append(std::string_view data, bool* over_budget);
  // Takes up to `max` bytes from the front into *out (replacing its contents).
  Status Take(size_t max, std::string* out);
  bool empty() const { return size() == 0; }
  uint64_t size() const {
    return memory_bytes_ + (file_write_ - file_read_) + overflow_bytes_;
  }
  bool spilled() const { return fd_ >= 0; }
  bool over_budget() const { return overflow_bytes_ > 0; }

 private:
  // Takes from one queue of in-memory chunks.
  static void TakeFrom(std::deque<std::string>* q, size_t* offset, uint64_t* bytes, size_t max,
                       std::string* out);
  Status WriteFile(std::string_view data);
  void TruncateFile();

  size_t memory_limit_;
  std::string dir_;
  ResponseBudget* budget_;
  std::deque<std::string> memory_;  // before the file (in budget)
  size_t front_offset_ = 0;         // consumed bytes of memory_.front()
  uint64_t memory_bytes_ = 0;
  int fd_ = -1;
  uint64_t file_read_ = 0, file_write_ = 0;  // disk budget held: file_write_
  std::deque<std::string> overflow_;  // after the file (over budget)
  size_t overflow_offset_ = 0;
  uint64_t overflow_bytes_ = 0;
};

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_RESPONSE_BUFFER_H_
