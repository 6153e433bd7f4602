// Engine::save_car / restore_car: a car's windows survive a restart of the aggregate stage through its
// changelog, and damaged or foreign bytes are refused.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "aggregate/engine.h"

using namespace fleettwin::aggregate;
using fleettwin::core::Telemetry;

namespace {

constexpr int64_t kMin = 60 * 1000;
constexpr int64_t kT0 = 1'700'000'000'000 - (1'700'000'000'000 % kMsPerHour);

const fleettwin::catalog::Catalog& catalog() { return *fleettwin::catalog::builtin(); }

constexpr const char* kYaml = R"(aggregates:
  - name: per_car
    group: car
    window: 10m
    grace: 1m
    allowed_lateness: 30m
    signals:
      speed: [mean, max, p95, last]
      coolant_temp: [p50, min]
  - name: hopping
    group: car
    window: {size: 10m, advance: 5m}
)";

std::vector<Definition> defs(const char* yaml = kYaml) { return parse_yaml(yaml, "t.yaml", catalog()); }

Telemetry event(const std::string& car, int64_t seq, int64_t ts, double speed) {
  Telemetry t;
  t.car = car;
  t.seq = seq;
  t.ts = ts;
  t.values.assign(catalog().size(), fleettwin::core::kAbsent);
  t.values[catalog().index_of("speed")] = speed;
  t.values[catalog().index_of("coolant_temp")] = 80 + speed / 10;
  return t;
}

std::vector<Telemetry> stream(int n) {
  std::mt19937 rng(7);
  std::vector<Telemetry> out;
  for (int i = 1; i <= n; ++i) {
    // Mostly forward in time, sometimes a minute back (late within the lateness).
    const int64_t ts = kT0 + i * 20'000 - (rng() % 5 == 0 ? kMin : 0);
    out.push_back(event(i % 2 ? "a" : "b", i, ts, static_cast<double>(rng() % 400) / 7));
  }
  return out;
}

bool same(const Result& x, const Result& y) {
  if (x.aggregate != y.aggregate || x.group != y.group || x.window_start != y.window_start ||
      x.revision != y.revision || x.final != y.final || x.count != y.count ||
      x.values.size() != y.values.size())
    return false;
  for (std::size_t i = 0; i < x.values.size(); ++i)
    if (!(x.values[i] == y.values[i] || (std::isnan(x.values[i]) && std::isnan(y.values[i])))) return false;
  return true;
}

}  // namespace

// The same events with a save and restore into a fresh engine in the middle give the same results, revision
// by revision, as one engine that saw them all.
TEST(EngineState, SaveAndRestoreContinuesExactly) {
  const auto events = stream(400);
  Engine whole(defs());
  std::vector<Result> expected;
  for (const auto& t : events) {
    whole.add(t);
    for (auto& r : whole.flush()) expected.push_back(std::move(r));
  }
  ASSERT_GT(expected.size(), 20U);

  Engine first(defs());
  std::vector<Result> got;
  for (std::size_t i = 0; i < 200; ++i) {
    first.add(events[i]);
    for (auto& r : first.flush()) got.push_back(std::move(r));
  }
  Engine second(defs());
  std::string error;
  for (const char* car : {"a", "b"}) {
    const auto bytes = first.save_car(car);
    ASSERT_FALSE(bytes.empty());
    ASSERT_TRUE(second.restore_car(car, bytes, &error)) << error;
    EXPECT_EQ(second.save_car(car), bytes);  // restore then save writes the same bytes
  }
  // A replay of what the first engine counted is ignored by the restored seq guard.
  EXPECT_EQ(second.add(events[150]), AddStatus::kDuplicate);
  for (std::size_t i = 200; i < events.size(); ++i) {
    second.add(events[i]);
    for (auto& r : second.flush()) got.push_back(std::move(r));
  }
  ASSERT_EQ(got.size(), expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(same(got[i], expected[i])) << i;
  EXPECT_EQ(first.save_car("nobody"), "");
}

TEST(EngineState, RefusesOtherDefinitionsAndDamagedBytes) {
  Engine engine(defs());
  for (const auto& t : stream(60)) engine.add(t);
  engine.flush();
  const auto bytes = engine.save_car("a");
  std::string error;

  Engine other(defs(R"(aggregates:
  - name: per_car
    group: car
    window: 15m
)"));
  EXPECT_FALSE(other.restore_car("a", bytes, &error));
  EXPECT_NE(error.find("other definitions"), std::string::npos) << error;
  Engine more_windows(defs(), EngineOptions{.max_windows_per_key = 8});
  EXPECT_FALSE(more_windows.restore_car("a", bytes, &error));

  Engine fresh(defs());
  // Every truncation is refused, and leaves the car unknown.
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(fresh.restore_car("a", bytes.substr(0, n), &error)) << n;
  }
  EXPECT_FALSE(fresh.restore_car("a", bytes + "x", &error));
  EXPECT_EQ(fresh.cars(), 0U);
  // Flipped bytes: refused or accepted, never a crash (the fuzz target does this at scale); an accepted one
  // saves back to bytes that restore again.
  std::mt19937 rng(3);
  for (int i = 0; i < 2000; ++i) {
    std::string damaged = bytes;
    damaged[rng() % damaged.size()] = static_cast<char>(rng());
    if (fresh.restore_car("a", damaged, &error)) {
      const auto again = fresh.save_car("a");
      EXPECT_TRUE(fresh.restore_car("a", again, &error)) << error;
    }
  }
}

TEST(EngineState, ForgetDropsTheCar) {
  Engine engine(defs());
  engine.add(event("a", 1, kT0, 10));
  engine.add(event("b", 1, kT0, 10));
  EXPECT_EQ(engine.cars(), 2U);
  engine.forget_car("a");
  EXPECT_EQ(engine.cars(), 1U);
  EXPECT_EQ(engine.save_car("a"), "");
  // Forgotten means unknown: its next event is counted, not taken for a replay.
  EXPECT_EQ(engine.add(event("a", 1, kT0 + 1000, 10)), AddStatus::kAccepted);
}
