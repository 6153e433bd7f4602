// leave_out_cars_in_alert: what the trainer and `eval --lifecycle` remove from a candidate's training window.
#include "ml/training_window.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "ml_support.h"

namespace fleettwin::ml {
namespace {

using testing::identity_model;

// `cars` cars, one event a second for 60 s; the first `failing` of them read an anomalous coolant from their
// 10th event on (a failure that does not end), or from the 10th to the 19th when `clears`; the others are
// healthy. Oldest first.
std::vector<core::Telemetry> fleet(int cars, int failing, bool clears = false) {
  std::vector<core::Telemetry> events;
  for (int i = 0; i < 60; ++i)
    for (int c = 1; c <= cars; ++c) {
      core::Telemetry t;
      t.car = "car-" + std::to_string(c);
      t.seq = i + 1;
      t.ts = 1000 * (i + 1);
      t.values.assign(core::kSignalCount, 0.0);
      if (c <= failing && i >= 10 && (!clears || i < 20)) t.values[core::kCoolantTemp] = 100;
      events.push_back(t);
    }
  return events;
}

MonitorOptions rule() {
  MonitorOptions o;
  o.rule = {2, 3, 2};
  return o;
}

std::shared_ptr<const Model> active(double threshold = 2) {
  auto m = identity_model(fleettwin_architecture(), 0);  // error = input: the coolant is anomalous
  m->meta.threshold = threshold;
  return m;
}

TEST(TrainingWindow, LeavesOutEveryEventOfTheCarsTheActiveModelAlertsOn) {
  auto events = fleet(8, 1);
  const auto f = leave_out_cars_in_alert(events, active(), rule(), FeatureSpace::builtin());
  EXPECT_EQ(f.cars, 8);
  EXPECT_EQ(f.cars_in_alert, 1);
  EXPECT_EQ(f.cars_left_out, 1);
  EXPECT_EQ(f.events, 480);
  EXPECT_EQ(f.events_left_out, 60);  // its healthy first 10 s too: the car is out, not its symptoms
  EXPECT_EQ(events.size(), 420u);
  EXPECT_TRUE(std::none_of(events.begin(), events.end(), [](const auto& e) { return e.car == "car-1"; }));
  // The order of the rest is kept (each car's events in order).
  EXPECT_EQ(events.front().car, "car-2");
  EXPECT_EQ(events.back().car, "car-8");
  EXPECT_EQ(events.back().seq, 60);
}

TEST(TrainingWindow, KeepsEverythingWithoutAnActiveModelOrAnAlert) {
  auto events = fleet(8, 1);
  auto f = leave_out_cars_in_alert(events, nullptr, rule(), FeatureSpace::builtin());
  EXPECT_EQ(f.cars_left_out, 0);
  EXPECT_EQ(events.size(), 480u);
  f = leave_out_cars_in_alert(events, active(1e9), rule(), FeatureSpace::builtin());  // alerts on nothing
  EXPECT_EQ(f.cars_in_alert, 0);
  EXPECT_EQ(f.cars_left_out, 0);
  EXPECT_EQ(events.size(), 480u);
}

// An alert that cleared within the window (the replay starts each car afresh, which raises some on healthy
// cars) leaves the car in: only the cars in alert at the window's end go.
TEST(TrainingWindow, KeepsACarWhoseAlertClearedWithinTheWindow) {
  auto events = fleet(8, 1, true);
  ASSERT_EQ(cars_in_alert(events, active(), rule(), FeatureSpace::builtin()).size(), 0u);
  const auto f = leave_out_cars_in_alert(events, active(), rule(), FeatureSpace::builtin());
  EXPECT_EQ(f.cars_left_out, 0);
  EXPECT_EQ(events.size(), 480u);
  // The same car still failing at the end goes.
  events = fleet(8, 1);
  EXPECT_EQ(cars_in_alert(events, active(), rule(), FeatureSpace::builtin()),
            (std::unordered_set<std::string>{"car-1"}));
}

// More than a quarter of the cars in alert is what the fleet does now, not failures: a candidate must be
// able to learn it, so the window stays whole. A quarter exactly still goes.
TEST(TrainingWindow, KeepsTheWindowWholeWhenMoreThanAQuarterOfTheCarsAreInAlert) {
  auto events = fleet(8, 3);
  auto f = leave_out_cars_in_alert(events, active(), rule(), FeatureSpace::builtin());
  EXPECT_EQ(f.cars_in_alert, 3);
  EXPECT_EQ(f.cars_left_out, 0);
  EXPECT_EQ(events.size(), 480u);
  events = fleet(8, 2);
  f = leave_out_cars_in_alert(events, active(), rule(), FeatureSpace::builtin());
  EXPECT_EQ(f.cars_left_out, 2);
  EXPECT_EQ(events.size(), 360u);
}

}  // namespace
}  // namespace fleettwin::ml
