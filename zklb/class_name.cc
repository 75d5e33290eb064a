// ClassName: long request class names replaced by a fixed-length stable stand-in.
#include "zklb/class_name.h"

#include <cstdio>

namespace rlb::lb {
namespace {

constexpr size_t kDigestChars = 16;
constexpr size_t kPrefixBytes = kMaxClassNameBytes - kDigestChars - 1;  // 1 for '#'

}  // namespace

uint64_t Fnv1a64(std::string_view data) {
  uint64_t hash = 14695981039346656037ull;  // FNV-1a 64-bit offset basis
  for (unsigned char c : data) {
    hash ^= c;
    hash *= 1099511628211ull;  // FNV 64-bit prime
  }
  return hash;
}

std::string BoundClassName(std::string_view name) {
  if (name.size() <= kMaxClassNameBytes) return std::string(name);
  char digest[kDigestChars + 2];
  std::snprintf(digest, sizeof digest, "#%016llx",
                static_cast<unsigned long long>(Fnv1a64(name)));
  std::string bounded(name.substr(0, kPrefixBytes));
  bounded.append(digest, kDigestChars + 1);
  return bounded;
}

}  // namespace rlb::lb
