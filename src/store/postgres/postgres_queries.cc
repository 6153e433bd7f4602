// The reads of PostgresStore: twins, listings with the filter language, history, alerts, commands and the
// analytics. Every value reaches the server as a parameter; the SQL text holds only fixed words and the
// catalog's quoted column names.
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "store/postgres/pg_conn.h"
#include "store/postgres/pg_sql.h"
#include "store/postgres/postgres_store.h"
#include "store/sql_rows.h"
#include "store/twin_blob.h"

namespace fleettwin::store {
namespace {

constexpr const char* kTwinColumns = kTwinRowColumns;
constexpr const char* kAlertColumns = kAlertRowColumns;
constexpr const char* kCommandColumns = kCommandRowColumns;

/// Row `i` of a result, as ColumnReader (sql_rows.h) reads it.
struct PgRow {
  const PgResult& r;
  int i;
  std::string_view text(int k) const { return r.text(i, k); }
  int64_t i64(int k) const { return r.i64(i, k); }
  double real(int k) const { return r.f64(i, k); }
  bool boolean(int k) const { return r.boolean(i, k); }
  std::string blob(int k) const { return r.bytes(i, k); }
};

core::Twin read_twin(const PgResult& r, int i, const catalog::Catalog& catalog) {
  return read_twin_row(PgRow{r, i}, catalog);
}
core::Alert read_alert(const PgResult& r, int i) { return read_alert_row(PgRow{r, i}); }
core::Command read_command(const PgResult& r, int i) { return read_command_row(PgRow{r, i}); }

std::vector<core::Twin> read_twins(const PgResult& r, const catalog::Catalog& catalog) {
  std::vector<core::Twin> out;
  out.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(read_twin(r, i, catalog));
  return out;
}

/// Every row of `r`, read by `read`.
template <typename T>
std::vector<T> read_rows(const PgResult& r, T (*read)(const PgResult&, int)) {
  std::vector<T> out;
  out.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(read(r, i));
  return out;
}

/// `columns` of the newest (by `time`, ties by id descending) `limit` rows of `table` of one car, or of every
/// car when `car` is empty.
PgResult newest_first(PgConnection& conn, const char* columns, const char* table, const char* time,
                      const std::string& car, int64_t limit) {
  PgParams p;
  p.add(limit);
  std::string sql = std::string("SELECT ") + columns + " FROM " + table;
  if (!car.empty()) {
    sql += " WHERE car = $2";
    p.add(std::string_view(car));
  }
  return conn.exec(sql + " ORDER BY " + time + " DESC, id DESC LIMIT $1", p);
}

/// `read(conn)` in one REPEATABLE READ transaction, so that several counts describe one snapshot.
template <typename F>
auto snapshot(PgConnection& conn, F&& read) -> decltype(read(conn)) {
  return in_transaction(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", [&] { return read(conn); });
}

/// The row of `table` (`columns`) whose id is `id`, read by `read(result, 0)`; nullopt when there is none.
template <typename F>
auto row_by_id(PgConnection& conn, const char* columns, const char* table, const std::string& id, F&& read)
    -> std::optional<decltype(read(std::declval<const PgResult&>(), 0))> {
  PgResult r = conn.exec(std::string("SELECT ") + columns + " FROM " + table + " WHERE id = $1",
                         PgParams().add(std::string_view(id)));
  if (r.rows() == 0) return std::nullopt;
  return read(r, 0);
}

}  // namespace

std::optional<core::Twin> PostgresStore::get_twin(const std::string& car) {
  return reconnecting([&] {
    return row_by_id(conn(), kTwinColumns, "twins", car,
                     [&](const PgResult& r, int i) { return read_twin(r, i, *_catalog); });
  });
}

std::vector<core::Twin> PostgresStore::list_twins(const TwinQuery& q) {
  return reconnecting([&]() -> std::vector<core::Twin> {
    if (q.limit <= 0) return {};
    PgTwinSql sql;
    const std::string text = twin_list_sql(sql, q, parse_sort(q.sort, *_catalog), kTwinColumns);
    return read_twins(conn().exec(text, sql.params()), *_catalog);
  });
}

std::vector<TelemetryRow> PostgresStore::history(const std::string& car, int64_t from_ms, int64_t to_ms,
                                                 int64_t limit) {
  return reconnecting([&]() -> std::vector<TelemetryRow> {
    std::vector<TelemetryRow> out;
    if (limit <= 0 || from_ms >= to_ms) return out;
    PgResult r =
        conn().exec("SELECT " + _column_list +
                        " FROM telemetry WHERE car = $1 AND ts >= $2 AND ts < $3 ORDER BY ts, seq LIMIT $4",
                    PgParams().add(std::string_view(car)).add(from_ms).add(to_ms).add(limit));
    const catalog::Catalog& c = *_catalog;
    const int score = 5 + static_cast<int>(c.size());
    const int flags = score + 1;
    out.reserve(static_cast<size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) {
      TelemetryRow& row = out.emplace_back();
      row.t.car = r.str(i, 0);
      row.t.ts = r.i64(i, 1);
      row.t.seq = r.i64(i, 2);
      row.t.lat = r.f64(i, 3);
      row.t.lon = r.f64(i, 4);
      row.t.values.resize(c.size());
      // NULL (absent, or a column added after the row was written) reads as kAbsent.
      for (size_t k = 0; k < c.size(); ++k) row.t.values[k] = r.f64(i, 5 + static_cast<int>(k));
      if (!r.is_null(i, score)) row.score = r.f64(i, score);
      if (!r.is_null(i, flags)) read_flags(r.text(i, flags), c, row.t);
    }
    return out;
  });
}

std::vector<core::Alert> PostgresStore::alerts(const std::string& car, int64_t limit) {
  return reconnecting([&]() -> std::vector<core::Alert> {
    if (limit <= 0) return {};
    return read_rows(newest_first(conn(), kAlertColumns, "alerts", "ts", car, limit), read_alert);
  });
}

std::vector<core::Command> PostgresStore::commands(const std::string& car, int64_t limit) {
  return reconnecting([&]() -> std::vector<core::Command> {
    if (limit <= 0) return {};
    return read_rows(newest_first(conn(), kCommandColumns, "commands", "created", car, limit), read_command);
  });
}

HistoryStats PostgresStore::history_stats() {
  return reconnecting([&] {
    return snapshot(conn(), [](PgConnection& c) {
      PgResult r = c.exec(
          "SELECT count(*), (SELECT count(*) FROM (SELECT DISTINCT car, seq FROM telemetry) AS d),"
          " count(DISTINCT car), (SELECT count(*) FROM twins) FROM telemetry");
      return HistoryStats{
          .rows = r.i64(0, 0), .distinct = r.i64(0, 1), .cars = r.i64(0, 2), .twins = r.i64(0, 3)};
    });
  });
}

std::vector<std::pair<std::string, int64_t>> PostgresStore::max_seq_per_car() {
  return reconnecting([&] {
    PgResult r = conn().exec("SELECT car, max(seq) FROM telemetry GROUP BY car ORDER BY car");
    std::vector<std::pair<std::string, int64_t>> out;
    out.reserve(static_cast<size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) out.emplace_back(r.str(i, 0), r.i64(i, 1));
    return out;
  });
}

std::vector<OldestRow> PostgresStore::oldest_per_car() {
  return reconnecting([&] {
    PgResult r = conn().exec("SELECT DISTINCT ON (car) car, seq, ts FROM telemetry ORDER BY car, seq");
    std::vector<OldestRow> out;
    out.reserve(static_cast<size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) out.push_back({r.str(i, 0), r.i64(i, 1), r.i64(i, 2)});
    return out;
  });
}

FleetSummary PostgresStore::fleet_summary(int64_t now_ms) {
  return reconnecting([&] {
    return snapshot(conn(), [now_ms](PgConnection& c) {
      FleetSummary out;
      PgResult r = c.exec(
          "SELECT status, count(*), count(*) FILTER (WHERE online) FROM twins GROUP BY status ORDER BY "
          "status");
      for (int i = 0; i < r.rows(); ++i) {
        out.by_status[r.str(i, 0)] = r.i64(i, 1);
        out.cars += r.i64(i, 1);
        out.online += r.i64(i, 2);
      }
      // Partition pruning keeps this to the day (or two) of the minute; the BRIN index to its pages.
      PgResult m = c.exec("SELECT count(*) FROM telemetry WHERE ts >= $1 AND ts < $2",
                          PgParams().add(now_ms - 60000).add(now_ms));
      out.messages_last_minute = m.i64(0, 0);
      return out;
    });
  });
}

std::vector<CarScore> PostgresStore::top_by_score(int64_t n) {
  return reconnecting([&]() -> std::vector<CarScore> {
    std::vector<CarScore> out;
    if (n <= 0) return out;
    // NULL (a NaN score) sorts last, as in the other stores.
    PgResult r = conn().exec(
        std::string("SELECT ") + kTwinColumns + " FROM twins ORDER BY score DESC NULLS LAST, id LIMIT $1",
        PgParams().add(n));
    for (const core::Twin& t : read_twins(r, *_catalog)) {
      out.push_back(
          CarScore{t.id, t.health.score, t.health.threshold, std::string(core::to_string(t.health.status))});
    }
    return out;
  });
}

std::vector<HourlyAggregate> PostgresStore::hourly(const std::string& car, std::string_view signal,
                                                   int64_t from_ms, int64_t to_ms) {
  return reconnecting([&]() -> std::vector<HourlyAggregate> {
    const std::string column = signal_column(*_catalog, _columns, signal);
    std::vector<HourlyAggregate> out;
    if (from_ms >= to_ms) return out;
    // Integer division truncates toward zero, as SQLite's does, so hours before 1970 bucket alike.
    PgResult r = conn().exec("SELECT (ts / 3600000) * 3600000 AS hour, min(" + column + "), avg(" + column +
                                 "), max(" + column + "), count(" + column +
                                 ") FROM telemetry WHERE car = $1 AND ts >= $2 AND ts < $3"
                                 " GROUP BY hour HAVING count(" +
                                 column + ") > 0 ORDER BY hour",
                             PgParams().add(std::string_view(car)).add(from_ms).add(to_ms));
    for (int i = 0; i < r.rows(); ++i) {
      out.push_back(HourlyAggregate{r.i64(i, 0), r.f64(i, 1), r.f64(i, 2), r.f64(i, 3), r.i64(i, 4)});
    }
    return out;
  });
}

std::vector<AlertsPerHour> PostgresStore::alerts_per_hour(int64_t from_ms, int64_t to_ms) {
  return reconnecting([&]() -> std::vector<AlertsPerHour> {
    PgResult r = conn().exec(
        "SELECT (ts / 3600000) * 3600000 AS hour, kind, count(*) FROM alerts"
        " WHERE raised AND ts >= $1 AND ts < $2 GROUP BY hour, kind ORDER BY hour, kind",
        PgParams().add(from_ms).add(to_ms));
    std::vector<AlertsPerHour> out;
    out.reserve(static_cast<size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) out.push_back(AlertsPerHour{r.i64(i, 0), r.str(i, 1), r.i64(i, 2)});
    return out;
  });
}

std::optional<core::Command> PostgresStore::get_command(const std::string& id) {
  return reconnecting([&] { return row_by_id(conn(), kCommandColumns, "commands", id, read_command); });
}

std::optional<core::Alert> PostgresStore::get_alert(const std::string& id) {
  return reconnecting([&] { return row_by_id(conn(), kAlertColumns, "alerts", id, read_alert); });
}

bool PostgresStore::ack_alert(const std::string& id) {
  return reconnecting([&]() -> bool {
    return conn()
               .exec("UPDATE alerts SET acknowledged = true WHERE id = $1",
                     PgParams().add(std::string_view(id)))
               .affected() > 0;
  });
}

bool PostgresStore::set_alert_feedback(const std::string& id, const std::string& label,
                                       const std::string& note, int64_t ts) {
  return reconnecting([&]() -> bool {
    return conn()
               .exec("UPDATE alerts SET feedback = $2, feedback_note = $3, feedback_ts = $4 WHERE id = $1",
                     PgParams()
                         .add(std::string_view(id))
                         .add(std::string_view(label))
                         .add(std::string_view(note))
                         .add(ts))
               .affected() > 0;
  });
}

core::FeedbackCounts PostgresStore::feedback_counts(const std::string& model_version) {
  return reconnecting([&] {
    PgResult r = conn().exec(
        "SELECT count(*) FILTER (WHERE feedback = 'confirmed'), count(*) FILTER (WHERE feedback = 'false')"
        " FROM alerts WHERE model_version = $1",
        PgParams().add(std::string_view(model_version)));
    return core::FeedbackCounts{r.i64(0, 0), r.i64(0, 1)};
  });
}

}  // namespace fleettwin::store
