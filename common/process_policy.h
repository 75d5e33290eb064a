// Pure decisions of a process supervisor, shared by `zkworker --processes`
// (zkworker/supervisor.h) and the load balancers' `--processes` (common/process_group.h):
// how long to wait before respawning a process that keeps dying, and each process's address
// and file names. No state, no I/O: unit-tested in tests/unit/supervisor_policy_test.cc.
#ifndef RESUMELB_COMMON_PROCESS_POLICY_H_
#define RESUMELB_COMMON_PROCESS_POLICY_H_

#include <string>

#include "common/net_address.h"
#include "common/status.h"

namespace rlb {

// A process that dies within this many seconds of its start died "at start-up": each such
// death in a row lengthens the wait before the next respawn.
inline constexpr double kQuickDeathSeconds = 10.0;
// The longest wait between respawns.
inline constexpr double kMaxRespawnDelaySeconds = 30.0;

// Seconds to wait before respawning after `quick_deaths` start-up deaths in a row: the
// first respawn is immediate (a crash or a SIGKILL costs no capacity for long), then 0.5 s,
// 1 s, 2 s, ... up to kMaxRespawnDelaySeconds.
double RespawnDelay(int quick_deaths);

// Process `index`'s address: HOST:PORT+index, or HOST:0 (a free port) when PORT is 0.
// An error when PORT+index passes 65535.
StatusOr<HostPort> ProcessAddress(const HostPort& base, int index);

// True when the listeners of `count` processes at ProcessAddress(a, i) and at
// ProcessAddress(b, i) could share a port: both ports are fixed (not 0), the hosts are
// equal or either is a wildcard ("", 0.0.0.0, ::), and the port ranges intersect. (A
// supervised process listens with SO_REUSEPORT, which would let the two share the port
// and split its connections instead of failing.) REQUIRES: count >= 1.
bool ProcessPortsOverlap(const HostPort& a, const HostPort& b, int count);

// Process `index`'s copy of a per-process file: "dir/resume.json" -> "dir/resume.2.json",
// "dir/trace" -> "dir/trace.2". Empty and "-" (stderr) stay as they are.
std::string ProcessFilePath(const std::string& path, int index);

}  // namespace rlb

#endif  // RESUMELB_COMMON_PROCESS_POLICY_H_
