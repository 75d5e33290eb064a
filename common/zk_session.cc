// ZkSession: async ZooKeeper calls whose completions and watch events are posted to the
// loop, with re-arming after every event, reconnect and session expiry.
#include "common/zk_session.h"

#include <zookeeper/zookeeper.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

#include <glog/logging.h>

#include "common/json.h"

namespace rlb {
namespace {

constexpr uint64_t kTickMs = 500;

// Watch contexts carry (handle generation, watch id) in the pointer itself, so nothing is
// allocated per watch and nothing dangles when a watch never fires.
void* EncodeCtx(uint64_t gen, int id) {
  return reinterpret_cast<void*>(static_cast<uintptr_t>((gen << 32) | static_cast<uint32_t>(id)));
}
uint64_t CtxGen(void* ctx) { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(ctx)) >> 32; }
int CtxId(void* ctx) { return static_cast<int>(reinterpret_cast<uintptr_t>(ctx) & 0xffffffffu); }

// One pending async call: completions always run exactly once (ZCLOSING on close).
struct Call {
  ZkSession* self;
  LoopMailbox* mailbox;
  uint64_t gen;
  std::function<void(int rc, std::string data, std::vector<std::string> children)> done;
};

// A read that also wants the node's holder (Stat::ephemeralOwner, 0 for a persistent node)
// and version.
struct HolderCall {
  LoopMailbox* mailbox;
  std::function<void(int rc, std::string data, int64_t owner, int32_t version)> done;
};

void PostResult(const void* data, int rc, std::string value, std::vector<std::string> children) {
  auto* call = static_cast<Call*>(const_cast<void*>(data));
  auto done = std::move(call->done);
  call->mailbox->Post([done = std::move(done), rc, value = std::move(value),
                       children = std::move(children)]() mutable {
    done(rc, std::move(value), std::move(children));
  });
  delete call;
}

void DataCompletion(int rc, const char* value, int len, const Stat*, const void* data) {
  PostResult(data, rc, value && len > 0 ? std::string(value, static_cast<size_t>(len)) : "", {});
}

void StringsCompletion(int rc, const String_vector* strings, const void* data) {
  std::vector<std::string> children;
  if (rc == ZOK && strings) {
    for (int i = 0; i < strings->count; ++i) children.emplace_back(strings->data[i]);
  }
  PostResult(data, rc, "", std::move(children));
}

void HolderCompletion(int rc, const char* value, int len, const Stat* stat, const void* data) {
  auto* call = static_cast<HolderCall*>(const_cast<void*>(data));
  std::string text = rc == ZOK && value && len > 0 ? std::string(value, static_cast<size_t>(len))
                                                   : std::string();
  int64_t owner = rc == ZOK && stat ? stat->ephemeralOwner : 0;
  int32_t version = rc == ZOK && stat ? stat->version : -1;
  call->mailbox->Post([done = std::move(call->done), rc, text = std::move(text), owner,
                       version]() mutable { done(rc, std::move(text), owner, version); });
  delete call;
}

std::string SessionIdText(int64_t id) {
  std::ostringstream out;
  out << "0x" << std::hex << id;
  return out.str();
}

void StringCompletion(int rc, const char*, const void* data) { PostResult(data, rc, "", {}); }
void VoidCompletion(int rc, const void* data) { PostResult(data, rc, "", {}); }
void StatCompletion(int rc, const Stat*, const void* data) { PostResult(data, rc, "", {}); }

}  // namespace

Status StatusFromZk(int zk_rc, std::string_view what) {
  if (zk_rc == ZOK) return Status::OK();
  std::string message = std::string(what) + ": " + zerror(zk_rc);
  switch (zk_rc) {
    case ZNONODE:
      return Status::NotFound(message);
    case ZNODEEXISTS:
      return Status::AlreadyExists(message);
    case ZCONNECTIONLOSS:
    case ZSESSIONEXPIRED:
    case ZSESSIONMOVED:
    case ZINVALIDSTATE:
    case ZCLOSING:
      return Status::Unavailable(message);
    case ZOPERATIONTIMEOUT:
      return Status::Timeout(message);
    case ZNOAUTH:
    case ZAUTHFAILED:
      return Status::PermissionDenied(message);
    case ZBADARGUMENTS:
    case ZBADVERSION:
    case ZNOTEMPTY:
    case ZNOCHILDRENFOREPHEMERALS:
    case ZINVALIDACL:
      return Status::InvalidArgument(message);
    default:
      return Status::IOError(message);
  }
}

ZkSession::ZkSession(uv_loop_t* loop, std::string hosts, int session_timeout_ms)
    : loop_(loop), hosts_(std::move(hosts)), session_timeout_ms_(session_timeout_ms),
      mailbox_(std::make_unique<LoopMailbox>(loop)) {
  int rc = timer_.Init(loop_, this);
  CHECK_EQ(rc, 0) << "uv_timer_init: " << uv_strerror(rc);
}

ZkSession::~ZkSession() { Close(); }

std::string ZkSession::StateName() const {
  switch (state_) {
    case State::kConnecting: return "connecting";
    case State::kConnected: return "connected";
    case State::kClosed: return "closed";
  }
  return "unknown";
}

Status ZkSession::Start() {
  // The client library's own logging is off: even at ERROR level it prints a line per
  // reconnection attempt (dozens per second while ZooKeeper is down). ZkSession reports the
  // states itself: connection lost / restored, session expired, and "not reachable" at most
  // every 10 s.
  zoo_set_debug_level(static_cast<ZooLogLevel>(0));
  Open();
  if (!zh_) return Status::IOError("cannot create a ZooKeeper handle for " + hosts_ + ": " +
                                   std::strerror(errno));
  int rc = uv_timer_start(timer_.get(), [](uv_timer_t* t) {
    auto* self = static_cast<ZkSession*>(t->data);
    double now = static_cast<double>(uv_now(self->loop_));
    if (self->state_ == State::kConnecting && now - self->connecting_since_ > 3000 &&
        now - self->last_warning_ > 10000) {
      self->last_warning_ = now;
      LOG(WARNING) << "ZooKeeper at " << self->hosts_ << " not reachable for "
                   << static_cast<int>((now - self->connecting_since_) / 1000)
                   << " s; still trying (serving with what is known)";
    }
    if (self->state_ == State::kConnected) {
      self->ArmAll();      // retries after transient errors
      self->CreateAll();
    }
  }, kTickMs, kTickMs);
  CHECK_EQ(rc, 0) << "uv_timer_start: " << uv_strerror(rc);
  return Status::OK();
}

void ZkSession::Open() {
  ++gen_;
  session_live_ = false;
  connecting_since_ = static_cast<double>(uv_now(loop_));
  for (auto& [id, w] : watches_) w.armed = false;
  for (auto& [path, r] : registrations_) {
    r.created = false;
    r.in_progress = false;
  }
  // The handle's context names this session and the handle's generation; it is fixed
  // before the client's threads start and freed only after they are joined.
  auto* ctx = new HandleContext{this, gen_};
  zh_ = zookeeper_init(hosts_.c_str(), &GlobalWatcher, session_timeout_ms_, nullptr, ctx, 0);
  if (!zh_) {
    delete ctx;
  } else if (auth_) {
    // Queued before any request of the session; the client sends it again after every
    // reconnection of this handle. A refusal ends the session (ZOO_AUTH_FAILED_STATE).
    const std::string credentials = auth_->Credentials();
    int rc = zoo_add_auth(zh_, "digest", credentials.data(), static_cast<int>(credentials.size()),
                          nullptr, nullptr);
    if (rc != ZOK) LOG(ERROR) << "cannot send the ZooKeeper credentials: " << zerror(rc);
  }
  SetState(State::kConnecting);
}

void ZkSession::CloseHandle() {
  if (!zh_) return;
  zhandle_t* old = zh_;
  zh_ = nullptr;
  auto* ctx = static_cast<HandleContext*>(const_cast<void*>(zoo_get_context(old)));
  zookeeper_close(old);  // joins the client's threads: no callback runs after this
  delete ctx;
}

void ZkSession::GlobalWatcher(zhandle_t* zh, int type, int state, const char*, void*) {
  if (type != ZOO_SESSION_EVENT) return;
  auto* ctx = static_cast<HandleContext*>(const_cast<void*>(zoo_get_context(zh)));
  ZkSession* self = ctx->self;
  uint64_t gen = ctx->gen;
  self->mailbox_->Post([self, gen, state] { self->OnSessionEvent(gen, state); });
}

void ZkSession::OnSessionEvent(uint64_t gen, int state) {
  if (gen != gen_ || state_ == State::kClosed) return;
  if (state == ZOO_CONNECTED_STATE) {
    bool new_session = !session_live_;
    session_live_ = true;
    SetState(State::kConnected);
    if (new_session) {
      ++sessions_;
      // Set by the client's thread before it posted this event.
      session_id_ = zoo_client_id(zh_)->client_id;
      LOG(INFO) << "ZooKeeper session established with " << hosts_;
      if (on_new_session) on_new_session();
    } else {
      LOG(INFO) << "ZooKeeper connection restored";
    }
    ArmAll();
    CreateAll();
  } else if (state == ZOO_CONNECTING_STATE || state == ZOO_ASSOCIATING_STATE) {
    if (state_ == State::kConnected) {
      LOG(WARNING) << "ZooKeeper connection lost; reconnecting (serving with what is known)";
      connecting_since_ = static_cast<double>(uv_now(loop_));
    }
    SetState(State::kConnecting);
  } else if (state == ZOO_EXPIRED_SESSION_STATE) {
    LOG(WARNING) << "ZooKeeper session expired; starting a new session";
    CloseHandle();  // late completions of the old handle are dropped by generation
    Open();
  } else if (state == ZOO_AUTH_FAILED_STATE) {
    LOG(ERROR) << "ZooKeeper refused the credentials"
               << (auth_ ? " of user " + auth_->user : std::string())
               << " (authentication failed); check zookeeper_auth";
  }
}

void ZkSession::SetState(State s) {
  if (s == state_) return;
  state_ = s;
  if (on_state_change) on_state_change(s);
}

void ZkSession::Close() {
  if (state_ == State::kClosed && !zh_) return;
  timer_.Close();
  CloseHandle();
  state_ = State::kClosed;
  mailbox_->Close();  // drops completions posted during close
}

int ZkSession::WatchData(const std::string& path, DataFn fn) {
  int id = next_id_++;
  watches_[id] = Watch{path, false, std::move(fn), nullptr};
  if (state_ == State::kConnected) Arm(id);
  return id;
}

int ZkSession::WatchChildren(const std::string& path, ChildrenFn fn) {
  int id = next_id_++;
  watches_[id] = Watch{path, true, nullptr, std::move(fn)};
  if (state_ == State::kConnected) Arm(id);
  return id;
}

void ZkSession::Unwatch(int id) { watches_.erase(id); }

void ZkSession::NodeWatcher(zhandle_t* zh, int type, int, const char*, void* ctx) {
  if (type == ZOO_SESSION_EVENT) return;  // handled by the global watcher
  ZkSession* self = static_cast<HandleContext*>(const_cast<void*>(zoo_get_context(zh)))->self;
  uint64_t gen = CtxGen(ctx);
  int id = CtxId(ctx);
  self->mailbox_->Post([self, gen, id] {
    if (gen != self->gen_) return;
    auto it = self->watches_.find(id);
    if (it == self->watches_.end()) return;
    it->second.armed = false;
    self->Arm(id);
  });
}

void ZkSession::Arm(int id) {
  auto it = watches_.find(id);
  if (it == watches_.end() || it->second.armed || !zh_ || state_ != State::kConnected) return;
  Watch& w = it->second;
  w.armed = true;
  uint64_t gen = gen_;
  auto* call = new Call{this, mailbox_.get(), gen, nullptr};
  call->done = [this, gen, id](int rc, std::string data, std::vector<std::string> children) {
    if (gen != gen_) return;
    auto it = watches_.find(id);
    if (it == watches_.end()) return;
    Watch& w = it->second;
    if (rc == ZOK) {
      if (w.children) {
        w.children_fn(children);
      } else {
        w.data_fn(data);
      }
    } else if (rc == ZNONODE) {
      // Report the absence, then wait for the node to be created.
      if (w.children) {
        w.children_fn(std::nullopt);
      } else {
        w.data_fn(std::nullopt);
      }
      auto* ex = new Call{this, mailbox_.get(), gen, nullptr};
      ex->done = [this, gen, id](int rc, std::string, std::vector<std::string>) {
        if (gen != gen_) return;
        auto it = watches_.find(id);
        if (it == watches_.end()) return;
        if (rc == ZOK) {  // created meanwhile: read it now
          it->second.armed = false;
          Arm(id);
        } else if (rc != ZNONODE) {
          it->second.armed = false;  // retried by the timer
        }
      };
      if (!zh_ || zoo_awexists(zh_, w.path.c_str(), &NodeWatcher, EncodeCtx(gen, id),
                               &StatCompletion, ex) != ZOK) {
        delete ex;
        w.armed = false;
      }
    } else {
      w.armed = false;  // connection loss etc.: re-armed on reconnect / by the timer
      VLOG(1) << "ZooKeeper read of " << w.path << " failed: " << zerror(rc);
    }
  };
  int rc = w.children
               ? zoo_awget_children(zh_, w.path.c_str(), &NodeWatcher, EncodeCtx(gen, id),
                                    &StringsCompletion, call)
               : zoo_awget(zh_, w.path.c_str(), &NodeWatcher, EncodeCtx(gen, id), &DataCompletion,
                           call);
  if (rc != ZOK) {
    delete call;
    w.armed = false;
  }
}

void ZkSession::ArmAll() {
  std::vector<int> ids;
  for (auto& [id, w] : watches_) {
    if (!w.armed) ids.push_back(id);
  }
  for (int id : ids) Arm(id);
}

void ZkSession::Get(const std::string& path, GetFn fn) {
  if (!zh_) {
    fn(StatusFromZk(ZINVALIDSTATE, "reading " + path));
    return;
  }
  uint64_t gen = gen_;
  auto* call = new Call{this, mailbox_.get(), gen, nullptr};
  call->done = [fn, path](int rc, std::string data, std::vector<std::string>) {
    if (rc == ZOK) {
      fn(std::move(data));
    } else {
      fn(StatusFromZk(rc, "reading " + path));
    }
  };
  int rc = zoo_aget(zh_, path.c_str(), 0, &DataCompletion, call);
  if (rc != ZOK) {
    delete call;
    fn(StatusFromZk(rc, "reading " + path));
  }
}

void ZkSession::RegisterEphemeral(const std::string& path, std::string data,
                                  ConflictFn on_conflict) {
  registrations_[path] = Registration{std::move(data), std::move(on_conflict)};
  if (state_ == State::kConnected) Create(path);
}

void ZkSession::CreateAll() {
  std::vector<std::string> paths;
  for (auto& [path, r] : registrations_) {
    if (!r.created && !r.in_progress) paths.push_back(path);
  }
  for (const auto& p : paths) Create(p);
}

void ZkSession::Create(const std::string& path) {
  auto it = registrations_.find(path);
  if (it == registrations_.end() || !zh_ || it->second.created || it->second.in_progress) return;
  it->second.in_progress = true;
  uint64_t gen = gen_;
  auto* call = new Call{this, mailbox_.get(), gen, nullptr};
  call->done = [this, gen, path](int rc, std::string, std::vector<std::string>) {
    if (gen != gen_) return;
    auto it = registrations_.find(path);
    if (it == registrations_.end()) return;
    it->second.in_progress = false;
    if (rc == ZOK) {
      it->second.created = true;
      it->second.refused = false;
      LOG(INFO) << "registered " << path;
    } else if (rc == ZNODEEXISTS) {
      CheckHolder(path);  // never deleted: whose is it?
    } else if (rc == ZNOAUTH || rc == ZAUTHFAILED || rc == ZINVALIDACL) {
      // An ACL of the tree refuses us: said once (as an error), retried quietly.
      if (!it->second.refused) {
        LOG(ERROR) << "cannot register " << path << ": " << zerror(rc)
                   << (auth_ ? " (user " + auth_->user + " may not create it)"
                             : " (the tree needs credentials: zookeeper_auth)")
                   << "; retrying";
      }
      it->second.refused = true;
    } else {
      LOG(WARNING) << "cannot register " << path << ": " << zerror(rc) << " (retrying)";
    }
  };
  const std::string& data = it->second.data;
  // With credentials: all rights for the authenticated user, read for anyone (a
  // registration must stay readable by every LB); without: read-only for anyone, as before.
  static Id auth_ids = ZOO_AUTH_IDS;
  static Id anyone = ZOO_ANYONE_ID_UNSAFE;
  static ACL authed[] = {{ZOO_PERM_ALL, auth_ids}, {ZOO_PERM_READ, anyone}};
  static ACL_vector authed_acl = {2, authed};
  const ACL_vector* acl = auth_ ? &authed_acl : &ZOO_READ_ACL_UNSAFE;
  if (zoo_acreate(zh_, path.c_str(), data.data(), static_cast<int>(data.size()),
                  acl, ZOO_EPHEMERAL, &StringCompletion, call) != ZOK) {
    delete call;
    it->second.in_progress = false;
  }
}

void ZkSession::CheckHolder(const std::string& path) {
  auto it = registrations_.find(path);
  if (it == registrations_.end() || !zh_) return;
  it->second.in_progress = true;
  uint64_t gen = gen_;
  auto* call = new HolderCall{mailbox_.get(), nullptr};
  call->done = [this, gen, path](int rc, std::string data, int64_t owner, int32_t) {
    if (gen != gen_) return;
    auto it = registrations_.find(path);
    if (it == registrations_.end()) return;
    Registration& r = it->second;
    r.in_progress = false;
    if (rc == ZNONODE) {  // gone meanwhile: create it now
      Create(path);
    } else if (rc != ZOK) {  // retried by the timer
      VLOG(1) << "cannot read " << path << ": " << zerror(rc);
    } else if (owner == session_id_) {
      // An earlier create of this session succeeded, its answer was lost.
      r.created = true;
      LOG(INFO) << "registered " << path;
    } else {
      ConflictFn on_conflict = std::move(r.on_conflict);
      registrations_.erase(it);
      Status conflict = Status::AlreadyExists(
          path + " is held by another ZooKeeper session (" +
          (owner == 0 ? std::string("a persistent node") : SessionIdText(owner)) + ")");
      if (on_conflict) {
        on_conflict(conflict, data);
      } else {
        LOG(WARNING) << conflict.message() << "; not registered";
      }
    }
  };
  if (zoo_aget(zh_, path.c_str(), 0, &HolderCompletion, call) != ZOK) {
    delete call;
    it->second.in_progress = false;
  }
}

void ZkSession::DeleteIfOurs(const std::string& path) {
  if (!zh_) return;
  auto* call = new HolderCall{mailbox_.get(), nullptr};
  call->done = [this, gen = gen_, path](int rc, std::string, int64_t owner, int32_t version) {
    if (gen != gen_ || rc != ZOK || owner != session_id_ || !zh_) return;
    auto* del = new Call{this, mailbox_.get(), gen, [](int, std::string, std::vector<std::string>) {}};
    if (zoo_adelete(zh_, path.c_str(), version, &VoidCompletion, del) != ZOK) delete del;
  };
  if (zoo_aget(zh_, path.c_str(), 0, &HolderCompletion, call) != ZOK) delete call;
}

void ZkSession::UnregisterAll() {
  for (auto& [path, r] : registrations_) {
    // A create still in flight may have succeeded: the read is sent after it (a session's
    // requests are processed in order), and it tells whose the node is.
    if (r.created || r.in_progress) {
      DeleteIfOurs(path);
      LOG(INFO) << "deregistered " << path;
    }
  }
  registrations_.clear();
}

std::string DescribeRegistrationHolder(std::string_view data) {
  rapidjson::Document doc;
  std::string out;
  if (ParseJsonObject(data, &doc)) {
    if (const rapidjson::Value* pid = FindJsonMember(doc, "pid")) {
      if (auto text = JsonScalarText(*pid)) out = "pid " + *text;
    }
    const rapidjson::Value* description = FindJsonMember(doc, "description");
    if (description && description->IsString()) {
      if (!out.empty()) out += ", ";
      out += "description \"" + std::string(description->GetString()) + "\"";
    }
  }
  if (!out.empty()) return out;
  constexpr size_t kMaxShown = 100;
  return "data '" + std::string(data.substr(0, kMaxShown)) +
         (data.size() > kMaxShown ? "...'" : "'");
}

std::string NormalizeZkPath(const std::string& path) {
  std::vector<std::string> parts;
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  std::string out;
  for (const auto& p : parts) out += "/" + p;
  return out.empty() ? "/" : out;
}

namespace {

struct Resolver : std::enable_shared_from_this<Resolver> {
  ZkSession* zk;
  std::vector<std::string> remaining;  // components still to resolve
  std::string current = "";            // resolved prefix ("" = root)
  int hops = 0;
  std::function<void(StatusOr<std::string>)> done;

  static std::vector<std::string> Split(const std::string& path) {
    std::vector<std::string> parts;
    std::stringstream ss(NormalizeZkPath(path));
    std::string p;
    while (std::getline(ss, p, '/')) {
      if (!p.empty()) parts.push_back(p);
    }
    return parts;
  }

  void Step() {
    if (remaining.empty()) {
      done(current.empty() ? "/" : current);
      return;
    }
    std::string candidate = current + "/" + remaining.front();
    auto self = shared_from_this();
    zk->Get(candidate, [self, candidate](const StatusOr<std::string>& data) {
      if (data.ok()) {
        self->current = candidate;
        self->remaining.erase(self->remaining.begin());
        self->Step();
      } else if (data.status().IsNotFound()) {
        self->FollowLink();
      } else {
        self->done(data.status());
      }
    });
  }

  // The child is missing: look for a "NAME ->" property in the parent.
  void FollowLink() {
    std::string parent = current.empty() ? "/" : current;
    std::string name = remaining.front();
    auto self = shared_from_this();
    zk->Get(parent, [self, parent, name](const StatusOr<std::string>& data) {
      if (!data.ok()) {
        self->done(data.status());
        return;
      }
      std::optional<std::string> resolved = ZkLinkTarget(parent, name, *data);
      if (!resolved) {
        self->done(Status::NotFound("ZooKeeper node " + (parent == "/" ? "" : parent) + "/" +
                                    name + " does not exist"));
        return;
      }
      if (++self->hops > 32) {
        self->done(Status::InvalidArgument("symbolic link loop at " + parent + "/" + name));
        return;
      }
      // Continue from the link target (which may itself contain links).
      std::vector<std::string> rest(self->remaining.begin() + 1, self->remaining.end());
      self->remaining = Split(*resolved);
      self->remaining.insert(self->remaining.end(), rest.begin(), rest.end());
      self->current = "";
      self->Step();
    });
  }
};

}  // namespace

std::optional<std::string> ZkLinkTarget(const std::string& parent, const std::string& name,
                                        std::string_view parent_data) {
  rapidjson::Document doc;
  if (!ParseJsonObject(parent_data, &doc)) return std::nullopt;
  const rapidjson::Value* link = FindJsonMember(doc, name + " ->");
  if (!link || !link->IsString()) return std::nullopt;
  std::string target(link->GetString(), link->GetStringLength());
  if (target.find('\0') != std::string::npos) return std::nullopt;  // not a ZooKeeper path
  return target.size() && target[0] == '/' ? NormalizeZkPath(target)
                                           : NormalizeZkPath(parent + "/" + target);
}

void ResolveZkPath(ZkSession* zk, const std::string& path,
                   std::function<void(StatusOr<std::string>)> done) {
  auto r = std::make_shared<Resolver>();
  r->zk = zk;
  r->remaining = Resolver::Split(path);
  r->done = std::move(done);
  r->Step();
}

StatusOr<ZkAuth> ParseZkAuth(std::string_view spec) {
  std::string text(spec);
  if (text.rfind("file:", 0) == 0) {
    const std::string path = text.substr(5);
    std::FILE* f = std::fopen(path.c_str(), "re");
    if (!f) {
      return Status::InvalidArgument("zookeeper_auth: cannot read " + path + ": " +
                                     std::strerror(errno));
    }
    char line[4096];
    text = std::fgets(line, sizeof line, f) ? line : "";
    std::fclose(f);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    if (text.rfind("file:", 0) == 0) {
      return Status::InvalidArgument("zookeeper_auth: " + path + " names another file");
    }
  }
  constexpr std::string_view kScheme = "digest:";
  if (text.rfind(kScheme, 0) != 0) {
    return Status::InvalidArgument(
        "zookeeper_auth must be digest:USER:PASSWORD or file:PATH (only the digest scheme "
        "is supported)");
  }
  const std::string rest = text.substr(kScheme.size());
  const size_t colon = rest.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size()) {
    return Status::InvalidArgument("zookeeper_auth: expected digest:USER:PASSWORD with a "
                                   "non-empty user and password");
  }
  return ZkAuth{rest.substr(0, colon), rest.substr(colon + 1)};
}

}  // namespace rlb
