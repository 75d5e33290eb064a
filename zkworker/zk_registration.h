// ZkRegistration: the worker's presence in ZooKeeper (ZooKeeper mode). It registers one
// ephemeral node PATH/providers/HOST:PORT, the address load balancers should use
// (RegisteredAddress: --advertise, else the listening address, with the machine's primary
// address for a wildcard host), with the
// JSON data {"pid", "description"?, "version"?}, and applies PATH's JSON data (history,
// max_skill_age) to the résumé tracker live. A key missing there or null takes the value of
// the worker's own options (command line, ini file, else the default); unknown keys get one
// WARNING line each time the data changes.
//
// No takeover: the worker never deletes a node another session holds. When its address's
// node already exists (another worker registered with this address, or a crashed worker
// whose session has not expired yet) it waits, watching the node, for up to the session
// timeout plus kRegistrationMargin: a dead session's node goes by then and the worker
// registers; a node still there belongs to a live session, and the registration fails
// (the worker exits non-zero with one error line naming the address and the holder).
// The same wait follows a create that finds the node taken after all (another session
// created it between the look and the create, or while this worker's session was expired
// and is re-registering).
//
// Thread rules: loop thread only. The tracker must outlive this object.
#ifndef RESUMELB_ZKWORKER_ZK_REGISTRATION_H_
#define RESUMELB_ZKWORKER_ZK_REGISTRATION_H_

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/net_address.h"
#include "common/status.h"
#include "common/uv_handle.h"
#include "common/zk_session.h"
#include "zkworker/resume_tracker.h"
#include "zkworker/worker_options.h"

namespace rlb::worker {

// How much longer than its own session timeout the worker waits for a node of its address
// held by another session to go (ZooKeeper expires a session up to a tick late).
constexpr double kRegistrationMargin = kZkExpiryMarginSeconds;

class ZkRegistration {
 public:
  // The registration cannot be made (the address is held by a live session). Called on
  // the loop; the caller shuts the worker down.
  using FailedFn = std::function<void(const Status& error)>;

  // REQUIRES: options.zookeeper_mode (zookeeper and an absolute path are set).
  ZkRegistration(uv_loop_t* loop, const WorkerOptions& options, ResumeTracker* tracker);
  ZkRegistration(const ZkRegistration&) = delete;
  ZkRegistration& operator=(const ZkRegistration&) = delete;
  ~ZkRegistration();

  // Opens the session, registers `bound` (the address the worker listens on) as soon as
  // no other session holds its node, and starts watching the settings. `failed` runs when
  // a node stays held (see above).
  Status Start(const HostPort& bound, FailedFn failed);
  // `fn` runs (on the loop, once) when the worker's address has been registered:
  // a supervised worker tells its master then (zkworker/process_board.h).
  void set_on_registered(std::function<void()> fn) { on_registered_ = std::move(fn); }
  // Deletes the registrations now (SIGTERM: load balancers stop choosing this worker
  // before it drains).
  void Unregister();
  // Ends the session.
  void Close();

 private:
  // One address's node, from the first look until it is registered.
  struct Claim {
    ZkRegistration* owner;
    std::string path;
    std::string address;  // HOST:PORT, for the error
    int watch_id = 0;
    bool registered = false;
    std::string holder;                // what the node held by another session says
    UvHandle<uv_timer_t> deadline;     // open while waiting for that node to go
  };
  void OnProviderNode(Claim* claim, const std::optional<std::string>& data);
  void ApplySettings(const std::optional<std::string>& data);

  uv_loop_t* loop_;
  double wait_seconds_;  // session timeout + kRegistrationMargin
  FailedFn failed_;
  std::function<void()> on_registered_;
  std::string registration_data_;
  std::map<std::string, std::unique_ptr<Claim>> claims_;  // by node path
  ZkSession session_;
  std::string node_;         // PATH, normalized
  std::string description_;  // registered when not empty
  std::string app_version_;  // registered as "version" when not empty
  std::optional<HostPort> advertise_;
  WorkerSettings fallback_;  // the options' values: for keys ZooKeeper does not set
  std::string last_settings_data_;
  ResumeTracker* tracker_;
};

// The address a worker listening on `bound` registers: `advertise` when set (its port 0
// meaning the bound port), else `bound` with a wildcard host ("", 0.0.0.0, ::) replaced
// by the machine's primary address (RegistrationHost, common/net_address.h).
HostPort RegisteredAddress(const std::optional<HostPort>& advertise, const HostPort& bound);

// The registration's JSON data: {"pid": N, "description"?: ..., "version"?: ...}.
std::string RegistrationData(int pid, const std::string& description,
                             const std::string& version);

// Who holds a registration node (common/zk_session.h; the LB's nodes need it too).
using rlb::DescribeRegistrationHolder;

}  // namespace rlb::worker

#endif  // RESUMELB_ZKWORKER_ZK_REGISTRATION_H_
