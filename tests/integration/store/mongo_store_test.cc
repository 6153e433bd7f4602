// The store contract suite (tests/unit/store/store_contract.cc) against the MongoDB adapter on a real
// FerretDB started through scripts/services/ferretdb, plus what only a second backend can show: analytics
// equal to SQLite's on the same data.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "store/mongo/mongo_store.h"
#include "store/sqlite/sqlite_store.h"
#include "support/service_environment.h"
#include "support/temp_dir.h"
#include "unit/store/store_contract.h"

namespace fleettwin::store {
namespace {

/// One server for the whole binary: mongodb://127.0.0.1:PORT/, with or without the slash.
const std::string& g_uri = fleettwin::testing::service_for_all_tests(FLEETTWIN_SOURCE_DIR, "ferretdb");

std::string uri_of(const std::string& database) {
  return g_uri + (g_uri.empty() || g_uri.back() != '/' ? "/" : "") + database;
}

StoreFactory mongo_factory() {
  return StoreFactory{
      "ferretdb",
      [](const std::string& space, StoreFactory::CatalogPtr catalog) -> std::unique_ptr<TwinStore> {
        return std::make_unique<MongoStore>(uri_of(space), MongoOptions{}, std::move(catalog));
      },
      [](const std::string& space) { MongoStore(uri_of(space)).drop_database(); }};
}

INSTANTIATE_TEST_SUITE_P(Mongo, StoreContract, ::testing::Values(mongo_factory()),
                         [](const auto& info) { return info.param.name; });

TEST(MongoStore, DetectsFerretDbAndUsesTheUriDatabase) {
  MongoStore s(uri_of("ft_caps"));
  EXPECT_TRUE(s.capabilities().ferretdb);
  EXPECT_FALSE(s.capabilities().change_streams);
  EXPECT_FALSE(s.capabilities().full_pipelines);
  EXPECT_FALSE(s.capabilities().version.empty());
  s.drop_database();
}

TEST(MongoStore, BadUriIsAClearError) {
  try {
    MongoStore s("postgres://nope");
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("bad URI"), std::string::npos) << e.what();
  }
}

TEST(MongoStore, AnalyticsEqualSqlite) {
  // One data set written to both stores; every analytic compared. Values are irregular on purpose.
  const fleettwin::testing::TempDir dir("mongo-eq");
  SqliteStore sqlite(SqliteStore::path_in(dir.path().string()));
  MongoStore store(uri_of("ft_equal"));
  store.drop_database();  // a leftover of an interrupted run
  constexpr int64_t kT0 = 1'767'225'600'000;
  WriteBatch b;
  const char* statuses[] = {"ok", "warning", "anomaly", "unknown"};
  for (int c = 0; c < 25; ++c) {
    core::Twin t;
    t.id = "eq-" + std::to_string(c);
    t.version = 1;
    t.reported.car = t.id;
    t.reported.seq = 100 + c;
    t.reported.ts = kT0 + c;
    t.has_reported = true;
    t.health.score = std::fmod(c * 1.37, 5.0);
    t.health.threshold = 3.2;
    t.health.status = core::health_status_from_string(statuses[c % 4]);
    t.online = c % 3 != 0;
    b.twins.push_back(t);
    for (int q = 1; q <= 40; ++q) {
      core::Telemetry m;
      m.car = t.id;
      m.seq = q;
      m.ts = kT0 + q * 397'000 + c * 11;  // ~4.4 hours
      for (size_t i = 0; i < core::kSignalCount; ++i) m.values[i] = std::sin(q * 0.7 + c + i) * 50 + 50;
      if (q % 11 == 0) m.values[core::kSpeed] = std::numeric_limits<double>::quiet_NaN();
      b.telemetry.push_back({m, q % 3 == 0 ? std::optional(q * 0.01) : std::nullopt});
    }
    for (int k = 0; k < c % 4; ++k) {
      b.alerts.push_back(core::Alert{t.id + ":a:" + std::to_string(k),
                                     t.id,
                                     k % 2 == 0 ? "anomaly" : "offline",
                                     k != 2,
                                     kT0 + k * 2'000'000 + c,
                                     4,
                                     3.2,
                                     {"speed"},
                                     "m",
                                     false});
    }
  }
  sqlite.write(b);
  store.write(b);
  const int64_t now = kT0 + 10 * 397'000 + 30'000;
  EXPECT_EQ(store.fleet_summary(now), sqlite.fleet_summary(now));
  EXPECT_GT(sqlite.fleet_summary(now).messages_last_minute, 0);
  EXPECT_EQ(store.top_by_score(7), sqlite.top_by_score(7));
  for (const char* signal : {"speed", "coolant_temp", "tire_pressure_1_1", "score"}) {
    SCOPED_TRACE(signal);
    auto a = store.hourly("eq-3", signal, kT0, kT0 + 5 * 3'600'000);
    auto e = sqlite.hourly("eq-3", signal, kT0, kT0 + 5 * 3'600'000);
    ASSERT_EQ(a.size(), e.size());
    ASSERT_FALSE(e.empty());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].hour_ms, e[i].hour_ms);
      EXPECT_EQ(a[i].count, e[i].count);
      EXPECT_EQ(a[i].min, e[i].min);
      EXPECT_EQ(a[i].max, e[i].max);
      EXPECT_NEAR(a[i].avg, e[i].avg, 1e-9 * std::fabs(e[i].avg));
    }
  }
  EXPECT_EQ(store.alerts_per_hour(kT0, kT0 + 24 * 3'600'000),
            sqlite.alerts_per_hour(kT0, kT0 + 24 * 3'600'000));
  EXPECT_FALSE(sqlite.alerts_per_hour(kT0, kT0 + 24 * 3'600'000).empty());
  EXPECT_EQ(store.max_seq_per_car(), sqlite.max_seq_per_car());
  HistoryStats hs = store.history_stats();
  EXPECT_EQ(hs.rows, 1000);
  EXPECT_EQ(hs.cars, 25);
  EXPECT_EQ(hs.twins, 25);
  store.drop_database();
}

}  // namespace
}  // namespace fleettwin::store
