// Group windows through the aggregate stage (issue 19): two copies of the stage on one consumer group over a
// 4-partition fleet.telemetry, each counting its partitions' share of every fleet and site window and
// merging the groups of the partials partitions it holds; one copy leaves half way (its partitions, their
// changelog and the partials go to the other). The sink stores each window once, equal to a straightforward
// computation over every event.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <tuple>

#include "aggregate/definition.h"
#include "aggregate/partial_codec.h"
#include "codec/avro.h"
#include "codec/schemas.h"
#include "core/topics.h"
#include "log/log.h"
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
constexpr int32_t kPartitions = 4;

const catalog::Catalog& builtin_catalog() { return *catalog::builtin(); }

constexpr const char* kGroups = R"(aggregates:
  - name: fleet_1m
    group: fleet
    window: 1m
    grace: 5s
    signals:
      speed: [max, sum]
  - name: site_1m
    group: attribute
    attribute: site
    window: 1m
    grace: 5s
    signals:
      speed: [min]
)";

stages::AggregateStage::Options options() {
  stages::AggregateStage::Options o;
  o.definitions = aggregate::parse_yaml(kGroups, "t.yaml", builtin_catalog());
  o.result_schema_id = 7;
  o.changelog = true;
  o.sites = true;  // central with --sites: the records' site headers stand for the runner's
  o.partials_partitions = kPartitions;
  o.flush_interval_ms = 50;
  return o;
}

struct Sent {
  std::string site;
  int64_t ts;
  double speed;
};

using Window = std::tuple<std::string, std::string, int64_t>;  // aggregate, group, start

}  // namespace

// Two aggregate roles (say per-car definitions scaled on their own, group definitions in another role with
// its own consumer group) never share a changelog or a partials topic.
TEST(AggregateGroups, EachRolesGroupHasItsOwnChangelogAndPartials) {
  using S = stages::AggregateStage;
  EXPECT_EQ(S::role_topic(t::kAggregatesState, ""), "fleet.aggregates.state");
  EXPECT_EQ(S::role_topic(t::kAggregatesState, "fleettwin.aggregate"), "fleet.aggregates.state");
  EXPECT_EQ(S::role_topic(t::kAggregatesState, "fleet-groups"), "fleet.aggregates.state.fleet-groups");
  EXPECT_EQ(S::role_topic(t::kAggregatesPartials, "a b/c"), "fleet.aggregates.partials.a_b_c");
  EXPECT_LE(S::role_topic(t::kAggregatesPartials, std::string(500, 'x')).size(), 249U);  // Kafka's limit
  // A partition's group windows have a key no car id can have, and only that key names a partition.
  EXPECT_EQ(S::group_state_partition(S::group_state_key(7)), 7);
  EXPECT_EQ(S::group_state_partition("car-7"), -1);
  EXPECT_EQ(S::group_state_partition(".groups."), -1);
  EXPECT_EQ(S::group_state_partition(".groups.1x"), -1);
  EXPECT_EQ(S::group_state_partition(".groups.9999999999"), -1);
}

// On the log a copy that loses a partition forgets its share of the groups (the new owner loads it);
// embedded every event is of source 0, which a revoked partition must not take away.
TEST(AggregateGroups, ALostPartitionTakesItsShareOnTheLogOnly) {
  core::Telemetry tel;
  tel.car = "car-1";
  tel.seq = 1;
  tel.ts = kT0;
  log::Record r;
  r.topic = t::kTelemetry;
  r.key = tel.car;
  r.partition = 0;  // embedded, the partition number of the one source too
  codec::encode_avro_telemetry(tel, 1, r.value);
  for (const bool changelog : {true, false}) {
    auto o = options();
    o.changelog = changelog;
    core::Metrics metrics;
    stages::AggregateStage stage(o, metrics);
    Capture out;
    stage.on_assigned({{t::kTelemetry, 0}});
    stage.process({r}, out);
    EXPECT_EQ(stage.engine().sources(), std::vector<int32_t>{0});
    stage.on_revoked({{t::kTelemetry, 0}});
    EXPECT_EQ(stage.engine().sources().size(), changelog ? 0U : 1U) << changelog;
  }
}

TEST(AggregateGroups, TwoCopiesStoreEachGroupWindowOnceEqualToAllEvents) {
  log::MemoryLog mlog;
  for (const char* topic : {t::kTelemetry, t::kAggregates, t::kTelemetryDlq, t::kAggregatesDlq})
    mlog.create_topic(topic, {.partitions = kPartitions});
  for (const char* topic : {t::kAggregatesState, t::kAggregatesPartials})
    mlog.create_topic(topic, {.partitions = kPartitions, .compacted = true});
  auto p = mlog.producer();
  std::vector<Sent> sent;
  for (int i = 1; i <= 150; ++i) {
    for (int car = 0; car < 10; ++car) {
      core::Telemetry tel;
      tel.car = "car-" + std::to_string(car);
      tel.seq = i;
      tel.ts = kT0 + i * 2000 + car * 10 - (i % 13 == 0 ? 20'000 : 0);
      tel.values[builtin_catalog().index_of("speed")] = (i * 7 + car * 3) % 97;
      const std::string site = car % 2 ? "north" : "south";
      std::string value;
      codec::encode_avro_telemetry(tel, 1, value);
      p->send(log::OutRecord{t::kTelemetry, tel.car, value, {{t::kHeaderSite, site}}, -1, 0});
      sent.push_back({site, tel.ts, tel.values[builtin_catalog().index_of("speed")]});
    }
  }
  ASSERT_EQ(p->flush(5s), 0);

  core::Metrics metrics;
  stages::AggregateStage::Links links;
  links.load = [&](const std::set<int32_t>& parts) {
    return stages::read_aggregate_changelog(mlog, parts, 10s);
  };
  links.load_partials = [&](const std::set<int32_t>& parts) {
    return stages::read_compacted_latest(mlog, t::kAggregatesPartials, parts, 10s);
  };
  stages::RunnerOptions ro;
  ro.max_batch = 50;
  ro.batch_window = 0ms;
  auto runner = [&] {
    return std::make_unique<stages::StageRunner>(
        std::make_unique<stages::AggregateStage>(options(), metrics, registry::TelemetryReader(), links),
        mlog, metrics, ro);
  };
  auto first = runner();
  auto second = runner();
  first->start();
  second->start();
  // The first copy leaves after a part of the input: its partitions move to the second.
  std::this_thread::sleep_for(200ms);
  first->request_stop();
  first->join();
  ASSERT_EQ(first->error(), "");
  second->request_drain();
  second->join();
  ASSERT_EQ(second->error(), "");

  // The sink's rule (the highest revision of a window wins), on SQLite.
  auto c = mlog.consumer("test.read");
  c->subscribe({t::kAggregates});
  std::vector<log::Record> records;
  for (int i = 0; i < 50; ++i) {
    auto batch = c->poll(10000, 100ms);
    if (batch.empty() && !c->assignment().empty() && c->lag() == 0) break;
    records.insert(records.end(), batch.begin(), batch.end());
  }
  ASSERT_FALSE(records.empty());
  const fleettwin::testing::TempDir dir("ft-aggregate-groups");
  core::Histogram latency;
  stages::SinkStage sink(std::make_unique<store::SqliteStore>(dir.file("s.db")), metrics, latency);
  Capture out;
  sink.process(records, out);
  EXPECT_TRUE(out.records.empty()) << "nothing to the DLQ";

  std::map<Window, std::tuple<int64_t, double, double, double>> want;  // count, max, sum, min
  for (const auto& s : sent) {
    const int64_t start = s.ts - s.ts % kMin;
    for (const Window& w : {Window{"fleet_1m", "fleet", start}, Window{"site_1m", s.site, start}}) {
      auto& [n, max, sum, min] = want[w];
      max = n == 0 ? s.speed : std::max(max, s.speed);
      min = n == 0 ? s.speed : std::min(min, s.speed);
      sum += s.speed;
      ++n;
    }
  }
  store::SqliteStore check(dir.file("s.db"));
  std::map<Window, store::AggregateRow> stored;
  for (const char* name : {"fleet_1m", "site_1m"}) {
    store::AggregateQuery q;
    q.aggregate = name;
    q.limit = 100000;
    for (auto& row : check.aggregates(q)) stored[{name, row.group, row.window_start_ms}] = std::move(row);
  }
  const int64_t newest = kT0 + 150 * 2000 + 90;
  int64_t checked = 0;
  for (const auto& [w, x] : want) {
    if (std::get<2>(w) + kMin + 5000 > newest) continue;  // still open
    const auto it = stored.find(w);
    ASSERT_NE(it, stored.end()) << std::get<0>(w) << " " << std::get<1>(w) << " " << std::get<2>(w);
    const auto& row = it->second;
    const auto& [n, max, sum, min] = x;
    EXPECT_EQ(row.count, n) << std::get<0>(w) << " " << std::get<1>(w) << " " << std::get<2>(w);
    EXPECT_EQ(row.revision, static_cast<uint32_t>(n));
    if (std::get<0>(w) == "fleet_1m") {
      ASSERT_EQ(row.values.size(), 2U);
      EXPECT_EQ(row.values[0].second, max);
      EXPECT_NEAR(row.values[1].second, sum, 1e-9 * sum);
    } else {
      ASSERT_EQ(row.values.size(), 1U);
      EXPECT_EQ(row.values[0].second, min);
    }
    ++checked;
  }
  EXPECT_GE(checked, 3 * 4);  // fleet, north, south over 4 closed minutes
}

// The partials topic's partition count changed between runs (Kafka only adds partitions; each start takes
// the topic's own count, create_aggregate_topics): a partial written under the old count, on a partition its
// group no longer maps to, is not that partition's to merge. Its writer writes it again to its new partition
// when it restarts with the new count (every restored source's partials are made again); merging the old one
// too would have two copies emit the group, one from stale partials.
TEST(AggregateGroups, APartialOnAPartitionItsGroupNoLongerMapsToIsLeftForItsNewPartition) {
  core::Metrics metrics;
  auto written_with = options();
  written_with.partials_partitions = 2;
  stages::AggregateStage writer(written_with, metrics);
  writer.on_assigned({{t::kTelemetry, 0}});
  std::vector<log::Record> events;
  for (int i = 0; i < 120; ++i) {  // four cars, two sites, four minutes: the first three close
    core::Telemetry tel;
    tel.car = "car-" + std::to_string(i % 4);
    tel.seq = i / 4 + 1;
    tel.ts = kT0 + i * 2000;
    tel.values[builtin_catalog().index_of("speed")] = i % 50;
    log::Record r;
    r.topic = t::kTelemetry;
    r.key = tel.car;
    r.partition = 0;
    r.offset = i;
    r.headers = {{t::kHeaderSite, i % 2 ? "north" : "south"}};
    codec::encode_avro_telemetry(tel, 1, r.value);
    events.push_back(std::move(r));
  }
  Capture written;
  writer.process(events, written);
  writer.flush_state(written);

  // Read by a combiner of the topic grown to 3 partitions: where each partial lies, where it belongs now.
  auto now = options();
  now.partials_partitions = 3;
  std::vector<log::Record> at_old, at_new;
  std::set<std::string> stayed, moved;  // "aggregate|group"
  for (const auto& o : written.records) {
    if (o.topic != t::kAggregatesPartials) continue;
    aggregate::Partial p;
    ASSERT_TRUE(aggregate::decode_partial(o.value, p, nullptr));
    log::Record r;
    r.topic = o.topic;
    r.key = o.key;
    r.value = o.value;
    r.partition = o.partition;
    at_old.push_back(r);
    r.partition = log::partition_for_key(aggregate::partial_group_key(p.aggregate, p.group), 3);
    (r.partition == o.partition ? stayed : moved).insert(p.aggregate + "|" + p.group);
    at_new.push_back(std::move(r));
  }
  ASSERT_FALSE(moved.empty()) << "every group kept its partition: pick other counts";
  auto merged_groups = [&](const std::vector<log::Record>& partials) {
    stages::AggregateStage combiner(now, metrics);
    combiner.on_assigned(
        {{t::kAggregatesPartials, 0}, {t::kAggregatesPartials, 1}, {t::kAggregatesPartials, 2}});
    Capture out;
    combiner.process(partials, out);
    combiner.flush_state(out);
    std::set<std::string> groups;
    for (const auto& o : out.records) {
      EXPECT_EQ(o.topic, t::kAggregates) << "only results, nothing to a DLQ";
      groups.insert(o.key.substr(0, o.key.rfind('|')));
    }
    EXPECT_EQ(combiner.engine().counters().partials_refused, 0U);
    return groups;
  };
  EXPECT_EQ(merged_groups(at_old), stayed);  // the moved ones are left to their new partitions
  std::set<std::string> all = stayed;
  all.insert(moved.begin(), moved.end());
  EXPECT_EQ(merged_groups(at_new), all);
}
