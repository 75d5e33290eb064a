// Supervisor: the master's loop — signals, reaping, the periodic checks (readiness,
// harakiri, recycling, respawns, the rolling reload) and the status document.
#include "zkworker/supervisor.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include <glog/logging.h>

#include "common/json.h"
#include "status/status_server.h"
#include "zkworker/supervisor_policy.h"

namespace rlb::worker {
namespace {

constexpr uint64_t kTickMs = 100;
constexpr int64_t kRssCheckMs = 1000;
constexpr double kKillAfterDrainSeconds = 10;  // past drain_timeout, a draining process is killed

std::string ProcessName(int index, pid_t pid) {
  return "process " + std::to_string(index) + " (pid " + std::to_string(pid) + ")";
}

std::string Seconds(double s) {
  std::ostringstream out;
  out.precision(s < 10 ? 2 : 3);
  out << s << " s";
  return out.str();
}

}  // namespace

uint64_t ProcessRssBytes(pid_t pid) {
  std::ifstream statm("/proc/" + std::to_string(pid) + "/statm");
  uint64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

std::string DescribeWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return "exited with status " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    int sig = WTERMSIG(wait_status);
    return "killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
  }
  return "ended (wait status " + std::to_string(wait_status) + ")";
}

Supervisor::Supervisor(uv_loop_t* loop, SupervisorOptions options, LaunchFn launch)
    : loop_(loop), options_(std::move(options)), launch_(std::move(launch)) {
  rng_state_ = std::random_device{}();
  slots_.resize(options_.processes);
  for (int i = 0; i < options_.processes; ++i) slots_[i].index = i;
}

Supervisor::~Supervisor() = default;

int Supervisor::Run() {
  // Fail only on invalid arguments: a failure is a bug.
  auto watch = [this](UvHandle<uv_signal_t>* h, int signum) {
    CHECK_EQ(h->Init(loop_, this), 0);
    CHECK_EQ(uv_signal_start(h->get(), [](uv_signal_t* s, int sig) {
      static_cast<Supervisor*>(s->data)->OnSignal(sig);
    }, signum), 0);
  };
  watch(&sigchld_, SIGCHLD);
  watch(&sigterm_, SIGTERM);
  watch(&sigint_, SIGINT);
  watch(&sighup_, SIGHUP);
  watch(&sigusr1_, SIGUSR1);
  watch(&sigusr2_, SIGUSR2);
  CHECK_EQ(tick_.Init(loop_, this), 0);
  CHECK_EQ(uv_timer_start(tick_.get(), [](uv_timer_t* t) {
    static_cast<Supervisor*>(t->data)->Tick();
  }, kTickMs, kTickMs), 0);
  if (!options_.status_socket.empty()) {
    status_server_ = std::make_unique<StatusServer>(loop_, options_.status_socket,
                                                    [this] { return StatusDocument(); });
    Status s = status_server_->Start();
    if (!s.ok()) {
      LOG(ERROR) << s.message();
      exit_code_ = 2;
      status_server_.reset();
      Stop(2);
    }
  }
  if (!stopping_) {
    LOG(INFO) << "zkworker master (pid " << getpid() << ") starting " << options_.processes
              << " process" << (options_.processes == 1 ? "" : "es")
              << (options_.preload ? " (application preloaded)" : "");
    for (auto& slot : slots_) {
      Spawn(&slot);
      if (stopping_) break;
    }
  }
  MaybeFinish();
  CHECK_EQ(uv_run(loop_, UV_RUN_DEFAULT), 0);
  return exit_code_;
}

void Supervisor::ForgetInChild(const ProcessBoard* keep) {
  for (auto* h : {&sigchld_, &sigterm_, &sigint_, &sighup_, &sigusr1_, &sigusr2_}) {
    // Only the process-wide dispositions and libuv's process-wide table are touched: the
    // master's loop (its descriptors are shared with the master) is never run here.
    if (h->open()) uv_signal_stop(h->get());
  }
  for (auto& [pid, p] : processes_) {
    if (p->board.get() != keep) close(p->board->fd());
  }
}

void Supervisor::OnSignal(int signum) {
  switch (signum) {
    case SIGCHLD:
      Reap();
      break;
    case SIGTERM:
    case SIGINT:
      if (!stopping_) {
        LOG(INFO) << "master: " << strsignal(signum) << ": draining every process";
        Stop(0);
      }
      break;
    case SIGHUP: {
      if (stopping_) break;
      ++reloads_;
      LOG(INFO) << "master: SIGHUP: processes reopen their logs; rolling reload of "
                << options_.processes << " process" << (options_.processes == 1 ? "" : "es");
      // A process that is not ready yet may not handle SIGHUP yet (it would end it); it is
      // new anyway.
      for (auto& [pid, p] : processes_) {
        if (p->ready) kill(pid, SIGHUP);
      }
      reload_queue_.clear();
      for (auto& slot : slots_) reload_queue_.push_back(slot.index);
      Tick();
      break;
    }
    default:
      VLOG(1) << "master: ignoring signal " << signum << " (" << strsignal(signum) << ")";
  }
}

void Supervisor::Reap() {
  for (;;) {
    int wait_status = 0;
    pid_t pid = waitpid(-1, &wait_status, WNOHANG);
    if (pid <= 0) break;
    auto it = processes_.find(pid);
    if (it == processes_.end()) continue;  // not ours (an application's grandchild)
    std::unique_ptr<Process> p = std::move(it->second);
    processes_.erase(it);
    ProcessExited(p.get(), wait_status);
  }
  MaybeFinish();
}

void Supervisor::ProcessExited(Process* p, int wait_status) {
  Slot& slot = slots_[p->index];
  std::string name = ProcessName(p->index, p->pid);
  std::string how = DescribeWaitStatus(wait_status);
  bool was_current = slot.current == p;
  if (was_current) slot.current = nullptr;
  if (slot.successor == p) slot.successor = nullptr;
  if (p->retiring || stopping_) {
    LOG(INFO) << name << " " << how << (p->retiring ? " after draining" : "");
    return;
  }
  int64_t now = MonotonicMs();
  if (!any_ready_ && !p->ready) {
    LOG(ERROR) << name << " " << how << " before it could serve; stopping (see its error "
               << "above)";
    Stop(2);
    return;
  }
  double lived = static_cast<double>(now - p->started_ms) / 1000.0;
  if (p->harakiri || (p->ready && lived >= kQuickDeathSeconds)) {
    slot.quick_deaths = 1;
  } else {
    ++slot.quick_deaths;
  }
  double delay = RespawnDelay(slot.quick_deaths);
  ++slot.restarts;
  std::ostringstream line;
  line << name << " " << how << " after " << Seconds(lived);
  if (!was_current) line << " (it was starting as a replacement)";
  line << "; respawning ";
  if (delay == 0) {
    line << "now";
  } else {
    line << "in " << Seconds(delay) << " (" << slot.quick_deaths
         << " deaths at start-up in a row)";
  }
  LOG(WARNING) << line.str();
  slot.respawn_at_ms = now + static_cast<int64_t>(delay * 1000);
  if (delay == 0) Spawn(&slot);
}

void Supervisor::Spawn(Slot* slot) {
  slot->respawn_at_ms = -1;
  auto board = ProcessBoard::Create(options_.threads);
  if (!board.ok()) {
    LOG(ERROR) << "cannot start process " << slot->index << ": " << board.status().message();
    slot->respawn_at_ms = MonotonicMs() + 1000;
    return;
  }
  auto address = ProcessAddress(options_.address, slot->index);
  CHECK(address.ok()) << address.status().message();  // validated with the options
  ProcessSpec spec;
  spec.index = slot->index;
  spec.address = *address;
  if (options_.admin_address) {
    auto admin = ProcessAddress(*options_.admin_address, slot->index);
    CHECK(admin.ok()) << admin.status().message();  // validated with the options
    spec.admin_address = *admin;
  }
  if (options_.advertise) {
    auto advertise = ProcessAddress(*options_.advertise, slot->index);
    CHECK(advertise.ok()) << advertise.status().message();  // validated with the options
    spec.advertise = *advertise;
  }
  spec.resume_file = ProcessFilePath(options_.resume_file, slot->index);
  spec.tracelog = ProcessFilePath(options_.tracelog, slot->index);
  spec.board = board->get();
  auto pid = launch_(spec);
  if (!pid.ok()) {
    LOG(ERROR) << "cannot start process " << slot->index << ": " << pid.status().message();
    slot->respawn_at_ms = MonotonicMs() + 1000;
    return;
  }
  auto p = std::make_unique<Process>();
  p->index = slot->index;
  p->pid = *pid;
  p->board = std::move(*board);
  p->started_ms = MonotonicMs();
  rng_state_ = rng_state_ * 6364136223846793005ULL + 1442695040888963407ULL;
  p->max_requests =
      JitteredMaxRequests(options_.max_requests, options_.max_requests_jitter, rng_state_ >> 33);
  if (slot->current == nullptr) {
    slot->current = p.get();
  } else {
    slot->successor = p.get();
  }
  LOG(INFO) << "started " << ProcessName(p->index, p->pid) << " for " << address->ToString()
            << (slot->successor == p.get() ? " to replace pid " + std::to_string(slot->current->pid) +
                                                 " (" + slot->replace_reason + ")"
                                           : std::string());
  processes_[p->pid] = std::move(p);
}

void Supervisor::Tick() {
  if (finished_) return;
  // A SIGCHLD may be coalesced with one being handled: reap on every tick too.
  Reap();
  if (finished_) return;
  int64_t now = MonotonicMs();
  for (auto& [pid, p] : processes_) {
    if (!p->ready) CheckReady(p.get(), now);
    CheckHarakiri(p.get(), now);
    if ((p->retiring || stopping_) && p->term_sent_ms != 0 &&
        now - p->term_sent_ms > static_cast<int64_t>(
                                    (options_.drain_timeout + kKillAfterDrainSeconds) * 1000)) {
      LOG(WARNING) << ProcessName(p->index, pid) << " still draining "
                   << Seconds((now - p->term_sent_ms) / 1000.0) << " after SIGTERM; killing it";
      kill(pid, SIGKILL);
      p->term_sent_ms = now;  // once per period
    }
  }
  if (stopping_) return;
  bool check_rss = options_.reload_on_rss_mb > 0 && now - last_rss_check_ms_ >= kRssCheckMs;
  if (check_rss) last_rss_check_ms_ = now;
  bool replacing = false;
  for (auto& slot : slots_) {
    if (slot.respawn_at_ms >= 0 && now >= slot.respawn_at_ms &&
        (slot.current == nullptr || slot.successor == nullptr)) {
      Spawn(&slot);
    }
    if (slot.successor != nullptr) replacing = true;
    if (slot.successor == nullptr && slot.respawn_at_ms < 0 && slot.current != nullptr &&
        slot.current->ready) {
      if (options_.max_requests > 0 && slot.current->board->requests() >= slot.current->max_requests) {
        BeginReplace(&slot, "served " + std::to_string(slot.current->board->requests()) +
                                " requests, max_requests " +
                                std::to_string(slot.current->max_requests));
      } else if (check_rss) {
        uint64_t rss = ProcessRssBytes(slot.current->pid);
        if (rss > options_.reload_on_rss_mb * 1024 * 1024) {
          BeginReplace(&slot, "RSS " + std::to_string(rss >> 20) + " MB over reload_on_rss " +
                                  std::to_string(options_.reload_on_rss_mb) + " MB");
        }
      }
    }
  }
  // The rolling reload: one slot at a time, the next once no replacement is under way.
  while (!replacing && !reload_queue_.empty()) {
    Slot& slot = slots_[reload_queue_.front()];
    reload_queue_.erase(reload_queue_.begin());
    if (slot.current == nullptr || slot.successor != nullptr || slot.respawn_at_ms >= 0) {
      continue;  // being respawned anyway: it will run the new code
    }
    if (!slot.current->ready) {
      Retire(slot.current, "reload");  // started before the reload: start it again
      slot.current = nullptr;
      Spawn(&slot);
      continue;
    }
    BeginReplace(&slot, "reload");
    replacing = true;
  }
}

void Supervisor::CheckReady(Process* p, int64_t now) {
  const ProcessBoard& b = *p->board;
  if (!b.listening()) return;
  // In ZooKeeper mode with a fixed port the successor cannot register before the old
  // process has gone (the node names the address): listening is enough then.
  bool fixed_port = options_.address.port != 0;
  if (options_.zookeeper_mode && !fixed_port && !b.registered()) return;
  p->ready = true;
  p->address = b.address();
  any_ready_ = true;
  Slot& slot = slots_[p->index];
  slot.quick_deaths = slot.quick_deaths > 0 ? slot.quick_deaths : 0;
  LOG(INFO) << ProcessName(p->index, p->pid) << " serving on " << p->address << " after "
            << Seconds((now - p->started_ms) / 1000.0);
  if (slot.successor == p) {
    Process* old = slot.current;
    slot.current = p;
    slot.successor = nullptr;
    ++slot.recycles;
    if (old != nullptr) Retire(old, slot.replace_reason);
  }
}

void Supervisor::CheckHarakiri(Process* p, int64_t now) {
  if (options_.harakiri <= 0 || p->harakiri) return;
  auto longest = p->board->Longest(now);
  if (!longest || longest->seconds < options_.harakiri) return;
  LOG(ERROR) << "harakiri: killing " << ProcessName(p->index, p->pid) << ": " << longest->what
             << " running for " << Seconds(longest->seconds) << " (harakiri "
             << options_.harakiri << " s)";
  kill(p->pid, SIGKILL);
  p->harakiri = true;
  ++slots_[p->index].harakiri_kills;
  ++harakiri_total_;
}

void Supervisor::BeginReplace(Slot* slot, const std::string& reason) {
  LOG(INFO) << ProcessName(slot->index, slot->current->pid) << ": " << reason
            << "; starting its replacement";
  slot->replace_reason = reason;
  Spawn(slot);
}

void Supervisor::Retire(Process* p, const std::string& reason) {
  LOG(INFO) << ProcessName(p->index, p->pid) << " replaced (" << reason << "); draining it";
  p->retiring = true;
  p->term_sent_ms = MonotonicMs();
  kill(p->pid, SIGTERM);
}

void Supervisor::Stop(int exit_code) {
  if (stopping_) return;
  stopping_ = true;
  exit_code_ = exit_code;
  stop_ms_ = MonotonicMs();
  reload_queue_.clear();
  for (auto& [pid, p] : processes_) {
    if (p->retiring) continue;  // draining already
    p->term_sent_ms = stop_ms_;
    kill(pid, SIGTERM);
  }
  MaybeFinish();
}

void Supervisor::MaybeFinish() {
  if (!stopping_ || finished_ || !processes_.empty()) return;
  finished_ = true;
  LOG(INFO) << "master: every process has exited; exiting " << exit_code_;
  if (status_server_) status_server_->Close();
  for (auto* h : {&sigchld_, &sigterm_, &sigint_, &sighup_, &sigusr1_, &sigusr2_}) h->Close();
  tick_.Close();
}

std::string Supervisor::StatusDocument() const {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  int64_t now = MonotonicMs();
  auto process = [&](const Process& p) {
    w.StartObject();
    w.Key("pid");
    w.Int(p.pid);
    w.Key("address");
    w.String(p.ready ? p.address.c_str() : "");
    w.Key("state");
    w.String(p.retiring ? "draining" : p.ready ? "serving" : "starting");
    w.Key("requests");
    w.Uint64(p.board->requests());
    w.Key("running");
    w.Int(p.board->running());
    w.Key("max_requests");
    w.Uint64(p.max_requests);
    w.Key("rss_bytes");
    w.Uint64(ProcessRssBytes(p.pid));
    w.Key("age_seconds");
    w.Double(static_cast<double>(now - p.started_ms) / 1000.0);
    w.EndObject();
  };
  w.StartObject();
  w.Key("pid");
  w.Int(getpid());
  w.Key("processes");
  w.Int(options_.processes);
  w.Key("preload");
  w.Bool(options_.preload);
  w.Key("stopping");
  w.Bool(stopping_);
  w.Key("reloads");
  w.Uint64(reloads_);
  w.Key("harakiri");
  w.Uint64(harakiri_total_);
  w.Key("slots");
  w.StartArray();
  uint64_t restarts = 0;
  for (const auto& slot : slots_) {
    restarts += slot.restarts;
    w.StartObject();
    w.Key("index");
    w.Int(slot.index);
    w.Key("restarts");
    w.Uint64(slot.restarts);
    w.Key("recycles");
    w.Uint64(slot.recycles);
    w.Key("harakiri");
    w.Uint64(slot.harakiri_kills);
    w.Key("process");
    if (slot.current) {
      process(*slot.current);
    } else {
      w.Null();
    }
    w.Key("successor");
    if (slot.successor) {
      process(*slot.successor);
    } else {
      w.Null();
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("draining");
  w.StartArray();
  for (const auto& [pid, p] : processes_) {
    if (p->retiring) process(*p);
  }
  w.EndArray();
  w.Key("restarts");
  w.Uint64(restarts);
  w.EndObject();
  return buffer.GetString();
}

}  // namespace rlb::worker
