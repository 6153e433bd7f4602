// The per-second rates the run summary and `bench embedded` report (issue 16: no second at 0 msg/s).
#include "app/rate_sampler.h"

#include <gtest/gtest.h>

namespace fleettwin::app {
namespace {

using namespace std::chrono_literals;

TEST(RateSampler, WholeSecondsTheSlowestAndTheSecondsAtZero) {
  RateSampler r;
  const auto t0 = RateSampler::Clock::time_point{} + 100s;
  r.start(t0, 1000);
  r.sample(t0 + 500ms, 1100);  // within the first second: nothing yet
  EXPECT_TRUE(r.seconds().empty());
  r.sample(t0 + 1s + 20ms, 1300);  // second 1: 300
  r.sample(t0 + 2s + 40ms, 1300);  // second 2: a stall
  r.sample(t0 + 3s + 10ms, 1700);  // second 3: 400
  EXPECT_EQ(r.seconds(), (std::vector<int64_t>{300, 0, 400}));
  EXPECT_EQ(r.slowest(), 0);
  EXPECT_EQ(r.seconds_at_zero(), 1);
  EXPECT_DOUBLE_EQ(r.mean(), 700.0 / 3);
}

// A sample taken late (the main thread was descheduled) spreads its increase over the seconds it crossed:
// a busy machine does not show up as seconds at 0.
TEST(RateSampler, ALateSampleIsSpreadOverTheSecondsItCrossed) {
  RateSampler r;
  const auto t0 = RateSampler::Clock::time_point{} + 5s;
  r.start(t0, 0);
  r.sample(t0 + 3s + 500ms, 900);
  EXPECT_EQ(r.seconds(), (std::vector<int64_t>{300, 300, 300}));
  EXPECT_EQ(r.seconds_at_zero(), 0);
  r.sample(t0 + 4s + 1ms, 1000);  // what was left of the late sample's increase counts here
  EXPECT_EQ(r.seconds().back(), 100);
}

}  // namespace
}  // namespace fleettwin::app
