#pragma once

#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>

namespace fleettwin::core {

/// Latency histogram with logarithmic buckets (about 9% wide) from 1 µs to ~1 h, for p50/p99 of end-to-end
/// latency without storing samples. Lock-free record; any thread.
class Histogram {
 public:
  void record_us(int64_t us) {
    _buckets[bucket(us)].fetch_add(1, std::memory_order_relaxed);
    _count.fetch_add(1, std::memory_order_relaxed);
  }
  int64_t count() const { return _count.load(std::memory_order_relaxed); }
  /// The q-quantile (0..1) in µs: the upper edge of the bucket holding it; 0 when empty.
  int64_t quantile_us(double q) const {
    const int64_t n = count();
    if (n == 0) return 0;
    const auto rank = static_cast<int64_t>(std::ceil(q * static_cast<double>(n)));
    int64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += _buckets[i].load(std::memory_order_relaxed);
      if (seen >= rank) return upper_edge(i);
    }
    return upper_edge(kBuckets - 1);
  }

 private:
  static constexpr std::size_t kBuckets = 256;
  static constexpr double kGrowth = 1.09;
  static std::size_t bucket(int64_t us) {
    if (us <= 1) return 0;
    const auto b = static_cast<std::size_t>(std::log(static_cast<double>(us)) / std::log(kGrowth)) + 1;
    return b < kBuckets ? b : kBuckets - 1;
  }
  static int64_t upper_edge(std::size_t i) {
    return static_cast<int64_t>(std::ceil(std::pow(kGrowth, static_cast<double>(i))));
  }
  std::array<std::atomic<int64_t>, kBuckets> _buckets{};
  std::atomic<int64_t> _count{0};
};

}  // namespace fleettwin::core
