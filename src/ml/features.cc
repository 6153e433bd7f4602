#include "ml/features.h"

#include <algorithm>
#include <cmath>

namespace fleettwin::ml {

namespace {

constexpr std::array<std::string_view, kDerivedCount> kDerivedNames{
    "vibration_per_speed",   "tyre_pressure_spread",  "tyre_pressure_min_gap", "coolant_over_intake",
    "accel_imbalance",       "accel_amplitude_1_1",   "accel_amplitude_1_2",   "accel_amplitude_2_1",
    "accel_amplitude_2_2",   "engine_warmth",         "engine_heat",           "coolant_heading",
    "accel_share_imbalance", "accel_corner_evidence",
};

// Weight of the newest sample in the smoothed accelerometer amplitude: about the last 10 events (100 s at
// the default 10 s interval), short enough to follow a 2-minute failure ramp, long enough that one pothole
// does not look like a broken corner. Amplitude rather than energy for the same reason: a pothole is a
// few times the road's usual amplitude, but its square is dozens of times the usual energy.
constexpr double kEnergyAlpha = 0.1;
// Keeps log(max / others) finite for a parked car whose accelerometers read almost nothing.
constexpr double kEnergyFloor = 1e-3;
// accel_corner_evidence: the failure the evidence is weighed for, one corner moving this many times as much
// as the other three (a damper that has lost most of its damping lets the wheel's corner bounce several times
// as far on the same road), and the cap that bounds a loose corner's evidence, so that the corner reads
// healthy again within minutes of a repair and a car that failed long ago does not outweigh the healthy ones
// in a training window (the evidence of a loose corner grows by about one per event).
constexpr double kLooseCornerGain = 3.0;
constexpr double kEvidenceCap = 25.0;
// The feature is the evidence to this power. The calibration (equalize_extremes, calibrate_alert_rate) fits a
// Gumbel to the median and spread of an hour's 60-event block maxima, which for the evidence lie in the body
// of its distribution, lighter than its exponential tail: the fit set the level below what healthy corners
// reach in a day (2 to 4 false alerts in each 8-hour lifecycle run). Compressed this way, the fit to one hour
// lands on the most 16,000 healthy car-hours reach (docs/benchmarks.md, "the damper's evidence").
constexpr double kEvidencePower = 0.75;
// Engine warmth: time constant of an engine's temperature (minutes, not seconds), and the air flow above
// which the engine counts as running (a stopped engine draws none).
constexpr double kWarmthTauMs = 300'000;
constexpr double kHeatTauMs = 2'400'000;
constexpr double kRunningAirFlow = 0.5;
// Coolant heading: an engine's coolant approaches the temperature its cooling holds, T, exponentially with
// a time constant of minutes (tau). Its average over the last minute (tau_s) then lags it by a fixed share
// of the remaining distance, so T = coolant + (coolant - average) * (tau - tau_s) / tau_s: the temperature
// the coolant is heading for, seen minutes before the coolant gets there. Started afresh with the engine, the
// estimate's error decays with tau_s and is only ever too low after a cold start. A one-interval difference
// instead would multiply the sensor's noise by 30.
constexpr double kCoolantTauMs = 300'000;
constexpr double kCoolantAverageMs = 60'000;

using core::Signal;
constexpr std::array<Signal, 4> kTyres{core::kTirePressure11, core::kTirePressure12, core::kTirePressure21,
                                       core::kTirePressure22};
constexpr std::array<Signal, 4> kAccels{core::kAccelerometer11, core::kAccelerometer12,
                                        core::kAccelerometer21, core::kAccelerometer22};

// The cardata-v1 signals each derived feature is computed from (kDerivedNames order), and its part.
struct DerivedSpec {
  std::vector<Signal> inputs;
  catalog::Part part;
};

const std::array<DerivedSpec, kDerivedCount>& derived_specs() {
  using P = catalog::Part;
  const std::vector<Signal> tyres(kTyres.begin(), kTyres.end()), accels(kAccels.begin(), kAccels.end());
  static const std::array<DerivedSpec, kDerivedCount> kSpecs{{
      {{core::kEngineVibrationAmplitude, core::kSpeed}, P::kDrivetrain},
      {tyres, P::kTyres},
      {tyres, P::kTyres},
      {{core::kCoolantTemp, core::kIntakeAirTemp}, P::kCooling},
      {accels, P::kChassis},
      {accels, P::kChassis},
      {accels, P::kChassis},
      {accels, P::kChassis},
      {accels, P::kChassis},
      {{core::kIntakeAirFlowSpeed}, P::kCooling},
      {{core::kIntakeAirFlowSpeed}, P::kCooling},
      {{core::kIntakeAirFlowSpeed, core::kCoolantTemp}, P::kCooling},
      {accels, P::kChassis},
      {accels, P::kChassis},
  }};
  return kSpecs;
}

}  // namespace

std::string_view derived_name(std::size_t derived) { return kDerivedNames[derived]; }

FeatureSpace::FeatureSpace(std::shared_ptr<const catalog::Catalog> catalog) : _catalog(std::move(catalog)) {
  for (const auto& s : _catalog->signals()) {
    _names.push_back(s.name);
    _parts.push_back(s.part);
  }
  for (std::size_t s = 0; s < core::kSignalCount; ++s) _cardata[s] = _catalog->find(core::kSignals[s].name);
  const auto& specs = derived_specs();
  for (std::size_t d = 0; d < kDerivedCount; ++d) {
    const auto& in = specs[d].inputs;
    if (!std::all_of(in.begin(), in.end(), [&](Signal s) { return _cardata[s].has_value(); })) continue;
    if (kDerivedNames[d] == "coolant_heading") _coolant_heading = _names.size();
    _derived.emplace_back(d, _names.size());
    _names.emplace_back(kDerivedNames[d]);
    _parts.push_back(specs[d].part);
  }
}

const std::shared_ptr<const FeatureSpace>& FeatureSpace::builtin() {
  static const auto kSpace = std::make_shared<const FeatureSpace>(catalog::builtin());
  return kSpace;
}

std::optional<std::size_t> FeatureSpace::index(std::string_view name) const {
  for (std::size_t i = signals(); i < _names.size(); ++i)
    if (_names[i] == name) return i;
  return _catalog->find(name);
}

bool FeatureSpace::whole_steps(std::size_t feature) const {
  return feature < signals() && (*_catalog)[feature].type == core::SignalType::kInt;
}

CarFeatureState FeatureSpace::new_state() const {
  CarFeatureState s;
  s.last.assign(signals(), 0.0);
  return s;
}

namespace {

// The derived features of one event, all kDerivedCount of them (kDerivedNames order), from the car's last
// values; `at` reads a cardata signal (0 when the catalog lacks it: such a feature is then not in the
// space and its value is dropped).
// engine_warmth, engine_heat and coolant_heading (d[9..11]) from the event's air flow and coolant.
void engine_features(const core::Telemetry& t, CarFeatureState& state, double air_flow, double coolant,
                     std::array<float, kDerivedCount>& d) {
  // Warmth follows wall time between events, whatever the send interval; the first event of a car starts
  // it at its current state.
  const double running = air_flow > kRunningAirFlow ? 1.0 : 0.0;
  const bool was_running = state.running;
  state.running = running > 0;
  if (!state.primed) {
    state.engine_warmth = running;
    state.engine_heat = running;
  } else {
    // Events mostly come one send interval apart: the decay factors of the last gap are kept per thread.
    thread_local int64_t last_dt = -1;
    thread_local double warm_decay = 1, heat_decay = 1, coolant_decay = 1;
    const int64_t dt = std::max<int64_t>(0, t.ts - state.last_ts);
    if (dt != last_dt) {
      last_dt = dt;
      warm_decay = std::exp(-static_cast<double>(dt) / kWarmthTauMs);
      heat_decay = std::exp(-static_cast<double>(dt) / kHeatTauMs);
      coolant_decay = std::exp(-static_cast<double>(dt) / kCoolantAverageMs);
    }
    state.engine_warmth = running + (state.engine_warmth - running) * warm_decay;
    state.engine_heat = running + (state.engine_heat - running) * heat_decay;
    state.coolant_average = coolant + (state.coolant_average - coolant) * coolant_decay;
  }
  if (!was_running || !state.primed) {
    state.coolant_average = coolant;
    state.running_since = t.ts;
  }
  state.last_ts = t.ts;
  d[9] = static_cast<float>(state.engine_warmth);
  d[10] = static_cast<float>(state.engine_heat);
  // A stopped engine has no cooling to judge: undefined, not a temperature (see kUndefined).
  constexpr double kHeadingGain = (kCoolantTauMs - kCoolantAverageMs) / kCoolantAverageMs;
  // Undefined too for the first three averaging time constants after a start, while the estimate still
  // carries the cold engine (its error decays as exp(-t / tau_s)): how cold a start is depends on how long
  // the car stood, which a training window may not show in full.
  const bool settled =
      state.running && t.ts - state.running_since >= 3 * static_cast<int64_t>(kCoolantAverageMs);
  d[11] =
      settled ? static_cast<float>(coolant + (coolant - state.coolant_average) * kHeadingGain) : kUndefined;
  state.primed = true;
}

// accel_corner_evidence: for each corner, the log-likelihood ratio of "this corner moves g times as much as
// the other three" against "all four move alike", from the event's four vertical accelerations alone. With a
// road that shakes the corners as zero-mean Gaussians of one unknown common scale, the ratio (the scale
// integrated out, as it must be: the road, the speed and the state set it) depends only on the corner's share
// q of the event's energy: LLR = -log g - 2 log(1 - (1 - 1/g^2) q), between -log g (the corner still) and
// 3 log g (it alone moved). Summed per corner as a CUSUM (floored at 0, the sequential test that detects
// such a change soonest for a given rate of false alarms) and capped; returns the largest corner's. A healthy
// corner's evidence drifts down and sits at 0 with short excursions of a few units; the smoothed share it
// replaced lagged a failure by its 10-event average, and its thin tail made the Gumbel fit of the calibration
// put its level far above anything a healthy car read.
double corner_evidence(const std::array<double, 4>& accel, std::array<double, 4>& evidence) {
  double energy = 0;
  for (double a : accel) energy += a * a;
  double top = 0;
  constexpr double kLeak = 1.0 - 1.0 / (kLooseCornerGain * kLooseCornerGain);
  const double log_gain = std::log(kLooseCornerGain);
  for (std::size_t k = 0; k < 4; ++k) {
    // A car at rest can read exactly 0 on every corner: no news, the evidence stays where it was.
    if (energy > 0) {
      const double llr = -log_gain - 2.0 * std::log1p(-kLeak * accel[k] * accel[k] / energy);
      evidence[k] = std::clamp(evidence[k] + llr, 0.0, kEvidenceCap);
    }
    top = std::max(top, evidence[k]);
  }
  return top;
}

template <typename At>
void derive(const core::Telemetry& t, CarFeatureState& state, At at, std::array<float, kDerivedCount>& d) {
  d[0] = static_cast<float>(at(core::kEngineVibrationAmplitude) / (std::max(0.0, at(core::kSpeed)) + 1.0));

  const double p0 = at(kTyres[0]), p1 = at(kTyres[1]), p2 = at(kTyres[2]), p3 = at(kTyres[3]);
  const double pmin = std::min({p0, p1, p2, p3}), pmax = std::max({p0, p1, p2, p3});
  d[1] = static_cast<float>(pmax - pmin);
  d[2] = static_cast<float>((p0 + p1 + p2 + p3 - pmin) / 3.0 - pmin);

  d[3] = static_cast<float>(at(core::kCoolantTemp) - at(core::kIntakeAirTemp));

  std::array<double, 4> accel{};
  for (std::size_t k = 0; k < 4; ++k) accel[k] = at(kAccels[k]);
  double sum = 0, top = 0;
  for (std::size_t k = 0; k < 4; ++k) {
    auto& e = state.accel_energy[k];
    e = state.primed ? e + kEnergyAlpha * (std::abs(accel[k]) - e) : std::abs(accel[k]);
    sum += e;
    top = std::max(top, e);
  }
  d[4] = static_cast<float>(std::log((top + kEnergyFloor) / ((sum - top) / 3.0 + kEnergyFloor)));
  for (std::size_t k = 0; k < 4; ++k) d[5 + k] = static_cast<float>(state.accel_energy[k]);

  double total = 0, top_share = 0;
  for (std::size_t k = 0; k < 4; ++k) total += std::abs(accel[k]);
  for (std::size_t k = 0; k < 4; ++k) {
    // A car at rest can read exactly 0 on every corner: no news, the shares stay where they were.
    const double share = total > 0 ? std::abs(accel[k]) / total : state.accel_share[k];
    auto& s = state.accel_share[k];
    s += kEnergyAlpha * (share - s);
    top_share = std::max(top_share, s);
  }
  // The shares sum to 1, so the other three average (1 - top) / 3; the floor keeps one corner reading alone
  // for many events finite.
  d[12] = static_cast<float>(std::log(top_share / std::max((1.0 - top_share) / 3.0, 1e-6)));

  d[13] = static_cast<float>(std::pow(corner_evidence(accel, state.accel_evidence), kEvidencePower));

  engine_features(t, state, at(core::kIntakeAirFlowSpeed), at(core::kCoolantTemp), d);
}

}  // namespace

void FeatureSpace::extract(const core::Telemetry& t, CarFeatureState& state, float* out) const {
  if (state.last.size() != signals()) state.last.resize(signals(), 0.0);  // a state not from new_state()
  const std::size_t n = std::min(t.values.size(), state.last.size());
  // A flagged reading (outside its plausible range) keeps the car's last plausible value in the features:
  // the Monitor scores the flag itself as a symptom of the signal's part, and an implausible value would
  // otherwise be carried forward into every later event of the car.
  std::size_t next_flag = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (next_flag < t.out_of_range.size() && t.out_of_range[next_flag] == i) {
      ++next_flag;
      continue;
    }
    if (!core::absent(t.values[i])) state.last[i] = t.values[i];
  }
  const auto& v = state.last;
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = static_cast<float>(v[i]);
  std::array<float, kDerivedCount> d{};
  derive(
      t, state, [&](Signal s) { return _cardata[s] ? v[*_cardata[s]] : 0.0; }, d);
  for (const auto& [which, feature] : _derived) out[feature] = d[which];
}

}  // namespace fleettwin::ml
