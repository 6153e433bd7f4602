#pragma once

#include <atomic>
#include <string>

#include "config/config.h"

namespace fleettwin::app {

/// What `fleettwin bench mqtt` measured. Plain value.
struct MqttBenchResult {
  int64_t cars = 0;
  int64_t shards = 0;
  int64_t connections = 0;       ///< connected at the end of the ramp
  double ramp_s = 0;             ///< from start until every car was connected
  double connections_per_s = 0;  ///< cars / ramp_s
  double msgs_per_s = 0;         ///< sustained, after the ramp, into the log
  int64_t published = 0;         ///< by the cars (QoS 1: acknowledged by a broker)
  int64_t received = 0;          ///< distinct (car, seq) in fleet.telemetry.raw
  int64_t lost = 0;              ///< published - received
  double p50_latency_ms = 0;     ///< car publish (message ts) -> appended to the log, after the ramp
  double p99_latency_ms = 0;
  double sim_kb_per_connection = 0;
  double broker_kb_per_connection = 0;
  double peak_rss_mb = 0;  ///< this process (bridge + log)
  double sim_rss_mb = 0;
  double broker_rss_mb = 0;
  int64_t bridge_alone_messages = 0;
  double bridge_alone_msgs_per_s = 0;
  double bridge_msgs_per_core_s = 0;  ///< messages per CPU-second of the bridge process
  std::string to_json() const;
};

/// `fleettwin bench mqtt`: local mosquitto shards (mqtt.shards), simulated cars over worker processes, the
/// bridge in this process into the embedded log, and a counter of every (car, seq) that arrives; then the
/// bridge alone draining a backlog the brokers kept while it was away.
MqttBenchResult run_mqtt_bench(config::Config config, int64_t seconds, const std::atomic<int>& stop_signals);

}  // namespace fleettwin::app
