#include "store/twin_blob.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <stdexcept>

namespace fleettwin::store {
namespace {

core::Twin full_twin() {
  core::Twin t;
  t.id = "car-1";
  t.reported.car = "car-1";
  for (size_t i = 0; i < core::kSignalCount; ++i) t.reported.values[i] = 0.5 + static_cast<double>(i);
  t.has_reported = true;
  t.desired = {{"mode", "\"eco\""}, {"limit", "90"}};
  t.reported_settings = {{"mode", "\"sport\""}};
  for (size_t i = 0; i < core::kSignalCount; ++i) t.metadata[i] = 1'700'000'000'000 + static_cast<int64_t>(i);
  t.health.threshold = 0.75;
  t.health.since = -5;
  t.health.top_signals = {"coolant_temp", ""};
  t.health.model_version = "ae-3";
  t.first_seen = 42;
  t.messages = 1'000'000'000'000;
  t.distance_km = 123.456;
  return t;
}

const catalog::Catalog& builtin() { return *catalog::builtin(); }

/// The built-in catalog with one more signal, inserted second, so every later index moves.
catalog::Catalog with_inserted_signal() {
  std::vector<catalog::SignalSpec> s = builtin().signals();
  catalog::SignalSpec oil;
  oil.name = "oil_temp";
  oil.min = -40;
  oil.max = 200;
  s.insert(s.begin() + 1, oil);
  return catalog::Catalog("cardata-plus", 1, "", std::move(s));
}

TEST(SqliteBlob, TwinRestRoundTrips) {
  core::Twin in = full_twin();
  core::Twin out;
  out.id = in.id;  // columns, not in the blob
  decode_twin_rest(encode_twin_rest(in, builtin()), out, builtin());
  EXPECT_EQ(out, in);
}

TEST(SqliteBlob, AbsentSignalsFlagsAndMetadataRoundTrip) {
  core::Twin in = full_twin();
  in.reported.values[core::kSpeed] = core::kAbsent;
  in.reported.values[core::kThrottlePos] = core::kAbsent;
  in.metadata[core::kThrottlePos] = 0;  // never seen
  in.reported.out_of_range = {core::kCoolantTemp, core::kControlUnitFirmware};
  core::Twin out;
  out.id = in.id;
  decode_twin_rest(encode_twin_rest(in, builtin()), out, builtin());
  EXPECT_EQ(out, in);
  EXPECT_TRUE(core::absent(out.reported.values[core::kSpeed]));
  EXPECT_EQ(out.metadata[core::kSpeed], in.metadata[core::kSpeed]);
  EXPECT_EQ(out.reported.out_of_range, in.reported.out_of_range);
}

TEST(SqliteBlob, ReadsUnderACatalogWithAnotherSignalByName) {
  core::Twin in = full_twin();
  in.reported.out_of_range = {core::kSpeed};
  const std::string blob = encode_twin_rest(in, builtin());
  const catalog::Catalog plus = with_inserted_signal();
  core::Twin out;
  decode_twin_rest(blob, out, plus);
  ASSERT_EQ(out.reported.values.size(), builtin().size() + 1);
  EXPECT_TRUE(core::absent(out.reported.values[1]));
  EXPECT_EQ(out.metadata[1], 0);
  EXPECT_EQ(out.reported.values[0], in.reported.values[0]);
  for (std::size_t i = 1; i < builtin().size(); ++i) {
    EXPECT_EQ(out.reported.values[i + 1], in.reported.values[i]) << i;
    EXPECT_EQ(out.metadata[i + 1], in.metadata[i]) << i;
  }
  EXPECT_EQ(out.reported.out_of_range, std::vector<uint16_t>{core::kSpeed + 1});
  // And back: a blob of the larger catalog read by the smaller one drops the signal it does not know.
  out.reported.values[1] = 77;
  core::Twin back;
  decode_twin_rest(encode_twin_rest(out, plus), back, builtin());
  back.id = in.id;
  EXPECT_EQ(back, in);
}

/// A format-1 blob as the previous build wrote it: the 18 built-in signals by position.
std::string positional_blob(const core::Twin& t) {
  std::string b;
  auto u8 = [&](uint8_t v) { b.push_back(static_cast<char>(v)); };
  auto u64 = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i) u8(static_cast<uint8_t>(v >> (8 * i)));
  };
  auto str = [&](const std::string& s) {
    u8(static_cast<uint8_t>(s.size()));  // short strings only: a one-byte varint
    b += s;
  };
  u8(1);
  str(t.reported.car);
  for (double v : t.reported.values) u64(std::bit_cast<uint64_t>(v));
  u8(t.has_reported ? 1 : 0);
  u8(0);  // desired
  u8(0);  // reported_settings
  for (int64_t ts : t.metadata) u64(static_cast<uint64_t>(ts));
  u64(std::bit_cast<uint64_t>(t.health.threshold));
  u64(static_cast<uint64_t>(t.health.since));
  u8(0);  // top_signals
  str(t.health.model_version);
  u64(static_cast<uint64_t>(t.first_seen));
  u64(static_cast<uint64_t>(t.messages));
  u64(std::bit_cast<uint64_t>(t.distance_km));
  return b;
}

TEST(SqliteBlob, ReadsThePositionalFormatOfSchemaVersion2) {
  core::Twin in = full_twin();
  in.desired.clear();
  in.reported_settings.clear();
  in.health.top_signals.clear();
  core::Twin out;
  out.id = in.id;
  decode_twin_rest(positional_blob(in), out, builtin());
  EXPECT_EQ(out, in);
  // Under a catalog whose indices differ, by name.
  const catalog::Catalog plus = with_inserted_signal();
  decode_twin_rest(positional_blob(in), out, plus);
  EXPECT_EQ(out.reported.values[core::kSpeed + 1], in.reported.values[core::kSpeed]);
  EXPECT_TRUE(core::absent(out.reported.values[1]));
}

TEST(SqliteBlob, RejectsTruncatedTrailingAndUnknownFormat) {
  std::string blob = encode_twin_rest(full_twin(), builtin());
  core::Twin out;
  for (size_t n : {size_t{0}, size_t{1}, blob.size() / 2, blob.size() - 1}) {
    EXPECT_THROW(decode_twin_rest(blob.substr(0, n), out, builtin()), std::runtime_error) << n;
  }
  EXPECT_THROW(decode_twin_rest(blob + "x", out, builtin()), std::runtime_error);
  std::string other = blob;
  other[0] = 99;
  EXPECT_THROW(decode_twin_rest(other, out, builtin()), std::runtime_error);
}

TEST(SqliteBlob, CorruptCountDoesNotAllocate) {
  // A list claiming 2^62 entries in a 10-byte blob must fail fast, not try to reserve them.
  std::string blob("\xff\xff\xff\xff\xff\xff\xff\xff\x3f", 9);
  EXPECT_THROW(decode_strings(blob), std::runtime_error);
}

TEST(SqliteBlob, StringListsRoundTrip) {
  std::vector<std::string> list{"speed", "", std::string(300, 'x'), "a,b\"c"};
  EXPECT_EQ(decode_strings(encode_strings(list)), list);
  EXPECT_TRUE(decode_strings(encode_strings({})).empty());
}

TEST(SqliteBlob, AggregateValuesRoundTripWithNanAndRefuseDamage) {
  const std::vector<std::pair<std::string, double>> values{{"speed.mean", 12.345678901234567},
                                                           {"coolant_temp.max", -0.0},
                                                           {"speed.p95", std::nan("")},
                                                           {"", 1e308}};
  const std::string blob = encode_aggregate_values(values);
  const auto back = decode_aggregate_values(blob);
  ASSERT_EQ(back.size(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(back[i].first, values[i].first);
    EXPECT_EQ(std::bit_cast<uint64_t>(back[i].second), std::bit_cast<uint64_t>(values[i].second)) << i;
  }
  EXPECT_TRUE(decode_aggregate_values(encode_aggregate_values({})).empty());
  for (size_t n : {size_t{0}, size_t{1}, blob.size() / 2, blob.size() - 1}) {
    EXPECT_THROW(decode_aggregate_values(blob.substr(0, n)), std::runtime_error) << n;
  }
  EXPECT_THROW(decode_aggregate_values(blob + "x"), std::runtime_error);
  std::string other = blob;
  other[0] = 7;
  EXPECT_THROW(decode_aggregate_values(other), std::runtime_error);
  // A count of 2^62 windows' values in a few bytes fails at once, without allocating them.
  EXPECT_THROW(decode_aggregate_values(std::string("\x01\xff\xff\xff\xff\xff\xff\xff\xff\x3f", 10)),
               std::runtime_error);
}

}  // namespace
}  // namespace fleettwin::store
