#include "store/postgres/pg_schema.h"

#include <array>
#include <set>
#include <string_view>

#include "store/postgres/pg_sql.h"

namespace fleettwin::store {
namespace {

// Schema.
//
// telemetry is partitioned by RANGE on ts (device time, ms), one partition per UTC day (telemetry_d<day>),
// created on demand before a batch that needs it (create_partitions). Retention drops whole days:
// `DROP TABLE telemetry_d20454` frees a day at once, with none of the vacuum work a DELETE leaves behind.
// A primary key of a partitioned table must contain the partition key, so the key is (car, ts, seq), not
// (car, seq). That is still replay-safe: a replayed message repeats its (car, ts, seq) exactly (its device ts
// does not change), lands in the same partition and hits the same key, so INSERT ... ON CONFLICT DO NOTHING
// refuses it. A different message that reuses a stored (car, seq) with another ts is stored, and
// history_stats() counts (car, seq) pairs, so `up`'s exactness check sees it (the SQLite store does the
// same). Leading with car makes history(car, from, to) one index range scan per day it spans. A BRIN index
// on ts (rows arrive roughly in ts order; a few pages of summary per partition, next to no insert cost)
// serves the fleet-wide time-range counts of fleet_summary().
//
// Distribution by car: every unique key of telemetry and twins starts with the car (twins' key is its id,
// the car), so both can be hash-distributed by car and co-located: with Citus,
// create_distributed_table('twins', 'id') and create_distributed_table('telemetry', 'car',
// colocate_with => 'twins'); each batch's ON CONFLICT then resolves on the shard of its car, and a car's
// history query goes to one shard. alerts and commands are small and keyed by their own ids; they stay on
// the coordinator (or become reference tables).
//
// Text columns sort by bytes (COLLATE "C"), as the other stores compare ids and strings, whatever the
// database's locale. Signals are float8 whatever their catalog type: every value the platform holds is a
// double, and an integer signal reads back the same.
constexpr const char* kSchemaSql = R"sql(
CREATE TABLE IF NOT EXISTS fleettwin_meta(key text PRIMARY KEY, value text NOT NULL);

CREATE TABLE IF NOT EXISTS twins(
  id text COLLATE "C" PRIMARY KEY, version bigint NOT NULL, seq bigint NOT NULL, ts bigint NOT NULL,
  status text COLLATE "C" NOT NULL, online boolean NOT NULL, last_seen bigint NOT NULL,
  lat float8, lon float8, score float8, fields jsonb NOT NULL, rest bytea NOT NULL);
CREATE INDEX IF NOT EXISTS twins_by_status ON twins(status, id);
CREATE INDEX IF NOT EXISTS twins_by_last_seen ON twins(last_seen);

CREATE TABLE IF NOT EXISTS alerts(
  id text COLLATE "C" PRIMARY KEY, car text COLLATE "C" NOT NULL, kind text COLLATE "C" NOT NULL,
  raised boolean NOT NULL, ts bigint NOT NULL, score float8, threshold float8, signals bytea NOT NULL,
  model_version text NOT NULL, acknowledged boolean NOT NULL, feedback text NOT NULL DEFAULT '',
  feedback_note text NOT NULL DEFAULT '', feedback_ts bigint NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS alerts_by_car_ts ON alerts(car, ts);
CREATE INDEX IF NOT EXISTS alerts_by_ts ON alerts(ts);

CREATE TABLE IF NOT EXISTS commands(
  id text COLLATE "C" PRIMARY KEY, car text COLLATE "C" NOT NULL, name text NOT NULL, params text NOT NULL,
  created bigint NOT NULL, expires bigint NOT NULL, status text NOT NULL);
CREATE INDEX IF NOT EXISTS commands_by_car_created ON commands(car, created);
)sql";

// Window aggregates: key (aggregate, grp, window_start) serves one group's range and every group of an
// aggregate in the order the API reads them; window_start alone serves retention. Values are the SQL stores'
// shared blob (store/twin_blob.h), since the columns differ per aggregate. Created apart from the schema
// above (and by a database made before aggregates existed); a plain DELETE removes old windows, which are few
// next to the history (one row per window, not per message).
constexpr const char* kAggregatesSql = R"sql(
CREATE TABLE IF NOT EXISTS aggregates(
  aggregate text COLLATE "C" NOT NULL, grp text COLLATE "C" NOT NULL, window_start bigint NOT NULL,
  window_end bigint NOT NULL, revision bigint NOT NULL, final boolean NOT NULL, count bigint NOT NULL,
  vals bytea NOT NULL, PRIMARY KEY (aggregate, grp, window_start));
CREATE INDEX IF NOT EXISTS aggregates_by_window_start ON aggregates(window_start);
)sql";

/// Serializes schema changes and partition creation between the stores of one database.
constexpr const char* kSchemaLock = "SELECT pg_advisory_xact_lock(7061836912)";

/// PostgreSQL truncates longer identifiers (NAMEDATALEN - 1).
constexpr size_t kMaxIdentifier = 63;
constexpr std::array<std::string_view, 7> kFixedColumns{"car", "ts", "seq", "lat", "lon", "score", "flags"};

std::string telemetry_table_sql(const catalog::Catalog& catalog) {
  std::string sql =
      "CREATE TABLE IF NOT EXISTS telemetry(car text COLLATE \"C\" NOT NULL, ts bigint NOT NULL,"
      " seq bigint NOT NULL, lat float8, lon float8";
  for (const auto& s : catalog.signals()) sql += ", " + quote_ident(s.field) + " float8";
  // stored_ms: the server's clock when the row was inserted (ms since the epoch), so publish-to-stored
  // latency (stored_ms - ts for real cars) and ingest delay can be read from the store itself (`bench fleet`
  // does).
  return sql +
         ", score float8, flags text,"
         " stored_ms bigint NOT NULL DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::bigint,"
         " PRIMARY KEY (car, ts, seq)) PARTITION BY RANGE (ts)";
}

void check_columns(const catalog::Catalog& catalog) {
  std::set<std::string_view> seen(kFixedColumns.begin(), kFixedColumns.end());
  for (const auto& s : catalog.signals()) {
    if (s.field.size() > kMaxIdentifier) {
      throw PgError("postgres: signal \"" + s.name + "\" of catalog " + catalog.label() + ": column \"" +
                        s.field + "\" is longer than 63 bytes",
                    "", false);
    }
    if (!seen.insert(s.field).second) {
      throw PgError("postgres: signal \"" + s.name + "\" of catalog " + catalog.label() + ": column \"" +
                        s.field + "\" is taken",
                    "", false);
    }
  }
}

std::set<std::string> telemetry_columns(PgConnection& conn) {
  PgResult r = conn.exec(
      "SELECT column_name FROM information_schema.columns"
      " WHERE table_schema = current_schema() AND table_name = 'telemetry'");
  std::set<std::string> out;
  for (int i = 0; i < r.rows(); ++i) out.insert(r.str(i, 0));
  return out;
}

/// Each signal's column: its field's when the table has it; else the column of one of its aliases the table
/// has (a renamed signal: its history reads on); else a new column of its field, added here.
PgSignalColumns resolve_columns(PgConnection& conn, const catalog::Catalog& catalog) {
  std::set<std::string> have = telemetry_columns(conn);
  std::set<std::string> taken;  // one column per signal, even if two signals' aliases name one column
  for (const auto& s : catalog.signals()) taken.insert(s.field);
  PgSignalColumns out;
  for (const auto& s : catalog.signals()) {
    std::string column = s.field;
    if (!have.contains(s.field)) {
      for (const auto& alias : s.aliases) {
        const std::string old = catalog::field_name(alias);
        if (have.contains(old) && taken.insert(old).second) {
          column = old;
          break;
        }
      }
    }
    if (!have.contains(column)) {
      conn.exec("ALTER TABLE telemetry ADD COLUMN " + quote_ident(column) + " float8");
      have.insert(column);
    }
    out.push_back(quote_ident(column));
  }
  return out;
}

/// Operators' labels on alerts (issue 20): a database from before them gets the columns, empty. Checked
/// first: ALTER TABLE locks the table even when there is nothing to add.
void add_feedback_columns(PgConnection& conn) {
  PgResult r = conn.exec(
      "SELECT count(*) FROM information_schema.columns"
      " WHERE table_schema = current_schema() AND table_name = 'alerts' AND column_name = 'feedback'");
  if (r.i64(0, 0) > 0) return;
  conn.exec(
      "ALTER TABLE alerts ADD COLUMN feedback text NOT NULL DEFAULT '',"
      " ADD COLUMN feedback_note text NOT NULL DEFAULT '', ADD COLUMN feedback_ts bigint NOT NULL DEFAULT 0");
}

/// Runs `body` in a transaction under the schema lock.
template <typename F>
auto locked(PgConnection& conn, F&& body) {
  return in_transaction(conn, "BEGIN", [&] {
    conn.exec(kSchemaLock);
    return body();
  });
}

}  // namespace

PgSignalColumns prepare_pg_schema(PgConnection& conn, const catalog::Catalog& catalog) {
  check_columns(catalog);
  return locked(conn, [&] {
    // Only a database without the schema gets the CREATE ... IF NOT EXISTS statements: on the partitioned
    // telemetry table they lock every partition even when there is nothing to create, and deadlocked with
    // another store's inserts (a sink restarting beside a running one, `bench fleet --faults`).
    PgResult present = conn.exec(
        "SELECT to_regclass('fleettwin_meta') IS NOT NULL AND to_regclass('telemetry') IS NOT NULL");
    if (present.str(0, 0) != "t") {
      conn.exec(kSchemaSql);
      conn.exec(telemetry_table_sql(catalog));
      conn.exec("CREATE INDEX IF NOT EXISTS telemetry_by_ts ON telemetry USING brin (ts)");
      conn.exec("INSERT INTO fleettwin_meta(key, value) VALUES('schema_version', $1) ON CONFLICT DO NOTHING",
                PgParams().add(int64_t{kPgSchemaVersion}));
    }
    if (conn.exec("SELECT to_regclass('aggregates') IS NULL").str(0, 0) == "t") conn.exec(kAggregatesSql);
    PgResult v = conn.exec("SELECT value FROM fleettwin_meta WHERE key = 'schema_version'");
    if (v.rows() != 1 || v.text(0, 0) != std::to_string(kPgSchemaVersion)) {
      throw PgError("postgres: the database has schema version " + (v.rows() == 1 ? v.str(0, 0) : "?") +
                        ", this build reads " + std::to_string(kPgSchemaVersion),
                    "", false);
    }
    add_feedback_columns(conn);
    return resolve_columns(conn, catalog);
  });
}

void create_partitions(PgConnection& conn, const std::vector<int64_t>& days) {
  if (days.empty()) return;
  locked(conn, [&] {
    for (const int64_t day : days) conn.exec(create_partition_sql(day));
    return 0;
  });
}

int drop_partition(PgConnection& conn, const std::string& name) {
  // `name` comes from partition_name() of a day read back from the catalog: digits and 'm' only.
  return locked(conn, [&] {
    conn.exec("DROP TABLE IF EXISTS " + name);
    return 0;
  });
}

}  // namespace fleettwin::store
