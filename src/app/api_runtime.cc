#include "app/api_runtime.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <filesystem>

#include "app/store_factory.h"
#include "stages/aggregate/aggregate_stage.h"
#include "stages/registry.h"

namespace fleettwin::app {

using config::Config;
using config::ConfigError;
using config::parse_host_port;
namespace keys = config::keys;

namespace {

namespace fs = std::filesystem;

// The dashboard is served from a directory rather than compiled into the binary: the C++ build then needs
// no Node.js, and `scripts/build` (npm) can rebuild web/dist without relinking. A build-tree binary finds
// the source tree's web/dist; an installed one the web/ directory beside it.
std::string find_web_dir(const Config& config) {
  if (const auto dir = config.get(keys::http_web_dir); !dir.empty()) return dir;
  std::error_code ec;
  const auto exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && fs::is_regular_file(exe.parent_path() / "web" / "index.html"))
    return (exe.parent_path() / "web").string();
#ifdef FLEETTWIN_SOURCE_DIR
  return std::string(FLEETTWIN_SOURCE_DIR) + "/web/dist";
#else
  return "";
#endif
}

}  // namespace

core::TokenTable configured_tokens(const Config& config, const config::StringKey& key) {
  try {
    return core::TokenTable::parse(config.get(key));
  } catch (const core::TokenError& e) {
    std::string env = "FLEETTWIN_";
    for (char c : key.name())
      env += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    throw ConfigError(key.name() + " (" + env + "): " + e.what());
  }
}

std::unique_ptr<api::ApiServer> start_api_server(const Config& config, const ApiHost& host) {
  api::ApiOptions o;
  // The lag the fleet summary shows: every stage of the registry, and the bridge's command consumer.
  o.lag_stages.push_back("bridge");
  for (const auto& entry : stages::registry()) o.lag_stages.push_back(entry.descriptor().name);
  std::tie(o.host, o.port) = parse_host_port(config.get(keys::http_listen), "--http");
  std::string generated;
  o.tokens = configured_tokens(config, keys::api_tokens);
  if (o.tokens.empty()) {
    generated = api::load_or_create_admin_token(host.data_dir);
    o.tokens.add(api::Role::kAdmin, generated);
  }
  o.open_store = host.open_store;
  o.catalog = host.catalog ? host.catalog : configured_catalog(config);
  o.metrics = host.metrics;
  o.log = host.log;
  o.ready = host.ready;
  o.web_dir = find_web_dir(config);
  o.models_dir = host.data_dir.empty() ? "" : (fs::path(host.data_dir) / "models").string();
  o.max_stream_clients = static_cast<std::size_t>(config.get(keys::http_max_stream_clients));
  o.max_streams_per_token = static_cast<std::size_t>(config.get(keys::http_max_streams_per_token));
  o.max_connections = static_cast<std::size_t>(config.get(keys::http_max_connections));
  // The definitions the aggregate stage computes (aggregate.definitions, or the shipped ones). Definitions
  // this catalog cannot read leave the API without them: it then serves whatever aggregates the store
  // holds, and history never falls back to them.
  try {
    o.aggregates = stages::aggregate_definitions(config, *o.catalog);
  } catch (const ConfigError& e) {
    spdlog::warn("api: no aggregate definitions for catalog {}: {}", o.catalog->label(), e.what());
  }
  o.history_retention_ms = config.get(keys::store_history_retention).count();
  auto server = std::make_unique<api::ApiServer>(std::move(o));
  try {
    server->start();
  } catch (const std::exception& e) {
    throw ConfigError("HTTP API: cannot listen on " + config.get(keys::http_listen) + " (" + e.what() +
                      "); pass --http HOST:PORT (port 0 picks a free one)");
  }
  if (!generated.empty()) {
    std::fprintf(stderr, "dashboard: %s/#token=%s (admin token kept in %s/api-token)\n",
                 server->url().c_str(), generated.c_str(), host.data_dir.c_str());
  } else {
    std::fprintf(stderr, "dashboard: %s/ (log in with a token from api.tokens)\n", server->url().c_str());
  }
  std::fflush(stderr);
  spdlog::info("api: serving {} (dashboard from {})", server->url(), find_web_dir(config));
  return server;
}

std::unique_ptr<api::MetricsServer> start_metrics_server(const Config& config, const core::Metrics& metrics,
                                                         std::function<bool()> ready) {
  const std::string listen = config.get(keys::metrics_listen);
  if (listen.empty()) return nullptr;
  auto [host, port] = parse_host_port(listen, "--metrics-listen");
  auto server = std::make_unique<api::MetricsServer>(metrics, host, port, std::move(ready));
  try {
    server->start();
  } catch (const std::exception& e) {
    throw ConfigError("metrics: cannot listen on " + listen + " (" + e.what() +
                      "); pass --metrics-listen HOST:PORT (port 0 picks a free one)");
  }
  // On stderr as the dashboard's URL is, so whoever started the process (a test, a script) finds the port.
  std::fprintf(stderr, "metrics: %s/metrics\n", server->url().c_str());
  std::fflush(stderr);
  return server;
}

}  // namespace fleettwin::app
