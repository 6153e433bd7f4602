#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/telemetry.h"

namespace fleettwin::ml {

/// Feature rows to train on, as extract_features() produced them for history sorted by car and time.
/// Plain value.
struct TrainingData {
  std::vector<float> features;  ///< rows x kFeatureCount
  std::vector<uint32_t> car;    ///< car number of each row (for calibration's per-car trimming)
  std::string topic;            ///< where the history came from (recorded in the artifact)
  int64_t from_ts = 0, to_ts = 0, cars = 0;
  std::size_t rows() const { return car.size(); }
};

/// Sorts `events` by car, then ts, and extracts every event's features with per-car state, as the score
/// stage will see them. Labels never enter: only telemetry.
TrainingData make_training_data(std::vector<core::Telemetry>& events, std::string topic);

}  // namespace fleettwin::ml
