// Item 2 of issue 16: offline means the car is silent, not the pipeline. The rule (stages/twin/liveness.h) on
// its own, then the twin stage on the embedded log behind a real process stage, with a stage downstream
// stalled for longer than the offline timeout, with one car really silent, and with the whole fleet silent.

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "codec/json.h"
#include "core/clock.h"
#include "core/metric_catalog.h"
#include "core/topics.h"
#include "log/memory/memory_log.h"
#include "stages/process/process_stage.h"
#include "stages/twin/liveness.h"
#include "stages/twin/twin_stage.h"

using namespace fleettwin;
using namespace std::chrono_literals;
namespace t = core::topics;

TEST(Liveness, EventTimeMovesItButNeverPastTheClock) {
  stages::Liveness l;
  EXPECT_EQ(l.now(5000), 5000);  // nothing seen yet: the clock
  l.event(1000);
  l.event(900);  // older: no step back
  EXPECT_EQ(l.now(5000), 1000);
  l.event(9000);  // a device clock running ahead
  EXPECT_EQ(l.now(5000), 5000);
}

TEST(Liveness, QuietTimeCountsOnlyWhileThePipelineIsSeenFlowing) {
  stages::Liveness l(5000);
  l.event(1000);
  l.observe(0, 1'000'000, true);
  l.observe(1000, 1'000'000, true);  // flowing at both looks: one second of quiet counts
  EXPECT_EQ(l.now(1'000'000), 2000);
  l.observe(2000, 1'000'000, false);  // stalled at this look: the second before it does not count
  l.observe(60'000, 1'000'000, false);
  l.observe(61'000, 1'000'000, true);  // flowing again, but not at the look before
  EXPECT_EQ(l.now(1'000'000), 2000);
  l.observe(62'000, 1'000'000, true);
  EXPECT_EQ(l.now(1'000'000), 3000);
  // Two looks a minute apart: the stage itself was stalled in between; at most max_gap counts.
  l.observe(122'000, 1'000'000, true);
  EXPECT_EQ(l.now(1'000'000), 8000);
  // Quiet time does not run past the clock (--fast: the simulated time).
  l.observe(127'000, 9000, true);
  EXPECT_EQ(l.now(1'000'000), 9000);
  l.event(20'000);  // event time still moves it
  EXPECT_EQ(l.now(1'000'000), 20'000);
}

namespace {

/// Three cars behind a process stage and a twin stage on the embedded log, a sink-like group on
/// fleet.telemetry that the test stalls and releases, and a reader of everything the twin stage wrote.
class TwinLiveness : public ::testing::Test {
 protected:
  static constexpr int64_t kOfflineMs = 2000;
  const std::vector<std::string> kCars{"car-00001", "car-00002", "car-00003"};

  void SetUp() override {
    log.create_topic(t::kTelemetryRaw, {.partitions = 1, .capacity = 1 << 20});
    log.create_topic(t::kTelemetry, {.partitions = 1, .capacity = 16});  // a stalled reader blocks process
    sink->subscribe({t::kTelemetry});
    twins->subscribe({t::kTwins});
    stages::RunnerOptions ro;
    ro.tick_interval = 20ms;
    ro.poll_timeout = 10ms;
    ro.batch_window = 1ms;
    process = std::make_unique<stages::StageRunner>(
        std::make_unique<stages::ProcessStage>(stages::ProcessStage::Options{.telemetry_schema_id = 1},
                                               catalog::builtin(), metrics),
        log, metrics, ro);
    stages::TwinStage::Links links;
    links.upstream_caught_up = [this] {
      return log::group_lag(log, "fleettwin.process", t::kTelemetryRaw) == 0;
    };
    twin = std::make_unique<stages::StageRunner>(
        std::make_unique<stages::TwinStage>(
            stages::TwinStage::Options{.offline_after_ms = kOfflineMs, .flush_interval_ms = 0}, clock,
            metrics, std::vector<stages::TwinSnapshot>{}, registry::TelemetryReader(), links),
        log, metrics, ro);
    process->start();
    twin->start();
  }

  void TearDown() override {
    twin->request_stop();
    process->request_stop();
    log.close();  // wakes a process stage blocked on the stalled topic
    twin->join();
    process->join();
  }

  /// One message of each car in `cars`, now, as the car sends it.
  void send(const std::vector<std::string>& cars) {
    for (const auto& car : cars) {
      core::Telemetry m;
      m.car = car;
      m.seq = ++seq[car];
      m.ts = core::wall_clock_ms();
      m.lat = 48.1;
      m.lon = 11.5;
      for (std::size_t i = 0; i < core::kSignalCount; ++i) m.values[i] = core::kSignals[i].min;
      std::string json;
      codec::encode_json(m, json);
      raw->send({t::kTelemetryRaw, car, json});
    }
    ASSERT_EQ(raw->flush(1s), 0);
  }

  /// The sink-like group keeps up (reads and commits everything written so far).
  void sink_keeps_up() {
    for (auto batch = sink->poll(1000, 1ms); !batch.empty(); batch = sink->poll(1000, 1ms))
      sink->commit(log::next_offsets(batch));
  }

  /// Reads what the twin stage wrote since the last call: per car, the latest online flag and whether any
  /// record said offline.
  void read_twins() {
    core::Twin twin_doc;
    for (auto batch = twins->poll(10000, 1ms); !batch.empty(); batch = twins->poll(10000, 1ms))
      for (const auto& r : batch) {
        ASSERT_TRUE(codec::twin_from_json(r.value, twin_doc, nullptr));
        online[twin_doc.id] = twin_doc.online;
        if (!twin_doc.online) went_offline.insert(twin_doc.id);
      }
  }

  /// Cars send every 50 ms (those in `cars`) for `d`, the sink keeping up or not.
  void run_for(std::chrono::milliseconds d, const std::vector<std::string>& cars, bool sink_up) {
    for (const auto until = std::chrono::steady_clock::now() + d; std::chrono::steady_clock::now() < until;) {
      send(cars);
      if (sink_up) sink_keeps_up();
      read_twins();
      std::this_thread::sleep_for(50ms);
    }
  }

  /// Keeps `cars` sending (the sink up) until `done`, at most 20 s; false on the deadline.
  template <class F>
  bool run_until(const std::vector<std::string>& cars, F done) {
    for (const auto until = std::chrono::steady_clock::now() + 20s;
         std::chrono::steady_clock::now() < until;) {
      run_for(50ms, cars, true);
      if (done()) return true;
    }
    return false;
  }

  core::Metrics metrics;
  core::WallClock clock;
  log::MemoryLog log;
  std::unique_ptr<log::Producer> raw = log.producer();
  std::unique_ptr<log::Consumer> sink = log.consumer("fleettwin.sink");
  std::unique_ptr<log::Consumer> twins = log.consumer("check.twins");
  std::unique_ptr<stages::StageRunner> process, twin;
  std::map<std::string, int64_t> seq;
  std::map<std::string, bool> online;
  std::set<std::string> went_offline;
};

}  // namespace

TEST_F(TwinLiveness, AStalledStageMarksNoCarOffline) {
  ASSERT_TRUE(run_until(kCars, [&] { return online.size() == 3; }));
  // The sink stops committing for two offline timeouts while the cars go on sending: fleet.telemetry fills,
  // the process stage blocks and falls behind on the raw topic, and the twin stage's own input runs dry.
  const int64_t twin_in = twin->records_in();
  run_for(std::chrono::milliseconds(2 * kOfflineMs), kCars, false);
  EXPECT_GT(log::group_lag(log, "fleettwin.process", t::kTelemetryRaw), 0)
      << "the stall did not reach process";
  EXPECT_LT(twin->records_in() - twin_in, 3 * 2 * kOfflineMs / 50) << "the twin stage was not starved";
  EXPECT_EQ(metrics.value(core::metric::kCarsOnline), 3);
  // Released: everything the cars sent meanwhile flows through, and no car was ever marked offline.
  run_for(std::chrono::milliseconds(kOfflineMs), kCars, true);
  EXPECT_TRUE(went_offline.empty()) << *went_offline.begin() << " was marked offline by a stall";
  EXPECT_EQ(metrics.value(core::metric::kCarsOnline), 3);
}

TEST_F(TwinLiveness, ASilentCarGoesOfflineWhileTheOthersTalk) {
  ASSERT_TRUE(run_until(kCars, [&] { return online.size() == 3; }));
  ASSERT_TRUE(run_until({kCars[0], kCars[1]}, [&] { return went_offline.contains(kCars[2]); }))
      << "a car silent while the pipeline flowed never went offline";
  EXPECT_FALSE(went_offline.contains(kCars[0]));
  EXPECT_FALSE(went_offline.contains(kCars[1]));
}

TEST_F(TwinLiveness, AFleetThatFallsSilentGoesOfflineEventually) {
  ASSERT_TRUE(run_until(kCars, [&] { return online.size() == 3; }));
  // Nobody sends any more; the pipeline is caught up, so wall time counts.
  ASSERT_TRUE(run_until({}, [&] { return went_offline.size() == 3; })) << "a silent fleet stayed online";
  EXPECT_EQ(metrics.value(core::metric::kCarsOnline), 0);
}
