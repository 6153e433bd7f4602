#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/metrics.h"
#include "log/log.h"

#include "app/edge_inbox.h"
#include "config/config.h"
#include "mqtt/credentials.h"
#include "sim/feed/mqtt_fleet.h"
#include "stages/bridge/bridge.h"

namespace fleettwin::app {

/// A free loopback TCP port (bound to 0 and read back; whoever binds it next may race another process, and
/// fails loudly then). std::runtime_error when there is none.
int free_port();

/// "HOST:PORT[,HOST:PORT...]" -> addresses; ConfigError naming the bad entry.
std::vector<mqtt::BrokerAddress> parse_brokers(const std::string& list, const std::string& what);

/// The bridge's options from mqtt.* keys (credentials: the bridge account of mqtt.credentials).
stages::BridgeOptions bridge_options(const config::Config& config, std::vector<mqtt::BrokerAddress> brokers);

/// The fleet of sim.* keys, starting now (real time).
sim::FleetConfig fleet_config(const config::Config& config);
/// Sets `fleet`'s catalog and upgraded share from sim.catalog and sim.upgraded_share; ConfigError when the
/// catalog cannot be read.
void apply_sim_catalog(const config::Config& config, sim::FleetConfig& fleet);

/// The MQTT simulator's options from sim.* and mqtt.* keys, around an already configured fleet.
sim::MqttFleetOptions mqtt_fleet_options(const config::Config& config, sim::FleetConfig fleet,
                                         std::vector<mqtt::BrokerAddress> brokers);

/// mosquitto brokers started by `up --mqtt` (mqtt.brokers = "local"): loopback, free ports, config and log in
/// `dir`, refusing payloads over `max_message_bytes`; anonymous without `credentials`, else every client
/// authenticates with them (passwords, or TLS with client certificates) under their ACL. Stopped (SIGTERM,
/// then waited for) when destroyed. Main thread.
class LocalBrokers {
 public:
  LocalBrokers(int shards, const std::string& dir, int64_t max_message_bytes,
               const std::optional<mqtt::Credentials>& credentials = {});
  ~LocalBrokers();
  LocalBrokers(const LocalBrokers&) = delete;
  LocalBrokers& operator=(const LocalBrokers&) = delete;
  const std::vector<mqtt::BrokerAddress>& addresses() const { return _addresses; }
  const std::vector<pid_t>& pids() const { return _pids; }

 private:
  std::vector<pid_t> _pids;
  std::vector<mqtt::BrokerAddress> _addresses;
};

/// `fleettwin bridge --mqtt ... --kafka ...`: the bridge on Kafka until a stop signal; its exit code.
int run_bridge(const config::Config& config, const std::atomic<int>& stop_signals);

/// Arguments of a `fleettwin sim --mqtt` worker process for this configuration (the shard flags are added
/// per worker by run_mqtt_fleet_processes).
std::vector<std::string> sim_worker_args(const config::Config& config,
                                         const std::vector<mqtt::BrokerAddress>& brokers);

/// The MQTT front of `up --mqtt`: local brokers (mqtt.brokers = "local") or the configured ones, the bridge
/// into the embedded log, and the simulated cars on their own connections (a thread here, or worker processes
/// for big fleets). Main thread; the simulator runs on its own thread.
class MqttFront {
 public:
  ~MqttFront() { stop(); }
  /// The brokers and the bridge (start_bridge), and the simulated cars.
  void start(const config::Config& config, sim::FleetConfig fleet, const std::string& ground_truth,
             log::Log& log, core::Metrics& metrics, const core::Clock& clock, core::Counter& published,
             const std::string& dir);
  /// The brokers and the bridge only, for real cars (`up --mqtt ... --no-sim`). On the embedded log with
  /// mqtt.durable_ack the bridge writes through the durable inbox in `dir` (EdgeInbox), replayed first.
  void start_bridge(const config::Config& config, log::Log& log, core::Metrics& metrics,
                    const core::Clock& clock, const std::string& dir);
  /// The simulator is still publishing; without one, the bridge is still running.
  bool running() const { return _simulating ? _sim_running.load() : _bridge && _bridge->running(); }
  /// Stops the simulator, waits (up to 60 s) until the bridge has written everything the cars published, then
  /// stops the bridge. False when something failed (error() says what).
  bool stop();
  std::string error() const;

 private:
  void set_error(const std::string& e);
  std::unique_ptr<LocalBrokers> _brokers;
  std::unique_ptr<EdgeInbox> _inbox;  // before _bridge: the bridge writes through it until it is joined
  std::unique_ptr<stages::Bridge> _bridge;
  std::vector<mqtt::BrokerAddress> _addresses;
  bool _simulating = false;
  std::thread _sim;
  std::atomic<int> _stop_sim{0};
  std::atomic<bool> _sim_running{false};
  std::atomic<int64_t> _published{0};
  bool _started = false;
  mutable std::mutex _mu;
  std::string _error;
};

}  // namespace fleettwin::app
