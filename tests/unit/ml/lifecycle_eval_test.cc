#include "ml/lifecycle_eval.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "ml_support.h"

namespace fleettwin::ml {
namespace {

using testing::identity_model;

// Two cars, one event a second from ts 1000 to 120000: car-1's coolant is anomalous for five events in each
// 20-second period (a short failure that clears), car-2 is always healthy. Oldest first.
std::vector<core::Telemetry> two_cars() {
  std::vector<core::Telemetry> events;
  for (int i = 0; i < 120; ++i)
    for (const char* car : {"car-1", "car-2"}) {
      core::Telemetry t;
      t.car = car;
      t.seq = i + 1;
      t.ts = 1000 * (i + 1);
      t.values.assign(core::kSignalCount, 0.0);
      if (std::string(car) == "car-1" && i % 20 >= 5 && i % 20 < 10) t.values[core::kCoolantTemp] = 100;
      events.push_back(t);
    }
  return events;
}

// Every 20 s a candidate trains on the last 40 s and shadows the next 20 s; the third model is blind (a
// threshold nothing reaches), as one trained on corrupted data might be.
TEST(LifecycleEval, PromotesAnEqualCandidateRefusesABlindOneAndScoresWithTheActiveModel) {
  const auto events = two_cars();
  std::map<std::string, std::size_t> trained;  // name -> events in its window
  auto train = [&](std::vector<core::Telemetry> window, const std::string& name) {
    trained[name] = window.size();
    auto m = identity_model(fleettwin_architecture(), 0);  // error = input: the coolant spikes are anomalous
    m->meta.version = name;
    if (name == "lc3") m->meta.threshold = 1e9;
    return std::shared_ptr<const Model>(m);
  };
  LifecycleOptions o;
  o.retrain_every_ms = 20'000;
  o.train_window_ms = 40'000;
  o.monitor.rule = {2, 3, 2};
  std::vector<std::string> lines;
  o.progress = [&](const std::string& line) { lines.push_back(line); };
  const auto run = run_lifecycle(events, train, o);

  EXPECT_EQ(run.scoring_from, 21'000);
  // The first model on the first 20 s; candidates at 41, 61 and 81 s; none at 101 s, whose shadow period
  // would end after the last event.
  EXPECT_EQ(trained,
            (std::map<std::string, std::size_t>{{"lc1", 40}, {"lc2", 80}, {"lc3", 80}, {"lc4", 80}}));
  ASSERT_EQ(run.steps.size(), 3u);
  EXPECT_TRUE(run.steps[0].decision.promote);
  EXPECT_EQ(run.steps[0].active.alerts, 1);
  EXPECT_EQ(run.steps[0].candidate_summary.alerts, 1);
  EXPECT_DOUBLE_EQ(run.steps[0].agreement, 1.0);
  EXPECT_FALSE(run.steps[1].decision.promote);
  EXPECT_EQ(run.steps[1].candidate, "lc3");
  EXPECT_EQ(run.steps[1].active.alerts_other_missed, 1);
  EXPECT_EQ(run.steps[1].shadow_from, 61'000);
  EXPECT_EQ(run.steps[1].shadow_to, 81'000);
  EXPECT_TRUE(std::any_of(run.steps[1].decision.reasons.begin(), run.steps[1].decision.reasons.end(),
                          [](const auto& r) { return r.find("missed 1 of the active model's 1") == 0; }));
  EXPECT_TRUE(run.steps[2].decision.promote);
  EXPECT_EQ(run.promotions(), 2);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[1].rfind("lc3 kept as a candidate: missed", 0), 0u) << lines[1];

  // Each alert carries the model that was active when its event arrived: the blind candidate never was.
  std::vector<std::pair<int64_t, std::string>> raised;
  for (const auto& a : run.alerts)
    if (a.raised) raised.emplace_back(a.ts, a.model_version);
  EXPECT_EQ(raised,
            (std::vector<std::pair<int64_t, std::string>>{
                {27'000, "lc1"}, {47'000, "lc1"}, {67'000, "lc2"}, {87'000, "lc2"}, {107'000, "lc4"}}));
}

TEST(LifecycleEval, RefusesAHistoryShorterThanTwoPeriods) {
  auto train = [](std::vector<core::Telemetry>, const std::string&) {
    return std::shared_ptr<const Model>(identity_model(fleettwin_architecture(), 0));
  };
  LifecycleOptions o;
  o.retrain_every_ms = 60'000;
  EXPECT_THROW(run_lifecycle(two_cars(), train, o), std::invalid_argument);
  EXPECT_THROW(run_lifecycle({}, train, o), std::invalid_argument);
}

}  // namespace
}  // namespace fleettwin::ml
