// common/json.h: object parsing, member lookup, the number-or-string readers.
#include "common/json.h"

#include <string>

#include <catch2/catch.hpp>

#include "common/text.h"

TEST_CASE("ParseJsonObject accepts only a well-formed object", "[json]") {
  rapidjson::Document doc;
  CHECK(rlb::ParseJsonObject(R"({"a": 1})", &doc));
  CHECK(rlb::ParseJsonObject("{}", &doc));
  for (const char* bad : {"", "[1]", "1", "\"x\"", "null", "{", "{\"a\":}", "{} x"}) {
    INFO(bad);
    CHECK_FALSE(rlb::ParseJsonObject(bad, &doc));
  }
  // The length is the view's: no NUL terminator needed, nothing read past it.
  std::string_view prefix(R"({"a": 1}garbage)", 8);
  CHECK(rlb::ParseJsonObject(prefix, &doc));
}

TEST_CASE("FindJsonMember finds a member by name", "[json]") {
  rapidjson::Document doc;
  REQUIRE(rlb::ParseJsonObject(R"({"a": 1, "b ->": "x", "a": 2})", &doc));
  const rapidjson::Value* a = rlb::FindJsonMember(doc, "a");
  REQUIRE(a != nullptr);
  CHECK(a->GetInt() == 1);  // the first of duplicate keys, as doc["a"]
  std::string key = "b ->";
  REQUIRE(rlb::FindJsonMember(doc, key) != nullptr);
  CHECK(rlb::FindJsonMember(doc, "c") == nullptr);
  CHECK(rlb::FindJsonMember(*a, "a") == nullptr);  // not an object
}

TEST_CASE("JsonScalarText and JsonNumber read numbers and numeric strings", "[json]") {
  rapidjson::Document doc;
  REQUIRE(rlb::ParseJsonObject(
      R"({"i": 3, "neg": -7, "d": 1.5, "big": 18446744073709551615, "s": "2", "sw": " 4 ",
          "bad": "x", "n": null, "t": true, "arr": [1], "obj": {}, "tenth": 0.1})",
      &doc));
  auto text = [&](const char* k) { return rlb::JsonScalarText(doc[k]); };
  auto number = [&](const char* k) { return rlb::JsonNumber(doc[k]); };
  CHECK(text("i") == "3");
  CHECK(text("neg") == "-7");
  CHECK(text("d") == "1.5");
  CHECK(text("s") == "2");
  CHECK(text("sw") == " 4 ");
  CHECK(text("bad") == "x");
  CHECK(text("tenth") == "0.10000000000000001");  // %.17g: reads back to the same double
  CHECK(text("big") == "1.8446744073709552e+19");  // beyond int64: a double
  CHECK(number("i") == 3.0);
  CHECK(number("d") == 1.5);
  CHECK(number("s") == 2.0);
  CHECK(number("sw") == 4.0);
  CHECK(number("tenth") == 0.1);
  CHECK(number("big") == 18446744073709551615.0);
  CHECK_FALSE(number("bad").has_value());
  for (const char* k : {"n", "t", "arr", "obj"}) {
    INFO(k);
    CHECK_FALSE(text(k).has_value());
    CHECK_FALSE(number(k).has_value());
  }
  // JsonNumber(v) == ParseFiniteDouble(*JsonScalarText(v)) for every number and string.
  for (const char* k : {"i", "neg", "d", "big", "s", "sw", "bad", "tenth"}) {
    INFO(k);
    CHECK(number(k) == rlb::ParseFiniteDouble(*text(k)));
  }
}
