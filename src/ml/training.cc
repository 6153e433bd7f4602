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
#include <limits>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>

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

std::shared_ptr<Model> train_model(const TrainingData& data, const Architecture& arch,
                                   const TrainOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  const std::size_t total = data.rows();
  if (total < 50)
    throw std::invalid_argument("train: need at least 50 events, have " + std::to_string(total));
  if (data.features.size() != total * kFeatureCount)
    throw std::invalid_argument("train: features do not match rows");
  // Small matrices: one thread beats the synchronisation of several, and leaves the other core to the
  // pipeline.
  torch::set_num_threads(1);
  torch::manual_seed(options.seed);
  std::mt19937_64 rng(options.seed);

  // Hold out whole cars: early stopping and calibration then see each held-out car's events in order,
  // as the score stage does (per-car averaging), and never a car the network trained on.
  std::vector<uint32_t> car_ids(static_cast<std::size_t>(std::max<int64_t>(data.cars, 1)));
  std::iota(car_ids.begin(), car_ids.end(), 0u);
  std::shuffle(car_ids.begin(), car_ids.end(), rng);
  const auto val_cars = std::clamp<std::size_t>(
      static_cast<std::size_t>(static_cast<double>(car_ids.size()) * options.validation_fraction + 0.5), 1,
      std::max<std::size_t>(car_ids.size() - 1, 1));
  std::vector<char> held_out(car_ids.size(), 0);
  for (std::size_t i = 0; i < val_cars; ++i) held_out[car_ids[i]] = 1;
  std::vector<std::size_t> order, val_order;  // val_order keeps each car's events in order
  for (std::size_t r = 0; r < total; ++r) (held_out[data.car[r]] ? val_order : order).push_back(r);
  std::shuffle(order.begin(), order.end(), rng);
  if (order.size() > options.max_rows) order.resize(options.max_rows);
  if (order.size() < 10 || val_order.size() < 10)
    throw std::invalid_argument("train: too few events to hold some out (" + std::to_string(total) +
                                " events, " + std::to_string(data.cars) + " cars)");
  const std::size_t n_train = order.size(), n_val = val_order.size();
  order.insert(order.end(), val_order.begin(), val_order.end());

  const std::size_t d = arch.features.size();
  auto gather = [&](std::size_t from, std::size_t to) {
    std::vector<float> m((to - from) * d);
    for (std::size_t r = from; r < to; ++r)
      for (std::size_t j = 0; j < d; ++j)
        m[(r - from) * d + j] = data.features[order[r] * kFeatureCount + arch.features[j]];
    return m;
  };
  std::vector<float> train = gather(0, n_train), val = gather(n_train, order.size());
  const auto scaler = RobustScaler::fit(train.data(), n_train, d);
  scaler.transform(train.data(), n_train);
  scaler.transform(val.data(), n_val);
  auto train_t =
      torch::from_blob(train.data(), {static_cast<int64_t>(n_train), static_cast<int64_t>(d)}).clone();
  auto val_t = torch::from_blob(val.data(), {static_cast<int64_t>(n_val), static_cast<int64_t>(d)}).clone();

  auto net = build_network(arch);
  // Predicted inputs (Architecture::predicted): 0 (their median once scaled) in every training row, in
  // validation and (weights zeroed below) when scoring, so the network learns to fill them in from the rest
  // and never reads them.
  std::vector<float> shown(d, 1.f);
  for (std::size_t j = 0; j < d; ++j)
    if (std::find(arch.predicted.begin(), arch.predicted.end(), arch.features[j]) != arch.predicted.end())
      shown[j] = 0.f;
  const auto shown_t = torch::from_blob(shown.data(), {1, static_cast<int64_t>(d)}).clone();
  torch::optim::Adam adam(net->parameters(), torch::optim::AdamOptions(options.learning_rate));
  double best_val = INFINITY, best_train = 0;
  int since_best = 0, epochs = 0;
  std::stringstream best_state;
  const auto batch = static_cast<int64_t>(std::max<std::size_t>(1, options.batch));
  for (int epoch = 1; epoch <= options.max_epochs; ++epoch) {
    epochs = epoch;
    for (auto& group : adam.param_groups())
      static_cast<torch::optim::AdamOptions&>(group.options())
          .lr(options.learning_rate * std::pow(options.learning_rate_decay, epoch - 1));
    net->train();
    auto perm = torch::randperm(static_cast<int64_t>(n_train), torch::kLong);
    double sum = 0;
    int64_t steps = 0;
    for (int64_t s = 0; s < static_cast<int64_t>(n_train); s += batch) {
      auto idx = perm.slice(0, s, std::min<int64_t>(s + batch, static_cast<int64_t>(n_train)));
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
    double val_loss;
    {
      torch::NoGradGuard no_grad;
      net->eval();
      val_loss = torch::mse_loss(net->forward(val_t * shown_t), val_t).item<double>();
    }
    const double train_loss = steps ? sum / static_cast<double>(steps) : 0;
    if (options.progress) progress_line(arch.name, epoch, options.max_epochs, train_loss, val_loss, false);
    if (val_loss < best_val - 1e-7) {
      best_val = val_loss;
      best_train = train_loss;
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
  if (options.progress) progress_line(arch.name, epochs, options.max_epochs, best_train, best_val, true);

  auto model = std::make_shared<Model>();
  auto& meta = model->meta;
  meta.architecture = arch;
  meta.center = scaler.center();
  meta.scale = scaler.scale();
  meta.weight.assign(d, 1.0f);
  for (std::size_t j = 0; j < d; ++j)
    if (arch.features[j] == core::kControlUnitFirmware)
      meta.weight[j] = 0;  // firmware is a rule, not learned
  meta.error_scale.assign(d, 1.0f);
  model->mlp = extract(net, arch);
  if (arch.score == ScoreMethod::kMaxDeviation) {
    // The extremes in raw units, scaled as the Scorer scales (monotonic, so the scaled extreme is the extreme
    // of the scaled values): `train` was scaled by division, which can differ in the last bit, and then the
    // commonest value of an input (0 air flow in every parked car) could read as outside its own range.
    std::vector<float> low(d, std::numeric_limits<float>::infinity()),
        high(d, -std::numeric_limits<float>::infinity());
    for (std::size_t r = 0; r < n_train; ++r)
      for (std::size_t j = 0; j < d; ++j) {
        const float x = data.features[order[r] * kFeatureCount + arch.features[j]];
        if (!defined(x)) continue;
        low[j] = std::min(low[j], x);
        high[j] = std::max(high[j], x);
      }
    meta.input_low.assign(d, 0);
    meta.input_high.assign(d, 0);  // never defined: 0 to 0
    for (std::size_t j = 0; j < d; ++j)
      if (low[j] <= high[j]) {
        const float inv = inverse_scale(meta.scale[j]);
        meta.input_low[j] = to_scaled(low[j], meta.center[j], inv);
        meta.input_high[j] = to_scaled(high[j], meta.center[j], inv);
      }
  }
  if (options.reconstruction_range > 0 && arch.score == ScoreMethod::kMaxDeviation) {
    // (The reference architecture stays as published: unbounded.) Per input: the range that all but a few
    // cars stayed within. Failing cars in the training window are few, and their values are the extremes that
    // bounding must exclude; a plain quantile of rows would count a failing car's hour of overheating as
    // healthy.
    const double share = std::min(options.reconstruction_range, 1.0);
    std::unordered_map<uint32_t, std::pair<float, float>> extremes;
    std::vector<float> lows, highs;
    for (std::size_t j = 0; j < d; ++j) {
      extremes.clear();
      for (std::size_t r = 0; r < n_train; ++r) {
        if (!defined(data.features[order[r] * kFeatureCount + arch.features[j]])) continue;
        const float x = train[r * d + j];
        const auto it = extremes.try_emplace(data.car[order[r]], x, x).first;
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

  // Typical error per feature on the training rows, so a score of 3 means "three typical errors" whatever
  // the feature's units: the normal sigma (median absolute error x 1.4826), or a quarter of the 99.9th
  // percentile where that is larger. The second keeps signals whose healthy errors have heavy tails (a
  // pothole on a raw accelerometer, a tyre reading flipping by 1 psi) from outvoting steady shifts. The
  // tail is measured on each side apart: healthy errors are often lopsided (a cold engine's coolant reads
  // far below what a warm one's would, never far above), and a failure that pushes a signal the way
  // healthy cars never go should not hide behind the other side's tail.
  meta.error_scale_low.assign(d, 1.0f);
  {
    const std::size_t n = std::min<std::size_t>(n_train, 100'000);
    std::vector<float> recon(n * d), scratch;
    model->mlp.forward(train.data(), n, recon.data(), scratch);
    std::vector<float> col, high, low;
    for (std::size_t j = 0; j < d; ++j) {
      col.clear();
      high.clear();
      low.clear();
      for (std::size_t r = 0; r < n; ++r) {
        if (!defined(data.features[order[r] * kFeatureCount + arch.features[j]])) continue;  // scored as 0
        float y = recon[r * d + j];
        if (!meta.recon_low.empty()) y = std::clamp(y, meta.recon_low[j], meta.recon_high[j]);
        const float e = train[r * d + j] - y;
        col.push_back(std::abs(e));
        high.push_back(std::max(e, 0.f));
        low.push_back(std::max(-e, 0.f));
      }
      const double sigma = quantile(col, 0.5) * 1.4826;
      // An integer signal (tyre pressure in whole psi) cannot be predicted finer than one step.
      const auto f = arch.features[j];
      const double step = f < core::kSignalCount && core::kSignals[f].type == core::SignalType::kInt
                              ? 1.0 / meta.scale[j]
                              : 0.0;
      auto scale = [&](std::vector<float>& side) {
        return std::max(1e-3f, static_cast<float>(std::max({sigma, quantile(side, 0.999) / 4.0, step})));
      };
      meta.error_scale[j] = scale(high);
      meta.error_scale_low[j] = scale(low);
    }
  }

  // Threshold on the held-out cars, scored exactly as the score stage will (in order, averaged per car).
  {
    std::vector<float> rows(n_val * kFeatureCount);
    std::vector<uint32_t> cars(n_val);
    for (std::size_t r = 0; r < n_val; ++r) {
      const std::size_t src = order[n_train + r];
      std::memcpy(&rows[r * kFeatureCount], &data.features[src * kFeatureCount],
                  kFeatureCount * sizeof(float));
      cars[r] = data.car[src];
    }
    // Event spacing: the window's length over each car's share of its events.
    const double hours_per_event = static_cast<double>(std::max<int64_t>(data.to_ts - data.from_ts, 1)) /
                                   3.6e6 * static_cast<double>(std::max<int64_t>(data.cars, 1)) /
                                   static_cast<double>(total);
    const double target = options.target_false_alerts / 1000.0;  // per car-hour
    if (options.threshold_method == "alert_rate")  // each input and side: an equal share of the budget
      equalize_extremes(*model, rows.data(), cars.data(), n_val,
                        target * hours_per_event / (2.0 * static_cast<double>(d)));
    Scorer scorer(model);
    const auto scores = score_sequences(scorer, rows.data(), cars.data(), n_val);
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
  meta.quantile = options.quantile;
  meta.created_ms = core::wall_clock_ms();
  meta.version = options.version.empty() ? arch.name + "-" + utc_stamp(meta.created_ms) : options.version;
  meta.topic = data.topic;
  meta.from_ts = data.from_ts;
  meta.to_ts = data.to_ts;
  meta.events = static_cast<int64_t>(total);
  meta.cars = data.cars;
  meta.train_loss = best_train;
  meta.val_loss = best_val;
  meta.epochs = epochs;
  meta.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return model;
}

namespace {

constexpr char kMagic[8] = {'F', 'T', 'M', 'O', 'D', 'E', 'L', '1'};

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t get_u64(std::string_view& in) {
  if (in.size() < 8) throw std::invalid_argument("model artifact: truncated");
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  in.remove_prefix(8);
  return v;
}

}  // namespace

std::string encode_artifact(const Model& model) {
  auto net = build_network(model.meta.architecture);
  load_into(net, model.mlp);
  std::ostringstream module;
  torch::save(net, module);
  const std::string meta = meta_to_json(model.meta);
  const std::string bytes = module.str();
  std::string out(kMagic, sizeof kMagic);
  put_u64(out, meta.size());
  out += meta;
  put_u64(out, bytes.size());
  out += bytes;
  return out;
}

std::shared_ptr<Model> decode_artifact(std::string_view in) {
  if (in.size() < sizeof kMagic || std::memcmp(in.data(), kMagic, sizeof kMagic) != 0)
    throw std::invalid_argument("model artifact: not a fleettwin model (bad magic)");
  in.remove_prefix(sizeof kMagic);
  const uint64_t meta_len = get_u64(in);
  if (meta_len > in.size()) throw std::invalid_argument("model artifact: truncated metadata");
  auto model = std::make_shared<Model>();
  model->meta = meta_from_json(in.substr(0, meta_len));
  in.remove_prefix(meta_len);
  const uint64_t module_len = get_u64(in);
  if (module_len != in.size()) throw std::invalid_argument("model artifact: module length does not match");
  auto net = build_network(model->meta.architecture);
  try {
    std::istringstream module{std::string(in)};
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

std::shared_ptr<Model> load_artifact(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return decode_artifact(s.str());
}

}  // namespace fleettwin::ml
