#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ml/drift.h"
#include "ml/features.h"
#include "ml/mlp.h"
#include "ml/scaler.h"

namespace fleettwin::ml {

/// How reconstruction errors become one anomaly score.
enum class ScoreMethod : uint8_t {
  /// The largest per-feature error, in units of that feature's typical training error: most failures
  /// break one signal (a tyre, a corner, the coolant), which an average over all features would drown.
  kMaxDeviation,
  /// Mean squared error over the scaled features: what the reference system computed.
  kMse,
};

/// Shape of an autoencoder: the features it reads, hidden widths and activations, and its score.
struct Architecture {
  std::string name;  ///< "fleettwin" or "reference"
  /// The feature layout `features` index into: that of the catalog the model reads.
  std::shared_ptr<const FeatureSpace> space = FeatureSpace::builtin();
  std::vector<std::size_t> features;  ///< indices into the space's feature vector (FeatureSpace::extract)
  /// Features (a subset of `features`) the network reconstructs without seeing them: their weights into the
  /// first layer are zero. For a health indicator whose healthy value the other inputs predict, such as
  /// how evenly the four corners shake: shown the value, an autoencoder learns to pass it through and
  /// reconstructs a failure along with it; hidden, it predicts the healthy value and the failure is the
  /// whole gap.
  std::vector<std::size_t> predicted;
  /// Features (a subset of `features`) the network sees and reconstructs but that score nothing (weight 0 in
  /// ModelMeta::weight, which is how an artifact records them): operating conditions, which set what the
  /// other signals of their part read without being a symptom themselves, such as how full the battery is.
  /// Never anomalous itself, a condition outside the training range makes the anomalies of the event
  /// unfamiliar (Monitor), not an alert: a model trained before the fleet's charge ran low has never seen
  /// how a nearly empty pack is charged, and says so instead of alerting on the charge or its current.
  std::vector<std::size_t> conditions;
  std::vector<std::size_t> hidden;      ///< widths of the hidden layers
  std::vector<Activation> activations;  ///< one per hidden layer; the output layer is linear
  ScoreMethod score = ScoreMethod::kMaxDeviation;
  /// Weight of the newest event in each car's running average of per-feature errors (1: no averaging).
  /// A failure is a persistent, one-signed error; sensor noise is not, so averaging a car's last few
  /// events separates them far better than any single event can, at the price of a few events of delay.
  double smoothing = 1.0;
};

/// Ours: the catalog's signals except the raw accelerometer samples and the counters that only grow (the
/// firmware version, an odometer), and the derived features the catalog has except the accelerometer
/// amplitudes and the two imbalances (accel_corner_evidence and coolant_heading predicted, not shown;
/// battery_percentage an operating condition, Architecture::conditions); on the
/// built-in catalog 13 signals and 8 derived features, 21-32-12-32-21 tanh; largest per-car averaged error
/// (smoothing 0.3) with each input's scale set by its own healthy extremes (equalize_extremes).
Architecture fleettwin_architecture(std::shared_ptr<const FeatureSpace> space = FeatureSpace::builtin());
/// The system fleettwin replaces: the catalog's signals (18 on the built-in one), 18-14-7-7-14-18, tanh relu
/// tanh relu, MSE per event.
Architecture reference_architecture(std::shared_ptr<const FeatureSpace> space = FeatureSpace::builtin());
/// By name ("fleettwin" | "reference"); throws std::invalid_argument otherwise.
Architecture architecture_by_name(const std::string& name,
                                  std::shared_ptr<const FeatureSpace> space = FeatureSpace::builtin());

/// Everything a model artifact says about itself besides its weights (DESIGN.md §4 Model artifact).
struct ModelMeta {
  std::string name = "anomaly";  ///< key on fleet.models
  std::string version;           ///< unique per training run, e.g. "fleettwin-20261126T110500Z"
  int64_t created_ms = 0;
  Architecture architecture;
  /// The catalog the model was trained on ("cardata v1"), recorded so a refusal can name it; the features
  /// themselves are recorded by name.
  std::string catalog;
  std::vector<float> center, scale;  ///< robust scaler, per model input
  /// Typical reconstruction error per input (kMaxDeviation), one for each sign: `error_scale` where the
  /// signal reads above its reconstruction, `error_scale_low` below. Healthy errors are often lopsided (a
  /// cold engine reads far below a warm one's coolant, never far above it), and a failure is a deviation
  /// healthy cars do not make in that direction.
  std::vector<float> error_scale;
  std::vector<float> error_scale_low;
  /// Range of each input's reconstruction (scaled units): the bulk of the training values. An autoencoder
  /// extrapolates: shown a coolant hotter than any healthy one, it reconstructs it nearly as hot, because
  /// every coolant signal agrees. Bounded, it can only say "healthy cars never read this" with a large
  /// error. Empty: unbounded (artifacts written before it existed).
  std::vector<float> recon_low, recon_high;
  /// Lowest and highest value of each input in training (scaled units). An event with an input outside
  /// it is one the network has to extrapolate for. Empty: not recorded (older artifacts).
  std::vector<float> input_low, input_high;
  std::vector<float> weight;  ///< per input weight in the score; control_unit_firmware gets 0 (a rule)
  double threshold = 0;
  std::string threshold_method;  ///< e.g. "quantile_trimmed(q=0.999)"
  double quantile = 0.999;
  std::string topic;  ///< training range
  int64_t from_ts = 0, to_ts = 0, events = 0, cars = 0;
  double train_loss = 0, val_loss = 0, train_seconds = 0;
  int64_t epochs = 0;
  /// Held-out cars calibration treated as failing: left out (quantile), or already above the threshold in
  /// the training window (alert_rate, whose robust fit ignores them).
  int64_t excluded_cars = 0;
  /// Lineage, set by the trainer stage (docs/architecture.md "Model lifecycle"): the version that was
  /// active when this one was trained (empty: none) and what asked for it ("schedule", "api", "drift",
  /// "warmup", or empty for `fleettwin train`). Recorded so a model card can show where a model came from.
  std::string parent;
  std::string trigger;
  /// Each input signal's training distribution over fixed bins, against which the score stage measures
  /// drift (DriftWatch). Empty: not recorded (artifacts written before it existed: no drift watch).
  std::vector<DriftReference> drift;
};

std::string meta_to_json(const ModelMeta& m);
/// Reads metadata for a scorer on `space`: the model's features, recorded by name, are mapped onto the
/// space by name (a signal's also by its aliases, FeatureSpace::index). Throws std::invalid_argument with
/// the reason when `json` is not a valid metadata document, or when the model reads a feature `space` does
/// not have (naming the feature and both catalogs: a model trained on another catalog).
ModelMeta meta_from_json(std::string_view json,
                         std::shared_ptr<const FeatureSpace> space = FeatureSpace::builtin());

/// The first bytes of a model artifact (training.h encode_artifact).
inline constexpr std::string_view kArtifactMagic = "FTMODEL1";
/// A model artifact without its weights: the metadata and the serialized module's bytes (a view into the
/// artifact). Plain value.
struct ArtifactHeader {
  ModelMeta meta;
  std::string_view module;
};
/// Reads the frame of an artifact ("FTMODEL1", u64 little-endian metadata length, metadata JSON, u64 module
/// length, module) and its metadata (meta_from_json), without libtorch: what decode_artifact does before it
/// loads the module. Throws std::invalid_argument with the reason (bad magic, truncated, lengths that do not
/// match, invalid metadata).
ArtifactHeader read_artifact_header(std::string_view bytes,
                                    std::shared_ptr<const FeatureSpace> space = FeatureSpace::builtin());

/// A trained model ready to score: metadata plus the weights as plain arrays. Immutable; shared between
/// the scoring thread and whoever swaps it in.
struct Model {
  ModelMeta meta;
  Mlp mlp;
};

/// One signal's share in a score: a feature name and its signed error in the model's units.
struct Contribution {
  std::size_t feature = 0;
  float deviation = 0;
};

/// One input in scaled units as the Scorer computes it: times the inverse scale, not divided by the scale.
/// The two can differ in the last bit, so a bound recorded in training (ModelMeta::input_low/high) must be
/// computed with this too: a value seen in training then never reads as outside it.
inline float inverse_scale(float scale) { return 1.0f / scale; }
inline float to_scaled(float x, float center, float inv_scale) { return (x - center) * inv_scale; }

/// Scores batches of extracted feature rows with one model: scale, reconstruct, turn errors into a score
/// and the top three contributions. Holds scratch buffers, so one per thread.
class Scorer {
 public:
  explicit Scorer(std::shared_ptr<const Model> model);
  /// Per-event scores without per-car averaging. `features`: rows x the space's size (FeatureSpace::extract
  /// output). `top` may be null.
  void score(const float* features, std::size_t rows, float* scores, std::array<Contribution, 3>* top);
  /// Each row's signed per-input errors in units of that input's typical error: rows x inputs() into
  /// `dev`. score_of applies the weights.
  void deviations(const float* features, std::size_t rows, float* dev);
  /// Bit j set when input j of one row of features (the space's size) lies outside
  /// ModelMeta::input_low/high (at most 64 inputs). Never for a predicted input: the network does not see
  /// it, so nothing is extrapolated.
  uint64_t outside(const float* features) const;
  /// The score of one row of deviations (as deviations() wrote them, averaged or not).
  float score_of(const float* dev, std::array<Contribution, 3>* top) const;
  /// Bit j set when input j alone scores above `threshold` (kMaxDeviation models of at most 64 inputs;
  /// 0 otherwise): which signals are anomalous, for telling a new symptom from an old one.
  uint64_t above(const float* dev, float threshold) const;
  std::size_t inputs() const { return _model->meta.architecture.features.size(); }
  /// Bit j set when input j is predicted, never shown to the network (Architecture::predicted).
  uint64_t predicted() const { return _hidden; }
  const Model& model() const { return *_model; }
  const std::shared_ptr<const Model>& shared_model() const { return _model; }

 private:
  std::shared_ptr<const Model> _model;
  std::vector<float> _in, _out, _dev, _scratch, _inv_scale, _inv_error, _inv_error_low, _recon_low,
      _recon_high, _input_low, _input_high;
  std::size_t _width = 0;              // values per feature row (FeatureSpace::size)
  std::vector<std::size_t> _nullable;  // inputs whose feature may be undefined (may_be_undefined)
  uint64_t _hidden = 0;                // bit j: input j is predicted, never seen (Architecture::predicted)
};

/// One car's running average of deviations (Architecture::smoothing). Plain value per car.
struct ErrorAverage {
  std::vector<float> mean;
  /// Folds `dev` (n values) in and returns the average; the first event starts it.
  const float* update(const float* dev, std::size_t n, double smoothing);
};

/// Scores of rows that are each car's events in order (`car[i]` numbers the car of row i, rows of one car
/// contiguous or not), averaged per car as the score stage does: what calibration must see.
std::vector<float> score_sequences(Scorer& scorer, const float* features, const uint32_t* car,
                                   std::size_t rows);

/// Events per calibration block (10 minutes at the default 10 s interval), and the fewest blocks an
/// extreme-value fit is made from.
inline constexpr std::size_t kCalibrationBlock = 60;
inline constexpr std::size_t kMinCalibrationBlocks = 8;

/// The statistic a HysteresisRule raises on, event by event: the `raise_k`-th largest of a car's last
/// `window_n` scores (a car raises exactly when it exceeds the threshold). `scores` in each car's order.
std::vector<float> alert_statistic(const std::vector<float>& scores, const std::vector<uint32_t>& car_of,
                                   int raise_k, int window_n);

/// Rescales a kMaxDeviation model's error scales so that every input, on each side, reaches the same level
/// at its own extremes: for each (input, sign), the largest averaged deviation in each calibration block
/// (kCalibrationBlock events of one held-out car) is a block maximum, a Gumbel fit to those (robust, as in
/// calibrate_alert_rate) gives the level exceeded with probability `p_per_event` x block, and the scale is
/// set so that this level is 1. Without it the input with the heaviest healthy tail sets the threshold for
/// all (the max of the deviations is the score), and a failure that moves a well-behaved input far beyond
/// anything healthy still scores below it. Rows in each car's order, as score_sequences takes them. False
/// (model unchanged) with fewer than kMinCalibrationBlocks blocks.
bool equalize_extremes(Model& model, const float* features, const uint32_t* car, std::size_t rows,
                       double p_per_event);

/// Calibrated threshold and how many cars were left out.
struct Calibration {
  double threshold = 0;
  int64_t excluded_cars = 0;
  std::string method;
};
/// The `q` quantile of held-out scores, robust to a few failing cars in the window: cars with far more
/// events above the first estimate than chance allows (at least 3, and 10x the expected share) are left
/// out and the quantile is taken again. `car_of[i]` is any car number of score i.
Calibration calibrate_threshold(const std::vector<float>& scores, const std::vector<uint32_t>& car_of,
                                double q);
/// The threshold at which healthy cars would raise `target_per_car_hour` alerts per car-hour: the largest
/// alert statistic (alert_statistic) in each calibration block (kCalibrationBlock events of one held-out
/// car, `hours_per_event` apart) is a block maximum; a Gumbel distribution fitted to them robustly (median
/// and interquartile range, so failing cars in the window, which sit in the upper tail, do not pull the
/// fit) is extrapolated to the probability target x block length. A quantile of events cannot do this:
/// hysteresis turns per-event exceedances into alerts in a way that depends on how long deviations last,
/// and one alert per thousand car-hours lies far beyond anything a window of held-out data shows directly.
/// nullopt with fewer than kMinCalibrationBlocks blocks (too little held-out history to say).
std::optional<Calibration> calibrate_alert_rate(const std::vector<float>& statistic,
                                                const std::vector<uint32_t>& car_of, double hours_per_event,
                                                double target_per_car_hour);

}  // namespace fleettwin::ml
