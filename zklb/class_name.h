// ClassName: the bound on the length of a request class name in the LB.
//
// Clients choose request classes (the default classifier uses the Host header), so a class
// name can be as long as the protocol allows (4096 bytes). The LB keeps class names in its
// pool and its workers keep them in their résumés; to bound that memory, a name longer than
// kMaxClassNameBytes is replaced by a fixed-length stand-in: its first
// kMaxClassNameBytes - 17 bytes, '#', and the 16 lower-case hex digits of the FNV-1a-64 hash
// of the whole name. The stand-in is stable (the same name always gives the same stand-in,
// in every LB process) and distinct names stay distinct unless their hashes collide, so
// routing is unchanged. Names of at most kMaxClassNameBytes are kept as they are.
// docs/design.md ("The résumé pool", "Bounded classes").
//
// Thread rules: pure functions, any thread.
#ifndef RESUMELB_ZKLB_CLASS_NAME_H_
#define RESUMELB_ZKLB_CLASS_NAME_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rlb::lb {

constexpr size_t kMaxClassNameBytes = 128;

// FNV-1a, 64 bits, over the bytes of `data`.
uint64_t Fnv1a64(std::string_view data);

// The class name the LB uses and sends: `name` itself if it is at most kMaxClassNameBytes
// long, else its stand-in (see above), exactly kMaxClassNameBytes long.
std::string BoundClassName(std::string_view name);

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_CLASS_NAME_H_
