// MongoStore's window aggregates: collection `aggregates`, one document per (aggregate, group, window start)
// with a deterministic _id, upserted under a revision guard; range reads through the (aggregate, group,
// window_start) index; retention by window start.
//
// Document: {_id, aggregate, group, window_start, window_end (ms, int64), revision, final, count,
// columns: [names], values: [number | null]}. Columns and values are two parallel arrays, not a subdocument
// keyed by column: column names hold dots ("speed.mean"), which MongoDB reads as paths.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "store/mongo/mongo_bson.h"
#include "store/mongo/mongo_bulk.h"
#include "store/mongo/mongo_cursor.h"
#include "store/mongo/mongo_store.h"
#include "store/mongo/mongo_store_impl.h"

namespace fleettwin::store {
namespace {

using namespace mongo;  // NOLINT: the adapter's own helpers

constexpr int64_t kWindowsPerDelete = 5000;
constexpr int64_t kWindowsPerCall = 50000;

/// The key as one string: the lengths make it unambiguous whatever the names hold.
std::string aggregate_id(const AggregateRow& r) {
  return std::to_string(r.aggregate.size()) + ":" + r.aggregate + ":" + std::to_string(r.group.size()) + ":" +
         r.group + ":" + std::to_string(r.window_start_ms);
}

/// Matches the stored window only when `r` replaces it: a later revision, or the same one now final. A stored
/// document the guard refuses makes the upsert's insert fail with a duplicate key: a replay, nothing to do.
Bson revision_guard(const AggregateRow& r, const std::string& id) {
  Bson f;
  f.str("_id", id);
  f.array("$or", [&](ArrayWriter& any) {
    any.child([&](DocWriter& later) {
      later.child("revision", [&](DocWriter& lt) { lt.int64("$lt", static_cast<int64_t>(r.revision)); });
    });
    if (r.final) {
      any.child([&](DocWriter& same) {
        same.int64("revision", static_cast<int64_t>(r.revision)).boolean("final", false);
      });
    }
  });
  return f;
}

Bson aggregate_doc(const AggregateRow& r, const std::string& id) {
  Bson d;
  d.str("_id", id)
      .str("aggregate", r.aggregate)
      .str("group", r.group)
      .int64("window_start", r.window_start_ms)
      .int64("window_end", r.window_end_ms)
      .int64("revision", static_cast<int64_t>(r.revision))
      .boolean("final", r.final)
      .int64("count", r.count)
      .array("columns",
             [&](ArrayWriter& a) {
               for (const auto& v : r.values) a.str(v.first);
             })
      .array("values", [&](ArrayWriter& a) {
        for (const auto& v : r.values) a.num(v.second);
      });
  return d;
}

AggregateRow read_aggregate(const bson_t* d) {
  AggregateRow r;
  r.aggregate = get_str(d, "aggregate");
  r.group = get_str(d, "group");
  r.window_start_ms = get_int(d, "window_start");
  r.window_end_ms = get_int(d, "window_end");
  r.revision = static_cast<uint32_t>(get_int(d, "revision"));
  r.final = get_bool(d, "final");
  r.count = get_int(d, "count");
  std::vector<std::string> columns = get_str_list(d, "columns");
  const std::vector<double> values = get_num_list(d, "values");
  r.values.reserve(columns.size());
  for (std::size_t i = 0; i < columns.size(); ++i)
    r.values.emplace_back(std::move(columns[i]), i < values.size() ? values[i] : std::nan(""));
  return r;
}

}  // namespace

void MongoStore::upsert_aggregates(std::span<const AggregateRow> rows) {
  if (rows.empty()) return;
  std::vector<Bson> filters;
  std::vector<Bson> docs;
  filters.reserve(rows.size());
  docs.reserve(rows.size());
  for (const AggregateRow& r : rows) {
    const std::string id = aggregate_id(r);
    filters.push_back(revision_guard(r, id));
    docs.push_back(aggregate_doc(r, id));
  }
  const BulkPolicy policy{_options.max_attempts, _options.retry_backoff_ms, _options.retry_backoff_max_ms,
                          &_retries, &_errors};
  auto run = [&](const std::vector<std::size_t>& which) {
    // One request per window where an unordered update batch stops at its first write error (FerretDB 1.x,
    // as for alerts): a refused (stale) window must not hold back the rest.
    const std::size_t per_request = capabilities().atomic_updates ? which.size() : 1;
    std::vector<std::size_t> refused;
    for (std::size_t at = 0; at < which.size(); at += per_request) {
      const std::size_t n = std::min(per_request, which.size() - at);
      const BulkOutcome o = run_bulk(
          _impl->aggregates.get(), n,
          [&](mongoc_bulk_operation_t* b, std::size_t i) {
            add_upsert_replace(b, filters[which[at + i]], docs[which[at + i]]);
          },
          policy);
      for (const std::size_t d : o.duplicates) refused.push_back(which[at + d]);
    }
    return refused;
  };
  std::vector<std::size_t> all(rows.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  // A duplicate key is a stale window, or the loser of two first inserts racing: the document exists now, so
  // one more guarded upsert decides (applies if newer, duplicate key again if stale).
  const std::vector<std::size_t> refused = run(all);
  if (!refused.empty()) run(refused);
}

std::vector<AggregateRow> MongoStore::aggregates(const AggregateQuery& q) const {
  if (q.limit == 0 || q.from_ms >= q.to_ms) return {};
  Bson filter;
  filter.str("aggregate", q.aggregate);
  if (!q.group.empty()) filter.str("group", q.group);
  filter.child("window_start",
               [&](DocWriter& range) { range.int64("$gte", q.from_ms).int64("$lt", q.to_ms); });
  const auto limit = static_cast<int64_t>(std::min<std::size_t>(q.limit, INT64_MAX));
  return find_all<AggregateRow>(_impl->aggregates.get(), filter,
                                find_opts({{"group", 1}, {"window_start", 1}}, limit), read_aggregate,
                                "aggregates");
}

RetentionResult MongoStore::enforce_aggregates_retention(int64_t cutoff_ms) {
  RetentionResult result{.store = "mongo"};
  Bson older;
  older.child("window_start", [&](DocWriter& c) { c.int64("$lt", cutoff_ms); });
  std::vector<std::string> ids;
  do {
    if (result.removed >= kWindowsPerCall) {
      result.more = true;
      break;
    }
    ids.clear();
    find(
        _impl->aggregates.get(), older, find_opts({{"window_start", 1}}, kWindowsPerDelete, {"_id"}),
        [&](const bson_t* d) { ids.push_back(get_str(d, "_id")); }, "aggregates retention");
    if (ids.empty()) break;
    bson_t reply;
    bson_error_t error;
    const bool ok =
        mongoc_collection_delete_many(_impl->aggregates.get(), id_in(ids).get(), nullptr, &reply, &error);
    const int64_t deleted = ok ? get_int(&reply, "deletedCount") : 0;
    bson_destroy(&reply);
    if (!ok) throw MongoError("aggregates retention", error);
    result.removed += deleted;
  } while (std::cmp_equal(ids.size(), kWindowsPerDelete));
  find(
      _impl->aggregates.get(), Bson(), find_opts({{"window_start", 1}}, 1, {"window_start"}),
      [&](const bson_t* d) { result.oldest_ms = get_int(d, "window_start"); }, "aggregates retention");
  return result;
}

}  // namespace fleettwin::store
