#pragma once

// Test support of the ml tests: the built-in catalog's feature layout under short names, a model whose
// network is a scaled identity, and one car's events.
#include <gtest/gtest.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ml/features.h"
#include "ml/model.h"

namespace fleettwin::ml::testing {

/// The built-in catalog's 18 signals and 13 derived features (FeatureSpaceTest checks it).
inline constexpr std::size_t kFeatureCount = 32;

inline const FeatureSpace& builtin_space() { return *FeatureSpace::builtin(); }
/// Index of the built-in feature called `name`, or kFeatureCount.
inline std::size_t feature_index(std::string_view name) {
  return builtin_space().index(name).value_or(kFeatureCount);
}
inline const std::string& feature_name(std::size_t i) { return builtin_space().name(i); }
inline catalog::Part feature_component(std::size_t i) { return builtin_space().part(i); }
inline bool may_be_undefined(std::size_t i) { return builtin_space().may_be_undefined(i); }
inline void extract_features(const core::Telemetry& t, CarFeatureState& state, float* out) {
  builtin_space().extract(t, state, out);
}

/// A model whose network multiplies each input by `gain` (0: error = input), threshold 2, version test-1.
inline std::shared_ptr<Model> identity_model(const Architecture& arch, float gain) {
  auto m = std::make_shared<Model>();
  m->meta.architecture = arch;
  m->meta.architecture.smoothing = 1.0;  // per-event scores; averaging has its own test
  const auto n = arch.features.size();
  m->meta.center.assign(n, 0);
  m->meta.scale.assign(n, 1);
  m->meta.error_scale.assign(n, 1);
  m->meta.error_scale_low.assign(n, 1);
  m->meta.weight.assign(n, 1);
  m->meta.threshold = 2;
  m->meta.version = "test-1";
  DenseLayer l;
  l.in = l.out = n;
  l.weight.assign(n * n, 0);
  for (std::size_t i = 0; i < n; ++i) l.weight[i * n + i] = gain;
  l.bias.assign(n, 0);
  m->mlp = Mlp({l});
  return m;
}

// `count` events of one car, 1 s apart from ts 1000, each with the signals `fill(i, values)` sets.
template <class Fill>
inline std::vector<core::Telemetry> one_car(const char* car, int count, Fill fill) {
  std::vector<core::Telemetry> batch;
  for (int i = 0; i < count; ++i) {
    core::Telemetry t;
    t.car = car;
    t.seq = i + 1;
    t.ts = 1000 * (i + 1);
    t.values.assign(core::kSignalCount, 0.0);  // every signal sent; the test sets the ones it watches
    fill(i, t.values);
    batch.push_back(t);
  }
  return batch;
}

}  // namespace fleettwin::ml::testing
