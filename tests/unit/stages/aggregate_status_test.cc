// Windows grouped by health status (issue 19 item 1): the aggregate stage gives each event the status its own
// score on fleet.scores gave it (unknown without one), whatever the interleaving of the two topics; it
// commits no offset of an event still waiting for its score, so a kill and restart counts every event once;
// and what it holds is bounded.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "aggregate/definition.h"
#include "codec/avro.h"
#include "codec/schemas.h"
#include "config/config.h"
#include "core/topics.h"
#include "stages/aggregate/aggregate_stage.h"
#include "stages/score/score_stage.h"
#include "unit/stages/stage_records.h"

using namespace fleettwin;
using Capture = fleettwin::testing::CaptureProducer;
namespace t = core::topics;

namespace {

constexpr int64_t kT0 = 1'700'000'000'000 - (1'700'000'000'000 % aggregate::kMsPerHour);
constexpr int64_t kMin = 60'000;
constexpr int64_t kEvents = 36;  // per car, one every 10 s: six 1-minute windows

const catalog::Catalog& builtin_catalog() { return *catalog::builtin(); }

constexpr const char* kByStatus = R"(aggregates:
  - name: by_status
    group: attribute
    attribute: status
    window: 1m
    grace: 0s
    allowed_lateness: 1h
    signals:
      speed: [sum]
  - name: fleet_1m
    group: fleet
    window: 1m
    grace: 0s
    allowed_lateness: 1h
    signals:
      speed: [sum]
)";

stages::AggregateStage::Options options(bool changelog = false, bool sites = false) {
  stages::AggregateStage::Options o;
  o.definitions = aggregate::parse_yaml(kByStatus, "t.yaml", builtin_catalog());
  o.result_schema_id = 7;
  o.changelog = changelog;
  o.sites = sites;
  o.partials_partitions = 1;
  return o;
}

log::Record telemetry(const std::string& car, int64_t seq, int64_t offset) {
  core::Telemetry tel;
  tel.car = car;
  tel.seq = seq;
  tel.ts = kT0 + (seq - 1) * 10'000;
  tel.values[builtin_catalog().index_of("speed")] = static_cast<double>(seq);
  log::Record r;
  r.topic = t::kTelemetry;
  r.key = car;
  r.offset = offset;
  codec::encode_avro_telemetry(tel, 1, r.value);
  return r;
}

log::Record score(const std::string& car, int64_t seq, double value, int64_t offset, bool in_alert = false) {
  codec::AnomalyScore s;
  s.car = car;
  s.seq = seq;
  s.ts = kT0 + (seq - 1) * 10'000;
  s.score = value;
  s.threshold = 1.0;
  s.in_alert = in_alert;
  log::Record r;
  r.topic = t::kScores;
  r.key = car;
  r.offset = offset;
  codec::encode_avro_anomaly_score(s, 3, r.value);
  return r;
}

/// Two cars on one partition, in the order the log holds them. Car a: seq 1-3 unscored (the score stage's
/// warm-up), 4-20 ok, 21-27 warning (a score above its threshold), 28-36 anomaly (its alert opened at 28, in
/// the middle of the fifth window: the score stage marks those scores in_alert). Car b: ok, warning from 31
/// (its warnings close the fifth window of warnings), but for 1-3 and 15, 30, 35, which the score stage did
/// not score. Scores come in the order of their events, as the score stage writes them.
constexpr int64_t kAlertFrom = 28;  // car a's first event in alert

struct Streams {
  std::vector<log::Record> events;
  std::vector<log::Record> scores;
};

Streams streams() {
  Streams s;
  const std::set<int64_t> b_unscored = {1, 2, 3, 15, 30, 35};
  for (int64_t seq = 1; seq <= kEvents; ++seq) {
    for (const std::string car : {"a", "b"}) {
      s.events.push_back(telemetry(car, seq, static_cast<int64_t>(s.events.size())));
      if (seq <= 3 || (car == "b" && b_unscored.contains(seq))) continue;
      const double value = (car == "a" && seq >= 21) || (car == "b" && seq >= 33) ? 2.0 : 0.5;
      const bool in_alert = car == "a" && seq >= kAlertFrom;
      s.scores.push_back(score(car, seq, value, static_cast<int64_t>(s.scores.size()), in_alert));
    }
  }
  return s;
}

/// The status each event must be counted with, per window start: what the streams above say.
std::map<std::pair<std::string, int64_t>, int64_t> expected_counts() {
  std::map<std::pair<std::string, int64_t>, int64_t> out;
  const std::set<int64_t> b_unscored = {1, 2, 3, 15, 30, 35};
  for (int64_t seq = 1; seq <= kEvents; ++seq) {
    const int64_t start = kT0 + ((seq - 1) * 10'000 / kMin) * kMin;
    ++out[{seq <= 3 ? "unknown" : seq >= kAlertFrom ? "anomaly" : seq >= 21 ? "warning" : "ok", start}];
    ++out[{b_unscored.contains(seq) ? "unknown" : seq >= 33 ? "warning" : "ok", start}];
  }
  return out;
}

using Window = std::tuple<std::string, std::string, int64_t>;  // aggregate, group, start

/// The newest revision of each window in `records` (what the sink keeps).
void newest(const std::vector<log::OutRecord>& records, std::map<Window, codec::AggregateResult>& into) {
  for (const auto& o : records) {
    if (o.topic != t::kAggregates) continue;
    codec::AggregateResult a;
    std::string error;
    ASSERT_TRUE(codec::decode_avro_aggregate_result(o.value, a, nullptr, &error)) << error;
    const Window w{a.aggregate, a.group, a.window_start};
    if (auto it = into.find(w); it == into.end() || it->second.revision < a.revision) into[w] = a;
  }
}

/// The two streams merged at random (each in its own order), in batches of random size.
std::vector<std::vector<log::Record>> interleave(const Streams& s, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::vector<log::Record>> batches(1);
  std::size_t e = 0, c = 0;
  while (e < s.events.size() || c < s.scores.size()) {
    const bool take_event = c == s.scores.size() || (e < s.events.size() && rng() % 2 == 0);
    batches.back().push_back(take_event ? s.events[e++] : s.scores[c++]);
    if (rng() % 7 == 0) batches.emplace_back();
  }
  return batches;
}

std::map<Window, codec::AggregateResult> run(const std::vector<std::vector<log::Record>>& batches,
                                             bool sites = false) {
  core::Metrics metrics;
  stages::AggregateStage stage(options(false, sites), metrics);
  Capture out;
  for (const auto& b : batches) stage.process(b, out);
  std::map<Window, codec::AggregateResult> got;
  newest(out.records, got);
  return got;
}

}  // namespace

TEST(AggregateStatus, StatusIsAnAttributeThatReadsTheScores) {
  const auto defs = aggregate::parse_yaml(kByStatus, "t.yaml", builtin_catalog());
  EXPECT_NO_THROW(stages::AggregateStage::check_attributes(defs));
  EXPECT_TRUE(stages::AggregateStage::needs_scores(defs));
  core::Metrics metrics;
  stages::AggregateStage with(options(), metrics);
  const auto& inputs = with.descriptor().inputs;
  EXPECT_NE(std::find(inputs.begin(), inputs.end(), t::kScores), inputs.end());
  // Without a status group the stage reads no scores at all.
  auto o = options();
  o.definitions.erase(o.definitions.begin());
  EXPECT_FALSE(stages::AggregateStage::needs_scores(o.definitions));
  stages::AggregateStage without(o, metrics);
  EXPECT_EQ(without.descriptor().inputs, stages::AggregateStage::static_descriptor().inputs);
  EXPECT_EQ(without.status_matcher(), nullptr);
}

// Whatever the interleaving of telemetry and scores, every closed window holds each event under its own
// score's status (a car turning to warning mid-window counts in both, and so does one whose alert opens
// mid-window: anomaly from the event that raised it, core::score_status), unscored events under unknown, and
// the statuses of a window add up to the fleet's count.
TEST(AggregateStatus, InterleavingsGiveTheSameWindowsPerStatus) {
  const Streams s = streams();
  const auto expected = expected_counts();
  std::map<Window, codec::AggregateResult> first;
  for (uint32_t seed = 1; seed <= 12; ++seed) {
    const auto got = run(interleave(s, seed));
    // Windows 0-4 closed in every group (each group has a later event); the sixth is still open.
    for (int64_t w = 0; w < 5; ++w) {
      const int64_t start = kT0 + w * kMin;
      int64_t by_status = 0;
      for (const char* status : {"ok", "warning", "anomaly", "unknown"}) {
        const auto want = expected.find({status, start});
        const auto it = got.find(Window{"by_status", status, start});
        if (want == expected.end()) {
          EXPECT_EQ(it, got.end()) << status << " window " << w;
          continue;
        }
        ASSERT_NE(it, got.end()) << status << " window " << w << " seed " << seed;
        EXPECT_EQ(it->second.count, want->second) << status << " window " << w << " seed " << seed;
        by_status += it->second.count;
      }
      const auto fleet = got.find(Window{"fleet_1m", "fleet", start});
      ASSERT_NE(fleet, got.end());
      EXPECT_EQ(fleet->second.count, 12);
      EXPECT_EQ(by_status, fleet->second.count) << "window " << w;
    }
    // Window 3 holds car a's change: two ok events, four warnings.
    EXPECT_EQ((got.at(Window{"by_status", "warning", kT0 + 3 * kMin}).count), 4);
    // Window 4 holds its alert's opening: the three events before it are warnings, the three after anomalies.
    EXPECT_EQ((got.at(Window{"by_status", "warning", kT0 + 4 * kMin}).count), 3);
    EXPECT_EQ((got.at(Window{"by_status", "anomaly", kT0 + 4 * kMin}).count), 3);
    EXPECT_FALSE(got.contains(Window{"by_status", "anomaly", kT0 + 3 * kMin}));
    if (seed == 1) {
      first = got;
    } else {
      ASSERT_EQ(got.size(), first.size()) << seed;
      for (const auto& [w, r] : first) {
        ASSERT_TRUE(got.contains(w)) << seed;
        EXPECT_EQ(got.at(w).count, r.count) << seed;
        ASSERT_EQ(got.at(w).values.size(), r.values.size()) << seed;
        for (std::size_t i = 0; i < r.values.size(); ++i) {
          EXPECT_EQ(got.at(w).values[i].column, r.values[i].column);
          EXPECT_EQ(got.at(w).values[i].value, r.values[i].value) << seed;
        }
      }
    }
  }
}

// A shadow model's scores say nothing of an event's status; a bad score goes to the scores DLQ.
TEST(AggregateStatus, ShadowScoresAreIgnoredBadOnesGoToTheDlq) {
  core::Metrics metrics;
  stages::AggregateStage stage(options(), metrics);
  Capture out;
  auto shadow = score("a", 1, 5.0, 0);
  shadow.headers.push_back({stages::kHeaderModelRole, "shadow"});
  auto bad = score("a", 1, 5.0, 1);
  bad.value = "garbage";
  stage.process({telemetry("a", 1, 0), shadow, bad}, out);
  EXPECT_EQ(stage.status_matcher()->held_events(), 1U);  // still waiting for its active score
  int dlq = 0;
  for (const auto& o : out.records) dlq += o.topic == stages::dlq_of(t::kScores) ? 1 : 0;
  EXPECT_EQ(dlq, 1);
  stage.process({score("a", 1, 5.0, 2)}, out);
  EXPECT_EQ(stage.status_matcher()->held_events(), 0U);
}

// The runner must not commit an event still held: limit_commit lowers the telemetry offset to the first held
// event and the scores' to the first score ahead of its event; once matched, both move on.
TEST(AggregateStatus, HeldEventsAreNotCommitted) {
  core::Metrics metrics;
  stages::AggregateStage stage(options(true), metrics);
  Capture out;
  std::vector<log::Record> batch = {telemetry("a", 1, 10), telemetry("b", 1, 11), telemetry("a", 2, 12)};
  auto next = log::next_offsets(batch);
  stage.process(batch, out);
  stage.limit_commit(next);
  EXPECT_EQ((next[{t::kTelemetry, 0}]), 10);
  // b's score proves a's first event has none: a/1 and b/1 go; a/2 waits.
  batch = {score("b", 1, 0.1, 40)};
  next = log::next_offsets(batch);
  stage.process(batch, out);
  next[{t::kTelemetry, 0}] = 13;  // what the runner holds from before
  stage.limit_commit(next);
  EXPECT_EQ((next[{t::kTelemetry, 0}]), 12);
  EXPECT_EQ((next[{t::kScores, 0}]), 41);
  // A score ahead of its event holds the scores' offset back.
  batch = {score("a", 2, 0.1, 41), score("c", 1, 0.1, 42)};
  next = log::next_offsets(batch);
  stage.process(batch, out);
  next[{t::kTelemetry, 0}] = 13;
  stage.limit_commit(next);
  EXPECT_EQ((next[{t::kTelemetry, 0}]), 13);
  EXPECT_EQ((next[{t::kScores, 0}]), 42);

  // A batch of scores alone that releases held events commits them: the telemetry's offset moves on though
  // the batch read none (it stayed at the first event held, and a kill read them all again: on Kafka).
  stages::AggregateStage other(options(true), metrics);
  batch = {telemetry("a", 1, 20), telemetry("a", 2, 21)};
  next = log::next_offsets(batch);
  other.process(batch, out);
  other.limit_commit(next);
  EXPECT_EQ((next[{t::kTelemetry, 0}]), 20);
  batch = {score("a", 1, 0.1, 50), score("a", 2, 0.1, 51)};
  next = log::next_offsets(batch);
  other.process(batch, out);
  other.limit_commit(next);
  EXPECT_EQ((next[{t::kTelemetry, 0}]), 22);
  EXPECT_EQ((next[{t::kScores, 0}]), 52);
}

// A kill: the first copy processes part of the input, its changelog is written and the (limited) offsets
// committed; a second copy loads the changelog and reads on from those offsets. The windows it stores equal
// those of one uninterrupted run: no event counted twice or lost, each under its own status.
TEST(AggregateStatus, AKillAndRestartCountsEveryEventOnce) {
  const Streams s = streams();
  const auto batches = interleave(s, 5);
  const auto whole = run(batches);
  for (const std::size_t kill_after : {batches.size() / 3, batches.size() / 2}) {
    std::map<std::string, std::string> changelog;
    std::map<Window, codec::AggregateResult> stored;
    log::Offsets committed;
    auto feed = [&](stages::AggregateStage& stage, const std::vector<log::Record>& batch, Capture& out) {
      auto next = log::next_offsets(batch);
      stage.process(batch, out);
      stage.limit_commit(next);
      for (const auto& [tp, o] : next) committed[tp] = std::max(committed[tp], o);
      // The partials go round through their topic to the combiner (this copy holds their one partition).
      for (int round = 0; round < 3; ++round) {
        std::vector<log::Record> partials;
        for (auto& o : out.records)
          if (o.topic == t::kAggregatesPartials) partials.push_back({o.topic, 0, 0, o.key, o.value, {}, 0});
        std::erase_if(out.records, [](const log::OutRecord& o) { return o.topic == t::kAggregatesPartials; });
        if (partials.empty()) break;
        stage.process(partials, out);
      }
    };
    {
      core::Metrics metrics;
      stages::AggregateStage first(options(true), metrics);
      first.on_assigned({{t::kTelemetry, 0}, {t::kScores, 0}, {t::kAggregatesPartials, 0}});
      Capture out;
      for (std::size_t i = 0; i < kill_after; ++i) feed(first, batches[i], out);
      first.flush_state(out);
      for (const auto& o : out.records)
        if (o.topic == t::kAggregatesState) changelog[o.key] = o.value;
      newest(out.records, stored);
    }
    core::Metrics metrics;
    stages::AggregateStage::Links links;
    links.load = [&](const std::set<int32_t>&) {
      std::vector<stages::AggregateSnapshot> v;
      for (const auto& [k, state] : changelog) v.push_back({k, state});
      return v;
    };
    stages::AggregateStage second(options(true), metrics, registry::TelemetryReader(), links);
    second.on_assigned({{t::kTelemetry, 0}, {t::kScores, 0}, {t::kAggregatesPartials, 0}});
    Capture out;
    // From the committed offsets on, every record of both topics once more (in one merged order).
    std::vector<log::Record> rest;
    for (const auto& b : batches)
      for (const auto& r : b)
        if (r.offset >= committed[{r.topic, 0}]) rest.push_back(r);
    feed(second, rest, out);
    newest(out.records, stored);
    for (const auto& [w, r] : whole) {
      if (std::get<0>(w) != "by_status" && std::get<0>(w) != "fleet_1m") continue;
      ASSERT_TRUE(stored.contains(w)) << std::get<1>(w) << " " << std::get<2>(w) << " kill " << kill_after;
      EXPECT_EQ(stored.at(w).count, r.count)
          << std::get<1>(w) << " " << std::get<2>(w) << " kill " << kill_after;
    }
  }
}

// A car whose scores never come (the score stage does not run, or not for it) holds at most the per-car
// bound; the oldest go out as unknown, and the stage's memory stays bounded however long it sends.
TEST(AggregateStatus, TheHeldEventsAreBoundedPerCarAndInAll) {
  core::Metrics metrics;
  auto o = options();
  o.status_held.per_car = 8;
  o.status_held.total = 20;
  stages::AggregateStage stage(o, metrics);
  Capture out;
  std::size_t most = 0;
  for (int64_t seq = 1; seq <= 500; ++seq) {
    std::vector<log::Record> batch;
    for (const char* car : {"x", "y", "z", "w"}) batch.push_back(telemetry(car, seq, seq * 4));
    stage.process(batch, out);
    const auto* m = stage.status_matcher();
    EXPECT_LE(m->held_events(), 20U);
    most = std::max(most, m->memory_bytes());
  }
  EXPECT_LE(stage.status_matcher()->held_events(), 20U);
  EXPECT_GT(stage.status_matcher()->evicted(), 1900);
  EXPECT_LT(most, 20U * 4096U);
  // The evicted events are counted, under unknown.
  std::map<Window, codec::AggregateResult> got;
  newest(out.records, got);
  EXPECT_EQ((got.at(Window{"by_status", "unknown", kT0}).count), 24);
  // Their scores, should they come after all, are not taken for a later event's.
  stage.process({score("x", 1, 5.0, 0)}, out);
  EXPECT_EQ(stage.status_matcher()->held_scores(), 0U);
}

// Central with --sites: a site's copies of fleet.telemetry and fleet.scores mix, in each of central's
// partitions, the cars of several of the edge's own partitions (the edge's memory log hashes keys otherwise
// than central's Kafka, and may have another partition count), and the uplink writes each topic in the order
// it read the edge's partitions: across cars, the two topics of one central partition need not agree. Each
// record says which partition of the site it was read from (kHeaderSitePartition, set by the uplink's
// capture), in whose order the scores are a subsequence of the events: paired per site partition, every event
// counts under its own score's status. Paired per central partition alone, car a's events waited behind b's
// scores, were taken for unscored, and a's first score then stood at the head for ever.
TEST(AggregateStatus, ASitesCopiesPairTheScoresOfEachSitePartitionWithItsEvents) {
  const Streams edge = streams();
  // Car a was on the site's partition 1, car b on its partition 3; central holds both in its partition 0.
  auto from_site = [](log::Record r) {
    r.headers.push_back({t::kHeaderSite, "north"});
    r.headers.push_back({t::kHeaderSitePartition, r.key == "a" ? "1" : "3"});
    return r;
  };
  Streams central;
  for (const auto& r : edge.events) central.events.push_back(from_site(r));
  // The uplink read the site's partition 3 of fleet.scores before its partition 1: b's scores first.
  for (const char* car : {"b", "a"})
    for (const auto& r : edge.scores)
      if (r.key == car) central.scores.push_back(from_site(r));
  for (std::size_t i = 0; i < central.scores.size(); ++i) central.scores[i].offset = static_cast<int64_t>(i);
  const auto expected = expected_counts();
  for (uint32_t seed = 1; seed <= 6; ++seed) {
    const auto got = run(interleave(central, seed), true);
    for (int64_t w = 0; w < 5; ++w)
      for (const char* status : {"ok", "warning", "anomaly", "unknown"}) {
        const auto want = expected.find({status, kT0 + w * kMin});
        const auto it = got.find(Window{"by_status", status, kT0 + w * kMin});
        ASSERT_EQ(it != got.end(), want != expected.end()) << status << " window " << w << " seed " << seed;
        if (it != got.end()) {
          EXPECT_EQ(it->second.count, want->second) << status << " " << w << " " << seed;
        }
      }
  }
}

// Under --sites a central partition holds a stream per site partition: its telemetry is committed up to the
// first event any of them holds, and once none holds one, past the last event read in all of them (not where
// the one that read least stopped: that would read the others' events again after a restart).
TEST(AggregateStatus, ACentralPartitionCommitsUpToTheFirstEventAnyOfItsSitePartitionsHolds) {
  core::Metrics metrics;
  stages::AggregateStage stage(options(true, true), metrics);
  Capture out;
  const std::string topic = std::string("north.") + t::kTelemetry;  // what the runner commits
  auto from_site = [](log::Record r, const char* site_partition) {
    r.headers.push_back({t::kHeaderSite, "north"});
    r.headers.push_back({t::kHeaderSitePartition, site_partition});
    return r;
  };
  // Car a from the site's partition 1 (offset 10), car b from its partition 3 (offsets 11, 12).
  std::vector<log::Record> batch = {from_site(telemetry("a", 1, 10), "1"),
                                    from_site(telemetry("b", 1, 11), "3"),
                                    from_site(telemetry("b", 2, 12), "3")};
  log::Offsets next{{{topic, 0}, 13}};
  stage.process(batch, out);
  stage.limit_commit(next);
  EXPECT_EQ((next[{topic, 0}]), 10);
  // b's scores release b's events; a's still waits for its own.
  stage.process({from_site(score("b", 1, 0.1, 40), "3"), from_site(score("b", 2, 0.1, 41), "3")}, out);
  next = {{{topic, 0}, 13}};
  stage.limit_commit(next);
  EXPECT_EQ((next[{topic, 0}]), 10);
  EXPECT_EQ(stage.status_matcher()->held_events(), 1U);
  stage.process({from_site(score("a", 1, 0.1, 42), "1")}, out);
  next.clear();
  stage.limit_commit(next);
  EXPECT_EQ((next[{topic, 0}]), 13);
  EXPECT_EQ(stage.status_matcher()->held_events(), 0U);
}

// Headers are the producer's word. Without --sites a record's site header names no topic to commit (a
// foreign producer on central's own fleet.telemetry cannot make the stage commit elsewhere or group under
// its site); under --sites a site partition that is no partition number is taken as none (a site's records
// make at most log.partitions' bound of streams).
TEST(AggregateStatus, SiteHeadersAProducerWroteChooseNeitherTopicsNorStreams) {
  core::Metrics metrics;
  stages::AggregateStage plain(options(true), metrics);
  Capture out;
  auto forged = telemetry("a", 1, 10);
  forged.headers.push_back({t::kHeaderSite, "elsewhere"});
  plain.process({forged}, out);
  log::Offsets next;
  plain.limit_commit(next);
  EXPECT_EQ(next.size(), 1U);
  EXPECT_EQ((next[{t::kTelemetry, 0}]), 10);

  stages::AggregateStage central(options(true, true), metrics);
  for (int i = 0; i < 100; ++i) {
    auto r = telemetry("b", i + 1, i);
    r.headers.push_back({t::kHeaderSite, "north"});
    r.headers.push_back({t::kHeaderSitePartition, i % 2 ? "not-a-number" : std::to_string(100000 + i)});
    central.process({r}, out);
  }
  // One stream (no site partition): b's second event's score proves its first has none, as on one partition.
  auto s = score("b", 2, 0.1, 0);
  s.headers.push_back({t::kHeaderSite, "north"});
  central.process({s}, out);
  EXPECT_EQ(central.status_matcher()->held_events(), 98U);
}
