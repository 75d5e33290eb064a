// LoadBalancer: listener, worker links, dispatch and waiting, shutdown, status document.
#include "zklb/load_balancer.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include <glog/logging.h>

#include "common/version.h"
#include "common/wall_clock.h"


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
      request_metrics_(options_.metrics_classes),
      start_time_(EpochSeconds()),
      response_budget_(options_.response_memory_total, options_.response_disk_total),
      write_batcher_(loop),
      deleter_(loop),
      loop_lag_(loop) {
  constexpr size_t kReadBufferSize = 64 * 1024;
  read_buffer_ = std::make_unique<char[]>(kReadBufferSize);
  client_context_.read_buffer = read_buffer_.get();
  client_context_.read_buffer_size = kReadBufferSize;
  client_context_.options = &options_;
  client_context_.classifier = classifier_.get();
  client_context_.policy.max_retries = options_.max_retries;
  client_context_.policy.disconnect_message = &disconnect_message_;
  client_context_.policy.stats = &stats_;
  access_log_.set_metrics(&request_metrics_);
  client_context_.access_log = &access_log_;
  client_context_.deleter = &deleter_;
  client_context_.write_batcher = &write_batcher_;
  client_context_.response_budget = &response_budget_;
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
  s = access_log_.Open(options_.access_log, options_.access_log_json ? AccessLog::Format::kJson
                                                                     : AccessLog::Format::kText);
  if (!s.ok()) return s;
  s = ListenTcp(listener_.get(), options_.address, options_.listen_backlog, &OnConnection,
                &bound_, options_.reuse_port);
  if (!s.ok()) return s;
  fd_budget_.emplace(FdBudget::ForThisProcess(options_.max_connections));
  for (auto& [name, link] : links_) link->set_fd_budget(&*fd_budget_);
  if (options_.max_connections > 0 && fd_budget_->Needed(0) > fd_budget_->limit()) {
    LOG(WARNING) << "the open-file limit (" << fd_budget_->limit() << ") is below what "
                 << "--max_connections=" << options_.max_connections << " needs ("
                 << fd_budget_->Needed(0) << " with no worker): raise it (ulimit -n, systemd "
                 << "LimitNOFILE=)";
  }
  CheckFdLimitForWorkers();
  return Status::OK();
}

void LoadBalancer::CheckFdLimitForWorkers() {
  if (!fd_budget_) return;
  size_t wanted = 0;
  for (const auto& [name, link] : links_) wanted += link->wanted() ? 1 : 0;
  if (wanted <= fd_budget_->link_capacity() || wanted <= fd_warned_workers_) return;
  fd_warned_workers_ = wanted;
  LOG(WARNING) << wanted << " workers are known but the open-file limit ("
               << fd_budget_->limit() << ") leaves room for " << fd_budget_->link_capacity()
               << " worker connections (" << fd_budget_->base() << " descriptors open at start, "
               << FdBudget::kMarginFds << " kept spare, " << fd_budget_->client_reserve()
               << " for client connections): raise it to at least "
               << fd_budget_->Needed(wanted) << " (ulimit -n, systemd LimitNOFILE=)";
}

size_t LoadBalancer::FdStarvedLinks() const {
  size_t n = 0;
  for (const auto& [name, link] : links_) {
    n += link->wanted() && !link->connected() && link->fd_starved() ? 1 : 0;
  }
  return n;
}

void LoadBalancer::OnLinkFdShortage(WorkerLink* link) {
  ++link_fd_shortages_;
  double now = static_cast<double>(uv_now(loop_));
  constexpr double kFdWarningIntervalMs = 60e3;
  if (now - last_fd_warning_ < kFdWarningIntervalMs) return;
  last_fd_warning_ = now;
  size_t wanted = 0;
  for (const auto& [name, l] : links_) wanted += l->wanted() ? 1 : 0;
  // Links connected or connecting hold a descriptor: the others are those without.
  size_t with_fd = std::min<size_t>(wanted, fd_budget_->links_open());
  LOG(WARNING) << "out of file descriptors for worker connections: " << wanted - with_fd
               << " of " << wanted << " workers not connected (e.g. " << link->name() << ": "
               << link->last_error() << "); serving with those connected and retrying; "
               << "raise the open-file limit (" << fd_budget_->limit() << ") to at least "
               << fd_budget_->Needed(wanted) << " (logged at most once a minute)";
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
    // EMFILE/ENFILE reach here only when libuv's spare descriptor is gone too (it otherwise
    // accepts and closes the pending connections itself, and says nothing): at most one
    // line a minute, as libuv calls this for every pending connection.
    double now = static_cast<double>(uv_now(self->loop_));
    if (now - self->last_accept_fd_warning_ >= 60e3) {
      self->last_accept_fd_warning_ = now;
      LOG(WARNING) << "accept failed: " << uv_strerror(status)
                   << " (logged at most once a minute)";
    }
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
  // Out of descriptors: accepting would fail (libuv would accept and close the pending
  // connections); the connection waits in the backlog until one closes, as past -m.
  if (fd_budget_ && !fd_budget_->ClientFits(connections_.size())) {
    ++accept_pauses_;
    double now = static_cast<double>(uv_now(loop_));
    if (now - last_accept_fd_warning_ >= 60e3) {
      last_accept_fd_warning_ = now;
      LOG(WARNING) << "not accepting client connections: " << connections_.size()
                   << " open and " << fd_budget_->links_open()
                   << " worker connections use the open-file limit (" << fd_budget_->limit()
                   << "); accepting again when one closes (logged at most once a minute)";
    }
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

void LoadBalancer::SetOtherBalancers(size_t count) {
  if (options_.placement != "auto" || !pool_->ClassPlacementName()[0]) return;
  const bool several = count > 0 || options_.processes > 1;
  const ClassPlacement want = several ? ClassPlacement::kHashRing
                                      : ClassPlacement::kLeastRecentlyUsed;
  const char* before = pool_->ClassPlacementName();
  pool_->SetClassPlacement(want);
  if (std::string_view(before) != pool_->ClassPlacementName()) {
    LOG(INFO) << count << " other load balancer" << (count == 1 ? "" : "s")
              << (several ? ": new classes are placed by consistent hashing, so all agree"
                          : ": new classes go to the least recently used worker");
  }
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
  std::vector<WorkerLink*> fresh;
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
    auto link = std::make_unique<WorkerLink>(static_cast<WorkerLink::Observer*>(this), &options_,
                                             loop_, name, *hp, version, &write_batcher_);
    if (fd_budget_) link->set_fd_budget(&*fd_budget_);
    fresh.push_back(link.get());
    links_[name] = std::move(link);
  }
  // Warned about before the first attempts: the shortage they meet is then explained.
  CheckFdLimitForWorkers();
  for (WorkerLink* link : fresh) link->Start();
  ReapLinks();
}

void LoadBalancer::ReapLinks() {
  for (auto it = links_.begin(); it != links_.end();) {
    if (!it->second->wanted() && !it->second->connected()) {
      LOG(INFO) << "worker " << it->first << " removed";
      held_resumes_.erase(it->first);
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

void LoadBalancer::SetDisabled(const std::set<std::string>& names) {
  std::set<std::string> was = std::move(disabled_);
  disabled_ = names;
  for (auto& [name, link] : links_) {
    bool now = disabled_.count(name) > 0;
    if (now == (was.count(name) > 0)) continue;
    const PoolWorkerPtr& worker = link->pool_worker();
    if (now) {
      LOG(INFO) << "worker " << name << " disabled: no new requests (" << link->in_flight()
                << " in flight finish)";
      if (worker) pool_->Remove(worker);
      continue;
    }
    LOG(INFO) << "worker " << name << " enabled";
    if (worker && link->ready()) {
      auto held = held_resumes_.find(name);
      Resume resume = held != held_resumes_.end() ? std::move(held->second) : worker->resume();
      pool_->NewResume(worker, std::move(resume));
    }
  }
  std::erase_if(held_resumes_, [this](const auto& h) { return !disabled_.count(h.first); });
  ServeWaiters();
}

void LoadBalancer::OnLinkResume(WorkerLink* link, Resume resume) {
  if (disabled_.count(link->name())) {
    held_resumes_[link->name()] = std::move(resume);
    return;
  }
  pool_->NewResume(link->pool_worker(), std::move(resume));
  ServeWaiters();
}

void LoadBalancer::OnLinkRemoved(WorkerLink* link) {
  held_resumes_.erase(link->name());  // a new connection sends a new résumé
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
  write_batcher_.Close();
  deleter_.Close();
  loop_lag_.Close();
  auto done = std::move(shutdown_done_);
  shutdown_done_ = nullptr;
  if (done) done();
}

LbStatusSnapshot LoadBalancer::StatusSnapshot() const {
  auto number = [](double d) { return std::isnan(d) ? std::nullopt : std::optional<double>(d); };
  PoolStatus st = pool_->Status();
  LbStatusSnapshot out;
  out.backlog = st.backlog;
  out.mean_backlog = number(st.mean_backlog);
  for (const auto& wk : st.workers) {
    auto it = links_.find(wk.name);
    const WorkerLink* link = it != links_.end() ? it->second.get() : nullptr;
    out.workers.push_back({wk.name, wk.backlog, number(wk.mbacklog),
                           link ? link->oldest_start() : std::nullopt,
                           link ? link->queued_bytes() : 0});
  }
  for (const auto& [name, link] : links_) {  // sorted by name
    LbStatusSnapshot::Link& l = out.links.emplace_back();
    l.name = name;
    l.connected = link->connected();
    l.in_pool = link->pool_worker() && link->pool_worker()->in_pool();
    l.version = link->version();
    l.resume_size = link->resume_size();
    l.requests = link->requests_sent();
    l.in_flight = link->in_flight();
    if (!link->last_error().empty()) {
      l.last_error = link->last_error();
      l.last_error_time = link->last_error_time();
    }
    l.state = link->state_name();
    l.failures = link->failures();
    l.disabled = disabled_.count(name) > 0;
  }
  const PoolSettings& settings = pool_->settings();
  out.pool = {options_.pool, st.single_version, st.active_version, settings.variance,
              settings.backlog_history, settings.unskilled_score, pool_->ClassPlacementName()};
  out.totals = {.requests = stats_.requests,
                .responses = stats_.responses,
                .retries = stats_.retries,
                .bad_gateway = stats_.bad_gateway,
                .unavailable = stats_.unavailable,
                .client_errors = stats_.client_errors,
                .truncated = stats_.truncated,
                .client_aborts = stats_.client_aborts,
                .retries_refused = stats_.retries_refused,
                .queries_of_death = stats_.queries_of_death,
                .invalid_responses = stats_.invalid_responses,
                .connections_accepted = stats_.connections,
                .connections_open = connections_.size()};
  out.draining = draining_;
  if (fd_budget_) {
    out.file_descriptors = LbStatusSnapshot::FileDescriptors{
        .limit = fd_budget_->limit(),
        .base = fd_budget_->base(),
        .client_reserve = fd_budget_->client_reserve(),
        .link_capacity = fd_budget_->link_capacity(),
        .links_open = fd_budget_->links_open(),
        .workers_waiting = FdStarvedLinks(),
        .link_shortages = link_fd_shortages_,
        .accept_pauses = accept_pauses_};
  }
  out.response_buffers.memory = response_budget_.memory_used();
  out.response_buffers.disk = response_budget_.disk_used();
  out.loop_lag.last = loop_lag_.last_ms();
  out.loop_lag.recent_max = loop_lag_.recent_max_ms();
  out.loop_lag.max = loop_lag_.max_ms();
  out.version = kVersion;
  out.start_time = start_time_;
  out.uptime = EpochSeconds() - start_time_;
  out.bad_gateway_invalid_head = stats_.invalid_heads;
  out.response_memory_limit = options_.response_memory_total;
  out.response_disk_limit = options_.response_disk_total;
  request_metrics_.Fill(&out);
  // Which workers serve the busiest classes: those whose résumé has the class.
  constexpr size_t kMaxServers = 16;
  for (LbStatusSnapshot::Class& c : out.requests.classes) {
    for (const auto& [name, link] : links_) {
      const PoolWorkerPtr& worker = link->pool_worker();
      if (!worker || !worker->in_pool()) continue;
      auto it = worker->resume().find(c.name);
      if (it != worker->resume().end()) c.workers.push_back({name, it->second});
    }
    std::sort(c.workers.begin(), c.workers.end(), [](const auto& a, const auto& b) {
      return a.score != b.score ? a.score > b.score : a.worker < b.worker;
    });
    if (c.workers.size() > kMaxServers) c.workers.resize(kMaxServers);
  }
  return out;
}

}  // namespace rlb::lb
