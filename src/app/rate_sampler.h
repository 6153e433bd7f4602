#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

namespace fleettwin::app {

/// Per-second rates of a growing count (telemetry stored) while a run is fed: the slowest second and the
/// seconds at 0, which a run's average hides (a pipeline that stalls for 10 s of a 90 s run still averages
/// well). Fed from the main thread's watch loop, every 50 ms or so; when a sample comes late across several
/// second boundaries, its increase is spread evenly over them rather than counted as seconds at 0. Main
/// thread only.
class RateSampler {
 public:
  using Clock = std::chrono::steady_clock;

  void start(Clock::time_point t, int64_t count) {
    _next = t + std::chrono::seconds(1);
    _last = count;
    _seconds.clear();
  }

  void sample(Clock::time_point now, int64_t count) {
    if (now < _next) return;
    const auto crossed = 1 + (now - _next) / std::chrono::seconds(1);
    const int64_t each = (count - _last) / crossed;
    for (int64_t i = 0; i < crossed; ++i) _seconds.push_back(each);
    _next += std::chrono::seconds(crossed);
    _last += each * crossed;
  }

  /// Whole seconds sampled so far, and what the count grew in each.
  const std::vector<int64_t>& seconds() const { return _seconds; }
  int64_t slowest() const {
    return _seconds.empty() ? 0 : *std::min_element(_seconds.begin(), _seconds.end());
  }
  int64_t seconds_at_zero() const { return std::count(_seconds.begin(), _seconds.end(), 0); }
  /// Mean of the whole seconds.
  double mean() const {
    if (_seconds.empty()) return 0;
    int64_t sum = 0;
    for (const auto s : _seconds) sum += s;
    return static_cast<double>(sum) / static_cast<double>(_seconds.size());
  }

 private:
  Clock::time_point _next;
  int64_t _last = 0;
  std::vector<int64_t> _seconds;
};

}  // namespace fleettwin::app
