#include "ml/training_window.h"

#include <algorithm>

namespace fleettwin::ml {

std::unordered_set<std::string> cars_in_alert(const std::vector<core::Telemetry>& events,
                                              const std::shared_ptr<const Model>& active,
                                              const MonitorOptions& options,
                                              const std::shared_ptr<const FeatureSpace>& space) {
  std::unordered_set<std::string> cars;
  if (!active || events.empty()) return cars;
  Monitor monitor(options, space);
  monitor.set_model(active);
  constexpr std::size_t kBatch = 5000;  // the score stage's order of batch size; bounds the copies
  std::vector<core::Telemetry> batch;
  MonitorOutput out;
  for (std::size_t from = 0; from < events.size(); from += kBatch) {
    batch.assign(events.begin() + static_cast<std::ptrdiff_t>(from),
                 events.begin() + static_cast<std::ptrdiff_t>(std::min(events.size(), from + kBatch)));
    out.clear();
    monitor.process(batch, out);
    for (const auto& a : out.alerts) {
      if (a.kind != kAlertAnomaly) continue;
      if (a.raised)
        cars.insert(a.car);
      else  // cleared: a car's alerts clear together
        cars.erase(a.car);
    }
  }
  return cars;
}

WindowFilter leave_out_cars_in_alert(std::vector<core::Telemetry>& events,
                                     const std::shared_ptr<const Model>& active,
                                     const MonitorOptions& options,
                                     const std::shared_ptr<const FeatureSpace>& space) {
  WindowFilter f;
  f.events = static_cast<int64_t>(events.size());
  std::unordered_set<std::string> all;
  for (const auto& e : events) all.insert(e.car);
  f.cars = static_cast<int64_t>(all.size());
  const auto alerted = cars_in_alert(events, active, options, space);
  f.cars_in_alert = static_cast<int64_t>(alerted.size());
  if (alerted.empty() || static_cast<double>(alerted.size()) > kMaxShareLeftOut * static_cast<double>(f.cars))
    return f;
  std::erase_if(events, [&](const core::Telemetry& e) { return alerted.contains(e.car); });
  f.left_out.assign(alerted.begin(), alerted.end());
  std::sort(f.left_out.begin(), f.left_out.end());
  f.cars_left_out = static_cast<int64_t>(alerted.size());
  f.events_left_out = f.events - static_cast<int64_t>(events.size());
  return f;
}

}  // namespace fleettwin::ml
