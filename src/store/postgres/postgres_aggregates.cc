// PostgresStore's window aggregates: upsert keeping the highest revision, range reads, retention (table
// `aggregates`, pg_schema.cc).

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>
#include <tuple>
#include <vector>

#include "store/postgres/pg_conn.h"
#include "store/postgres/postgres_store.h"
#include "store/twin_blob.h"

namespace fleettwin::store {
namespace {

// As in the SQLite store: a later revision, or the same one now final, replaces the stored row; a replay or
// an older revision changes nothing.
constexpr const char* kUpsertAggregateSql =
    "INSERT INTO aggregates(aggregate, grp, window_start, window_end, revision, final, count, vals)"
    " VALUES($1, $2, $3, $4, $5, $6, $7, $8)"
    " ON CONFLICT(aggregate, grp, window_start) DO UPDATE SET window_end = excluded.window_end,"
    " revision = excluded.revision, final = excluded.final, count = excluded.count, vals = excluded.vals"
    " WHERE excluded.revision > aggregates.revision"
    " OR (excluded.revision = aggregates.revision AND excluded.final AND NOT aggregates.final)";

constexpr const char* kAggregateColumns =
    "aggregate, grp, window_start, window_end, revision, final, count, vals";

// Short transactions (one DELETE each), bounded per call, as history retention on the other stores.
constexpr int64_t kWindowsPerStatement = 5000;
constexpr int64_t kWindowsPerCall = 50000;

}  // namespace

void PostgresStore::upsert_aggregates(std::span<const AggregateRow> rows) {
  if (rows.empty()) return;
  // Rows are locked in key order, so two sinks writing overlapping batches at once cannot deadlock.
  std::vector<std::size_t> order(rows.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return std::tie(rows[a].aggregate, rows[a].group, rows[a].window_start_ms) <
           std::tie(rows[b].aggregate, rows[b].group, rows[b].window_start_ms);
  });
  reconnecting([&] {
    PgConnection& c = conn();
    in_transaction(c, "BEGIN", [&] {
      for (const std::size_t i : order) {
        const AggregateRow& r = rows[i];
        PgParams p;
        p.add_all(r.aggregate, r.group, r.window_start_ms, r.window_end_ms, static_cast<int64_t>(r.revision),
                  r.final, r.count)
            .add_bytes(encode_aggregate_values(r.values));
        c.exec(kUpsertAggregateSql, p);
      }
    });
    return 0;
  });
}

std::vector<AggregateRow> PostgresStore::aggregates(const AggregateQuery& q) const {
  std::vector<AggregateRow> out;
  if (q.limit == 0 || q.from_ms >= q.to_ms) return out;
  auto* self = const_cast<PostgresStore*>(this);  // NOLINT(cppcoreguidelines-pro-type-const-cast): see header
  PgParams p;
  p.add_all(q.aggregate, q.from_ms, q.to_ms, static_cast<int64_t>(std::min<std::size_t>(q.limit, INT64_MAX)));
  std::string sql = std::string("SELECT ") + kAggregateColumns + " FROM aggregates WHERE aggregate = $1";
  if (!q.group.empty()) {
    sql += " AND grp = $5";
    p.add(std::string_view(q.group));
  }
  sql += " AND window_start >= $2 AND window_start < $3 ORDER BY grp, window_start LIMIT $4";
  PgResult r = self->reconnecting([&] { return self->conn().exec(sql, p); });
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    AggregateRow& row = out.emplace_back();
    row.aggregate = r.str(i, 0);
    row.group = r.str(i, 1);
    row.window_start_ms = r.i64(i, 2);
    row.window_end_ms = r.i64(i, 3);
    row.revision = static_cast<uint32_t>(r.i64(i, 4));
    row.final = r.boolean(i, 5);
    row.count = r.i64(i, 6);
    row.values = decode_aggregate_values(r.bytes(i, 7));
  }
  return out;
}

RetentionResult PostgresStore::enforce_aggregates_retention(int64_t cutoff_ms) {
  RetentionResult result{.store = "postgres"};
  int64_t n = 0;
  do {
    if (result.removed >= kWindowsPerCall) {
      result.more = true;
      break;
    }
    n = reconnecting([&] {
      return conn()
          .exec(
              "DELETE FROM aggregates WHERE (aggregate, grp, window_start) IN (SELECT aggregate, grp,"
              " window_start FROM aggregates WHERE window_start < $1 ORDER BY window_start LIMIT $2)",
              PgParams().add_all(cutoff_ms, kWindowsPerStatement))
          .affected();
    });
    result.removed += n;
  } while (n == kWindowsPerStatement);
  PgResult oldest = reconnecting([&] { return conn().exec("SELECT min(window_start) FROM aggregates"); });
  if (!oldest.is_null(0, 0)) result.oldest_ms = oldest.i64(0, 0);
  return result;
}

}  // namespace fleettwin::store
