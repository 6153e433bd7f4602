#include "aggregate/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

using namespace fleettwin::aggregate;
using fleettwin::core::Telemetry;

namespace {

constexpr int64_t kMin = 60 * 1000;
constexpr int64_t kT0 = 1'700'000'000'000 - (1'700'000'000'000 % kMsPerHour);  // on the hour

const fleettwin::catalog::Catalog& catalog() { return *fleettwin::catalog::builtin(); }
std::size_t speed() { return catalog().index_of("speed"); }
std::size_t coolant() { return catalog().index_of("coolant_temp"); }

std::vector<Definition> parse(const std::string& yaml) { return parse_yaml(yaml, "t.yaml", catalog()); }

Telemetry event(const std::string& car, int64_t seq, int64_t ts, double spd = 10, double cool = 90) {
  Telemetry t;
  t.car = car;
  t.seq = seq;
  t.ts = ts;
  t.values.assign(catalog().size(), fleettwin::core::kAbsent);
  t.values[speed()] = spd;
  t.values[coolant()] = cool;
  return t;
}

using Key = std::tuple<std::string, std::string, int64_t>;  // aggregate, group, window start

// The newest revision of every key, checking revisions go up: by one for a car's windows, and for a group's
// (per fleet, per attribute) to the count of events merged.
std::map<Key, Result> latest(const std::vector<Result>& results) {
  std::map<Key, Result> out;
  for (const auto& r : results) {
    const Key k{r.aggregate, r.group, r.window_start};
    const auto it = out.find(k);
    if (r.aggregate.find("fleet") != std::string::npos || r.aggregate == "s") {
      EXPECT_EQ(r.revision, static_cast<uint32_t>(r.count)) << r.group << " " << r.window_start;
      if (it != out.end()) {
        EXPECT_GT(r.revision, it->second.revision) << r.group << " " << r.window_start;
      }
    } else {
      EXPECT_EQ(r.revision, it == out.end() ? 1U : it->second.revision + 1)
          << r.group << " " << r.window_start;
    }
    out[k] = r;
  }
  return out;
}

bool same(const Result& a, const Result& b) {
  if (std::tie(a.aggregate, a.group, a.window_start, a.window_end, a.revision, a.final, a.count) !=
          std::tie(b.aggregate, b.group, b.window_start, b.window_end, b.revision, b.final, b.count) ||
      a.values.size() != b.values.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.values.size(); ++i) {
    if (!(a.values[i] == b.values[i] || (std::isnan(a.values[i]) && std::isnan(b.values[i])))) return false;
  }
  return true;
}

// Feeds `events` and returns every result, with one flush after each `batch` events and at the end.
std::vector<Result> run(Engine& e, const std::vector<Telemetry>& events, std::size_t batch = 100) {
  std::vector<Result> out;
  for (std::size_t i = 0; i < events.size(); ++i) {
    e.add(events[i]);
    if ((i + 1) % batch == 0) {
      auto r = e.flush();
      out.insert(out.end(), r.begin(), r.end());
    }
  }
  auto r = e.flush();
  out.insert(out.end(), r.begin(), r.end());
  return out;
}

struct Expected {
  int64_t count = 0;
  std::vector<double> speed;
  std::vector<std::tuple<int64_t, int64_t, double>> last;  // ts, seq, value
};

double exact_quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
}

}  // namespace

TEST(Engine, EveryFunctionMatchesAStraightComputationPerCarAndPerFleet) {
  const auto defs = parse(R"(aggregates:
  - {name: per_car, group: car, window: 1m, signals: {speed: [count, min, max, mean, sum, p50, p95, p99, last]}}
  - {name: per_fleet, group: fleet, window: 1m, signals: {speed: [count, min, max, mean, sum, p50, p95, p99, last]}}
)");
  Engine e(defs);
  std::mt19937_64 rng(19);
  std::uniform_real_distribution<double> spd(0, 60);
  std::bernoulli_distribution absent(0.1);
  std::vector<Telemetry> events;
  const std::vector<std::string> cars = {"car-1", "car-2", "car-3"};
  std::map<std::string, int64_t> seq;
  for (int64_t ts = kT0; ts < kT0 + 10 * kMin; ts += 700) {
    for (const auto& car : cars) {
      auto t = event(car, ++seq[car], ts + static_cast<int64_t>(rng() % 300), absent(rng) ? NAN : spd(rng));
      events.push_back(t);
    }
  }
  // Brute force over the same events, by (aggregate, group, window start).
  std::map<Key, Expected> want;
  for (const auto& t : events) {
    const int64_t start = t.ts - (t.ts % kMin);
    for (const auto& [agg, group] :
         {std::pair<std::string, std::string>{"per_car", t.car}, {"per_fleet", "fleet"}}) {
      auto& x = want[{agg, group, start}];
      ++x.count;
      const double v = t.values[speed()];
      if (std::isnan(v)) continue;
      x.speed.push_back(v);
      x.last.emplace_back(t.ts, t.seq, v);
    }
  }
  // Every car moves on an hour, so every window closes.
  for (const auto& car : cars) events.push_back(event(car, ++seq[car], kT0 + kMsPerHour));
  const auto got = latest(run(e, events));
  for (const auto& [key, x] : want) {
    const auto it = got.find(key);
    ASSERT_NE(it, got.end()) << std::get<1>(key) << " " << std::get<2>(key);
    const Result& r = it->second;
    EXPECT_EQ(r.count, x.count);
    const auto& v = x.speed;
    const double n = static_cast<double>(v.size());
    double sum = 0;
    for (const double d : v) sum += d;
    ASSERT_EQ(r.values.size(), 9U);
    EXPECT_EQ(r.values[0], n);
    EXPECT_EQ(r.values[1], *std::min_element(v.begin(), v.end()));
    EXPECT_EQ(r.values[2], *std::max_element(v.begin(), v.end()));
    EXPECT_NEAR(r.values[3], sum / n, 1e-9);
    EXPECT_NEAR(r.values[4], sum, 1e-9);
    for (const auto& [col, q] : {std::pair{5, 0.5}, {6, 0.95}, {7, 0.99}}) {
      const double exact = exact_quantile(v, q);
      EXPECT_LE(std::abs(r.values[col] - exact), 0.01 * exact) << "p" << q;
    }
    EXPECT_EQ(r.values[8], std::get<2>(*std::max_element(x.last.begin(), x.last.end())));
  }
  // 3 cars x 10 windows + 10 fleet windows, plus the hour-later windows still open.
  EXPECT_EQ(got.size(), want.size());
}

TEST(Engine, AnEmptySignalGivesNaNAndACountOfZero) {
  Engine e(parse(
      "aggregates:\n  - {name: a, group: car, window: 1m, signals: {speed: [count, max, p95, last]}}\n"));
  e.add(event("c", 1, kT0, NAN));
  e.add(event("c", 2, kT0 + 2 * kMin));
  const auto r = e.flush();
  ASSERT_EQ(r.size(), 1U);
  EXPECT_EQ(r[0].count, 1);
  EXPECT_EQ(r[0].values[0], 0);
  EXPECT_TRUE(std::isnan(r[0].values[1]) && std::isnan(r[0].values[2]) && std::isnan(r[0].values[3]));
}

// Three cars send every 10 s; car-3 goes offline for an hour (its device buffers), then uploads the hour in
// order while the others carry on live.
TEST(Engine, ACarOfflineForAnHourGetsCompleteWindowsAndTheOthersCloseOnTime) {
  Engine e(parse(R"(aggregates:
  - {name: per_car, group: car, window: 5m, grace: 30s, signals: {speed: [sum]}}
  - {name: per_fleet, group: fleet, window: 5m, grace: 30s}
)"));
  std::map<std::string, int64_t> seq;
  std::vector<Result> results;
  const auto send = [&](const std::string& car, int64_t ts) {
    EXPECT_EQ(e.add(event(car, ++seq[car], ts, 1)), AddStatus::kAccepted) << car << " " << ts;
  };
  const auto flush = [&] {
    auto r = e.flush();
    results.insert(results.end(), r.begin(), r.end());
    return r;
  };
  const int64_t offline = kT0 + kMsPerHour;
  const int64_t back = offline + kMsPerHour;
  for (int64_t ts = kT0; ts < offline; ts += 10000) {
    for (const char* car : {"car-1", "car-2", "car-3"}) send(car, ts);
  }
  for (int64_t ts = offline; ts < back; ts += 10000) {
    for (const char* car : {"car-1", "car-2"}) send(car, ts);
  }
  // The others' windows closed on time, by their own event time: all but the last 5 minutes.
  flush();
  // Windows with a result (a car's: one each, at close; the fleet's: at close, and revised later).
  const auto closed = [&](const std::string& agg, const std::string& group) {
    std::set<int64_t> starts;
    for (const auto& r : results)
      if (r.aggregate == agg && r.group == group) starts.insert(r.window_start);
    return static_cast<int64_t>(starts.size());
  };
  EXPECT_EQ(closed("per_car", "car-1"), 23);
  // car-3's event time stopped at its last event: its last window is still open.
  EXPECT_EQ(closed("per_car", "car-3"), 11);
  EXPECT_EQ(closed("per_fleet", "fleet"), 23);
  // car-3 comes back and uploads its buffer in seq order, one 10 s step at a time beside live traffic.
  int64_t live = back;
  for (int64_t ts = offline; ts < back; ts += 10000, live += 10000) {
    send("car-3", ts);
    for (const char* car : {"car-1", "car-2"}) send(car, live);
  }
  flush();
  EXPECT_EQ(e.counters().too_late, 0U);
  const auto got = latest(results);
  for (int64_t start = kT0; start < back - 5 * kMin; start += 5 * kMin) {
    const auto& r = got.at({"per_car", "car-3", start});
    EXPECT_EQ(r.count, 30) << start;  // complete: every 10 s for 5 minutes
    EXPECT_EQ(r.values[0], 30);
    EXPECT_EQ(r.revision, 1U) << "a car's own windows need no revision";
    EXPECT_TRUE(r.final) << "and are dropped when they close";
    // The fleet windows of the offline hour were emitted with two cars, then revised with all three.
    const auto& f = got.at({"per_fleet", "fleet", start});
    EXPECT_EQ(f.count, 90) << start;
    EXPECT_EQ(f.revision, 90U) << start << ": the revision counts the events merged";
    const auto results_of_window = std::count_if(results.begin(), results.end(), [&](const Result& x) {
      return x.aggregate == "per_fleet" && x.window_start == start;
    });
    EXPECT_EQ(results_of_window, start >= offline ? 2 : 1) << start;
  }
  // car-1 went on closing windows on its own time while car-3 uploaded.
  EXPECT_EQ(closed("per_car", "car-1"), 23 + 12);
  // Each car holds only its open window; the fleet keeps its closed windows for the allowed lateness.
  for (const char* car : {"car-1", "car-2", "car-3"}) EXPECT_LT(e.car_memory_bytes(car), 1024U) << car;
}

// A car sends every 10 s for 30 hours with the shipped definitions: each of its windows is emitted once,
// final, when it closes, and its state does not grow past the first hour (the windows that can still change:
// one or two per definition), however long it runs.
TEST(Engine, ACarsOwnWindowsAreFinalWhenTheyCloseAndItsStateStaysFlat) {
  Engine e(defaults(catalog()));
  int64_t seq = 0;
  std::vector<Result> results;
  std::size_t second_hour = 0;  // the most bytes while the second hour's events came
  std::size_t most = 0;         // the most from the third hour on
  for (int64_t ts = kT0; ts < kT0 + 30 * kMsPerHour; ts += 10'000) {
    ++seq;
    ASSERT_EQ(e.add(event("c", seq, ts, static_cast<double>(seq % 60), 80 + static_cast<double>(seq % 20))),
              AddStatus::kAccepted);
    if (seq % 100 == 0) {
      auto r = e.flush();
      results.insert(results.end(), r.begin(), r.end());
    }
    if (ts >= kT0 + kMsPerHour) {
      auto& bound = ts < kT0 + 2 * kMsPerHour ? second_hour : most;
      bound = std::max(bound, e.car_memory_bytes("c"));
    }
  }
  auto r = e.flush();
  results.insert(results.end(), r.begin(), r.end());
  // 30 h: 360 five-minute and 30 hourly windows, all but the last of each closed.
  ASSERT_EQ(results.size(), 359U + 29U);
  for (const auto& res : results) {
    EXPECT_EQ(res.revision, 1U);
    EXPECT_TRUE(res.final);
    EXPECT_EQ(res.count, res.aggregate == "events_5m" ? 30 : 360) << res.aggregate << " " << res.window_start;
  }
  ASSERT_GT(second_hour, 0U);
  EXPECT_LE(most, second_hour) << "a car's state grows with its event time";
  EXPECT_LE(most, 4096U) << "per-car bytes with the shipped definitions (docs/architecture.md)";
  // Its clock going back past a closed window's grace: too late for both definitions, nothing counted.
  EXPECT_EQ(e.add(event("c", ++seq, kT0 + 29 * kMsPerHour)), AddStatus::kTooLate);
  EXPECT_TRUE(e.flush().empty());
  EXPECT_EQ(e.counters().too_late, 1U);
}

TEST(Engine, FleetWindowsAreRevisedOncePerFlushByLateEvents) {
  Engine e(parse("aggregates:\n  - {name: f, group: fleet, window: 1m, grace: 5s, allowed_lateness: 1h}\n"));
  e.add(event("a", 1, kT0 + 1000));
  e.add(event("b", 1, kT0 + 2 * kMin));  // closes [kT0, kT0 + 1m)
  auto r = e.flush();
  ASSERT_EQ(r.size(), 1U);
  EXPECT_EQ(r[0].count, 1);
  EXPECT_EQ(r[0].revision, 1U);
  EXPECT_FALSE(r[0].final);
  EXPECT_EQ(e.add(event("c", 1, kT0 + 2000)), AddStatus::kAccepted);
  EXPECT_EQ(e.add(event("c", 2, kT0 + 3000)), AddStatus::kAccepted);
  r = e.flush();
  ASSERT_EQ(r.size(), 1U);
  EXPECT_EQ(r[0].window_start, kT0);
  EXPECT_EQ(r[0].count, 3);
  EXPECT_EQ(r[0].revision, 3U);  // the events merged: higher for any later result
  EXPECT_TRUE(e.flush().empty());
  e.add(event("d", 1, kT0 + 4000));
  r = e.flush();
  ASSERT_EQ(r.size(), 1U);
  EXPECT_EQ(r[0].revision, 4U);
  // A window with no event until a late one is emitted at once (at the flush), revision 1.
  e.add(event("b", 2, kT0 + 4 * kMin));
  r = e.flush();
  ASSERT_EQ(r.size(), 1U);
  EXPECT_EQ(r[0].window_start, kT0 + 2 * kMin);
  e.add(event("d", 2, kT0 + kMin + 1));
  r = e.flush();
  ASSERT_EQ(r.size(), 1U);
  EXPECT_EQ(r[0].window_start, kT0 + kMin);
  EXPECT_EQ(r[0].revision, 1U);
}

TEST(Engine, EventsPastTheAllowedLatenessAreTooLate) {
  Engine e(parse(R"(aggregates:
  - {name: f, group: fleet, window: 1m, grace: 5s, allowed_lateness: 10m}
  - {name: c, group: car, window: 1m, allowed_lateness: 10m}
)"));
  e.add(event("a", 1, kT0 + kMsPerHour));
  // For the fleet, 20 minutes behind its event time is too late; b's own windows take it.
  EXPECT_EQ(e.add(event("b", 1, kT0 + kMsPerHour - 20 * kMin)), AddStatus::kTooLate);
  EXPECT_EQ(e.add(event("b", 2, kT0 + kMsPerHour - 9 * kMin)), AddStatus::kAccepted);
  // A car whose clock goes back past the lateness: too late for its own windows too.
  EXPECT_EQ(e.add(event("a", 2, kT0 + kMsPerHour - 30 * kMin)), AddStatus::kTooLate);
  EXPECT_EQ(e.counters().too_late, 2U);
  // Event times no clock gives are refused before any window arithmetic, and do not move the seq guard.
  EXPECT_EQ(e.add(event("a", 10, INT64_MAX)), AddStatus::kBadTime);
  EXPECT_EQ(e.add(event("a", 10, INT64_MIN)), AddStatus::kBadTime);
  // The fleet windows expire once its event time passes end + lateness; their last result is final only
  // when it was dropped with it.
  e.flush();
  e.add(event("a", 3, kT0 + 3 * kMsPerHour));
  EXPECT_EQ(e.add(event("b", 3, kT0 + 2 * kMsPerHour)), AddStatus::kTooLate);
}

TEST(Engine, DuplicatesAreIgnoredAndAReplayGivesTheSameResults) {
  const auto defs = defaults(catalog());
  std::vector<Telemetry> events;
  for (int64_t i = 1; i <= 2000; ++i) {
    events.push_back(event("car-" + std::to_string(i % 7), i, kT0 + i * 7000, static_cast<double>(i % 50)));
  }
  Engine once(defs);
  const auto want = run(once, events);
  ASSERT_FALSE(want.empty());
  // The same input again, with a crash replay of a prefix in the middle: every replayed event is a duplicate.
  Engine replayed(defs);
  std::vector<Telemetry> with_replay(events.begin(), events.begin() + 1500);
  with_replay.insert(with_replay.end(), events.begin() + 1000, events.end());
  const auto got = run(replayed, with_replay);
  EXPECT_EQ(replayed.counters().duplicates, 500U);
  EXPECT_EQ(replayed.counters().accepted, 2000U);
  const auto a = latest(want);
  const auto b = latest(got);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [k, r] : a) EXPECT_TRUE(same(r, b.at(k))) << std::get<1>(k) << " " << std::get<2>(k);
}

TEST(Engine, HoppingWindowsCountEachEventInSizeOverAdvanceWindows) {
  Engine e(parse(
      "aggregates:\n  - {name: h, group: car, window: {size: 10m, advance: 5m}, signals: {speed: [sum]}}\n"));
  int64_t seq = 0;
  for (int64_t ts = kT0; ts < kT0 + 30 * kMin; ts += kMin) e.add(event("c", ++seq, ts, 1));
  e.add(event("c", ++seq, kT0 + kMsPerHour));
  const auto got = latest(e.flush());
  // Windows start every 5 minutes from kT0 - 5m; each full one holds 10 events, the edges 5.
  for (int64_t start = kT0 - 5 * kMin; start < kT0 + 30 * kMin; start += 5 * kMin) {
    const auto& r = got.at({"h", "c", start});
    const int64_t want = (start < kT0 || start + 10 * kMin > kT0 + 30 * kMin) ? 5 : 10;
    EXPECT_EQ(r.count, want) << (start - kT0) / kMin;
    EXPECT_EQ(r.window_end - r.window_start, 10 * kMin);
    EXPECT_EQ(r.values[0], static_cast<double>(want));
  }
}

TEST(Engine, GroupsByTheAttributeValueTheCallerGives) {
  Engine e(parse("aggregates:\n  - {name: s, group: attribute, attribute: site, window: 1m}\n"));
  ASSERT_EQ(e.attributes(), std::vector<std::string>{"site"});
  const std::vector<std::string_view> north{"north"}, south{"south"};
  e.add(event("a", 1, kT0), north);
  e.add(event("b", 1, kT0), north);
  e.add(event("c", 1, kT0), south);
  e.add(event("a", 2, kT0 + 2 * kMin), north);
  e.add(event("c", 2, kT0 + 2 * kMin), south);
  const auto got = latest(e.flush());
  EXPECT_EQ(got.at({"s", "north", kT0}).count, 2);
  EXPECT_EQ(got.at({"s", "south", kT0}).count, 1);
  EXPECT_THROW(e.add(event("a", 3, kT0)), std::invalid_argument);
}

TEST(Engine, StateIsBoundedPerCarAndMeasured) {
  EngineOptions options;
  options.max_windows_per_key = 4;
  // A grace of an hour keeps every 1-minute window open: only the bound limits them.
  Engine e(parse("aggregates:\n  - {name: a, group: car, window: 1m, grace: 1h, signals: {speed: [p95]}}\n"),
           options);
  EXPECT_EQ(e.car_memory_bytes("c"), 0U);
  int64_t seq = 0;
  std::vector<Result> results;
  for (int64_t m = 0; m < 10; ++m) e.add(event("c", ++seq, kT0 + m * kMin));
  results = e.flush();
  EXPECT_EQ(e.counters().evicted_open, 6U);
  ASSERT_EQ(results.size(), 6U);  // the 6 oldest, emitted early and final
  EXPECT_TRUE(
      std::all_of(results.begin(), results.end(), [](const Result& r) { return r.final && r.count == 1; }));
  const std::size_t bytes = e.car_memory_bytes("c");
  EXPECT_GT(bytes, 4 * sizeof(double));
  for (int64_t m = 10; m < 1000; ++m) e.add(event("c", ++seq, kT0 + m * kMin, static_cast<double>(m)));
  e.flush();
  // Still four windows: the memory stays within a small factor (the sketches' buckets vary).
  EXPECT_LE(e.car_memory_bytes("c"), 2 * bytes);
  EXPECT_GE(e.memory_bytes(), e.car_memory_bytes("c"));
  // An event for a dropped window is refused, not counted in a fresh partial window.
  EXPECT_EQ(e.add(event("c", ++seq, kT0 + 5 * kMin)), AddStatus::kTooLate);
}
