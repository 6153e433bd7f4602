#include "app/store_factory.h"

#include <filesystem>

#include "store/mongo/mongo_store.h"
#include "store/postgres/postgres_store.h"
#include "store/sqlite/sqlite_store.h"

namespace fleettwin::app {

using config::Config;
using config::ConfigError;
namespace keys = config::keys;

std::shared_ptr<const catalog::Catalog> configured_catalog(const Config& config) {
  try {
    return catalog::load_or_builtin(config.get(keys::catalog_file));
  } catch (const catalog::CatalogError& e) {
    throw ConfigError(std::string("--catalog: ") + e.what());
  }
}

namespace {

/// The PostgreSQL URI the configuration names ("" for none), checked against the MongoDB one: one store
/// a process.
std::string postgres_uri(const Config& config) {
  const std::string uri = config.get(keys::store_postgres_uri);
  const std::string mongo = config.get(keys::store_mongo_uri);
  if (store::PostgresStore::is_uri(mongo)) {
    throw ConfigError("--mongo " + mongo + ": a PostgreSQL URI; give it as --postgres");
  }
  if (uri.empty()) return uri;
  if (!mongo.empty()) throw ConfigError("--mongo and --postgres name two stores; give one");
  if (!store::PostgresStore::is_uri(uri)) {
    throw ConfigError("--postgres " + uri + ": not a PostgreSQL URI (postgresql://user@host:port/database)");
  }
  return uri;
}

}  // namespace

StoreOpener store_opener(const Config& config, core::Metrics* metrics,
                         std::shared_ptr<const catalog::Catalog> catalog) {
  if (!catalog) catalog = configured_catalog(config);
  if (const std::string pg = postgres_uri(config); !pg.empty()) {
    return [pg, catalog] {
      return std::make_unique<store::PostgresStore>(pg, store::PostgresOptions{}, catalog);
    };
  }
  const std::string uri = config.get(keys::store_mongo_uri);
  if (!uri.empty()) {
    store::MongoOptions options;
    options.metrics = metrics;
    return [uri, options, catalog] { return std::make_unique<store::MongoStore>(uri, options, catalog); };
  }
  const std::string path = store::SqliteStore::path_in(config.get(keys::data_dir));
  return
      [path, catalog] { return std::make_unique<store::SqliteStore>(path, store::SqliteOptions{}, catalog); };
}

std::unique_ptr<store::TwinStore> open_existing_store(const Config& config,
                                                      std::shared_ptr<const catalog::Catalog> catalog) {
  if (config.get(keys::store_mongo_uri).empty() && postgres_uri(config).empty()) {
    const std::string dir = config.get(keys::data_dir);
    if (!std::filesystem::exists(store::SqliteStore::path_in(dir))) {
      throw ConfigError("no fleettwin store in " + dir +
                        " (give --data-dir of a store `fleettwin up` wrote, --mongo URI or --postgres URI)");
    }
  }
  return store_opener(config, nullptr, std::move(catalog))();
}

}  // namespace fleettwin::app
