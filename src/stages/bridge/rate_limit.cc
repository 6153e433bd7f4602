#include "stages/bridge/rate_limit.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace fleettwin::stages {

RateLimiter::RateLimiter(RateLimitOptions options) : _options(options) {
  _options.burst = std::max(1.0, _options.burst);
  _options.max_cars = std::max<std::size_t>(1, _options.max_cars);
  _refill_ms = enabled() ? static_cast<int64_t>(std::ceil(_options.burst / _options.per_second * 1000.0)) : 0;
}

bool RateLimiter::allow(std::string_view car, int64_t now_ms) {
  if (!enabled()) return true;
  auto it = _cars.find(car);
  if (it == _cars.end()) {
    if (_cars.size() >= _options.max_cars) make_room(now_ms);
    it = _cars.emplace(std::string(car), Bucket{_options.burst, now_ms}).first;
  }
  Bucket& b = it->second;
  const double elapsed_s = static_cast<double>(std::max<int64_t>(0, now_ms - b.last_ms)) / 1000.0;
  b.tokens = std::min(_options.burst, b.tokens + elapsed_s * _options.per_second);
  b.last_ms = now_ms;
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

void RateLimiter::make_room(int64_t now_ms) {
  // A bucket quiet for the refill time is full again: forgetting it is exact.
  std::erase_if(_cars, [&](const auto& e) { return now_ms - e.second.last_ms >= _refill_ms; });
  if (_cars.size() < _options.max_cars - _options.max_cars / 10) return;
  // Every car is active: forget the least recently seen tenth, so this O(n) pass runs once per n/10 cars.
  std::vector<int64_t> seen;
  seen.reserve(_cars.size());
  for (const auto& [car, b] : _cars) seen.push_back(b.last_ms);
  const std::size_t k = std::max<std::size_t>(1, _cars.size() / 10);
  std::nth_element(seen.begin(), seen.begin() + static_cast<std::ptrdiff_t>(k - 1), seen.end());
  const int64_t cutoff = seen[k - 1];
  std::erase_if(_cars, [&](const auto& e) { return e.second.last_ms <= cutoff; });
}

}  // namespace fleettwin::stages
