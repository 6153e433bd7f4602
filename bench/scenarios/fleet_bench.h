#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"

namespace fleettwin::app {

/// What `fleettwin bench fleet` runs. Plain value.
struct FleetBenchOptions {
  int64_t seconds = 300;  ///< the cars publish this long (with faults: at least until the last one ends)
  bool faults = false;    ///< inject the fault schedule (fleet_bench.cc: kill each role, restart services)
  int64_t fault_spacing_s = 45;  ///< time between two faults (and before the first one, after the ramp)
  int64_t sink_pause_s = 120;    ///< how long the sinks stay stopped in the "sinks stopped" fault
  int64_t copies = 2;            ///< bridge, process, twin and sink processes each
  std::string kafka;             ///< bootstrap servers; empty: start scripts/services/kafka
  std::string postgres;          ///< store URI; empty: start scripts/services/postgres
  /// The store: "postgres" (PostgreSQL) or "mongo" (the MongoDB store; with `mongo` empty, FerretDB from
  /// scripts/services/ferretdb). A `mongo` URI implies "mongo".
  std::string store = "postgres";
  std::string mongo;  ///< MongoDB / FerretDB URI; empty: start scripts/services/ferretdb (store "mongo")
  bool use_mongo() const { return store == "mongo" || !mongo.empty(); }
  std::string dir;  ///< scratch directory (logs, role data); empty: a fresh temp dir, removed after
};

/// One role's usage over the run (every incarnation). Plain value.
struct FleetRoleUsage {
  std::string name;  ///< e.g. "sink-2"
  double cpu_s = 0;
  double peak_rss_mb = 0;
  int starts = 0;
  int crashes = 0;  ///< exits nobody asked for (restarted by the bench)
};

/// One injected fault. recovery_s: from the moment the fault ended (the process or service was back) until
/// its backlog was drained (every message sent before it ended stored) and the store kept up with the cars
/// again (fleet_recovery.h); -1 when that never happened while the cars were publishing. max_latency_ms:
/// worst publish-to-stored latency of a message sent between the fault's start and its recovery.
struct FleetFault {
  std::string name;
  int64_t start_ms = 0, end_ms = 0;  ///< wall clock
  double recovery_s = -1;
  double max_latency_ms = 0;
};

/// What `fleettwin bench fleet` measured (the JSON keys of `--json`). Plain value.
struct FleetBenchResult {
  int64_t cars = 0;
  double msgs_per_s = 0;  ///< stored per second at steady state (after the ramp, before the first fault)
  double p50_latency_ms = 0, p99_latency_ms = 0;  ///< publish -> stored, same window
  int64_t published = 0;  ///< telemetry acknowledged to the cars (PUBACKs less the command answers')
  int64_t unrouted =
      0;               ///< acknowledged by a broker with "no matching subscribers": dropped before any bridge
  int64_t stored = 0;  ///< distinct (car, seq) in the store
  int64_t lost = 0;    ///< acknowledged or sent before a stored one, and not stored
  int64_t duplicates = 0;
  int64_t twins_behind = 0;                          ///< cars whose twin is not at their last stored seq
  int64_t commands_sent = 0, commands_answered = 0;  ///< schedule_service commands; answered: acked or failed
  std::vector<FleetRoleUsage> roles;
  std::vector<FleetFault> faults;
  bool exact() const { return lost == 0 && duplicates == 0 && twins_behind == 0; }
  int crashes() const {
    int n = 0;
    for (const auto& r : roles) n += r.crashes;
    return n;
  }
  std::string to_json() const;
};

/// `fleettwin bench fleet`: the reference's topology as separate processes on this machine. sim.cars cars at
/// sim.interval in `fleettwin sim --mqtt` worker processes, mqtt.shards mosquitto brokers (at least one per
/// 15,000 cars), `copies` bridges, process, twin and sink roles, one score role, the API, the schema
/// registry, Kafka and PostgreSQL (or the MongoDB store on FerretDB); optional faults; then the exactness
/// check in the store.
FleetBenchResult run_fleet_bench(config::Config config, const FleetBenchOptions& options,
                                 const std::atomic<int>& stop_signals);

}  // namespace fleettwin::app
