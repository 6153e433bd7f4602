// Issue 19 item 3 for real: two `fleettwin aggregate` copies on a Kafka 4.x broker behind one process role,
// fed by `fleettwin sim`. One aggregate copy is killed with SIGKILL mid-run and started again; its cars'
// windows come back from fleet.aggregates.state, so every minute of every car is counted exactly once: each
// result on fleet.aggregates, replays included, is the same for the same (window, revision), and every full
// minute of a car counts its 60 events. The fleet's minutes too: each copy counts its partitions' share
// (saved with them), the partials on fleet.aggregates.partials are merged by one copy per group, and the
// newest result of every full fleet minute counts every car's 60 events, once.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>

#include "codec/schemas.h"
#include "core/topics.h"
#include "log/kafka/kafka_log.h"
#include "support/process.h"
#include "support/roles.h"

using namespace std::chrono_literals;
using namespace fleettwin;
using namespace fleettwin::testing;
namespace t = core::topics;

TEST(AggregateRole, AKilledCopyResumesFromTheChangelogAndCountsEveryEventOnce) {
  Service kafka(FLEETTWIN_SOURCE_DIR, "kafka");
  const TempDir dir("aggregate-roles");
  const auto registry = start_registry(kBin, dir);
  {
    std::ofstream defs(dir.file("aggregates.yaml"));
    defs << "aggregates:\n  - name: per_minute\n    group: car\n    window: 1m\n    signals:\n"
            "      speed: [mean, max]\n  - name: fleet_minute\n    group: fleet\n    window: 1m\n";
  }
  // Read by every role from the environment (docs/configuration.md).
  ::setenv("FLEETTWIN_AGGREGATE_DEFINITIONS", dir.file("aggregates.yaml").c_str(), 1);
  ::setenv("FLEETTWIN_AGGREGATE_FLUSH_INTERVAL", "1s", 1);
  auto role = [&](const std::string& name, const std::string& log,
                  const std::vector<std::string>& extra = {}) {
    return spawn(kBin, role_args(name, kafka.address(), registry.url, extra), dir.file(log));
  };
  const pid_t process = role("process", "process.log");
  pid_t aggregate_a = role("aggregate", "aggregate-a.log");
  const pid_t aggregate_b = role("aggregate", "aggregate-b.log");
  constexpr int kCars = 300;
  constexpr int kSeconds = 900;
  // The simulator starts once both copies hold partitions: a `--fast` run is over in seconds, and one that
  // started beside them was all aggregated (at 150,000 msg/s) in the second they got their partitions, before
  // the kill (a CI run, 2026-12-07).
  const auto has_partitions = [&](const std::string& log) {
    return eventually(
        [&] { return read_file(dir.file(log)).find("restored for partitions") != std::string::npos; }, 120s);
  };
  ASSERT_TRUE(has_partitions("aggregate-a.log")) << read_file(dir.file("aggregate-a.log"));
  ASSERT_TRUE(has_partitions("aggregate-b.log")) << read_file(dir.file("aggregate-b.log"));
  const pid_t sim = role("sim", "sim.log",
                         {"--cars", std::to_string(kCars), "--interval", "1s", "--duration",
                          std::to_string(kSeconds) + "s", "--fast", "--data-dir", dir.file("sim")});

  log::KafkaLog klog({{"bootstrap.servers", kafka.address()}});
  auto written = [&] {
    int64_t n = 0;
    for (const auto e : klog.end_offsets(t::kAggregates)) n += e;
    return n;
  };
  ASSERT_TRUE(eventually([&] { return written() > kCars; }, 180s)) << read_file(dir.file("aggregate-a.log"));
  EXPECT_EQ(stop(aggregate_a, SIGKILL), -SIGKILL);
  const int64_t at_kill = written();
  aggregate_a = role("aggregate", "aggregate-a2.log");
  // Running before anything stops it (a role stopped while it starts has no handler for the signal yet).
  ASSERT_TRUE(has_partitions("aggregate-a2.log")) << read_file(dir.file("aggregate-a2.log"));

  int sim_status = 0;
  waitpid(sim, &sim_status, 0);
  ASSERT_TRUE(WIFEXITED(sim_status) && WEXITSTATUS(sim_status) == 0) << read_file(dir.file("sim.log"));
  EXPECT_TRUE(eventually(
      [&] {
        return log::group_lag(klog, "fleettwin.process", t::kTelemetryRaw) == 0 &&
               log::group_lag(klog, "fleettwin.aggregate", t::kTelemetry) == 0 &&
               log::group_lag(klog, "fleettwin.aggregate", t::kAggregatesPartials) == 0;
      },
      300s))
      << read_file(dir.file("aggregate-a2.log"));
  expect_clean_stops(dir, {{aggregate_a, "aggregate-a2.log"},
                           {aggregate_b, "aggregate-b.log"},
                           {process, "process.log"},
                           {registry.pid, "registry.log"}});
  EXPECT_LT(at_kill, written()) << "the run was over before the kill";

  auto consumer = klog.consumer("aggregate-test-check");
  consumer->subscribe({t::kAggregates});
  std::map<std::string, std::string> by_revision;  // key|revision -> the record's value
  std::map<std::string, std::map<int64_t, codec::AggregateResult>> by_car;
  std::map<int64_t, codec::AggregateResult> fleet;  // window start -> the highest revision (the sink's rule)
  int64_t read = 0, replayed = 0;
  for (int empty = 0; empty < 10;) {
    auto batch = consumer->poll(10000, 500ms);
    empty = batch.empty() ? empty + 1 : 0;
    for (const auto& r : batch) {
      ++read;
      codec::AggregateResult a;
      std::string error;
      ASSERT_TRUE(codec::decode_avro_aggregate_result(r.value, a, nullptr, &error)) << error;
      EXPECT_EQ(r.key, codec::aggregate_result_key(a.aggregate, a.group, a.window_start));
      const auto [it, fresh] = by_revision.try_emplace(r.key + "|" + std::to_string(a.revision), r.value);
      if (!fresh) {
        ++replayed;
        EXPECT_EQ(it->second, r.value) << "a replay wrote another result for " << r.key;
      }
      if (a.aggregate == "fleet_minute") {
        // A merge's revision is the count of events merged: the same revision is the same result.
        EXPECT_EQ(a.revision, a.count) << r.key;
        auto& newest = fleet[a.window_start];
        if (a.revision > newest.revision) newest = a;
        continue;
      }
      EXPECT_EQ(a.revision, 1) << r.key;  // a car's events are in order: no window is revised
      by_car[a.group][a.window_start] = a;
    }
  }
  consumer->close();
  EXPECT_EQ(read, written());
  EXPECT_EQ(static_cast<int>(by_car.size()), kCars);
  int64_t full = 0;
  for (const auto& [car, windows] : by_car) {
    // The first minute is partial (the run starts on a whole second, not a whole minute); the last one is
    // still open. Every other one holds exactly the car's 60 events: none lost, none counted twice.
    EXPECT_GE(windows.size(), static_cast<std::size_t>(kSeconds / 60 - 2)) << car;
    for (auto it = std::next(windows.begin()); it != windows.end(); ++it) {
      EXPECT_EQ(it->second.count, 60) << car << " " << it->first;
      ++full;
    }
  }
  EXPECT_GT(full, static_cast<int64_t>(kCars) * 7);
  // The fleet's full minutes (not the first, partial one, nor the last, open one): every car's 60 events.
  ASSERT_GE(fleet.size(), static_cast<std::size_t>(kSeconds / 60 - 1));
  int64_t full_fleet = 0;
  for (auto it = std::next(fleet.begin()); it != std::prev(fleet.end()); ++it) {
    EXPECT_EQ(it->second.count, kCars * 60) << "fleet minute " << it->first;
    ++full_fleet;
  }
  EXPECT_GE(full_fleet, kSeconds / 60 - 3);
  std::printf("aggregate kill: %lld results read, %lld replayed identically, %lld full minutes checked\n",
              static_cast<long long>(read), static_cast<long long>(replayed), static_cast<long long>(full));
}
