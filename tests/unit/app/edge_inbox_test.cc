// The edge's durable inbox on the memory log: deliveries reported only after the rows are on disk, rows kept
// until the process stage and then the sink committed past them (answers: until every reader of answers
// did), what is left replayed after a restart, inboxes of earlier versions read as they were.
#include "app/edge_inbox.h"

#include <gtest/gtest.h>

#include "core/topics.h"
#include "log/memory/memory_log.h"
#include "store/sqlite/sqlite_db.h"
#include "support/log_records.h"
#include "support/temp_dir.h"

using namespace fleettwin;
using namespace std::chrono_literals;
using fleettwin::testing::drain;
using fleettwin::testing::rec;
using fleettwin::testing::subscribed;
namespace t = core::topics;

namespace {

log::OutRecord raw(const std::string& car, int seq) {
  auto r = rec(t::kTelemetryRaw, car, "{\"car\":\"" + car + "\",\"seq\":" + std::to_string(seq) + "}");
  r.headers = {{t::kHeaderMqttTopic, "fleet/" + car + "/telemetry"}, {t::kHeaderReceivedMs, "1234"}};
  return r;
}

log::OutRecord answer(const std::string& car) {
  auto r = rec(t::kCommandAcks, car, R"({"id":"c1","status":"acked"})");
  r.headers = {{t::kHeaderMqttTopic, "fleet/" + car + "/acks"}, {t::kHeaderReceivedMs, "99"}};
  return r;
}

std::unique_ptr<log::MemoryLog> make_log() {
  auto log = std::make_unique<log::MemoryLog>();
  for (const char* topic : {t::kTelemetryRaw, t::kTelemetry, t::kCommandAcks}) log->create_topic(topic, {});
  return log;
}

/// Reads everything of `topic` as `group` and commits it; how many records.
std::size_t consume_all(log::Log& log, const std::string& group, const std::string& topic, std::size_t n) {
  auto c = subscribed(log, group, {topic});
  const auto records = drain(*c, n, 2000ms);
  c->commit(log::next_offsets(records));
  c->close();
  return records.size();
}

}  // namespace

TEST(EdgeInbox, ReportsDeliveryOnlyOnceOnDiskAndKeepsRowsUntilTheSinkStoredThem) {
  const fleettwin::testing::TempDir dir("edge-inbox");
  const std::string path = dir.file("inbox.sqlite");
  core::Metrics metrics;
  auto log = make_log();
  {
    app::EdgeInbox inbox({.path = path}, *log, metrics);
    EXPECT_EQ(inbox.replay(), 0);
    auto producer = inbox.producer();
    int delivered = 0;
    for (int seq = 1; seq <= 10; ++seq)
      producer->send(raw("car-" + std::to_string(seq % 3), seq),
                     [&](const log::OutRecord&, int64_t, const log::DeliveryError* e) { delivered += !e; });
    producer->send(rec(t::kCommandAcksDlq, "car-1", "{}"));  // not a car's message: straight to the log
    EXPECT_EQ(delivered, 0);  // nothing reported before the flush wrote the rows
    EXPECT_EQ(inbox.rows(), 0);
    EXPECT_EQ(producer->flush(1s), 0);
    EXPECT_EQ(delivered, 10);
    EXPECT_EQ(inbox.rows(), 10);

    // The process stage has read it all, the sink nothing yet: nothing may go.
    EXPECT_EQ(consume_all(*log, "fleettwin.process", t::kTelemetryRaw, 10), 10u);
    auto process_out = log->producer();
    for (int i = 0; i < 10; ++i)
      process_out->send(rec(t::kTelemetry, "car-" + std::to_string(i % 3), "avro"));
    ASSERT_EQ(process_out->flush(1s), 0);
    inbox.trim_once();
    inbox.trim_once();
    EXPECT_EQ(inbox.rows(), 10);
  }
  // A crash here: a new run on the same file puts every row back, with its headers.
  auto log2 = make_log();
  app::EdgeInbox inbox({.path = path}, *log2, metrics);
  EXPECT_EQ(inbox.rows(), 10);
  EXPECT_EQ(inbox.replay(), 10);
  auto reader = subscribed(*log2, "check", {t::kTelemetryRaw});
  const auto replayed = drain(*reader, 10, 2000ms);
  ASSERT_EQ(replayed.size(), 10u);
  EXPECT_EQ(replayed[0].header(t::kHeaderReceivedMs), "1234");
  EXPECT_EQ(replayed[0].header(t::kHeaderMqttTopic), "fleet/" + replayed[0].key + "/telemetry");

  // Trimmed once process and then sink have committed past the replayed rows.
  inbox.trim_once();
  EXPECT_EQ(inbox.rows(), 10);
  EXPECT_EQ(consume_all(*log2, "fleettwin.process", t::kTelemetryRaw, 10), 10u);
  auto process_out = log2->producer();
  for (int i = 0; i < 10; ++i) process_out->send(rec(t::kTelemetry, "car-" + std::to_string(i % 3), "avro"));
  ASSERT_EQ(process_out->flush(1s), 0);
  inbox.trim_once();
  EXPECT_EQ(inbox.rows(), 10);
  EXPECT_EQ(consume_all(*log2, "fleettwin.sink", t::kTelemetry, 10), 10u);
  inbox.trim_once();
  EXPECT_EQ(inbox.rows(), 0);
}

TEST(EdgeInbox, KeepsCarsAnswersUntilEveryReaderOfAnswersPassedThem) {
  const fleettwin::testing::TempDir dir("edge-inbox-answers");
  const std::string path = dir.file("inbox.sqlite");
  core::Metrics metrics;
  auto log = make_log();
  const app::EdgeInbox::Options options{
      .path = path, .answer_groups = {"fleettwin.twin", "fleettwin.sink", "fleettwin.uplink"}};
  {
    app::EdgeInbox inbox(options, *log, metrics);
    auto producer = inbox.producer();
    int delivered = 0;
    producer->send(answer("car-1"),
                   [&](const log::OutRecord&, int64_t, const log::DeliveryError* e) { delivered += !e; });
    EXPECT_EQ(delivered, 0);  // a PUBACK for an answer waits for the disk as telemetry's does
    EXPECT_EQ(producer->flush(1s), 0);
    EXPECT_EQ(delivered, 1);
    EXPECT_EQ(inbox.rows(), 1);
    // The twin and the sink have the answer, the uplink not yet: it stays.
    EXPECT_EQ(consume_all(*log, "fleettwin.twin", t::kCommandAcks, 1), 1u);
    EXPECT_EQ(consume_all(*log, "fleettwin.sink", t::kCommandAcks, 1), 1u);
    inbox.trim_once();
    inbox.trim_once();
    EXPECT_EQ(inbox.rows(), 1);
  }
  // A crash: the answer goes back to fleet.command-acks, with its headers.
  auto log2 = make_log();
  app::EdgeInbox inbox(options, *log2, metrics);
  EXPECT_EQ(inbox.replay(), 1);
  auto reader = subscribed(*log2, "check", {t::kCommandAcks});
  const auto replayed = drain(*reader, 1, 2000ms);
  ASSERT_EQ(replayed.size(), 1u);
  EXPECT_EQ(replayed[0].key, "car-1");
  EXPECT_EQ(replayed[0].header(t::kHeaderMqttTopic), "fleet/car-1/acks");
  EXPECT_EQ(drain(*subscribed(*log2, "check-raw", {t::kTelemetryRaw}), 1, 200ms).size(), 0u);
  // Every reader of answers passed it, then the sink stored the twins they changed: gone.
  for (const char* group : {"fleettwin.twin", "fleettwin.sink", "fleettwin.uplink"})
    EXPECT_EQ(consume_all(*log2, group, t::kCommandAcks, 1), 1u);
  auto twin_out = log2->producer();
  twin_out->send(rec(t::kTwins, "car-1", "twin"));
  ASSERT_EQ(twin_out->flush(1s), 0);
  inbox.trim_once();
  EXPECT_EQ(inbox.rows(), 1);
  EXPECT_EQ(consume_all(*log2, "fleettwin.sink", t::kTwins, 1), 1u);
  inbox.trim_once();
  EXPECT_EQ(inbox.rows(), 0);
}

TEST(EdgeInbox, ReadsAnInboxWrittenBeforeAnswersWentThroughIt) {
  const fleettwin::testing::TempDir dir("edge-inbox-old");
  const std::string path = dir.file("inbox.sqlite");
  {
    store::Db db(path);
    db.exec(
        "CREATE TABLE inbox(id INTEGER PRIMARY KEY AUTOINCREMENT, car TEXT NOT NULL, value BLOB NOT NULL, "
        "mqtt_topic TEXT NOT NULL, received_ms TEXT NOT NULL);"
        "INSERT INTO inbox(car, value, mqtt_topic, received_ms) VALUES('car-9', 'v', "
        "'fleet/car-9/telemetry', "
        "'5')");
  }
  core::Metrics metrics;
  auto log = make_log();
  app::EdgeInbox inbox({.path = path}, *log, metrics);
  EXPECT_EQ(inbox.replay(), 1);
  auto reader = subscribed(*log, "check", {t::kTelemetryRaw});
  const auto replayed = drain(*reader, 1, 2000ms);
  ASSERT_EQ(replayed.size(), 1u);
  EXPECT_EQ(replayed[0].key, "car-9");
}
