// The supervisor's pure decisions (zkworker --processes, zkworker/supervisor.h): each
// process's request limit with its jitter; the respawn back-off and per-process addresses
// and file names come from common/process_policy.h. No state, no I/O: unit-tested in
// tests/unit/supervisor_policy_test.cc.
#ifndef RESUMELB_ZKWORKER_SUPERVISOR_POLICY_H_
#define RESUMELB_ZKWORKER_SUPERVISOR_POLICY_H_

#include <cstdint>
#include <string>

#include "common/process_policy.h"

namespace rlb::worker {

// The generic decisions (respawn back-off, per-process addresses and files) are shared
// with the load balancers' --processes.
using rlb::kMaxRespawnDelaySeconds;
using rlb::kQuickDeathSeconds;
using rlb::ProcessAddress;
using rlb::ProcessFilePath;
using rlb::ProcessPortsOverlap;
using rlb::RespawnDelay;

// The request limit of one process: max_requests plus a jitter from 0 to `jitter` taken
// from `random`, so that processes started together are not all recycled together
// (gunicorn's --max-requests-jitter). 0 (no limit) when max_requests is 0.
uint64_t JitteredMaxRequests(uint64_t max_requests, uint64_t jitter, uint64_t random);

}  // namespace rlb::worker

#endif  // RESUMELB_ZKWORKER_SUPERVISOR_POLICY_H_
