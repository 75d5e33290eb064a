// The worker's registration data and the description of a node's holder in its log and
// error lines (zkworker/zk_registration.h).
#include "zkworker/zk_registration.h"

#include <catch2/catch.hpp>

using rlb::worker::DescribeRegistrationHolder;
using rlb::worker::RegistrationData;

TEST_CASE("registration data: pid, then description and version when given", "[zkreg]") {
  CHECK(RegistrationData(42, "", "") == R"({"pid":42})");
  CHECK(RegistrationData(42, "blue \"pool\"", "1.2") ==
        R"({"pid":42,"description":"blue \"pool\"","version":"1.2"})");
}

TEST_CASE("a node's holder is described by its pid and description", "[zkreg]") {
  CHECK(DescribeRegistrationHolder(RegistrationData(42, "blue", "3")) ==
        "pid 42, description \"blue\"");
  CHECK(DescribeRegistrationHolder(R"({"pid": 7})") == "pid 7");
  CHECK(DescribeRegistrationHolder(R"({"description": "x"})") == "description \"x\"");
  // Not registration data: the data itself, shortened.
  CHECK(DescribeRegistrationHolder("") == "data ''");
  CHECK(DescribeRegistrationHolder("{}") == "data '{}'");
  CHECK(DescribeRegistrationHolder("not json") == "data 'not json'");
  CHECK(DescribeRegistrationHolder(std::string(150, 'a')) ==
        "data '" + std::string(100, 'a') + "...'");
}
