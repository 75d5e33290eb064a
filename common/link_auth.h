// LinkAuth: authentication of LB <-> worker links with a shared secret (docs/protocol.md,
// "Link authentication"). Each side that has a secret sends CHALLENGE (a fresh 32-byte
// nonce) right after its HELLO and answers the peer's CHALLENGE with PROOF =
// HMAC-SHA256(secret, "resumelb-link-v1" || role || peer's nonce || own nonce), role being
// "lb" for the connecting side (LB or tool) and "worker" for the accepting side. A side with a
// secret trusts the peer (serves it, or pools it) only once the peer's PROOF verified.
//
// LinkHandshake holds one connection's part of that exchange; the connection code asks it
// what to send after HELLO, hands it CHALLENGE/PROOF frames, and asks whether the peer has
// proved the secret before acting on any other frame. Refusals are PermissionDenied
// Statuses whose message is the one line to log after the peer's name.
//
// Thread rules: the free functions are pure (any thread); a LinkHandshake belongs to one
// connection (its loop thread); AuthWarningDue is loop thread only.
#ifndef RESUMELB_COMMON_LINK_AUTH_H_
#define RESUMELB_COMMON_LINK_AUTH_H_

#include <memory>
#include <string>
#include <string_view>

#include "common/frame_codec.h"
#include "common/status.h"

namespace rlb {

// What precedes the role in the HMAC input; the version tag lets a later scheme never
// accept a proof made for this one.
constexpr std::string_view kLinkProofLabel = "resumelb-link-v1";
// Seconds a worker with a secret waits for an LB to prove it before closing.
constexpr double kLinkHandshakeDeadline = 10.0;
// A secret file holds at most this many bytes.
constexpr size_t kMaxLinkSecretBytes = 4096;

// Reads the secret from `path`: the file's bytes with one trailing "\n" (or "\r\n")
// removed. InvalidArgument (naming the path, never the secret) if it cannot be read, is
// empty, is over kMaxLinkSecretBytes, or is readable or writable by group or others (the
// secret must be mode 0600 or 0400, like an ssh key).
StatusOr<std::string> ReadLinkSecretFile(const std::string& path);

// PROOF = HMAC-SHA256(secret, kLinkProofLabel || role || peer_nonce || own_nonce): 32 bytes.
// `role` is the sender's: "lb" (the connecting side) or "worker".
std::string ComputeLinkProof(std::string_view secret, std::string_view role,
                             std::string_view peer_nonce, std::string_view own_nonce);

// Constant-time comparison (CRYPTO_memcmp); false when the sizes differ.
bool LinkProofsEqual(std::string_view a, std::string_view b);

// A fresh random nonce of proto::kNonceBytes bytes from the OpenSSL CSPRNG.
std::string NewLinkNonce();

// Whether a warning about `key` (e.g. peer address + reason) may be logged now: true the
// first time and then once per `interval` seconds; otherwise callers log at VLOG(1). Keeps a
// peer reconnecting every second from flooding the log. Loop thread only.
bool AuthWarningDue(const std::string& key, double interval = 60.0);

class LinkHandshake {
 public:
  enum class Side { kConnecting, kAccepting };  // LB or tool / worker

  // `secret` null or empty: this side has no secret and speaks the unauthenticated
  // protocol (it refuses a peer that sends CHALLENGE). REQUIRES: *secret outlives this.
  LinkHandshake(const std::string* secret, Side side);

  bool has_secret() const { return secret_ != nullptr; }
  // True when this side has no secret, or the peer's PROOF verified.
  bool peer_proved() const { return !has_secret() || peer_proved_; }

  // Appends what goes right after this side's HELLO: a CHALLENGE when it has a secret.
  void AppendOpening(std::string* out);

  // Handles a CHALLENGE or PROOF frame (REQUIRES: frame.kind is one of them). On the
  // peer's CHALLENGE appends this side's PROOF to *out. Errors: PermissionDenied for
  // an authentication failure (no secret here, a proof that does not match),
  // ProtocolError for a malformed or repeated frame.
  Status OnFrame(const proto::Frame& frame, std::string* out);

  // The refusal for a frame of another kind arriving while !peer_proved().
  Status RefuseUnproved(const proto::Frame& frame) const;

 private:
  const std::string* secret_;
  Side side_;
  std::string own_nonce_;
  std::string peer_nonce_;  // empty until the peer's CHALLENGE
  bool peer_proved_ = false;
  bool sent_proof_ = false;
};

}  // namespace rlb

#endif  // RESUMELB_COMMON_LINK_AUTH_H_
