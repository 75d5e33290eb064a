// LbStats: the load balancer's counters, as reported in the status document. The
// LoadBalancer owns one; client connections and exchanges get a pointer at construction
// and count what they see.
//
// Thread rules: loop thread only.
#ifndef RESUMELB_ZKLB_LB_STATS_H_
#define RESUMELB_ZKLB_LB_STATS_H_

#include <cstdint>

namespace rlb::lb {

struct LbStats {
  uint64_t requests = 0;       // HTTP requests received
  uint64_t responses = 0;      // responses completed
  uint64_t retries = 0;        // re-dispatches after a worker failure
  uint64_t bad_gateway = 0;    // 502s
  uint64_t unavailable = 0;    // 503s
  uint64_t client_errors = 0;  // 4xx/505 answered by the LB itself
  uint64_t truncated = 0;      // responses cut off after they started
  uint64_t connections = 0;    // client connections accepted
  uint64_t client_aborts = 0;  // requests whose client left before an answer (logged 499)
  uint64_t retries_refused = 0;   // retries the retry budget did not allow (502)
  uint64_t queries_of_death = 0;  // requests that lost two workers (502, never retried)
  uint64_t invalid_responses = 0;  // worker responses with a bad head (502) or too long (cut)
};

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_LB_STATS_H_
