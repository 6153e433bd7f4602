#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/alert.h"
#include "sim/failure.h"

namespace fleettwin::ml {

struct EvalOptions {
  /// An alert is a true detection when its car's failure began at most this long before it.
  int64_t window_ms = 30 * 60'000;
  /// Failures that began before this time are not counted in recall (the model was still training, or
  /// the data does not reach back); alerts they explain are still not false.
  int64_t from_ts = 0;
  /// Failures that began after this time are not counted in recall: too little data after them.
  int64_t to_ts = INT64_MAX;
};

/// Detection quality of one failure mode.
struct ModeReport {
  std::string mode;
  int64_t failures = 0, detected = 0, true_alerts = 0;
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
  std::vector<ModeReport> per_mode;
  std::string to_json() const;
};

/// Joins raised alerts of `kind` with the ground truth of `modes` (by car and time) as EvalOptions says;
/// cleared alerts are ignored. `car_hours` is the scored time summed over cars.
EvalReport evaluate(const std::vector<core::Alert>& alerts, const std::string& kind,
                    const std::vector<sim::GroundTruth>& truth, const std::vector<sim::FailureMode>& modes,
                    double car_hours, const EvalOptions& options);

/// The modes the learned model is for: every mode except outdated firmware, which is a rule.
std::vector<sim::FailureMode> learned_modes();

}  // namespace fleettwin::ml
