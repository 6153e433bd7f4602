// The analytics of MongoStore: counts, the fleet summary, per-car maxima and hourly aggregates. Each runs
// as an aggregation pipeline where the server has the operators (MongoDB), else as one pass whose rows
// are aggregated here (FerretDB 1.x: docs/operations.md, "FerretDB 1.x and the MongoDB adapter").
#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "store/mongo/mongo_bson.h"
#include "store/mongo/mongo_cursor.h"
#include "store/mongo/mongo_store.h"
#include "store/mongo/mongo_store_impl.h"

namespace fleettwin::store {
namespace {

using namespace mongo;  // NOLINT: the adapter's own helpers

constexpr int64_t kHourMs = 3'600'000;

int64_t hour_of(int64_t ts) { return (ts / kHourMs) * kHourMs; }  // as SQLite's integer division

/// {pipeline: [{$match: match}, ...stages]}: `match` is built with typed appends (it holds the caller's
/// values); `stages_json` is constant text, a JSON array of the stages after it.
Bson match_pipeline(const Bson& match, const std::string& stages_json) {
  const Bson stages = Bson::from_json(R"({"stages": )" + stages_json + "}");
  bson_iter_t it;
  bson_iter_t child;
  if (!bson_iter_init_find(&it, stages.get(), "stages") || !bson_iter_recurse(&it, &child)) {
    throw MongoError("pipeline text is not an array");
  }
  Bson p;
  p.array("pipeline", [&](ArrayWriter& arr) {
    arr.child([&](DocWriter& stage) { stage.doc("$match", match.get()); });
    while (bson_iter_next(&child)) {
      uint32_t len = 0;
      const uint8_t* data = nullptr;
      bson_t doc;
      if (!BSON_ITER_HOLDS_DOCUMENT(&child)) throw MongoError("pipeline stage is not a document");
      bson_iter_document(&child, &len, &data);
      if (!bson_init_static(&doc, data, len)) throw MongoError("pipeline stage is not a document");
      arr.doc(&doc);
    }
  });
  return p;
}

/// Hourly min/avg/max/count of `field` over the rows matching `match`, bucketed here from one pass in
/// (ts, seq) order: FerretDB 1.x has neither $dateTrunc nor $min/$max/$avg in $group. Summing in ts order
/// matches SQLite's avg, which reads the same rows in the same order.
std::vector<HourlyAggregate> hourly_client_side(mongoc_collection_t* telemetry, const Bson& match,
                                                const std::string& field) {
  std::vector<HourlyAggregate> out;
  double sum = 0;
  find(
      telemetry, match, find_opts({{"ts", 1}, {"seq", 1}}, 0, {"ts", field}),
      [&](const bson_t* d) {
        const double v = get_num(d, field.c_str());
        if (std::isnan(v)) return;
        const int64_t hour = hour_of(get_int(d, "ts"));
        if (out.empty() || out.back().hour_ms != hour) {
          if (!out.empty()) out.back().avg = sum / static_cast<double>(out.back().count);
          out.push_back(HourlyAggregate{hour, v, 0, v, 0});
          sum = 0;
        }
        HourlyAggregate& h = out.back();
        h.min = std::min(h.min, v);
        h.max = std::max(h.max, v);
        sum += v;
        ++h.count;
      },
      "hourly");
  if (!out.empty()) out.back().avg = sum / static_cast<double>(out.back().count);
  return out;
}

}  // namespace

HistoryStats MongoStore::history_stats() {
  HistoryStats s;
  if (_pool->capabilities().ferretdb) {
    // On FerretDB a count is a scan of the whole collection, as is the $group: one pass counts both, per
    // car. Callers count before or after a sink writes, not while it does (see run_pipeline): the pass
    // holds back FerretDB's WAL checkpoints (docs/operations.md, "FerretDB 1.x and the MongoDB adapter").
    aggregate(
        _impl->telemetry.get(),
        Bson::from_json(R"({"pipeline": [{"$group": {"_id": "$car", "n": {"$sum": 1}}}]})"),
        [&](const bson_t* d) {
          s.rows += get_int(d, "n");
          ++s.cars;
        },
        "history_stats");
  } else {
    s.rows = count(_impl->telemetry.get(), Bson(), "history_stats");
    // Distinct cars by $group, one round trip however many cars.
    aggregate(
        _impl->telemetry.get(),
        Bson::from_json(R"({"pipeline": [{"$group": {"_id": "$car"}}, {"$count": "n"}]})"),
        [&](const bson_t* d) { s.cars = get_int(d, "n"); }, "history_stats");
  }
  s.distinct = s.rows;  // _id is "{car}:{seq}": the unique index makes every row a distinct pair
  s.twins = count(_impl->twins.get(), Bson(), "history_stats");
  return s;
}

std::vector<std::pair<std::string, int64_t>> MongoStore::max_seq_per_car() {
  std::vector<std::pair<std::string, int64_t>> out;
  if (_pool->capabilities().full_pipelines) {
    aggregate(
        _impl->telemetry.get(),
        Bson::from_json(R"({"pipeline": [{"$group": {"_id": "$car", "m": {"$max": "$seq"}}},
                                                                  {"$sort": {"_id": 1}}]})"),
        [&](const bson_t* d) { out.emplace_back(get_str(d, "_id"), get_int(d, "m")); }, "max_seq_per_car");
    return out;
  }
  // No $max on FerretDB 1.x, and a per-car `sort seq desc limit 1` scans the collection each: one pass over
  // (car, seq) instead. It runs once at start and in `up`'s final check.
  std::map<std::string, int64_t> max_seq;
  find(
      _impl->telemetry.get(), Bson(), find_opts({}, 0, {"car", "seq"}),
      [&](const bson_t* d) {
        int64_t& m = max_seq[get_str(d, "car")];
        m = std::max(m, get_int(d, "seq"));
      },
      "max_seq_per_car");
  out.assign(max_seq.begin(), max_seq.end());
  return out;
}

std::vector<OldestRow> MongoStore::oldest_per_car() {
  // One pass over (car, seq, ts), as max_seq_per_car does on FerretDB 1.x (no $min / $first there); it runs
  // once, in `up`'s final check.
  std::map<std::string, OldestRow> oldest;
  find(
      _impl->telemetry.get(), Bson(), find_opts({}, 0, {"car", "seq", "ts"}),
      [&](const bson_t* d) {
        const int64_t seq = get_int(d, "seq");
        auto [it, added] = oldest.try_emplace(get_str(d, "car"));
        if (added || seq < it->second.seq) it->second = {it->first, seq, get_int(d, "ts")};
      },
      "oldest_per_car");
  std::vector<OldestRow> out;
  out.reserve(oldest.size());
  for (auto& [car, row] : oldest) out.push_back(std::move(row));
  return out;
}

FleetSummary MongoStore::fleet_summary(int64_t now_ms) {
  FleetSummary out;
  // $group with $sum runs on MongoDB and FerretDB alike.
  aggregate(
      _impl->twins.get(),
      Bson::from_json(R"({"pipeline": [{"$group": {"_id": "$health.status", "n": {"$sum": 1}}}]})"),
      [&](const bson_t* d) {
        const int64_t n = get_int(d, "n");
        out.by_status[get_str(d, "_id")] += n;
        out.cars += n;
      },
      "fleet_summary");
  Bson online;
  online.boolean("connection.online", true);
  out.online = count(_impl->twins.get(), online, "fleet_summary");
  Bson minute;
  minute.date_range("ts", now_ms - 60'000, now_ms);
  out.messages_last_minute = count(_impl->telemetry.get(), minute, "fleet_summary");
  return out;
}

std::vector<HourlyAggregate> MongoStore::hourly(const std::string& car, std::string_view signal,
                                                int64_t from_ms, int64_t to_ms) {
  std::string field = "score";
  if (signal != "score") {
    const auto i = _catalog->find(signal);
    if (!i) throw std::invalid_argument("hourly: unknown signal '" + std::string(signal) + "'");
    field = (*_catalog)[*i].field;  // an identifier from the catalog: safe as a field path
  }
  std::vector<HourlyAggregate> out;
  if (from_ms >= to_ms) return out;
  Bson match;
  match.str("car", car).date_range("ts", from_ms, to_ms);
  if (!_pool->capabilities().full_pipelines) return hourly_client_side(_impl->telemetry.get(), match, field);
  // Nulls (NaN) are not counted, as SQLite's count(col).
  match.child(field, [](DocWriter& type) { type.str("$type", "number"); });
  const std::string ref = "\"$" + field + "\"";  // a catalog name, never the caller's text
  const Bson p = match_pipeline(match, R"([{"$group": {"_id": {"$dateTrunc": {"date": "$ts", "unit": "hour"}},
                                     "min": {"$min": )" +
                                           ref + R"(}, "avg": {"$avg": )" + ref + R"(}, "max": {"$max": )" +
                                           ref + R"(}, "n": {"$sum": 1}}},
                                     {"$sort": {"_id": 1}}])");
  aggregate(
      _impl->telemetry.get(), p,
      [&](const bson_t* d) {
        out.push_back(HourlyAggregate{get_int(d, "_id"), get_num(d, "min"), get_num(d, "avg"),
                                      get_num(d, "max"), get_int(d, "n")});
      },
      "hourly");
  return out;
}

std::vector<AlertsPerHour> MongoStore::alerts_per_hour(int64_t from_ms, int64_t to_ms) {
  std::vector<AlertsPerHour> out;
  if (from_ms >= to_ms) return out;
  Bson match;
  match.boolean("raised", true).date_range("ts", from_ms, to_ms);
  std::map<std::pair<int64_t, std::string>, int64_t> counts;
  if (_pool->capabilities().full_pipelines) {
    const Bson p =
        match_pipeline(match, R"([{"$group": {"_id": {"h": {"$dateTrunc": {"date": "$ts", "unit": "hour"}},
                                                           "kind": "$kind"},
                                                   "n": {"$sum": 1}}}])");
    aggregate(
        _impl->alerts.get(), p,
        [&](const bson_t* d) {
          counts[{get_int(d, "_id.h"), get_str(d, "_id.kind")}] += get_int(d, "n");
        },
        "alerts_per_hour");
  } else {
    // No $dateTrunc on FerretDB 1.x: the raised alerts of the range are counted here.
    find(
        _impl->alerts.get(), match, find_opts({}, 0, {"ts", "kind"}),
        [&](const bson_t* d) {
          ++counts[{hour_of(get_int(d, "ts")), get_str(d, "kind")}];
        },
        "alerts_per_hour");
  }
  for (const auto& [key, n] : counts) out.push_back(AlertsPerHour{key.first, key.second, n});
  return out;
}

// Not a TTL index: a TTL index's expireAfterSeconds is fixed when it is created (a changed
// store.history_retention would need collMod, and "ts" already has a plain index of the same key), and
// FerretDB 1.24 has no TTL indexes: it refuses expireAfterSeconds (docs/architecture.md, history retention).
// Instead: the _ids of the oldest rows, found through the ts index, at most kRetentionBatch at a time,
// deleted by _id, so each deleteMany is a bounded write.
RetentionResult MongoStore::enforce_retention(int64_t cutoff_ms) {
  constexpr int64_t kRetentionBatch = 5000;
  constexpr int64_t kRetentionPerCall = 50000;
  RetentionResult result{.store = "mongo"};
  if (_retention_floor != INT64_MIN && cutoff_ms <= _retention_floor) {
    result.oldest_ms = _retention_floor;  // nothing older was left or written since: skip the scans
    return result;
  }
  Bson older;
  older.child("ts", [&](DocWriter& c) { c.date("$lt", cutoff_ms); });
  std::vector<std::string> ids;
  do {
    if (result.removed >= kRetentionPerCall) {
      result.more = true;
      break;
    }
    ids.clear();
    find(
        _impl->telemetry.get(), older, find_opts({{"ts", 1}}, kRetentionBatch, {"_id"}),
        [&](const bson_t* d) { ids.push_back(get_str(d, "_id")); }, "retention");
    if (ids.empty()) break;
    bson_t reply;
    bson_error_t error;
    const bool ok =
        mongoc_collection_delete_many(_impl->telemetry.get(), id_in(ids).get(), nullptr, &reply, &error);
    const int64_t deleted = ok ? get_int(&reply, "deletedCount") : 0;
    bson_destroy(&reply);
    if (!ok) throw MongoError("retention", error);
    result.removed += deleted;
  } while (std::cmp_equal(ids.size(), kRetentionBatch));
  find(
      _impl->telemetry.get(), Bson(), find_opts({{"ts", 1}}, 1, {"ts"}),
      [&](const bson_t* d) { result.oldest_ms = get_int(d, "ts"); }, "retention");
  if (!result.more) _retention_floor = result.oldest_ms;
  return result;
}

}  // namespace fleettwin::store
