// The model on the VSS catalog: a simulated fleet naming its signals by deploy/catalogs/vss.yaml, half of it
// on firmware that sends the catalog's version-2 signals, trains a model on that catalog (libtorch, for
// real) and detects failures with it, as `fleettwin train` and `eval` do on the catalog in use.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>

#include "catalog/catalog.h"
#include "ml/dataset.h"
#include "ml/evaluation.h"
#include "ml/monitor.h"
#include "ml/training.h"
#include "sim/fleet.h"

namespace fleettwin {
namespace {

constexpr int64_t kMinute = 60'000;

TEST(VssModel, TrainedAndEvaluatedOnTheVssCatalogItDetectsFailures) {
  const auto vss = std::make_shared<const catalog::Catalog>(
      catalog::load_file(std::string(FLEETTWIN_SOURCE_DIR) + "/deploy/catalogs/vss.yaml"));
  const auto space = std::make_shared<const ml::FeatureSpace>(vss);
  sim::FleetConfig fc;
  fc.cars = 150;
  fc.seed = 21;
  fc.start_ms = 1'700'000'000'000;
  fc.duration_ms = 100 * kMinute;
  fc.failure_rate = 0;
  fc.catalog = vss;
  fc.upgraded_share = 0.5;
  // Failures that show in any state of the car (a parked car's tyre, cell and corner too), one car each.
  const std::array<sim::FailureMode, 3> modes{sim::FailureMode::kTyrePressureLoss,
                                              sim::FailureMode::kBatteryCellDegradation,
                                              sim::FailureMode::kShockAbsorberFailure};
  for (std::size_t i = 0; i < 18; ++i)
    fc.planned_failures.push_back(
        {i * 7, modes[i % modes.size()], (55 + 2 * static_cast<int64_t>(i)) * kMinute});
  sim::Fleet fleet(fc);
  std::vector<core::Telemetry> events;
  core::Telemetry t;
  while (fleet.next(t)) events.push_back(t);
  const auto truth = fleet.take_failures();
  ASSERT_EQ(truth.size(), 18u);

  const int64_t scoring_from = fc.start_ms + 50 * kMinute;
  std::vector<core::Telemetry> train_events;
  for (const auto& e : events)
    if (e.ts < scoring_from) train_events.push_back(e);
  auto data = ml::make_training_data(train_events, "vss", space);
  ml::TrainOptions to;
  to.progress = false;
  to.max_epochs = 15;
  const auto model = ml::train_model(data, ml::fleettwin_architecture(space), to);
  EXPECT_EQ(model->meta.catalog, vss->label());

  // The artifact: read back on its own catalog, refused on cardata-v1 (it reads the tyre temperatures).
  const auto bytes = ml::encode_artifact(*model);
  const auto back = ml::decode_artifact(bytes, space);
  EXPECT_EQ(back->meta.architecture.features, model->meta.architecture.features);
  EXPECT_THROW(ml::decode_artifact(bytes), std::invalid_argument);

  // Scored as the score stage does: per-car state warmed on the training window, then the model.
  ml::Monitor monitor({}, space);
  ml::MonitorOutput out;
  std::vector<core::Alert> alerts;
  std::vector<core::Telemetry> batch;
  bool scoring = false;
  for (std::size_t i = 0; i <= events.size(); ++i) {
    const bool end = i == events.size();
    if (end || batch.size() == 2000 || (!scoring && events[i].ts >= scoring_from)) {
      out.clear();
      monitor.process(batch, out);
      alerts.insert(alerts.end(), out.alerts.begin(), out.alerts.end());
      batch.clear();
    }
    if (end) break;
    if (!scoring && events[i].ts >= scoring_from) {
      monitor.set_model(back);
      scoring = true;
    }
    batch.push_back(events[i]);
  }
  ASSERT_FALSE(alerts.empty());
  // Explanations name VSS signals (or derived features), never cardata-v1 ones.
  for (const auto& a : alerts)
    for (const auto& s : a.signals) EXPECT_FALSE(catalog::builtin()->find(s).has_value()) << s;

  ml::EvalOptions eo;
  eo.from_ts = scoring_from;
  const double car_hours = static_cast<double>(fc.cars) * 50.0 / 60.0;
  const auto report = ml::evaluate(alerts, ml::kAlertAnomaly, truth, ml::learned_modes(), car_hours, eo);
  std::printf("VSS model: %zu inputs; %s\n", model->meta.architecture.features.size(),
              report.to_json().c_str());
  EXPECT_EQ(report.failures, 18);
  EXPECT_GE(report.recall, 0.6) << report.to_json();
  EXPECT_GE(report.precision, 0.6) << report.to_json();
}

}  // namespace
}  // namespace fleettwin
