// ResponseBuffer: memory chunks first, then one unlinked temp file used as a FIFO.
#include "zklb/response_buffer.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/temp_file.h"

namespace rlb::lb {

ResponseBuffer::ResponseBuffer(size_t memory_limit, std::string dir)
    : memory_limit_(memory_limit), dir_(std::move(dir)) {}

ResponseBuffer::~ResponseBuffer() {
  if (fd_ >= 0) ::close(fd_);
}

Status ResponseBuffer::Append(std::string_view data) {
  if (data.empty()) return Status::OK();
  // Once spilled, everything goes through the file so order is kept.
  if (fd_ < 0 && memory_bytes_ + data.size() <= memory_limit_) {
    memory_.emplace_back(data);
    memory_bytes_ += data.size();
    return Status::OK();
  }
  if (fd_ < 0) {
    StatusOr<int> fd = CreateUnlinkedTempFile(dir_, "rlbob-");
    if (!fd.ok()) return fd.status();
    fd_ = *fd;
  }
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(file_write_));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return Status::IOError(std::string("writing the response buffer file: ") +
                             std::strerror(n < 0 ? errno : ENOSPC));
    }
    file_write_ += static_cast<uint64_t>(n);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::OK();
}

Status ResponseBuffer::Take(size_t max, std::string* out) {
  out->clear();
  while (out->size() < max && !memory_.empty()) {
    std::string& front = memory_.front();
    size_t n = std::min(max - out->size(), front.size() - front_offset_);
    out->append(front, front_offset_, n);
    front_offset_ += n;
    memory_bytes_ -= n;
    if (front_offset_ == front.size()) {
      memory_.pop_front();
      front_offset_ = 0;
    }
  }
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
    if (file_read_ == file_write_) {  // drained: reclaim the space, keep the file
      if (::ftruncate(fd_, 0) == 0) file_read_ = file_write_ = 0;
    }
  }
  return Status::OK();
}

}  // namespace rlb::lb
