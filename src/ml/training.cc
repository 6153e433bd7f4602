// The only translation unit of fleettwin that includes libtorch.
#include "ml/training.h"

#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "core/clock.h"

namespace fleettwin::ml {

namespace {

torch::nn::Sequential build_network(const Architecture& arch) {
  torch::nn::Sequential seq;
  std::size_t width = arch.features.size();
  for (std::size_t l = 0; l < arch.hidden.size(); ++l) {
    seq->push_back(torch::nn::Linear(static_cast<int64_t>(width), static_cast<int64_t>(arch.hidden[l])));
    switch (arch.activations[l]) {
      case Activation::kTanh:
        seq->push_back(torch::nn::Tanh());
        break;
      case Activation::kRelu:
        seq->push_back(torch::nn::ReLU());
        break;
      case Activation::kIdentity:
        break;
    }
    width = arch.hidden[l];
  }
  seq->push_back(torch::nn::Linear(static_cast<int64_t>(width), static_cast<int64_t>(arch.features.size())));
  return seq;
}

std::vector<torch::nn::LinearImpl*> linears(torch::nn::Sequential& seq) {
  std::vector<torch::nn::LinearImpl*> out;
  for (const auto& child : seq->children())
    if (auto* lin = child->as<torch::nn::LinearImpl>()) out.push_back(lin);
  return out;
}

// Copies the trained weights into the plain-loop network the scorer runs (see Mlp for why).
Mlp extract(torch::nn::Sequential& seq, const Architecture& arch) {
  std::vector<DenseLayer> layers;
  const auto lins = linears(seq);
  for (std::size_t l = 0; l < lins.size(); ++l) {
    auto w = lins[l]->weight.detach().contiguous();  // [out][in]
    auto b = lins[l]->bias.detach().contiguous();
    DenseLayer d;
    d.out = static_cast<std::size_t>(w.size(0));
    d.in = static_cast<std::size_t>(w.size(1));
    d.weight.resize(d.in * d.out);
    const float* pw = w.data_ptr<float>();
    for (std::size_t o = 0; o < d.out; ++o)
      for (std::size_t i = 0; i < d.in; ++i) d.weight[i * d.out + o] = pw[o * d.in + i];
    d.bias.assign(b.data_ptr<float>(), b.data_ptr<float>() + d.out);
    d.activation = l < arch.activations.size() ? arch.activations[l] : Activation::kIdentity;
    layers.push_back(std::move(d));
  }
  return Mlp(std::move(layers));
}

void load_into(torch::nn::Sequential& seq, const Mlp& mlp) {
  torch::NoGradGuard no_grad;
  const auto lins = linears(seq);
  if (lins.size() != mlp.layers().size()) throw std::invalid_argument("model: layer count mismatch");
  for (std::size_t l = 0; l < lins.size(); ++l) {
    const auto& d = mlp.layers()[l];
    auto w = torch::empty({static_cast<int64_t>(d.out), static_cast<int64_t>(d.in)});
    float* pw = w.data_ptr<float>();
    for (std::size_t o = 0; o < d.out; ++o)
      for (std::size_t i = 0; i < d.in; ++i) pw[o * d.in + i] = d.weight[i * d.out + o];
    lins[l]->weight.copy_(w);
    lins[l]->bias.copy_(torch::from_blob(const_cast<float*>(d.bias.data()), {static_cast<int64_t>(d.out)}));
  }
}

std::string utc_stamp(int64_t ms) {
  const std::time_t t = ms / 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

void progress_line(const std::string& name, int epoch, int max_epochs, double loss, double val, bool done) {
  const bool tty = isatty(STDERR_FILENO);
  constexpr int kWidth = 20;
  const int filled = max_epochs > 0 ? epoch * kWidth / max_epochs : kWidth;
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.resize(kWidth, '.');
  std::fprintf(stderr, "%strain %s [%s] epoch %d/%d loss %.5f val %.5f%s%s", tty ? "\r\033[K" : "",
               name.c_str(), bar.c_str(), epoch, max_epochs, loss, val, done ? " (done)" : "",
               (tty && !done) ? "" : "\n");
  std::fflush(stderr);
}

}  // namespace

constexpr double kReconstructionMargin = 0.5;

namespace {

/// The rows one training run works on, carried from the split to the calibration: the indices into
/// TrainingData (the training rows, shuffled and capped, then the held-out rows), and the chosen features of
/// each part, scaled.
struct TrainingRows {
  std::vector<std::size_t> order;  // training rows first, then each held-out car's events in order
  std::size_t n_train = 0, n_val = 0;
  std::vector<float> train, val;  // n_train x d and n_val x d, scaled
  RobustScaler scaler;
};

/// What the epoch loop hands on: the losses of the epoch kept, and how many epochs ran.
struct FitResult {
  double best_val = INFINITY, best_train = 0;
  int epochs = 0;
};

/// Splits the rows into training and held-out ones (by car), drawing from `rng` in the order the artifact's
/// reproducibility depends on.
TrainingRows split_rows(const TrainingData& data, const TrainOptions& options, std::mt19937_64& rng) {
  const std::size_t total = data.rows();
  // Hold out whole cars: early stopping and calibration then see each held-out car's events in order,
  // as the score stage does (per-car averaging), and never a car the network trained on.
  std::vector<uint32_t> car_ids(static_cast<std::size_t>(std::max<int64_t>(data.cars, 1)));
  std::iota(car_ids.begin(), car_ids.end(), 0u);
  std::shuffle(car_ids.begin(), car_ids.end(), rng);
  const auto val_cars =
      std::clamp<std::size_t>(static_cast<std::size_t>(std::lround(static_cast<double>(car_ids.size()) *
                                                                   options.validation_fraction)),
                              1, std::max<std::size_t>(car_ids.size() - 1, 1));
  std::vector<char> held_out(car_ids.size(), 0);
  for (std::size_t i = 0; i < val_cars; ++i) held_out[car_ids[i]] = 1;
  TrainingRows rows;
  auto& order = rows.order;
  std::vector<std::size_t> val_order;  // val_order keeps each car's events in order
  for (std::size_t r = 0; r < total; ++r) (held_out[data.car[r]] ? val_order : order).push_back(r);
  std::shuffle(order.begin(), order.end(), rng);
  if (order.size() > options.max_rows) order.resize(options.max_rows);
  if (order.size() < 10 || val_order.size() < 10)
    throw std::invalid_argument("train: too few events to hold some out (" + std::to_string(total) +
                                " events, " + std::to_string(data.cars) + " cars)");
  rows.n_train = order.size();
  rows.n_val = val_order.size();
  order.insert(order.end(), val_order.begin(), val_order.end());
  return rows;
}

/// The architecture's features of rows order[from, to), row-major: the matrix the network sees.
std::vector<float> gather_features(const TrainingData& data, const Architecture& arch,
                                   const std::vector<std::size_t>& order, std::size_t from, std::size_t to) {
  const std::size_t d = arch.features.size(), width = data.space->size();
  std::vector<float> m((to - from) * d);
  for (std::size_t r = from; r < to; ++r)
    for (std::size_t j = 0; j < d; ++j)
      m[(r - from) * d + j] = data.features[order[r] * width + arch.features[j]];
  return m;
}

/// Gathers both parts' features and scales them with a scaler fitted on the training part only.
void scale_rows(TrainingRows& rows, const TrainingData& data, const Architecture& arch) {
  rows.train = gather_features(data, arch, rows.order, 0, rows.n_train);
  rows.val = gather_features(data, arch, rows.order, rows.n_train, rows.order.size());
  rows.scaler = RobustScaler::fit(rows.train.data(), rows.n_train, arch.features.size());
  rows.scaler.transform(rows.train.data(), rows.n_train);
  rows.scaler.transform(rows.val.data(), rows.n_val);
}

/// An owning tensor copy of an n x d matrix, so the tensor outlives the vector.
torch::Tensor to_tensor(std::vector<float>& m, std::size_t n, std::size_t d) {
  return torch::from_blob(m.data(), {static_cast<int64_t>(n), static_cast<int64_t>(d)}).clone();
}

/// A 1 x d mask: 0 for the architecture's predicted inputs, 1 for the rest.
torch::Tensor shown_mask(const Architecture& arch) {
  const std::size_t d = arch.features.size();
  // Predicted inputs (Architecture::predicted): 0 (their median once scaled) in every training row, in
  // validation and (weights zeroed below) when scoring, so the network learns to fill them in from the rest
  // and never reads them.
  std::vector<float> shown(d, 1.f);
  for (std::size_t j = 0; j < d; ++j)
    if (std::find(arch.predicted.begin(), arch.predicted.end(), arch.features[j]) != arch.predicted.end())
      shown[j] = 0.f;
  return torch::from_blob(shown.data(), {1, static_cast<int64_t>(d)}).clone();
}

/// One pass over the training rows in random minibatches at the epoch's decayed learning rate; returns the
/// mean minibatch loss.
double train_epoch(torch::nn::Sequential& net, torch::optim::Adam& adam, const torch::Tensor& train_t,
                   const torch::Tensor& shown_t, int epoch, const TrainOptions& options) {
  const auto n_train = train_t.size(0);
  const auto batch = static_cast<int64_t>(std::max<std::size_t>(1, options.batch));
  for (auto& group : adam.param_groups())
    static_cast<torch::optim::AdamOptions&>(group.options())
        .lr(options.learning_rate * std::pow(options.learning_rate_decay, epoch - 1));
  net->train();
  auto perm = torch::randperm(n_train, torch::kLong);
  double sum = 0;
  int64_t steps = 0;
  for (int64_t s = 0; s < n_train; s += batch) {
    if (options.stop_requested && options.stop_requested()) throw TrainingStopped();
    auto idx = perm.slice(0, s, std::min<int64_t>(s + batch, n_train));
    auto x = train_t.index_select(0, idx);
    adam.zero_grad();
    // Denoising: a share of the inputs is set to the median (0 once scaled) and the network must still
    // give back the clean row, so it learns to predict each signal from the others instead of copying it
    // through, and a failure in one signal is not reconstructed along with it.
    auto input = x * shown_t;
    if (options.input_dropout > 0)
      input = input * (torch::rand_like(x) >= options.input_dropout).to(torch::kFloat);
    auto loss = torch::mse_loss(net->forward(input), x);
    loss.backward();
    adam.step();
    sum += loss.item<double>();
    ++steps;
  }
  return steps ? sum / static_cast<double>(steps) : 0;
}

/// The loss on the held-out rows, which decides early stopping.
double validation_loss(torch::nn::Sequential& net, const torch::Tensor& val_t, const torch::Tensor& shown_t) {
  torch::NoGradGuard no_grad;
  net->eval();
  return torch::mse_loss(net->forward(val_t * shown_t), val_t).item<double>();
}

/// Trains `net` until the validation loss stops improving for `patience` epochs (or max_epochs), and leaves
/// it with the weights of the best epoch, predicted inputs disconnected.
FitResult fit_network(torch::nn::Sequential& net, const torch::Tensor& train_t, const torch::Tensor& val_t,
                      const torch::Tensor& shown_t, const Architecture& arch, const TrainOptions& options) {
  torch::optim::Adam adam(net->parameters(), torch::optim::AdamOptions(options.learning_rate));
  FitResult fit;
  int since_best = 0;
  std::stringstream best_state;
  for (int epoch = 1; epoch <= options.max_epochs; ++epoch) {
    fit.epochs = epoch;
    const double train_loss = train_epoch(net, adam, train_t, shown_t, epoch, options);
    const double val_loss = validation_loss(net, val_t, shown_t);
    if (options.progress) progress_line(arch.name, epoch, options.max_epochs, train_loss, val_loss, false);
    if (val_loss < fit.best_val - 1e-7) {
      fit.best_val = val_loss;
      fit.best_train = train_loss;
      since_best = 0;
      best_state.str("");
      torch::save(net, best_state);
    } else if (++since_best >= options.patience) {
      break;
    }
  }
  torch::load(net, best_state);
  {
    // Zero the first-layer weights of predicted inputs, so that the network (here, in the artifact and in
    // Mlp) scores as if they read their median, as in the training rows that hid them, whatever they read.
    torch::NoGradGuard no_grad;
    linears(net).front()->weight.mul_(shown_t);
  }
  if (options.progress)
    progress_line(arch.name, fit.epochs, options.max_epochs, fit.best_train, fit.best_val, true);
  return fit;
}

/// A model of the trained network with its scaler and per-input weights; error scales still at 1.
std::shared_ptr<Model> new_model(torch::nn::Sequential& net, const Architecture& arch,
                                 const RobustScaler& scaler) {
  const std::size_t d = arch.features.size();
  auto model = std::make_shared<Model>();
  auto& meta = model->meta;
  meta.architecture = arch;
  meta.center = scaler.center();
  meta.scale = scaler.scale();
  meta.weight.assign(d, 1.0f);
  for (std::size_t j = 0; j < d; ++j)
    if (arch.space->cardata(core::kControlUnitFirmware) == arch.features[j])
      meta.weight[j] = 0;               // firmware is a rule, not learned
  for (const auto c : arch.conditions)  // seen by the network, never scored (Architecture::conditions)
    for (std::size_t j = 0; j < d; ++j)
      if (arch.features[j] == c) meta.weight[j] = 0;
  meta.error_scale.assign(d, 1.0f);
  model->mlp = extract(net, arch);
  return model;
}

/// For kMaxDeviation: the range of each input over the training rows, scaled, outside which a reading is
/// itself a deviation; values only options.familiar_share of the training cars reached are left out of it.
void fill_input_range(ModelMeta& meta, const TrainingData& data, const Architecture& arch,
                      const TrainingRows& rows, double familiar_share) {
  const std::size_t d = arch.features.size();
  // The extremes in raw units, scaled as the Scorer scales (monotonic, so the scaled extreme is the extreme
  // of the scaled values): `train` was scaled by division, which can differ in the last bit, and then the
  // commonest value of an input (0 air flow in every parked car) could read as outside its own range.
  // Per car first, so the share counts cars: one car in an unusual mode for an hour is many rows but one car.
  std::unordered_map<uint32_t, std::pair<float, float>> extremes;
  std::vector<float> lows, highs;
  meta.input_low.assign(d, 0);
  meta.input_high.assign(d, 0);  // never defined: 0 to 0
  for (std::size_t j = 0; j < d; ++j) {
    extremes.clear();
    for (std::size_t r = 0; r < rows.n_train; ++r) {
      const std::size_t row = rows.order[r];
      const float x = data.features[row * data.space->size() + arch.features[j]];
      if (!defined(x)) continue;
      const auto it = extremes.try_emplace(data.car[row], x, x).first;
      it->second.first = std::min(it->second.first, x);
      it->second.second = std::max(it->second.second, x);
    }
    if (extremes.empty()) continue;
    lows.clear();
    highs.clear();
    for (const auto& [car, e] : extremes) {
      lows.push_back(e.first);
      highs.push_back(e.second);
    }
    // The k-th lowest low and k-th highest high (k = 0: the minimum and maximum).
    const auto k = static_cast<std::ptrdiff_t>(std::min(
        static_cast<double>(lows.size() - 1), std::floor(familiar_share * static_cast<double>(lows.size()))));
    std::nth_element(lows.begin(), lows.begin() + k, lows.end());
    std::nth_element(highs.begin(), highs.begin() + k, highs.end(), std::greater<>());
    const float inv = inverse_scale(meta.scale[j]);
    meta.input_low[j] = to_scaled(lows[static_cast<std::size_t>(k)], meta.center[j], inv);
    meta.input_high[j] = to_scaled(highs[static_cast<std::size_t>(k)], meta.center[j], inv);
  }
}

/// For kMaxDeviation with options.reconstruction_range: the band each reconstruction is clamped to.
void fill_reconstruction_range(ModelMeta& meta, const TrainingData& data, const Architecture& arch,
                               const TrainingRows& rows, const TrainOptions& options) {
  const std::size_t d = arch.features.size();
  // (The reference architecture stays as published: unbounded.) Per input: the range that all but a few
  // cars stayed within. Failing cars in the training window are few, and their values are the extremes that
  // bounding must exclude; a plain quantile of rows would count a failing car's hour of overheating as
  // healthy.
  const double share = std::min(options.reconstruction_range, 1.0);
  std::unordered_map<uint32_t, std::pair<float, float>> extremes;
  std::vector<float> lows, highs;
  for (std::size_t j = 0; j < d; ++j) {
    extremes.clear();
    for (std::size_t r = 0; r < rows.n_train; ++r) {
      if (!defined(data.features[rows.order[r] * data.space->size() + arch.features[j]])) continue;
      const float x = rows.train[r * d + j];
      const auto it = extremes.try_emplace(data.car[rows.order[r]], x, x).first;
      it->second.first = std::min(it->second.first, x);
      it->second.second = std::max(it->second.second, x);
    }
    lows.clear();
    highs.clear();
    for (const auto& [car, e] : extremes) {
      lows.push_back(e.first);
      highs.push_back(e.second);
    }
    const double lo = lows.empty() ? 0.0 : quantile(lows, 1.0 - share);
    const double hi = highs.empty() ? 0.0 : quantile(highs, share);
    // Widened by half its width on each side: healthy signals drift past one hour's range (charge runs
    // lower as the day goes on), and only a value well outside it is one no healthy car reads.
    const double margin = kReconstructionMargin * (hi - lo);
    meta.recon_low.push_back(static_cast<float>(lo - margin));
    meta.recon_high.push_back(static_cast<float>(hi + margin));
  }
}

/// The typical reconstruction error of each input, on each side, over (at most 100,000) training rows.
void fill_error_scales(Model& model, const TrainingData& data, const Architecture& arch,
                       const TrainingRows& rows) {
  const std::size_t d = arch.features.size();
  auto& meta = model.meta;
  // Typical error per feature on the training rows, so a score of 3 means "three typical errors" whatever
  // the feature's units: the normal sigma (median absolute error x 1.4826), or a quarter of the 99.9th
  // percentile where that is larger. The second keeps signals whose healthy errors have heavy tails (a
  // pothole on a raw accelerometer, a tyre reading flipping by 1 psi) from outvoting steady shifts. The
  // tail is measured on each side apart: healthy errors are often lopsided (a cold engine's coolant reads
  // far below what a warm one's would, never far above), and a failure that pushes a signal the way
  // healthy cars never go should not hide behind the other side's tail.
  meta.error_scale_low.assign(d, 1.0f);
  const std::size_t n = std::min<std::size_t>(rows.n_train, 100'000);
  std::vector<float> recon(n * d), scratch;
  model.mlp.forward(rows.train.data(), n, recon.data(), scratch);
  std::vector<float> col, high, low;
  for (std::size_t j = 0; j < d; ++j) {
    col.clear();
    high.clear();
    low.clear();
    for (std::size_t r = 0; r < n; ++r) {
      if (!defined(data.features[rows.order[r] * data.space->size() + arch.features[j]]))
        continue;  // scored as 0
      float y = recon[r * d + j];
      if (!meta.recon_low.empty()) y = std::clamp(y, meta.recon_low[j], meta.recon_high[j]);
      const float e = rows.train[r * d + j] - y;
      col.push_back(std::abs(e));
      high.push_back(std::max(e, 0.f));
      low.push_back(std::max(-e, 0.f));
    }
    const double sigma = quantile(col, 0.5) * 1.4826;
    // An integer signal (tyre pressure in whole psi) cannot be predicted finer than one step.
    const auto f = arch.features[j];
    const double step = arch.space->whole_steps(f) ? 1.0 / meta.scale[j] : 0.0;
    auto scale = [&](std::vector<float>& side) {
      return std::max(1e-3f, static_cast<float>(std::max({sigma, quantile(side, 0.999) / 4.0, step})));
    };
    meta.error_scale[j] = scale(high);
    meta.error_scale_low[j] = scale(low);
  }
}

/// Sets the alert threshold from the held-out cars.
void calibrate(const std::shared_ptr<Model>& model, const TrainingData& data, const TrainingRows& rows,
               const TrainOptions& options) {
  auto& meta = model->meta;
  const std::size_t n_val = rows.n_val, d = meta.architecture.features.size();
  // Threshold on the held-out cars, scored exactly as the score stage will (in order, averaged per car).
  const std::size_t width = data.space->size();
  std::vector<float> raw(n_val * width);
  std::vector<uint32_t> cars(n_val);
  for (std::size_t r = 0; r < n_val; ++r) {
    const std::size_t src = rows.order[rows.n_train + r];
    std::memcpy(&raw[r * width], &data.features[src * width], width * sizeof(float));
    cars[r] = data.car[src];
  }
  // Event spacing: the window's length over each car's share of its events.
  const double hours_per_event = static_cast<double>(std::max<int64_t>(data.to_ts - data.from_ts, 1)) /
                                 3.6e6 * static_cast<double>(std::max<int64_t>(data.cars, 1)) /
                                 static_cast<double>(data.rows());
  const double target = options.target_false_alerts / 1000.0;  // per car-hour
  if (options.threshold_method == "alert_rate")  // each input and side: an equal share of the budget
    equalize_extremes(*model, raw.data(), cars.data(), n_val,
                      target * hours_per_event / (2.0 * static_cast<double>(d)));
  Scorer scorer(model);
  const auto scores = score_sequences(scorer, raw.data(), cars.data(), n_val);
  if (options.threshold_method != "alert_rate" && options.threshold_method != "quantile")
    throw std::invalid_argument("train: unknown threshold method \"" + options.threshold_method +
                                "\" (alert_rate or quantile)");
  std::optional<Calibration> rate;
  if (options.threshold_method == "alert_rate")
    rate = calibrate_alert_rate(alert_statistic(scores, cars, options.raise_k, options.window_n), cars,
                                hours_per_event, target);
  Calibration c = rate ? *rate : calibrate_threshold(scores, cars, options.quantile);
  if (options.threshold_method == "alert_rate" && !rate)
    c.method += " (too little held-out history for alert_rate)";
  meta.threshold = c.threshold;
  meta.threshold_method = c.method;
  meta.excluded_cars = c.excluded_cars;
}

/// Records where the model came from: data window, version, losses and time taken.
void fill_provenance(ModelMeta& meta, const TrainingData& data, const TrainOptions& options,
                     const FitResult& fit, std::chrono::steady_clock::time_point started) {
  meta.quantile = options.quantile;
  meta.created_ms = core::wall_clock_ms();
  meta.version =
      options.version.empty() ? meta.architecture.name + "-" + utc_stamp(meta.created_ms) : options.version;
  meta.topic = data.topic;
  meta.catalog = data.space->catalog().label();
  meta.from_ts = data.from_ts;
  meta.to_ts = data.to_ts;
  meta.events = static_cast<int64_t>(data.rows());
  meta.cars = data.cars;
  meta.train_loss = fit.best_train;
  meta.val_loss = fit.best_val;
  meta.epochs = fit.epochs;
  meta.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
}

}  // namespace

std::shared_ptr<Model> train_model(const TrainingData& data, const Architecture& arch,
                                   const TrainOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  const std::size_t total = data.rows();
  if (total < 50)
    throw std::invalid_argument("train: need at least 50 events, have " + std::to_string(total));
  if (data.features.size() != total * data.space->size())
    throw std::invalid_argument("train: features do not match rows");
  if (!(*data.space == *arch.space))
    throw std::invalid_argument("train: the architecture's features are not those of the data's catalog (" +
                                data.space->catalog().label() + ")");
  // Small matrices: one thread beats the synchronisation of several, and leaves the other core to the
  // pipeline.
  torch::set_num_threads(1);
  torch::manual_seed(options.seed);
  std::mt19937_64 rng(options.seed);

  // The order of random draws is part of the result: the split (rng), then the network's initial weights
  // and the epochs' permutations and dropout masks (torch's generator).
  TrainingRows rows = split_rows(data, options, rng);
  scale_rows(rows, data, arch);
  const std::size_t d = arch.features.size();
  auto train_t = to_tensor(rows.train, rows.n_train, d);
  auto val_t = to_tensor(rows.val, rows.n_val, d);

  auto net = build_network(arch);
  const auto shown_t = shown_mask(arch);
  const FitResult fit = fit_network(net, train_t, val_t, shown_t, arch, options);

  if (options.stop_requested && options.stop_requested()) throw TrainingStopped();
  auto model = new_model(net, arch, rows.scaler);
  if (arch.score == ScoreMethod::kMaxDeviation)
    fill_input_range(model->meta, data, arch, rows, options.familiar_share);
  if (options.reconstruction_range > 0 && arch.score == ScoreMethod::kMaxDeviation)
    fill_reconstruction_range(model->meta, data, arch, rows, options);
  fill_error_scales(*model, data, arch, rows);
  if (options.stop_requested && options.stop_requested()) throw TrainingStopped();
  calibrate(model, data, rows, options);
  fill_provenance(model->meta, data, options, fit, started);
  // After every random draw: the reference takes none, so a seed trains the same network as before.
  model->meta.drift = drift_references(data, arch.features);
  return model;
}

namespace {

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

std::string encode_artifact(const Model& model) {
  auto net = build_network(model.meta.architecture);
  load_into(net, model.mlp);
  std::ostringstream module;
  torch::save(net, module);
  const std::string meta = meta_to_json(model.meta);
  const std::string bytes = module.str();
  std::string out(kArtifactMagic);
  put_u64(out, meta.size());
  out += meta;
  put_u64(out, bytes.size());
  out += bytes;
  return out;
}

std::shared_ptr<Model> decode_artifact(std::string_view in, std::shared_ptr<const FeatureSpace> space) {
  ArtifactHeader header = read_artifact_header(in, std::move(space));
  auto model = std::make_shared<Model>();
  model->meta = std::move(header.meta);
  auto net = build_network(model->meta.architecture);
  try {
    std::istringstream module{std::string(header.module)};
    torch::load(net, module);
  } catch (const c10::Error& e) {
    throw std::invalid_argument(std::string("model artifact: cannot read the module: ") +
                                e.what_without_backtrace());
  }
  model->mlp = extract(net, model->meta.architecture);
  return model;
}

void torch_reconstruct(const Model& model, const float* in, std::size_t rows, float* out) {
  // Cached per thread and model: a caller holding the module itself would need libtorch's headers.
  thread_local std::pair<const Model*, torch::nn::Sequential> cached{nullptr, nullptr};
  if (cached.first != &model) {
    cached.second = build_network(model.meta.architecture);
    load_into(cached.second, model.mlp);
    cached.second->eval();
    cached.first = &model;
  }
  torch::NoGradGuard no_grad;
  const auto d = static_cast<int64_t>(model.mlp.inputs());
  auto x = torch::from_blob(const_cast<float*>(in), {static_cast<int64_t>(rows), d});
  auto y = cached.second->forward(x).contiguous();
  std::memcpy(out, y.data_ptr<float>(), rows * static_cast<std::size_t>(d) * sizeof(float));
}

void save_artifact(const Model& model, const std::string& path) {
  const std::string bytes = encode_artifact(model);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::shared_ptr<Model> load_artifact(const std::string& path, std::shared_ptr<const FeatureSpace> space) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return decode_artifact(s.str(), std::move(space));
}

}  // namespace fleettwin::ml
