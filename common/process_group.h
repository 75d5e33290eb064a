// ProcessGroup: the master of `resumelb --processes=N` and `zkresumelb --processes=N`
// (docs/operations.md, "Using more cores"). It forks N copies of one event-loop program,
// each serving on its own, and keeps N of them running:
//   * a process that dies is respawned at once, then with a growing back-off while it
//     keeps dying at start-up (common/process_policy.h), with one log line saying how it
//     ended;
//   * SIGTERM/SIGINT: every process gets SIGTERM and drains; the master exits once they
//     all have (0 when every one exited 0);
//   * SIGHUP: passed on to every process (they reopen their logs);
//   * a process learns of its master's death (PR_SET_PDEATHSIG: SIGTERM) and drains.
// The master runs no event loop, opens no connection and starts no thread: it waits for
// signals with sigtimedwait(), so a fork never copies a loop, a ZooKeeper session or a
// lock. What is shared between the processes (the listening port, via SO_REUSEPORT) is set
// up by the program itself.
//
// Thread rules: Run() is called once, from the main thread, before any other thread starts.
#ifndef RESUMELB_COMMON_PROCESS_GROUP_H_
#define RESUMELB_COMMON_PROCESS_GROUP_H_

#include <functional>
#include <string>

namespace rlb {

struct ProcessGroupOptions {
  std::string program;  // for log lines, e.g. "resumelb"
  int processes = 2;    // N >= 1
};

// The body of one process: runs the program as process `index` (0..N-1) and returns its
// exit status. Called in the child, after fork(), with default signal dispositions and an
// empty signal mask.
using ProcessMain = std::function<int(int index)>;

// Runs the group until it is told to stop; returns the master's exit status (0 when every
// process exited 0 at the end, else 1). Never returns in a child (it _exit()s with the
// status ProcessMain returned).
int RunProcessGroup(const ProcessGroupOptions& options, const ProcessMain& process_main);

}  // namespace rlb

#endif  // RESUMELB_COMMON_PROCESS_GROUP_H_
