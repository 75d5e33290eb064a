// Json helpers: object parsing, member lookup, number-or-string readers.
#include "common/json.h"

#include <cstdio>

#include "common/text.h"

namespace rlb {

bool ParseJsonObject(std::string_view text, rapidjson::Document* doc) {
  doc->Parse(text.data(), text.size());
  return !doc->HasParseError() && doc->IsObject();
}

const rapidjson::Value* FindJsonMember(const rapidjson::Value& object, std::string_view key) {
  if (!object.IsObject()) return nullptr;
  // Const iterators: no C++20 reversed-== ambiguity in RapidJSON 1.1's iterator operators.
  auto it = object.FindMember(
      rapidjson::Value(rapidjson::StringRef(key.data(), static_cast<rapidjson::SizeType>(key.size()))));
  return it == object.MemberEnd() ? nullptr : &it->value;
}

std::optional<std::string> JsonScalarText(const rapidjson::Value& v) {
  if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
  if (v.IsInt64()) return std::to_string(v.GetInt64());
  if (v.IsNumber()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v.GetDouble());
    return std::string(buf);
  }
  return std::nullopt;
}

std::optional<double> JsonNumber(const rapidjson::Value& v) {
  if (v.IsNumber()) return v.GetDouble();  // RapidJSON refuses inf and nan: always finite
  if (v.IsString()) return ParseFiniteDouble(std::string_view(v.GetString(), v.GetStringLength()));
  return std::nullopt;
}

}  // namespace rlb
