// WriteBatcher: one prepare handle, a list of writers with something to write.
#include "common/write_batcher.h"

#include "common/stream_writer.h"

namespace rlb {

WriteBatcher::WriteBatcher(uv_loop_t* loop) {
  CHECK_EQ(prepare_.Init(loop, this), 0);
  CHECK_EQ(uv_prepare_start(prepare_.get(),
                            [](uv_prepare_t* h) {
                              if (h->data) static_cast<WriteBatcher*>(h->data)->FlushAll();
                            }),
           0);
  uv_unref(prepare_.handle());  // the streams decide whether the loop runs
}

void WriteBatcher::Schedule(StreamWriter* writer) {
  writer->batch_index_ = scheduled_.size();
  scheduled_.push_back(writer);
}

void WriteBatcher::Cancel(StreamWriter* writer) {
  if (writer->batch_index_ < scheduled_.size() && scheduled_[writer->batch_index_] == writer) {
    scheduled_[writer->batch_index_] = nullptr;
  }
}

void WriteBatcher::FlushAll() {
  if (scheduled_.empty()) return;
  // The two lists trade places each pass and keep their capacity: no allocation per turn.
  // (A nested FlushAll finds spare_ empty and simply starts a list of its own.)
  std::vector<StreamWriter*> batch;
  batch.swap(spare_);
  while (!scheduled_.empty()) {
    batch.swap(scheduled_);
    for (StreamWriter* w : batch) {
      if (w != nullptr) w->FlushScheduled();  // may schedule writers again (next pass)
    }
    batch.clear();
  }
  spare_.swap(batch);
}

void WriteBatcher::Close() {
  FlushAll();
  prepare_.Close();
}

}  // namespace rlb
