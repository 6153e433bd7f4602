#include "stages/bridge/bridge.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "codec/json.h"
#include "core/alert.h"
#include "core/metric_catalog.h"
#include "core/topics.h"
#include "mqtt/pool.h"

namespace fleettwin::stages {

namespace t = core::topics;

namespace {

bool safe_topic_level(std::string_view s) {
  return !s.empty() && s.find_first_of("/+#") == std::string_view::npos;
}

// A command from fleet.commands that can be sent: valid JSON, for a car whose id is one topic level.
bool core_command_ok(const log::Record& r, core::Command& c, std::string& why) {
  if (!codec::command_from_json(r.value, c, &why)) return false;
  if (c.car.empty()) c.car = r.key;
  if (!safe_topic_level(c.car)) {
    why = "car id '" + c.car + "' cannot be an MQTT topic level";
    return false;
  }
  return true;
}

}  // namespace

Bridge::Bridge(BridgeOptions options, log::Log& log, core::Metrics& metrics, const core::Clock& clock)
    : _options(std::move(options)), _log(log), _metrics(metrics), _clock(clock) {
  _forwarded = &metrics.counter(core::metric::kBridgeTelemetry);
  _acks_forwarded =
      &metrics.counter("fleettwin_bridge_command_acks_total", "Command acks from cars written to the log");
  _redeliveries = &metrics.counter(
      "fleettwin_bridge_log_failures_total",
      "Messages the log did not take for a passing reason (or not in time); their connection is "
      "dropped for redelivery");
  _bad_topic =
      &metrics.counter("fleettwin_bridge_bad_topic_total",
                       "MQTT messages on a topic outside fleet/{car}/telemetry|acks (acked, dropped)");
  _diverted = &metrics.counter(core::metric::kDlq, core::metric::stage_label("bridge"));
  _commands_sent = &metrics.counter("fleettwin_bridge_commands_total", "Commands published to cars");
  _commands_expired = &metrics.counter("fleettwin_bridge_commands_expired_total",
                                       "Commands expired before they could be sent");
  _commands_bad = &metrics.counter("fleettwin_bridge_commands_invalid_total",
                                   "fleet.commands records that are not a valid command (skipped)");
  _connected = &metrics.gauge("fleettwin_bridge_connections", "Broker connections of the bridge that are up");
  _unacked = &metrics.gauge("fleettwin_bridge_unacked",
                            "MQTT messages received and not yet acknowledged (waiting for the log)");
}

Bridge::~Bridge() {
  request_stop();
  join();
}

void Bridge::set_error(const std::string& e) {
  std::lock_guard lock(_error_mu);
  if (_error.empty()) _error = e;
}

std::string Bridge::error() const {
  std::lock_guard lock(_error_mu);
  return _error;
}

void Bridge::start(std::chrono::milliseconds ready_timeout) {
  if (_options.brokers.empty()) throw std::invalid_argument("bridge: no MQTT brokers given");
  if (_options.deliver_commands) {
    for (std::size_t k = 0; k < _options.brokers.size(); ++k) {
      mqtt::MosquittoOptions o;
      o.host = _options.brokers[k].host;
      o.port = _options.brokers[k].port;
      o.client_id = _options.client_id + "-commands-" + std::to_string(k);
      o.v5 = _options.version == mqtt::Version::kV5;
      o.username = _options.username;
      o.password = _options.password;
      o.tls = _options.tls;
      auto p = std::make_unique<mqtt::MosquittoClient>(o);
      p->connect();
      _publishers.push_back(std::move(p));
    }
  }
  _running_in = true;
  _in = std::thread([this] { run_in(); });
  if (_options.deliver_commands) {
    _running_out = true;
    _out = std::thread([this] { run_out(); });
  }
  const auto deadline = std::chrono::steady_clock::now() + ready_timeout;
  while (_ready_connections.load() < _options.brokers.size() && _running_in.load() &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (_ready_connections.load() < _options.brokers.size())
    spdlog::warn("bridge: {} of {} broker connections subscribed after {} ms; the rest keep retrying",
                 _ready_connections.load(), _options.brokers.size(), ready_timeout.count());
}

void Bridge::join() {
  if (_in.joinable()) _in.join();
  if (_out.joinable()) _out.join();
  _publishers.clear();
}

void Bridge::run_in() {
  try {
    mqtt::Pool pool(
        mqtt::PoolOptions{.max_connecting = 64, .seed = std::hash<std::string>{}(_options.client_id)});
    BridgeIntake intake(pool, _options.producer ? _options.producer() : _log.producer(), _options.limits,
                        {*_forwarded, *_acks_forwarded, *_redeliveries, *_bad_topic}, _metrics, _clock);
    pool.on_message([&](mqtt::Pool::Index i, std::string_view topic, std::string_view payload,
                        std::uint8_t qos,
                        std::uint16_t packet_id) { intake.on_message(i, topic, payload, qos, packet_id); });
    pool.on_oversize([&](mqtt::Pool::Index i, std::string_view topic, std::string_view prefix,
                         std::uint8_t qos, std::uint16_t packet_id,
                         std::size_t size) { intake.on_oversize(i, topic, prefix, qos, packet_id, size); });
    for (std::size_t k = 0; k < _options.brokers.size(); ++k) pool.add(client_options(k));
    // Once every connection's window of unacknowledged messages could be full, the brokers send nothing more
    // until the batch is acknowledged: waiting out the batch window then only adds latency (and with the edge
    // inbox's fsync per batch, halves how fast a backlog drains).
    const std::size_t full_windows =
        std::min(_options.max_batch, std::size_t{_options.receive_maximum} * _options.brokers.size());

    while (!_stop) {
      auto wait = std::chrono::milliseconds(100);
      const auto age = std::chrono::steady_clock::now() - intake.batch_start();
      if (intake.pending() > 0)
        wait = std::max(std::chrono::milliseconds(0),
                        _options.batch_window - std::chrono::duration_cast<std::chrono::milliseconds>(age));
      pool.run_once(wait);
      if (intake.pending() > 0 &&
          (intake.pending() >= full_windows ||
           std::chrono::steady_clock::now() - intake.batch_start() >= _options.batch_window))
        intake.commit(_options.flush_timeout);
      const auto st = pool.stats();
      _connected->set(static_cast<int64_t>(st.connected));
      _ready_connections = st.connected;
      _unacked->set(static_cast<int64_t>(intake.pending()));
    }
    intake.commit(_options.flush_timeout);
    pool.disconnect_all();
  } catch (const std::exception& e) {
    set_error(std::string("bridge (mqtt -> log): ") + e.what());
    _stop = true;
  }
  _running_in = false;
}

mqtt::ClientOptions Bridge::client_options(std::size_t k) const {
  mqtt::ClientOptions o;
  o.host = _options.brokers[k].host;
  o.port = _options.brokers[k].port;
  o.connect.version = _options.version;
  o.connect.client_id = _options.client_id + "-" + std::to_string(k);
  o.connect.clean_start = false;
  o.connect.session_expiry_s = 7 * 24 * 3600;
  o.connect.receive_maximum = _options.receive_maximum;
  // The front door's size limit, announced (MQTT 5) so a broker drops larger messages instead of sending
  // them; a 3.1.1 broker sends them anyway, and the client reads them without buffering past this bound.
  o.max_packet_size = _options.limits.max_message_bytes + kPacketOverhead;
  o.connect.maximum_packet_size = static_cast<std::uint32_t>(o.max_packet_size);
  o.connect.username = _options.username;
  o.connect.password = _options.password;
  const std::string share = "$share/" + _options.share_group + "/";
  o.subscriptions = {{share + "fleet/+/telemetry", 1}, {share + "fleet/+/acks", 1}};
  o.tls = _options.tls;
  return o;
}

void Bridge::run_out() {
  try {
    auto consumer = _log.consumer(_options.command_group);
    consumer->subscribe({t::kCommands});
    auto producer = _log.producer();
    while (!_stop) {
      auto batch = consumer->poll(1000, std::chrono::milliseconds(200));
      if (batch.empty()) continue;
      const int64_t now = _clock.now_ms();
      for (const auto& r : batch) {
        core::Command c;
        std::string why;
        if (!core_command_ok(r, c, why)) {
          _commands_bad->add();
          spdlog::warn("bridge: skipping fleet.commands {}/{}: {}", r.partition, r.offset, why);
          continue;
        }
        if (c.expires > 0 && c.expires <= now) {
          core::CommandAck a{c.id, c.car, "expired", now, {}, "expired before it could be sent to the car"};
          producer->send({t::kCommandAcks, c.car, codec::command_ack_to_json(a), {}, -1, 0});
          _commands_expired->add();
          continue;
        }
        const auto expiry_s =
            c.expires > 0 ? static_cast<std::uint32_t>(std::max<int64_t>(1, (c.expires - now + 999) / 1000))
                          : 0u;
        const std::string topic = "fleet/" + c.car + "/commands";
        for (auto& p : _publishers) p->publish(topic, r.value, 1, expiry_s);
        _commands_sent->add();
      }
      // Every broker has every command (libmosquitto resends after a reconnect) before the input is
      // committed.
      for (auto& p : _publishers)
        while (!p->wait_published(std::chrono::milliseconds(500)))
          if (_stop) throw std::runtime_error("stopped while a broker had not acknowledged commands");
      if (producer->flush(_options.flush_timeout) != 0)
        throw std::runtime_error("command acks were not acknowledged by the log");
      consumer->commit(log::next_offsets(batch));
    }
    consumer->close();
  } catch (const std::exception& e) {
    if (!_stop) set_error(std::string("bridge (commands -> mqtt): ") + e.what());
    _stop = true;
  }
  _running_out = false;
}

}  // namespace fleettwin::stages
