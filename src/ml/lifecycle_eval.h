#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/alert.h"
#include "core/telemetry.h"
#include "ml/model.h"
#include "ml/monitor.h"
#include "ml/promotion_gate.h"
#include "ml/training_window.h"

namespace fleettwin::ml {

/// The lifecycle protocol of `fleettwin eval --lifecycle`: what an operator would have seen over a long run
/// with scheduled retraining, a shadow trial and the promotion gate.
struct LifecycleOptions {
  int64_t retrain_every_ms = 3'600'000;  ///< also the first model's training span and the shadow period
  int64_t train_window_ms = 7'200'000;   ///< each candidate trains on this much event time before its start
  /// Each candidate's window leaves out the cars the active model has in alert at its end
  /// (leave_out_cars_in_alert, as the trainer does with ml.train_leave_out_alerted, off by default).
  bool leave_out_alerted = false;
  MonitorOptions monitor;
  PromotionMargins margins;
  /// Called with one line at each retraining boundary (progress on a terminal); may be empty.
  std::function<void(const std::string&)> progress;
};

/// Trains a model on `window` (oldest first); `name` is its version. Called on the caller's thread.
using LifecycleTrainer = std::function<std::shared_ptr<const Model>(
    const std::vector<core::Telemetry>& window, const std::string& name)>;

/// One retraining: the candidate, its shadow period and what the gate said.
struct LifecycleStep {
  std::string candidate;  ///< version
  int64_t trained_on_from = 0, trained_on_to = 0, training_events = 0;
  WindowFilter filter;  ///< what leave_out_alerted removed from the window (all 0 when off)
  int64_t shadow_from = 0, shadow_to = 0;
  ShadowSummary active, candidate_summary;
  double agreement = 0;
  PromotionDecision decision;
  /// The candidate's alerts of the shadow period, raised and cleared (never in LifecycleRun::alerts): what
  /// `eval` checks the gate's estimates against.
  std::vector<core::Alert> candidate_alerts;
};

/// The run: alerts as the active models raised them, each event scored by the model active when it
/// arrived, and the retrainings.
struct LifecycleRun {
  int64_t scoring_from = 0;         ///< the first model's start: end of the first retrain_every of event time
  std::vector<core::Alert> alerts;  ///< raised and cleared from scoring_from on, in event order
  int64_t unfamiliar_events = 0;    ///< of the active models, from scoring_from on
  std::vector<LifecycleStep> steps;
  int64_t promotions() const;
};

/// Replays `events` (oldest first) under the protocol: the first model trains on the first retrain_every of
/// event time and is active from then on; at every later multiple of retrain_every a candidate trains on the
/// train_window before it (less the cars the active model has in alert at its end when leave_out_alerted) and
/// runs in shadow (its own Monitor, fed the same events, never in the report) for the next retrain_every; the
/// promotion gate then compares it with the model that was active over that period, and the candidate becomes
/// active at once when the gate promotes it. No candidate is trained whose shadow period would end after the
/// last event. std::invalid_argument when the history is shorter than twice retrain_every. Single thread.
LifecycleRun run_lifecycle(const std::vector<core::Telemetry>& events, const LifecycleTrainer& train,
                           const LifecycleOptions& options);

}  // namespace fleettwin::ml
