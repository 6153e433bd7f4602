// Issue 19 item 1 for real: windows grouped by health status (`attribute: status`) on a Kafka 4.x broker, two
// `fleettwin aggregate` copies (the range assignor: a copy holds a partition's events and its scores), a
// `fleettwin score` role that trains its first model from the warm-up, and one aggregate copy SIGKILLed while
// it holds events waiting for their scores (Stage::limit_commit keeps their offsets uncommitted) and has
// windows counted (fleet.aggregates.state), then started again.
//
// Two fleets, one after the other. The first is scored and counted; the score role is stopped, and the second
// fleet's events reach the aggregate copies with no score to match: they are held. Copy A is killed then, and
// started again, and the score role too: it scores the second fleet, and the copies count it. The windows of
// each status must equal what the stored history says (each event of fleet.telemetry under the status of its
// own record on fleet.scores, core::score_status, `unknown` without one): every event counted once, under its
// own status, as a run without the kill would; and each window's statuses add up to the fleet's window.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "codec/avro.h"
#include "codec/schemas.h"
#include "core/topics.h"
#include "core/twin.h"
#include "log/kafka/kafka_log.h"
#include "support/process.h"
#include "support/roles.h"
#include "support/status_windows.h"

using namespace std::chrono_literals;
using namespace fleettwin;
using namespace fleettwin::testing;
namespace t = core::topics;

namespace {

/// The run's history against its windows: every status seen (ok and warning from the scores, unknown from the
/// warm-up, anomaly from the failing cars' alerts), and at least four whole minutes added up.
void check_windows(TopicRecords& history) {
  WindowCounts expected;
  add_expected_windows(history[t::kTelemetry], history[t::kScores], "", expected);
  auto checked = check_status_windows(expected, history[t::kAggregates]);
  for (const char* s : {"ok", "warning", "anomaly", "unknown"})
    EXPECT_GT(checked[s], 0) << s << ": " << describe(expected);
  EXPECT_GE(checked["whole"], 4) << describe(expected);
}

}  // namespace

TEST(AggregateRole, StatusWindowsSurviveAKillWhileEventsWaitForTheirScores) {
  Service kafka(FLEETTWIN_SOURCE_DIR, "kafka");
  const TempDir dir("aggregate-status-roles");
  const auto registry = start_registry(kBin, dir);
  {
    std::ofstream defs(dir.file("aggregates.yaml"));
    defs << "aggregates:\n  - name: status_1m\n    group: attribute\n    attribute: status\n    window: 1m\n"
            "    grace: 5s\n  - name: fleet_1m\n    group: fleet\n    window: 1m\n    grace: 5s\n";
  }
  // Read by every role from the environment (docs/configuration.md). The held bounds well above the run, so
  // no event goes `unknown` for want of room (the one choice of the matcher that depends on timing).
  ::setenv("FLEETTWIN_AGGREGATE_DEFINITIONS", dir.file("aggregates.yaml").c_str(), 1);
  ::setenv("FLEETTWIN_AGGREGATE_FLUSH_INTERVAL", "1s", 1);
  ::setenv("FLEETTWIN_AGGREGATE_STATUS_HELD_PER_CAR", "100000", 1);
  ::setenv("FLEETTWIN_AGGREGATE_STATUS_HELD_MAX", "1000000", 1);
  // The score role trains its first model on 2 minutes of the first fleet (few epochs: seconds of wall time).
  ::setenv("FLEETTWIN_ML_WARMUP_IN_ROLE", "true", 1);
  ::setenv("FLEETTWIN_ML_WARMUP", "2m", 1);
  ::setenv("FLEETTWIN_ML_EPOCHS", "4", 1);
  // The first fleet healthy (the model learns from it), the second with many failures, so that scores above
  // their threshold and alerts come within its minutes.
  ::setenv("FLEETTWIN_SIM_FAILURE_RAMP", "30s", 1);
  auto role = [&](const std::string& name, const std::string& log,
                  const std::vector<std::string>& extra = {}) {
    return spawn(kBin, role_args(name, kafka.address(), registry.url, extra), dir.file(log));
  };
  auto sim = [&](const std::string& prefix, const std::string& data, const char* failure_rate) {
    ::setenv("FLEETTWIN_SIM_ID_PREFIX", prefix.c_str(), 1);
    const pid_t pid = role("sim", data + ".log",
                           {"--cars", "100", "--interval", "1s", "--duration", "6m", "--fast", "--seed", "5",
                            "--failure-rate", failure_rate, "--data-dir", dir.file(data)});
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  };
  log::KafkaLog klog({{"bootstrap.servers", kafka.address()}});
  auto written = [&] {
    int64_t n = 0;
    for (const auto e : klog.end_offsets(t::kAggregates)) n += e;
    return n;
  };
  auto lag = [&](const char* group, const std::string& topic) { return log::group_lag(klog, group, topic); };
  const auto has_partitions = [&](const std::string& log) {
    return eventually(
        [&] { return read_file(dir.file(log)).find("restored for partitions") != std::string::npos; }, 120s);
  };

  const pid_t process = role("process", "process.log");
  pid_t score = role("score", "score.log");
  pid_t aggregate_a = role("aggregate", "aggregate-a.log");
  const pid_t aggregate_b = role("aggregate", "aggregate-b.log");
  ASSERT_TRUE(has_partitions("aggregate-a.log")) << read_file(dir.file("aggregate-a.log"));
  ASSERT_TRUE(has_partitions("aggregate-b.log")) << read_file(dir.file("aggregate-b.log"));

  // The first fleet: scored (after the warm-up's model) and counted; nothing is held once it is all scored.
  ASSERT_TRUE(sim("first-", "sim1", "0")) << read_file(dir.file("sim1.log"));
  ASSERT_TRUE(eventually(
      [&] {
        return lag("fleettwin.process", t::kTelemetryRaw) == 0 &&
               lag("fleettwin.score", t::kTelemetry) == 0 && lag("fleettwin.aggregate", t::kTelemetry) == 0 &&
               lag("fleettwin.aggregate", t::kScores) == 0;
      },
      240s))
      << read_file(dir.file("score.log")) << read_file(dir.file("aggregate-a.log"));
  EXPECT_EQ(stop(score), 0) << read_file(dir.file("score.log"));

  // The second fleet, with no score role: the copies read its events and hold them, uncommitted.
  ASSERT_TRUE(sim("second-", "sim2", "6")) << read_file(dir.file("sim2.log"));
  ASSERT_TRUE(eventually([&] { return lag("fleettwin.process", t::kTelemetryRaw) == 0; }, 120s));
  ASSERT_TRUE(eventually([&] { return lag("fleettwin.aggregate", t::kTelemetry) > 0; }, 60s))
      << "the held events' offsets were committed";
  std::this_thread::sleep_for(2s);  // both copies read the second fleet (what they do not read, waits too)
  EXPECT_GT(lag("fleettwin.aggregate", t::kTelemetry), 0);
  EXPECT_EQ(stop(aggregate_a, SIGKILL), -SIGKILL);
  const int64_t at_kill = written();
  aggregate_a = role("aggregate", "aggregate-a2.log");
  // Running before anything stops it (a role stopped while it starts has no handler for the signal yet).
  ASSERT_TRUE(has_partitions("aggregate-a2.log")) << read_file(dir.file("aggregate-a2.log"));
  score = role("score", "score2.log");  // loads the model from fleet.models and scores the second fleet

  ASSERT_TRUE(eventually(
      [&] {
        return lag("fleettwin.score", t::kTelemetry) == 0 && lag("fleettwin.aggregate", t::kTelemetry) == 0 &&
               lag("fleettwin.aggregate", t::kScores) == 0 &&
               lag("fleettwin.aggregate", t::kAggregatesPartials) == 0;
      },
      240s))
      << read_file(dir.file("score2.log")) << read_file(dir.file("aggregate-a2.log"));
  // The last merges and revisions: fleet.aggregates stops growing.
  for (int64_t before = -1; before != written();) {
    before = written();
    std::this_thread::sleep_for(3s);
  }
  expect_clean_stops(dir, {{score, "score2.log"},
                           {aggregate_a, "aggregate-a2.log"},
                           {aggregate_b, "aggregate-b.log"},
                           {process, "process.log"},
                           {registry.pid, "registry.log"}});
  EXPECT_LT(at_kill, written()) << "the second fleet's windows were counted before the kill";

  TopicRecords history =
      read_topics(klog, {t::kTelemetry, t::kScores, t::kAggregates}, "aggregate-status-check");
  EXPECT_EQ(static_cast<int64_t>(history[t::kAggregates].size()), written());
  EXPECT_EQ(history[t::kTelemetry].size(), 2U * 100 * 360);  // two fleets of 100 cars, 6 minutes at 1 s
  check_windows(history);
}
