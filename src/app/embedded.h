#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "app/config.h"

namespace fleettwin::app {

/// What `up` (and `bench embedded`) report at the end of a run; `--summary-json` writes these keys.
struct RunSummary {
  int64_t cars = 0;
  int64_t published = 0;
  int64_t injected_invalid = 0;
  int64_t processed = 0;  ///< records the process stage read
  int64_t valid = 0;
  int64_t dlq = 0;
  int64_t stored_telemetry = 0;  ///< telemetry rows in the store (all runs on this data dir)
  int64_t stored_this_run = 0;
  int64_t twins = 0;
  int64_t twins_behind = 0;  ///< twins whose reported.seq is not the car's last published seq
  int64_t lost = 0;          ///< published (car, seq) missing from the store
  int64_t duplicates = 0;    ///< (car, seq) stored more than once
  int64_t failures = 0;      ///< failures that began in simulated cars (ground truth lines)
  double elapsed_s = 0;
  double msgs_per_s = 0;  ///< stored this run / elapsed
  double p50_latency_ms = 0;
  double p99_latency_ms = 0;
  double peak_rss_mb = 0;
  bool clean = true;  ///< every stage ended without error

  std::string to_json() const;
};

/// How a run is watched and stopped by its caller (the CLI or the benchmark).
struct RunControl {
  std::atomic<int>* stop_signals = nullptr;  ///< 1: drain and stop; 2 or more: stop after the current batch
  int64_t max_wall_ms = 0;                   ///< stop (with drain) after this much wall time; 0 = no limit
  bool progress = true;                      ///< print the live progress line
};

/// Runs the whole pipeline in this process on the embedded log and SQLite store (`fleettwin up`):
/// simulator -> fleet.telemetry.raw -> process -> fleet.telemetry -> twin -> fleet.twins -> sink -> store.
/// Resumes on an existing data dir: twins are reloaded and the simulator continues every car after the last
/// seq the store holds. Returns when the simulated duration is over or a stop was requested, after draining
/// every stage. Throws ConfigError / std::runtime_error with a message for the user.
RunSummary run_embedded(const Config& config, const RunControl& control);

/// Peak resident set size of this process in MB.
double peak_rss_mb();

}  // namespace fleettwin::app
