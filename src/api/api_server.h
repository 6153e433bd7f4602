#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "aggregate/definition.h"
#include "api/auth.h"
#include "catalog/catalog.h"
#include "core/metrics.h"
#include "log/log.h"
#include "store/twin_store.h"

namespace fleettwin::api {

/// What the API server needs from the process it runs in. `up` passes its metrics, store factory and
/// in-memory log; `fleettwin api` its own.
struct ApiOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  ///< 0: any free port (see ApiServer::port())
  TokenTable tokens;
  /// Opens one store connection per HTTP worker that needs one (stores are one-thread objects).
  std::function<std::unique_ptr<store::TwinStore>()> open_store;
  /// The signal catalog the stores follow: how twins, history and filters name signals, and what
  /// GET /api/v1/catalog serves.
  std::shared_ptr<const catalog::Catalog> catalog = catalog::builtin();
  /// Exported at /metrics and sampled once a second for /fleet/throughput and the live stream. Not owned.
  core::Metrics* metrics = nullptr;
  /// Where commands go (fleet.commands) and where twin changes come from (fleet.twins). Not owned; null:
  /// PATCH /twins/{car}/desired answers 503 and the stream carries no twin events.
  log::Log* log = nullptr;
  /// The built dashboard (web/dist); empty or missing: / explains how to build it.
  std::string web_dir;
  /// Directory of model artifacts' JSON metadata (*.json) listed by GET /models; empty: none.
  std::string models_dir;
  /// Live-stream limits: clients at once, and bytes queued per client before a slow client is dropped
  /// (a twins event is at most ~200 KB, so 2 MB is about ten seconds of falling behind at 10,000 cars).
  std::size_t max_stream_clients = 256;
  std::size_t stream_queue_bytes = 2 << 20;
  /// Live streams one token may hold at once (429 past it), so one client cannot take every slot.
  std::size_t max_streams_per_token = 32;
  /// Connections held at once, queued or served (past it: 503 at accept, see BoundedServer). Each is a
  /// descriptor; the process may have 20,000 and also needs them for the store, the log and MQTT.
  std::size_t max_connections = 1024;
  /// Worker threads for ordinary requests; each live-stream client holds one more thread.
  std::size_t threads = 8;
  /// Extra readiness condition (e.g. the pipeline's stages are running); null: ready once listening.
  std::function<bool()> ready;
  /// The stages whose consumer lag (fleettwin_consumer_lag{stage="..."}) is summed into the throughput
  /// samples' `lag`; the host fills it from the stage registry.
  std::vector<std::string> lag_stages;
  /// The aggregate definitions in use (aggregate.definitions, or the shipped ones): the columns and names
  /// GET /api/v1/aggregates/{name} knows, and which per-car aggregate answers a history range older than
  /// `history_retention_ms`. Empty: any stored aggregate is served, and history never falls back.
  std::vector<aggregate::Definition> aggregates;
  /// store.history_retention (0: kept forever). A car's history for a range ending before its last message
  /// minus this is gone from the store and is answered from `aggregates` (docs/architecture.md).
  int64_t history_retention_ms = 0;
};

/// The largest request body the API reads (413 past it): a settings PATCH is a few hundred bytes.
inline constexpr std::size_t kMaxRequestBodyBytes = 1 << 20;

/// A route of the REST API: method and OpenAPI path template (e.g. "/api/v1/twins/{car}"). The OpenAPI
/// test checks docs/openapi.yaml against this list.
struct RouteInfo {
  std::string method;
  std::string path;
};

/// The REST API, the live stream (SSE) and the dashboard, served over HTTP by cpp-httplib.
///
/// Why cpp-httplib (Debian's libcpp-httplib-dev 0.11.4): it is maintained, already serves the embedded
/// schema registry (one HTTP stack in the binary), has a thread pool we can size, and streams SSE through
/// its chunked content provider; Boost.Beast would need an asio event loop and hand-written HTTP plumbing
/// for the same features. Its cost: one worker thread per open live stream, which is why the stream has a
/// client limit and the pool is sized max_stream_clients + threads.
///
/// Threads: start()/stop() from the owner; requests on httplib's workers; one background thread samples
/// metrics, polls new alerts and reads fleet.twins, publishing events to the stream hub (LiveFeed).
///
/// Layout: this class only binds and routes. Each group of REST handlers is a file of short functions
/// over ApiContext (system_routes.cc, twin_routes.cc, command_routes.cc, alert_routes.cc,
/// fleet_routes.cc, model_routes.cc, stream_routes.cc; declared in routes.h), Router adds the token check
/// and the JSON error bodies, and dashboard_files.cc serves web/dist.
class ApiServer {
 public:
  explicit ApiServer(ApiOptions options);
  ~ApiServer();  ///< stops
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  /// Binds and starts serving. Throws std::runtime_error when the address cannot be bound.
  void start();
  /// Closes live streams, stops accepting, joins every thread. Idempotent.
  void stop();
  int port() const;
  /// "http://host:port" (a wildcard host is reported as 127.0.0.1).
  std::string url() const;

  /// Every route, in registration order.
  static std::vector<RouteInfo> routes();
  /// The OpenAPI document served at /api/v1/openapi.yaml (docs/openapi.yaml, embedded at build time).
  static const std::string& openapi_yaml();

 private:
  struct Impl;
  std::unique_ptr<Impl> _impl;
};

}  // namespace fleettwin::api
