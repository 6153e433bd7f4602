#include "ml/dataset.h"

#include <algorithm>
#include <limits>

#include "ml/features.h"

namespace fleettwin::ml {

TrainingData make_training_data(std::vector<core::Telemetry>& events, std::string topic,
                                std::shared_ptr<const FeatureSpace> space) {
  std::sort(events.begin(), events.end(), [](const core::Telemetry& a, const core::Telemetry& b) {
    if (a.car != b.car) return a.car < b.car;
    return a.seq < b.seq;
  });
  TrainingData d;
  d.topic = std::move(topic);
  d.space = std::move(space);
  const std::size_t width = d.space->size();
  d.features.resize(events.size() * width);
  d.car.resize(events.size());
  d.from_ts = events.empty() ? 0 : std::numeric_limits<int64_t>::max();
  CarFeatureState state = d.space->new_state();
  uint32_t car = 0;
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (i == 0 || events[i].car != events[i - 1].car) {
      state = d.space->new_state();
      car = static_cast<uint32_t>(d.cars++);
    }
    d.space->extract(events[i], state, d.features.data() + i * width);
    d.car[i] = car;
    d.from_ts = std::min(d.from_ts, events[i].ts);
    d.to_ts = std::max(d.to_ts, events[i].ts);
  }
  return d;
}

}  // namespace fleettwin::ml
