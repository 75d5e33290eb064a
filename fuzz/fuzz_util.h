// Helpers shared by the fuzzers: a check that survives NDEBUG and a tiny deterministic PRNG
// (the fuzzers derive their piece sizes and choices from the input, never from the clock).
#ifndef RESUMELB_FUZZ_FUZZ_UTIL_H_
#define RESUMELB_FUZZ_FUZZ_UTIL_H_

#include <cstdint>
#include <cstdio>
#include <cstdlib>

// Aborts (a libFuzzer crash) when `cond` is false, naming the condition.
#define FUZZ_CHECK(cond)                                                               \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)

namespace rlb::fuzz {

// xorshift32; any seed (0 is remapped).
class Rng {
 public:
  explicit Rng(uint32_t seed) : s_(seed * 2654435761u + 0x9e3779b9u) {
    if (s_ == 0) s_ = 1;
  }
  uint32_t Next() {
    s_ ^= s_ << 13;
    s_ ^= s_ >> 17;
    s_ ^= s_ << 5;
    return s_;
  }
  // Uniform-ish in [1, max] (max >= 1).
  size_t Size(size_t max) { return 1 + Next() % max; }
  bool Bit() { return (Next() >> 7) & 1; }

 private:
  uint32_t s_;
};

}  // namespace rlb::fuzz

#endif  // RESUMELB_FUZZ_FUZZ_UTIL_H_
