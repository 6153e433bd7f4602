#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

#include "core/telemetry.h"

namespace fleettwin::ml {

/// Features derived from the signals so that the simulator's failure modes (and real ones like them) show up
/// as a broken relationship between signals rather than as a value a healthy car never has.
inline constexpr std::size_t kDerivedCount = 13;
/// All 18 catalog signals first (catalog order), then the derived features.
inline constexpr std::size_t kFeatureCount = core::kSignalCount + kDerivedCount;

/// Value of a feature that has no meaning for this event (coolant_heading of a stopped engine); only features
/// for which may_be_undefined() is true take it. The scaler fits on the defined values only and puts an
/// undefined one at its centre; the scorer counts no error on it (checking only those features). A
/// placeholder value would instead widen the feature's range until a failure fits inside it.
inline constexpr float kUndefined = std::numeric_limits<float>::quiet_NaN();
inline bool defined(float feature) { return feature == feature; }
/// True for the features extract_features may leave undefined (the scorer checks only those).
bool may_be_undefined(std::size_t feature);

/// The part of the car a feature tells about. An alert names the parts whose features are anomalous; a
/// part turning anomalous on a car already in alert is a new failure, while more features of the same part
/// turning anomalous are the same failure spreading (a flat tyre shows in its pressure, the spread and the
/// gap).
enum class Component : uint8_t { kCooling, kBattery, kDrivetrain, kTyres, kChassis, kControlUnit };
inline constexpr std::size_t kComponentCount = 6;
Component feature_component(std::size_t feature);

/// Name of feature `i`: a catalog signal name, or one of the derived names below.
std::string_view feature_name(std::size_t i);
/// Index of the feature called `name`, or kFeatureCount.
std::size_t feature_index(std::string_view name);

/// What feature extraction remembers about one car between its events: smoothed amplitude and share of each
/// chassis accelerometer, because a failing shock absorber is one corner shaking more than the others, which
/// a single noisy sample (potholes hit every corner) cannot show; and the engine's recent running time and
/// coolant. Plain value, owned by whoever owns the car's stream.
struct CarFeatureState {
  std::array<double, 4> accel_energy{};  ///< smoothed |acceleration| per corner
  /// Smoothed share of each corner in the event's total |acceleration|; starts level.
  std::array<double, 4> accel_share{0.25, 0.25, 0.25, 0.25};
  double engine_warmth = 0;    ///< share of the last minutes with the engine running
  double engine_heat = 0;      ///< share of the last hour with the engine running
  double coolant_average = 0;  ///< coolant over the last minute the engine ran
  int64_t running_since = 0;   ///< ts of the event the engine started at
  bool running = false;        ///< the engine ran at the last event
  int64_t last_ts = 0;
  bool primed = false;
  /// The car's last value of each signal: a car may send any subset of the catalog per message, and the
  /// model reads a whole car, so a signal a message lacks reads as the car's last value of it (0 before the
  /// car's first value of it).
  std::vector<double> last = std::vector<double>(core::kSignalCount, 0.0);
};

/// Turns one telemetry event into the kFeatureCount feature vector. Stateless apart from the caller's
/// per-car state, so training (history sorted by car and time) and scoring (the live stream, in order per
/// car) compute identical features. Never sees ground truth. Any thread.
///
/// Derived features:
///  - vibration_per_speed: engine vibration / (speed + 1 m/s); a degrading drive shaft adds vibration that
///    grows with speed.
///  - tyre_pressure_spread: max - min of the four tyres; a leak lowers one tyre.
///  - tyre_pressure_min_gap: mean of the other three tyres - the lowest one.
///  - coolant_over_intake: coolant - intake air temperature; overheating moves coolant away from the air.
///  - accel_imbalance: log of the largest corner's smoothed amplitude over the mean of the other three.
///    Kept for models trained with it; accel_share_imbalance below replaced it in the default model.
///  - accel_amplitude_1_1 .. accel_amplitude_2_2: each corner's smoothed amplitude. A single accelerometer
///    sample is white noise (one instant of a shaking chassis) that no model can reconstruct; its recent
///    amplitude is a property of the road, the speed and the corner's damper.
///  - engine_warmth: share of the recent past (time constant 5 minutes) the engine ran (air flowing into
///    it). Engine temperatures depend on how long it has been running, not only on its current load: a
///    cold start and a warm engine read very differently at the same speed.
///  - engine_heat: the same over a 40-minute time constant: a stopped engine cools over tens of minutes, so
///    how hot a parked car still is depends on how long it ran and how long ago.
///  - coolant_heading: the temperature the coolant is heading for, extrapolated from how far the coolant
///    has moved away from its last minute's average (time constants: 5 min engine, 1 min average). A running
///    engine's cooling holds one temperature whether the engine is cold or warm, so failing cooling shows in
///    minutes, while the coolant itself takes many minutes to climb out of the range a cold or cooling engine
///    spans anyway. Undefined while the engine is off.
///  - accel_share_imbalance: log of the largest corner's smoothed share of the event's total |acceleration|
///    over the mean share of the other three (same smoothing as the amplitudes). The share of one event does
///    not depend on the road, the speed or the state, so it moves only when one damper does: a failed one
///    (amplitude x4) reads log 4 = 1.39, healthy cars stay below about 0.9 (2,000 cars, an hour). Smoothed
///    amplitudes instead carry the last state for minutes: a car that parks, starts or passes a pothole
///    while the four averages still settle reads up to 1.9 with nothing broken.
/// A sagging battery cell needs no derived feature: voltage is close to linear in state of charge and
/// current, which the autoencoder learns from the raw signals (a ratio such as voltage / charge
/// extrapolated badly as charge ran lower than in training).
void extract_features(const core::Telemetry& t, CarFeatureState& state, float* out);

}  // namespace fleettwin::ml
