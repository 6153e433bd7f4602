#include "sim/car.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace fleettwin::sim {

namespace {

constexpr double kPi = std::numbers::pi;
constexpr double kTwoPi = 2 * std::numbers::pi;
constexpr double kMetresPerDegLat = 111'320.0;

// Battery: a plug-in hybrid's ~60 kWh traction pack, charged when parked at a plug (60% of stops). Below
// kAssistSoc the hybrid drives on its engine alone and the engine recharges the pack, which keeps the state
// of charge bounded without the trip logic ever looking at it (so a degrading battery never changes where
// the car drives).
constexpr double kPackAh = 150.0;
constexpr double kAssistSoc = 20.0;
constexpr double kPackResistance = 0.08;  // ohm

// Failure signatures at full severity.
constexpr double kTyreLossPsi = 17.0;
constexpr double kShockGain = 3.0;        // amplitude x (1 + 3) on the failed corner
constexpr double kShaftMvPerMs = 100.0;   // extra vibration per m/s of speed
constexpr double kOverheatC = 40.0;       // extra coolant target while the engine runs
constexpr double kCellSagV = 30.0;        // open-circuit voltage loss
constexpr double kCellDrainFactor = 2.0;  // discharge x (1 + 2)
constexpr int kFirmwareRollback = 3;      // versions behind the frozen one once fully developed

std::size_t idx(FailureMode m) { return static_cast<std::size_t>(m); }

double wrap_angle(double a) {
  while (a > kPi) a -= kTwoPi;
  while (a < -kPi) a += kTwoPi;
  return a;
}

double clampd(double v, double lo, double hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Exponential draw with the given mean; u in [0,1) so 1-u is never 0.
int64_t exponential_ms(Rng& rng, double mean_ms) {
  if (!std::isfinite(mean_ms)) return Car::kNever;
  const double v = -std::log(1.0 - rng.uniform()) * mean_ms;
  return v >= 9.0e18 ? Car::kNever : static_cast<int64_t>(v) + 1;  // +1: strictly after the previous
}

int64_t minutes(double m) { return static_cast<int64_t>(m * 60'000.0); }

}  // namespace

bool BoundingBox::valid() const {
  return std::isfinite(lat_min) && std::isfinite(lat_max) && std::isfinite(lon_min) &&
         std::isfinite(lon_max) && lat_min < lat_max && lon_min < lon_max && lat_min >= -85 &&
         lat_max <= 85 && lon_min >= -180 && lon_max <= 180;
}

CarConstants::CarConstants(int64_t interval, int64_t ramp, double failure_rate_per_hour,
                           int64_t firmware_release, const BoundingBox& b)
    : interval_ms(interval),
      ramp_ms(ramp),
      firmware_release_ms(firmware_release),
      dt_s(static_cast<double>(interval) / 1000.0),
      dt_h(static_cast<double>(interval) / 3'600'000.0),
      inv_ramp_ms(ramp > 0 ? 1.0 / static_cast<double>(ramp) : 0.0),
      mean_failure_gap_ms(failure_rate_per_hour > 0 ? 3'600'000.0 / failure_rate_per_hour
                                                    : std::numeric_limits<double>::infinity()),
      box(b) {
  const double mlat = 0.1 * (b.lat_max - b.lat_min), mlon = 0.1 * (b.lon_max - b.lon_min);
  inner = {b.lat_min + mlat, b.lat_max - mlat, b.lon_min + mlon, b.lon_max - mlon};
  m_per_deg_lat = kMetresPerDegLat;
  m_per_deg_lon = kMetresPerDegLat * std::cos(b.centre_lat() * kPi / 180.0);
  max_turn_rad = std::min(kPi / 2, 0.12 * dt_s);  // ~7 deg/s: a car rounding a corner
  speed_decay = std::exp(-dt_s / 20.0);
  coolant_warm_decay = std::exp(-dt_s / 300.0);
  coolant_cool_decay = std::exp(-dt_s / 2400.0);
  tyre_warm_decay = std::exp(-dt_s / 900.0);
  tyre_cool_decay = std::exp(-dt_s / 1800.0);
}

Car::Car(uint64_t fleet_seed, std::size_t index, const CarConstants& c, std::vector<PlannedFailure> planned)
    : _rng(car_seed(fleet_seed, index, 0)),
      _failure_rng(car_seed(fleet_seed, index, 1)),
      _planned(std::move(planned)) {
  _onset.fill(kNever);
  std::stable_sort(_planned.begin(), _planned.end(),
                   [](const PlannedFailure& a, const PlannedFailure& b) { return a.after_ms < b.after_ms; });
  const int64_t first = exponential_ms(_failure_rng, c.mean_failure_gap_ms);
  _next_random_onset = first == kNever ? kNever : first - 1;

  // Car-specific constants.
  _ambient = _rng.uniform(2.0, 24.0);
  for (auto& p : _tyre_nominal) p = _rng.uniform(31.5, 34.0);
  _firmware_delay_ms = static_cast<int64_t>(_rng.uniform() * 3'600'000.0);

  // Start mid-life so the fleet looks alive from its first message.
  _lat = _rng.uniform(c.inner.lat_min, c.inner.lat_max);
  _lon = _rng.uniform(c.inner.lon_min, c.inner.lon_max);
  _heading = _rng.uniform(-kPi, kPi);
  _target_heading = _heading;
  _soc = _rng.uniform(35.0, 95.0);
  _plugged = _rng.chance(0.6);
  const double u = _rng.uniform();
  if (u < 0.45) {
    _state = TripState::kParked;
    _state_left_ms = minutes(_rng.uniform(0.5, 50.0));
    _coolant = _ambient + _rng.uniform(0.0, 50.0);
    _tyre_warm = _rng.uniform(0.0, 0.3);
  } else {
    _trip_left_ms = minutes(_rng.uniform(1.0, 40.0));
    start_segment();
    if (u < 0.9) {
      _speed = _target_speed * _rng.uniform(0.7, 1.0);
      _throttle = clampd(0.06 + 0.011 * _speed, 0, 1);
    } else {
      _state = TripState::kIdling;
      _state_left_ms = static_cast<int64_t>(_rng.uniform(15'000, 90'000));
    }
    _coolant = _rng.uniform(70.0, 92.0);
    _tyre_warm = _rng.uniform(0.3, 1.0);
  }
  update_current(_rng.noise());
}

void Car::start_segment() {
  // A stretch of road between two stops, on a city street, an arterial road or the motorway.
  _state = TripState::kDriving;
  _state_left_ms =
      std::max<int64_t>(30'000, static_cast<int64_t>(-std::log(1.0 - _rng.uniform()) * 180'000.0));
  const double r = _rng.uniform();
  _target_speed =
      r < 0.55 ? _rng.uniform(8.0, 13.0) : (r < 0.85 ? _rng.uniform(13.0, 19.0) : _rng.uniform(25.0, 34.0));
}

void Car::update_current(double n) {
  // Positive: the pack discharges. The branch on the state of charge uses an already-drawn noise value so
  // the generator's sequence never depends on the (failure-dependent) state of charge.
  const bool assist = _soc > kAssistSoc;
  switch (_state) {
    case TripState::kDriving:
      _current = assist ? 3.0 + 45.0 * _throttle + 0.6 * _speed + 2.0 * n : -12.0 + 0.5 * n;
      break;
    case TripState::kIdling:
      _current = assist ? 6.0 + 0.5 * n : -8.0 + 0.5 * n;
      break;
    case TripState::kParked:
      _current = (_plugged && _soc < 95.0) ? -25.0 + 0.3 * n : 0.4 + 0.05 * n;
      break;
  }
}

int Car::healthy_firmware(const CarConstants& c, int64_t local_ms) const {
  // The fleet releases a version every firmware_release_ms; each car installs it after its own delay.
  if (c.firmware_release_ms <= 0 || local_ms < _firmware_delay_ms) return kBaseFirmware;
  return kBaseFirmware +
         static_cast<int>(std::min<int64_t>((local_ms - _firmware_delay_ms) / c.firmware_release_ms, 90'000));
}

void Car::activate(const CarConstants& c, FailureMode mode, int64_t onset,
                   std::vector<FailureOnset>* onsets) {
  if (_onset[idx(mode)] != kNever) return;  // a mode never heals, so it cannot begin twice
  _onset[idx(mode)] = onset;
  if (mode == FailureMode::kTyrePressureLoss) _tyre_wheel = static_cast<uint8_t>(_failure_rng.below(4));
  if (mode == FailureMode::kShockAbsorberFailure) _shock_corner = static_cast<uint8_t>(_failure_rng.below(4));
  if (mode == FailureMode::kOutdatedFirmware) _frozen_firmware = healthy_firmware(c, onset);
  if (onsets) onsets->push_back({mode, onset});
}

void Car::activate_failures(const CarConstants& c, int64_t local_ms, std::vector<FailureOnset>* onsets) {
  // Merge the random (Poisson) process and the planned list in time order.
  for (;;) {
    const int64_t planned_at = _next_planned < _planned.size() ? _planned[_next_planned].after_ms : kNever;
    const int64_t t = std::min(_next_random_onset, planned_at);
    if (t > local_ms) return;
    if (_next_random_onset <= planned_at) {
      std::array<FailureMode, kFailureModeCount> free{};
      std::size_t n = 0;
      for (FailureMode m : kFailureModes)
        if (_onset[idx(m)] == kNever) free[n++] = m;
      if (n == 0) {
        _next_random_onset = kNever;  // every mode is active: nothing left to fail
        continue;
      }
      activate(c, free[_failure_rng.below(n)], _next_random_onset, onsets);
      const int64_t gap = exponential_ms(_failure_rng, c.mean_failure_gap_ms);
      _next_random_onset = gap >= kNever - _next_random_onset ? kNever : _next_random_onset + gap;
    } else {
      activate(c, _planned[_next_planned].mode, std::max<int64_t>(0, planned_at), onsets);
      ++_next_planned;
    }
  }
}

void Car::steer(const CarConstants& c, double dist_m) {
  // Outside the inner box, head back toward the centre: routes stay inside the area without bouncing.
  if (!c.inner.contains(_lat, _lon)) {
    const double dn = (c.box.centre_lat() - _lat) * c.m_per_deg_lat;
    const double de = (c.box.centre_lon() - _lon) * c.m_per_deg_lon;
    _target_heading = std::atan2(de, dn) + 0.3 * _rng.noise();
  }
  const double diff = wrap_angle(_target_heading - _heading);
  const double turn = clampd(diff, -c.max_turn_rad, c.max_turn_rad) + 0.01 * _rng.noise();
  const double mid = _heading + 0.5 * turn;
  _heading = wrap_angle(_heading + turn);
  _lat += dist_m * std::cos(mid) / c.m_per_deg_lat;
  _lon += dist_m * std::sin(mid) / c.m_per_deg_lon;
  _lat = clampd(_lat, c.box.lat_min, c.box.lat_max);
  _lon = clampd(_lon, c.box.lon_min, c.box.lon_max);
}

void Car::advance(const CarConstants& c, const std::array<double, kFailureModeCount>& sev) {
  const double prev_speed = _speed;

  // Trip state machine.
  _state_left_ms -= c.interval_ms;
  if (_state != TripState::kParked) _trip_left_ms -= c.interval_ms;
  switch (_state) {
    case TripState::kParked:
      if (_state_left_ms <= 0) {
        _trip_left_ms = minutes(_rng.uniform(5.0, 45.0));
        start_segment();
      }
      break;
    case TripState::kDriving:
      if (_trip_left_ms <= 0) {
        _state = TripState::kParked;
        _state_left_ms = minutes(1.0) + static_cast<int64_t>(-std::log(1.0 - _rng.uniform()) * 1'500'000.0);
        _plugged = _rng.chance(0.6);
      } else if (_state_left_ms <= 0) {
        _state = TripState::kIdling;  // traffic light or junction; often turn there
        _state_left_ms = static_cast<int64_t>(_rng.uniform(15'000, 90'000));
        if (_rng.chance(0.6)) _target_heading = _heading + (_rng.chance(0.5) ? kPi / 2 : -kPi / 2);
      } else if (_rng.chance(0.05)) {
        _target_heading = _heading + _rng.uniform(-0.8, 0.8);  // a bend in the road
      }
      break;
    case TripState::kIdling:
      if (_trip_left_ms <= 0) {
        _state = TripState::kParked;
        _state_left_ms = minutes(1.0) + static_cast<int64_t>(-std::log(1.0 - _rng.uniform()) * 1'500'000.0);
        _plugged = _rng.chance(0.6);
      } else if (_state_left_ms <= 0) {
        start_segment();
      }
      break;
  }

  // Drivetrain: speed follows the segment's target with a lag; throttle reflects speed and acceleration.
  if (_state == TripState::kDriving) {
    _speed = _target_speed + (_speed - _target_speed) * c.speed_decay + 0.4 * _rng.noise();
    _speed = clampd(_speed, 0.0, _speed_limit_mps > 0 ? _speed_limit_mps : 45.0);
    const double accel = (_speed - prev_speed) / c.dt_s;
    _throttle = clampd(0.06 + 0.011 * _speed + 0.15 * accel + 0.03 * _rng.noise(), 0.0, 1.0);
  } else {
    _speed = 0;
    _throttle = 0;
  }

  // Position: displacement = mean speed over the interval.
  const double dist = 0.5 * (prev_speed + _speed) * c.dt_s;
  if (dist > 0) steer(c, dist);

  // Battery.
  update_current(_rng.noise());
  const double drain =
      _current > 0 ? 1.0 + kCellDrainFactor * sev[idx(FailureMode::kBatteryCellDegradation)] : 1.0;
  _soc = clampd(_soc - _current * drain * c.dt_h / kPackAh * 100.0, 0.0, 100.0);

  // Thermals: the thermostat holds the coolant near 90 °C while the engine runs; parked, it cools to ambient.
  const bool running = _state != TripState::kParked;
  if (running) {
    const double target = 88.0 + 6.0 * _throttle + kOverheatC * sev[idx(FailureMode::kCoolantOverheating)];
    _coolant = target + (_coolant - target) * c.coolant_warm_decay;
  } else {
    _coolant = _ambient + (_coolant - _ambient) * c.coolant_cool_decay;
  }
  if (running && _speed > 1.0)
    _tyre_warm = 1.0 + (_tyre_warm - 1.0) * c.tyre_warm_decay;
  else
    _tyre_warm *= c.tyre_cool_decay;
}

void Car::step(const CarConstants& c, core::Telemetry& out, std::vector<FailureOnset>* onsets) {
  ++_seq;
  const int64_t local = (_seq - 1) * c.interval_ms;
  activate_failures(c, local, onsets);
  std::array<double, kFailureModeCount> sev{};
  for (std::size_t m = 0; m < kFailureModeCount; ++m) {
    const int64_t on = _onset[m];
    if (on == kNever || local < on) continue;
    sev[m] = c.ramp_ms <= 0 ? 1.0 : std::min(1.0, static_cast<double>(local - on) * c.inv_ramp_ms);
  }
  if (_seq > 1) advance(c, sev);

  // Every draw below happens whatever the state or failures, so healthy and failing twins stay in step.
  const double n_cool = _rng.noise(), n_iat = _rng.noise(), n_maf = _rng.noise(), n_vib = _rng.noise();
  const double n_volt = _rng.noise(), n_amb = _rng.noise();
  const bool running = _state != TripState::kParked;
  const double ambient = _ambient + 0.3 * n_amb;
  auto& v = out.values;

  v[core::kCoolantTemp] = _coolant + 0.4 * n_cool;
  v[core::kIntakeAirTemp] = running
                                ? ambient + 4.0 + 0.12 * (_coolant - _ambient) - 0.12 * _speed + 0.4 * n_iat
                                : ambient + 0.08 * (_coolant - _ambient) + 0.3 * n_iat;
  v[core::kIntakeAirFlowSpeed] =
      running ? std::max(0.0, 3.0 + 160.0 * _throttle * (0.5 + _speed / 60.0) + 0.4 * n_maf) : 0.0;

  const double s_batt = sev[idx(FailureMode::kBatteryCellDegradation)];
  v[core::kBatteryPercentage] = _soc;
  v[core::kBatteryVoltage] = 340.0 + 0.6 * _soc - kCellSagV * s_batt -
                             _current * kPackResistance * (1.0 + 2.0 * s_batt) + 0.3 * n_volt;
  v[core::kCurrentDraw] = _current;
  v[core::kSpeed] = _speed;
  v[core::kThrottlePos] = _throttle;

  const double s_shaft = sev[idx(FailureMode::kDriveShaftDegradation)];
  v[core::kEngineVibrationAmplitude] =
      running ? std::max(0.0, 250.0 + 55.0 * _speed + 600.0 * _throttle + 30.0 * n_vib +
                                  kShaftMvPerMs * s_shaft * _speed)
              : 2.0 * std::abs(n_vib);

  const double s_tyre = sev[idx(FailureMode::kTyrePressureLoss)];
  for (std::size_t w = 0; w < 4; ++w) {
    double p = _tyre_nominal[w] + 1.5 * _tyre_warm + 0.25 * _rng.noise();
    if (w == _tyre_wheel) p -= kTyreLossPsi * s_tyre;
    v[core::kTirePressure11 + w] = std::max(0.0, std::round(p));
  }

  // Chassis: vertical acceleration (gravity removed); road roughness grows with speed, plus potholes that
  // hit the front axle and then the rear one.
  const double sigma =
      _state == TripState::kDriving ? 0.25 + 0.045 * _speed : (_state == TripState::kIdling ? 0.15 : 0.02);
  const uint64_t bump_bits = _rng.next_u64();
  const double bump_u = static_cast<double>(bump_bits >> 32) * 0x1.0p-32;
  const double bump_v = static_cast<double>(bump_bits & 0xffffffffULL) * 0x1.0p-32;
  double bump = 0, side = 0;
  if (_state == TripState::kDriving && bump_u < std::min(0.6, 0.015 * _speed)) {
    bump = (bump_v < 0.5 ? -1.0 : 1.0) * (1.5 + 9.0 * std::abs(bump_v - 0.5));   // 1.5 .. 6 m/s²
    side = bump_u * 0.5 / std::max(1e-9, std::min(0.6, 0.015 * _speed)) - 0.25;  // -0.25 .. 0.25
  }
  const double s_shock = sev[idx(FailureMode::kShockAbsorberFailure)];
  for (std::size_t k = 0; k < 4; ++k) {
    const double axle = k < 2 ? 1.0 : 0.8;
    const double lr = (k % 2 == 0) ? 1.0 + side : 1.0 - side;
    double a = sigma * _rng.noise() + bump * axle * lr;
    if (k == _shock_corner) a *= 1.0 + kShockGain * s_shock;
    v[core::kAccelerometer11 + k] = a;
  }

  int fw = std::max(healthy_firmware(c, local), _installed_firmware);
  if (_onset[idx(FailureMode::kOutdatedFirmware)] != kNever &&
      local >= _onset[idx(FailureMode::kOutdatedFirmware)])
    fw = sev[idx(FailureMode::kOutdatedFirmware)] >= 1.0 ? std::max(0, _frozen_firmware - kFirmwareRollback)
                                                         : _frozen_firmware;
  v[core::kControlUnitFirmware] = fw;

  // Safety net: the model stays well inside the catalog's ranges; this only guards the edges.
  for (std::size_t i = 0; i < core::kSignalCount; ++i)
    v[i] = clampd(v[i], core::kSignals[i].min, core::kSignals[i].max);
  out.lat = _lat;
  out.lon = _lon;
}

}  // namespace fleettwin::sim
