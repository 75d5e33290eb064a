// ZkRegistration: the providers nodes and the live settings watch.
#include "zkworker/zk_registration.h"

#include <unistd.h>


#include <glog/logging.h>

#include "common/json.h"
#include "common/text.h"

namespace rlb::worker {
std::string RegistrationData(int pid, const std::string& description,
                             const std::string& version) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("pid");
  w.Int(pid);
  if (!description.empty()) {
    w.Key("description");
    w.String(description.c_str());
  }
  if (!version.empty()) {
    w.Key("version");
    w.String(version.c_str());
  }
  w.EndObject();
  return buf.GetString();
}

HostPort RegisteredAddress(const std::optional<HostPort>& advertise, const HostPort& bound) {
  if (advertise) return {advertise->host, advertise->port != 0 ? advertise->port : bound.port};
  return {RegistrationHost(bound.host), bound.port};
}

ZkRegistration::ZkRegistration(uv_loop_t* loop, const WorkerOptions& options,
                               ResumeTracker* tracker)
    : loop_(loop),
      wait_seconds_(options.zookeeper_session_timeout + kRegistrationMargin),
      session_(loop, options.zookeeper,
               static_cast<int>(options.zookeeper_session_timeout * 1000)),
      node_(NormalizeZkPath(options.path)),
      description_(options.description),
      app_version_(options.app_version),
      advertise_(options.advertise),
      fallback_{options.history, options.max_skill_age},
      tracker_(tracker) {
  if (options.zookeeper_auth) session_.SetAuth(*options.zookeeper_auth);
}

ZkRegistration::~ZkRegistration() = default;

Status ZkRegistration::Start(const HostPort& bound, FailedFn failed) {
  Status s = session_.Start();
  if (!s.ok()) return s;
  failed_ = std::move(failed);
  registration_data_ = RegistrationData(getpid(), description_, app_version_);
  {  // one node (see the header)
    HostPort hp = RegisteredAddress(advertise_, bound);
    auto claim = std::make_unique<Claim>();
    claim->owner = this;
    claim->path = node_ + "/providers/" + hp.ToString();
    claim->address = hp.ToString();
    Claim* c = claim.get();
    claims_[claim->path] = std::move(claim);
    // Look before registering: a node already there is another session's (this process
    // has no earlier session), and is never deleted.
    c->watch_id = session_.WatchData(
        c->path, [this, c](const std::optional<std::string>& data) { OnProviderNode(c, data); });
  }
  session_.WatchData(node_, [this](const std::optional<std::string>& data) {
    ApplySettings(data);
  });
  return Status::OK();
}

void ZkRegistration::OnProviderNode(Claim* claim, const std::optional<std::string>& data) {
  // Once registered the node is ours (ZkSession keeps it); the watch stays until
  // Unregister() (removing it from inside its own callback is not allowed).
  if (claim->registered) return;
  if (!data) {
    if (claim->deadline.open()) {
      LOG(INFO) << claim->path << ": the node held by another session is gone; registering";
      claim->deadline.Close();
    }
    claim->registered = true;
    session_.RegisterEphemeral(claim->path, registration_data_,
                               [this, claim](const Status&, const std::string& holder_data) {
                                 // Taken after all (see the header): wait again.
                                 claim->registered = false;
                                 OnProviderNode(claim, holder_data);
                               });
    bool all = true;
    for (const auto& [path, c] : claims_) all = all && c->registered;
    if (all && on_registered_) {
      auto fn = std::move(on_registered_);
      on_registered_ = nullptr;
      fn();
    }
    return;
  }
  claim->holder = DescribeRegistrationHolder(*data);
  if (claim->deadline.open()) return;  // still waiting (its data changed)
  LOG(WARNING) << claim->path << " is held by another ZooKeeper session (" << claim->holder
               << "); waiting up to " << wait_seconds_
               << " s for it to go (the node of a crashed worker goes when its session "
                  "expires)";
  CHECK_EQ(claim->deadline.Init(loop_, claim), 0);  // fails only on invalid arguments
  CHECK_EQ(uv_timer_start(claim->deadline.get(), [](uv_timer_t* t) {
    auto* c = static_cast<Claim*>(t->data);
    c->deadline.Close();
    ZkRegistration* self = c->owner;
    if (self->failed_) {
      self->failed_(Status::Unavailable(
          "cannot register " + c->address + " in ZooKeeper: " + c->path +
          " is held by another live session (" + c->holder + ") after waiting " +
          SecondsText(self->wait_seconds_) + "; is another worker using this address?"));
    }
  }, static_cast<uint64_t>(wait_seconds_ * 1000), 0), 0);
}

void ZkRegistration::ApplySettings(const std::optional<std::string>& data) {
  std::string text = data ? *data : std::string();
  // The watch re-reads the node in every new session: only a change of the data is news.
  bool changed = text != last_settings_data_;
  last_settings_data_ = text;
  auto parsed = ParseWorkerSettingsJson(text, fallback_);
  if (!parsed.ok()) {
    LOG(WARNING) << node_ << ": " << parsed.status().message() << "; settings unchanged";
    return;
  }
  if (changed && !parsed->unknown_keys.empty()) {
    std::string keys;
    for (const auto& key : parsed->unknown_keys) keys += (keys.empty() ? "" : ", ") + key;
    LOG(WARNING) << node_ << ": ignoring unknown worker setting"
                 << (parsed->unknown_keys.size() == 1 ? "" : "s") << ": " << keys;
  }
  tracker_->UpdateSettings(parsed->settings.history, parsed->settings.max_skill_age);
  LOG(INFO) << "settings: history=" << tracker_->history()
            << " max_skill_age=" << tracker_->max_skill_age();
}

void ZkRegistration::Unregister() {
  // The claims stay until Close(): this may run inside a claim's own timer callback.
  for (auto& [path, claim] : claims_) {
    session_.Unwatch(claim->watch_id);
    claim->deadline.Close();
    claim->registered = true;  // nothing more to do for it
  }
  session_.UnregisterAll();
}

void ZkRegistration::Close() {
  claims_.clear();
  session_.Close();
}

}  // namespace rlb::worker
