// fuzz_frame_codec: the LB <-> worker wire codec (common/frame_codec.h) on arbitrary bytes.
//
// Input: byte 0 chooses how the rest is cut into pieces for FrameDecoder::Feed (0: all at
// once; otherwise pseudo-random sizes up to a bound derived from it), bytes 1.. are the
// stream. Every frame the decoder returns is checked against the raw stream, parsed with the
// parser for its kind (and, for robustness only, with every other parser), and when the
// parse succeeds re-encoded: the encoder must reproduce the frame byte for byte. Every
// kNeedMore and kError is checked against an independent reading of the frame header. Last,
// the whole stream goes through the receive loop both ends share (DispatchFrames and the
// HELLO gate CheckFirstFrame), which must agree with the piecewise decoding.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/frame_codec.h"
#include "fuzz/fuzz_util.h"

namespace {

using namespace rlb::proto;
using rlb::Status;

uint32_t U32(std::string_view s, size_t at) {
  const auto* u = reinterpret_cast<const unsigned char*>(s.data() + at);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

// The spec's kinds (docs/protocol.md), written out independently of the codec.
// The protocol's kinds, written out independently of the codec (docs/protocol.md): 0x01-0x06
// on the connection (HELLO, RESUME, KEEPALIVE, GOAWAY, CHALLENGE, PROOF), the rest per request.
bool KnownKind(uint8_t k) {
  return (k >= 0x01 && k <= 0x06) || (k >= 0x10 && k <= 0x13) || (k >= 0x20 && k <= 0x22);
}
bool ConnectionKind(uint8_t k) { return k >= 0x01 && k <= 0x06; }

// Whether the frame header at `off` (with `avail` bytes present) breaks a framing rule.
bool HeaderBroken(std::string_view s, size_t off, size_t avail) {
  if (avail < kFrameHeaderSize) return false;
  uint32_t rno = U32(s, off), len = U32(s, off + 4);
  if (len == 0 || len > kMaxPayload) return true;
  if (avail < kFrameHeaderSize + 1) return false;
  auto kind = static_cast<uint8_t>(s[off + 8]);
  if (!KnownKind(kind)) return true;
  return ConnectionKind(kind) != (rno == 0);
}

void CheckPairsWithin(const Pairs& pairs, size_t max_entries, size_t max_bytes, size_t used) {
  FUZZ_CHECK(pairs.size() <= max_entries);
  size_t total = used;
  for (const auto& [k, v] : pairs) total += k.size() + v.size();
  FUZZ_CHECK(total <= max_bytes);
}

// Parses one frame with its kind's parser; on success re-encodes it and compares.
void CheckFrame(const Frame& f, std::string_view raw) {
  std::string again;
  bool parsed = false;
  switch (f.kind) {
    case Kind::kHello: {
      Hello h;
      if (ParseHello(f.payload, &h).ok()) {
        FUZZ_CHECK(h.role.size() <= kMaxTextField && h.software.size() <= kMaxTextField);
        EncodeHello(&again, h);
        parsed = true;
      }
      break;
    }
    case Kind::kResume: {
      ResumeEntries r;
      if (ParseResume(f.payload, &r).ok()) {
        FUZZ_CHECK(r.size() <= kMaxResumeEntries);
        for (const auto& [cls, score] : r) {
          FUZZ_CHECK(cls.size() <= kMaxClassBytes);
          FUZZ_CHECK(std::isfinite(score) && score >= 0);
        }
        EncodeResume(&again, r);
        parsed = true;
      }
      break;
    }
    case Kind::kKeepAlive:
      if (ExpectEmpty(f).ok()) { EncodeKeepAlive(&again); parsed = true; }
      break;
    case Kind::kGoAway:
      if (ExpectEmpty(f).ok()) { EncodeGoAway(&again); parsed = true; }
      break;
    case Kind::kChallenge: {
      std::string nonce;
      if (ParseChallenge(f.payload, &nonce).ok()) {
        FUZZ_CHECK(nonce.size() == kNonceBytes);
        EncodeChallenge(&again, nonce);
        parsed = true;
      }
      break;
    }
    case Kind::kProof: {
      std::string proof;
      if (ParseProof(f.payload, &proof).ok()) {
        FUZZ_CHECK(proof.size() == kProofBytes);
        EncodeProof(&again, proof);
        parsed = true;
      }
      break;
    }
    case Kind::kRequest: {
      Request r;
      if (ParseRequest(f.payload, &r).ok()) {
        FUZZ_CHECK(r.request_class.size() <= kMaxClassBytes);
        CheckPairsWithin(r.environ, kMaxEnvironEntries, kMaxEnvironBytes, 0);
        EncodeRequest(&again, f.rno, r.request_class, r.environ);
        parsed = true;
      }
      break;
    }
    case Kind::kRequestBody:
      if (CheckBody(f).ok()) { EncodeRequestBody(&again, f.rno, f.payload); parsed = true; }
      break;
    case Kind::kRequestEnd:
      if (ExpectEmpty(f).ok()) { EncodeRequestEnd(&again, f.rno); parsed = true; }
      break;
    case Kind::kCancel:
      if (ExpectEmpty(f).ok()) { EncodeCancel(&again, f.rno); parsed = true; }
      break;
    case Kind::kResponse: {
      Response r;
      if (ParseResponse(f.payload, &r).ok()) {
        const std::string& s = r.status;
        FUZZ_CHECK(s.size() >= 4 && s.size() <= kMaxTextField && s[3] == ' ');
        CheckPairsWithin(r.headers, kMaxHeaders, kMaxHeaderBytes, s.size());
        EncodeResponse(&again, f.rno, r.status, r.headers);
        parsed = true;
      }
      break;
    }
    case Kind::kResponseBody:
      if (CheckBody(f).ok()) { EncodeResponseBody(&again, f.rno, f.payload); parsed = true; }
      break;
    case Kind::kResponseEnd: {
      Outcome o;
      if (ParseResponseEnd(f.payload, &o).ok()) {
        FUZZ_CHECK(o == Outcome::kComplete || o == Outcome::kFailed);
        EncodeResponseEnd(&again, f.rno, o);
        parsed = true;
      }
      break;
    }
  }
  if (parsed) FUZZ_CHECK(again == raw);

  // Robustness: every parser must cope with any payload (results ignored).
  Hello h;
  (void)ParseHello(f.payload, &h);
  if (CheckPeerHello(f.payload, &h).ok()) FUZZ_CHECK(h.version == kProtocolVersion);
  ResumeEntries re;
  (void)ParseResume(f.payload, &re);
  Request rq;
  (void)ParseRequest(f.payload, &rq);
  Response rs;
  (void)ParseResponse(f.payload, &rs);
  Outcome o;
  (void)ParseResponseEnd(f.payload, &o);
  (void)ExpectEmpty(f);
  (void)CheckBody(f);
}

// The receive loop both ends run (DispatchFrames, with CheckFirstFrame as the gate for the
// first frame) on the whole stream at once: it must hand over exactly the frames the
// piecewise decoding returned, and fail exactly when that decoding or the gate failed.
void CheckDispatch(std::string_view stream, size_t frames, bool decode_failed) {
  FrameDecoder decoder;
  decoder.Feed(stream);
  size_t seen = 0;
  Status gate;
  Status s = DispatchFrames(&decoder, [] { return true; }, [&](const Frame& f) {
    if (seen++ > 0) return Status::OK();
    Hello hello;
    gate = CheckFirstFrame(f, &hello);
    if (gate.ok()) {
      FUZZ_CHECK(f.kind == Kind::kHello && hello.version == kProtocolVersion);
    } else {
      FUZZ_CHECK(!gate.message().empty());
    }
    return gate;
  });
  if (seen > 0 && !gate.ok()) {
    FUZZ_CHECK(seen == 1 && !s.ok() && s.message() == gate.message());
    return;
  }
  FUZZ_CHECK(seen == frames);
  FUZZ_CHECK(s.ok() == !decode_failed);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t control = data[0];
  std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t max_piece =
      control == 0 ? stream.size() + 1 : 1 + (control & 0x3f) * ((control & 0x40) ? 16 : 1);
  rlb::fuzz::Rng rng(control ^ static_cast<uint32_t>(size));

  FrameDecoder decoder;
  size_t fed = 0;  // bytes of `stream` given to Feed
  size_t off = 0;  // offset of the next frame in `stream`
  size_t frames = 0;
  bool failed = false;
  for (;;) {
    if (fed < stream.size()) {
      size_t n = std::min(rng.Size(max_piece), stream.size() - fed);
      decoder.Feed(stream.substr(fed, n));
      fed += n;
    }
    FUZZ_CHECK(decoder.buffered() == fed - off);
    for (;;) {
      Frame f;
      Status error;
      auto r = decoder.Next(&f, &error);
      if (r == FrameDecoder::Result::kFrame) {
        FUZZ_CHECK(fed - off >= kFrameHeaderSize + 1);
        FUZZ_CHECK(!HeaderBroken(stream, off, fed - off));
        uint32_t len = U32(stream, off + 4);
        FUZZ_CHECK(f.rno == U32(stream, off));
        FUZZ_CHECK(static_cast<uint8_t>(f.kind) == static_cast<uint8_t>(stream[off + 8]));
        FUZZ_CHECK(f.payload == stream.substr(off + kFrameHeaderSize + 1, len - 1));
        CheckFrame(f, stream.substr(off, kFrameHeaderSize + len));
        off += kFrameHeaderSize + len;
        ++frames;
        FUZZ_CHECK(decoder.buffered() == fed - off);
        continue;
      }
      if (r == FrameDecoder::Result::kNeedMore) {
        size_t avail = fed - off;
        FUZZ_CHECK(!HeaderBroken(stream, off, avail));
        FUZZ_CHECK(avail < kFrameHeaderSize ||
                   avail < kFrameHeaderSize + U32(stream, off + 4));
        break;
      }
      FUZZ_CHECK(r == FrameDecoder::Result::kError);
      FUZZ_CHECK(!error.ok() && !error.message().empty());
      FUZZ_CHECK(HeaderBroken(stream, off, fed - off));
      // The stream stays failed.
      Status again;
      FUZZ_CHECK(decoder.Next(&f, &again) == FrameDecoder::Result::kError);
      failed = true;
      break;
    }
    if (failed || fed == stream.size()) break;
  }
  CheckDispatch(stream, frames, failed);
  return 0;
}
