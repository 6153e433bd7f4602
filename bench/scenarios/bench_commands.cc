// `fleettwin bench embedded|kafka|mqtt`: the pipeline's own scenario benchmarks (the `bench` group; `bench
// sink` and `bench score` add themselves to it from their files).
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "app/pipeline.h"
#include "cli/command_line.h"
#include "cli/commands.h"
#include "cli/run_output.h"
#include "scenarios/mqtt_bench.h"

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

}  // namespace

void add_bench_commands(CommandLine& cl) {
  auto& flags = cl.flags();
  auto* bench = cl.app().add_subcommand("bench", "Scenario benchmarks");
  bench->require_subcommand(1);

  auto* embedded =
      bench->add_subcommand("embedded", "Sustained end-to-end msg/s of `up --fast` (sim -> store)");
  auto ef = std::make_shared<BenchFlags>();
  flags.add(embedded, "--cars", keys::sim_cars, "Number of simulated cars (default 10000)");
  add_bench_run_flags(embedded, *ef, "Wall time to run",
                      "Write the result as JSON (the --summary-json keys)");
  flags.add(embedded, "--data-dir", keys::data_dir, "Scratch directory (default: a fresh temp dir)");
  cl.add(embedded, [ef](Config& config, std::atomic<int>& stop) {
    return run_pipeline_bench(false, *ef, config, stop);
  });

  auto* kafka = bench->add_subcommand(
      "kafka",
      "End-to-end msg/s on Kafka (sim -> raw -> process -> telemetry -> sink), and process alone per core");
  auto kf = std::make_shared<BenchFlags>();
  flags.add(kafka, "--kafka", keys::kafka_brokers,
            "Kafka bootstrap servers (e.g. from scripts/services/kafka start)");
  flags.add(kafka, "--cars", keys::sim_cars, "Number of simulated cars (default 10000)");
  add_bench_run_flags(kafka, *kf, "Wall time of each phase", "Write the result as JSON");
  cl.add(kafka, [kf](Config& config, std::atomic<int>& stop) {
    return run_pipeline_bench(true, *kf, config, stop);
  });

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
}

}  // namespace fleettwin::cli
