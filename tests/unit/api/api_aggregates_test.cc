// GET /api/v1/aggregates/{name} and the history route's fallback to aggregates (issue 19, item 4): a real
// server on a free port over a SQLite store holding known windows and history.
#include <gtest/gtest.h>
#include <httplib.h>
#include <simdjson.h>

#include <cmath>
#include <string>
#include <vector>

#include "api/aggregate_view.h"
#include "api/api_server.h"
#include "store/sqlite/sqlite_store.h"
#include "support/temp_dir.h"

namespace fleettwin::api {
namespace {

constexpr const char* kViewer = "viewer-token-1";
constexpr int64_t kHour = 3'600'000;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kT0 = 1'767'225'600'000;      // 2026-01-01T00:00:00Z
constexpr int64_t kLastSeen = kT0 + 30 * kDay;  // the car's last message: 30 days later

store::AggregateRow hourly(const std::string& car, int64_t start, double speed_mean, int64_t count) {
  return store::AggregateRow{"summary_1h",
                             car,
                             start,
                             start + kHour,
                             1,
                             true,
                             count,
                             {{"speed_mean", speed_mean},
                              {"speed_max", speed_mean + 1},
                              {"coolant_temp_max", std::nan("")},
                              {"coolant_temp_p95", 90},
                              {"engine_vibration_amplitude_p95", 1},
                              {"battery_voltage_min", 12},
                              {"battery_voltage_mean", 12.5}}};
}

class ApiAggregatesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db = store::SqliteStore::path_in(dir.path().string());
    store::SqliteStore s(db);
    store::WriteBatch b;
    core::Twin t;
    t.id = "car-001";
    t.version = 1;
    t.has_reported = true;
    t.reported.car = t.id;
    t.reported.seq = 2;
    t.reported.ts = kLastSeen;
    t.last_seen = kLastSeen;
    b.twins.push_back(t);
    store::TelemetryRow recent;  // the raw history still held: the last day
    recent.t = t.reported;
    recent.t.values[core::kSpeed] = 33;
    b.telemetry.push_back(recent);
    s.write(b);
    s.upsert_aggregates(std::vector{hourly("car-001", kT0, 10, 100), hourly("car-001", kT0 + kHour, 20, 200),
                                    hourly("car-002", kT0, 5, 50), hourly("fleet", kT0, 7, 350)});

    ApiOptions o;
    o.port = 0;
    o.tokens = TokenTable::parse(std::string("viewer:") + kViewer);
    o.open_store = [this] { return std::make_unique<store::SqliteStore>(db); };
    o.aggregates = aggregate::defaults(*catalog::builtin());
    o.history_retention_ms = 7 * kDay;
    server = std::make_unique<ApiServer>(std::move(o));
    server->start();
    client = std::make_unique<httplib::Client>("127.0.0.1", server->port());
  }
  void TearDown() override { server->stop(); }

  httplib::Result get(const std::string& path, const char* token = kViewer) {
    httplib::Headers h;
    if (token != nullptr) h.emplace("Authorization", std::string("Bearer ") + token);
    return client->Get(path, h);
  }
  /// The body of a 200 answer to `path`, parsed.
  simdjson::dom::element json(const std::string& path) {
    auto r = get(path);
    EXPECT_TRUE(r);
    if (!r) return {};
    EXPECT_EQ(r->status, 200) << path << ": " << r->body;
    body = r->body;
    return parser.parse(body);
  }

  fleettwin::testing::TempDir dir{"api-aggregates"};
  std::string db;
  std::unique_ptr<ApiServer> server;
  std::unique_ptr<httplib::Client> client;
  simdjson::dom::parser parser;
  std::string body;
};

TEST_F(ApiAggregatesTest, ListsOneCarsWindowsWithTheDefinitionsColumns) {
  auto doc = json("/api/v1/aggregates/summary_1h?car=car-001");
  EXPECT_EQ(std::string_view(doc["aggregate"]), "summary_1h");
  auto columns = doc["columns"].get_array().value();
  EXPECT_EQ(columns.size(), aggregate::defaults(*catalog::builtin())[1].columns().size());
  EXPECT_EQ(std::string_view(columns.at(0)), "speed_mean");
  auto windows = doc["windows"].get_array().value();
  ASSERT_EQ(windows.size(), 2u);
  auto w = windows.at(1);
  EXPECT_EQ(std::string_view(w["group"]), "car-001");
  EXPECT_EQ(int64_t(w["start"]), kT0 + kHour);
  EXPECT_EQ(int64_t(w["end"]), kT0 + 2 * kHour);
  EXPECT_EQ(int64_t(w["revision"]), 1);
  EXPECT_TRUE(bool(w["final"]));
  EXPECT_EQ(int64_t(w["count"]), 200);
  EXPECT_EQ(double(w["values"]["speed_mean"]), 20.0);
  EXPECT_TRUE(w["values"]["coolant_temp_max"].is_null());  // NaN: no value
  EXPECT_FALSE(bool(doc["truncated"]));
}

TEST_F(ApiAggregatesTest, EveryGroupIncludingTheFleetInOrderWithRangeAndLimit) {
  auto all = json("/api/v1/aggregates/summary_1h")["windows"].get_array().value();
  std::vector<std::string> groups;
  for (auto w : all) groups.emplace_back(std::string_view(w["group"]));
  EXPECT_EQ(groups, (std::vector<std::string>{"car-001", "car-001", "car-002", "fleet"}));
  auto ranged = json("/api/v1/aggregates/summary_1h?from=" + std::to_string(kT0 + 1) +
                     "&to=" + std::to_string(kT0 + 2 * kHour))["windows"]
                    .get_array()
                    .value();
  EXPECT_EQ(ranged.size(), 1u);
  auto limited = json("/api/v1/aggregates/summary_1h?limit=3");
  EXPECT_EQ(limited["windows"].get_array().value().size(), 3u);
  EXPECT_TRUE(bool(limited["truncated"]));
  EXPECT_EQ(json("/api/v1/aggregates/events_5m")["windows"].get_array().value().size(), 0u);
}

TEST_F(ApiAggregatesTest, HostileParametersAreRefusedWithAReason) {
  for (const std::string& path : std::vector<std::string>{
           "/api/v1/aggregates/Summary", "/api/v1/aggregates/" + std::string(65, 'a'),
           "/api/v1/aggregates/summary_1h?car=%00bad", "/api/v1/aggregates/summary_1h?from=-1",
           "/api/v1/aggregates/summary_1h?from=10&to=5", "/api/v1/aggregates/summary_1h?to=abc",
           "/api/v1/aggregates/summary_1h?limit=0", "/api/v1/aggregates/summary_1h?limit=10001",
           "/api/v1/aggregates/summary_1h?car=" + std::string(300, 'x')}) {
    auto r = get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 400) << path << ": " << r->body;
    EXPECT_NE(r->body.find("\"error\""), std::string::npos) << path;
  }
  auto unknown = get("/api/v1/aggregates/no_such_aggregate");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  auto anonymous = get("/api/v1/aggregates/summary_1h", nullptr);
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->status, 401);
}

TEST_F(ApiAggregatesTest, HistoryOlderThanTheRetentionComesFromTheAggregatesAndSaysSo) {
  const std::string old_range = "from=" + std::to_string(kT0) + "&to=" + std::to_string(kT0 + kDay);
  auto doc = json("/api/v1/twins/car-001/history?signal=speed,coolant_temp,tire_pressure_1_1&" + old_range);
  EXPECT_EQ(std::string_view(doc["source"]), "aggregates");
  EXPECT_EQ(std::string_view(doc["aggregate"]), "summary_1h");
  EXPECT_EQ(std::string_view(doc["columns"]["speed"]), "speed_mean");
  EXPECT_EQ(std::string_view(doc["columns"]["coolant_temp"]), "coolant_temp_max");  // no mean: the max
  EXPECT_TRUE(doc["columns"]["tire_pressure_1_1"].is_null());
  auto ts = doc["ts"].get_array().value();
  ASSERT_EQ(ts.size(), 2u);
  EXPECT_EQ(int64_t(ts.at(0)), kT0);
  EXPECT_EQ(double(doc["signals"]["speed"].at(1)), 20.0);
  EXPECT_TRUE(doc["signals"]["coolant_temp"].at(0).is_null());
  EXPECT_EQ(int64_t(doc["count"].at(0)), 100);
  EXPECT_EQ(int64_t(doc["step"]), kHour);
  EXPECT_EQ(std::string_view(doc["car"]), "car-001");  // the rest of the history answer is still there

  // The same range from the raw rows (removed: empty), and a recent range from the raw rows by default.
  auto raw = json("/api/v1/twins/car-001/history?source=history&" + old_range);
  EXPECT_EQ(std::string_view(raw["source"]), "history");
  EXPECT_EQ(raw["ts"].get_array().value().size(), 0u);
  auto recent = json("/api/v1/twins/car-001/history");
  EXPECT_EQ(std::string_view(recent["source"]), "history");
  EXPECT_EQ(double(recent["signals"]["speed"].at(0)), 33.0);
  // Forced: the aggregates of a recent range (none stored there).
  auto forced = json("/api/v1/twins/car-001/history?source=aggregates");
  EXPECT_EQ(std::string_view(forced["source"]), "aggregates");
  auto bad = get("/api/v1/twins/car-001/history?source=disk");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
}

TEST_F(ApiAggregatesTest, TheTotalSumsEveryCarPerWindowLeavingOutTheFleetRow) {
  auto doc = json("/api/v1/aggregates/summary_1h/total?from=" + std::to_string(kT0) +
                  "&to=" + std::to_string(kT0 + 3 * kHour));
  EXPECT_EQ(std::string_view(doc["aggregate"]), "summary_1h");
  EXPECT_EQ(int64_t(doc["advance"]), kHour);
  EXPECT_EQ(int64_t(doc["stride"]), 1);
  EXPECT_FALSE(bool(doc["sampled"]));
  EXPECT_FALSE(bool(doc["truncated"]));
  auto windows = doc["windows"].get_array().value();
  ASSERT_EQ(windows.size(), 2u);  // the third hour holds no window: left out
  EXPECT_EQ(int64_t(windows.at(0)["start"]), kT0);
  EXPECT_EQ(int64_t(windows.at(0)["end"]), kT0 + kHour);
  EXPECT_EQ(int64_t(windows.at(0)["groups"]), 2);   // car-001, car-002; not the "fleet" row
  EXPECT_EQ(int64_t(windows.at(0)["count"]), 150);  // 100 + 50
  EXPECT_EQ(int64_t(windows.at(1)["groups"]), 1);
  EXPECT_EQ(int64_t(windows.at(1)["count"]), 200);

  for (const std::string& path : std::vector<std::string>{
           "/api/v1/aggregates/summary_1h/total?from=10&to=5", "/api/v1/aggregates/summary_1h/total?points=0",
           "/api/v1/aggregates/summary_1h/total?points=1001", "/api/v1/aggregates/Bad/total"}) {
    auto r = get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 400) << path << ": " << r->body;
  }
  auto unknown = get("/api/v1/aggregates/no_such_aggregate/total");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
}

TEST_F(ApiAggregatesTest, ALongRangeOfTheTotalIsDownsampledNotCutOff) {
  // 15,000 five-minute windows (52 days) of two cars: more than the list route's 10,000-window answer. The
  // total reads every k-th window start and still reaches the end of the range.
  constexpr int64_t kFive = 300'000;
  constexpr int64_t kWindows = 15'000;
  std::vector<store::AggregateRow> rows;
  for (int64_t i = 0; i < kWindows; ++i) {
    for (const char* car : {"car-001", "car-002"})
      rows.push_back({"events_5m", car, kT0 + i * kFive, kT0 + (i + 1) * kFive, 1, true, i % 7 + 1, {}});
  }
  store::SqliteStore(db).upsert_aggregates(rows);
  auto doc = json("/api/v1/aggregates/events_5m/total?points=100&from=" + std::to_string(kT0) +
                  "&to=" + std::to_string(kT0 + kWindows * kFive));
  EXPECT_TRUE(bool(doc["sampled"]));
  EXPECT_EQ(int64_t(doc["stride"]), 150);
  EXPECT_FALSE(bool(doc["truncated"]));
  auto windows = doc["windows"].get_array().value();
  ASSERT_EQ(windows.size(), 100u);
  for (std::size_t k = 0; k < windows.size(); ++k) {
    const int64_t i = static_cast<int64_t>(k) * 150;
    EXPECT_EQ(int64_t(windows.at(k)["start"]), kT0 + i * kFive);
    EXPECT_EQ(int64_t(windows.at(k)["groups"]), 2);
    EXPECT_EQ(int64_t(windows.at(k)["count"]), 2 * (i % 7 + 1));
  }
  EXPECT_GT(int64_t(windows.at(99)["start"]), kT0 + (kWindows - 151) * kFive);  // the range's last stretch
}

TEST(AggregateView, TotalWindowStartsAreAlignedAndStrided) {
  const auto defs = aggregate::defaults(*catalog::builtin());
  const auto& five = defs[0];  // events_5m
  int64_t stride = 0;
  // From just after an aligned start: the first start read is the next aligned one; `to` is exclusive.
  auto starts = total_window_starts(five, 300'001, 1'500'000, 10, &stride);
  EXPECT_EQ(stride, 1);
  EXPECT_EQ(starts, (std::vector<int64_t>{600'000, 900'000, 1'200'000}));
  starts = total_window_starts(five, 0, 10 * 300'000, 3, &stride);  // 10 starts, 3 points: every 4th
  EXPECT_EQ(stride, 4);
  EXPECT_EQ(starts, (std::vector<int64_t>{0, 1'200'000, 2'400'000}));
  EXPECT_TRUE(total_window_starts(five, 300'001, 600'000, 10, &stride).empty());
}

TEST(AggregateView, HistoryAggregatePrefersCoverageThenTheFinerWindow) {
  const auto& c = *catalog::builtin();
  const auto defs = aggregate::parse_yaml(R"(aggregates:
  - {name: fleet_1m, group: fleet, window: 1m, signals: {speed: [mean]}}
  - {name: coarse, group: car, window: 1d, signals: {speed: [max], coolant_temp: [min]}}
  - {name: fine, group: car, window: 1h, signals: {speed: [p50, mean]}}
)",
                                          "test", c);
  const std::size_t speed = *c.find("speed");
  const std::size_t coolant = *c.find("coolant_temp");
  EXPECT_EQ(history_aggregate(defs, {speed})->name, "fine");
  EXPECT_EQ(history_aggregate(defs, {speed, coolant})->name, "coarse");
  EXPECT_EQ(history_column(defs[2], speed), "speed_mean");
  EXPECT_EQ(history_column(defs[1], speed), "speed_max");
  EXPECT_EQ(history_column(defs[2], coolant), "");
  EXPECT_EQ(history_aggregate({defs[0]}, {speed}), nullptr);
  EXPECT_TRUE(valid_aggregate_name("events_5m"));
  EXPECT_FALSE(valid_aggregate_name("Events"));
  EXPECT_FALSE(valid_aggregate_name(""));
}

}  // namespace
}  // namespace fleettwin::api
