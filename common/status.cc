#include "common/status.h"

namespace rlb {

std::string Status::ToString() const {
  if (ok()) return "OK";
  const char* kind = "error";
  switch (state_->code) {
    case Code::kOk: kind = "OK"; break;
    case Code::kInvalidArgument: kind = "invalid argument"; break;
    case Code::kNotFound: kind = "not found"; break;
    case Code::kCorruption: kind = "corruption"; break;
    case Code::kIOError: kind = "I/O error"; break;
    case Code::kProtocolError: kind = "protocol error"; break;
    case Code::kUnavailable: kind = "unavailable"; break;
    case Code::kAlreadyExists: kind = "already exists"; break;
    case Code::kTimeout: kind = "timeout"; break;
    case Code::kPermissionDenied: kind = "permission denied"; break;
  }
  return std::string(kind) + ": " + state_->message;
}

}  // namespace rlb
