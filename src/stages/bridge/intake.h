#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/metrics.h"
#include "log/log.h"
#include "mqtt/pool.h"
#include "stages/bridge/rate_limit.h"
#include "stages/dead_letters.h"

namespace fleettwin::stages {

/// The front door's limits on what one car can send (docs/architecture.md "Front door limits").
struct IntakeLimits {
  std::size_t max_message_bytes = 262'144;  ///< 256 KiB; larger payloads go to the DLQ as too_large
  RateLimitOptions rate;                    ///< per car; excess to the DLQ as rate_limited
};

/// The counters the bridge's input side moves (registered by the Bridge, shown in /metrics).
struct IntakeCounters {
  core::Counter& telemetry;  ///< telemetry records written to fleet.telemetry.raw
  core::Counter& acks;       ///< answers written to fleet.command-acks
  core::Counter& failures;   ///< messages whose connection was dropped for redelivery
  core::Counter& bad_topic;  ///< messages on no route (acked, dropped)
};

/// The bridge's MQTT -> log side: routes each message to its topic, or to the DLQ of that topic when it is
/// too large, over its car's rate, or refused by the log for good, and acknowledges a message (PUBACK) only
/// after the log acknowledged the record that carries it. The delivery accounting is keyed by a sequence
/// number per message, never by a position: a delivery report that arrives after its batch was settled (a
/// flush that timed out) is ignored instead of marking whichever message took its place as written. One
/// thread, the bridge's input loop.
class BridgeIntake {
 public:
  BridgeIntake(mqtt::Pool& pool, std::unique_ptr<log::Producer> producer, IntakeLimits limits,
               IntakeCounters counters, core::Metrics& metrics, const core::Clock& clock);

  /// A message from client `i` (Pool::on_message).
  void on_message(mqtt::Pool::Index i, std::string_view topic, std::string_view payload, std::uint8_t qos,
                  std::uint16_t packet_id);
  /// A PUBLISH over the client's packet limit (Pool::on_oversize): `prefix` is its start, `size` its length.
  void on_oversize(mqtt::Pool::Index i, std::string_view topic, std::string_view prefix, std::uint8_t qos,
                   std::uint16_t packet_id, std::size_t size);

  std::size_t pending() const { return _batch.size(); }
  std::chrono::steady_clock::time_point batch_start() const { return _batch_start; }
  /// Waits for the log (up to `timeout` per round), writes what it refused for good to the DLQ, then
  /// acknowledges every message in the log and drops the connections of the others (the broker resends them).
  void commit(std::chrono::milliseconds timeout);
  int64_t diverted() const { return _dlq.total(); }  ///< messages sent to a DLQ

 private:
  enum class State : std::uint8_t { kSent, kWritten, kRefused, kFailed };
  struct Pending {
    mqtt::Pool::Index client = 0;
    std::uint16_t packet_id = 0;  // 0: QoS 0, nothing to ack
    bool diverted = false;        // its record is a DLQ record: a refusal of that is a failure
    State state = State::kSent;
    log::OutRecord refused{};  // on a permanent refusal: what goes to the DLQ
    std::string why;
  };

  void route(mqtt::Pool::Index i, std::string_view topic, std::string_view payload, std::uint8_t qos,
             std::uint16_t packet_id, std::size_t size);
  /// Adds a message to the batch; the sequence number its delivery report must name.
  std::uint64_t track(mqtt::Pool::Index i, std::uint8_t qos, std::uint16_t packet_id, bool diverted);
  log::Producer::DeliveryCallback report_to(std::uint64_t seq);
  void report(std::uint64_t seq, const log::OutRecord& r, const log::DeliveryError* error);
  void divert(mqtt::Pool::Index i, std::uint8_t qos, std::uint16_t packet_id, log::OutRecord r,
              std::string_view reason, const std::string& detail);
  /// Sends the records the log refused for good to their DLQ; whether there were any.
  bool divert_refused();
  void settle();

  mqtt::Pool& _pool;
  IntakeLimits _limits;
  IntakeCounters _counters;
  const core::Clock& _clock;
  DeadLetters _dlq;
  RateLimiter _rate;
  std::vector<Pending> _batch;
  std::uint64_t _first_seq = 0;  // sequence number of _batch[0]; the next batch starts past the last one
  std::chrono::steady_clock::time_point _batch_start{};
  // Last, so it goes first: a producer may serve delivery reports as it is destroyed, and they land in
  // _batch.
  std::unique_ptr<log::Producer> _producer;
};

}  // namespace fleettwin::stages
