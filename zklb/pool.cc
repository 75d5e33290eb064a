#include "zklb/pool.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

#include <glog/logging.h>

#include "common/text.h"
#include "zklb/class_name.h"

namespace rlb::lb {

PoolWorker::PoolWorker(std::string name, std::optional<std::string> version)
    : name_(std::move(name)), version_(std::move(version)), name_hash_(Fnv1a64(name_)) {}

void PoolWorker::Decay(double decay) {
  dbacklog_ = dbacklog_ * decay + backlog_;
  nbacklog_ = nbacklog_ * decay + 1;
  mbacklog_ = dbacklog_ / nbacklog_;
}

// ---------------------------------------------------------------------------------------
// Settings

namespace {

Status BadSetting(const std::string& key, const std::string& value, const char* why) {
  return Status::InvalidArgument("pool setting " + key + "=\"" + value + "\": " + why);
}

}  // namespace

Status ParsePoolSettings(const std::map<std::string, std::string>& raw, PoolSettings* out) {
  PoolSettings result;  // every absent key reverts to its default
  if (auto it = raw.find("variance"); it != raw.end()) {
    std::optional<double> v = ParseFiniteDouble(it->second);
    if (!v) return BadSetting(it->first, it->second, "not a finite number");
    if (!(*v > 0)) return BadSetting(it->first, it->second, "must be > 0");
    result.variance = *v;
  }
  if (auto it = raw.find("backlog_history"); it != raw.end()) {
    std::optional<double> v = ParseFiniteDouble(it->second);
    if (!v) return BadSetting(it->first, it->second, "not a finite number");
    double history = std::trunc(*v);  // Python int(6.2) == 6
    if (history < 1) return BadSetting(it->first, it->second, "must be >= 1");
    if (history > 1e9) return BadSetting(it->first, it->second, "too large");
    result.backlog_history = static_cast<int>(history);
  }
  if (auto it = raw.find("unskilled_score"); it != raw.end()) {
    std::optional<double> v = ParseFiniteDouble(it->second);
    if (!v) return BadSetting(it->first, it->second, "not a finite number");
    result.unskilled_score = *v;
  }
  *out = result;
  return Status::OK();
}

// ---------------------------------------------------------------------------------------
// Résumé bounds

void BoundResume(Resume* resume, size_t max_classes) {
  std::erase_if(*resume, [](const auto& entry) { return entry.first.size() > kMaxClassNameBytes; });
  if (resume->size() <= max_classes) return;
  std::vector<Resume::const_iterator> entries;
  entries.reserve(resume->size());
  for (auto it = resume->cbegin(); it != resume->cend(); ++it) entries.push_back(it);
  auto better = [](Resume::const_iterator a, Resume::const_iterator b) {
    return a->second != b->second ? a->second > b->second : a->first < b->first;
  };
  std::nth_element(entries.begin(), entries.begin() + static_cast<ptrdiff_t>(max_classes),
                   entries.end(), better);
  for (size_t i = max_classes; i < entries.size(); ++i) resume->erase(entries[i]);
}

// ---------------------------------------------------------------------------------------
// LruList

void LruList::PushFront(const PoolWorkerPtr& worker) {
  list_.push_front(worker);
  worker->lru_pos_ = list_.begin();
  worker->lru_seq_ = --head_seq_;
}

void LruList::MoveToBack(PoolWorker* worker) {
  list_.splice(list_.end(), list_, worker->lru_pos_);
  worker->lru_seq_ = ++tail_seq_;
}

void LruList::Erase(PoolWorker* worker) { list_.erase(worker->lru_pos_); }

// ---------------------------------------------------------------------------------------
// Formatting

std::string PyFloatStr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.12g", value);
  std::string s(buf);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

std::string VersionStr(const std::optional<std::string>& version) {
  return version ? *version : "None";
}

// ---------------------------------------------------------------------------------------
// PoolBase: single-version mode

size_t PoolBase::GroupSize(const std::optional<std::string>& version) const {
  auto it = by_version_.find(version);
  return it == by_version_.end() ? 0 : it->second.size();
}

void PoolBase::NewResume(const PoolWorkerPtr& worker, Resume resume) {
  CHECK(worker != nullptr);
  if (!single_version_) {
    DoNewResume(worker, std::move(resume));
    return;
  }
  by_version_[worker->version()].insert(worker);
  if (!has_active_version_) {
    has_active_version_ = true;
    active_version_ = worker->version();
    LOG(INFO) << "VERSION: " << VersionStr(active_version_);
  }
  if (worker->version() == active_version_) {
    // Joining the active group can never change the quorum.
    DoNewResume(worker, std::move(resume));
  } else {
    if (KeepsResumes()) {
      BoundResume(&resume, MaxClassesPerWorker());
      worker->resume_ = std::move(resume);
    }
    UpdateQuorum();
  }
}

void PoolBase::Remove(const PoolWorkerPtr& worker) {
  if (worker == nullptr) return;
  if (!single_version_) {
    DoRemove(worker);
    return;
  }
  PoolWorkerPtr keep = worker;  // the group may hold the last other reference
  auto it = by_version_.find(worker->version());
  if (it == by_version_.end() || it->second.erase(keep) == 0) return;  // never added
  if (it->second.empty()) by_version_.erase(it);
  if (has_active_version_ && keep->version() == active_version_) {
    DoRemove(keep);
    UpdateQuorum();
  }
  // An inactive worker's removal cannot change the quorum.
}

void PoolBase::UpdateQuorum() {
  if (!has_active_version_) return;
  const size_t active_size = GroupSize(active_version_);
  const std::optional<std::string>* best = nullptr;
  size_t best_size = 0;
  for (const auto& [version, group] : by_version_) {
    if (group.size() > best_size) {
      best = &version;
      best_size = group.size();
    }
  }
  if (best == nullptr || best_size <= active_size) return;  // ties keep the current version

  auto by_name = [](const PoolWorkerPtr& a, const PoolWorkerPtr& b) { return a->name() < b->name(); };
  if (auto old = by_version_.find(active_version_); old != by_version_.end()) {
    std::vector<PoolWorkerPtr> leaving(old->second.begin(), old->second.end());
    std::sort(leaving.begin(), leaving.end(), by_name);
    // In-flight requests of these workers continue; their counters are kept.
    for (const PoolWorkerPtr& w : leaving) DoRemove(w);
  }
  active_version_ = *best;
  LOG(INFO) << "VERSION: " << VersionStr(active_version_);
  const Group& group = by_version_.at(active_version_);
  std::vector<PoolWorkerPtr> joining(group.begin(), group.end());
  // Each is inserted at the LRU head: descending names leave the line in ascending order.
  std::sort(joining.begin(), joining.end(),
            [&by_name](const PoolWorkerPtr& a, const PoolWorkerPtr& b) { return by_name(b, a); });
  for (const PoolWorkerPtr& w : joining) {
    Resume resume = std::move(w->resume_);
    w->resume_.clear();
    DoNewResume(w, std::move(resume));
  }
}

std::string PoolBase::VersionLines() const {
  if (!single_version_) return "";
  std::string out = "Version: ";
  out += has_active_version_ ? VersionStr(active_version_) : "(none yet)";
  out += "\n";
  for (const auto& [version, group] : by_version_) {
    if (has_active_version_ && version == active_version_) continue;
    std::vector<std::string> names;
    for (const PoolWorkerPtr& w : group) names.push_back(w->name());
    std::sort(names.begin(), names.end());
    out += "  Inactive: " + VersionStr(version) + ": set([";
    for (size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
    out += "])\n";
  }
  return out;
}

PoolWorkerPtr PoolBase::CountGet(PoolWorker* worker) {
  lru_.MoveToBack(worker);
  ++worker->backlog_;
  ++backlog_;
  return *worker->lru_pos_;
}

void PoolBase::CountPut(PoolWorker* worker) {
  CHECK(worker != nullptr);
  CHECK_GT(backlog_, 0) << "Put() without a matching Get()";
  CHECK_GT(worker->backlog_, 0) << "Put() without a matching Get() for " << worker->name();
  --backlog_;
  --worker->backlog_;
}

PoolStatus PoolBase::BaseStatus(int backlog, double mean_backlog) const {
  PoolStatus status;
  status.backlog = backlog;
  status.mean_backlog = mean_backlog;
  for (const PoolWorkerPtr& w : lru_) {
    status.workers.push_back({w->name(), w->backlog_, w->mbacklog_, w->resume_.size()});
  }
  std::sort(status.workers.begin(), status.workers.end(),
            [](const PoolStatus::Worker& a, const PoolStatus::Worker& b) { return a.name < b.name; });
  status.single_version = single_version_;
  if (single_version_ && has_active_version_) status.active_version = active_version_;
  return status;
}

}  // namespace rlb::lb
