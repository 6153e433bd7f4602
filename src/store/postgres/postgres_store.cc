#include "store/postgres/postgres_store.h"

#include <algorithm>
#include <numeric>
#include <tuple>

#include "store/postgres/pg_conn.h"
#include "store/postgres/pg_schema.h"
#include "store/postgres/pg_sql.h"
#include "store/twin_blob.h"

namespace fleettwin::store {
namespace {

// The guard of DESIGN.md §4: an update older than the stored reported.seq never overwrites newer state; at
// the same seq the higher version wins. Under READ COMMITTED a conflicting row is locked and the WHERE is
// evaluated on its newest version, so two writers racing on one car cannot move it back. The command tag
// counts 0 rows when the WHERE refuses.
constexpr const char* kTwinColumns =
    "id, version, seq, ts, status, online, last_seen, lat, lon, score, fields, rest";
constexpr const char* kTwinGuard =
    " ON CONFLICT (id) DO UPDATE SET version = excluded.version, seq = excluded.seq, ts = excluded.ts,"
    " status = excluded.status, online = excluded.online, last_seen = excluded.last_seen, lat = excluded.lat,"
    " lon = excluded.lon, score = excluded.score, fields = excluded.fields, rest = excluded.rest"
    " WHERE excluded.seq > twins.seq OR (excluded.seq = twins.seq AND excluded.version > twins.version)";

/// One twin, $1..$12.
std::string upsert_twin_sql() {
  return std::string("INSERT INTO twins(") + kTwinColumns +
         ") VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12)" + kTwinGuard;
}

/// A batch's twins, COPY'd into twins_stage first: one statement, in id order. PostgreSQL refuses an
/// ON CONFLICT DO UPDATE that meets one row twice, so this is for batches whose ids are unique (the sink's:
/// it keeps one twin per car per batch).
std::string upsert_staged_twins_sql() {
  return std::string("INSERT INTO twins(") + kTwinColumns + ") SELECT " + kTwinColumns +
         " FROM twins_stage ORDER BY id" + kTwinGuard;
}

bool unique_ids(const std::vector<core::Twin>& twins, const std::vector<std::size_t>& order) {
  for (std::size_t i = 1; i < order.size(); ++i) {
    if (twins[order[i]].id == twins[order[i - 1]].id) return false;
  }
  return true;
}

// An alert id names one raise; its later states are a clear (same id, later ts, raised = false) and an
// operator acknowledgement. A replayed older state must not undo a newer one: the fields follow the later
// (ts, cleared-after-raised) state, and acknowledged, once set, stays set.
std::string upsert_alert_sql() {
  constexpr const char* kNewer = "excluded.ts > a.ts OR (excluded.ts = a.ts AND excluded.raised <= a.raised)";
  std::string sql =
      "INSERT INTO alerts AS a(id, car, kind, raised, ts, score, threshold, signals, model_version,"
      " acknowledged) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO UPDATE SET";
  for (const char* c : {"car", "kind", "raised", "ts", "score", "threshold", "signals", "model_version"}) {
    sql += std::string(" ") + c + " = CASE WHEN " + kNewer + " THEN excluded." + c + " ELSE a." + c + " END,";
  }
  return sql + " acknowledged = a.acknowledged OR excluded.acknowledged";
}

// A command moves pending -> delivered -> acked | failed | expired. A replayed earlier state is refused;
// the first final state stays (an ack is not undone by a late "expired").
constexpr const char* kCommandRank =
    "(CASE %s WHEN 'delivered' THEN 1 WHEN 'acked' THEN 2 WHEN 'failed' THEN 2 WHEN 'expired' THEN 2 ELSE 0 "
    "END)";
std::string upsert_command_sql() {
  auto rank = [](const std::string& status) {
    std::string s = kCommandRank;
    s.replace(s.find("%s"), 2, status);
    return s;
  };
  return "INSERT INTO commands(id, car, name, params, created, expires, status)"
         " VALUES($1, $2, $3, $4, $5, $6, $7)"
         " ON CONFLICT (id) DO UPDATE SET car = excluded.car, name = excluded.name, params = excluded.params,"
         " created = excluded.created, expires = excluded.expires, status = excluded.status"
         " WHERE excluded.status = commands.status OR " +
         rank("excluded.status") + " > " + rank("commands.status");
}

/// From this many twins in a batch up, they go through twins_stage.
constexpr std::size_t kStagedTwins = 8;

/// Positions of `items` ordered by id, equal ids in batch order: rows are locked in one global order, so
/// two batches never wait for each other in a cycle, and repeats of one id apply as the batch lists them.
template <typename T>
std::vector<std::size_t> by_id(const std::vector<T>& items) {
  std::vector<std::size_t> order(items.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return items[a].id < items[b].id; });
  return order;
}

}  // namespace

PostgresStore::PostgresStore(const std::string& uri, PostgresOptions options,
                             std::shared_ptr<const catalog::Catalog> catalog)
    : _uri(uri),
      _options(options),
      _catalog(catalog ? std::move(catalog) : catalog::builtin()),
      _document_fields(document_fields(*_catalog)) {
  if (!is_uri(uri)) {
    throw PgError("postgres: bad URI '" + uri + "' (want postgresql://user@host:port/database)", "", false);
  }
  _conn = std::make_unique<PgConnection>(uri);
  _columns = prepare_pg_schema(*_conn, *_catalog);
  _column_list = "car, ts, seq, lat, lon";
  for (const auto& c : _columns) _column_list += ", " + c;
  _column_list += ", score, flags";
  on_connect();
}

PostgresStore::~PostgresStore() = default;

bool PostgresStore::is_uri(std::string_view uri) {
  return uri.starts_with("postgresql://") || uri.starts_with("postgres://");
}

bool PostgresStore::transient_failure(const std::exception& error) const {
  const auto* e = dynamic_cast<const PgError*>(&error);
  return e != nullptr && e->transient();
}

void PostgresStore::on_connect() {
  _prepared = false;
  _conn->prepare("upsert_twin", upsert_twin_sql());
  _conn->prepare("upsert_alert", upsert_alert_sql());
  _conn->prepare("upsert_command", upsert_command_sql());
  // A session's own table: a batch COPYs its rows in, inserts them from there and empties it (TRUNCATE: a
  // temporary table has no autovacuum, so deleted rows would pile up).
  _conn->exec("CREATE TEMP TABLE IF NOT EXISTS telemetry_stage AS SELECT " + _column_list +
              " FROM telemetry WITH NO DATA");
  _conn->exec(std::string("CREATE TEMP TABLE IF NOT EXISTS twins_stage AS SELECT ") + kTwinColumns +
              " FROM twins WITH NO DATA");
  _prepared = true;
}

PgConnection& PostgresStore::conn() {
  // An idle connection learns of a server restart only when it next reads: checked here, so the first call
  // after an outage runs on a new connection instead of failing on the old one.
  if (!_conn->check_alive() || !_prepared) {
    _conn->reconnect();
    _partitions.clear();  // another process may have dropped some meanwhile (retention)
    on_connect();
  }
  return *_conn;
}

WriteResult PostgresStore::write(const WriteBatch& batch) {
  return reconnecting([&]() -> WriteResult {
    if (batch.telemetry.empty() && batch.twins.empty() && batch.alerts.empty() && batch.commands.empty()) {
      return {};
    }
    try {
      return write_once(batch);
    } catch (const PgError& e) {
      // 23514: no partition for a row, because retention (here or in another process) dropped one this
      // instance counted as created; write_once() has forgotten them, so the second try creates it again.
      if (e.sqlstate() != "23514") throw;
    }
    return write_once(batch);
  });
}

WriteResult PostgresStore::write_once(const WriteBatch& batch) {
  WriteResult result;
  PgConnection& c = conn();
  try {
    ensure_partitions(batch.telemetry);
    in_transaction(c, "BEGIN", [&] {
      write_telemetry(batch.telemetry, result);
      write_twins(batch.twins, result);
      write_alerts(batch.alerts);
      write_commands(batch.commands);
    });
  } catch (...) {
    // A partition this instance knew may have been dropped (retention): look again next time.
    _partitions.clear();
    throw;
  }
  return result;
}

void PostgresStore::ensure_partitions(const std::vector<TelemetryRow>& rows) {
  std::vector<int64_t> missing;
  for (const TelemetryRow& row : rows) {
    const int64_t day = partition_day(row.t.ts);
    if (!_partitions.contains(day) && std::find(missing.begin(), missing.end(), day) == missing.end()) {
      missing.push_back(day);
    }
  }
  if (missing.empty()) return;
  std::sort(missing.begin(), missing.end());
  create_partitions(*_conn, missing);
  _partitions.insert(missing.begin(), missing.end());
}

void PostgresStore::write_telemetry(const std::vector<TelemetryRow>& rows, WriteResult& result) {
  if (rows.empty()) return;
  int64_t inserted = 0;
  if (_options.telemetry_path == PgTelemetryPath::kMultiRow) {
    inserted = insert_multi_row(rows);
  } else {
    _copy_buffer.clear();
    for (const TelemetryRow& row : rows) append_copy_row(_copy_buffer, row, *_catalog);
    _conn->copy_in("COPY telemetry_stage(" + _column_list + ") FROM STDIN", _copy_buffer);
    // In key order: concurrent batches lock keys in one order, and the index pages fill in sequence. A
    // replayed row (and a repeat within the batch) meets its key and is skipped, not an error.
    inserted = _conn
                   ->exec("INSERT INTO telemetry(" + _column_list + ") SELECT " + _column_list +
                          " FROM telemetry_stage ORDER BY car, ts, seq ON CONFLICT DO NOTHING")
                   .affected();
    _conn->exec("TRUNCATE telemetry_stage");
  }
  result.telemetry_inserted += inserted;
  result.telemetry_duplicates += static_cast<int64_t>(rows.size()) - inserted;
}

int64_t PostgresStore::insert_multi_row(const std::vector<TelemetryRow>& rows) {
  const std::size_t per_row = 7 + _columns.size();
  // The protocol's limit is 65,535 parameters a statement.
  const std::size_t chunk = std::min<std::size_t>(1000, 65535 / per_row);
  std::vector<std::size_t> order(rows.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const core::Telemetry& x = rows[a].t;
    const core::Telemetry& y = rows[b].t;
    return std::tie(x.car, x.ts, x.seq) < std::tie(y.car, y.ts, y.seq);
  });
  int64_t inserted = 0;
  for (std::size_t at = 0; at < order.size(); at += chunk) {
    const std::size_t n = std::min(chunk, order.size() - at);
    std::string sql = "INSERT INTO telemetry(" + _column_list + ") VALUES ";
    PgParams params;
    std::size_t next = 1;
    for (std::size_t r = 0; r < n; ++r) {
      const TelemetryRow& row = rows[order[at + r]];
      const core::Telemetry& t = row.t;
      sql += r == 0 ? "(" : ", (";
      for (std::size_t k = 0; k < per_row; ++k) sql += (k == 0 ? "$" : ", $") + std::to_string(next++);
      sql += ')';
      params.add(std::string_view(t.car)).add(t.ts).add(t.seq).add(t.lat).add(t.lon);
      for (std::size_t i = 0; i < _columns.size(); ++i)
        params.add(i < t.values.size() ? t.values[i] : core::kAbsent);
      params.add(row.score);
      const std::string flags = flags_text(t, *_catalog);
      if (flags.empty()) {
        params.null();
      } else {
        params.add(std::string_view(flags));
      }
    }
    inserted += _conn->exec(sql + " ON CONFLICT DO NOTHING", params).affected();
  }
  return inserted;
}

void PostgresStore::write_twins(const std::vector<core::Twin>& twins, WriteResult& result) {
  const std::vector<std::size_t> order = by_id(twins);
  // One round trip per twin costs more than the COPY from a few twins up (bench/store_postgres_bench.cc).
  if (twins.size() >= kStagedTwins && unique_ids(twins, order)) {
    _copy_buffer.clear();
    for (const std::size_t i : order) append_copy_twin(_copy_buffer, twins[i], _document_fields, *_catalog);
    _conn->copy_in(std::string("COPY twins_stage(") + kTwinColumns + ") FROM STDIN", _copy_buffer);
    const int64_t applied = _conn->exec(upsert_staged_twins_sql()).affected();
    _conn->exec("TRUNCATE twins_stage");
    result.twins_applied += applied;
    result.twins_stale += static_cast<int64_t>(twins.size()) - applied;
    return;
  }
  for (const std::size_t i : order) {
    const core::Twin& t = twins[i];
    PgParams p;
    p.add_all(t.id, t.version, t.reported.seq, t.reported.ts, core::to_string(t.health.status), t.online,
              t.last_seen, t.reported.lat, t.reported.lon, t.health.score,
              twin_fields_json(t, _document_fields))
        .add_bytes(encode_twin_rest(t, *_catalog));
    if (_conn->exec_prepared("upsert_twin", p).affected() > 0) {
      ++result.twins_applied;
    } else {
      ++result.twins_stale;
    }
  }
}

void PostgresStore::write_alerts(const std::vector<core::Alert>& alerts) {
  for (const std::size_t i : by_id(alerts)) {
    const core::Alert& a = alerts[i];
    PgParams p;
    p.add_all(a.id, a.car, a.kind, a.raised, a.ts, a.score, a.threshold)
        .add_bytes(encode_strings(a.signals))
        .add_all(a.model_version, a.acknowledged);
    _conn->exec_prepared("upsert_alert", p);
  }
}

void PostgresStore::write_commands(const std::vector<core::Command>& commands) {
  for (const std::size_t i : by_id(commands)) {
    const core::Command& c = commands[i];
    PgParams p;
    p.add_all(c.id, c.car, c.name, c.params_json, c.created, c.expires, c.status);
    _conn->exec_prepared("upsert_command", p);
  }
}

RetentionResult PostgresStore::enforce_retention(int64_t cutoff_ms) {
  RetentionResult result{.store = "postgres"};
  // Whole days only: a partition goes once its last millisecond is older than the cutoff. DROP TABLE of a
  // partition takes an ACCESS EXCLUSIVE lock on the parent for a catalog change only (no row is read), under
  // the schema lock that partition creation takes too; no row is ever deleted one by one (no vacuum debt).
  for (const std::string& name : telemetry_partitions()) {
    const int64_t day = partition_day_of(name);
    if (partition_name(day) != name) continue;  // not one of ours
    if (day < partition_day(cutoff_ms)) {       // its last millisecond is before the cutoff's day
      reconnecting([&] { return drop_partition(conn(), name); });
      ++result.removed;
    } else if (result.oldest_ms == INT64_MAX) {
      result.oldest_ms = day < INT64_MIN / kDayMs ? INT64_MIN : day * kDayMs;
    }
  }
  _partitions.clear();
  return result;
}

std::vector<std::string> PostgresStore::telemetry_partitions() {
  return reconnecting([&]() -> std::vector<std::string> {
    PgResult r = conn().exec(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'telemetry'::regclass");
    std::vector<std::pair<int64_t, std::string>> days;
    for (int i = 0; i < r.rows(); ++i) {
      std::string name = r.str(i, 0);
      const int64_t day = partition_day_of(name);
      days.emplace_back(day, std::move(name));
    }
    std::sort(days.begin(), days.end());
    std::vector<std::string> out;
    out.reserve(days.size());
    for (auto& d : days) out.push_back(std::move(d.second));
    return out;
  });
}

}  // namespace fleettwin::store
