#include "sim/feed/sim_source.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "catalog/catalog.h"
#include "codec/json.h"
#include "core/clock.h"
#include "core/topics.h"
#include "log/memory/memory_log.h"

using namespace fleettwin;
using namespace std::chrono_literals;
namespace t = core::topics;

namespace {

constexpr int64_t kStart = 1'700'000'000'000;

/// A fast (simulated clock) run of `cars` cars sending every second from kStart.
sim::SimSourceOptions fast_run(std::size_t cars) {
  sim::SimSourceOptions options;
  options.fast = true;
  options.fleet.cars = cars;
  options.fleet.interval_ms = 1000;
  options.fleet.start_ms = kStart;
  return options;
}

}  // namespace

// Without MQTT the simulator answers the cars' commands itself. An answer must reach the log while the
// simulator keeps running, not when 255 more answers (or the end of the run) push it out of a batch.
TEST(SimSource, AnswersACommandWhileItRuns) {
  log::MemoryLog mlog;
  core::SimClock clock(kStart);
  core::Metrics metrics;
  auto options = fast_run(20);
  options.fleet.failure_rate = 0;  // no alerts, so no other commands to answer
  sim::SimSource sim(options, mlog, &clock, metrics);
  sim.start();

  const core::Command c{"c1", "car-00007", "set_speed_limit", R"({"kmh": 77})", 1, 0, "pending"};
  auto producer = mlog.producer();
  producer->send(log::OutRecord{t::kCommands, c.car, codec::command_to_json(c), {}, -1, 0});
  ASSERT_EQ(producer->flush(1s), 0);

  auto acks = mlog.consumer("test");
  acks->subscribe({t::kCommandAcks});
  std::vector<log::Record> got;
  // The bound only ends a failed run; a passing one sees the answer within a few hundred milliseconds.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (got.empty() && std::chrono::steady_clock::now() < deadline) got = acks->poll(10, 100ms);
  const bool still_running = sim.running();
  const int64_t published = sim.published();
  sim.request_stop();
  sim.join();
  EXPECT_EQ(sim.error(), "");
  ASSERT_EQ(got.size(), 1u) << "no answer while the simulator ran (" << published << " messages published)";
  EXPECT_TRUE(still_running);
  EXPECT_EQ(got[0].key, "car-00007");
  core::CommandAck ack;
  ASSERT_TRUE(codec::command_ack_from_json(got[0].value, ack, nullptr));
  EXPECT_EQ(ack.id, "c1");
  EXPECT_EQ(ack.status, "acked");
  EXPECT_EQ(ack.reported.at("speed_limit_kmh"), "77");
}

// In real time as in fast mode, the simulator stops when the run's duration is over (`up --duration` ends).
TEST(SimSource, EndsAfterItsDurationInRealTime) {
  log::MemoryLog mlog;
  core::Metrics metrics;
  sim::SimSourceOptions options;
  options.fleet.cars = 3;
  options.fleet.interval_ms = 100;
  options.fleet.duration_ms = 1000;
  options.fleet.start_ms = core::wall_clock_ms();
  sim::SimSource sim(options, mlog, nullptr, metrics);
  sim.start();
  // The bound only ends a failed run; a passing one stops after about a second.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (sim.running() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(50ms);
  const bool ended = !sim.running();
  sim.request_stop();
  sim.join();
  EXPECT_TRUE(ended) << "still running a minute after its 1 s duration";
  EXPECT_EQ(sim.error(), "");
  EXPECT_EQ(sim.published(), 30);  // 3 cars x 10 messages
}

// sim.catalog: the simulated cars send their signals under the catalog's names (here the VSS ones).
TEST(SimSource, SendsUnderTheNamesOfItsCatalog) {
  log::MemoryLog mlog;
  core::SimClock clock(kStart);
  core::Metrics metrics;
  auto options = fast_run(4);
  options.fleet.duration_ms = 10'000;
  options.fleet.catalog = std::make_shared<const catalog::Catalog>(
      catalog::load_file(std::string(FLEETTWIN_SOURCE_DIR) + "/deploy/catalogs/vss.yaml"));
  options.fleet.upgraded_share = 0.5;
  sim::SimSource sim(options, mlog, &clock, metrics);
  sim.start();
  sim.join();
  ASSERT_EQ(sim.error(), "");
  auto consumer = mlog.consumer("test");
  consumer->subscribe({t::kTelemetryRaw});
  std::vector<log::Record> got;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (got.size() < 40 && std::chrono::steady_clock::now() < deadline)
    for (auto& r : consumer->poll(100, 100ms)) got.push_back(std::move(r));
  ASSERT_EQ(got.size(), 40u);
  int odometers = 0;
  for (const auto& r : got) {
    EXPECT_NE(r.value.find("\"Vehicle.Speed\":"), std::string::npos) << r.value;
    EXPECT_EQ(r.value.find("\"speed\":"), std::string::npos) << r.value;
    odometers += r.value.find("\"Vehicle.TraveledDistance\":") != std::string::npos ? 1 : 0;
  }
  EXPECT_EQ(odometers, 20);  // two of the four cars are upgraded, ten messages each
}
