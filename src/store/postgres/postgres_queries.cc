// The reads of PostgresStore: twins, listings with the filter language, history, alerts, commands and the
// analytics. Every value reaches the server as a parameter; the SQL text holds only fixed words and the
// catalog's quoted column names.
#include <stdexcept>

#include "store/postgres/pg_conn.h"
#include "store/postgres/pg_sql.h"
#include "store/postgres/postgres_store.h"
#include "store/twin_blob.h"

namespace fleettwin::store {
namespace {

constexpr const char* kTwinColumns = "id, version, seq, ts, status, online, last_seen, lat, lon, score, rest";
constexpr const char* kAlertColumns =
    "id, car, kind, raised, ts, score, threshold, signals, model_version, acknowledged";
constexpr const char* kCommandColumns = "id, car, name, params, created, expires, status";

core::Twin read_twin(const PgResult& r, int i, const catalog::Catalog& catalog) {
  core::Twin t;
  t.id = r.str(i, 0);
  t.version = r.i64(i, 1);
  t.reported.seq = r.i64(i, 2);
  t.reported.ts = r.i64(i, 3);
  t.health.status = core::health_status_from_string(r.text(i, 4));
  t.online = r.boolean(i, 5);
  t.last_seen = r.i64(i, 6);
  t.reported.lat = r.f64(i, 7);
  t.reported.lon = r.f64(i, 8);
  t.health.score = r.f64(i, 9);
  decode_twin_rest(r.bytes(i, 10), t, catalog);
  return t;
}

core::Alert read_alert(const PgResult& r, int i) {
  core::Alert a;
  a.id = r.str(i, 0);
  a.car = r.str(i, 1);
  a.kind = r.str(i, 2);
  a.raised = r.boolean(i, 3);
  a.ts = r.i64(i, 4);
  a.score = r.f64(i, 5);
  a.threshold = r.f64(i, 6);
  a.signals = decode_strings(r.bytes(i, 7));
  a.model_version = r.str(i, 8);
  a.acknowledged = r.boolean(i, 9);
  return a;
}

core::Command read_command(const PgResult& r, int i) {
  core::Command c;
  c.id = r.str(i, 0);
  c.car = r.str(i, 1);
  c.name = r.str(i, 2);
  c.params_json = r.str(i, 3);
  c.created = r.i64(i, 4);
  c.expires = r.i64(i, 5);
  c.status = r.str(i, 6);
  return c;
}

std::vector<core::Twin> read_twins(const PgResult& r, const catalog::Catalog& catalog) {
  std::vector<core::Twin> out;
  out.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(read_twin(r, i, catalog));
  return out;
}

/// Runs `body` in one REPEATABLE READ transaction, so that several counts describe one snapshot.
template <typename F>
void snapshot(PgConnection& conn, F&& body) {
  in_transaction(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", std::forward<F>(body));
}

}  // namespace

std::optional<core::Twin> PostgresStore::get_twin(const std::string& car) {
  return reconnecting([&]() -> std::optional<core::Twin> {
    PgResult r = conn().exec(std::string("SELECT ") + kTwinColumns + " FROM twins WHERE id = $1",
                             PgParams().add(std::string_view(car)));
    if (r.rows() == 0) return std::nullopt;
    return read_twin(r, 0, *_catalog);
  });
}

std::vector<core::Twin> PostgresStore::list_twins(const TwinQuery& q) {
  return reconnecting([&]() -> std::vector<core::Twin> {
    if (q.limit <= 0) return {};
    const TwinSort sort = parse_sort(q.sort, *_catalog);
    PgTwinSql sql;
    std::string where = "true";
    if (q.status) where += " AND status = " + sql.param(core::to_string(*q.status));
    if (q.online) where += " AND online = " + sql.value(FilterValue(*q.online));
    if (q.filter) where += " AND " + sql.filter(*q.filter);
    std::string order = "id";
    if (sort.by_id()) {
      if (!q.after_id.empty()) where += " AND id > " + sql.param(q.after_id);
    } else {
      const std::string key = sql.field(sort.field);
      // NULL (a NaN number, a field the twin lacks) sorts as the lowest value, as in the other stores.
      order = key + (sort.descending ? " DESC NULLS LAST, id" : " ASC NULLS FIRST, id");
      if (!q.after_id.empty()) {
        const TwinCursor c = decode_twin_cursor(sort, q.after_id);
        const std::string v = sql.value(c.value);
        where += " AND (" + key + (sort.descending ? " < " : " > ") + v + " OR (" + key + " = " + v +
                 " AND id > " + sql.param(c.id) + "))";
      }
    }
    const std::string text = std::string("SELECT ") + kTwinColumns + " FROM twins WHERE " + where +
                             " ORDER BY " + order + " LIMIT " + sql.param(q.limit);
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
    std::vector<core::Alert> out;
    if (limit <= 0) return out;
    PgParams p;
    p.add(limit);
    std::string sql = std::string("SELECT ") + kAlertColumns + " FROM alerts";
    if (!car.empty()) {
      sql += " WHERE car = $2";
      p.add(std::string_view(car));
    }
    PgResult r = conn().exec(sql + " ORDER BY ts DESC, id DESC LIMIT $1", p);
    for (int i = 0; i < r.rows(); ++i) out.push_back(read_alert(r, i));
    return out;
  });
}

std::vector<core::Command> PostgresStore::commands(const std::string& car, int64_t limit) {
  return reconnecting([&]() -> std::vector<core::Command> {
    std::vector<core::Command> out;
    if (limit <= 0) return out;
    PgParams p;
    p.add(limit);
    std::string sql = std::string("SELECT ") + kCommandColumns + " FROM commands";
    if (!car.empty()) {
      sql += " WHERE car = $2";
      p.add(std::string_view(car));
    }
    PgResult r = conn().exec(sql + " ORDER BY created DESC, id DESC LIMIT $1", p);
    for (int i = 0; i < r.rows(); ++i) out.push_back(read_command(r, i));
    return out;
  });
}

HistoryStats PostgresStore::history_stats() {
  return reconnecting([&]() -> HistoryStats {
    HistoryStats stats;
    PgConnection& c = conn();
    snapshot(c, [&] {
      PgResult r = c.exec(
          "SELECT count(*), (SELECT count(*) FROM (SELECT DISTINCT car, seq FROM telemetry) AS d),"
          " count(DISTINCT car), (SELECT count(*) FROM twins) FROM telemetry");
      stats.rows = r.i64(0, 0);
      stats.distinct = r.i64(0, 1);
      stats.cars = r.i64(0, 2);
      stats.twins = r.i64(0, 3);
    });
    return stats;
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

FleetSummary PostgresStore::fleet_summary(int64_t now_ms) {
  return reconnecting([&]() -> FleetSummary {
    FleetSummary out;
    PgConnection& c = conn();
    snapshot(c, [&] {
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
    });
    return out;
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
  return reconnecting([&]() -> std::optional<core::Command> {
    PgResult r = conn().exec(std::string("SELECT ") + kCommandColumns + " FROM commands WHERE id = $1",
                             PgParams().add(std::string_view(id)));
    if (r.rows() == 0) return std::nullopt;
    return read_command(r, 0);
  });
}

std::optional<core::Alert> PostgresStore::get_alert(const std::string& id) {
  return reconnecting([&]() -> std::optional<core::Alert> {
    PgResult r = conn().exec(std::string("SELECT ") + kAlertColumns + " FROM alerts WHERE id = $1",
                             PgParams().add(std::string_view(id)));
    if (r.rows() == 0) return std::nullopt;
    return read_alert(r, 0);
  });
}

bool PostgresStore::ack_alert(const std::string& id) {
  return reconnecting([&]() -> bool {
    return conn()
               .exec("UPDATE alerts SET acknowledged = true WHERE id = $1",
                     PgParams().add(std::string_view(id)))
               .affected() > 0;
  });
}

}  // namespace fleettwin::store
