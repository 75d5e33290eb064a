// HttpRequestParser: llhttp callbacks collecting one request at a time, with limits.
#include "common/http_request_parser.h"

#include <arpa/inet.h>

#include <cctype>
#include <charconv>

#include "common/text.h"

namespace rlb {
namespace {

// Header slots a connection's parser keeps between requests (more are freed).
constexpr size_t kKeptHeaderSlots = 32;

HttpRequestParser* Self(llhttp_t* p) { return static_cast<HttpRequestParser*>(p->data); }

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

// RFC 3986 unreserved / sub-delims: what a reg-name is made of (besides pct-encoded).
bool IsRegNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("-._~!$&'()*+,;=").find(c) != std::string_view::npos;
}

// RFC 3986 IP-literal without its brackets: an IPv6 address or IPvFuture.
bool IsIpLiteral(std::string_view s) {
  if (!s.empty() && (s.front() == 'v' || s.front() == 'V')) {
    size_t dot = s.find('.');
    if (dot == std::string_view::npos || dot < 2 || dot + 1 == s.size()) return false;
    for (char c : s.substr(1, dot - 1)) {
      if (!IsHex(c)) return false;
    }
    for (char c : s.substr(dot + 1)) {
      if (!IsRegNameChar(c) && c != ':') return false;
    }
    return true;
  }
  in6_addr addr;
  return inet_pton(AF_INET6, std::string(s).c_str(), &addr) == 1;
}

// "http://" or "https://" in any case at the start of `url`: its length, else 0.
size_t SchemePrefix(std::string_view url) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (url.size() >= scheme.size() && IEquals(url.substr(0, scheme.size()), scheme)) {
      return scheme.size();
    }
  }
  return 0;
}

}  // namespace

bool IsValidHost(std::string_view host) {
  std::string_view port;
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    if (close == std::string_view::npos || !IsIpLiteral(host.substr(1, close - 1))) return false;
    std::string_view rest = host.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port = rest.substr(1);
    }
  } else {
    size_t colon = host.find(':');
    std::string_view name = host.substr(0, colon);
    if (colon != std::string_view::npos) port = host.substr(colon + 1);
    if (name.empty()) return false;
    for (size_t i = 0; i < name.size(); ++i) {
      if (name[i] == '%') {
        if (i + 2 >= name.size() || !IsHex(name[i + 1]) || !IsHex(name[i + 2])) return false;
        i += 2;
      } else if (!IsRegNameChar(name[i])) {
        return false;
      }
    }
  }
  for (char c : port) {
    if (!IsDigit(c)) return false;
  }
  return true;
}

HttpRequestParser::HttpRequestParser(Handler* handler, HttpLimits limits)
    : handler_(handler), limits_(limits) {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = &OnMessageBegin;
  settings_.on_url = &OnUrl;
  settings_.on_method = &OnMethod;
  settings_.on_header_field = &OnHeaderField;
  settings_.on_header_value = &OnHeaderValue;
  settings_.on_headers_complete = &OnHeadersComplete;
  settings_.on_body = &OnBody;
  settings_.on_message_complete = &OnMessageComplete;
  llhttp_init(&parser_, HTTP_REQUEST, &settings_);
  parser_.data = this;
}

int HttpRequestParser::Fail(int status, std::string reason) {
  error_status_ = status;
  error_reason_ = std::move(reason);
  return -1;
}

bool HttpRequestParser::CountHeaderBytes(size_t len) {
  header_bytes_ += len;
  return header_bytes_ <= limits_.max_header_bytes;
}

int HttpRequestParser::CheckTarget(llhttp_t* p) {
  ParsedRequest& r = request_;
  if (p->method == HTTP_TRACE || p->method == HTTP_CONNECT) {
    return Fail(405, r.method + " is not allowed");
  }
  std::string_view url = r.url;
  // A fragment is never sent (RFC 9110 section 4.2.4); llhttp would hand it on in the path.
  if (url.find('#') != std::string_view::npos) return Fail(400, "fragment in the request target");
  if (size_t scheme = SchemePrefix(url)) {
    // absolute-form (RFC 9112 section 3.2.2): its host replaces Host; the rest is the target.
    size_t end = url.find_first_of("/?", scheme);
    std::string_view authority = url.substr(scheme, end - scheme);
    if (authority.find('@') != std::string_view::npos) {
      return Fail(400, "userinfo in the request target");
    }
    if (!IsValidHost(authority)) return Fail(400, "invalid host in the request target");
    r.target_host = std::string(authority);
    std::string_view rest = end == std::string_view::npos ? "" : url.substr(end);
    r.target = rest.empty() || rest.front() == '?' ? "/" + std::string(rest) : std::string(rest);
  } else {
    r.target = r.url;
  }
  std::string_view path = std::string_view(r.target).substr(0, r.target.find('?'));
  for (size_t i = 0; i + 2 < path.size(); ++i) {
    if (path[i] == '%' && path[i + 1] == '0' && path[i + 2] == '0') {
      return Fail(400, "%00 in the request path");
    }
  }
  // RFC 9112, section 3.2: an HTTP/1.1 request without Host, or any request with more than
  // one Host header line or an invalid Host value, is a 400.
  int hosts = 0;
  for (const auto& [name, value] : r.headers) {
    if (!IEquals(name, "Host")) continue;
    if (++hosts > 1) return Fail(400, "more than one Host header");
    if (!IsValidHost(value)) return Fail(400, "invalid Host header");
  }
  if (r.http_minor == 1 && hosts == 0) return Fail(400, "missing Host header");
  return 0;
}

int HttpRequestParser::OnMessageBegin(llhttp_t* p) {
  auto* self = Self(p);
  // A fresh request, but the header list keeps its capacity (one allocation less per
  // request on a keep-alive connection) unless an unusually long head grew it.
  auto headers = std::move(self->request_.headers);
  headers.clear();
  if (headers.capacity() > kKeptHeaderSlots) headers.shrink_to_fit();
  self->request_ = ParsedRequest();
  self->request_.headers = std::move(headers);
  self->in_message_ = true;
  self->headers_done_ = false;
  self->in_value_ = false;
  self->header_bytes_ = 0;
  self->body_bytes_ = 0;
  return 0;
}

int HttpRequestParser::OnMethod(llhttp_t* p, const char* at, size_t len) {
  auto* self = Self(p);
  self->request_.method.append(at, len);
  return self->CountHeaderBytes(len) ? 0 : self->Fail(431, "request line too large");
}

int HttpRequestParser::OnUrl(llhttp_t* p, const char* at, size_t len) {
  auto* self = Self(p);
  self->request_.url.append(at, len);
  return self->CountHeaderBytes(len) ? 0 : self->Fail(414, "request URI too long");
}

int HttpRequestParser::OnHeaderField(llhttp_t* p, const char* at, size_t len) {
  auto* self = Self(p);
  if (!self->CountHeaderBytes(len)) return self->Fail(431, "request headers too large");
  auto& headers = self->request_.headers;
  if (headers.empty() || self->in_value_) {
    if (headers.size() >= self->limits_.max_headers) {
      return self->Fail(431, "too many request headers");
    }
    headers.emplace_back();
    self->in_value_ = false;
  }
  headers.back().first.append(at, len);
  return 0;
}

int HttpRequestParser::OnHeaderValue(llhttp_t* p, const char* at, size_t len) {
  auto* self = Self(p);
  if (!self->CountHeaderBytes(len)) return self->Fail(431, "request headers too large");
  self->in_value_ = true;
  self->request_.headers.back().second.append(at, len);
  return 0;
}

int HttpRequestParser::OnHeadersComplete(llhttp_t* p) {
  auto* self = Self(p);
  ParsedRequest& r = self->request_;
  r.http_major = p->http_major;
  r.http_minor = p->http_minor;
  if (r.http_major != 1 || r.http_minor > 1) {
    return self->Fail(505, "HTTP version not supported");
  }
  for (auto& [name, value] : r.headers) {
    // Strip optional whitespace around the value (llhttp keeps trailing OWS).
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
  }
  int content_lengths = 0;
  for (auto& [name, value] : r.headers) {
    if (IEquals(name, "Content-Length")) {
      ++content_lengths;
      uint64_t n = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (value.empty() || ec != std::errc() || end != value.data() + value.size()) {
        return self->Fail(400, "invalid Content-Length");
      }
      if (r.content_length && *r.content_length != n) {
        return self->Fail(400, "conflicting Content-Length headers");
      }
      r.content_length = n;
    } else if (IEquals(name, "Expect") && r.http_minor >= 1) {  // HTTP/1.0 has no Expect
      if (IEquals(value, "100-continue")) {
        r.expect_continue = true;
      } else {
        return self->Fail(417, "unsupported Expect");
      }
    }
  }
  r.chunked = (p->flags & F_CHUNKED) != 0;
  if (r.chunked && content_lengths > 0) {
    return self->Fail(400, "both Content-Length and Transfer-Encoding");
  }
  // Only "Transfer-Encoding: chunked", once: llhttp takes any list ending in chunked
  // ("identity, chunked", or two header lines), which another parser may frame differently.
  int transfer_encodings = 0;
  for (const auto& [name, value] : r.headers) {
    if (!IEquals(name, "Transfer-Encoding")) continue;
    std::string_view v = value;
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    if (++transfer_encodings > 1 || !IEquals(v, "chunked")) {
      return self->Fail(400, "unsupported Transfer-Encoding");
    }
  }
  if ((p->flags & F_TRANSFER_ENCODING) && !r.chunked) {
    return self->Fail(400, "unsupported Transfer-Encoding");
  }
  if (r.content_length && *r.content_length > self->limits_.max_body_bytes) {
    return self->Fail(413, "request body too large");
  }
  if (int rc = self->CheckTarget(p); rc != 0) return rc;
  r.keep_alive = llhttp_should_keep_alive(p) != 0;
  // The LB never switches protocols: CONNECT and "Upgrade:" requests (curl --http2 sends
  // "Upgrade: h2c") are ordinary requests. Left set, llhttp would stop at the end of the
  // headers: a CONNECT's Content-Length body would be parsed as the next request, and every
  // later request on the connection would fail with HPE_PAUSED_UPGRADE (found by fuzzing).
  p->upgrade = 0;
  self->headers_done_ = true;
  self->handler_->OnRequestHeaders(r);
  return 0;
}

int HttpRequestParser::OnBody(llhttp_t* p, const char* at, size_t len) {
  auto* self = Self(p);
  self->body_bytes_ += len;
  if (self->body_bytes_ > self->limits_.max_body_bytes) {
    return self->Fail(413, "request body too large");
  }
  self->handler_->OnRequestBody(std::string_view(at, len));
  return 0;
}

int HttpRequestParser::OnMessageComplete(llhttp_t* p) {
  auto* self = Self(p);
  self->in_message_ = false;
  self->headers_done_ = false;
  self->scanning_head_ = true;  // the next bytes (kept, re-fed by Resume) start a new head
  self->head_started_ = false;
  self->line_empty_ = true;
  self->prev_byte_ = 0;
  self->handler_->OnRequestComplete();
  return HPE_PAUSED;  // one request at a time: responses go out in order
}

bool HttpRequestParser::ScanHead(const char* data, size_t len) {
  for (size_t i = 0; i < len && scanning_head_; ++i) {
    char c = data[i];
    if (c == '\n') {
      if (prev_byte_ != '\r') {
        Fail(400, "bare LF in the request head");
        return false;
      }
      if (line_empty_ && head_started_) scanning_head_ = false;  // the empty line: head done
      line_empty_ = true;  // (leading empty lines are ignored, RFC 9112 section 2.2)
    } else if (c != '\r') {
      if (line_empty_ && head_started_ && (c == ' ' || c == '\t')) {
        Fail(400, "obs-fold (a header line starting with whitespace)");
        return false;
      }
      line_empty_ = false;
      head_started_ = true;
    }
    prev_byte_ = c;
  }
  return true;
}

HttpRequestParser::State HttpRequestParser::Run(const char* data, size_t len) {
  // The scan only ever covers head bytes: it stops at the end of a head, and the bytes
  // after a completed request come back through Resume() once the scanner is reset.
  if (scanning_head_ && !ScanHead(data, len)) return State::kError;
  llhttp_errno_t err = llhttp_execute(&parser_, data, len);
  if (err == HPE_OK) return State::kOk;
  if (err == HPE_PAUSED) {
    const char* pos = llhttp_get_error_pos(&parser_);
    size_t used = pos ? static_cast<size_t>(pos - data) : len;
    std::string rest(data + used, len - used);
    kept_ = std::move(rest);
    paused_ = true;
    return State::kPaused;
  }
  if (error_status_ == 0) {
    switch (err) {
      case HPE_INVALID_VERSION:
        // A 1.0/1.1 version followed by garbage or a bare CR is a malformed request line;
        // only a version other than 1.x is a 505.
        if (parser_.http_major == 1 && parser_.http_minor <= 1) {
          error_status_ = 400;
          error_reason_ = std::string("malformed request line: ") +
                          (parser_.reason ? parser_.reason : "bad version");
        } else {
          error_status_ = 505;
          error_reason_ = "HTTP version not supported";
        }
        break;
      case HPE_INVALID_METHOD:
        error_status_ = 400;  // strict llhttp rejects unknown methods outright
        error_reason_ = "invalid method";
        break;
      default:
        error_status_ = 400;
        error_reason_ = std::string(llhttp_errno_name(err)) + ": " +
                        (parser_.reason ? parser_.reason : "malformed request");
    }
  }
  return State::kError;
}

HttpRequestParser::State HttpRequestParser::Execute(std::string_view data) {
  if (paused_) {  // the connection keeps feeding while a request is in progress: keep it
    kept_.append(data);
    return State::kPaused;
  }
  return Run(data.data(), data.size());
}

HttpRequestParser::State HttpRequestParser::Resume() {
  if (!paused_) return State::kOk;
  paused_ = false;
  llhttp_resume(&parser_);
  std::string data = std::move(kept_);
  kept_.clear();
  if (data.empty()) return State::kOk;
  return Run(data.data(), data.size());
}

}  // namespace rlb
