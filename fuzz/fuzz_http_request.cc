// fuzz_http_request: the LB's request handling, from raw client bytes to the frames it
// would send a worker (the worker side is stubbed at the protocol boundary).
//
// Input: byte 0 chooses the limits (small ones, so the 413/414/431 paths are reachable with
// short inputs, up to the defaults) and whether more bytes are fed while a request is
// paused; byte 1 chooses how the rest is cut into pieces for Execute(); bytes 2.. are what
// the client sends. Like ClientConnection, the harness feeds the parser, answers each
// completed request and Resume()s for the pipelined ones until no bytes are kept.
// For each request the handler builds the environ (BuildEnviron), classifies it with a host
// and a regex classifier, encodes the REQUEST / REQUEST_BODY / REQUEST_END frames the LB
// would send and decodes them back with the worker's parsers: they must round-trip exactly.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "common/frame_codec.h"
#include "common/http_request_parser.h"
#include "fuzz/fuzz_util.h"
#include "zklb/classifier.h"
#include "zklb/environ.h"

namespace {

using namespace rlb;
using rlb::HttpLimits;
using rlb::HttpRequestParser;
using rlb::ParsedRequest;

// FUZZ_DEBUG=1 in the environment traces requests and parser states (reproducing a crash).
bool Debug() {
  static const bool debug = std::getenv("FUZZ_DEBUG") != nullptr;
  return debug;
}

const lb::Classifier& HostClassifier() {
  static const std::shared_ptr<lb::Classifier> c = *lb::Classifier::Create("host");
  return *c;
}

const lb::Classifier& RegexClassifier() {
  static const std::shared_ptr<lb::Classifier> c =
      *lb::Classifier::Create("re:PATH_INFO:^/(?P<class>[^/]+)");
  return *c;
}

// What the worker gets: decodes `wire` (one complete frame) and returns it.
proto::Frame DecodeOne(proto::FrameDecoder* decoder, const std::string& wire) {
  decoder->Feed(wire);
  proto::Frame f;
  Status error;
  auto r = decoder->Next(&f, &error);
  if (r != proto::FrameDecoder::Result::kFrame) {
    std::fprintf(stderr, "frame not decoded: %s\n", error.ToString().c_str());
  }
  FUZZ_CHECK(r == proto::FrameDecoder::Result::kFrame);
  FUZZ_CHECK(decoder->buffered() == 0);
  return f;
}

class Harness : public HttpRequestParser::Handler {
 public:
  explicit Harness(const HttpLimits& limits) : limits_(limits) {
    info_.remote_ip = "192.0.2.7";
    info_.remote_port = 54321;
    info_.local_ip = "10.0.0.1";
    info_.local_port = 8080;
  }

  void OnRequestHeaders(ParsedRequest& r) override {
    FUZZ_CHECK(!in_request_);
    in_request_ = true;
    // The parser's limits and rules hold for every request it lets through.
    FUZZ_CHECK(r.headers.size() <= limits_.max_headers);
    size_t bytes = r.method.size() + r.url.size();
    for (const auto& [name, value] : r.headers) bytes += name.size() + value.size();
    FUZZ_CHECK(bytes <= limits_.max_header_bytes);
    FUZZ_CHECK(!r.method.empty() && !r.url.empty());
    FUZZ_CHECK(r.http_major == 1 && (r.http_minor == 0 || r.http_minor == 1));
    FUZZ_CHECK(!(r.chunked && r.content_length));
    if (r.content_length) FUZZ_CHECK(*r.content_length <= limits_.max_body_bytes);
    content_length_ = r.content_length;
    if (Debug()) std::fprintf(stderr, "headers: %s %s\n", r.method.c_str(), r.url.c_str());
    chunked_ = r.chunked;
    body_bytes_ = 0;

    // The environ.
    proto::Pairs env = lb::BuildEnviron(r, info_);
    static const char* const kFixed[] = {"REQUEST_METHOD", "SCRIPT_NAME",  "PATH_INFO",
                                         "QUERY_STRING",   "SERVER_NAME",  "SERVER_PORT",
                                         "SERVER_PROTOCOL", "REMOTE_ADDR", "REMOTE_PORT",
                                         "wsgi.url_scheme"};
    FUZZ_CHECK(env.size() >= std::size(kFixed));
    for (size_t i = 0; i < std::size(kFixed); ++i) FUZZ_CHECK(env[i].first == kFixed[i]);
    FUZZ_CHECK(env[0].second == r.method);
    FUZZ_CHECK(env[6].second == (r.http_minor == 0 ? "HTTP/1.0" : "HTTP/1.1"));
    std::set<std::string> keys;
    for (size_t i = 0; i < env.size(); ++i) {
      FUZZ_CHECK(keys.insert(env[i].first).second);  // no duplicate keys
      if (i >= std::size(kFixed)) {
        const std::string& k = env[i].first;
        FUZZ_CHECK(k == "CONTENT_TYPE" || k == "CONTENT_LENGTH" || k.rfind("HTTP_", 0) == 0);
      }
    }
    // Decoding never makes PATH_INFO longer than the request-target.
    FUZZ_CHECK(env[2].second.size() <= r.url.size());

    // Classification.
    std::string host_class = HostClassifier().Classify(env);
    std::string host;
    for (const auto& [k, v] : env) {
      if (k == "HTTP_HOST") host = v;
    }
    // The host class is the normalised Host (docs/design.md): what HostClass says, cut to
    // the protocol's class limit, and never with upper-case letters.
    FUZZ_CHECK(host_class == lb::HostClass(host).substr(0, proto::kMaxClassBytes));
    for (char ch : host_class) FUZZ_CHECK(!(ch >= 'A' && ch <= 'Z'));
    std::string regex_class = RegexClassifier().Classify(env);
    FUZZ_CHECK(regex_class.find('/') == std::string::npos);
    FUZZ_CHECK(regex_class.empty() || env[2].second.rfind("/" + regex_class, 0) == 0);
    const std::string& cls = (rno_ & 1) ? regex_class : host_class;

    // The REQUEST frame as WorkerLink::SendRequest sends it, and as the worker reads it.
    rno_ = rno_ == UINT32_MAX ? 1 : rno_ + 1;
    std::string wire;
    proto::EncodeRequest(&wire, rno_, cls, env);
    proto::Frame f = DecodeOne(&worker_decoder_, wire);
    FUZZ_CHECK(f.kind == proto::Kind::kRequest && f.rno == rno_);
    proto::Request req;
    Status s = proto::ParseRequest(f.payload, &req);
    if (!s.ok()) std::fprintf(stderr, "worker rejects the REQUEST: %s\n", s.ToString().c_str());
    FUZZ_CHECK(s.ok());
    FUZZ_CHECK(req.request_class == cls);
    FUZZ_CHECK(req.environ == env);
  }

  void OnRequestBody(std::string_view data) override {
    FUZZ_CHECK(in_request_);
    FUZZ_CHECK(!data.empty());
    body_bytes_ += data.size();
    FUZZ_CHECK(body_bytes_ <= limits_.max_body_bytes);
    if (content_length_) FUZZ_CHECK(body_bytes_ <= *content_length_);
    FUZZ_CHECK(content_length_ || chunked_);
    // WorkerLink::SendBody: chunks of at most kPreferredChunk, each a REQUEST_BODY frame.
    while (!data.empty()) {
      size_t n = std::min(data.size(), proto::kPreferredChunk);
      std::string wire;
      proto::EncodeRequestBody(&wire, rno_, data.substr(0, n));
      proto::Frame f = DecodeOne(&worker_decoder_, wire);
      FUZZ_CHECK(f.kind == proto::Kind::kRequestBody && f.rno == rno_);
      FUZZ_CHECK(proto::CheckBody(f).ok());
      FUZZ_CHECK(f.payload == data.substr(0, n));
      data.remove_prefix(n);
    }
  }

  void OnRequestComplete() override {
    if (Debug()) {
      std::fprintf(stderr, "complete: content-length %lld, body %llu\n",
                   content_length_ ? static_cast<long long>(*content_length_) : -1LL,
                   static_cast<unsigned long long>(body_bytes_));
    }
    FUZZ_CHECK(in_request_);
    in_request_ = false;
    if (content_length_) FUZZ_CHECK(body_bytes_ == *content_length_);
    std::string wire;
    proto::EncodeRequestEnd(&wire, rno_);
    proto::Frame f = DecodeOne(&worker_decoder_, wire);
    FUZZ_CHECK(f.kind == proto::Kind::kRequestEnd && f.rno == rno_);
    FUZZ_CHECK(proto::ExpectEmpty(f).ok());
    ++completed_;
  }

  size_t completed() const { return completed_; }

 private:
  HttpLimits limits_;
  lb::ConnectionInfo info_;
  proto::FrameDecoder worker_decoder_;
  bool in_request_ = false;
  std::optional<uint64_t> content_length_;
  bool chunked_ = false;
  uint64_t body_bytes_ = 0;
  uint32_t rno_ = 0;
  size_t completed_ = 0;
};

class Driver {
 public:
  Driver(const HttpLimits& limits) : limits_(limits), handler_(limits), parser_(&handler_, limits) {}

  // Checks the parser's answer to Execute()/Resume(); false once the connection is done.
  bool Check(HttpRequestParser::State st, bool was_paused, size_t completed_before) {
    using State = HttpRequestParser::State;
    size_t completed = handler_.completed();
    if (Debug()) {
      std::fprintf(stderr, "state %d, error %d %s, kept %zu\n", static_cast<int>(st),
                   parser_.error_status(), parser_.error_reason().c_str(), parser_.kept_bytes());
    }
    switch (st) {
      case State::kError: {
        int code = parser_.error_status();
        FUZZ_CHECK(code == 400 || code == 405 || code == 413 || code == 414 || code == 417 ||
                   code == 431 || code == 505);
        FUZZ_CHECK(!parser_.error_reason().empty());
        FUZZ_CHECK(!was_paused);
        FUZZ_CHECK(completed <= completed_before + 1);
        return false;
      }
      case State::kPaused:
        FUZZ_CHECK(parser_.paused());
        FUZZ_CHECK(!parser_.in_message());
        // A fresh pause is one completed request; feeding while paused only keeps bytes.
        FUZZ_CHECK(completed == completed_before + (was_paused ? 0 : 1));
        return true;
      case State::kOk:
        FUZZ_CHECK(!parser_.paused() && !parser_.has_kept_bytes());
        FUZZ_CHECK(completed == completed_before);
        return true;
    }
    return false;
  }

  bool Execute(std::string_view data) {
    bool was_paused = parser_.paused();
    size_t kept = parser_.kept_bytes();
    size_t before = handler_.completed();
    auto st = parser_.Execute(data);
    if (was_paused) FUZZ_CHECK(parser_.kept_bytes() == kept + data.size());
    return Check(st, was_paused, before);
  }

  // The LB answered the current request: continue with the pipelined ones.
  bool ResumeAll(size_t bound) {
    for (size_t i = 0; parser_.paused(); ++i) {
      FUZZ_CHECK(i <= bound);  // every round completes a request: no livelock
      size_t before = handler_.completed();
      auto st = parser_.Resume();
      if (!Check(st, false, before)) return false;
    }
    FUZZ_CHECK(!parser_.has_kept_bytes());
    return true;
  }

  const HttpRequestParser& parser() const { return parser_; }

 private:
  HttpLimits limits_;
  Harness handler_;
  HttpRequestParser parser_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t c0 = data[0], c1 = data[1];
  std::string_view in(reinterpret_cast<const char*>(data + 2), size - 2);

  static const size_t kHeaderBytes[] = {64, 300, 4096, 64 * 1024};
  static const size_t kHeaders[] = {1, 4, 16, 100};
  static const uint64_t kBodyBytes[] = {0, 10, 1000, 1ull << 30};
  HttpLimits limits;
  limits.max_header_bytes = kHeaderBytes[c0 & 3];
  limits.max_headers = kHeaders[(c0 >> 2) & 3];
  limits.max_body_bytes = kBodyBytes[(c0 >> 4) & 3];
  const bool feed_while_paused = (c0 & 0x40) != 0;

  // Piece sizes: all at once when c1 is 0, else pseudo-random up to a bound from c1.
  const size_t max_piece = c1 == 0 ? in.size() + 1 : 1 + (c1 & 0x3f) * ((c1 & 0x40) ? 8 : 1);
  rlb::fuzz::Rng rng(c1 ^ (static_cast<uint32_t>(c0) << 8) ^ static_cast<uint32_t>(size));

  Driver d(limits);
  size_t off = 0;
  bool open = true;
  while (open && off < in.size()) {
    size_t n = std::min(rng.Size(max_piece), in.size() - off);
    open = d.Execute(in.substr(off, n));
    off += n;
    // The response to a completed request goes out now, or (as with a slow worker) only
    // after more bytes arrived.
    if (open && d.parser().paused() && !(feed_while_paused && rng.Bit())) {
      open = d.ResumeAll(in.size() + 2);
    }
  }
  if (open) open = d.ResumeAll(in.size() + 2);  // the client sent everything
  if (open) FUZZ_CHECK(!d.parser().paused());
  return 0;
}
