#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace fleettwin::app {

/// What `up` (and `bench embedded`) report at the end of a run; `--summary-json` writes these keys.
struct RunSummary {
  int64_t cars = 0;
  int64_t published = 0;
  int64_t injected_invalid = 0;
  int64_t processed = 0;   ///< records the process stage read
  int64_t records_in = 0;  ///< records every stage of this process read
  int64_t valid = 0;
  int64_t dlq = 0;
  int64_t stored_telemetry = 0;  ///< telemetry rows in the store (all runs on this data dir)
  int64_t stored_this_run = 0;
  int64_t twins = 0;
  int64_t twin_writes = 0;   ///< twin upserts the sink of this process applied this run
  int64_t twins_behind = 0;  ///< twins whose reported.seq is not the car's last published seq
  int64_t lost = 0;          ///< published (car, seq) missing from the store
  int64_t duplicates = 0;    ///< (car, seq) stored more than once
  int64_t failures = 0;      ///< failures that began in simulated cars (ground truth lines)
  double elapsed_s = 0;
  double msgs_per_s = 0;  ///< stored this run / elapsed
  double p50_latency_ms = 0;
  double p99_latency_ms = 0;
  double peak_rss_mb = 0;
  /// Telemetry stored in each whole second while the run was fed (the simulator ran), before draining.
  int64_t fed_seconds = 0;
  double fed_msgs_per_s = 0;   ///< mean over those seconds
  int64_t min_msgs_per_s = 0;  ///< the slowest of them
  int64_t zero_seconds = 0;    ///< how many stored nothing
  int64_t scored = 0;          ///< events the score stage scored
  int64_t unscored = 0;        ///< events it never scored (fleettwin_score_unscored_total)
  int64_t score_skipped = 0;   ///< of those, skipped while it was a partition's capacity behind
  bool simulated = true;       ///< the simulator fed this run (false: real cars, `up --no-sim`)
  bool clean = true;           ///< every stage ended without error

  std::string to_json() const;
};

/// Which parts of the platform this process runs: `up` all of them, `fleettwin process` (etc.) one.
struct Roles {
  bool sim = true;                  ///< the simulator feeds the log from this process
  std::vector<std::string> stages;  ///< names of stages::registry() entries run here
  bool everything = true;  ///< the whole pipeline here (`up`): embedded registry, API, MQTT front door
  /// The simulator and every stage of the registry.
  static Roles all();
  /// One role: "sim" or the name of a registered stage; ConfigError for anything else.
  static Roles only(const std::string& role);
  bool runs(std::string_view stage) const;
  /// Whether this role's copies on Kafka must each get a share of every topic they read, the same partition
  /// numbers where the counts are equal (the range assignor): the twin (a car's telemetry, scores and
  /// answers), the sink (a share of every topic), the aggregate (a car's events and scores; its share of the
  /// partials to merge; central's and every edge site's topics by partition number). Cooperative-sticky
  /// balances the count of partitions over all topics: it gave one sink copy all of fleet.telemetry and
  /// fleet.twins (bench fleet, 100,000 cars), and a restarted aggregate copy only partials, none of the
  /// telemetry (aggregate_kill_integration). Never for `up` (one member).
  bool co_partitioned() const;
};

/// How a run is watched and stopped by its caller (the CLI or the benchmark).
struct RunControl {
  std::atomic<int>* stop_signals = nullptr;  ///< 1: drain and stop; 2 or more: stop after the current batch
  int64_t max_wall_ms = 0;                   ///< stop (with drain) after this much wall time; 0 = no limit
  bool progress = true;                      ///< print the live progress line
  bool stop_when_caught_up = false;          ///< without the simulator: stop once every input is consumed
};

/// Runs `roles` of the pipeline in this process: simulator -> fleet.telemetry.raw -> process ->
/// fleet.telemetry -> twin -> fleet.twins -> sink -> store. The log is the embedded one, or Kafka when
/// `kafka.brokers` is set; Avro schemas are registered with `schema_registry`, or with an embedded registry
/// started on `registry.listen` when every role runs here. With the simulator in-process the run resumes on
/// an existing data dir (twins reloaded, every car continued after the last stored seq) and ends when the
/// simulated duration is over; otherwise it runs until stopped. Stops drain every stage in pipeline order.
/// Throws ConfigError / std::runtime_error with a message for the user.
RunSummary run_pipeline(const config::Config& config, const RunControl& control,
                        const Roles& roles = Roles::all());

/// The process stage alone on the raw records already in the log, in a fresh group, until it caught up or
/// `max_wall_ms` passed: throughput and CPU cost (`bench kafka`).
struct ProcessBench {
  int64_t records = 0;
  double msgs_per_s = 0;
  double cpu_s = 0;
  double msgs_per_cpu_s = 0;
};
ProcessBench bench_process_alone(const config::Config& config, int64_t max_wall_ms);

}  // namespace fleettwin::app
