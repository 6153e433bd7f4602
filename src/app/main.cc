// fleettwin: the command-line entry point. Parses the command line (CLI11), resolves the configuration and
// hands over to the mode's wiring. Every user error ends here as one clear line and exit code 2.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>
#include <tuple>

#include "app/commands.h"
#include "app/credentials.h"
#include "app/mqtt_bench.h"
#include "app/mqtt_front.h"
#include "app/pipeline.h"
#include "app/store_factory.h"
#include "codec/json.h"
#include "codec/registry_server.h"
#include "config/config.h"
#include "store/sqlite/sqlite_store.h"

namespace {

using fleettwin::config::Config;
using fleettwin::config::ConfigError;
namespace keys = fleettwin::config::keys;

std::atomic<int> g_stop_signals{0};

void on_signal(int) { g_stop_signals.fetch_add(1); }

/// A flag that maps onto a configuration key; applied only when given, so the file and environment are not
/// overridden by defaults.
struct FlagBinding {
  std::string flag;
  const fleettwin::config::KeySpec* key;
  std::string value;
  CLI::Option* option = nullptr;
};

class Flags {
 public:
  void add(CLI::App* app, const std::string& flag, const fleettwin::config::KeySpec& key,
           const std::string& help) {
    auto& b = _bindings.emplace_back(FlagBinding{flag, &key, "", nullptr});
    b.option = app->add_option(flag, b.value, help);
  }
  /// `--kafka-set KEY=VALUE` (repeatable): any librdkafka property, as `kafka.KEY`.
  void add_kafka_set(CLI::App* app) {
    auto& values = _kafka_sets.emplace_back();
    app->add_option("--kafka-set", values,
                    "librdkafka property KEY=VALUE (repeatable), e.g. security.protocol=SSL");
  }
  void add_switch(CLI::App* app, const std::string& flag, const fleettwin::config::BoolKey& key,
                  const std::string& help) {
    auto& b = _switches.emplace_back(FlagBinding{flag, &key, "", nullptr});
    b.option = app->add_flag(flag, help);
  }
  void apply(Config& config) {
    for (auto& b : _bindings)
      if (b.option->count() > 0) config.set(*b.key, b.value, b.flag);
    for (auto& b : _switches)
      if (b.option->count() > 0) config.set(*b.key, "true", b.flag);
    for (const auto& values : _kafka_sets)
      for (const auto& kv : values) {
        const auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0)
          throw ConfigError("--kafka-set '" + kv + "': expected KEY=VALUE");
        config.set_named("kafka." + kv.substr(0, eq), kv.substr(eq + 1), "--kafka-set");
      }
  }

 private:
  std::deque<FlagBinding> _bindings, _switches;  // deque: CLI11 keeps pointers to `value`
  std::deque<std::vector<std::string>> _kafka_sets;
};

Config load_config(const std::string& config_file, Flags& flags) {
  Config config;
  if (!config_file.empty()) config.load_yaml(config_file);
  config.load_env();
  flags.apply(config);
  return config;
}

void print_summary(const fleettwin::app::RunSummary& s) {
  std::fprintf(
      stderr,
      "\nsummary: %lld cars, %lld published, %lld processed, %lld DLQ, %lld stored this run (%lld in "
      "store), %lld twins\n"
      "         exactness: lost %lld, duplicates %lld, twins behind %lld\n"
      "         %.0f msg/s end to end, latency p50 %.1f ms p99 %.1f ms, peak RSS %.0f MB, %lld failures "
      "simulated\n",
      (long long)s.cars, (long long)s.published, (long long)s.processed, (long long)s.dlq,
      (long long)s.stored_this_run, (long long)s.stored_telemetry, (long long)s.twins, (long long)s.lost,
      (long long)s.duplicates, (long long)s.twins_behind, s.msgs_per_s, s.p50_latency_ms, s.p99_latency_ms,
      s.peak_rss_mb, (long long)s.failures);
}

void write_json(const std::string& path, const std::string& json) {
  std::ofstream out(path);
  out << json << '\n';
  if (!out) throw ConfigError("cannot write " + path);
}

std::string twin_row(const fleettwin::core::Twin& t) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%-12s %-8s %-7s seq %-8lld speed %6.1f m/s  msgs %lld", t.id.c_str(),
                std::string(fleettwin::core::to_string(t.health.status)).c_str(),
                t.online ? "online" : "offline", (long long)t.reported.seq,
                t.reported.values[fleettwin::core::kSpeed], (long long)t.messages);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fleettwin: a digital twin of every car in a fleet, with failure prediction"};
  app.require_subcommand(1);
  app.fallthrough();  // global options (--config, --log-level) also after the subcommand
  std::string config_file;
  app.add_option("--config", config_file, "YAML configuration file")->check(CLI::ExistingFile);
  Flags flags;
  flags.add(&app, "--log-level", keys::log_level, "trace|debug|info|warn|error");

  // up
  auto* up =
      app.add_subcommand("up", "Run the whole pipeline in this process (simulator, process, twin, store)");
  // The simulator's flags, shared by `up` and `sim`.
  auto add_sim_flags = [&](CLI::App* cmd) {
    flags.add(cmd, "--cars", keys::sim_cars, "Number of simulated cars");
    flags.add(cmd, "--interval", keys::sim_interval, "Each car sends one message per interval (e.g. 10s)");
    flags.add(cmd, "--duration", keys::sim_duration,
              "Simulated time to run, e.g. 10m (default: until stopped)");
    flags.add_switch(cmd, "--fast", keys::sim_fast, "Simulated clock, as fast as the pipeline accepts");
    flags.add(cmd, "--seed", keys::sim_seed, "Simulator seed");
    flags.add(cmd, "--failure-rate", keys::sim_failure_rate, "Expected failures per car per simulated hour");
    flags.add(cmd, "--failure-ramp", keys::sim_failure_ramp,
              "Time a failure takes to reach its full signature");
    flags.add(cmd, "--replay", keys::sim_replay, "Replay a cardata-v1 CSV instead of simulating");
    flags.add(cmd, "--inject-invalid", keys::sim_inject_invalid,
              "Also publish N malformed payloads (DLQ demo)");
    flags.add(cmd, "--ground-truth", keys::ground_truth,
              "Ground-truth file (default <data-dir>/ground_truth.jsonl)");
  };
  add_sim_flags(up);
  flags.add(up, "--data-dir", keys::data_dir, "Store and state directory");
  flags.add(up, "--summary-json", keys::summary_json, "Write the run summary as JSON");
  auto add_distributed = [&](CLI::App* cmd) {
    flags.add(cmd, "--kafka", keys::kafka_brokers,
              "Kafka bootstrap servers HOST:PORT[,...] (default: embedded log)");
    flags.add_kafka_set(cmd);
    flags.add(cmd, "--schema-registry", keys::schema_registry, "Schema registry URL");
    flags.add(cmd, "--partitions", keys::log_partitions, "Partitions of topics fleettwin creates");
  };
  add_distributed(up);
  flags.add(up, "--registry-listen", keys::registry_listen,
            "Embedded schema registry address (default 127.0.0.1:8081)");
  flags.add(up, "--http", keys::http_listen,
            "REST API and dashboard address (default 127.0.0.1:8080; '' disables)");
  flags.add(up, "--mongo", keys::store_mongo_uri, "Store in MongoDB/FerretDB at this URI instead of SQLite");

  // One role per process (distributed mode).
  std::map<std::string, CLI::App*> role_cmds;
  for (const auto& [name, help] : std::vector<std::pair<std::string, std::string>>{
           {"process", "Run the process stage: raw JSON -> validated Avro, rejects to the DLQ"},
           {"sink", "Run the sink stage: telemetry and twins -> store"},
           {"score", "Run the score stage: telemetry -> anomaly scores, alerts, service commands"},
           {"sim", "Run the fleet simulator, publishing raw telemetry to the log"}}) {
    auto* cmd = app.add_subcommand(name, help);
    add_distributed(cmd);
    flags.add(cmd, "--group", keys::group, "Consumer group (copies in one group share the partitions)");
    flags.add(cmd, "--data-dir", keys::data_dir, "Store and state directory");
    role_cmds[name] = cmd;
  }
  add_sim_flags(role_cmds["sim"]);
  flags.add(role_cmds["sink"], "--mongo", keys::store_mongo_uri,
            "Store in MongoDB/FerretDB at this URI instead of SQLite");
  // MQTT: cars on their own connections, the bridge, credentials.
  auto add_mqtt_flags = [&](CLI::App* cmd) {
    flags.add(cmd, "--qos", keys::mqtt_qos, "QoS of the cars' telemetry: 0 or 1 (default 1)");
    flags.add(cmd, "--mqtt-version", keys::mqtt_version, "MQTT protocol version: 5 (default) or 3.1.1");
    flags.add(cmd, "--credentials", keys::mqtt_credentials,
              "Credentials directory from `fleettwin sim credentials`");
  };
  auto* sim_cmd = role_cmds["sim"];
  sim_cmd->require_subcommand(0, 1);
  flags.add(sim_cmd, "--mqtt", keys::mqtt_brokers,
            "Publish over MQTT to HOST:PORT[,...] (car i -> broker i % n) instead of writing to the log");
  add_mqtt_flags(sim_cmd);
  flags.add(sim_cmd, "--shard", keys::sim_shard, "Simulate only cars with index % shards == shard");
  flags.add(sim_cmd, "--shards", keys::sim_shards, "See --shard");
  flags.add(sim_cmd, "--cars-per-process", keys::mqtt_cars_per_process,
            "Cars per simulator process (default 16000)");
  bool worker_stats = false;
  sim_cmd->add_flag("--worker-stats", worker_stats, "Print machine-readable status lines (worker processes)")
      ->group("");
  auto* credentials_cmd = sim_cmd->add_subcommand(
      "credentials",
      "Write MQTT credentials for N cars: fleet secret, bridge password, mosquitto passwd and ACL");
  std::size_t cred_cars = 0;
  std::string cred_out;
  credentials_cmd->add_option("--cars", cred_cars, "Number of cars")
      ->required()
      ->check(CLI::Range(1, 10000000));
  credentials_cmd->add_option("--out", cred_out, "Directory to write (created)")->required();

  auto* bridge_cmd = app.add_subcommand(
      "bridge",
      "Run the MQTT bridge: cars' telemetry and acks -> log (PUBACK after the log has it), commands -> cars");
  add_distributed(bridge_cmd);
  flags.add(bridge_cmd, "--mqtt", keys::mqtt_brokers,
            "MQTT brokers HOST:PORT[,...] to read from (all of them)");
  add_mqtt_flags(bridge_cmd);
  flags.add(bridge_cmd, "--client-id", keys::mqtt_client_id,
            "Client id prefix; reuse it on restart, give each copy its own (default fleettwin-bridge)");
  flags.add(bridge_cmd, "--receive-maximum", keys::mqtt_receive_maximum,
            "Unacknowledged messages per broker connection (default 2000)");
  flags.add(bridge_cmd, "--group", keys::group,
            "Consumer group of fleet.commands (default fleettwin.bridge)");
  std::string up_mqtt;
  auto* up_mqtt_opt =
      up->add_option("--mqtt", up_mqtt, "Cars over MQTT: through local brokers (no value) or HOST:PORT[,...]")
          ->expected(0, 1);
  flags.add(up, "--mqtt-shards", keys::mqtt_shards, "Local brokers `--mqtt` starts (default 1)");
  add_mqtt_flags(up);

  // registry
  auto* registry_cmd =
      app.add_subcommand("registry", "Serve the embedded schema registry (Confluent REST subset)");
  flags.add(registry_cmd, "--listen", keys::registry_listen,
            "HOST:PORT to listen on (default 127.0.0.1:8081)");
  flags.add(registry_cmd, "--data-dir", keys::data_dir, "Where registered schemas are kept");

  // twin
  auto* twin = app.add_subcommand(
      "twin", "Run the twin stage (with --kafka), or read twins from the store (get, list)");
  twin->require_subcommand(0, 1);
  add_distributed(twin);
  flags.add(twin, "--group", keys::group, "Consumer group (copies in one group share the partitions)");
  auto* twin_get = twin->add_subcommand("get", "Print one car's twin as JSON");
  std::string car;
  twin_get->add_option("car", car, "Car id")->required();
  flags.add(twin_get, "--data-dir", keys::data_dir, "Store directory");
  flags.add(twin_get, "--mongo", keys::store_mongo_uri, "MongoDB/FerretDB URI of the store");
  auto* twin_list = twin->add_subcommand("list", "List twins");
  std::string status;
  int64_t limit = 20;
  twin_list->add_option("--status", status, "ok|warning|anomaly|unknown")
      ->check(CLI::IsMember({"ok", "warning", "anomaly", "unknown"}));
  twin_list->add_option("--limit", limit, "Rows at most")->check(CLI::Range(1, 1000000));
  flags.add(twin_list, "--data-dir", keys::data_dir, "Store directory");
  flags.add(twin_list, "--mongo", keys::store_mongo_uri, "MongoDB/FerretDB URI of the store");

  // config
  auto* config_cmd = app.add_subcommand("config", "Configuration reference");
  config_cmd->require_subcommand(1);
  auto* config_docs =
      config_cmd->add_subcommand("docs", "Print docs/configuration.md (every key, type, default)");

  // bench
  auto* bench = app.add_subcommand("bench", "Scenario benchmarks");
  bench->require_subcommand(1);
  auto* bench_embedded =
      bench->add_subcommand("embedded", "Sustained end-to-end msg/s of `up --fast` (sim -> store)");
  int64_t bench_seconds = 20;
  std::string bench_json;
  flags.add(bench_embedded, "--cars", keys::sim_cars, "Number of simulated cars (default 10000)");
  bench_embedded->add_option("--seconds", bench_seconds, "Wall time to run")->check(CLI::Range(1, 3600));
  bench_embedded->add_option("--json", bench_json, "Write the result as JSON (the --summary-json keys)");
  flags.add(bench_embedded, "--data-dir", keys::data_dir, "Scratch directory (default: a fresh temp dir)");
  auto* bench_kafka = bench->add_subcommand(
      "kafka",
      "End-to-end msg/s on Kafka (sim -> raw -> process -> telemetry -> sink), and process alone per core");
  flags.add(bench_kafka, "--kafka", keys::kafka_brokers,
            "Kafka bootstrap servers (e.g. from scripts/services/kafka start)");
  flags.add(bench_kafka, "--cars", keys::sim_cars, "Number of simulated cars (default 10000)");
  bench_kafka->add_option("--seconds", bench_seconds, "Wall time of each phase")->check(CLI::Range(1, 3600));
  bench_kafka->add_option("--json", bench_json, "Write the result as JSON");
  auto* bench_mqtt = bench->add_subcommand(
      "mqtt",
      "Cars on their own MQTT connections through local mosquitto shards and the bridge into the log");
  flags.add(bench_mqtt, "--cars", keys::sim_cars,
            "Number of simulated cars, one connection each (default 10000)");
  flags.add(bench_mqtt, "--interval", keys::sim_interval,
            "Each car sends one message per interval (default 10s)");
  flags.add(bench_mqtt, "--shards", keys::mqtt_shards, "mosquitto brokers (at least one per 15,000 cars)");
  flags.add(bench_mqtt, "--qos", keys::mqtt_qos, "QoS of the telemetry (default 1)");
  bench_mqtt->add_option("--seconds", bench_seconds, "Wall time the cars publish")
      ->check(CLI::Range(1, 3600));
  bench_mqtt->add_option("--json", bench_json, "Write the result as JSON");

  std::vector<fleettwin::app::Subcommand> subcommands;
  fleettwin::app::add_api_commands(app, subcommands);
  fleettwin::app::add_ml_commands(app, subcommands);
  fleettwin::app::add_store_commands(app, subcommands);
  fleettwin::app::add_bench_sink_commands(app, subcommands);
  fleettwin::app::add_bench_score_commands(app, subcommands);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    Config config = load_config(config_file, flags);
    // Logs go to stderr: stdout carries command output (twin JSON, docs) that users pipe.
    spdlog::set_default_logger(spdlog::stderr_color_mt("fleettwin"));
    spdlog::set_level(spdlog::level::from_str(config.get(keys::log_level)));
    spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");

    for (auto& sub : subcommands) {
      if (!*sub.cmd) continue;
      std::signal(SIGINT, on_signal);
      std::signal(SIGTERM, on_signal);
      return sub.run(config, g_stop_signals);
    }
    if (*up) {
      std::signal(SIGINT, on_signal);
      std::signal(SIGTERM, on_signal);
      if (up_mqtt_opt->count() > 0)
        config.set(keys::mqtt_brokers, up_mqtt.empty() ? "local" : up_mqtt, "--mqtt");
      spdlog::info("fleettwin up: {} cars, interval {}, {}, data dir {}, log {}", config.get(keys::sim_cars),
                   config.text(keys::sim_interval), config.get(keys::sim_fast) ? "fast" : "real time",
                   config.get(keys::data_dir),
                   config.get(keys::kafka_brokers).empty() ? "embedded" : config.get(keys::kafka_brokers));
      fleettwin::app::RunControl control{&g_stop_signals, 0, true};
      const auto s = fleettwin::app::run_pipeline(config, control);
      print_summary(s);
      if (!config.get(keys::summary_json).empty()) write_json(config.get(keys::summary_json), s.to_json());
      return 0;
    }
    if (*credentials_cmd) {
      const auto fleet = fleettwin::app::fleet_config(config);
      const auto acl = std::filesystem::path(FLEETTWIN_SOURCE_DIR) / "deploy" / "mosquitto" / "acl";
      fleettwin::sim::FleetConfig ids = fleet;
      ids.cars = cred_cars;
      fleettwin::app::write_credentials(
          cred_out, cred_cars, [&](std::size_t i) { return fleettwin::sim::car_id(ids, i); }, acl.string(),
          [](std::size_t done, std::size_t total) {
            std::fprintf(stderr, "\rcredentials: %zu / %zu cars", done, total);
            if (done == total) std::fprintf(stderr, "\n");
          });
      std::printf("%s\n", cred_out.c_str());
      std::fprintf(stderr,
                   "wrote %s/{secret,bridge-password,passwd,acl}: brokers use passwd + acl "
                   "(scripts/services/mosquitto start --auth %s), cars and bridge take --credentials %s\n",
                   cred_out.c_str(), cred_out.c_str(), cred_out.c_str());
      return 0;
    }
    if (*sim_cmd && !config.get(keys::mqtt_brokers).empty()) {
      std::signal(SIGINT, on_signal);
      std::signal(SIGTERM, on_signal);
      const auto brokers = fleettwin::app::parse_brokers(config.get(keys::mqtt_brokers), "--mqtt");
      auto options =
          fleettwin::app::mqtt_fleet_options(config, fleettwin::app::fleet_config(config), brokers);
      options.ground_truth_path = config.get(keys::ground_truth);
      const bool tty = isatty(STDERR_FILENO);
      const auto started = std::chrono::steady_clock::now();
      int64_t last_published = 0;
      auto report = [&](const fleettwin::app::MqttFleetStats& s) {
        if (worker_stats) {
          std::printf("%s\n", s.to_line().c_str());
          std::fflush(stdout);
          return;
        }
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        std::fprintf(
            stderr,
            "%s[%.0fs] cars %lld | connected %lld | %lld msg/s | published %lld | acks pending %lld | "
            "reconnects %lld | unrouted %lld | dropped %lld | commands %lld%s",
            tty ? "\r\033[K" : "", secs, (long long)s.cars, (long long)s.connected,
            (long long)(s.published - last_published), (long long)s.published, (long long)s.pending,
            (long long)s.reconnects, (long long)s.unrouted, (long long)s.dropped, (long long)s.commands,
            (tty && !s.done) ? "" : "\n");
        last_published = s.published;
      };
      return fleettwin::app::run_mqtt_fleet_processes(
          options, static_cast<std::size_t>(config.get(keys::mqtt_cars_per_process)),
          fleettwin::app::sim_worker_args(config, brokers), g_stop_signals, report);
    }
    if (*bridge_cmd) {
      std::signal(SIGINT, on_signal);
      std::signal(SIGTERM, on_signal);
      return fleettwin::app::run_bridge(config, g_stop_signals);
    }
    for (auto* cmd : {role_cmds["process"], role_cmds["sink"], role_cmds["sim"], role_cmds["score"], twin}) {
      if (!*cmd || (cmd == twin && (*twin_get || *twin_list))) continue;
      std::signal(SIGINT, on_signal);
      std::signal(SIGTERM, on_signal);
      const std::string role = cmd->get_name();
      if (config.get(keys::kafka_brokers).empty())
        throw ConfigError("`fleettwin " + role +
                          "` runs one role on Kafka: give --kafka BROKERS (or run everything "
                          "in one process with `fleettwin up`)");
      spdlog::info("fleettwin {}: Kafka {}, group {}", role, config.get(keys::kafka_brokers),
                   config.get(keys::group).empty() ? "fleettwin." + role : config.get(keys::group));
      fleettwin::app::RunControl control{&g_stop_signals, 0, true};
      const auto s = fleettwin::app::run_pipeline(config, control, fleettwin::app::Roles::only(role));
      std::fprintf(stderr, "%s stopped: %lld records in, %.0f msg/s, peak RSS %.0f MB\n", role.c_str(),
                   (long long)(role == "sim"       ? s.published
                               : role == "process" ? s.processed
                                                   : s.records_in),
                   s.msgs_per_s, s.peak_rss_mb);
      return 0;
    }
    if (*registry_cmd) {
      std::signal(SIGINT, on_signal);
      std::signal(SIGTERM, on_signal);
      fleettwin::codec::EmbeddedRegistryOptions ro;
      std::tie(ro.host, ro.port) =
          fleettwin::config::parse_host_port(config.get(keys::registry_listen), "--listen");
      std::filesystem::create_directories(std::filesystem::path(config.get(keys::data_dir)) / "registry");
      ro.journal_path =
          (std::filesystem::path(config.get(keys::data_dir)) / "registry" / "schemas.jsonl").string();
      fleettwin::codec::EmbeddedRegistry registry(ro);
      registry.start();
      std::printf("%s\n", registry.url().c_str());
      std::fflush(stdout);
      spdlog::info("schema registry serving on {} (schemas kept in {})", registry.url(), ro.journal_path);
      while (g_stop_signals.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      registry.stop();
      return 0;
    }
    if (*twin_get) {
      auto store = fleettwin::app::open_existing_store(config);
      auto t = store->get_twin(car);
      if (!t) {
        std::fprintf(stderr, "fleettwin: no twin for car '%s' in %s\n", car.c_str(),
                     config.get(keys::data_dir).c_str());
        return 1;
      }
      std::printf("%s\n", fleettwin::codec::twin_to_json(*t).c_str());
      return 0;
    }
    if (*twin_list) {
      auto store = fleettwin::app::open_existing_store(config);
      fleettwin::store::TwinQuery q;
      q.limit = limit;
      if (!status.empty()) q.status = fleettwin::core::health_status_from_string(status);
      for (const auto& t : store->list_twins(q)) std::printf("%s\n", twin_row(t).c_str());
      return 0;
    }
    if (*config_docs) {
      std::printf("%s", Config::docs_markdown().c_str());
      return 0;
    }
    if (*bench_mqtt) {
      std::signal(SIGINT, on_signal);
      const auto r = fleettwin::app::run_mqtt_bench(config, bench_seconds, g_stop_signals);
      std::printf(
          "bench mqtt: %lld cars on %lld brokers: %lld connections in %.1f s (%.0f/s), %.0f msg/s sustained, "
          "lost %lld of %lld, p99 publish-to-log %.1f ms (p50 %.1f), memory per connection: simulator %.2f "
          "KB, "
          "brokers %.2f KB; bridge alone %.0f msg/s, %.0f msg/s per core; peak RSS %.0f MB\n",
          (long long)r.cars, (long long)r.shards, (long long)r.connections, r.ramp_s, r.connections_per_s,
          r.msgs_per_s, (long long)r.lost, (long long)r.published, r.p99_latency_ms, r.p50_latency_ms,
          r.sim_kb_per_connection, r.broker_kb_per_connection, r.bridge_alone_msgs_per_s,
          r.bridge_msgs_per_core_s, r.peak_rss_mb);
      if (!bench_json.empty()) write_json(bench_json, r.to_json());
      return r.lost == 0 ? 0 : 1;
    }
    if (*bench_embedded || *bench_kafka) {
      if (config.get(keys::data_dir) == keys::data_dir.default_text()) {
        auto dir = std::filesystem::temp_directory_path() / ("fleettwin-bench-" + std::to_string(::getpid()));
        std::filesystem::remove_all(dir);
        config.set(keys::data_dir, dir.string(), "bench");
      }
      config.set(keys::sim_fast, "true", "bench");
      config.set(keys::registry_listen, "127.0.0.1:0", "bench");
      config.set(keys::http_listen, "", "bench");
      std::signal(SIGINT, on_signal);
      if (*bench_kafka && config.get(keys::kafka_brokers).empty())
        throw ConfigError("bench kafka needs --kafka BROKERS (start one with scripts/services/kafka start)");
      fleettwin::app::RunControl control{&g_stop_signals, bench_seconds * 1000, true};
      const auto s = fleettwin::app::run_pipeline(config, control);
      print_summary(s);
      const char* what = *bench_kafka ? "kafka" : "embedded";
      std::printf(
          "bench %s: %.0f msg/s sustained end to end (%lld cars, %.1f s), p99 latency %.1f ms, peak RSS %.0f "
          "MB\n",
          what, s.msgs_per_s, (long long)s.cars, s.elapsed_s, s.p99_latency_ms, s.peak_rss_mb);
      std::string json = s.to_json();
      if (*bench_kafka) {
        // The process stage alone, on the raw records the first phase left in the log, in a fresh group.
        const auto p = fleettwin::app::bench_process_alone(config, bench_seconds * 1000);
        std::printf(
            "bench kafka: process stage alone %.0f msg/s, %.0f msg/s per core (%.2f CPU s for %lld "
            "records)\n",
            p.msgs_per_s, p.msgs_per_cpu_s, p.cpu_s, (long long)p.records);
        json.pop_back();
        json += ",\"process_alone_msgs_per_s\":" + std::to_string(p.msgs_per_s) +
                ",\"process_msgs_per_core_s\":" + std::to_string(p.msgs_per_cpu_s) + "}";
      }
      if (!bench_json.empty()) write_json(bench_json, json);
      std::filesystem::remove_all(config.get(keys::data_dir));
      return 0;
    }
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "fleettwin: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fleettwin: %s\n", e.what());
    return 1;
  }
  return 0;
}
