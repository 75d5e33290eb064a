// LoadBalancer: listener, worker links, dispatch and waiting, shutdown, status document.
#include "zklb/load_balancer.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include <glog/logging.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>


namespace rlb::lb {
namespace {

// The original's default page (159 bytes, starts and ends with a newline).
const char kDefaultDisconnectMessage[] =
    "\n<html><meta http-equiv=\"refresh\" content=\"1\"><body>\n"
    "The server was unable to handle your request due to a transient failure.\n"
    "Please try again.\n</body></html>\n";

}  // namespace

LoadBalancer::LoadBalancer(uv_loop_t* loop, LbOptions options, std::unique_ptr<Pool> pool,
                           std::shared_ptr<Classifier> classifier)
    : loop_(loop),
      options_(std::move(options)),
      pool_(std::move(pool)),
      classifier_(std::move(classifier)),
      disconnect_message_(kDefaultDisconnectMessage),
      deleter_(loop) {
  client_context_.options = &options_;
  client_context_.classifier = classifier_.get();
  client_context_.policy.max_retries = options_.max_retries;
  client_context_.policy.disconnect_message = &disconnect_message_;
  client_context_.policy.stats = &stats_;
  client_context_.access_log = &access_log_;
  client_context_.deleter = &deleter_;
  CHECK_EQ(listener_.Init(loop_, this), 0);
  CHECK_EQ(wait_timer_.Init(loop_, this), 0);
  CHECK_EQ(drain_timer_.Init(loop_, this), 0);
}

LoadBalancer::~LoadBalancer() {
  // Connections and links go first: their destructors may still reach the pool.
  connections_.clear();
  links_.clear();
  deleter_.Sweep();
}

Status LoadBalancer::Start() {
  // Worker names resolve on libuv's thread pool; a resolver that never answers holds a
  // thread until the C library gives up. More threads than libuv's 4 keep one bad name
  // from delaying the others (an explicit UV_THREADPOOL_SIZE wins).
  setenv("UV_THREADPOOL_SIZE", "16", /*overwrite=*/0);
  Status s = ReadDisconnectMessage();
  if (!s.ok()) return s;
  s = access_log_.Open(options_.access_log);
  if (!s.ok()) return s;
  return ListenTcp(listener_.get(), options_.address, options_.listen_backlog, &OnConnection,
                   &bound_);
}

Status LoadBalancer::ReadDisconnectMessage() {
  if (options_.disconnect_message_file.empty()) return Status::OK();
  std::ifstream in(options_.disconnect_message_file, std::ios::binary);
  if (!in) {
    return Status::InvalidArgument("cannot read disconnect message file " +
                                   options_.disconnect_message_file + ": " +
                                   std::strerror(errno));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  disconnect_message_ = ss.str();
  return Status::OK();
}

void LoadBalancer::ReopenFiles() {
  Status s = access_log_.Reopen();
  if (!s.ok()) LOG(ERROR) << s.message() << "; still writing to the old file";
  s = ReadDisconnectMessage();
  if (!s.ok()) LOG(ERROR) << s.message() << "; keeping the previous page";
  LOG(INFO) << "SIGHUP: log files reopened";
}

void LoadBalancer::OnConnection(uv_stream_t* server, int status) {
  auto* self = static_cast<LoadBalancer*>(server->data);
  if (self == nullptr) return;
  if (status < 0) {
    LOG(WARNING) << "accept failed: " << uv_strerror(status);
    return;
  }
  self->accept_pending_ = true;
  self->AcceptPending();
}

void LoadBalancer::AcceptPending() {
  // Over -m connections, the connection is left in the kernel's backlog: libuv stops
  // watching the listener until we accept, so existing connections are unaffected.
  if (!accept_pending_ || !listener_.open() || draining_) return;
  if (options_.max_connections > 0 &&
      connections_.size() >= static_cast<size_t>(options_.max_connections)) {
    return;
  }
  accept_pending_ = false;
  ++stats_.connections;
  auto conn = std::make_unique<ClientConnection>(this, &client_context_);
  ClientConnection* raw = conn.get();
  connections_.emplace(raw, std::move(conn));
  Status s = raw->Accept(listener_.stream());
  if (!s.ok()) {
    LOG(WARNING) << s.ToString();  // Accept closed it: ConnectionClosed freed it
    return;
  }
  raw->Start();
}

void LoadBalancer::ConnectionClosed(ClientConnection* conn) {
  auto it = connections_.find(conn);
  if (it == connections_.end()) return;
  deleter_.Defer(std::move(it->second));
  connections_.erase(it);
  AcceptPending();
  MaybeFinishShutdown();
}

void LoadBalancer::SetWorkers(const std::map<std::string, std::optional<std::string>>& workers) {
  for (auto& [name, link] : links_) {
    if (!workers.count(name) && link->wanted()) {
      link->SetWanted(false, std::nullopt);
      if (link->connected()) {
        LOG(INFO) << "worker " << name << " is no longer configured; its connection stays "
                  << "until it closes";
      }
    }
  }
  for (const auto& [name, version] : workers) {
    auto it = links_.find(name);
    if (it != links_.end()) {
      // Flapping: the same worker again. Never a second connection; the live one stays.
      it->second->SetWanted(true, version);
      continue;
    }
    auto hp = ParseHostPort(name);
    if (!hp.ok()) {
      LOG(WARNING) << "ignoring worker address: " << hp.status().message();
      continue;
    }
    auto link = std::make_unique<WorkerLink>(static_cast<WorkerLink::Observer*>(this), &options_, loop_, name, *hp, version);
    WorkerLink* raw = link.get();
    links_[name] = std::move(link);
    raw->Start();
  }
  ReapLinks();
}

void LoadBalancer::ReapLinks() {
  for (auto it = links_.begin(); it != links_.end();) {
    if (!it->second->wanted() && !it->second->connected()) {
      LOG(INFO) << "worker " << it->first << " removed";
      it->second->Stop();
      deleter_.Defer(std::move(it->second));
      it = links_.erase(it);
    } else {
      ++it;
    }
  }
  MaybeFinishShutdown();
}

void LoadBalancer::UpdateSettings(const PoolSettings& settings) { pool_->UpdateSettings(settings); }

void LoadBalancer::OnLinkResume(WorkerLink* link, Resume resume) {
  pool_->NewResume(link->pool_worker(), std::move(resume));
  ServeWaiters();
}

void LoadBalancer::OnLinkRemoved(WorkerLink* link) {
  if (link->pool_worker()) pool_->Remove(link->pool_worker());
}

void LoadBalancer::OnLinkIdle(WorkerLink*) { ReapLinks(); }

void LoadBalancer::Assign(Exchange* exchange, PoolWorkerPtr worker) {
  auto it = links_.find(worker->name());
  CHECK(it != links_.end()) << "pool worker " << worker->name() << " has no link";
  exchange->Assign(std::move(worker), it->second.get());
}

void LoadBalancer::ReleaseWorker(const PoolWorkerPtr& worker) { pool_->Put(worker); }

bool LoadBalancer::AcquireRetry() {
  double in_flight = static_cast<double>(pool_->backlog()) + static_cast<double>(waiters_.size());
  double allowed = std::max(static_cast<double>(options_.retry_budget_min),
                            options_.retry_budget * std::max(in_flight,
                                                             static_cast<double>(retries_in_flight_)));
  if (static_cast<double>(retries_in_flight_) >= allowed) return false;
  ++retries_in_flight_;
  return true;
}

void LoadBalancer::ReleaseRetry() {
  CHECK_GT(retries_in_flight_, 0);
  --retries_in_flight_;
}

void LoadBalancer::Dispatch(Exchange* exchange) {
  PoolWorkerPtr worker = waiters_.empty() ? pool_->Get(exchange->request_class()) : nullptr;
  if (!worker) {
    double deadline = static_cast<double>(uv_now(loop_)) + options_.worker_wait_timeout * 1000;
    waiters_.emplace_back(exchange, deadline);
    exchange->MarkWaiting();
    ArmWaitTimer();
    ServeWaiters();
    return;
  }
  Assign(exchange, std::move(worker));
}

void LoadBalancer::ServeWaiters() {
  while (!waiters_.empty() && pool_->size() > 0) {
    Exchange* ex = waiters_.front().first;
    waiters_.pop_front();
    Assign(ex, pool_->Get(ex->request_class()));
  }
  ArmWaitTimer();
}

void LoadBalancer::ForgetWaiting(Exchange* exchange) {
  std::erase_if(waiters_, [exchange](const auto& w) { return w.first == exchange; });
}

void LoadBalancer::ArmWaitTimer() {
  if (!wait_timer_.open()) return;
  if (waiters_.empty()) {
    uv_timer_stop(wait_timer_.get());
    return;
  }
  double now = static_cast<double>(uv_now(loop_));
  double delay = std::max(0.0, waiters_.front().second - now);
  CHECK_EQ(uv_timer_start(wait_timer_.get(), [](uv_timer_t* t) {
    auto* self = static_cast<LoadBalancer*>(t->data);
    double now = static_cast<double>(uv_now(self->loop_));
    while (!self->waiters_.empty() && self->waiters_.front().second <= now) {
      Exchange* ex = self->waiters_.front().first;
      self->waiters_.pop_front();
      ex->NoWorker();
    }
    self->ArmWaitTimer();
  }, static_cast<uint64_t>(delay) + 1, 0), 0);
}

void LoadBalancer::Shutdown(std::function<void()> done) {
  if (draining_) return;
  draining_ = true;
  shutdown_done_ = std::move(done);
  listener_.Close();
  LOG(INFO) << "draining: " << pool_->backlog() << " request(s) in flight, "
            << connections_.size() << " connection(s)";
  CHECK_EQ(uv_timer_start(drain_timer_.get(), [](uv_timer_t* t) {
    auto* self = static_cast<LoadBalancer*>(t->data);
    LOG(WARNING) << "drain timeout: closing " << self->connections_.size() << " connection(s)";
    std::vector<ClientConnection*> conns;
    for (auto& [c, owned] : self->connections_) conns.push_back(c);
    for (ClientConnection* c : conns) c->Abort("drain timeout");
  }, static_cast<uint64_t>(options_.drain_timeout * 1000), 0), 0);
  // Closing a connection removes it from connections_ at once (it is freed later).
  std::vector<ClientConnection*> conns;
  for (auto& [c, owned] : connections_) conns.push_back(c);
  for (ClientConnection* c : conns) c->CloseWhenIdle();
  MaybeFinishShutdown();
}

void LoadBalancer::MaybeFinishShutdown() {
  if (!draining_ || shut_down_ || !connections_.empty()) return;
  shut_down_ = true;
  for (auto& [name, link] : links_) {
    link->Stop();
    deleter_.Defer(std::move(link));
  }
  links_.clear();
  waiters_.clear();  // no connections: no waiters left either
  wait_timer_.Close();
  drain_timer_.Close();
  deleter_.Close();
  auto done = std::move(shutdown_done_);
  shutdown_done_ = nullptr;
  if (done) done();
}

std::string LoadBalancer::StatusJson(const std::function<void(void*)>& extra) const {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  PoolStatus st = pool_->Status();
  auto number = [&w](double d) {
    if (std::isnan(d)) {
      w.Null();
    } else {
      w.Double(d);
    }
  };
  std::map<std::string, const WorkerLink*> by_name;
  for (const auto& [name, link] : links_) by_name[name] = link.get();
  w.StartObject();
  w.Key("backlog");
  w.Int(st.backlog);
  w.Key("mean_backlog");
  number(st.mean_backlog);
  w.Key("workers");
  w.StartArray();
  for (const auto& wk : st.workers) {
    w.StartArray();
    w.String(wk.name.c_str());
    w.Int(wk.backlog);
    number(wk.mbacklog);
    auto it = by_name.find(wk.name);
    std::optional<double> oldest = it != by_name.end() ? it->second->oldest_start() : std::nullopt;
    if (oldest) {
      w.Double(*oldest);
    } else {
      w.Null();
    }
    w.EndArray();
  }
  w.EndArray();
  w.Key("workers_ex");
  w.StartArray();
  for (const auto& wk : st.workers) {
    w.StartArray();
    w.String(wk.name.c_str());
    auto it = by_name.find(wk.name);
    w.Uint64(it != by_name.end() ? it->second->queued_bytes() : 0);
    w.EndArray();
  }
  w.EndArray();
  w.Key("worker_details");
  w.StartArray();
  for (const auto& [name, link] : by_name) {
    w.StartObject();
    w.Key("name");
    w.String(name.c_str());
    w.Key("connected");
    w.Bool(link->connected());
    w.Key("in_pool");
    w.Bool(link->pool_worker() && link->pool_worker()->in_pool());
    w.Key("version");
    if (link->version()) {
      w.String(link->version()->c_str());
    } else {
      w.Null();
    }
    w.Key("resume_size");
    w.Uint64(link->resume_size());
    w.Key("requests");
    w.Uint64(link->requests_sent());
    w.Key("in_flight");
    w.Uint64(link->in_flight());
    w.Key("last_error");
    if (link->last_error().empty()) {
      w.Null();
    } else {
      w.String(link->last_error().c_str());
    }
    w.Key("last_error_time");
    if (link->last_error().empty()) {
      w.Null();
    } else {
      w.Double(link->last_error_time());
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("pool");
  w.StartObject();
  w.Key("kind");
  w.String(options_.pool.c_str());
  w.Key("single_version");
  w.Bool(st.single_version);
  w.Key("active_version");
  if (st.active_version) {
    w.String(st.active_version->c_str());
  } else {
    w.Null();
  }
  w.Key("variance");
  w.Double(pool_->settings().variance);
  w.Key("backlog_history");
  w.Int(pool_->settings().backlog_history);
  w.Key("unskilled_score");
  w.Double(pool_->settings().unskilled_score);
  w.EndObject();
  w.Key("totals");
  w.StartObject();
  w.Key("requests");
  w.Uint64(stats_.requests);
  w.Key("responses");
  w.Uint64(stats_.responses);
  w.Key("retries");
  w.Uint64(stats_.retries);
  w.Key("502");
  w.Uint64(stats_.bad_gateway);
  w.Key("503");
  w.Uint64(stats_.unavailable);
  w.Key("client_errors");
  w.Uint64(stats_.client_errors);
  w.Key("truncated");
  w.Uint64(stats_.truncated);
  w.Key("client_aborts");
  w.Uint64(stats_.client_aborts);
  w.Key("retries_refused");
  w.Uint64(stats_.retries_refused);
  w.Key("queries_of_death");
  w.Uint64(stats_.queries_of_death);
  w.Key("connections_accepted");
  w.Uint64(stats_.connections);
  w.Key("connections_open");
  w.Uint64(connections_.size());
  w.EndObject();
  w.Key("draining");
  w.Bool(draining_);
  if (extra) extra(&w);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

}  // namespace rlb::lb
