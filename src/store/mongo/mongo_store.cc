#include "store/mongo/mongo_store.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <unistd.h>

#include "core/signals.h"
#include "store/mongo/mongo_bson.h"
#include "store/mongo/mongo_filter.h"

namespace fleettwin::store {
namespace {

using namespace mongo;  // NOLINT: the adapter's own helpers

constexpr int64_t kHourMs = 3'600'000;
constexpr int32_t kDuplicateKey = 11000;

void init_driver() {
  // mongoc_init is process-wide and must run once before any other call; mongoc_cleanup is left to exit,
  // since pools may live in statics until then.
  static std::once_flag once;
  std::call_once(once, [] { mongoc_init(); });
}

int version_major(const std::string& v) { return v.empty() ? 0 : std::atoi(v.c_str()); }

// ---- documents ------------------------------------------------------------------------------------------

void append_signals(bson_t* b, const std::array<double, core::kSignalCount>& values) {
  for (size_t i = 0; i < core::kSignalCount; ++i) {
    const auto& s = core::kSignals[i];
    const double v = values[i];
    // Integer signals (tyre pressures, firmware) as int64, as the catalog types them; doubles otherwise.
    if (s.type == core::SignalType::kInt && std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9e15) {
      append_int(b, s.name, static_cast<int64_t>(v));
    } else {
      append_num(b, s.name, v);
    }
  }
}

void read_signals(const bson_t* doc, const std::string& prefix, std::array<double, core::kSignalCount>& out) {
  for (size_t i = 0; i < core::kSignalCount; ++i) {
    out[i] = get_num(doc, (prefix + std::string(core::kSignals[i].name)).c_str());
  }
}

void append_string_map(bson_t* b, const char* key, const std::map<std::string, std::string>& m) {
  bson_t child;
  bson_append_document_begin(b, key, -1, &child);
  // Values are the JSON text the twin holds (e.g. "30", "\"eco\""), kept as strings so they read back
  // byte-for-byte.
  for (const auto& [k, v] : m) append_str(&child, k, v);
  bson_append_document_end(b, &child);
}

std::map<std::string, std::string> read_string_map(const bson_t* doc, const char* key) {
  std::map<std::string, std::string> out;
  bson_iter_t it;
  bson_iter_t child;
  if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &child)) {
    while (bson_iter_next(&child)) {
      if (!BSON_ITER_HOLDS_UTF8(&child)) continue;
      uint32_t len = 0;
      const char* s = bson_iter_utf8(&child, &len);
      out.emplace(bson_iter_key(&child), std::string(s, len));
    }
  }
  return out;
}

void append_string_list(bson_t* b, const char* key, const std::vector<std::string>& list) {
  bson_t arr;
  bson_append_array_begin(b, key, -1, &arr);
  for (size_t i = 0; i < list.size(); ++i) append_str(&arr, std::to_string(i), list[i]);
  bson_append_array_end(b, &arr);
}

std::vector<std::string> read_string_list(const bson_t* doc, const char* path) {
  std::vector<std::string> out;
  bson_iter_t root;
  bson_iter_t it;
  bson_iter_t child;
  if (bson_iter_init(&root, doc) && bson_iter_find_descendant(&root, path, &it) &&
      BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &child)) {
    while (bson_iter_next(&child)) {
      if (!BSON_ITER_HOLDS_UTF8(&child)) continue;
      uint32_t len = 0;
      const char* s = bson_iter_utf8(&child, &len);
      out.emplace_back(s, len);
    }
  }
  return out;
}

// The twin document of DESIGN.md §4 Twin. Times are BSON dates; NaN numbers are null.
Bson twin_doc(const core::Twin& t) {
  Bson d;
  bson_t* b = d.get();
  append_str(b, "_id", t.id);
  append_int(b, "version", t.version);
  bson_t rep;
  bson_append_document_begin(b, "reported", -1, &rep);
  append_int(&rep, "seq", t.reported.seq);
  append_date(&rep, "ts", t.reported.ts);
  append_num(&rep, "lat", t.reported.lat);
  append_num(&rep, "lon", t.reported.lon);
  append_signals(&rep, t.reported.values);
  bson_append_document_end(b, &rep);
  append_bool(b, "has_reported", t.has_reported);
  append_string_map(b, "desired", t.desired);
  append_string_map(b, "reported_settings", t.reported_settings);
  append_string_list(b, "delta", t.delta());
  bson_t meta;
  bson_append_document_begin(b, "metadata", -1, &meta);
  for (size_t i = 0; i < core::kSignalCount; ++i) append_date(&meta, core::kSignals[i].name, t.metadata[i]);
  bson_append_document_end(b, &meta);
  bson_t health;
  bson_append_document_begin(b, "health", -1, &health);
  append_num(&health, "score", t.health.score);
  append_num(&health, "threshold", t.health.threshold);
  append_str(&health, "status", core::to_string(t.health.status));
  append_date(&health, "since", t.health.since);
  append_string_list(&health, "top_signals", t.health.top_signals);
  append_str(&health, "model_version", t.health.model_version);
  bson_append_document_end(b, &health);
  bson_t conn;
  bson_append_document_begin(b, "connection", -1, &conn);
  append_bool(&conn, "online", t.online);
  append_date(&conn, "first_seen", t.first_seen);
  append_date(&conn, "last_seen", t.last_seen);
  bson_append_document_end(b, &conn);
  append_point(b, "location", t.reported.lat, t.reported.lon);
  bson_t stats;
  bson_append_document_begin(b, "stats", -1, &stats);
  append_int(&stats, "messages", t.messages);
  append_num(&stats, "distance_km", t.distance_km);
  bson_append_document_end(b, &stats);
  return d;
}

core::Twin read_twin(const bson_t* d) {
  core::Twin t;
  t.id = get_str(d, "_id");
  t.version = get_int(d, "version");
  t.has_reported = get_bool(d, "has_reported");
  // The reported state belongs to the twin's own car; the document does not repeat the id.
  if (t.has_reported) t.reported.car = t.id;
  t.reported.seq = get_int(d, "reported.seq");
  t.reported.ts = get_int(d, "reported.ts");
  t.reported.lat = get_num(d, "reported.lat");
  t.reported.lon = get_num(d, "reported.lon");
  read_signals(d, "reported.", t.reported.values);
  t.desired = read_string_map(d, "desired");
  t.reported_settings = read_string_map(d, "reported_settings");
  for (size_t i = 0; i < core::kSignalCount; ++i) {
    t.metadata[i] = get_int(d, ("metadata." + std::string(core::kSignals[i].name)).c_str());
  }
  t.health.score = get_num(d, "health.score");
  t.health.threshold = get_num(d, "health.threshold");
  t.health.status = core::health_status_from_string(get_str(d, "health.status"));
  t.health.since = get_int(d, "health.since");
  t.health.top_signals = read_string_list(d, "health.top_signals");
  t.health.model_version = get_str(d, "health.model_version");
  t.online = get_bool(d, "connection.online");
  t.first_seen = get_int(d, "connection.first_seen");
  t.last_seen = get_int(d, "connection.last_seen");
  t.messages = get_int(d, "stats.messages");
  t.distance_km = get_num(d, "stats.distance_km");
  return t;
}

// telemetry: _id "{car}:{seq}", top-level car/seq/ts(date)/location, every signal, score when known.
Bson telemetry_doc(const TelemetryRow& r) {
  Bson d;
  bson_t* b = d.get();
  append_str(b, "_id", r.t.car + ":" + std::to_string(r.t.seq));
  append_str(b, "car", r.t.car);
  append_int(b, "seq", r.t.seq);
  append_date(b, "ts", r.t.ts);
  append_point(b, "location", r.t.lat, r.t.lon);
  append_signals(b, r.t.values);
  if (r.score) append_num(b, "score", *r.score);
  return d;
}

double point_coordinate(const bson_t* d, const char* path) {
  bson_iter_t root;
  bson_iter_t it;
  if (bson_iter_init(&root, d) && bson_iter_find_descendant(&root, path, &it) &&
      BSON_ITER_HOLDS_NUMBER(&it)) {
    return bson_iter_as_double(&it);
  }
  return std::numeric_limits<double>::quiet_NaN();
}

TelemetryRow read_telemetry(const bson_t* d) {
  TelemetryRow r;
  r.t.car = get_str(d, "car");
  r.t.seq = get_int(d, "seq");
  r.t.ts = get_int(d, "ts");
  r.t.lon = point_coordinate(d, "location.coordinates.0");
  r.t.lat = point_coordinate(d, "location.coordinates.1");
  read_signals(d, "", r.t.values);
  if (has(d, "score")) r.score = get_num(d, "score");
  return r;
}

void append_alert_fields(bson_t* b, const core::Alert& a) {
  append_str(b, "car", a.car);
  append_str(b, "kind", a.kind);
  append_bool(b, "raised", a.raised);
  append_date(b, "ts", a.ts);
  append_num(b, "score", a.score);
  append_num(b, "threshold", a.threshold);
  append_string_list(b, "signals", a.signals);
  append_str(b, "model_version", a.model_version);
}

core::Alert read_alert(const bson_t* d) {
  core::Alert a;
  a.id = get_str(d, "_id");
  a.car = get_str(d, "car");
  a.kind = get_str(d, "kind");
  a.raised = get_bool(d, "raised");
  a.ts = get_int(d, "ts");
  a.score = get_num(d, "score");
  a.threshold = get_num(d, "threshold");
  a.signals = read_string_list(d, "signals");
  a.model_version = get_str(d, "model_version");
  a.acknowledged = get_bool(d, "acknowledged");
  return a;
}

// A command moves pending -> delivered -> acked | failed | expired; the rank lets the upsert filter refuse a
// replayed earlier state (as the SQLite CASE does).
int status_rank(const std::string& s) {
  if (s == "delivered") return 1;
  if (s == "acked" || s == "failed" || s == "expired") return 2;
  return 0;
}

Bson command_doc(const core::Command& c) {
  Bson d;
  bson_t* b = d.get();
  append_str(b, "_id", c.id);
  append_str(b, "car", c.car);
  append_str(b, "name", c.name);
  append_str(b, "params", c.params_json);  // JSON object text, byte-exact
  append_date(b, "created", c.created);
  append_date(b, "expires", c.expires);  // epoch (0) = never
  append_str(b, "status", c.status);
  append_int(b, "status_rank", status_rank(c.status));
  return d;
}

core::Command read_command(const bson_t* d) {
  core::Command c;
  c.id = get_str(d, "_id");
  c.car = get_str(d, "car");
  c.name = get_str(d, "name");
  c.params_json = get_str(d, "params");
  c.created = get_int(d, "created");
  c.expires = get_int(d, "expires");
  c.status = get_str(d, "status");
  return c;
}

Bson id_filter(const std::string& id) {
  Bson f;
  append_str(f.get(), "_id", id);
  return f;
}

/// {key: {$gte: from, $lt: to}} on a date field.
void append_date_range(bson_t* b, const char* key, int64_t from_ms, int64_t to_ms) {
  bson_t range;
  bson_append_document_begin(b, key, -1, &range);
  append_date(&range, "$gte", from_ms);
  append_date(&range, "$lt", to_ms);
  bson_append_document_end(b, &range);
}

Bson sort_doc(std::initializer_list<std::pair<const char*, int>> keys, int64_t limit = 0) {
  Bson opts;
  bson_t sort;
  bson_append_document_begin(opts.get(), "sort", -1, &sort);
  for (const auto& [k, dir] : keys) BSON_APPEND_INT32(&sort, k, dir);
  bson_append_document_end(opts.get(), &sort);
  if (limit > 0) append_int(opts.get(), "limit", limit);
  return opts;
}

// ---- bulk writes --------------------------------------------------------------------------------------

/// What one bulk write did, from the server's reply.
struct BulkOutcome {
  int64_t inserted = 0;
  int64_t matched = 0;
  int64_t upserted = 0;
  std::vector<size_t> duplicates;  ///< indices (into the ops given) refused with E11000
};

}  // namespace

// ---- MongoPool ----------------------------------------------------------------------------------------

std::shared_ptr<MongoPool> MongoPool::get(const std::string& uri) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<MongoPool>> pools;
  std::lock_guard lock(mu);
  if (auto p = pools[uri].lock()) return p;
  auto p = std::make_shared<MongoPool>(uri);
  pools[uri] = p;
  return p;
}

MongoPool::MongoPool(const std::string& uri_text) {
  init_driver();
  bson_error_t error;
  mongoc_uri_t* uri = mongoc_uri_new_with_error(uri_text.c_str(), &error);
  if (uri == nullptr) throw MongoError("bad URI '" + uri_text + "'", error);
  _uri = uri;
  const char* db = mongoc_uri_get_database(uri);
  _database = db != nullptr && *db != '\0' ? db : "fleettwin";
  _pool = mongoc_client_pool_new(uri);
  if (_pool == nullptr) throw MongoError("cannot create a client pool for '" + uri_text + "'");
  mongoc_client_pool_set_error_api(_pool, MONGOC_ERROR_API_VERSION_2);
  mongoc_client_pool_set_appname(_pool, "fleettwin");

  mongoc_client_t* client = mongoc_client_pool_pop(_pool);
  auto push = [&] { mongoc_client_pool_push(_pool, client); };
  Bson build_info;
  Bson hello;
  {
    Bson cmd;
    BSON_APPEND_INT32(cmd.get(), "buildInfo", 1);
    bson_t reply;
    if (!mongoc_client_command_simple(client, "admin", cmd.get(), nullptr, &reply, &error)) {
      bson_destroy(&reply);
      push();
      // The destructor does not run for a throwing constructor: release the pool and URI here.
      mongoc_client_pool_destroy(_pool);
      _pool = nullptr;
      mongoc_uri_destroy(uri);
      _uri = nullptr;
      throw MongoError("cannot reach " + uri_text, error);
    }
    build_info = Bson(bson_copy(&reply));
    bson_destroy(&reply);
  }
  {
    Bson cmd;
    BSON_APPEND_INT32(cmd.get(), "hello", 1);
    bson_t reply;
    if (mongoc_client_command_simple(client, "admin", cmd.get(), nullptr, &reply, &error)) {
      hello = Bson(bson_copy(&reply));
    }
    bson_destroy(&reply);
  }
  push();
  _caps.version = get_str(build_info.get(), "version");
  _caps.ferretdb = has(build_info.get(), "ferretdbFeatures") || has(build_info.get(), "ferretdb");
  const bool modern = version_major(_caps.version) >= 5;
  const bool replicated = has(hello.get(), "setName") || get_str(hello.get(), "msg") == "isdbgrid";
  // FerretDB 1.24 reports MongoDB 7.0 but implements neither time-series collections, change streams,
  // 2dsphere indexes, $dateTrunc nor $min/$max/$avg in $group (probed against it; see its docs' list of
  // unsupported operators), so every one of them hangs on "not FerretDB".
  _caps.time_series = modern && !_caps.ferretdb;
  _caps.change_streams = replicated && !_caps.ferretdb;
  _caps.geo_index = !_caps.ferretdb;
  _caps.full_pipelines = modern && !_caps.ferretdb;
  _caps.atomic_updates = !_caps.ferretdb;
  std::fprintf(
      stderr,
      "store.mongo: %s database '%s': server %s%s; time-series collections %s (telemetry stays a regular "
      "collection: its _id {car}:{seq} needs a unique index, which time-series collections lack); change "
      "streams %s (not used); 2dsphere index %s; analytics %s; twin seq guard %s\n",
      mongoc_uri_get_string(uri), _database.c_str(), _caps.version.c_str(),
      _caps.ferretdb ? " (FerretDB)" : "", _caps.time_series ? "available" : "unsupported",
      _caps.change_streams ? "available" : "unsupported",
      _caps.geo_index ? "created" : "skipped (unsupported)",
      _caps.full_pipelines ? "as aggregation pipelines"
                           : "as $group pipelines where supported, hourly buckets aggregated client-side",
      _caps.atomic_updates ? "by conditional upsert" : "by conditional upsert under per-car lease locks");
}

MongoPool::~MongoPool() {
  if (_pool != nullptr) mongoc_client_pool_destroy(_pool);
  if (_uri != nullptr) mongoc_uri_destroy(static_cast<mongoc_uri_t*>(_uri));
}

// ---- MongoStore ---------------------------------------------------------------------------------------

/// The collections of the store's database, opened on the instance's client. Same thread as the store.
class MongoStore::Impl {
 public:
  Impl(mongoc_client_t* client, const std::string& db)
      : twins(mongoc_client_get_collection(client, db.c_str(), "twins")),
        telemetry(mongoc_client_get_collection(client, db.c_str(), "telemetry")),
        alerts(mongoc_client_get_collection(client, db.c_str(), "alerts")),
        commands(mongoc_client_get_collection(client, db.c_str(), "commands")) {}
  CollectionPtr twins, telemetry, alerts, commands;
};

namespace {

/// Creates one index, `keys` in order (direction 0 = "2dsphere"). Idempotent: an existing index is left as
/// it is. One index per command: FerretDB 1.24 closes the connection (a server panic, "slice bounds out of
/// range") on a createIndexes listing several indexes that already exist, which every reopen would send.
void create_index(mongoc_client_t* client, const std::string& db, const char* collection, const char* name,
                  std::initializer_list<std::pair<const char*, int>> keys) {
  Bson cmd;
  BSON_APPEND_UTF8(cmd.get(), "createIndexes", collection);
  bson_t arr;
  bson_t index;
  bson_t key;
  BSON_APPEND_ARRAY_BEGIN(cmd.get(), "indexes", &arr);
  BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &index);
  BSON_APPEND_DOCUMENT_BEGIN(&index, "key", &key);
  for (const auto& [field, dir] : keys) {
    if (dir == 0) {
      BSON_APPEND_UTF8(&key, field, "2dsphere");
    } else {
      BSON_APPEND_INT32(&key, field, dir);
    }
  }
  bson_append_document_end(&index, &key);
  BSON_APPEND_UTF8(&index, "name", name);
  bson_append_document_end(&arr, &index);
  bson_append_array_end(cmd.get(), &arr);
  bson_error_t error;
  bson_t reply;
  bool ok = mongoc_client_command_simple(client, db.c_str(), cmd.get(), nullptr, &reply, &error);
  bson_destroy(&reply);
  if (!ok) throw MongoError(std::string("createIndexes ") + name + " on " + collection, error);
}

}  // namespace

MongoStore::MongoStore(const std::string& uri, MongoOptions options)
    : _pool(MongoPool::get(uri)), _options(options) {
  _client = mongoc_client_pool_pop(_pool->pool());
  {
    // Identifies this instance's twin lease locks (see upsert_twins_locked).
    static std::atomic<uint64_t> counter{0};
    _owner = std::to_string(::getpid()) + ":" + std::to_string(reinterpret_cast<uintptr_t>(this)) + ":" +
             std::to_string(counter++);
  }
  _impl = std::make_unique<Impl>(_client, _pool->database());
  // createIndexes is idempotent: every instance may run it; an index that exists is left alone.
  const std::string& db = _pool->database();
  try {
    create_index(_client, db, "twins", "health_status", {{"health.status", 1}});
    create_index(_client, db, "twins", "last_seen", {{"connection.last_seen", 1}});
    create_index(_client, db, "twins", "health_score", {{"health.score", -1}, {"_id", 1}});
    if (_pool->capabilities().geo_index) create_index(_client, db, "twins", "location", {{"location", 0}});
    create_index(_client, db, "telemetry", "car_ts", {{"car", 1}, {"ts", 1}});
    create_index(_client, db, "telemetry", "ts", {{"ts", 1}});
    create_index(_client, db, "telemetry", "car_seq", {{"car", 1}, {"seq", -1}});
    create_index(_client, db, "alerts", "car_ts", {{"car", 1}, {"ts", -1}});
    create_index(_client, db, "alerts", "ts", {{"ts", 1}});
    create_index(_client, db, "commands", "car_created", {{"car", 1}, {"created", -1}});
  } catch (...) {
    _impl.reset();
    mongoc_client_pool_push(_pool->pool(), _client);
    throw;
  }
}

MongoStore::~MongoStore() {
  _impl.reset();
  if (_client != nullptr) mongoc_client_pool_push(_pool->pool(), _client);
}

void MongoStore::drop_database() {
  DatabasePtr db(mongoc_client_get_database(_client, _pool->database().c_str()));
  bson_error_t error;
  if (!mongoc_database_drop_with_opts(db.get(), nullptr, &error)) throw MongoError("drop database", error);
}

namespace {

/// Runs `count` operations (added by `add(bulk, i)`) as unordered bulk writes until none fails for a reason
/// other than a duplicate key. Unordered: one bad document does not stop the others, and on a single server
/// the operations still run in the order given. A failure without per-document errors (server down, network,
/// write concern) resends every operation not yet known done; each resend waits longer (bounded) and counts
/// as a retry; after max_attempts it throws. Idempotent ids make a resend of something already applied a
/// duplicate, never a second copy.
BulkOutcome run_bulk(mongoc_collection_t* coll, size_t count,
                     const std::function<void(mongoc_bulk_operation_t*, size_t)>& add,
                     const MongoOptions& options, int64_t& retries, int64_t& errors,
                     core::Counter* retry_counter, core::Counter* error_counter) {
  BulkOutcome out;
  std::vector<size_t> pending(count);
  for (size_t i = 0; i < count; ++i) pending[i] = i;
  int64_t backoff = options.retry_backoff_ms;
  for (int attempt = 1; !pending.empty(); ++attempt) {
    Bson opts;
    BSON_APPEND_BOOL(opts.get(), "ordered", false);
    BulkPtr bulk(mongoc_collection_create_bulk_operation_with_opts(coll, opts.get()));
    for (size_t i : pending) add(bulk.get(), i);
    bson_t reply;
    bson_error_t error;
    const bool ok = mongoc_bulk_operation_execute(bulk.get(), &reply, &error) != 0;
    out.inserted += get_int(&reply, "nInserted");
    out.matched += get_int(&reply, "nMatched");
    out.upserted += get_int(&reply, "nUpserted");
    std::vector<size_t> failed;
    bool saw_write_errors = false;
    bson_iter_t it;
    bson_iter_t errs;
    if (bson_iter_init_find(&it, &reply, "writeErrors") && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &errs)) {
      while (bson_iter_next(&errs)) {
        saw_write_errors = true;
        bson_iter_t e;
        int64_t index = -1;
        int64_t code = 0;
        if (bson_iter_recurse(&errs, &e)) {
          while (bson_iter_next(&e)) {
            if (std::string_view(bson_iter_key(&e)) == "index") index = bson_iter_as_int64(&e);
            if (std::string_view(bson_iter_key(&e)) == "code") code = bson_iter_as_int64(&e);
          }
        }
        if (index < 0 || static_cast<size_t>(index) >= pending.size()) continue;
        if (code == kDuplicateKey) {
          out.duplicates.push_back(pending[static_cast<size_t>(index)]);
        } else {
          failed.push_back(pending[static_cast<size_t>(index)]);
        }
      }
    }
    bson_destroy(&reply);
    if (ok) break;
    if (!saw_write_errors) {
      // No per-document verdict: nothing is known done, so everything goes again (the counts of this
      // attempt were zero or partial; a resent insert that had landed then counts as a duplicate).
      failed = pending;
    } else if (failed.empty()) {
      break;  // only duplicate keys: the expected outcome of a replay
    }
    if (attempt >= options.max_attempts) {
      ++errors;
      if (error_counter != nullptr) error_counter->add();
      throw MongoError(std::string("bulk write to ") + mongoc_collection_get_name(coll) + " failed after " +
                           std::to_string(attempt) + " attempts",
                       error);
    }
    ++retries;
    if (retry_counter != nullptr) retry_counter->add();
    std::fprintf(stderr, "store.mongo: bulk write to %s failed (%s); retry %d in %lld ms\n",
                 mongoc_collection_get_name(coll), error.message, attempt, static_cast<long long>(backoff));
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff));
    backoff = std::min(backoff * 2, options.retry_backoff_max_ms);
    pending = std::move(failed);
  }
  return out;
}

/// The conditional-upsert filter of a twin: the stored one is older (lower seq, or same seq and lower
/// version). When it is not, the upsert tries to insert a second document with the same _id and gets a
/// duplicate key: that is how a stale update shows.
Bson twin_guard(const core::Twin& t) {
  Bson f;
  append_str(f.get(), "_id", t.id);
  bson_t arr;
  bson_t a;
  bson_t b;
  bson_t lt;
  BSON_APPEND_ARRAY_BEGIN(f.get(), "$or", &arr);
  BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &a);
  BSON_APPEND_DOCUMENT_BEGIN(&a, "reported.seq", &lt);
  append_int(&lt, "$lt", t.reported.seq);
  bson_append_document_end(&a, &lt);
  bson_append_document_end(&arr, &a);
  BSON_APPEND_DOCUMENT_BEGIN(&arr, "1", &b);
  append_int(&b, "reported.seq", t.reported.seq);
  BSON_APPEND_DOCUMENT_BEGIN(&b, "version", &lt);
  append_int(&lt, "$lt", t.version);
  bson_append_document_end(&b, &lt);
  bson_append_document_end(&arr, &b);
  bson_append_array_end(f.get(), &arr);
  return f;
}

/// An alert's newer-state guard, as SQLite's: later ts, or the same ts and a clear over a raise.
Bson alert_guard(const core::Alert& a) {
  Bson f;
  append_str(f.get(), "_id", a.id);
  bson_t arr;
  bson_t x;
  bson_t y;
  bson_t lt;
  BSON_APPEND_ARRAY_BEGIN(f.get(), "$or", &arr);
  BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &x);
  BSON_APPEND_DOCUMENT_BEGIN(&x, "ts", &lt);
  append_date(&lt, "$lt", a.ts);
  bson_append_document_end(&x, &lt);
  bson_append_document_end(&arr, &x);
  BSON_APPEND_DOCUMENT_BEGIN(&arr, "1", &y);
  append_date(&y, "ts", a.ts);
  if (a.raised) append_bool(&y, "raised", true);  // a raise re-applies only over a raise
  bson_append_document_end(&arr, &y);
  bson_append_array_end(f.get(), &arr);
  return f;
}

Bson command_guard(const core::Command& c) {
  Bson f;
  append_str(f.get(), "_id", c.id);
  bson_t arr;
  bson_t x;
  bson_t y;
  bson_t lt;
  BSON_APPEND_ARRAY_BEGIN(f.get(), "$or", &arr);
  BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &x);
  append_str(&x, "status", c.status);
  bson_append_document_end(&arr, &x);
  BSON_APPEND_DOCUMENT_BEGIN(&arr, "1", &y);
  BSON_APPEND_DOCUMENT_BEGIN(&y, "status_rank", &lt);
  append_int(&lt, "$lt", status_rank(c.status));
  bson_append_document_end(&y, &lt);
  bson_append_document_end(&arr, &y);
  bson_append_array_end(f.get(), &arr);
  return f;
}

void add_upsert_replace(mongoc_bulk_operation_t* bulk, const Bson& filter, const Bson& doc) {
  Bson opts;
  BSON_APPEND_BOOL(opts.get(), "upsert", true);
  bson_error_t error;
  if (!mongoc_bulk_operation_replace_one_with_opts(bulk, filter.get(), doc.get(), opts.get(), &error)) {
    throw MongoError("bulk replace", error);
  }
}

template <typename F>
void for_each_doc(mongoc_cursor_t* cursor, F&& f, const char* what) {
  const bson_t* doc = nullptr;
  while (mongoc_cursor_next(cursor, &doc)) f(doc);
  bson_error_t error;
  if (mongoc_cursor_error(cursor, &error)) throw MongoError(what, error);
}

template <typename F>
void find(mongoc_collection_t* coll, const Bson& filter, const Bson& opts, F&& f, const char* what) {
  CursorPtr cursor(mongoc_collection_find_with_opts(coll, filter.get(), opts.get(), nullptr));
  for_each_doc(cursor.get(), f, what);
}

template <typename F>
void aggregate(mongoc_collection_t* coll, const Bson& pipeline, F&& f, const char* what) {
  CursorPtr cursor(mongoc_collection_aggregate(coll, MONGOC_QUERY_NONE, pipeline.get(), nullptr, nullptr));
  for_each_doc(cursor.get(), f, what);
}

int64_t count(mongoc_collection_t* coll, const Bson& filter, const char* what) {
  bson_error_t error;
  int64_t n = mongoc_collection_count_documents(coll, filter.get(), nullptr, nullptr, nullptr, &error);
  if (n < 0) throw MongoError(what, error);
  return n;
}

int64_t hour_of(int64_t ts) { return (ts / kHourMs) * kHourMs; }  // as SQLite's integer division

/// Wall-clock time in ms: the clock of the twin lease locks (shared by writers on several hosts).
int64_t wall_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// {pipeline: [{$match: match}, ...stages]}: `match` is built with typed appends (it holds the caller's
/// values); `stages_json` is constant text, a JSON array of the stages after it.
Bson match_pipeline(const Bson& match, const std::string& stages_json) {
  const std::string wrapped = R"({"stages": )" + stages_json + "}";
  bson_error_t error;
  Bson stages(bson_new_from_json(reinterpret_cast<const uint8_t*>(wrapped.data()),
                                 static_cast<ssize_t>(wrapped.size()), &error));
  if (stages.get() == nullptr) throw MongoError("pipeline text", error);
  Bson p;
  bson_t arr;
  bson_t stage;
  BSON_APPEND_ARRAY_BEGIN(p.get(), "pipeline", &arr);
  BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &stage);
  BSON_APPEND_DOCUMENT(&stage, "$match", match.get());
  bson_append_document_end(&arr, &stage);
  bson_iter_t it;
  bson_iter_t child;
  if (!bson_iter_init_find(&it, stages.get(), "stages") || !bson_iter_recurse(&it, &child)) {
    throw MongoError("pipeline text is not an array");
  }
  for (int i = 1; bson_iter_next(&child); ++i) {
    uint32_t len = 0;
    const uint8_t* data = nullptr;
    bson_t doc;
    if (!BSON_ITER_HOLDS_DOCUMENT(&child)) throw MongoError("pipeline stage is not a document");
    bson_iter_document(&child, &len, &data);
    if (!bson_init_static(&doc, data, len)) throw MongoError("pipeline stage is not a document");
    const std::string key = std::to_string(i);
    bson_append_document(&arr, key.c_str(), -1, &doc);
  }
  bson_append_array_end(p.get(), &arr);
  return p;
}

}  // namespace

WriteResult MongoStore::write(const WriteBatch& batch) {
  WriteResult result;
  core::Counter* retry_counter = nullptr;
  core::Counter* error_counter = nullptr;
  if (_options.metrics != nullptr) {
    retry_counter = &_options.metrics->counter("fleettwin_store_mongo_retries_total",
                                               "MongoDB bulk writes resent after a failure");
    error_counter = &_options.metrics->counter("fleettwin_store_mongo_errors_total",
                                               "MongoDB bulk writes given up after max attempts");
  }
  auto bulk = [&](mongoc_collection_t* coll, size_t n,
                  const std::function<void(mongoc_bulk_operation_t*, size_t)>& add) {
    return run_bulk(coll, n, add, _options, _retries, _errors, retry_counter, error_counter);
  };

  // Conditional updates one per request on FerretDB: there an unordered update batch stops at its first
  // write error (a refused older state), leaving later updates unapplied (see upsert_twins_locked). Alerts
  // and commands are few per batch, so the extra round trips are cheap.
  auto guarded = [&](mongoc_collection_t* coll, size_t n,
                     const std::function<void(mongoc_bulk_operation_t*, size_t)>& add) {
    if (_pool->capabilities().atomic_updates) return bulk(coll, n, add);
    BulkOutcome all;
    for (size_t i = 0; i < n; ++i) {
      BulkOutcome one = bulk(coll, 1, [&](mongoc_bulk_operation_t* b, size_t) { add(b, i); });
      all.matched += one.matched;
      all.upserted += one.upserted;
      if (!one.duplicates.empty()) all.duplicates.push_back(i);
    }
    return all;
  };

  if (!batch.telemetry.empty()) {
    std::vector<Bson> docs;
    docs.reserve(batch.telemetry.size());
    for (const auto& r : batch.telemetry) docs.push_back(telemetry_doc(r));
    BulkOutcome o = bulk(_impl->telemetry.get(), docs.size(), [&](mongoc_bulk_operation_t* b, size_t i) {
      bson_error_t error;
      if (!mongoc_bulk_operation_insert_with_opts(b, docs[i].get(), nullptr, &error)) {
        throw MongoError("bulk insert", error);
      }
    });
    result.telemetry_inserted = o.inserted;
    result.telemetry_duplicates = static_cast<int64_t>(o.duplicates.size());
  }

  if (!batch.twins.empty()) {
    std::vector<Bson> filters;
    std::vector<Bson> docs;
    for (const auto& t : batch.twins) {
      filters.push_back(twin_guard(t));
      docs.push_back(twin_doc(t));
    }
    // Upserts the twins at `which` (indices into batch.twins, in batch order); returns how many applied.
    auto upsert = [&](const std::vector<size_t>& which) {
      auto add = [&](const std::vector<size_t>& ops) {
        return [&, ops](mongoc_bulk_operation_t* b, size_t i) {
          add_upsert_replace(b, filters[ops[i]], docs[ops[i]]);
        };
      };
      BulkOutcome o = bulk(_impl->twins.get(), which.size(), add(which));
      int64_t applied = o.matched + o.upserted;
      if (!o.duplicates.empty()) {
        // A duplicate key is a stale update, or the loser of two first inserts racing: the document exists
        // now, so one more conditional upsert decides (applies if newer, duplicate key again if stale).
        std::vector<size_t> again;
        for (size_t i : o.duplicates) again.push_back(which[i]);
        BulkOutcome o2 = bulk(_impl->twins.get(), again.size(), add(again));
        applied += o2.matched + o2.upserted;
      }
      return applied;
    };
    int64_t applied = 0;
    if (_pool->capabilities().atomic_updates) {
      std::vector<size_t> all(batch.twins.size());
      for (size_t i = 0; i < all.size(); ++i) all[i] = i;
      applied = upsert(all);
    } else {
      // Unconditional replace by _id of the states the caller decided on under the lock: never a write error
      // (see upsert_twins_locked for why FerretDB needs that).
      // One attempt under the lock (see upsert_twins_locked): a failure releases the locks and throws; the
      // caller's retry of the whole write then locks again.
      MongoOptions once = _options;
      once.max_attempts = 1;
      applied = upsert_twins_locked(batch.twins, [&](const std::vector<size_t>& which) {
        run_bulk(
            _impl->twins.get(), which.size(),
            [&](mongoc_bulk_operation_t* b, size_t i) {
              add_upsert_replace(b, id_filter(batch.twins[which[i]].id), docs[which[i]]);
            },
            once, _retries, _errors, retry_counter, error_counter);
      });
    }
    result.twins_applied = applied;
    result.twins_stale = static_cast<int64_t>(batch.twins.size()) - applied;
  }

  if (!batch.alerts.empty()) {
    std::vector<Bson> filters;
    std::vector<Bson> updates;
    for (const auto& a : batch.alerts) {
      filters.push_back(alert_guard(a));
      Bson u;
      bson_t set;
      BSON_APPEND_DOCUMENT_BEGIN(u.get(), "$set", &set);
      append_alert_fields(&set, a);
      // Acknowledged, once set, stays set: only ever $set to true; a new alert starts false.
      if (a.acknowledged) append_bool(&set, "acknowledged", true);
      bson_append_document_end(u.get(), &set);
      if (!a.acknowledged) {
        bson_t on_insert;
        BSON_APPEND_DOCUMENT_BEGIN(u.get(), "$setOnInsert", &on_insert);
        append_bool(&on_insert, "acknowledged", false);
        bson_append_document_end(u.get(), &on_insert);
      }
      updates.push_back(std::move(u));
    }
    BulkOutcome o = guarded(_impl->alerts.get(), filters.size(), [&](mongoc_bulk_operation_t* b, size_t i) {
      Bson opts;
      BSON_APPEND_BOOL(opts.get(), "upsert", true);
      bson_error_t error;
      if (!mongoc_bulk_operation_update_one_with_opts(b, filters[i].get(), updates[i].get(), opts.get(),
                                                      &error)) {
        throw MongoError("bulk update", error);
      }
    });
    for (size_t i : o.duplicates) {
      // An older state was refused; its acknowledgement still counts.
      if (batch.alerts[i].acknowledged) ack_alert(batch.alerts[i].id);
    }
  }

  if (!batch.commands.empty()) {
    std::vector<Bson> filters;
    std::vector<Bson> docs;
    for (const auto& c : batch.commands) {
      filters.push_back(command_guard(c));
      docs.push_back(command_doc(c));
    }
    guarded(_impl->commands.get(), docs.size(),
            [&](mongoc_bulk_operation_t* b, size_t i) { add_upsert_replace(b, filters[i], docs[i]); });
  }
  return result;
}

int64_t MongoStore::upsert_twins_locked(const std::vector<core::Twin>& twins,
                                        const std::function<void(const std::vector<size_t>&)>& replace) {
  // Two FerretDB 1.24 defects rule out the conditional upsert there (both reproduced against it):
  //  - it evaluates an update's filter and writes the document in two steps (its SQLite backend made the
  //    write atomic, not the filter check: FerretDB PR #3296), so two writers can both pass
  //    `reported.seq < new` and the older one land last;
  //  - an unordered update batch stops at its first write error (a stale update's duplicate key) and reports
  //    no counts, so later updates of the batch are silently not applied.
  // So each car is locked with a lease document (_id = car; inserting it is atomic through the unique _id
  // index), its stored (seq, version) read, the guard applied here in batch order, and the winning state
  // replaced by _id, which cannot fail with a duplicate key. A writer never waits while holding a lock: it
  // writes the cars it got, releases them, then retries the others.
  //
  // Leases left behind. A writer killed while holding locks (kill -9 of a sink) leaves its lease documents,
  // and so does a writer whose release failed because the server went away mid-write. With the former 30 s
  // lease a restarted sink stalled up to 30 s in this loop on such cars, and a sink whose release failed in
  // an outage stalled on its own leftover locks after the server came back. Now:
  //  - a lease lives kLeaseMs (5 s), and a holder writes only while its lease is young (less than half of
  //    kLeaseMs since it was taken; otherwise it releases and takes the car again), and each write under the
  //    lock is a request sent at once (no backoff loop while holding): a writer's replace reaches the
  //    server at least half a lease before anyone may take the car over (the residual risk is a server
  //    that queues a request for more than 2.5 s; the lease clock is each writer's wall clock, so writers
  //    on different hosts need synchronized clocks, as before);
  //  - a lease owned by this instance is always taken over at once (it is a leftover of a failed release);
  //  - so a crashed writer's cars are free again after at most 5 s, once, not per batch.
  //
  // The replace goes out in commands of at most kUpdatesPerCommand statements, because of a third FerretDB
  // 1.24 defect (found from a goroutine dump of a hung server): its `update` handler defers closing each
  // statement's query until the whole command ends (msg_update.go: `defer closer.Close()` inside the loop
  // over statements), so every statement that matches a document pins one of the 100 pooled SQLite
  // connections (SetMaxOpenConns(100), not configurable) for the rest of the command. A command of 100+
  // matching statements, e.g. a restarted sink's first batch of twins for 1,000 cars that all exist, then
  // waits forever for a connection it holds itself, and every other operation on that database waits behind
  // it while `ping` (served from memory) still answers. 16 leaves room for 6 such writers at once. Each chunk
  // is sent only while the lease is young (as above); cars left when it is not are released and locked again.
  constexpr int64_t kLeaseMs = 5'000;
  constexpr size_t kUpdatesPerCommand = 16;
  std::map<std::string, std::vector<size_t>> by_car;
  for (size_t i = 0; i < twins.size(); ++i) by_car[twins[i].id].push_back(i);
  std::vector<std::string> waiting;
  for (const auto& [car, unused] : by_car) waiting.push_back(car);
  const std::string owner = _owner;
  int64_t applied = 0;
  int64_t backoff_ms = 2;
  CollectionPtr locks(mongoc_client_get_collection(_client, _pool->database().c_str(), "twin_locks"));
  while (!waiting.empty()) {
    const int64_t now = wall_now_ms();
    std::vector<Bson> lock_docs;
    for (const auto& car : waiting) {
      Bson d;
      append_str(d.get(), "_id", car);
      append_str(d.get(), "owner", owner);
      append_date(d.get(), "at", now);
      lock_docs.push_back(std::move(d));
    }
    BulkOutcome o = run_bulk(
        locks.get(), lock_docs.size(),
        [&](mongoc_bulk_operation_t* b, size_t i) {
          bson_error_t error;
          if (!mongoc_bulk_operation_insert_with_opts(b, lock_docs[i].get(), nullptr, &error)) {
            throw MongoError("bulk insert", error);
          }
        },
        _options, _retries, _errors, nullptr, nullptr);
    std::vector<bool> busy(waiting.size(), false);
    for (size_t i : o.duplicates) busy[i] = true;
    std::vector<size_t> ops;
    std::vector<std::string> got;
    std::vector<std::string> still;
    for (size_t i = 0; i < waiting.size(); ++i) {
      if (busy[i]) {
        still.push_back(waiting[i]);
      } else {
        got.push_back(waiting[i]);
      }
    }
    std::exception_ptr failure;
    bool got_released_for_retry = false;
    try {
      if (!got.empty()) {
        // The stored (seq, version) of the locked cars, then the guard in batch order per car.
        std::map<std::string, std::pair<int64_t, int64_t>> stored;
        Bson f;
        bson_t id;
        bson_t in;
        BSON_APPEND_DOCUMENT_BEGIN(f.get(), "_id", &id);
        BSON_APPEND_ARRAY_BEGIN(&id, "$in", &in);
        for (size_t i = 0; i < got.size(); ++i) append_str(&in, std::to_string(i), got[i]);
        bson_append_array_end(&id, &in);
        bson_append_document_end(f.get(), &id);
        Bson opts;
        bson_t proj;
        BSON_APPEND_DOCUMENT_BEGIN(opts.get(), "projection", &proj);
        BSON_APPEND_INT32(&proj, "reported.seq", 1);
        BSON_APPEND_INT32(&proj, "version", 1);
        bson_append_document_end(opts.get(), &proj);
        find(
            _impl->twins.get(), f, opts,
            [&](const bson_t* d) {
              stored[get_str(d, "_id")] = {get_int(d, "reported.seq"), get_int(d, "version")};
            },
            "twin guard");
        const int64_t held = wall_now_ms() - now;
        if (held >= kLeaseMs / 2) {
          // Too slow to write safely before the lease may be taken over: release and lock again.
          still.insert(still.end(), got.begin(), got.end());
          got_released_for_retry = true;
        }
        // Per locked car with a newer state: (car, its winning twin, how many of its updates apply).
        struct Write {
          const std::string* car;
          size_t winner;
          int64_t applied;
        };
        std::vector<Write> writes;
        for (const auto& car : got) {
          if (got_released_for_retry) break;
          auto it = stored.find(car);
          std::optional<size_t> winner;
          int64_t n = 0;
          for (size_t i : by_car[car]) {
            const std::pair<int64_t, int64_t> mine{twins[i].reported.seq, twins[i].version};
            if (it == stored.end() || mine > it->second) {
              it = stored.insert_or_assign(car, mine).first;
              winner = i;
              ++n;
            }
          }
          if (winner) writes.push_back(Write{&car, *winner, n});
        }
        for (size_t at = 0; at < writes.size(); at += kUpdatesPerCommand) {
          if (at > 0 && wall_now_ms() - now >= kLeaseMs / 2) {
            for (size_t j = at; j < writes.size(); ++j) still.push_back(*writes[j].car);
            break;
          }
          const size_t end = std::min(writes.size(), at + kUpdatesPerCommand);
          ops.clear();
          for (size_t j = at; j < end; ++j) ops.push_back(writes[j].winner);
          replace(ops);
          for (size_t j = at; j < end; ++j) applied += writes[j].applied;
        }
      }
    } catch (...) {
      failure = std::current_exception();
    }
    auto delete_locks = [&](const std::vector<std::string>& cars, bool expired_only) {
      if (cars.empty()) return;
      Bson f;
      bson_t id;
      bson_t in;
      BSON_APPEND_DOCUMENT_BEGIN(f.get(), "_id", &id);
      BSON_APPEND_ARRAY_BEGIN(&id, "$in", &in);
      for (size_t i = 0; i < cars.size(); ++i) append_str(&in, std::to_string(i), cars[i]);
      bson_append_array_end(&id, &in);
      bson_append_document_end(f.get(), &id);
      if (expired_only) {
        // {$or: [{at: {$lt: now - lease}}, {owner: this instance}]}
        bson_t arr;
        bson_t expired;
        bson_t mine;
        bson_t lt;
        BSON_APPEND_ARRAY_BEGIN(f.get(), "$or", &arr);
        BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &expired);
        BSON_APPEND_DOCUMENT_BEGIN(&expired, "at", &lt);
        append_date(&lt, "$lt", now - kLeaseMs);
        bson_append_document_end(&expired, &lt);
        bson_append_document_end(&arr, &expired);
        BSON_APPEND_DOCUMENT_BEGIN(&arr, "1", &mine);
        append_str(&mine, "owner", owner);
        bson_append_document_end(&arr, &mine);
        bson_append_array_end(f.get(), &arr);
      } else {
        append_str(f.get(), "owner", owner);  // never another writer's lease that replaced an expired one
      }
      bson_error_t error;
      if (!mongoc_collection_delete_many(locks.get(), f.get(), nullptr, nullptr, &error) && !failure) {
        throw MongoError("releasing twin locks", error);
      }
    };
    delete_locks(got, false);
    if (failure) std::rethrow_exception(failure);
    delete_locks(still, true);
    if (!got.empty() && !got_released_for_retry) {
      backoff_ms = 2;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
      backoff_ms = std::min<int64_t>(backoff_ms * 2, 100);
    }
    waiting = std::move(still);
  }
  return applied;
}

std::optional<core::Twin> MongoStore::get_twin(const std::string& car) {
  std::optional<core::Twin> out;
  find(
      _impl->twins.get(), id_filter(car), Bson(), [&](const bson_t* d) { out = read_twin(d); }, "get_twin");
  return out;
}

std::vector<core::Twin> MongoStore::list_twins(const TwinQuery& q) {
  std::vector<core::Twin> out;
  if (q.limit <= 0) return out;
  const TwinSort sort = parse_sort(q.sort);
  // {$and: [status, online, filter, page]}: each clause a document of its own, so no key of one can
  // collide with another's.
  Bson query;
  bson_t all;
  BSON_APPEND_ARRAY_BEGIN(query.get(), "$and", &all);
  int n = 0;
  auto clause = [&](const Bson& c) {
    const std::string k = std::to_string(n++);
    bson_append_document(&all, k.c_str(), -1, c.get());
  };
  clause(Bson());  // {} matches everything: $and needs at least one element
  if (q.status) {
    Bson c;
    append_str(c.get(), "health.status", core::to_string(*q.status));
    clause(c);
  }
  if (q.online) {
    Bson c;
    append_bool(c.get(), "connection.online", *q.online);
    clause(c);
  }
  if (q.filter) clause(filter_bson(*q.filter));
  if (!q.after_id.empty()) {
    Bson c;
    if (sort.by_id()) {
      bson_t gt;
      BSON_APPEND_DOCUMENT_BEGIN(c.get(), "_id", &gt);
      append_str(&gt, "$gt", q.after_id);
      bson_append_document_end(c.get(), &gt);
    } else {
      // (key beyond v) or (key == v and _id > id): the position after the cursor in (key, _id) order.
      TwinCursor cur = decode_twin_cursor(sort, q.after_id);
      const char* path = sort.field.path.c_str();
      bson_t arr;
      bson_t x;
      bson_t y;
      bson_t op;
      BSON_APPEND_ARRAY_BEGIN(c.get(), "$or", &arr);
      BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &x);
      BSON_APPEND_DOCUMENT_BEGIN(&x, path, &op);
      append_filter_value(&op, sort.descending ? "$lt" : "$gt", sort.field, cur.value);
      bson_append_document_end(&x, &op);
      bson_append_document_end(&arr, &x);
      BSON_APPEND_DOCUMENT_BEGIN(&arr, "1", &y);
      append_filter_value(&y, path, sort.field, cur.value);
      BSON_APPEND_DOCUMENT_BEGIN(&y, "_id", &op);
      append_str(&op, "$gt", cur.id);
      bson_append_document_end(&y, &op);
      bson_append_document_end(&arr, &y);
      bson_append_array_end(c.get(), &arr);
    }
    clause(c);
  }
  bson_append_array_end(query.get(), &all);
  Bson opts = sort.by_id()
                  ? sort_doc({{"_id", 1}}, q.limit)
                  : sort_doc({{sort.field.path.c_str(), sort.descending ? -1 : 1}, {"_id", 1}}, q.limit);
  find(
      _impl->twins.get(), query, opts, [&](const bson_t* d) { out.push_back(read_twin(d)); }, "list_twins");
  return out;
}

std::vector<TelemetryRow> MongoStore::history(const std::string& car, int64_t from_ms, int64_t to_ms,
                                              int64_t limit) {
  std::vector<TelemetryRow> out;
  if (limit <= 0 || from_ms >= to_ms) return out;
  Bson f;
  append_str(f.get(), "car", car);
  append_date_range(f.get(), "ts", from_ms, to_ms);
  find(
      _impl->telemetry.get(), f, sort_doc({{"ts", 1}, {"seq", 1}}, limit),
      [&](const bson_t* d) { out.push_back(read_telemetry(d)); }, "history");
  return out;
}

std::vector<core::Alert> MongoStore::alerts(const std::string& car, int64_t limit) {
  std::vector<core::Alert> out;
  if (limit <= 0) return out;
  Bson f;
  if (!car.empty()) append_str(f.get(), "car", car);
  find(
      _impl->alerts.get(), f, sort_doc({{"ts", -1}, {"_id", -1}}, limit),
      [&](const bson_t* d) { out.push_back(read_alert(d)); }, "alerts");
  return out;
}

std::vector<core::Command> MongoStore::commands(const std::string& car, int64_t limit) {
  std::vector<core::Command> out;
  if (limit <= 0) return out;
  Bson f;
  if (!car.empty()) append_str(f.get(), "car", car);
  find(
      _impl->commands.get(), f, sort_doc({{"created", -1}, {"_id", -1}}, limit),
      [&](const bson_t* d) { out.push_back(read_command(d)); }, "commands");
  return out;
}

HistoryStats MongoStore::history_stats() {
  HistoryStats s;
  if (_pool->capabilities().ferretdb) {
    // FerretDB 1.24 pushes no filter but an _id equality down to SQLite: a count is a scan of the whole
    // collection (each document decoded), as is the $group. So one pass counts both, per car, instead of two
    // (measured with 300,000 rows: each pass takes tens of seconds on a busy 2-core machine).
    //
    // Such a pass reads inside one SQLite read transaction, and while it lasts concurrent writes cannot be
    // checkpointed out of the WAL, which grows by everything written meanwhile and slows every request down
    // (measured: ~1 GB in a minute behind a sink catching up). So callers count before or after a sink
    // writes, not while it does (see run_pipeline).
    Bson p(bson_new_from_json(
        reinterpret_cast<const uint8_t*>(R"({"pipeline": [{"$group": {"_id": "$car", "n": {"$sum": 1}}}]})"),
        -1, nullptr));
    aggregate(
        _impl->telemetry.get(), p,
        [&](const bson_t* d) {
          s.rows += get_int(d, "n");
          ++s.cars;
        },
        "history_stats");
  } else {
    s.rows = count(_impl->telemetry.get(), Bson(), "history_stats");
    // Distinct cars by $group, one round trip however many cars.
    Bson p(bson_new_from_json(
        reinterpret_cast<const uint8_t*>(R"({"pipeline": [{"$group": {"_id": "$car"}}, {"$count": "n"}]})"),
        -1, nullptr));
    aggregate(
        _impl->telemetry.get(), p, [&](const bson_t* d) { s.cars = get_int(d, "n"); }, "history_stats");
  }
  s.distinct = s.rows;  // _id is "{car}:{seq}": the unique index makes every row a distinct pair
  s.twins = count(_impl->twins.get(), Bson(), "history_stats");
  return s;
}

void MongoStore::scan_telemetry(const std::function<void(const TelemetryRow&)>& f) {
  find(
      _impl->telemetry.get(), Bson(), Bson(), [&](const bson_t* d) { f(read_telemetry(d)); },
      "scan_telemetry");
}

std::vector<std::pair<std::string, int64_t>> MongoStore::max_seq_per_car() {
  std::vector<std::pair<std::string, int64_t>> out;
  if (_pool->capabilities().full_pipelines) {
    Bson p(bson_new_from_json(reinterpret_cast<const uint8_t*>(
                                  R"({"pipeline": [{"$group": {"_id": "$car", "m": {"$max": "$seq"}}},
                                                   {"$sort": {"_id": 1}}]})"),
                              -1, nullptr));
    aggregate(
        _impl->telemetry.get(), p,
        [&](const bson_t* d) { out.emplace_back(get_str(d, "_id"), get_int(d, "m")); }, "max_seq_per_car");
    return out;
  }
  // FerretDB 1.24 has no $max accumulator, and a per-car `sort seq desc limit 1` is a scan of the collection
  // each (measured: minutes for 1,000 cars). One pass over (car, seq) is linear instead; it runs once at
  // start and in `up`'s final check.
  std::map<std::string, int64_t> max_seq;
  Bson opts;
  bson_t proj;
  BSON_APPEND_DOCUMENT_BEGIN(opts.get(), "projection", &proj);
  BSON_APPEND_INT32(&proj, "car", 1);
  BSON_APPEND_INT32(&proj, "seq", 1);
  bson_append_document_end(opts.get(), &proj);
  find(
      _impl->telemetry.get(), Bson(), opts,
      [&](const bson_t* d) {
        int64_t& m = max_seq[get_str(d, "car")];
        m = std::max(m, get_int(d, "seq"));
      },
      "max_seq_per_car");
  out.assign(max_seq.begin(), max_seq.end());
  return out;
}

FleetSummary MongoStore::fleet_summary(int64_t now_ms) {
  FleetSummary out;
  // $group with $sum runs on MongoDB and FerretDB alike.
  Bson p(bson_new_from_json(reinterpret_cast<const uint8_t*>(
                                R"({"pipeline": [{"$group": {"_id": "$health.status", "n": {"$sum": 1}}}]})"),
                            -1, nullptr));
  aggregate(
      _impl->twins.get(), p,
      [&](const bson_t* d) {
        const int64_t n = get_int(d, "n");
        out.by_status[get_str(d, "_id")] += n;
        out.cars += n;
      },
      "fleet_summary");
  Bson online;
  append_bool(online.get(), "connection.online", true);
  out.online = count(_impl->twins.get(), online, "fleet_summary");
  Bson minute;
  append_date_range(minute.get(), "ts", now_ms - 60'000, now_ms);
  out.messages_last_minute = count(_impl->telemetry.get(), minute, "fleet_summary");
  return out;
}

std::vector<CarScore> MongoStore::top_by_score(int64_t n) {
  std::vector<CarScore> out;
  if (n <= 0) return out;
  // A NaN score is stored as null, which sorts below every number: last, as NULL in SQLite's DESC.
  find(
      _impl->twins.get(), Bson(), sort_doc({{"health.score", -1}, {"_id", 1}}, n),
      [&](const bson_t* d) {
        out.push_back(CarScore{get_str(d, "_id"), get_num(d, "health.score"), get_num(d, "health.threshold"),
                               get_str(d, "health.status")});
      },
      "top_by_score");
  return out;
}

std::vector<HourlyAggregate> MongoStore::hourly(const std::string& car, std::string_view signal,
                                                int64_t from_ms, int64_t to_ms) {
  if (signal != "score" && !core::signal_index(signal)) {
    throw std::invalid_argument("hourly: unknown signal '" + std::string(signal) + "'");
  }
  const std::string field(signal);  // a catalog name: safe as a field path
  std::vector<HourlyAggregate> out;
  if (from_ms >= to_ms) return out;
  Bson match;
  append_str(match.get(), "car", car);
  append_date_range(match.get(), "ts", from_ms, to_ms);
  if (_pool->capabilities().full_pipelines) {
    bson_t type;
    BSON_APPEND_DOCUMENT_BEGIN(match.get(), field.c_str(), &type);
    BSON_APPEND_UTF8(&type, "$type", "number");  // nulls (NaN) are not counted, as SQLite's count(col)
    bson_append_document_end(match.get(), &type);
    const std::string ref = "\"$" + field + "\"";  // a catalog name, never the caller's text
    Bson p = match_pipeline(match, R"([{"$group": {"_id": {"$dateTrunc": {"date": "$ts", "unit": "hour"}},
                                       "min": {"$min": )" +
                                       ref + R"(}, "avg": {"$avg": )" + ref + R"(}, "max": {"$max": )" + ref +
                                       R"(}, "n": {"$sum": 1}}},
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
  // FerretDB 1.24 implements neither $dateTrunc (nor $subtract/$mod to bucket by hand) nor $min/$max/$avg in
  // $group: the matching rows' ts and value come from the (car, ts) index, oldest first, and are bucketed
  // here. Summing in ts order matches SQLite's avg, which reads the same rows in the same order.
  Bson opts = sort_doc({{"ts", 1}, {"seq", 1}});
  bson_t proj;
  BSON_APPEND_DOCUMENT_BEGIN(opts.get(), "projection", &proj);
  BSON_APPEND_INT32(&proj, "ts", 1);
  BSON_APPEND_INT32(&proj, field.c_str(), 1);
  bson_append_document_end(opts.get(), &proj);
  double sum = 0;
  find(
      _impl->telemetry.get(), match, opts,
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

std::vector<AlertsPerHour> MongoStore::alerts_per_hour(int64_t from_ms, int64_t to_ms) {
  std::vector<AlertsPerHour> out;
  if (from_ms >= to_ms) return out;
  Bson match;
  append_bool(match.get(), "raised", true);
  append_date_range(match.get(), "ts", from_ms, to_ms);
  std::map<std::pair<int64_t, std::string>, int64_t> counts;
  if (_pool->capabilities().full_pipelines) {
    Bson p =
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
    // FerretDB 1.24: no $dateTrunc; the raised alerts of the range are counted here.
    Bson opts;
    bson_t proj;
    BSON_APPEND_DOCUMENT_BEGIN(opts.get(), "projection", &proj);
    BSON_APPEND_INT32(&proj, "ts", 1);
    BSON_APPEND_INT32(&proj, "kind", 1);
    bson_append_document_end(opts.get(), &proj);
    find(
        _impl->alerts.get(), match, opts,
        [&](const bson_t* d) {
          ++counts[{hour_of(get_int(d, "ts")), get_str(d, "kind")}];
        },
        "alerts_per_hour");
  }
  for (const auto& [key, n] : counts) out.push_back(AlertsPerHour{key.first, key.second, n});
  return out;
}

std::optional<core::Command> MongoStore::get_command(const std::string& id) {
  std::optional<core::Command> out;
  find(
      _impl->commands.get(), id_filter(id), Bson(), [&](const bson_t* d) { out = read_command(d); },
      "get_command");
  return out;
}

std::optional<core::Alert> MongoStore::get_alert(const std::string& id) {
  std::optional<core::Alert> out;
  find(
      _impl->alerts.get(), id_filter(id), Bson(), [&](const bson_t* d) { out = read_alert(d); }, "get_alert");
  return out;
}

bool MongoStore::transient_failure(const std::exception& error) const {
  const auto* e = dynamic_cast<const MongoError*>(&error);
  return e != nullptr && e->transient();
}

bool MongoStore::ack_alert(const std::string& id) {
  Bson update;
  bson_t set;
  BSON_APPEND_DOCUMENT_BEGIN(update.get(), "$set", &set);
  append_bool(&set, "acknowledged", true);
  bson_append_document_end(update.get(), &set);
  bson_t reply;
  bson_error_t error;
  const bool ok = mongoc_collection_update_one(_impl->alerts.get(), id_filter(id).get(), update.get(),
                                               nullptr, &reply, &error);
  const int64_t matched = get_int(&reply, "matchedCount");
  bson_destroy(&reply);
  if (!ok) throw MongoError("ack_alert", error);
  return matched > 0;
}

}  // namespace fleettwin::store
