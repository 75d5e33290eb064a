// The master of a group of event-loop processes: fork, respawn, pass signals on.
#include "common/process_group.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <vector>

#include <glog/logging.h>

#include "common/process_policy.h"
#include "common/text.h"

namespace rlb {

namespace {

double MonotonicSeconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = strsignal(WTERMSIG(status));
    return "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
           (name ? name : "?") + ")";
  }
  return "ended (status " + std::to_string(status) + ")";
}

struct Slot {
  pid_t pid = 0;          // 0: not running
  double started = 0;     // monotonic seconds
  int quick_deaths = 0;   // start-up deaths in a row
  double respawn_at = 0;  // when pid == 0 and the group runs: when to start it again
};

class Master {
 public:
  Master(const ProcessGroupOptions& options, const ProcessMain& process_main)
      : options_(options), process_main_(process_main), slots_(options.processes) {}

  int Run() {
    sigemptyset(&handled_);
    for (int signum : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&handled_, signum);
    CHECK_EQ(sigprocmask(SIG_BLOCK, &handled_, &saved_mask_), 0);
    master_pid_ = getpid();
    LOG(INFO) << options_.program << " master (pid " << master_pid_ << ") starting "
              << options_.processes << " processes";
    for (size_t i = 0; i < slots_.size(); ++i) Spawn(static_cast<int>(i));
    for (;;) {
      if (stopping_ && Running() == 0) break;
      siginfo_t info;
      int signum;
      double next = NextRespawn();
      if (next < 0) {
        signum = sigwaitinfo(&handled_, &info);
      } else {
        double wait = std::max(0.0, next - MonotonicSeconds());
        timespec ts{static_cast<time_t>(wait),
                    static_cast<long>((wait - std::floor(wait)) * 1e9)};
        signum = sigtimedwait(&handled_, &info, &ts);
      }
      if (signum < 0) {
        if (errno != EAGAIN && errno != EINTR) PLOG(FATAL) << "sigtimedwait";
        RespawnDue();
        continue;
      }
      switch (signum) {
        case SIGCHLD: Reap(); break;
        case SIGHUP:
          LOG(INFO) << "SIGHUP: passing it on to the processes";
          Signal(SIGHUP);
          break;
        default:  // SIGTERM, SIGINT
          if (!stopping_) {
            LOG(INFO) << "signal " << signum << ": stopping " << Running() << " processes";
            stopping_ = true;
          }
          Signal(SIGTERM);
          break;
      }
      RespawnDue();
    }
    LOG(INFO) << options_.program << " master exiting";
    return failed_at_stop_ ? 1 : 0;
  }

 private:
  int Running() const {
    int n = 0;
    for (const Slot& s : slots_) n += s.pid != 0;
    return n;
  }

  // The earliest pending respawn, or -1 when none is pending.
  double NextRespawn() const {
    if (stopping_) return -1;
    double next = -1;
    for (const Slot& s : slots_) {
      if (s.pid == 0 && (next < 0 || s.respawn_at < next)) next = s.respawn_at;
    }
    return next;
  }

  void RespawnDue() {
    if (stopping_) return;
    const double now = MonotonicSeconds();
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].pid == 0 && slots_[i].respawn_at <= now) Spawn(static_cast<int>(i));
    }
  }

  void Spawn(int index) {
    Slot& slot = slots_[index];
    std::fflush(nullptr);  // nothing buffered is written twice
    pid_t pid = fork();
    if (pid == 0) RunChild(index);  // never returns
    if (pid < 0) {
      PLOG(ERROR) << "cannot start process " << index << "; trying again in 1 s";
      slot.respawn_at = MonotonicSeconds() + 1;
      return;
    }
    slot.pid = pid;
    slot.started = MonotonicSeconds();
    LOG(INFO) << options_.program << " process " << index << " started (pid " << pid << ")";
  }

  [[noreturn]] void RunChild(int index) {
    // Die with the master (a drain, not a kill); the master may already be gone.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != master_pid_) _exit(0);
    CHECK_EQ(sigprocmask(SIG_SETMASK, &saved_mask_, nullptr), 0);
    int status = process_main_(index);
    std::fflush(nullptr);
    _exit(status);
  }

  void Reap() {
    for (;;) {
      int status = 0;
      pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid <= 0) return;
      for (size_t i = 0; i < slots_.size(); ++i) {
        Slot& slot = slots_[i];
        if (slot.pid != pid) continue;
        slot.pid = 0;
        const double now = MonotonicSeconds();
        if (stopping_) {
          LOG(INFO) << "process " << i << " (pid " << pid << ") " << DescribeExit(status);
          if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) failed_at_stop_ = true;
          break;
        }
        slot.quick_deaths = now - slot.started < kQuickDeathSeconds ? slot.quick_deaths + 1 : 1;
        const double delay = RespawnDelay(slot.quick_deaths);
        slot.respawn_at = now + delay;
        LOG(WARNING) << "process " << i << " (pid " << pid << ") " << DescribeExit(status)
                     << "; respawning it" << (delay > 0 ? " in " + SecondsText(delay) : std::string());
        break;
      }
    }
  }

  void Signal(int signum) {
    for (const Slot& s : slots_) {
      if (s.pid != 0) kill(s.pid, signum);
    }
  }

  const ProcessGroupOptions& options_;
  const ProcessMain& process_main_;
  std::vector<Slot> slots_;
  sigset_t handled_;
  sigset_t saved_mask_;
  pid_t master_pid_ = 0;
  bool stopping_ = false;
  bool failed_at_stop_ = false;
};

}  // namespace

int RunProcessGroup(const ProcessGroupOptions& options, const ProcessMain& process_main) {
  CHECK_GE(options.processes, 1);
  // SIGUSR1/SIGUSR2 are ignored by every program of the project; the processes set theirs.
  for (int signum : {SIGUSR1, SIGUSR2, SIGPIPE}) signal(signum, SIG_IGN);
  Master master(options, process_main);
  return master.Run();
}

}  // namespace rlb
