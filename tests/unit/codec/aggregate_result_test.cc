// AggregateResult (fleet.aggregates): the schema, the encoder and the decoder, which refuses what no
// aggregate stage writes.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "codec/avro.h"
#include "codec/schemas.h"

using namespace fleettwin::codec;

namespace {

AggregateResult sample() {
  AggregateResult r;
  r.aggregate = "summary_1h";
  r.group = "car-00001";
  r.window_start = 1'700'000'000'000;
  r.window_end = r.window_start + 3'600'000;
  r.revision = 2;
  r.final = true;
  r.count = 3600;
  r.values = {{"speed_mean", 12.5}, {"speed_max", 33.0}, {"coolant_temp_p95", std::nan("")}};
  return r;
}

// Encodes `r` with its fields as given, without the encoder's care: for hostile records.
std::string encoded(const AggregateResult& r) {
  std::string out;
  encode_avro_aggregate_result(r, 9, out);
  return out;
}

}  // namespace

TEST(AggregateResultAvro, RoundTripsWithNullForNoValue) {
  const auto r = sample();
  const auto bytes = encoded(r);
  AggregateResult back;
  int32_t id = 0;
  std::string error;
  ASSERT_TRUE(decode_avro_aggregate_result(bytes, back, &id, &error)) << error;
  EXPECT_EQ(id, 9);
  EXPECT_EQ(back.aggregate, r.aggregate);
  EXPECT_EQ(back.group, r.group);
  EXPECT_EQ(back.window_start, r.window_start);
  EXPECT_EQ(back.window_end, r.window_end);
  EXPECT_EQ(back.revision, 2);
  EXPECT_TRUE(back.final);
  EXPECT_EQ(back.count, 3600);
  ASSERT_EQ(back.values.size(), 3U);
  EXPECT_EQ(back.values[0].column, "speed_mean");
  EXPECT_EQ(back.values[0].value, 12.5);
  EXPECT_TRUE(std::isnan(back.values[2].value));
  EXPECT_EQ(encoded(back), bytes);
  // The null is Avro's union branch 0: the last value is the branch byte alone, then the array's end.
  EXPECT_EQ(bytes.substr(bytes.size() - 2), std::string("\0\0", 2));
  EXPECT_NE(aggregate_result_schema().find("\"AggregateValue\""), std::string::npos);
  EXPECT_EQ(aggregate_result_key("summary_1h", "car-1", 1000), "summary_1h|car-1|1000");
}

TEST(AggregateResultAvro, RefusesWhatNoStageWrites) {
  std::string error;
  AggregateResult back;
  auto refused = [&](const AggregateResult& r, const char* why) {
    EXPECT_FALSE(decode_avro_aggregate_result(encoded(r), back, nullptr, &error)) << why;
    EXPECT_NE(error.find(why), std::string::npos) << error;
  };
  auto r = sample();
  r.aggregate = "";
  refused(r, "aggregate is empty");
  r = sample();
  r.group = std::string(kMaxAggregateGroupBytes + 1, 'g');
  refused(r, "group is longer");
  r = sample();
  r.window_end = r.window_start;
  refused(r, "window_end is not after");
  r = sample();
  r.revision = 0;
  refused(r, "revision is below 1");
  r = sample();
  r.count = -1;
  refused(r, "count is negative");
  r = sample();
  r.values.assign(kMaxAggregateColumns + 1, AggregateValue{"c", 1.0});
  refused(r, "more than 1024 values");
  r = sample();
  r.values[0].column = "";
  refused(r, "values.column is empty");

  const auto bytes = encoded(sample());
  for (std::size_t n = 0; n < bytes.size(); ++n)
    EXPECT_FALSE(decode_avro_aggregate_result(bytes.substr(0, n), back, nullptr, &error)) << n;
  EXPECT_FALSE(decode_avro_aggregate_result(bytes + "x", back, nullptr, &error));
  EXPECT_NE(error.find("trailing"), std::string::npos);
  // A union branch other than null or double.
  std::string bad = bytes;
  bad[bad.size() - 2] = 4;  // zigzag 2
  EXPECT_FALSE(decode_avro_aggregate_result(bad, back, nullptr, &error));
  EXPECT_NE(error.find("union branch"), std::string::npos) << error;
}
