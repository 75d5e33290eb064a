// Tests for common/link_auth: the PROOF against the vectors of
// tests/vectors/protocol_vectors.json ("link_proofs", computed with Python's hmac module),
// the CHALLENGE/PROOF exchange between two LinkHandshakes with equal, different and missing
// secrets, and the secret file's checks.
#include "common/link_auth.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/frame_codec.h"
#include "common/json.h"

#include <catch2/catch.hpp>

#ifndef RLB_VECTORS_FILE
#error "RLB_VECTORS_FILE must name tests/vectors/protocol_vectors.json"
#endif

namespace rlb {
namespace {

std::string FromHex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

std::string ToHex(std::string_view bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string Field(const rapidjson::Value& v) {
  if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
  return FromHex(v["hex"].GetString());
}

// Splits `bytes` into frames (they must all be complete and valid).
struct Frames {
  explicit Frames(const std::string& bytes) {
    decoder.Feed(bytes);
    proto::Frame f;
    Status error;
    while (decoder.Next(&f, &error) == proto::FrameDecoder::Result::kFrame) list.push_back(f);
    CHECK(error.ok());
  }
  proto::FrameDecoder decoder;
  std::vector<proto::Frame> list;
};

}  // namespace

TEST_CASE("link proof: the vectors computed with Python's hmac", "[link_auth][vectors]") {
  std::ifstream in(RLB_VECTORS_FILE);
  std::stringstream text;
  text << in.rdbuf();
  rapidjson::Document doc;
  doc.Parse(text.str().c_str());
  REQUIRE(!doc.HasParseError());
  REQUIRE(doc.HasMember("link_proofs"));
  REQUIRE(doc["link_proofs"].Size() >= 2);
  for (const auto& v : doc["link_proofs"].GetArray()) {
    INFO("vector " << v["name"].GetString());
    CHECK(ToHex(ComputeLinkProof(Field(v["secret"]), Field(v["role"]), Field(v["peer_nonce"]),
                                 Field(v["own_nonce"]))) == v["proof"]["hex"].GetString());
  }
}

TEST_CASE("link proof: constant-time comparison and fresh nonces", "[link_auth]") {
  std::string a = ComputeLinkProof("s", "lb", std::string(32, 'a'), std::string(32, 'b'));
  CHECK(a.size() == proto::kProofBytes);
  CHECK(LinkProofsEqual(a, a));
  std::string b = a;
  b[31] ^= 1;
  CHECK(!LinkProofsEqual(a, b));
  CHECK(!LinkProofsEqual(a, a.substr(0, 31)));
  // The role and the order of the nonces matter: a proof cannot be reflected.
  CHECK(!LinkProofsEqual(a, ComputeLinkProof("s", "worker", std::string(32, 'a'),
                                             std::string(32, 'b'))));
  CHECK(!LinkProofsEqual(a, ComputeLinkProof("s", "lb", std::string(32, 'b'),
                                             std::string(32, 'a'))));
  std::string n1 = NewLinkNonce(), n2 = NewLinkNonce();
  CHECK(n1.size() == proto::kNonceBytes);
  CHECK(n1 != n2);
}

namespace {

// Runs the exchange between an LB and a worker handshake the way the connections do: each
// side's opening goes to the other, CHALLENGE/PROOF frames to OnFrame, until nothing moves.
// Returns the first error of each side.
struct Exchange {
  Exchange(const std::string* lb_secret, const std::string* worker_secret)
      : lb(lb_secret, LinkHandshake::Side::kConnecting),
        worker(worker_secret, LinkHandshake::Side::kAccepting) {
    std::string to_worker, to_lb;
    lb.AppendOpening(&to_worker);
    worker.AppendOpening(&to_lb);
    for (int round = 0; round < 4 && (!to_worker.empty() || !to_lb.empty()); ++round) {
      std::string next_to_worker, next_to_lb;
      Deliver(&worker, to_worker, &next_to_lb, &worker_error);
      Deliver(&lb, to_lb, &next_to_worker, &lb_error);
      to_worker = std::move(next_to_worker);
      to_lb = std::move(next_to_lb);
    }
  }
  static void Deliver(LinkHandshake* h, const std::string& bytes, std::string* reply,
                      Status* error) {
    Frames frames(bytes);
    for (const auto& f : frames.list) {
      if (!error->ok()) return;
      *error = h->OnFrame(f, reply);
    }
  }
  LinkHandshake lb, worker;
  Status lb_error, worker_error;
};

}  // namespace

TEST_CASE("link handshake: the same secret on both sides", "[link_auth]") {
  std::string secret = "s3cret";
  Exchange x(&secret, &secret);
  CHECK(x.lb_error.ok());
  CHECK(x.worker_error.ok());
  CHECK(x.lb.peer_proved());
  CHECK(x.worker.peer_proved());
}

TEST_CASE("link handshake: different secrets are refused by both sides", "[link_auth]") {
  std::string a = "one secret", b = "another";
  Exchange x(&a, &b);
  CHECK(x.lb_error.code() == Status::Code::kPermissionDenied);
  CHECK(x.worker_error.code() == Status::Code::kPermissionDenied);
  CHECK(x.lb_error.message() == "sent a proof that does not match: different link secrets");
  CHECK(!x.lb.peer_proved());
  CHECK(!x.worker.peer_proved());
}

TEST_CASE("link handshake: a side without a secret refuses a CHALLENGE", "[link_auth]") {
  std::string secret = "s3cret";
  Exchange worker_only(nullptr, &secret);
  CHECK(worker_only.lb_error.message() == "requires a link secret (--link_secret_file)");
  CHECK(!worker_only.worker.peer_proved());
  CHECK(worker_only.lb.peer_proved());  // it checks nothing: it has no secret

  Exchange lb_only(&secret, nullptr);
  CHECK(lb_only.worker_error.message() == "requires a link secret (--link_secret_file)");
  CHECK(!lb_only.lb.peer_proved());
}

TEST_CASE("link handshake: no secrets on either side: nothing is sent", "[link_auth]") {
  std::string empty;
  LinkHandshake h(&empty, LinkHandshake::Side::kAccepting);
  std::string out;
  h.AppendOpening(&out);
  CHECK(out.empty());
  CHECK(!h.has_secret());
  CHECK(h.peer_proved());
}

TEST_CASE("link handshake: frames out of order", "[link_auth]") {
  std::string secret = "s3cret";
  LinkHandshake worker(&secret, LinkHandshake::Side::kAccepting);
  std::string out;
  worker.AppendOpening(&out);
  // A PROOF before the LB's CHALLENGE, a REQUEST before any proof.
  std::string proof_frame;
  proto::EncodeProof(&proof_frame, std::string(32, 'x'));
  Frames f(proof_frame);
  std::string reply;
  CHECK(worker.OnFrame(f.list.at(0), &reply).message() == "PROOF before CHALLENGE");
  std::string request;
  proto::EncodeRequest(&request, 1, "/a", {});
  Frames r(request);
  Status refusal = worker.RefuseUnproved(r.list.at(0));
  CHECK(refusal.code() == Status::Code::kPermissionDenied);
  CHECK(refusal.message().find("did not authenticate (it has no link secret?)") == 0);
  // A forged proof after a real CHALLENGE.
  std::string challenge;
  proto::EncodeChallenge(&challenge, NewLinkNonce());
  Frames c(challenge);
  CHECK(worker.OnFrame(c.list.at(0), &reply).ok());
  CHECK(!reply.empty());  // the worker's PROOF
  CHECK(worker.OnFrame(c.list.at(0), &reply).message() == "second CHALLENGE");
  CHECK(worker.OnFrame(f.list.at(0), &reply).message() ==
        "sent a proof that does not match: different link secrets");
  CHECK(!worker.peer_proved());
}

TEST_CASE("link secret file: checks", "[link_auth]") {
  char dir_template[] = "/tmp/link_auth_test.XXXXXX";
  REQUIRE(mkdtemp(dir_template) != nullptr);
  const std::string dir = dir_template;
  auto write = [&](const std::string& name, const std::string& text, mode_t mode) {
    std::string path = dir + "/" + name;
    std::FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
    REQUIRE(chmod(path.c_str(), mode) == 0);
    return path;
  };
  auto good = ReadLinkSecretFile(write("good", "s3cret\n", 0600));
  REQUIRE(good.ok());
  CHECK(*good == "s3cret");
  auto crlf = ReadLinkSecretFile(write("crlf", "s3cret\r\n", 0400));
  REQUIRE(crlf.ok());
  CHECK(*crlf == "s3cret");
  auto empty = ReadLinkSecretFile(write("empty", "\n", 0600));
  CHECK(!empty.ok());
  CHECK(empty.status().message().find("is empty") != std::string::npos);
  auto open_to_group = ReadLinkSecretFile(write("group", "s3cret", 0640));
  CHECK(!open_to_group.ok());
  CHECK(open_to_group.status().message().find("chmod 600") != std::string::npos);
  CHECK(open_to_group.status().message().find("s3cret") == std::string::npos);
  CHECK(!ReadLinkSecretFile(write("big", std::string(kMaxLinkSecretBytes + 1, 'x'), 0600)).ok());
  CHECK(!ReadLinkSecretFile(dir + "/missing").ok());
  for (const char* name : {"good", "crlf", "empty", "group", "big"}) {
    unlink((dir + "/" + name).c_str());
  }
  rmdir(dir.c_str());
}

}  // namespace rlb
