#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ml/dataset.h"
#include "ml/model.h"

namespace fleettwin::ml {

// The libtorch side of src/ml: training and the artifact's serialized module. Only training.cc includes
// libtorch (its headers cost about a minute per translation unit); everything here is plain C++.

struct TrainOptions {
  int max_epochs = 30;
  std::size_t batch = 256;
  double learning_rate = 1e-3;
  /// Each epoch's learning rate is this times the last one's. At a constant rate the weights keep jumping
  /// around the best fit, and which input ends with a heavy-tailed error depended on where they stopped: over
  /// five fleets and two training seeds the worst run raised 9.5 false alerts per 1,000 car-hours at a
  /// constant rate, 2.0 with 0.85 (docs/benchmarks.md, detection quality, item 12).
  double learning_rate_decay = 0.85;
  double input_dropout = 0.05;  ///< share of inputs hidden from the network in each training row (denoising)
  /// When above 0, each input's reconstruction is bounded to the range this share of training cars stayed
  /// within (their highest and lowest values), widened by half its width on each side. Off by default: it
  /// keeps failing cars in the training window from being learned, but also flags healthy modes the window
  /// did not show (measured in docs/benchmarks.md).
  double reconstruction_range = 0;
  /// The range of inputs the model calls familiar (ModelMeta::input_low/high; an anomaly in conditions
  /// outside it raises no alert, MonitorOptions) leaves out the values only this share of training cars
  /// reached: the lowest of the cars' lowest values and the highest of their highest are those of the car at
  /// this share from either end. A few cars in a mode the window barely shows (a low charge late in the day)
  /// stretch a min/max range to the mode while the network, having seen them little, reconstructs it badly.
  /// 0: min and max.
  double familiar_share = 0;
  int patience = 3;                  ///< epochs without a better validation loss before stopping
  double validation_fraction = 0.2;  ///< share of cars held out for early stopping and calibration
  std::size_t max_rows = 400'000;    ///< larger histories are sampled down to this many rows
  /// "alert_rate": the threshold at which healthy held-out cars would raise `target_false_alerts` per
  /// 1,000 car-hours under the hysteresis rule below (calibrate_alert_rate); "quantile": the `quantile`
  /// of held-out scores (calibrate_threshold).
  std::string threshold_method = "alert_rate";
  double target_false_alerts = 0.5;  ///< per 1,000 car-hours (alert_rate)
  int raise_k = 2, window_n = 3;     ///< the score stage's hysteresis rule (alert_rate)
  double quantile = 0.995;           ///< threshold = this quantile of held-out scores (quantile)
  uint64_t seed = 42;
  bool progress = true;  ///< progress bar (epoch, losses) on stderr
  std::string version;   ///< empty: "<architecture>-<UTC time>"
  /// Once a stop is requested, training gives up at its next minibatch or phase (TrainingStopped): a
  /// process told to stop does not wait for a model it will not use.
  /// (A function, not a std::stop_token: this header is also read as C++17, see scripts/lint.)
  std::function<bool()> stop_requested{};
};

/// Thrown by train_model once its TrainOptions::stop_requested returns true.
class TrainingStopped : public std::runtime_error {
 public:
  TrainingStopped() : std::runtime_error("training stopped") {}
};

/// Trains an autoencoder of `arch` on `data` (mini-batches, Adam, MSE, early stopping on the validation
/// split), calibrates its threshold on the held-out rows and returns the ready model. Never sees labels.
/// Throws std::invalid_argument when there is too little data, TrainingStopped when asked to stop.
std::shared_ptr<Model> train_model(const TrainingData& data, const Architecture& arch,
                                   const TrainOptions& options);

/// The one-file artifact: "FTMODEL1", u64 little-endian metadata length, metadata JSON (meta_to_json),
/// u64 length, libtorch-serialized torch::nn::Sequential (torch::save) of the same network.
std::string encode_artifact(const Model& model);
/// Throws std::invalid_argument with the reason when `bytes` are not an artifact this build reads, or hold a
/// model that reads features `space` (the scorer's catalog) does not have (meta_from_json).
std::shared_ptr<Model> decode_artifact(std::string_view bytes,
                                       std::shared_ptr<const FeatureSpace> space = FeatureSpace::builtin());
/// Reconstructs `rows` scaled rows with libtorch instead of Mlp::forward: the comparison the Mlp comment
/// refers to (bench/ml_bench.cc). `in`/`out` are rows x model inputs.
void torch_reconstruct(const Model& model, const float* in, std::size_t rows, float* out);

void save_artifact(const Model& model, const std::string& path);
std::shared_ptr<Model> load_artifact(const std::string& path,
                                     std::shared_ptr<const FeatureSpace> space = FeatureSpace::builtin());

}  // namespace fleettwin::ml
