#include "store/sqlite/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <stdexcept>

#include "store/filter_sql.h"
#include "store/sql_rows.h"
#include "store/sqlite/sqlite_filter.h"
#include "store/sqlite/sqlite_schema.h"
#include "store/twin_blob.h"

namespace fleettwin::store {
namespace {

constexpr const char* kTwinColumns = kTwinRowColumns;

// The guard of DESIGN.md §4: an update older than the stored reported.seq never overwrites newer state; at
// the same seq the higher version wins. changes() is 0 when the WHERE refuses the update.
constexpr const char* kUpsertTwinSql =
    "INSERT INTO twins(id, version, seq, ts, status, online, last_seen, lat, lon, score, rest)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
    " ON CONFLICT(id) DO UPDATE SET version = excluded.version, seq = excluded.seq, ts = excluded.ts,"
    " status = excluded.status, online = excluded.online, last_seen = excluded.last_seen, lat = excluded.lat,"
    " lon = excluded.lon, score = excluded.score, rest = excluded.rest"
    " WHERE excluded.seq > twins.seq OR (excluded.seq = twins.seq AND excluded.version > twins.version)";

// An alert id names one raise; its later states are a clear (same id, later ts, raised = 0) and an operator
// acknowledgement. A replayed older state must not undo a newer one: the fields follow the later (ts,
// cleared-after-raised) state, and acknowledged, once set, stays set.
constexpr const char* kUpsertAlertSql =
    "INSERT INTO alerts(id, car, kind, raised, ts, score, threshold, signals, model_version, acknowledged)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    " ON CONFLICT(id) DO UPDATE SET"
    " car = iif(N, excluded.car, alerts.car), kind = iif(N, excluded.kind, alerts.kind),"
    " raised = iif(N, excluded.raised, alerts.raised), ts = iif(N, excluded.ts, alerts.ts),"
    " score = iif(N, excluded.score, alerts.score), threshold = iif(N, excluded.threshold, alerts.threshold),"
    " signals = iif(N, excluded.signals, alerts.signals),"
    " model_version = iif(N, excluded.model_version, alerts.model_version),"
    " acknowledged = max(alerts.acknowledged, excluded.acknowledged)";
constexpr const char* kAlertNewer =
    "(excluded.ts > alerts.ts OR (excluded.ts = alerts.ts AND excluded.raised <= alerts.raised))";

std::string upsert_alert_sql() {
  std::string sql = kUpsertAlertSql;
  for (size_t at = sql.find("(N,"); at != std::string::npos; at = sql.find("(N,", at)) {
    sql.replace(at + 1, 1, kAlertNewer);
  }
  return sql;
}

// A command moves pending -> delivered -> acked | failed | expired. A replayed earlier state is refused;
// the first final state stays (an ack is not undone by a late "expired").
constexpr const char* kUpsertCommandSql =
    "INSERT INTO commands(id, car, name, params, created, expires, status) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    " ON CONFLICT(id) DO UPDATE SET car = excluded.car, name = excluded.name, params = excluded.params,"
    " created = excluded.created, expires = excluded.expires, status = excluded.status"
    " WHERE excluded.status = commands.status OR"
    " (CASE excluded.status WHEN 'delivered' THEN 1 WHEN 'acked' THEN 2 WHEN 'failed' THEN 2"
    "  WHEN 'expired' THEN 2 ELSE 0 END) >"
    " (CASE commands.status WHEN 'delivered' THEN 1 WHEN 'acked' THEN 2 WHEN 'failed' THEN 2"
    "  WHEN 'expired' THEN 2 ELSE 0 END)";

constexpr const char* kAlertColumns = kAlertRowColumns;
constexpr const char* kCommandColumns = kCommandRowColumns;

/// The current row of a stepped statement, as ColumnReader (sql_rows.h) reads it.
struct StmtRow {
  const Stmt& s;
  std::string text(int k) const { return s.column_text(k); }
  int64_t i64(int k) const { return s.column_int(k); }
  double real(int k) const { return s.column_real(k); }
  bool boolean(int k) const { return s.column_int(k) != 0; }
  std::string_view blob(int k) const { return s.column_blob(k); }
};

core::Twin read_twin(const Stmt& s, const catalog::Catalog& catalog) {
  return read_twin_row(StmtRow{s}, catalog);
}
core::Alert read_alert(const Stmt& s) { return read_alert_row(StmtRow{s}); }
core::Command read_command(const Stmt& s) { return read_command_row(StmtRow{s}); }

/// Rolls back an open transaction unless commit() was reached, so an exception leaves nothing behind.
class Transaction {
 public:
  Transaction(Stmt& begin, Stmt& commit, Stmt& rollback) : _commit(commit), _rollback(rollback) {
    StmtScope scope(begin);
    begin.run();
  }
  ~Transaction() {
    if (_open) {
      try {
        _rollback.run();
      } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor must not throw
        // SQLite has already rolled back when the failure was fatal (e.g. disk full); nothing left to undo.
      }
      _rollback.reset();
    }
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit() {
    StmtScope scope(_commit);
    _commit.run();
    _open = false;
  }

 private:
  Stmt& _commit;
  Stmt& _rollback;
  bool _open = true;
};

/// The rows of `all` (every car's), or of `of_car` (car bound to ?2) when `car` is not empty, each read by
/// `read`: the statements take the limit as ?1.
template <typename T>
std::vector<T> rows_of_car(Stmt& all, Stmt& of_car, const std::string& car, int64_t limit,
                           T (*read)(const Stmt&)) {
  std::vector<T> out;
  if (limit <= 0) return out;
  Stmt& s = car.empty() ? all : of_car;
  StmtScope scope(s);
  s.bind(1, limit);
  if (!car.empty()) s.bind(2, std::string_view(car));
  while (s.step()) out.push_back(read(s));
  return out;
}

}  // namespace

/// Every statement the store runs, prepared once per connection.
struct SqliteStore::Statements {
  Statements(sqlite3* db, const SignalColumns& columns)
      : begin_write(db, "BEGIN IMMEDIATE"),
        begin_read(db, "BEGIN"),
        commit(db, "COMMIT"),
        rollback(db, "ROLLBACK"),
        data_version(db, "PRAGMA data_version"),
        current_gen(db, "SELECT gen, rows FROM telemetry_gens ORDER BY gen DESC LIMIT 1"),
        upsert_gen(db,
                   "INSERT INTO telemetry_gens(gen, rows, min_ts, max_ts) VALUES(?1, ?2, ?3, ?4)"
                   " ON CONFLICT(gen) DO UPDATE SET rows = rows + excluded.rows,"
                   " min_ts = min(min_ts, excluded.min_ts), max_ts = max(max_ts, excluded.max_ts)"),
        car_max_seq(db, "SELECT max_seq FROM telemetry_cars WHERE car = ?1"),
        close_gen(db,
                  "INSERT INTO telemetry_cars(car, max_seq)"
                  " SELECT car, max(seq) FROM telemetry WHERE gen = ?1 GROUP BY car"
                  " ON CONFLICT(car) DO UPDATE SET max_seq = max(max_seq, excluded.max_seq)"
                  " RETURNING car, max_seq"),
        telemetry_exists(db,
                         "SELECT 1 FROM telemetry_gens AS g CROSS JOIN telemetry AS t"
                         " ON t.gen = g.gen AND t.car = ?1 AND t.ts = ?2 AND t.seq = ?3"
                         " WHERE g.max_ts >= ?2 AND g.min_ts <= ?2 LIMIT 1"),
        insert_telemetry(db, insert_telemetry_sql(columns)),
        history(db, history_sql(columns)),
        // Closed generations are summed up in telemetry_cars; the open one is read directly.
        max_seq_per_car(db,
                        "SELECT car, max(m) FROM (SELECT car, max_seq AS m FROM telemetry_cars UNION ALL"
                        " SELECT car, max(seq) AS m FROM telemetry"
                        " WHERE gen = (SELECT max(gen) FROM telemetry_gens) GROUP BY car)"
                        " GROUP BY car ORDER BY car"),
        stats_rows(db, "SELECT COUNT(*) FROM telemetry"),
        stats_distinct(db, "SELECT COUNT(*) FROM (SELECT DISTINCT car, seq FROM telemetry)"),
        stats_cars(db, "SELECT COUNT(DISTINCT car) FROM telemetry"),
        stats_twins(db, "SELECT COUNT(*) FROM twins"),
        upsert_twin(db, kUpsertTwinSql),
        get_twin(db, std::string("SELECT ") + kTwinColumns + " FROM twins WHERE id = ?1"),
        upsert_alert(db, upsert_alert_sql()),
        alerts_all(
            db, std::string("SELECT ") + kAlertColumns + " FROM alerts ORDER BY ts DESC, id DESC LIMIT ?1"),
        alerts_car(db, std::string("SELECT ") + kAlertColumns +
                           " FROM alerts WHERE car = ?2 ORDER BY ts DESC, id DESC LIMIT ?1"),
        upsert_command(db, kUpsertCommandSql),
        commands_all(db, std::string("SELECT ") + kCommandColumns +
                             " FROM commands ORDER BY created DESC, id DESC LIMIT ?1"),
        commands_car(db, std::string("SELECT ") + kCommandColumns +
                             " FROM commands WHERE car = ?2 ORDER BY created DESC, id DESC LIMIT ?1") {
    // One statement per filter combination, so each one gets the plan for its filter: with a status the
    // (status, id) index both filters and orders; without, the primary key orders.
    for (int mask = 0; mask < 4; ++mask) {
      std::string sql = std::string("SELECT ") + kTwinColumns + " FROM twins WHERE id > ?1";
      if ((mask & 1) != 0) sql += " AND status = ?3";
      if ((mask & 2) != 0) sql += " AND online = ?4";
      sql += " ORDER BY id LIMIT ?2";
      list_twins[mask] = Stmt(db, sql);
    }
  }

  Stmt begin_write, begin_read, commit, rollback, data_version;
  Stmt current_gen, upsert_gen, car_max_seq, close_gen, telemetry_exists, insert_telemetry, history;
  Stmt max_seq_per_car, stats_rows, stats_distinct, stats_cars, stats_twins;
  Stmt upsert_twin, get_twin;
  std::array<Stmt, 4> list_twins;
  Stmt upsert_alert, alerts_all, alerts_car;
  Stmt upsert_command, commands_all, commands_car;
};

SqliteStore::SqliteStore(const std::string& path, SqliteOptions options,
                         std::shared_ptr<const catalog::Catalog> catalog)
    : _catalog(catalog ? std::move(catalog) : catalog::builtin()),
      _path(path),
      _generation_rows(std::max<int64_t>(1, options.telemetry_generation_rows)),
      _db(path) {
  open(options);
}

SqliteStore::~SqliteStore() = default;

std::string SqliteStore::path_in(const std::string& data_dir) { return data_dir + "/fleettwin.db"; }

void SqliteStore::open(const SqliteOptions& o) {
  sqlite3_busy_timeout(_db.handle(), static_cast<int>(o.busy_timeout_ms));
  // page_size only takes effect before the file's first write, so it must precede journal_mode.
  _db.exec("PRAGMA page_size = " + std::to_string(o.page_size));
  {
    Stmt mode(_db.handle(), "PRAGMA journal_mode = WAL");
    std::string got = mode.step() ? mode.column_text(0) : "";
    if (got != "wal")
      throw SqliteError(SQLITE_ERROR, "sqlite: cannot enable WAL on " + _path + " (" + got + ")");
  }
  // NORMAL in WAL mode: a commit survives a process crash; only an OS crash or power loss may lose the
  // last commits, never corrupt the file. The sink's log offsets then replay what was lost.
  _db.exec("PRAGMA synchronous = NORMAL");
  _db.exec("PRAGMA cache_size = -" + std::to_string(o.cache_size_kib));
  _db.exec("PRAGMA temp_store = MEMORY");
  // Checkpoints leave the WAL file at its high-water mark; this trims it back afterwards.
  _db.exec("PRAGMA journal_size_limit = 67108864");

  _db.exec("BEGIN IMMEDIATE");
  try {
    _columns = prepare_schema(_db, *_catalog, _path);
    _db.exec("COMMIT");
  } catch (...) {
    _db.exec("ROLLBACK");
    throw;
  }
  register_twin_field_function(_db.handle(), _catalog.get());
  _st = std::make_unique<Statements>(_db.handle(), _columns);
}

WriteResult SqliteStore::write(const WriteBatch& batch) {
  WriteResult result;
  if (batch.telemetry.empty() && batch.twins.empty() && batch.alerts.empty() && batch.commands.empty()) {
    return result;
  }
  try {
    Transaction tx(_st->begin_write, _st->commit, _st->rollback);
    {
      // Under the write lock no one else can commit, so this tells exactly whether another connection
      // wrote since this one last did, which would make _max_seq stale.
      StmtScope scope(_st->data_version);
      _st->data_version.step();
      int64_t version = _st->data_version.column_int(0);
      if (version != _data_version) {
        _max_seq.clear();
        _data_version = version;
      }
    }
    write_telemetry(batch.telemetry, result);
    write_twins(batch.twins, result);
    write_alerts(batch.alerts);
    write_commands(batch.commands);
    tx.commit();
  } catch (...) {
    // The cache may hold maxima from a generation close that was just rolled back; start again from the file.
    _max_seq.clear();
    _data_version = -1;
    throw;
  }
  return result;
}

int64_t SqliteStore::closed_max_seq(const std::string& car) {
  if (const int64_t* known = _max_seq.find(car)) return *known;
  Stmt& s = _st->car_max_seq;
  StmtScope scope(s);
  s.bind(1, std::string_view(car));
  int64_t max_seq = s.step() ? s.column_int(0) : 0;
  _max_seq.set(car, max_seq);
  return max_seq;
}

int64_t SqliteStore::open_generation() {
  int64_t gen = 0;
  int64_t rows = 0;
  {
    Stmt& s = _st->current_gen;
    StmtScope scope(s);
    if (s.step()) {
      gen = s.column_int(0);
      rows = s.column_int(1);
    }
  }
  if (gen > 0 && rows < _generation_rows) return gen;
  if (gen > 0) {
    // Closing: fold the generation's per-car maxima into telemetry_cars, and the cache, in one statement.
    // From here on no row enters it, so the maxima stay true.
    Stmt& s = _st->close_gen;
    StmtScope scope(s);
    s.bind(1, gen);
    while (s.step()) _max_seq.set(s.column_text(0), s.column_int(1));
  }
  // Registered now, even if this batch turns out to hold only duplicates, so that every generation but
  // the last is always a closed one (max_seq_per_car relies on it). An empty range matches no query.
  Stmt& s = _st->upsert_gen;
  StmtScope scope(s);
  s.bind(1, gen + 1).bind(2, int64_t{0}).bind(3, INT64_MAX).bind(4, INT64_MIN).run();
  return gen + 1;
}

bool SqliteStore::telemetry_exists(const core::Telemetry& t) {
  Stmt& s = _st->telemetry_exists;
  StmtScope scope(s);
  s.bind(1, std::string_view(t.car)).bind(2, t.ts).bind(3, t.seq);
  return s.step();
}

void SqliteStore::write_telemetry(const std::vector<TelemetryRow>& rows, WriteResult& result) {
  if (rows.empty()) return;
  int64_t gen = open_generation();
  int64_t inserted = 0;
  int64_t min_ts = INT64_MAX;
  int64_t max_ts = INT64_MIN;
  Stmt& ins = _st->insert_telemetry;
  const catalog::Catalog& c = *_catalog;
  const std::size_t signals = c.size();
  std::string flags;
  // Insert in key order (car, ts, seq): consecutive rows then land on the same or the next B-tree page of the
  // open generation instead of a random one, which keeps the cursor's pages hot.
  _order.resize(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) _order[i] = static_cast<uint32_t>(i);
  std::sort(_order.begin(), _order.end(), [&](uint32_t a, uint32_t b) {
    const auto& x = rows[a].t;
    const auto& y = rows[b].t;
    if (const int c = x.car.compare(y.car); c != 0) return c < 0;
    return std::pair(x.ts, x.seq) < std::pair(y.ts, y.seq);
  });
  for (const uint32_t index : _order) {
    const TelemetryRow& row = rows[index];
    const core::Telemetry& t = row.t;
    // seq strictly increases per car, so a seq above every closed generation's maximum can only be in the
    // open one, where the primary key refuses a repeat. Only a seq at or below it (a replay, or a late
    // message) needs the lookup across generations.
    if (t.seq <= closed_max_seq(t.car) && telemetry_exists(t)) {
      ++result.telemetry_duplicates;
      continue;
    }
    StmtScope scope(ins);
    ins.bind(1, gen)
        .bind(2, std::string_view(t.car))
        .bind(3, t.ts)
        .bind(4, t.seq)
        .bind(5, t.lat)
        .bind(6, t.lon);
    // A row sized for another catalog binds what it has; the rest stays NULL (absent).
    for (size_t i = 0; i < std::min(signals, t.values.size()); ++i)
      ins.bind(7 + static_cast<int>(i), t.values[i]);
    ins.bind(telemetry_score_param(c), row.score);
    flags = flags_text(t, c);
    if (!flags.empty()) ins.bind(telemetry_flags_param(c), std::string_view(flags));
    if (ins.run() == 0) {
      // Same (car, ts, seq) already in the open generation: an earlier row of this batch or of a recent one.
      ++result.telemetry_duplicates;
      continue;
    }
    ++inserted;
    min_ts = std::min(min_ts, t.ts);
    max_ts = std::max(max_ts, t.ts);
  }
  result.telemetry_inserted += inserted;
  if (inserted == 0) return;
  Stmt& s = _st->upsert_gen;
  StmtScope scope(s);
  s.bind(1, gen).bind(2, inserted).bind(3, min_ts).bind(4, max_ts).run();
}

void SqliteStore::write_twins(const std::vector<core::Twin>& twins, WriteResult& result) {
  Stmt& s = _st->upsert_twin;
  std::string rest;
  for (const core::Twin& t : twins) {
    rest = encode_twin_rest(t, *_catalog);
    StmtScope scope(s);
    s.bind(1, std::string_view(t.id))
        .bind(2, t.version)
        .bind(3, t.reported.seq)
        .bind(4, t.reported.ts)
        .bind(5, core::to_string(t.health.status))
        .bind(6, int64_t{t.online ? 1 : 0})
        .bind(7, t.last_seen)
        .bind(8, t.reported.lat)
        .bind(9, t.reported.lon)
        .bind(10, t.health.score)
        .bind_blob(11, rest);
    if (s.run() > 0) {
      ++result.twins_applied;
    } else {
      ++result.twins_stale;
    }
  }
}

void SqliteStore::write_alerts(const std::vector<core::Alert>& alerts) {
  Stmt& s = _st->upsert_alert;
  std::string signals;
  for (const core::Alert& a : alerts) {
    signals = encode_strings(a.signals);
    StmtScope scope(s);
    s.bind(1, std::string_view(a.id))
        .bind(2, std::string_view(a.car))
        .bind(3, std::string_view(a.kind))
        .bind(4, int64_t{a.raised ? 1 : 0})
        .bind(5, a.ts)
        .bind(6, a.score)
        .bind(7, a.threshold)
        .bind_blob(8, signals)
        .bind(9, std::string_view(a.model_version))
        .bind(10, int64_t{a.acknowledged ? 1 : 0})
        .run();
  }
}

void SqliteStore::write_commands(const std::vector<core::Command>& commands) {
  Stmt& s = _st->upsert_command;
  for (const core::Command& c : commands) {
    StmtScope scope(s);
    s.bind(1, std::string_view(c.id))
        .bind(2, std::string_view(c.car))
        .bind(3, std::string_view(c.name))
        .bind(4, std::string_view(c.params_json))
        .bind(5, c.created)
        .bind(6, c.expires)
        .bind(7, std::string_view(c.status))
        .run();
  }
}

std::optional<core::Twin> SqliteStore::get_twin(const std::string& car) {
  Stmt& s = _st->get_twin;
  StmtScope scope(s);
  s.bind(1, std::string_view(car));
  if (!s.step()) return std::nullopt;
  return read_twin(s, *_catalog);
}

std::vector<core::Twin> SqliteStore::list_twins(const TwinQuery& q) {
  std::vector<core::Twin> out;
  if (q.limit <= 0) return out;
  if (q.filter || !q.sort.empty()) return list_twins_filtered(q);
  int mask = (q.status ? 1 : 0) | (q.online ? 2 : 0);
  Stmt& s = _st->list_twins[mask];
  StmtScope scope(s);
  s.bind(1, std::string_view(q.after_id)).bind(2, q.limit);
  if (q.status) s.bind(3, core::to_string(*q.status));
  if (q.online) s.bind(4, int64_t{*q.online ? 1 : 0});
  while (s.step()) out.push_back(read_twin(s, *_catalog));
  return out;
}

std::vector<TelemetryRow> SqliteStore::history(const std::string& car, int64_t from_ms, int64_t to_ms,
                                               int64_t limit) {
  std::vector<TelemetryRow> out;
  if (limit <= 0 || from_ms >= to_ms) return out;
  Stmt& s = _st->history;
  StmtScope scope(s);
  s.bind(1, std::string_view(car)).bind(2, from_ms).bind(3, to_ms).bind(4, limit);
  const catalog::Catalog& c = *_catalog;
  const int score = history_score_column(c);
  const int flags = history_flags_column(c);
  while (s.step()) {
    TelemetryRow& row = out.emplace_back();
    row.t.car = s.column_text(0);
    row.t.ts = s.column_int(1);
    row.t.seq = s.column_int(2);
    row.t.lat = s.column_real(3);
    row.t.lon = s.column_real(4);
    row.t.values.resize(c.size());
    // NULL (absent, or a column added after the row was written) reads as kAbsent.
    for (size_t i = 0; i < c.size(); ++i) row.t.values[i] = s.column_real(5 + static_cast<int>(i));
    if (!s.column_is_null(score)) row.score = s.column_double(score);
    if (!s.column_is_null(flags)) read_flags(s.column_text(flags), c, row.t);
  }
  return out;
}

std::vector<core::Alert> SqliteStore::alerts(const std::string& car, int64_t limit) {
  return rows_of_car(_st->alerts_all, _st->alerts_car, car, limit, read_alert);
}

std::vector<core::Command> SqliteStore::commands(const std::string& car, int64_t limit) {
  return rows_of_car(_st->commands_all, _st->commands_car, car, limit, read_command);
}

HistoryStats SqliteStore::history_stats() {
  // One read transaction: the four counts describe the same snapshot even while a writer commits.
  Transaction tx(_st->begin_read, _st->commit, _st->rollback);
  auto count = [](Stmt& s) {
    StmtScope scope(s);
    return s.step() ? s.column_int(0) : 0;
  };
  HistoryStats stats;
  stats.rows = count(_st->stats_rows);
  stats.distinct = count(_st->stats_distinct);
  stats.cars = count(_st->stats_cars);
  stats.twins = count(_st->stats_twins);
  tx.commit();
  return stats;
}

std::vector<std::pair<std::string, int64_t>> SqliteStore::max_seq_per_car() {
  std::vector<std::pair<std::string, int64_t>> out;
  Stmt& s = _st->max_seq_per_car;
  StmtScope scope(s);
  while (s.step()) out.emplace_back(s.column_text(0), s.column_int(1));
  return out;
}

std::vector<OldestRow> SqliteStore::oldest_per_car() {
  // SQLite gives the bare column `ts` from the row holding min(seq) of each group.
  Stmt s(_db.handle(), "SELECT car, min(seq), ts FROM telemetry GROUP BY car ORDER BY car");
  std::vector<OldestRow> out;
  while (s.step()) out.push_back({s.column_text(0), s.column_int(1), s.column_int(2)});
  return out;
}

std::vector<core::Twin> SqliteStore::list_twins_filtered(const TwinQuery& q) {
  // Generated SQL: the text comes only from the field catalog and fixed operators; every value, including
  // the user's literals, is a bound parameter (TwinSql).
  TwinSql sql;
  const std::string text = twin_list_sql(sql, q, parse_sort(q.sort, *_catalog), kTwinColumns);
  Stmt s(_db.handle(), text);
  sql.bind(s);
  std::vector<core::Twin> out;
  while (s.step()) out.push_back(read_twin(s, *_catalog));
  return out;
}

FleetSummary SqliteStore::fleet_summary(int64_t now_ms) {
  FleetSummary out;
  Transaction tx(_st->begin_read, _st->commit, _st->rollback);
  {
    Stmt s(_db.handle(), "SELECT status, count(*), sum(online) FROM twins GROUP BY status ORDER BY status");
    while (s.step()) {
      out.by_status[s.column_text(0)] = s.column_int(1);
      out.cars += s.column_int(1);
      out.online += s.column_int(2);
    }
  }
  {
    // Only generations whose time range overlaps the minute are read (sqlite_schema.cc: the schema comment).
    Stmt s(_db.handle(),
           "SELECT count(*) FROM telemetry_gens AS g CROSS JOIN telemetry AS t"
           " ON t.gen = g.gen AND t.ts >= ?1 AND t.ts < ?2 WHERE g.max_ts >= ?1 AND g.min_ts < ?2");
    s.bind(1, now_ms - 60000).bind(2, now_ms);
    if (s.step()) out.messages_last_minute = s.column_int(0);
  }
  tx.commit();
  return out;
}

std::vector<CarScore> SqliteStore::top_by_score(int64_t n) {
  std::vector<CarScore> out;
  if (n <= 0) return out;
  // NULL (a NaN score) sorts last in DESC, as null does in MongoDB.
  Stmt s(_db.handle(),
         std::string("SELECT ") + kTwinColumns + " FROM twins ORDER BY score DESC, id LIMIT ?1");
  s.bind(1, n);
  while (s.step()) {
    core::Twin t = read_twin(s, *_catalog);
    out.push_back(
        CarScore{t.id, t.health.score, t.health.threshold, std::string(core::to_string(t.health.status))});
  }
  return out;
}

std::vector<HourlyAggregate> SqliteStore::hourly(const std::string& car, std::string_view signal,
                                                 int64_t from_ms, int64_t to_ms) {
  const std::string column = signal_column(*_catalog, _columns, signal);
  std::vector<HourlyAggregate> out;
  if (from_ms >= to_ms) return out;
  Stmt s(_db.handle(),
         "SELECT (t.ts / 3600000) * 3600000 AS hour, min(t." + column + "), avg(t." + column + "), max(t." +
             column + "), count(t." + column +
             ") AS n FROM telemetry_gens AS g CROSS JOIN telemetry AS t"
             " ON t.gen = g.gen AND t.car = ?1 AND t.ts >= ?2 AND t.ts < ?3"
             " WHERE g.max_ts >= ?2 AND g.min_ts < ?3 GROUP BY hour HAVING n > 0 ORDER BY hour");
  s.bind(1, std::string_view(car)).bind(2, from_ms).bind(3, to_ms);
  while (s.step()) {
    out.push_back(HourlyAggregate{s.column_int(0), s.column_double(1), s.column_double(2), s.column_double(3),
                                  s.column_int(4)});
  }
  return out;
}

std::vector<AlertsPerHour> SqliteStore::alerts_per_hour(int64_t from_ms, int64_t to_ms) {
  std::vector<AlertsPerHour> out;
  Stmt s(_db.handle(),
         "SELECT (ts / 3600000) * 3600000 AS hour, kind, count(*) FROM alerts"
         " WHERE raised = 1 AND ts >= ?1 AND ts < ?2 GROUP BY hour, kind ORDER BY hour, kind");
  s.bind(1, from_ms).bind(2, to_ms);
  while (s.step()) out.push_back(AlertsPerHour{s.column_int(0), s.column_text(1), s.column_int(2)});
  return out;
}

std::optional<core::Command> SqliteStore::get_command(const std::string& id) {
  Stmt s(_db.handle(), std::string("SELECT ") + kCommandColumns + " FROM commands WHERE id = ?1");
  s.bind(1, std::string_view(id));
  if (!s.step()) return std::nullopt;
  return read_command(s);
}

std::optional<core::Alert> SqliteStore::get_alert(const std::string& id) {
  Stmt s(_db.handle(), std::string("SELECT ") + kAlertColumns + " FROM alerts WHERE id = ?1");
  s.bind(1, std::string_view(id));
  if (!s.step()) return std::nullopt;
  return read_alert(s);
}

bool SqliteStore::ack_alert(const std::string& id) {
  Stmt s(_db.handle(), "UPDATE alerts SET acknowledged = 1 WHERE id = ?1");
  s.bind(1, std::string_view(id));
  return s.run() > 0;
}

bool SqliteStore::set_alert_feedback(const std::string& id, const std::string& label, const std::string& note,
                                     int64_t ts) {
  Stmt s(_db.handle(), "UPDATE alerts SET feedback = ?2, feedback_note = ?3, feedback_ts = ?4 WHERE id = ?1");
  s.bind(1, std::string_view(id))
      .bind(2, std::string_view(label))
      .bind(3, std::string_view(note))
      .bind(4, ts);
  return s.run() > 0;
}

core::FeedbackCounts SqliteStore::feedback_counts(const std::string& model_version) {
  Stmt s(
      _db.handle(),
      "SELECT feedback, count(*) FROM alerts WHERE model_version = ?1 AND feedback <> '' GROUP BY feedback");
  s.bind(1, std::string_view(model_version));
  core::FeedbackCounts out;
  while (s.step()) {
    const std::string label(s.column_text(0));
    if (label == core::kFeedbackConfirmed) out.confirmed = s.column_int(1);
    if (label == core::kFeedbackFalse) out.false_alarms = s.column_int(1);
  }
  return out;
}

}  // namespace fleettwin::store
