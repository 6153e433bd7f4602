#include "stages/twin/twin_stage.h"

#include <spdlog/spdlog.h>

#include "codec/avro.h"
#include "codec/json.h"
#include "codec/schemas.h"
#include "core/metric_catalog.h"
#include "core/topics.h"

namespace fleettwin::stages {

namespace t = core::topics;

const StageDescriptor& TwinStage::static_descriptor() {
  static const StageDescriptor kDescriptor{
      "twin",
      {t::kTelemetry, t::kCommands, t::kCommandAcks, t::kScores, t::kAlerts},
      {t::kTwins, t::kCommandAcks},
      {&config::keys::twin_offline_after, &config::keys::twin_flush_interval},
      "maintains every car's digital twin (reported state, desired settings from commands, settings the car "
      "confirmed, health from scores and alerts) and writes changes to the twin changelog",
      "telemetry, commands, answers, scores, alerts -> twins (changelog)",
      {}};
  return kDescriptor;
}

TwinStage::TwinStage(Options options, const core::Clock& clock, core::Metrics& metrics,
                     std::vector<core::Twin> initial, registry::TelemetryReader reader)
    : _options(options),
      _clock(clock),
      _reader(std::move(reader)),
      _stale(metrics.counter("fleettwin_twin_stale_total", "Telemetry older than the twin's state, ignored")),
      _bad(metrics.counter("fleettwin_twin_undecodable_total",
                           "fleet.telemetry records the twin stage could not decode")),
      _online(metrics.gauge(core::metric::kCarsOnline)),
      _count(metrics.gauge("fleettwin_twins", "Twins held by the twin stage")) {
  for (auto& twin : initial) {
    _watermark = std::max(_watermark, twin.last_seen);
    auto id = twin.id;
    _twins.emplace(std::move(id), Entry{std::move(twin), false, {}});
  }
  _watermark_at = std::chrono::steady_clock::now();
  _count.set(static_cast<int64_t>(_twins.size()));
}

int64_t TwinStage::now_ms() const {
  if (_watermark == 0) return _clock.now_ms();
  const auto idle =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - _watermark_at)
          .count();
  return std::min(_clock.now_ms(), _watermark + idle);
}

void TwinStage::mark(Entry& e) {
  if (e.dirty) return;
  e.dirty = true;
  _dirty.push_back(&e);
}

void TwinStage::process(const std::vector<log::Record>& batch, log::Producer&) {
  for (const auto& r : batch) {
    if (r.topic != t::kTelemetry) {
      apply_other(r);
      continue;
    }
    std::string error;
    if (!_reader.read(r.value, _t, &error)) {
      // process wrote this record, so this is a bug or a foreign writer: count it and move on.
      _bad.add();
      spdlog::warn("twin: undecodable record {}/{}/{}: {}", r.topic, r.partition, r.offset, error);
      continue;
    }
    Entry& e = _twins[_t.car];
    if (!core::apply_telemetry(e.twin, _t)) {
      _stale.add();
      continue;
    }
    if (_t.ts > _watermark) {
      _watermark = _t.ts;
      _watermark_at = std::chrono::steady_clock::now();
    }
    mark(e);
  }
  _count.set(static_cast<int64_t>(_twins.size()));
}

void TwinStage::changed(Entry& e) {
  ++e.twin.version;
  mark(e);
}

void TwinStage::apply_other(const log::Record& r) {
  std::string error;
  if (r.topic == t::kCommands) {
    core::Command c;
    std::map<std::string, std::string> settings;
    if (!codec::command_from_json(r.value, c, &error) || !codec::command_settings(c, settings, &error)) {
      _bad.add();
      spdlog::warn("twin: ignoring command {}/{}: {}", r.partition, r.offset, error);
      return;
    }
    const std::string car = c.car.empty() ? r.key : c.car;
    Entry& e = _twins[car];
    if (e.twin.id.empty()) e.twin.id = car;
    if (auto early = _early_answers.find(c.id); early != _early_answers.end() && early->second.car == car) {
      // Already answered: acked settings are wanted and reported (no delta); failed ones are not wanted.
      if (early->second.status == "acked")
        for (const auto& [k, v] : settings) e.twin.desired[k] = v;
      _early_answers.erase(early);
    } else {
      for (const auto& [k, v] : settings) e.twin.desired[k] = v;
      _commands[c.id] = {car, std::move(settings), c.expires};
    }
    changed(e);
  } else if (r.topic == t::kCommandAcks) {
    core::CommandAck a;
    if (!codec::command_ack_from_json(r.value, a, &error)) {
      _bad.add();
      spdlog::warn("twin: ignoring command ack {}/{}: {}", r.partition, r.offset, error);
      return;
    }
    const std::string& car = r.key.empty() ? a.car : r.key;  // the key is the MQTT topic's car (ACL-checked)
    Entry& e = _twins[car];
    if (e.twin.id.empty()) e.twin.id = car;
    auto it = _commands.find(a.id);
    if (a.status == "acked") {
      for (const auto& [k, v] : a.reported) e.twin.reported_settings[k] = v;
    } else if (it != _commands.end() && it->second.car == car) {
      withdraw(e, it->second);
    }
    if (it == _commands.end()) {
      // Not pending: answered before its command arrived, or a late answer (the twin stage's own "expired",
      // which comes back here after the command was dropped; a later one from the car cannot undo it).
      if (a.status != "expired") _early_answers.try_emplace(a.id, EarlyAnswer{car, a.status, now_ms()});
    } else if (it->second.car == car) {
      _commands.erase(it);
    }
    changed(e);
  } else if (r.topic == t::kScores) {
    codec::AnomalyScore s;
    if (!codec::decode_avro_anomaly_score(r.value, s, nullptr, &error)) {
      _bad.add();
      return;
    }
    Entry& e = _twins[s.car];
    if (e.twin.id.empty()) e.twin.id = s.car;
    auto& h = e.twin.health;
    h.score = s.score;
    h.threshold = s.threshold;
    h.model_version = s.model_version;
    h.top_signals.clear();
    for (const auto& d : s.top_signals) h.top_signals.push_back(d.signal);
    // An open alert keeps the car in "anomaly" until it is cleared; a single high score is a warning.
    if (h.status != core::HealthStatus::kAnomaly) {
      const auto status = s.score > s.threshold ? core::HealthStatus::kWarning : core::HealthStatus::kOk;
      if (status != h.status) {
        h.status = status;
        h.since = s.ts;
      }
    }
    changed(e);
  } else if (r.topic == t::kAlerts) {
    core::Alert a;
    if (!codec::decode_avro_alert(r.value, a, nullptr, &error)) {
      _bad.add();
      return;
    }
    Entry& e = _twins[a.car];
    if (e.twin.id.empty()) e.twin.id = a.car;
    auto& h = e.twin.health;
    if (a.raised)
      e.open_alerts.insert(a.id);
    else
      e.open_alerts.erase(a.id);
    const auto status = e.open_alerts.empty() ? core::HealthStatus::kOk : core::HealthStatus::kAnomaly;
    if (status != h.status) {
      h.status = status;
      h.since = a.ts;
    }
    if (a.raised) h.top_signals = a.signals;
    changed(e);
  }
}

void TwinStage::withdraw(Entry& e, const PendingCommand& c) {
  // Failed or expired: the settings it asked for will not come; stop showing them as wanted.
  for (const auto& [k, v] : c.settings)
    if (auto d = e.twin.desired.find(k); d != e.twin.desired.end() && d->second == v) e.twin.desired.erase(d);
}

void TwinStage::tick(log::Producer& out) {
  const int64_t now = now_ms();
  // A command whose expiry passed unanswered (the broker dropped it for an offline car, or nobody delivered
  // it) is declared expired on fleet.command-acks, so its status is visible in the store and the API.
  for (auto it = _commands.begin(); it != _commands.end();) {
    const auto& c = it->second;
    if (c.expires <= 0 || c.expires > now) {
      ++it;
      continue;
    }
    core::CommandAck a{it->first, c.car, "expired", now, {}, "not acknowledged by the car before its expiry"};
    out.send({t::kCommandAcks, c.car, codec::command_ack_to_json(a), {}, -1, 0});
    Entry& e = _twins[c.car];
    withdraw(e, c);
    changed(e);
    it = _commands.erase(it);
  }
  for (auto it = _early_answers.begin(); it != _early_answers.end();)
    it = it->second.seen < now - 86'400'000 ? _early_answers.erase(it) : std::next(it);
  int64_t online = 0;
  for (auto& [id, e] : _twins) {
    if (core::mark_offline_if_silent(e.twin, now, _options.offline_after_ms)) mark(e);
    online += e.twin.online ? 1 : 0;
  }
  _online.set(online);
}

void TwinStage::flush_state(log::Producer& out) {
  for (Entry* e : _dirty) {
    log::OutRecord o;
    o.topic = t::kTwins;
    o.key = e->twin.id;
    o.value = codec::twin_to_json(e->twin, _reader.catalog());  // the changelog names the catalog's signals
    out.send(std::move(o));
    e->dirty = false;
  }
  _dirty.clear();
}

}  // namespace fleettwin::stages
