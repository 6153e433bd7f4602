// `fleettwin api`: the REST API and the dashboard as a process of their own (distributed mode), over the
// SQLite store of a data dir, MongoDB (--mongo) or PostgreSQL (--postgres) and, with --kafka, the Kafka log
// for commands and live twin changes.
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

#include "app/api_runtime.h"
#include "app/log_factory.h"
#include "app/store_factory.h"
#include "cli/commands.h"
#include "core/metrics.h"
#include "log/kafka/kafka_log.h"

namespace fleettwin::cli {

namespace {

int run_api(Config& config, std::atomic<int>& stop_signals) {
  const auto catalog = app::configured_catalog(config);
  // A clear error now for a data dir without a store or an unreachable MongoDB.
  app::open_existing_store(config, catalog);
  std::unique_ptr<log::Log> log;
  if (const auto brokers = config.get(keys::kafka_brokers); !brokers.empty()) {
    log = std::make_unique<log::KafkaLog>(app::kafka_settings(config, brokers));
  }
  core::Metrics metrics;
  auto server = app::start_api_server(config, app::ApiHost{&metrics,
                                                           log.get(),
                                                           app::store_opener(config, &metrics, catalog),
                                                           config.get(keys::data_dir),
                                                           {},
                                                           catalog});
  std::printf("%s\n", server->url().c_str());
  std::fflush(stdout);
  while (stop_signals.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  server->stop();
  return 0;
}

}  // namespace

void add_api_commands(CommandLine& cl) {
  auto& flags = cl.flags();
  auto* cmd = cl.app().add_subcommand("api", "Serve the REST API and the dashboard over a store");
  flags.add(cmd, "--listen", keys::http_listen, "HOST:PORT to listen on (default 127.0.0.1:8080)");
  flags.add(cmd, "--data-dir", keys::data_dir, "Directory of the SQLite store to serve (and of api-token)");
  flags.add(cmd, "--mongo", keys::store_mongo_uri, "MongoDB/FerretDB URI of the store to serve instead");
  flags.add(cmd, "--postgres", keys::store_postgres_uri, "PostgreSQL URI of the store to serve instead");
  flags.add(cmd, "--kafka", keys::kafka_brokers, "Kafka bootstrap servers: commands and live twin changes");
  cl.add(cmd, run_api);
}

}  // namespace fleettwin::cli
