// The store contract suite (tests/unit/store/store_contract.cc) against the PostgreSQL adapter on a real
// server started through scripts/services/postgres, plus what only PostgreSQL has: analytics equal to
// SQLite's on the same data, daily partitions, reconnection after an outage, the two telemetry write paths.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstdint>

#include "store/postgres/pg_conn.h"
#include "store/postgres/postgres_store.h"
#include "store/sqlite/sqlite_store.h"
#include "support/process.h"
#include "support/service_environment.h"
#include "support/temp_dir.h"
#include "unit/store/store_analytics.h"
#include "unit/store/store_contract.h"

namespace fleettwin::store {
namespace {

/// One server for the whole binary: postgresql://fleettwin@127.0.0.1:PORT/fleettwin.
const std::string& g_uri = fleettwin::testing::service_for_all_tests(FLEETTWIN_SOURCE_DIR, "postgres");

/// The server's URI with another database.
std::string uri_of(const std::string& database) { return g_uri.substr(0, g_uri.rfind('/') + 1) + database; }

/// A fresh, empty database per space (names are test-made identifiers).
void recreate_database(const std::string& name) {
  PgConnection admin(g_uri);
  admin.exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
  admin.exec("CREATE DATABASE " + name);
}

std::string database_of(const std::string& space) {
  std::string out = "ft_";
  for (const char c : space)
    out += std::isalnum(static_cast<unsigned char>(c)) != 0 ? static_cast<char>(std::tolower(c)) : '_';
  return out.substr(0, 63);
}

StoreFactory postgres_factory() {
  return StoreFactory{
      "postgres",
      [](const std::string& space, StoreFactory::CatalogPtr catalog) -> std::unique_ptr<TwinStore> {
        const std::string db = database_of(space);
        {
          PgConnection admin(g_uri);
          if (admin.exec("SELECT 1 FROM pg_database WHERE datname = $1", PgParams().add(std::string_view(db)))
                  .rows() == 0) {
            admin.exec("CREATE DATABASE " + db);
          }
        }
        return std::make_unique<PostgresStore>(uri_of(db), PostgresOptions{}, std::move(catalog));
      },
      [](const std::string& space) {
        PgConnection admin(g_uri);
        admin.exec("DROP DATABASE IF EXISTS " + database_of(space) + " WITH (FORCE)");
      }};
}

INSTANTIATE_TEST_SUITE_P(Postgres, StoreContract, ::testing::Values(postgres_factory()),
                         [](const auto& info) { return info.param.name; });

core::Telemetry message(const std::string& car, int64_t seq, int64_t ts) {
  core::Telemetry m;
  m.car = car;
  m.seq = seq;
  m.ts = ts;
  for (size_t i = 0; i < core::kSignalCount; ++i)
    m.values[i] = static_cast<double>(seq) + 0.25 * static_cast<double>(i);
  return m;
}

TEST(PostgresStore, BadUriIsAClearError) { expect_bad_uri_refused<PostgresStore>("mongodb://nope"); }

TEST(PostgresStore, UnreachableServerIsTransient) {
  try {
    PostgresStore s("postgresql://fleettwin@127.0.0.1:1/fleettwin?connect_timeout=2");
    FAIL() << "no error";
  } catch (const PgError& e) {
    EXPECT_TRUE(e.transient()) << e.what();
  }
}

TEST(PostgresStore, TelemetryGoesToOnePartitionPerDayAndReplaysOnce) {
  recreate_database("ft_partitions");
  PostgresStore store(uri_of("ft_partitions"));
  constexpr int64_t kDay = 86'400'000;
  constexpr int64_t kT0 = 20'000 * kDay;  // the start of a UTC day
  WriteBatch b;
  for (int64_t q = 1; q <= 30; ++q)
    b.telemetry.push_back({message("p-1", q, kT0 + (q - 1) * (kDay / 10)), std::nullopt});
  b.telemetry.push_back({message("p-0", 1, -5), std::nullopt});  // before 1970: a day of its own
  WriteResult first = store.write(b);
  EXPECT_EQ(first.telemetry_inserted, 31);
  EXPECT_EQ(first.telemetry_duplicates, 0);
  EXPECT_EQ(store.telemetry_partitions(), (std::vector<std::string>{"telemetry_dm1", "telemetry_d20000",
                                                                    "telemetry_d20001", "telemetry_d20002"}));
  // A second instance (its own partition cache) replays the batch: every row is a duplicate.
  PostgresStore again(uri_of("ft_partitions"));
  WriteResult replay = again.write(b);
  EXPECT_EQ(replay.telemetry_inserted, 0);
  EXPECT_EQ(replay.telemetry_duplicates, 31);
  // Retention drops a day; the history of the other days reads on, and a write to the dropped day recreates
  // it.
  PgConnection(uri_of("ft_partitions")).exec("DROP TABLE telemetry_d20000");
  EXPECT_EQ(store.history("p-1", kT0, kT0 + 3 * kDay).size(), 20U);
  WriteBatch late;
  late.telemetry.push_back({message("p-1", 100, kT0 + 5), std::nullopt});
  // The instance believed the day existed: its insert finds no partition, and write() creates it again.
  EXPECT_EQ(store.write(late).telemetry_inserted, 1);
  HistoryStats stats = store.history_stats();
  EXPECT_EQ(stats.rows, 22);
  EXPECT_EQ(stats.distinct, 22);
  EXPECT_EQ(stats.cars, 2);
}

TEST(PostgresStore, RetentionDropsTheDaysEntirelyOlderAndKeepsTheOneStraddlingTheCutoff) {
  recreate_database("ft_retention");
  PostgresStore store(uri_of("ft_retention"));
  constexpr int64_t kDay = 86'400'000;
  constexpr int64_t kT0 = 20'000 * kDay;
  WriteBatch b;
  for (int64_t q = 1; q <= 30; ++q)
    b.telemetry.push_back({message("p-1", q, kT0 + (q - 1) * (kDay / 10)), std::nullopt});
  b.telemetry.push_back({message("p-0", 1, -5), std::nullopt});
  store.write(b);
  PostgresStore other(uri_of("ft_retention"));  // knows every partition (it wrote to each)
  other.write(b);
  const int64_t cutoff = kT0 + kDay + kDay / 2;  // noon of day 20001
  const RetentionResult r = store.enforce_retention(cutoff);
  EXPECT_EQ(r.removed, 2);  // telemetry_dm1 and telemetry_d20000
  EXPECT_EQ(r.oldest_ms, kT0 + kDay);
  EXPECT_EQ(store.telemetry_partitions(), (std::vector<std::string>{"telemetry_d20001", "telemetry_d20002"}));
  // Day 20001 is kept whole, its rows before the cutoff too; nothing else was touched row by row.
  EXPECT_EQ(store.history("p-1", INT64_MIN, INT64_MAX).size(), 20U);
  EXPECT_EQ(store.history("p-1", kT0 + kDay, cutoff).size(), 5U);
  EXPECT_EQ(store.enforce_retention(cutoff).removed, 0);
  // A late row of a dropped day, written by an instance that saw that day's partition: stored again.
  WriteBatch late;
  late.telemetry.push_back({message("p-1", 100, kT0 + 5), std::nullopt});
  EXPECT_EQ(other.write(late).telemetry_inserted, 1);
  EXPECT_EQ(store.enforce_retention(cutoff).removed, 1);
}

TEST(PostgresStore, MultiRowPathWritesWhatCopyWrites) {
  recreate_database("ft_paths_copy");
  recreate_database("ft_paths_rows");
  PostgresStore copy(uri_of("ft_paths_copy"));
  PostgresStore rows(uri_of("ft_paths_rows"), PostgresOptions{PgTelemetryPath::kMultiRow});
  WriteBatch b;
  for (int c = 0; c < 40; ++c) {
    for (int64_t q = 1; q <= 60; ++q) {
      core::Telemetry m = message("m-" + std::to_string(c), q, 1'767'225'600'000 + q * 1000);
      if (q % 7 == 0) m.values[core::kSpeed] = core::kAbsent;
      if (q % 5 == 0) m.out_of_range = {core::kCoolantTemp};
      b.telemetry.push_back({m, q % 2 == 0 ? std::optional(q * 0.5) : std::nullopt});
    }
  }
  b.telemetry.push_back(b.telemetry.front());  // a repeat inside the batch
  for (PostgresStore* s : {&copy, &rows}) {
    WriteResult r = s->write(b);
    EXPECT_EQ(r.telemetry_inserted, 2400);
    EXPECT_EQ(r.telemetry_duplicates, 1);
  }
  for (const char* car : {"m-0", "m-17", "m-39"}) {
    EXPECT_EQ(copy.history(car, 0, INT64_MAX), rows.history(car, 0, INT64_MAX)) << car;
  }
  EXPECT_EQ(rows.history("m-3", 0, INT64_MAX).size(), 60U);
}

TEST(PostgresStore, ABatchOfManyTwinsGoesThroughTheStagingTableUnderTheSameGuard) {
  recreate_database("ft_staged_twins");
  PostgresStore store(uri_of("ft_staged_twins"));
  auto batch_at = [](int64_t seq, int64_t version) {
    WriteBatch b;
    for (int c = 0; c < 40; ++c) {
      core::Twin& t = b.twins.emplace_back();
      t.id = "st\t" + std::to_string(c);  // a tab: COPY's delimiter, escaped
      t.version = version;
      t.has_reported = true;
      t.reported.car = t.id;
      t.reported.seq = seq;
      t.reported.ts = 1'700'000'000'000 + seq * 1000;
      t.reported.values.assign(core::kSignalCount, static_cast<double>(seq));
      t.reported.values[core::kSpeed] = core::kAbsent;
      t.metadata.assign(core::kSignalCount, t.reported.ts);
      t.health.model_version = "m\\1\"x";  // a backslash and a quote: escaped in COPY, JSON and the filter
      t.health.score = 0.5 * c;
    }
    return b;
  };
  EXPECT_EQ(store.write(batch_at(5, 1)).twins_applied, 40);
  WriteResult older = store.write(batch_at(4, 9));
  EXPECT_EQ(older.twins_applied, 0);
  EXPECT_EQ(older.twins_stale, 40);
  WriteResult same_seq = store.write(batch_at(5, 2));  // the higher version wins at the same seq
  EXPECT_EQ(same_seq.twins_applied, 40);
  WriteBatch expected = batch_at(5, 2);
  for (const core::Twin& t : expected.twins) EXPECT_EQ(store.get_twin(t.id), t) << t.id;
  // Repeated ids in one batch go one by one, in batch order.
  WriteBatch repeats = batch_at(6, 3);
  WriteBatch newer = batch_at(7, 4);
  repeats.twins.insert(repeats.twins.end(), newer.twins.begin(), newer.twins.end());
  WriteResult r = store.write(repeats);
  EXPECT_EQ(r.twins_applied, 80);
  EXPECT_EQ(store.get_twin("st\t3")->reported.seq, 7);
  TwinQuery q;
  q.filter = parse_filter(R"(health.model_version == "m\\1\"x" && reported.speed != 1)");
  q.limit = 100;
  EXPECT_EQ(store.list_twins(q).size(), 40U);
}

TEST(PostgresStore, ReconnectsAfterAnOutage) {
  // A server of its own: pausing the shared one would fail the other tests.
  fleettwin::testing::Service own(FLEETTWIN_SOURCE_DIR, "postgres");
  PostgresStore store(own.address());
  WriteBatch b;
  b.telemetry.push_back({message("r-1", 1, 1000), std::nullopt});
  ASSERT_EQ(store.write(b).telemetry_inserted, 1);
  const std::string script = std::string(FLEETTWIN_SOURCE_DIR) + "/scripts/services/postgres";
  ASSERT_EQ(fleettwin::testing::run(script, {"pause", own.address()}).exit_code, 0);
  b.telemetry.push_back({message("r-1", 2, 2000), std::nullopt});
  try {
    store.write(b);
    FAIL() << "wrote to a stopped server";
  } catch (const std::exception& e) {
    EXPECT_TRUE(store.transient_failure(e)) << e.what();
  }
  ASSERT_EQ(fleettwin::testing::run(script, {"resume", own.address()}).exit_code, 0);
  WriteResult r = store.write(b);  // the same batch again, as the sink retries it
  EXPECT_EQ(r.telemetry_inserted, 1);
  EXPECT_EQ(r.telemetry_duplicates, 1);
  EXPECT_EQ(store.history_stats().rows, 2);
}

TEST(PostgresStore, AnalyticsEqualSqlite) {
  const fleettwin::testing::TempDir dir("pg-eq");
  SqliteStore sqlite(SqliteStore::path_in(dir.path().string()));
  recreate_database("ft_equal");
  PostgresStore store(uri_of("ft_equal"));
  expect_same_analytics(store, sqlite);
}

}  // namespace
}  // namespace fleettwin::store
