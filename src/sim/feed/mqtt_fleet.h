#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "mqtt/broker_address.h"
#include "mqtt/codec.h"
#include "mqtt/credentials.h"
#include "mqtt/tls.h"
#include "sim/fleet.h"

namespace fleettwin::sim {

struct MqttFleetOptions {
  sim::FleetConfig fleet;                    ///< fleet.shard/shards pick this process's cars
  std::vector<mqtt::BrokerAddress> brokers;  ///< car i connects to brokers[i % size]
  std::uint8_t qos = 1;
  mqtt::Version version = mqtt::Version::kV5;
  /// none: anonymous (a broker with allow_anonymous); certificates: each car presents its own (TLS)
  std::optional<mqtt::Credentials> credentials;
  std::string ground_truth_path;  ///< appended to; empty: none
  std::size_t max_connecting = 256;
  mqtt::TlsOptions tls;  ///< ca_file set: every car connects with TLS
};

/// Live counters of a simulator process; also the wire format of a worker's status line.
struct MqttFleetStats {
  int64_t cars = 0;
  int64_t connected = 0;
  int64_t published = 0;  ///< messages handed to a connection (QoS 1: kept until acknowledged)
  int64_t acked = 0;      ///< QoS 1 PUBACKs received
  int64_t pending = 0;    ///< QoS 1 messages not yet acknowledged
  int64_t reconnects = 0;
  int64_t unrouted = 0;  ///< acknowledged with "no matching subscribers": no bridge had subscribed yet
  int64_t dropped = 0;   ///< messages a car could not keep (its buffer of unacknowledged messages was full)
  int64_t commands = 0;
  int64_t answers = 0;   ///< command answers published (QoS 1: their PUBACKs are counted in `acked` too)
  int64_t failures = 0;  ///< simulated failure onsets (ground truth records)
  int64_t rss_kb = 0;    ///< resident memory of the simulator process(es)
  bool done = false;
  std::string to_line() const;  ///< "stats cars=.. connected=.. ..."
  static std::optional<MqttFleetStats> from_line(const std::string& line);
  MqttFleetStats& operator+=(const MqttFleetStats& o);
};

/// Simulated cars on their own MQTT connections, from one thread: a sim::Fleet paced in real time and an
/// mqtt::Pool with one client (one descriptor) per car. Each car publishes its telemetry to
/// fleet/{car}/telemetry, subscribes to fleet/{car}/commands on a persistent session, obeys commands
/// (set_speed_limit, update_firmware, schedule_service) and acknowledges them on fleet/{car}/acks with its
/// settings. Runs on the calling thread until the fleet's duration ends or `stop` is set.
void run_mqtt_fleet(const MqttFleetOptions& options, const std::atomic<bool>& stop,
                    const std::function<void(const MqttFleetStats&)>& report);

/// Resident memory of process `pid` (0: this one) in KiB, from /proc; 0 when unknown.
int64_t rss_kb(int pid = 0);

/// `fleettwin sim --mqtt`: runs the fleet in this process when it fits (cars_per_process), else in
/// ceil(cars / cars_per_process) worker processes (this binary, `sim --mqtt ... --shard i --shards n`) whose
/// status lines it sums. `report` gets the fleet-wide stats about once a second.
int run_mqtt_fleet_processes(const MqttFleetOptions& options, std::size_t cars_per_process,
                             const std::vector<std::string>& worker_args,
                             const std::atomic<int>& stop_signals,
                             const std::function<void(const MqttFleetStats&)>& report);

}  // namespace fleettwin::sim
