// LinkFailure: why a worker link lost its connection. The cause travels with the event to
// every request on the link; log severity and the reconnect delay derive from it, so no
// code inspects the text of a message.
//
// Thread rules: values; any thread.
#ifndef RESUMELB_ZKLB_LINK_FAILURE_H_
#define RESUMELB_ZKLB_LINK_FAILURE_H_

#include <string>

namespace rlb::lb {

enum class LinkFailure {
  kResolveFailed,     // the worker's name did not resolve
  kConnectFailed,     // connect() failed (refused, unreachable)
  kConnectTimeout,    // no HELLO/RESUME within connect_timeout
  kClosedByWorker,    // EOF from the worker
  kReadError,         // a socket error while reading
  kWriteError,        // a socket error while writing
  kMalformedFrame,    // the worker broke the protocol
  kStoppedAnswering,  // nothing read for worker_timeout (hung or vanished worker)
  kDrained,           // closed by the LB after GOAWAY, once nothing was in flight
  kStopping,          // the LB is shutting down or no longer wants this worker
  kAuthFailed,        // the link secret handshake failed (common/link_auth.h)
};

// A short phrase for log lines, e.g. "closed by the worker".
const char* LinkFailureText(LinkFailure cause);

// Whether the failure is the worker's fault or a sign of trouble an operator should see
// (WARNING), rather than an ordinary disconnect (INFO).
inline bool IsLinkFailureAlarming(LinkFailure cause) {
  return cause == LinkFailure::kMalformedFrame || cause == LinkFailure::kStoppedAnswering ||
         cause == LinkFailure::kAuthFailed;
}

// A failure with the detail that goes with it (e.g. the libuv error, the malformed frame).
struct LinkError {
  LinkFailure cause;
  std::string detail;  // may be empty
  std::string ToString() const;
};

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_LINK_FAILURE_H_
