// `fleettwin registry`: the embedded schema registry as a service of its own (distributed mode).
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>
#include <tuple>

#include "app/api_runtime.h"
#include "cli/command_line.h"
#include "cli/commands.h"
#include "core/metric_catalog.h"
#include "core/metrics.h"
#include "registry/server.h"

namespace fleettwin::cli {

namespace {

int run_registry(Config& config, std::atomic<int>& stop_signals) {
  registry::EmbeddedRegistryOptions ro;
  std::tie(ro.host, ro.port) = config::parse_host_port(config.get(keys::registry_listen), "--listen");
  const auto dir = std::filesystem::path(config.get(keys::data_dir)) / "registry";
  std::filesystem::create_directories(dir);
  ro.journal_path = (dir / "schemas.jsonl").string();
  ro.tokens = app::configured_tokens(config, keys::registry_tokens);
  registry::EmbeddedRegistry server(ro);
  server.start();
  std::printf("%s\n", server.url().c_str());
  std::fflush(stdout);
  spdlog::info("schema registry serving on {} (schemas kept in {})", server.url(), ro.journal_path);
  // /metrics /healthz /readyz on --metrics-listen, as every role serves them: its REST API (the Confluent
  // subset clients expect) has no place for them. Started after the URL above, which scripts read first.
  core::Metrics metrics;
  auto& requests = metrics.counter(core::metric::kRegistryRequests);
  auto& subjects = metrics.gauge(core::metric::kRegistrySubjects);
  auto metrics_server = app::start_metrics_server(config, metrics, [&server] { return server.port() != 0; });
  uint64_t counted = 0;
  while (stop_signals.load() == 0) {
    // The server counts its requests itself; the registry's counter follows it between scrapes.
    const uint64_t now = server.request_count();
    requests.add(static_cast<int64_t>(now - counted));
    counted = now;
    subjects.set(static_cast<int64_t>(server.store().subjects().size()));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (metrics_server) metrics_server->stop();
  server.stop();
  return 0;
}

}  // namespace

void add_registry_commands(CommandLine& cl) {
  auto* cmd =
      cl.app().add_subcommand("registry", "Serve the embedded schema registry (Confluent REST subset)");
  cl.flags().add(cmd, "--listen", keys::registry_listen, "HOST:PORT to listen on (default 127.0.0.1:8081)");
  cl.flags().add(cmd, "--data-dir", keys::data_dir, "Where registered schemas are kept");
  cl.flags().add(
      cmd, "--metrics-listen", keys::metrics_listen,
      "HOST:PORT to serve /metrics, /healthz and /readyz on (port 0: any free port; default: none)");
  cl.add(cmd, run_registry);
}

}  // namespace fleettwin::cli
