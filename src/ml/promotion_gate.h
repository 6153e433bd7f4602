#pragma once

#include <cstdint>
#include <map>
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
///
/// Without operator labels an alert both models raised counts as true and one only this model raised (a
/// disputed alert) as false. How long disputed alerts lasted is recorded beside (cleared within
/// PromotionMargins::sustained_ms, lasted that long, or too young to tell) but does not enter the estimate:
/// on `eval --lifecycle` seed 11 the candidates' false alerts lasted as long as true ones, and counting the
/// lasting ones true promoted worse candidates (docs/benchmarks.md).
struct ShadowSummary {
  int64_t events = 0;  ///< events scored
  int64_t alerts = 0;  ///< anomaly alerts raised (a shadow model's alerts are those it would have raised)
  /// Alerts on a car the other model had no alert on during the period (none open at its start, none raised).
  int64_t alerts_other_missed = 0;
  /// Of `alerts_other_missed`, those that cleared within PromotionMargins::sustained_ms of being raised, and
  /// those that lasted at least that long (still open at the period's end or not). The rest were raised
  /// within sustained_ms of the period's end and are still open: too young to judge.
  int64_t other_missed_cleared = 0;
  int64_t other_missed_sustained = 0;
  /// Of `alerts_other_missed`, those operators confirmed and those they marked false.
  int64_t other_missed_confirmed = 0;
  int64_t other_missed_marked_false = 0;
  /// Of `alerts_other_missed`, how many by the alert's first (top contributing) signal; "" when the alert
  /// named none. What the gate's per-signal check compares.
  std::map<std::string, int64_t> disputed_by_signal;
  FeedbackLabels feedback;        ///< labels on all of `alerts`
  int64_t unfamiliar_events = 0;  ///< anomalous events in conditions its training never showed
  double car_hours = 0;           ///< scored time summed over cars

  /// Estimated false alerts: those operators marked false, plus those without a label on a car the other
  /// model had no alert on (two independently trained models rarely alarm on the same healthy car, and a
  /// real failure keeps showing, so the other model would have raised it too).
  int64_t estimated_false_alerts() const;
  double estimated_false_per_1000_car_hours() const;
  double unfamiliar_share() const;  ///< unfamiliar_events / events
};

/// How much worse than the active model a candidate may be and still be promoted (ml.promotion_margin_*),
/// and how long a disputed alert must last to count as a real failure.
struct PromotionMargins {
  /// Estimated false alerts per 1,000 car-hours above the active model's. The gate also asks for no more
  /// estimated false alerts than the active model in count, whatever this allows (both ran over the same
  /// car-hours, so the rate's margin only ever let through a candidate with more of them).
  double false_alerts = 1.0;
  /// Disputed alerts on one first signal the candidate may raise beyond the active model's on that signal,
  /// when operators labelled none of the candidate's disputed alerts: a candidate that trades the active
  /// model's false alerts on one input for its own on another is refused (its input's trouble grows with
  /// the fleet's state, e.g. low charge over the day). Negative: no per-signal check.
  int64_t signal_false_alerts = 1;
  /// Share of the active model's alerts the candidate did not raise on their car, net of the alerts the
  /// candidate raised alone, less those operators marked false: the guard against a candidate that is quiet
  /// because it is blind.
  double missed_alerts = 0.25;
  /// Share of events more than the active model's scored in unfamiliar conditions.
  double unfamiliar = 0.01;
  /// Share of events, of the cars not both models had in alert, after which their alert states (the car in
  /// alert or not) may differ: a guard against a model wrong everywhere. Alert states, not single verdicts
  /// (two healthy models of a 20-car fleet differ on 13% of those), and not on failures both found (when
  /// each raises and clears is timing). In a 20-car fleet one car is 5% of the events.
  double disagreement = 0.05;
  /// How long (event time) a disputed alert must last to be reported as lasting (ShadowSummary); reported,
  /// not judged.
  int64_t sustained_ms = 600'000;
};

/// Counts one disputed alert of `s` (raised at `raised`, cleared at `cleared` or still open when it is
/// negative, the period ending at `end`, all event time) into alerts_other_missed and its class: cleared
/// within `sustained_ms`, lasted that long, or too young to judge; and under its first signal `signal`
/// into disputed_by_signal. Used by whoever builds the summaries.
void count_disputed(ShadowSummary& s, int64_t raised, int64_t cleared, int64_t end, int64_t sustained_ms,
                    const std::string& signal = {});

struct PromotionInput {
  ShadowSummary active;
  ShadowSummary candidate;
  /// Share of events after which both models had the event's car in alert, or neither, over the cars not both
  /// had in alert during the period.
  double agreement = 1;
};

struct PromotionDecision {
  bool promote = false;
  /// When refused, one sentence per failed check; when promoted, one per check, with the figures compared
  /// (for the model card).
  std::vector<std::string> reasons;
};

/// The promotion gate: promote the candidate when it scored events and, against the active model over the
/// same shadow period, is no worse by `margins` on estimated false alerts (their rate within the margin,
/// their count no higher, and on no first signal more than `signal_false_alerts` more), the active model's
/// alerts missed net of those it raised alone, unfamiliar conditions and agreement. Pure function; any
/// thread.
PromotionDecision promotion_gate(const PromotionInput& input, const PromotionMargins& margins);

}  // namespace fleettwin::ml
