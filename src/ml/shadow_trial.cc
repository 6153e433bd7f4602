#include "ml/shadow_trial.h"

#include <algorithm>
#include <map>
#include <string_view>
#include <utility>

#include "codec/json_writer.h"

namespace fleettwin::ml {

namespace {

/// One model's replay: its alerts by car, when each was raised and cleared, and its per-event verdicts.
struct Replay {
  struct Raised {
    int64_t ts = 0, cleared = -1;  // cleared -1: still open
    std::string signal;            // its first (top contributing) signal
  };
  std::map<std::string, std::vector<Raised>> alerts;  // car -> anomaly alerts raised
  std::vector<uint8_t> in_alert;                      // per scored event: its car in alert after it
  int64_t unfamiliar = 0;
  int64_t scored = 0;
};

Replay replay(const std::shared_ptr<const Model>& model, const std::vector<core::Telemetry>& events,
              const MonitorOptions& options, const std::shared_ptr<const FeatureSpace>& space) {
  Replay r;
  if (!model) return r;
  Monitor monitor(options, space);
  monitor.set_model(model);
  MonitorOutput out;
  std::vector<core::Telemetry> batch;
  constexpr std::size_t kBatch = 5000;  // what the score stage's batches hold at most by default
  r.in_alert.reserve(events.size());
  AlertStates states;
  for (std::size_t i = 0; i < events.size(); i += kBatch) {
    batch.assign(events.begin() + static_cast<std::ptrdiff_t>(i),
                 events.begin() + static_cast<std::ptrdiff_t>(std::min(events.size(), i + kBatch)));
    out.clear();
    monitor.process(batch, out);
    states.follow(out, r.in_alert);
    r.scored += static_cast<int64_t>(out.scores.size());
    for (const auto& a : out.alerts) {
      if (a.kind != kAlertAnomaly) continue;
      if (a.raised) {
        r.alerts[a.car].push_back({a.ts, -1, a.signals.empty() ? std::string() : a.signals.front()});
        continue;
      }
      if (auto it = r.alerts.find(a.car); it != r.alerts.end())
        for (auto& x : it->second)
          if (x.cleared < 0) x.cleared = a.ts;
    }
  }
  r.unfamiliar = monitor.unfamiliar_events();
  return r;
}

/// Summary of one side; `mine` alerted on a car the other did not: the other missed it. The trial ends at
/// `end` (its last event).
ShadowSummary side(const Replay& mine, const Replay& other, double car_hours, int64_t end,
                   int64_t sustained_ms) {
  ShadowSummary s;
  s.events = mine.scored;
  s.unfamiliar_events = mine.unfamiliar;
  s.car_hours = mine.scored > 0 ? car_hours : 0;
  for (const auto& [car, alerts] : mine.alerts) {
    s.alerts += static_cast<int64_t>(alerts.size());
    if (other.alerts.contains(car)) continue;
    for (const auto& x : alerts) count_disputed(s, x.ts, x.cleared, end, sustained_ms, x.signal);
  }
  return s;
}

void write_side(codec::JsonWriter& w, const char* name, const std::string& version, const ShadowSummary& s) {
  w.key(name).begin_object();
  w.key("version").string(version).key("events").integer(s.events).key("alerts").integer(s.alerts);
  w.key("alerts_other_missed").integer(s.alerts_other_missed);
  w.key("other_missed_cleared").integer(s.other_missed_cleared);
  w.key("other_missed_sustained").integer(s.other_missed_sustained);
  w.key("estimated_false_alerts").integer(s.estimated_false_alerts());
  w.key("estimated_false_per_1000_car_hours").number(s.estimated_false_per_1000_car_hours());
  w.key("unfamiliar_events")
      .integer(s.unfamiliar_events)
      .key("unfamiliar_share")
      .number(s.unfamiliar_share());
  w.key("car_hours").number(s.car_hours);
  w.end_object();
}

}  // namespace

void AlertStates::follow(const MonitorOutput& out, std::vector<uint8_t>& states) {
  // The batch's alert changes by car and event time; the last one of an event wins (raised after cleared).
  std::map<std::pair<std::string_view, int64_t>, bool> change;
  for (const auto& a : out.alerts)
    if (a.kind == kAlertAnomaly) change[{a.car, a.ts}] = a.raised;
  for (const auto& s : out.scores) {
    if (!change.empty()) {
      if (auto it = change.find({s.car, s.ts}); it != change.end()) {
        if (it->second)
          _open.insert(s.car);
        else
          _open.erase(s.car);
        change.erase(it);
      }
    }
    states.push_back(_open.contains(s.car) ? 1 : 0);
  }
  for (const auto& [key, raised] : change) {  // an alert of no scored event: its state from now on
    if (raised)
      _open.emplace(key.first);
    else
      _open.erase(std::string(key.first));
  }
}

TrialResult run_trial(const std::shared_ptr<const Model>& active,
                      const std::shared_ptr<const Model>& candidate,
                      const std::vector<core::Telemetry>& events, const MonitorOptions& options,
                      const std::shared_ptr<const FeatureSpace>& space, int64_t sustained_ms) {
  const Replay a = replay(active, events, options, space);
  const Replay c = replay(candidate, events, options, space);
  TrialResult r;
  if (active) r.active_version = active->meta.version;
  if (candidate) r.candidate_version = candidate->meta.version;
  // Over the cars not both alerted on: on a failure both found, when each raises and clears is timing.
  const std::size_t n = std::min({a.in_alert.size(), c.in_alert.size(), events.size()});
  std::size_t same = 0, compared = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (a.alerts.contains(events[i].car) && c.alerts.contains(events[i].car)) continue;
    ++compared;
    same += a.in_alert[i] == c.in_alert[i] ? 1 : 0;
  }
  r.input.agreement = !active || n == 0 ? 0
                      : compared > 0    ? static_cast<double>(same) / static_cast<double>(compared)
                                        : 1;
  std::map<std::string, std::pair<int64_t, int64_t>> span;
  for (const auto& e : events) {
    auto [it, fresh] = span.emplace(e.car, std::pair{e.ts, e.ts});
    it->second.first = std::min(it->second.first, e.ts);
    it->second.second = std::max(it->second.second, e.ts);
  }
  r.cars = static_cast<int64_t>(span.size());
  double car_hours = 0;
  for (const auto& [car, s] : span) car_hours += static_cast<double>(s.second - s.first) / 3.6e6;
  if (!events.empty()) {
    auto [lo, hi] = std::minmax_element(events.begin(), events.end(),
                                        [](const auto& x, const auto& y) { return x.ts < y.ts; });
    r.from_ts = lo->ts;
    r.to_ts = hi->ts;
  }
  r.input.active = side(a, c, car_hours, r.to_ts, sustained_ms);
  r.input.candidate = side(c, a, car_hours, r.to_ts, sustained_ms);
  return r;
}

std::string TrialResult::to_json() const {
  std::string out;
  codec::JsonWriter w(out);
  w.begin_object();
  write_side(w, "active", active_version, input.active);
  write_side(w, "candidate", candidate_version, input.candidate);
  w.key("agreement").number(input.agreement).key("cars").integer(cars);
  w.key("from_ts").integer(from_ts).key("to_ts").integer(to_ts);
  w.end_object();
  return out;
}

}  // namespace fleettwin::ml
