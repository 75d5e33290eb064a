// HttpRequestParser: HTTP/1.x request parsing on top of llhttp in strict mode, for the LB's
// front end and for the admin listeners of the LB and the worker (status/admin_server.h).
// It does no I/O: the connection feeds it bytes and gets callbacks. It enforces the
// caller's limits and maps every parse failure to the HTTP status the client should get
// (400, 405, 413, 414, 417, 431, 505).
//
// The request target and Host (RFC 9112 section 3.2): a '#' fragment or "%00" in the path is
// a 400; an absolute-form target ("http://a.example/x?q", scheme in any case) gives its
// host for Host and its path and query for the rest (userinfo is a 400); every Host value
// must be an RFC 3986 reg-name or IP literal with an optional port, else 400 (an HTTP/1.1
// request without Host, or with two, is a 400 too). TRACE and CONNECT are 405. Expect is
// ignored in HTTP/1.0 requests.
//
// After each complete request the parser pauses, so pipelined requests are handled one at
// a time, in order; Resume() continues with the bytes it kept.
//
// Thread rules: one instance per client connection, used on the loop thread only.
#ifndef RESUMELB_COMMON_HTTP_REQUEST_PARSER_H_
#define RESUMELB_COMMON_HTTP_REQUEST_PARSER_H_

#include <llhttp.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rlb {

struct HttpLimits {
  size_t max_header_bytes = 64 * 1024;  // request line + all headers -> 431 (URL alone: 414)
  size_t max_headers = 100;             // -> 431
  uint64_t max_body_bytes = 1ull << 30; // declared or received -> 413
};

struct ParsedRequest {
  std::string method;
  std::string url;  // raw request-target (for logs)
  // The target in origin-form: path and query ("/x?q"); for an absolute-form target, the
  // part after its authority ("/" if none).
  std::string target;
  // An absolute-form target's host[:port], which replaces the Host header; else empty.
  std::string target_host;
  int http_major = 1;
  int http_minor = 1;
  std::vector<std::pair<std::string, std::string>> headers;  // names as received
  std::optional<uint64_t> content_length;
  bool chunked = false;
  bool keep_alive = true;     // what the client asked for (llhttp_should_keep_alive)
  bool expect_continue = false;
  bool has_body() const { return chunked || content_length.value_or(0) > 0; }
};

// True if `host` is a valid Host value: an RFC 3986 reg-name (non-empty), IPv4 address or
// IP literal ("[::1]"), optionally followed by ":" and a port.
bool IsValidHost(std::string_view host);

class HttpRequestParser {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    // The head is complete and checked. The handler may move the header values out: the
    // parser does not read them again (the next request starts a fresh ParsedRequest).
    virtual void OnRequestHeaders(ParsedRequest& request) = 0;
    virtual void OnRequestBody(std::string_view data) = 0;
    virtual void OnRequestComplete() = 0;
  };

  enum class State { kOk, kPaused, kError };

  HttpRequestParser(Handler* handler, HttpLimits limits);
  HttpRequestParser(const HttpRequestParser&) = delete;
  HttpRequestParser& operator=(const HttpRequestParser&) = delete;

  // Parses `data`. kPaused: a request completed; the rest is kept until Resume().
  // kError: error_status()/error_reason() say what to answer; the connection must close.
  State Execute(std::string_view data);
  // Continues after a pause with the kept bytes (which may complete more requests).
  State Resume();
  // The client closed its side: true if that was at a clean request boundary.
  bool AtMessageBoundary() const { return !in_message_; }
  bool paused() const { return paused_; }
  bool has_kept_bytes() const { return !kept_.empty(); }
  size_t kept_bytes() const { return kept_.size(); }
  // True once any byte of the next request has arrived (for the header timeout).
  bool in_message() const { return in_message_; }
  bool headers_done() const { return headers_done_; }

  int error_status() const { return error_status_; }
  const std::string& error_reason() const { return error_reason_; }

 private:
  static int OnMessageBegin(llhttp_t* p);
  static int OnUrl(llhttp_t* p, const char* at, size_t len);
  static int OnMethod(llhttp_t* p, const char* at, size_t len);
  static int OnHeaderField(llhttp_t* p, const char* at, size_t len);
  static int OnHeaderValue(llhttp_t* p, const char* at, size_t len);
  static int OnHeadersComplete(llhttp_t* p);
  static int OnBody(llhttp_t* p, const char* at, size_t len);
  static int OnMessageComplete(llhttp_t* p);
  int Fail(int status, std::string reason);
  // Checks the method, target and Host of the request whose headers are complete, and sets
  // its target and target_host. Returns 0, or Fail()'s result.
  int CheckTarget(llhttp_t* p);
  bool CountHeaderBytes(size_t len);
  bool ScanHead(const char* data, size_t len);
  State Run(const char* data, size_t len);

  Handler* handler_;
  HttpLimits limits_;
  llhttp_settings_t settings_;
  llhttp_t parser_;
  ParsedRequest request_;
  bool in_value_ = false;
  bool in_message_ = false;
  bool headers_done_ = false;
  bool paused_ = false;
  size_t header_bytes_ = 0;
  uint64_t body_bytes_ = 0;
  std::string kept_;  // bytes after a paused request
  // Line structure of the request head, checked on the raw bytes before llhttp sees them:
  // llhttp 8 accepts a bare LF ending the request line or the head, and obs-fold, which a
  // front end may read differently (request smuggling). From the first byte of a request
  // to the empty line ending its head; reset when the request completes.
  bool scanning_head_ = true;
  bool head_started_ = false;  // a non-empty line of this head was seen
  bool line_empty_ = true;     // nothing but CR on the current line so far
  char prev_byte_ = 0;
  int error_status_ = 0;
  std::string error_reason_;
};

}  // namespace rlb

#endif  // RESUMELB_COMMON_HTTP_REQUEST_PARSER_H_
