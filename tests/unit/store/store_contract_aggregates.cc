// The TwinStore contract for window aggregates (upsert_aggregates, aggregates, enforce_aggregates_retention):
// every adapter keeps the highest revision per (aggregate, group, window start), reads ranges in the same
// order and removes old windows by window start.

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "unit/store/store_contract.h"

namespace fleettwin::store {
namespace {

constexpr int64_t kT0 = 1'767'225'600'000;  // 2026-01-01T00:00:00Z
constexpr int64_t kHour = 3'600'000;
constexpr int64_t kDay = 24 * kHour;
const double kNan = std::numeric_limits<double>::quiet_NaN();

AggregateRow window(const std::string& aggregate, const std::string& group, int64_t start, uint32_t revision,
                    int64_t count, double mean, bool final = false) {
  return AggregateRow{
      aggregate, group,
      start,     start + kHour,
      revision,  final,
      count,     {{"speed.mean", mean}, {"coolant_temp.max", 90.0 + mean}, {"speed.p95", kNan}}};
}

/// Rows compare equal but for NaN values, which must be NaN on both sides.
void expect_same(const std::vector<AggregateRow>& got, const std::vector<AggregateRow>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(got[i].aggregate, want[i].aggregate);
    EXPECT_EQ(got[i].group, want[i].group);
    EXPECT_EQ(got[i].window_start_ms, want[i].window_start_ms);
    EXPECT_EQ(got[i].window_end_ms, want[i].window_end_ms);
    EXPECT_EQ(got[i].revision, want[i].revision);
    EXPECT_EQ(got[i].final, want[i].final);
    EXPECT_EQ(got[i].count, want[i].count);
    ASSERT_EQ(got[i].values.size(), want[i].values.size());
    for (std::size_t k = 0; k < got[i].values.size(); ++k) {
      EXPECT_EQ(got[i].values[k].first, want[i].values[k].first);
      if (std::isnan(want[i].values[k].second)) {
        EXPECT_TRUE(std::isnan(got[i].values[k].second)) << got[i].values[k].first;
      } else {
        EXPECT_EQ(got[i].values[k].second, want[i].values[k].second) << got[i].values[k].first;
      }
    }
  }
}

TEST_P(StoreContract, AggregatesKeepTheHighestRevisionPerWindow) {
  const AggregateRow first = window("hourly", "car-a", kT0, 1, 10, 12.5);
  store->upsert_aggregates(std::vector{first});
  expect_same(store->aggregates({.aggregate = "hourly"}), {first});

  // A revision (late events) replaces it; the replay of revision 1 afterwards changes nothing.
  const AggregateRow revised = window("hourly", "car-a", kT0, 2, 11, 13.25);
  store->upsert_aggregates(std::vector{revised});
  store->upsert_aggregates(std::vector{first});
  expect_same(store->aggregates({.aggregate = "hourly"}), {revised});

  // The same revision marked final (the engine dropped the window) is taken; the non-final replay is not.
  AggregateRow final_row = revised;
  final_row.final = true;
  store->upsert_aggregates(std::vector{final_row, revised});
  expect_same(store->aggregates({.aggregate = "hourly"}), {final_row});

  // A whole batch replayed, in another order, through another instance: still one row per key.
  const AggregateRow other = window("hourly", "car-b", kT0, 1, 4, 7.0);
  auto another = open_another();
  another->upsert_aggregates(std::vector{other, first, revised});
  expect_same(store->aggregates({.aggregate = "hourly"}), {final_row, other});
}

TEST_P(StoreContract, AggregatesAreReadByGroupAndRangeInOrder) {
  std::vector<AggregateRow> rows;
  for (const std::string group : {"fleet", "car-b", "car-a"}) {
    for (int64_t h = 3; h >= 0; --h)
      rows.push_back(window("hourly", group, kT0 + h * kHour, 1, h + 1, 1.5 * h));
  }
  rows.push_back(window("five_minutes", "car-a", kT0, 1, 7, 2.0));
  AggregateRow empty_values = window("five_minutes", "car-a", kT0 + kHour, 1, 0, 0);
  empty_values.values.clear();
  rows.push_back(empty_values);
  store->upsert_aggregates(rows);

  const auto of = [&](const std::string& group, int64_t from_h, int64_t to_h) {
    std::vector<AggregateRow> out;
    for (int64_t h = from_h; h < to_h; ++h)
      out.push_back(window("hourly", group, kT0 + h * kHour, 1, h + 1, 1.5 * h));
    return out;
  };
  // One group, from <= window start < to, oldest first.
  expect_same(
      store->aggregates(
          {.aggregate = "hourly", .group = "car-b", .from_ms = kT0 + kHour, .to_ms = kT0 + 3 * kHour}),
      of("car-b", 1, 3));
  // Every group: by group (bytes), then window start.
  std::vector<AggregateRow> all = of("car-a", 0, 4);
  for (auto& r : of("car-b", 0, 4)) all.push_back(r);
  for (auto& r : of("fleet", 0, 4)) all.push_back(r);
  expect_same(store->aggregates({.aggregate = "hourly"}), all);
  // The limit keeps the first rows of that order.
  expect_same(store->aggregates({.aggregate = "hourly", .limit = 5}),
              std::vector<AggregateRow>(all.begin(), all.begin() + 5));
  // Other aggregates stay apart; a window without values reads back without values.
  expect_same(store->aggregates({.aggregate = "five_minutes", .group = "car-a"}), {rows[12], empty_values});
  EXPECT_TRUE(store->aggregates({.aggregate = "none"}).empty());
  EXPECT_TRUE(store->aggregates({.aggregate = "hourly", .group = "car-z"}).empty());
  EXPECT_TRUE(store->aggregates({.aggregate = "hourly", .from_ms = kT0 + 4 * kHour}).empty());
  EXPECT_TRUE(store->aggregates({.aggregate = "hourly", .from_ms = kT0, .to_ms = kT0}).empty());
  EXPECT_TRUE(store->aggregates({.aggregate = "hourly", .limit = 0}).empty());
}

TEST_P(StoreContract, AggregatesRetentionRemovesOlderWindowsOnly) {
  const int64_t cutoff = kT0 + 10 * kDay;
  std::vector<AggregateRow> rows;
  for (int64_t d = 8; d <= 12; ++d) {
    rows.push_back(window("hourly", "car-a", kT0 + d * kDay, 1, d, 1.0));
    rows.push_back(window("hourly", "fleet", kT0 + d * kDay, 1, d, 1.0));
  }
  store->upsert_aggregates(rows);
  WriteBatch history;  // old history is not the aggregates' retention's business
  core::Telemetry t;
  t.car = "car-a";
  t.seq = 1;
  t.ts = kT0;
  t.values.assign(core::kSignalCount, 1.0);
  history.telemetry.push_back({t, std::nullopt});
  store->write(history);

  const RetentionResult r = store->enforce_aggregates_retention(cutoff);
  EXPECT_EQ(r.removed, 4);  // days 8 and 9 of both groups
  EXPECT_EQ(r.oldest_ms, cutoff);
  EXPECT_FALSE(r.more);
  EXPECT_EQ(r.store, GetParam().name == "ferretdb" ? "mongo" : GetParam().name);
  const std::vector<AggregateRow> kept = store->aggregates({.aggregate = "hourly"});
  ASSERT_EQ(kept.size(), 6u);
  for (const auto& w : kept) EXPECT_GE(w.window_start_ms, cutoff);
  EXPECT_EQ(store->history("car-a", INT64_MIN, INT64_MAX).size(), 1u);

  const RetentionResult again = store->enforce_aggregates_retention(cutoff);
  EXPECT_EQ(again.removed, 0);
  EXPECT_EQ(again.oldest_ms, cutoff);
  // Everything older: the table is empty, the oldest is "none".
  const RetentionResult all = store->enforce_aggregates_retention(INT64_MAX);
  EXPECT_EQ(all.removed, 6);
  EXPECT_EQ(all.oldest_ms, INT64_MAX);
  EXPECT_TRUE(store->aggregates({.aggregate = "hourly"}).empty());
}

}  // namespace
}  // namespace fleettwin::store
