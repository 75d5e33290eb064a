// ZkDiscovery: ZooKeeper watches feeding the LB's worker set and settings.
#include "zklb/zk_discovery.h"

#include <unistd.h>

#include <memory>
#include <set>

#include <glog/logging.h>

#include "common/json.h"

namespace rlb::lb {

ZkDiscovery::ZkDiscovery(uv_loop_t* loop, ZkSession* zk, LoadBalancer* lb, std::string path,
                         bool fetch_versions)
    : loop_(loop), zk_(zk), lb_(lb), path_(NormalizeZkPath(path)),
      fetch_versions_(fetch_versions),
      wait_seconds_(zk->session_timeout_ms() / 1000.0 + kZkExpiryMarginSeconds) {
  int rc = retry_timer_.Init(loop_, this);
  CHECK_EQ(rc, 0) << "uv_timer_init: " << uv_strerror(rc);
  for (const char* k : {"variance", "backlog_history", "unskilled_score"}) {
    setting_sources_[k] = "default";
  }
}

ZkDiscovery::~ZkDiscovery() { Stop(); }

void ZkDiscovery::Stop() {
  if (stopped_) return;
  stopped_ = true;
  retry_timer_.Close();
  for (auto& [path, claim] : claims_) claim->deadline.Close();
}

void ZkDiscovery::RetryIn(uint64_t ms, bool forget_workers_path) {
  if (stopped_) return;  // a late ZooKeeper answer during shutdown
  forget_workers_path_ = forget_workers_path;
  int rc = uv_timer_start(retry_timer_.get(), [](uv_timer_t* t) {
    auto* self = static_cast<ZkDiscovery*>(t->data);
    if (self->forget_workers_path_) self->workers_path_.clear();
    self->Resolve();
  }, ms, 0);
  CHECK_EQ(rc, 0) << "uv_timer_start: " << uv_strerror(rc);
}

void ZkDiscovery::Start() {
  zk_->WatchData(path_, [this](const std::optional<std::string>& data) { OnSettings(data); });
  Register();
  Resolve();
  // The other LBs registered here: with several, the pool places new classes so that all
  // agree (LoadBalancer::SetOtherBalancers).
  const std::string lbs = path_ + (path_ == "/" ? "" : "/") + "providers";
  zk_->WatchChildren(lbs, [this, lbs](const std::optional<std::vector<std::string>>& children) {
    size_t others = 0;
    for (const auto& child : children.value_or(std::vector<std::string>{})) {
      others += claims_.count(lbs + "/" + child) == 0;
    }
    lb_->SetOtherBalancers(others);
  });
}

void ZkDiscovery::Register() {
  registration_data_ = std::string("{\"pid\": ") + std::to_string(getpid()) + "}";
  const HostPort& addr = lb_->address();
  {  // one node: the address given, or the machine's primary one for a wildcard
    HostPort hp{RegistrationHost(addr.host), addr.port};
    auto claim = std::make_unique<Claim>();
    claim->owner = this;
    claim->path = path_ + (path_ == "/" ? "" : "/") + "providers/" + hp.ToString();
    Claim* c = claim.get();
    claims_[c->path] = std::move(claim);
    // Look before registering: a node already there is another session's (a crashed LB's
    // on this address, or a live one's) and is never deleted.
    c->watch_id = zk_->WatchData(
        c->path, [this, c](const std::optional<std::string>& data) { OnOwnNode(c, data); });
  }
  registered_ = true;
}

void ZkDiscovery::OnOwnNode(Claim* claim, const std::optional<std::string>& data) {
  // Once registered the node is ours (ZkSession keeps it); the watch stays until
  // Deregister() (removing it from inside its own callback is not allowed).
  if (claim->registered || !registered_) return;
  if (!data) {
    if (claim->waiting) {
      LOG(INFO) << claim->path << ": the node held by another session is gone; registering";
      claim->waiting = false;
      claim->deadline.Close();
    }
    claim->registered = true;
    zk_->RegisterEphemeral(claim->path, registration_data_,
                           [this, claim](const Status&, const std::string& holder_data) {
                             // Taken between the look and the create, or while this LB's
                             // session was expired: wait again.
                             claim->registered = false;
                             OnOwnNode(claim, holder_data);
                           });
    return;
  }
  claim->holder = DescribeRegistrationHolder(*data);
  if (claim->waiting) return;  // still waiting (its data changed)
  claim->waiting = true;
  if (registration_shared_) {
    LOG(INFO) << claim->path << " is held by another process of this group (" << claim->holder
              << "); registering when it goes";
    return;
  }
  LOG(WARNING) << claim->path << " is held by another ZooKeeper session (" << claim->holder
               << "); waiting up to " << wait_seconds_
               << " s for it to go (the node of a crashed load balancer goes when its "
                  "session expires)";
  if (stopped_) return;
  CHECK_EQ(claim->deadline.Init(loop_, claim), 0);  // fails only on invalid arguments
  CHECK_EQ(uv_timer_start(claim->deadline.get(), [](uv_timer_t* t) {
    auto* c = static_cast<Claim*>(t->data);
    c->deadline.Close();
    LOG(ERROR) << c->path << " is still held by another live ZooKeeper session ("
               << c->holder << ") after waiting " << c->owner->wait_seconds_
               << " s; is another load balancer using this address? Serving unregistered; "
                  "registering when the node goes";
  }, static_cast<uint64_t>(wait_seconds_ * 1000), 0), 0);
}

void ZkDiscovery::Deregister() {
  if (!registered_) return;
  registered_ = false;
  for (auto& [path, claim] : claims_) {
    zk_->Unwatch(claim->watch_id);
    claim->deadline.Close();
  }
  zk_->UnregisterAll();
}

void ZkDiscovery::Resolve() {
  std::string wanted = path_ + (path_ == "/" ? "" : "/") + "workers/providers";
  ResolveZkPath(zk_, wanted, [this, wanted](StatusOr<std::string> resolved) {
    if (stopped_) return;
    if (!resolved.ok()) {
      // Without a connection the failure says nothing about the path, and ZkSession
      // already warns (every 10 s) that ZooKeeper is not reachable.
      if (zk_->state() == ZkSession::State::kConnected) {
        LOG(WARNING) << "cannot resolve " << wanted << ": " << resolved.status().message()
                     << " (retrying)";
      } else {
        VLOG(1) << "cannot resolve " << wanted << ": " << resolved.status().message();
      }
      RetryIn(kRetryMs, /*forget_workers_path=*/false);
      return;
    }
    if (*resolved == workers_path_) return;
    if (children_watch_) zk_->Unwatch(children_watch_);
    UnwatchChildren();  // of the old path: the new path's children are read afresh
    workers_path_ = *resolved;
    LOG(INFO) << "watching workers at " << workers_path_;
    children_watch_ = zk_->WatchChildren(
        workers_path_,
        [this](const std::optional<std::vector<std::string>>& c) { OnChildren(c); });
  });
}

void ZkDiscovery::OnChildren(const std::optional<std::vector<std::string>>& children) {
  if (!children) {
    // The providers node went away (or was never created): keep the last known workers and
    // resolve the path again (links may have changed).
    LOG(WARNING) << workers_path_ << " does not exist; keeping the last known workers";
    RetryIn(kRetryMs, /*forget_workers_path=*/true);
    return;
  }
  if (!fetch_versions_) {
    std::map<std::string, std::optional<std::string>> workers;
    for (const auto& c : *children) workers[c] = std::nullopt;
    lb_->SetWorkers(workers);
    return;
  }
  // Versions live in each child's data: a child is read when it appears, then watched.
  std::set<std::string> now(children->begin(), children->end());
  for (auto it = children_.begin(); it != children_.end();) {
    if (now.count(it->first)) {
      ++it;
      continue;
    }
    zk_->Unwatch(it->second.watch_id);
    it = children_.erase(it);
  }
  for (const auto& child : now) {
    if (children_.count(child)) continue;
    Child& c = children_[child];
    c.watch_id = zk_->WatchData(workers_path_ + "/" + child,
                                [this, child](const std::optional<std::string>& data) {
                                  OnChildData(child, data);
                                });
  }
  PushWorkers();
}

void ZkDiscovery::OnChildData(const std::string& child, const std::optional<std::string>& data) {
  if (data) ++worker_node_reads_;  // a read that found the node (a deleted one is not read)
  auto it = children_.find(child);
  if (it == children_.end()) return;  // no longer a child (its watch is being removed)
  Child& c = it->second;
  c.read = true;
  // A child deleted between the listing and the read is left out until it is listed
  // again; the children watch removes it for good.
  c.exists = data.has_value();
  c.version = data ? ParseWorkerVersion(*data) : std::nullopt;
  VLOG(1) << "worker node " << child << (data ? " read" : " gone") << " ("
          << worker_node_reads_ << " worker node reads so far)";
  PushWorkers();
}

void ZkDiscovery::PushWorkers() {
  std::map<std::string, std::optional<std::string>> workers;
  // A child not read yet is left out until it is: a worker appears with its version (and
  // one that cannot be read, e.g. for its ACL, does not hold the others back).
  for (const auto& [name, c] : children_) {
    if (c.read && c.exists) workers[name] = c.version;
  }
  if (pushed_ && *pushed_ == workers) return;  // a new session re-read the same data
  pushed_ = workers;
  lb_->SetWorkers(workers);
}

void ZkDiscovery::UnwatchChildren() {
  for (auto& [name, c] : children_) zk_->Unwatch(c.watch_id);
  children_.clear();
}

std::optional<std::string> ParseWorkerVersion(std::string_view json) {
  rapidjson::Document doc;
  if (!ParseJsonObject(json, &doc)) return std::nullopt;
  const rapidjson::Value* version = FindJsonMember(doc, "version");
  if (!version) return std::nullopt;
  return JsonScalarText(*version);
}

namespace {

// "disabled": an array of HOST:PORT strings (a worker's provider node name).
Status ParseDisabledWorkers(const rapidjson::Value& value, std::set<std::string>* out) {
  if (!value.IsArray()) {
    return Status::InvalidArgument("disabled: not an array of HOST:PORT strings");
  }
  for (const auto& item : value.GetArray()) {
    if (!item.IsString()) {
      return Status::InvalidArgument("disabled: not an array of HOST:PORT strings");
    }
    std::string name(item.GetString(), item.GetStringLength());
    auto hp = ParseHostPort(name);
    if (!hp.ok()) return Status::InvalidArgument("disabled: " + hp.status().message());
    out->insert(std::move(name));
  }
  return Status::OK();
}

}  // namespace

StatusOr<ParsedLbSettings> ParseLbSettingsJson(std::string_view json) {
  static constexpr const char* kSettings[] = {"variance", "backlog_history", "unskilled_score"};
  ParsedLbSettings parsed;
  for (const char* name : kSettings) parsed.sources[name] = "default";
  std::map<std::string, std::string> raw;  // the usable values, as ParsePoolSettings takes
  if (!json.empty()) {
    rapidjson::Document doc;
    if (!ParseJsonObject(json, &doc)) return Status::InvalidArgument("data is not a JSON object");
    // An explicit iterator loop: clang's C++20 mode finds rapidjson's range-for operator!=
    // ambiguous (reversed operator==) and warns.
    for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
      const auto& member = *it;
      std::string key(member.name.GetString(), member.name.GetStringLength());
      if (key == "disabled") {
        // As for every key, the last one given counts.
        parsed.rejected.erase(key);
        parsed.disabled.clear();
        if (member.value.IsNull()) continue;
        Status s = ParseDisabledWorkers(member.value, &parsed.disabled);
        if (!s.ok()) {
          parsed.disabled.clear();
          parsed.rejected[key] = s.message();
        }
        continue;
      }
      if (parsed.sources.count(key) == 0) {
        constexpr std::string_view kLink = " ->";  // a zc.zk symbolic link, not a setting
        bool link = key.size() > kLink.size() &&
                    std::string_view(key).substr(key.size() - kLink.size()) == kLink;
        if (!link) parsed.unknown_keys.push_back(key);
        continue;
      }
      // A key given twice: the last one counts, as in Python's json and zc.zk (an earlier
      // value or rejection of the same key is forgotten).
      parsed.rejected.erase(key);
      raw.erase(key);
      parsed.sources[key] = "default";
      if (member.value.IsNull()) continue;  // null: the default, as when the key is missing
      std::optional<std::string> text = JsonScalarText(member.value);
      if (!text) {
        rapidjson::StringBuffer shown;
        JsonWriter writer(shown);
        member.value.Accept(writer);
        parsed.rejected[key] =
            "pool setting " + key + "=" + shown.GetString() + ": not a number";
        continue;
      }
      PoolSettings one;
      Status s = ParsePoolSettings({{key, *text}}, &one);
      if (!s.ok()) {
        parsed.rejected[key] = s.message();
        continue;
      }
      raw[key] = *text;
      parsed.sources[key] = "zookeeper";
    }
  }
  // Each value passed on its own: together they pass too.
  CHECK(ParsePoolSettings(raw, &parsed.settings).ok());
  return parsed;
}

void ZkDiscovery::OnSettings(const std::optional<std::string>& data) {
  std::string text = data ? *data : std::string();
  // The watch re-reads the node in every new session: only a change of the data is news.
  bool changed = text != last_settings_data_;
  last_settings_data_ = text;
  auto parsed = ParseLbSettingsJson(text);
  if (!parsed.ok()) {
    rejected_settings_ = {{path_, std::string(parsed.status().message())}};
    LOG(WARNING) << path_ << ": " << parsed.status().message() << "; settings unchanged";
    return;
  }
  if (changed && !parsed->unknown_keys.empty()) {
    std::string keys;
    for (const auto& key : parsed->unknown_keys) keys += (keys.empty() ? "" : ", ") + key;
    LOG(WARNING) << path_ << ": ignoring unknown load balancer setting"
                 << (parsed->unknown_keys.size() == 1 ? "" : "s") << ": " << keys;
  }
  if (!parsed->rejected.empty()) {
    std::string reasons;
    for (const auto& [key, reason] : parsed->rejected) {
      reasons += (reasons.empty() ? "" : "; ") + reason;
    }
    rejected_settings_ = std::move(parsed->rejected);
    LOG(WARNING) << path_ << ": " << reasons << "; settings unchanged";
    return;
  }
  rejected_settings_.clear();
  setting_sources_ = std::move(parsed->sources);
  const PoolSettings& settings = parsed->settings;
  lb_->UpdateSettings(settings);
  LOG(INFO) << "settings: variance=" << settings.variance
            << " backlog_history=" << settings.backlog_history
            << " unskilled_score=" << settings.unskilled_score;
  if (parsed->disabled != disabled_) {
    disabled_ = std::move(parsed->disabled);
    std::string names;
    for (const auto& name : disabled_) names += (names.empty() ? "" : " ") + name;
    LOG(INFO) << "disabled workers: " << (names.empty() ? "none" : names);
    lb_->SetDisabled(disabled_);
  }
}

LbStatusSnapshot::ZooKeeper ZkDiscovery::StatusSnapshot() const {
  LbStatusSnapshot::ZooKeeper out;
  out.state = zk_->StateName();
  out.hosts = zk_->hosts();
  out.sessions = zk_->sessions();
  out.path = path_;
  if (!workers_path_.empty()) out.workers_path = workers_path_;
  out.variance_source = setting_sources_.at("variance");
  out.backlog_history_source = setting_sources_.at("backlog_history");
  out.unskilled_score_source = setting_sources_.at("unskilled_score");
  out.rejected_settings = rejected_settings_;
  out.disabled.assign(disabled_.begin(), disabled_.end());
  out.worker_node_reads = worker_node_reads_;
  return out;
}

}  // namespace rlb::lb
