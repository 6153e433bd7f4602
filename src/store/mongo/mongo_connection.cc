// Connection and setup of the mongo adapter: the driver (once per process, its log routed to spdlog), the
// client pool per URI with the server's capabilities, and a store's indexes.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstdlib>
#include <iterator>
#include <map>
#include <mutex>

#include "store/mongo/mongo_bson.h"
#include "store/mongo/mongo_store.h"
#include "store/mongo/mongo_store_impl.h"

namespace fleettwin::store {
namespace {

using namespace mongo;  // NOLINT: the adapter's own helpers

/// libmongoc logs from any thread (its topology scanner among them); spdlog is thread-safe.
void log_to_spdlog(mongoc_log_level_t level, const char* domain, const char* message, void* /*user_data*/) {
  // Indexed by mongoc_log_level_t: error, critical, warning, message, info, debug, trace.
  static constexpr spdlog::level::level_enum kLevels[] = {
      spdlog::level::err,  spdlog::level::critical, spdlog::level::warn, spdlog::level::info,
      spdlog::level::info, spdlog::level::debug,    spdlog::level::trace};
  const auto index = static_cast<size_t>(level);
  spdlog::log(index < std::size(kLevels) ? kLevels[index] : spdlog::level::debug, "mongoc {}: {}", domain,
              message);
}

void init_driver() {
  // mongoc_init is process-wide and must run once before any other call; mongoc_cleanup is left to exit,
  // since pools may live in statics until then.
  static std::once_flag once;
  std::call_once(once, [] {
    mongoc_log_set_handler(log_to_spdlog, nullptr);
    mongoc_init();
  });
}

int version_major(const std::string& v) {
  int major = 0;  // "7.0.2" -> 7; no leading number -> 0
  std::from_chars(v.data(), v.data() + v.size(), major);
  return major;
}

/// Runs {name: 1} on the admin database; the reply in `out` when it succeeds.
bool admin_command(mongoc_client_t* client, const char* name, Bson& out, bson_error_t& error) {
  Bson cmd;
  cmd.int32(name, 1);
  bson_t reply;
  const bool ok = mongoc_client_command_simple(client, "admin", cmd.get(), nullptr, &reply, &error);
  if (ok) out = Bson(bson_copy(&reply));
  bson_destroy(&reply);
  return ok;
}

MongoCapabilities detect(const bson_t* build_info, const bson_t* hello) {
  MongoCapabilities caps;
  caps.version = get_str(build_info, "version");
  caps.ferretdb = has(build_info, "ferretdbFeatures") || has(build_info, "ferretdb");
  const bool modern = version_major(caps.version) >= 5;
  const bool replicated = has(hello, "setName") || get_str(hello, "msg") == "isdbgrid";
  // FerretDB 1.x reports MongoDB 7.0 but lacks all of these (docs/operations.md, "FerretDB 1.x and the
  // MongoDB adapter"), so each also needs "not FerretDB".
  caps.time_series = modern && !caps.ferretdb;
  caps.change_streams = replicated && !caps.ferretdb;
  caps.geo_index = !caps.ferretdb;
  caps.full_pipelines = modern && !caps.ferretdb;
  caps.atomic_updates = !caps.ferretdb;
  return caps;
}

void log_capabilities(const mongoc_uri_t* uri, const std::string& database, const MongoCapabilities& caps) {
  spdlog::info(
      "store.mongo: {} database '{}': server {}{}; time-series collections {} (telemetry stays a regular "
      "collection: its _id {{car}}:{{seq}} needs a unique index, which time-series collections lack); change "
      "streams {} (not used); 2dsphere index {}; analytics {}; twin seq guard {}",
      mongoc_uri_get_string(uri), database, caps.version, caps.ferretdb ? " (FerretDB)" : "",
      caps.time_series ? "available" : "unsupported", caps.change_streams ? "available" : "unsupported",
      caps.geo_index ? "created" : "skipped (unsupported)",
      caps.full_pipelines ? "as aggregation pipelines"
                          : "as $group pipelines where supported, hourly buckets aggregated client-side",
      caps.atomic_updates ? "by conditional upsert" : "by conditional upsert under per-car lease locks");
}

/// Creates one index, `keys` in order (direction 0 = "2dsphere"). Idempotent: an existing index is left as
/// it is. One index per command: FerretDB 1.x drops the connection on a createIndexes of several existing
/// indexes (docs/operations.md, "FerretDB 1.x and the MongoDB adapter").
void create_index(mongoc_client_t* client, const std::string& db, const char* collection, const char* name,
                  std::initializer_list<std::pair<const char*, int>> keys) {
  Bson cmd;
  cmd.str("createIndexes", collection).array("indexes", [&](ArrayWriter& indexes) {
    indexes.child([&](DocWriter& index) {
      index.child("key", [&](DocWriter& key) {
        for (const auto& [field, dir] : keys) {
          if (dir == 0) {
            key.str(field, "2dsphere");
          } else {
            key.int32(field, dir);
          }
        }
      });
      index.str("name", name);
    });
  });
  bson_error_t error;
  bson_t reply;
  const bool ok = mongoc_client_command_simple(client, db.c_str(), cmd.get(), nullptr, &reply, &error);
  bson_destroy(&reply);
  if (!ok) throw MongoError(std::string("createIndexes ") + name + " on " + collection, error);
}

void create_indexes(mongoc_client_t* client, const std::string& db, const MongoCapabilities& caps) {
  create_index(client, db, "twins", "health_status", {{"health.status", 1}});
  create_index(client, db, "twins", "last_seen", {{"connection.last_seen", 1}});
  create_index(client, db, "twins", "health_score", {{"health.score", -1}, {"_id", 1}});
  if (caps.geo_index) create_index(client, db, "twins", "location", {{"location", 0}});
  create_index(client, db, "telemetry", "car_ts", {{"car", 1}, {"ts", 1}});
  create_index(client, db, "telemetry", "ts", {{"ts", 1}});
  create_index(client, db, "telemetry", "car_seq", {{"car", 1}, {"seq", -1}});
  create_index(client, db, "alerts", "car_ts", {{"car", 1}, {"ts", -1}});
  create_index(client, db, "alerts", "ts", {{"ts", 1}});
  create_index(client, db, "commands", "car_created", {{"car", 1}, {"created", -1}});
  create_index(client, db, "aggregates", "aggregate_group_start",
               {{"aggregate", 1}, {"group", 1}, {"window_start", 1}});
  create_index(client, db, "aggregates", "window_start", {{"window_start", 1}});
}

}  // namespace

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
  // Owned here until the server answered: the destructor does not run for a throwing constructor.
  UriPtr uri(mongoc_uri_new_with_error(uri_text.c_str(), &error));
  if (uri == nullptr) throw MongoError("bad URI '" + uri_text + "'", error);
  const char* db = mongoc_uri_get_database(uri.get());
  _database = db != nullptr && *db != '\0' ? db : "fleettwin";
  PoolPtr pool(mongoc_client_pool_new(uri.get()));
  if (pool == nullptr) throw MongoError("cannot create a client pool for '" + uri_text + "'");
  mongoc_client_pool_set_error_api(pool.get(), MONGOC_ERROR_API_VERSION_2);
  mongoc_client_pool_set_appname(pool.get(), "fleettwin");

  mongoc_client_t* client = mongoc_client_pool_pop(pool.get());
  Bson build_info;
  Bson hello;
  const bool reached = admin_command(client, "buildInfo", build_info, error);
  if (reached) admin_command(client, "hello", hello, error);  // optional: no replica set without it
  mongoc_client_pool_push(pool.get(), client);
  if (!reached) throw MongoError("cannot reach " + uri_text, error);
  _caps = detect(build_info.get(), hello.get());
  log_capabilities(uri.get(), _database, _caps);
  _pool = pool.release();
  _uri = uri.release();
}

MongoPool::~MongoPool() {
  if (_pool != nullptr) mongoc_client_pool_destroy(_pool);
  if (_uri != nullptr) mongoc_uri_destroy(static_cast<mongoc_uri_t*>(_uri));
}

MongoStore::MongoStore(const std::string& uri, MongoOptions options,
                       std::shared_ptr<const catalog::Catalog> catalog)
    : _pool(MongoPool::get(uri)),
      _options(options),
      _catalog(catalog ? std::move(catalog) : catalog::builtin()) {
  _client = mongoc_client_pool_pop(_pool->pool());
  {
    // Identifies this instance's twin lease locks (see TwinLeases).
    static std::atomic<uint64_t> counter{0};
    _owner = std::to_string(::getpid()) + ":" + std::to_string(reinterpret_cast<uintptr_t>(this)) + ":" +
             std::to_string(counter++);
  }
  _impl = std::make_unique<Impl>(_client, _pool->database());
  // createIndexes is idempotent: every instance may run it; an index that exists is left alone.
  try {
    create_indexes(_client, _pool->database(), _pool->capabilities());
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

}  // namespace fleettwin::store
