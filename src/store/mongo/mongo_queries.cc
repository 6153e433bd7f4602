// The reads of MongoStore by key and by page: one twin, alert or command by id; twins by query; a car's
// history; the latest alerts and commands; the top scores.
#include <string>
#include <string_view>
#include <vector>

#include "store/mongo/mongo_bson.h"
#include "store/mongo/mongo_cursor.h"
#include "store/mongo/mongo_documents.h"
#include "store/mongo/mongo_filter.h"
#include "store/mongo/mongo_store.h"
#include "store/mongo/mongo_store_impl.h"

namespace fleettwin::store {
namespace {

using namespace mongo;  // NOLINT: the adapter's own helpers

/// The page clause of a twin query: the position after the cursor `after_id` in (sort key, _id) order.
Bson after_cursor(const TwinSort& sort, const std::string& after_id) {
  Bson c;
  if (sort.by_id()) {
    c.child("_id", [&](DocWriter& gt) { gt.str("$gt", after_id); });
    return c;
  }
  // (key beyond v) or (key == v and _id > id).
  const TwinCursor cur = decode_twin_cursor(sort, after_id);
  const std::string& path = sort.field.path;
  c.array("$or", [&](ArrayWriter& any) {
    any.child([&](DocWriter& beyond) {
      beyond.child(path, [&](DocWriter& op) {
        append_filter_value(op.get(), sort.descending ? "$lt" : "$gt", sort.field, cur.value);
      });
    });
    any.child([&](DocWriter& same) {
      append_filter_value(same.get(), path.c_str(), sort.field, cur.value);
      same.child("_id", [&](DocWriter& gt) { gt.str("$gt", cur.id); });
    });
  });
  return c;
}

/// The `limit` latest documents of one car (every car when `car` is empty), newest `time` first, then by
/// _id descending; each read by read(const bson_t*) -> T.
template <typename T, typename Read>
std::vector<T> latest(mongoc_collection_t* coll, const std::string& car, std::string_view time, int64_t limit,
                      Read&& read, const char* what) {
  if (limit <= 0) return {};
  Bson f;
  if (!car.empty()) f.str("car", car);
  return find_all<T>(coll, f, find_opts({{time, -1}, {"_id", -1}}, limit), read, what);
}

}  // namespace

std::optional<core::Twin> MongoStore::get_twin(const std::string& car) {
  return find_one<core::Twin>(
      _impl->twins.get(), id_filter(car), [this](const bson_t* d) { return read_twin(d, *_catalog); },
      "get_twin");
}

std::vector<core::Twin> MongoStore::list_twins(const TwinQuery& q) {
  if (q.limit <= 0) return {};
  const TwinSort sort = parse_sort(q.sort, *_catalog);
  // {$and: [status, online, filter, page]}: each clause a document of its own, so no key of one can
  // collide with another's.
  Bson query;
  query.array("$and", [&](ArrayWriter& all) {
    all.doc(Bson().get());  // {} matches everything: $and needs at least one element
    if (q.status) all.child([&](DocWriter& c) { c.str("health.status", core::to_string(*q.status)); });
    if (q.online) all.child([&](DocWriter& c) { c.boolean("connection.online", *q.online); });
    if (q.filter) all.doc(filter_bson(*q.filter).get());
    if (!q.after_id.empty()) all.doc(after_cursor(sort, q.after_id).get());
  });
  const Bson opts = sort.by_id()
                        ? find_opts({{"_id", 1}}, q.limit)
                        : find_opts({{sort.field.path, sort.descending ? -1 : 1}, {"_id", 1}}, q.limit);
  return find_all<core::Twin>(
      _impl->twins.get(), query, opts, [this](const bson_t* d) { return read_twin(d, *_catalog); },
      "list_twins");
}

std::vector<TelemetryRow> MongoStore::history(const std::string& car, int64_t from_ms, int64_t to_ms,
                                              int64_t limit) {
  if (limit <= 0 || from_ms >= to_ms) return {};
  Bson f;
  f.str("car", car).date_range("ts", from_ms, to_ms);
  return find_all<TelemetryRow>(
      _impl->telemetry.get(), f, find_opts({{"ts", 1}, {"seq", 1}}, limit),
      [this](const bson_t* d) { return read_telemetry(d, *_catalog); }, "history");
}

void MongoStore::scan_telemetry(const std::function<void(const TelemetryRow&)>& f) {
  find(
      _impl->telemetry.get(), Bson(), Bson(), [&](const bson_t* d) { f(read_telemetry(d, *_catalog)); },
      "scan_telemetry");
}

std::vector<core::Alert> MongoStore::alerts(const std::string& car, int64_t limit) {
  return latest<core::Alert>(_impl->alerts.get(), car, "ts", limit, read_alert, "alerts");
}

std::optional<core::Alert> MongoStore::get_alert(const std::string& id) {
  return find_one<core::Alert>(_impl->alerts.get(), id_filter(id), read_alert, "get_alert");
}

std::vector<core::Command> MongoStore::commands(const std::string& car, int64_t limit) {
  return latest<core::Command>(_impl->commands.get(), car, "created", limit, read_command, "commands");
}

std::optional<core::Command> MongoStore::get_command(const std::string& id) {
  return find_one<core::Command>(_impl->commands.get(), id_filter(id), read_command, "get_command");
}

std::vector<CarScore> MongoStore::top_by_score(int64_t n) {
  if (n <= 0) return {};
  // A NaN score is stored as null, which sorts below every number: last, as NULL in SQLite's DESC.
  return find_all<CarScore>(
      _impl->twins.get(), Bson(), find_opts({{"health.score", -1}, {"_id", 1}}, n),
      [](const bson_t* d) {
        return CarScore{get_str(d, "_id"), get_num(d, "health.score"), get_num(d, "health.threshold"),
                        get_str(d, "health.status")};
      },
      "top_by_score");
}

}  // namespace fleettwin::store
