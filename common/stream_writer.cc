// StreamWriter: try-write, then at most one uv_write in flight carrying everything pending.
#include "common/stream_writer.h"

#include <glog/logging.h>

namespace rlb {
namespace {

constexpr size_t kKeptCapacity = 16 * 1024;  // pending buffer kept between writes

}  // namespace

struct StreamWriter::WriteRequest {
  uv_write_t req;
  std::string data;
  StreamWriter* writer;  // null once orphaned
};

void StreamWriter::Attach(uv_stream_t* stream) {
  CHECK(stream_ == nullptr) << "StreamWriter attached twice";
  stream_ = stream;
}

void StreamWriter::Detach() {
  if (scheduled_) {
    batcher_->Cancel(this);
    scheduled_ = false;
  }
  if (in_flight_) {
    in_flight_->writer = nullptr;
    in_flight_ = nullptr;
  }
  in_flight_bytes_ = 0;
  pending_.clear();
  stream_ = nullptr;
}

void StreamWriter::Append(std::string&& data) {
  // Taking the caller's buffer saves a copy only when ours is too small for the data;
  // otherwise ours (kept between writes) takes it, and nothing is allocated.
  if (pending_.empty() && data.size() > pending_.capacity()) {
    pending_ = std::move(data);
  } else {
    pending_.append(data);
  }
}

int StreamWriter::Flush() {
  if (batcher_ == nullptr) return FlushNow();
  if (!scheduled_ && stream_ != nullptr && in_flight_ == nullptr && !pending_.empty()) {
    scheduled_ = true;
    batcher_->Schedule(this);
  }
  return 0;
}

int StreamWriter::FlushImmediately() {
  if (scheduled_) {
    batcher_->Cancel(this);
    scheduled_ = false;
  }
  return FlushNow();
}

void StreamWriter::FlushScheduled() {
  scheduled_ = false;
  uint64_t before = bytes_written_;
  int rc = FlushNow();
  if (rc != 0) {
    listener_->OnWriteError(rc);
    return;
  }
  if (bytes_written_ != before) listener_->OnWritten();
}

int StreamWriter::FlushNow() {
  if (stream_ == nullptr || in_flight_ != nullptr || pending_.empty()) return 0;
  size_t offset = 0;
  uv_buf_t direct = uv_buf_init(pending_.data(), static_cast<unsigned>(pending_.size()));
  int n = uv_try_write(stream_, &direct, 1);
  if (n < 0 && n != UV_EAGAIN) return n;
  if (n > 0) {
    bytes_written_ += static_cast<uint64_t>(n);
    if (static_cast<size_t>(n) == pending_.size()) {
      // The buffer is kept for the next writes (no allocation per response), unless a
      // large write grew it: idle connections do not hold large buffers.
      if (pending_.capacity() > kKeptCapacity) {
        std::string().swap(pending_);
      } else {
        pending_.clear();
      }
      return 0;
    }
    offset = static_cast<size_t>(n);
  }
  auto* w = new WriteRequest{{}, std::move(pending_), this};
  pending_.clear();
  uv_buf_t buf = uv_buf_init(w->data.data() + offset,
                             static_cast<unsigned>(w->data.size() - offset));
  int rc = uv_write(&w->req, stream_, &buf, 1, &OnWriteDone);
  if (rc != 0) {
    delete w;
    return rc;
  }
  in_flight_ = w;
  in_flight_bytes_ = buf.len;
  return 0;
}

void StreamWriter::OnWriteDone(uv_write_t* req, int status) {
  auto* w = reinterpret_cast<WriteRequest*>(req);
  StreamWriter* self = w->writer;
  delete w;
  if (self == nullptr) return;  // orphaned: the owner may be gone
  self->in_flight_ = nullptr;
  if (status == UV_ECANCELED) {  // the stream closed under a still-attached writer
    self->in_flight_bytes_ = 0;
    return;
  }
  if (status < 0) {
    self->in_flight_bytes_ = 0;
    self->listener_->OnWriteError(status);
    return;
  }
  self->bytes_written_ += self->in_flight_bytes_;
  self->in_flight_bytes_ = 0;
  int rc = self->FlushNow();
  if (rc != 0) {
    self->listener_->OnWriteError(rc);
    return;
  }
  self->listener_->OnWritten();
}

}  // namespace rlb
