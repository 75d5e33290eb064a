// LinkFailure texts.
#include "zklb/link_failure.h"

namespace rlb::lb {

const char* LinkFailureText(LinkFailure cause) {
  switch (cause) {
    case LinkFailure::kResolveFailed: return "cannot resolve";
    case LinkFailure::kConnectFailed: return "cannot connect";
    case LinkFailure::kConnectTimeout: return "no answer in time after connecting";
    case LinkFailure::kClosedByWorker: return "closed by the worker";
    case LinkFailure::kReadError: return "read failed";
    case LinkFailure::kWriteError: return "write failed";
    case LinkFailure::kMalformedFrame: return "malformed frame";
    case LinkFailure::kStoppedAnswering: return "stopped answering";
    case LinkFailure::kDrained: return "drained after GOAWAY";
    case LinkFailure::kStopping: return "load balancer stopping";
    case LinkFailure::kAuthFailed: return "link refused";
  }
  return "failed";
}

std::string LinkError::ToString() const {
  std::string out = LinkFailureText(cause);
  if (!detail.empty()) {
    out += ": ";
    out += detail;
  }
  return out;
}

}  // namespace rlb::lb
