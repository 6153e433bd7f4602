#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/telemetry.h"
#include "ml/features.h"

namespace fleettwin::ml {

/// Feature rows to train on, as FeatureSpace::extract produced them for history sorted by car and time.
/// Plain value.
struct TrainingData {
  std::shared_ptr<const FeatureSpace> space = FeatureSpace::builtin();  ///< the layout of the rows
  std::vector<float> features;                                          ///< rows x space->size()
  std::vector<uint32_t> car;  ///< car number of each row (for calibration's per-car trimming)
  std::string topic;          ///< where the history came from (recorded in the artifact)
  int64_t from_ts = 0, to_ts = 0, cars = 0;
  std::size_t rows() const { return car.size(); }
};

/// Sorts `events` by car, then ts, and extracts every event's features with per-car state, as the score
/// stage will see them. Labels never enter: only telemetry. `events` carry the values of `space`'s catalog.
TrainingData make_training_data(std::vector<core::Telemetry>& events, std::string topic,
                                std::shared_ptr<const FeatureSpace> space = FeatureSpace::builtin());

}  // namespace fleettwin::ml
