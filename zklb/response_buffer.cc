// ResponseBuffer: memory chunks, then one unlinked temp file used as a FIFO, then an
// over-budget overflow queue; each part is reserved from the ResponseBudget.
#include "zklb/response_buffer.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/temp_file.h"

namespace rlb::lb {

ResponseBuffer::ResponseBuffer(size_t memory_limit, std::string dir, ResponseBudget* budget)
    : memory_limit_(memory_limit), dir_(std::move(dir)), budget_(budget) {}

ResponseBuffer::~ResponseBuffer() {
  budget_->ReleaseMemory(memory_bytes_ + overflow_bytes_);
  budget_->ReleaseDisk(file_write_);
  if (fd_ >= 0) ::close(fd_);
}

Status ResponseBuffer::Append(std::string_view data, bool* over_budget) {
  *over_budget = false;
  if (data.empty()) return Status::OK();
  // Order is kept: memory, then the file, then the overflow; once a later part is in use,
  // the earlier ones take nothing more.
  if (fd_ < 0 && overflow_bytes_ == 0 && memory_bytes_ + data.size() <= memory_limit_ &&
      budget_->TryMemory(data.size())) {
    memory_.emplace_back(data);
    memory_bytes_ += data.size();
    return Status::OK();
  }
  if (overflow_bytes_ == 0 && budget_->TryDisk(data.size())) {
    Status s = WriteFile(data);
    if (s.ok()) return s;
    budget_->ReleaseDisk(data.size());
    if (!s.IsUnavailable()) return s;  // a real I/O error
    // The disk is full: keep the bytes over budget, like an exhausted disk budget.
  }
  overflow_.emplace_back(data);
  overflow_bytes_ += data.size();
  budget_->ForceMemory(data.size());
  *over_budget = true;
  return Status::OK();
}

Status ResponseBuffer::WriteFile(std::string_view data) {
  if (fd_ < 0) {
    StatusOr<int> fd = CreateUnlinkedTempFile(dir_, "rlbob-");
    if (!fd.ok()) return Status::Unavailable(fd.status().message());
    fd_ = *fd;
  }
  uint64_t start = file_write_;
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(file_write_));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : ENOSPC;
      // Nothing half-written stays: the file's end is where it was.
      if (::ftruncate(fd_, static_cast<off_t>(start)) == 0) file_write_ = start;
      std::string what = std::string("writing the response buffer file: ") + std::strerror(err);
      return err == ENOSPC || err == EDQUOT ? Status::Unavailable(what) : Status::IOError(what);
    }
    file_write_ += static_cast<uint64_t>(n);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::OK();
}

void ResponseBuffer::TruncateFile() {
  // Drained: reclaim the space (and the disk budget), keep the file for later spills.
  if (::ftruncate(fd_, 0) == 0) {
    budget_->ReleaseDisk(file_write_);
    file_read_ = file_write_ = 0;
  }
}

void ResponseBuffer::TakeFrom(std::deque<std::string>* q, size_t* offset, uint64_t* bytes,
                              size_t max, std::string* out) {
  while (out->size() < max && !q->empty()) {
    std::string& front = q->front();
    size_t n = std::min(max - out->size(), front.size() - *offset);
    out->append(front, *offset, n);
    *offset += n;
    *bytes -= n;
    if (*offset == front.size()) {
      q->pop_front();
      *offset = 0;
    }
  }
}

Status ResponseBuffer::Take(size_t max, std::string* out) {
  out->clear();
  uint64_t before = memory_bytes_;
  TakeFrom(&memory_, &front_offset_, &memory_bytes_, max, out);
  budget_->ReleaseMemory(before - memory_bytes_);
  if (out->size() < max && fd_ >= 0 && file_read_ < file_write_) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(max - out->size(), file_write_ - file_read_));
    size_t at = out->size();
    out->resize(at + want);
    ssize_t n;
    do {
      n = ::pread(fd_, out->data() + at, want, static_cast<off_t>(file_read_));
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      return Status::IOError(std::string("reading the response buffer file: ") +
                             std::strerror(errno));
    }
    out->resize(at + static_cast<size_t>(n));
    file_read_ += static_cast<uint64_t>(n);
    if (file_read_ == file_write_) TruncateFile();
  }
  if (out->size() < max && (fd_ < 0 || file_read_ == file_write_)) {
    before = overflow_bytes_;
    TakeFrom(&overflow_, &overflow_offset_, &overflow_bytes_, max, out);
    budget_->ReleaseMemory(before - overflow_bytes_);
  }
  return Status::OK();
}

}  // namespace rlb::lb
