// common/text.h: IEquals, Trim, ParseFiniteDouble.
#include "common/text.h"

#include <string>
#include <string_view>

#include <catch2/catch.hpp>

TEST_CASE("IEquals compares ASCII case-insensitively", "[text]") {
  using rlb::IEquals;
  CHECK(IEquals("Content-Length", "content-length"));
  CHECK(IEquals("CHUNKED", "chunked"));
  CHECK(IEquals("", ""));
  CHECK_FALSE(IEquals("Host", "Hos"));
  CHECK_FALSE(IEquals("Host", "Hosts"));
  CHECK_FALSE(IEquals("Host", "Most"));
  // string_views that are not NUL-terminated compare by their own length only.
  std::string_view a("hostXYZ", 4), b("HOSTabc", 4);
  CHECK(IEquals(a, b));
}

TEST_CASE("Trim strips the given characters at both ends only", "[text]") {
  using rlb::Trim;
  CHECK(Trim("  a b \t\n") == "a b");
  CHECK(Trim(" \t\r\n\f\v") == "");
  CHECK(Trim("") == "");
  CHECK(Trim("x") == "x");
  CHECK(Trim(" \thost\t ", " \t") == "host");
  CHECK(Trim("\nhost ", " \t") == "\nhost");
}

TEST_CASE("ParseFiniteDouble reads a whole number as Python's float()", "[text]") {
  using rlb::ParseFiniteDouble;
  CHECK(ParseFiniteDouble("2") == 2.0);
  CHECK(ParseFiniteDouble(" 4 ") == 4.0);
  CHECK(ParseFiniteDouble("\t6.25\n") == 6.25);
  CHECK(ParseFiniteDouble("-1e3") == -1000.0);
  CHECK(ParseFiniteDouble("1e308") == 1e308);
  for (const char* bad : {"", "   ", "abc", "2x", "2 3", "1e999", "-1e999", "inf", "nan", "NaN",
                          "-inf", "infinity"}) {
    INFO(bad);
    CHECK_FALSE(ParseFiniteDouble(bad).has_value());
  }
  CHECK_FALSE(ParseFiniteDouble(std::string_view("2\0" "5", 3)).has_value());  // embedded NUL
}

TEST_CASE("SecondsText prints a duration as the logs do", "[text]") {
  CHECK(rlb::SecondsText(7) == "7 s");
  CHECK(rlb::SecondsText(7.5) == "7.5 s");
  CHECK(rlb::SecondsText(0.25) == "0.25 s");
}

