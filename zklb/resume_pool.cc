#include "zklb/resume_pool.h"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include <glog/logging.h>

#include "zklb/class_name.h"

namespace rlb::lb {

namespace {

// Python 2 prints never-sampled counters as the int they were initialised to.
std::string MbacklogStr(double mbacklog, double nbacklog) {
  if (nbacklog == 0) return std::to_string(static_cast<long long>(mbacklog));
  return PyFloatStr(mbacklog);
}

}  // namespace

ResumePool::ResumePool(const PoolSettings& settings, bool single_version, ClassLimits limits,
                       ClassPlacement placement)
    : PoolBase(single_version), limits_(limits), placement_(placement) {
  CHECK_GE(limits_.per_worker, 1u);
  CHECK_GE(limits_.total, limits_.per_worker);
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

  // The pool knows a long class by its stand-in (the LB normally sends that already).
  std::string bounded;
  if (request_class.size() > kMaxClassNameBytes) {
    bounded = BoundClassName(request_class);
    request_class = bounded;
  }

  PoolWorker* const head = lru_.front();
  const double max_backlog =
      std::max(settings_.variance * mbacklog_ / static_cast<double>(size()), 1.0);
  const double min_backlog = head->mbacklog_ + 1;  // the LRU head stands in for the minimum

  PoolWorker* best = nullptr;
  double best_score = 0;
  SkillRef best_skill;
  SkillRef head_skill = seen_.end();
  auto cls = skilled_.find(request_class);
  if (cls != skilled_.end()) {
    for (const SkillRef& skill : cls->second) {
      ++entries_scanned_;
      PoolWorker* const worker = skill->worker;
      if (worker == head) head_skill = skill;
      if (worker->mbacklog_ - min_backlog > max_backlog) continue;
      // The first outstanding request is not penalised.
      const double adjusted = worker->backlog_ > 1 ? skill->score / worker->backlog_ : skill->score;
      if (adjusted > best_score ||
          (best != nullptr && adjusted == best_score && worker->lru_seq_ < best->lru_seq_)) {
        best = worker;
        best_score = adjusted;
        best_skill = skill;
      }
    }
  }

  if (best == nullptr && placement_ == ClassPlacement::kHashRing) {
    // Every LB that knows these workers has the same ring; the first worker clockwise from
    // the class within the backlog bound takes it (the LRU head always is: margin -1).
    best = RingChoice(request_class, min_backlog, max_backlog);
    std::optional<SkillRef> own;  // skilled yet passed over (a zero score): keep its entry
    if (cls != skilled_.end()) {
      for (const SkillRef& skill : cls->second) {
        if (skill->worker == best) own = skill;
      }
    }
    if (own) {
      Touch(*own);
    } else {
      Assign(best, request_class);
    }
  } else if (best != nullptr) {
    Touch(best_skill);
  } else if (head_skill != seen_.end()) {
    // The head was skilled but excluded by its backlog; it is simply chosen.
    best = head;
    Touch(head_skill);
  } else {
    // Assign the class to the unskilled head.
    best = head;
    Assign(best, request_class);
  }

  PoolWorkerPtr chosen = CountGet(best);
  best->Decay(worker_decay_);
  dbacklog_ = dbacklog_ * decay_ + backlog_;
  nbacklog_ = nbacklog_ * decay_ + 1;
  mbacklog_ = dbacklog_ / nbacklog_;
  return chosen;
}

PoolWorker* ResumePool::RingChoice(std::string_view request_class, double min_backlog,
                                   double max_backlog) const {
  PoolWorker* w = ring_.Walk(request_class, lru_, [&](PoolWorker* p) {
    ++entries_scanned_;
    return p->mbacklog_ - min_backlog <= max_backlog;
  });
  CHECK(w != nullptr) << "no worker within the backlog bound: the LRU head always is";
  return w;
}

void ResumePool::Assign(PoolWorker* worker, std::string_view request_class) {
  // The only place Get creates state: room first, within the class limits.
  std::list<SkillRef>& mine = worker_seen_[worker];
  while (mine.size() >= limits_.per_worker) Evict(mine.front());
  while (seen_.size() >= limits_.total) Evict(seen_.begin());
  auto it = worker->resume_.try_emplace(std::string(request_class), settings_.unskilled_score).first;
  Index(worker, it->first, settings_.unskilled_score);
}

void ResumePool::Put(const PoolWorkerPtr& worker) {
  CountPut(worker.get());
  dbacklog_ = dbacklog_ * decay_ + backlog_;
  nbacklog_ = nbacklog_ * decay_ + 1;
  mbacklog_ = dbacklog_ / nbacklog_;
  worker->Decay(worker_decay_);
}

void ResumePool::Index(PoolWorker* worker, const std::string& name, double score) {
  auto cls = skilled_.try_emplace(name).first;
  seen_.push_back(Skill{worker, &cls->first, score, {}});
  SkillRef skill = std::prev(seen_.end());
  std::list<SkillRef>& mine = worker_seen_[worker];
  mine.push_back(skill);
  skill->in_worker = std::prev(mine.end());
  cls->second.push_back(skill);
}

void ResumePool::Touch(SkillRef skill) {
  seen_.splice(seen_.end(), seen_, skill);
  std::list<SkillRef>& mine = worker_seen_[skill->worker];
  mine.splice(mine.end(), mine, skill->in_worker);
}

void ResumePool::Evict(SkillRef skill) {
  PoolWorker* const worker = skill->worker;
  auto cls = skilled_.find(*skill->name);
  CHECK(cls != skilled_.end());
  worker->resume_.erase(cls->first);
  // An active worker's list stays, even empty: callers may hold a reference to it.
  worker_seen_.at(worker).erase(skill->in_worker);
  ClassEntry& entry = cls->second;
  entry.erase(std::find(entry.begin(), entry.end(), skill));
  seen_.erase(skill);
  if (entry.empty()) skilled_.erase(cls);
}

void ResumePool::UnindexResume(PoolWorker* worker) {
  auto mine = worker_seen_.find(worker);
  if (mine == worker_seen_.end()) return;
  for (const SkillRef& skill : mine->second) {
    auto cls = skilled_.find(*skill->name);
    ClassEntry& entry = cls->second;
    entry.erase(std::find(entry.begin(), entry.end(), skill));
    seen_.erase(skill);
    if (entry.empty()) skilled_.erase(cls);
  }
  worker_seen_.erase(mine);
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
    ring_.MarkDirty();
    UpdateDecay();
  }
  BoundResume(&resume, limits_.per_worker);
  worker->resume_ = std::move(resume);
  if (seen_.size() + worker->resume_.size() > limits_.total) {
    // Other workers' least recently seen entries make room. The new ones are seen now,
    // the best-scoring last, so that the worst of them would be the next to go.
    std::vector<Resume::const_iterator> order;
    order.reserve(worker->resume_.size());
    for (auto it = worker->resume_.cbegin(); it != worker->resume_.cend(); ++it) {
      order.push_back(it);
    }
    std::sort(order.begin(), order.end(), [](Resume::const_iterator a, Resume::const_iterator b) {
      return a->second != b->second ? a->second < b->second : a->first > b->first;
    });
    for (Resume::const_iterator it : order) {
      while (seen_.size() >= limits_.total) Evict(seen_.begin());
      Index(worker.get(), it->first, it->second);
    }
  } else {
    for (const auto& [rclass, score] : worker->resume_) Index(worker.get(), rclass, score);
  }
  LOG(INFO) << "new resume: " << worker->name();
}

void ResumePool::DoRemove(const PoolWorkerPtr& worker) {
  if (!worker->in_pool_) return;  // never added, or already removed
  UnindexResume(worker.get());
  lru_.Erase(worker.get());
  worker->in_pool_ = false;
  ring_.MarkDirty();
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
    for (const SkillRef& skill : skilled_.at(*rclass)) {
      entries.emplace_back(skill->score, skill->worker);
    }
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

std::unique_ptr<Pool> NewResumePool(const PoolSettings& settings, bool single_version,
                                    ClassPlacement placement) {
  return std::make_unique<ResumePool>(settings, single_version, ClassLimits{}, placement);
}

}  // namespace rlb::lb
