#pragma once

#include <algorithm>
#include <vector>

// Small measuring helpers shared by the scenario benchmarks (`fleettwin bench ...`); CPU time and peak memory
// come from core/process_stats.h.
namespace fleettwin::app::bench {

/// Median of `v` (0 when empty): what the benchmarks report over repeated runs on a noisy machine.
inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace fleettwin::app::bench
