#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/metrics.h"
#include "log/log.h"
#include "mqtt/broker_address.h"
#include "mqtt/client.h"
#include "mqtt/codec.h"
#include "mqtt/mosquitto_client.h"
#include "stages/bridge/intake.h"

namespace fleettwin::stages {

/// One MQTT broker address.
struct BridgeOptions {
  std::vector<mqtt::BrokerAddress> brokers;
  /// Client ids are `<client_id>-<broker index>`. A restarted bridge must reuse them: its persistent
  /// sessions hold what it had not acknowledged. Copies sharing the load need different ids.
  std::string client_id = "fleettwin-bridge";
  std::string share_group = "fleettwin";  ///< $share/<group>/... : copies in one group split the messages
  std::optional<std::string> username;
  std::optional<std::string> password;
  mqtt::TlsOptions tls;  ///< ca_file set: every broker connection (in and out) uses TLS
  mqtt::Version version = mqtt::Version::kV5;
  /// Unacknowledged QoS 1 messages per broker connection (MQTT 5 receive maximum): the bound that makes a
  /// slow log slow the cars down instead of growing the bridge's memory.
  std::uint16_t receive_maximum = 2000;
  std::size_t max_batch = 8192;                ///< messages written to the log before one flush and ack
  std::chrono::milliseconds batch_window{20};  ///< how long a batch may wait to fill
  std::chrono::milliseconds flush_timeout{30000};
  /// Message size and per-car rate limits (docs/architecture.md "Front door limits"). The clients announce
  /// max_message_bytes + kPacketOverhead as their MQTT 5 Maximum Packet Size.
  IntakeLimits limits;
  bool deliver_commands = true;                    ///< consume fleet.commands and publish them to cars
  std::string command_group = "fleettwin.bridge";  ///< consumer group of fleet.commands
  /// Makes the producer of the MQTT -> log side; empty: the log's. The edge's durable inbox goes here
  /// (app/edge_inbox.h): its delivery reports, which release the PUBACKs, follow the disk.
  std::function<std::unique_ptr<log::Producer>()> producer;
};

/// The bridge stage (DESIGN.md §1): cars' MQTT messages into the log, commands from the log to the cars.
///  - In: a shared subscription on every broker to `fleet/+/telemetry` and `fleet/+/acks` over our own
///    ack-controlled client (mqtt::Client in an mqtt::Pool), written to fleet.telemetry.raw and
///    fleet.command-acks keyed by car id with the MQTT topic and receive time as headers. A message's PUBACK
///    goes out only after the log acknowledged its record; a failed write drops that connection so the broker
///    redelivers everything not yet acknowledged. Killed at any moment, the bridge loses nothing. What one
///    car sends cannot stall the others: a message over the size limit or the car's rate, or one the log
///    refuses for good, goes to the DLQ of its topic and is acknowledged (BridgeIntake).
///  - Out: fleet.commands (a consumer group) published QoS 1 to `fleet/{car}/commands` on every broker (a car
///    is connected to one of them; the others have no subscriber and drop it) with the command's remaining
///    lifetime as MQTT 5 message expiry; a command already expired is answered on fleet.command-acks with
///    status "expired" instead. Input offsets are committed once every broker acknowledged.
/// Two threads of its own (in, out); metrics are the only shared state.
class Bridge {
 public:
  /// Room for the topic, packet id and properties of a PUBLISH beside a payload of max_message_bytes.
  static constexpr std::size_t kPacketOverhead = 4096;

  Bridge(BridgeOptions options, log::Log& log, core::Metrics& metrics, const core::Clock& clock);
  ~Bridge();
  Bridge(const Bridge&) = delete;
  Bridge& operator=(const Bridge&) = delete;

  /// Connects the command publishers (throws when a broker refuses), starts both loops and waits (up to
  /// `ready_timeout`) until every broker connection has its subscriptions: a broker drops what cars publish
  /// before the first subscription exists. Later, the persistent sessions keep the subscriptions while the
  /// bridge is away.
  void start(std::chrono::milliseconds ready_timeout = std::chrono::seconds(15));
  void request_stop() { _stop = true; }
  void join();
  bool running() const { return _running_in.load() || _running_out.load(); }
  std::string error() const;
  int64_t forwarded() const { return _forwarded->value(); }
  int64_t connected() const { return _connected->value(); }
  /// Messages of cars sent to a DLQ (too large, over their rate, refused by the log) and acknowledged.
  int64_t diverted() const { return _diverted->value(); }

 private:
  void run_in();
  void run_out();
  mqtt::ClientOptions client_options(std::size_t broker) const;
  void set_error(const std::string& e);

  BridgeOptions _options;
  log::Log& _log;
  core::Metrics& _metrics;
  const core::Clock& _clock;
  std::atomic<bool> _stop{false};
  std::atomic<bool> _running_in{false};
  std::atomic<bool> _running_out{false};
  std::atomic<std::size_t> _ready_connections{0};
  std::thread _in, _out;
  std::vector<std::unique_ptr<mqtt::MosquittoClient>> _publishers;
  mutable std::mutex _error_mu;
  std::string _error;
  core::Counter* _forwarded;
  core::Counter* _acks_forwarded;
  core::Counter* _redeliveries;
  core::Counter* _bad_topic;
  core::Counter* _diverted;
  core::Counter* _commands_sent;
  core::Counter* _commands_expired;
  core::Counter* _commands_bad;
  core::Gauge* _connected;
  core::Gauge* _unacked;
};

}  // namespace fleettwin::stages
