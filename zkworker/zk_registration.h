// ZkRegistration: the worker's presence in ZooKeeper (ZooKeeper mode). It registers an
// ephemeral node PATH/providers/HOST:PORT per address of the listening socket, with the
// JSON data {"pid", "description"?, "version"?}, and applies PATH's JSON data (history,
// max_skill_age) to the résumé tracker live. A key missing there or null takes the value of
// the worker's own options (command line, ini file, else the default); unknown keys get one
// WARNING line each time the data changes.
//
// Thread rules: loop thread only. The tracker must outlive this object.
#ifndef RESUMELB_ZKWORKER_ZK_REGISTRATION_H_
#define RESUMELB_ZKWORKER_ZK_REGISTRATION_H_

#include <uv.h>

#include <string>

#include "common/net_address.h"
#include "common/status.h"
#include "common/zk_session.h"
#include "zkworker/resume_tracker.h"
#include "zkworker/worker_options.h"

namespace rlb::worker {

class ZkRegistration {
 public:
  // REQUIRES: options.zookeeper_mode (zookeeper and an absolute path are set).
  ZkRegistration(uv_loop_t* loop, const WorkerOptions& options, ResumeTracker* tracker);
  ZkRegistration(const ZkRegistration&) = delete;
  ZkRegistration& operator=(const ZkRegistration&) = delete;

  // Opens the session, registers `bound` (the address the worker listens on) and starts
  // watching the settings.
  Status Start(const HostPort& bound);
  // Deletes the registrations now (SIGTERM: load balancers stop choosing this worker
  // before it drains).
  void Unregister();
  // Ends the session.
  void Close();

 private:
  void ApplySettings(const std::optional<std::string>& data);

  ZkSession session_;
  std::string node_;         // PATH, normalized
  std::string description_;  // registered when not empty
  std::string app_version_;  // registered as "version" when not empty
  WorkerSettings fallback_;  // the options' values: for keys ZooKeeper does not set
  std::string last_settings_data_;
  ResumeTracker* tracker_;
};

// The registration's JSON data: {"pid": N, "description"?: ..., "version"?: ...}.
std::string RegistrationData(int pid, const std::string& description,
                             const std::string& version);

}  // namespace rlb::worker

#endif  // RESUMELB_ZKWORKER_ZK_REGISTRATION_H_
