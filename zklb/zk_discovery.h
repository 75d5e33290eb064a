// ZkDiscovery: what makes a LoadBalancer ZooKeeper-native (zkresumelb).
//
// It resolves PATH/workers/providers (following zc.zk symbolic links), watches its
// children and hands the set of worker addresses (with their versions, read from each
// child's JSON data when single-version mode or a non-default pool needs them) to the LB;
// watches PATH's JSON data for the pool settings and the disabled workers (see
// ParseLbSettingsJson); and registers the LB's own HTTP address as an ephemeral
// PATH/providers/HOST:PORT.
// A child's data is read once when the child appears and again only when that child's
// own data changes (a data watch per child), never every child on every membership
// change: at 1,000 workers a worker joining costs one read, not 1,000. A new session
// re-arms every watch, and so reads every child once more.
// With ZooKeeper unreachable or the session lost, the LB keeps serving with the last known
// workers; on a new session every watch and registration is re-created.
//
// No registration takeover (as zkworker's): a node of the LB's address held by another
// session is never deleted. The LB waits, watching it, and registers when it goes: a
// crashed LB's node goes when its session expires (within the session timeout), so an LB
// restarted at once registers within that time. Still there after the session timeout
// plus kZkExpiryMarginSeconds, the node belongs to a live session: one ERROR line names
// it, and the LB keeps serving (unregistered) and keeps waiting. A re-registration in a
// new session follows the same rule.
//
// Thread rules: loop thread only (ZkSession delivers everything there).
#ifndef RESUMELB_ZKLB_ZK_DISCOVERY_H_
#define RESUMELB_ZKLB_ZK_DISCOVERY_H_

#include <uv.h>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/uv_handle.h"
#include "common/zk_session.h"
#include "status/lb_status.h"
#include "zklb/load_balancer.h"

namespace rlb::lb {

// What the LB's settings node says (ParseLbSettingsJson).
struct ParsedLbSettings {
  PoolSettings settings;  // the node's values; the defaults for keys missing or null
  std::map<std::string, std::string> sources;  // each setting: "zookeeper" or "default"
  // Keys that are not LB settings, in the node's order (the caller warns). zc.zk link
  // properties ("NAME ->") are not settings and never listed.
  std::vector<std::string> unknown_keys;
  // Settings present with a value that cannot be used: setting -> the reason. When any is
  // rejected the caller keeps the settings in force: the data applies as a whole or not
  // at all.
  std::map<std::string, std::string> rejected;
  // "disabled": the worker addresses (HOST:PORT, as their provider nodes are named) every
  // LB takes out of its pool; empty when the key is missing or null.
  std::set<std::string> disabled;
};

// Parses the LB settings in PATH's JSON data: variance, backlog_history and
// unskilled_score, numbers or numeric strings (ParsePoolSettings' coercion and limits);
// disabled, an array of HOST:PORT strings (anything else is rejected).
// A key missing or null is its default (PoolSettings{}: 1.0, 9, 1.0; no worker disabled).
// Empty data means {}.
// InvalidArgument only when the data is not a JSON object. Pure.
StatusOr<ParsedLbSettings> ParseLbSettingsJson(std::string_view json);

// The version in a worker provider node's JSON data ({"version": "2"} or a number);
// nullopt when the data is not a JSON object or has no usable "version".
std::optional<std::string> ParseWorkerVersion(std::string_view json);

class ZkDiscovery {
 public:
  ZkDiscovery(uv_loop_t* loop, ZkSession* zk, LoadBalancer* lb, std::string path,
              bool fetch_versions);
  ~ZkDiscovery();
  void Start();
  // Closes the retry timer (before the loop ends).
  void Stop();
  // Deregisters the LB (SIGTERM: before draining).
  void Deregister();
  // The processes of a `--processes` group register the same address: a node held by
  // another session is then expected (a sibling's), waited for quietly, and taken over when
  // it goes. Call before Start().
  void ShareRegistration() { registration_shared_ = true; }
  // The ZooKeeper part of the status document ("zookeeper" and "settings").
  LbStatusSnapshot::ZooKeeper StatusSnapshot() const;
  // Reads of worker nodes' data since start (each child's first read, its changes, and
  // every child again in a new session): "zookeeper"."worker_node_reads".
  uint64_t worker_node_reads() const { return worker_node_reads_; }

 private:
  // One of the LB's own provider nodes, from the first look until it is registered.
  struct Claim {
    ZkDiscovery* owner;
    std::string path;
    int watch_id = 0;
    bool registered = false;
    bool waiting = false;             // the node is held by another session
    std::string holder;               // what that node says (DescribeRegistrationHolder)
    UvHandle<uv_timer_t> deadline;    // open while waiting; reports a live holder
  };

  // A worker provider node, watched (data) while it is a child, when versions are needed.
  struct Child {
    int watch_id = 0;
    bool read = false;    // its data has been read at least once
    bool exists = false;  // the last read found the node
    std::optional<std::string> version;
  };

  void Resolve();
  void OnChildren(const std::optional<std::vector<std::string>>& children);
  void OnChildData(const std::string& child, const std::optional<std::string>& data);
  // Hands the children read so far to the LB (a worker appears with its version, never
  // without), when the set or a version changed.
  void PushWorkers();
  void UnwatchChildren();
  void OnSettings(const std::optional<std::string>& data);
  void Register();
  void OnOwnNode(Claim* claim, const std::optional<std::string>& data);
  // Resolves the workers path again in `ms` (from scratch when `forget_workers_path`).
  void RetryIn(uint64_t ms, bool forget_workers_path);

  static constexpr uint64_t kRetryMs = 2000;

  uv_loop_t* loop_;
  ZkSession* zk_;
  LoadBalancer* lb_;
  std::string path_;
  bool fetch_versions_;
  bool registration_shared_ = false;
  std::string workers_path_;  // resolved; empty until known
  int children_watch_ = 0;
  std::map<std::string, Child> children_;  // fetch_versions_: by child name
  std::optional<std::map<std::string, std::optional<std::string>>> pushed_;  // last SetWorkers
  uint64_t worker_node_reads_ = 0;
  std::map<std::string, std::string> setting_sources_;  // name -> "default" | "zookeeper"
  // Why the node's current data was not applied: setting (or PATH for data that is not a
  // JSON object) -> reason; empty when it was.
  std::map<std::string, std::string> rejected_settings_;
  std::string last_settings_data_;  // to warn about unknown keys once per change
  std::set<std::string> disabled_;  // in force ("disabled")
  std::string registration_data_;   // {"pid": N}
  double wait_seconds_;             // session timeout + kZkExpiryMarginSeconds
  std::map<std::string, std::unique_ptr<Claim>> claims_;  // by node path
  UvHandle<uv_timer_t> retry_timer_;
  bool forget_workers_path_ = false;  // for the retry armed
  bool registered_ = false;
  bool stopped_ = false;
};

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_ZK_DISCOVERY_H_
