#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "api/api_server.h"
#include "api/bounded_server.h"
#include "api/dlq_recent.h"
#include "api/event_hub.h"
#include "api/model_catalog.h"
#include "api/store_pool.h"
#include "api/throughput.h"
#include "core/twin.h"
#include "log/log.h"

namespace fleettwin::api {

/// Every car's position and health as the map's JSON columns, rebuilt at most every 2 s. Guarded by `mu`.
struct PositionsCache {
  std::mutex mu;
  std::string json;
  std::chrono::steady_clock::time_point built{};
};

/// What the REST handlers and the background feed work on: the server's options and the state they share.
/// Built once by ApiServer and outlives every request. HTTP workers and the background thread use it at
/// once: each member is safe to use from any thread (locked inside, atomic, or read-only options).
struct ApiContext {
  explicit ApiContext(ApiOptions o);

  const ApiOptions options;
  StorePool stores;
  EventHub hub;
  ThroughputLog throughput;
  ModelCatalog models;
  PositionsCache positions;
  ConnectionCounts connections;  ///< of the HTTP server (BoundedServer), for /metrics
  DlqRecent dlq;
  std::atomic<uint64_t> command_sequence{0};

  /// The stores' signal catalog (options.catalog, never null).
  const catalog::Catalog& catalog() const { return *options.catalog; }

  /// Sends `records` through one producer shared by every worker (created on first use; needs
  /// options.log) and waits for them: the number the log did not take.
  int64_t publish(std::vector<log::OutRecord> records);

 private:
  std::mutex _producer_mu;
  std::unique_ptr<log::Producer> _producer;
};

/// The twin of `car`: ApiError 400 for a malformed car id, 404 for an unknown car.
core::Twin twin_or_404(store::TwinStore& s, const std::string& car);

}  // namespace fleettwin::api
