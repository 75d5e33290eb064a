// FrameCodec: the LB <-> worker wire protocol (docs/protocol.md), shared by both sides.
//
// A frame is `u32 rno | u32 length | payload[length]` (big-endian); the payload starts with a
// one-byte message kind. Encoders append complete frames to a std::string; FrameDecoder
// splits a byte stream into frames, and the Parse* functions decode one payload into a
// message struct. Every decode error is a Status naming the problem: the caller closes that
// one connection and logs the reason. Nothing here does I/O or allocates unboundedly: every
// length is checked against the limits below before anything is copied.
//
// Thread rules: the functions are pure; a FrameDecoder instance belongs to one connection
// and is used by one thread at a time.
#ifndef RESUMELB_COMMON_FRAME_CODEC_H_
#define RESUMELB_COMMON_FRAME_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace rlb::proto {

constexpr uint32_t kProtocolVersion = 1;
constexpr std::string_view kMagic = "RSLB";

// Limits (docs/protocol.md, "Limits"). A frame or message over a limit is malformed.
constexpr size_t kFrameHeaderSize = 8;
constexpr size_t kMaxPayload = 16u << 20;        // any frame
constexpr size_t kMaxBodyChunk = 1u << 20;       // REQUEST_BODY / RESPONSE_BODY data
constexpr size_t kPreferredChunk = 64u << 10;    // what senders use
constexpr size_t kMaxEnvironBytes = 1u << 20;    // sum of key + value lengths
constexpr size_t kMaxEnvironEntries = 4096;
constexpr size_t kMaxHeaderBytes = 256u << 10;   // status + names + values
constexpr size_t kMaxHeaders = 1024;
constexpr size_t kMaxResumeEntries = 1u << 20;
constexpr size_t kMaxClassBytes = 4096;           // one request class name
constexpr size_t kMaxTextField = 4096;            // hello strings, status line
constexpr size_t kNonceBytes = 32;                // a CHALLENGE's nonce: exactly this
constexpr size_t kProofBytes = 32;                // a PROOF's HMAC-SHA256: exactly this

enum class Kind : uint8_t {
  kHello = 0x01,         // both directions, rno 0, first frame on a connection
  kResume = 0x02,        // worker -> LB, rno 0
  kKeepAlive = 0x03,     // both directions, rno 0; the worker answers each one
  kGoAway = 0x04,        // worker -> LB, rno 0: send no new requests on this connection
  kChallenge = 0x05,     // both directions, rno 0: a 32-byte nonce (only with a link secret)
  kProof = 0x06,         // both directions, rno 0: a 32-byte HMAC (common/link_auth.h)
  kRequest = 0x10,       // LB -> worker, rno > 0: request class + environ
  kRequestBody = 0x11,   // LB -> worker: body bytes (non-empty)
  kRequestEnd = 0x12,    // LB -> worker: end of request body
  kCancel = 0x13,        // LB -> worker: abandon the request
  kResponse = 0x20,      // worker -> LB: status + headers
  kResponseBody = 0x21,  // worker -> LB: body bytes (non-empty)
  kResponseEnd = 0x22,   // worker -> LB: end of response, with an outcome
};
const char* KindName(Kind kind);

enum class Outcome : uint8_t { kComplete = 0, kFailed = 1 };

using Pairs = std::vector<std::pair<std::string, std::string>>;

struct Hello {
  uint32_t version = kProtocolVersion;
  uint32_t pid = 0;
  std::string role;      // "lb" or "worker"
  std::string software;  // e.g. "resumelb 0.1.0"
};
using ResumeEntries = std::vector<std::pair<std::string, double>>;
struct Request {
  std::string request_class;
  Pairs environ;  // CGI/WSGI variables as byte strings (values latin-1 on the Python side)
};
struct Response {
  std::string status;  // "200 OK"
  Pairs headers;
};

// A frame as split off the stream; `payload` excludes the kind byte and points into the
// decoder's buffer (valid until the next Feed()/Next()).
struct Frame {
  uint32_t rno = 0;
  Kind kind = Kind::kKeepAlive;
  std::string_view payload;
};

// The HELLO this process opens a connection with: kProtocolVersion, getpid(), `role`
// ("lb", "worker", or "tool" for a command-line client) and software "<program> <kVersion>"
// with the project version from common/version.h, e.g. MakeHello("lb", "resumelb") gives
// software "resumelb 0.1.0" and MakeHello("worker", "zkworker") "zkworker 0.1.0".
// REQUIRES: role and program fit kMaxTextField with the version.
Hello MakeHello(std::string_view role, std::string_view program);

// --- Encoding: append one complete frame to *out. ---
void EncodeHello(std::string* out, const Hello& hello);
void EncodeResume(std::string* out, const ResumeEntries& resume);
void EncodeKeepAlive(std::string* out);
void EncodeGoAway(std::string* out);
// REQUIRES: nonce.size() == kNonceBytes (CHALLENGE), proof.size() == kProofBytes (PROOF).
void EncodeChallenge(std::string* out, std::string_view nonce);
void EncodeProof(std::string* out, std::string_view proof);
void EncodeRequest(std::string* out, uint32_t rno, std::string_view request_class,
                   const Pairs& environ);
void EncodeRequestBody(std::string* out, uint32_t rno, std::string_view data);
void EncodeRequestEnd(std::string* out, uint32_t rno);
void EncodeCancel(std::string* out, uint32_t rno);
void EncodeResponse(std::string* out, uint32_t rno, std::string_view status, const Pairs& headers);
void EncodeResponseBody(std::string* out, uint32_t rno, std::string_view data);
void EncodeResponseEnd(std::string* out, uint32_t rno, Outcome outcome);

// --- Decoding one payload (Frame::payload) into a message. ---
Status ParseHello(std::string_view payload, Hello* out);
// ParseHello, then refuses a peer that does not speak kProtocolVersion.
Status CheckPeerHello(std::string_view payload, Hello* out);
// The first frame on a connection must be the peer's HELLO: refuses any other kind, then
// CheckPeerHello.
Status CheckFirstFrame(const Frame& frame, Hello* out);
Status ParseResume(std::string_view payload, ResumeEntries* out);
Status ParseRequest(std::string_view payload, Request* out);
Status ParseResponse(std::string_view payload, Response* out);
Status ParseResponseEnd(std::string_view payload, Outcome* out);
// CHALLENGE and PROOF bodies are fixed-size: any other length is malformed.
Status ParseChallenge(std::string_view payload, std::string* nonce);
Status ParseProof(std::string_view payload, std::string* proof);
// Kinds with an empty payload (keep-alive, go-away, request end, cancel) must have none.
Status ExpectEmpty(const Frame& frame);
// Body kinds: data must be non-empty and at most kMaxBodyChunk.
Status CheckBody(const Frame& frame);

// Splits a byte stream into frames, checking the framing rules that do not depend on the
// receiving side: length >= 1 and <= kMaxPayload, a known kind, rno 0 exactly for the
// connection-level kinds (hello, résumé, keep-alive, go-away).
class FrameDecoder {
 public:
  enum class Result { kFrame, kNeedMore, kError };

  // Appends received bytes.
  void Feed(std::string_view data);
  // kFrame: *frame is the next frame. kNeedMore: feed more bytes. kError: *error says why;
  // the stream is unusable afterwards (close the connection).
  Result Next(Frame* frame, Status* error);
  // Bytes buffered but not yet returned as frames.
  size_t buffered() const { return buffer_.size() - consumed_; }

 private:
  std::string buffer_;
  size_t consumed_ = 0;
  bool failed_ = false;
};

// The receive loop both ends share: hands every complete frame to handle(frame) -> Status
// while keep_going() holds. Returns the first decoding or handler error (the caller closes
// the connection with it as the reason), else OK once more bytes are needed or keep_going()
// turned false (the connection was closed or replaced by a handler).
template <typename KeepGoing, typename Handle>
Status DispatchFrames(FrameDecoder* decoder, KeepGoing keep_going, Handle handle) {
  Frame frame;
  Status error;
  while (keep_going()) {
    switch (decoder->Next(&frame, &error)) {
      case FrameDecoder::Result::kNeedMore:
        return Status::OK();
      case FrameDecoder::Result::kError:
        return error;
      case FrameDecoder::Result::kFrame:
        break;
    }
    Status s = handle(frame);
    if (!s.ok()) return s;
  }
  return Status::OK();
}

}  // namespace rlb::proto

#endif  // RESUMELB_COMMON_FRAME_CODEC_H_
