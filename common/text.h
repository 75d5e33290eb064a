// Text: small ASCII helpers shared by the LB and the worker (HTTP header names, settings
// values, command-line specs). Locale-independent: HTTP and the settings are ASCII.
//
// Thread rules: pure functions, any thread.
#ifndef RESUMELB_COMMON_TEXT_H_
#define RESUMELB_COMMON_TEXT_H_

#include <optional>
#include <string>
#include <string_view>

namespace rlb {

// The ASCII whitespace Python's str.strip() and float() skip: space, \t, \n, \r, \f, \v.
inline constexpr std::string_view kAsciiWhitespace = " \t\n\r\f\v";

// True when a and b are equal ignoring ASCII case (HTTP header names, "chunked", ...).
bool IEquals(std::string_view a, std::string_view b);

// `s` without the leading and trailing characters that are in `chars`.
std::string_view Trim(std::string_view s, std::string_view chars = kAsciiWhitespace);

// The whole of `text` as a finite double, as Python's float() reads it: surrounding ASCII
// whitespace allowed, anything else after the number refused; nullopt for no number,
// trailing garbage, an overflow, inf or nan. (strtod syntax: "1e3", "0x10" are numbers.)
std::optional<double> ParseFiniteDouble(std::string_view text);

// A duration for log lines and messages: "7 s", "7.5 s", "0.25 s" (printf's %g).
std::string SecondsText(double seconds);

}  // namespace rlb

#endif  // RESUMELB_COMMON_TEXT_H_
