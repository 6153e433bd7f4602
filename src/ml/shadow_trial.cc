#include "ml/shadow_trial.h"

#include <algorithm>
#include <map>
#include <utility>

#include "codec/json_writer.h"

namespace fleettwin::ml {

namespace {

/// One model's replay: its alerts by car, whether each cleared, and its per-event verdicts.
struct Replay {
  std::map<std::string, int64_t> alerts;  // car -> anomaly alerts raised
  std::vector<uint8_t> anomalous;         // per event: score above its threshold
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
  r.anomalous.reserve(events.size());
  for (std::size_t i = 0; i < events.size(); i += kBatch) {
    batch.assign(events.begin() + static_cast<std::ptrdiff_t>(i),
                 events.begin() + static_cast<std::ptrdiff_t>(std::min(events.size(), i + kBatch)));
    out.clear();
    monitor.process(batch, out);
    for (const auto& s : out.scores) r.anomalous.push_back(s.score > s.threshold ? 1 : 0);
    r.scored += static_cast<int64_t>(out.scores.size());
    for (const auto& a : out.alerts) {
      if (a.kind == kAlertAnomaly && a.raised) ++r.alerts[a.car];
    }
  }
  r.unfamiliar = monitor.unfamiliar_events();
  return r;
}

/// Summary of one side; `mine` alerted on a car the other did not: the other missed it.
ShadowSummary side(const Replay& mine, const Replay& other, double car_hours) {
  ShadowSummary s;
  s.events = mine.scored;
  s.unfamiliar_events = mine.unfamiliar;
  s.car_hours = mine.scored > 0 ? car_hours : 0;
  for (const auto& [car, alerts] : mine.alerts) {
    s.alerts += alerts;
    if (!other.alerts.contains(car)) s.alerts_other_missed += alerts;
  }
  return s;
}

void write_side(codec::JsonWriter& w, const char* name, const std::string& version, const ShadowSummary& s) {
  w.key(name).begin_object();
  w.key("version").string(version).key("events").integer(s.events).key("alerts").integer(s.alerts);
  w.key("alerts_other_missed").integer(s.alerts_other_missed);
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

TrialResult run_trial(const std::shared_ptr<const Model>& active,
                      const std::shared_ptr<const Model>& candidate,
                      const std::vector<core::Telemetry>& events, const MonitorOptions& options,
                      const std::shared_ptr<const FeatureSpace>& space) {
  const Replay a = replay(active, events, options, space);
  const Replay c = replay(candidate, events, options, space);
  TrialResult r;
  if (active) r.active_version = active->meta.version;
  if (candidate) r.candidate_version = candidate->meta.version;
  const std::size_t n = std::min(a.anomalous.size(), c.anomalous.size());
  std::size_t same = 0;
  for (std::size_t i = 0; i < n; ++i) same += a.anomalous[i] == c.anomalous[i] ? 1 : 0;
  r.input.agreement = n > 0 ? static_cast<double>(same) / static_cast<double>(n) : 0;
  std::map<std::string, std::pair<int64_t, int64_t>> span;
  for (const auto& e : events) {
    auto [it, fresh] = span.emplace(e.car, std::pair{e.ts, e.ts});
    it->second.first = std::min(it->second.first, e.ts);
    it->second.second = std::max(it->second.second, e.ts);
  }
  r.cars = static_cast<int64_t>(span.size());
  double car_hours = 0;
  for (const auto& [car, s] : span) car_hours += static_cast<double>(s.second - s.first) / 3.6e6;
  r.input.active = side(a, c, car_hours);
  r.input.candidate = side(c, a, car_hours);
  if (!events.empty()) {
    auto [lo, hi] = std::minmax_element(events.begin(), events.end(),
                                        [](const auto& x, const auto& y) { return x.ts < y.ts; });
    r.from_ts = lo->ts;
    r.to_ts = hi->ts;
  }
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
