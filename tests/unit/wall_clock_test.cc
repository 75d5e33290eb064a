// common/wall_clock.h: EpochSeconds.
#include "common/wall_clock.h"

#include <chrono>

#include <catch2/catch.hpp>

TEST_CASE("EpochSeconds is the wall clock in seconds", "[clock]") {
  auto seconds = [] {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  double before = seconds();
  double now = rlb::EpochSeconds();
  double after = seconds();
  CHECK(now >= before - 1e-3);
  CHECK(now <= after + 1e-3);
  CHECK(now > 1.6e9);  // seconds, not milliseconds or nanoseconds
  CHECK(now < 1e10);
}
