#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "codec/avro.h"
#include "codec/json.h"
#include "codec/schemas.h"
#include "core/topics.h"
#include "log/memory/memory_log.h"
#include "stages/process/process_stage.h"
#include "stages/score/score_stage.h"
#include "stages/sink/sink_stage.h"
#include "stages/twin/twin_stage.h"
#include "store/sqlite/sqlite_store.h"
#include "support/temp_dir.h"
#include "unit/stages/stage_records.h"

using namespace fleettwin;
using fleettwin::testing::CaptureProducer;
using fleettwin::testing::json_record;
using namespace std::chrono_literals;
namespace t = core::topics;

namespace {

core::Telemetry telemetry(const std::string& car, int64_t seq) {
  core::Telemetry m;
  m.car = car;
  m.seq = seq;
  m.ts = 1'700'000'000'000 + seq * 1000;
  m.lat = 48.1;
  m.lon = 11.5;
  for (std::size_t i = 0; i < core::kSignalCount; ++i) m.values[i] = core::kSignals[i].min;
  m.values[core::kSpeed] = 10;
  return m;
}

log::Record raw(const std::string& key, std::string value, int64_t offset = 0) {
  log::Record r;
  r.topic = t::kTelemetryRaw;
  r.key = key;
  r.value = std::move(value);
  r.offset = offset;
  r.timestamp_ms = 1;
  return r;
}

/// A fleet.telemetry record of `m`, as the process stage writes it.
log::Record record(const core::Telemetry& m) {
  log::Record r;
  r.topic = t::kTelemetry;
  r.key = m.car;
  codec::encode_avro_telemetry(m, 1, r.value);
  return r;
}

/// A sink stage writing to a new SQLite store in a temporary directory, removed at the end (after the
/// store is closed: members go in reverse order).
struct SinkOnSqlite {
  explicit SinkOnSqlite(const std::string& name) : dir(name) {}
  const fleettwin::testing::TempDir dir;
  const std::string db = dir.file("s.db");
  core::Metrics metrics;
  core::Histogram latency;
  stages::SinkStage sink{std::make_unique<store::SqliteStore>(db), metrics, latency};
};

/// An alert of car-00003 on fleet.alerts (id "car-00003:<kind>:<raised_at>"), as the score stage writes it.
log::Record alert_record(const std::string& kind, int64_t raised_at, bool raised, int64_t ts, double score,
                         std::vector<std::string> signals) {
  core::Alert a{"car-00003:" + kind + ":" + std::to_string(raised_at),
                "car-00003",
                kind,
                raised,
                ts,
                score,
                1.0,
                std::move(signals),
                "m1",
                false,
                "",
                "",
                0};
  log::Record r;
  r.topic = t::kAlerts;
  r.key = a.car;
  codec::encode_avro_alert(a, 3, r.value);
  return r;
}

}  // namespace

TEST(ProcessStage, ValidToAvroInvalidToDlqWithReasonHeaders) {
  core::Metrics metrics;
  stages::ProcessStage stage({.telemetry_schema_id = 7, .max_payload_bytes = 4096}, catalog::builtin(),
                             metrics);
  std::string good;
  codec::encode_json(telemetry("car-00001", 1), good);
  auto wrong_car = good;
  CaptureProducer out;
  stage.process({raw("car-00001", good), raw("car-00001", "{\"car\":"), raw("car-00002", wrong_car),
                 raw("car-00001", std::string(5000, ' '))},
                out);
  ASSERT_EQ(out.records.size(), 4u);
  EXPECT_EQ(out.records[0].topic, t::kTelemetry);
  core::Telemetry back;
  int32_t schema_id = 0;
  std::string error;
  ASSERT_TRUE(codec::decode_avro_telemetry(out.records[0].value, back, &schema_id, &error)) << error;
  EXPECT_EQ(back, telemetry("car-00001", 1));
  EXPECT_EQ(schema_id, 7);
  auto reason = [&](std::size_t i) {
    for (const auto& h : out.records[i].headers)
      if (h.key == t::kHeaderErrorReason) return h.value;
    return std::string("none");
  };
  EXPECT_EQ(out.records[1].topic, t::kTelemetryDlq);
  EXPECT_EQ(out.records[1].value, "{\"car\":");  // the original bytes
  EXPECT_EQ(reason(1), "malformed");
  EXPECT_EQ(reason(2), "bad_car_id");  // key says car-00002, payload car-00001
  EXPECT_EQ(reason(3), "oversized");
  EXPECT_EQ(metrics.value("fleettwin_dlq_total{stage=\"process\"}"), 3);
  EXPECT_EQ(metrics.value("fleettwin_dlq_reason_total{stage=\"process\",reason=\"malformed\"}"), 1);
}

TEST(ProcessStage, WritesTheCarTelemetrySchemaOfItsCatalog) {
  // cardata-v1 plus a signal of firmware version 2: the stage writes the v2 schema, with the new signal.
  auto signals = catalog::builtin()->signals();
  catalog::SignalSpec odometer;
  odometer.name = odometer.field = "odometer";
  odometer.max = 2e6;
  odometer.since = 2;
  signals.push_back(odometer);
  const auto v2 = std::make_shared<const catalog::Catalog>("cardata", 2, "test", signals);
  core::Metrics metrics;
  stages::ProcessStage stage({.telemetry_schema_id = 9}, v2, metrics);
  std::string json;
  codec::encode_json(telemetry("car-00001", 1), json);
  json.insert(json.size() - 1, ",\"odometer\":1234.5");
  CaptureProducer out;
  stage.process({raw("car-00001", json)}, out);
  ASSERT_EQ(out.records.size(), 1u);
  ASSERT_EQ(out.records[0].topic, t::kTelemetry);
  core::Telemetry back;
  int32_t schema_id = 0;
  std::string error;
  ASSERT_TRUE(codec::TelemetryAvro(v2).decode(out.records[0].value, back, &schema_id, &error)) << error;
  EXPECT_EQ(schema_id, 9);
  ASSERT_EQ(back.values.size(), signals.size());
  EXPECT_EQ(back.values.back(), 1234.5);
  EXPECT_FALSE(codec::decode_avro_telemetry(out.records[0].value, back, nullptr, &error))
      << "a cardata-v1 record would have no odometer";
}

TEST(ProcessStage, KeepsImplausibleReadingsCountsFlagsAndUnknownKeysBounded) {
  core::Metrics metrics;
  stages::ProcessStage stage({}, catalog::builtin(), metrics);
  std::string flagged;
  auto t = telemetry("car-00001", 1);
  t.values[core::kCoolantTemp] = 400;  // beyond [-40, 150]: a failing sensor, kept
  codec::encode_json(t, flagged);
  flagged.insert(flagged.size() - 1, ",\"cabin_temp\":21,\"bad key\":1");
  std::string partial;
  auto p = telemetry("car-00001", 2);
  p.values[core::kSpeed] = core::kAbsent;
  codec::encode_json(p, partial);
  std::vector<log::Record> batch{raw("car-00001", flagged), raw("car-00001", partial)};
  // Each distinct unknown key is a label up to a bound; the rest share "_other".
  for (int i = 0; i < 70; ++i) {
    std::string json;
    codec::encode_json(telemetry("car-00002", 10 + i), json);
    json.insert(json.size() - 1, ",\"k" + std::to_string(i) + "\":1");
    batch.push_back(raw("car-00002", json));
  }
  CaptureProducer out;
  stage.process(batch, out);
  ASSERT_EQ(out.records.size(), batch.size());
  EXPECT_EQ(out.records[0].topic, t::kTelemetry) << "an implausible reading does not send the message away";
  core::Telemetry back;
  ASSERT_TRUE(codec::decode_avro_telemetry(out.records[0].value, back, nullptr, nullptr));
  EXPECT_EQ(back.values[core::kCoolantTemp], 400);
  EXPECT_EQ(metrics.value("fleettwin_signal_out_of_range_total{signal=\"coolant_temp\"}"), 1);
  EXPECT_EQ(metrics.value("fleettwin_signal_out_of_range_total{signal=\"speed\"}"), 0);
  EXPECT_EQ(metrics.value("fleettwin_unknown_fields_total{field=\"cabin_temp\"}"), 1);
  // A car may send any subset of the catalog: the message goes on with the signal absent.
  ASSERT_EQ(out.records[1].topic, t::kTelemetry) << "a message without speed is still a message";
  ASSERT_TRUE(codec::decode_avro_telemetry(out.records[1].value, back, nullptr, nullptr));
  EXPECT_TRUE(core::absent(back.values[core::kSpeed]));
  EXPECT_EQ(back.values[core::kCoolantTemp], p.values[core::kCoolantTemp]);
  EXPECT_EQ(metrics.value("fleettwin_unknown_fields_total{field=\"k0\"}"), 1);
  // 64 series in all: cabin_temp, _other (first taken by "bad key", no label), then k0..k61; k62..k69 share
  // _other.
  EXPECT_EQ(metrics.value("fleettwin_unknown_fields_total{field=\"k61\"}"), 1);
  EXPECT_EQ(metrics.value("fleettwin_unknown_fields_total{field=\"k62\"}"), 0);
  EXPECT_EQ(metrics.value("fleettwin_unknown_fields_total{field=\"_other\"}"), 9);
}

TEST(TwinStage, CoalescesUntilFlushIgnoresStaleAndGoesOfflineByEventTime) {
  core::Metrics metrics;
  core::SimClock clock(1'700'000'000'000);
  stages::TwinStage stage({.offline_after_ms = 30'000, .flush_interval_ms = 1000}, clock, metrics);
  EXPECT_EQ(stage.commit_interval(), 1000ms);
  CaptureProducer out;
  stage.process({record(telemetry("car-00001", 1)), record(telemetry("car-00001", 2))}, out);
  stage.process({record(telemetry("car-00001", 3)), record(telemetry("car-00001", 2))},
                out);                // 2 again: stale
  EXPECT_TRUE(out.records.empty());  // held back until the runner's commit
  stage.flush_state(out);
  ASSERT_EQ(out.records.size(), 1u);  // one twin write per car per flush
  core::Twin twin;
  std::string error;
  ASSERT_TRUE(codec::twin_from_json(out.records[0].value, twin, &error)) << error;
  EXPECT_EQ(twin.reported.seq, 3);
  EXPECT_EQ(twin.messages, 3);
  EXPECT_EQ(metrics.value("fleettwin_twin_stale_total"), 1);
  out.records.clear();
  stage.flush_state(out);
  EXPECT_TRUE(out.records.empty());  // nothing changed since

  // The producer's clock racing ahead (a --fast simulator) does not make cars offline: event time does.
  clock.advance_to(telemetry("car-00001", 3).ts + 3'600'000);
  stage.tick(out);
  stage.flush_state(out);
  EXPECT_TRUE(out.records.empty());
  EXPECT_EQ(metrics.value("fleettwin_cars_online"), 1);
  auto later = telemetry("car-00002", 3);
  later.ts = telemetry("car-00001", 3).ts + 31'000;  // another car, 31 s later in device time
  stage.process({record(later)}, out);
  stage.tick(out);
  stage.flush_state(out);
  ASSERT_EQ(out.records.size(), 2u);
  bool saw_offline = false;
  for (const auto& o : out.records) {
    ASSERT_TRUE(codec::twin_from_json(o.value, twin, &error));
    if (twin.id == "car-00001") saw_offline = !twin.online;
  }
  EXPECT_TRUE(saw_offline);
  EXPECT_EQ(metrics.value("fleettwin_cars_online"), 1);
}

TEST(SinkStage, StoresBatchOnceAndReplayIsANoOp) {
  SinkOnSqlite s("ft-sink");
  auto& [dir, db, metrics, latency, sink] = s;

  std::vector<log::Record> batch;
  core::Twin twin;
  for (int64_t seq = 1; seq <= 3; ++seq) {
    std::string v;
    codec::encode_avro_telemetry(telemetry("car-00009", seq), 1, v);
    log::Record r;
    r.topic = t::kTelemetry;
    r.key = "car-00009";
    r.value = v;
    r.timestamp_ms = 1;
    batch.push_back(r);
    core::apply_telemetry(twin, telemetry("car-00009", seq));
    log::Record tr;
    tr.topic = t::kTwins;
    tr.key = "car-00009";
    tr.value = codec::twin_to_json(twin);
    batch.push_back(tr);
  }
  CaptureProducer out;
  sink.process(batch, out);
  sink.process(batch, out);  // replay after a crash before the commit
  EXPECT_EQ(metrics.value("fleettwin_telemetry_stored_total"), 3);
  EXPECT_EQ(metrics.value("fleettwin_telemetry_duplicates_total"), 3);
  EXPECT_EQ(latency.count(), 6);
  store::SqliteStore check(db);
  auto stored = check.get_twin("car-00009");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(*stored, twin);  // the newest of the coalesced updates
  const auto stats = check.history_stats();
  EXPECT_EQ(stats.rows, 3);
  EXPECT_EQ(stats.distinct, 3);
}

namespace {
/// A stage that fails on its second batch, to check that a failed batch is never committed.
class FailingStage final : public stages::Stage {
 public:
  const stages::StageDescriptor& descriptor() const override { return _d; }
  void process(const std::vector<log::Record>& batch, log::Producer&) override {
    if (++_batches == 2) throw std::runtime_error("boom");
    seen += batch.size();
  }
  std::size_t seen = 0;

 private:
  stages::StageDescriptor _d{"failing", {"in"}, {}, {}, ""};
  int _batches = 0;
};
}  // namespace

TEST(StageRunner, CommitsProcessedBatchesOnlyAndStopsOnError) {
  log::MemoryLog mlog;
  mlog.create_topic("in", {.partitions = 1});
  auto p = mlog.producer();
  for (int i = 0; i < 10; ++i) p->send(log::OutRecord{"in", "k", std::to_string(i)});
  p->flush(1s);
  core::Metrics metrics;
  stages::RunnerOptions ro;
  ro.max_batch = 4;
  ro.batch_window = 0ms;
  stages::StageRunner runner(std::make_unique<FailingStage>(), mlog, metrics, ro);
  runner.start();
  for (int i = 0; i < 200 && runner.running(); ++i) std::this_thread::sleep_for(10ms);
  runner.join();
  EXPECT_FALSE(runner.running());
  EXPECT_EQ(runner.error(), "boom");
  EXPECT_EQ(mlog.committed("fleettwin.failing", {"in", 0}), 4);  // first batch only
  EXPECT_EQ(metrics.value("fleettwin_stage_errors_total{stage=\"failing\"}"), 1);
}

TEST(StageRunner, DrainConsumesEverythingThenStops) {
  log::MemoryLog mlog;
  mlog.create_topic("in", {.partitions = 3});
  auto p = mlog.producer();
  for (int i = 0; i < 1000; ++i) p->send(log::OutRecord{"in", "k" + std::to_string(i % 17), "v"});
  p->flush(1s);
  core::Metrics metrics;
  class Counting final : public stages::Stage {
   public:
    const stages::StageDescriptor& descriptor() const override { return _d; }
    void process(const std::vector<log::Record>& batch, log::Producer& out) override {
      for (const auto& r : batch) out.send(log::OutRecord{"out", r.key, r.value});
    }

   private:
    stages::StageDescriptor _d{"counting", {"in"}, {"out"}, {}, ""};
  };
  stages::StageRunner runner(std::make_unique<Counting>(), mlog, metrics);
  runner.start();
  runner.request_drain();
  runner.join();
  EXPECT_EQ(runner.error(), "");
  EXPECT_EQ(metrics.value("fleettwin_records_in_total{stage=\"counting\"}"), 1000);
  EXPECT_EQ(metrics.value("fleettwin_records_out_total{stage=\"counting\"}"), 1000);
  int64_t out_total = 0;
  for (auto e : mlog.end_offsets("out")) out_total += e;
  EXPECT_EQ(out_total, 1000);
}

namespace {

core::CommandAck ack_for(const core::Command& c, std::string status = "acked") {
  return core::CommandAck{c.id, c.car, std::move(status), c.created + 1, {}, ""};
}

core::Twin last_twin(const CaptureProducer& out, const std::string& car) {
  core::Twin twin;
  for (const auto& o : out.records) {
    if (o.topic == t::kTwins && o.key == car) {
      EXPECT_TRUE(codec::twin_from_json(o.value, twin, nullptr));
    }
  }
  return twin;
}

}  // namespace

// desired <- fleet.commands, reported settings <- fleet.command-acks, delta = what the car has not confirmed.
TEST(TwinStage, CommandsSetDesiredAcksSetReportedAndTheDeltaEmpties) {
  core::Metrics metrics;
  core::SimClock clock(1'700'000'000'000);
  stages::TwinStage stage({.offline_after_ms = 30'000, .flush_interval_ms = 1000}, clock, metrics);
  CaptureProducer out;
  core::Command c{"c1", "car-00001", "set_speed_limit", R"({"kmh": 80})", 1, 0, "pending"};
  stage.process({json_record(t::kCommands, c.car, codec::command_to_json(c))}, out);
  stage.flush_state(out);
  auto twin = last_twin(out, "car-00001");
  EXPECT_EQ(twin.desired.at("speed_limit_kmh"), "80");
  EXPECT_EQ(twin.delta(), std::vector<std::string>{"speed_limit_kmh"});

  core::CommandAck ack{"c1", "car-00001", "acked", 2, {{"speed_limit_kmh", "80"}}, ""};
  // The key (the MQTT topic's car, vouched for by the broker's ACL) must be the car the payload names.
  auto spoofed = ack;
  spoofed.car = "car-00001";
  stage.process({json_record(t::kCommandAcks, "car-00009", codec::command_ack_to_json(spoofed))}, out);
  stage.flush_state(out);
  EXPECT_TRUE(last_twin(out, "car-00001").reported_settings.empty());
  stage.process({json_record(t::kCommandAcks, "car-00001", codec::command_ack_to_json(ack))}, out);
  stage.flush_state(out);
  twin = last_twin(out, "car-00001");
  EXPECT_EQ(twin.reported_settings.at("speed_limit_kmh"), "80");
  EXPECT_TRUE(twin.delta().empty());

  // A garbage command goes to the DLQ and changes nothing.
  stage.process({json_record(t::kCommands, "car-00001", "{not json")}, out);
  EXPECT_EQ(metrics.value("fleettwin_dlq_reason_total{stage=\"twin\",reason=\"undecodable\"}"), 1);
}

TEST(TwinStage, ACommandUnansweredPastItsExpiryIsDeclaredExpiredAndWithdrawn) {
  core::Metrics metrics;
  core::SimClock clock(1'700'000'000'000);
  stages::TwinStage stage({.offline_after_ms = 30'000, .flush_interval_ms = 1000}, clock, metrics);
  CaptureProducer out;
  core::Command c{"c2", "car-00002",       "update_firmware", R"({"version": 1300})",
                  1,    1'700'000'005'000, "pending"};
  stage.process({json_record(t::kCommands, c.car, codec::command_to_json(c))}, out);
  stage.tick(out);  // not expired yet
  for (const auto& o : out.records) EXPECT_NE(o.topic, t::kCommandAcks);
  clock.advance_to(1'700'000'006'000);
  stage.tick(out);
  stage.flush_state(out);
  core::CommandAck expired;
  int acks = 0;
  for (const auto& o : out.records)
    if (o.topic == t::kCommandAcks) {
      ASSERT_TRUE(codec::command_ack_from_json(o.value, expired, nullptr));
      EXPECT_EQ(o.key, "car-00002");
      ++acks;
    }
  ASSERT_EQ(acks, 1);
  EXPECT_EQ(expired.id, "c2");
  EXPECT_EQ(expired.status, "expired");
  EXPECT_TRUE(last_twin(out, "car-00002").desired.empty());  // no longer wanted: no delta forever
  out.records.clear();
  stage.tick(out);
  EXPECT_TRUE(out.records.empty());  // declared once
}

// Kafka orders records within a partition only, and a car answers within milliseconds: the answer can be read
// before its command, in the same batch or an earlier one.
TEST(TwinStage, AnAnswerReadBeforeItsCommandLeavesNothingPending) {
  core::Metrics metrics;
  core::SimClock clock(1'700'000'000'000);
  stages::TwinStage stage({.offline_after_ms = 30'000, .flush_interval_ms = 1000}, clock, metrics);
  CaptureProducer out;
  const core::Command c{"c3", "car-00003",       "set_speed_limit", R"({"kmh": 77})",
                        1,    1'700'000'005'000, "pending"};
  const core::CommandAck ack{"c3", "car-00003", "acked", 2, {{"speed_limit_kmh", "77"}}, ""};
  stage.process({json_record(t::kCommandAcks, c.car, codec::command_ack_to_json(ack)),
                 json_record(t::kCommands, c.car, codec::command_to_json(c))},
                out);
  stage.flush_state(out);
  auto twin = last_twin(out, "car-00003");
  EXPECT_EQ(twin.desired.at("speed_limit_kmh"), "77");
  EXPECT_EQ(twin.reported_settings.at("speed_limit_kmh"), "77");
  EXPECT_TRUE(twin.delta().empty());
  // Past its expiry it is not declared expired (it was answered) and its setting stays.
  clock.advance_to(1'700'000'006'000);
  out.records.clear();
  stage.tick(out);
  stage.flush_state(out);
  for (const auto& o : out.records) EXPECT_NE(o.topic, t::kCommandAcks);

  // A refusal read first: the command's setting is not wanted, so no delta either.
  const core::Command d{"c4", "car-00003", "set_speed_limit", R"({"kmh": 300})", 1, 0, "pending"};
  const core::CommandAck refused{"c4", "car-00003", "failed", 3, {}, "out of range"};
  stage.process({json_record(t::kCommandAcks, d.car, codec::command_ack_to_json(refused))}, out);
  stage.process({json_record(t::kCommands, d.car, codec::command_to_json(d))}, out);
  stage.flush_state(out);
  twin = last_twin(out, "car-00003");
  EXPECT_EQ(twin.desired.at("speed_limit_kmh"), "77");
  EXPECT_TRUE(twin.delta().empty());

  // Another car's answer does not settle this car's command.
  const core::Command e{"c5", "car-00003", "set_speed_limit", R"({"kmh": 50})", 1, 0, "pending"};
  stage.process({json_record(t::kCommandAcks, "car-00009", codec::command_ack_to_json(ack_for(e)))}, out);
  stage.process({json_record(t::kCommands, e.car, codec::command_to_json(e))}, out);
  stage.flush_state(out);
  EXPECT_EQ(last_twin(out, "car-00003").delta(), std::vector<std::string>{"speed_limit_kmh"});
}

TEST(SinkStage, AnAnswerStoredBeforeItsCommandIsFilledInByIt) {
  SinkOnSqlite s("ft-sink-ack");
  auto& [dir, db, metrics, latency, sink] = s;
  CaptureProducer out;
  const core::Command a{"car-00001:a1", "car-00001", "set_speed_limit", R"({"kmh":77})", 10, 0, "pending"};
  const core::Command b{"car-00002:b1", "car-00002", "update_firmware", R"({"version":1300})", 11, 0,
                        "pending"};
  // a: answer and command in one batch, answer first. b: answer in one batch, command in the next.
  sink.process({json_record(t::kCommandAcks, a.car, codec::command_ack_to_json(ack_for(a))),
                json_record(t::kCommands, a.car, codec::command_to_json(a)),
                json_record(t::kCommandAcks, b.car, codec::command_ack_to_json(ack_for(b, "failed")))},
               out);
  {
    store::SqliteStore check(db);
    const auto early = check.get_command("car-00002:b1");
    ASSERT_TRUE(early.has_value());
    EXPECT_EQ(early->status, "failed");
  }
  sink.process({json_record(t::kCommands, b.car, codec::command_to_json(b))}, out);
  EXPECT_EQ(metrics.value("fleettwin_dlq_total{stage=\"sink\"}"), 0);
  store::SqliteStore check(db);
  for (auto [c, status] : {std::pair{a, "acked"}, std::pair{b, "failed"}}) {
    const auto stored = check.get_command(c.id);
    ASSERT_TRUE(stored.has_value()) << c.id;
    c.status = status;
    EXPECT_EQ(*stored, c);
  }
}

TEST(TwinStage, HealthFollowsScoresAndAlerts) {
  core::Metrics metrics;
  core::SimClock clock(1'700'000'000'000);
  stages::TwinStage stage({.offline_after_ms = 30'000, .flush_interval_ms = 1000}, clock, metrics);
  CaptureProducer out;
  auto score = [](double s, int64_t ts) {
    codec::AnomalyScore a{"car-00003", ts, 1, s, 1.0, {{"coolant_temp", 4.0}}, "m1"};
    log::Record r;
    r.topic = t::kScores;
    r.key = a.car;
    codec::encode_avro_anomaly_score(a, 2, r.value);
    return r;
  };
  auto alert = [](bool raised, int64_t ts, const std::string& kind = "anomaly") {
    return alert_record(kind, 10, raised, ts, 3.0, {"coolant_temp"});
  };
  stage.process({score(0.5, 10)}, out);
  stage.flush_state(out);
  EXPECT_EQ(last_twin(out, "car-00003").health.status, core::HealthStatus::kOk);
  stage.process({score(2.0, 20)}, out);
  stage.flush_state(out);
  auto h = last_twin(out, "car-00003").health;
  EXPECT_EQ(h.status, core::HealthStatus::kWarning);  // one high score: a warning, not an alert
  EXPECT_EQ(h.since, 20);
  EXPECT_EQ(h.top_signals, std::vector<std::string>{"coolant_temp"});
  EXPECT_EQ(h.model_version, "m1");
  stage.process({alert(true, 30), score(0.2, 40)}, out);
  stage.flush_state(out);
  h = last_twin(out, "car-00003").health;
  EXPECT_EQ(h.status, core::HealthStatus::kAnomaly);  // a low score does not end an open alert
  EXPECT_EQ(h.since, 30);
  EXPECT_DOUBLE_EQ(h.score, 0.2);
  stage.process({alert(false, 50)}, out);
  stage.flush_state(out);
  EXPECT_EQ(last_twin(out, "car-00003").health.status, core::HealthStatus::kOk);

  // Two alerts open at once (outdated firmware and an anomaly): the car is "anomaly" until both cleared.
  stage.process({alert(true, 60, "outdated_firmware"), alert(true, 70)}, out);
  stage.process({alert(false, 80, "outdated_firmware"), score(0.2, 90)}, out);
  stage.flush_state(out);
  EXPECT_EQ(last_twin(out, "car-00003").health.status, core::HealthStatus::kAnomaly);
  stage.process({alert(false, 100)}, out);
  stage.flush_state(out);
  h = last_twin(out, "car-00003").health;
  EXPECT_EQ(h.status, core::HealthStatus::kOk);
  EXPECT_EQ(h.since, 100);
}

// The twin's anomaly comes from fleet.alerts and from the scores' in_alert flag (the rule the aggregate stage
// groups events by, core::score_status); the two topics come in any interleaving. Once both are read up to
// an event, the twin's status is that event's status, whichever came first.
TEST(TwinStage, TheScoresInAlertFlagAndTheAlertsAgreeInAnyOrder) {
  struct Event {
    int64_t ts;
    double score;
    bool in_alert;
    int alert;  // 1: raises the alert, -1: clears it, 0: none
  };
  // ok, a warning, the alert raised, still in alert with a low score, cleared on a warning, ok.
  const std::vector<Event> events = {{10, 0.5, false, 0}, {20, 2.0, false, 0},  {30, 3.0, true, 1},
                                     {40, 0.2, true, 0},  {50, 1.5, false, -1}, {60, 0.4, false, 0}};
  auto score = [](const Event& ev) {
    codec::AnomalyScore a{"car-00003", ev.ts, ev.ts, ev.score, 1.0, {}, "m1", ev.in_alert};
    log::Record r;
    r.topic = t::kScores;
    r.key = a.car;
    codec::encode_avro_anomaly_score(a, 2, r.value);
    return r;
  };
  auto alert = [](const Event& ev) { return alert_record("anomaly", 30, ev.alert > 0, ev.ts, ev.score, {}); };
  // Per event, its alert record before its score, after it (the score stage's own write order within a
  // batch), one event behind the scores, one event ahead.
  enum Order { kAlertFirst, kScoreFirst, kAlertsBehind, kAlertsAhead };
  for (const Order order : {kAlertFirst, kScoreFirst, kAlertsBehind, kAlertsAhead}) {
    core::Metrics metrics;
    core::SimClock clock(1'700'000'000'000);
    stages::TwinStage stage({.offline_after_ms = 30'000, .flush_interval_ms = 1000}, clock, metrics);
    CaptureProducer out;
    std::size_t alerts_read = 0;
    auto alerts_up_to = [&](std::size_t last) {  // the alert records of events [alerts_read, last]
      for (; alerts_read < events.size() && alerts_read <= last; ++alerts_read)
        if (events[alerts_read].alert != 0) stage.process({alert(events[alerts_read])}, out);
    };
    for (std::size_t i = 0; i < events.size(); ++i) {
      if (order == kAlertFirst) alerts_up_to(i);
      if (order == kAlertsAhead) alerts_up_to(i + 1);
      stage.process({score(events[i])}, out);
      if (order == kScoreFirst) alerts_up_to(i);
      if (order == kAlertsBehind && i > 0) alerts_up_to(i - 1);
      if (order != kAlertFirst && order != kScoreFirst) continue;
      // Both topics read up to event i: the twin says what event i's score says.
      stage.flush_state(out);
      const auto& ev = events[i];
      EXPECT_EQ(last_twin(out, "car-00003").health.status, core::score_status(ev.score, 1.0, ev.in_alert))
          << "event " << i << " order " << order;
    }
    alerts_up_to(events.size());
    stage.flush_state(out);
    EXPECT_EQ(last_twin(out, "car-00003").health.status, core::HealthStatus::kOk) << "order " << order;
  }
  EXPECT_EQ(core::score_status(0.2, 1.0, true), core::HealthStatus::kAnomaly);
  EXPECT_EQ(core::score_status(2.0, 1.0, false), core::HealthStatus::kWarning);
  EXPECT_EQ(core::score_status(0.2, 1.0, false), core::HealthStatus::kOk);
}

// The first model trains on a thread of its own: the stage goes on reading while it trains (so the log never
// holds records back for it), keeps the events that arrive meanwhile and handles them, in order, once the
// training ends; until then it is busy, which a draining runner waits for.
TEST(ScoreStage, TrainsTheFirstModelOffItsThreadAndKeepsReading) {
  core::Metrics metrics;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> trainings{0};
  stages::ScoreStage::Options options;
  options.warmup_ms = 5'000;
  stages::ScoreStage stage(
      options, nullptr, metrics, registry::TelemetryReader(),
      [&trainings, released](const ml::TrainingData& data, std::stop_token) -> stages::TrainedModel {
        ++trainings;
        released.wait();  // a training longer than the test takes to feed the stage
        throw std::runtime_error("no model here: " + std::to_string(data.rows()) + " rows");
      });
  CaptureProducer out;
  const auto unscored = [&] { return metrics.value("fleettwin_score_unscored_total"); };
  // One car, one event a second: the warm-up (5 s of event time) is complete with the sixth.
  for (int seq = 1; seq <= 6; ++seq) stage.process({record(telemetry("car-00001", seq))}, out);
  EXPECT_TRUE(stage.busy());
  EXPECT_EQ(unscored(), 6);
  // The training blocks its own thread only: every batch returns at once, its events kept for the model.
  for (int seq = 7; seq <= 20; ++seq) stage.process({record(telemetry("car-00001", seq))}, out);
  EXPECT_TRUE(stage.busy());
  EXPECT_EQ(unscored(), 6);
  for (int i = 0; i < 1000 && trainings.load() == 0; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(trainings.load(), 1);  // started on its own thread, and waiting there

  release.set_value();
  for (int i = 0; i < 1000 && stage.busy(); ++i) {
    std::this_thread::sleep_for(10ms);
    stage.tick(out);
  }
  EXPECT_FALSE(stage.busy());
  // This training failed, so the 14 held events are handled without a model: counted as unscored.
  EXPECT_EQ(unscored(), 20);
  stage.process({record(telemetry("car-00001", 21))}, out);
  EXPECT_EQ(unscored(), 21);
  EXPECT_EQ(trainings.load(), 1);  // a failed warm-up training is not retried: fleet.models can bring one
}
