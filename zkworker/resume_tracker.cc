// ResumeTracker implementation and the JSON résumé file.
#include "zkworker/resume_tracker.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include <glog/logging.h>

#include "common/json.h"

namespace rlb::worker {

ResumeTracker::ResumeTracker(int history, int max_skill_age, size_t max_class_bytes)
    : max_class_bytes_(std::max<size_t>(max_class_bytes, 1)) {
  UpdateSettings(history, max_skill_age);
}

void ResumeTracker::UpdateSettings(int history, int max_skill_age) {
  std::lock_guard<std::mutex> lock(mu_);
  history_ = std::max(1, history);
  // 10 x history does not fit an int for history over 214,748,364 (settings allow up to
  // 10^9): such a max_skill_age means "about never" either way, so clamp it.
  max_skill_age_ = max_skill_age > 0
                       ? max_skill_age
                       : static_cast<int>(std::min<int64_t>(int64_t{10} * history_, INT_MAX));
  decay_ = 1.0 - 1.0 / history_;
}

int ResumeTracker::history() const { return ReadLocked(history_); }
int ResumeTracker::max_skill_age() const { return ReadLocked(max_skill_age_); }
double ResumeTracker::decay() const { return ReadLocked(decay_); }
uint64_t ResumeTracker::generation() const { return ReadLocked(generation_); }
size_t ResumeTracker::class_bytes() const { return ReadLocked(class_bytes_); }
uint64_t ResumeTracker::evicted() const { return ReadLocked(evicted_); }

void ResumeTracker::EvictOldest(size_t target) {
  if (class_bytes_ <= target) return;
  // Generations in ascending order; drop from the oldest until the names fit. Sorting
  // every class is O(n log n), but it frees a quarter of the bound each time.
  // (Erasing one element leaves the other iterators valid.)
  using Entry = decltype(stats_)::iterator;
  std::vector<Entry> by_age;
  by_age.reserve(stats_.size());
  for (auto it = stats_.begin(); it != stats_.end(); ++it) by_age.push_back(it);
  std::sort(by_age.begin(), by_age.end(), [](const Entry& a, const Entry& b) {
    return a->second.generation < b->second.generation;
  });
  size_t dropped = 0;
  for (Entry it : by_age) {
    if (class_bytes_ <= target) break;
    class_bytes_ -= it->first.size();
    stats_.erase(it);
    ++dropped;
  }
  evicted_ += dropped;
  // Rare (each time frees a quarter of the bound), and worth a look: a client is probably
  // inventing request classes (see docs/security.md).
  LOG(WARNING) << "résumé holds over " << max_class_bytes_ << " bytes of request class names; "
               << "dropped the " << dropped << " least recently seen classes ("
               << evicted_ << " so far)";
}

void ResumeTracker::Load(const std::map<std::string, double>& saved) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [cls, score] : saved) {
    if (!(score > 0) || !std::isfinite(score)) continue;
    double weight = history_;
    auto [it, added] = stats_.insert_or_assign(cls, ClassStats{generation_, weight / score,
                                                               weight, score});
    if (added) class_bytes_ += cls.size();
  }
  EvictOldest(max_class_bytes_);
}

bool ResumeTracker::Record(const std::string& request_class, double elapsed) {
  std::lock_guard<std::mutex> lock(mu_);
  elapsed = std::max(elapsed, 1e-9);
  uint64_t generation = generation_ + 1;
  auto it = stats_.find(request_class);
  if (it == stats_.end()) {
    if (class_bytes_ + request_class.size() > max_class_bytes_) {
      EvictOldest(max_class_bytes_ - std::min(max_class_bytes_, max_class_bytes_ / 4 +
                                                                   request_class.size()));
    }
    it = stats_.emplace(request_class, ClassStats{generation, 0.0, 0.0}).first;
    class_bytes_ += request_class.size();
  }
  ClassStats& s = it->second;
  double f = std::pow(decay_, static_cast<double>(generation - s.generation));
  s.time = s.time * f + elapsed;
  s.count = s.count * f + 1;
  s.generation = generation;
  s.loaded = 0;
  generation_ = generation;
  if (generation % static_cast<uint64_t>(history_) != 0) return false;
  // Prune classes unseen for more than max_skill_age requests.
  if (generation > static_cast<uint64_t>(max_skill_age_)) {
    uint64_t min_gen = generation - max_skill_age_;
    std::erase_if(stats_, [this, min_gen](const auto& kv) {
      if (kv.second.generation >= min_gen) return false;
      class_bytes_ -= kv.first.size();
      return true;
    });
  }
  return true;
}

std::optional<double> ResumeTracker::Score(const ClassStats& stats) {
  if (stats.loaded > 0) return stats.loaded;
  if (stats.time > 0) return stats.count / stats.time;
  return std::nullopt;
}

std::map<std::string, double> ResumeTracker::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, double> out;
  for (const auto& [cls, s] : stats_) {
    if (auto score = Score(s)) out[cls] = *score;
  }
  return out;
}

size_t ResumeTracker::classes() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [cls, s] : stats_) n += Score(s) ? 1 : 0;
  return n;
}

proto::ResumeEntries ResumeTracker::Entries() const {
  auto snap = Snapshot();
  proto::ResumeEntries entries;
  entries.reserve(snap.size());
  // A RESUME frame over the protocol's limits is malformed: every LB would drop the
  // connection, and again on each reconnect (the résumé is sent at once), so the worker
  // would leave every pool for good. Clients choose request classes (the Host header by
  // default): a few thousand requests with distinct 4 KiB Hosts would do it. So: classes
  // over kMaxClassBytes (an old résumé file) are left out, and if the rest does not fit
  // one frame, the best-scoring classes are kept.
  size_t bytes = 0;
  for (auto& [cls, score] : snap) {
    if (cls.size() > proto::kMaxClassBytes) continue;
    bytes += 4 + cls.size() + 8;  // bytes + f64
    entries.emplace_back(cls, score);
  }
  const size_t budget = proto::kMaxPayload - 1 - 4;  // kind byte, entry count
  if (bytes <= budget && entries.size() <= proto::kMaxResumeEntries) return entries;
  std::stable_sort(entries.begin(), entries.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  size_t n = 0;
  bytes = 0;
  while (n < entries.size() && n < proto::kMaxResumeEntries &&
         bytes + 4 + entries[n].first.size() + 8 <= budget) {
    bytes += 4 + entries[n].first.size() + 8;
    ++n;
  }
  entries.resize(n);
  return entries;
}

StatusOr<ParsedWorkerSettings> ParseWorkerSettingsJson(std::string_view json,
                                                       const WorkerSettings& fallback) {
  ParsedWorkerSettings parsed;
  parsed.settings = fallback;
  if (json.empty()) return parsed;
  rapidjson::Document doc;
  if (!ParseJsonObject(json, &doc)) return Status::InvalidArgument("data is not a JSON object");
  for (const auto& member : doc.GetObject()) {
    std::string_view key(member.name.GetString(), member.name.GetStringLength());
    int* out = key == "history"         ? &parsed.settings.history
               : key == "max_skill_age" ? &parsed.settings.max_skill_age
                                        : nullptr;
    if (out == nullptr) {
      constexpr std::string_view kLink = " ->";  // a zc.zk symbolic link, not a setting
      bool link = key.size() > kLink.size() && key.substr(key.size() - kLink.size()) == kLink;
      if (!link) parsed.unknown_keys.emplace_back(key);
      continue;
    }
    if (member.value.IsNull()) continue;  // null: the fallback, as when the key is missing
    double n = JsonNumber(member.value).value_or(-1);
    if (!(n >= 1 && n <= 1e9)) {
      return Status::InvalidArgument(std::string(key) + " must be a number from 1 to 1e9");
    }
    *out = static_cast<int>(n);  // 6.2 -> 6, as the original's int()
  }
  return parsed;
}

Status LoadResumeFile(const std::string& path, std::map<std::string, double>* out) {
  out->clear();
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return Status::OK();
    return Status::IOError("cannot read resume file " + path + ": " + std::strerror(errno));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  rapidjson::Document doc;
  if (!ParseJsonObject(text, &doc)) {
    return Status::Corruption("resume file " + path + " is not a JSON object");
  }
  for (auto& m : doc.GetObject()) {
    if (!m.value.IsNumber()) {
      out->clear();
      return Status::Corruption("resume file " + path + ": score of '" +
                                std::string(m.name.GetString(), m.name.GetStringLength()) +
                                "' is not a number");
    }
    (*out)[std::string(m.name.GetString(), m.name.GetStringLength())] = m.value.GetDouble();
  }
  return Status::OK();
}

Status SaveResumeFile(const std::string& path, const std::map<std::string, double>& resume) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  for (const auto& [cls, score] : resume) {
    w.Key(cls.data(), static_cast<rapidjson::SizeType>(cls.size()));
    w.Double(score);
  }
  w.EndObject();
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError("writing resume file " + tmp + ": " + std::strerror(errno));
  const char* p = buf.GetString();
  size_t left = buf.GetSize();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Status::IOError("writing resume file " + tmp + ": " + std::strerror(err));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return Status::IOError("writing resume file " + tmp + ": " + std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Status::IOError("renaming resume file to " + path + ": " + std::strerror(err));
  }
  return Status::OK();
}

}  // namespace rlb::worker
