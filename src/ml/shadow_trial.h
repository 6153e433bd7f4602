#pragma once

#include <cstdint>
#include <memory>
#include <string>
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
  /// {"active":{version, events, alerts, alerts_other_missed, estimated_false_alerts,
  /// estimated_false_per_1000_car_hours, unfamiliar_events, unfamiliar_share, car_hours},"candidate":{...},
  /// "agreement","cars","from_ts","to_ts"}
  std::string to_json() const;
};

/// Replays `events` (each car's in order; the trial's traffic) through a Monitor with `active` and one with
/// `candidate` and compares their alerts. Runs on the caller's thread (the trainer's, never a scoring one).
/// `active` may be null: its side stays empty and agreement is 0. No operator labels: h/drift's feedback
/// fills ShadowSummary::feedback where it has them.
TrialResult run_trial(const std::shared_ptr<const Model>& active,
                      const std::shared_ptr<const Model>& candidate,
                      const std::vector<core::Telemetry>& events, const MonitorOptions& options,
                      const std::shared_ptr<const FeatureSpace>& space);

}  // namespace fleettwin::ml
