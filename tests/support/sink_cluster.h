#pragma once

// Kafka -> sink -> a real database, as the sink integration tests of each store run it (sink_mongo_test.cc,
// sink_postgres_test.cc): a Kafka broker, the store's server, a schema registry and the process and twin
// roles as `fleettwin` processes, the simulator and the sink started by the test; plus the checks they share.
// Header-only; test main thread.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <regex>
#include <string>
#include <vector>

#include "core/signals.h"
#include "store/twin_store.h"
#include "support/process.h"
#include "support/roles.h"
#include "support/temp_dir.h"

namespace fleettwin::testing {

/// Simulated seconds of every car's run: 5 minutes at 1 s, so each car sends seq 1..kSinkRunSeconds.
constexpr int64_t kSinkRunSeconds = 300;

inline bool alive(pid_t pid) { return waitpid(pid, nullptr, WNOHANG) == 0; }

/// Kafka, the store's server (`scripts/services/<store_service>`), a schema registry and the process and twin
/// roles, plus helpers to start the others. One per test: each test has its own topics and database. The
/// test sets `sink_store_args` (e.g. {"--postgres", uri}) before start_sink.
class SinkCluster {
 public:
  SinkCluster(const std::string& name, const std::string& store_service)
      : kafka(FLEETTWIN_SOURCE_DIR, "kafka"), store(FLEETTWIN_SOURCE_DIR, store_service), dir(name) {
    const auto r = start_registry(kBin, dir);
    registry = r.pid;
    url = r.url;
    process = role("process", "process.log");
    twin = role("twin", "twin.log");
  }
  ~SinkCluster() {
    for (pid_t p : {sink, sim, process, twin, registry})
      if (p > 0 && alive(p)) stop(p, SIGKILL);
  }
  SinkCluster(const SinkCluster&) = delete;
  SinkCluster& operator=(const SinkCluster&) = delete;

  std::string path(const std::string& name) const { return dir.file(name); }
  pid_t role(const std::string& name, const std::string& log, const std::vector<std::string>& extra = {}) {
    return spawn(kBin, role_args(name, kafka.address(), url, extra), path(log));
  }
  pid_t start_sink(const std::string& log) {
    std::vector<std::string> args = sink_store_args;
    args.insert(args.end(), {"--data-dir", path("sink")});
    return role("sink", log, args);
  }
  pid_t start_sim(int64_t cars) {
    return role("sim", "sim.log",
                {"--cars", std::to_string(cars), "--interval", "1s", "--duration",
                 std::to_string(kSinkRunSeconds) + "s", "--fast", "--data-dir", path("sim")});
  }
  /// Waits for the simulator to finish; true if it exited 0.
  bool sim_finished() {
    int status = 0;
    waitpid(sim, &status, 0);
    sim = -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  /// Stops the roles cleanly; every one must exit 0.
  void stop_roles() {
    EXPECT_EQ(stop(sink), 0) << read_file(path("sink.log"));
    EXPECT_EQ(stop(process), 0) << read_file(path("process.log"));
    EXPECT_EQ(stop(twin), 0) << read_file(path("twin.log"));
    EXPECT_EQ(stop(registry), 0) << read_file(path("registry.log"));
    sink = process = twin = registry = -1;
  }

  Service kafka;
  Service store;
  TempDir dir;
  std::vector<std::string> sink_store_args;
  std::string url;
  pid_t registry = -1, process = -1, twin = -1, sink = -1, sim = -1;
};

/// The numbers after `label` in a role's progress lines ("... | stored N | lag L"), in order.
inline std::vector<int64_t> progress_series(const std::string& log, const std::string& label) {
  std::vector<int64_t> out;
  const std::regex line("\\| " + label + " ([0-9,]+)");
  for (std::sregex_iterator it(log.begin(), log.end(), line), end; it != end; ++it) {
    std::string digits = (*it)[1];
    std::erase(digits, ',');
    out.push_back(std::stoll(digits));
  }
  return out;
}

inline int64_t last_of(const std::string& log_path, const std::string& label) {
  const auto s = progress_series(read_file(log_path), label);
  return s.empty() ? -1 : s.back();
}

/// Waits (up to `drain`) until every role has consumed everything (progress lines: lag 0), then until every
/// twin has reached its car's last seq and the store holds all `cars * kSinkRunSeconds` rows; `stats` are
/// its counts then. Twins are polled every `poll`, counts every `count_poll` (on FerretDB each such query
/// scans a collection, and polling faster would slow the sink under test).
inline void wait_for_everything(SinkCluster& d, store::TwinStore& check, int64_t cars,
                                store::HistoryStats& stats, std::chrono::seconds drain,
                                std::chrono::seconds poll, std::chrono::seconds count_poll) {
  using namespace std::chrono_literals;
  ASSERT_TRUE(eventually(
      [&] {
        return last_of(d.path("process.log"), "lag") == 0 && last_of(d.path("twin.log"), "lag") == 0 &&
               last_of(d.path("sink.log"), "lag") == 0;
      },
      drain))
      << read_file(d.path("sink.log"));
  store::TwinQuery all;
  all.limit = cars + 1;
  store::TwinQuery lagging = all;
  lagging.limit = 1;
  lagging.filter = store::parse_filter("reported.seq != " + std::to_string(kSinkRunSeconds));
  // Twins arrive up to a twin flush interval after the last event. Waited for as long as the drain: a role's
  // first progress line, printed before its consumer has partitions, reads "lag 0" too, so right after a
  // restart the wait above can pass with the backlog still ahead (a restarted sink then failed this at 90 s
  // with 40,000 rows to go while still storing 4,000 a second).
  ASSERT_TRUE(eventually(
      [&] {
        return static_cast<int64_t>(check.list_twins(all).size()) >= cars &&
               check.list_twins(lagging).empty();
      },
      drain, poll))
      << read_file(d.path("sink.log"));
  const int64_t expected = cars * kSinkRunSeconds;
  ASSERT_TRUE(eventually(
      [&] {
        stats = check.history_stats();
        return stats.rows >= expected;
      },
      120s, count_poll))
      << "stored " << stats.rows << " of " << expected << " rows\n"
      << read_file(d.path("sink.log"));
}

/// The kill scenario: starts the sink (log sink1.log) and the simulator of `cars`, kills the sink with
/// SIGKILL while it is in full swing (a tenth of the run stored, by its own progress lines, once a second; it
/// writes and commits a batch at a time, so the kill lands between a write and its offset commit or in the
/// middle of one), starts it again (log sink.log) and waits until the new one stores rows, which it must
/// within a minute. Fails the test (fatally) otherwise.
inline void kill_sink_mid_run(SinkCluster& d, int64_t cars) {
  using namespace std::chrono_literals;
  d.sink = d.start_sink("sink1.log");
  d.sim = d.start_sim(cars);
  int64_t rows_at_kill = 0;
  ASSERT_TRUE(eventually(
      [&] {
        rows_at_kill = last_of(d.path("sink1.log"), "stored");
        return rows_at_kill >= cars * kSinkRunSeconds / 10;
      },
      180s))
      << read_file(d.path("sink1.log"));
  EXPECT_EQ(stop(d.sink, SIGKILL), -SIGKILL);
  d.sink = -1;
  ASSERT_LT(rows_at_kill, cars * kSinkRunSeconds) << "the run was over before the kill";
  const auto restarted = std::chrono::steady_clock::now();
  d.sink = d.start_sink("sink.log");
  ASSERT_TRUE(eventually([&] { return last_of(d.path("sink.log"), "stored") > 0; }, 60s))
      << read_file(d.path("sink.log"));
  std::fprintf(stderr, "restarted sink stored its first rows after %lld ms\n",
               static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now() - restarted)
                                          .count()));
}

/// Equal, with NaN (a missing signal, stored as null) equal to NaN.
inline bool same(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

/// `stored` is the stored telemetry of twin `t`'s last event: same seq, time, position and signal values.
inline ::testing::AssertionResult is_last_event(const core::Twin& t, const store::TelemetryRow* stored) {
  if (stored == nullptr) return ::testing::AssertionFailure() << t.id << ": no telemetry stored";
  const auto& e = stored->t;
  if (e.seq != t.reported.seq || e.ts != t.reported.ts || !same(e.lat, t.reported.lat) ||
      !same(e.lon, t.reported.lon)) {
    return ::testing::AssertionFailure()
           << t.id << ": twin at seq " << t.reported.seq << " ts " << t.reported.ts
           << ", last stored event at seq " << e.seq << " ts " << e.ts;
  }
  for (size_t i = 0; i < core::kSignalCount; ++i) {
    if (!same(e.values[i], t.reported.values[i])) {
      return ::testing::AssertionFailure()
             << t.id << ": " << core::kSignals[i].name << " is " << t.reported.values[i] << " in the twin, "
             << e.values[i] << " in its last event";
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace fleettwin::testing
