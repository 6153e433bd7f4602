// The uplink's spool (what an edge site keeps for central while central is away), the capture stage's
// budget, and how central roles see a site's topics (`--sites`).
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "core/topics.h"
#include "stages/sites.h"
#include "stages/stage.h"
#include "stages/uplink/spool.h"
#include "stages/uplink/spool_budget.h"
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
  stages::UplinkCapture capture(spool, std::make_shared<stages::SpoolBudget>(200, 1, 0.0), status,
                                registry::TelemetryReader(), metrics);
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

// Central partitions a site's copies by its own hash: the capture says which of the site's partitions each
// telemetry and score record came from (the order central pairs a site's scores with its events in); the
// other topics need no pairing and carry their headers as they are.
TEST(UplinkCapture, TelemetryAndScoresSayTheSitePartitionTheyCameFrom) {
  const fleettwin::testing::TempDir dir("capture-partition");
  auto spool = std::make_shared<stages::Spool>(dir.file("uplink.sqlite"));
  core::Metrics metrics;
  stages::UplinkCapture capture(spool, std::make_shared<stages::SpoolBudget>(1 << 20, 1, 0.0),
                                std::make_shared<stages::UplinkStatus>(), registry::TelemetryReader(),
                                metrics);
  fleettwin::testing::CaptureProducer sink;
  auto telemetry = record(t::kTelemetry, "car-1", "not avro");
  telemetry.partition = 5;
  auto score = record(t::kScores, "car-1", "s");
  score.partition = 5;
  score.headers.push_back({"model.role", "shadow"});
  auto twin = record(t::kTwins, "car-1", "{}");
  twin.partition = 5;
  capture.process({telemetry, score, twin}, sink);
  const auto spooled = spool->read(0, 10);
  ASSERT_EQ(spooled.size(), 3u);
  auto header = [&](std::size_t i, const std::string& key) {
    std::string values;
    for (const auto& h : spooled[i].record.headers)
      if (h.key == key) values += h.value + ";";
    return values;
  };
  EXPECT_EQ(header(0, t::kHeaderSitePartition), "5;");
  EXPECT_EQ(header(1, t::kHeaderSitePartition), "5;");
  EXPECT_EQ(header(1, "model.role"), "shadow;");
  EXPECT_EQ(header(2, t::kHeaderSitePartition), "");
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
  // Headers a producer wrote do not name a site: only the topic does.
  batch[0].headers.push_back({t::kHeaderSite, "forged"});
  batch[1].headers.push_back({t::kHeaderSite, "forged"});
  stages::strip_site_topics(batch);
  EXPECT_EQ(batch[0].topic, t::kTelemetry);
  EXPECT_EQ(batch[0].header(t::kHeaderSite), "depot-7");
  EXPECT_EQ(batch[0].headers.size(), 1U);
  EXPECT_EQ(batch[1].topic, t::kTelemetry);
  EXPECT_FALSE(batch[1].header(t::kHeaderSite).has_value());
  EXPECT_EQ(batch[2].topic, "depot-7.fleet.twins");  // a site's twins are not central's input
}

namespace {

/// Records what the stage was handed, and throws when told to.
class ViewStage final : public stages::Stage {
 public:
  const stages::StageDescriptor& descriptor() const override { return _d; }
  void process(const std::vector<log::Record>& batch, log::Producer&) override {
    handed = &batch;
    for (const auto& r : batch)
      topics.push_back(r.topic + "@" + std::string(r.header(t::kHeaderSite).value_or("")));
    if (fail) throw std::runtime_error("boom");
  }
  const std::vector<log::Record>* handed = nullptr;
  std::vector<std::string> topics;
  bool fail = false;

 private:
  stages::StageDescriptor _d{"view", {t::kTelemetry}, {}, {}, ""};
};

std::vector<log::Record> site_batch() {
  auto a = record("depot-7.fleet.telemetry", "car-1", "a");
  a.partition = 2;
  a.offset = 40;
  auto b = record(t::kTelemetry, "car-2", "b");
  b.partition = 0;
  b.offset = 9;
  return {a, b};
}

}  // namespace

TEST(Sites, ProcessBatchRenamesInPlaceAndCommitsTheRealTopics) {
  ViewStage stage;
  fleettwin::testing::CaptureProducer out;
  auto batch = site_batch();
  const auto next = stages::process_batch(stage, batch, out, true);
  // The stage got the runner's own batch (no copy), renamed, with the site as a header.
  EXPECT_EQ(stage.handed, &batch);
  EXPECT_EQ(stage.topics, (std::vector<std::string>{"fleet.telemetry@depot-7", "fleet.telemetry@"}));
  // What is committed is the offsets of the topics the records were read from.
  ASSERT_EQ(next.size(), 2u);
  EXPECT_EQ(next.at({"depot-7.fleet.telemetry", 2}), 41);
  EXPECT_EQ(next.at({t::kTelemetry, 0}), 10);
  EXPECT_FALSE(next.contains({t::kTelemetry, 2}));

  // Without --sites nothing is renamed.
  ViewStage plain;
  auto untouched = site_batch();
  stages::process_batch(plain, untouched, out, false);
  EXPECT_EQ(untouched[0].topic, "depot-7.fleet.telemetry");
  EXPECT_EQ(plain.topics[0], "depot-7.fleet.telemetry@");
}

TEST(Sites, ProcessBatchThatThrowsReturnsNothingToCommit) {
  ViewStage stage;
  stage.fail = true;
  fleettwin::testing::CaptureProducer out;
  auto batch = site_batch();
  log::Offsets pending;
  EXPECT_THROW(pending = stages::process_batch(stage, batch, out, true), std::runtime_error);
  EXPECT_TRUE(pending.empty());
}

TEST(SpoolBudget, FixedWhenConfigured) {
  const auto t0 = stages::SpoolBudget::Clock::now();
  stages::SpoolBudget budget(5'000, 1'000'000, 50.0, t0);
  EXPECT_EQ(budget.bytes(), 5'000);
  EXPECT_FALSE(budget.observe(1'000'000'000, t0 + 10min));
  EXPECT_EQ(budget.bytes(), 5'000);
}

TEST(SpoolBudget, GrowsToADayOfTheMeasuredTrafficAndNeverShrinks) {
  using stages::SpoolBudget;
  const auto t0 = SpoolBudget::Clock::now();
  SpoolBudget budget(0, 1'000, 0.0, t0);
  EXPECT_EQ(budget.bytes(), 1'000);  // nothing measured yet: the floor
  // Three hours at 6,000 bytes a minute (100 bytes/s), reported once a second.
  auto now = t0;
  for (int s = 0; s < 3 * 3600; ++s) {
    budget.observe(100, now);
    now += 1s;
  }
  // The moving average has converged on 100 bytes/s: a day of it.
  EXPECT_NEAR(budget.rate(), 100.0, 1.0);
  EXPECT_NEAR(static_cast<double>(budget.bytes()), 100.0 * 86'400, 86'400.0);
  // The site pushes back (or goes quiet) for an hour: the budget stays.
  const int64_t before = budget.bytes();
  budget.observe(0, now + 1h);
  EXPECT_EQ(budget.bytes(), before);
  // A one-minute burst of ten times the rate counts for a tenth, not for ten days.
  SpoolBudget burst(0, 1'000, 100.0, t0);
  burst.observe(60'000, t0);
  burst.observe(0, t0 + 61s);
  EXPECT_NEAR(burst.rate(), 190.0, 1.0);
  // Known from an earlier run (the spool keeps it): a day of it at once.
  SpoolBudget restarted(0, 1'000, 100.0, t0);
  EXPECT_EQ(restarted.bytes(), 8'640'000);
}

TEST(Spool, KeepsTheMeasuredRateAcrossReopen) {
  const fleettwin::testing::TempDir dir("spool-rate");
  const auto path = dir.file("uplink.sqlite");
  {
    stages::Spool spool(path);
    EXPECT_EQ(spool.rate(), 0.0);
    spool.set_rate(12.5);
    spool.set_rate(250.5);
  }
  EXPECT_EQ(stages::Spool(path).rate(), 250.5);
}
