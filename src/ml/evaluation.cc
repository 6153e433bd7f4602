#include "ml/evaluation.h"

#include <algorithm>
#include <map>

#include "codec/json_writer.h"
#include "ml/scaler.h"

namespace fleettwin::ml {

std::vector<sim::FailureMode> learned_modes() {
  std::vector<sim::FailureMode> out;
  for (auto m : sim::kFailureModes)
    if (m != sim::FailureMode::kOutdatedFirmware) out.push_back(m);
  return out;
}

namespace {

/// The reading of the simulator's signal `cardata_name` under `catalog` (absent when the catalog or the
/// message lacks it).
double reading(const core::Telemetry& t, const catalog::Catalog& catalog, std::string_view cardata_name) {
  const auto i = catalog.find(cardata_name);
  return i && *i < t.values.size() ? t.values[*i] : core::kAbsent;
}

}  // namespace

bool could_show(sim::FailureMode mode, const core::Telemetry& t, const catalog::Catalog& catalog) {
  using sim::FailureMode;
  // An absent reading compares false: a message without it cannot show the failure.
  switch (mode) {
    case FailureMode::kDriveShaftDegradation:
      return reading(t, catalog, core::kSignals[core::kSpeed].name) > 0;
    case FailureMode::kCoolantOverheating:
      return reading(t, catalog, core::kSignals[core::kIntakeAirFlowSpeed].name) > 0;
    default:
      return true;
  }
}

std::vector<int64_t> shown_failures(const std::vector<sim::GroundTruth>& truth,
                                    const std::vector<core::Telemetry>& events, int64_t window_ms,
                                    const catalog::Catalog& catalog) {
  std::map<std::string, std::vector<std::size_t>> by_car;
  for (std::size_t i = 0; i < truth.size(); ++i) by_car[truth[i].car].push_back(i);
  std::vector<int64_t> first(truth.size(), -1);
  for (const auto& e : events) {
    const auto it = by_car.find(e.car);
    if (it == by_car.end()) continue;
    for (const std::size_t i : it->second) {
      const auto& g = truth[i];
      if (e.ts >= g.onset_ts && e.ts - g.onset_ts <= window_ms && (first[i] < 0 || e.ts < first[i]) &&
          could_show(g.mode, e, catalog))
        first[i] = e.ts;
    }
  }
  return first;
}

namespace {

void delays(std::vector<float> d, double& median, double& p90) {
  median = d.empty() ? 0 : quantile(d, 0.5);
  p90 = d.empty() ? 0 : quantile(d, 0.9);
}

}  // namespace

EvalReport evaluate(const std::vector<core::Alert>& alerts, const std::string& kind,
                    const std::vector<sim::GroundTruth>& truth, const std::vector<sim::FailureMode>& modes,
                    double car_hours, const EvalOptions& options) {
  std::map<std::string, std::vector<const sim::GroundTruth*>> by_car;
  for (const auto& g : truth)
    if (std::find(modes.begin(), modes.end(), g.mode) != modes.end()) by_car[g.car].push_back(&g);
  for (auto& [car, v] : by_car)
    std::sort(v.begin(), v.end(), [](auto* a, auto* b) { return a->onset_ts < b->onset_ts; });

  EvalReport r;
  std::map<const sim::GroundTruth*, int64_t> first_alert;  // failure -> ts of its first alert in the window
  std::map<sim::FailureMode, int64_t> true_per_mode;
  for (const auto& a : alerts) {
    if (!a.raised || a.kind != kind) continue;
    ++r.alerts;
    const sim::GroundTruth* match = nullptr;
    if (auto it = by_car.find(a.car); it != by_car.end())
      for (auto* g : it->second)  // the latest failure that began before the alert explains it
        if (g->onset_ts <= a.ts && a.ts - g->onset_ts <= options.window_ms) match = g;
    if (!match) {
      // A failure older than the window is still going on (simulated failures never heal): the alert is
      // late or a repeat, not a false alarm, and it detects nothing.
      bool ongoing = false;
      if (auto it = by_car.find(a.car); it != by_car.end())
        for (auto* g : it->second) ongoing = ongoing || g->onset_ts <= a.ts;
      ++(ongoing ? r.late_alerts : r.false_alerts);
      continue;
    }
    ++r.true_alerts;
    ++true_per_mode[match->mode];
    auto [it, fresh] = first_alert.emplace(match, a.ts);
    if (!fresh) it->second = std::min(it->second, a.ts);
  }

  std::vector<float> all_delays, shown_delays;
  for (auto mode : modes) {
    ModeReport m;
    m.mode = std::string(sim::to_string(mode));
    m.true_alerts = true_per_mode[mode];
    std::vector<float> d;
    for (std::size_t i = 0; i < truth.size(); ++i) {
      const auto& g = truth[i];
      if (g.mode != mode || g.onset_ts < options.from_ts || g.onset_ts > options.to_ts) continue;
      ++m.failures;
      const int64_t shown_from = i < options.shown_from.size() ? options.shown_from[i] : -1;
      m.failures_shown += shown_from >= 0;
      if (auto it = first_alert.find(&g); it != first_alert.end()) {
        ++m.detected;
        d.push_back(static_cast<float>(it->second - g.onset_ts) / 1000.0f);
        if (shown_from >= 0) {
          ++r.detected_shown;
          // An alert before the first message that could show the failure (another of its signals) counts 0.
          shown_delays.push_back(static_cast<float>(std::max<int64_t>(0, it->second - shown_from)) / 1000.0f);
        }
      }
    }
    m.recall = m.failures ? static_cast<double>(m.detected) / static_cast<double>(m.failures) : 0;
    all_delays.insert(all_delays.end(), d.begin(), d.end());
    delays(d, m.median_delay_s, m.p90_delay_s);
    r.failures += m.failures;
    r.failures_shown += m.failures_shown;
    r.detected += m.detected;
    r.per_mode.push_back(std::move(m));
  }
  delays(all_delays, r.median_delay_s, r.p90_delay_s);
  const int64_t judged = r.true_alerts + r.false_alerts;
  r.precision = judged ? static_cast<double>(r.true_alerts) / static_cast<double>(judged) : 0;
  r.recall = r.failures ? static_cast<double>(r.detected) / static_cast<double>(r.failures) : 0;
  auto f1 = [](double p, double rc) { return p + rc > 0 ? 2 * p * rc / (p + rc) : 0; };
  r.f1 = f1(r.precision, r.recall);
  r.has_shown = !options.shown_from.empty();
  if (r.has_shown) {
    // Precision is the same: which alerts are true does not depend on what the cars could show.
    r.recall_shown =
        r.failures_shown ? static_cast<double>(r.detected_shown) / static_cast<double>(r.failures_shown) : 0;
    r.f1_shown = f1(r.precision, r.recall_shown);
    delays(shown_delays, r.median_delay_shown_s, r.p90_delay_shown_s);
  }
  r.car_hours = car_hours;
  r.false_alerts_per_1000_car_hours =
      car_hours > 0 ? 1000.0 * static_cast<double>(r.false_alerts) / car_hours : 0;
  return r;
}

std::string EvalReport::to_json() const {
  std::string out;
  codec::JsonWriter w(out);
  w.begin_object();
  w.key("precision").number(precision).key("recall").number(recall).key("f1").number(f1);
  w.key("median_delay_s").number(median_delay_s).key("p90_delay_s").number(p90_delay_s);
  w.key("false_alerts_per_1000_car_hours").number(false_alerts_per_1000_car_hours);
  w.key("alerts")
      .integer(alerts)
      .key("true_alerts")
      .integer(true_alerts)
      .key("false_alerts")
      .integer(false_alerts);
  w.key("late_alerts").integer(late_alerts).key("unfamiliar_events").integer(unfamiliar_events);
  w.key("failures").integer(failures).key("detected").integer(detected).key("car_hours").number(car_hours);
  if (has_shown) {
    w.key("shown").begin_object();
    w.key("failures").integer(failures_shown).key("detected").integer(detected_shown);
    w.key("recall").number(recall_shown).key("f1").number(f1_shown);
    w.key("median_delay_s").number(median_delay_shown_s).key("p90_delay_s").number(p90_delay_shown_s);
    w.end_object();
  }
  w.key("per_mode").begin_object();
  for (const auto& m : per_mode) {
    w.key(m.mode).begin_object();
    w.key("failures").integer(m.failures).key("detected").integer(m.detected).key("recall").number(m.recall);
    w.key("true_alerts").integer(m.true_alerts);
    if (has_shown) w.key("failures_shown").integer(m.failures_shown);
    w.key("median_delay_s").number(m.median_delay_s).key("p90_delay_s").number(m.p90_delay_s).end_object();
  }
  w.end_object().end_object();
  return out;
}

}  // namespace fleettwin::ml
