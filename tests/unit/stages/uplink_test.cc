// The uplink's spool (what an edge site keeps for central while central is away), the capture stage's
// budget, and how central roles see a site's topics (`--sites`).
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "core/topics.h"
#include "stages/sites.h"
#include "stages/uplink/spool.h"
#include "stages/uplink/uplink_capture.h"
#include "stages/uplink/uplink_sender.h"
#include "support/temp_dir.h"
#include "unit/stages/stage_records.h"

using namespace fleettwin;
using namespace std::chrono_literals;
namespace t = core::topics;

namespace {

log::OutRecord out(const std::string& topic, const std::string& car, const std::string& value) {
  return log::OutRecord{topic, car, value};
}

log::Record record(const std::string& topic, const std::string& car, const std::string& value) {
  log::Record r;
  r.topic = topic;
  r.key = car;
  r.value = value;
  return r;
}

}  // namespace

TEST(Spool, KeepsRecordsInOrderAcrossReopenUntilRemoved) {
  const fleettwin::testing::TempDir dir("spool");
  const auto path = dir.file("uplink.sqlite");
  {
    stages::Spool spool(path);
    auto twin = out(t::kTwins, "car-1", "{}");
    twin.headers.push_back({"h", std::string("\0x", 2)});
    spool.append({out(t::kTelemetry, "car-1", "a"), twin}, {{"car-1", 7, 700}});
    spool.append({out(t::kAlerts, "car-2", "c")}, {{"car-1", 5, 500}});  // an older mark does not lower it
    EXPECT_EQ(spool.records(), 3);
    EXPECT_GT(spool.bytes(), 0);
  }
  stages::Spool spool(path);  // what a restarted edge finds
  EXPECT_EQ(spool.records(), 3);
  const int64_t before = spool.bytes();
  auto all = spool.read(0, 10);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].record.value, "a");
  EXPECT_EQ(all[1].record.topic, t::kTwins);
  ASSERT_EQ(all[1].record.headers.size(), 1u);
  EXPECT_EQ(all[1].record.headers[0].value, std::string("\0x", 2));
  EXPECT_EQ(all[2].record.key, "car-2");
  ASSERT_EQ(spool.marks().size(), 1u);
  EXPECT_EQ(spool.marks()[0].seq, 7);
  EXPECT_EQ(spool.marks()[0].ts, 700);

  spool.remove_through(all[1].id);
  EXPECT_EQ(spool.records(), 1);
  EXPECT_EQ(spool.bytes(),
            before - stages::spooled_size(all[0].record) - stages::spooled_size(all[1].record));
  const auto rest = spool.read(0, 10);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].record.value, "c");
  spool.remove_through(rest[0].id);
  EXPECT_EQ(spool.bytes(), 0);
  EXPECT_TRUE(spool.read(0, 10).empty());
  EXPECT_EQ(spool.marks().size(), 1u);  // marks outlive their records: the catch-up point after a kill
}

TEST(UplinkCapture, HoldsBackWhileTheSpoolIsFullAndNeverDrops) {
  const fleettwin::testing::TempDir dir("capture");
  auto spool = std::make_shared<stages::Spool>(dir.file("uplink.sqlite"));
  auto status = std::make_shared<stages::UplinkStatus>();
  core::Metrics metrics;
  stages::UplinkCapture capture(spool, 200, status, registry::TelemetryReader(), metrics);
  fleettwin::testing::CaptureProducer sink;
  const std::string big(150, 'x');
  capture.process({record(t::kTwins, "car-1", big)}, sink);  // an empty spool takes even a large batch
  EXPECT_EQ(spool->records(), 1);
  auto second =
      std::async(std::launch::async, [&] { capture.process({record(t::kTwins, "car-2", big)}, sink); });
  // It waits, and says so, until the sender makes room.
  ASSERT_EQ(second.wait_for(300ms), std::future_status::timeout);
  EXPECT_EQ(status->state(), stages::UplinkStatus::kFull);
  spool->remove_through(spool->read(0, 1).back().id);
  second.get();
  EXPECT_EQ(status->state(), stages::UplinkStatus::kLive);
  const auto left = spool->read(0, 10);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].record.key, "car-2");
  // A stop while full gives up the wait without spooling (the runner does not commit: nothing is lost).
  capture.interrupt();
  EXPECT_THROW(capture.process({record(t::kTwins, "car-3", big)}, sink), std::runtime_error);
  EXPECT_EQ(spool->records(), 1);
}

TEST(UplinkSender, CentralTopicsAreTheSitePrefixedOnes) {
  EXPECT_EQ(stages::central_topic("depot-7", t::kTelemetry), "depot-7.fleet.telemetry");
  EXPECT_EQ(stages::central_topic("depot-7", t::kCommandAcks), "depot-7.fleet.command-acks");
}

TEST(Sites, SubscribesEverySiteOfWhatSitesProduceButNotTheirTwins) {
  const auto topics = stages::with_site_topics({t::kTelemetry, t::kTwins, t::kCommandAcks});
  ASSERT_EQ(topics.size(), 5u);
  EXPECT_EQ(topics[3], "^[a-z0-9-]+\\.fleet\\.telemetry$");
  EXPECT_EQ(topics[4], "^[a-z0-9-]+\\.fleet\\.command-acks$");
}

TEST(Sites, StripsTheSiteIntoAHeader) {
  std::vector<log::Record> batch{record("depot-7.fleet.telemetry", "car-1", "a"),
                                 record(t::kTelemetry, "car-2", "b"),
                                 record("depot-7.fleet.twins", "car-1", "c")};
  stages::strip_site_topics(batch);
  EXPECT_EQ(batch[0].topic, t::kTelemetry);
  EXPECT_EQ(batch[0].header(t::kHeaderSite), "depot-7");
  EXPECT_EQ(batch[1].topic, t::kTelemetry);
  EXPECT_FALSE(batch[1].header(t::kHeaderSite).has_value());
  EXPECT_EQ(batch[2].topic, "depot-7.fleet.twins");  // a site's twins are not central's input
}
