// `fleettwin bench embedded|kafka|mqtt`: the pipeline's own scenario benchmarks (the `bench` group; `bench
// sink` and `bench score` add themselves to it from their files).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "app/pipeline.h"
#include "cli/command_line.h"
#include "cli/commands.h"
#include "cli/run_output.h"
#include "scenarios/fleet_bench.h"
#include "scenarios/mqtt_bench.h"
#include "scenarios/soak_bench.h"

namespace fleettwin::cli {

namespace {

struct BenchFlags {
  int64_t seconds = 20;
  std::string json;
};

void add_bench_run_flags(CLI::App* cmd, BenchFlags& f, const std::string& seconds_help,
                         const std::string& json_help) {
  cmd->add_option("--seconds", f.seconds, seconds_help)->check(CLI::Range(1, 3600));
  cmd->add_option("--json", f.json, json_help);
}

/// `bench embedded` and `bench kafka`: `up --fast` for a wall time, then (kafka) the process stage alone.
int run_pipeline_bench(bool kafka, const BenchFlags& f, Config& config, std::atomic<int>& stop_signals) {
  if (config.get(keys::data_dir) == keys::data_dir.default_text()) {
    auto dir = std::filesystem::temp_directory_path() / ("fleettwin-bench-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    config.set(keys::data_dir, dir.string(), "bench");
  }
  config.set(keys::sim_fast, "true", "bench");
  config.set(keys::registry_listen, "127.0.0.1:0", "bench");
  config.set(keys::http_listen, "", "bench");
  if (kafka && config.get(keys::kafka_brokers).empty())
    throw config::ConfigError(
        "bench kafka needs --kafka BROKERS (start one with scripts/services/kafka start)");
  const app::RunControl control{&stop_signals, f.seconds * 1000, true};
  const auto s = app::run_pipeline(config, control);
  print_summary(s);
  std::printf(
      "bench %s: %.0f msg/s sustained end to end (%lld cars, %.1f s), p99 latency %.1f ms, peak RSS %.0f "
      "MB; while fed: %.0f msg/s, slowest second %lld msg/s, %lld s at 0 msg/s; unscored %lld of %lld\n",
      kafka ? "kafka" : "embedded", s.msgs_per_s, (long long)s.cars, s.elapsed_s, s.p99_latency_ms,
      s.peak_rss_mb, s.fed_msgs_per_s, (long long)s.min_msgs_per_s, (long long)s.zero_seconds,
      (long long)s.unscored, (long long)(s.scored + s.unscored));
  std::string json = s.to_json();
  if (kafka) {
    // The process stage alone, on the raw records the first phase left in the log, in a fresh group.
    const auto p = app::bench_process_alone(config, f.seconds * 1000);
    std::printf(
        "bench kafka: process stage alone %.0f msg/s, %.0f msg/s per core (%.2f CPU s for %lld records)\n",
        p.msgs_per_s, p.msgs_per_cpu_s, p.cpu_s, (long long)p.records);
    json.pop_back();
    json += ",\"process_alone_msgs_per_s\":" + std::to_string(p.msgs_per_s) +
            ",\"process_msgs_per_core_s\":" + std::to_string(p.msgs_per_cpu_s) + "}";
  }
  if (!f.json.empty()) write_json(f.json, json);
  std::filesystem::remove_all(config.get(keys::data_dir));
  return 0;
}

int run_mqtt_bench(const BenchFlags& f, Config& config, std::atomic<int>& stop_signals) {
  const auto r = app::run_mqtt_bench(config, f.seconds, stop_signals);
  std::printf(
      "bench mqtt: %lld cars on %lld brokers: %lld connections in %.1f s (%.0f/s), %.0f msg/s sustained, "
      "lost %lld of %lld, p99 publish-to-log %.1f ms (p50 %.1f), memory per connection: simulator %.2f KB, "
      "brokers %.2f KB; bridge alone %.0f msg/s, %.0f msg/s per core; peak RSS %.0f MB\n",
      (long long)r.cars, (long long)r.shards, (long long)r.connections, r.ramp_s, r.connections_per_s,
      r.msgs_per_s, (long long)r.lost, (long long)r.published, r.p99_latency_ms, r.p50_latency_ms,
      r.sim_kb_per_connection, r.broker_kb_per_connection, r.bridge_alone_msgs_per_s,
      r.bridge_msgs_per_core_s, r.peak_rss_mb);
  if (!f.json.empty()) write_json(f.json, r.to_json());
  return r.lost == 0 ? 0 : 1;
}

/// Makes `cmd` a run_pipeline_bench (on Kafka when `kafka`) with the --cars flag and the run flags.
void add_pipeline_bench(CommandLine& cl, CLI::App* cmd, bool kafka, const std::string& seconds_help,
                        const std::string& json_help) {
  auto f = std::make_shared<BenchFlags>();
  cl.flags().add(cmd, "--cars", keys::sim_cars, "Number of simulated cars (default 10000)");
  add_bench_run_flags(cmd, *f, seconds_help, json_help);
  cl.add(cmd, [f, kafka](Config& config, std::atomic<int>& stop) {
    return run_pipeline_bench(kafka, *f, config, stop);
  });
}

struct FleetFlags {
  app::FleetBenchOptions options;
  std::string json;
};

int run_fleet_bench(const FleetFlags& f, Config& config, std::atomic<int>& stop_signals) {
  if (f.options.use_mongo() && !f.options.postgres.empty())
    throw config::ConfigError(
        "bench fleet: --postgres and --store mongo / --mongo name two stores; give one");
  const auto r = app::run_fleet_bench(config, f.options, stop_signals);
  std::printf(
      "bench fleet: %lld cars, %.0f msg/s stored at steady state, p50 %.0f ms / p99 %.0f ms publish to "
      "stored; "
      "%lld acknowledged to the cars, %lld stored, lost %lld, duplicates %lld, twins behind %lld; "
      "schedule_service commands answered %lld of %lld\n",
      (long long)r.cars, r.msgs_per_s, r.p50_latency_ms, r.p99_latency_ms, (long long)r.published,
      (long long)r.stored, (long long)r.lost, (long long)r.duplicates, (long long)r.twins_behind,
      (long long)r.commands_answered, (long long)r.commands_sent);
  for (const auto& role : r.roles)
    std::printf("  %-10s cpu %7.1f s  peak RSS %6.0f MB  started %d time(s), crashed %d\n", role.name.c_str(),
                role.cpu_s, role.peak_rss_mb, role.starts, role.crashes);
  for (const auto& fault : r.faults)
    std::printf("  fault %-28s recovered in %5.1f s, worst latency %.0f ms\n", fault.name.c_str(),
                fault.recovery_s, fault.max_latency_ms);
  if (!f.json.empty()) write_json(f.json, r.to_json());
  const bool recovered =
      std::all_of(r.faults.begin(), r.faults.end(), [](const auto& x) { return x.recovery_s >= 0; });
  return r.exact() && r.commands_answered == r.commands_sent && recovered && r.crashes() == 0 ? 0 : 1;
}

}  // namespace

void add_bench_commands(CommandLine& cl) {
  auto& flags = cl.flags();
  auto* bench = cl.app().add_subcommand("bench", "Scenario benchmarks");
  bench->require_subcommand(1);

  auto* embedded =
      bench->add_subcommand("embedded", "Sustained end-to-end msg/s of `up --fast` (sim -> store)");
  add_pipeline_bench(cl, embedded, false, "Wall time to run",
                     "Write the result as JSON (the --summary-json keys)");
  flags.add(embedded, "--data-dir", keys::data_dir, "Scratch directory (default: a fresh temp dir)");

  auto* soak = bench->add_subcommand(
      "soak",
      "A long `up --fast` run with history retention shortened: stored rows, store size and RSS sampled, "
      "flat once retention removes as much as arrives");
  auto sf = std::make_shared<app::bench::SoakFlags>();
  flags.add(soak, "--cars", keys::sim_cars, "Simulated cars (default 10000)");
  flags.add(soak, "--interval", keys::sim_interval, "Each car sends one message per interval (default 10s)");
  flags.add(soak, "--duration", keys::sim_duration, "Simulated time to run, e.g. 1h (required)");
  flags.add(soak, "--retention", keys::store_history_retention, "History kept, by event time (e.g. 10m)");
  flags.add(soak, "--retention-interval", keys::store_retention_interval,
            "How often the sink enforces it, wall time (default 60s)");
  flags.add(soak, "--data-dir", keys::data_dir, "Scratch directory (default: a fresh temp dir, removed)");
  soak->add_option("--sample", sf->sample_s, "Wall seconds between samples (default 10)")
      ->check(CLI::Range(1, 3600));
  soak->add_option("--json", sf->json, "Write the samples and the verdict as JSON");
  soak->add_flag("--keep", sf->keep, "Keep the data dir");
  cl.add(soak, [sf](Config& config, std::atomic<int>& stop) {
    return app::bench::run_soak_bench(*sf, config, stop);
  });

  auto* kafka = bench->add_subcommand(
      "kafka",
      "End-to-end msg/s on Kafka (sim -> raw -> process -> telemetry -> sink), and process alone per core");
  flags.add(kafka, "--kafka", keys::kafka_brokers,
            "Kafka bootstrap servers (e.g. from scripts/services/kafka start)");
  add_pipeline_bench(cl, kafka, true, "Wall time of each phase", "Write the result as JSON");

  auto* mqtt = bench->add_subcommand(
      "mqtt",
      "Cars on their own MQTT connections through local mosquitto shards and the bridge into the log");
  auto mf = std::make_shared<BenchFlags>();
  flags.add(mqtt, "--cars", keys::sim_cars, "Number of simulated cars, one connection each (default 10000)");
  flags.add(mqtt, "--interval", keys::sim_interval, "Each car sends one message per interval (default 10s)");
  flags.add(mqtt, "--shards", keys::mqtt_shards, "mosquitto brokers (at least one per 15,000 cars)");
  flags.add(mqtt, "--qos", keys::mqtt_qos, "QoS of the telemetry (default 1)");
  add_bench_run_flags(mqtt, *mf, "Wall time the cars publish", "Write the result as JSON");
  cl.add(mqtt, [mf](Config& config, std::atomic<int>& stop) { return run_mqtt_bench(*mf, config, stop); });

  auto* fleet = bench->add_subcommand(
      "fleet",
      "The reference's topology, each stage its own process: cars over MQTT, mosquitto shards, bridges, "
      "Kafka, process/twin/sink/score roles, PostgreSQL (or FerretDB: --store mongo) and the API; exactness "
      "per (car, seq) at the end");
  auto ff = std::make_shared<FleetFlags>();
  flags.add(fleet, "--cars", keys::sim_cars, "Simulated cars, one MQTT connection each (default 10000)");
  flags.add(fleet, "--interval", keys::sim_interval, "Each car sends one message per interval (default 10s)");
  flags.add(fleet, "--shards", keys::mqtt_shards, "mosquitto brokers (at least one per 15,000 cars)");
  fleet->add_option("--seconds", ff->options.seconds, "Steady-state time the cars publish (without --faults)")
      ->check(CLI::Range(10, 86400));
  fleet->add_flag(
      "--faults", ff->options.faults,
      "Kill each role in turn, restart Kafka, the store's server and a mosquitto shard, stop the sinks");
  fleet->add_option("--fault-spacing", ff->options.fault_spacing_s, "Seconds between faults (default 45)")
      ->check(CLI::Range(10, 3600));
  fleet->add_option("--sink-pause", ff->options.sink_pause_s, "Seconds the sinks stay stopped (default 120)")
      ->check(CLI::Range(1, 3600));
  fleet
      ->add_option("--copies", ff->options.copies,
                   "Bridges, process, twin and sink processes each (default 2)")
      ->check(CLI::Range(1, 8));
  fleet->add_option("--kafka", ff->options.kafka, "Kafka to use (default: start scripts/services/kafka)");
  fleet->add_option("--postgres", ff->options.postgres,
                    "PostgreSQL URI (default: start scripts/services/postgres)");
  fleet
      ->add_option("--store", ff->options.store,
                   "Store: postgres, or mongo (the MongoDB store on FerretDB from scripts/services/ferretdb)")
      ->check(CLI::IsMember({"postgres", "mongo"}));
  fleet->add_option("--mongo", ff->options.mongo,
                    "MongoDB / FerretDB URI of the store (implies --store mongo)");
  fleet->add_option("--dir", ff->options.dir, "Keep logs and role data here (default: a temp dir, removed)");
  fleet->add_option("--json", ff->json, "Write the result as JSON");
  cl.add(fleet, [ff](Config& config, std::atomic<int>& stop) { return run_fleet_bench(*ff, config, stop); });
}

}  // namespace fleettwin::cli
