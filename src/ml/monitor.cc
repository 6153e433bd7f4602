#include "ml/monitor.h"

#include <algorithm>
#include <stdexcept>

namespace fleettwin::ml {

std::string alert_id(const std::string& car, const std::string& kind, int64_t raised_ts) {
  return car + ":" + kind + ":" + std::to_string(raised_ts);
}

Monitor::Monitor(MonitorOptions options, std::shared_ptr<const FeatureSpace> space)
    : _options(options), _space(std::move(space)), _firmware(_space->cardata(core::kControlUnitFirmware)) {
  _fleet.grace_ms = options.firmware_grace_ms;
}

std::unique_ptr<Scorer> Monitor::scorer_for(std::shared_ptr<const Model> model) const {
  if (!model) return nullptr;
  if (!(*model->meta.architecture.space == *_space))
    throw std::invalid_argument("monitor: model " + model->meta.version + " (catalog " + model->meta.catalog +
                                ") was decoded for other features than this monitor's catalog (" +
                                _space->catalog().label() + ")");
  return std::make_unique<Scorer>(std::move(model));
}

void Monitor::set_model(std::shared_ptr<const Model> model) {
  std::vector<uint8_t> parts;
  if (model)
    for (const auto f : model->meta.architecture.features)
      parts.push_back(static_cast<uint8_t>(_space->part(f)));
  _active = scorer_for(std::move(model));
  _input_component = std::move(parts);
}

uint64_t Monitor::flagged_parts(const core::Telemetry& t) const {
  uint64_t out = 0;
  for (const auto i : t.out_of_range)
    if (i < _space->signals()) out |= uint64_t{1} << static_cast<int>(_space->part(i));
  return out;
}

uint64_t Monitor::components(uint64_t inputs) const {
  uint64_t out = 0;
  for (std::size_t j = 0; inputs != 0 && j < _input_component.size(); ++j, inputs >>= 1)
    if (inputs & 1) out |= uint64_t{1} << _input_component[j];
  return out;
}

void Monitor::set_shadow(std::shared_ptr<const Model> model) { _shadow = scorer_for(std::move(model)); }

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
    const float* a = avg.update(_dev.data() + i * d, d, smoothing);
    s.score = scorer.score_of(a, &top);
    // Which inputs are anomalous and which are out of the training range matter only for an anomalous
    // event (the score is the largest input's): the rest skip it.
    if (!shadow && s.score > meta.threshold) {
      _inputs[i] = scorer.above(a, static_cast<float>(meta.threshold));
      if (_options.skip_unfamiliar) _out_of_range[i] = scorer.outside(_features.data() + i * _space->size());
    }
    s.car = events[i].car;
    s.ts = events[i].ts;
    s.seq = events[i].seq;
    s.threshold = meta.threshold;
    s.model_version = meta.version;
    s.top_signals.reserve(3);
    for (const auto& c : top) s.top_signals.push_back({_space->name(c.feature), c.deviation});
    out.push_back(std::move(s));
  }
}

void Monitor::process(const std::vector<core::Telemetry>& events, MonitorOutput& out) {
  const std::size_t n = events.size();
  const std::size_t width = _space->size();
  _features.resize(n * width);
  _batch_cars.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto [it, fresh] = _cars.try_emplace(events[i].car);
    Car& car = it->second;
    if (fresh) car.features = _space->new_state();
    _batch_cars[i] = &car;
    _space->extract(events[i], car.features, _features.data() + i * width);
  }
  const std::size_t first_score = out.scores.size();
  _inputs.assign(n, 0);
  _out_of_range.assign(n, 0);
  if (_shadow) score_with(*_shadow, true, events, out.shadow_scores);
  if (_active) score_with(*_active, false, events, out.scores);

  for (std::size_t i = 0; i < n; ++i) {
    const auto& t = events[i];
    Car& car = *_batch_cars[i];
    if (_active) anomaly_alerts(car, t, out.scores[first_score + i], _inputs[i], _out_of_range[i], out);
    // A message without the firmware version says nothing about it.
    if (!_firmware || *_firmware >= t.values.size() || core::absent(t.values[*_firmware]) ||
        t.flagged(*_firmware))
      continue;
    const auto version = static_cast<int64_t>(t.values[*_firmware]);
    const bool outdated = car.firmware_rule.update(version, t.ts, _fleet);
    // The rule is exact, so one event raises and one clears it.
    const auto tr = car.firmware.update(outdated, HysteresisRule{1, 1, 1});
    if (tr != Transition::kNone)
      emit(car.firmware, tr, t, kAlertOutdatedFirmware, static_cast<double>(version),
           static_cast<double>(_fleet.current), {_space->name(*_firmware)}, "rule", out);
  }
}

void Monitor::anomaly_alerts(Car& car, const core::Telemetry& t, const codec::AnomalyScore& s,
                             uint64_t inputs, uint64_t out_of_range, MonitorOutput& out) {
  // The alert's signal list is built only on a transition: copying names for every event cost more than
  // the rest of the hysteresis.
  auto signals = [&] {
    std::vector<std::string> names;
    names.reserve(s.top_signals.size() + t.out_of_range.size());
    for (const auto i : t.out_of_range)
      if (i < _space->signals()) names.push_back(_space->name(i));
    for (const auto& d : s.top_signals)
      if (std::find(names.begin(), names.end(), d.signal) == names.end()) names.push_back(d.signal);
    return names;
  };
  bool anomalous = s.score > s.threshold;
  uint64_t above = components(inputs);
  // Unfamiliar: the anomalous inputs all read values seen in training, yet another input does not, and it
  // is not of a part the car's open alert covers (an overheating engine stays out of range while its alert
  // is open; a second failure elsewhere must still alert). A failure that takes its own signals out of
  // range (a flat tyre, an overheating engine) is not unfamiliar. A predicted input (never shown to the
  // network, so never out of range itself) cannot take itself out of range: when one is anomalous, its own
  // part's signals out of range are its failure's, not conditions the model never saw (an overheating
  // engine shows on coolant_heading while the coolant climbs past the training range).
  const uint64_t covered = car.anomaly.active() ? car.covered : 0;
  const uint64_t own = _active ? components(inputs & _active->predicted()) : 0;
  const bool unfamiliar = inputs != 0 && (out_of_range & inputs) == 0 &&
                          (components(out_of_range & ~inputs) & ~covered & ~own) != 0;
  if (anomalous && unfamiliar) {
    ++_unfamiliar_events;
    anomalous = false;
    above = 0;
  }
  // A reading out of its plausible range is a symptom of its part (class comment), never unfamiliar.
  if (const uint64_t flagged = flagged_parts(t); flagged != 0) {
    anomalous = true;
    above |= flagged;
  }
  const auto tr = car.anomaly.update(anomalous, _options.rule);
  if (tr == Transition::kRaised) {
    emit(car.anomaly, tr, t, kAlertAnomaly, s.score, s.threshold, signals(), s.model_version, out);
    car.covered = above;
    car.last_raise_ts = t.ts;
    car.symptom = AlertTracker{};
    car.further.clear();
  } else if (tr == Transition::kCleared) {
    // One car, one state: its further alerts clear with the first.
    for (const int64_t raised : car.further)
      emit(raised, false, t, kAlertAnomaly, s.score, s.threshold, signals(), s.model_version, out);
    emit(car.anomaly, tr, t, kAlertAnomaly, s.score, s.threshold, signals(), s.model_version, out);
    car.further.clear();
  } else if (car.anomaly.active() && _options.new_symptom_settle_ms > 0) {
    if (t.ts - car.last_raise_ts <= _options.new_symptom_settle_ms) {
      car.covered |= above;  // the failure's signature is still spreading
    } else if (car.symptom.update((above & ~car.covered) != 0, _options.rule) == Transition::kRaised) {
      // The alert names the new part's signals among the top ones (the old part's may still be larger).
      const uint64_t fresh_parts = above & ~car.covered;
      std::vector<std::string> fresh;
      for (const auto& name : signals())
        if (const auto f = _space->index(name); f && (fresh_parts >> static_cast<int>(_space->part(*f)) & 1))
          fresh.push_back(name);
      if (fresh.empty()) fresh = signals();
      emit(t.ts, true, t, kAlertAnomaly, s.score, s.threshold, std::move(fresh), s.model_version, out);
      car.further.push_back(t.ts);
      car.covered |= above;
      car.last_raise_ts = t.ts;
      car.symptom = AlertTracker{};
    }
  }
}

void Monitor::emit(AlertTracker& tracker, Transition tr, const core::Telemetry& t, const char* kind,
                   double score, double threshold, std::vector<std::string> signals, const std::string& model,
                   MonitorOutput& out) {
  if (tr == Transition::kRaised) tracker.raised_ts = t.ts;
  emit(tracker.raised_ts, tr == Transition::kRaised, t, kind, score, threshold, std::move(signals), model,
       out);
}

void Monitor::emit(int64_t raised_ts, bool raised, const core::Telemetry& t, const char* kind, double score,
                   double threshold, std::vector<std::string> signals, const std::string& model,
                   MonitorOutput& out) {
  core::Alert a;
  a.id = alert_id(t.car, kind, raised_ts);
  a.car = t.car;
  a.kind = kind;
  a.raised = raised;
  a.ts = t.ts;
  a.score = score;
  a.threshold = threshold;
  a.signals = std::move(signals);
  a.model_version = model;
  out.alerts.push_back(std::move(a));
}

}  // namespace fleettwin::ml
