// Items 4 and 5 of issue 17: every stage sends what it cannot use to the DLQ of its input with a stable
// reason (and commits only after the DLQ has it), and answers from cars are checked as telemetry is: known
// settings only, bounded sizes and counts, the car of the topic, the car of the command.

#include <gtest/gtest.h>

#include <chrono>

#include "codec/answers.h"
#include "codec/avro.h"
#include "codec/json.h"
#include "core/clock.h"
#include "core/topics.h"
#include "log/memory/memory_log.h"
#include "stages/dead_letters.h"
#include "stages/registry.h"
#include "stages/score/score_stage.h"
#include "stages/sink/sink_stage.h"
#include "stages/twin/twin_stage.h"
#include "store/sqlite/sqlite_store.h"
#include "support/telemetry_samples.h"
#include "support/temp_dir.h"
#include "unit/stages/stage_records.h"

using namespace fleettwin;
using fleettwin::testing::CaptureProducer;
using fleettwin::testing::json_record;
using namespace std::chrono_literals;
namespace t = core::topics;

namespace {

constexpr int64_t kStart = 1'700'000'000'000;

std::string header(const log::OutRecord& o, std::string_view key) {
  for (const auto& h : o.headers)
    if (h.key == key) return h.value;
  return "none";
}

/// The DLQ records among `out`, as "topic stage reason" lines.
std::vector<std::string> dead_letters(const CaptureProducer& out) {
  std::vector<std::string> lines;
  for (const auto& o : out.records)
    if (o.topic.ends_with(".dlq"))
      lines.push_back(o.topic + " " + header(o, t::kHeaderErrorStage) + " " +
                      header(o, t::kHeaderErrorReason));
  return lines;
}

log::Record telemetry_record(const std::string& key, const core::Telemetry& m) {
  log::Record r;
  r.topic = t::kTelemetry;
  r.key = key;
  codec::encode_avro_telemetry(m, 1, r.value);
  return r;
}

core::Telemetry car_telemetry(const std::string& car) {
  auto m = codec::testing::sample_telemetry();
  m.car = car;
  return m;
}

core::Command speed_limit(const std::string& id, const std::string& car, int kmh) {
  return core::Command{id,     car, "set_speed_limit", "{\"kmh\":" + std::to_string(kmh) + "}",
                       kStart, 0,   "pending"};
}

log::Record answer_record(const std::string& key, const std::string& json) {
  return json_record(t::kCommandAcks, key, json);
}

std::string answer(const std::string& id, const std::string& car, const std::string& status,
                   const std::string& reported) {
  return R"({"id":")" + id + R"(","car":")" + car + R"(","status":")" + status + R"(","ts":1,"reported":)" +
         reported + "}";
}

core::Twin last_twin(const CaptureProducer& out, const std::string& car) {
  core::Twin twin;
  for (const auto& o : out.records)
    if (o.topic == t::kTwins && o.key == car) {
      EXPECT_TRUE(codec::twin_from_json(o.value, twin, nullptr));
    }
  return twin;
}

struct Twin {
  core::Metrics metrics;
  core::SimClock clock{kStart};
  stages::TwinStage stage{{.offline_after_ms = 30'000, .flush_interval_ms = 1000}, clock, metrics};
  CaptureProducer out;
};

}  // namespace

TEST(AnswerCheck, OnlyKnownSettingsBoundedSizesAndTheCarOfTheTopic) {
  core::CommandAck a;
  codec::Refusal why;
  const auto refused = [&](const std::string& key, const std::string& json) {
    return codec::read_answer(json, key, a, why) ? std::string("accepted") : why.reason;
  };
  EXPECT_EQ(refused("car-1", answer("c1", "car-1", "acked", R"({"speed_limit_kmh":80})")), "accepted");
  EXPECT_EQ(a.car, "car-1");
  EXPECT_EQ(refused("car-1", answer("c1", "", "failed", "{}")), "accepted");  // the topic names the car
  EXPECT_EQ(a.car, "car-1");
  EXPECT_EQ(refused("car-1", answer("c1", "car-2", "acked", "{}")), "bad_car_id");
  EXPECT_EQ(refused("", answer("c1", "", "acked", "{}")), "bad_car_id");
  EXPECT_EQ(refused("car-1", answer("c1", "car-1", "acked", R"({"made.up":1})")), "invalid_answer");
  EXPECT_EQ(refused("car-1", answer("c1", "car-1", "acked", R"({"$set":1})")), "invalid_answer");
  EXPECT_EQ(refused("car-1", answer("c1", "car-1", "acked", R"({"speed_limit_kmh":9999})")),
            "invalid_answer");
  EXPECT_EQ(refused("car-1", answer(std::string(200, 'x'), "car-1", "acked", "{}")), "invalid_answer");
  EXPECT_EQ(refused("car-1", answer("c1", "car-1", "acked", "{}").insert(1, std::string(5000, ' '))),
            "too_large");
  EXPECT_EQ(refused("car-1", "{not json"), "undecodable");
  EXPECT_EQ(refused("car-1", answer("c1", "car-1", "maybe", "{}")), "undecodable");
  EXPECT_TRUE(codec::command_id_names_car("car-1:set_speed_limit:1:2", "car-1"));
  EXPECT_TRUE(codec::command_id_names_car("service:car-1:anomaly:5", "car-1"));
  EXPECT_FALSE(codec::command_id_names_car("car-10:x", "car-1"));
  EXPECT_FALSE(codec::command_id_names_car("car-1", "car-1"));
  EXPECT_TRUE(codec::safe_field_name("speed_limit_kmh"));
  for (const char* bad : {"", "a.b", "$where", "x y", "\xc3\xa9"}) EXPECT_FALSE(codec::safe_field_name(bad));
}

TEST(TwinStageDlq, EveryUnusableRecordGoesToTheDlqOfItsTopicWithAReason) {
  Twin s;
  auto wrong_car = telemetry_record("car-00002", car_telemetry("car-00001"));
  s.stage.process(
      {json_record(t::kTelemetry, "car-00001", "garbage"), wrong_car,
       json_record(t::kCommands, "car-00001", "{not json"),
       json_record(t::kCommands, "car-00001",
                   codec::command_to_json({"c1", "car-00001", "self_destruct", "{}", 1, 0, "pending"})),
       answer_record("car-00001", answer("c2", "car-00001", "acked", R"({"a.b":1})")),
       answer_record("car-00001", answer("c3", "car-00009", "failed", "{}"))},
      s.out);
  EXPECT_EQ(dead_letters(s.out), (std::vector<std::string>{
                                     "fleet.telemetry.dlq twin undecodable",
                                     "fleet.telemetry.dlq twin bad_car_id",
                                     "fleet.commands.dlq twin undecodable",
                                     "fleet.commands.dlq twin unknown_command",
                                     "fleet.command-acks.dlq twin invalid_answer",
                                     "fleet.command-acks.dlq twin bad_car_id",
                                 }));
  const auto& first = s.out.records.front();
  EXPECT_EQ(first.value, "garbage");  // the original bytes
  EXPECT_EQ(header(first, "source.offset"), "fleet.telemetry/0/0");
  EXPECT_EQ(s.metrics.value("fleettwin_dlq_total{stage=\"twin\"}"), 6);
  EXPECT_EQ(s.metrics.value("fleettwin_dlq_reason_total{stage=\"twin\",reason=\"bad_car_id\"}"), 2);
  s.stage.flush_state(s.out);
  EXPECT_TRUE(last_twin(s.out, "car-00001").reported_settings.empty());
}

TEST(TwinStageDlq, AnswersHeldBeforeTheirCommandAreBoundedPerCar) {
  Twin s;
  std::vector<log::Record> batch;
  for (std::size_t i = 0; i <= core::kMaxEarlyAnswersPerCar; ++i)
    batch.push_back(answer_record("car-00001", answer("x" + std::to_string(i), "car-00001", "failed", "{}")));
  batch.push_back(answer_record("car-00002", answer("y", "car-00002", "failed", "{}")));  // others unaffected
  s.stage.process(batch, s.out);
  EXPECT_EQ(dead_letters(s.out), std::vector<std::string>{"fleet.command-acks.dlq twin unknown_command"});
  // A held answer is per car: car-00002's answer to car-00001's command id does not settle that command.
  s.out.records.clear();
  s.stage.process(
      {answer_record("car-00002", answer("c9", "car-00002", "acked", R"({"speed_limit_kmh":50})")),
       json_record(t::kCommands, "car-00001", codec::command_to_json(speed_limit("c9", "car-00001", 50)))},
      s.out);
  s.stage.flush_state(s.out);
  EXPECT_EQ(last_twin(s.out, "car-00001").delta(), std::vector<std::string>{"speed_limit_kmh"});
}

TEST(TwinStageDlq, ACommandWithoutExpiryExpiresAfterTheDefaultLifetime) {
  Twin s;
  s.stage.process(
      {json_record(t::kCommands, "car-00001", codec::command_to_json(speed_limit("c1", "car-00001", 60)))},
      s.out);
  s.clock.advance_to(kStart + core::kDefaultCommandTtlMs - 1000);
  s.stage.process({telemetry_record("car-00001", car_telemetry("car-00001"))}, s.out);  // liveness moves
  s.stage.tick(s.out);
  for (const auto& o : s.out.records) EXPECT_NE(o.topic, t::kCommandAcks);
  s.clock.advance_to(kStart + core::kDefaultCommandTtlMs + 1000);
  auto later = car_telemetry("car-00001");
  later.seq += 1;
  later.ts = kStart + core::kDefaultCommandTtlMs + 1000;
  s.stage.process({telemetry_record("car-00001", later)}, s.out);
  s.stage.tick(s.out);
  int expired = 0;
  for (const auto& o : s.out.records) expired += o.topic == t::kCommandAcks ? 1 : 0;
  EXPECT_EQ(expired, 1);
}

namespace {

struct Sink {
  explicit Sink(const std::string& name) : dir(name) {}
  const fleettwin::testing::TempDir dir;
  const std::string db = dir.file("s.db");
  core::Metrics metrics;
  core::Histogram latency;
  stages::SinkStage sink{std::make_unique<store::SqliteStore>(db), metrics, latency};
  CaptureProducer out;
  std::string status(const std::string& id) {
    store::SqliteStore check(db);
    const auto c = check.get_command(id);
    return c ? c->car + " " + c->status : "none";
  }
};

}  // namespace

TEST(SinkStageDlq, EveryUnusableRecordGoesToTheDlqOfItsTopicWithAReason) {
  Sink s("ft-sink-dlq");
  core::Twin poisoned;
  poisoned.id = "car-00001";
  poisoned.reported_settings["a.b"] = "1";  // a foreign writer: would be a MongoDB path
  core::Twin dollar = poisoned;
  dollar.reported_settings = {{"$set", "1"}};
  s.sink.process({json_record(t::kTelemetry, "car-00001", "garbage"),
                  json_record(t::kTwins, "car-00001", codec::twin_to_json(poisoned)),
                  json_record(t::kTwins, "car-00001", codec::twin_to_json(dollar)),
                  json_record(t::kTwins, "car-00001", "{"), json_record(t::kAlerts, "car-00001", "garbage"),
                  json_record(t::kCommands, "car-00001", "{\"_id\":\"c1\",\"name\":\"reboot\"}"),
                  answer_record("car-00001", std::string(5000, ' '))},
                 s.out);
  EXPECT_EQ(dead_letters(s.out), (std::vector<std::string>{
                                     "fleet.telemetry.dlq sink undecodable",
                                     "fleet.twins.dlq sink invalid_twin",
                                     "fleet.twins.dlq sink invalid_twin",
                                     "fleet.twins.dlq sink undecodable",
                                     "fleet.alerts.dlq sink undecodable",
                                     "fleet.commands.dlq sink unknown_command",
                                     "fleet.command-acks.dlq sink too_large",
                                 }));
  EXPECT_EQ(s.metrics.value("fleettwin_dlq_total{stage=\"sink\"}"), 7);
}

TEST(SinkStageDlq, AnAnswerSettlesOnlyACommandOfTheCarThatAnswers) {
  Sink s("ft-sink-car");
  s.sink.process({json_record(t::kCommands, "car-00001",
                              codec::command_to_json(speed_limit("car-00001:a", "car-00001", 50)))},
                 s.out);
  // car-00002 guesses car-00001's command id: refused, the command stays pending.
  s.sink.process({answer_record("car-00002", answer("car-00001:a", "car-00002", "failed", "{}"))}, s.out);
  EXPECT_EQ(dead_letters(s.out), std::vector<std::string>{"fleet.command-acks.dlq sink bad_car_id"});
  EXPECT_EQ(s.status("car-00001:a"), "car-00001 pending");
  // An answer read before its command, by another car, does not give the command its status.
  s.sink.process({answer_record("car-00002", answer("car-00001:b", "car-00002", "acked", "{}"))}, s.out);
  EXPECT_EQ(dead_letters(s.out).back(), "fleet.command-acks.dlq sink unknown_command");
  s.sink.process({json_record(t::kCommands, "car-00001",
                              codec::command_to_json(speed_limit("car-00001:b", "car-00001", 60)))},
                 s.out);
  EXPECT_EQ(s.status("car-00001:b"), "car-00001 pending");
  // The car's own answer does.
  s.sink.process(
      {answer_record("car-00001", answer("car-00001:b", "", "acked", R"({"speed_limit_kmh":60})"))}, s.out);
  EXPECT_EQ(s.status("car-00001:b"), "car-00001 acked");
}

TEST(SinkStageDlq, AnswersStoredBeforeTheirCommandAreBoundedPerCar) {
  Sink s("ft-sink-early");
  std::vector<log::Record> batch;
  for (std::size_t i = 0; i <= core::kMaxEarlyAnswersPerCar; ++i)
    batch.push_back(
        answer_record("car-00001", answer("car-00001:z" + std::to_string(i), "", "failed", "{}")));
  s.sink.process(batch, s.out);
  EXPECT_EQ(dead_letters(s.out), std::vector<std::string>{"fleet.command-acks.dlq sink unknown_command"});
  EXPECT_EQ(s.status("car-00001:z0"), "car-00001 failed");
  EXPECT_EQ(s.status("car-00001:z" + std::to_string(core::kMaxEarlyAnswersPerCar)), "none");
}

TEST(ScoreStageDlq, UndecodableTelemetryGoesToTheTelemetryDlq) {
  core::Metrics metrics;
  stages::ScoreStage stage(stages::ScoreStage::Options{}, nullptr, metrics, registry::TelemetryReader(),
                           nullptr);
  CaptureProducer out;
  stage.process({json_record(t::kTelemetry, "car-00001", "garbage"),
                 telemetry_record("car-00002", car_telemetry("car-00001"))},
                out);
  EXPECT_EQ(dead_letters(out), (std::vector<std::string>{"fleet.telemetry.dlq score undecodable",
                                                         "fleet.telemetry.dlq score bad_car_id"}));
  EXPECT_EQ(metrics.value("fleettwin_dlq_reason_total{stage=\"score\",reason=\"undecodable\"}"), 1);
}

TEST(DeadLetters, EveryStageListsTheDlqTopicsItWritesAndEachIsProvisioned) {
  const std::set<std::string> provisioned(std::begin(t::kDlqTopics), std::end(t::kDlqTopics));
  for (const auto& entry : stages::registry()) {
    const auto& d = entry.descriptor();
    if (d.name == "bridge") continue;  // reads MQTT, not the log
    for (const auto& in : d.inputs) {
      if (in == t::kModels) continue;  // read by the score stage's model watcher, off the runner
      const auto dlq = stages::dlq_of(in);
      EXPECT_TRUE(provisioned.contains(dlq)) << dlq;
      EXPECT_NE(std::find(d.outputs.begin(), d.outputs.end(), dlq), d.outputs.end()) << d.name << " " << dlq;
    }
  }
}

// The runner flushes the DLQ record with the batch's outputs before it commits: once the offset of a bad
// record is committed, the DLQ has it.
TEST(DeadLetters, TheRunnerCommitsABadRecordOnlyWithItsDlqRecordInTheLog) {
  log::MemoryLog mlog;
  for (const char* topic : {t::kTelemetry, t::kCommands, t::kCommandAcks, t::kScores, t::kAlerts})
    mlog.create_topic(topic, {.partitions = 1});
  auto p = mlog.producer();
  p->send(log::OutRecord{t::kCommandAcks, "car-00001", answer("c1", "car-00001", "acked", R"({"x.y":1})")});
  p->flush(1s);
  core::Metrics metrics;
  core::SimClock clock(kStart);
  stages::StageRunner runner(
      std::make_unique<stages::TwinStage>(stages::TwinStage::Options{}, clock, metrics), mlog, metrics);
  runner.start();
  runner.request_drain();
  runner.join();
  ASSERT_EQ(runner.error(), "");
  EXPECT_EQ(mlog.committed("fleettwin.twin", {t::kCommandAcks, 0}), 1);
  int64_t dlq = 0;
  for (auto e : mlog.end_offsets(t::kCommandAcksDlq)) dlq += e;
  EXPECT_EQ(dlq, 1);
}
