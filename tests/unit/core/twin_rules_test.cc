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
  // Each signal's time is that of the last message carrying it: these carry speed only.
  for (std::size_t i = 0; i < twin.metadata.size(); ++i)
    EXPECT_EQ(twin.metadata[i], i == kSpeed ? 3000 : 0) << i;
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

TEST(TwinRules, APartialMessageUpdatesWhatItCarriesAndKeepsTheRestWithTheirFlags) {
  Twin twin;
  Telemetry a = msg(1, 1000);
  a.values[kCoolantTemp] = 200;  // out of range, flagged by the decoder
  a.out_of_range = {kCoolantTemp};
  ASSERT_TRUE(apply_telemetry(twin, a));
  Telemetry b = msg(2, 2000, kAbsent, kAbsent);  // speed only, no position
  ASSERT_TRUE(apply_telemetry(twin, b));
  EXPECT_EQ(twin.reported.values[kSpeed], 2);
  EXPECT_EQ(twin.reported.values[kCoolantTemp], 200) << "kept from the message that carried it";
  EXPECT_TRUE(twin.reported.flagged(kCoolantTemp)) << "and its flag with it";
  EXPECT_TRUE(absent(twin.reported.values[kBatteryVoltage]));
  EXPECT_EQ(twin.metadata[kCoolantTemp], 1000);
  EXPECT_EQ(twin.metadata[kSpeed], 2000);
  EXPECT_EQ(twin.reported.lat, 48.1) << "a message without a position keeps the last one";
  EXPECT_EQ(twin.distance_km, 0);
  Telemetry c = msg(3, 3000);
  c.values[kCoolantTemp] = 90;  // back in range: the flag clears
  ASSERT_TRUE(apply_telemetry(twin, c));
  EXPECT_FALSE(twin.reported.flagged(kCoolantTemp));
  EXPECT_TRUE(twin.reported.out_of_range.empty());
}

TEST(TwinRules, AbsentEqualsAbsent) {
  Telemetry a = msg(1, 1000), b = msg(1, 1000);
  EXPECT_EQ(a, b);
  b.values[kCoolantTemp] = 1;
  EXPECT_NE(a, b);
  b.values[kCoolantTemp] = kAbsent;
  b.out_of_range = {kSpeed};
  EXPECT_NE(a, b);
}
