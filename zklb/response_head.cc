// Response heads, own responses and chunk framing: the response side of HTTP <-> WSGI.
#include "zklb/response_head.h"

#include <cstdio>
#include <cstdlib>

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

}  // namespace

const char* ReasonPhrase(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
  }
  return "Error";
}

ResponseHead BuildResponseHead(const proto::Response& response, const ResponseContext& context) {
  ResponseHead out;
  out.status = std::atoi(response.status.c_str());
  out.no_body = context.head || out.status < 200 || out.status == 204 || out.status == 304;
  bool has_length = false;
  std::string& head = out.bytes;
  head = "HTTP/1.1 " + response.status + "\r\n";
  for (const auto& [name, value] : response.headers) {
    if (IsHopByHop(name)) {
      if (IEquals(name, "Connection") && value.find("close") != std::string::npos) {
        out.close_after = true;  // the application asked for it
      }
      continue;
    }
    if (IEquals(name, "Content-Length")) has_length = true;
    head += name;
    head += ": ";
    head += value;
    head += "\r\n";
  }
  if (!out.no_body && !has_length) {
    if (context.http_minor >= 1) {
      out.chunked = true;
      head += "Transfer-Encoding: chunked\r\n";
    } else {
      out.close_after = true;  // HTTP/1.0: the end of the body is the end of the connection
    }
  }
  if (context.http_minor == 0 || context.must_close) out.close_after = true;
  if (out.close_after) head += "Connection: close\r\n";
  head += "\r\n";
  return out;
}

std::string BuildOwnResponse(int status, std::string_view content_type, std::string_view body,
                             bool close, bool head) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + ReasonPhrase(status) +
                    "\r\nContent-Type: ";
  out += content_type;
  out += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  if (close) out += "Connection: close\r\n";
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
