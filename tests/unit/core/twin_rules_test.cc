#include <gtest/gtest.h>

#include "core/histogram.h"
#include "core/twin.h"

using namespace fleettwin::core;

namespace {
Telemetry msg(int64_t seq, int64_t ts, double lat = 48.1, double lon = 11.5) {
  Telemetry t;
  t.car = "car-00001";
  t.seq = seq;
  t.ts = ts;
  t.lat = lat;
  t.lon = lon;
  t.values[kSpeed] = static_cast<double>(seq);
  return t;
}
}  // namespace

TEST(TwinRules, NewerSeqAppliesOlderOrReplayedDoesNot) {
  Twin twin;
  EXPECT_TRUE(apply_telemetry(twin, msg(1, 1000)));
  EXPECT_TRUE(apply_telemetry(twin, msg(3, 3000)));
  EXPECT_EQ(twin.version, 2);
  EXPECT_FALSE(apply_telemetry(twin, msg(2, 2000)));  // arrived late
  EXPECT_FALSE(apply_telemetry(twin, msg(3, 3000)));  // replayed
  EXPECT_EQ(twin.reported.seq, 3);
  EXPECT_EQ(twin.reported.values[kSpeed], 3);
  EXPECT_EQ(twin.version, 2);
  EXPECT_EQ(twin.messages, 2);
  EXPECT_EQ(twin.id, "car-00001");
  EXPECT_EQ(twin.first_seen, 1000);
  EXPECT_EQ(twin.last_seen, 3000);
  EXPECT_TRUE(twin.online);
  for (auto ts : twin.metadata) EXPECT_EQ(ts, 3000);
}

TEST(TwinRules, DistanceAccumulatesAlongTheRoute) {
  Twin twin;
  apply_telemetry(twin, msg(1, 1000, 48.0, 11.5));
  apply_telemetry(twin, msg(2, 2000, 48.01, 11.5));  // ~1.11 km north
  EXPECT_NEAR(twin.distance_km, 1.112, 0.01);
  EXPECT_NEAR(haversine_km(48.137, 11.575, 52.52, 13.405), 504, 2);  // Munich - Berlin
}

TEST(TwinRules, OfflineAfterSilenceOnlyOnce) {
  Twin twin;
  apply_telemetry(twin, msg(1, 10'000));
  EXPECT_FALSE(mark_offline_if_silent(twin, 60'000, 60'000));
  EXPECT_TRUE(twin.online);
  EXPECT_TRUE(mark_offline_if_silent(twin, 70'001, 60'000));
  EXPECT_FALSE(twin.online);
  const auto v = twin.version;
  EXPECT_FALSE(mark_offline_if_silent(twin, 90'000, 60'000));
  EXPECT_EQ(twin.version, v);
  EXPECT_TRUE(apply_telemetry(twin, msg(2, 95'000)));
  EXPECT_TRUE(twin.online);
}

TEST(Histogram, QuantilesWithinBucketWidth) {
  Histogram h;
  EXPECT_EQ(h.quantile_us(0.99), 0);
  for (int i = 1; i <= 1000; ++i) h.record_us(i * 1000);  // 1..1000 ms
  EXPECT_EQ(h.count(), 1000);
  EXPECT_NEAR(static_cast<double>(h.quantile_us(0.5)), 500'000, 500'000 * 0.1);
  EXPECT_NEAR(static_cast<double>(h.quantile_us(0.99)), 990'000, 990'000 * 0.1);
  EXPECT_GE(h.quantile_us(1.0), 1'000'000);
}
