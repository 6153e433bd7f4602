#include <gtest/gtest.h>

#include <random>
#include <string>

#include "ml/dataset.h"
#include "ml/drift.h"
#include "ml/model.h"
#include "ml_support.h"

namespace fleettwin::ml {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): the built-in layout's short names

// Rows of the built-in layout with coolant drawn from `coolant` and every other feature 0, tyre pressure
// taking only two values (ties).
template <class Draw>
TrainingData rows_with(std::size_t rows, Draw coolant) {
  TrainingData data;
  data.features.assign(rows * kFeatureCount, 0);
  data.car.assign(rows, 0);
  for (std::size_t r = 0; r < rows; ++r) {
    data.features[r * kFeatureCount + core::kCoolantTemp] = coolant(r);
    data.features[r * kFeatureCount + core::kTirePressure11] = r % 2 == 0 ? 32.0f : 33.0f;
  }
  return data;
}

core::Telemetry event(double coolant, double tyre) {
  core::Telemetry t;
  t.values[core::kCoolantTemp] = coolant;
  t.values[core::kTirePressure11] = tyre;
  return t;
}

TEST(Drift, ReferencesAreDecilesOfTheTrainingValuesAndTiesMergeBins) {
  const auto data = rows_with(1000, [](std::size_t r) { return static_cast<float>(r % 100); });
  const auto refs = drift_references(data, {core::kCoolantTemp, core::kTirePressure11, kFeatureCount - 1});
  ASSERT_EQ(refs.size(), 2u);  // a derived feature is not watched
  EXPECT_EQ(refs[0].signal, "coolant_temp");
  ASSERT_EQ(refs[0].edges.size(), kDriftBins - 1);
  for (float e : refs[0].expected) EXPECT_NEAR(e, 0.1, 1e-6);
  // Two values: one cut point, half the values on each side.
  ASSERT_EQ(refs[1].edges.size(), 1u);
  EXPECT_FLOAT_EQ(refs[1].edges[0], 32.0f);
  EXPECT_NEAR(refs[1].expected[0], 0.5, 1e-6);
  EXPECT_NO_THROW(check_drift_references(refs));
}

TEST(Drift, PsiIsZeroOnTheTrainingDistributionAndLargeOnAShift) {
  const auto data = rows_with(10'000, [](std::size_t r) { return 80.0f + static_cast<float>(r % 20); });
  DriftWatch watch(2'000, 500);
  watch.reset(drift_references(data, {core::kCoolantTemp, core::kTirePressure11}));
  for (int i = 0; i < 499; ++i) watch.add(event(80 + i % 20, 32 + i % 2));
  EXPECT_LT(watch.compute()[0], 0) << "too few values to say";
  for (int i = 499; i < 5'000; ++i) watch.add(event(80 + i % 20, 32 + i % 2));
  EXPECT_LT(watch.compute()[0], 0.01);
  EXPECT_LT(watch.compute()[1], 0.01);
  EXPECT_EQ(watch.events(), 2'000u);
  // Hotter coolant (a season, a route): the window fills with it and only coolant drifts.
  for (int i = 0; i < 2'000; ++i) watch.add(event(95 + i % 10, 32 + i % 2));
  EXPECT_GT(watch.compute()[0], 0.25);
  EXPECT_LT(watch.compute()[1], 0.01);
  // The window slides: back to the training distribution, back to no drift.
  for (int i = 0; i < 2'000; ++i) watch.add(event(80 + i % 20, 32 + i % 2));
  EXPECT_LT(watch.compute()[0], 0.01);
}

TEST(Drift, AbsentSignalsAreNotCounted) {
  const auto data = rows_with(1'000, [](std::size_t r) { return static_cast<float>(r % 10); });
  DriftWatch watch(100, 10);
  watch.reset(drift_references(data, {core::kCoolantTemp}));
  core::Telemetry none;  // every signal absent
  for (int i = 0; i < 100; ++i) watch.add(none);
  EXPECT_LT(watch.compute()[0], 0);
}

TEST(Drift, AlarmWantsASustainedShiftAndKeepsItsCooldown) {
  DriftAlarm alarm(0.25, 60'000, 3'600'000);
  EXPECT_FALSE(alarm.update(0.5, 0));
  EXPECT_FALSE(alarm.update(0.1, 30'000));  // a break starts the wait over
  EXPECT_FALSE(alarm.update(0.5, 40'000));
  EXPECT_FALSE(alarm.update(0.5, 90'000));
  EXPECT_TRUE(alarm.update(0.5, 100'000));
  EXPECT_FALSE(alarm.update(0.9, 200'000));  // cooldown
  EXPECT_FALSE(alarm.update(-1, 300'000));   // unknown is not above
  EXPECT_FALSE(alarm.update(0.9, 3'700'000));
  EXPECT_TRUE(alarm.update(0.9, 3'800'000));
}

TEST(Drift, ReferencesRoundTripInTheMetadataAndOlderArtifactsHaveNone) {
  auto m = identity_model(fleettwin_architecture(), 0)->meta;
  EXPECT_TRUE(meta_from_json(meta_to_json(m)).drift.empty()) << "no drift field: an artifact from before";
  m.drift = drift_references(rows_with(1'000, [](std::size_t r) { return 70.0f + 0.25f * (r % 40); }),
                             {core::kCoolantTemp, core::kTirePressure11});
  const auto back = meta_from_json(meta_to_json(m));
  ASSERT_EQ(back.drift.size(), 2u);
  EXPECT_EQ(back.drift[0].signal, "coolant_temp");
  EXPECT_EQ(back.drift[0].feature, core::kCoolantTemp);
  EXPECT_EQ(back.drift[0].edges, m.drift[0].edges);
  EXPECT_EQ(back.drift[1].expected, m.drift[1].expected);
}

TEST(Drift, HostileReferencesAreRefused) {
  auto m = identity_model(fleettwin_architecture(), 0)->meta;
  DriftReference r{"coolant_temp", core::kCoolantTemp, {3, 2}, {0.3f, 0.3f, 0.4f}};
  m.drift = {r};
  EXPECT_THROW(meta_from_json(meta_to_json(m)), std::invalid_argument) << "descending cut points";
  r.edges = {1, 2};
  r.expected = {1};
  m.drift = {r};
  EXPECT_THROW(meta_from_json(meta_to_json(m)), std::invalid_argument) << "shares per bin";
  r.expected = {0.5f, 0.5f, -1};
  m.drift = {r};
  EXPECT_THROW(meta_from_json(meta_to_json(m)), std::invalid_argument) << "a negative share";
  r.edges.assign(70, 0);
  for (std::size_t i = 0; i < r.edges.size(); ++i) r.edges[i] = static_cast<float>(i);
  r.expected.assign(71, 0);
  m.drift = {r};
  EXPECT_THROW(meta_from_json(meta_to_json(m)), std::invalid_argument)
      << "more bins than a byte window holds";
}

}  // namespace
}  // namespace fleettwin::ml
