// BuildEnviron / PercentDecode: the request side of the HTTP <-> WSGI translation.
#include "zklb/environ.h"

#include <cctype>
#include <type_traits>

#include "common/text.h"

namespace rlb::lb {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// BuildEnviron for a const request (values copied) or a request given up by its owner
// (ParsedRequest&: header values moved into the environ, so they are copied once, not twice).
template <typename Request>
proto::Pairs Build(Request& r, const ConnectionInfo& info);

}  // namespace

std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

proto::Pairs BuildEnviron(const ParsedRequest& request, const ConnectionInfo& info) {
  return Build(request, info);
}

proto::Pairs BuildEnviron(ParsedRequest&& request, const ConnectionInfo& info) {
  return Build(request, info);
}

namespace {

template <typename Request>
proto::Pairs Build(Request& r, const ConnectionInfo& info) {
  proto::Pairs env;
  env.reserve(16 + r.headers.size());
  // The parser has put the target in origin-form (and refused fragments).
  std::string_view target = r.target.empty() ? std::string_view(r.url) : r.target;
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  env.emplace_back("REQUEST_METHOD", r.method);
  env.emplace_back("SCRIPT_NAME", "");
  env.emplace_back("PATH_INFO", PercentDecode(path));
  env.emplace_back("QUERY_STRING", std::string(query));
  env.emplace_back("SERVER_NAME", info.local_ip);
  env.emplace_back("SERVER_PORT", std::to_string(info.local_port));
  env.emplace_back("SERVER_PROTOCOL", "HTTP/" + std::to_string(r.http_major) + "." +
                                          std::to_string(r.http_minor));
  env.emplace_back("REMOTE_ADDR", info.remote_ip);
  env.emplace_back("REMOTE_PORT", std::to_string(info.remote_port));
  env.emplace_back("wsgi.url_scheme", "http");
  if (!r.target_host.empty()) env.emplace_back("HTTP_HOST", r.target_host);
  // HTTP_* for every header; repeats joined with ", " (Cookie with "; "), as PEP 3333 / CGI.
  // They go straight into env (no list of their own): a repeat is merged into the entry
  // its first copy made, found among the entries from `first_header` on.
  const size_t first_header = env.size();
  for (auto& [name, value] : r.headers) {
    if (name.find('_') != std::string::npos) continue;  // ambiguous with '-': dropped (nginx)
    // An absolute-form target's host replaces Host (RFC 9112 section 3.2.2), above.
    if (!r.target_host.empty() && IEquals(name, "Host")) continue;
    std::string key;
    if (IEquals(name, "Content-Type")) {
      key = "CONTENT_TYPE";
    } else if (IEquals(name, "Content-Length")) {
      key = "CONTENT_LENGTH";
    } else if (IEquals(name, "Transfer-Encoding")) {
      continue;  // the body is de-chunked; the worker gives the app its real length
    } else {
      key = "HTTP_";
      for (char c : name) key.push_back(c == '-' ? '_' : static_cast<char>(toupper(c)));
    }
    bool merged = false;
    for (size_t i = first_header; i < env.size(); ++i) {
      auto& [k, v] = env[i];
      if (k == key) {
        if (key == "CONTENT_LENGTH") { merged = true; break; }  // llhttp refuses repeats
        v += key == "HTTP_COOKIE" ? "; " : ", ";
        v += value;
        merged = true;
        break;
      }
    }
    if (merged) continue;
    if constexpr (std::is_const_v<Request>) {
      env.emplace_back(std::move(key), value);
    } else {
      env.emplace_back(std::move(key), std::move(value));
    }
  }
  return env;
}

}  // namespace

}  // namespace rlb::lb
