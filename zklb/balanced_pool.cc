// BalancedPool: capacity-aware résumé pool (docs/design.md, "The balanced pool").
#include "zklb/balanced_pool.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <utility>
#include <vector>

#include <glog/logging.h>

namespace rlb::lb {

BalancedPool::BalancedPool(const PoolSettings& settings, const BalancedParams& params,
                           bool single_version, PoolClock clock, ClassLimits limits)
    : PoolBase(single_version),
      settings_(settings),
      params_(params),
      clock_(std::move(clock)),
      limits_(limits) {
  CHECK_GE(limits_.per_worker, 1u);
  CHECK_GE(limits_.total, limits_.per_worker);
  CHECK_GE(params_.slack, 0);
  CHECK_GE(params_.min_backlog, 1);
  CHECK_GT(params_.rate_window, 0);
  CHECK_GE(params_.recruit_candidates, 1);
  CHECK(clock_ != nullptr);
}

double BalancedPool::AreaAt(const Meter& meter, int backlog, double now, double* decay) const {
  *decay = std::exp(-std::max(now - meter.last, 0.0) / params_.rate_window);
  // The exact decayed integral of a backlog that was constant since the last update.
  return meter.area * *decay + backlog * params_.rate_window * (1 - *decay);
}

void BalancedPool::Advance(PoolWorker* worker, Meter& meter, double now, int completed) {
  if (now > meter.last) {
    double f;
    meter.area = AreaAt(meter, worker->backlog_, now, &f);
    meter.done *= f;
  }
  meter.last = std::max(meter.last, now);
  meter.done += completed;
  if (!worker->in_pool_) return;
  // Once a worker has completed a request its speed counts; between events the ratio does
  // not change (numerator and denominator decay alike), so updating here is enough.
  if (meter.area > 0 && (meter.speed > 0 || meter.done >= 1)) {
    const double speed = meter.done / meter.area;
    if (meter.speed > 0) {
      measured_sum_ += speed - meter.speed;
    } else {
      measured_sum_ += speed;
      ++measured_count_;
    }
    meter.speed = speed;
  }
}

double BalancedPool::AverageBacklog(const PoolWorker& worker, double now) const {
  double f;
  return AreaAt(meters_.at(const_cast<PoolWorker*>(&worker)), worker.backlog_, now, &f) /
         params_.rate_window;
}

double BalancedPool::MeanSpeed() const {
  return measured_count_ > 0 ? measured_sum_ / measured_count_ : 1.0;
}

double BalancedPool::SpeedOf(const PoolWorker& worker) const {
  auto it = meters_.find(const_cast<PoolWorker*>(&worker));
  CHECK(it != meters_.end()) << worker.name() << " is not in the pool";
  return it->second.speed > 0 ? it->second.speed : MeanSpeed();
}

double BalancedPool::Share(const PoolWorker& worker, double mean_speed) const {
  return (active_backlog_ + 1.0) / static_cast<double>(size()) * (SpeedOf(worker) / mean_speed);
}

double BalancedPool::Bound(const PoolWorker& worker, double mean_speed) const {
  return std::max(params_.min_backlog, (1 + params_.slack) * Share(worker, mean_speed));
}

double BalancedPool::BoundOf(const PoolWorker& worker) const {
  return Bound(worker, MeanSpeed());
}

void BalancedPool::Candidates(std::string_view request_class, std::vector<PoolWorker*>* out) {
  out->clear();
  const size_t want = std::min<size_t>(static_cast<size_t>(params_.recruit_candidates), size());
  if (placement_ == ClassPlacement::kLeastRecentlyUsed) {
    for (const PoolWorkerPtr& w : lru_) {
      if (out->size() == want) break;
      out->push_back(w.get());
    }
    return;
  }
  ring_.Walk(request_class, lru_, [&](PoolWorker* w) {
    ++entries_scanned_;
    if (std::find(out->begin(), out->end(), w) == out->end()) out->push_back(w);
    return out->size() == want;
  });
}

PoolWorkerPtr BalancedPool::Get(std::string_view request_class) {
  entries_scanned_ = 0;
  if (lru_.empty()) return nullptr;
  const double now = clock_();
  const double mean_speed = MeanSpeed();

  // 1. The most senior skilled worker within its bound: load stays on the workers that
  // have held the class longest and spills down the line only as far as it must.
  // 1b. Else the shortest expected wait among the skilled workers within the recruiting
  // bound (1 + recruit_slack) x share: a cold worker's misses cost more than a short queue.
  PoolWorker* best = nullptr;
  int64_t best_since = 0;
  PoolWorker* quickest = nullptr;  // within the recruiting bound
  double quickest_wait = std::numeric_limits<double>::infinity();
  auto cls = skilled_.find(request_class);
  if (cls != skilled_.end()) {
    class_lru_.splice(class_lru_.end(), class_lru_, cls->second.lru);  // asked for now
    for (const auto& [worker, skill] : cls->second.holders) {
      ++entries_scanned_;
      if (!(skill.score > 0)) continue;
      const double share = Share(*worker, mean_speed);
      const double load = worker->backlog_ + 1;
      if (load > std::max(params_.min_backlog, (1 + params_.recruit_slack) * share)) continue;
      const double wait = load / SpeedOf(*worker);
      if (wait < quickest_wait ||
          (wait == quickest_wait && worker->lru_seq_ < quickest->lru_seq_)) {
        quickest = worker;
        quickest_wait = wait;
      }
      if (load > std::max(params_.min_backlog, (1 + params_.slack) * share)) continue;
      if (best == nullptr || skill.since < best_since) {
        best = worker;
        best_since = skill.since;
      }
    }
  }
  if (best == nullptr && quickest != nullptr && params_.takeover_below > 0) {
    // 1c. Every skilled worker is past its tight bound and the one that would take the
    // request has been busy on average: an under-used candidate (new, or left with too
    // little by a shift; from the LRU head, or the class's ring order) takes the class over
    // and becomes its most senior holder, so the class moves instead of splitting. Judged on
    // time-averaged backlogs, so the ordinary jitter of a balanced pool moves nothing.
    const double mean_load = static_cast<double>(active_backlog_) / static_cast<double>(size());
    const bool holder_busy =
        AverageBacklog(*quickest, now) > mean_load * SpeedOf(*quickest) / mean_speed;
    candidates_.clear();
    if (holder_busy) Candidates(request_class, &candidates_);
    for (PoolWorker* w : candidates_) {
      ++entries_scanned_;
      if (cls->second.holders.count(w)) continue;
      const double fair = mean_load * SpeedOf(*w) / mean_speed;
      if (AverageBacklog(*w, now) >= params_.takeover_below * fair) continue;
      if (w->backlog_ + 1 > std::max(1.0, fair)) continue;
      best = w;
      cls = Assign(request_class, best, --first_);
      break;
    }
  }
  if (best == nullptr) best = quickest;

  // 2. Spread the class: among the candidates within their bound, the least loaded
  // relative to it (new and idle workers sit at the LRU head).
  if (best == nullptr) {
    PoolWorker* recruit = nullptr;
    double recruit_wait = std::numeric_limits<double>::infinity();
    Candidates(request_class, &candidates_);
    for (PoolWorker* w : candidates_) {
      ++entries_scanned_;
      const double bound = Bound(*w, mean_speed);
      if (w->backlog_ + 1 > bound) continue;
      if (placement_ == ClassPlacement::kHashRing) {
        // The first within its bound in ring order, whatever this LB measured of speeds:
        // what makes independent LBs agree.
        recruit = w;
        break;
      }
      // The fewest in flight relative to its bound; ties (an idle pool) keep the one nearer
      // the head, so new classes go round the workers instead of piling on the one that
      // happened to measure fastest.
      const double wait = (w->backlog_ + 1) / bound;
      if (wait < recruit_wait) {  // strict: ties keep the one nearer the head
        recruit = w;
        recruit_wait = wait;
      }
    }
    // Everyone examined is at its bound: the LRU head (the class's first ring worker).
    best = recruit != nullptr ? recruit : candidates_.front();
    if (cls == skilled_.end() || !cls->second.holders.count(best)) {
      cls = Assign(request_class, best, ++since_);
    }
  }

  Advance(best, meters_.at(best), now, 0);
  PoolWorkerPtr chosen = CountGet(best);
  ++active_backlog_;
  best->mbacklog_ = best->backlog_;
  return chosen;
}

void BalancedPool::Put(const PoolWorkerPtr& worker) {
  PoolWorker* w = worker.get();
  CHECK(w != nullptr);
  if (auto it = meters_.find(w); it != meters_.end()) {
    Advance(w, it->second, clock_(), 1);
    --active_backlog_;
  }
  CountPut(w);
  w->mbacklog_ = w->backlog_;
}

BalancedPool::ClassMap::iterator BalancedPool::AddHolder(std::string_view request_class,
                                                         PoolWorker* worker, Skill skill) {
  auto cls = skilled_.find(request_class);
  if (cls == skilled_.end()) {
    cls = skilled_.try_emplace(std::string(request_class)).first;
    cls->second.lru = class_lru_.insert(class_lru_.end(), &cls->first);
  }
  auto [it, inserted] = cls->second.holders.try_emplace(worker, skill);
  if (inserted) {
    ++entries_;
  } else {
    it->second.score = skill.score;  // a holder keeps its seniority
  }
  return cls;
}

void BalancedPool::DropHolder(ClassMap::iterator cls, PoolWorker* worker) {
  if (cls->second.holders.erase(worker) == 0) return;
  --entries_;
  if (cls->second.holders.empty()) {
    class_lru_.erase(cls->second.lru);
    skilled_.erase(cls);
  }
}

void BalancedPool::EvictClass(ClassMap::iterator cls) {
  for (const auto& holder : cls->second.holders) holder.first->resume_.erase(cls->first);
  entries_ -= cls->second.holders.size();
  class_lru_.erase(cls->second.lru);
  skilled_.erase(cls);
}

void BalancedPool::EvictDownTo(size_t room, const std::string* keep) {
  while (entries_ > room && !class_lru_.empty()) {
    const std::string* oldest = class_lru_.front();
    if (oldest == keep) {
      if (class_lru_.size() == 1) return;
      class_lru_.splice(class_lru_.end(), class_lru_, class_lru_.begin());
      continue;
    }
    EvictClass(skilled_.find(*oldest));
  }
}

BalancedPool::ClassMap::iterator BalancedPool::Assign(std::string_view request_class,
                                                      PoolWorker* worker, int64_t since) {
  auto cls = skilled_.find(request_class);
  const std::string* keep = cls != skilled_.end() ? &cls->first : nullptr;
  if (worker->resume_.size() >= limits_.per_worker) {
    // Its least recently asked-for class: the first of the pool's LRU line it holds (at
    // most total - per_worker + 1 steps, and only for a worker this full).
    for (auto it = class_lru_.begin(); it != class_lru_.end(); ++it) {
      if (*it == keep || !worker->resume_.count(**it)) continue;
      worker->resume_.erase(**it);
      DropHolder(skilled_.find(**it), worker);
      break;
    }
  }
  EvictDownTo(limits_.total - 1, keep);
  worker->resume_.try_emplace(std::string(request_class), settings_.unskilled_score);
  return AddHolder(request_class, worker, Skill{settings_.unskilled_score, since});
}

void BalancedPool::UnindexResume(PoolWorker* worker) {
  for (const auto& entry : worker->resume_) {
    auto cls = skilled_.find(entry.first);
    if (cls != skilled_.end()) DropHolder(cls, worker);
  }
}

void BalancedPool::DoNewResume(const PoolWorkerPtr& worker, Resume resume) {
  PoolWorker* w = worker.get();
  BoundResume(&resume, limits_.per_worker);  // as the classic pool's résumés
  if (worker->in_pool_) {
    // Classes it keeps keep their seniority; the others are dropped.
    for (const auto& entry : worker->resume_) {
      if (resume.count(entry.first)) continue;
      auto cls = skilled_.find(entry.first);
      if (cls != skilled_.end()) DropHolder(cls, w);
    }
  } else {
    lru_.PushFront(worker);
    ring_.MarkDirty();
    worker->in_pool_ = true;
    worker->mbacklog_ = worker->backlog_;
    active_backlog_ += worker->backlog_;
    Meter meter;
    meter.last = clock_();
    meters_[worker.get()] = meter;  // a fresh measurement: the prior until it completes one
  }
  worker->resume_ = std::move(resume);
  for (const auto& [rclass, score] : worker->resume_) {
    auto cls = skilled_.find(rclass);
    if (cls != skilled_.end()) {
      if (auto h = cls->second.holders.find(w); h != cls->second.holders.end()) {
        h->second.score = score;  // kept: its seniority too
        continue;
      }
    }
    AddHolder(rclass, w, Skill{score, ++since_});
  }
  // Past the pool's total, the least recently asked-for classes go (this résumé's new
  // ones are the most recent, so others go first).
  EvictDownTo(limits_.total, nullptr);
  LOG(INFO) << "new resume: " << worker->name();
}

void BalancedPool::DoRemove(const PoolWorkerPtr& worker) {
  if (!worker->in_pool_) return;
  UnindexResume(worker.get());
  lru_.Erase(worker.get());
  ring_.MarkDirty();
  worker->in_pool_ = false;
  active_backlog_ -= worker->backlog_;
  auto it = meters_.find(worker.get());
  if (it != meters_.end()) {
    if (it->second.speed > 0) {
      measured_sum_ -= it->second.speed;
      --measured_count_;
    }
    meters_.erase(it);
  }
  if (measured_count_ == 0) measured_sum_ = 0;  // no rounding residue
}

PoolStatus BalancedPool::Status() const {
  return BaseStatus(backlog_, size() ? static_cast<double>(active_backlog_) /
                                           static_cast<double>(size())
                                     : std::numeric_limits<double>::quiet_NaN());
}

std::string BalancedPool::DebugString() const {
  std::string out = VersionLines();
  out += "Request classes:\n";
  std::vector<const std::string*> classes;
  for (const auto& entry : skilled_) classes.push_back(&entry.first);
  std::sort(classes.begin(), classes.end(),
            [](const std::string* a, const std::string* b) { return *a < *b; });
  for (const std::string* rclass : classes) {
    std::vector<std::pair<double, const PoolWorker*>> entries;
    for (const auto& [worker, skill] : skilled_.at(*rclass).holders) {
      entries.emplace_back(skill.score, worker);
    }
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first < b.first : a.second->name() < b.second->name();
    });
    out += "  " + *rclass + ": ";
    for (size_t i = 0; i < entries.size(); ++i) {
      if (i) out += ", ";
      out += entries[i].second->name() + "(" + PyFloatStr(entries[i].first) + "," +
             std::to_string(entries[i].second->backlog_) + ")";
    }
    out += "\n";
  }
  out += "Workers:";
  std::vector<const PoolWorker*> workers;
  for (const PoolWorkerPtr& w : lru_) workers.push_back(w.get());
  std::sort(workers.begin(), workers.end(),
            [](const PoolWorker* a, const PoolWorker* b) { return a->name() < b->name(); });
  for (const PoolWorker* w : workers) {
    out += "\n  " + w->name() + ": backlog " + std::to_string(w->backlog_) + " speed " +
           PyFloatStr(SpeedOf(*w)) + " bound " + PyFloatStr(BoundOf(*w));
  }
  return out;
}

std::unique_ptr<Pool> NewBalancedPool(const PoolSettings& settings, const BalancedParams& params,
                                      bool single_version, ClassLimits limits) {
  const auto start = std::chrono::steady_clock::now();
  return std::make_unique<BalancedPool>(
      settings, params, single_version,
      [start] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      },
      limits);
}

}  // namespace rlb::lb
