#pragma once

#include <functional>
#include <memory>

#include "config/config.h"
#include "core/metrics.h"
#include "store/twin_store.h"

namespace fleettwin::app {

/// Opens a TwinStore for the calling thread. Any thread may call it; each call returns a new instance.
using StoreOpener = std::function<std::unique_ptr<store::TwinStore>()>;

/// The store the configuration names: MongoDB when store.mongo_uri is set (all instances share one client
/// pool), otherwise SQLite at <data_dir>/fleettwin.db. `metrics` (optional) receives the MongoDB retry and
/// error counters. Connects nothing yet: the first call opens.
StoreOpener store_opener(const config::Config& config, core::Metrics* metrics = nullptr);

/// For commands that only read: as store_opener, but SQLite requires the file to exist (a clear error
/// instead of an empty new store).
std::unique_ptr<store::TwinStore> open_existing_store(const config::Config& config);

}  // namespace fleettwin::app
