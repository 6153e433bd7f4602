// Issue 16 item 1: a consumer of derived data (the score stage) that falls behind never stops ingestion and
// storage of telemetry on the embedded log, and memory stays bounded (log.capacity per partition).
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <stdexcept>
#include <thread>

#include "codec/avro.h"
#include "core/topics.h"
#include "log/memory/memory_log.h"
#include "stages/score/score_stage.h"
#include "stages/sink/sink_stage.h"
#include "store/sqlite/sqlite_store.h"
#include "support/telemetry_samples.h"
#include "support/temp_dir.h"

using namespace fleettwin;
using namespace std::chrono_literals;
namespace t = core::topics;

namespace {

constexpr int kCars = 20, kPerCar = 100, kEvents = kCars * kPerCar;
constexpr int64_t kCapacity = 64;  // per partition, 2 partitions: the log holds 128 records of a topic

core::Telemetry telemetry(int car, int64_t seq) {
  auto m = codec::testing::sample_telemetry();
  m.car = "car-" + std::to_string(10'000 + car).substr(1);
  m.seq = seq;
  m.ts = 1'700'000'000'000 + seq * 1000;  // one a second: the 5 s warm-up ends with seq 6
  return m;
}

/// The embedded pipeline's topics on a small memory log, a sink on SQLite, and a producer of telemetry.
class LaggingConsumer : public ::testing::Test {
 protected:
  LaggingConsumer() {
    for (const char* topic :
         {t::kTelemetry, t::kScores, t::kAlerts, t::kCommands, t::kModels, t::kTwins, t::kCommandAcks})
      log.create_topic(topic, {.partitions = 2, .capacity = kCapacity});
  }

  std::unique_ptr<stages::StageRunner> sink_runner() {
    return std::make_unique<stages::StageRunner>(
        std::make_unique<stages::SinkStage>(std::make_unique<store::SqliteStore>(db), metrics, latency), log,
        metrics);
  }

  /// Writes every event (seq by seq, car by car) to fleet.telemetry, as the process stage does, once the
  /// `groups` (the runners', which join from their own threads) are known to the log: records written
  /// before any group reads a topic would be left to retention.
  void produce(const std::vector<std::string>& groups) {
    for (const auto& group : groups) log.consumer(group)->subscribe({t::kTelemetry});
    auto p = log.producer();
    for (int64_t seq = 1; seq <= kPerCar; ++seq) {
      for (int car = 0; car < kCars; ++car) {
        const auto m = telemetry(car, seq);
        log::OutRecord r;
        r.topic = t::kTelemetry;
        r.key = m.car;
        codec::encode_avro_telemetry(m, 1, r.value);
        p->send(std::move(r));
      }
      ASSERT_EQ(p->flush(5s), 0);
    }
  }

  int64_t stored() const { return metrics.value("fleettwin_telemetry_stored_total"); }
  bool wait_stored(int64_t n) const {
    for (int i = 0; i < 3000 && stored() < n; ++i) std::this_thread::sleep_for(10ms);
    return stored() == n;
  }

  const fleettwin::testing::TempDir dir{"lagging"};
  const std::string db = dir.file("s.db");
  log::MemoryLog log;
  core::Metrics metrics;
  core::Histogram latency;
};

// The required test: the first model trains for longer than the log's buffer takes to fill (128 records of
// fleet.telemetry; 2,000 events arrive meanwhile, 20 times the 100 events the stage may hold for it), and
// every event is stored while it trains. Every event is accounted for once: none is scored (the training
// fails when released), each is counted unscored.
TEST_F(LaggingConsumer, AModelTrainingLongerThanTheLogsBufferDoesNotStopStorage) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> trainings{0};
  stages::ScoreStage::Options options;
  options.warmup_ms = 5'000;
  options.held_max_events = 100;
  auto score = std::make_unique<stages::StageRunner>(
      std::make_unique<stages::ScoreStage>(
          options, nullptr, metrics, registry::TelemetryReader(),
          [&trainings, released](const ml::TrainingData&, std::stop_token) -> stages::TrainedModel {
            ++trainings;
            released.wait();
            throw std::runtime_error("no model here");
          }),
      log, metrics);
  auto sink = sink_runner();
  score->start();
  sink->start();
  produce({"fleettwin.score", "fleettwin.sink"});
  EXPECT_TRUE(wait_stored(kEvents));  // all of it, while the model still trains
  EXPECT_EQ(trainings.load(), 1);
  EXPECT_TRUE(score->stage().busy());
  EXPECT_TRUE(score->running());

  release.set_value();
  score->request_drain();
  score->join();
  sink->request_drain();
  sink->join();
  EXPECT_EQ(score->error(), "");
  EXPECT_EQ(sink->error(), "");
  EXPECT_EQ(metrics.value("fleettwin_score_scored_total"), 0);
  EXPECT_EQ(metrics.value("fleettwin_score_unscored_total"), kEvents);
  store::SqliteStore check(db);
  EXPECT_EQ(check.history_stats().distinct, kEvents);
}

/// A consumer of derived data whose batches block until released: a score stage scoring slowly.
class BlockedDerivedStage final : public stages::Stage {
 public:
  explicit BlockedDerivedStage(std::shared_future<void> released) : _released(std::move(released)) {}
  const stages::StageDescriptor& descriptor() const override {
    static const stages::StageDescriptor kDescriptor{"derived", {t::kTelemetry}, {}, {},
                                                     "test",    "test",          {}, /*may_lag=*/true};
    return kDescriptor;
  }
  void process(const std::vector<log::Record>& batch, log::Producer&) override {
    _released.wait();
    read += static_cast<int64_t>(batch.size());
  }
  void skipped(int64_t count) override { skipped_total += count; }

  std::atomic<int64_t> read{0};
  std::atomic<int64_t> skipped_total{0};

 private:
  std::shared_future<void> _released;
};

// The rule underneath: the stage thread itself stuck far longer than the log's buffer lasts. Its group may
// lag, so the full partitions evict past it; storage goes on; when it resumes it skips ahead, and what it
// read plus what it skipped is every record.
TEST_F(LaggingConsumer, AStuckConsumerOfDerivedDataIsEvictedPastAndCountsWhatItSkipped) {
  std::promise<void> release;
  auto stage = std::make_unique<BlockedDerivedStage>(release.get_future().share());
  auto* derived = stage.get();
  stages::StageRunner runner(std::move(stage), log, metrics);
  auto sink = sink_runner();
  runner.start();
  sink->start();
  produce({"fleettwin.derived", "fleettwin.sink"});
  EXPECT_TRUE(wait_stored(kEvents));
  EXPECT_EQ(derived->read.load(), 0);
  EXPECT_GT(log.evicted_past_laggards(), 0);

  release.set_value();
  runner.request_drain();
  runner.join();
  sink->request_drain();
  sink->join();
  EXPECT_EQ(runner.error(), "");
  EXPECT_GT(derived->skipped_total.load(), 0);
  EXPECT_EQ(derived->read.load() + derived->skipped_total.load(), kEvents);
  EXPECT_EQ(metrics.value("fleettwin_records_skipped_total{stage=\"derived\"}"),
            derived->skipped_total.load());
  store::SqliteStore check(db);
  EXPECT_EQ(check.history_stats().distinct, kEvents);
}

// A forced stop while the first model trains does not wait for the training: the trainer is told to stop
// (its stop token), gives up, and the events held for it are counted as unscored.
TEST_F(LaggingConsumer, StoppingWhileTheFirstModelTrainsStopsTheTraining) {
  std::atomic<bool> started{false}, saw_stop{false};
  stages::ScoreStage::Options options;
  options.warmup_ms = 5'000;
  auto score = std::make_unique<stages::StageRunner>(
      std::make_unique<stages::ScoreStage>(
          options, nullptr, metrics, registry::TelemetryReader(),
          [&started, &saw_stop](const ml::TrainingData&, std::stop_token stop) -> stages::TrainedModel {
            started = true;  // a training that would never end on its own
            while (!stop.stop_requested()) std::this_thread::sleep_for(1ms);
            saw_stop = true;
            throw std::runtime_error("stopped");
          }),
      log, metrics);
  score->start();
  produce({"fleettwin.score"});
  const auto seen = [&] {
    return metrics.value("fleettwin_records_in_total{stage=\"score\"}") +
           metrics.value("fleettwin_records_skipped_total{stage=\"score\"}");
  };
  for (int i = 0; i < 3000 && (seen() < kEvents || !started.load()); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(started.load());
  EXPECT_TRUE(score->stage().busy());
  EXPECT_EQ(seen(), kEvents) << "lag " << score->lag() << " ends " << log.end_offsets(t::kTelemetry)[0] << ","
                             << log.end_offsets(t::kTelemetry)[1];
  score->request_stop();
  score->join();  // returns: the runner did not wait for the training to end by itself
  EXPECT_TRUE(saw_stop.load());
  EXPECT_EQ(score->error(), "");
  EXPECT_FALSE(score->stage().busy());
  EXPECT_EQ(metrics.value("fleettwin_score_unscored_total"), kEvents);
}

// A drain (the end of a run) waits for the first model, but not without end: once the input is done and only
// the training is left, the runner waits drain_busy_limit, then stops it; the held events go unscored.
TEST_F(LaggingConsumer, ADrainWaitsForTheTrainingOnlyUpToItsLimit) {
  std::atomic<bool> started{false};
  stages::ScoreStage::Options options;
  options.warmup_ms = 5'000;
  stages::RunnerOptions ro;
  ro.drain_busy_limit = 200ms;
  auto score = std::make_unique<stages::StageRunner>(
      std::make_unique<stages::ScoreStage>(
          options, nullptr, metrics, registry::TelemetryReader(),
          [&started](const ml::TrainingData&, std::stop_token stop) -> stages::TrainedModel {
            started = true;  // a training that would never end on its own
            while (!stop.stop_requested()) std::this_thread::sleep_for(1ms);
            throw std::runtime_error("stopped");
          }),
      log, metrics, ro);
  score->start();
  produce({"fleettwin.score"});
  for (int i = 0; i < 3000 && !started.load(); ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(started.load());
  score->request_drain();
  score->join();  // returns: the limit passed, the training was stopped
  EXPECT_EQ(score->error(), "");
  EXPECT_FALSE(score->stage().busy());
  EXPECT_EQ(metrics.value("fleettwin_score_scored_total"), 0);
  EXPECT_EQ(metrics.value("fleettwin_score_unscored_total"), kEvents);
}

}  // namespace
