// The Monitor (src/ml/monitor.h): alerts raised and cleared per car and part, unfamiliar conditions, rules.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "ml/monitor.h"
#include "ml_support.h"

namespace fleettwin::ml {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): the built-in layout's short names

TEST(Monitor, RaisesOnceWithDeterministicIdAndClears) {
  MonitorOptions o;
  o.rule = {2, 3, 2};
  Monitor mon(o);
  mon.set_model(identity_model(fleettwin_architecture(), 0));  // score = rms of the 3 largest features
  const auto batch =
      one_car("car-9", 8, [](int i, auto& v) { v[core::kCoolantTemp] = i >= 1 && i <= 3 ? 100 : 0; });
  MonitorOutput out;
  mon.process(batch, out);
  ASSERT_EQ(out.scores.size(), 8u);
  EXPECT_EQ(out.scores[1].top_signals[0].signal, "coolant_temp");
  EXPECT_EQ(out.scores[1].model_version, "test-1");
  ASSERT_EQ(out.alerts.size(), 2u);
  EXPECT_TRUE(out.alerts[0].raised);
  EXPECT_EQ(out.alerts[0].id, "car-9:anomaly:3000");
  EXPECT_EQ(out.alerts[0].signals.front(), "coolant_temp");
  EXPECT_FALSE(out.alerts[1].raised);
  EXPECT_EQ(out.alerts[1].id, "car-9:anomaly:3000");
  EXPECT_EQ(out.alerts[1].ts, 6000);
}

// A car in alert for its cooling gets a second alert when its battery turns anomalous too, not when a part
// that was anomalous while the first alert settled (its tyres) does again; both clear together.
TEST(Monitor, ANewPartTurningAnomalousRaisesAnotherAlert) {
  for (const int64_t settle : {int64_t{5000}, int64_t{0}}) {
    MonitorOptions o;
    o.rule = {2, 3, 40};
    o.new_symptom_settle_ms = settle;
    Monitor mon(o);
    mon.set_model(identity_model(fleettwin_architecture(), 0));  // error = input
    const auto batch = one_car("car-9", 80, [](int i, auto& v) {
      v[core::kCoolantTemp] = i >= 1 && i <= 20 ? 100 : 0;                // raises at ts 3000
      v[core::kTirePressure11] = i == 5 || i == 14 || i == 15 ? 100 : 0;  // settling, then again
      v[core::kBatteryVoltage] = i >= 10 && i <= 20 ? 100 : 0;            // a new part
    });
    MonitorOutput out;
    mon.process(batch, out);
    std::vector<std::string> raised, cleared;
    for (const auto& a : out.alerts) (a.raised ? raised : cleared).push_back(a.id);
    if (settle == 0) {
      EXPECT_EQ(raised, std::vector<std::string>{"car-9:anomaly:3000"});
      continue;
    }
    ASSERT_EQ(raised, (std::vector<std::string>{"car-9:anomaly:3000", "car-9:anomaly:12000"}));
    EXPECT_EQ(out.alerts[1].signals.front(), "battery_voltage");  // the new part's signal first
    ASSERT_EQ(cleared.size(), 2u);
    EXPECT_EQ(std::set<std::string>(cleared.begin(), cleared.end()),
              std::set<std::string>(raised.begin(), raised.end()));
    EXPECT_EQ(out.alerts.back().ts, 61000);  // 40 normal events after the last anomalous one
  }
}

// The network extrapolates for an input it never saw this far: an anomaly in another input then raises no
// alert, while an anomaly in the out-of-range input itself still does.
TEST(Monitor, AnomaliesInConditionsNeverSeenInTrainingRaiseNoAlert) {
  auto arch = fleettwin_architecture();
  auto model = identity_model(arch, 0);  // error = input
  auto& meta = std::const_pointer_cast<Model>(model)->meta;
  meta.input_low.assign(arch.features.size(), -50);
  meta.input_high.assign(arch.features.size(), 150);
  const auto batch_of = [](bool unfamiliar_context, double current) {
    return one_car("car-7", 10, [&](int, auto& v) {
      v[core::kBatteryPercentage] = unfamiliar_context ? -60 : 0;  // below anything in training
      v[core::kCurrentDraw] = current;
    });
  };
  for (const bool skip : {true, false}) {
    MonitorOptions o;
    o.rule = {2, 3, 40};
    o.skip_unfamiliar = skip;
    // An anomalous but in-range current while the charge is out of range: extrapolation.
    meta.weight.assign(arch.features.size(), 1);
    meta.weight[static_cast<std::size_t>(
        std::find(arch.features.begin(), arch.features.end(), core::kBatteryPercentage) -
        arch.features.begin())] = 0;  // the context itself scores nothing here
    const auto run = [&](bool unfamiliar_context, double current, int64_t* unfamiliar) {
      Monitor mon(o);
      mon.set_model(model);
      MonitorOutput out;
      mon.process(batch_of(unfamiliar_context, current), out);
      *unfamiliar = mon.unfamiliar_events();
      return out.alerts.size();
    };
    int64_t unfamiliar = 0;
    EXPECT_EQ(run(true, 100, &unfamiliar), skip ? 0u : 1u) << skip;
    EXPECT_EQ(unfamiliar, skip ? 10 : 0);
    EXPECT_EQ(run(false, 100, &unfamiliar), 1u);  // the same current in familiar conditions is an anomaly
    EXPECT_EQ(unfamiliar, 0);
    // The anomalous input out of range itself (a flat tyre reads lower than any healthy one): alert.
    EXPECT_EQ(run(true, 400, &unfamiliar), 1u);
  }
  // A car in alert for its battery whose charge then leaves the training range: a tyre failing after that is
  // a second failure, not unfamiliar conditions (the out-of-range part is the open alert's).
  MonitorOptions o;
  o.rule = {2, 3, 40};
  o.new_symptom_settle_ms = 5000;
  Monitor mon(o);
  mon.set_model(model);
  MonitorOutput out;
  mon.process(one_car("car-8", 40,
                      [](int i, auto& v) {
                        v[core::kBatteryVoltage] = i < 30 ? 100 : 0;      // raises at ts 2000
                        v[core::kBatteryPercentage] = i >= 10 ? -60 : 0;  // out of range, scores nothing
                        v[core::kTirePressure11] = i >= 15 && i < 30 ? 100 : 0;  // a new part
                      }),
              out);
  ASSERT_EQ(out.alerts.size(), 2u);
  EXPECT_EQ(out.alerts[1].id, "car-8:anomaly:17000");
  EXPECT_EQ(out.alerts[1].signals.front(), "tire_pressure_1_1");
  EXPECT_EQ(mon.unfamiliar_events(), 0);
}

// A predicted input is never out of range itself, so an anomaly on it cannot take its own signals out of
// range the way a flat tyre does: its part's signals out of range are its failure's (an overheating engine
// shows on coolant_heading while the coolant climbs past the training range). With the current predicted,
// the case above that was extrapolation (an anomalous current, the charge out of range) alerts; an
// out-of-range input of another part still makes it unfamiliar.
TEST(Monitor, AnAnomalousPredictedInputOwnsItsPartsInputsOutOfRange) {
  auto arch = fleettwin_architecture();
  arch.predicted.push_back(core::kCurrentDraw);
  auto model = identity_model(arch, 0);  // error = input
  auto& meta = model->meta;
  meta.input_low.assign(arch.features.size(), -50);
  meta.input_high.assign(arch.features.size(), 150);
  for (const auto f : {core::kBatteryPercentage, core::kSpeed})
    meta.weight[static_cast<std::size_t>(std::find(arch.features.begin(), arch.features.end(), f) -
                                         arch.features.begin())] = 0;  // contexts that score nothing
  const auto run = [&](core::Signal context, int64_t* unfamiliar) {
    MonitorOptions o;
    o.rule = {2, 3, 40};
    Monitor mon(o);
    mon.set_model(model);
    MonitorOutput out;
    mon.process(one_car("car-6", 10,
                        [&](int, auto& v) {
                          v[context] = -60;  // below anything in training
                          v[core::kCurrentDraw] = 100;
                        }),
                out);
    *unfamiliar = mon.unfamiliar_events();
    return out.alerts.size();
  };
  int64_t unfamiliar = 0;
  EXPECT_EQ(run(core::kBatteryPercentage, &unfamiliar), 1u);  // the current's own part
  EXPECT_EQ(unfamiliar, 0);
  EXPECT_EQ(run(core::kSpeed, &unfamiliar), 0u);  // another part: extrapolation
  EXPECT_EQ(unfamiliar, 10);
}

TEST(Monitor, FirmwareRollbackIsARuleAlert) {
  Monitor mon;
  std::vector<core::Telemetry> batch(3);
  for (int i = 0; i < 3; ++i) {
    batch[i].car = "car-1";
    batch[i].seq = i + 1;
    batch[i].ts = i;
    batch[i].values[core::kControlUnitFirmware] = i == 2 ? 4 : 7;
  }
  MonitorOutput out;
  mon.process(batch, out);  // no model yet: no scores, but the rule runs
  EXPECT_TRUE(out.scores.empty());
  ASSERT_EQ(out.alerts.size(), 1u);
  EXPECT_EQ(out.alerts[0].kind, kAlertOutdatedFirmware);
  EXPECT_EQ(out.alerts[0].model_version, "rule");
}

}  // namespace
}  // namespace fleettwin::ml
