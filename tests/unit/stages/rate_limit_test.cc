// The bridge's per-car rate limit (stages::RateLimiter): a token bucket per car, and state that stays bounded
// however many cars there are.
#include <gtest/gtest.h>

#include <string>

#include "stages/bridge/rate_limit.h"

using fleettwin::stages::RateLimiter;
using fleettwin::stages::RateLimitOptions;

TEST(RateLimiter, OffByDefault) {
  RateLimiter r(RateLimitOptions{});
  EXPECT_FALSE(r.enabled());
  for (int i = 0; i < 10'000; ++i) ASSERT_TRUE(r.allow("car", 0));
  EXPECT_EQ(r.tracked(), 0u);
}

TEST(RateLimiter, BurstThenRatePerCar) {
  RateLimiter r(RateLimitOptions{.per_second = 2, .burst = 5, .max_cars = 10});
  int allowed = 0;
  for (int i = 0; i < 20; ++i) allowed += r.allow("a", 1000) ? 1 : 0;
  EXPECT_EQ(allowed, 5);             // the burst, all at once
  EXPECT_TRUE(r.allow("b", 1000));   // another car has its own bucket
  EXPECT_FALSE(r.allow("a", 1400));  // 0.8 tokens after 400 ms at 2/s
  EXPECT_TRUE(r.allow("a", 1500));   // 1 token after 500 ms
  EXPECT_FALSE(r.allow("a", 1500));
  allowed = 0;
  for (int64_t t = 2000; t < 12'000; t += 100) allowed += r.allow("a", t) ? 1 : 0;
  EXPECT_NEAR(allowed, 20, 1);  // 10 s at 2/s
}

TEST(RateLimiter, StateIsBoundedAndQuietCarsGoFirst) {
  RateLimiter r(RateLimitOptions{.per_second = 1, .burst = 2, .max_cars = 100});
  r.allow("busy", 0);
  r.allow("busy", 0);
  EXPECT_FALSE(r.allow("busy", 0));  // empty bucket
  for (int i = 0; i < 10'000; ++i) {
    r.allow("car-" + std::to_string(i), i);  // one new car per ms
    if (i % 50 == 0) r.allow("busy", i);     // spends each token as it comes
    ASSERT_LE(r.tracked(), 100u);
  }
  EXPECT_GE(r.tracked(), 10u);  // making room frees a tenth at a time, not everything
  RateLimiter quiet(RateLimitOptions{.per_second = 1, .burst = 2, .max_cars = 3});
  quiet.allow("x", 0);
  quiet.allow("x", 0);
  quiet.allow("y", 0);
  quiet.allow("z", 5000);  // x and y are full again after 2 s: forgetting them is exact
  quiet.allow("w", 5000);
  EXPECT_EQ(quiet.tracked(), 2u);
}
