#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>

#include "core/clock.h"
#include "core/signals.h"
#include "sim/fleet.h"

using namespace fleettwin;
using namespace fleettwin::sim;

namespace {

constexpr int64_t kHour = 3'600'000;

std::vector<core::Telemetry> take(Fleet& fleet, std::size_t n) {
  std::vector<core::Telemetry> out;
  out.reserve(n);
  core::Telemetry t;
  while (out.size() < n && fleet.next(t)) out.push_back(t);
  return out;
}

std::vector<core::Telemetry> run_all(Fleet& fleet, std::vector<GroundTruth>* failures = nullptr) {
  std::vector<core::Telemetry> out;
  core::Telemetry t;
  while (fleet.next(t)) {
    out.push_back(t);
    if (failures) {
      auto f = fleet.take_failures();
      failures->insert(failures->end(), f.begin(), f.end());
    }
  }
  return out;
}

FleetConfig small(std::size_t cars, uint64_t seed = 42) {
  FleetConfig c;
  c.cars = cars;
  c.seed = seed;
  c.start_ms = 1'764'144'000'000;  // 2025-11-26T08:00:00Z
  return c;
}

}  // namespace

TEST(Fleet, SameSeedGivesIdenticalStreamsAndGroundTruth) {
  auto cfg = small(50);
  cfg.failure_rate = 1.0;
  cfg.duration_ms = kHour;
  Fleet a(cfg), b(cfg);
  std::vector<GroundTruth> fa, fb;
  auto ma = run_all(a, &fa), mb = run_all(b, &fb);
  ASSERT_EQ(ma.size(), 50u * 360);
  EXPECT_EQ(ma, mb);
  ASSERT_FALSE(fa.empty());
  EXPECT_EQ(fa, fb);
}

TEST(Fleet, DifferentSeedsGiveDifferentStreams) {
  auto c1 = small(20, 1), c2 = small(20, 2);
  Fleet a(c1), b(c2);
  auto ma = take(a, 2000), mb = take(b, 2000);
  std::size_t same_values = 0;
  for (std::size_t i = 0; i < ma.size(); ++i) {
    EXPECT_EQ(ma[i].car, mb[i].car);  // the schedule depends on the config, not the seed
    EXPECT_EQ(ma[i].ts, mb[i].ts);
    if (ma[i].values == mb[i].values && ma[i].lat == mb[i].lat) ++same_values;
  }
  EXPECT_EQ(same_values, 0u);
}

TEST(Fleet, CarStreamDoesNotDependOnFleetSize) {
  auto c10 = small(10), c37 = small(37);
  c10.failure_rate = c37.failure_rate = 2.0;
  c10.duration_ms = c37.duration_ms = 2 * kHour;
  Fleet f10(c10), f37(c37);
  std::vector<GroundTruth> g10, g37;
  auto m10 = run_all(f10, &g10), m37 = run_all(f37, &g37);

  std::map<std::pair<std::string, int64_t>, const core::Telemetry*> big;
  for (const auto& t : m37) big[{t.car, t.seq}] = &t;
  std::size_t compared = 0;
  for (const auto& t : m10) {
    const std::size_t i = *f10.car_index(t.car);
    auto it = big.find({t.car, t.seq});
    ASSERT_NE(it, big.end()) << t.car << " seq " << t.seq;
    const core::Telemetry& u = *it->second;
    EXPECT_EQ(t.values, u.values) << t.car << " seq " << t.seq;
    EXPECT_EQ(t.lat, u.lat);
    EXPECT_EQ(t.lon, u.lon);
    EXPECT_EQ(t.ts - f10.due_ms(i, 1), u.ts - f37.due_ms(i, 1));
    ++compared;
  }
  EXPECT_EQ(compared, 10u * 720);

  // Same failures, shifted by the car's offset only.
  auto rel = [](const std::vector<GroundTruth>& g, const Fleet& f) {
    std::vector<std::tuple<std::string, FailureMode, int64_t>> out;
    for (const auto& r : g) {
      const std::size_t i = *f.car_index(r.car);
      if (i < 10) out.emplace_back(r.car, r.mode, r.onset_ts - f.due_ms(i, 1));
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  auto r10 = rel(g10, f10), r37 = rel(g37, f37);
  ASSERT_GT(r10.size(), 10u);
  EXPECT_EQ(r10, r37);
}

TEST(Fleet, ScheduleSpreadsCarsEvenlyInDueTimeOrder) {
  auto cfg = small(4);
  cfg.start_ms = 1000;
  Fleet f(cfg);
  std::vector<std::pair<std::string, int64_t>> expect = {
      {"car-00000", 1000},  {"car-00001", 3500},  {"car-00002", 6000},  {"car-00003", 8500},
      {"car-00000", 11000}, {"car-00001", 13500}, {"car-00002", 16000}, {"car-00003", 18500},
  };
  core::Telemetry t;
  for (std::size_t k = 0; k < expect.size(); ++k) {
    ASSERT_EQ(f.next_due_ms(), expect[k].second);
    ASSERT_TRUE(f.next(t));
    EXPECT_EQ(t.car, expect[k].first);
    EXPECT_EQ(t.ts, expect[k].second);
    EXPECT_EQ(t.seq, static_cast<int64_t>(k / 4 + 1));
  }
}

TEST(Fleet, DueTimesAreOrderedAndEachCarSendsEveryInterval) {
  auto cfg = small(7);
  cfg.interval_ms = 1000;
  cfg.duration_ms = 60'000;
  Fleet f(cfg);
  core::SimClock clock(cfg.start_ms);
  core::Telemetry t;
  std::map<std::string, core::Telemetry> last;
  int64_t prev_ts = 0;
  std::size_t n = 0;
  while (true) {
    const int64_t due = f.next_due_ms();
    if (!f.next(t)) {
      EXPECT_EQ(due, Fleet::kNoMoreMessages);
      break;
    }
    EXPECT_EQ(t.ts, due);
    EXPECT_GE(t.ts, prev_ts);
    EXPECT_LT(t.ts, cfg.start_ms + cfg.duration_ms);
    clock.advance_to(t.ts);  // --fast: the caller's clock follows the messages
    EXPECT_EQ(clock.now_ms(), t.ts);
    prev_ts = t.ts;
    auto it = last.find(t.car);
    if (it != last.end()) {
      EXPECT_EQ(t.seq, it->second.seq + 1);
      EXPECT_EQ(t.ts, it->second.ts + cfg.interval_ms);
    } else {
      EXPECT_EQ(t.seq, 1);
    }
    last[t.car] = t;
    ++n;
  }
  EXPECT_EQ(n, 7u * 60);
  EXPECT_EQ(last.size(), 7u);
  EXPECT_FALSE(f.next(t));  // stays finished
}

TEST(Fleet, CarIdsAreZeroPaddedToFiveDigitsOrMore) {
  FleetConfig c;
  c.cars = 10;
  EXPECT_EQ(car_id(c, 3), "car-00003");
  c.cars = 100'000;
  EXPECT_EQ(car_id(c, 99'999), "car-99999");
  c.cars = 100'001;
  EXPECT_EQ(car_id(c, 5), "car-000005");
  c.id_prefix = "van_";
  c.cars = 3;
  EXPECT_EQ(car_id(c, 2), "van_00002");
  Fleet f(c);
  EXPECT_EQ(f.car_id(1), "van_00001");
  EXPECT_EQ(f.car_index("van_00002"), 2u);
  EXPECT_FALSE(f.car_index("van_00003").has_value());
  EXPECT_FALSE(f.car_index("car-00001").has_value());
  EXPECT_FALSE(f.car_index("van_0001").has_value());
}

TEST(Fleet, RejectsBadConfigs) {
  auto bad = [](auto mutate) {
    FleetConfig c;
    mutate(c);
    EXPECT_FALSE(validate(c).empty());
    EXPECT_THROW(Fleet{c}, std::invalid_argument);
  };
  bad([](FleetConfig& c) { c.cars = 0; });
  bad([](FleetConfig& c) { c.interval_ms = 0; });
  bad([](FleetConfig& c) { c.failure_rate = -1; });
  bad([](FleetConfig& c) { c.ramp_ms = -1; });
  bad([](FleetConfig& c) { c.box.lat_min = 49; });
  bad([](FleetConfig& c) { c.id_prefix = "car/"; });
  bad([](FleetConfig& c) { c.planned_failures.push_back({c.cars, FailureMode::kOutdatedFirmware, 0}); });
  EXPECT_EQ(validate(FleetConfig{}), "");
}

TEST(Fleet, AllValuesStayInCatalogRangesIncludingFailingCars) {
  FleetConfig cfg = small(200);
  cfg.failure_rate = 3.0;  // most cars develop most failure modes
  cfg.duration_ms = 2 * kHour;
  Fleet f(cfg);
  core::Telemetry t;
  std::size_t n = 0, moving = 0, parked = 0;
  std::set<std::pair<std::string, FailureMode>> failed;
  while (f.next(t)) {
    ++n;
    for (std::size_t s = 0; s < core::kSignalCount; ++s) {
      const auto& info = core::kSignals[s];
      ASSERT_GE(t.values[s], info.min) << info.name << " " << t.car << " seq " << t.seq;
      ASSERT_LE(t.values[s], info.max) << info.name << " " << t.car << " seq " << t.seq;
      if (info.type == core::SignalType::kInt) {
        ASSERT_EQ(t.values[s], std::floor(t.values[s])) << info.name;
      }
    }
    // The model itself stays clear of the edges; the final clamp is only a safety net.
    ASSERT_LT(t.values[core::kCoolantTemp], 148.0);
    for (std::size_t k = 0; k < 4; ++k) ASSERT_LT(std::abs(t.values[core::kAccelerometer11 + k]), 95.0);
    ASSERT_GT(t.values[core::kBatteryPercentage], 5.0);
    ASSERT_GE(t.values[core::kTirePressure11], 10.0);
    ASSERT_TRUE(cfg.box.contains(t.lat, t.lon)) << t.lat << "," << t.lon;
    t.values[core::kSpeed] > 0 ? ++moving : ++parked;
    for (const auto& g : f.take_failures()) failed.insert({g.car, g.mode});
  }
  EXPECT_EQ(n, 200u * 720);
  EXPECT_GT(failed.size(), 200u * 3);  // the high rate really did exercise failing cars
  for (FailureMode m : kFailureModes)
    EXPECT_GT(std::count_if(failed.begin(), failed.end(), [&](const auto& p) { return p.second == m; }), 50)
        << to_string(m);
  EXPECT_GT(moving, n / 5);
  EXPECT_GT(parked, n / 5);
}

TEST(Fleet, FailureOnsetRateMatchesTheConfiguredRate) {
  FleetConfig cfg = small(500);
  cfg.failure_rate = 0.1;
  cfg.interval_ms = 60'000;
  cfg.duration_ms = 20 * kHour;
  Fleet f(cfg);
  std::vector<GroundTruth> g;
  core::Telemetry t;
  while (f.next(t)) {
  }
  g = f.take_failures();
  // Expected 500 cars * 20 h * 0.1 = 1000 onsets, Poisson: sd ~32. +-5 sd with a fixed seed never flakes
  // but still catches a rate off by 20%.
  EXPECT_GT(g.size(), 840u);
  EXPECT_LT(g.size(), 1160u);
  std::map<FailureMode, int> per_mode;
  for (const auto& r : g) {
    ++per_mode[r.mode];
    EXPECT_GE(r.onset_ts, cfg.start_ms);
    EXPECT_LT(r.onset_ts, cfg.start_ms + cfg.duration_ms);
    EXPECT_EQ(r.full_ts - r.onset_ts, cfg.ramp_ms);
  }
  EXPECT_EQ(per_mode.size(), kFailureModeCount);
  for (const auto& [m, count] : per_mode) EXPECT_GT(count, 100) << to_string(m);  // ~167 each

  cfg.failure_rate = 0;
  Fleet healthy(cfg);
  while (healthy.next(t)) {
  }
  EXPECT_TRUE(healthy.take_failures().empty());
}

TEST(Fleet, TakeFailuresReturnsOnsetsSinceTheLastCallByCar) {
  FleetConfig cfg = small(30);
  cfg.failure_rate = 2.0;
  cfg.duration_ms = 2 * kHour;
  Fleet f(cfg);
  core::Telemetry t;
  std::map<std::string, int64_t> prev_ts;
  std::set<std::pair<std::string, FailureMode>> seen;
  std::size_t total = 0;
  while (f.next(t)) {
    for (const auto& g : f.take_failures()) {
      ++total;
      EXPECT_EQ(g.car, t.car);  // found by the message that crossed its onset
      EXPECT_LE(g.onset_ts, t.ts);
      EXPECT_GT(g.onset_ts, prev_ts.count(t.car) ? prev_ts[t.car] : f.due_ms(*f.car_index(t.car), 1) - 1);
      EXPECT_TRUE(seen.insert({g.car, g.mode}).second) << "reported twice";
    }
    EXPECT_TRUE(f.take_failures().empty());
    prev_ts[t.car] = t.ts;
  }
  EXPECT_GT(total, 50u);
}

TEST(Fleet, ResumeContinuesExactlyWhereAnUninterruptedRunWouldBe) {
  FleetConfig cfg = small(20);
  cfg.failure_rate = 1.5;
  cfg.duration_ms = 300 * cfg.interval_ms;
  Fleet full(cfg);
  std::vector<GroundTruth> full_failures;
  auto all = run_all(full, &full_failures);
  ASSERT_EQ(all.size(), 20u * 300);
  std::map<std::pair<std::string, int64_t>, core::Telemetry> by_key;
  for (const auto& t : all) by_key[{t.car, t.seq}] = t;

  // The crashed run sent the first 2345 messages; cars 3 and 7 were never recorded by the platform and
  // car 11 got further (its messages of a later run were stored), so seqs differ per car.
  std::map<std::string, int64_t> last;
  for (std::size_t k = 0; k < 2345; ++k) last[all[k].car] = all[k].seq;
  last.erase("car-00003");
  last.erase("car-00007");
  last["car-00011"] = 250;
  std::vector<std::pair<std::string, int64_t>> resume_from(last.begin(), last.end());
  resume_from.emplace_back("car-99999", 5);  // unknown: ignored
  resume_from.emplace_back("car-00005", 0);  // seq 0 = never seen

  Fleet resumed(cfg);
  take(resumed, 777);  // state before resume() must not matter
  resumed.take_failures();
  resumed.resume(resume_from);
  std::vector<GroundTruth> after;
  auto again = run_all(resumed, &after);

  std::map<std::string, int64_t> next_seq;
  for (const auto& [car, seq] : last) next_seq[car] = seq + 1;
  int64_t prev_ts = 0;
  for (const auto& t : again) {
    auto it = by_key.find({t.car, t.seq});
    ASSERT_NE(it, by_key.end()) << t.car << " seq " << t.seq;
    ASSERT_EQ(t, it->second) << t.car << " seq " << t.seq;
    const int64_t expected_seq = next_seq.count(t.car) ? next_seq[t.car] : 1;
    ASSERT_EQ(t.seq, expected_seq) << t.car;
    next_seq[t.car] = t.seq + 1;
    EXPECT_GE(t.ts, prev_ts);
    prev_ts = t.ts;
  }
  for (const auto& [car, seq] : next_seq) EXPECT_EQ(seq, 301) << car;  // every car reached the end
  EXPECT_EQ(next_seq.size(), 20u);
  EXPECT_EQ(next_seq.count("car-00003"), 1u);

  // Ground truth: exactly the failures whose onset is after each car's resume point.
  std::vector<GroundTruth> expected;
  for (const auto& g : full_failures) {
    const int64_t seq = last.count(g.car) ? last[g.car] : 0;
    const int64_t resume_ts = seq > 0 ? by_key[{g.car, seq}].ts : INT64_MIN;
    if (g.onset_ts > resume_ts) expected.push_back(g);
  }
  auto key = [](const GroundTruth& a, const GroundTruth& b) {
    return std::tie(a.car, a.onset_ts, a.mode) < std::tie(b.car, b.onset_ts, b.mode);
  };
  std::sort(expected.begin(), expected.end(), key);
  std::sort(after.begin(), after.end(), key);
  EXPECT_LT(expected.size(), full_failures.size());  // some were before the resume points
  EXPECT_FALSE(expected.empty());
  EXPECT_EQ(after, expected);
}

TEST(Fleet, ResumeWithNothingRestartsFromSeqOne) {
  FleetConfig cfg = small(5);
  Fleet a(cfg), b(cfg);
  auto first = take(a, 50);
  take(b, 123);
  b.resume({});
  EXPECT_EQ(take(b, 50), first);
}
