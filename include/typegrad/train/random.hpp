#pragma once
// The seedable random numbers of the training tools (initialisers, shuffling). A run is
// reproducible from its seed on any platform: the engine is std::mt19937_64, whose output the
// standard fixes, and the distributions are written here (the standard library's distributions
// may differ between implementations).
//   uniform01:       one draw, the top 53 bits: a double in [0, 1)
//   below(n):        one draw per try, rejection of the biased remainder: an integer in [0, n)
//   standard_normal: Box-Muller on two draws, one value per call (the second value is not kept,
//                    so a value depends only on the engine's state, not on earlier calls' parity)
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <numbers>
#include <random>
#include <vector>

namespace typegrad::train {

using generator = std::mt19937_64;

// An engine seeded from several integers (e.g. a run's seed and the epoch), through std::seed_seq
// (whose algorithm the standard fixes): different streams for different tuples.
inline generator make_generator(std::initializer_list<std::uint64_t> seeds) {
  std::vector<std::uint32_t> words;
  for (auto s : seeds) {
    words.push_back(std::uint32_t(s));
    words.push_back(std::uint32_t(s >> 32));
  }
  std::seed_seq seq(words.begin(), words.end());
  return generator(seq);
}

inline double uniform01(generator& g) { return double(g() >> 11) * 0x1.0p-53; }

inline std::uint64_t below(generator& g, std::uint64_t n) {
  const std::uint64_t threshold = (0 - n) % n;  // 2^64 mod n: values under it would bias r % n
  for (;;) {
    const std::uint64_t r = g();
    if (r >= threshold) return r % n;
  }
}

inline double standard_normal(generator& g) {
  const double u1 = 1.0 - uniform01(g);  // (0, 1]: log is finite
  const double u2 = uniform01(g);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

}  // namespace typegrad::train
