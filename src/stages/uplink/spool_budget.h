#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace fleettwin::stages {

/// How many bytes the uplink spool may hold (uplink.disk_budget; docs/architecture.md "Budget and
/// back-pressure"). A configured budget is fixed. Otherwise it is 24 h of the site's measured traffic: the
/// capture stage reports every batch it spools, each minute's rate goes into a moving average (a ten-minute
/// time constant, so a burst such as a restart's backlog counts for a tenth), and the budget is 86,400 s at
/// the highest average seen, never below `floor` (uplink.disk_budget_min, or the simulator's configured
/// rate). It never shrinks: while the site pushes back on its cars the measured rate falls, and a budget
/// that followed it down would hold them back harder. The highest average outlives restarts (the spool keeps
/// it, see rate()). The capture stage's thread calls observe(); bytes() from any thread.
class SpoolBudget {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::seconds kMinute{60};
  static constexpr double kSmoothing = 0.1;  ///< weight of each new minute in the moving average
  static constexpr double kDay = 86'400.0;

  /// `fixed` > 0: that budget, nothing measured. Else 24 h at `known_rate` bytes/s (the highest average of
  /// earlier runs, 0 if none), at least `floor`.
  SpoolBudget(int64_t fixed, int64_t floor, double known_rate, Clock::time_point now = Clock::now());

  /// `bytes` spooled at `now`. True when the highest average rose (a minute closed above it): the caller
  /// stores rate() for the next run.
  bool observe(int64_t bytes, Clock::time_point now = Clock::now());

  int64_t bytes() const { return _budget.load(); }
  /// The highest moving average of bytes a second seen (0 with a fixed budget).
  double rate() const { return _peak; }
  bool measured() const { return _fixed == 0; }

 private:
  void close_minutes(Clock::time_point now);

  int64_t _fixed;
  int64_t _floor;
  double _average = 0;
  double _peak = 0;
  Clock::time_point _minute_start;
  int64_t _minute_bytes = 0;
  std::atomic<int64_t> _budget;
};

}  // namespace fleettwin::stages
