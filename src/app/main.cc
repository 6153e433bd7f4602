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

#include "app/config.h"
#include "app/embedded.h"
#include "codec/json.h"
#include "store/sqlite/sqlite_store.h"

namespace {

using fleettwin::app::Config;
using fleettwin::app::ConfigError;

std::atomic<int> g_stop_signals{0};

void on_signal(int) { g_stop_signals.fetch_add(1); }

/// A flag that maps onto a configuration key; applied only when given, so the file and environment are not
/// overridden by defaults.
struct FlagBinding {
  std::string flag;
  std::string key;
  std::string value;
  CLI::Option* option = nullptr;
};

class Flags {
 public:
  void add(CLI::App* app, const std::string& flag, const std::string& key, const std::string& help) {
    auto& b = _bindings.emplace_back(FlagBinding{flag, key, "", nullptr});
    b.option = app->add_option(flag, b.value, help);
  }
  void add_switch(CLI::App* app, const std::string& flag, const std::string& key, const std::string& help) {
    auto& b = _switches.emplace_back(FlagBinding{flag, key, "", nullptr});
    b.option = app->add_flag(flag, help);
  }
  void apply(Config& config) {
    for (auto& b : _bindings)
      if (b.option->count() > 0) config.set(b.key, b.value, b.flag);
    for (auto& b : _switches)
      if (b.option->count() > 0) config.set(b.key, "true", b.flag);
  }

 private:
  std::deque<FlagBinding> _bindings, _switches;  // deque: CLI11 keeps pointers to `value`
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

std::string db_path(const Config& c) {
  const auto path = std::filesystem::path(c.get_string("data_dir")) / "fleettwin.db";
  if (!std::filesystem::exists(path))
    throw ConfigError("no fleettwin store in " + c.get_string("data_dir") +
                      " (run `fleettwin up --data-dir DIR` first)");
  return path.string();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fleettwin: a digital twin of every car in a fleet, with failure prediction"};
  app.require_subcommand(1);
  std::string config_file;
  app.add_option("--config", config_file, "YAML configuration file")->check(CLI::ExistingFile);
  Flags flags;
  flags.add(&app, "--log-level", "log_level", "trace|debug|info|warn|error");

  // up
  auto* up =
      app.add_subcommand("up", "Run the whole pipeline in this process (simulator, process, twin, store)");
  flags.add(up, "--cars", "sim.cars", "Number of simulated cars");
  flags.add(up, "--interval", "sim.interval", "Each car sends one message per interval (e.g. 10s)");
  flags.add(up, "--duration", "sim.duration", "Simulated time to run, e.g. 10m (default: until stopped)");
  flags.add_switch(up, "--fast", "sim.fast", "Simulated clock, as fast as the pipeline accepts");
  flags.add(up, "--seed", "sim.seed", "Simulator seed");
  flags.add(up, "--failure-rate", "sim.failure_rate", "Expected failures per car per simulated hour");
  flags.add(up, "--failure-ramp", "sim.failure_ramp", "Time a failure takes to reach its full signature");
  flags.add(up, "--replay", "sim.replay", "Replay a cardata-v1 CSV instead of simulating");
  flags.add(up, "--inject-invalid", "sim.inject_invalid", "Also publish N malformed payloads (DLQ demo)");
  flags.add(up, "--data-dir", "data_dir", "Store and state directory");
  flags.add(up, "--ground-truth", "ground_truth",
            "Ground-truth file (default <data-dir>/ground_truth.jsonl)");
  flags.add(up, "--summary-json", "summary_json", "Write the run summary as JSON");

  // twin
  auto* twin = app.add_subcommand("twin", "Read twins from the store");
  twin->require_subcommand(1);
  auto* twin_get = twin->add_subcommand("get", "Print one car's twin as JSON");
  std::string car;
  twin_get->add_option("car", car, "Car id")->required();
  flags.add(twin_get, "--data-dir", "data_dir", "Store directory");
  auto* twin_list = twin->add_subcommand("list", "List twins");
  std::string status;
  int64_t limit = 20;
  twin_list->add_option("--status", status, "ok|warning|anomaly|unknown")
      ->check(CLI::IsMember({"ok", "warning", "anomaly", "unknown"}));
  twin_list->add_option("--limit", limit, "Rows at most")->check(CLI::Range(1, 1000000));
  flags.add(twin_list, "--data-dir", "data_dir", "Store directory");

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
  flags.add(bench_embedded, "--cars", "sim.cars", "Number of simulated cars (default 10000)");
  bench_embedded->add_option("--seconds", bench_seconds, "Wall time to run")->check(CLI::Range(1, 3600));
  bench_embedded->add_option("--json", bench_json, "Write the result as JSON (the --summary-json keys)");
  flags.add(bench_embedded, "--data-dir", "data_dir", "Scratch directory (default: a fresh temp dir)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    Config config = load_config(config_file, flags);
    // Logs go to stderr: stdout carries command output (twin JSON, docs) that users pipe.
    spdlog::set_default_logger(spdlog::stderr_color_mt("fleettwin"));
    spdlog::set_level(spdlog::level::from_str(config.get_string("log_level")));
    spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");

    if (*up) {
      std::signal(SIGINT, on_signal);
      std::signal(SIGTERM, on_signal);
      spdlog::info("fleettwin up: {} cars, interval {}, {}, data dir {}", config.get_int("sim.cars"),
                   config.get_string("sim.interval"), config.get_bool("sim.fast") ? "fast" : "real time",
                   config.get_string("data_dir"));
      fleettwin::app::RunControl control{&g_stop_signals, 0, true};
      const auto s = fleettwin::app::run_embedded(config, control);
      print_summary(s);
      if (!config.get_string("summary_json").empty())
        write_json(config.get_string("summary_json"), s.to_json());
      return 0;
    }
    if (*twin_get) {
      fleettwin::store::SqliteStore store(db_path(config));
      auto t = store.get_twin(car);
      if (!t) {
        std::fprintf(stderr, "fleettwin: no twin for car '%s' in %s\n", car.c_str(),
                     config.get_string("data_dir").c_str());
        return 1;
      }
      std::printf("%s\n", fleettwin::codec::twin_to_json(*t).c_str());
      return 0;
    }
    if (*twin_list) {
      fleettwin::store::SqliteStore store(db_path(config));
      fleettwin::store::TwinQuery q;
      q.limit = limit;
      if (!status.empty()) q.status = fleettwin::core::health_status_from_string(status);
      for (const auto& t : store.list_twins(q)) std::printf("%s\n", twin_row(t).c_str());
      return 0;
    }
    if (*config_docs) {
      std::printf("%s", Config::docs_markdown().c_str());
      return 0;
    }
    if (*bench_embedded) {
      if (config.get_string("data_dir") == Config().get_string("data_dir")) {
        auto dir = std::filesystem::temp_directory_path() / ("fleettwin-bench-" + std::to_string(::getpid()));
        std::filesystem::remove_all(dir);
        config.set("data_dir", dir.string(), "bench");
      }
      config.set("sim.fast", "true", "bench");
      std::signal(SIGINT, on_signal);
      fleettwin::app::RunControl control{&g_stop_signals, bench_seconds * 1000, true};
      const auto s = fleettwin::app::run_embedded(config, control);
      print_summary(s);
      std::printf(
          "bench embedded: %.0f msg/s sustained end to end (%lld cars, %.1f s), p99 latency %.1f ms, peak "
          "RSS %.0f MB\n",
          s.msgs_per_s, (long long)s.cars, s.elapsed_s, s.p99_latency_ms, s.peak_rss_mb);
      if (!bench_json.empty()) write_json(bench_json, s.to_json());
      std::filesystem::remove_all(config.get_string("data_dir"));
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
