#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/telemetry.h"
#include "ml/model.h"
#include "ml/monitor.h"
#include "ml/promotion_gate.h"

namespace fleettwin::ml {

/// A shadow trial: the active model and a candidate fed the same live traffic, each side summarized as the
/// promotion gate reads it (ml::ShadowSummary: alerts, alerts the other model missed, unfamiliar events,
/// car-hours) plus their agreement. Plain value.
struct TrialResult {
  PromotionInput input;
  std::string active_version, candidate_version;
  int64_t cars = 0;
  int64_t from_ts = 0, to_ts = 0;
  /// {"active":{version, events, alerts, alerts_other_missed, other_missed_cleared, other_missed_sustained,
  /// estimated_false_alerts,
  /// estimated_false_per_1000_car_hours, unfamiliar_events, unfamiliar_share, car_hours},"candidate":{...},
  /// "agreement","cars","from_ts","to_ts"}
  std::string to_json() const;
};

/// Which cars a Monitor has in anomaly alert, scored event by scored event: what the gate's agreement
/// compares. Alerts follow the hysteresis rule; single verdicts (score above threshold) of two healthy models
/// differ on many events (13% in a 20-car fleet), alert states on few. Owned by one thread.
class AlertStates {
 public:
  /// Appends to `states`, for each score of `out` (a batch's output), 1 when its car was in alert after
  /// that event.
  void follow(const MonitorOutput& out, std::vector<uint8_t>& states);

 private:
  std::unordered_set<std::string> _open;
};

/// Replays `events` (each car's in order; the trial's traffic) through a Monitor with `active` and one with
/// `candidate` and compares their alerts. Runs on the caller's thread (the trainer's, never a scoring one).
/// Agreement compares the two models' alert states (AlertStates). `active` may be null: its side stays empty
/// and agreement is 0. No operator labels: h/drift's feedback
/// fills ShadowSummary::feedback where it has them. A disputed alert open `sustained_ms` counts as lasting
/// (ml::count_disputed).
TrialResult run_trial(const std::shared_ptr<const Model>& active,
                      const std::shared_ptr<const Model>& candidate,
                      const std::vector<core::Telemetry>& events, const MonitorOptions& options,
                      const std::shared_ptr<const FeatureSpace>& space,
                      int64_t sustained_ms = PromotionMargins{}.sustained_ms);

}  // namespace fleettwin::ml
