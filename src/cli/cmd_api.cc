// `fleettwin api`: the REST API and the dashboard as a process of their own (distributed mode), over the
// SQLite store of a data dir or MongoDB (--mongo) and, with --kafka, the Kafka log for commands and live
// twin changes.
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <thread>

#include "app/api_runtime.h"
#include "app/store_factory.h"
#include "cli/commands.h"
#include "core/metrics.h"
#include "log/kafka/kafka_log.h"

namespace fleettwin::app {

using config::Config;
namespace keys = config::keys;

namespace {

/// The flag values of `fleettwin api`, applied to the configuration only when given.
struct ApiFlags {
  std::string listen, data_dir, mongo, kafka;
};

int run_api(const ApiFlags& flags, Config& config, std::atomic<int>& stop_signals) {
  if (!flags.listen.empty()) config.set(keys::http_listen, flags.listen, "--listen");
  if (!flags.data_dir.empty()) config.set(keys::data_dir, flags.data_dir, "--data-dir");
  if (!flags.mongo.empty()) config.set(keys::store_mongo_uri, flags.mongo, "--mongo");
  if (!flags.kafka.empty()) config.set(keys::kafka_brokers, flags.kafka, "--kafka");
  open_existing_store(config);  // a clear error now for a data dir without a store or an unreachable MongoDB
  std::unique_ptr<log::Log> log;
  if (const auto brokers = config.get(keys::kafka_brokers); !brokers.empty()) {
    auto settings = log::KafkaLog::settings_from_config(config.passthrough(), "kafka.");
    settings["bootstrap.servers"] = brokers;
    log = std::make_unique<log::KafkaLog>(std::move(settings));
  }
  core::Metrics metrics;
  auto server = start_api_server(
      config, ApiHost{&metrics, log.get(), store_opener(config, &metrics), config.get(keys::data_dir), {}});
  std::printf("%s\n", server->url().c_str());
  std::fflush(stdout);
  while (stop_signals.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  server->stop();
  return 0;
}

}  // namespace

}  // namespace fleettwin::app

namespace fleettwin::cli {

void add_api_commands(CommandLine& cl) {
  using namespace fleettwin::app;
  auto flags = std::make_shared<ApiFlags>();
  auto* cmd = cl.app().add_subcommand("api", "Serve the REST API and the dashboard over a store");
  cmd->add_option("--listen", flags->listen, "HOST:PORT to listen on (default 127.0.0.1:8080)");
  cmd->add_option("--data-dir", flags->data_dir, "Directory of the SQLite store to serve (and of api-token)");
  cmd->add_option("--mongo", flags->mongo, "MongoDB/FerretDB URI of the store to serve instead");
  cmd->add_option("--kafka", flags->kafka, "Kafka bootstrap servers: commands and live twin changes");
  cl.add(cmd, [flags](Config& config, std::atomic<int>& stop) { return run_api(*flags, config, stop); });
}

}  // namespace fleettwin::cli
