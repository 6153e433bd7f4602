// Item 8 of issue 16: the twin stage's state across a restart and a rebalance. Pending commands and open
// alerts travel with the twin on fleet.twins; a twin stage that loses partitions drops their cars and one
// that gains partitions loads them from fleet.twins; a runner without partitions has no lag figure.

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "codec/avro.h"
#include "codec/json.h"
#include "codec/schemas.h"
#include "core/topics.h"
#include "log/memory/memory_log.h"
#include "stages/twin/twin_resume.h"
#include "stages/twin/twin_stage.h"
#include "store/sqlite/sqlite_store.h"
#include "support/temp_dir.h"
#include "unit/stages/stage_records.h"

using namespace fleettwin;
using Capture = fleettwin::testing::CaptureProducer;
using fleettwin::testing::json_record;
using namespace std::chrono_literals;
namespace t = core::topics;

namespace {

log::Record alert_record(const std::string& car, const std::string& kind, bool raised, int64_t ts) {
  const core::Alert a{car + ":" + kind + ":1", car,  kind,  raised, ts, 3.0, 1.0,
                      {"coolant_temp"},        "m1", false, "",     "", 0};
  log::Record r;
  r.topic = t::kAlerts;
  r.key = car;
  codec::encode_avro_alert(a, 3, r.value);
  return r;
}

/// The car's last record on fleet.twins among `records`, read as the changelog reader reads it.
stages::TwinSnapshot last_snapshot(const std::vector<log::OutRecord>& records, const std::string& car) {
  stages::TwinSnapshot s;
  for (const auto& o : records) {
    if (o.topic != t::kTwins || o.key != car) continue;
    EXPECT_TRUE(codec::twin_from_json(o.value, s.twin, nullptr));
    EXPECT_TRUE(codec::twin_pending_from_json(o.value, s.pending, nullptr));
  }
  return s;
}

constexpr int64_t kT0 = 1'700'000'000'000;

}  // namespace

TEST(TwinRecord, CarriesThePendingStateBesideAnUnchangedTwin) {
  core::Twin twin;
  twin.id = "car-00001";
  twin.version = 4;
  twin.desired = {{"speed_limit_kmh", "80"}};
  const core::TwinPending pending{{{"c1", {{"speed_limit_kmh", "80"}}, kT0 + 5000}}, {"car-00001:anomaly:1"}};
  const auto json = codec::twin_record_to_json(twin, pending, *catalog::builtin());
  core::Twin back;
  ASSERT_TRUE(codec::twin_from_json(json, back, nullptr));
  EXPECT_EQ(back, twin);  // the twin document's readers see the twin
  core::TwinPending pending_back;
  std::string error;
  ASSERT_TRUE(codec::twin_pending_from_json(json, pending_back, &error)) << error;
  EXPECT_EQ(pending_back, pending);
  // A twin with nothing pending is the plain document; its pending state reads as empty.
  const auto plain = codec::twin_record_to_json(twin, {}, *catalog::builtin());
  EXPECT_EQ(plain, codec::twin_to_json(twin));
  ASSERT_TRUE(codec::twin_pending_from_json(plain, pending_back, nullptr));
  EXPECT_TRUE(pending_back.empty());
  EXPECT_FALSE(
      codec::twin_pending_from_json(R"({"_id":"x","pending":{"commands":[1]}})", pending_back, &error));
}

// Before: a restarted stage forgot both, so a refusal after the restart left its setting wanted forever, an
// expiry passed silently, and clearing one of two open alerts made the car "ok".
TEST(TwinStage, PendingCommandsAndOpenAlertsSurviveARestart) {
  core::Metrics metrics;
  core::SimClock clock(kT0);
  const stages::TwinStage::Options options{.offline_after_ms = 30'000, .flush_interval_ms = 1000};
  const std::string car = "car-00004";
  const core::Command limit{"c1", car, "set_speed_limit", R"({"kmh": 80})", 1, kT0 + 5000, "pending"};
  const core::Command firmware{"c2", car, "update_firmware", R"({"version": 1300})", 2, 0, "pending"};
  Capture before;
  {
    stages::TwinStage stage(options, clock, metrics);
    stage.process({json_record(t::kCommands, car, codec::command_to_json(limit)),
                   json_record(t::kCommands, car, codec::command_to_json(firmware)),
                   alert_record(car, "anomaly", true, 10), alert_record(car, "outdated_firmware", true, 11)},
                  before);
    stage.flush_state(before);
  }
  auto snapshot = last_snapshot(before.records, car);
  ASSERT_EQ(snapshot.pending.commands.size(), 2u);
  ASSERT_EQ(snapshot.pending.open_alerts.size(), 2u);

  stages::TwinStage restarted(options, clock, metrics, {snapshot});
  Capture out;
  const core::CommandAck refused{"c2", car, "failed", 3, {}, "no"};
  restarted.process({json_record(t::kCommandAcks, car, codec::command_ack_to_json(refused)),
                     alert_record(car, "anomaly", false, 20)},
                    out);
  restarted.flush_state(out);
  auto twin = last_snapshot(out.records, car).twin;
  EXPECT_FALSE(twin.desired.contains("firmware_version")) << "the refused command's setting is still wanted";
  EXPECT_EQ(twin.health.status, core::HealthStatus::kAnomaly) << "the firmware alert is still open";
  clock.advance_to(kT0 + 6000);
  out.records.clear();
  restarted.tick(out);
  restarted.flush_state(out);
  int expired = 0;
  for (const auto& o : out.records)
    expired += o.topic == t::kCommandAcks && o.value.find("expired") != std::string::npos;
  EXPECT_EQ(expired, 1) << "the command's expiry passed unnoticed";
  const auto after = last_snapshot(out.records, car);
  EXPECT_TRUE(after.twin.desired.empty());
  EXPECT_TRUE(after.pending.commands.empty());
  EXPECT_EQ(after.pending.open_alerts, std::vector<std::string>{car + ":outdated_firmware:1"});
}

// `up` on the embedded log resumes from the store, which keeps each command's status and each alert.
TEST(TwinStage, UpResumesPendingCommandsAndOpenAlertsFromTheStore) {
  const fleettwin::testing::TempDir dir("twin-resume");
  store::SqliteStore db(dir.file("s.db"));
  store::WriteBatch batch;
  core::Twin twin;
  twin.id = "car-00001";
  batch.twins.push_back(twin);
  batch.commands = {{"c1", "car-00001", "set_speed_limit", R"({"kmh": 80})", 1, kT0 + 5000, "pending"},
                    {"c2", "car-00001", "set_speed_limit", R"({"kmh": 90})", 2, 0, "acked"},
                    {"c3", "car-00002", "schedule_service", "{}", 3, 0, "pending"}};
  batch.alerts = {
      {"car-00001:anomaly:10", "car-00001", "anomaly", true, 10, 3, 1, {}, "m1", false, "", "", 0},
      {"car-00001:anomaly:5", "car-00001", "anomaly", false, 8, 3, 1, {}, "m1", false, "", "", 0}};
  db.write(batch);
  auto twins = stages::twins_from_store(db);
  ASSERT_EQ(twins.size(), 2u);
  std::sort(twins.begin(), twins.end(), [](const auto& a, const auto& b) { return a.twin.id < b.twin.id; });
  const core::TwinPending car1{{{"c1", {{"speed_limit_kmh", "80"}}, kT0 + 5000}}, {"car-00001:anomaly:10"}};
  EXPECT_EQ(twins[0].pending, car1);
  EXPECT_EQ(twins[1].twin.id, "car-00002");  // a car the store has no twin of yet keeps its command
  ASSERT_EQ(twins[1].pending.commands.size(), 1u);
  EXPECT_EQ(twins[1].pending.commands[0].id, "c3");
}

TEST(TwinStage, PendingStateIsBoundedPerCar) {
  core::Metrics metrics;
  core::SimClock clock(kT0);
  stages::TwinStage stage({.offline_after_ms = 30'000, .flush_interval_ms = 1000}, clock, metrics);
  Capture out;
  std::vector<log::Record> batch;
  const std::size_t n = core::TwinPending::kMaxCommands + 8;
  for (std::size_t i = 0; i < n; ++i) {
    const core::Command c{
        "c" + std::to_string(i), "car-00001", "set_speed_limit", R"({"kmh": 50})", 1, 0, "pending"};
    batch.push_back(json_record(t::kCommands, c.car, codec::command_to_json(c)));
    batch.push_back(alert_record("car-00001", "k" + std::to_string(i), true, 1));
  }
  stage.process(batch, out);
  stage.flush_state(out);
  const auto s = last_snapshot(out.records, "car-00001");
  ASSERT_EQ(s.pending.commands.size(), core::TwinPending::kMaxCommands);
  EXPECT_EQ(s.pending.commands.front().id, "c8");  // the oldest were forgotten
  EXPECT_EQ(s.pending.open_alerts.size(), core::TwinPending::kMaxAlerts);
  EXPECT_EQ(metrics.value("fleettwin_twin_pending_forgotten_total"),
            static_cast<int64_t>(n - core::TwinPending::kMaxCommands + n - core::TwinPending::kMaxAlerts));
}

namespace {

/// Waits up to 20 s for `done`.
template <class F>
bool eventually(F done) {
  for (const auto until = std::chrono::steady_clock::now() + 20s; std::chrono::steady_clock::now() < until;
       std::this_thread::sleep_for(10ms))
    if (done()) return true;
  return false;
}

/// A twin stage in its own runner, with its own metrics, loading gained partitions from fleet.twins.
struct TwinRole {
  TwinRole(log::Log& log, const core::Clock& clock) {
    stages::TwinStage::Links links;
    links.load = [&log](const std::set<int32_t>& partitions) {
      return stages::read_twin_changelog(log, *catalog::builtin(), &partitions, 10s);
    };
    stages::RunnerOptions ro;
    ro.tick_interval = 20ms;
    ro.poll_timeout = 10ms;
    runner = std::make_unique<stages::StageRunner>(
        std::make_unique<stages::TwinStage>(
            stages::TwinStage::Options{.offline_after_ms = 3'600'000, .flush_interval_ms = 0}, clock, metrics,
            std::vector<stages::TwinSnapshot>{}, registry::TelemetryReader(), links),
        log, metrics, ro);
    runner->start();
  }
  int64_t twins() { return metrics.value("fleettwin_twins"); }
  core::Metrics metrics;
  std::unique_ptr<stages::StageRunner> runner;
};

}  // namespace

// Before: a role kept the twins of partitions it lost and started a gained partition's cars from what it held
// (or from nothing), so `messages` and `version` drifted after a rebalance.
TEST(TwinStage, ARebalanceDropsLostCarsAndLoadsGainedOnesFromTheChangelog) {
  log::MemoryLog log(log::TopicConfig{.partitions = 2});
  core::SimClock clock(kT0);
  std::vector<std::string> cars;
  int64_t in_partition_1 = 0;
  for (int i = 1; i <= 8; ++i) {
    cars.push_back("car-0000" + std::to_string(i));
    in_partition_1 += log::partition_for_key(cars.back(), 2) == 1;
  }
  ASSERT_GT(in_partition_1, 0);
  ASSERT_LT(in_partition_1, 8);
  auto producer = log.producer();
  auto send = [&](int64_t from, int64_t to) {
    for (int64_t seq = from; seq <= to; ++seq)
      for (const auto& car : cars) {
        core::Telemetry m;
        m.car = car;
        m.seq = seq;
        m.ts = kT0 + seq * 1000;
        for (std::size_t i = 0; i < core::kSignalCount; ++i) m.values[i] = core::kSignals[i].min;
        log::OutRecord o{t::kTelemetry, car, {}};
        codec::encode_avro_telemetry(m, 1, o.value);
        producer->send(std::move(o));
      }
    ASSERT_EQ(producer->flush(1s), 0);
  };
  auto processed = [](std::initializer_list<TwinRole*> roles) {
    int64_t n = 0;
    for (auto* r : roles) n += r->runner->records_in();
    return n;
  };

  auto a = std::make_unique<TwinRole>(log, clock);
  send(1, 5);
  ASSERT_TRUE(eventually([&] { return processed({a.get()}) == 40; }));
  auto b = std::make_unique<TwinRole>(log, clock);  // joins: partition 1 moves to it
  ASSERT_TRUE(eventually([&] { return b->twins() == in_partition_1; })) << "b did not load its cars";
  EXPECT_EQ(a->twins(), 8 - in_partition_1) << "a kept the cars of the partition it lost";
  send(6, 10);
  ASSERT_TRUE(eventually([&] { return processed({a.get(), b.get()}) == 80; }));
  const int64_t a_so_far = processed({a.get()});
  b->runner->request_stop();  // leaves: partition 1 goes back to a, which must not use what it held before
  b->runner->join();
  ASSERT_TRUE(eventually([&] { return a->twins() == 8; }));
  send(11, 15);
  ASSERT_TRUE(eventually([&] { return processed({a.get()}) == a_so_far + 40; }));
  a->runner->request_stop();
  a->runner->join();
  EXPECT_EQ(a->runner->error(), "");

  const auto twins = stages::read_twin_changelog(log, *catalog::builtin(), nullptr, 10s);
  ASSERT_EQ(twins.size(), 8u);
  for (const auto& s : twins) {
    EXPECT_EQ(s.twin.reported.seq, 15) << s.twin.id;
    EXPECT_EQ(s.twin.messages, 15) << s.twin.id << ": messages drifted over the rebalances";
    EXPECT_EQ(s.twin.version, 15) << s.twin.id << ": version drifted over the rebalances";
  }
}

// The progress line prints a role's lag only once it has partitions; before, it said "lag 0".
TEST(StageRunner, HasNoPartitionsUntilItsGroupGivesItSome) {
  log::MemoryLog log(log::TopicConfig{.partitions = 1});
  core::SimClock clock(kT0);
  TwinRole a(log, clock);
  ASSERT_TRUE(eventually([&] { return a.runner->has_partitions(); }));
  TwinRole b(log, clock);  // the group's only partitions are a's
  for (int i = 0; i < 20; ++i, std::this_thread::sleep_for(10ms)) EXPECT_FALSE(b.runner->has_partitions());
  a.runner->request_stop();
  a.runner->join();
  EXPECT_TRUE(eventually([&] { return b.runner->has_partitions(); }));
}
