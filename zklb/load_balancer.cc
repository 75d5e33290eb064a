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

#include "zklb/client_connection.h"

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
      disconnect_message_(kDefaultDisconnectMessage) {
  uv_tcp_init(loop_, &listener_);
  listener_.data = this;
  uv_timer_init(loop_, &wait_timer_);
  wait_timer_.data = this;
  uv_timer_init(loop_, &drain_timer_);
  drain_timer_.data = this;
}

LoadBalancer::~LoadBalancer() {
  if (own_access_log_ && access_log_) std::fclose(access_log_);
}

Status LoadBalancer::Start() {
  if (!options_.disconnect_message_file.empty()) {
    std::ifstream in(options_.disconnect_message_file, std::ios::binary);
    if (!in) {
      return Status::InvalidArgument("cannot read disconnect message file " +
                                     options_.disconnect_message_file + ": " +
                                     std::strerror(errno));
    }
    std::stringstream ss;
    ss << in.rdbuf();
    disconnect_message_ = ss.str();
  }
  if (options_.access_log == "-") {
    access_log_ = stdout;
  } else if (!options_.access_log.empty()) {
    access_log_ = std::fopen(options_.access_log.c_str(), "ae");
    if (!access_log_) {
      return Status::InvalidArgument("cannot open access log " + options_.access_log + ": " +
                                     std::strerror(errno));
    }
    own_access_log_ = true;
  }
  Status s = ListenTcp(&listener_, options_.address, options_.listen_backlog, &OnConnection,
                       &bound_);
  if (!s.ok()) return s;
  listening_ = true;
  return Status::OK();
}

void LoadBalancer::OnConnection(uv_stream_t* server, int status) {
  auto* self = static_cast<LoadBalancer*>(server->data);
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
  if (!accept_pending_ || !listening_) return;
  if (options_.max_connections > 0 &&
      connections_.size() >= static_cast<size_t>(options_.max_connections)) {
    return;
  }
  accept_pending_ = false;
  ++counters_.connections;
  auto* conn = new ClientConnection(this);
  Status s = conn->Accept(reinterpret_cast<uv_stream_t*>(&listener_));
  if (!s.ok()) {
    LOG(WARNING) << s.ToString();  // the connection deletes itself when its handles close
    return;
  }
  connections_.insert(conn);
  conn->Start();
}

void LoadBalancer::ConnectionClosed(ClientConnection* conn) {
  connections_.erase(conn);
  AcceptPending();
  MaybeFinishShutdown();
}

void LoadBalancer::SetWorkers(const std::map<std::string, std::optional<std::string>>& workers) {
  for (auto& [name, link] : links_) {
    if (!workers.count(name)) link->SetWanted(false, std::nullopt);
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
    auto link = std::make_unique<WorkerLink>(this, loop_, name, *hp, version);
    WorkerLink* raw = link.get();
    links_[name] = std::move(link);
    raw->Start();
  }
  ReapLinks();
}

void LoadBalancer::ReapLinks() {
  for (auto it = links_.begin(); it != links_.end();) {
    if (!it->second->wanted() && !it->second->connected()) {
      it->second->Stop();  // closes its handles; deleted once they are closed
      dying_links_.push_back(std::move(it->second));
      it = links_.erase(it);
    } else {
      ++it;
    }
  }
  std::erase_if(dying_links_, [](const auto& l) { return l->Dead(); });
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

void LoadBalancer::Dispatch(Exchange* exchange) {
  PoolWorkerPtr worker = waiters_.empty() ? pool_->Get(exchange->request_class()) : nullptr;
  if (!worker) {
    double deadline = static_cast<double>(uv_now(loop_)) + options_.worker_wait_timeout * 1000;
    waiters_.emplace_back(exchange, deadline);
    exchange->set_waiting(true);
    ArmWaitTimer();
    ServeWaiters();
    return;
  }
  exchange->Assign(std::move(worker));
}

void LoadBalancer::ServeWaiters() {
  while (!waiters_.empty() && pool_->size() > 0) {
    Exchange* ex = waiters_.front().first;
    waiters_.pop_front();
    PoolWorkerPtr worker = pool_->Get(ex->request_class());
    ex->Assign(std::move(worker));
  }
  ArmWaitTimer();
}

void LoadBalancer::ForgetWaiting(Exchange* exchange) {
  std::erase_if(waiters_, [exchange](const auto& w) { return w.first == exchange; });
}

void LoadBalancer::ArmWaitTimer() {
  if (waiters_.empty()) {
    uv_timer_stop(&wait_timer_);
    return;
  }
  double now = static_cast<double>(uv_now(loop_));
  double delay = std::max(0.0, waiters_.front().second - now);
  uv_timer_start(&wait_timer_, [](uv_timer_t* t) {
    auto* self = static_cast<LoadBalancer*>(t->data);
    double now = static_cast<double>(uv_now(self->loop_));
    while (!self->waiters_.empty() && self->waiters_.front().second <= now) {
      Exchange* ex = self->waiters_.front().first;
      self->waiters_.pop_front();
      ex->NoWorker();
    }
    self->ArmWaitTimer();
  }, static_cast<uint64_t>(delay) + 1, 0);
}

void LoadBalancer::AccessLog(const std::string& line) {
  if (!access_log_) return;
  std::fputs(line.c_str(), access_log_);
  std::fputc('\n', access_log_);
  std::fflush(access_log_);
}

void LoadBalancer::Shutdown(std::function<void()> done) {
  if (draining_) return;
  draining_ = true;
  shutdown_done_ = std::move(done);
  if (listening_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
    listening_ = false;
  }
  LOG(INFO) << "draining: " << pool_->backlog() << " request(s) in flight, "
            << connections_.size() << " connection(s)";
  auto conns = connections_;
  for (ClientConnection* c : conns) c->CloseWhenIdle();
  uv_timer_start(&drain_timer_, [](uv_timer_t* t) {
    auto* self = static_cast<LoadBalancer*>(t->data);
    LOG(WARNING) << "drain timeout: closing " << self->connections_.size() << " connection(s)";
    auto conns = self->connections_;
    for (ClientConnection* c : conns) c->Abort("drain timeout");
  }, static_cast<uint64_t>(options_.drain_timeout * 1000), 0);
  MaybeFinishShutdown();
}

void LoadBalancer::MaybeFinishShutdown() {
  if (!draining_ || !shutdown_done_ || !connections_.empty()) return;
  if (!links_.empty()) {
    for (auto& [name, link] : links_) link->SetWanted(false, std::nullopt);
    for (auto& [name, link] : links_) {
      link->Stop();
      dying_links_.push_back(std::move(link));
    }
    links_.clear();
  }
  for (auto& ex : waiters_) (void)ex;  // no connections: no waiters left either
  uv_timer_stop(&wait_timer_);
  uv_timer_stop(&drain_timer_);
  std::erase_if(dying_links_, [](const auto& l) { return l->Dead(); });
  if (!dying_links_.empty()) return;  // handles still closing; ReapLinks calls back
  uv_close(reinterpret_cast<uv_handle_t*>(&wait_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&drain_timer_), nullptr);
  auto done = std::move(shutdown_done_);
  shutdown_done_ = nullptr;
  done();
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
  w.Uint64(counters_.requests);
  w.Key("responses");
  w.Uint64(counters_.responses);
  w.Key("retries");
  w.Uint64(counters_.retries);
  w.Key("502");
  w.Uint64(counters_.bad_gateway);
  w.Key("503");
  w.Uint64(counters_.unavailable);
  w.Key("client_errors");
  w.Uint64(counters_.client_errors);
  w.Key("truncated");
  w.Uint64(counters_.truncated);
  w.Key("connections_accepted");
  w.Uint64(counters_.connections);
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
