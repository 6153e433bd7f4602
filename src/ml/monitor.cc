#include "ml/monitor.h"

namespace fleettwin::ml {

std::string alert_id(const std::string& car, const std::string& kind, int64_t raised_ts) {
  return car + ":" + kind + ":" + std::to_string(raised_ts);
}

Monitor::Monitor(MonitorOptions options) : _options(options) { _fleet.grace_ms = options.firmware_grace_ms; }

void Monitor::set_model(std::shared_ptr<const Model> model) {
  _active = model ? std::make_unique<Scorer>(std::move(model)) : nullptr;
}

void Monitor::set_shadow(std::shared_ptr<const Model> model) {
  _shadow = model ? std::make_unique<Scorer>(std::move(model)) : nullptr;
}

void Monitor::score_with(Scorer& scorer, bool shadow, const std::vector<core::Telemetry>& events,
                         std::vector<codec::AnomalyScore>& out) {
  const std::size_t n = events.size(), d = scorer.inputs();
  _dev.resize(n * d);
  scorer.deviations(_features.data(), n, _dev.data());
  const auto& meta = scorer.model().meta;
  const double smoothing = meta.architecture.smoothing;
  out.reserve(out.size() + n);
  std::array<Contribution, 3> top{};
  for (std::size_t i = 0; i < n; ++i) {
    Car& car = *_batch_cars[i];
    auto& avg = shadow ? car.shadow_errors : car.active_errors;
    codec::AnomalyScore s;
    s.score = scorer.score_of(avg.update(_dev.data() + i * d, d, smoothing), &top);
    s.car = events[i].car;
    s.ts = events[i].ts;
    s.seq = events[i].seq;
    s.threshold = meta.threshold;
    s.model_version = meta.version;
    s.top_signals.reserve(3);
    for (const auto& c : top) s.top_signals.push_back({std::string(feature_name(c.feature)), c.deviation});
    out.push_back(std::move(s));
  }
}

void Monitor::process(const std::vector<core::Telemetry>& events, MonitorOutput& out) {
  const std::size_t n = events.size();
  _features.resize(n * kFeatureCount);
  _batch_cars.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    Car& car = _cars[events[i].car];
    _batch_cars[i] = &car;
    extract_features(events[i], car.features, _features.data() + i * kFeatureCount);
  }
  const std::size_t first_score = out.scores.size();
  if (_shadow) score_with(*_shadow, true, events, out.shadow_scores);
  if (_active) score_with(*_active, false, events, out.scores);

  for (std::size_t i = 0; i < n; ++i) {
    const auto& t = events[i];
    Car& car = *_batch_cars[i];
    // The alert's signal list is built only on a transition: copying names for every event cost more than
    // the rest of the hysteresis.
    if (_active) {
      const auto& s = out.scores[first_score + i];
      const auto tr = car.anomaly.update(s.score > s.threshold, _options.rule);
      if (tr != Transition::kNone) {
        std::vector<std::string> signals;
        for (const auto& d : s.top_signals) signals.push_back(d.signal);
        emit(car.anomaly, tr, t, kAlertAnomaly, s.score, s.threshold, std::move(signals), s.model_version,
             out);
      }
    }
    const auto version = static_cast<int64_t>(t.values[core::kControlUnitFirmware]);
    const bool outdated = car.firmware_rule.update(version, t.ts, _fleet);
    // The rule is exact, so one event raises and one clears it.
    const auto tr = car.firmware.update(outdated, HysteresisRule{1, 1, 1});
    if (tr != Transition::kNone)
      emit(car.firmware, tr, t, kAlertOutdatedFirmware, static_cast<double>(version),
           static_cast<double>(_fleet.current),
           {std::string(core::kSignals[core::kControlUnitFirmware].name)}, "rule", out);
  }
}

void Monitor::emit(AlertTracker& tracker, Transition tr, const core::Telemetry& t, const char* kind,
                   double score, double threshold, std::vector<std::string> signals, const std::string& model,
                   MonitorOutput& out) {
  if (tr == Transition::kRaised) tracker.raised_ts = t.ts;
  core::Alert a;
  a.id = alert_id(t.car, kind, tracker.raised_ts);
  a.car = t.car;
  a.kind = kind;
  a.raised = tr == Transition::kRaised;
  a.ts = t.ts;
  a.score = score;
  a.threshold = threshold;
  a.signals = std::move(signals);
  a.model_version = model;
  out.alerts.push_back(std::move(a));
}

}  // namespace fleettwin::ml
