// FrameCodec implementation: big-endian primitives, per-kind encoders and bounded parsers.
#include "common/frame_codec.h"

#include <unistd.h>

#include <cmath>
#include <cstring>

#include "common/version.h"

namespace rlb::proto {
namespace {

void PutU32(std::string* out, uint32_t v) {
  char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
               static_cast<char>(v)};
  out->append(b, 4);
}

uint32_t GetU32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

void PutF64(std::string* out, double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  PutU32(out, static_cast<uint32_t>(bits >> 32));
  PutU32(out, static_cast<uint32_t>(bits));
}

void PutBytes(std::string* out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

// Writes the 8-byte header and the kind byte; returns the offset of the length field so
// the caller can patch it once the payload is complete.
size_t BeginFrame(std::string* out, uint32_t rno, Kind kind) {
  PutU32(out, rno);
  size_t at = out->size();
  PutU32(out, 0);
  out->push_back(static_cast<char>(kind));
  return at;
}

void EndFrame(std::string* out, size_t length_at) {
  uint32_t len = static_cast<uint32_t>(out->size() - length_at - 4);
  char b[4] = {static_cast<char>(len >> 24), static_cast<char>(len >> 16),
               static_cast<char>(len >> 8), static_cast<char>(len)};
  out->replace(length_at, 4, b, 4);
}

void EncodePairs(std::string* out, const Pairs& pairs) {
  PutU32(out, static_cast<uint32_t>(pairs.size()));
  for (const auto& [k, v] : pairs) {
    PutBytes(out, k);
    PutBytes(out, v);
  }
}

// A bounds-checked cursor over one payload.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool U8(uint8_t* v) {
    if (data_.size() < 1) return false;
    *v = static_cast<uint8_t>(data_[0]);
    data_.remove_prefix(1);
    return true;
  }
  bool U32(uint32_t* v) {
    if (data_.size() < 4) return false;
    *v = GetU32(data_.data());
    data_.remove_prefix(4);
    return true;
  }
  bool F64(double* d) {
    uint32_t hi, lo;
    if (!U32(&hi) || !U32(&lo)) return false;
    uint64_t bits = (uint64_t{hi} << 32) | lo;
    std::memcpy(d, &bits, sizeof *d);
    return true;
  }
  bool Raw(size_t n, std::string_view* out) {
    if (data_.size() < n) return false;
    *out = data_.substr(0, n);
    data_.remove_prefix(n);
    return true;
  }
  // A length-prefixed byte string of at most `max` bytes.
  bool Bytes(size_t max, std::string* out) {
    uint32_t n;
    std::string_view s;
    if (!U32(&n) || n > max || !Raw(n, &s)) return false;
    out->assign(s);
    return true;
  }
  size_t remaining() const { return data_.size(); }

 private:
  std::string_view data_;
};

Status Truncated(const char* what) {
  return Status::ProtocolError(std::string("malformed ") + what + " (truncated field or over limit)");
}

Status Trailing(const char* what) {
  return Status::ProtocolError(std::string("malformed ") + what + " (trailing bytes)");
}

// Parses `count` pairs with per-field and total byte limits.
Status ParsePairs(Reader* r, const char* what, size_t max_entries, size_t max_bytes,
                  size_t used_bytes, Pairs* out) {
  uint32_t n;
  if (!r->U32(&n)) return Truncated(what);
  if (n > max_entries) {
    return Status::ProtocolError(std::string(what) + " has " + std::to_string(n) +
                                 " entries, over the limit of " + std::to_string(max_entries));
  }
  out->clear();
  out->reserve(n);
  size_t total = used_bytes;
  for (uint32_t i = 0; i < n; ++i) {
    std::string k, v;
    if (!r->Bytes(max_bytes, &k) || !r->Bytes(max_bytes, &v)) return Truncated(what);
    total += k.size() + v.size();
    if (total > max_bytes) {
      return Status::ProtocolError(std::string(what) + " is over the limit of " +
                                   std::to_string(max_bytes) + " bytes");
    }
    out->emplace_back(std::move(k), std::move(v));
  }
  if (r->remaining() != 0) return Trailing(what);
  return Status::OK();
}

bool IsConnectionKind(Kind k) {
  return k == Kind::kHello || k == Kind::kResume || k == Kind::kKeepAlive || k == Kind::kGoAway ||
         k == Kind::kChallenge || k == Kind::kProof;
}

bool IsKnownKind(uint8_t k) {
  switch (static_cast<Kind>(k)) {
    case Kind::kHello: case Kind::kResume: case Kind::kKeepAlive: case Kind::kGoAway:
    case Kind::kChallenge: case Kind::kProof:
    case Kind::kRequest: case Kind::kRequestBody: case Kind::kRequestEnd: case Kind::kCancel:
    case Kind::kResponse: case Kind::kResponseBody: case Kind::kResponseEnd:
      return true;
  }
  return false;
}

}  // namespace

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kHello: return "HELLO";
    case Kind::kResume: return "RESUME";
    case Kind::kKeepAlive: return "KEEPALIVE";
    case Kind::kGoAway: return "GOAWAY";
    case Kind::kChallenge: return "CHALLENGE";
    case Kind::kProof: return "PROOF";
    case Kind::kRequest: return "REQUEST";
    case Kind::kRequestBody: return "REQUEST_BODY";
    case Kind::kRequestEnd: return "REQUEST_END";
    case Kind::kCancel: return "CANCEL";
    case Kind::kResponse: return "RESPONSE";
    case Kind::kResponseBody: return "RESPONSE_BODY";
    case Kind::kResponseEnd: return "RESPONSE_END";
  }
  return "UNKNOWN";
}

Hello MakeHello(std::string_view role, std::string_view program) {
  Hello hello;
  hello.pid = static_cast<uint32_t>(getpid());
  hello.role = std::string(role);
  hello.software = std::string(program) + " " + kVersion;
  return hello;
}

void EncodeHello(std::string* out, const Hello& hello) {
  size_t at = BeginFrame(out, 0, Kind::kHello);
  out->append(kMagic);
  PutU32(out, hello.version);
  PutU32(out, hello.pid);
  PutBytes(out, hello.role);
  PutBytes(out, hello.software);
  EndFrame(out, at);
}

void EncodeResume(std::string* out, const ResumeEntries& resume) {
  size_t at = BeginFrame(out, 0, Kind::kResume);
  PutU32(out, static_cast<uint32_t>(resume.size()));
  for (const auto& [cls, score] : resume) {
    PutBytes(out, cls);
    PutF64(out, score);
  }
  EndFrame(out, at);
}

void EncodeKeepAlive(std::string* out) { EndFrame(out, BeginFrame(out, 0, Kind::kKeepAlive)); }
void EncodeGoAway(std::string* out) { EndFrame(out, BeginFrame(out, 0, Kind::kGoAway)); }

void EncodeChallenge(std::string* out, std::string_view nonce) {
  size_t at = BeginFrame(out, 0, Kind::kChallenge);
  out->append(nonce);
  EndFrame(out, at);
}

void EncodeProof(std::string* out, std::string_view proof) {
  size_t at = BeginFrame(out, 0, Kind::kProof);
  out->append(proof);
  EndFrame(out, at);
}

void EncodeRequest(std::string* out, uint32_t rno, std::string_view request_class,
                   const Pairs& environ) {
  size_t at = BeginFrame(out, rno, Kind::kRequest);
  PutBytes(out, request_class);
  EncodePairs(out, environ);
  EndFrame(out, at);
}

void EncodeRequestBody(std::string* out, uint32_t rno, std::string_view data) {
  size_t at = BeginFrame(out, rno, Kind::kRequestBody);
  out->append(data);
  EndFrame(out, at);
}

void EncodeRequestEnd(std::string* out, uint32_t rno) {
  EndFrame(out, BeginFrame(out, rno, Kind::kRequestEnd));
}

void EncodeCancel(std::string* out, uint32_t rno) {
  EndFrame(out, BeginFrame(out, rno, Kind::kCancel));
}

void EncodeResponse(std::string* out, uint32_t rno, std::string_view status,
                    const Pairs& headers) {
  size_t at = BeginFrame(out, rno, Kind::kResponse);
  PutBytes(out, status);
  EncodePairs(out, headers);
  EndFrame(out, at);
}

void EncodeResponseBody(std::string* out, uint32_t rno, std::string_view data) {
  size_t at = BeginFrame(out, rno, Kind::kResponseBody);
  out->append(data);
  EndFrame(out, at);
}

void EncodeResponseEnd(std::string* out, uint32_t rno, Outcome outcome) {
  size_t at = BeginFrame(out, rno, Kind::kResponseEnd);
  out->push_back(static_cast<char>(outcome));
  EndFrame(out, at);
}

Status ParseHello(std::string_view payload, Hello* out) {
  Reader r(payload);
  std::string_view magic;
  if (!r.Raw(kMagic.size(), &magic) || magic != kMagic) {
    return Status::ProtocolError("HELLO without the \"RSLB\" magic: not a resumelb peer");
  }
  if (!r.U32(&out->version) || !r.U32(&out->pid) || !r.Bytes(kMaxTextField, &out->role) ||
      !r.Bytes(kMaxTextField, &out->software)) {
    return Truncated("HELLO");
  }
  if (r.remaining() != 0) return Trailing("HELLO");
  return Status::OK();
}

Status CheckFirstFrame(const Frame& frame, Hello* out) {
  if (frame.kind != Kind::kHello) {
    return Status::ProtocolError(std::string(KindName(frame.kind)) + " before HELLO");
  }
  return CheckPeerHello(frame.payload, out);
}

Status CheckPeerHello(std::string_view payload, Hello* out) {
  Status s = ParseHello(payload, out);
  if (!s.ok()) return s;
  if (out->version != kProtocolVersion) {
    return Status::ProtocolError("peer speaks protocol version " + std::to_string(out->version) +
                                 ", this side speaks version " +
                                 std::to_string(kProtocolVersion));
  }
  return Status::OK();
}

Status ParseResume(std::string_view payload, ResumeEntries* out) {
  Reader r(payload);
  uint32_t n;
  if (!r.U32(&n)) return Truncated("RESUME");
  if (n > kMaxResumeEntries) return Status::ProtocolError("RESUME has too many classes");
  // Each entry takes at least 12 bytes: refuse counts the payload cannot hold before reserving.
  if (n > r.remaining() / 12) return Truncated("RESUME");
  out->clear();
  out->reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    std::string cls;
    double score;
    if (!r.Bytes(kMaxClassBytes, &cls) || !r.F64(&score)) return Truncated("RESUME");
    if (!std::isfinite(score) || score < 0) {
      return Status::ProtocolError("RESUME score for class '" + cls +
                                   "' is not finite or is negative");
    }
    out->emplace_back(std::move(cls), score);
  }
  if (r.remaining() != 0) return Trailing("RESUME");
  return Status::OK();
}

Status ParseRequest(std::string_view payload, Request* out) {
  Reader r(payload);
  if (!r.Bytes(kMaxClassBytes, &out->request_class)) return Truncated("REQUEST class");
  return ParsePairs(&r, "REQUEST environ", kMaxEnvironEntries, kMaxEnvironBytes, 0,
                    &out->environ);
}

Status ParseResponse(std::string_view payload, Response* out) {
  Reader r(payload);
  if (!r.Bytes(kMaxTextField, &out->status)) return Truncated("RESPONSE status");
  // A status is "NNN reason": three digits, then a space (the reason may be empty).
  const std::string& s = out->status;
  if (s.size() < 4 || s[3] != ' ' || s[0] < '1' || s[0] > '9' || s[1] < '0' || s[1] > '9' ||
      s[2] < '0' || s[2] > '9') {
    return Status::ProtocolError("RESPONSE status '" + s.substr(0, 64) +
                                 "' is not of the form 'NNN reason'");
  }
  return ParsePairs(&r, "RESPONSE headers", kMaxHeaders, kMaxHeaderBytes, s.size(),
                    &out->headers);
}

Status ParseResponseEnd(std::string_view payload, Outcome* out) {
  if (payload.size() != 1) return Status::ProtocolError("RESPONSE_END must carry one byte");
  auto v = static_cast<uint8_t>(payload[0]);
  if (v > 1) return Status::ProtocolError("RESPONSE_END outcome " + std::to_string(v) + " unknown");
  *out = static_cast<Outcome>(v);
  return Status::OK();
}

Status ParseChallenge(std::string_view payload, std::string* nonce) {
  if (payload.size() != kNonceBytes) {
    return Status::ProtocolError("CHALLENGE must carry a " + std::to_string(kNonceBytes) +
                                 "-byte nonce, not " + std::to_string(payload.size()) + " bytes");
  }
  nonce->assign(payload);
  return Status::OK();
}

Status ParseProof(std::string_view payload, std::string* proof) {
  if (payload.size() != kProofBytes) {
    return Status::ProtocolError("PROOF must carry a " + std::to_string(kProofBytes) +
                                 "-byte HMAC, not " + std::to_string(payload.size()) + " bytes");
  }
  proof->assign(payload);
  return Status::OK();
}

Status ExpectEmpty(const Frame& frame) {
  if (!frame.payload.empty()) {
    return Status::ProtocolError(std::string(KindName(frame.kind)) + " must have no payload");
  }
  return Status::OK();
}

Status CheckBody(const Frame& frame) {
  if (frame.payload.empty()) {
    return Status::ProtocolError(std::string(KindName(frame.kind)) + " with no data");
  }
  if (frame.payload.size() > kMaxBodyChunk) {
    return Status::ProtocolError(std::string(KindName(frame.kind)) + " chunk over " +
                                 std::to_string(kMaxBodyChunk) + " bytes");
  }
  return Status::OK();
}

void FrameDecoder::Feed(std::string_view data) {
  // Compact lazily: drop consumed bytes once they dominate the buffer.
  if (consumed_ > 0 && (consumed_ >= buffer_.size() / 2 || consumed_ > (1u << 20))) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  buffer_.append(data);
}

FrameDecoder::Result FrameDecoder::Next(Frame* frame, Status* error) {
  if (failed_) {
    *error = Status::ProtocolError("stream already failed");
    return Result::kError;
  }
  size_t avail = buffer_.size() - consumed_;
  if (avail < kFrameHeaderSize) {
    if (avail == 0) {
      // Fully consumed: a buffer grown for a large frame (up to 16 MiB) gives its memory
      // back; a small one keeps its capacity for the next reads.
      if (buffer_.capacity() > (1u << 20)) {
        std::string().swap(buffer_);
      } else {
        buffer_.clear();
      }
      consumed_ = 0;
    }
    return Result::kNeedMore;
  }
  const char* p = buffer_.data() + consumed_;
  uint32_t rno = GetU32(p);
  uint32_t len = GetU32(p + 4);
  if (len == 0) {
    failed_ = true;
    *error = Status::ProtocolError("frame with an empty payload (no kind byte)");
    return Result::kError;
  }
  if (len > kMaxPayload) {
    failed_ = true;
    *error = Status::ProtocolError("frame payload of " + std::to_string(len) +
                                   " bytes is over the limit of " + std::to_string(kMaxPayload));
    return Result::kError;
  }
  // The kind byte is checked as soon as it is here, before waiting for a large payload.
  uint8_t kind = 0;
  if (avail >= kFrameHeaderSize + 1) {
    kind = static_cast<uint8_t>(p[8]);
    if (!IsKnownKind(kind)) {
      failed_ = true;
      *error = Status::ProtocolError("unknown message kind 0x" +
                                     std::string(1, "0123456789abcdef"[kind >> 4]) +
                                     std::string(1, "0123456789abcdef"[kind & 15]));
      return Result::kError;
    }
    bool conn_kind = IsConnectionKind(static_cast<Kind>(kind));
    if (conn_kind != (rno == 0)) {
      failed_ = true;
      *error = Status::ProtocolError(std::string(KindName(static_cast<Kind>(kind))) +
                                     (conn_kind ? " must use request number 0"
                                                : " must not use request number 0"));
      return Result::kError;
    }
  }
  if (avail < kFrameHeaderSize + len) return Result::kNeedMore;
  frame->rno = rno;
  frame->kind = static_cast<Kind>(kind);
  frame->payload = std::string_view(p + kFrameHeaderSize + 1, len - 1);
  consumed_ += kFrameHeaderSize + len;
  return Result::kFrame;
}

}  // namespace rlb::proto
