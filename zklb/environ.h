// The PEP 3333 environ of a request, built from the parsed HTTP request and the socket's
// addresses. Pure functions: no I/O, no state (unit-tested in tests/unit).
//
// Thread rules: pure; any thread.
#ifndef RESUMELB_ZKLB_ENVIRON_H_
#define RESUMELB_ZKLB_ENVIRON_H_

#include <string>
#include <string_view>

#include "common/frame_codec.h"
#include "common/http_request_parser.h"

namespace rlb::lb {

// The two ends of a client connection.
struct ConnectionInfo {
  std::string remote_ip, local_ip;
  int remote_port = 0, local_port = 0;
};

// REQUEST_METHOD, SCRIPT_NAME, PATH_INFO (percent-decoded), QUERY_STRING (both from the
// request's origin-form target), SERVER_*,
// REMOTE_*, wsgi.url_scheme, CONTENT_TYPE/CONTENT_LENGTH and HTTP_* for every header
// (repeats joined with ", ", Cookie with "; "; names with '_' dropped, as nginx does).
// HTTP_HOST is the Host header as sent, or an absolute-form target's host.
proto::Pairs BuildEnviron(const ParsedRequest& request, const ConnectionInfo& info);
// The same, moving the header values out of `request` instead of copying them (the
// request's other fields stay; its header values are left empty).
proto::Pairs BuildEnviron(ParsedRequest&& request, const ConnectionInfo& info);

// "%41b%zz" -> "Ab%zz": %XX decoded to raw bytes, anything malformed left as it is.
std::string PercentDecode(std::string_view s);

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_ENVIRON_H_
