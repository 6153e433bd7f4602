#include "store/sqlite/sqlite_blob.h"

#include <gtest/gtest.h>

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

TEST(SqliteBlob, TwinRestRoundTrips) {
  core::Twin in = full_twin();
  core::Twin out;
  out.id = in.id;  // columns, not in the blob
  decode_twin_rest(encode_twin_rest(in), out);
  EXPECT_EQ(out, in);
}

TEST(SqliteBlob, RejectsTruncatedTrailingAndUnknownFormat) {
  std::string blob = encode_twin_rest(full_twin());
  core::Twin out;
  for (size_t n : {size_t{0}, size_t{1}, blob.size() / 2, blob.size() - 1}) {
    EXPECT_THROW(decode_twin_rest(blob.substr(0, n), out), std::runtime_error) << n;
  }
  EXPECT_THROW(decode_twin_rest(blob + "x", out), std::runtime_error);
  std::string other = blob;
  other[0] = 99;
  EXPECT_THROW(decode_twin_rest(other, out), std::runtime_error);
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

}  // namespace
}  // namespace fleettwin::store
