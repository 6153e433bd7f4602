#include "ml/model.h"

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "codec/json_writer.h"

namespace fleettwin::ml {

namespace {

/// Signals that only grow (a firmware version, an odometer): a model reading one would age with every
/// release or kilometre, so they are no inputs (the firmware version is a rule, Monitor).
bool counter(const FeatureSpace& space, std::size_t feature) {
  if (feature >= space.signals()) return false;
  if (space.cardata(core::kControlUnitFirmware) == feature) return true;
  return space.catalog().find("odometer") == feature;
}

bool raw_accelerometer(const FeatureSpace& space, std::size_t feature) {
  for (std::size_t k = 0; k < 4; ++k)
    if (space.cardata(static_cast<core::Signal>(core::kAccelerometer11 + k)) == feature) return true;
  return false;
}

}  // namespace

Architecture fleettwin_architecture(std::shared_ptr<const FeatureSpace> space) {
  Architecture a;
  a.name = "fleettwin";
  // Not the raw accelerometer samples (white noise) and not the firmware version (a rule, and a number that
  // only grows: a model reading it would age with every release). The chassis shows only as
  // accel_corner_evidence, predicted from the rest: the smoothed amplitudes carry the last driving state for
  // minutes after it ended (a car parked after a fast road read as a broken state), and the amplitude
  // imbalance moved with them; the smoothed share imbalance lagged a failing damper by minutes (features.h).
  // Measured side by side in docs/benchmarks.md.
  const auto skip = [&](std::size_t i) {
    const auto& name = space->name(i);
    const bool derived = i >= space->signals();
    return raw_accelerometer(*space, i) || counter(*space, i) ||
           (derived && (name == "accel_imbalance" || name == "accel_share_imbalance" ||
                        name.starts_with("accel_amplitude_")));
  };
  for (std::size_t i = 0; i < space->size(); ++i)
    if (!skip(i)) a.features.push_back(i);
  // The two health indicators whose healthy value the rest predicts best are predicted, not shown (see
  // Architecture::predicted): shown coolant_heading, each training run learnt to copy a different share of it
  // and its healthy errors ended heavy-tailed on some (20 false alerts in 2,000 car-hours on one seed).
  for (const char* name : {"accel_corner_evidence", "coolant_heading"})
    if (const auto f = space->index(name)) a.predicted.push_back(*f);
  // The state of charge is where the driver left the pack, not how healthy it is: a failing cell shows in
  // the voltage and current the charge predicts. Scored, a charge lower than the training window's read as a
  // battery failure, and the current of a nearly empty pack (charged by the engine) as another one.
  if (const auto f = space->index("battery_percentage")) a.conditions.push_back(*f);
  // Wide enough to learn how the signals move together in every driving state (16-8-16 fitted them with
  // five times the loss and missed overheating), narrow enough in the middle not to copy its input.
  a.hidden = {32, 12, 32};
  a.activations = {Activation::kTanh, Activation::kTanh, Activation::kTanh};
  a.score = ScoreMethod::kMaxDeviation;
  a.smoothing = 0.3;
  a.space = std::move(space);
  return a;
}

Architecture reference_architecture(std::shared_ptr<const FeatureSpace> space) {
  Architecture a;
  a.name = "reference";
  for (std::size_t i = 0; i < space->signals(); ++i) a.features.push_back(i);
  a.hidden = {14, 7, 7, 14};
  a.activations = {Activation::kTanh, Activation::kRelu, Activation::kTanh, Activation::kRelu};
  a.score = ScoreMethod::kMse;
  a.space = std::move(space);
  return a;
}

Architecture architecture_by_name(const std::string& name, std::shared_ptr<const FeatureSpace> space) {
  if (name == "fleettwin") return fleettwin_architecture(std::move(space));
  if (name == "reference") return reference_architecture(std::move(space));
  throw std::invalid_argument("unknown architecture \"" + name + "\" (fleettwin | reference)");
}

namespace {

void floats(codec::JsonWriter& w, std::string_view key, const std::vector<float>& v) {
  w.key(key).begin_array();
  for (float x : v) w.number(x);
  w.end_array();
}

}  // namespace

std::string meta_to_json(const ModelMeta& m) {
  std::string out;
  codec::JsonWriter w(out);
  w.begin_object();
  w.key("format").integer(1);
  w.key("name").string(m.name);
  w.key("version").string(m.version);
  w.key("created_ms").integer(m.created_ms);
  w.key("architecture").string(m.architecture.name);
  const auto& space = *m.architecture.space;
  w.key("catalog").string(m.catalog.empty() ? space.catalog().label() : m.catalog);
  w.key("features").begin_array();
  for (auto f : m.architecture.features) w.string(space.name(f));
  w.end_array();
  // The other names of the signals read, so a scorer on a catalog naming them differently maps them.
  w.key("feature_aliases").begin_object();
  for (auto f : m.architecture.features) {
    if (f >= space.signals() || space.catalog()[f].aliases.empty()) continue;
    w.key(space.name(f)).begin_array();
    for (const auto& a : space.catalog()[f].aliases) w.string(a);
    w.end_array();
  }
  w.end_object();
  if (!m.architecture.predicted.empty()) {
    w.key("predicted").begin_array();
    for (auto f : m.architecture.predicted) w.string(space.name(f));
    w.end_array();
  }
  w.key("hidden").begin_array();
  for (auto h : m.architecture.hidden) w.integer(static_cast<int64_t>(h));
  w.end_array();
  w.key("activations").begin_array();
  for (auto a : m.architecture.activations) w.string(to_string(a));
  w.end_array();
  w.key("score_method").string(m.architecture.score == ScoreMethod::kMse ? "mse" : "max_deviation");
  w.key("smoothing").number(m.architecture.smoothing);
  w.key("scaler").begin_object().key("kind").string("robust_median_iqr");
  floats(w, "center", m.center);
  floats(w, "scale", m.scale);
  w.end_object();
  floats(w, "error_scale", m.error_scale);
  floats(w, "error_scale_low", m.error_scale_low);
  if (!m.recon_low.empty()) {
    w.key("reconstruction_range").begin_object();
    floats(w, "low", m.recon_low);
    floats(w, "high", m.recon_high);
    w.end_object();
  }
  if (!m.input_low.empty()) {
    w.key("input_range").begin_object();
    floats(w, "low", m.input_low);
    floats(w, "high", m.input_high);
    w.end_object();
  }
  floats(w, "weight", m.weight);
  w.key("threshold").begin_object();
  w.key("value")
      .number(m.threshold)
      .key("method")
      .string(m.threshold_method)
      .key("quantile")
      .number(m.quantile);
  w.key("excluded_cars").integer(m.excluded_cars).end_object();
  w.key("training").begin_object();
  w.key("topic").string(m.topic).key("from_ts").integer(m.from_ts).key("to_ts").integer(m.to_ts);
  w.key("events").integer(m.events).key("cars").integer(m.cars).end_object();
  w.key("metrics").begin_object();
  w.key("train_loss").number(m.train_loss).key("val_loss").number(m.val_loss);
  w.key("epochs").integer(m.epochs).key("train_seconds").number(m.train_seconds).end_object();
  if (!m.parent.empty() || !m.trigger.empty())
    w.key("lineage")
        .begin_object()
        .key("parent")
        .string(m.parent)
        .key("trigger")
        .string(m.trigger)
        .end_object();
  if (!m.drift.empty()) {
    w.key("drift").begin_array();
    for (const auto& d : m.drift) {
      w.begin_object().key("signal").string(d.signal);
      floats(w, "edges", d.edges);
      floats(w, "expected", d.expected);
      w.end_object();
    }
    w.end_array();
  }
  w.end_object();
  return out;
}

namespace {

template <typename T>
T need(simdjson::simdjson_result<T> r, const char* what) {
  T v;
  if (std::move(r).get(v) != simdjson::SUCCESS)
    throw std::invalid_argument(std::string("model metadata: bad or missing ") + what);
  return v;
}

std::vector<float> float_array(simdjson::dom::element e, const char* what) {
  std::vector<float> out;
  for (auto x : need<simdjson::dom::array>(e.get_array(), what))
    out.push_back(static_cast<float>(need<double>(x.get_double(), what)));
  return out;
}

/// The feature of `space` a model trained on catalog `trained_on` calls `name`.
/// `aliases`: the feature_aliases object of the metadata, when present (a default dom::object is no object:
/// reading it dereferences a null document).
std::size_t map_feature(const FeatureSpace& space, const std::string& trained_on, std::string_view name,
                        const std::optional<simdjson::dom::object>& aliases) {
  if (const auto i = space.index(name)) return *i;
  if (simdjson::dom::array other; aliases && (*aliases)[name].get_array().get(other) == simdjson::SUCCESS)
    for (auto a : other)
      if (std::string_view alias; a.get_string().get(alias) == simdjson::SUCCESS)
        if (const auto i = space.index(alias)) return *i;
  throw std::invalid_argument("model metadata: the model (trained on catalog \"" + trained_on +
                              "\") reads feature \"" + std::string(name) + "\", which catalog \"" +
                              space.catalog().label() +
                              "\" does not have; train a model on this catalog (fleettwin train)");
}

}  // namespace

ModelMeta meta_from_json(std::string_view json, std::shared_ptr<const FeatureSpace> space) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  simdjson::dom::element doc;
  if (parser.parse(padded).get(doc) != simdjson::SUCCESS)
    throw std::invalid_argument("model metadata: not JSON");
  if (need<int64_t>(doc["format"].get_int64(), "format") != 1)
    throw std::invalid_argument("model metadata: unsupported format (this build reads format 1)");
  ModelMeta m;
  m.name = std::string(need<std::string_view>(doc["name"].get_string(), "name"));
  m.version = std::string(need<std::string_view>(doc["version"].get_string(), "version"));
  m.created_ms = need<int64_t>(doc["created_ms"].get_int64(), "created_ms");
  m.architecture.name = std::string(need<std::string_view>(doc["architecture"].get_string(), "architecture"));
  // Artifacts written before catalogs were data were all trained on cardata-v1.
  if (std::string_view label; doc["catalog"].get_string().get(label) == simdjson::SUCCESS)
    m.catalog = std::string(label);
  else
    m.catalog = catalog::builtin()->label();
  std::optional<simdjson::dom::object> aliases;
  if (simdjson::dom::object o; doc["feature_aliases"].get_object().get(o) == simdjson::SUCCESS) aliases = o;
  for (auto f : need<simdjson::dom::array>(doc["features"].get_array(), "features"))
    m.architecture.features.push_back(
        map_feature(*space, m.catalog, need<std::string_view>(f.get_string(), "features"), aliases));
  if (simdjson::dom::array predicted; doc["predicted"].get_array().get(predicted) == simdjson::SUCCESS)
    for (auto f : predicted) {
      const auto name = need<std::string_view>(f.get_string(), "predicted");
      const auto i = map_feature(*space, m.catalog, name, aliases);
      if (std::find(m.architecture.features.begin(), m.architecture.features.end(), i) ==
          m.architecture.features.end())
        throw std::invalid_argument("model metadata: predicted feature \"" + std::string(name) +
                                    "\" is not one of the features");
      m.architecture.predicted.push_back(i);
    }
  for (auto h : need<simdjson::dom::array>(doc["hidden"].get_array(), "hidden"))
    m.architecture.hidden.push_back(static_cast<std::size_t>(need<int64_t>(h.get_int64(), "hidden")));
  for (auto a : need<simdjson::dom::array>(doc["activations"].get_array(), "activations"))
    m.architecture.activations.push_back(
        activation_from_string(need<std::string_view>(a.get_string(), "activations")));
  if (m.architecture.activations.size() != m.architecture.hidden.size())
    throw std::invalid_argument("model metadata: one activation per hidden layer expected");
  const auto method = need<std::string_view>(doc["score_method"].get_string(), "score_method");
  if (method != "mse" && method != "max_deviation")
    throw std::invalid_argument("model metadata: unknown score_method");
  m.architecture.score = method == "mse" ? ScoreMethod::kMse : ScoreMethod::kMaxDeviation;
  m.architecture.smoothing = need<double>(doc["smoothing"].get_double(), "smoothing");
  if (!(m.architecture.smoothing > 0 && m.architecture.smoothing <= 1))
    throw std::invalid_argument("model metadata: smoothing must be in (0, 1]");
  auto scaler = need<simdjson::dom::element>(doc["scaler"], "scaler");
  m.center = float_array(need<simdjson::dom::element>(scaler["center"], "scaler.center"), "scaler.center");
  m.scale = float_array(need<simdjson::dom::element>(scaler["scale"], "scaler.scale"), "scaler.scale");
  m.error_scale = float_array(need<simdjson::dom::element>(doc["error_scale"], "error_scale"), "error_scale");
  m.error_scale_low =
      float_array(need<simdjson::dom::element>(doc["error_scale_low"], "error_scale_low"), "error_scale_low");
  m.weight = float_array(need<simdjson::dom::element>(doc["weight"], "weight"), "weight");
  const auto n = m.architecture.features.size();
  if (simdjson::dom::element range; doc["reconstruction_range"].get(range) == simdjson::SUCCESS) {
    m.recon_low = float_array(need<simdjson::dom::element>(range["low"], "reconstruction_range.low"),
                              "reconstruction_range.low");
    m.recon_high = float_array(need<simdjson::dom::element>(range["high"], "reconstruction_range.high"),
                               "reconstruction_range.high");
    if (m.recon_low.size() != n || m.recon_high.size() != n)
      throw std::invalid_argument("model metadata: reconstruction_range needs one low and high per feature");
  }
  if (simdjson::dom::element range; doc["input_range"].get(range) == simdjson::SUCCESS) {
    m.input_low =
        float_array(need<simdjson::dom::element>(range["low"], "input_range.low"), "input_range.low");
    m.input_high =
        float_array(need<simdjson::dom::element>(range["high"], "input_range.high"), "input_range.high");
    if (m.input_low.size() != n || m.input_high.size() != n)
      throw std::invalid_argument("model metadata: input_range needs one low and high per feature");
  }
  if (m.center.size() != n || m.scale.size() != n || m.error_scale.size() != n ||
      m.error_scale_low.size() != n || m.weight.size() != n)
    throw std::invalid_argument(
        "model metadata: scaler, error_scale, error_scale_low and weight need one value per feature");
  auto th = need<simdjson::dom::element>(doc["threshold"], "threshold");
  m.threshold = need<double>(th["value"].get_double(), "threshold.value");
  m.threshold_method = std::string(need<std::string_view>(th["method"].get_string(), "threshold.method"));
  m.quantile = need<double>(th["quantile"].get_double(), "threshold.quantile");
  m.excluded_cars = need<int64_t>(th["excluded_cars"].get_int64(), "threshold.excluded_cars");
  auto tr = need<simdjson::dom::element>(doc["training"], "training");
  m.topic = std::string(need<std::string_view>(tr["topic"].get_string(), "training.topic"));
  m.from_ts = need<int64_t>(tr["from_ts"].get_int64(), "training.from_ts");
  m.to_ts = need<int64_t>(tr["to_ts"].get_int64(), "training.to_ts");
  m.events = need<int64_t>(tr["events"].get_int64(), "training.events");
  m.cars = need<int64_t>(tr["cars"].get_int64(), "training.cars");
  auto me = need<simdjson::dom::element>(doc["metrics"], "metrics");
  m.train_loss = need<double>(me["train_loss"].get_double(), "metrics.train_loss");
  m.val_loss = need<double>(me["val_loss"].get_double(), "metrics.val_loss");
  m.epochs = need<int64_t>(me["epochs"].get_int64(), "metrics.epochs");
  m.train_seconds = need<double>(me["train_seconds"].get_double(), "metrics.train_seconds");
  // Optional: artifacts written before the trainer stage have no lineage.
  if (simdjson::dom::element lineage; doc["lineage"].get(lineage) == simdjson::SUCCESS) {
    m.parent = std::string(need<std::string_view>(lineage["parent"].get_string(), "lineage.parent"));
    m.trigger = std::string(need<std::string_view>(lineage["trigger"].get_string(), "lineage.trigger"));
  }
  if (simdjson::dom::array drift; doc["drift"].get_array().get(drift) == simdjson::SUCCESS) {
    for (auto d : drift) {
      DriftReference ref;
      ref.signal = std::string(need<std::string_view>(d["signal"].get_string(), "drift.signal"));
      ref.edges = float_array(need<simdjson::dom::element>(d["edges"], "drift.edges"), "drift.edges");
      ref.expected =
          float_array(need<simdjson::dom::element>(d["expected"], "drift.expected"), "drift.expected");
      // A signal this catalog lacks is left unwatched: drift is a diagnosis, the model still scores.
      const auto i = space->index(ref.signal);
      if (!i || *i >= space->signals()) continue;
      ref.feature = *i;
      m.drift.push_back(std::move(ref));
    }
    check_drift_references(m.drift);
  }
  m.architecture.space = std::move(space);
  return m;
}

Scorer::Scorer(std::shared_ptr<const Model> model) : _model(std::move(model)) {
  const auto& m = _model->meta;
  const auto n = m.architecture.features.size();
  if (_model->mlp.inputs() != n || _model->mlp.outputs() != n)
    throw std::invalid_argument("scorer: network width does not match the feature list");
  for (std::size_t j = 0; j < n; ++j) {
    _inv_scale.push_back(inverse_scale(m.scale[j]));
    const bool mse = m.architecture.score == ScoreMethod::kMse;
    _inv_error.push_back(mse ? 1.0f : 1.0f / std::max(m.error_scale[j], 1e-6f));
    _inv_error_low.push_back(mse ? 1.0f : 1.0f / std::max(m.error_scale_low[j], 1e-6f));
  }
  constexpr float kInf = std::numeric_limits<float>::infinity();
  _recon_low = m.recon_low.empty() ? std::vector<float>(n, -kInf) : m.recon_low;
  _recon_high = m.recon_high.empty() ? std::vector<float>(n, kInf) : m.recon_high;
  _input_low = m.input_low.empty() ? std::vector<float>(n, -kInf) : m.input_low;
  _input_high = m.input_high.empty() ? std::vector<float>(n, kInf) : m.input_high;
  _width = m.architecture.space->size();
  for (std::size_t j = 0; j < n; ++j) {
    if (m.architecture.space->may_be_undefined(m.architecture.features[j])) _nullable.push_back(j);
    const auto& p = m.architecture.predicted;
    if (j < 64 && std::find(p.begin(), p.end(), m.architecture.features[j]) != p.end())
      _hidden |= uint64_t{1} << j;
  }
}

uint64_t Scorer::outside(const float* f) const {
  const auto& m = _model->meta;
  const auto& idx = m.architecture.features;
  uint64_t mask = 0;
  for (std::size_t j = 0; j < idx.size() && j < 64; ++j) {
    if (!defined(f[idx[j]]) || _hidden >> j & 1) continue;
    const float x = to_scaled(f[idx[j]], m.center[j], _inv_scale[j]);
    if (x < _input_low[j] || x > _input_high[j]) mask |= uint64_t{1} << j;
  }
  return mask;
}

void Scorer::deviations(const float* features, std::size_t rows, float* dev) {
  const auto& m = _model->meta;
  const auto& idx = m.architecture.features;
  const std::size_t n = idx.size();
  // Chunks keep the activations in L1/L2 whatever the batch size.
  constexpr std::size_t kChunk = 256;
  _in.resize(kChunk * n);
  _out.resize(kChunk * n);
  const bool bounded = !m.recon_low.empty();
  for (std::size_t start = 0; start < rows; start += kChunk) {
    const std::size_t count = std::min(kChunk, rows - start);
    for (std::size_t r = 0; r < count; ++r) {
      const float* f = features + (start + r) * _width;
      float* x = _in.data() + r * n;
      for (std::size_t j = 0; j < n; ++j) x[j] = to_scaled(f[idx[j]], m.center[j], _inv_scale[j]);
      for (const auto j : _nullable)  // the network sees an undefined input at its centre
        if (!defined(x[j])) x[j] = 0.f;
    }
    _model->mlp.forward(_in.data(), count, _out.data(), _scratch);
    for (std::size_t r = 0; r < count; ++r) {
      const float* x = _in.data() + r * n;
      const float* y = _out.data() + r * n;
      const float* f = features + (start + r) * _width;
      float* d = dev + (start + r) * n;
      for (std::size_t j = 0; j < n; ++j) {
        const float e = x[j] - (bounded ? std::clamp(y[j], _recon_low[j], _recon_high[j]) : y[j]);
        d[j] = e * (e >= 0 ? _inv_error[j] : _inv_error_low[j]);
      }
      for (const auto j : _nullable)  // no error on an undefined input
        if (!defined(f[idx[j]])) d[j] = 0.f;
    }
  }
}

float Scorer::score_of(const float* dev, std::array<Contribution, 3>* top) const {
  const auto& m = _model->meta;
  const auto& idx = m.architecture.features;
  const std::size_t n = idx.size();
  // The three largest weighted squared errors, sorted descending: the score and the explanation.
  std::array<float, 3> best{-1, -1, -1};
  std::array<Contribution, 3> who{};
  float sum = 0;
  for (std::size_t j = 0; j < n; ++j) {
    const float e = m.weight[j] * dev[j] * dev[j];
    sum += e;
    if (e > best[2]) {
      std::size_t k = 2;
      while (k > 0 && e > best[k - 1]) {
        best[k] = best[k - 1];
        who[k] = who[k - 1];
        --k;
      }
      best[k] = e;
      who[k] = Contribution{idx[j], dev[j]};
    }
  }
  if (top) *top = who;
  if (m.architecture.score == ScoreMethod::kMse) return sum / static_cast<float>(n);
  return std::sqrt(std::max(best[0], 0.f));
}

uint64_t Scorer::above(const float* dev, float threshold) const {
  const auto& m = _model->meta;
  const std::size_t n = inputs();
  if (m.architecture.score != ScoreMethod::kMaxDeviation || n > 64) return 0;
  const float t2 = threshold * threshold;
  uint64_t mask = 0;
  for (std::size_t j = 0; j < n; ++j)
    if (m.weight[j] * dev[j] * dev[j] > t2) mask |= uint64_t{1} << j;
  return mask;
}

void Scorer::score(const float* features, std::size_t rows, float* scores, std::array<Contribution, 3>* top) {
  const std::size_t n = inputs();
  _dev.resize(rows * n);
  deviations(features, rows, _dev.data());
  for (std::size_t r = 0; r < rows; ++r) scores[r] = score_of(_dev.data() + r * n, top ? top + r : nullptr);
}

const float* ErrorAverage::update(const float* dev, std::size_t n, double smoothing) {
  if (mean.size() != n) {  // first event, or a model of another width: start over
    mean.assign(dev, dev + n);
    return mean.data();
  }
  const auto a = static_cast<float>(smoothing);
  for (std::size_t j = 0; j < n; ++j) mean[j] += a * (dev[j] - mean[j]);
  return mean.data();
}

std::vector<float> score_sequences(Scorer& scorer, const float* features, const uint32_t* car,
                                   std::size_t rows) {
  const std::size_t n = scorer.inputs();
  std::vector<float> dev(rows * n), scores(rows);
  scorer.deviations(features, rows, dev.data());
  std::unordered_map<uint32_t, ErrorAverage> per_car;
  const double smoothing = scorer.model().meta.architecture.smoothing;
  for (std::size_t r = 0; r < rows; ++r)
    scores[r] = scorer.score_of(per_car[car[r]].update(dev.data() + r * n, n, smoothing), nullptr);
  return scores;
}

std::vector<float> alert_statistic(const std::vector<float>& scores, const std::vector<uint32_t>& car_of,
                                   int raise_k, int window_n) {
  if (scores.size() != car_of.size()) throw std::invalid_argument("calibrate: one car per score expected");
  const auto n = static_cast<std::size_t>(std::clamp(window_n, 1, 64));
  const auto k = static_cast<std::size_t>(std::clamp(raise_k, 1, static_cast<int>(n)));
  std::unordered_map<uint32_t, std::vector<float>> recent;  // per car: its last n scores, oldest first
  std::vector<float> out(scores.size()), sorted;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    auto& r = recent[car_of[i]];
    if (r.size() == n) r.erase(r.begin());
    r.push_back(scores[i]);
    if (r.size() < k) {  // fewer events than the rule needs: it cannot raise yet
      out[i] = -std::numeric_limits<float>::infinity();
      continue;
    }
    sorted = r;
    std::nth_element(sorted.begin(), sorted.begin() + static_cast<long>(k - 1), sorted.end(),
                     std::greater<>());
    out[i] = sorted[k - 1];
  }
  return out;
}

namespace {

/// Gumbel(mu, beta) fitted to block maxima by median and interquartile range (median = mu + 0.3665 beta,
/// IQR = 1.5725 beta): failing cars sit in the upper tail and do not move either.
struct Gumbel {
  double mu = 0, beta = 0;
  /// The level a block maximum exceeds with probability p.
  double level(double p) const { return mu - beta * std::log(-std::log1p(-std::min(p, 0.5))); }
};

Gumbel fit_gumbel(std::vector<float>& maxima) {
  const double q25 = quantile(maxima, 0.25), q50 = quantile(maxima, 0.5), q75 = quantile(maxima, 0.75);
  Gumbel g;
  g.beta = std::max((q75 - q25) / 1.5725, 1e-6);
  g.mu = q50 - 0.3665 * g.beta;
  return g;
}

/// Splits rows (each car's in order) into blocks of `block` consecutive events of one car and calls
/// `fold(block_index, row)` for every row; returns how many blocks are complete enough (at least half of
/// `block` events) to count as a block maximum, and marks them in `full`.
template <class Fold>
std::size_t for_blocks(const uint32_t* car, std::size_t rows, std::size_t block, std::vector<char>& full,
                       Fold fold) {
  std::unordered_map<uint32_t, std::pair<std::size_t, std::size_t>> at;  // car -> (its block, events in it)
  std::vector<std::size_t> sizes;
  for (std::size_t r = 0; r < rows; ++r) {
    auto [it, fresh] = at.try_emplace(car[r], sizes.size(), 0);
    if (fresh) sizes.push_back(0);
    if (it->second.second == block) {
      it->second = {sizes.size(), 0};
      sizes.push_back(0);
    }
    ++it->second.second;
    ++sizes[it->second.first];
    fold(it->second.first, r);
  }
  full.assign(sizes.size(), 0);
  std::size_t n = 0;
  for (std::size_t b = 0; b < sizes.size(); ++b)
    if (2 * sizes[b] >= block) full[b] = 1, ++n;
  return n;
}

}  // namespace

bool equalize_extremes(Model& model, const float* features, const uint32_t* car, std::size_t rows,
                       double p_per_event) {
  auto& m = model.meta;
  if (m.architecture.score != ScoreMethod::kMaxDeviation || rows == 0) return false;
  const std::size_t n = m.architecture.features.size();
  std::vector<float> dev(rows * n);
  {
    Scorer scorer(std::make_shared<Model>(model));
    scorer.deviations(features, rows, dev.data());
  }
  // The running average per car (as the score stage keeps it); the largest value on each side per block.
  std::unordered_map<uint32_t, ErrorAverage> avg;
  std::vector<std::vector<float>> peak;
  std::vector<char> full;
  const std::size_t blocks =
      for_blocks(car, rows, kCalibrationBlock, full, [&](std::size_t b, std::size_t r) {
        const float* a = avg[car[r]].update(dev.data() + r * n, n, m.architecture.smoothing);
        if (peak.size() <= b) peak.resize(b + 1);
        auto& pk = peak[b];
        pk.resize(2 * n, 0.f);
        for (std::size_t j = 0; j < n; ++j) {
          pk[2 * j] = std::max(pk[2 * j], a[j]);
          pk[2 * j + 1] = std::max(pk[2 * j + 1], -a[j]);
        }
      });
  if (blocks < kMinCalibrationBlocks) return false;
  const double p = p_per_event * static_cast<double>(kCalibrationBlock);
  std::vector<float> maxima;
  for (std::size_t j = 0; j < n; ++j) {
    for (int side = 0; side < 2; ++side) {
      maxima.clear();
      for (std::size_t b = 0; b < peak.size(); ++b)
        if (full[b]) maxima.push_back(peak[b][2 * j + side]);
      const double level = fit_gumbel(maxima).level(p);
      auto& scale = side == 0 ? m.error_scale[j] : m.error_scale_low[j];
      // Never finer than the input's typical error: a level below it would be noise, not an extreme.
      scale = static_cast<float>(scale * std::max(level, 1.0));
    }
  }
  return true;
}

std::optional<Calibration> calibrate_alert_rate(const std::vector<float>& statistic,
                                                const std::vector<uint32_t>& car_of, double hours_per_event,
                                                double target_per_car_hour) {
  if (statistic.size() != car_of.size()) throw std::invalid_argument("calibrate: one car per score expected");
  if (!(hours_per_event > 0) || !(target_per_car_hour > 0))
    throw std::invalid_argument("calibrate: the event spacing and the target rate must be positive");
  std::vector<float> peak;
  std::vector<uint32_t> block_car;
  std::vector<char> full;
  const std::size_t blocks =
      for_blocks(car_of.data(), car_of.size(), kCalibrationBlock, full, [&](std::size_t b, std::size_t r) {
        if (peak.size() <= b) {
          peak.resize(b + 1, -std::numeric_limits<float>::infinity());
          block_car.resize(b + 1);
        }
        peak[b] = std::max(peak[b], statistic[r]);
        block_car[b] = car_of[r];
      });
  std::vector<float> maxima;
  for (std::size_t b = 0; b < peak.size(); ++b)
    if (full[b] && std::isfinite(peak[b])) maxima.push_back(peak[b]);
  if (blocks < kMinCalibrationBlocks || maxima.size() < kMinCalibrationBlocks) return std::nullopt;
  const Gumbel g = fit_gumbel(maxima);
  const double block_hours = hours_per_event * static_cast<double>(kCalibrationBlock);
  Calibration c;
  c.threshold = g.level(target_per_car_hour * block_hours);  // P(a healthy block's max exceeds it)
  std::unordered_set<uint32_t> above;                        // cars the fit calls failing in the window
  for (std::size_t b = 0; b < peak.size(); ++b)
    if (full[b] && std::isfinite(peak[b]) && peak[b] > c.threshold) above.insert(block_car[b]);
  c.excluded_cars = static_cast<int64_t>(above.size());
  char method[200];
  std::snprintf(
      method, sizeof method,
      "alert_rate(target=%.3g per 1000 car-hours; gumbel mu=%.4g beta=%.4g over %zu blocks of %.3g h)",
      target_per_car_hour * 1000, g.mu, g.beta, maxima.size(), block_hours);
  c.method = method;
  return c;
}

Calibration calibrate_threshold(const std::vector<float>& scores, const std::vector<uint32_t>& car_of,
                                double q) {
  if (scores.size() != car_of.size()) throw std::invalid_argument("calibrate: one car per score expected");
  if (scores.empty()) throw std::invalid_argument("calibrate: no held-out scores");
  std::unordered_map<uint32_t, int64_t> events;
  for (auto car : car_of) ++events[car];
  Calibration c;
  c.method = "quantile_trimmed(q=" + std::to_string(q) + ")";
  std::unordered_map<uint32_t, bool> excluded;
  std::vector<float> work;
  // Peel off failing cars one round at a time: each round takes the quantile of the cars still in, and
  // leaves out the cars with far more events above it than chance allows (at least 3, and 10x their
  // expected share). A failing car stands out once the cars worse than it are gone. At most a quarter of
  // the cars go: beyond that the "failures" are the fleet's normal behaviour.
  const auto max_excluded = static_cast<int64_t>(events.size() / 4);
  for (int round = 0; round < 50; ++round) {
    work.clear();
    for (std::size_t i = 0; i < scores.size(); ++i)
      if (!excluded.count(car_of[i])) work.push_back(scores[i]);
    c.threshold = quantile(work, q);
    std::unordered_map<uint32_t, int64_t> above;
    for (std::size_t i = 0; i < scores.size(); ++i)
      if (!excluded.count(car_of[i]) && scores[i] > c.threshold) ++above[car_of[i]];
    int64_t newly = 0;
    for (const auto& [car, n] : above) {
      const double expected = static_cast<double>(events[car]) * (1.0 - q);
      if (n >= 3 && static_cast<double>(n) > 10.0 * expected && c.excluded_cars < max_excluded) {
        excluded[car] = true;
        ++c.excluded_cars;
        ++newly;
      }
    }
    if (newly == 0) break;
  }
  return c;
}

namespace {

uint64_t read_u64(std::string_view& in) {
  if (in.size() < 8) throw std::invalid_argument("model artifact: truncated");
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  in.remove_prefix(8);
  return v;
}

}  // namespace

ArtifactHeader read_artifact_header(std::string_view in, std::shared_ptr<const FeatureSpace> space) {
  if (!in.starts_with(kArtifactMagic))
    throw std::invalid_argument("model artifact: not a fleettwin model (bad magic)");
  in.remove_prefix(kArtifactMagic.size());
  const uint64_t meta_len = read_u64(in);
  if (meta_len > in.size()) throw std::invalid_argument("model artifact: truncated metadata");
  ArtifactHeader header;
  header.meta = meta_from_json(in.substr(0, meta_len), std::move(space));
  in.remove_prefix(meta_len);
  const uint64_t module_len = read_u64(in);
  if (module_len != in.size()) throw std::invalid_argument("model artifact: module length does not match");
  header.module = in;
  return header;
}

}  // namespace fleettwin::ml
