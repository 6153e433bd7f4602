#include "app/ml_setup.h"

#include "ml/model.h"

namespace fleettwin::app {

using config::Config;
using config::ConfigError;
namespace keys = config::keys;

ml::TrainOptions train_options(const Config& config) {
  ml::TrainOptions o;
  o.max_epochs = static_cast<int>(config.get(keys::ml_epochs));
  o.learning_rate_decay = config.get(keys::ml_learning_rate_decay);
  o.seed = static_cast<uint64_t>(config.get(keys::ml_train_seed));
  o.max_rows = static_cast<std::size_t>(config.get(keys::ml_max_rows));
  o.quantile = config.get(keys::ml_quantile);
  o.input_dropout = config.get(keys::ml_input_dropout);
  o.reconstruction_range = config.get(keys::ml_reconstruction_range);
  o.familiar_share = config.get(keys::ml_familiar_share);
  o.threshold_method = config.get(keys::ml_threshold_method);
  if (o.threshold_method != "alert_rate" && o.threshold_method != "quantile")
    throw ConfigError("ml.threshold_method must be alert_rate or quantile, not \"" + o.threshold_method +
                      "\"");
  o.target_false_alerts = config.get(keys::ml_target_false_alerts);
  o.raise_k = static_cast<int>(config.get(keys::ml_raise_k));
  o.window_n = static_cast<int>(config.get(keys::ml_window_n));
  return o;
}

ml::PromotionMargins promotion_margins(const Config& config) {
  ml::PromotionMargins m;
  m.false_alerts = config.get(keys::ml_promotion_margin_false_alerts);
  m.missed_alerts = config.get(keys::ml_promotion_margin_missed_alerts);
  m.unfamiliar = config.get(keys::ml_promotion_margin_unfamiliar);
  m.disagreement = config.get(keys::ml_promotion_margin_disagreement);
  m.signal_false_alerts = config.get(keys::ml_promotion_margin_signal_false_alerts);
  return m;
}

stages::WarmupTrainer warmup_trainer(const Config& config) {
  const auto name = config.get(keys::ml_architecture);
  ml::architecture_by_name(name);  // an unknown name fails now, not after the warm-up
  auto options = train_options(config);
  options.progress = false;  // `up` has its own progress line
  return [name, options](const ml::TrainingData& data, std::stop_token stop) {
    // On the features of the catalog the stage's events carry.
    auto stoppable = options;
    stoppable.stop_requested = [stop = std::move(stop)] { return stop.stop_requested(); };
    auto model = ml::train_model(data, ml::architecture_by_name(name, data.space), stoppable);
    return stages::TrainedModel{model, ml::encode_artifact(*model)};
  };
}

stages::CandidateTrainer candidate_trainer(const Config& config) {
  const auto name = config.get(keys::ml_architecture);
  ml::architecture_by_name(name);  // an unknown name fails now, not at the first candidate
  auto options = train_options(config);
  options.progress = false;
  return [name, options](const ml::TrainingData& data, const stages::TrainRequest& request,
                         std::stop_token stop) {
    auto stoppable = options;
    stoppable.stop_requested = [stop = std::move(stop)] { return stop.stop_requested(); };
    auto model = ml::train_model(data, ml::architecture_by_name(name, data.space), stoppable);
    model->meta.parent = request.parent;
    model->meta.trigger = request.trigger;
    return stages::TrainedModel{model, ml::encode_artifact(*model)};
  };
}

}  // namespace fleettwin::app
