#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "core/alert.h"
#include "core/telemetry.h"
#include "sim/failure.h"

namespace fleettwin::ml {

struct EvalOptions {
  /// An alert is a true detection when its car's failure began at most this long before it.
  int64_t window_ms = int64_t{30} * 60'000;
  /// Failures that began before this time are not counted in recall (the model was still training, or
  /// the data does not reach back); alerts they explain are still not false.
  int64_t from_ts = 0;
  /// Failures that began after this time are not counted in recall: too little data after them.
  int64_t to_ts = INT64_MAX;
  /// Parallel to the ground truth: the time of the first message of the car that could show the failure
  /// within the window, -1 if none did (shown_failures). Empty: not known, and the report has no "shown"
  /// figures.
  std::vector<int64_t> shown_from;
};

/// Detection quality of one failure mode.
struct ModeReport {
  std::string mode;
  int64_t failures = 0, detected = 0, true_alerts = 0;
  int64_t failures_shown = 0;  ///< of `failures`, those the car's messages could show (EvalOptions::shown)
  double recall = 0, median_delay_s = 0, p90_delay_s = 0;
};

/// Detection quality of one alert kind against its failure modes. An alert is true when its car's failure
/// began at most the window before it, late when the car has an older failure still going on, false
/// otherwise; precision = true / (true + false). Plain value.
struct EvalReport {
  int64_t alerts = 0, true_alerts = 0, false_alerts = 0, late_alerts = 0, failures = 0, detected = 0;
  /// Anomalous events not counted towards alerts because the model never saw their conditions
  /// (Monitor::unfamiliar_events; set by the caller that replayed them).
  int64_t unfamiliar_events = 0;
  double precision = 0, recall = 0, f1 = 0, median_delay_s = 0, p90_delay_s = 0;
  double car_hours = 0, false_alerts_per_1000_car_hours = 0;
  /// The same figures over the failures the cars' messages could show (EvalOptions::shown), when known. The
  /// headline recall and F1 above count every failure; these say how many misses no detector could avoid.
  /// The delays from there count from the first message that could show the failure, not from its onset.
  bool has_shown = false;
  int64_t failures_shown = 0, detected_shown = 0;
  double recall_shown = 0, f1_shown = 0, median_delay_shown_s = 0, p90_delay_shown_s = 0;
  std::vector<ModeReport> per_mode;
  std::string to_json() const;
};

/// Joins raised alerts of `kind` with the ground truth of `modes` (by car and time) as EvalOptions says;
/// cleared alerts are ignored. `car_hours` is the scored time summed over cars.
EvalReport evaluate(const std::vector<core::Alert>& alerts, const std::string& kind,
                    const std::vector<sim::GroundTruth>& truth, const std::vector<sim::FailureMode>& modes,
                    double car_hours, const EvalOptions& options);

/// Whether one message of a car could show `mode` at all, going by what the simulator's signals carry: a
/// worn drive shaft only while the car moves (its vibration grows with speed), an overheating engine only
/// while it runs (air flows through the intake); a tyre losing pressure, a weak battery cell (its voltage
/// sags), a failing shock absorber (its corner's accelerometer reads larger, even the small readings of a
/// parked car) and outdated firmware in any state.
/// `t`'s signals are those of `catalog`, which names the simulator's signals by name or alias.
bool could_show(sim::FailureMode mode, const core::Telemetry& t,
                const catalog::Catalog& catalog = *catalog::builtin());

/// For each failure of `truth`: the time of the first message its car sent from the failure's onset to
/// `window_ms` later that could show it, or -1 (`events` in any order). A failure without one (a shaft
/// wearing in a car that stood still until the window ended) is invisible to any detector.
std::vector<int64_t> shown_failures(const std::vector<sim::GroundTruth>& truth,
                                    const std::vector<core::Telemetry>& events, int64_t window_ms,
                                    const catalog::Catalog& catalog = *catalog::builtin());

/// The modes the learned model is for: every mode except outdated firmware, which is a rule.
std::vector<sim::FailureMode> learned_modes();

}  // namespace fleettwin::ml
