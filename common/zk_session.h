// ZkSession: a ZooKeeper session (ZooKeeper C client, multi-threaded library) driven from a
// libuv loop. It keeps what its owner asked for true across connection losses and session
// expiries:
//   * persistent data and children watches (ZooKeeper's watches are one-shot: each event
//     re-arms the watch and re-reads the node; a missing node is reported as nullopt and
//     watched for creation);
//   * ephemeral registrations, re-created in every new session. Never a takeover: a node
//     that exists and is held by another session (ZooKeeper's ephemeralOwner) is never
//     deleted; its owner is told and decides (see RegisterEphemeral).
// Connection loss keeps the session (the client reconnects on its own); session expiry
// closes the handle and opens a new session, re-arming everything.
//
// Results reach callers as Status values, never as ZooKeeper return codes: see
// StatusFromZk() for the mapping (a missing node is NotFound, a lost connection Unavailable).
//
// Thread rules: every method and every callback runs on the loop thread. The ZooKeeper
// client's own threads only post closures to the loop through a LoopMailbox; they never
// touch this object's state.
#ifndef RESUMELB_COMMON_ZK_SESSION_H_
#define RESUMELB_COMMON_ZK_SESSION_H_

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/loop_mailbox.h"
#include "common/status.h"
#include "common/uv_handle.h"

typedef struct _zhandle zhandle_t;

namespace rlb {

// How much longer than its session timeout a process waits for a node of its address held
// by another session to go: a dead session's ephemeral node goes when ZooKeeper expires
// that session, which it may do up to a tick late.
constexpr double kZkExpiryMarginSeconds = 5.0;

// ZooKeeper credentials (docs/operations.md, "Securing ZooKeeper"): the digest scheme's
// user and password. Only `digest` is supported.
struct ZkAuth {
  std::string user;
  std::string password;
  std::string Credentials() const { return user + ":" + password; }  // "USER:PASSWORD"
};

// Parses `digest:USER:PASSWORD` (USER non-empty without ':', PASSWORD non-empty, may hold
// ':'), or `file:PATH` naming a file whose first line is that (so that the password is not
// in the process list). InvalidArgument naming what is wrong, never the password.
StatusOr<ZkAuth> ParseZkAuth(std::string_view spec);

class ZkSession {
 public:
  enum class State { kConnecting, kConnected, kClosed };
  using DataFn = std::function<void(const std::optional<std::string>& data)>;
  using ChildrenFn = std::function<void(const std::optional<std::vector<std::string>>& children)>;
  // The node's data; NotFound when there is no such node, Unavailable/Timeout when
  // ZooKeeper cannot answer now (see StatusFromZk).
  using GetFn = std::function<void(const StatusOr<std::string>& data)>;
  // A registration's node is held by another session: `conflict` is AlreadyExists naming
  // the node and that session, `holder_data` the node's data (what the holder registered).
  using ConflictFn = std::function<void(const Status& conflict, const std::string& holder_data)>;

  ZkSession(uv_loop_t* loop, std::string hosts, int session_timeout_ms);
  ~ZkSession();  // Close()
  ZkSession(const ZkSession&) = delete;
  ZkSession& operator=(const ZkSession&) = delete;

  // Authenticates every session with these credentials and creates registrations readable
  // by anyone but writable only by the authenticated user (digest ACL + world:anyone read).
  // Call before Start().
  void SetAuth(ZkAuth auth) { auth_ = std::move(auth); }
  const std::optional<ZkAuth>& auth() const { return auth_; }

  // Creates the client handle (it connects in the background). IOError when the client
  // cannot be created (e.g. a malformed host list).
  Status Start();
  // Ends the session (our ephemeral nodes disappear at once) and closes the loop handles;
  // no callback runs afterwards. Blocks briefly. Idempotent.
  void Close();

  State state() const { return state_; }
  std::string StateName() const;
  const std::string& hosts() const { return hosts_; }
  uint64_t sessions() const { return sessions_; }  // sessions established so far
  int session_timeout_ms() const { return session_timeout_ms_; }  // as asked for
  std::function<void(State)> on_state_change;
  std::function<void()> on_new_session;  // after a session is (re-)established

  int WatchData(const std::string& path, DataFn fn);
  int WatchChildren(const std::string& path, ChildrenFn fn);
  void Unwatch(int id);
  // One-shot read. `fn` runs on the loop, exactly once unless the session is closed first
  // (possibly before Get() returns when the request cannot even be sent).
  void Get(const std::string& path, GetFn fn);
  // An ephemeral node created in this session and again in every new one, until
  // UnregisterAll(). When the node already exists, its holder decides: a node this session
  // holds (a create retried after a lost connection) counts as created; a node another
  // session holds is left alone (never deleted), the registration is dropped and
  // `on_conflict` runs on the loop. The caller may wait for the node to go and register
  // again (zkworker and zkresumelb do: docs/operations.md, "Registration conflicts").
  void RegisterEphemeral(const std::string& path, std::string data, ConflictFn on_conflict);
  // Drops every registration and deletes the nodes this session holds now (SIGTERM:
  // deregister before draining). A node another session holds is never deleted.
  void UnregisterAll();

 private:
  struct Watch {
    std::string path;
    bool children;
    DataFn data_fn;
    ChildrenFn children_fn;
    bool armed = false;
  };
  struct Registration {
    std::string data;
    ConflictFn on_conflict;
    bool created = false;
    bool in_progress = false;  // a create, or the look at an existing node, is in flight
    bool refused = false;      // ZooKeeper refused the create (permissions): said once
  };
  struct HandleContext {
    ZkSession* self;
    uint64_t gen;
  };
  void CloseHandle();
  static void GlobalWatcher(zhandle_t* zh, int type, int state, const char* path, void* ctx);
  static void NodeWatcher(zhandle_t* zh, int type, int state, const char* path, void* ctx);
  void Open();
  void OnSessionEvent(uint64_t gen, int state);
  void Arm(int id);
  void ArmAll();
  void Create(const std::string& path);
  // After ZNODEEXISTS: reads the node's holder; ours counts as created, another session's
  // is a conflict.
  void CheckHolder(const std::string& path);
  // Deletes `path` if this session holds it (read, then delete that version).
  void DeleteIfOurs(const std::string& path);
  void CreateAll();
  void SetState(State s);

  uv_loop_t* loop_;
  std::string hosts_;
  int session_timeout_ms_;
  std::unique_ptr<LoopMailbox> mailbox_;
  zhandle_t* zh_ = nullptr;
  uint64_t gen_ = 0;  // bumps per handle: events of an old handle are ignored
  State state_ = State::kConnecting;
  uint64_t sessions_ = 0;
  int64_t session_id_ = 0;  // of the current session, once established
  bool session_live_ = false;  // the current handle has had a session
  int next_id_ = 1;
  std::map<int, Watch> watches_;
  std::map<std::string, Registration> registrations_;
  UvHandle<uv_timer_t> timer_;  // retries and "not reachable yet" warnings
  double connecting_since_ = 0;
  double last_warning_ = 0;
  std::optional<ZkAuth> auth_;
};

// The Status for a ZooKeeper return code `zk_rc` of an operation described by `what`
// ("reading /lb"): OK for ZOK; NotFound for ZNONODE; AlreadyExists for ZNODEEXISTS;
// Unavailable for a lost connection or session (ZCONNECTIONLOSS, ZSESSIONEXPIRED,
// ZSESSIONMOVED, ZINVALIDSTATE, ZCLOSING); Timeout for ZOPERATIONTIMEOUT; PermissionDenied
// for ZNOAUTH and ZAUTHFAILED; InvalidArgument for requests ZooKeeper refuses (ZBADARGUMENTS,
// ZBADVERSION, ZNOTEMPTY, ZNOCHILDRENFOREPHEMERALS, ZINVALIDACL); IOError otherwise. The
// message is "WHAT: <ZooKeeper's text>".
Status StatusFromZk(int zk_rc, std::string_view what);


// Who holds a registration node, from its data, for log lines: `pid 42, description
// "blue"` (the parts present), or the data itself (quoted, at most 100 bytes) when it is
// not registration data ({"pid": N, "description"?: ...}, as zkworker and zkresumelb
// register).
std::string DescribeRegistrationHolder(std::string_view data);

// Splits and normalizes a ZooKeeper path ("/a/./b/../c" -> "/a/c").
std::string NormalizeZkPath(const std::string& path);

// The target of the zc.zk symbolic link NAME in PARENT's JSON data (a property
// "NAME ->": "TARGET", TARGET absolute or relative to PARENT), normalized; nullopt when the
// data is not a JSON object or has no such string property.
std::optional<std::string> ZkLinkTarget(const std::string& parent, const std::string& name,
                                        std::string_view parent_data);

// Resolves zc.zk symbolic links: a property "NAME ->": "TARGET" in a node's JSON data makes
// NAME (when it is not a real child) stand for TARGET, relative to that node. Calls `done`
// with the resolved path, or an error Status, on the loop.
void ResolveZkPath(ZkSession* zk, const std::string& path,
                   std::function<void(StatusOr<std::string>)> done);

}  // namespace rlb

#endif  // RESUMELB_COMMON_ZK_SESSION_H_
