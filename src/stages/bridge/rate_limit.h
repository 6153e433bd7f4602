#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

namespace fleettwin::stages {

/// What a car may send through the bridge. Plain value.
struct RateLimitOptions {
  double per_second = 0;           ///< sustained messages per second per car; 0: no limit
  double burst = 20;               ///< messages a car may send at once after being quiet
  std::size_t max_cars = 100'000;  ///< cars tracked at once; the idle ones make room
};

/// Per-car token buckets (the bridge's rate limit, docs/architecture.md "Front door limits"). The state is
/// bounded by max_cars: when full, the cars whose bucket has refilled (quiet for burst/per_second) are
/// forgotten, which changes nothing; if that frees too little, the least recently seen tenth goes too (each
/// of those may send one extra burst). One thread.
class RateLimiter {
 public:
  explicit RateLimiter(RateLimitOptions options);
  bool enabled() const { return _options.per_second > 0; }
  /// Takes one message of `car` at `now_ms` (a monotonic clock in ms): false when the car is over its rate.
  bool allow(std::string_view car, int64_t now_ms);
  std::size_t tracked() const { return _cars.size(); }

 private:
  struct Bucket {
    double tokens;
    int64_t last_ms;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  void make_room(int64_t now_ms);

  RateLimitOptions _options;
  int64_t _refill_ms;  // time an empty bucket takes to fill up
  std::unordered_map<std::string, Bucket, Hash, std::equal_to<>> _cars;
};

}  // namespace fleettwin::stages
