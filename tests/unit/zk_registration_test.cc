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

TEST_CASE("the registered address: advertise, else the bound one", "[zkreg]") {
  using rlb::HostPort;
  using rlb::worker::RegisteredAddress;
  const HostPort bound{"", 8123};
  // advertise wins; its port 0 means the port bound.
  CHECK(RegisteredAddress(HostPort{"lb-visible.example", 9000}, bound).ToString() ==
        "lb-visible.example:9000");
  CHECK(RegisteredAddress(HostPort{"10.1.2.3", 0}, bound).ToString() == "10.1.2.3:8123");
  // A specific host is registered as it is.
  CHECK(RegisteredAddress(std::nullopt, HostPort{"10.9.8.7", 8123}).ToString() ==
        "10.9.8.7:8123");
  // A wildcard host: the machine's primary address, one node.
  for (const char* wildcard : {"", "0.0.0.0", "::"}) {
    CHECK(RegisteredAddress(std::nullopt, HostPort{wildcard, 8123}).ToString() ==
          rlb::PrimaryAddress() + ":8123");
  }
}
