// Tests for common/frame_codec: the shared test vectors (tests/vectors/protocol_vectors.json,
// computed by hand from docs/protocol.md), round trips, stream splitting and the limits.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "common/frame_codec.h"
#include "common/json.h"
#include "common/version.h"

#ifndef RLB_VECTORS_FILE
#error "RLB_VECTORS_FILE must name tests/vectors/protocol_vectors.json"
#endif

namespace {

using namespace rlb;
using namespace rlb::proto;

// ---------------------------------------------------------------------------------------
// Helpers

std::string FromHex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw std::invalid_argument("bad hex digit");
  };
  if (hex.size() % 2 != 0) throw std::invalid_argument("odd hex length");
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    out.push_back(static_cast<char>(nibble(hex[i]) * 16 + nibble(hex[i + 1])));
  }
  return out;
}

std::string ToHex(std::string_view bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

void PutU32(std::string* out, uint32_t v) {
  out->push_back(static_cast<char>(v >> 24));
  out->push_back(static_cast<char>(v >> 16));
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v));
}

// A raw frame header (rno, length) plus the kind byte, built without the encoder.
std::string RawHeader(uint32_t rno, uint32_t length, uint8_t kind) {
  std::string out;
  PutU32(&out, rno);
  PutU32(&out, length);
  out.push_back(static_cast<char>(kind));
  return out;
}

struct Vectors {
  rapidjson::Document doc;
  Vectors() {
    std::ifstream in(RLB_VECTORS_FILE, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " RLB_VECTORS_FILE);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    doc.Parse<rapidjson::kParseFullPrecisionFlag>(text.c_str(), text.size());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("valid") ||
        !doc.HasMember("malformed")) {
      throw std::runtime_error("bad vectors file " RLB_VECTORS_FILE);
    }
  }
};

const rapidjson::Document& LoadVectors() {
  static const Vectors vectors;
  return vectors.doc;
}

// A byte string in "fields": a plain JSON string or {"hex": "..."}.
std::string Bytes(const rapidjson::Value& v) {
  if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
  if (v.IsObject() && v.HasMember("hex") && v["hex"].IsString()) {
    return FromHex(std::string_view(v["hex"].GetString(), v["hex"].GetStringLength()));
  }
  throw std::invalid_argument("byte string field is neither a string nor {\"hex\": ...}");
}

Pairs PairsField(const rapidjson::Value& v) {
  Pairs out;
  for (const auto& p : v.GetArray()) out.emplace_back(Bytes(p[0]), Bytes(p[1]));
  return out;
}

// Scores compared bit for bit: the vectors are exact binary64 values.
bool SameDouble(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// The frame a valid vector describes, encoded from its fields by the codec.
std::string EncodeFromFields(const rapidjson::Value& vec) {
  std::string kind = vec["kind"].GetString();
  auto rno = static_cast<uint32_t>(vec["rno"].GetUint());
  const rapidjson::Value& f = vec["fields"];
  std::string out;
  if (kind == "HELLO") {
    Hello h;
    h.version = f["version"].GetUint();
    h.pid = f["pid"].GetUint();
    h.role = Bytes(f["role"]);
    h.software = Bytes(f["software"]);
    EncodeHello(&out, h);
  } else if (kind == "RESUME") {
    ResumeEntries entries;
    for (const auto& e : f["entries"].GetArray()) entries.emplace_back(Bytes(e[0]), e[1].GetDouble());
    EncodeResume(&out, entries);
  } else if (kind == "KEEPALIVE") {
    EncodeKeepAlive(&out);
  } else if (kind == "GOAWAY") {
    EncodeGoAway(&out);
  } else if (kind == "CHALLENGE") {
    EncodeChallenge(&out, Bytes(f["nonce"]));
  } else if (kind == "PROOF") {
    EncodeProof(&out, Bytes(f["proof"]));
  } else if (kind == "REQUEST") {
    EncodeRequest(&out, rno, Bytes(f["request_class"]), PairsField(f["environ"]));
  } else if (kind == "REQUEST_BODY") {
    EncodeRequestBody(&out, rno, Bytes(f["data"]));
  } else if (kind == "REQUEST_END") {
    EncodeRequestEnd(&out, rno);
  } else if (kind == "CANCEL") {
    EncodeCancel(&out, rno);
  } else if (kind == "RESPONSE") {
    EncodeResponse(&out, rno, Bytes(f["status"]), PairsField(f["headers"]));
  } else if (kind == "RESPONSE_BODY") {
    EncodeResponseBody(&out, rno, Bytes(f["data"]));
  } else if (kind == "RESPONSE_END") {
    std::string outcome = f["outcome"].GetString();
    EncodeResponseEnd(&out, rno, outcome == "failed" ? Outcome::kFailed : Outcome::kComplete);
  } else {
    FAIL("unknown kind in vectors: " << kind);
  }
  return out;
}

// Parses one frame's payload according to its kind (what a receiver does after
// FrameDecoder::Next); returns the first error.
Status ParseAny(const Frame& frame) {
  switch (frame.kind) {
    case Kind::kHello: {
      Hello h;
      return ParseHello(frame.payload, &h);
    }
    case Kind::kResume: {
      ResumeEntries r;
      return ParseResume(frame.payload, &r);
    }
    case Kind::kRequest: {
      Request r;
      return ParseRequest(frame.payload, &r);
    }
    case Kind::kResponse: {
      Response r;
      return ParseResponse(frame.payload, &r);
    }
    case Kind::kResponseEnd: {
      Outcome o;
      return ParseResponseEnd(frame.payload, &o);
    }
    case Kind::kChallenge: {
      std::string nonce;
      return ParseChallenge(frame.payload, &nonce);
    }
    case Kind::kProof: {
      std::string proof;
      return ParseProof(frame.payload, &proof);
    }
    case Kind::kRequestBody:
    case Kind::kResponseBody:
      return CheckBody(frame);
    case Kind::kKeepAlive:
    case Kind::kGoAway:
    case Kind::kRequestEnd:
    case Kind::kCancel:
      return ExpectEmpty(frame);
  }
  return Status::ProtocolError("unreachable");
}

// Checks a decoded frame against a valid vector's kind, rno and fields.
void CheckDecoded(const Frame& frame, const rapidjson::Value& vec) {
  const rapidjson::Value& f = vec["fields"];
  CHECK(std::string(KindName(frame.kind)) == vec["kind"].GetString());
  CHECK(frame.rno == vec["rno"].GetUint());
  switch (frame.kind) {
    case Kind::kHello: {
      Hello h;
      Status s = ParseHello(frame.payload, &h);
      REQUIRE(s.ok());
      CHECK(h.version == f["version"].GetUint());
      CHECK(h.pid == f["pid"].GetUint());
      CHECK(h.role == Bytes(f["role"]));
      CHECK(h.software == Bytes(f["software"]));
      break;
    }
    case Kind::kResume: {
      ResumeEntries r;
      Status s = ParseResume(frame.payload, &r);
      REQUIRE(s.ok());
      const auto& want = f["entries"];
      REQUIRE(r.size() == want.Size());
      for (rapidjson::SizeType i = 0; i < want.Size(); ++i) {
        CHECK(ToHex(r[i].first) == ToHex(Bytes(want[i][0])));
        CHECK(SameDouble(r[i].second, want[i][1].GetDouble()));
      }
      break;
    }
    case Kind::kRequest: {
      Request r;
      Status s = ParseRequest(frame.payload, &r);
      REQUIRE(s.ok());
      CHECK(ToHex(r.request_class) == ToHex(Bytes(f["request_class"])));
      CHECK(r.environ == PairsField(f["environ"]));
      break;
    }
    case Kind::kResponse: {
      Response r;
      Status s = ParseResponse(frame.payload, &r);
      REQUIRE(s.ok());
      CHECK(r.status == Bytes(f["status"]));
      CHECK(r.headers == PairsField(f["headers"]));
      break;
    }
    case Kind::kResponseEnd: {
      Outcome o;
      Status s = ParseResponseEnd(frame.payload, &o);
      REQUIRE(s.ok());
      CHECK(o == (std::string(f["outcome"].GetString()) == "failed" ? Outcome::kFailed
                                                                     : Outcome::kComplete));
      break;
    }
    case Kind::kChallenge: {
      std::string nonce;
      REQUIRE(ParseChallenge(frame.payload, &nonce).ok());
      CHECK(ToHex(nonce) == ToHex(Bytes(f["nonce"])));
      break;
    }
    case Kind::kProof: {
      std::string proof;
      REQUIRE(ParseProof(frame.payload, &proof).ok());
      CHECK(ToHex(proof) == ToHex(Bytes(f["proof"])));
      break;
    }
    case Kind::kRequestBody:
    case Kind::kResponseBody:
      CHECK(CheckBody(frame).ok());
      CHECK(ToHex(frame.payload) == ToHex(Bytes(f["data"])));
      break;
    case Kind::kKeepAlive:
    case Kind::kGoAway:
    case Kind::kRequestEnd:
    case Kind::kCancel:
      CHECK(ExpectEmpty(frame).ok());
      break;
  }
}

// Decodes a stream that must hold exactly the given frames, with no error.
struct Decoded {
  uint32_t rno;
  Kind kind;
  std::string payload;
};

std::vector<Decoded> DecodeAll(std::string_view stream, size_t piece) {
  FrameDecoder dec;
  std::vector<Decoded> out;
  size_t pos = 0;
  for (;;) {
    Frame f;
    Status err;
    auto r = dec.Next(&f, &err);
    if (r == FrameDecoder::Result::kFrame) {
      out.push_back({f.rno, f.kind, std::string(f.payload)});
      continue;
    }
    REQUIRE(r == FrameDecoder::Result::kNeedMore);
    if (pos == stream.size()) break;
    size_t n = std::min(piece, stream.size() - pos);
    dec.Feed(stream.substr(pos, n));
    pos += n;
  }
  CHECK(dec.buffered() == 0);
  return out;
}

// The error a malformed stream produces, from the splitter or the kind's parser ("" if none).
std::string FirstError(std::string_view stream) {
  FrameDecoder dec;
  dec.Feed(stream);
  for (;;) {
    Frame f;
    Status err;
    auto r = dec.Next(&f, &err);
    if (r == FrameDecoder::Result::kError) {
      // Errors are sticky: the stream is unusable afterwards.
      Status again;
      Frame f2;
      CHECK(dec.Next(&f2, &again) == FrameDecoder::Result::kError);
      CHECK_FALSE(again.ok());
      CHECK_FALSE(err.ok());
      return err.message();
    }
    if (r == FrameDecoder::Result::kNeedMore) return "";
    Status s = ParseAny(f);
    if (!s.ok()) return s.message();
  }
}

// ---------------------------------------------------------------------------------------
// Test vectors

TEST_CASE("vectors: encoding the fields of each valid vector gives its bytes exactly", "[codec][vectors]") {
  const auto& doc = LoadVectors();
  REQUIRE(doc["valid"].Size() > 0);
  for (const auto& vec : doc["valid"].GetArray()) {
    INFO("vector " << vec["name"].GetString());
    CHECK(ToHex(EncodeFromFields(vec)) == vec["hex"].GetString());
  }
}

TEST_CASE("vectors: every message kind is covered", "[codec][vectors]") {
  const auto& doc = LoadVectors();
  std::vector<std::string> kinds;
  for (const auto& vec : doc["valid"].GetArray()) kinds.emplace_back(vec["kind"].GetString());
  for (const char* k : {"HELLO", "RESUME", "KEEPALIVE", "GOAWAY", "CHALLENGE", "PROOF",
                        "REQUEST", "REQUEST_BODY",
                        "REQUEST_END", "CANCEL", "RESPONSE", "RESPONSE_BODY", "RESPONSE_END"}) {
    INFO("kind " << k);
    CHECK(std::find(kinds.begin(), kinds.end(), k) != kinds.end());
  }
}

TEST_CASE("vectors: decoding each valid vector gives its fields", "[codec][vectors]") {
  const auto& doc = LoadVectors();
  for (const auto& vec : doc["valid"].GetArray()) {
    INFO("vector " << vec["name"].GetString());
    std::string bytes = FromHex(vec["hex"].GetString());
    SECTION(std::string("whole: ") + vec["name"].GetString()) {
      FrameDecoder dec;
      dec.Feed(bytes);
      Frame f;
      Status err;
      REQUIRE(dec.Next(&f, &err) == FrameDecoder::Result::kFrame);
      CheckDecoded(f, vec);
      CHECK(dec.Next(&f, &err) == FrameDecoder::Result::kNeedMore);
      CHECK(dec.buffered() == 0);
    }
    SECTION(std::string("byte at a time: ") + vec["name"].GetString()) {
      FrameDecoder dec;
      Frame f;
      Status err;
      for (size_t i = 0; i + 1 < bytes.size(); ++i) {
        dec.Feed(bytes.substr(i, 1));
        REQUIRE(dec.Next(&f, &err) == FrameDecoder::Result::kNeedMore);
      }
      dec.Feed(bytes.substr(bytes.size() - 1));
      REQUIRE(dec.Next(&f, &err) == FrameDecoder::Result::kFrame);
      CheckDecoded(f, vec);
      CHECK(dec.Next(&f, &err) == FrameDecoder::Result::kNeedMore);
    }
  }
}

TEST_CASE("vectors: all valid vectors concatenated in one Feed", "[codec][vectors]") {
  const auto& doc = LoadVectors();
  std::string stream;
  for (const auto& vec : doc["valid"].GetArray()) stream += FromHex(vec["hex"].GetString());
  FrameDecoder dec;
  dec.Feed(stream);
  for (const auto& vec : doc["valid"].GetArray()) {
    INFO("vector " << vec["name"].GetString());
    Frame f;
    Status err;
    REQUIRE(dec.Next(&f, &err) == FrameDecoder::Result::kFrame);
    CheckDecoded(f, vec);
  }
  Frame f;
  Status err;
  CHECK(dec.Next(&f, &err) == FrameDecoder::Result::kNeedMore);
  CHECK(dec.buffered() == 0);

  // The same stream split at every 7 bytes gives the same frames.
  auto frames = DecodeAll(stream, 7);
  CHECK(frames.size() == doc["valid"].Size());
}

TEST_CASE("vectors: each malformed vector is rejected with its reason", "[codec][vectors]") {
  const auto& doc = LoadVectors();
  REQUIRE(doc["malformed"].Size() > 0);
  for (const auto& vec : doc["malformed"].GetArray()) {
    INFO("vector " << vec["name"].GetString());
    std::string bytes = FromHex(vec["hex"].GetString());
    std::string msg = FirstError(bytes);
    INFO("error: " << msg);
    CHECK_FALSE(msg.empty());
    CHECK(msg.find(vec["reason_contains"].GetString()) != std::string::npos);
    // After a valid HELLO, the same bytes are still rejected (never a crash).
    std::string after;
    EncodeHello(&after, Hello{1, 1, "lb", "x"});
    CHECK(FirstError(after + bytes) == msg);
  }
}

// ---------------------------------------------------------------------------------------
// Round trips

std::string RandomBytes(std::mt19937& rng, size_t n) {
  std::uniform_int_distribution<int> byte(0, 255);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(byte(rng));
  return s;
}

TEST_CASE("round trip: random messages with a fixed seed", "[codec][roundtrip]") {
  std::mt19937 rng(20240601);
  auto size = [&](size_t max) { return std::uniform_int_distribution<size_t>(0, max)(rng); };
  for (int iter = 0; iter < 200; ++iter) {
    INFO("iteration " << iter);
    auto rno = std::uniform_int_distribution<uint32_t>(1, UINT32_MAX)(rng);
    std::string stream;

    Hello hello{std::uniform_int_distribution<uint32_t>()(rng),
                std::uniform_int_distribution<uint32_t>()(rng), RandomBytes(rng, size(20)),
                RandomBytes(rng, size(100))};
    EncodeHello(&stream, hello);

    ResumeEntries resume;
    for (size_t i = 0, n = size(50); i < n; ++i) {
      resume.emplace_back(RandomBytes(rng, size(40)),
                          std::uniform_real_distribution<double>(0, 1e6)(rng));
    }
    EncodeResume(&stream, resume);

    Pairs environ;
    for (size_t i = 0, n = size(60); i < n; ++i) {
      environ.emplace_back(RandomBytes(rng, size(30)), RandomBytes(rng, size(300)));
    }
    std::string cls = RandomBytes(rng, size(64));
    EncodeRequest(&stream, rno, cls, environ);

    std::string body = RandomBytes(rng, 1 + size(200000));
    for (size_t pos = 0; pos < body.size(); pos += kPreferredChunk) {
      EncodeRequestBody(&stream, rno, std::string_view(body).substr(pos, kPreferredChunk));
    }
    EncodeRequestEnd(&stream, rno);

    Pairs headers;
    for (size_t i = 0, n = size(30); i < n; ++i) {
      headers.emplace_back(RandomBytes(rng, size(30)), RandomBytes(rng, size(200)));
    }
    std::string status = std::to_string(100 + size(499)) + " " + RandomBytes(rng, size(40));
    EncodeResponse(&stream, rno, status, headers);
    std::string rbody = RandomBytes(rng, 1 + size(3000));
    EncodeResponseBody(&stream, rno, rbody);
    auto outcome = size(1) ? Outcome::kFailed : Outcome::kComplete;
    EncodeResponseEnd(&stream, rno, outcome);
    EncodeKeepAlive(&stream);
    EncodeCancel(&stream, rno);
    EncodeGoAway(&stream);

    auto frames = DecodeAll(stream, 1 + size(100000));
    size_t i = 0;
    auto next = [&](Kind kind) -> const Decoded& {
      REQUIRE(i < frames.size());
      const Decoded& d = frames[i++];
      CHECK(d.kind == kind);
      CHECK(d.rno == ((kind == Kind::kHello || kind == Kind::kResume ||
                       kind == Kind::kKeepAlive || kind == Kind::kGoAway) ? 0 : rno));
      return d;
    };
    {
      Hello got;
      REQUIRE(ParseHello(next(Kind::kHello).payload, &got).ok());
      CHECK(got.version == hello.version);
      CHECK(got.pid == hello.pid);
      CHECK(got.role == hello.role);
      CHECK(got.software == hello.software);
    }
    {
      ResumeEntries got;
      REQUIRE(ParseResume(next(Kind::kResume).payload, &got).ok());
      CHECK(got == resume);
    }
    {
      Request got;
      REQUIRE(ParseRequest(next(Kind::kRequest).payload, &got).ok());
      CHECK(got.request_class == cls);
      CHECK(got.environ == environ);
    }
    std::string got_body;
    while (i < frames.size() && frames[i].kind == Kind::kRequestBody) {
      const Decoded& d = next(Kind::kRequestBody);
      CHECK(d.payload.size() <= kPreferredChunk);
      got_body += d.payload;
    }
    CHECK(got_body == body);
    CHECK(next(Kind::kRequestEnd).payload.empty());
    {
      Response got;
      REQUIRE(ParseResponse(next(Kind::kResponse).payload, &got).ok());
      CHECK(got.status == status);
      CHECK(got.headers == headers);
    }
    CHECK(next(Kind::kResponseBody).payload == rbody);
    {
      Outcome got;
      REQUIRE(ParseResponseEnd(next(Kind::kResponseEnd).payload, &got).ok());
      CHECK(got == outcome);
    }
    CHECK(next(Kind::kKeepAlive).payload.empty());
    CHECK(next(Kind::kCancel).payload.empty());
    CHECK(next(Kind::kGoAway).payload.empty());
    CHECK(i == frames.size());
  }
}

TEST_CASE("round trip: 0-byte and 1 MiB bodies", "[codec][roundtrip]") {
  SECTION("a 0-byte body chunk encodes but is rejected as malformed") {
    std::string out;
    EncodeRequestBody(&out, 1, "");
    CHECK(ToHex(out) == "000000010000000111");
    auto frames = DecodeAll(out, out.size());
    REQUIRE(frames.size() == 1);
    Frame f{frames[0].rno, frames[0].kind, frames[0].payload};
    CHECK_FALSE(CheckBody(f).ok());
  }
  SECTION("a request with no body is REQUEST then REQUEST_END") {
    std::string out;
    EncodeRequest(&out, 9, "c", {});
    EncodeRequestEnd(&out, 9);
    auto frames = DecodeAll(out, 3);
    REQUIRE(frames.size() == 2);
    CHECK(frames[0].kind == Kind::kRequest);
    CHECK(frames[1].kind == Kind::kRequestEnd);
  }
  SECTION("a 1 MiB body in one chunk and in 64 KiB chunks") {
    std::mt19937 rng(7);
    std::string body = RandomBytes(rng, 1u << 20);
    std::string one;
    EncodeResponseBody(&one, 3, body);
    auto frames = DecodeAll(one, 65536 + 13);
    REQUIRE(frames.size() == 1);
    CHECK(frames[0].payload == body);
    Frame f{frames[0].rno, frames[0].kind, frames[0].payload};
    CHECK(CheckBody(f).ok());

    std::string chunked;
    for (size_t pos = 0; pos < body.size(); pos += kPreferredChunk) {
      EncodeResponseBody(&chunked, 3, std::string_view(body).substr(pos, kPreferredChunk));
    }
    frames = DecodeAll(chunked, 100003);
    CHECK(frames.size() == 16);
    std::string joined;
    for (const auto& d : frames) joined += d.payload;
    CHECK(joined == body);
  }
}

TEST_CASE("round trip: many frames of interleaved requests in one stream", "[codec][roundtrip]") {
  std::string stream;
  const int kFrames = 10000;
  for (int i = 0; i < kFrames; ++i) {
    auto rno = static_cast<uint32_t>(i % 17 + 1);
    switch (i % 4) {
      case 0: EncodeResponse(&stream, rno, "200 OK", {{"N", std::to_string(i)}}); break;
      case 1: EncodeResponseBody(&stream, rno, std::to_string(i)); break;
      case 2: EncodeResponseEnd(&stream, rno, Outcome::kComplete); break;
      case 3: EncodeKeepAlive(&stream); break;
    }
  }
  for (size_t piece : {stream.size(), size_t{1}, size_t{4096}, size_t{9}}) {
    INFO("piece " << piece);
    auto frames = DecodeAll(stream, piece);
    REQUIRE(frames.size() == kFrames);
    for (int i = 0; i < kFrames; ++i) {
      const auto& d = frames[i];
      if (i % 4 == 3) {
        CHECK(d.rno == 0);
        CHECK(d.kind == Kind::kKeepAlive);
      } else {
        CHECK(d.rno == static_cast<uint32_t>(i % 17 + 1));
      }
      if (i % 4 == 1) CHECK(d.payload == std::to_string(i));
    }
  }
}

// ---------------------------------------------------------------------------------------
// Limits: exactly at each limit is accepted, one over is rejected.

TEST_CASE("limits: frame payload length", "[codec][limits]") {
  SECTION("exactly 16 MiB is a frame") {
    std::string stream = RawHeader(1, kMaxPayload, 0x11);
    stream.append(kMaxPayload - 1, 'x');
    FrameDecoder dec;
    dec.Feed(stream);
    Frame f;
    Status err;
    REQUIRE(dec.Next(&f, &err) == FrameDecoder::Result::kFrame);
    CHECK(f.payload.size() == kMaxPayload - 1);
    CHECK(f.kind == Kind::kRequestBody);
    CHECK_FALSE(CheckBody(f).ok());  // but over the body chunk limit
  }
  SECTION("16 MiB + 1 is rejected from the header alone") {
    FrameDecoder dec;
    dec.Feed(RawHeader(1, kMaxPayload + 1, 0x11).substr(0, 8));
    Frame f;
    Status err;
    REQUIRE(dec.Next(&f, &err) == FrameDecoder::Result::kError);
    CHECK(err.message().find("over the limit") != std::string::npos);
  }
}

TEST_CASE("limits: a 16 MiB header is not allocated up front", "[codec][limits]") {
  FrameDecoder dec;
  std::string head = RawHeader(5, kMaxPayload, 0x21);
  dec.Feed(head);
  Frame f;
  Status err;
  CHECK(dec.Next(&f, &err) == FrameDecoder::Result::kNeedMore);
  CHECK(dec.buffered() == head.size());
  dec.Feed(std::string(1000, 'a'));
  CHECK(dec.Next(&f, &err) == FrameDecoder::Result::kNeedMore);
  CHECK(dec.buffered() == head.size() + 1000);
  CHECK(dec.buffered() < 4096);
}

TEST_CASE("limits: bad kind and rno are caught before the payload arrives", "[codec][limits]") {
  Frame f;
  Status err;
  {
    FrameDecoder dec;
    dec.Feed(RawHeader(1, kMaxPayload, 0x7f));
    CHECK(dec.Next(&f, &err) == FrameDecoder::Result::kError);
    CHECK(err.message().find("unknown message kind 0x7f") != std::string::npos);
  }
  {
    FrameDecoder dec;
    dec.Feed(RawHeader(0, 1000, 0x21));
    CHECK(dec.Next(&f, &err) == FrameDecoder::Result::kError);
    CHECK(err.message().find("must not use request number 0") != std::string::npos);
  }
  {
    FrameDecoder dec;
    dec.Feed(RawHeader(2, 1000, 0x02));
    CHECK(dec.Next(&f, &err) == FrameDecoder::Result::kError);
    CHECK(err.message().find("must use request number 0") != std::string::npos);
  }
  {  // A bare 8-byte header with a sane length just waits for the kind byte.
    FrameDecoder dec;
    dec.Feed(RawHeader(2, 1000, 0x7f).substr(0, 8));
    CHECK(dec.Next(&f, &err) == FrameDecoder::Result::kNeedMore);
  }
}

Frame BodyFrame(const std::string& payload) { return Frame{1, Kind::kResponseBody, payload}; }

TEST_CASE("limits: body chunk", "[codec][limits]") {
  std::string at(kMaxBodyChunk, 'b');
  std::string over(kMaxBodyChunk + 1, 'b');
  CHECK(CheckBody(BodyFrame(at)).ok());
  Status s = CheckBody(BodyFrame(over));
  CHECK_FALSE(s.ok());
  CHECK(s.message().find("chunk over") != std::string::npos);
  CHECK(CheckBody(Frame{1, Kind::kRequestBody, "x"}).ok());
}

// Payload (without frame header or kind byte) of a REQUEST.
std::string RequestPayload(std::string_view cls, const Pairs& environ) {
  std::string frame;
  EncodeRequest(&frame, 1, cls, environ);
  return frame.substr(kFrameHeaderSize + 1);
}

std::string ResponsePayload(std::string_view status, const Pairs& headers) {
  std::string frame;
  EncodeResponse(&frame, 1, status, headers);
  return frame.substr(kFrameHeaderSize + 1);
}

TEST_CASE("limits: environ entries and bytes", "[codec][limits]") {
  Request r;
  Pairs env;
  for (size_t i = 0; i < kMaxEnvironEntries; ++i) env.emplace_back("K" + std::to_string(i), "v");
  CHECK(ParseRequest(RequestPayload("c", env), &r).ok());
  CHECK(r.environ.size() == kMaxEnvironEntries);
  env.emplace_back("one", "more");
  Status s = ParseRequest(RequestPayload("c", env), &r);
  CHECK_FALSE(s.ok());
  CHECK(s.message().find("over the limit of 4096") != std::string::npos);

  // Total bytes: names + values (the request class does not count).
  Pairs big{{"NAME", std::string(kMaxEnvironBytes - 4 - 10, 'v')}, {"0123456789", ""}};
  CHECK(ParseRequest(RequestPayload(std::string(kMaxClassBytes, 'c'), big), &r).ok());
  big[1].second = "x";
  s = ParseRequest(RequestPayload("c", big), &r);
  CHECK_FALSE(s.ok());
  CHECK(s.message().find("over the limit of 1048576 bytes") != std::string::npos);
  Pairs one{{"", std::string(kMaxEnvironBytes + 1, 'v')}};
  CHECK_FALSE(ParseRequest(RequestPayload("c", one), &r).ok());
}

TEST_CASE("limits: response headers entries and bytes", "[codec][limits]") {
  Response r;
  Pairs h;
  for (size_t i = 0; i < kMaxHeaders; ++i) h.emplace_back("H", "v");
  CHECK(ParseResponse(ResponsePayload("200 OK", h), &r).ok());
  CHECK(r.headers.size() == kMaxHeaders);
  h.emplace_back("H", "v");
  Status s = ParseResponse(ResponsePayload("200 OK", h), &r);
  CHECK_FALSE(s.ok());
  CHECK(s.message().find("over the limit of 1024") != std::string::npos);

  // Total bytes: status + names + values.
  std::string status = "200 OK";  // 6 bytes
  Pairs big{{"X-Big", std::string(kMaxHeaderBytes - 6 - 5, 'v')}};
  CHECK(ParseResponse(ResponsePayload(status, big), &r).ok());
  s = ParseResponse(ResponsePayload("200 OKK", big), &r);
  CHECK_FALSE(s.ok());
  CHECK(s.message().find("over the limit of 262144 bytes") != std::string::npos);
}

TEST_CASE("limits: request class", "[codec][limits]") {
  Request r;
  CHECK(ParseRequest(RequestPayload(std::string(kMaxClassBytes, 'c'), {}), &r).ok());
  CHECK(r.request_class.size() == kMaxClassBytes);
  CHECK_FALSE(ParseRequest(RequestPayload(std::string(kMaxClassBytes + 1, 'c'), {}), &r).ok());

  ResumeEntries e;
  std::string frame;
  EncodeResume(&frame, {{std::string(kMaxClassBytes, 'c'), 1.0}});
  CHECK(ParseResume(frame.substr(kFrameHeaderSize + 1), &e).ok());
  frame.clear();
  EncodeResume(&frame, {{std::string(kMaxClassBytes + 1, 'c'), 1.0}});
  CHECK_FALSE(ParseResume(frame.substr(kFrameHeaderSize + 1), &e).ok());
}

TEST_CASE("limits: HELLO strings and status line", "[codec][limits]") {
  auto hello_payload = [](const Hello& h) {
    std::string frame;
    EncodeHello(&frame, h);
    return frame.substr(kFrameHeaderSize + 1);
  };
  Hello got;
  std::string at(kMaxTextField, 's'), over(kMaxTextField + 1, 's');
  CHECK(ParseHello(hello_payload(Hello{1, 2, at, at}), &got).ok());
  CHECK(got.role == at);
  CHECK_FALSE(ParseHello(hello_payload(Hello{1, 2, over, "x"}), &got).ok());
  CHECK_FALSE(ParseHello(hello_payload(Hello{1, 2, "lb", over}), &got).ok());

  Response r;
  std::string status = "200 " + std::string(kMaxTextField - 4, 'r');
  CHECK(ParseResponse(ResponsePayload(status, {}), &r).ok());
  CHECK(r.status.size() == kMaxTextField);
  CHECK_FALSE(ParseResponse(ResponsePayload(status + "r", {}), &r).ok());
}

TEST_CASE("limits: resume classes", "[codec][limits]") {
  // 1 048 576 entries with empty class names: 12 bytes each, just under 16 MiB of payload.
  ResumeEntries entries(kMaxResumeEntries, {std::string(), 0.5});
  std::string frame;
  EncodeResume(&frame, entries);
  CHECK(frame.size() - kFrameHeaderSize <= kMaxPayload);
  auto frames = DecodeAll(frame, 1u << 20);
  REQUIRE(frames.size() == 1);
  ResumeEntries got;
  CHECK(ParseResume(frames[0].payload, &got).ok());
  CHECK(got.size() == kMaxResumeEntries);

  // One over: rejected from the count alone.
  std::string payload;
  PutU32(&payload, kMaxResumeEntries + 1);
  Status s = ParseResume(payload, &got);
  CHECK_FALSE(s.ok());
  CHECK(s.message().find("too many classes") != std::string::npos);
  // A count the payload cannot hold is rejected before reserving.
  payload.clear();
  PutU32(&payload, kMaxResumeEntries);
  CHECK_FALSE(ParseResume(payload, &got).ok());
}

TEST_CASE("resume scores: finite values round-trip bit for bit", "[codec]") {
  ResumeEntries entries{{"max", std::numeric_limits<double>::max()},
                        {"denorm", std::numeric_limits<double>::denorm_min()},
                        {"zero", 0.0},
                        {"third", 1.0 / 3.0}};
  std::string frame;
  EncodeResume(&frame, entries);
  ResumeEntries got;
  REQUIRE(ParseResume(frame.substr(kFrameHeaderSize + 1), &got).ok());
  REQUIRE(got.size() == entries.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(SameDouble(got[i].second, entries[i].second));

  for (double bad : {std::numeric_limits<double>::quiet_NaN(),
                     std::numeric_limits<double>::infinity(),
                     -std::numeric_limits<double>::infinity()}) {
    frame.clear();
    EncodeResume(&frame, {{"x", bad}});
    Status s = ParseResume(frame.substr(kFrameHeaderSize + 1), &got);
    CHECK_FALSE(s.ok());
    CHECK(s.message().find("not finite") != std::string::npos);
  }
}

TEST_CASE("decoder: compaction keeps returned payloads intact", "[codec]") {
  // Frames delivered across many Feed calls, with the buffer compacted in between.
  FrameDecoder dec;
  std::string body(300000, 'z');
  std::string one;
  EncodeResponseBody(&one, 1, body);
  for (int round = 0; round < 20; ++round) {
    dec.Feed(one);
    Frame f;
    Status err;
    REQUIRE(dec.Next(&f, &err) == FrameDecoder::Result::kFrame);
    CHECK(f.payload == body);
    CHECK(dec.Next(&f, &err) == FrameDecoder::Result::kNeedMore);
    CHECK(dec.buffered() == 0);
  }
}

}  // namespace

TEST_CASE("kVersion is the CMake project version", "[version]") {
  CHECK(std::string(rlb::kVersion) == RLB_PROJECT_VERSION);
}

TEST_CASE("MakeHello fills pid, role and '<program> <version>'", "[hello]") {
  using namespace rlb::proto;
  Hello h = MakeHello("lb", "resumelb");
  CHECK(h.version == kProtocolVersion);
  CHECK(h.pid == static_cast<uint32_t>(getpid()));
  CHECK(h.role == "lb");
  CHECK(h.software == std::string("resumelb ") + rlb::kVersion);
  CHECK(MakeHello("worker", "zkworker").software == std::string("zkworker ") + rlb::kVersion);

  std::string wire;
  EncodeHello(&wire, h);
  FrameDecoder decoder;
  decoder.Feed(wire);
  Frame frame;
  rlb::Status error;
  REQUIRE(decoder.Next(&frame, &error) == FrameDecoder::Result::kFrame);
  Hello back;
  REQUIRE(CheckFirstFrame(frame, &back).ok());
  CHECK(back.pid == h.pid);
  CHECK(back.role == "lb");
  CHECK(back.software == h.software);
}
