// ZkRegistration: the providers nodes and the live settings watch.
#include "zkworker/zk_registration.h"

#include <unistd.h>

#include <glog/logging.h>

#include "common/json.h"

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

ZkRegistration::ZkRegistration(uv_loop_t* loop, const WorkerOptions& options,
                               ResumeTracker* tracker)
    : session_(loop, options.zookeeper,
               static_cast<int>(options.zookeeper_session_timeout * 1000)),
      node_(NormalizeZkPath(options.path)),
      description_(options.description),
      app_version_(options.app_version),
      fallback_{options.history, options.max_skill_age},
      tracker_(tracker) {}

Status ZkRegistration::Start(const HostPort& bound) {
  Status s = session_.Start();
  if (!s.ok()) return s;
  std::string data = RegistrationData(getpid(), description_, app_version_);
  for (const auto& host : RegistrationHosts(bound.host)) {
    HostPort hp{host, bound.port};
    session_.RegisterEphemeral(node_ + "/providers/" + hp.ToString(), data);
  }
  session_.WatchData(node_, [this](const std::optional<std::string>& data) {
    ApplySettings(data);
  });
  return Status::OK();
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

void ZkRegistration::Unregister() { session_.UnregisterAll(); }

void ZkRegistration::Close() { session_.Close(); }

}  // namespace rlb::worker
