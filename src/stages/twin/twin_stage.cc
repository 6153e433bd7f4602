#include "stages/twin/twin_stage.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "codec/avro.h"
#include "codec/json.h"
#include "codec/schemas.h"
#include "core/metric_catalog.h"
#include "core/topics.h"
#include "stages/record_checks.h"

namespace fleettwin::stages {

namespace t = core::topics;

const StageDescriptor& TwinStage::static_descriptor() {
  static const StageDescriptor kDescriptor{
      "twin",
      {t::kTelemetry, t::kCommands, t::kCommandAcks, t::kScores, t::kAlerts},
      {t::kTwins, t::kCommandAcks, dlq_of(t::kTelemetry), dlq_of(t::kCommands), dlq_of(t::kCommandAcks),
       dlq_of(t::kScores), dlq_of(t::kAlerts)},
      {&config::keys::twin_offline_after, &config::keys::twin_flush_interval},
      "maintains every car's digital twin (reported state, desired settings from commands, settings the car "
      "confirmed, health from scores and alerts) and writes changes to the twin changelog",
      "telemetry, commands, answers, scores, alerts -> twins (changelog)",
      {}};
  return kDescriptor;
}

TwinStage::TwinStage(Options options, const core::Clock& clock, core::Metrics& metrics,
                     std::vector<TwinSnapshot> initial, registry::TelemetryReader reader, Links links)
    : _options(options),
      _clock(clock),
      _links(std::move(links)),
      _reader(std::move(reader)),
      _dead_letters(metrics, "twin"),
      _stale(metrics.counter("fleettwin_twin_stale_total", "Telemetry older than the twin's state, ignored")),
      _forgotten(metrics.counter("fleettwin_twin_pending_forgotten_total",
                                 "Pending commands or open alerts forgotten beyond a car's bound")),
      _online(metrics.gauge(core::metric::kCarsOnline)),
      _count(metrics.gauge("fleettwin_twins", "Twins held by the twin stage")) {
  if (!_links.steady_ms) {
    _links.steady_ms = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now().time_since_epoch())
          .count();
    };
  }
  for (auto& s : initial) adopt(std::move(s));
  _count.set(static_cast<int64_t>(_twins.size()));
}

int64_t TwinStage::now_ms() const { return _liveness.now(_clock.now_ms()); }

void TwinStage::adopt(TwinSnapshot s) {
  _liveness.event(s.twin.last_seen);
  auto id = s.twin.id;
  _twins.try_emplace(std::move(id), Entry{std::move(s.twin), std::move(s.pending), s.partition, false});
}

TwinStage::Entry& TwinStage::entry(const std::string& car, int32_t partition) {
  Entry& e = _twins[car];
  if (e.twin.id.empty()) e.twin.id = car;
  e.partition = partition;
  return e;
}

void TwinStage::mark(Entry& e) {
  if (e.dirty) return;
  e.dirty = true;
  _dirty.push_back(&e);
}

void TwinStage::changed(Entry& e) {
  ++e.twin.version;
  mark(e);
}

void TwinStage::process(const std::vector<log::Record>& batch, log::Producer& out) {
  for (const auto& r : batch) {
    if (r.topic == t::kTelemetry) {
      apply_telemetry(r, out);
    } else {
      apply_other(r, out);
    }
  }
  _count.set(static_cast<int64_t>(_twins.size()));
}

void TwinStage::apply_telemetry(const log::Record& r, log::Producer& out) {
  // process wrote this record, so one it cannot read is a bug, a foreign writer or a writer schema this
  // stage refuses.
  if (codec::Refusal why; !read_telemetry(r, _reader, _t, why)) {
    _dead_letters.send(r, why.reason, why.detail, out);
    return;
  }
  Entry& e = entry(_t.car, r.partition);
  if (!core::apply_telemetry(e.twin, _t)) {
    _stale.add();
    return;
  }
  _liveness.event(_t.ts);
  // Central with --sites: the site of the newest event by seq (the stage runner sets the header).
  const auto site = r.header(t::kHeaderSite);
  e.twin.site = site ? std::string(*site) : std::string();
  mark(e);
}

void TwinStage::apply_other(const log::Record& r, log::Producer& out) {
  std::string error;
  if (r.topic == t::kCommands) {
    apply_command(r, out);
  } else if (r.topic == t::kCommandAcks) {
    apply_ack(r, out);
  } else if (r.topic == t::kScores) {
    apply_score(r, out);
  } else if (r.topic == t::kAlerts) {
    core::Alert a;
    codec::Refusal why;
    if (!codec::decode_avro_alert(r.value, a, nullptr, &error)) {
      _dead_letters.send(r, "undecodable", error, out);
    } else if (!key_matches(r, a.car, why)) {
      _dead_letters.send(r, why.reason, why.detail, out);
    } else {
      apply_alert(entry(a.car, r.partition), a);
    }
  }
}

void TwinStage::apply_score(const log::Record& r, log::Producer& out) {
  codec::AnomalyScore s;
  if (codec::Refusal why; !read_score(r, s, why)) {
    _dead_letters.send(r, why.reason, why.detail, out);
    return;
  }
  Entry& e = entry(s.car, r.partition);
  auto& h = e.twin.health;
  h.score = s.score;
  h.threshold = s.threshold;
  h.model_version = s.model_version;
  h.top_signals.clear();
  for (const auto& d : s.top_signals) h.top_signals.push_back(d.signal);
  // An open alert read from fleet.alerts keeps the car in "anomaly" until it is cleared (it may come before
  // or after the scores of the events that raised and cleared it); otherwise the score's own status, the
  // rule the aggregate stage groups events by: anomaly while the score stage has the car in alert, a single
  // high score a warning.
  if (e.pending.open_alerts.empty()) {
    const auto status = core::score_status(s.score, s.threshold, s.in_alert);
    if (status != h.status) {
      h.status = status;
      h.since = s.ts;
    }
  }
  changed(e);
}

void TwinStage::apply_command(const log::Record& r, log::Producer& out) {
  core::Command c;
  std::map<std::string, std::string> settings;
  if (codec::Refusal why; !read_command(r, c, settings, why)) {
    _dead_letters.send(r, why.reason, why.detail, out);
    return;
  }
  Entry& e = entry(c.car, r.partition);
  if (auto early = _early_answers.find(answer_key(c.car, c.id)); early != _early_answers.end()) {
    // Already answered: acked settings are wanted and reported (no delta); failed ones are not wanted.
    if (early->second.status == "acked")
      for (const auto& [k, v] : settings) e.twin.desired[k] = v;
    forget_early_answer(early);
  } else {
    for (const auto& [k, v] : settings) e.twin.desired[k] = v;
    auto& pending = e.pending.commands;
    std::erase_if(pending, [&](const auto& p) { return p.id == c.id; });  // a replayed command
    if (pending.size() >= core::TwinPending::kMaxCommands) {
      pending.erase(pending.begin());
      _forgotten.add();
    }
    // Every command expires: one the API or a foreign writer sent without an expiry gets the default, so a
    // car that never answers does not keep it (and its desired setting) pending for ever.
    const int64_t expires = c.expires > 0 ? c.expires : now_ms() + core::kDefaultCommandTtlMs;
    pending.push_back({c.id, std::move(settings), expires});
  }
  changed(e);
}

void TwinStage::apply_ack(const log::Record& r, log::Producer& out) {
  core::CommandAck a;
  codec::Refusal why;
  if (!codec::read_answer(r.value, r.key, a, why)) {
    _dead_letters.send(r, why.reason, why.detail, out);
    return;
  }
  Entry& e = entry(a.car, r.partition);
  auto& pending = e.pending.commands;
  auto it = std::find_if(pending.begin(), pending.end(), [&](const auto& p) { return p.id == a.id; });
  // Not pending for this car: answered before its command arrived, or a late answer (the twin stage's own
  // "expired", which comes back here after the command was dropped; a later one from the car cannot undo
  // it). Only an early answer is kept, and only so many per car.
  if (it == pending.end() && a.status != "expired" && !keep_early_answer(a)) {
    _dead_letters.send(r, "unknown_command",
                       "answer to a command not seen; the car has " +
                           std::to_string(core::kMaxEarlyAnswersPerCar) + " such answers already",
                       out);
    return;
  }
  // The settings are known ones with valid values (read_answer), so the twin holds nothing a car made up.
  if (a.status == "acked") {
    for (const auto& [k, v] : a.reported) e.twin.reported_settings[k] = v;
  } else if (it != pending.end()) {
    withdraw(e, *it);
  }
  if (it != pending.end()) pending.erase(it);
  changed(e);
}

bool TwinStage::keep_early_answer(const core::CommandAck& a) {
  const auto key = answer_key(a.car, a.id);
  if (_early_answers.contains(key)) return true;  // a replay
  auto& count = _early_per_car[a.car];
  if (count >= core::kMaxEarlyAnswersPerCar) return false;
  ++count;
  _early_answers.emplace(key, EarlyAnswer{a.car, a.status, now_ms()});
  return true;
}

void TwinStage::forget_early_answer(std::unordered_map<std::string, EarlyAnswer>::iterator it) {
  if (auto c = _early_per_car.find(it->second.car); c != _early_per_car.end() && --c->second == 0)
    _early_per_car.erase(c);
  _early_answers.erase(it);
}

void TwinStage::apply_alert(Entry& e, const core::Alert& a) {
  auto& open = e.pending.open_alerts;
  const bool known = std::find(open.begin(), open.end(), a.id) != open.end();
  if (a.raised && !known) {
    if (open.size() >= core::TwinPending::kMaxAlerts) {
      open.erase(open.begin());
      _forgotten.add();
    }
    open.push_back(a.id);
  } else if (!a.raised) {
    std::erase(open, a.id);
  }
  auto& h = e.twin.health;
  // With no alert open the car's status is its last score's (score_status, no longer in alert): what the
  // score that cleared it says, or will say when it comes after this record.
  const auto status =
      open.empty() ? core::score_status(h.score, h.threshold, false) : core::HealthStatus::kAnomaly;
  if (status != h.status) {
    h.status = status;
    h.since = a.ts;
  }
  if (a.raised) h.top_signals = a.signals;
  changed(e);
}

void TwinStage::withdraw(Entry& e, const core::TwinPending::Command& c) {
  // Failed or expired: the settings it asked for will not come; stop showing them as wanted.
  for (const auto& [k, v] : c.settings)
    if (auto d = e.twin.desired.find(k); d != e.twin.desired.end() && d->second == v) e.twin.desired.erase(d);
}

void TwinStage::expire_commands(Entry& e, int64_t now, log::Producer& out) {
  // A command whose expiry passed unanswered (the broker dropped it for an offline car, or nobody delivered
  // it) is declared expired on fleet.command-acks, so its status is visible in the store and the API.
  auto& pending = e.pending.commands;
  // Commands resumed without an expiry (pending in a store or changelog written before every command had
  // one) get the default lifetime from now.
  bool given = false;
  for (auto& c : pending)
    if (c.expires <= 0) {
      c.expires = now + core::kDefaultCommandTtlMs;
      given = true;
    }
  if (given) changed(e);
  const auto expired = [&](const auto& c) { return c.expires > 0 && c.expires <= now; };
  if (std::none_of(pending.begin(), pending.end(), expired)) return;
  for (const auto& c : pending) {
    if (!expired(c)) continue;
    core::CommandAck a{c.id, e.twin.id, "expired", now, {}, "not acknowledged by the car before its expiry"};
    out.send({t::kCommandAcks, e.twin.id, codec::command_ack_to_json(a), {}, -1, 0});
    withdraw(e, c);
  }
  std::erase_if(pending, expired);
  changed(e);
}

void TwinStage::observe_input(bool caught_up) {
  _input_caught_up = caught_up;
  _input_lagged = _input_lagged || !caught_up;
}

void TwinStage::observe_liveness() {
  // Flowing: the input stayed caught up since the last look, and the upstream has nothing left to deliver.
  bool flowing = _input_caught_up && !_input_lagged;
  if (flowing && _links.upstream_caught_up) {
    try {
      flowing = _links.upstream_caught_up();
    } catch (const std::exception& e) {
      flowing = false;  // the log cannot tell: that is not a silent fleet
      spdlog::debug("twin: upstream lag unknown: {}", e.what());
    }
  }
  _input_lagged = false;
  _liveness.observe(_links.steady_ms(), _clock.now_ms(), flowing);
}

void TwinStage::tick(log::Producer& out) {
  observe_liveness();
  const int64_t now = now_ms();
  int64_t online = 0;
  for (auto& [id, e] : _twins) {
    expire_commands(e, now, out);
    if (core::mark_offline_if_silent(e.twin, now, _options.offline_after_ms)) mark(e);
    online += e.twin.online ? 1 : 0;
  }
  for (auto it = _early_answers.begin(); it != _early_answers.end();) {
    const auto next = std::next(it);
    if (it->second.seen < now - core::kEarlyAnswerTtlMs) forget_early_answer(it);
    it = next;
  }
  _online.set(online);
}

void TwinStage::flush_state(log::Producer& out) {
  for (Entry* e : _dirty) {
    log::OutRecord o;
    o.topic = t::kTwins;
    o.key = e->twin.id;
    // The changelog names the catalog's signals and carries the stage's bookkeeping for the car.
    o.value = codec::twin_record_to_json(e->twin, e->pending, _reader.catalog());
    out.send(std::move(o));
    e->dirty = false;
  }
  _dirty.clear();
}

void TwinStage::on_assigned(const std::vector<log::TopicPartition>& partitions) {
  std::set<int32_t> gained;
  for (const auto& tp : partitions)
    if (_held[tp.partition]++ == 0) gained.insert(tp.partition);
  if (gained.empty() || !_links.load) return;
  // The previous owner flushed these cars' twins before it let the partitions go: fleet.twins is current.
  std::size_t loaded = 0;
  for (auto& s : _links.load(gained)) {
    if (!gained.contains(s.partition) || _twins.contains(s.twin.id)) continue;
    adopt(std::move(s));
    ++loaded;
  }
  _count.set(static_cast<int64_t>(_twins.size()));
  spdlog::info("twin: {} partitions gained, {} twins loaded from {}", gained.size(), loaded, t::kTwins);
}

void TwinStage::on_revoked(const std::vector<log::TopicPartition>& partitions) {
  std::set<int32_t> lost;
  for (const auto& tp : partitions) {
    auto it = _held.find(tp.partition);
    if (it == _held.end() || --it->second > 0) continue;
    _held.erase(it);
    lost.insert(tp.partition);
  }
  if (lost.empty()) return;
  // Their new owner continues from what the runner flushed to fleet.twins just before: state kept here would
  // go stale, and come back stale if the partitions returned.
  const auto theirs = [&](const Entry& e) { return lost.contains(e.partition); };
  std::erase_if(_dirty, [&](const Entry* e) { return theirs(*e); });
  const auto before = _twins.size();
  std::erase_if(_twins, [&](const auto& kv) { return theirs(kv.second); });
  _count.set(static_cast<int64_t>(_twins.size()));
  spdlog::info("twin: {} partitions lost, {} twins dropped", lost.size(), before - _twins.size());
}

}  // namespace fleettwin::stages
