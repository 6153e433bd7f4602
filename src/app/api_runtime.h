#pragma once

#include <functional>
#include <memory>
#include <string>

#include "api/api_server.h"
#include "api/metrics_server.h"
#include "catalog/catalog.h"
#include "config/config.h"

namespace fleettwin::app {

/// What the process hosting the API hands it (see api::ApiOptions).
struct ApiHost {
  core::Metrics* metrics = nullptr;
  log::Log* log = nullptr;
  std::function<std::unique_ptr<store::TwinStore>()> open_store;
  std::string data_dir;
  std::function<bool()> ready;
  /// The catalog `open_store`'s stores follow; null: catalog.file (the built-in catalog when empty), which
  /// is what store_opener loads when it is given none.
  std::shared_ptr<const catalog::Catalog> catalog = nullptr;
};

/// The token list of `key` (api.tokens, registry.tokens). Throws ConfigError naming the key and its
/// environment variable when it is malformed.
core::TokenTable configured_tokens(const config::Config& config, const config::StringKey& key);

/// Starts the API server on `http.listen` with the tokens of `api.tokens` (FLEETTWIN_API_TOKENS), or, when
/// none are configured, the admin token kept in `<data_dir>/api-token`; prints the dashboard URL (with the
/// generated token) to stderr. The dashboard is served from `http.web_dir`, else `<binary dir>/web`, else
/// the source tree's web/dist (a build tree's binary). Throws ConfigError when the address is taken or the
/// token list is malformed. The caller keeps the server alive and destroys it before `host`'s objects.
std::unique_ptr<api::ApiServer> start_api_server(const config::Config& config, const ApiHost& host);

/// Starts the /metrics, /healthz and /readyz endpoint of a role process on `metrics.listen`; null when the
/// key is empty. Throws ConfigError when the address is taken. `metrics` must outlive the server.
std::unique_ptr<api::MetricsServer> start_metrics_server(const config::Config& config,
                                                         const core::Metrics& metrics,
                                                         std::function<bool()> ready = {});

}  // namespace fleettwin::app
