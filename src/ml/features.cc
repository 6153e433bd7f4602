#include "ml/features.h"

#include <algorithm>
#include <cmath>

namespace fleettwin::ml {

namespace {

constexpr std::array<std::string_view, kDerivedCount> kDerivedNames{
    "vibration_per_speed",   "tyre_pressure_spread", "tyre_pressure_min_gap", "coolant_over_intake",
    "accel_imbalance",       "accel_amplitude_1_1",  "accel_amplitude_1_2",   "accel_amplitude_2_1",
    "accel_amplitude_2_2",   "engine_warmth",        "engine_heat",           "coolant_heading",
    "accel_share_imbalance",
};

// Weight of the newest sample in the smoothed accelerometer amplitude: about the last 10 events (100 s at
// the default 10 s interval), short enough to follow a 2-minute failure ramp, long enough that one pothole
// does not look like a broken corner. Amplitude rather than energy for the same reason: a pothole is a
// few times the road's usual amplitude, but its square is dozens of times the usual energy.
constexpr double kEnergyAlpha = 0.1;
// Keeps log(max / others) finite for a parked car whose accelerometers read almost nothing.
constexpr double kEnergyFloor = 1e-3;
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

}  // namespace

std::string_view feature_name(std::size_t i) {
  if (i < core::kSignalCount) return core::kSignals[i].name;
  return kDerivedNames[i - core::kSignalCount];
}

bool may_be_undefined(std::size_t i) { return i < kFeatureCount && feature_name(i) == "coolant_heading"; }

Component feature_component(std::size_t i) {
  using C = Component;
  // Catalog signals in catalog order, then the derived features in kDerivedNames order.
  static constexpr std::array<C, kFeatureCount> kParts{
      C::kCooling,    C::kCooling,    C::kDrivetrain, C::kBattery, C::kBattery, C::kBattery,
      C::kDrivetrain, C::kDrivetrain, C::kDrivetrain, C::kTyres,   C::kTyres,   C::kTyres,
      C::kTyres,      C::kChassis,    C::kChassis,    C::kChassis, C::kChassis, C::kControlUnit,
      C::kDrivetrain, C::kTyres,      C::kTyres,      C::kCooling, C::kChassis, C::kChassis,
      C::kChassis,    C::kChassis,    C::kChassis,    C::kCooling, C::kCooling, C::kCooling,
      C::kChassis,
  };
  return i < kFeatureCount ? kParts[i] : C::kControlUnit;
}

std::size_t feature_index(std::string_view name) {
  for (std::size_t i = 0; i < kFeatureCount; ++i)
    if (feature_name(i) == name) return i;
  return kFeatureCount;
}

void extract_features(const core::Telemetry& t, CarFeatureState& state, float* out) {
  const std::size_t n = std::min(t.values.size(), state.last.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (!core::absent(t.values[i])) state.last[i] = t.values[i];
  }
  const auto& v = state.last;
  for (std::size_t i = 0; i < core::kSignalCount; ++i) out[i] = static_cast<float>(v[i]);
  float* d = out + core::kSignalCount;

  d[0] = static_cast<float>(v[core::kEngineVibrationAmplitude] / (std::max(0.0, v[core::kSpeed]) + 1.0));

  const double p0 = v[core::kTirePressure11], p1 = v[core::kTirePressure12], p2 = v[core::kTirePressure21],
               p3 = v[core::kTirePressure22];
  const double pmin = std::min({p0, p1, p2, p3}), pmax = std::max({p0, p1, p2, p3});
  d[1] = static_cast<float>(pmax - pmin);
  d[2] = static_cast<float>((p0 + p1 + p2 + p3 - pmin) / 3.0 - pmin);

  d[3] = static_cast<float>(v[core::kCoolantTemp] - v[core::kIntakeAirTemp]);

  double sum = 0, top = 0;
  for (std::size_t k = 0; k < 4; ++k) {
    const double a = v[core::kAccelerometer11 + k];
    auto& e = state.accel_energy[k];
    e = state.primed ? e + kEnergyAlpha * (std::abs(a) - e) : std::abs(a);
    sum += e;
    top = std::max(top, e);
  }
  d[4] = static_cast<float>(std::log((top + kEnergyFloor) / ((sum - top) / 3.0 + kEnergyFloor)));
  for (std::size_t k = 0; k < 4; ++k) d[5 + k] = static_cast<float>(state.accel_energy[k]);

  double total = 0, top_share = 0;
  for (std::size_t k = 0; k < 4; ++k) total += std::abs(v[core::kAccelerometer11 + k]);
  for (std::size_t k = 0; k < 4; ++k) {
    // A car at rest can read exactly 0 on every corner: no news, the shares stay where they were.
    const double share = total > 0 ? std::abs(v[core::kAccelerometer11 + k]) / total : state.accel_share[k];
    auto& s = state.accel_share[k];
    s += kEnergyAlpha * (share - s);
    top_share = std::max(top_share, s);
  }
  // The shares sum to 1, so the other three average (1 - top) / 3; the floor keeps one corner reading alone
  // for many events finite.
  d[12] = static_cast<float>(std::log(top_share / std::max((1.0 - top_share) / 3.0, 1e-6)));

  // Warmth follows wall time between events, whatever the send interval; the first event of a car starts
  // it at its current state.
  const double running = v[core::kIntakeAirFlowSpeed] > kRunningAirFlow ? 1.0 : 0.0;
  const double coolant = v[core::kCoolantTemp];
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

}  // namespace fleettwin::ml
