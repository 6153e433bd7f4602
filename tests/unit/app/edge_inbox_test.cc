// The edge's durable inbox on the memory log: deliveries reported only after the rows are on disk, rows kept
// until the process stage and then the sink committed past them, what is left replayed after a restart.
#include "app/edge_inbox.h"

#include <gtest/gtest.h>

#include "core/topics.h"
#include "log/memory/memory_log.h"
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
    producer->send(rec(t::kCommandAcks, "car-1", "{}"));  // not telemetry: straight to the log
    EXPECT_EQ(delivered, 0);                              // nothing reported before the flush wrote the rows
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
