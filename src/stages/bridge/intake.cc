#include "stages/bridge/intake.h"

#include <algorithm>
#include <utility>

#include "core/topics.h"
#include "mqtt/codec.h"

namespace fleettwin::stages {

namespace t = core::topics;

namespace {

/// "fleet/{car}/{kind}" -> car, kind; false for any other shape.
bool split_topic(std::string_view topic, std::string_view& car, std::string_view& kind) {
  if (topic.substr(0, 6) != "fleet/") return false;
  const auto rest = topic.substr(6);
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0) return false;
  car = rest.substr(0, slash);
  kind = rest.substr(slash + 1);
  return true;
}

/// What a DLQ record keeps of a payload that was too large for the front door or the log: its start, so
/// the DLQ record itself stays small and the log takes it.
std::string head(std::string_view payload) {
  return std::string(payload.substr(0, mqtt::Decoder::kOversizePrefix));
}

/// Sends through `inner` with `on_delivery` attached: DeadLetters writes through a plain Producer, and the
/// bridge must learn when each DLQ record is in the log before it acknowledges the message.
class Reporting final : public log::Producer {
 public:
  Reporting(log::Producer& inner, DeliveryCallback on_delivery)
      : _inner(inner), _on_delivery(std::move(on_delivery)) {}
  void send(log::OutRecord record, DeliveryCallback) override {
    _inner.send(std::move(record), std::move(_on_delivery));
  }
  int64_t flush(std::chrono::milliseconds timeout) override { return _inner.flush(timeout); }

 private:
  log::Producer& _inner;
  DeliveryCallback _on_delivery;
};

}  // namespace

BridgeIntake::BridgeIntake(mqtt::Pool& pool, std::unique_ptr<log::Producer> producer, IntakeLimits limits,
                           IntakeCounters counters, core::Metrics& metrics, const core::Clock& clock)
    : _pool(pool),
      _limits(limits),
      _counters(counters),
      _clock(clock),
      _dlq(metrics, "bridge"),
      _rate(limits.rate),
      _producer(std::move(producer)) {}

void BridgeIntake::on_message(mqtt::Pool::Index i, std::string_view topic, std::string_view payload,
                              std::uint8_t qos, std::uint16_t packet_id) {
  route(i, topic, payload, qos, packet_id, payload.size());
}

void BridgeIntake::on_oversize(mqtt::Pool::Index i, std::string_view topic, std::string_view prefix,
                               std::uint8_t qos, std::uint16_t packet_id, std::size_t size) {
  route(i, topic, prefix, qos, packet_id, std::max(size, _limits.max_message_bytes + 1));
}

void BridgeIntake::route(mqtt::Pool::Index i, std::string_view topic, std::string_view payload,
                         std::uint8_t qos, std::uint16_t packet_id, std::size_t size) {
  std::string_view car, kind;
  const bool telemetry = split_topic(topic, car, kind) && kind == "telemetry";
  const bool ack = !telemetry && !car.empty() && kind == "acks";
  if (!telemetry && !ack) {
    // Our subscriptions cannot deliver other topics; if a broker does, there is nothing to route.
    _counters.bad_topic.add();
    if (qos > 0) _pool.ack(i, packet_id);
    return;
  }
  log::OutRecord r;
  r.topic = telemetry ? t::kTelemetryRaw : t::kCommandAcks;
  r.key = std::string(car);  // the topic's car, which the broker's ACL vouches for
  r.headers = {{t::kHeaderMqttTopic, std::string(topic)},
               {t::kHeaderReceivedMs, std::to_string(_clock.now_ms())}};
  if (size > _limits.max_message_bytes) {
    r.value = head(payload);
    divert(i, qos, packet_id, std::move(r), "too_large",
           "payload of " + std::to_string(size) + " bytes over the limit of " +
               std::to_string(_limits.max_message_bytes) + " (mqtt.max_message_bytes); value truncated");
    return;
  }
  r.value = std::string(payload);
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now().time_since_epoch());
  if (!_rate.allow(car, now.count())) {
    divert(i, qos, packet_id, std::move(r), "rate_limited", "over mqtt.rate_limit messages per second");
    return;
  }
  (telemetry ? _counters.telemetry : _counters.acks).add();
  const auto seq = track(i, qos, packet_id, false);
  _producer->send(std::move(r), report_to(seq));
}

void BridgeIntake::divert(mqtt::Pool::Index i, std::uint8_t qos, std::uint16_t packet_id, log::OutRecord r,
                          std::string_view reason, const std::string& detail) {
  const auto seq = track(i, qos, packet_id, true);
  const std::string source = r.headers.front().value;  // the MQTT topic
  const std::string dlq = dlq_of(r.topic);
  Reporting out(*_producer, report_to(seq));
  _dlq.send(dlq, std::move(r), reason, detail, source, out);
}

std::uint64_t BridgeIntake::track(mqtt::Pool::Index i, std::uint8_t qos, std::uint16_t packet_id,
                                  bool diverted) {
  if (_batch.empty()) _batch_start = std::chrono::steady_clock::now();
  Pending p;
  p.client = i;
  p.packet_id = qos > 0 ? packet_id : std::uint16_t{0};
  p.diverted = diverted;
  _batch.push_back(std::move(p));
  return _first_seq + _batch.size() - 1;
}

log::Producer::DeliveryCallback BridgeIntake::report_to(std::uint64_t seq) {
  return [this, seq](const log::OutRecord& r, int64_t, const log::DeliveryError* error) {
    report(seq, r, error);
  };
}

void BridgeIntake::report(std::uint64_t seq, const log::OutRecord& r, const log::DeliveryError* error) {
  // A report for a message of a batch already settled (its flush timed out, its connection was dropped and
  // the broker resends it) says nothing about the message that now has its place: ignore it.
  if (seq < _first_seq || seq >= _first_seq + _batch.size()) return;
  Pending& p = _batch[seq - _first_seq];
  if (!error) {
    p.state = State::kWritten;
  } else if (error->permanent && !p.diverted) {
    // Sending it again fails again: it goes to the DLQ instead, and is acknowledged once that has it.
    p.state = State::kRefused;
    p.refused = log::OutRecord{r.topic, r.key, head(r.value), r.headers};
    p.why = *error;
  } else {
    p.state = State::kFailed;
  }
}

bool BridgeIntake::divert_refused() {
  bool any = false;
  for (std::size_t k = 0; k < _batch.size(); ++k) {
    Pending& p = _batch[k];
    if (p.state != State::kRefused) continue;
    any = true;
    p.state = State::kSent;
    p.diverted = true;
    const std::string source = p.refused.headers.empty() ? std::string() : p.refused.headers.front().value;
    const std::string dlq = dlq_of(p.refused.topic);
    Reporting out(*_producer, report_to(_first_seq + k));
    _dlq.send(dlq, std::move(p.refused), "log_refused", p.why, source, out);
  }
  return any;
}

void BridgeIntake::commit(std::chrono::milliseconds timeout) {
  if (_batch.empty()) return;
  _producer->flush(timeout);
  if (divert_refused()) _producer->flush(timeout);
  settle();
}

void BridgeIntake::settle() {
  std::vector<mqtt::Pool::Index> broken;
  for (const auto& p : _batch) {
    if (p.state != State::kWritten) {
      _counters.failures.add();
      broken.push_back(p.client);
    } else if (p.packet_id != 0) {
      // false when the connection dropped meanwhile: the broker redelivers it; replays are harmless.
      _pool.ack(p.client, p.packet_id);
    }
  }
  _first_seq += _batch.size();
  _batch.clear();
  std::sort(broken.begin(), broken.end());
  broken.erase(std::unique(broken.begin(), broken.end()), broken.end());
  for (auto i : broken) _pool.drop(i);  // the broker resends everything this connection left unacked
}

}  // namespace fleettwin::stages
