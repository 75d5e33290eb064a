// Response heads, own responses and chunk framing: the response side of HTTP <-> WSGI.
#include "zklb/response_head.h"

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "common/text.h"

namespace rlb::lb {
namespace {

bool IsHopByHop(std::string_view name) {
  for (const char* h : {"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding",
                        "TE", "Trailer", "Upgrade"}) {
    if (IEquals(name, h)) return true;
  }
  return false;
}

// Optional whitespace (RFC 9110 section 5.6.3) around a field value is not part of it.
constexpr std::string_view kOws = " \t";

// A name or value quoted for an error message: short, control characters escaped.
std::string Quoted(std::string_view s) {
  std::string out = "'";
  for (char c : s.substr(0, 64)) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\x%02x", u);
      out += esc;
    } else {
      out.push_back(c);
    }
  }
  if (s.size() > 64) out += "...";
  return out + "'";
}

}  // namespace

bool IsToken(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    bool ok = (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') ||
              std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

bool IsFieldText(std::string_view value) {
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return false;
  }
  return true;
}

std::string_view HttpDateNow() {
  struct Cache {
    time_t second = -1;
    char text[40] = "";
    size_t size = 0;
  };
  thread_local Cache cache;
  time_t now = time(nullptr);
  if (now != cache.second) {
    // Fixed English names: strftime's %a and %b would follow the locale.
    static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    tm t;
    gmtime_r(&now, &t);
    int n = std::snprintf(cache.text, sizeof cache.text, "%s, %02d %s %04d %02d:%02d:%02d GMT",
                          kDays[t.tm_wday], t.tm_mday, kMonths[t.tm_mon], t.tm_year + 1900,
                          t.tm_hour, t.tm_min, t.tm_sec);
    cache.size = n > 0 ? static_cast<size_t>(n) : 0;
    cache.second = now;
  }
  return std::string_view(cache.text, cache.size);
}

StatusOr<ResponseHead> BuildResponseHead(const proto::Response& response,
                                         const ResponseContext& context) {
  ResponseHead out;
  // The codec has checked "NNN " (docs/protocol.md); the reason must not smuggle lines.
  if (!IsFieldText(response.status)) {
    return Status::InvalidArgument("status " + Quoted(response.status) +
                                   " has a control character");
  }
  out.status = std::atoi(response.status.c_str());
  out.no_body = context.head || out.status < 200 || out.status == 204 || out.status == 304;
  // RFC 9110 section 8.6: no Content-Length in a 1xx or 204 response.
  const bool drop_length = out.status < 200 || out.status == 204;
  bool has_date = false;
  std::optional<uint64_t> length;
  std::string& head = out.bytes;
  // One allocation: the status line, the headers and what may be added (Date,
  // Transfer-Encoding or Connection, the blank line).
  size_t size = 9 + response.status.size() + 2 + 6 + context.date.size() + 2 + 64;
  for (const auto& [name, value] : response.headers) size += name.size() + value.size() + 4;
  head.reserve(size);
  head.append("HTTP/1.1 ").append(response.status).append("\r\n");
  for (const auto& [name, raw_value] : response.headers) {
    if (!IsToken(name)) {
      return Status::InvalidArgument("header name " + Quoted(name) + " is not a token");
    }
    std::string_view value = Trim(raw_value, kOws);
    if (!IsFieldText(value)) {
      return Status::InvalidArgument("header " + std::string(name) + ": value " +
                                     Quoted(value) + " has a control character");
    }
    if (IsHopByHop(name)) {
      if (IEquals(name, "Connection") && value.find("close") != std::string_view::npos) {
        out.close_after = true;  // the application asked for it
      }
      continue;
    }
    if (IEquals(name, "Content-Length")) {
      uint64_t n = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (value.empty() || ec != std::errc() || end != value.data() + value.size()) {
        return Status::InvalidArgument("invalid Content-Length " + Quoted(value));
      }
      if (length && *length != n) {
        return Status::InvalidArgument("conflicting Content-Length headers (" +
                                       std::to_string(*length) + " and " + std::to_string(n) +
                                       ")");
      }
      if (length || drop_length) continue;  // one copy is enough
      length = n;
    }
    if (IEquals(name, "Date")) has_date = true;
    head += name;
    head += ": ";
    head += value;
    head += "\r\n";
  }
  if (!has_date && !context.date.empty()) {
    head += "Date: ";
    head += context.date;
    head += "\r\n";
  }
  if (!out.no_body) {
    if (length) {
      out.content_length = length;
    } else if (context.http_minor >= 1) {
      out.chunked = true;
      head += "Transfer-Encoding: chunked\r\n";
    } else {
      out.close_after = true;  // HTTP/1.0: the end of the body is the end of the connection
    }
  }
  if (context.must_close) out.close_after = true;
  if (out.close_after) {
    head += "Connection: close\r\n";
  } else if (context.http_minor == 0) {
    head += "Connection: keep-alive\r\n";  // HTTP/1.0 keeps the connection only if told so
  }
  head += "\r\n";
  return out;
}

std::string BuildOwnResponse(int status, std::string_view content_type, std::string_view body,
                             bool close, bool head, std::string_view date,
                             bool announce_keep_alive) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + ReasonPhrase(status) +
                    "\r\nContent-Type: ";
  out += content_type;
  out += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  // RFC 9110, section 15.5.6: a 405 names the methods the LB passes on (TRACE and CONNECT
  // are the ones it refuses).
  if (status == 405) out += "Allow: GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH\r\n";
  if (!date.empty()) {
    out += "Date: ";
    out += date;
    out += "\r\n";
  }
  if (close) {
    out += "Connection: close\r\n";
  } else if (announce_keep_alive) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
  if (!head) out += body;
  return out;
}

std::string EncodeChunk(std::string_view data) {
  char size[24];
  int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  std::string out;
  out.reserve(data.size() + static_cast<size_t>(n) + 2);
  out.append(size, static_cast<size_t>(n));
  out.append(data);
  out.append("\r\n");
  return out;
}

}  // namespace rlb::lb
