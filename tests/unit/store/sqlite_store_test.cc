#include "store/sqlite/sqlite_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "store/sqlite/sqlite_db.h"
#include "support/temp_dir.h"
#include "unit/store/store_contract.h"

namespace fleettwin::store {
namespace {

/// A temporary directory holding one test's store file.
struct StoreDir : fleettwin::testing::TempDir {
  StoreDir() : TempDir("store-test") {}
  std::string db() const { return SqliteStore::path_in(path().string()); }
};

core::Telemetry telemetry(const std::string& car, int64_t seq, int64_t ts) {
  core::Telemetry t;
  t.car = car;
  t.seq = seq;
  t.ts = ts;
  t.lat = 48.1 + static_cast<double>(seq) * 1e-4;
  t.lon = 11.5 - static_cast<double>(seq) * 1e-4;
  for (size_t i = 0; i < core::kSignalCount; ++i) {
    bool is_int = core::kSignals[i].type == core::SignalType::kInt;
    t.values[i] = is_int ? static_cast<double>(30 + seq % 7) : 0.25 * static_cast<double>(i) + 1e-3 * seq;
  }
  return t;
}

TelemetryRow row(const std::string& car, int64_t seq, int64_t ts,
                 std::optional<double> score = std::nullopt) {
  return TelemetryRow{telemetry(car, seq, ts), score};
}

/// A twin with every field set to something other than its default.
core::Twin twin(const std::string& id, int64_t seq, int64_t version) {
  core::Twin t;
  t.id = id;
  t.version = version;
  t.reported = telemetry(id, seq, 1'700'000'000'000 + seq * 1000);
  t.has_reported = true;
  t.desired = {{"max_speed", "30"}, {"mode", "\"eco\""}};
  t.reported_settings = {{"mode", "\"eco\""}};
  for (size_t i = 0; i < core::kSignalCount; ++i) t.metadata[i] = t.reported.ts - static_cast<int64_t>(i);
  t.health.score = 0.125 + static_cast<double>(seq);
  t.health.threshold = 0.9;
  t.health.status = core::HealthStatus::kWarning;
  t.health.since = t.reported.ts - 5000;
  t.health.top_signals = {"coolant_temp", "engine_vibration_amplitude"};
  t.health.model_version = "ae-20250101";
  t.online = true;
  t.first_seen = 1'690'000'000'000;
  t.last_seen = t.reported.ts;
  t.messages = seq;
  t.distance_km = 12.5 * static_cast<double>(seq);
  return t;
}

core::Alert alert(const std::string& id, const std::string& car, int64_t ts, bool raised) {
  core::Alert a;
  a.id = id;
  a.car = car;
  a.kind = "anomaly";
  a.raised = raised;
  a.ts = ts;
  a.score = raised ? 3.5 : 0.2;
  a.threshold = 1.0;
  a.signals = {"coolant_temp", "speed"};
  a.model_version = "ae-1";
  return a;
}

core::Command command(const std::string& id, const std::string& car, int64_t created,
                      const std::string& status) {
  core::Command c;
  c.id = id;
  c.car = car;
  c.name = "set";
  c.params_json = R"({"max_speed":30})";
  c.created = created;
  c.expires = created + 60000;
  c.status = status;
  return c;
}

/// `cars` cars x `per_car` messages, interleaved by round as a fleet sends them.
std::vector<TelemetryRow> fleet_rows(int cars, int per_car, int64_t ts0 = 1'000'000) {
  std::vector<TelemetryRow> rows;
  for (int s = 1; s <= per_car; ++s) {
    for (int c = 0; c < cars; ++c) {
      rows.push_back(row("car-" + std::to_string(c), s, ts0 + s * 1000 + c,
                         c % 2 == 0 ? std::optional(0.1 * s) : std::nullopt));
    }
  }
  return rows;
}

WriteResult write_in_batches(TwinStore& store, const std::vector<TelemetryRow>& rows, size_t batch_size) {
  WriteResult total;
  for (size_t i = 0; i < rows.size(); i += batch_size) {
    WriteBatch b;
    b.telemetry.assign(rows.begin() + static_cast<std::ptrdiff_t>(i),
                       rows.begin() + static_cast<std::ptrdiff_t>(std::min(rows.size(), i + batch_size)));
    WriteResult r = store.write(b);
    total.telemetry_inserted += r.telemetry_inserted;
    total.telemetry_duplicates += r.telemetry_duplicates;
  }
  return total;
}

TEST(SqliteStore, TwinRoundTripsEveryField) {
  StoreDir dir;
  SqliteStore store(dir.db());
  core::Twin full = twin("car-1", 7, 3);
  core::Twin empty;  // defaults everywhere: empty maps, strings and lists
  empty.id = "car-2";
  WriteBatch b;
  b.twins = {full, empty};
  WriteResult r = store.write(b);
  EXPECT_EQ(r.twins_applied, 2);
  EXPECT_EQ(r.twins_stale, 0);
  EXPECT_EQ(store.get_twin("car-1"), full);
  EXPECT_EQ(store.get_twin("car-2"), empty);
  EXPECT_EQ(store.get_twin("car-3"), std::nullopt);
}

TEST(SqliteStore, ReplayingABatchChangesNothing) {
  StoreDir dir;
  SqliteStore store(dir.db());
  WriteBatch b;
  b.telemetry = fleet_rows(3, 50);
  b.twins = {twin("car-0", 50, 9), twin("car-1", 50, 9)};
  b.alerts = {alert("car-0:anomaly:1", "car-0", 1, true)};
  b.commands = {command("cmd-1", "car-0", 10, "pending")};

  WriteResult first = store.write(b);
  EXPECT_EQ(first.telemetry_inserted, 150);
  EXPECT_EQ(first.telemetry_duplicates, 0);
  EXPECT_EQ(first.twins_applied, 2);
  auto history_before = store.history("car-1", 0, INT64_MAX);
  ASSERT_EQ(history_before.size(), 50u);

  WriteResult second = store.write(b);
  EXPECT_EQ(second.telemetry_inserted, 0);
  EXPECT_EQ(second.telemetry_duplicates, 150);
  EXPECT_EQ(second.twins_applied, 0);
  EXPECT_EQ(second.twins_stale, 2);

  HistoryStats stats = store.history_stats();
  EXPECT_EQ(stats.rows, 150);
  EXPECT_EQ(stats.distinct, stats.rows);
  EXPECT_EQ(stats.cars, 3);
  EXPECT_EQ(stats.twins, 2);
  EXPECT_EQ(store.history("car-1", 0, INT64_MAX), history_before);
  EXPECT_EQ(store.get_twin("car-0"), b.twins[0]);
  EXPECT_EQ(store.alerts(), b.alerts);
  EXPECT_EQ(store.commands(), b.commands);
}

TEST(SqliteStore, ReplayIsFoundInOlderGenerationsAndAfterReopen) {
  StoreDir dir;
  SqliteOptions small;
  small.telemetry_generation_rows = 7;  // many generations, so replays must be found across them
  auto rows = fleet_rows(4, 30);
  {
    SqliteStore store(dir.db(), small);
    EXPECT_EQ(write_in_batches(store, rows, 5).telemetry_inserted, 120);
    // The same rows again, batched differently: each lands in a newer generation than its original.
    WriteResult again = write_in_batches(store, rows, 11);
    EXPECT_EQ(again.telemetry_inserted, 0);
    EXPECT_EQ(again.telemetry_duplicates, 120);
  }
  // The premise of this test: the rows really are spread over many generations.
  EXPECT_GE(Db(dir.db()).query_int("SELECT COUNT(*) FROM telemetry_gens WHERE rows > 0"), 10);
  SqliteStore reopened(dir.db(), small);  // cold cache: every max seq comes from telemetry_cars
  WriteResult after = write_in_batches(reopened, rows, 13);
  EXPECT_EQ(after.telemetry_inserted, 0);
  EXPECT_EQ(after.telemetry_duplicates, 120);
  HistoryStats stats = reopened.history_stats();
  EXPECT_EQ(stats.rows, 120);
  EXPECT_EQ(stats.distinct, 120);
}

TEST(SqliteStore, RetentionEmptiesGenerationsAndKeepsTheirBookkeeping) {
  StoreDir dir;
  SqliteOptions small;
  small.telemetry_generation_rows = 7;  // many generations: some emptied, one cut in the middle
  auto rows = fleet_rows(4, 30);        // ts 1,001,000 + s * 1000 + car
  SqliteStore store(dir.db(), small);
  EXPECT_EQ(write_in_batches(store, rows, 5).telemetry_inserted, 120);
  const int64_t cutoff = 1'000'000 + 15 * 1000 + 2;  // seq 1-14 of every car, seq 15 of car-0 and car-1
  const RetentionResult r = store.enforce_retention(cutoff);
  EXPECT_EQ(r.removed, 4 * 14 + 2);
  EXPECT_EQ(r.oldest_ms, cutoff);
  Db db(dir.db());
  // Emptied closed generations are gone from telemetry_gens; the others count and bound what they hold.
  EXPECT_EQ(db.query_int("SELECT COUNT(*) FROM telemetry_gens WHERE rows = 0 AND gen < (SELECT max(gen) FROM "
                         "telemetry_gens)"),
            0);
  EXPECT_EQ(db.query_int("SELECT COUNT(*) FROM telemetry_gens AS g WHERE rows != (SELECT COUNT(*) FROM "
                         "telemetry AS t WHERE t.gen = g.gen) OR min_ts > (SELECT min(ts) FROM telemetry AS "
                         "t WHERE t.gen = g.gen)"),
            0);
  EXPECT_EQ(db.query_int("SELECT min(ts) FROM telemetry"), cutoff);
  // Replays of the kept rows are still found, from this connection and a cold one; new rows go on.
  std::vector<TelemetryRow> kept(rows.begin() + 4 * 14 + 2, rows.end());
  EXPECT_EQ(write_in_batches(store, kept, 9).telemetry_duplicates, 62);
  SqliteStore reopened(dir.db(), small);
  EXPECT_EQ(write_in_batches(reopened, kept, 4).telemetry_duplicates, 62);
  EXPECT_EQ(write_in_batches(reopened, fleet_rows(4, 31), 50).telemetry_inserted, 4 + 58);
  EXPECT_EQ(reopened.enforce_retention(cutoff).removed, 58);  // the old rows replayed just now
}

TEST(SqliteStore, AggregatesRetentionDeletesInBoundedStatementsAndSurvivesReopen) {
  StoreDir dir;
  std::vector<AggregateRow> rows;
  for (int64_t i = 0; i < 12000; ++i) {
    rows.push_back(AggregateRow{"five_minutes",
                                "car-" + std::to_string(i % 3),
                                i * 300000,
                                (i + 1) * 300000,
                                1,
                                true,
                                i,
                                {{"count", static_cast<double>(i)}}});
  }
  {
    SqliteStore store(dir.db());
    store.upsert_aggregates(rows);
  }
  SqliteStore store(dir.db());
  EXPECT_EQ(store.aggregates({.aggregate = "five_minutes", .limit = 100000}).size(), 12000u);
  const int64_t cutoff = 11000 * int64_t{300000};  // more than one statement's 5,000 windows
  const RetentionResult r = store.enforce_aggregates_retention(cutoff);
  EXPECT_EQ(r.removed, 11000);
  EXPECT_EQ(r.oldest_ms, cutoff);
  EXPECT_FALSE(r.more);
  const auto kept = store.aggregates({.aggregate = "five_minutes", .group = "car-1"});
  ASSERT_FALSE(kept.empty());
  EXPECT_GE(kept.front().window_start_ms, cutoff);
  EXPECT_EQ(store.aggregates({.aggregate = "five_minutes"}).size(), 1000u);
}

TEST(SqliteStore, DuplicateInsideOneBatchIsCountedOnce) {
  StoreDir dir;
  SqliteStore store(dir.db());
  WriteBatch b;
  b.telemetry = {row("a", 1, 100), row("a", 2, 200), row("a", 1, 100), row("a", 2, 200)};
  WriteResult r = store.write(b);
  EXPECT_EQ(r.telemetry_inserted, 2);
  EXPECT_EQ(r.telemetry_duplicates, 2);
  EXPECT_EQ(store.history_stats().rows, 2);
}

TEST(SqliteStore, LateMessageBelowMaxSeqIsStored) {
  StoreDir dir;
  SqliteOptions o;
  o.telemetry_generation_rows = 1;
  SqliteStore store(dir.db(), o);
  WriteBatch b1;
  b1.telemetry = {row("a", 1, 100), row("a", 3, 300)};
  store.write(b1);
  WriteBatch b2;
  b2.telemetry = {row("a", 2, 200)};  // arrives after seq 3: not a replay, must be kept
  WriteResult r = store.write(b2);
  EXPECT_EQ(r.telemetry_inserted, 1);
  auto h = store.history("a", 0, 1000);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h[1].t.seq, 2);
  EXPECT_EQ(store.max_seq_per_car(), (std::vector<std::pair<std::string, int64_t>>{{"a", 3}}));
}

TEST(SqliteStore, WritesOfAnotherConnectionAreSeenAsDuplicates) {
  // A caches car a's max seq over the closed generations; B then closes a generation A never saw closed.
  // A's replay of that generation's rows must still be refused, which needs A to notice B's commit
  // (PRAGMA data_version) and drop its cache: A itself closes nothing here that would refresh it.
  StoreDir dir;
  SqliteOptions o;
  o.telemetry_generation_rows = 2;
  SqliteStore a(dir.db(), o);
  SqliteStore b(dir.db(), o);
  WriteBatch first;
  first.telemetry = {row("a", 1, 100), row("a", 2, 200)};  // generation 1, full; A caches "a: 0 closed"
  EXPECT_EQ(a.write(first).telemetry_inserted, 2);
  WriteBatch second;
  second.telemetry = {row("a", 3, 300)};  // B closes generation 1 and opens 2
  EXPECT_EQ(b.write(second).telemetry_inserted, 1);
  WriteResult replay = a.write(first);  // into generation 2, not full: A closes nothing
  EXPECT_EQ(replay.telemetry_inserted, 0);
  EXPECT_EQ(replay.telemetry_duplicates, 2);
  EXPECT_EQ(a.history_stats().rows, 3);
}

TEST(SqliteStore, OlderTwinIsRefused) {
  StoreDir dir;
  SqliteStore store(dir.db());
  WriteBatch newer;
  newer.twins = {twin("a", 10, 5)};
  store.write(newer);
  WriteBatch older;
  older.twins = {twin("a", 9, 6)};  // higher version but older seq: still stale
  WriteResult r = store.write(older);
  EXPECT_EQ(r.twins_applied, 0);
  EXPECT_EQ(r.twins_stale, 1);
  EXPECT_EQ(store.get_twin("a"), newer.twins[0]);
}

TEST(SqliteStore, SameSeqHigherVersionIsApplied) {
  StoreDir dir;
  SqliteStore store(dir.db());
  WriteBatch v5;
  v5.twins = {twin("a", 10, 5)};
  store.write(v5);

  core::Twin v6 = twin("a", 10, 6);
  v6.health.status = core::HealthStatus::kAnomaly;  // e.g. a score arrived for the same message
  v6.desired["fan"] = "\"on\"";
  WriteBatch b6;
  b6.twins = {v6};
  EXPECT_EQ(store.write(b6).twins_applied, 1);
  EXPECT_EQ(store.get_twin("a"), v6);

  WriteBatch b5_again = v5;  // same seq, lower version
  EXPECT_EQ(store.write(b5_again).twins_stale, 1);
  WriteBatch b6_again = b6;  // same seq, same version
  EXPECT_EQ(store.write(b6_again).twins_stale, 1);
  EXPECT_EQ(store.get_twin("a"), v6);

  WriteBatch newer;
  newer.twins = {twin("a", 11, 1)};  // newer seq wins even with a lower version
  EXPECT_EQ(store.write(newer).twins_applied, 1);
  EXPECT_EQ(store.get_twin("a")->reported.seq, 11);
}

TEST(SqliteStore, ListTwinsFiltersAndPages) {
  StoreDir dir;
  SqliteStore store(dir.db());
  WriteBatch b;
  for (int i = 0; i < 10; ++i) {
    core::Twin t = twin("car-" + std::to_string(i), 1, 1);
    t.health.status = i % 3 == 0 ? core::HealthStatus::kAnomaly : core::HealthStatus::kOk;
    t.online = i % 2 == 0;
    b.twins.push_back(t);
  }
  std::shuffle(b.twins.begin(), b.twins.end(), std::mt19937(7));
  store.write(b);

  TwinQuery anomaly;
  anomaly.status = core::HealthStatus::kAnomaly;
  EXPECT_EQ(twin_ids(store.list_twins(anomaly)),
            (std::vector<std::string>{"car-0", "car-3", "car-6", "car-9"}));
  TwinQuery online;
  online.online = true;
  EXPECT_EQ(twin_ids(store.list_twins(online)),
            (std::vector<std::string>{"car-0", "car-2", "car-4", "car-6", "car-8"}));
  TwinQuery both = anomaly;
  both.online = false;
  EXPECT_EQ(twin_ids(store.list_twins(both)), (std::vector<std::string>{"car-3", "car-9"}));
  TwinQuery warning;
  warning.status = core::HealthStatus::kWarning;
  EXPECT_TRUE(store.list_twins(warning).empty());

  // Paging by cursor visits every twin once, in id order.
  std::vector<std::string> paged;
  TwinQuery page;
  page.limit = 3;
  for (;;) {
    auto got = store.list_twins(page);
    EXPECT_LE(got.size(), 3u);
    if (got.empty()) break;
    for (const auto& t : got) paged.push_back(t.id);
    page.after_id = got.back().id;
  }
  std::vector<std::string> all;
  for (int i = 0; i < 10; ++i) all.push_back("car-" + std::to_string(i));
  EXPECT_EQ(paged, all);

  TwinQuery anomaly_page = anomaly;
  anomaly_page.after_id = "car-3";
  anomaly_page.limit = 1;
  EXPECT_EQ(twin_ids(store.list_twins(anomaly_page)), (std::vector<std::string>{"car-6"}));
  // Whole rows come back, not just ids.
  auto listed = store.list_twins(TwinQuery{});
  ASSERT_EQ(listed.size(), 10u);
  EXPECT_EQ(listed[0], store.get_twin("car-0"));
}

TEST(SqliteStore, HistoryIsTheRangeOfOneCarOldestFirst) {
  StoreDir dir;
  SqliteOptions o;
  o.telemetry_generation_rows = 4;  // spread the car over many generations
  SqliteStore store(dir.db(), o);
  std::vector<TelemetryRow> rows;
  for (int64_t s = 1; s <= 40; ++s) {
    rows.push_back(row("a", s, 1000 * s, s % 3 == 0 ? std::optional(0.5 * s) : std::nullopt));
    rows.push_back(row("b", s, 1000 * s + 1));
  }
  std::shuffle(rows.begin(), rows.end(), std::mt19937(3));  // arrival order must not matter
  write_in_batches(store, rows, 6);
  ASSERT_GE(Db(dir.db()).query_int("SELECT COUNT(DISTINCT gen) FROM telemetry WHERE car = 'a'"), 5);

  auto h = store.history("a", 5000, 15000);  // [5000, 15000): seq 5..14
  ASSERT_EQ(h.size(), 10u);
  for (size_t i = 0; i < h.size(); ++i) {
    int64_t s = 5 + static_cast<int64_t>(i);
    EXPECT_EQ(h[i], row("a", s, 1000 * s, s % 3 == 0 ? std::optional(0.5 * s) : std::nullopt)) << s;
  }
  auto limited = store.history("a", 0, INT64_MAX, 3);
  ASSERT_EQ(limited.size(), 3u);
  EXPECT_EQ(limited[0].t.seq, 1);
  EXPECT_EQ(limited[2].t.seq, 3);
  EXPECT_EQ(store.history("a", 0, INT64_MAX).size(), 40u);
  EXPECT_TRUE(store.history("a", 41000, 50000).empty());
  EXPECT_TRUE(store.history("a", 9000, 9000).empty());
  EXPECT_TRUE(store.history("nobody", 0, INT64_MAX).empty());
}

TEST(SqliteStore, AlertsUpsertByIdNewestFirst) {
  StoreDir dir;
  SqliteStore store(dir.db());
  core::Alert raised = alert("a:anomaly:100", "a", 100, true);
  core::Alert other = alert("b:anomaly:150", "b", 150, true);
  WriteBatch b1;
  b1.alerts = {raised, other};
  store.write(b1);

  core::Alert cleared = alert("a:anomaly:100", "a", 200, false);
  WriteBatch b2;
  b2.alerts = {cleared};
  store.write(b2);
  EXPECT_EQ(store.alerts("a"), std::vector<core::Alert>{cleared});

  WriteBatch replayed_raise;  // an older state must not undo the clear
  replayed_raise.alerts = {raised};
  store.write(replayed_raise);
  EXPECT_EQ(store.alerts("a"), std::vector<core::Alert>{cleared});

  core::Alert acked = cleared;
  acked.acknowledged = true;
  WriteBatch ack;
  ack.alerts = {acked};
  store.write(ack);
  store.write(b2);  // the unacknowledged clear replayed: the acknowledgement stays
  EXPECT_EQ(store.alerts("a"), std::vector<core::Alert>{acked});

  EXPECT_EQ(store.alerts(), (std::vector<core::Alert>{acked, other}));  // newest first
  EXPECT_EQ(store.alerts("", 1), std::vector<core::Alert>{acked});
  EXPECT_TRUE(store.alerts("c").empty());
}

TEST(SqliteStore, CommandsFollowTheirLifecycle) {
  StoreDir dir;
  SqliteStore store(dir.db());
  WriteBatch pending;
  pending.commands = {command("c1", "a", 100, "pending"), command("c2", "a", 200, "pending")};
  store.write(pending);
  WriteBatch acked;
  acked.commands = {command("c1", "a", 100, "acked")};
  store.write(acked);
  store.write(pending);  // replayed earlier state
  WriteBatch expired;
  expired.commands = {command("c1", "a", 100, "expired")};
  store.write(expired);  // a late final state does not replace the first
  auto got = store.commands("a");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], command("c2", "a", 200, "pending"));
  EXPECT_EQ(got[1], command("c1", "a", 100, "acked"));
}

TEST(SqliteStore, FailedBatchLeavesNothing) {
  StoreDir dir;
  SqliteStore store(dir.db());
  {
    // A trigger makes the batch's last statement fail, after its telemetry and twins were written.
    Db raw(dir.db());
    raw.exec(
        "CREATE TRIGGER fail_boom BEFORE INSERT ON alerts WHEN NEW.id = 'boom'"
        " BEGIN SELECT RAISE(ABORT, 'boom refused'); END");
  }
  WriteBatch b;
  b.telemetry = fleet_rows(5, 10);
  b.twins = {twin("car-0", 10, 1)};
  b.alerts = {alert("ok", "car-0", 1, true), alert("boom", "car-0", 2, true)};
  EXPECT_THROW(store.write(b), SqliteError);

  HistoryStats stats = store.history_stats();
  EXPECT_EQ(stats.rows, 0);
  EXPECT_EQ(stats.twins, 0);
  EXPECT_EQ(store.get_twin("car-0"), std::nullopt);
  EXPECT_TRUE(store.alerts().empty());
  EXPECT_TRUE(store.max_seq_per_car().empty());

  // The same store keeps working, and nothing of the failed batch counts as already written.
  b.alerts.pop_back();
  WriteResult r = store.write(b);
  EXPECT_EQ(r.telemetry_inserted, 50);
  EXPECT_EQ(r.twins_applied, 1);
  EXPECT_EQ(store.history_stats().rows, 50);
}

TEST(SqliteStore, ReaderSeesABatchWholeOrNotAtAll) {
  StoreDir dir;
  SqliteStore writer(dir.db());
  SqliteStore reader(dir.db());
  Db raw(dir.db());
  WriteBatch b;
  b.telemetry = fleet_rows(10, 20);
  // Hold a read snapshot open on a third connection across the write: it must not see any of it.
  raw.exec("BEGIN");
  EXPECT_EQ(raw.query_int("SELECT COUNT(*) FROM telemetry"), 0);
  writer.write(b);
  EXPECT_EQ(raw.query_int("SELECT COUNT(*) FROM telemetry"), 0);
  raw.exec("COMMIT");
  EXPECT_EQ(raw.query_int("SELECT COUNT(*) FROM telemetry"), 200);
  EXPECT_EQ(reader.history_stats().rows, 200);
}

TEST(SqliteStore, ReopenKeepsEverything) {
  StoreDir dir;
  WriteBatch b;
  b.telemetry = fleet_rows(3, 5);
  b.twins = {twin("car-1", 5, 2)};
  b.alerts = {alert("x", "car-1", 5, true)};
  b.commands = {command("c", "car-1", 5, "delivered")};
  std::vector<TelemetryRow> history;
  {
    SqliteStore store(dir.db());
    store.write(b);
    history = store.history("car-2", 0, INT64_MAX);
  }
  SqliteStore store(dir.db());
  EXPECT_EQ(store.get_twin("car-1"), b.twins[0]);
  EXPECT_EQ(store.history("car-2", 0, INT64_MAX), history);
  EXPECT_EQ(history.size(), 5u);
  EXPECT_EQ(store.alerts(), b.alerts);
  EXPECT_EQ(store.commands(), b.commands);
  HistoryStats stats = store.history_stats();
  EXPECT_EQ(stats.rows, 15);
  EXPECT_EQ(stats.cars, 3);
  EXPECT_EQ(stats.twins, 1);
}

TEST(SqliteStore, MaxSeqPerCar) {
  StoreDir dir;
  SqliteStore store(dir.db());
  EXPECT_TRUE(store.max_seq_per_car().empty());
  WriteBatch b;
  b.telemetry = {row("b", 7, 700), row("a", 3, 300), row("b", 9, 900), row("c", 1, 100), row("b", 8, 800)};
  store.write(b);
  WriteBatch late;
  late.telemetry = {row("a", 2, 200), row("c", 4, 400)};
  store.write(late);
  EXPECT_EQ(store.max_seq_per_car(),
            (std::vector<std::pair<std::string, int64_t>>{{"a", 3}, {"b", 9}, {"c", 4}}));
}

TEST(SqliteStore, HistoryStatsSeesADuplicateSeq) {
  // The exactness check must be able to fail: a second message with a stored (car, seq) but another ts
  // is a different message to the store, and history_stats shows the pair twice.
  StoreDir dir;
  SqliteStore store(dir.db());
  WriteBatch b;
  b.telemetry = {row("a", 1, 100), row("a", 2, 200), row("a", 1, 150)};
  store.write(b);
  HistoryStats stats = store.history_stats();
  EXPECT_EQ(stats.rows, 3);
  EXPECT_EQ(stats.distinct, 2);
  EXPECT_EQ(stats.cars, 1);
}

TEST(SqliteStore, RefusesAnotherSchemaVersion) {
  StoreDir dir;
  { SqliteStore store(dir.db()); }
  {
    Db raw(dir.db());
    raw.exec("UPDATE meta SET value = 999 WHERE key = 'schema_version'");
  }
  EXPECT_THROW(SqliteStore store(dir.db()), SqliteError);
}

TEST(SqliteStore, ADatabaseFromBeforeFeedbackGetsItsColumnsOnOpen) {
  StoreDir dir;
  const core::Alert raised = alert("a:anomaly:100", "a", 100, true);
  {
    SqliteStore store(dir.db());
    WriteBatch b;
    b.alerts = {raised};
    store.write(b);
  }
  {
    // The alerts table as builds before operator feedback made it.
    Db raw(dir.db());
    raw.exec(
        "ALTER TABLE alerts DROP COLUMN feedback; ALTER TABLE alerts DROP COLUMN feedback_note;"
        "ALTER TABLE alerts DROP COLUMN feedback_ts;");
  }
  SqliteStore store(dir.db());
  EXPECT_EQ(store.get_alert(raised.id), raised);
  ASSERT_TRUE(store.set_alert_feedback(raised.id, core::kFeedbackConfirmed, "", 5));
  EXPECT_EQ(store.get_alert(raised.id)->feedback, core::kFeedbackConfirmed);
}

TEST(SqliteStore, NanValuesAreStoredNotRefused) {
  // SQLite turns a bound NaN into NULL; the store must keep the batch (a refused batch would be retried
  // forever) and give the NaN back.
  StoreDir dir;
  SqliteStore store(dir.db());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  WriteBatch b;
  TelemetryRow r = row("a", 1, 100, nan);
  r.t.values[core::kSpeed] = nan;
  r.t.values[core::kTirePressure11] = nan;  // an INTEGER column
  b.telemetry = {r};
  core::Twin t = twin("a", 1, 1);
  t.health.score = nan;
  t.reported.lat = nan;
  b.twins = {t};
  core::Alert al = alert("x", "a", 1, true);
  al.score = nan;
  b.alerts = {al};
  WriteResult res = store.write(b);
  EXPECT_EQ(res.telemetry_inserted, 1);
  EXPECT_EQ(res.twins_applied, 1);

  auto h = store.history("a", 0, 1000);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_TRUE(std::isnan(h[0].t.values[core::kSpeed]));
  EXPECT_TRUE(std::isnan(h[0].t.values[core::kTirePressure11]));
  EXPECT_EQ(h[0].t.values[core::kCoolantTemp], r.t.values[core::kCoolantTemp]);
  EXPECT_FALSE(h[0].score.has_value());  // a NaN score is "no score"
  auto got = store.get_twin("a");
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(std::isnan(got->health.score));
  EXPECT_TRUE(std::isnan(got->reported.lat));
  EXPECT_EQ(got->reported.lon, t.reported.lon);
  ASSERT_EQ(store.alerts().size(), 1u);
  EXPECT_TRUE(std::isnan(store.alerts()[0].score));
}

TEST(SqliteStore, EmptyBatchAndLimits) {
  StoreDir dir;
  SqliteStore store(dir.db());
  WriteResult r = store.write(WriteBatch{});
  EXPECT_EQ(r.telemetry_inserted + r.telemetry_duplicates + r.twins_applied + r.twins_stale, 0);
  WriteBatch b;
  b.twins = {twin("a", 1, 1)};
  store.write(b);
  TwinQuery none;
  none.limit = 0;
  EXPECT_TRUE(store.list_twins(none).empty());
  EXPECT_EQ(store.list_twins(TwinQuery{}).size(), 1u);
}

}  // namespace
}  // namespace fleettwin::store
