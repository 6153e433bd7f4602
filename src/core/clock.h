#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace fleettwin::core {

/// Wall-clock time in ms since the Unix epoch: for code that stamps wall time (ingest
/// times, leases, a live run's start) rather than asking a `Clock` that a simulation may drive. Thread-safe.
inline int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// Source of "now" in ms since the Unix epoch. Wall time in production; a simulated clock lets the
/// simulator (and every stage timer) run faster than real time. Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t now_ms() const = 0;
};

/// The system clock.
class WallClock final : public Clock {
 public:
  int64_t now_ms() const override { return wall_clock_ms(); }
};

/// A clock advanced explicitly (by the simulator in --fast mode, or by tests). Never goes backwards.
class SimClock final : public Clock {
 public:
  explicit SimClock(int64_t start_ms) : _now(start_ms) {}
  int64_t now_ms() const override { return _now.load(std::memory_order_acquire); }
  /// Moves the clock to `t` if it is later than now.
  void advance_to(int64_t t) {
    int64_t cur = _now.load(std::memory_order_relaxed);
    while (t > cur && !_now.compare_exchange_weak(cur, t, std::memory_order_acq_rel)) {
    }
  }

 private:
  std::atomic<int64_t> _now;
};

}  // namespace fleettwin::core
