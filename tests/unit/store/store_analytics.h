#pragma once

// Analytics equal to SQLite's: one irregular data set (25 cars, 1,000 rows, alerts) written to a store and to
// a SqliteStore, every analytic compared. Used by the integration tests of the server stores.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "store/sqlite/sqlite_store.h"
#include "store/twin_store.h"

namespace fleettwin::store {

inline void expect_same_analytics(TwinStore& store, SqliteStore& sqlite) {
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
                                     false,
                                     "",
                                     "",
                                     0});
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
}

}  // namespace fleettwin::store
