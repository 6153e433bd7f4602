#include "store/sqlite/sqlite_schema.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <set>

namespace fleettwin::store {
namespace {

// Schema. Why telemetry is keyed by generation: measured with bench/store_bench (BM_Schema*, BM_Store*;
// 2 M rows of 24 columns into an empty file, batches of 5,000 interleaved over 10,000 cars, one transaction
// per batch, INSERT OR IGNORE, WAL + synchronous=NORMAL, 64 MiB cache) on the shared 2-core dev VM, where
// runs vary by +-15% with the other users' load:
//
//   candidate, 16 KiB pages                                  rows/s   history(car, from, to)
//   PRIMARY KEY (car TEXT, seq) WITHOUT ROWID                 17 k    range scan
//   rowid table + UNIQUE (car_id INT, ts, seq)                66 k *  index seek + a row lookup per row
//   PRIMARY KEY (ts, car_id, seq) + INDEX (car_id, ts)        61 k *  index seek + a row lookup per row
//   PRIMARY KEY (ts, car TEXT, seq), no car index            265 k    scans every car's rows in range
//   PRIMARY KEY (gen, car, ts, seq), 20,000-row generations  242 k    one seek per generation
//   (* still falling at 2 M rows: 150 k over the first 0.5 M)
//   this store: the last one plus the replay checks below,   230-280 k, and 1.5 ms for one car's 200 rows
//   64 KiB pages (4 KiB: 168 k; 16 KiB: 235 k)                          among 2 M (100 generations)
//
// A B-tree led by car, whether table or index, takes each row of a batch to a different leaf once it
// outgrows the cache's view of one page per car: every row then dirties a page of its own, written to the
// WAL at commit and again at checkpoint. Ordering by arrival keeps a batch on a few hundred pages but
// leaves history nothing to seek on. The chosen key does both: rows are grouped into generations of
// ~telemetry_generation_rows consecutive rows (telemetry_gens records each generation's row count and
// device-time range), and sorted by (car, ts, seq) inside one. A batch therefore only touches the current
// generation's pages (~20,000 rows, ~4 MB), and history(car, from, to) seeks (gen, car, ts) once in
// each generation whose time range overlaps [from, to): one B-tree seek per 20,000 fleet rows, never a scan
// of other cars' rows.
//
// Replays: a row repeats (car, ts, seq) exactly, since the device ts of a message does not change. In the
// open (last) generation the primary key refuses it (INSERT OR IGNORE). When a generation closes,
// telemetry_cars takes each car's highest seq in it (one INSERT ... SELECT ... GROUP BY per 20,000 rows,
// not a write per car per batch, which cost a third of the insert rate): a row whose seq is above its car's
// value cannot be in a closed generation, and one at or below it (a replay or a late message) is looked up
// in the generations whose time range contains its ts. A different message reusing a stored (car, seq)
// with another ts is stored; history_stats() counts (car, seq) pairs, so the exactness check sees it.
std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// The telemetry columns that are not signals. SQLite compares column names without case.
constexpr std::array<std::string_view, 8> kFixedColumns{"gen", "car", "ts",    "seq",
                                                        "lat", "lon", "score", "flags"};

std::string column_type(const catalog::SignalSpec& s) {
  // INTEGER affinity stores whole doubles as integers (smaller rows) and reads back the same double.
  // No NOT NULL on numbers: an absent reading (NaN) is stored as NULL.
  return s.type == core::SignalType::kDouble ? " REAL" : " INTEGER";
}

/// The quoted column of a signal's field: "\"coolant_temp\"". Fields are identifiers, so quoting is all it
/// needs.
std::string quoted(const std::string& field) { return "\"" + field + "\""; }

/// The signal columns of a new table: one per field.
std::string typed_signal_columns(const catalog::Catalog& catalog) {
  std::string out;
  for (const auto& s : catalog.signals()) out += ", " + quoted(s.field) + column_type(s);
  return out;
}

std::string column_list(const SignalColumns& columns, std::string_view prefix) {
  std::string out;
  for (const auto& c : columns) out += ", " + std::string(prefix) + c;
  return out;
}

/// A catalog whose fields are unique only by case, or that names a fixed column, cannot be a table.
void check_columns(const catalog::Catalog& catalog) {
  std::set<std::string> seen(kFixedColumns.begin(), kFixedColumns.end());
  for (const auto& s : catalog.signals()) {
    if (!seen.insert(lower(s.field)).second) {
      throw SqliteError(SQLITE_ERROR, "sqlite: signal \"" + s.name + "\" of catalog " + catalog.label() +
                                          ": column \"" + s.field + "\" is taken (column names ignore case)");
    }
  }
}

std::set<std::string> telemetry_columns(Db& db) {
  std::set<std::string> out;
  Stmt s(db.handle(), "SELECT name FROM pragma_table_info('telemetry')");
  while (s.step()) out.insert(lower(s.column_text(0)));
  return out;
}

std::string schema_sql(const catalog::Catalog& catalog) {
  return R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value ANY) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS telemetry(
  gen INTEGER NOT NULL, car TEXT NOT NULL, ts INTEGER NOT NULL, seq INTEGER NOT NULL,
  lat REAL, lon REAL)sql" +
         typed_signal_columns(catalog) + R"sql(, score REAL, flags TEXT,
  PRIMARY KEY(gen, car, ts, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS telemetry_gens(
  gen INTEGER PRIMARY KEY, rows INTEGER NOT NULL, min_ts INTEGER NOT NULL, max_ts INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS telemetry_gens_by_max_ts ON telemetry_gens(max_ts);
CREATE TABLE IF NOT EXISTS telemetry_cars(car TEXT PRIMARY KEY, max_seq INTEGER NOT NULL) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS twins(
  id TEXT PRIMARY KEY, version INTEGER NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL,
  status TEXT NOT NULL, online INTEGER NOT NULL, last_seen INTEGER NOT NULL,
  lat REAL, lon REAL, score REAL, rest BLOB NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS twins_by_status ON twins(status, id);
CREATE INDEX IF NOT EXISTS twins_by_last_seen ON twins(last_seen);

CREATE TABLE IF NOT EXISTS alerts(
  id TEXT PRIMARY KEY, car TEXT NOT NULL, kind TEXT NOT NULL, raised INTEGER NOT NULL, ts INTEGER NOT NULL,
  score REAL, threshold REAL, signals BLOB NOT NULL, model_version TEXT NOT NULL,
  acknowledged INTEGER NOT NULL, feedback TEXT NOT NULL DEFAULT '', feedback_note TEXT NOT NULL DEFAULT '',
  feedback_ts INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS alerts_by_car_ts ON alerts(car, ts);
CREATE INDEX IF NOT EXISTS alerts_by_ts ON alerts(ts);

CREATE TABLE IF NOT EXISTS commands(
  id TEXT PRIMARY KEY, car TEXT NOT NULL, name TEXT NOT NULL, params TEXT NOT NULL,
  created INTEGER NOT NULL, expires INTEGER NOT NULL, status TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS commands_by_car_created ON commands(car, created);

CREATE TABLE IF NOT EXISTS aggregates(
  aggregate TEXT NOT NULL, grp TEXT NOT NULL, window_start INTEGER NOT NULL, window_end INTEGER NOT NULL,
  revision INTEGER NOT NULL, final INTEGER NOT NULL, count INTEGER NOT NULL, vals BLOB NOT NULL,
  PRIMARY KEY(aggregate, grp, window_start)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS aggregates_by_window_start ON aggregates(window_start);
)sql";
}

/// Each signal's column: its field's when the table has it; else the column of one of its aliases the
/// table has (a signal renamed, its old name kept as an alias: its history reads on); else a new column of
/// its field, added here.
SignalColumns resolve_columns(Db& db, const catalog::Catalog& catalog) {
  std::set<std::string> have = telemetry_columns(db);
  if (!have.contains("flags")) db.exec("ALTER TABLE telemetry ADD COLUMN flags TEXT");
  std::set<std::string> taken;  // one column per signal, even if two signals' aliases name one column
  for (const auto& s : catalog.signals()) taken.insert(lower(s.field));
  SignalColumns out;
  for (const auto& s : catalog.signals()) {
    std::string column = s.field;
    if (!have.contains(lower(s.field))) {
      for (const auto& alias : s.aliases) {
        const std::string old = catalog::field_name(alias);
        if (have.contains(lower(old)) && taken.insert(lower(old)).second) {
          column = old;
          break;
        }
      }
    }
    if (!have.contains(lower(column))) {
      db.exec("ALTER TABLE telemetry ADD COLUMN " + quoted(column) + column_type(s));
      have.insert(lower(column));
    }
    out.push_back(quoted(column));
  }
  return out;
}

/// Operators' labels on alerts (issue 20): a database from before them gets the columns, empty.
void add_feedback_columns(Db& db) {
  std::set<std::string> have;
  Stmt s(db.handle(), "SELECT name FROM pragma_table_info('alerts')");
  while (s.step()) have.insert(lower(s.column_text(0)));
  if (have.contains("feedback")) return;
  db.exec(
      "ALTER TABLE alerts ADD COLUMN feedback TEXT NOT NULL DEFAULT '';"
      "ALTER TABLE alerts ADD COLUMN feedback_note TEXT NOT NULL DEFAULT '';"
      "ALTER TABLE alerts ADD COLUMN feedback_ts INTEGER NOT NULL DEFAULT 0;");
}

}  // namespace

SignalColumns prepare_schema(Db& db, const catalog::Catalog& catalog, const std::string& path) {
  check_columns(catalog);
  db.exec(schema_sql(catalog));
  db.exec("INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', " +
          std::to_string(kSchemaVersion) + ")");
  const int64_t version = db.query_int("SELECT value FROM meta WHERE key = 'schema_version'");
  if (version != kSchemaVersion && version != 2) {
    throw SqliteError(SQLITE_ERROR, "sqlite: " + path + " has schema version " + std::to_string(version) +
                                        ", this build reads 2 and " + std::to_string(kSchemaVersion));
  }
  SignalColumns columns = resolve_columns(db, catalog);
  add_feedback_columns(db);
  // Version 2 twin blobs (format 1) stay readable; new ones are written in format 2, which a version-2
  // build would refuse, hence the new version.
  if (version != kSchemaVersion) {
    db.exec("UPDATE meta SET value = " + std::to_string(kSchemaVersion) + " WHERE key = 'schema_version'");
  }
  return columns;
}

std::string insert_telemetry_sql(const SignalColumns& columns) {
  std::string sql = "INSERT OR IGNORE INTO telemetry(gen, car, ts, seq, lat, lon" + column_list(columns, "") +
                    ", score, flags) VALUES(?1, ?2, ?3, ?4, ?5, ?6";
  for (size_t i = 0; i < columns.size(); ++i) sql += ", ?" + std::to_string(7 + i);
  sql += ", ?" + std::to_string(7 + columns.size());
  sql += ", ?" + std::to_string(8 + columns.size()) + ")";
  return sql;
}

std::string history_sql(const SignalColumns& columns) {
  // CROSS JOIN fixes the loop order: the small generations table outside, one seek into telemetry inside.
  return "SELECT t.car, t.ts, t.seq, t.lat, t.lon" + column_list(columns, "t.") +
         ", t.score, t.flags FROM telemetry_gens AS g CROSS JOIN telemetry AS t"
         " ON t.gen = g.gen AND t.car = ?1 AND t.ts >= ?2 AND t.ts < ?3"
         " WHERE g.max_ts >= ?2 AND g.min_ts < ?3 ORDER BY t.ts, t.seq LIMIT ?4";
}

}  // namespace fleettwin::store
