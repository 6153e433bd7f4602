// The aggregate stage (issue 19 items 2 and 3): windows close per car by each car's own event time, results
// go to fleet.aggregates keyed by window, too-late events to the DLQ, the input is committed after the
// results, and the windows survive a restart through the changelog.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "aggregate/definition.h"
#include "codec/avro.h"
#include "codec/schemas.h"
#include "config/config.h"
#include "core/topics.h"
#include "log/memory/memory_log.h"
#include "stages/aggregate/aggregate_resume.h"
#include "stages/aggregate/aggregate_stage.h"
#include "stages/sink/sink_stage.h"
#include "store/sqlite/sqlite_store.h"
#include "support/temp_dir.h"
#include "unit/stages/stage_records.h"

using namespace fleettwin;
using Capture = fleettwin::testing::CaptureProducer;
using namespace std::chrono_literals;
namespace t = core::topics;

namespace {

constexpr int64_t kMin = 60'000;
constexpr int64_t kT0 = 1'700'000'000'000 - (1'700'000'000'000 % aggregate::kMsPerHour);

const catalog::Catalog& builtin_catalog() { return *catalog::builtin(); }

stages::AggregateStage::Options options(const char* yaml, bool changelog = false) {
  stages::AggregateStage::Options o;
  o.definitions = aggregate::parse_yaml(yaml, "t.yaml", builtin_catalog());
  o.result_schema_id = 7;
  o.changelog = changelog;
  o.sites = true;  // central with --sites: the records' site headers stand for the runner's
  return o;
}

constexpr const char* kPerMinute = R"(aggregates:
  - name: per_minute
    group: car
    window: 1m
    allowed_lateness: 3m
    signals:
      speed: [mean, max, p95]
)";

log::Record telemetry(const std::string& car, int64_t seq, int64_t ts, double speed, int32_t partition = 0) {
  core::Telemetry tel;
  tel.car = car;
  tel.seq = seq;
  tel.ts = ts;
  tel.values[builtin_catalog().index_of("speed")] = speed;
  log::Record r;
  r.topic = t::kTelemetry;
  r.key = car;
  r.partition = partition;
  r.offset = seq;
  codec::encode_avro_telemetry(tel, 1, r.value);
  return r;
}

using Key = std::tuple<std::string, std::string, int64_t, int32_t>;  // aggregate, group, start, revision

/// The results in `records`, by key and revision, each checked against its record key.
std::map<Key, codec::AggregateResult> results(const std::vector<log::OutRecord>& records) {
  std::map<Key, codec::AggregateResult> out;
  for (const auto& o : records) {
    if (o.topic != t::kAggregates) continue;
    codec::AggregateResult a;
    int32_t id = 0;
    std::string error;
    EXPECT_TRUE(codec::decode_avro_aggregate_result(o.value, a, &id, &error)) << error;
    EXPECT_EQ(id, 7);
    EXPECT_EQ(o.key, codec::aggregate_result_key(a.aggregate, a.group, a.window_start));
    const Key k{a.aggregate, a.group, a.window_start, a.revision};
    EXPECT_FALSE(out.contains(k)) << "written twice: " << o.key << " revision " << a.revision;
    out[k] = a;
  }
  return out;
}

std::vector<const log::OutRecord*> of_topic(const std::vector<log::OutRecord>& records, const char* topic) {
  std::vector<const log::OutRecord*> out;
  for (const auto& o : records)
    if (o.topic == topic) out.push_back(&o);
  return out;
}

}  // namespace

TEST(AggregateStage, WindowsClosePerCarByItsOwnEventTime) {
  core::Metrics metrics;
  stages::AggregateStage stage(options(kPerMinute), metrics);
  Capture out;
  // Car a moves past its first minute; car b, slower, has not: only a's window closes.
  stage.process({telemetry("a", 1, kT0 + 1000, 10), telemetry("a", 2, kT0 + 30'000, 20),
                 telemetry("b", 1, kT0 + 2000, 50), telemetry("a", 3, kT0 + kMin + 1000, 99)},
                out);
  auto got = results(out.records);
  ASSERT_EQ(got.size(), 1U);
  const auto& a = got.begin()->second;
  EXPECT_EQ(a.aggregate, "per_minute");
  EXPECT_EQ(a.group, "a");
  EXPECT_EQ(a.window_start, kT0);
  EXPECT_EQ(a.window_end, kT0 + kMin);
  EXPECT_EQ(a.revision, 1);
  EXPECT_FALSE(a.final);
  EXPECT_EQ(a.count, 2);
  ASSERT_EQ(a.values.size(), 3U);  // speed: mean, max, p95, each named (the count is a field of its own)
  EXPECT_EQ(a.values[0].column, "speed_mean");
  EXPECT_DOUBLE_EQ(a.values[0].value, 15);
  EXPECT_EQ(a.values[1].column, "speed_max");
  EXPECT_DOUBLE_EQ(a.values[1].value, 20);
  // b's window closes when b's own time passes it.
  out.records.clear();
  stage.process({telemetry("b", 2, kT0 + kMin + 5000, 1)}, out);
  got = results(out.records);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got.begin()->second.group, "b");
  EXPECT_EQ(got.begin()->second.count, 1);
  EXPECT_DOUBLE_EQ(got.begin()->second.values[0].value, 50);
}

TEST(AggregateStage, LateEventsReviseTooLateOnesGoToTheDlq) {
  core::Metrics metrics;
  stages::AggregateStage stage(options(kPerMinute), metrics);
  Capture out;
  stage.process({telemetry("a", 1, kT0 + 1000, 10), telemetry("a", 2, kT0 + kMin + 1000, 10)}, out);
  // Late within the allowed lateness: the closed window is revised.
  stage.process({telemetry("a", 3, kT0 + 2000, 30)}, out);
  auto got = results(out.records);
  ASSERT_TRUE(got.contains(Key{"per_minute", "a", kT0, 2}));
  EXPECT_EQ((got[Key{"per_minute", "a", kT0, 2}].count), 2);
  // The car's time moves 10 minutes on: an event for the first minute is now past its lateness.
  out.records.clear();
  stage.process({telemetry("a", 4, kT0 + 10 * kMin, 10), telemetry("a", 5, kT0 + 3000, 10)}, out);
  const auto dlq = of_topic(out.records, t::kTelemetryDlq);
  ASSERT_EQ(dlq.size(), 1U);
  EXPECT_EQ(dlq[0]->key, "a");
  bool reason = false;
  for (const auto& h : dlq[0]->headers) reason |= h.key == t::kHeaderErrorReason && h.value == "too_late";
  EXPECT_TRUE(reason);
  EXPECT_EQ(metrics.value("fleettwin_dlq_reason_total{stage=\"aggregate\",reason=\"too_late\"}"), 1);
  // A replayed event is no new event.
  out.records.clear();
  stage.process({telemetry("a", 4, kT0 + 10 * kMin, 10)}, out);
  EXPECT_TRUE(out.records.empty());
  EXPECT_EQ(metrics.value("fleettwin_aggregate_duplicates_total"), 1);
}

TEST(AggregateStage, GroupsBySiteOrStatusOnlyAmongAttributes) {
  EXPECT_THROW(stages::AggregateStage::check_attributes(aggregate::parse_yaml(R"(aggregates:
  - name: by_model
    group: attribute
    attribute: model
    window: 1m
)",
                                                                              "t.yaml", builtin_catalog())),
               config::ConfigError);
  core::Metrics metrics;
  stages::AggregateStage stage(options(R"(aggregates:
  - name: by_site
    group: attribute
    attribute: site
    window: 1m
)"),
                               metrics);
  Capture out;
  auto at_site = [](log::Record r, const char* site) {
    r.headers.push_back({t::kHeaderSite, site});
    return r;
  };
  stage.process(
      {at_site(telemetry("a", 1, kT0 + 1000, 1), "north"), telemetry("b", 1, kT0 + 2000, 1),
       at_site(telemetry("c", 1, kT0 + 3000, 1), "north"),
       at_site(telemetry("a", 2, kT0 + kMin + 1000, 1), "north"), telemetry("b", 2, kT0 + kMin + 2000, 1)},
      out);
  auto got = results(out.records);
  ASSERT_EQ(got.size(), 2U);
  EXPECT_EQ((got[Key{"by_site", "north", kT0, 2}].count), 2);  // a group's revision: the events merged
  EXPECT_EQ((got[Key{"by_site", "local", kT0, 1}].count), 1);
}

// aggregate.definitions names a YAML file, or holds the YAML itself when it has several lines (an
// environment variable, a Helm value); a one-line value that is no readable file is a clear error.
TEST(AggregateStage, DefinitionsComeFromAFileOrTheValueItself) {
  const std::string yaml = "aggregates:\n  - name: per_minute\n    group: fleet\n    window: 1m\n";
  config::Config inline_config;
  inline_config.set(config::keys::aggregate_definitions, yaml, "test");
  auto inline_defs = stages::aggregate_definitions(inline_config, builtin_catalog());
  ASSERT_EQ(inline_defs.size(), 1U);
  EXPECT_EQ(inline_defs[0].name, "per_minute");

  const fleettwin::testing::TempDir dir("ft-aggregate-definitions");
  const auto path = dir.file("aggregates.yaml");
  std::ofstream(path) << yaml;
  config::Config file_config;
  file_config.set(config::keys::aggregate_definitions, path, "test");
  auto file_defs = stages::aggregate_definitions(file_config, builtin_catalog());
  ASSERT_EQ(file_defs.size(), 1U);
  EXPECT_EQ(file_defs[0].name, "per_minute");

  config::Config missing;
  missing.set(config::keys::aggregate_definitions, dir.file("none.yaml"), "test");
  EXPECT_THROW(stages::aggregate_definitions(missing, builtin_catalog()), config::ConfigError);
  config::Config bad;
  bad.set(config::keys::aggregate_definitions, "aggregates:\n  - name: x\n", "test");
  EXPECT_THROW(stages::aggregate_definitions(bad, builtin_catalog()), config::ConfigError);
}

// A copy that takes over a partition loads its cars' windows from the changelog and goes on exactly as the
// first copy would have: the results of the two together equal one copy's over the whole stream, each once.
TEST(AggregateStage, RestartRestoresTheWindowsFromTheChangelog) {
  std::vector<log::Record> events;
  for (int i = 1; i <= 120; ++i)
    events.push_back(telemetry(i % 3 ? "a" : "b", i, kT0 + i * 7000 - (i % 10 == 0 ? 50'000 : 0), i % 17));
  const std::vector<log::Record> first_half(events.begin(), events.begin() + 60);
  const std::vector<log::Record> second_half(events.begin() + 60, events.end());

  core::Metrics metrics;
  Capture whole_out;
  stages::AggregateStage whole(options(kPerMinute, true), metrics);
  whole.process(first_half, whole_out);
  whole.process(second_half, whole_out);
  const auto expected = results(whole_out.records);
  ASSERT_GT(expected.size(), 8U);

  Capture out;
  stages::AggregateStage first(options(kPerMinute, true), metrics);
  first.on_assigned({{t::kTelemetry, 0}});
  first.process(first_half, out);
  first.flush_state(out);  // the runner does this right before it commits
  const auto state = of_topic(out.records, t::kAggregatesState);
  ASSERT_EQ(state.size(), 2U);  // one per changed car
  std::vector<stages::AggregateSnapshot> saved;
  for (const auto* s : state) {
    EXPECT_EQ(s->partition, 0);  // the partition number of the car's telemetry
    saved.push_back({s->key, s->value});
  }
  stages::AggregateStage::Links links;
  std::set<int32_t> asked;
  links.load = [&](const std::set<int32_t>& partitions) {
    asked = partitions;
    return saved;
  };
  stages::AggregateStage second(options(kPerMinute, true), metrics, registry::TelemetryReader(), links);
  second.on_assigned({{t::kTelemetry, 0}});
  EXPECT_EQ(asked, std::set<int32_t>{0});
  EXPECT_EQ(second.engine().cars(), 2U);
  // After the takeover the uncommitted tail of the first half is replayed: nothing is counted twice.
  second.process(std::vector<log::Record>(first_half.end() - 5, first_half.end()), out);
  second.process(second_half, out);
  const auto got = results(out.records);
  EXPECT_EQ(got.size(), expected.size());
  for (const auto& [key, want] : expected) {
    ASSERT_TRUE(got.contains(key)) << std::get<1>(key) << " " << std::get<2>(key) << " r" << std::get<3>(key);
    EXPECT_EQ(got.at(key).count, want.count);
    EXPECT_EQ(got.at(key).final, want.final);
    EXPECT_DOUBLE_EQ(got.at(key).values[0].value, want.values[0].value);
  }
  // Losing the partition drops its cars: their new owner has them.
  second.on_revoked({{t::kTelemetry, 0}});
  EXPECT_EQ(second.engine().cars(), 0U);
  // A damaged state is refused and counted, the car starting empty.
  saved[0].state = "garbage";
  stages::AggregateStage third(options(kPerMinute, true), metrics, registry::TelemetryReader(), links);
  third.on_assigned({{t::kTelemetry, 0}});
  EXPECT_EQ(third.engine().cars(), 1U);
  EXPECT_EQ(metrics.value("fleettwin_aggregate_restore_refused_total"), 1);
}

// Through the runner on the memory log: results reach fleet.aggregates, the input is committed after them,
// and the changelog reader finds each car's latest state by partition.
TEST(AggregateStage, RunnerWritesResultsThenCommitsAndTheChangelogReadsBack) {
  log::MemoryLog mlog;
  for (const char* topic : {t::kTelemetry, t::kAggregates, t::kTelemetryDlq})
    mlog.create_topic(topic, {.partitions = 2});
  mlog.create_topic(t::kAggregatesState, {.partitions = 2, .compacted = true});
  auto p = mlog.producer();
  int64_t sent = 0;
  for (int i = 1; i <= 200; ++i) {
    for (const char* car : {"a", "b", "c"}) {
      const auto r = telemetry(car, i, kT0 + i * 2000, i % 50);
      p->send(log::OutRecord{t::kTelemetry, r.key, r.value});
      ++sent;
    }
  }
  ASSERT_EQ(p->flush(5s), 0);
  core::Metrics metrics;
  stages::RunnerOptions ro;
  ro.max_batch = 64;
  ro.batch_window = 0ms;
  stages::StageRunner runner(std::make_unique<stages::AggregateStage>(options(kPerMinute, true), metrics),
                             mlog, metrics, ro);
  runner.start();
  runner.request_drain();
  runner.join();
  ASSERT_EQ(runner.error(), "");
  int64_t committed = 0;
  for (int32_t part = 0; part < 2; ++part)
    committed += std::max<int64_t>(0, mlog.committed("fleettwin.aggregate", {t::kTelemetry, part}));
  EXPECT_EQ(committed, sent);
  int64_t written = 0;
  for (auto e : mlog.end_offsets(t::kAggregates)) written += e;
  // 400 s of events per car: 6 closed minutes each (the seventh is still open).
  EXPECT_EQ(written, 3 * 6);
  const auto snapshots = stages::read_aggregate_changelog(mlog, {0, 1}, 10s);
  ASSERT_EQ(snapshots.size(), 3U);
  aggregate::Engine engine(options(kPerMinute).definitions);
  std::string error;
  for (const auto& s : snapshots) EXPECT_TRUE(engine.restore_car(s.car, s.state, &error)) << error;
}

// The sink stores what the aggregate stage writes: a replay changes nothing, a later revision replaces the
// window, and a record whose key names another window goes to fleet.aggregates.dlq.
TEST(AggregateStage, TheSinkUpsertsResultsByWindowKeepingTheHighestRevision) {
  core::Metrics metrics;
  stages::AggregateStage stage(options(kPerMinute), metrics);
  Capture produced;
  stage.process({telemetry("a", 1, kT0 + 1000, 10), telemetry("a", 2, kT0 + kMin + 1000, 10)}, produced);
  stage.process({telemetry("a", 3, kT0 + 2000, 30)}, produced);  // late: revision 2 of the first minute
  auto as_records = [](const std::vector<log::OutRecord>& outs) {
    std::vector<log::Record> records;
    for (const auto& o : outs) {
      if (o.topic != t::kAggregates) continue;
      log::Record r;
      r.topic = o.topic;
      r.key = o.key;
      r.value = o.value;
      records.push_back(std::move(r));
    }
    return records;
  };
  auto records = as_records(produced.records);
  ASSERT_EQ(records.size(), 2U);
  const fleettwin::testing::TempDir dir("ft-aggregate-sink");
  core::Histogram latency;
  stages::SinkStage sink(std::make_unique<store::SqliteStore>(dir.file("s.db")), metrics, latency);
  Capture out;
  sink.process(records, out);
  // Replayed, and revision 1 once more after revision 2: the store keeps revision 2.
  sink.process({records[1], records[0]}, out);
  auto bad = records[0];
  bad.key = "per_minute|b|" + std::to_string(kT0);
  sink.process({bad}, out);
  ASSERT_EQ(of_topic(out.records, t::kAggregatesDlq).size(), 1U);
  store::SqliteStore check(dir.file("s.db"));
  store::AggregateQuery q;
  q.aggregate = "per_minute";
  const auto rows = check.aggregates(q);
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0].group, "a");
  EXPECT_EQ(rows[0].window_start_ms, kT0);
  EXPECT_EQ(rows[0].revision, 2U);
  EXPECT_EQ(rows[0].count, 2);
  ASSERT_EQ(rows[0].values.size(), 3U);
  EXPECT_EQ(rows[0].values[0].first, "speed_mean");
  EXPECT_DOUBLE_EQ(rows[0].values[0].second, 20);
}
