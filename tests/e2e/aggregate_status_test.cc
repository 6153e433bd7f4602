// Issue 19 item 1 on the embedded pipeline: `up` with a definition grouped by health status (each event under
// the status its own score gave it) beside one per fleet. The simulator's failing cars give warnings and,
// once their alerts open, anomalies (the score stage marks the scores of a car in alert), the score stage's
// warm-up leaves the first minutes unscored (unknown), and every closed window's statuses add up to the
// fleet's count of that window.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "store/sqlite/sqlite_store.h"
#include "support/process.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;

namespace {

constexpr const char* kDefinitions = R"(aggregates:
  - name: fleet_1m
    group: fleet
    window: 1m
    grace: 5s
    signals:
      speed: [max]
  - name: status_1m
    group: attribute
    attribute: status
    window: 1m
    grace: 5s
    signals:
      coolant_temp: [max]
)";

std::map<std::string, std::map<int64_t, int64_t>> counts(const std::string& data, const char* name) {
  fleettwin::store::SqliteStore store((fs::path(data) / "fleettwin.db").string());
  fleettwin::store::AggregateQuery q;
  q.aggregate = name;
  q.limit = 1'000'000;
  std::map<std::string, std::map<int64_t, int64_t>> out;  // group -> window start -> count
  for (const auto& row : store.aggregates(q)) out[row.group][row.window_start_ms] = row.count;
  return out;
}

}  // namespace

TEST(AggregateStatusE2E, UpGroupsEventsByTheStatusOfTheirScoreAndTheyAddUpToTheFleet) {
  const fleettwin::testing::TempDir tmp{"e2e-aggregate-status"};
  const fs::path dir = tmp.path();
  std::ofstream(dir / "definitions.yaml") << kDefinitions;
  // Many failures, so that scores above their threshold (warnings) come within the run. Under --fast the
  // first model's training takes seconds of wall time, minutes of the fleet's events: room for them to wait.
  std::ofstream(dir / "config.yaml") << "aggregate:\n  definitions: " << (dir / "definitions.yaml").string()
                                     << "\n  status_held_per_car: 100000\n  status_held_max: 1000000"
                                     << "\nsim:\n  failure_rate: 2\n  failure_ramp: 30s\n";
  const std::string data = (dir / "data").string();
  const auto r = fleettwin::testing::run(
      FLEETTWIN_BIN, {"up", "--fast", "--cars", "200", "--interval", "1s", "--duration", "20m", "--seed", "3",
                      "--config", (dir / "config.yaml").string(), "--data-dir", data, "--registry-listen",
                      "127.0.0.1:0", "--http", "127.0.0.1:0"});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto fleet = counts(data, "fleet_1m");
  const auto status = counts(data, "status_1m");
  ASSERT_EQ(fleet.size(), 1U);
  ASSERT_GE(fleet.at("fleet").size(), 15U);
  // ok (scored below the threshold), warning (above it), anomaly (the car in alert after the event: with this
  // failure rate, cars alert within the run), unknown (the warm-up's events, before any model).
  for (const char* s : {"ok", "warning", "anomaly", "unknown"}) {
    ASSERT_TRUE(status.contains(s)) << s << "\n" << r.out;
  }
  for (const auto& [group, windows] : status)
    EXPECT_TRUE(group == "ok" || group == "warning" || group == "anomaly" || group == "unknown") << group;
  // A status's window closes with that status's event time: up to the last window every status has closed,
  // each of them has closed every earlier window it had events in.
  int64_t bound = INT64_MAX;
  for (const auto& [group, windows] : status) bound = std::min(bound, windows.rbegin()->first);
  // (`unknown` ends with the warm-up, so its last window, which no later unknown event closes, bounds this.)
  // Beyond, a status's window may still be open, never counted twice: the sum is at most the fleet's.
  int64_t checked = 0;
  for (const auto& [start, count] : fleet.at("fleet")) {
    int64_t sum = 0;
    for (const auto& [group, windows] : status)
      if (const auto it = windows.find(start); it != windows.end()) sum += it->second;
    EXPECT_LE(sum, count) << "window " << start;
    if (start >= bound) continue;
    EXPECT_EQ(sum, count) << "window " << start;
    ++checked;
  }
  EXPECT_GE(checked, 3);
  // Scored events are most of the run: the ok windows hold more events than the unknown ones.
  int64_t ok = 0, unknown = 0;
  for (const auto& [start, c] : status.at("ok")) ok += c;
  for (const auto& [start, c] : status.at("unknown")) unknown += c;
  EXPECT_GT(ok, unknown);
}
