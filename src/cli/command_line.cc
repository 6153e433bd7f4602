#include "cli/command_line.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>

namespace fleettwin::cli {

namespace {

std::atomic<int> g_stop_signals{0};

void on_signal(int) { g_stop_signals.fetch_add(1); }

int depth(const CLI::App* cmd) {
  int d = 0;
  for (const CLI::App* p = cmd->get_parent(); p != nullptr; p = p->get_parent()) ++d;
  return d;
}

}  // namespace

void Flags::add(CLI::App* cmd, const std::string& flag, const config::KeySpec& key, const std::string& help) {
  auto& b = _bindings.emplace_back(Binding{flag, &key, "", nullptr, false});
  b.option = cmd->add_option(flag, b.value, help);
}

void Flags::add_switch(CLI::App* cmd, const std::string& flag, const config::BoolKey& key,
                       const std::string& help) {
  auto& b = _bindings.emplace_back(Binding{flag, &key, "", nullptr, true});
  b.option = cmd->add_flag(flag, help);
}

void Flags::add_kafka_set(CLI::App* cmd) {
  auto& values = _kafka_sets.emplace_back();
  cmd->add_option("--kafka-set", values,
                  "librdkafka property KEY=VALUE (repeatable), e.g. security.protocol=SSL");
}

void Flags::apply(Config& config) const {
  for (const auto& b : _bindings)
    if (b.option->count() > 0) config.set(*b.key, b.is_switch ? "true" : b.value, b.flag);
  for (const auto& values : _kafka_sets)
    for (const auto& kv : values) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0)
        throw config::ConfigError("--kafka-set '" + kv + "': expected KEY=VALUE");
      config.set_named("kafka." + kv.substr(0, eq), kv.substr(eq + 1), "--kafka-set");
    }
}

void add_sim_flags(Flags& flags, CLI::App* cmd) {
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
  flags.add(cmd, "--sim-catalog", keys::sim_catalog,
            "Catalog (YAML) whose signal names the simulated cars send (default: the cardata-v1 names)");
  flags.add(cmd, "--upgraded-share", keys::sim_upgraded_share,
            "Share of simulated cars on newer firmware, sending the --sim-catalog signals added after v1");
  flags.add(cmd, "--inject-invalid", keys::sim_inject_invalid,
            "Also publish N malformed payloads (DLQ demo)");
  flags.add(cmd, "--ground-truth", keys::ground_truth,
            "Ground-truth file (default <data-dir>/ground_truth.jsonl)");
}

void add_distributed_flags(Flags& flags, CLI::App* cmd) {
  flags.add(cmd, "--kafka", keys::kafka_brokers,
            "Kafka bootstrap servers HOST:PORT[,...] (default: embedded log)");
  flags.add_kafka_set(cmd);
  flags.add(cmd, "--schema-registry", keys::schema_registry, "Schema registry URL");
  flags.add(cmd, "--partitions", keys::log_partitions, "Partitions of topics fleettwin creates");
}

void add_mqtt_flags(Flags& flags, CLI::App* cmd) {
  flags.add(cmd, "--qos", keys::mqtt_qos, "QoS of the cars' telemetry: 0 or 1 (default 1)");
  flags.add(cmd, "--mqtt-version", keys::mqtt_version, "MQTT protocol version: 5 (default) or 3.1.1");
  flags.add(cmd, "--credentials", keys::mqtt_credentials,
            "Credentials directory from `fleettwin sim credentials`");
}

void add_uplink_flags(Flags& flags, CLI::App* cmd) {
  flags.add(cmd, "--uplink", keys::uplink_brokers,
            "Central Kafka HOST:PORT[,...] this edge site replicates to (store-and-forward) and takes "
            "commands from");
  flags.add(cmd, "--site", keys::site, "This edge site's name on central ([a-z0-9-]{1,64})");
  flags.add(cmd, "--uplink-registry", keys::uplink_registry, "Central schema registry URL");
  flags.add(cmd, "--id-prefix", keys::sim_id_prefix, "Prefix of simulated car ids (default car-)");
  flags.add(cmd, "--uplink-disk-budget", keys::uplink_disk_budget,
            "Bytes the uplink spool may hold (default: 24 h of the site's traffic)");
}

void add_store_flags(Flags& flags, CLI::App* cmd) {
  flags.add(cmd, "--mongo", keys::store_mongo_uri,
            "MongoDB/FerretDB URI of the store (default: SQLite in --data-dir)");
  flags.add(cmd, "--postgres", keys::store_postgres_uri,
            "PostgreSQL URI of the store, postgresql://... (default: SQLite in --data-dir)");
  flags.add(cmd, "--data-dir", keys::data_dir, "Directory of the SQLite store");
}

CommandLine::CommandLine()
    : _app("fleettwin: a digital twin of every car in a fleet, with failure prediction") {
  _app.require_subcommand(1);
  _app.fallthrough();  // global options (--config, --log-level) also after the subcommand
  _app.add_option("--config", _config_file, "YAML configuration file")->check(CLI::ExistingFile);
  _flags.add(&_app, "--log-level", keys::log_level, "trace|debug|info|warn|error");
  _flags.add(&_app, "--catalog", keys::catalog_file, "Signal catalog (YAML); default: built-in cardata-v1");
}

void CommandLine::add(CLI::App* cmd, RunCommand run, bool drains) {
  _commands.push_back({cmd, std::move(run), drains});
}

CLI::App* CommandLine::find(const std::vector<std::string>& path) {
  CLI::App* cmd = &_app;
  for (const auto& name : path) {
    CLI::App* next = nullptr;
    for (CLI::App* sub : cmd->get_subcommands([](CLI::App*) { return true; }))
      if (sub->get_name() == name) next = sub;
    if (next == nullptr) return nullptr;
    cmd = next;
  }
  return cmd;
}

int CommandLine::run(int argc, char** argv) {
  try {
    _app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return _app.exit(e);
  }
  // The most specific command given: `twin get` rather than the `twin` role it belongs to.
  const Registered* chosen = nullptr;
  for (const auto& c : _commands)
    if (*c.cmd && (chosen == nullptr || depth(c.cmd) > depth(chosen->cmd))) chosen = &c;
  try {
    Config config;
    if (!_config_file.empty()) config.load_yaml(_config_file);
    config.load_env();
    _flags.apply(config);
    // Logs go to stderr: stdout carries command output (twin JSON, docs) that users pipe.
    spdlog::set_default_logger(spdlog::stderr_color_mt("fleettwin"));
    spdlog::set_level(spdlog::level::from_str(config.get(keys::log_level)));
    spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
    if (chosen == nullptr) return 0;
    if (chosen->drains) {
      std::signal(SIGINT, on_signal);
      std::signal(SIGTERM, on_signal);
    }
    return chosen->run(config, g_stop_signals);
  } catch (const config::ConfigError& e) {
    std::fprintf(stderr, "fleettwin: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fleettwin: %s\n", e.what());
    return 1;
  }
}

}  // namespace fleettwin::cli
