// Issue 19's windows by health status with edge sites (issue 18): two edges (`up --fast` with the simulator,
// each scoring its cars with the model it trains from its own warm-up) replicate to one central Kafka through
// fleettwin's uplink, and a central `fleettwin aggregate --sites` role counts every site's events per minute
// by status, by site and for the fleet. Each window must hold exactly what the sites' copies on central say:
// every event of `<site>.fleet.telemetry` under the status of its own record on `<site>.fleet.scores`.
//
// What it guards: central partitions the copies by its own hash, so one central partition mixes cars of
// several of a site's partitions, and the uplink writes each topic in the order it read the site's
// partitions. Paired per central partition, a site's scores and events disagreed across cars, events were
// taken for unscored (`unknown`) and a score left at the head made every later event of its partition
// `unknown`. The uplink says each record's site partition (core::topics::kHeaderSitePartition), and the
// aggregate stage pairs per site partition.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/topics.h"
#include "log/kafka/kafka_log.h"
#include "support/process.h"
#include "support/roles.h"
#include "support/status_windows.h"
#include "support/temp_dir.h"

using namespace std::chrono_literals;
using namespace fleettwin;
using namespace fleettwin::testing;
namespace t = core::topics;

namespace {

constexpr int kCars = 40;
// Simulated, one message per car per second: 2 minutes of warm-up (unscored, `unknown`), then 6 scored ones,
// of which the last one or two may still be open when the edges stop (a window closes once events pass its
// end and the grace, and the run may end a few seconds into a minute).
constexpr int kSeconds = 480;

std::string site_topic(const std::string& site, const char* topic) { return site + "." + topic; }

}  // namespace

TEST(StatusSites, CentralCountsEverySitesEventsUnderTheStatusTheSiteScoredThem) {
  Service kafka(FLEETTWIN_SOURCE_DIR, "kafka");
  const TempDir dir("status-sites");
  KillOnExit left;  // a failed ASSERT stops every process of the test
  const auto registry = start_registry(kBin, dir);
  left.add(registry.pid);
  {
    std::ofstream defs(dir.file("aggregates.yaml"));
    defs << "aggregates:\n  - name: status_1m\n    group: attribute\n    attribute: status\n    window: 1m\n"
            "    grace: 5s\n  - name: site_1m\n    group: attribute\n    attribute: site\n    window: 1m\n"
            "    grace: 5s\n  - name: fleet_1m\n    group: fleet\n    window: 1m\n    grace: 5s\n";
  }
  // Read by every process from the environment (docs/configuration.md): the central role's definitions, the
  // held bounds well above the run (no event `unknown` for want of room), and the edges' first model trained
  // on their first 2 minutes in a few epochs; failures that reach their signature within 30 s, so that some
  // scores pass their threshold within the run.
  ::setenv("FLEETTWIN_AGGREGATE_DEFINITIONS", dir.file("aggregates.yaml").c_str(), 1);
  ::setenv("FLEETTWIN_AGGREGATE_FLUSH_INTERVAL", "1s", 1);
  ::setenv("FLEETTWIN_AGGREGATE_STATUS_HELD_PER_CAR", "100000", 1);
  ::setenv("FLEETTWIN_AGGREGATE_STATUS_HELD_MAX", "1000000", 1);
  ::setenv("FLEETTWIN_ML_WARMUP", "2m", 1);
  ::setenv("FLEETTWIN_ML_EPOCHS", "4", 1);
  ::setenv("FLEETTWIN_SIM_FAILURE_RAMP", "30s", 1);

  const pid_t central = left.add(spawn(
      kBin, role_args("aggregate", kafka.address(), registry.url, {"--sites"}), dir.file("aggregate.log")));
  ASSERT_TRUE(eventually(
      [&] {
        return read_file(dir.file("aggregate.log")).find("restored for partitions") != std::string::npos;
      },
      120s))
      << read_file(dir.file("aggregate.log"));

  const std::vector<std::string> sites = {"north", "south"};
  std::vector<pid_t> edges;
  for (std::size_t i = 0; i < sites.size(); ++i) {
    const auto& site = sites[i];
    // `up` with the simulator, scoring its own cars, replicating to central (no value holds a space).
    std::istringstream words(
        "up --fast --interval 1s --failure-rate 3 --http 127.0.0.1:0 --registry-listen "
        "127.0.0.1:0 --cars " +
        std::to_string(kCars) + " --duration " + std::to_string(kSeconds) + "s --seed " +
        std::to_string(7 + i) + " --id-prefix " + site + "- --data-dir " + dir.file(site) + " --uplink " +
        kafka.address() + " --site " + site + " --uplink-registry " + registry.url);
    const std::vector<std::string> args{std::istream_iterator<std::string>(words), {}};
    edges.push_back(left.add(spawn(kBin, args, dir.file(site + ".log"))));
  }
  for (std::size_t i = 0; i < sites.size(); ++i)
    EXPECT_EQ(stop(edges[i], 0), 0) << read_file(dir.file(sites[i] + ".log"));

  log::KafkaLog klog({{"bootstrap.servers", kafka.address()}});
  auto total = [&](const std::string& topic) {
    int64_t n = 0;
    for (const auto e : klog.end_offsets(topic)) n += e;
    return n;
  };
  // Each edge drained its spool before it exited: central holds every event of both sites.
  for (const auto& site : sites)
    EXPECT_EQ(total(site_topic(site, t::kTelemetry)), int64_t{kCars} * kSeconds)
        << read_file(dir.file(site + ".log"));
  auto caught_up = [&] {
    for (const auto& site : sites)
      for (const char* topic : {t::kTelemetry, t::kScores})
        if (log::group_lag(klog, "fleettwin.aggregate", site_topic(site, topic)) != 0) return false;
    return log::group_lag(klog, "fleettwin.aggregate", t::kAggregatesPartials) == 0;
  };
  ASSERT_TRUE(eventually(caught_up, 180s)) << read_file(dir.file("aggregate.log"));
  for (int64_t before = -1; before != total(t::kAggregates);) {  // the last merges and revisions
    before = total(t::kAggregates);
    std::this_thread::sleep_for(3s);
  }
  expect_clean_stops(dir, {{central, "aggregate.log"}, {registry.pid, "registry.log"}});

  std::vector<std::string> topics = {t::kAggregates};
  for (const auto& site : sites) {
    topics.push_back(site_topic(site, t::kTelemetry));
    topics.push_back(site_topic(site, t::kScores));
  }
  TopicRecords history = read_topics(klog, topics, "status-sites-check");
  WindowCounts expected;
  for (const auto& site : sites)
    add_expected_windows(history[site_topic(site, t::kTelemetry)], history[site_topic(site, t::kScores)],
                         site, expected);
  auto checked = check_status_windows(expected, history[t::kAggregates]);
  // Scored events, from both sites, and whole minutes whose statuses add up to the fleet's: at least the
  // closed scored minutes (6 less the 2 that may be open), and of each site every minute but those 2.
  EXPECT_GE(checked["ok"], 4) << describe(expected);
  EXPECT_GT(checked["warning"] + checked["anomaly"], 0) << describe(expected);
  for (const auto& site : sites) EXPECT_GE(checked[site], 6) << site << ": " << describe(expected);
  EXPECT_GE(checked["whole"], 4) << describe(expected);
}
