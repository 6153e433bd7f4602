#pragma once

#include <functional>
#include <memory>

#include "catalog/catalog.h"
#include "config/config.h"
#include "core/metrics.h"
#include "store/twin_store.h"

namespace fleettwin::app {

/// Opens a TwinStore for the calling thread. Any thread may call it; each call returns a new instance.
using StoreOpener = std::function<std::unique_ptr<store::TwinStore>()>;

/// The store the configuration names: PostgreSQL when store.postgres_uri is set (a connection per instance),
/// MongoDB when store.mongo_uri is set (all instances share one client pool; both set: ConfigError),
/// otherwise SQLite at <data_dir>/fleettwin.db. `metrics` (optional) receives the MongoDB retry and
/// error counters. Every store it opens follows `catalog`; null loads catalog.file once, here (the built-in
/// catalog when the key is empty; CatalogError when the file is not a catalog). Connects nothing yet: the
/// first call opens.
StoreOpener store_opener(const config::Config& config, core::Metrics* metrics = nullptr,
                         std::shared_ptr<const catalog::Catalog> catalog = nullptr);

/// The catalog the configuration names (catalog.file, or the built-in one when empty), for code that builds
/// stores and renders their signals with the same catalog. ConfigError ("--catalog: <file>:<line>: ...") when
/// the file cannot be used.
std::shared_ptr<const catalog::Catalog> configured_catalog(const config::Config& config);

/// For commands that only read: as store_opener, but SQLite requires the file to exist (a clear error
/// instead of an empty new store).
std::unique_ptr<store::TwinStore> open_existing_store(
    const config::Config& config, std::shared_ptr<const catalog::Catalog> catalog = nullptr);

}  // namespace fleettwin::app
