#include "zklb/resume_pool.h"

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include <glog/logging.h>

namespace rlb::lb {

namespace {

// Python 2 prints never-sampled counters as the int they were initialised to.
std::string MbacklogStr(double mbacklog, double nbacklog) {
  if (nbacklog == 0) return std::to_string(static_cast<long long>(mbacklog));
  return PyFloatStr(mbacklog);
}

}  // namespace

ResumePool::ResumePool(const PoolSettings& settings, bool single_version)
    : PoolBase(single_version) {
  UpdateSettings(settings);
}

void ResumePool::UpdateSettings(const PoolSettings& settings) {
  CHECK_GE(settings.backlog_history, 1);
  CHECK_GT(settings.variance, 0);
  settings_ = settings;
  worker_decay_ = 1.0 - 1.0 / (2.0 * settings_.backlog_history);
  if (decay_ == 0) decay_ = worker_decay_;  // as if one worker, until there is one
  UpdateDecay();
}

void ResumePool::UpdateDecay() {
  if (size() > 0) {
    decay_ = 1.0 - 1.0 / (2.0 * settings_.backlog_history * static_cast<double>(size()));
  }
}

PoolWorkerPtr ResumePool::Get(std::string_view request_class) {
  entries_scanned_ = 0;
  if (lru_.empty()) return nullptr;

  PoolWorker* const head = lru_.front();
  const double max_backlog =
      std::max(settings_.variance * mbacklog_ / static_cast<double>(size()), 1.0);
  const double min_backlog = head->mbacklog_ + 1;  // the LRU head stands in for the minimum

  PoolWorker* best = nullptr;
  double best_score = 0;
  auto cls = skilled_.find(request_class);
  if (cls != skilled_.end()) {
    for (const auto& [worker, score] : cls->second) {
      ++entries_scanned_;
      if (worker->mbacklog_ - min_backlog > max_backlog) continue;
      // The first outstanding request is not penalised.
      const double adjusted = worker->backlog_ > 1 ? score / worker->backlog_ : score;
      if (adjusted > best_score ||
          (best != nullptr && adjusted == best_score && worker->lru_seq_ < best->lru_seq_)) {
        best = worker;
        best_score = adjusted;
      }
    }
  }

  if (best == nullptr) {
    best = head;
    auto [it, inserted] = best->resume_.try_emplace(std::string(request_class),
                                                     settings_.unskilled_score);
    if (inserted) {
      // Assign the class to the unskilled head; this is the only place Get creates state.
      if (cls == skilled_.end()) cls = skilled_.try_emplace(it->first).first;
      cls->second[best] = settings_.unskilled_score;
    }
    // Otherwise the head was skilled but excluded by its backlog; it is simply chosen.
  }

  PoolWorkerPtr chosen = CountGet(best);
  best->Decay(worker_decay_);
  dbacklog_ = dbacklog_ * decay_ + backlog_;
  nbacklog_ = nbacklog_ * decay_ + 1;
  mbacklog_ = dbacklog_ / nbacklog_;
  return chosen;
}

void ResumePool::Put(const PoolWorkerPtr& worker) {
  CountPut(worker.get());
  dbacklog_ = dbacklog_ * decay_ + backlog_;
  nbacklog_ = nbacklog_ * decay_ + 1;
  mbacklog_ = dbacklog_ / nbacklog_;
  worker->Decay(worker_decay_);
}

void ResumePool::UnindexResume(PoolWorker* worker) {
  for (const auto& entry : worker->resume_) {
    auto cls = skilled_.find(entry.first);
    if (cls == skilled_.end()) continue;
    cls->second.erase(worker);
    if (cls->second.empty()) skilled_.erase(cls);
  }
}

void ResumePool::DoNewResume(const PoolWorkerPtr& worker, Resume resume) {
  if (worker->in_pool_) {
    UnindexResume(worker.get());  // including LB-assigned unskilled entries
  } else {
    // Keep existing counters (version flapping: docs/design.md, "Single-version mode";
    // test S2).
    if (worker->dbacklog_ == 0) worker->dbacklog_ = worker->backlog_;
    if (worker->mbacklog_ == 0) worker->mbacklog_ = worker->backlog_;
    lru_.PushFront(worker);
    worker->in_pool_ = true;
    UpdateDecay();
  }
  worker->resume_ = std::move(resume);
  for (const auto& [rclass, score] : worker->resume_) skilled_[rclass][worker.get()] = score;
  LOG(INFO) << "new resume: " << worker->name();
}

void ResumePool::DoRemove(const PoolWorkerPtr& worker) {
  if (!worker->in_pool_) return;  // never added, or already removed
  UnindexResume(worker.get());
  lru_.Erase(worker.get());
  worker->in_pool_ = false;
  UpdateDecay();  // unchanged when the pool becomes empty
}

PoolStatus ResumePool::Status() const {
  return BaseStatus(backlog_, mbacklog_);
}

std::string ResumePool::DebugString() const {
  std::string out = VersionLines();
  out += "Request classes:\n";
  std::vector<const std::string*> classes;
  for (const auto& entry : skilled_) classes.push_back(&entry.first);
  std::sort(classes.begin(), classes.end(),
            [](const std::string* a, const std::string* b) { return *a < *b; });
  for (const std::string* rclass : classes) {
    std::vector<std::pair<double, const PoolWorker*>> entries;
    for (const auto& [worker, score] : skilled_.at(*rclass)) entries.emplace_back(score, worker);
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first < b.first : a.second->name() < b.second->name();
    });
    out += "  " + *rclass + ": ";
    for (size_t i = 0; i < entries.size(); ++i) {
      const PoolWorker* w = entries[i].second;
      if (i) out += ", ";
      out += w->name() + "(" + PyFloatStr(entries[i].first) + "," +
             MbacklogStr(w->mbacklog_, w->nbacklog_) + ")";
    }
    out += "\n";
  }
  out += "Backlogs:\n";
  out += "  overall backlog: " + std::to_string(backlog_) +
         " Decayed: " + MbacklogStr(mbacklog_, nbacklog_) + " Avg: ";
  if (size() == 0) {
    out += "None";
  } else if (nbacklog_ == 0) {
    out += std::to_string(static_cast<long long>(mbacklog_) / static_cast<long long>(size()));
  } else {
    out += PyFloatStr(mbacklog_ / static_cast<double>(size()));
  }
  out += "\n";
  std::map<int, std::vector<std::string>> by_backlog;
  for (const PoolWorkerPtr& w : lru_) by_backlog[w->backlog_].push_back(w->name());
  for (auto& [n, names] : by_backlog) {
    std::sort(names.begin(), names.end());
    out += "  " + std::to_string(n) + ": [";
    for (size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
    out += "]\n";
  }
  if (!out.empty()) out.pop_back();  // no trailing newline, like repr
  return out;
}

std::unique_ptr<Pool> NewResumePool(const PoolSettings& settings, bool single_version) {
  return std::make_unique<ResumePool>(settings, single_version);
}

}  // namespace rlb::lb
