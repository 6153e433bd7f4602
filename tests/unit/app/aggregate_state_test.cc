// The embedded aggregate stage across a kill (issue 19 item 3, `up`): its cars' states in the data dir's
// state table, saved at a flush only once the store holds the results before it, loaded as outside input,
// and the store's history after each car's saved state replayed at start, so a killed run and its restart
// give the uninterrupted run's results.
#include "app/aggregate_state.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <tuple>

#include "aggregate/definition.h"
#include "aggregate/state_bytes.h"
#include "codec/avro.h"
#include "codec/schemas.h"
#include "core/topics.h"
#include "log/memory/memory_log.h"
#include "store/sqlite/sqlite_db.h"
#include "store/sqlite/sqlite_store.h"
#include "support/log_records.h"
#include "support/temp_dir.h"
#include "unit/stages/stage_records.h"

using namespace fleettwin;
using Capture = fleettwin::testing::CaptureProducer;
namespace t = core::topics;

namespace {

constexpr int64_t kT0 = 1'700'000'000'000 - (1'700'000'000'000 % aggregate::kMsPerHour);

constexpr const char* kPerMinute = R"(aggregates:
  - name: per_minute
    group: car
    window: 1m
    signals:
      speed: [mean, max, p95]
)";

constexpr const char* kPerTwoMinutes = R"(aggregates:
  - name: per_minute
    group: car
    window: 2m
    signals:
      speed: [mean, max, p95]
)";

stages::AggregateStage::Options options(const char* yaml) {
  stages::AggregateStage::Options o;
  o.definitions = aggregate::parse_yaml(yaml, "t.yaml", *catalog::builtin());
  o.result_schema_id = 7;
  return o;
}

core::Telemetry event(const std::string& car, int64_t seq, int64_t ts, double speed) {
  core::Telemetry tel;
  tel.car = car;
  tel.seq = seq;
  tel.ts = ts;
  tel.values[catalog::builtin()->index_of("speed")] = speed;
  return tel;
}

log::Record record(const core::Telemetry& tel) {
  log::Record r;
  r.topic = t::kTelemetry;
  r.key = tel.car;
  r.offset = tel.seq;
  codec::encode_avro_telemetry(tel, 1, r.value);
  return r;
}

std::vector<log::Record> records(const std::vector<core::Telemetry>& events, std::size_t from,
                                 std::size_t to) {
  std::vector<log::Record> out;
  for (std::size_t i = from; i < to; ++i) out.push_back(record(events[i]));
  return out;
}

/// Cars a and b from the start, c joining late; one event every 7 s per car.
std::vector<core::Telemetry> fleet_events() {
  std::vector<core::Telemetry> out;
  for (int i = 1; i <= 90; ++i) {
    out.push_back(event("a", i, kT0 + i * 7000, i % 17));
    out.push_back(event("b", i, kT0 + i * 7000 + 300, (i * 3) % 23));
    if (i > 50) out.push_back(event("c", i - 50, kT0 + i * 7000 + 600, i % 5));
  }
  return out;
}

using Key = std::tuple<std::string, int64_t, int32_t>;  // group, start, revision

/// Window results by key; a key written twice must carry the same result (the store keeps one).
void collect(const std::vector<log::OutRecord>& out, std::map<Key, codec::AggregateResult>& into) {
  for (const auto& o : out) {
    if (o.topic != t::kAggregates) continue;
    codec::AggregateResult a;
    int32_t id = 0;
    std::string error;
    ASSERT_TRUE(codec::decode_avro_aggregate_result(o.value, a, &id, &error)) << error;
    const Key k{a.group, a.window_start, a.revision};
    if (const auto it = into.find(k); it != into.end()) {
      EXPECT_EQ(it->second.count, a.count)
          << a.group << " " << a.window_start << " written twice, differently";
      continue;
    }
    into[k] = a;
  }
}

/// A stage linked as `up` links it: the table, the store's history, and "the sink stored the results".
struct Embedded {
  Embedded(const char* yaml, app::AggregateStateTable& table, store::TwinStore& store, core::Metrics& metrics,
           const bool& results_stored) {
    stages::AggregateStage::Links links;
    links.load = [&table](const std::set<int32_t>&) { return table.load(); };
    links.save = [&table](const std::vector<stages::AggregateSnapshot>& cars) { table.save(cars); };
    links.results_stored = [&results_stored]() -> std::function<bool()> {
      return [&results_stored] { return results_stored; };
    };
    links.replay = [&store](const stages::AggregateStage::ReplayFrom& from,
                            const stages::AggregateStage::ReplayAdd& add) {
      app::replay_history(store, from, add, 4);  // small pages: the paging is part of what is checked
    };
    stage =
        std::make_unique<stages::AggregateStage>(options(yaml), metrics, registry::TelemetryReader(), links);
    stage->on_assigned({{t::kTelemetry, 0}});
  }
  std::unique_ptr<stages::AggregateStage> stage;
};

void store_rows(store::TwinStore& store, const std::vector<core::Telemetry>& events, std::size_t to) {
  store::WriteBatch batch;
  for (std::size_t i = 0; i < to; ++i) batch.telemetry.push_back({events[i], std::nullopt});
  store.write(batch);
}

/// Each car's twin as the sink stores it: its newest event is `reported` (the replay's newest ts).
void store_twins(store::TwinStore& store, const std::vector<core::Telemetry>& events, std::size_t to) {
  std::map<std::string, core::Twin> twins;
  for (std::size_t i = 0; i < to; ++i) {
    auto& twin = twins[events[i].car];
    twin.id = events[i].car;
    twin.reported = events[i];
    twin.has_reported = true;
    twin.version = static_cast<int64_t>(i) + 1;
  }
  store::WriteBatch batch;
  for (auto& [car, twin] : twins) batch.twins.push_back(std::move(twin));
  store.write(batch);
}

}  // namespace

TEST(AggregateStateTable, KeepsTheLatestStateOfEachCarAcrossReopening) {
  const fleettwin::testing::TempDir dir("aggregate-state");
  const std::string path = dir.file("aggregate_state.sqlite");
  {
    app::AggregateStateTable table(path);
    EXPECT_TRUE(table.load().empty());
    table.save({{"car-1", "one"}, {"car-2", "two"}});
    table.save({{"car-1", "three"}});
    EXPECT_EQ(table.cars(), 2);
  }
  app::AggregateStateTable table(path);
  int64_t refused = -1;
  const auto cars = table.load(&refused);
  EXPECT_EQ(refused, 0);
  ASSERT_EQ(cars.size(), 2U);
  EXPECT_EQ(cars[0].car, "car-1");
  EXPECT_EQ(cars[0].state, "three");
  EXPECT_EQ(cars[1].car, "car-2");
  EXPECT_EQ(cars[1].state, "two");
}

// A flush of many cars is one large transaction; the WAL it grew to does not stay on disk once checkpointed.
TEST(AggregateStateTable, TheWalShrinksBackAfterALargeFlush) {
  const fleettwin::testing::TempDir dir("aggregate-state-wal");
  const std::string path = dir.file("aggregate_state.sqlite");
  app::AggregateStateTable table(path);
  std::vector<stages::AggregateSnapshot> cars;
  for (int i = 0; i < 200; ++i) cars.push_back({"car-" + std::to_string(i), std::string(400'000, 'x')});
  table.save(cars);  // 80 MB in one transaction: the WAL grows past it
  EXPECT_GT(std::filesystem::file_size(path + "-wal"), 64U << 20);
  table.save({{"car-1", "small"}});  // the next write restarts the checkpointed WAL and trims it
  EXPECT_LE(std::filesystem::file_size(path + "-wal"), 64U << 20);
  EXPECT_EQ(table.cars(), 200);
}

// The file is outside input: a row that cannot be a car's state is left out and counted.
TEST(AggregateStateTable, RowsThatAreNotACarsStateAreRefused) {
  const fleettwin::testing::TempDir dir("aggregate-state-bad");
  const std::string path = dir.file("aggregate_state.sqlite");
  app::AggregateStateTable table(path);
  table.save({{"good", "state"}});
  {
    store::Db db(path);
    db.exec("INSERT INTO aggregate_state VALUES('no spaces allowed', x'01')");
    db.exec("INSERT INTO aggregate_state VALUES('empty', x'')");
    db.exec("INSERT INTO aggregate_state VALUES('huge', zeroblob(" +
            std::to_string(app::AggregateStateTable::kMaxStateBytes + 1) + "))");
    db.exec("INSERT INTO aggregate_state VALUES(x'" + std::string(2 * 65, '6') + "', x'01')");  // 65 chars
  }
  int64_t refused = 0;
  const auto cars = table.load(&refused);
  EXPECT_EQ(refused, 4);
  ASSERT_EQ(cars.size(), 1U);
  EXPECT_EQ(cars[0].car, "good");
}

// The replay reads each car's history from the ts it is given, oldest first, page by page, every row once
// past the page boundaries (rows of a boundary's ts come again; the engine's seq guard takes each once).
TEST(AggregateStateReplay, ReadsEachCarsHistoryFromItsTsInPages) {
  const fleettwin::testing::TempDir dir("aggregate-replay");
  store::SqliteStore store(dir.file("fleettwin.db"));
  const auto events = fleet_events();
  store_rows(store, events, events.size());
  std::map<std::string, std::vector<int64_t>> seen;
  std::map<std::string, std::optional<int64_t>> asked;
  const auto rows = app::replay_history(
      store,
      [&](const std::string& car, std::optional<int64_t> newest) {
        asked[car] = newest;
        return car == "a" ? kT0 + 80 * 7000 : INT64_MIN;
      },
      [&](const core::Telemetry& tel) {
        if (seen[tel.car].empty() || seen[tel.car].back() < tel.seq) seen[tel.car].push_back(tel.seq);
      },
      3);
  EXPECT_GE(rows, 11 + 90 + 40);
  EXPECT_EQ(asked.size(), 3U);  // no twins stored: the newest ts is not known
  EXPECT_FALSE(asked["a"].has_value());
  ASSERT_EQ(seen["a"].size(), 11U);  // seqs 80..90
  EXPECT_EQ(seen["a"].front(), 80);
  EXPECT_EQ(seen["b"].size(), 90U);
  EXPECT_EQ(seen["c"].size(), 40U);
  EXPECT_EQ(seen["c"].back(), 40);
}

// The whole mechanism of `up` against a kill: a run saves its flushed state only once the store has the
// results before it, is killed with events counted after that flush and rows stored beyond it; the next
// run restores the table, replays the store's rows after each car's saved state, then takes the input the
// simulator resumes with. Together the two runs write the uninterrupted run's results.
TEST(AggregateStateEmbedded, AKilledRunAndItsRestartGiveTheUninterruptedResults) {
  const auto events = fleet_events();
  core::Metrics metrics;
  std::map<Key, codec::AggregateResult> expected;
  {
    stages::AggregateStage whole(options(kPerMinute), metrics);
    Capture out;
    whole.process(records(events, 0, events.size()), out);
    collect(out.records, expected);
  }
  ASSERT_GT(expected.size(), 20U);

  const fleettwin::testing::TempDir dir("aggregate-embedded");
  app::AggregateStateTable table(dir.file("aggregate_state.sqlite"));
  store::SqliteStore store(dir.file("fleettwin.db"));
  std::map<Key, codec::AggregateResult> got;
  bool stored = false;
  {
    Embedded first(kPerMinute, table, store, metrics, stored);
    Capture out;
    first.stage->process(records(events, 0, 100), out);
    first.stage->flush_state(out);  // the runner's flush before a commit
    first.stage->tick(out);
    EXPECT_EQ(table.cars(), 0) << "saved before the store had the results written before the flush";
    stored = true;
    first.stage->tick(out);
    EXPECT_EQ(table.cars(), 2);
    collect(out.records, got);  // stored: the state was saved only once they were
    Capture lost;               // counted, never flushed: their results die with the memory log
    first.stage->process(records(events, 100, 160), lost);
    // The sink had stored the rows up to 130 and their twins when the process was killed: a saved state
    // more than a window behind the store (under --fast one flush interval is hours of event time).
    store_rows(store, events, 130);
    store_twins(store, events, 130);
  }
  Embedded second(kPerMinute, table, store, metrics, stored);
  EXPECT_EQ(metrics.value("fleettwin_aggregate_cars_restored_total"), 2);
  Capture out;
  second.stage->process(records(events, 130, events.size()), out);
  second.stage->flush_state(out);
  collect(out.records, got);
  EXPECT_EQ(got.size(), expected.size());
  for (const auto& [key, want] : expected) {
    const auto it = got.find(key);
    ASSERT_NE(it, got.end()) << std::get<0>(key) << " " << std::get<1>(key);
    EXPECT_EQ(it->second.count, want.count) << std::get<0>(key) << " " << std::get<1>(key);
    for (std::size_t i = 0; i < want.values.size(); ++i)
      EXPECT_EQ(it->second.values[i].value, want.values[i].value)
          << std::get<0>(key) << " " << std::get<1>(key);
  }
  EXPECT_GT(metrics.value("fleettwin_aggregate_replayed_total"), 0);
}

// States saved under other definitions (their fingerprint differs) are refused and counted; those cars'
// open windows are rebuilt from the store's newest history instead of starting empty.
TEST(AggregateStateEmbedded, StateOfOtherDefinitionsIsRefusedAndTheOpenWindowsRebuiltFromTheStore) {
  const auto events = fleet_events();
  core::Metrics metrics;
  const fleettwin::testing::TempDir dir("aggregate-fingerprint");
  app::AggregateStateTable table(dir.file("aggregate_state.sqlite"));
  store::SqliteStore store(dir.file("fleettwin.db"));
  bool stored = true;
  {
    Embedded first(kPerMinute, table, store, metrics, stored);
    Capture out;
    first.stage->process(records(events, 0, 100), out);
    first.stage->flush_state(out);
    first.stage->tick(out);
    store_rows(store, events, 100);
  }
  ASSERT_EQ(table.cars(), 2);
  core::Metrics other;
  Embedded second(kPerTwoMinutes, table, store, other, stored);
  EXPECT_EQ(other.value("fleettwin_aggregate_restore_refused_total"), 2);
  EXPECT_EQ(other.value("fleettwin_aggregate_cars_restored_total"), 0);
  // Without twins the newest ts is not known: each car's whole (short) history is replayed.
  EXPECT_EQ(second.stage->engine().cars(), 2U);
  Capture out;
  second.stage->process(records(events, 100, events.size()), out);
  second.stage->flush_state(out);
  std::map<Key, codec::AggregateResult> got;
  collect(out.records, got);
  // Every 2-minute window of car a closed by its last event is complete: 120 s / 7 s per event.
  int complete = 0;
  for (const auto& [key, r] : got)
    if (std::get<0>(key) == "a" && r.window_start > kT0) complete += r.count >= 17 ? 1 : 0;
  EXPECT_GE(complete, 4);
}

// How `up` links the stage: a clean stop's snapshot file of earlier versions is taken over into the table
// once, and a flush's state may be saved only once the sink has committed past every result written before.
TEST(AggregateStateEmbedded, UpTakesOverTheOldSnapshotAndWaitsForTheSinksCommit) {
  const fleettwin::testing::TempDir dir("aggregate-links");
  {
    std::string bytes;
    aggregate::StateWriter w(bytes);
    w.u64(2);
    for (const std::string car : {"car-1", "car-2"}) {
      w.u64(car.size());
      bytes += car;
      w.u64(5);
      bytes += "state";
    }
    std::ofstream(dir.file("aggregate.state"), std::ios::binary) << bytes;
  }
  log::MemoryLog mlog;
  mlog.create_topic(t::kAggregates, {.partitions = 2});
  bool opened = false;
  auto links = app::embedded_aggregate_links(mlog, dir.path().string(), [&] {
    opened = true;
    return std::make_unique<store::SqliteStore>(dir.file("fleettwin.db"));
  });
  EXPECT_FALSE(std::filesystem::exists(dir.file("aggregate.state")));
  EXPECT_EQ(app::AggregateStateTable(dir.file("aggregate_state.sqlite")).cars(), 2);
  const auto loaded = links.load({0});
  ASSERT_EQ(loaded.size(), 2U);
  EXPECT_EQ(loaded[1].car, "car-2");
  EXPECT_EQ(loaded[1].state, "state");
  EXPECT_TRUE(links.load({0}).empty());  // once

  EXPECT_TRUE(links.results_stored()());  // nothing written yet
  auto producer = mlog.producer();
  for (int i = 0; i < 10; ++i)
    producer->send(fleettwin::testing::rec(t::kAggregates, "k" + std::to_string(i), "r"));
  ASSERT_EQ(producer->flush(std::chrono::seconds(5)), 0);
  const auto stored = links.results_stored();
  EXPECT_FALSE(stored());
  auto sink = fleettwin::testing::subscribed(mlog, "fleettwin.sink", {t::kAggregates});
  const auto read = fleettwin::testing::drain(*sink, 10, std::chrono::seconds(5));
  ASSERT_EQ(read.size(), 10U);
  EXPECT_FALSE(stored()) << "read is not stored: the sink commits after its store transaction";
  sink->commit(log::next_offsets(read));
  EXPECT_TRUE(stored());
  sink->close();

  links.replay([](const std::string&, std::optional<int64_t>) { return INT64_MIN; },
               [](const core::Telemetry&) {});
  EXPECT_TRUE(opened);
}

// The partials are partitioned by the topic as it is: an existing topic keeps its partition count when the
// topic settings change between runs (create_topic leaves it), so partials sent by the settings' count could
// go to partitions it does not have and groups would be looked for where no writer puts them.
TEST(AggregateTopics, ThePartialsPartitionCountIsTheTopicsNotTheSettings) {
  log::MemoryLog mlog;
  stages::AggregateStage::Options options;
  app::create_aggregate_topics(mlog, "", {.partitions = 3, .compacted = true}, options);
  EXPECT_EQ(options.partials_topic, t::kAggregatesPartials);
  EXPECT_EQ(options.partials_partitions, 3);
  app::create_aggregate_topics(mlog, "", {.partitions = 8, .compacted = true}, options);  // settings changed
  EXPECT_EQ(options.partials_partitions, 3);
  app::create_aggregate_topics(mlog, "groups", {.partitions = 8, .compacted = true}, options);  // a new role
  EXPECT_EQ(options.partials_topic, std::string(t::kAggregatesPartials) + ".groups");
  EXPECT_EQ(options.partials_partitions, 8);
}
