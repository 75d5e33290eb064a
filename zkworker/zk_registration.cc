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
  int history, max_skill_age;
  Status s = ParseWorkerSettingsJson(data ? *data : std::string(), &history, &max_skill_age);
  if (!s.ok()) {
    LOG(WARNING) << node_ << ": " << s.message() << "; settings unchanged";
    return;
  }
  tracker_->UpdateSettings(history, max_skill_age);
  LOG(INFO) << "settings: history=" << tracker_->history()
            << " max_skill_age=" << tracker_->max_skill_age();
}

void ZkRegistration::Unregister() { session_.UnregisterAll(); }

void ZkRegistration::Close() { session_.Close(); }

}  // namespace rlb::worker
