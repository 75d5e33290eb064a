#include "zklb/classless_pool.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <vector>

#include <glog/logging.h>

namespace rlb::lb {

PoolWorkerPtr ClasslessPool::Get(std::string_view /*request_class*/) {
  if (lru_.empty()) return nullptr;
  PoolWorker* best = nullptr;
  for (const PoolWorkerPtr& w : lru_) {  // head first, so ties keep the LRU-earlier one
    if (best == nullptr || w->backlog_ < best->backlog_) {
      best = w.get();
      if (best->backlog_ == 0) break;  // cannot be beaten
    }
  }
  PoolWorkerPtr chosen = CountGet(best);
  best->mbacklog_ = best->backlog_;
  return chosen;
}

void ClasslessPool::Put(const PoolWorkerPtr& worker) {
  CountPut(worker.get());
  worker->mbacklog_ = worker->backlog_;
}

void ClasslessPool::DoNewResume(const PoolWorkerPtr& worker, Resume /*resume*/) {
  if (!worker->in_pool_) {
    // The backlog is kept: a re-added worker may still have requests in flight.
    worker->mbacklog_ = worker->backlog_;
    lru_.PushFront(worker);
    worker->in_pool_ = true;
  }
  LOG(INFO) << "new resume: " << worker->name();
}

void ClasslessPool::DoRemove(const PoolWorkerPtr& worker) {
  if (!worker->in_pool_) return;
  lru_.Erase(worker.get());
  worker->in_pool_ = false;
}

PoolStatus ClasslessPool::Status() const {
  return BaseStatus(backlog_, size() ? static_cast<double>(backlog_) / static_cast<double>(size())
                                     : std::numeric_limits<double>::quiet_NaN());
}

std::string ClasslessPool::DebugString() const {
  std::string out = VersionLines();
  out += "Backlogs:\n  overall backlog: " + std::to_string(backlog_) + " Avg: ";
  out += size() ? PyFloatStr(static_cast<double>(backlog_) / static_cast<double>(size())) : "None";
  out += "\n";
  std::map<int, std::vector<std::string>> by_backlog;
  for (const PoolWorkerPtr& w : lru_) by_backlog[w->backlog_].push_back(w->name());
  for (auto& [n, names] : by_backlog) {
    std::sort(names.begin(), names.end());
    out += "  " + std::to_string(n) + ": [";
    for (size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
    out += "]\n";
  }
  out.pop_back();
  return out;
}

std::unique_ptr<Pool> NewClasslessPool(bool single_version) {
  return std::make_unique<ClasslessPool>(single_version);
}

}  // namespace rlb::lb
