// Json: the project's one way to RapidJSON (include this, not rapidjson/ directly) and the
// readers for the values ZooKeeper nodes and the résumé file hold. Settings nodes written by
// hand or by the original Python tools hold numbers either as JSON numbers or as strings
// ({"variance": 2} or {"variance": "2"}); both mean the same.
//
// Thread rules: pure functions, any thread (a Document is used by one thread at a time).
#ifndef RESUMELB_COMMON_JSON_H_
#define RESUMELB_COMMON_JSON_H_

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <optional>
#include <string>
#include <string_view>

namespace rlb {

// The compact writer every JSON document the project emits is made with.
using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// Parses `text` into *doc; true only when it is well-formed JSON whose top level is an
// object (the callers' one error, "not a JSON object", covers both failures).
bool ParseJsonObject(std::string_view text, rapidjson::Document* doc);

// The member `key` of `object`, or nullptr when absent (or `object` is not an object).
const rapidjson::Value* FindJsonMember(const rapidjson::Value& object, std::string_view key);

// A scalar that may be a number or a string, as text: a string as is, an integer in decimal,
// any other number as "%.17g" (which reads back to the same double); nullopt for null, bool,
// array or object. What the LB passes to ParsePoolSettings and keeps as a worker's version.
std::optional<std::string> JsonScalarText(const rapidjson::Value& v);

// A number, or a string holding one (ParseFiniteDouble in common/text.h: surrounding
// whitespace allowed), as a finite double; nullopt otherwise. Gives the same value as
// ParseFiniteDouble(*JsonScalarText(v)).
std::optional<double> JsonNumber(const rapidjson::Value& v);

}  // namespace rlb

#endif  // RESUMELB_COMMON_JSON_H_
