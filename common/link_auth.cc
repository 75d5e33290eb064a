// LinkAuth implementation: the secret file, the HMAC proof (OpenSSL libcrypto) and one
// connection's CHALLENGE/PROOF exchange.
#include "common/link_auth.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <unordered_map>

#include <glog/logging.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

namespace rlb {
namespace {

std::string_view RoleOf(LinkHandshake::Side side) {
  return side == LinkHandshake::Side::kConnecting ? "lb" : "worker";
}

std::string_view PeerRoleOf(LinkHandshake::Side side) {
  return side == LinkHandshake::Side::kConnecting ? "worker" : "lb";
}

}  // namespace

StatusOr<std::string> ReadLinkSecretFile(const std::string& path) {
  const std::string what = "link_secret_file " + path;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::InvalidArgument(what + ": " + std::strerror(errno));
  struct stat st{};
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return Status::InvalidArgument(what + ": " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return Status::InvalidArgument(what + " is not a regular file");
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    close(fd);
    return Status::InvalidArgument(what + " is accessible by group or others (mode " +
                                   [&] {
                                     char b[8];
                                     std::snprintf(b, sizeof b, "%04o",
                                                   static_cast<unsigned>(st.st_mode & 07777));
                                     return std::string(b);
                                   }() +
                                   "): make it readable by its owner only (chmod 600)");
  }
  std::string secret;
  char buf[1024];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return Status::InvalidArgument(what + ": " + std::strerror(err));
    }
    if (n == 0) break;
    secret.append(buf, static_cast<size_t>(n));
    if (secret.size() > kMaxLinkSecretBytes + 2) break;
  }
  close(fd);
  if (!secret.empty() && secret.back() == '\n') {
    secret.pop_back();
    if (!secret.empty() && secret.back() == '\r') secret.pop_back();
  }
  if (secret.empty()) return Status::InvalidArgument(what + " is empty: it must hold the secret");
  if (secret.size() > kMaxLinkSecretBytes) {
    return Status::InvalidArgument(what + " is over " + std::to_string(kMaxLinkSecretBytes) +
                                   " bytes");
  }
  return secret;
}

std::string ComputeLinkProof(std::string_view secret, std::string_view role,
                             std::string_view peer_nonce, std::string_view own_nonce) {
  std::string input;
  input.reserve(kLinkProofLabel.size() + role.size() + peer_nonce.size() + own_nonce.size());
  input.append(kLinkProofLabel).append(role).append(peer_nonce).append(own_nonce);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  CHECK(HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
             reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac,
             &len) != nullptr);
  CHECK_EQ(len, proto::kProofBytes);
  return std::string(reinterpret_cast<const char*>(mac), len);
}

bool LinkProofsEqual(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string NewLinkNonce() {
  std::string nonce(proto::kNonceBytes, '\0');
  // Fails only when the system has no entropy source at all: no safe way to go on.
  CHECK_EQ(RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()),
                      static_cast<int>(nonce.size())),
           1)
      << "RAND_bytes failed: no random source for link nonces";
  return nonce;
}

bool AuthWarningDue(const std::string& key, double interval) {
  static auto* last_logged = new std::unordered_map<std::string, double>();
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const double now = static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
  if (last_logged->size() > 10000) last_logged->clear();  // bounded whatever peers do
  auto [it, fresh] = last_logged->try_emplace(key, now);
  if (fresh) return true;
  if (now - it->second < interval) return false;
  it->second = now;
  return true;
}

LinkHandshake::LinkHandshake(const std::string* secret, Side side)
    : secret_(secret != nullptr && !secret->empty() ? secret : nullptr), side_(side) {}

void LinkHandshake::AppendOpening(std::string* out) {
  if (!has_secret()) return;
  own_nonce_ = NewLinkNonce();
  proto::EncodeChallenge(out, own_nonce_);
}

Status LinkHandshake::OnFrame(const proto::Frame& frame, std::string* out) {
  using proto::Kind;
  if (frame.kind == Kind::kChallenge) {
    std::string nonce;
    Status s = proto::ParseChallenge(frame.payload, &nonce);
    if (!s.ok()) return s;
    if (!has_secret()) {
      return Status::PermissionDenied("requires a link secret (--link_secret_file)");
    }
    if (!peer_nonce_.empty()) return Status::ProtocolError("second CHALLENGE");
    if (own_nonce_.empty()) return Status::ProtocolError("CHALLENGE before this side's own");
    peer_nonce_ = std::move(nonce);
    proto::EncodeProof(out, ComputeLinkProof(*secret_, RoleOf(side_), peer_nonce_, own_nonce_));
    sent_proof_ = true;
    return Status::OK();
  }
  CHECK(frame.kind == Kind::kProof);
  std::string proof;
  Status s = proto::ParseProof(frame.payload, &proof);
  if (!s.ok()) return s;
  if (!has_secret()) return Status::ProtocolError("PROOF, but this side sent no CHALLENGE");
  if (peer_nonce_.empty()) return Status::ProtocolError("PROOF before CHALLENGE");
  if (peer_proved_) return Status::ProtocolError("second PROOF");
  const std::string expected =
      ComputeLinkProof(*secret_, PeerRoleOf(side_), own_nonce_, peer_nonce_);
  if (!LinkProofsEqual(proof, expected)) {
    return Status::PermissionDenied("sent a proof that does not match: different link secrets");
  }
  peer_proved_ = true;
  return Status::OK();
}

Status LinkHandshake::RefuseUnproved(const proto::Frame& frame) const {
  if (peer_nonce_.empty()) {
    return Status::PermissionDenied(std::string("did not authenticate (it has no link secret?): ") +
                                    proto::KindName(frame.kind) + " instead of CHALLENGE");
  }
  return Status::PermissionDenied(std::string("sent ") + proto::KindName(frame.kind) +
                                  " before proving the link secret");
}

}  // namespace rlb
