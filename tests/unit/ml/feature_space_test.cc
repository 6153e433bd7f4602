// The model's features on any catalog: the built-in layout, a VSS catalog, a catalog lacking signals, and
// model files moved between catalogs.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "ml/features.h"
#include "ml/model.h"
#include "ml/monitor.h"
#include "ml_support.h"

namespace fleettwin::ml {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): the built-in layout's short names

std::shared_ptr<const catalog::Catalog> vss_catalog() {
  static const auto kVss = std::make_shared<const catalog::Catalog>(
      catalog::load_file(std::string(FLEETTWIN_SOURCE_DIR) + "/deploy/catalogs/vss.yaml"));
  return kVss;
}

std::shared_ptr<const FeatureSpace> vss_space() {
  static const auto kSpace = std::make_shared<const FeatureSpace>(vss_catalog());
  return kSpace;
}

// The built-in catalog without the signals called `drop`.
std::shared_ptr<const FeatureSpace> builtin_without(const std::vector<std::string>& drop) {
  std::vector<catalog::SignalSpec> kept;
  for (const auto& s : catalog::builtin()->signals())
    if (std::find(drop.begin(), drop.end(), s.name) == drop.end()) kept.push_back(s);
  return std::make_shared<const FeatureSpace>(
      std::make_shared<const catalog::Catalog>("partial", 1, "", std::move(kept)));
}

const std::vector<std::string> kDerived{
    "vibration_per_speed",   "tyre_pressure_spread", "tyre_pressure_min_gap", "coolant_over_intake",
    "accel_imbalance",       "accel_amplitude_1_1",  "accel_amplitude_1_2",   "accel_amplitude_2_1",
    "accel_amplitude_2_2",   "engine_warmth",        "engine_heat",           "coolant_heading",
    "accel_share_imbalance", "accel_corner_evidence"};

}  // namespace

TEST(FeatureSpace, TheBuiltInCatalogKeepsTheLayoutModelsWereTrainedOn) {
  const auto& space = builtin_space();
  ASSERT_EQ(space.size(), kFeatureCount);
  ASSERT_EQ(space.signals(), core::kSignalCount);
  for (std::size_t i = 0; i < core::kSignalCount; ++i) EXPECT_EQ(space.name(i), core::kSignals[i].name);
  for (std::size_t d = 0; d < kDerived.size(); ++d)
    EXPECT_EQ(space.name(core::kSignalCount + d), kDerived[d]);
  EXPECT_EQ(fleettwin_architecture().features.size(), 21u);
  EXPECT_EQ(reference_architecture().features.size(), 18u);
  EXPECT_EQ(space.part(core::kCoolantTemp), catalog::Part::kCooling);
  EXPECT_EQ(space.cardata(core::kSpeed), core::kSpeed);
  EXPECT_FALSE(space.index("no_such_feature").has_value());
}

TEST(FeatureSpace, OnTheVssCatalogSignalsAreVssNamesAndDerivedFeaturesResolveByAlias) {
  const auto& space = *vss_space();
  const auto& c = *vss_catalog();
  ASSERT_EQ(space.signals(), c.size());
  EXPECT_EQ(space.size(), c.size() + kDerived.size());  // every derived feature: the aliases resolve
  EXPECT_EQ(space.name(0), "Vehicle.Powertrain.CombustionEngine.ECT");
  EXPECT_EQ(space.index("coolant_temp"), c.index_of("Vehicle.Powertrain.CombustionEngine.ECT"));
  EXPECT_EQ(space.index("accel_share_imbalance"), c.size() + 12);
  // The signals of catalog version 2 are features too, of their own parts.
  const auto tyre_temp = space.index("Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Temperature");
  ASSERT_TRUE(tyre_temp.has_value());
  EXPECT_EQ(space.part(*tyre_temp), catalog::Part::kTyres);
  const auto arch = fleettwin_architecture(vss_space());
  auto has = [&](std::string_view name) {
    return std::any_of(arch.features.begin(), arch.features.end(),
                       [&](auto f) { return space.name(f) == name; });
  };
  EXPECT_TRUE(has("Vehicle.Cabin.HVAC.AmbientAirTemperature"));
  EXPECT_TRUE(has("coolant_heading"));
  EXPECT_FALSE(has("Vehicle.TraveledDistance"));  // a counter: it only grows
  EXPECT_FALSE(has("Vehicle.Powertrain.CombustionEngine.ECU.FirmwareVersion"));
  EXPECT_EQ(arch.predicted.size(), 2u);
}

TEST(FeatureSpace, TheSameValuesGiveTheSameFeaturesUnderEitherCatalog) {
  const auto& vss = *vss_space();
  auto cardata_state = builtin_space().new_state(), vss_state = vss.new_state();
  std::vector<float> a(kFeatureCount), b(vss.size());
  for (int i = 0; i < 30; ++i) {
    core::Telemetry t;
    t.ts = 1000 + 10'000 * i;
    for (std::size_t s = 0; s < core::kSignalCount; ++s) t.values[s] = static_cast<double>(s * 3 + i % 7);
    core::Telemetry v = t;
    v.values.assign(vss.signals(), core::kAbsent);
    for (std::size_t s = 0; s < core::kSignalCount; ++s)
      v.values[*vss.cardata(static_cast<core::Signal>(s))] = t.values[s];
    extract_features(t, cardata_state, a.data());
    vss.extract(v, vss_state, b.data());
    for (std::size_t f = 0; f < kFeatureCount; ++f) {
      const auto g = *vss.index(feature_name(f));
      if (defined(a[f]))
        EXPECT_EQ(a[f], b[g]) << feature_name(f);
      else
        EXPECT_FALSE(defined(b[g])) << feature_name(f);
    }
  }
}

TEST(FeatureSpace, ADerivedFeatureWhoseInputIsMissingIsDropped) {
  const auto space = builtin_without({"intake_air_temp"});
  EXPECT_EQ(space->size(), kFeatureCount - 2);  // the signal and coolant_over_intake
  EXPECT_FALSE(space->index("coolant_over_intake").has_value());
  EXPECT_TRUE(space->index("coolant_heading").has_value());
  const auto no_speed = builtin_without({"speed", "tire_pressure_2_2"});
  EXPECT_FALSE(no_speed->index("vibration_per_speed").has_value());
  EXPECT_FALSE(no_speed->index("tyre_pressure_spread").has_value());
  EXPECT_FALSE(no_speed->index("tyre_pressure_min_gap").has_value());
  EXPECT_EQ(no_speed->size(), kFeatureCount - 5);
  // Extraction writes exactly the space's features, and the model's architecture reads only those.
  const auto arch = fleettwin_architecture(no_speed);
  for (const auto f : arch.features) EXPECT_LT(f, no_speed->size());
  auto state = no_speed->new_state();
  std::vector<float> out(no_speed->size() + 1, -7.f);
  core::Telemetry t;
  t.values.assign(no_speed->signals(), 1.0);
  no_speed->extract(t, state, out.data());
  EXPECT_EQ(out.back(), -7.f);
}

TEST(FeatureSpace, AFlaggedReadingDoesNotEnterTheFeatures) {
  auto state = builtin_space().new_state();
  std::vector<float> f(kFeatureCount);
  core::Telemetry t;
  t.values.assign(core::kSignalCount, 1.0);
  t.values[core::kCoolantTemp] = 90;
  extract_features(t, state, f.data());
  t.values[core::kCoolantTemp] = 400;
  t.out_of_range = {core::kCoolantTemp};
  extract_features(t, state, f.data());
  EXPECT_EQ(f[core::kCoolantTemp], 90);  // the car's last plausible value
}

TEST(ModelFile, RecordsItsCatalogAndIsMappedByNameOrRefused) {
  auto meta = identity_model(fleettwin_architecture(), 0)->meta;
  const auto json = meta_to_json(meta);
  EXPECT_NE(json.find("\"catalog\":\"cardata v1\""), std::string::npos) << json;
  // A cardata-v1 model on the VSS catalog: its signals are found by their aliases.
  const auto mapped = meta_from_json(json, vss_space());
  EXPECT_EQ(mapped.catalog, "cardata v1");
  ASSERT_EQ(mapped.architecture.features.size(), meta.architecture.features.size());
  EXPECT_EQ(vss_space()->name(mapped.architecture.features[0]), "Vehicle.Powertrain.CombustionEngine.ECT");
  EXPECT_EQ(vss_space()->name(mapped.architecture.predicted[1]), "coolant_heading");
  // A VSS model reads signals cardata-v1 does not have: refused, naming the feature and both catalogs.
  const auto vss_meta = identity_model(fleettwin_architecture(vss_space()), 0)->meta;
  try {
    meta_from_json(meta_to_json(vss_meta));
    FAIL() << "a VSS model was accepted on cardata-v1";
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("Tire.Temperature"), std::string::npos) << what;
    EXPECT_NE(what.find(vss_catalog()->label()), std::string::npos) << what;
    EXPECT_NE(what.find("cardata v1"), std::string::npos) << what;
  }
  // A monitor refuses a model decoded for other features than its own.
  Monitor monitor({}, vss_space());
  EXPECT_THROW(monitor.set_model(identity_model(fleettwin_architecture(), 0)), std::invalid_argument);
  EXPECT_NO_THROW(monitor.set_model(identity_model(fleettwin_architecture(vss_space()), 0)));
}

// A reading out of its plausible range is a symptom of its part: persistent flags raise an alert naming the
// signal even though the model sees nothing wrong; one flag alone raises nothing.
TEST(Monitor, FlaggedReadingsAreScoredAsSymptomsOfTheirPart) {
  MonitorOptions o;
  o.rule = {2, 3, 2};
  Monitor mon(o);
  auto model = identity_model(fleettwin_architecture(), 0);
  model->meta.threshold = 1e9;  // the model alone never alerts
  mon.set_model(model);
  auto batch = one_car("car-3", 12, [](int, auto& v) { v[core::kBatteryPercentage] = 50; });
  for (const int i : {1, 5, 6}) {
    batch[i].values[core::kBatteryPercentage] = 130;
    batch[i].out_of_range = {core::kBatteryPercentage};
  }
  MonitorOutput out;
  mon.process(batch, out);
  ASSERT_GE(out.alerts.size(), 1u);
  EXPECT_TRUE(out.alerts[0].raised);
  EXPECT_EQ(out.alerts[0].ts, batch[6].ts);  // 2 of 3: the second flag in a row, not the lone first one
  EXPECT_EQ(out.alerts[0].signals.front(), "battery_percentage");
}

}  // namespace fleettwin::ml
