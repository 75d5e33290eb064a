// DisconnectCause: the logged reason text and severity of each way a load balancer's
// connection ends (the end-to-end tests wait for these exact lines).
#include <glog/logging.h>

// Before Catch2, whose CHECK replaces glog's: the project's headers use glog's.
#include "zkworker/balancer_connection.h"

#include <catch2/catch.hpp>

using rlb::worker::DisconnectCause;
using rlb::worker::DisconnectReason;
using rlb::worker::DisconnectSeverity;

TEST_CASE("disconnect reasons keep their log text", "[disconnect]") {
  CHECK(DisconnectReason(DisconnectCause::kClosedByBalancer, "") ==
        "closed by the load balancer");
  CHECK(DisconnectReason(DisconnectCause::kReadError, "connection reset by peer") ==
        "connection reset by peer");
  CHECK(DisconnectReason(DisconnectCause::kWriteError, "broken pipe") ==
        "write failed: broken pipe");
  CHECK(DisconnectReason(DisconnectCause::kMalformedFrame, "unknown kind 99") ==
        "malformed frame: unknown kind 99");
  CHECK(DisconnectReason(DisconnectCause::kDrainTimeout, "") == "drain timeout");
  CHECK(DisconnectReason(DisconnectCause::kShutdown, "") == "worker shutting down");
}

TEST_CASE("only a protocol violation is a warning", "[disconnect]") {
  CHECK(DisconnectSeverity(DisconnectCause::kMalformedFrame) == google::GLOG_WARNING);
  for (auto cause : {DisconnectCause::kClosedByBalancer, DisconnectCause::kReadError,
                     DisconnectCause::kWriteError, DisconnectCause::kDrainTimeout,
                     DisconnectCause::kShutdown}) {
    CHECK(DisconnectSeverity(cause) == google::GLOG_INFO);
  }
}
