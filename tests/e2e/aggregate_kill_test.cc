// Issue 19 item 3 on the embedded pipeline: `up` killed with SIGKILL mid-run and restarted on its data dir to
// the same end stores the same window results, per car and per group (fleet, site), as one uninterrupted
// run, each once. The windows open at the kill come back from the data dir's state table and the store's
// history (docs/architecture.md "State across restarts, embedded").
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>
#include <tuple>

#include "store/sqlite/sqlite_db.h"
#include "store/sqlite/sqlite_store.h"
#include "support/process.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// Short windows, so that many close within a few simulated minutes, with a sketch among the values.
constexpr const char* kDefinitions = R"(aggregates:
  - name: per_10s
    group: car
    window: 10s
    signals:
      speed: [mean, max]
  - name: per_1m
    group: car
    window: 1m
    grace: 5s
    signals:
      coolant_temp: [max, p95]
      battery_voltage: [min]
  - name: fleet_1m
    group: fleet
    window: 1m
    grace: 5s
    signals:
      speed: [mean, max, p95]
  - name: site_10s
    group: attribute
    attribute: site
    window: 10s
    signals:
      coolant_temp: [min]
)";

const std::vector<std::string> kRun{"--fast",     "--cars", "300",    "--interval", "1s",
                                    "--duration", "30m",    "--seed", "11"};
constexpr int64_t kStartMs = 1'767'225'600'000;  // both data dirs start at the same simulated time

class AggregateKill : public ::testing::Test {
 protected:
  const fleettwin::testing::TempDir tmp{"e2e-aggregate-kill"};
  const fs::path dir = tmp.path();

  void SetUp() override {
    std::ofstream(dir / "definitions.yaml") << kDefinitions;
    // A state saved every second: the kill finds saved states, rows stored beyond them and events counted
    // after them.
    std::ofstream(dir / "config.yaml")
        << "aggregate:\n  definitions: " << (dir / "definitions.yaml").string() << "\n  flush_interval: 1s\n";
  }

  /// A data dir whose simulated fleet starts at kStartMs (sim.state: cars, seed, interval, start), so that
  /// two runs put the same events in the same windows.
  std::string data_dir(const std::string& name) const {
    const auto data = dir / name;
    fs::create_directories(data);
    std::ofstream(data / "sim.state") << "300 11 1000 " << kStartMs << "\n";
    return data.string();
  }

  std::vector<std::string> up_args(const std::string& data) const {
    std::vector<std::string> args{"up"};
    args.insert(args.end(), kRun.begin(), kRun.end());
    args.insert(args.end(), {"--config", (dir / "config.yaml").string(), "--data-dir", data,
                             "--registry-listen", "127.0.0.1:0", "--http", "127.0.0.1:0"});
    return args;
  }

  void run_to_end(const std::string& data) const {
    const auto r = fleettwin::testing::run(FLEETTWIN_BIN, up_args(data));
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
};

using Window = std::tuple<std::string, std::string, int64_t>;  // aggregate, car, start

std::map<Window, fleettwin::store::AggregateRow> stored_windows(const std::string& data) {
  fleettwin::store::SqliteStore store((fs::path(data) / "fleettwin.db").string());
  std::map<Window, fleettwin::store::AggregateRow> out;
  for (const char* name : {"per_10s", "per_1m", "fleet_1m", "site_10s"}) {
    fleettwin::store::AggregateQuery q;
    q.aggregate = name;
    q.limit = 1'000'000;
    for (auto& row : store.aggregates(q)) out[{name, row.group, row.window_start_ms}] = std::move(row);
  }
  return out;
}

int64_t probe(const fs::path& file, const char* sql) {
  if (!fs::exists(file)) return 0;
  try {
    fleettwin::store::Db db(file.string());
    return db.query_int(sql);
  } catch (const std::exception&) {
    return 0;  // met while `up` creates the schema: try again
  }
}

}  // namespace

TEST_F(AggregateKill, AKilledUpAndItsRestartStoreTheUninterruptedRunsWindowsOnce) {
  const auto whole = data_dir("whole");
  run_to_end(whole);
  const auto expected = stored_windows(whole);
  // 300 cars x 30 minutes: about 179 closed 10 s windows and 29 closed minutes per car.
  ASSERT_GT(expected.size(), 300U * 200);
  // And the group windows: 29 closed fleet minutes, about 179 closed 10 s windows of the one site.
  int64_t group_windows = 0;
  for (const auto& [key, row] : expected)
    group_windows += std::get<1>(key) == "fleet" || std::get<1>(key) == "local";
  ASSERT_GT(group_windows, 29 + 170);

  const auto killed = data_dir("killed");
  const pid_t pid = fleettwin::testing::spawn(FLEETTWIN_BIN, up_args(killed), (dir / "killed.log").string());
  const auto db = fs::path(killed) / "fleettwin.db";
  const auto state = fs::path(killed) / "aggregate_state.sqlite";
  int64_t rows = 0, saved = 0;
  // Killed once every car has a saved state: the path under test. (A car with none is rebuilt from its
  // newest history only, which is exact for its open windows, not for results in flight at the kill.)
  for (int i = 0; i < 12000 && (rows < 50'000 || saved < 301); ++i) {
    std::this_thread::sleep_for(10ms);
    rows = probe(db, "SELECT coalesce(sum(rows), 0) FROM telemetry_gens");
    saved = probe(state, "SELECT count(*) FROM aggregate_state");
  }
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  waitpid(pid, &status, 0);
  const std::string log = fleettwin::testing::read_file((dir / "killed.log").string());
  ASSERT_TRUE(WIFSIGNALED(status)) << log;
  ASSERT_EQ(saved, 300 + 1) << log;  // the cars, and the group windows of the one source
  ASSERT_LT(rows, 300 * 1800) << "the run finished before it could be killed";
  const auto windows_at_kill = stored_windows(killed).size();
  ASSERT_LT(windows_at_kill, expected.size());

  run_to_end(killed);
  const auto got = stored_windows(killed);
  EXPECT_EQ(got.size(), expected.size()) << windows_at_kill << " windows stored at the kill";
  int64_t differ = 0;
  for (const auto& [key, want] : expected) {
    const auto it = got.find(key);
    if (it == got.end()) {
      ADD_FAILURE() << "missing " << std::get<0>(key) << " " << std::get<1>(key) << " " << std::get<2>(key);
      continue;
    }
    const auto& row = it->second;
    bool same = row.count == want.count && row.revision == want.revision &&
                row.window_end_ms == want.window_end_ms && row.values.size() == want.values.size();
    // A group's sum (and mean) adds its events in the order they came: the replay after the kill brings
    // them car by car, so the last bits may differ (docs/architecture.md "Duplicates and replays"); a car's
    // own windows, and every other function, are the same bit for bit.
    const bool group = std::get<0>(key) == "fleet_1m" || std::get<0>(key) == "site_10s";
    for (std::size_t i = 0; same && i < row.values.size(); ++i) {
      const double a = row.values[i].second, b = want.values[i].second;
      const bool close = group && std::abs(a - b) <= 1e-12 * std::abs(b);
      same = row.values[i].first == want.values[i].first &&
             (a == b || close || (std::isnan(a) && std::isnan(b)));
    }
    if (!same && ++differ <= 5)
      ADD_FAILURE() << std::get<0>(key) << " " << std::get<1>(key) << " " << std::get<2>(key) << ": count "
                    << row.count << " (uninterrupted " << want.count << "), revision " << row.revision;
  }
  EXPECT_EQ(differ, 0);
}
