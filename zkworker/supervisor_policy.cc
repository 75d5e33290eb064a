// The worker supervisor's own pure decision: the per-process request limit with jitter.
#include "zkworker/supervisor_policy.h"

namespace rlb::worker {

uint64_t JitteredMaxRequests(uint64_t max_requests, uint64_t jitter, uint64_t random) {
  if (max_requests == 0) return 0;
  return max_requests + (jitter == 0 ? 0 : random % (jitter + 1));
}

}  // namespace rlb::worker
