// Rng: the per-environment random number generator.
//
// Every environment owns one Rng inside its State, so a snapshot of the state
// carries the random stream with it and a restored environment draws exactly
// the numbers the original would have drawn. Env i of a pool seeded with s
// starts from Seed(s, i); the stream therefore depends only on (s, i), never on
// the number of threads or on which thread steps the env.
//
// The generator is xoshiro256++ (Blackman & Vigna), seeded through SplitMix64.
// It is 32 bytes, trivially copyable, and fast enough to disappear in a step.
#pragma once

#include <cstdint>
#include <type_traits>

namespace pyenvpool {

class Rng {
 public:
  Rng() { Seed(0, 0); }
  Rng(uint64_t seed, uint64_t stream) { Seed(seed, stream); }

  // Derives the state from (seed, stream) with SplitMix64, so nearby seeds and
  // nearby env indices give unrelated streams.
  void Seed(uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (0x9E3779B97F4A7C15ULL * (stream + 1));
    for (auto& word : s_) word = SplitMix64(x);
    if ((s_[0] | s_[1] | s_[2] | s_[3]) == 0) s_[0] = 1;  // all-zero is a fixed point
  }

  uint64_t NextU64() {
    const uint64_t result = Rotl(s_[0] + s_[3], 23) + s_[0];
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform double in [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(NextU64() >> 11) * 0x1.0p-53; }

  // Uniform double in [low, high).
  double Uniform(double low, double high) { return low + (high - low) * Uniform(); }

  // Uniform integer in [0, n), unbiased (Lemire's multiply-and-reject). n > 0.
  uint32_t Below(uint32_t n) {
    uint64_t m = static_cast<uint64_t>(static_cast<uint32_t>(NextU64() >> 32)) * n;
    uint32_t low = static_cast<uint32_t>(m);
    if (low < n) {
      const uint32_t threshold = static_cast<uint32_t>(-n) % n;
      while (low < threshold) {
        m = static_cast<uint64_t>(static_cast<uint32_t>(NextU64() >> 32)) * n;
        low = static_cast<uint32_t>(m);
      }
    }
    return static_cast<uint32_t>(m >> 32);
  }

  // Uniform integer in [low, high), high > low.
  int32_t Range(int32_t low, int32_t high) {
    return low + static_cast<int32_t>(Below(static_cast<uint32_t>(high - low)));
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static uint64_t SplitMix64(uint64_t& x) {
    uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

  uint64_t s_[4];
};

static_assert(std::is_trivially_copyable_v<Rng>, "Rng must be copyable as bytes");

}  // namespace pyenvpool
