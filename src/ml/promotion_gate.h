#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fleettwin::ml {

/// Operator labels on one model's alerts raised during the shadow period.
struct FeedbackLabels {
  int64_t confirmed = 0;
  int64_t marked_false = 0;
};

/// What one model (the active one or the candidate in shadow) did over one shadow period, both fed the same
/// events. "The other" is the other model of the comparison. Plain value; built by whoever ran the period.
struct ShadowSummary {
  int64_t events = 0;  ///< events scored
  int64_t alerts = 0;  ///< anomaly alerts raised (a shadow model's alerts are those it would have raised)
  /// Alerts on a car the other model had no alert on during the period (none open at its start, none raised).
  int64_t alerts_other_missed = 0;
  /// Of `alerts_other_missed`, those operators confirmed and those they marked false.
  int64_t other_missed_confirmed = 0;
  int64_t other_missed_marked_false = 0;
  FeedbackLabels feedback;        ///< labels on all of `alerts`
  int64_t unfamiliar_events = 0;  ///< anomalous events in conditions its training never showed
  double car_hours = 0;           ///< scored time summed over cars

  /// Estimated false alerts: those operators marked false, plus those without a label on a car the other
  /// model had no alert on (two independently trained models rarely both alarm on a healthy car, and a
  /// real failure keeps showing, so the other model would have raised it too). Alerts both models raised
  /// count as true unless an operator said otherwise.
  int64_t estimated_false_alerts() const {
    return feedback.marked_false + alerts_other_missed - other_missed_confirmed - other_missed_marked_false;
  }
  double estimated_false_per_1000_car_hours() const;
  double unfamiliar_share() const;  ///< unfamiliar_events / events
};

/// How much worse than the active model a candidate may be and still be promoted (ml.promotion_margin_*).
struct PromotionMargins {
  /// Estimated false alerts per 1,000 car-hours above the active model's.
  double false_alerts = 1.0;
  /// Share of the active model's alerts the candidate did not raise (less those operators marked false):
  /// the guard against a candidate that is quiet because it is blind.
  double missed_alerts = 0.25;
  /// Share of events more than the active model's scored in unfamiliar conditions.
  double unfamiliar = 0.01;
  /// Share of events on which the two models' verdicts (anomalous or not) may differ.
  double disagreement = 0.05;
};

struct PromotionInput {
  ShadowSummary active;
  ShadowSummary candidate;
  double agreement = 1;  ///< share of events both models judged alike (anomalous or not)
};

struct PromotionDecision {
  bool promote = false;
  /// When refused, one sentence per failed check; when promoted, one per check, with the figures compared
  /// (for the model card).
  std::vector<std::string> reasons;
};

/// The promotion gate: promote the candidate when it scored events and, against the active model over the
/// same shadow period, is no worse by `margins` on estimated false alerts, missed alerts, unfamiliar
/// conditions and agreement. Pure function; any thread.
PromotionDecision promotion_gate(const PromotionInput& input, const PromotionMargins& margins);

}  // namespace fleettwin::ml
