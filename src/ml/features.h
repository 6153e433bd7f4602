#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/catalog.h"
#include "core/telemetry.h"

namespace fleettwin::ml {

/// Features derived from the signals so that the simulator's failure modes (and real ones like them) show up
/// as a broken relationship between signals rather than as a value a healthy car never has. Each needs some
/// cardata-v1 signals (found in any catalog by name or alias, catalog::Catalog::find); a catalog that lacks
/// one of them has no such feature.
inline constexpr std::size_t kDerivedCount = 14;

/// Value of a feature that has no meaning for this event (coolant_heading of a stopped engine); only features
/// for which may_be_undefined() is true take it. The scaler fits on the defined values only and puts an
/// undefined one at its centre; the scorer counts no error on it (checking only those features). A
/// placeholder value would instead widen the feature's range until a failure fits inside it.
inline constexpr float kUndefined = std::numeric_limits<float>::quiet_NaN();
inline bool defined(float feature) { return feature == feature; }

struct CarFeatureState;

/// The model's inputs for one catalog: every catalog signal first (catalog order, feature i = signal i; int
/// and bool signals as numbers, bool 0 or 1), then the derived features whose input signals the catalog has
/// (their order below). On the built-in cardata-v1 catalog: the 18 signals and all 14 derived features (the
/// newest last, so the earlier layout is a prefix). A model records its features by name (ModelMeta), so a
/// scorer on another catalog maps them by name, a signal's also by its aliases (a cardata-v1 model reads a
/// VSS catalog whose aliases are the cardata names), or refuses the model. Immutable; any thread.
class FeatureSpace {
 public:
  explicit FeatureSpace(std::shared_ptr<const catalog::Catalog> catalog);
  /// The space of the built-in catalog (catalog::builtin()), built once.
  static const std::shared_ptr<const FeatureSpace>& builtin();

  const catalog::Catalog& catalog() const { return *_catalog; }
  const std::shared_ptr<const catalog::Catalog>& shared_catalog() const { return _catalog; }
  std::size_t size() const { return _names.size(); }
  /// Features that are catalog signals: the first signals() ones.
  std::size_t signals() const { return _catalog->size(); }
  const std::string& name(std::size_t feature) const { return _names[feature]; }
  const std::vector<std::string>& names() const { return _names; }
  /// The part of the car a feature tells about: a signal's catalog part, a derived feature's by what it
  /// measures. Alerts name the parts whose features are anomalous (Monitor).
  catalog::Part part(std::size_t feature) const { return _parts[feature]; }
  /// The feature called `name`: a derived feature's name, or a signal's name, field or alias.
  std::optional<std::size_t> index(std::string_view name) const;
  /// The feature of cardata-v1 signal `s` in this catalog (by name or alias), or nullopt.
  std::optional<std::size_t> cardata(core::Signal s) const { return _cardata[s]; }
  /// True for the features extract() may leave undefined (the scorer checks only those).
  bool may_be_undefined(std::size_t feature) const { return feature == _coolant_heading; }
  /// True when the feature is an int signal (whole steps: tyre pressure in psi).
  bool whole_steps(std::size_t feature) const;
  /// Fresh per-car state sized for this catalog.
  CarFeatureState new_state() const;
  /// Turns one telemetry event (values indexed by this catalog) into the size() feature vector `out`.
  void extract(const core::Telemetry& t, CarFeatureState& state, float* out) const;
  /// The same feature names in the same order.
  bool operator==(const FeatureSpace& o) const { return _names == o._names; }

 private:
  std::shared_ptr<const catalog::Catalog> _catalog;
  std::vector<std::string> _names;
  std::vector<catalog::Part> _parts;
  std::array<std::optional<std::size_t>, core::kSignalCount> _cardata{};
  std::vector<std::pair<std::size_t, std::size_t>> _derived;  // (derived feature number, feature index)
  std::size_t _coolant_heading = static_cast<std::size_t>(-1);
};

/// What feature extraction remembers about one car between its events: smoothed amplitude and share of each
/// chassis accelerometer, because a failing shock absorber is one corner shaking more than the others, which
/// a single noisy sample (potholes hit every corner) cannot show; and the engine's recent running time and
/// coolant. Plain value, owned by whoever owns the car's stream.
struct CarFeatureState {
  std::array<double, 4> accel_energy{};  ///< smoothed |acceleration| per corner
  /// Smoothed share of each corner in the event's total |acceleration|; starts level.
  std::array<double, 4> accel_share{0.25, 0.25, 0.25, 0.25};
  /// Each corner's evidence of moving more than the others (accel_corner_evidence); starts at none.
  std::array<double, 4> accel_evidence{};
  double engine_warmth = 0;    ///< share of the last minutes with the engine running
  double engine_heat = 0;      ///< share of the last hour with the engine running
  double coolant_average = 0;  ///< coolant over the last minute the engine ran
  int64_t running_since = 0;   ///< ts of the event the engine started at
  bool running = false;        ///< the engine ran at the last event
  int64_t last_ts = 0;
  bool primed = false;
  /// The car's last value of each signal: a car may send any subset of the catalog per message, and the
  /// model reads a whole car, so a signal a message lacks reads as the car's last value of it (0 before the
  /// car's first value of it). One per catalog signal (FeatureSpace::new_state); a reading flagged out of
  /// range does not replace it (the Monitor scores the flag itself as a symptom of the signal's part).
  std::vector<double> last = std::vector<double>(core::kSignalCount, 0.0);
};

/// Feature extraction (FeatureSpace::extract): stateless apart from the caller's per-car state, so training
/// (history sorted by car and time) and scoring (the live stream, in order per car) compute identical
/// features. Never sees ground truth. Any thread.
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
///    while the four averages still settle reads up to 1.9 with nothing broken. Kept for models trained with
///    it; accel_corner_evidence below replaced it in the default model.
///  - accel_corner_evidence: the largest corner's accumulated evidence (a CUSUM of log-likelihood ratios,
///    0 to 25, reported to the power 0.75) that it moves three times as much as the other three, from each
///    event's share of the four corners' energy (squared acceleration), which does not depend on the road,
///    the speed or the state. A failing damper's evidence grows by about one per event once it is loose, a
///    healthy corner's drifts back to 0; it crosses its calibrated level about a minute sooner than the
///    smoothed share, whose 10-event average lags the failure and whose thin tail the extreme-value
///    calibration overestimates (docs/benchmarks.md, "Lifecycle protocol").
/// A sagging battery cell needs no derived feature: voltage is close to linear in state of charge and
/// current, which the autoencoder learns from the raw signals (a ratio such as voltage / charge
/// extrapolated badly as charge ran lower than in training).
/// Inputs: vibration_per_speed needs engine_vibration_amplitude and speed; the tyre ones the four tyre
/// pressures; coolant_over_intake coolant_temp and intake_air_temp; the accel ones the four accelerometers;
/// engine_warmth and engine_heat intake_air_flow_speed; coolant_heading that and coolant_temp.
std::string_view derived_name(std::size_t derived);

}  // namespace fleettwin::ml
