// Supervisor: the master of `zkworker --processes=N`. It starts N worker processes, each a
// full zkworker with its own address, résumé file and (in ZooKeeper mode) registration,
// and keeps N of them serving:
//   * a process that dies is respawned (immediately, then with a growing back-off while it
//     keeps dying at start-up; zkworker/supervisor_policy.h), with one log line saying how
//     it ended;
//   * a process is replaced gracefully after --max_requests requests (plus jitter) or when
//     its RSS passes --reload_on_rss: its successor is started on the same address (the
//     workers bind with SO_REUSEPORT) and, once that one listens (and has registered), the
//     old one gets SIGTERM and drains;
//   * a request running longer than --harakiri seconds gets its process SIGKILLed (logged
//     with the request) and the process is respawned;
//   * SIGHUP: every process reopens its logs, then the processes are replaced one at a
//     time as above (a rolling reload: new application code is picked up);
//   * SIGTERM/SIGINT: every process drains; the master exits 0 once they all have.
// The master never runs application code (except the import with --preload, before any
// process is forked) and learns about its processes only from their ProcessBoards and exit
// statuses, so nothing a process does can corrupt it. Its state is served as JSON on
// --status_socket (docs/operations.md).
//
// Thread rules: loop thread only (the master has no other thread).
#ifndef RESUMELB_ZKWORKER_SUPERVISOR_H_
#define RESUMELB_ZKWORKER_SUPERVISOR_H_

#include <sys/types.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/net_address.h"
#include "common/status.h"
#include "common/uv_handle.h"
#include "zkworker/process_board.h"

namespace rlb {
class StatusServer;
}

namespace rlb::worker {

struct SupervisorOptions {
  int processes = 1;                 // N, at least 1
  HostPort address;                  // process i listens on ProcessAddress(address, i)
  // Process i serves its admin listener on ProcessAddress(admin_address, i); unset: none.
  std::optional<HostPort> admin_address;
  std::optional<HostPort> advertise;  // process i registers ProcessAddress(advertise, i)
  bool zookeeper_mode = false;       // a successor is ready once it has registered
  int threads = 1;                   // application threads per process (board slots)
  double harakiri = 0;               // seconds; 0: never
  uint64_t max_requests = 0;         // 0: never recycled by count
  uint64_t max_requests_jitter = 0;  // added to max_requests: 0..jitter, per process
  uint64_t reload_on_rss_mb = 0;     // 0: never recycled by size
  std::string status_socket;         // empty: none
  double drain_timeout = 60;         // a draining process is SIGKILLed 10 s after this
  std::string resume_file;           // per process: ProcessFilePath(resume_file, i)
  std::string tracelog;              // per process: ProcessFilePath(tracelog, i)
  bool preload = false;              // only reported in the status document
};

// What one process is started with.
struct ProcessSpec {
  int index = 0;
  HostPort address;
  std::optional<HostPort> admin_address;
  std::optional<HostPort> advertise;  // unset: none given
  std::string resume_file;
  std::string tracelog;
  ProcessBoard* board = nullptr;  // the process reports on it
};

class Supervisor {
 public:
  // Starts one process and returns its pid; in the child it never returns.
  using LaunchFn = std::function<StatusOr<pid_t>(const ProcessSpec& spec)>;

  Supervisor(uv_loop_t* loop, SupervisorOptions options, LaunchFn launch);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Starts the processes and supervises them until the master is stopped (SIGTERM) or
  // the first processes cannot start; returns the exit status (0, or 2 after a start-up
  // failure).
  int Run();

  // In a --preload child right after fork: stops the master's signal handlers and closes
  // what the child must not hold (the status socket, the other processes' boards). The
  // master's objects are abandoned, never destroyed, in the child.
  void ForgetInChild(const ProcessBoard* keep);

 private:
  struct Process {
    int index = 0;
    pid_t pid = 0;
    std::unique_ptr<ProcessBoard> board;
    int64_t started_ms = 0;
    uint64_t max_requests = 0;  // with jitter; 0: none
    std::string address;        // once ready
    bool ready = false;
    bool retiring = false;      // SIGTERM sent: draining, not respawned
    int64_t term_sent_ms = 0;
    bool harakiri = false;      // SIGKILLed for a request over --harakiri
  };
  struct Slot {
    int index = 0;
    Process* current = nullptr;    // the one serving (or starting)
    Process* successor = nullptr;  // its replacement, starting
    int quick_deaths = 0;          // deaths at start-up in a row
    int64_t respawn_at_ms = -1;    // a respawn is due then; -1: none
    std::string replace_reason;    // why the successor is being started
    uint64_t restarts = 0;         // respawns after a death
    uint64_t recycles = 0;         // graceful replacements (max_requests, RSS, reload)
    uint64_t harakiri_kills = 0;
  };

  void OnSignal(int signum);
  void Reap();
  void ProcessExited(Process* p, int wait_status);
  void Tick();
  void CheckReady(Process* p, int64_t now);
  void CheckHarakiri(Process* p, int64_t now);
  void CheckRecycle(Slot* slot, int64_t now);
  // Starts the slot's current process, or its successor when a current one serves.
  void Spawn(Slot* slot);
  void BeginReplace(Slot* slot, const std::string& reason);
  void Retire(Process* p, const std::string& reason);
  void Stop(int exit_code);
  void MaybeFinish();
  std::string StatusDocument() const;

  uv_loop_t* loop_;
  SupervisorOptions options_;
  LaunchFn launch_;
  std::map<pid_t, std::unique_ptr<Process>> processes_;  // every live child, by pid
  std::vector<Slot> slots_;
  std::vector<int> reload_queue_;  // slots a rolling reload has still to replace
  UvHandle<uv_signal_t> sigterm_;
  UvHandle<uv_signal_t> sigint_;
  UvHandle<uv_signal_t> sighup_;
  UvHandle<uv_signal_t> sigchld_;
  UvHandle<uv_signal_t> sigusr1_;
  UvHandle<uv_signal_t> sigusr2_;
  UvHandle<uv_timer_t> tick_;
  std::unique_ptr<StatusServer> status_server_;
  uint64_t rng_state_;
  bool any_ready_ = false;  // some process has served: later failures are respawned
  bool stopping_ = false;
  bool finished_ = false;
  int64_t stop_ms_ = 0;
  int exit_code_ = 0;
  uint64_t reloads_ = 0;
  uint64_t harakiri_total_ = 0;
  int64_t last_rss_check_ms_ = 0;
};

// A process's resident set size in bytes (from /proc), or 0 when it cannot be read.
uint64_t ProcessRssBytes(pid_t pid);

// How a process ended, for log lines: "exited with status 3", "killed by signal 9
// (Killed)".
std::string DescribeWaitStatus(int wait_status);

}  // namespace rlb::worker

#endif  // RESUMELB_ZKWORKER_SUPERVISOR_H_
