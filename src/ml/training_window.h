#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/telemetry.h"
#include "ml/model.h"
#include "ml/monitor.h"

namespace fleettwin::ml {

/// What leave_out_cars_in_alert did to a training window. Plain value.
struct WindowFilter {
  int64_t cars = 0, cars_left_out = 0;      ///< cars in the window, cars whose events were removed
  int64_t events = 0, events_left_out = 0;  ///< likewise for events
  int64_t cars_in_alert = 0;                ///< cars in alert at the end (all kept when too many)
  std::vector<std::string> left_out;        ///< the cars left out, sorted
};

/// More cars in alert than this share of the window's are not failures but what the fleet does now (a new
/// route, a season, the drift a retraining is for): the window is kept whole so that a candidate can learn
/// it. The same bound as calibrate_threshold's on failing cars.
inline constexpr double kMaxShareLeftOut = 0.25;

/// The cars `active` has in anomaly alert at the end of `events` (each car's events in order), replayed
/// through a Monitor of `options` as the score stage scores them. At the end, not at any time: the replay
/// starts every car's per-car state afresh in the middle of its day, which raises alerts on healthy cars that
/// later clear, while a failure does not end. Measured on one 2-hour window of 500 cars (docs/benchmarks.md,
/// lifecycle protocol): 76 cars in alert at some time, 16 of them failing; 17 at the end, 16 failing. Runs
/// on the caller's thread (the trainer's, never a scoring one).
std::unordered_set<std::string> cars_in_alert(const std::vector<core::Telemetry>& events,
                                              const std::shared_ptr<const Model>& active,
                                              const MonitorOptions& options,
                                              const std::shared_ptr<const FeatureSpace>& space);

/// Removes from a candidate's training window every event of the cars the active model has in anomaly
/// alert at its end (cars_in_alert). Failures do not end by themselves, so a later window holds the cars
/// that began failing in every earlier hour (about 2% of a fleet an hour in the simulator); a candidate
/// trained and calibrated on them learns their symptoms as normal and sets its threshold on them. Leaving
/// them out keeps the candidate's data as healthy as the first model's. Measured, that did not make the
/// candidates better (docs/benchmarks.md, lifecycle protocol): their false alerts come from one input each
/// whose healthy errors are heavy-tailed, not from the failing cars; the trainer calls this only when
/// ml.train_leave_out_alerted is on. Nothing is removed without an
/// active model, nor when the active model alerts on more than kMaxShareLeftOut of the cars. The trainer and
/// `eval --lifecycle` call the same function.
WindowFilter leave_out_cars_in_alert(std::vector<core::Telemetry>& events,
                                     const std::shared_ptr<const Model>& active,
                                     const MonitorOptions& options,
                                     const std::shared_ptr<const FeatureSpace>& space);

}  // namespace fleettwin::ml
