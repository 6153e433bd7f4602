// Group windows (issue 19, items 2-4): partials per source partition, merged by a combiner, equal a
// straightforward computation over every event whatever copy counted it, across a restart of a copy and of
// the combiner, and late events revise them with a higher revision.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "aggregate/engine.h"
#include "aggregate/partial_codec.h"

using namespace fleettwin::aggregate;
using fleettwin::core::Telemetry;

namespace {

constexpr int64_t kMin = 60 * 1000;
constexpr int64_t kT0 = 1'700'000'000'000 - (1'700'000'000'000 % kMsPerHour);
constexpr int32_t kSources = 4;

const fleettwin::catalog::Catalog& catalog() { return *fleettwin::catalog::builtin(); }

constexpr const char* kYaml = R"(aggregates:
  - name: fleet_1m
    group: fleet
    window: 1m
    grace: 5s
    allowed_lateness: 1h
    signals:
      speed: [count, min, max, sum, mean, p95, last]
  - name: site_1m
    group: attribute
    attribute: site
    window: 1m
    grace: 5s
    signals:
      speed: [max, mean]
)";

std::vector<Definition> defs() { return parse_yaml(kYaml, "t.yaml", catalog()); }

struct Event {
  Telemetry t;
  std::string site;
  int32_t source = 0;
};

// 12 cars on 4 partitions, each sending every 5 s for 20 minutes in seq order, sometimes up to 2 minutes
// late (within the lateness), the cars of a partition interleaved as a partition holds them.
std::vector<Event> stream() {
  std::mt19937 rng(11);
  std::vector<Event> out;
  for (int64_t step = 0; step < 240; ++step) {
    for (int car = 0; car < 12; ++car) {
      Event e;
      e.t.car = "car-" + std::to_string(car);
      e.t.seq = step + 1;
      e.t.ts = kT0 + step * 5000 + car * 100 - (rng() % 7 == 0 ? 2 * kMin : 0);
      e.t.values.assign(catalog().size(), fleettwin::core::kAbsent);
      e.t.values[catalog().index_of("speed")] = static_cast<double>(rng() % 1000) / 8;
      e.site = car % 3 == 0 ? "north" : "south";
      e.source = car % kSources;
      out.push_back(std::move(e));
    }
  }
  return out;
}

using Key = std::tuple<std::string, std::string, int64_t>;  // aggregate, group, start

/// The newest result of each window (highest revision), checking revisions never repeat with other counts.
void keep_latest(std::map<Key, Result>& latest, std::vector<Result> results) {
  for (auto& r : results) {
    auto& slot = latest[{r.aggregate, r.group, r.window_start}];
    if (slot.aggregate.empty() || r.revision > slot.revision) {
      slot = std::move(r);
    } else if (r.revision == slot.revision) {
      EXPECT_EQ(r.count, slot.count) << "one revision, two results: " << r.aggregate << " " << r.window_start;
    }
  }
}

/// Straightforward: every event in its window, no engine.
struct Expected {
  int64_t count = 0;
  double min = 0, max = 0, sum = 0, last = 0;
  int64_t last_ts = INT64_MIN, last_seq = 0;
  std::vector<double> values;
};
std::map<Key, Expected> straightforward(const std::vector<Event>& events) {
  std::map<Key, Expected> out;
  for (const auto& e : events) {
    const double v = e.t.values[catalog().index_of("speed")];
    const int64_t start = e.t.ts - ((e.t.ts % kMin) + kMin) % kMin;
    for (const Key& k : {Key{"fleet_1m", "fleet", start}, Key{"site_1m", e.site, start}}) {
      auto& x = out[k];
      x.min = x.count == 0 ? v : std::min(x.min, v);
      x.max = x.count == 0 ? v : std::max(x.max, v);
      ++x.count;
      x.sum += v;
      x.values.push_back(v);
      if (std::tie(e.t.ts, e.t.seq, v) > std::tie(x.last_ts, x.last_seq, x.last)) {
        x.last = v;
        x.last_ts = e.t.ts;
        x.last_seq = e.t.seq;
      }
    }
  }
  return out;
}

// Two copies of the stage, each counting two of the four partitions, and a combiner fed their partials
// (as fleet.aggregates.partials carries them).
struct Copies {
  EngineOptions options() const {
    EngineOptions o;
    o.combine_own_partials = false;
    return o;
  }
  Engine a{defs(), options()};
  Engine b{defs(), options()};
  Engine combiner{defs(), options()};
  std::map<std::string, Partial> topic;  ///< the compacted partials topic: latest record per key
  std::map<Key, Result> latest;

  Engine& owner(int32_t source) { return source < 2 ? a : b; }
  void flush() {
    for (Engine* e : {&a, &b}) {
      EXPECT_TRUE(e->flush().empty()) << "no per-car definitions";
      for (auto& p : e->take_partials()) {
        // Through the record codec, as on the log.
        Partial read;
        std::string error;
        ASSERT_TRUE(decode_partial(encode_partial(p), read, &error)) << error;
        ASSERT_TRUE(combiner.combine(read, &error)) << error;
        topic[partial_key(p)] = std::move(p);
      }
    }
    keep_latest(latest, combiner.flush());
  }
};

const std::string_view kSite = "site";

}  // namespace

TEST(EngineGroups, TwoCopiesMergeToTheStraightforwardComputation) {
  const auto events = stream();
  Copies c;
  int n = 0;
  for (const auto& e : events) {
    const std::string_view site[] = {e.site};
    ASSERT_EQ(c.owner(e.source).add(e.t, site, e.source), AddStatus::kAccepted);
    if (++n % 37 == 0) c.flush();
  }
  c.flush();
  const auto want = straightforward(events);
  const int64_t newest = kT0 + 239 * 5000;
  int64_t checked = 0;
  for (const auto& [key, x] : want) {
    if (std::get<2>(key) + kMin + 5000 > newest) continue;  // not closed yet
    const auto it = c.latest.find(key);
    ASSERT_NE(it, c.latest.end()) << std::get<0>(key) << " " << std::get<1>(key) << " " << std::get<2>(key);
    const Result& r = it->second;
    EXPECT_EQ(r.count, x.count);
    EXPECT_EQ(r.revision, static_cast<uint32_t>(x.count)) << "revision: the events merged";
    if (std::get<0>(key) == "fleet_1m") {
      ASSERT_EQ(r.values.size(), 7U);
      EXPECT_EQ(r.values[0], static_cast<double>(x.count));
      EXPECT_EQ(r.values[1], x.min);
      EXPECT_EQ(r.values[2], x.max);
      EXPECT_NEAR(r.values[3], x.sum, 1e-9 * std::abs(x.sum));
      EXPECT_NEAR(r.values[4], x.sum / static_cast<double>(x.count), 1e-9 * x.max);
      auto sorted = x.values;
      std::sort(sorted.begin(), sorted.end());
      const double p95 = sorted[static_cast<std::size_t>(0.95 * static_cast<double>(sorted.size() - 1))];
      EXPECT_NEAR(r.values[5], p95, 0.0101 * std::abs(p95) + 1e-9);
      EXPECT_EQ(r.values[6], x.last);
    } else {
      ASSERT_EQ(r.values.size(), 2U);
      EXPECT_EQ(r.values[0], x.max);
      EXPECT_NEAR(r.values[1], x.sum / static_cast<double>(x.count), 1e-9 * x.max);
    }
    ++checked;
  }
  EXPECT_GT(checked, 3 * 17);  // fleet, north and south for most of 20 minutes
}

// A copy killed after its last save: a new one restores the partition's group windows and counts the events
// after the save again; a new combiner rebuilds from the compacted partials. The stored windows equal the
// uninterrupted run's.
TEST(EngineGroups, ACopyAndTheCombinerRestartedGiveTheUninterruptedResults) {
  const auto events = stream();
  Copies whole;
  for (const auto& e : events) {
    const std::string_view site[] = {e.site};
    whole.owner(e.source).add(e.t, site, e.source);
  }
  whole.flush();

  Copies c;
  const std::size_t save_at = events.size() / 2, kill_at = events.size() * 2 / 3;
  std::map<int32_t, std::string> saved_sources;
  std::map<std::string, std::string> saved_cars;
  for (std::size_t i = 0; i < kill_at; ++i) {
    const auto& e = events[i];
    const std::string_view site[] = {e.site};
    c.owner(e.source).add(e.t, site, e.source);
    if (i % 50 == 0 || i == save_at) c.flush();
    if (i == save_at) {  // copy a's commit: its cars and its sources' group windows
      for (int32_t s : {0, 1}) saved_sources[s] = c.a.save_source(s);
      for (const auto& car : c.a.car_ids()) saved_cars[car] = c.a.save_car(car);
    }
  }
  c.flush();  // partials of the uncommitted events reached the topic before the kill
  Engine restarted(defs(), c.options());
  std::string error;
  for (const auto& [s, bytes] : saved_sources) {
    ASSERT_TRUE(restarted.restore_source(s, bytes, &error)) << error;
    restarted.touch_source(s);
  }
  for (const auto& [car, bytes] : saved_cars) ASSERT_TRUE(restarted.restore_car(car, bytes, &error)) << error;
  Engine combiner(defs(), c.options());
  for (const auto& [key, p] : c.topic) ASSERT_TRUE(combiner.combine(p, &error)) << error;
  std::map<Key, Result> latest = c.latest;  // what the store holds at the kill
  auto pass = [&] {
    for (Engine* e : {&restarted, &c.b}) {
      e->flush();
      for (auto& p : e->take_partials()) ASSERT_TRUE(combiner.combine(p, &error)) << error;
    }
    keep_latest(latest, combiner.flush());
  };
  for (std::size_t i = save_at + 1; i < events.size(); ++i) {
    const auto& e = events[i];
    const std::string_view site[] = {e.site};
    Engine& owner = e.source < 2 ? restarted : c.b;
    if (i >= kill_at || e.source < 2) owner.add(e.t, site, e.source);
    if (i % 41 == 0) pass();
  }
  pass();
  ASSERT_EQ(latest.size(), whole.latest.size());
  for (const auto& [key, want] : whole.latest) {
    const auto& got = latest.at(key);
    EXPECT_EQ(got.count, want.count) << std::get<0>(key) << " " << std::get<1>(key) << " "
                                     << std::get<2>(key);
    EXPECT_EQ(got.revision, want.revision);
    EXPECT_EQ(got.values, want.values);
  }
}

// An event later than the close of its fleet window, counted on another partition than the window's first
// events: one revised result, the merge of both partitions, with a higher revision.
TEST(EngineGroups, ALateEventRevisesTheMergeWithAHigherRevision) {
  Copies c;
  const std::string_view site[] = {"north"};
  auto event = [](const std::string& car, int64_t seq, int64_t ts, double speed) {
    Telemetry t;
    t.car = car;
    t.seq = seq;
    t.ts = ts;
    t.values.assign(catalog().size(), fleettwin::core::kAbsent);
    t.values[catalog().index_of("speed")] = speed;
    return t;
  };
  c.a.add(event("x", 1, kT0 + 1000, 10), site, 0);
  c.b.add(event("y", 1, kT0 + 2000, 30), site, 2);
  c.a.add(event("x", 2, kT0 + kMin + 10'000, 1), site, 0);  // closes [kT0, kT0 + 1m) for the fleet
  c.flush();
  const Key first{"fleet_1m", "fleet", kT0};
  ASSERT_TRUE(c.latest.contains(first));
  EXPECT_EQ(c.latest[first].count, 2);
  const uint32_t before = c.latest[first].revision;
  c.b.add(event("z", 1, kT0 + 3000, 50), site, 3);  // late, on a third partition
  c.flush();
  EXPECT_EQ(c.latest[first].count, 3);
  EXPECT_GT(c.latest[first].revision, before);
  EXPECT_EQ(c.latest[first].values[2], 50);  // max over every partition
  EXPECT_EQ(c.latest[first].values[3], 90);  // sum
}

// Partials come back from the log: anything the engine cannot have written is refused with a reason.
TEST(EngineGroups, PartialsNoEngineWroteAreRefused) {
  Copies c;
  const std::string_view site[] = {"north"};
  Telemetry t;
  t.car = "x";
  t.seq = 1;
  t.ts = kT0;
  t.values.assign(catalog().size(), fleettwin::core::kAbsent);
  c.a.add(t, site, 1);
  c.a.flush();
  auto partials = c.a.take_partials();
  ASSERT_EQ(partials.size(), 2U);
  const std::string bytes = encode_partial(partials[0]);
  Partial p;
  std::string error;
  EXPECT_FALSE(decode_partial(bytes.substr(0, bytes.size() - 1), p, &error));
  EXPECT_FALSE(decode_partial(bytes + "x", p, &error));
  EXPECT_EQ(error, "trailing bytes");
  ASSERT_TRUE(decode_partial(bytes, p, &error));
  Partial bad = p;
  bad.aggregate = "nope";
  EXPECT_FALSE(c.combiner.combine(bad, &error));
  bad = p;
  bad.count += 1;
  EXPECT_FALSE(c.combiner.combine(bad, &error));
  EXPECT_EQ(error, "window does not match its partial");
  bad = p;
  bad.window.pop_back();
  EXPECT_FALSE(c.combiner.combine(bad, &error));
  bad = p;
  bad.source = -1;
  EXPECT_FALSE(c.combiner.combine(bad, &error));
  EXPECT_EQ(c.combiner.counters().partials_refused, 4U);
  EXPECT_TRUE(c.combiner.combine(p, &error)) << error;
  // A source's saved group windows are refused by an engine with other definitions.
  Engine other(
      parse_yaml("aggregates:\n  - {name: fleet_1m, group: fleet, window: 2m}\n", "t.yaml", catalog()));
  EXPECT_FALSE(other.restore_source(1, c.a.save_source(1), &error));
  EXPECT_EQ(error, "saved with other definitions");
  EXPECT_TRUE(c.b.restore_source(1, c.a.save_source(1), &error)) << error;
  EXPECT_EQ(c.b.sources(), std::vector<int32_t>{1});
}
