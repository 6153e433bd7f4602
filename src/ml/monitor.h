#pragma once

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "codec/schemas.h"
#include "core/alert.h"
#include "core/telemetry.h"
#include "ml/alerting.h"
#include "ml/model.h"

namespace fleettwin::ml {

inline constexpr const char* kAlertAnomaly = "anomaly";
inline constexpr const char* kAlertOutdatedFirmware = "outdated_firmware";

struct MonitorOptions {
  HysteresisRule rule;
  /// A car with an open anomaly alert raises another one when a part of the car (FeatureSpace::part) that
  /// was normal when its alerts were raised turns anomalous (the same hysteresis rule): a second failure is
  /// not hidden behind the first. The parts an alert covers are those anomalous from its raise until this
  /// long after it, while its failure's signature is still spreading. 0: no second alerts.
  int64_t new_symptom_settle_ms = 900'000;
  /// An anomalous event whose anomalous inputs all read values seen in training (ModelMeta::input_low/
  /// high) while another input does not is one the network extrapolates for (a
  /// charge lower than any in training makes a healthy current look wrong): it is counted
  /// (unfamiliar_events) but does not count towards an alert. A failure that takes its own signals out of
  /// range still does, and so does an anomaly while the out-of-range part is the car's open alert, or one
  /// on a predicted input (Architecture::predicted) of the out-of-range input's part. The range leaves out
  /// values only a few training cars reached (TrainOptions::familiar_share).
  bool skip_unfamiliar = true;
  int64_t firmware_grace_ms = 3'600'000;
};

/// What one batch produced.
struct MonitorOutput {
  std::vector<codec::AnomalyScore> scores;         ///< one per event, active model (none before a model)
  std::vector<codec::AnomalyScore> shadow_scores;  ///< one per event when a shadow model is set
  std::vector<core::Alert> alerts;                 ///< raised and cleared, in event order
  void clear() {
    scores.clear();
    shadow_scores.clear();
    alerts.clear();
  }
};

/// Predictive maintenance for a stream of telemetry, without I/O: per-car features, batch scoring with the
/// active model (and a shadow one, whose scores never alert), the per-car hysteresis of anomaly alerts and
/// the outdated-firmware rule. The score stage drives it from the log; `fleettwin eval` drives it from
/// history, so both apply exactly the same logic. Events of one car must come in order. Models can be
/// swapped between batches: per-car state survives, nothing is lost. Used by one thread.
///
/// Readings flagged out of their plausible range (core::Telemetry::out_of_range) are scored as symptoms of
/// their part: the flagged value does not enter the features (the car's last plausible value stands in, so
/// one implausible reading does not skew the model's view of every later event), and the event counts as
/// anomalous for the flagged signal's part under the same hysteresis rule as the model's anomalies (one
/// glitch raises nothing, a sensor or part that keeps reading implausibly does). The alert names the
/// flagged signals first; an open alert's parts grow by the flagged part, so a flag on another part is a new
/// symptom. Flags are scored only while a model is active.
class Monitor {
 public:
  /// `space`: the features of the catalog the events carry; models must read the same features (decoded
  /// for this space: decode_artifact).
  explicit Monitor(MonitorOptions options = {},
                   std::shared_ptr<const FeatureSpace> space = FeatureSpace::builtin());
  /// std::invalid_argument when the model reads another feature layout than this monitor's space.
  void set_model(std::shared_ptr<const Model> model);
  void set_shadow(std::shared_ptr<const Model> model);
  const FeatureSpace& space() const { return *_space; }
  const Model* model() const { return _active ? &_active->model() : nullptr; }
  const Model* shadow() const { return _shadow ? &_shadow->model() : nullptr; }
  /// Appends this batch's results to `out`.
  void process(const std::vector<core::Telemetry>& events, MonitorOutput& out);
  std::size_t cars() const { return _cars.size(); }
  /// Events so far scored in conditions the active model never saw (MonitorOptions::skip_unfamiliar).
  int64_t unfamiliar_events() const { return _unfamiliar_events; }

 private:
  struct Car {
    CarFeatureState features;
    AlertTracker anomaly;
    // While `anomaly` is open: the parts (catalog::Part bits) its alerts cover, when the last one was
    // raised, the rule applied to the other inputs, and the raise times (ids) of further alerts, all cleared
    // with it.
    uint64_t covered = 0;
    int64_t last_raise_ts = 0;
    AlertTracker symptom;
    std::vector<int64_t> further;
    AlertTracker firmware;
    FirmwareCar firmware_rule;
    ErrorAverage active_errors, shadow_errors;
  };
  void score_with(Scorer& scorer, bool shadow, const std::vector<core::Telemetry>& events,
                  std::vector<codec::AnomalyScore>& out);
  /// Writes the alert that transition `tr` of `tracker` raised or cleared at event `t`.
  static void emit(AlertTracker& tracker, Transition tr, const core::Telemetry& t, const char* kind,
                   double score, double threshold, std::vector<std::string> signals, const std::string& model,
                   MonitorOutput& out);
  static void emit(int64_t raised_ts, bool raised, const core::Telemetry& t, const char* kind, double score,
                   double threshold, std::vector<std::string> signals, const std::string& model,
                   MonitorOutput& out);
  /// The anomaly alerts of one car at event `i` of the batch (active model).
  void anomaly_alerts(Car& car, const core::Telemetry& t, const codec::AnomalyScore& s, uint64_t inputs,
                      uint64_t out_of_range, MonitorOutput& out);

  /// The scorer of `model`, refused unless it reads this monitor's features.
  std::unique_ptr<Scorer> scorer_for(std::shared_ptr<const Model> model) const;
  /// Part bits of the signals flagged out of range in `t`.
  uint64_t flagged_parts(const core::Telemetry& t) const;

  MonitorOptions _options;
  std::shared_ptr<const FeatureSpace> _space;
  std::optional<std::size_t> _firmware;  // the firmware version's signal, when the catalog has it
  FirmwareFleet _fleet;
  std::unique_ptr<Scorer> _active, _shadow;
  std::unordered_map<std::string, Car> _cars;
  std::vector<Car*> _batch_cars;
  std::vector<float> _features, _dev;
  /// Part bits of the anomalous inputs in `inputs` (Scorer::above of the active model).
  uint64_t components(uint64_t inputs) const;
  std::vector<uint8_t> _input_component;  // active model input -> catalog::Part
  // Per event of the batch, for anomalous events of the active model: anomalous inputs (Scorer::above)
  // and inputs out of the training range (Scorer::outside).
  std::vector<uint64_t> _inputs, _out_of_range;
  int64_t _unfamiliar_events = 0;
};

/// Id of an alert: "{car}:{kind}:{raised_ts}"; its clear event carries the same id.
std::string alert_id(const std::string& car, const std::string& kind, int64_t raised_ts);

}  // namespace fleettwin::ml
