// Issue 17, item 5, on the embedded pipeline (twin and sink stages in their runners on the in-memory log, the
// sink on SQLite): answers from cars cannot settle another car's command, cannot put made-up settings into a
// twin or a store, and go to fleet.command-acks.dlq with their reason instead; after a restart (new runners
// on the same log and store) nothing fails on them again and the pipeline carries on.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>

#include "codec/json.h"
#include "core/clock.h"
#include "core/topics.h"
#include "log/memory/memory_log.h"
#include "stages/sink/sink_stage.h"
#include "stages/twin/twin_resume.h"
#include "stages/twin/twin_stage.h"
#include "store/sqlite/sqlite_store.h"
#include "support/temp_dir.h"

using namespace fleettwin;
using namespace std::chrono_literals;
namespace t = core::topics;

namespace {

const std::string kCommandA = "car-A:set_speed_limit:1:0";
const std::string kCommandB = "car-B:set_speed_limit:1:1";

std::string answer(const std::string& id, const std::string& car, const std::string& status,
                   const std::string& reported) {
  return R"({"id":")" + id + R"(","car":")" + car + R"(","status":")" + status + R"(","ts":5,"reported":)" +
         reported + "}";
}

class EmbeddedAnswers : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* topic :
         {t::kTelemetry, t::kCommands, t::kCommandAcks, t::kScores, t::kAlerts, t::kTwins})
      log.create_topic(topic, {.partitions = 2});
    for (const char* topic : t::kDlqTopics) log.create_topic(topic, {.partitions = 2});
  }

  void send(const char* topic, const std::string& key, std::string value) {
    auto p = log.producer();
    p->send(log::OutRecord{topic, key, std::move(value)});
    ASSERT_EQ(p->flush(5s), 0);
  }

  /// Twin and sink in their runners until they consumed everything; the twin resumes from the store.
  void run_pipeline() {
    std::vector<stages::TwinSnapshot> initial;
    {
      store::SqliteStore s(db);
      initial = stages::twins_from_store(s);
    }
    stages::StageRunner twin(
        std::make_unique<stages::TwinStage>(stages::TwinStage::Options{}, clock, metrics, std::move(initial)),
        log, metrics);
    stages::StageRunner sink(
        std::make_unique<stages::SinkStage>(std::make_unique<store::SqliteStore>(db), metrics, latency), log,
        metrics);
    twin.start();
    twin.request_drain();
    twin.join();
    sink.start();  // after the twin: it reads the twins the twin stage wrote
    sink.request_drain();
    sink.join();
    EXPECT_EQ(twin.error(), "");
    EXPECT_EQ(sink.error(), "");
  }

  int64_t records(const char* topic) {
    int64_t n = 0;
    for (auto e : log.end_offsets(topic)) n += e;
    return n;
  }

  std::string status(const std::string& id) {
    store::SqliteStore s(db);
    const auto c = s.get_command(id);
    return c ? c->car + " " + c->status : "none";
  }

  core::Twin twin_of(const std::string& car) {
    store::SqliteStore s(db);
    return s.get_twin(car).value_or(core::Twin{});
  }

  const fleettwin::testing::TempDir dir{"answers-it"};
  const std::string db = dir.file("fleet.db");
  log::MemoryLog log;
  core::Metrics metrics;
  core::Histogram latency;
  core::WallClock clock;
};

}  // namespace

TEST_F(EmbeddedAnswers, ABadAnswerChangesNoOtherCarsCommandAndPoisonsNothingAcrossARestart) {
  const int64_t expires = core::wall_clock_ms() + 3'600'000;
  send(t::kCommands, "car-A",
       codec::command_to_json(
           {kCommandA, "car-A", "set_speed_limit", R"({"kmh":80})", 1, expires, "pending"}));
  send(t::kCommands, "car-B",
       codec::command_to_json(
           {kCommandB, "car-B", "set_speed_limit", R"({"kmh":60})", 1, expires, "pending"}));
  // car-B guesses car-A's command id and refuses it; car-A claims to be car-B; car-A reports settings that
  // are no settings (a MongoDB path, an operator) and a 100 KB answer.
  send(t::kCommandAcks, "car-B", answer(kCommandA, "car-B", "failed", "{}"));
  send(t::kCommandAcks, "car-A", answer(kCommandB, "car-B", "acked", R"({"speed_limit_kmh":1})"));
  send(t::kCommandAcks, "car-A",
       answer(kCommandA, "car-A", "acked", R"({"speed_limit_kmh":80,"evil.key":1})"));
  send(t::kCommandAcks, "car-A", answer(kCommandA, "car-A", "acked", R"({"$where":"1"})"));
  send(t::kCommandAcks, "car-A",
       answer(kCommandA, "car-A", "acked",
              R"({"speed_limit_kmh":80,"pad":")" + std::string(100'000, 'x') + "\"}"));
  send(t::kCommandAcks, "car-B", answer(kCommandB, "car-B", "acked", R"({"speed_limit_kmh":60})"));
  run_pipeline();

  EXPECT_EQ(status(kCommandA), "car-A pending");  // another car's answer settles nothing
  EXPECT_EQ(status(kCommandB), "car-B acked");
  auto a = twin_of("car-A");
  EXPECT_TRUE(a.reported_settings.empty());
  EXPECT_EQ(a.desired.at("speed_limit_kmh"), "80");
  EXPECT_EQ(twin_of("car-B").reported_settings,
            (std::map<std::string, std::string>{{"speed_limit_kmh", "60"}}));
  // The sink refuses all five bad answers; the twin stage four: car-B's answer to an id it has no command
  // of is held for car-B (bounded per car), where no command of car-A can ever meet it.
  EXPECT_EQ(records(t::kCommandAcksDlq), 9);
  // car-B's answer to car-A's command is `bad_car_id` when the sink has the command already,
  // `unknown_command` when it reads the answer first (the topics are read in no fixed order): refused either
  // way.
  EXPECT_EQ(metrics.value("fleettwin_dlq_total{stage=\"sink\"}"), 5);
  EXPECT_EQ(metrics.value("fleettwin_dlq_total{stage=\"twin\"}"), 4);
  EXPECT_EQ(metrics.value("fleettwin_dlq_reason_total{stage=\"twin\",reason=\"invalid_answer\"}"), 2);
  EXPECT_EQ(metrics.value("fleettwin_dlq_reason_total{stage=\"twin\",reason=\"too_large\"}"), 1);

  // A restart on the same log and store: nothing is read again, nothing fails, the car's real answer lands.
  send(t::kCommandAcks, "car-A", answer(kCommandA, "", "acked", R"({"speed_limit_kmh":80})"));
  run_pipeline();
  EXPECT_EQ(status(kCommandA), "car-A acked");
  a = twin_of("car-A");
  EXPECT_EQ(a.reported_settings, (std::map<std::string, std::string>{{"speed_limit_kmh", "80"}}));
  EXPECT_TRUE(a.delta().empty());
  EXPECT_EQ(records(t::kCommandAcksDlq), 9);
}
