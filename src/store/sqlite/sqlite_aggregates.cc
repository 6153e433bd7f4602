// SqliteStore's window aggregates: upsert by key keeping the highest revision, range reads, retention.
//
// Table `aggregates` (sqlite_schema.cc), key (aggregate, grp, window_start) WITHOUT ROWID: one aggregate's
// windows of one group are adjacent in the B-tree, so a car page's chart (one aggregate, one car, a time
// range) is one seek and a sequential read, and every group of an aggregate (the API with no car) one range
// ordered as the query asks (group, window start). Values are one BLOB per row (store/twin_blob.h): the
// columns differ per aggregate, and nothing filters on a value. `aggregates_by_window_start` lets retention
// find the oldest windows without scanning the table.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "store/sqlite/sqlite_store.h"
#include "store/twin_blob.h"

namespace fleettwin::store {
namespace {

// Replay-safe: a row replaces the stored one only when it is a later revision, or the same revision now
// final (the engine may repeat a window's last revision as final when it drops it). Anything else is a
// replay or an older result that arrived late, and changes nothing.
constexpr const char* kUpsertAggregateSql =
    "INSERT INTO aggregates(aggregate, grp, window_start, window_end, revision, final, count, vals)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    " ON CONFLICT(aggregate, grp, window_start) DO UPDATE SET window_end = excluded.window_end,"
    " revision = excluded.revision, final = excluded.final, count = excluded.count, vals = excluded.vals"
    " WHERE excluded.revision > aggregates.revision"
    " OR (excluded.revision = aggregates.revision AND excluded.final > aggregates.final)";

constexpr const char* kAggregateColumns =
    "aggregate, grp, window_start, window_end, revision, final, count, vals";

// Like telemetry retention (sqlite_retention.cc): short autocommit statements so the sink's writes on other
// connections wait milliseconds at most, and a bound per call.
constexpr int64_t kWindowsPerStatement = 5000;
constexpr int64_t kWindowsPerCall = 50000;

AggregateRow read_aggregate(const Stmt& s) {
  AggregateRow row;
  row.aggregate = s.column_text(0);
  row.group = s.column_text(1);
  row.window_start_ms = s.column_int(2);
  row.window_end_ms = s.column_int(3);
  row.revision = static_cast<uint32_t>(s.column_int(4));
  row.final = s.column_int(5) != 0;
  row.count = s.column_int(6);
  row.values = decode_aggregate_values(s.column_blob(7));
  return row;
}

}  // namespace

void SqliteStore::upsert_aggregates(std::span<const AggregateRow> rows) {
  if (rows.empty()) return;
  Stmt s(_db.handle(), kUpsertAggregateSql);
  std::string vals;
  _db.exec("BEGIN IMMEDIATE");
  try {
    for (const AggregateRow& r : rows) {
      vals = encode_aggregate_values(r.values);
      StmtScope scope(s);
      s.bind(1, std::string_view(r.aggregate))
          .bind(2, std::string_view(r.group))
          .bind(3, r.window_start_ms)
          .bind(4, r.window_end_ms)
          .bind(5, static_cast<int64_t>(r.revision))
          .bind(6, int64_t{r.final ? 1 : 0})
          .bind(7, r.count)
          .bind_blob(8, vals)
          .run();
    }
    _db.exec("COMMIT");
  } catch (...) {
    try {
      _db.exec("ROLLBACK");
    } catch (...) {  // NOLINT(bugprone-empty-catch): the first error is the one to report
    }
    throw;
  }
}

/// A range of window starts at most this wide, of every group, is read by window start (see below).
constexpr int64_t kNarrowRangeMs = int64_t{24} * 3'600'000;

std::vector<AggregateRow> SqliteStore::aggregates(const AggregateQuery& q) const {
  std::vector<AggregateRow> out;
  if (q.limit == 0 || q.from_ms >= q.to_ms) return out;
  // Two statements, so each gets the plan of its key prefix: (aggregate, grp, window_start) or (aggregate).
  // Every group over a narrow range of window starts (the API's fleet-wide total reads one start at a time)
  // is a third: by window start (`+aggregate` keeps the planner off the key, which it would otherwise scan
  // whole, every group of every day); over a wide range the key's order serves ORDER BY and LIMIT stops it.
  const bool narrow = q.from_ms > INT64_MAX - kNarrowRangeMs || q.to_ms <= q.from_ms + kNarrowRangeMs;
  const bool by_start = q.group.empty() && narrow;
  std::string sql = std::string("SELECT ") + kAggregateColumns + " FROM aggregates WHERE " +
                    (by_start ? "+aggregate = ?1" : "aggregate = ?1");
  if (!q.group.empty()) sql += " AND grp = ?5";
  sql += " AND window_start >= ?2 AND window_start < ?3 ORDER BY grp, window_start LIMIT ?4";
  Stmt s(_db.handle(), sql);
  s.bind(1, std::string_view(q.aggregate))
      .bind(2, q.from_ms)
      .bind(3, q.to_ms)
      .bind(4, static_cast<int64_t>(std::min<std::size_t>(q.limit, INT64_MAX)));
  if (!q.group.empty()) s.bind(5, std::string_view(q.group));
  while (s.step()) out.push_back(read_aggregate(s));
  return out;
}

RetentionResult SqliteStore::enforce_aggregates_retention(int64_t cutoff_ms) {
  RetentionResult result{.store = "sqlite"};
  Stmt del(
      _db.handle(),
      "DELETE FROM aggregates WHERE (aggregate, grp, window_start) IN (SELECT aggregate, grp, window_start"
      " FROM aggregates WHERE window_start < ?1 ORDER BY window_start LIMIT ?2)");
  int64_t n = 0;
  do {
    if (result.removed >= kWindowsPerCall) {
      result.more = true;
      break;
    }
    const StmtScope scope(del);
    n = del.bind(1, cutoff_ms).bind(2, kWindowsPerStatement).run();
    result.removed += n;
  } while (n == kWindowsPerStatement);
  Stmt oldest(_db.handle(), "SELECT min(window_start) FROM aggregates");
  if (oldest.step() && !oldest.column_is_null(0)) result.oldest_ms = oldest.column_int(0);
  return result;
}

}  // namespace fleettwin::store
