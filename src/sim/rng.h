#pragma once

#include <cstdint>

namespace fleettwin::sim {

/// SplitMix64 finaliser: turns any 64-bit value into a well-mixed one. Used to derive independent seeds
/// from (fleet seed, car index, stream), so a car's stream never depends on the other cars.
constexpr uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// Seed of stream `stream` of car `car` in a fleet seeded with `seed`.
constexpr uint64_t car_seed(uint64_t seed, uint64_t car, uint64_t stream) {
  return mix64(seed ^ mix64(car * 0x100000001b3ULL + stream * 0x5851f42d4c957f2dULL + 1));
}

/// Small, fast, portable pseudo-random generator (SplitMix64: 8 bytes of state, passes BigCrush).
/// std:: distributions are implementation-defined, so every draw is computed here to keep streams
/// identical across standard libraries. One per car and stream; used by whichever thread owns the Fleet.
class Rng {
 public:
  explicit constexpr Rng(uint64_t seed = 0) : _state(seed) {}

  constexpr uint64_t next_u64() {
    _state += 0x9e3779b97f4a7c15ULL;
    uint64_t z = _state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  /// Uniform in [0, 1).
  constexpr double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

  /// Uniform in [lo, hi).
  constexpr double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

  /// Uniform integer in [0, n).
  constexpr uint64_t below(uint64_t n) { return static_cast<uint64_t>(uniform() * static_cast<double>(n)); }

  /// Zero-mean, unit-variance noise with a triangular density on [-sqrt(6), sqrt(6)], from one draw.
  /// Bounded on purpose: the simulator must keep every signal inside the catalog's plausible range, which
  /// a Gaussian's unbounded tail would eventually break; it is also far cheaper than Box-Muller.
  constexpr double noise() {
    const uint64_t x = next_u64();
    const double a = static_cast<double>(x >> 32) * 0x1.0p-32;
    const double b = static_cast<double>(x & 0xffffffffULL) * 0x1.0p-32;
    return (a + b - 1.0) * 2.449489742783178;  // sqrt(6): unit variance
  }

  /// True with probability p.
  constexpr bool chance(double p) { return uniform() < p; }

  uint64_t state() const { return _state; }

 private:
  uint64_t _state;
};

}  // namespace fleettwin::sim
