// Status: the result of an operation that can fail, returned as a value (never thrown
// across layers). Modelled on LevelDB's Status: OK carries no allocation; an error
// carries a code and a human-readable message meant for one log or error line.
//
// Thread rules: a Status is a value; const methods are safe from any thread.
#ifndef RESUMELB_COMMON_STATUS_H_
#define RESUMELB_COMMON_STATUS_H_

#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace rlb {

class Status {
 public:
  // kUnavailable: the service (a peer, ZooKeeper) cannot be reached now; retrying later may
  // succeed. kTimeout: the operation did not complete in its time. kAlreadyExists: what was
  // to be created exists. kPermissionDenied: the caller is not allowed (ZooKeeper ACLs).
  enum class Code { kOk, kInvalidArgument, kNotFound, kCorruption, kIOError, kProtocolError,
                    kUnavailable, kAlreadyExists, kTimeout, kPermissionDenied };

  Status() = default;  // OK
  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string_view msg) { return Status(Code::kInvalidArgument, msg); }
  static Status NotFound(std::string_view msg) { return Status(Code::kNotFound, msg); }
  static Status Corruption(std::string_view msg) { return Status(Code::kCorruption, msg); }
  static Status IOError(std::string_view msg) { return Status(Code::kIOError, msg); }
  static Status ProtocolError(std::string_view msg) { return Status(Code::kProtocolError, msg); }
  static Status Unavailable(std::string_view msg) { return Status(Code::kUnavailable, msg); }
  static Status AlreadyExists(std::string_view msg) { return Status(Code::kAlreadyExists, msg); }
  static Status Timeout(std::string_view msg) { return Status(Code::kTimeout, msg); }
  static Status PermissionDenied(std::string_view msg) {
    return Status(Code::kPermissionDenied, msg);
  }

  bool ok() const { return state_ == nullptr; }
  Code code() const { return state_ ? state_->code : Code::kOk; }
  bool IsInvalidArgument() const { return code() == Code::kInvalidArgument; }
  bool IsNotFound() const { return code() == Code::kNotFound; }
  bool IsProtocolError() const { return code() == Code::kProtocolError; }
  bool IsUnavailable() const { return code() == Code::kUnavailable; }
  bool IsAlreadyExists() const { return code() == Code::kAlreadyExists; }
  bool IsTimeout() const { return code() == Code::kTimeout; }
  // The message alone ("" when OK).
  const std::string& message() const {
    static const std::string kEmpty;
    return state_ ? state_->message : kEmpty;
  }
  // "OK" or "<kind>: <message>".
  std::string ToString() const;

 private:
  struct State {
    Code code;
    std::string message;
  };
  Status(Code code, std::string_view msg)
      : state_(std::make_shared<const State>(State{code, std::string(msg)})) {}
  std::shared_ptr<const State> state_;  // null means OK; shared so copies are cheap
};

// A value or the Status explaining why there is none.
template <typename T>
class StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  StatusOr(Status status) : status_(std::move(status)) {}  // NOLINT: must not be OK
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() { return value_; }
  const T& value() const { return value_; }
  T* operator->() { return &value_; }
  const T* operator->() const { return &value_; }
  T& operator*() { return value_; }
  const T& operator*() const { return value_; }

 private:
  Status status_;
  T value_{};
};

}  // namespace rlb

#endif  // RESUMELB_COMMON_STATUS_H_
