// `fleettwin up`: the whole pipeline in this process (embedded log and store, or every role against Kafka
// and a store with --kafka / --mongo / --postgres), the cars simulated here or on their own MQTT connections.
#include <spdlog/spdlog.h>

#include <memory>

#include "app/pipeline.h"
#include "cli/command_line.h"
#include "cli/commands.h"
#include "cli/run_output.h"

namespace fleettwin::cli {

void add_up_commands(CommandLine& cl) {
  auto& flags = cl.flags();
  auto* up = cl.app().add_subcommand(
      "up", "Run the whole pipeline in this process (simulator, process, twin, store)");
  add_sim_flags(flags, up);
  flags.add(up, "--data-dir", keys::data_dir, "Store and state directory");
  flags.add(up, "--summary-json", keys::summary_json, "Write the run summary as JSON");
  add_distributed_flags(flags, up);
  flags.add(up, "--registry-listen", keys::registry_listen,
            "Embedded schema registry address (default 127.0.0.1:8081)");
  flags.add(up, "--http", keys::http_listen,
            "REST API and dashboard address (default 127.0.0.1:8080; '' disables)");
  flags.add(up, "--mongo", keys::store_mongo_uri, "Store in MongoDB/FerretDB at this URI instead of SQLite");
  flags.add(up, "--postgres", keys::store_postgres_uri,
            "Store in PostgreSQL at this URI (postgresql://...) instead of SQLite");
  // `--mqtt` alone means local brokers, so it is an option of its own rather than a key binding.
  auto mqtt = std::make_shared<std::string>();
  auto* mqtt_opt =
      up->add_option("--mqtt", *mqtt, "Cars over MQTT: through local brokers (no value) or HOST:PORT[,...]")
          ->expected(0, 1);
  flags.add(up, "--mqtt-shards", keys::mqtt_shards, "Local brokers `--mqtt` starts (default 1)");
  add_mqtt_flags(flags, up);
  flags.add_switch(
      up, "--no-sim", keys::up_no_sim,
      "No simulator: real cars publish to the --mqtt brokers (an edge site; runs until stopped)");
  add_uplink_flags(flags, up);

  cl.add(up, [mqtt, mqtt_opt](Config& config, std::atomic<int>& stop_signals) {
    if (mqtt_opt->count() > 0) config.set(keys::mqtt_brokers, mqtt->empty() ? "local" : *mqtt, "--mqtt");
    const std::string log =
        config.get(keys::kafka_brokers).empty() ? "embedded" : config.get(keys::kafka_brokers);
    auto roles = app::Roles::all();
    roles.sim = !config.get(keys::up_no_sim);
    if (roles.sim) {
      spdlog::info("fleettwin up: {} cars, interval {}, {}, data dir {}, log {}", config.get(keys::sim_cars),
                   config.text(keys::sim_interval), config.get(keys::sim_fast) ? "fast" : "real time",
                   config.get(keys::data_dir), log);
    } else {
      if (config.get(keys::mqtt_brokers).empty())
        throw config::ConfigError("--no-sim: real cars connect over MQTT; give --mqtt HOST:PORT[,...]");
      spdlog::info("fleettwin up: real cars over MQTT {}, data dir {}, log {}, PUBACK {}",
                   config.get(keys::mqtt_brokers), config.get(keys::data_dir), log,
                   config.get(keys::mqtt_durable_ack) && log == "embedded" ? "once on disk (inbox)"
                                                                           : "once in the log");
    }
    const app::RunControl control{&stop_signals, 0, true};
    const auto s = app::run_pipeline(config, control, roles);
    print_summary(s);
    if (!config.get(keys::summary_json).empty()) write_json(config.get(keys::summary_json), s.to_json());
    return 0;
  });
}

}  // namespace fleettwin::cli
