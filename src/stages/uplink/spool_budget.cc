#include "stages/uplink/spool_budget.h"

#include <algorithm>

namespace fleettwin::stages {

namespace {
int64_t day_at(double rate, int64_t floor) {
  return std::max(floor, static_cast<int64_t>(rate * SpoolBudget::kDay));
}
}  // namespace

SpoolBudget::SpoolBudget(int64_t fixed, int64_t floor, double known_rate, Clock::time_point now)
    : _fixed(fixed),
      _floor(std::max<int64_t>(1, floor)),
      _average(std::max(0.0, known_rate)),
      _peak(_average),
      _minute_start(now),
      _budget(fixed > 0 ? fixed : day_at(_peak, _floor)) {}

void SpoolBudget::close_minutes(Clock::time_point now) {
  // Minutes with no traffic count as rate 0: a site that goes quiet lowers its average, not its peak.
  while (now - _minute_start >= kMinute) {
    const double rate = static_cast<double>(_minute_bytes) / static_cast<double>(kMinute.count());
    _average += (rate - _average) * kSmoothing;
    _minute_bytes = 0;
    _minute_start += kMinute;
  }
}

bool SpoolBudget::observe(int64_t bytes, Clock::time_point now) {
  if (_fixed > 0) return false;
  close_minutes(now);
  _minute_bytes += bytes;
  if (_average <= _peak) return false;
  _peak = _average;
  _budget = day_at(_peak, _floor);
  return true;
}

}  // namespace fleettwin::stages
