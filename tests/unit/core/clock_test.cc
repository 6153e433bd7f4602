// The wall clock and the process figures the run summaries and benchmarks report.
#include "core/clock.h"

#include <gtest/gtest.h>

#include <chrono>

#include "core/process_stats.h"

namespace fleettwin::core {
namespace {

TEST(Clock, WallClockIsTheSystemClockInMilliseconds) {
  const auto system_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  const int64_t before = system_ms();
  const int64_t helper = wall_clock_ms();
  const int64_t clock = WallClock().now_ms();
  const int64_t after = system_ms();
  EXPECT_LE(before, helper);
  EXPECT_LE(helper, clock);
  EXPECT_LE(clock, after);
}

TEST(Clock, SimClockOnlyMovesForward) {
  SimClock clock(1000);
  clock.advance_to(900);
  EXPECT_EQ(clock.now_ms(), 1000);
  clock.advance_to(1500);
  EXPECT_EQ(clock.now_ms(), 1500);
}

TEST(ProcessStats, ReportWhatThisProcessUsed) {
  // Spend some CPU on this thread, so both counters have moved.
  volatile double sink = 0;
  for (int i = 0; i < 5'000'000; ++i) sink = sink + i * 0.5;
  const double thread = thread_cpu_seconds();
  const double process = process_cpu_seconds();
  EXPECT_GT(thread, 0);
  EXPECT_GE(process + 0.02, thread);  // the process counter ticks coarser than the thread's
  EXPECT_GT(peak_rss_mb(), 1);        // a running gtest binary holds more than a megabyte
  EXPECT_LT(peak_rss_mb(), 1 << 20);  // MiB, not KiB
}

}  // namespace
}  // namespace fleettwin::core
