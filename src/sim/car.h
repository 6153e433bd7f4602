#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/telemetry.h"
#include "sim/failure.h"
#include "sim/rng.h"

namespace fleettwin::sim {

/// Area the simulated cars drive in (degrees). Default: around Munich.
struct BoundingBox {
  double lat_min = 48.0;
  double lat_max = 48.3;
  double lon_min = 11.3;
  double lon_max = 11.8;

  double centre_lat() const { return 0.5 * (lat_min + lat_max); }
  double centre_lon() const { return 0.5 * (lon_min + lon_max); }
  bool contains(double lat, double lon) const {
    return lat >= lat_min && lat <= lat_max && lon >= lon_min && lon <= lon_max;
  }
  /// Non-empty and inside the valid lat/lon ranges (and away from the poles, where lon degrees vanish).
  bool valid() const;
};

/// A failure forced onto one car at a fixed time, for demos and tests; it comes on top of the random ones.
struct PlannedFailure {
  std::size_t car = 0;  ///< car index (0-based)
  FailureMode mode = FailureMode::kTyrePressureLoss;
  int64_t after_ms = 0;  ///< onset, ms after the car's first message
};

/// A failure that began in a car; the fleet turns it into GroundTruth.
struct FailureOnset {
  FailureMode mode;
  int64_t onset_local_ms;  ///< ms after the car's first message
};

/// Fleet-wide constants of the car model, derived once from the config so the per-message step needs no
/// exp(), log() or division. Immutable after construction; shared read-only by all cars.
struct CarConstants {
  CarConstants(int64_t interval_ms, int64_t ramp_ms, double failure_rate_per_hour,
               int64_t firmware_release_ms, const BoundingBox& box);

  int64_t interval_ms;
  int64_t ramp_ms;
  int64_t firmware_release_ms;  ///< 0: the fleet's firmware never moves on
  double dt_s;
  double dt_h;
  double inv_ramp_ms;
  double mean_failure_gap_ms;  ///< +inf when the failure rate is 0
  BoundingBox box;
  BoundingBox inner;  ///< cars steer back toward the centre outside this box
  double m_per_deg_lat;
  double m_per_deg_lon;  ///< at the box centre; the error across a city-sized box is < 1%
  double max_turn_rad;   ///< heading change per step: smooth routes
  // Per-step first-order decay factors exp(-dt / tau).
  double speed_decay;
  double coolant_warm_decay;
  double coolant_cool_decay;
  double tyre_warm_decay;
  double tyre_cool_decay;
};

/// Trip state of a simulated car.
enum class TripState : uint8_t { kParked, kDriving, kIdling };

/// The physical model of one simulated car: trips, drivetrain, battery, thermals, tyres, chassis, GPS and
/// the failures it develops. Each step advances the car by one send interval and writes one message's
/// values. Deterministic: every draw comes from the car's own generators, so its stream depends only on
/// (fleet seed, car index, constants). Failures draw from a separate generator and never change a branch
/// of the physics, so a failing car and its healthy twin see exactly the same trips, roads and noise.
/// Owned and stepped by the Fleet's thread.
class Car {
 public:
  static constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
  static constexpr int kBaseFirmware = 1200;

  /// `planned` holds this car's forced failures (any order).
  Car(uint64_t fleet_seed, std::size_t index, const CarConstants& c,
      std::vector<PlannedFailure> planned = {});

  /// Advances to the next message (seq + 1) and writes its signals and position into `out` (car, ts and
  /// seq are the fleet's job). Failures that begin in this step are appended to `onsets` when not null.
  void step(const CarConstants& c, core::Telemetry& out, std::vector<FailureOnset>* onsets);

  // Commands from the platform (fleet/{car}/commands). They change what the car does from its next step on;
  // a car without commands is unaffected (and so stays deterministic).
  /// Caps the speed the car drives at `kmh` (<= 0 removes the cap).
  void set_speed_limit_kmh(double kmh) { _speed_limit_mps = kmh > 0 ? kmh / 3.6 : 0; }
  /// Installs firmware `version`: the car reports it from now on (a failing unit still rolls back).
  void install_firmware(int version) { _installed_firmware = version; }
  double speed_limit_kmh() const { return _speed_limit_mps * 3.6; }
  int installed_firmware() const { return _installed_firmware; }

  /// Seq of the last message stepped (0 before the first).
  int64_t seq() const { return _seq; }
  TripState trip_state() const { return _state; }
  /// ms after the first message when `mode` began, or kNever.
  int64_t onset_local_ms(FailureMode mode) const { return _onset[static_cast<std::size_t>(mode)]; }

 private:
  void advance(const CarConstants& c, const std::array<double, kFailureModeCount>& sev);
  void activate_failures(const CarConstants& c, int64_t local_ms, std::vector<FailureOnset>* onsets);
  void activate(const CarConstants& c, FailureMode mode, int64_t onset, std::vector<FailureOnset>* onsets);
  void start_segment();
  void update_current(double noise);
  void steer(const CarConstants& c, double dist_m);
  int healthy_firmware(const CarConstants& c, int64_t local_ms) const;

  Rng _rng;          // physics
  Rng _failure_rng;  // failure onsets and their parameters only
  int64_t _seq = 0;

  TripState _state = TripState::kParked;
  bool _plugged = false;
  uint8_t _tyre_wheel = 0;     // which tyre leaks
  uint8_t _shock_corner = 0;   // which corner's damper fails
  int64_t _state_left_ms = 0;  // time left in the current parked / driving segment / idle
  int64_t _trip_left_ms = 0;   // driving time left in the current trip
  double _target_speed = 0;
  double _speed = 0;
  double _throttle = 0;
  double _current = 0;
  double _soc = 0;
  double _coolant = 0;
  double _tyre_warm = 0;
  double _ambient = 0;
  double _lat = 0;
  double _lon = 0;
  double _heading = 0;
  double _target_heading = 0;
  std::array<double, 4> _tyre_nominal{};
  int64_t _firmware_delay_ms = 0;
  int _frozen_firmware = kBaseFirmware;
  double _speed_limit_mps = 0;  // 0: no limit set by a command
  int _installed_firmware = 0;  // 0: none installed by a command

  std::array<int64_t, kFailureModeCount> _onset;
  int64_t _next_random_onset = kNever;
  std::vector<PlannedFailure> _planned;  // sorted by after_ms
  std::size_t _next_planned = 0;
};

}  // namespace fleettwin::sim
