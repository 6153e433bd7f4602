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
#include <functional>
#include <regex>
#include <string>
#include <thread>
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
      : kafka(FLEETTWIN_SOURCE_DIR, "kafka"),
        store(FLEETTWIN_SOURCE_DIR, store_service),
        store_script(std::string(FLEETTWIN_SOURCE_DIR) + "/scripts/services/" + store_service),
        dir(name) {
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
  std::string store_script;  ///< scripts/services/<store_service>: pause, resume
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

/// Starts the sink (its log `sink_log`) and the simulator of `cars` and waits until the sink is in full
/// swing: a tenth of the run stored, by its own progress lines (once a second), `stored` the rows stored
/// then. Fails the test (fatally) when that takes over 3 minutes.
inline void start_until_tenth_stored(SinkCluster& d, int64_t cars, const std::string& sink_log,
                                     int64_t& stored) {
  using namespace std::chrono_literals;
  d.sink = d.start_sink(sink_log);
  d.sim = d.start_sim(cars);
  ASSERT_TRUE(eventually(
      [&] {
        stored = last_of(d.path(sink_log), "stored");
        return stored >= cars * kSinkRunSeconds / 10;
      },
      180s))
      << read_file(d.path(sink_log));
}

/// How long wait_for_everything waits for a store, and how often it polls it.
struct SinkWaits {
  std::chrono::seconds drain;
  std::chrono::seconds poll;
  std::chrono::seconds count_poll;
};

/// The end of every scenario: the simulator exits 0 (fatal failure otherwise), everything reaches `check`
/// (wait_for_everything), `between` runs the scenario's own checks while the roles still run, and the roles
/// stop cleanly. `stats` are the store's counts, for the store's own exactness checks.
inline void finish_run(SinkCluster& d, store::TwinStore& check, int64_t cars, store::HistoryStats& stats,
                       const SinkWaits& waits, const std::function<void()>& between) {
  ASSERT_TRUE(d.sim_finished()) << read_file(d.path("sim.log"));
  wait_for_everything(d, check, cars, stats, waits.drain, waits.poll, waits.count_poll);
  between();
  d.stop_roles();
}

/// The kill scenario: starts the sink (log sink1.log) and the simulator of `cars`, kills the sink with
/// SIGKILL while it is in full swing (start_until_tenth_stored; it writes and commits a batch at a time, so
/// the kill lands between a write and its offset commit or in the middle of one), starts it again (log
/// sink.log) and waits until the new one stores rows, which it must within a minute. Fails the test
/// (fatally) otherwise.
inline void kill_sink_mid_run(SinkCluster& d, int64_t cars) {
  using namespace std::chrono_literals;
  int64_t rows_at_kill = 0;
  ASSERT_NO_FATAL_FAILURE(start_until_tenth_stored(d, cars, "sink1.log", rows_at_kill));
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

/// The outage scenario from the start: the sink starts (its log `sink_log`) and reports once, the store's
/// server process stops (scripts/services/<store> pause: the port and data stay), the simulator of `cars`
/// starts, and once the sink has said it cannot write, the store stays down `length` more; the sink must stay
/// alive; then the server runs again there. `lines_at_pause` is the count of the sink's progress lines (once
/// a second) when the store stopped. The outage begins before the simulator so the sink has rows to write
/// while the store is away under any load: begun after it had stored a tenth, it could find a sink that had
/// already caught up with the whole (fast) run.
inline void store_outage_from_start(SinkCluster& d, int64_t cars, const std::string& sink_log,
                                    std::chrono::seconds length, size_t& lines_at_pause) {
  using namespace std::chrono_literals;
  d.sink = d.start_sink(sink_log);
  ASSERT_TRUE(
      eventually([&] { return !progress_series(read_file(d.path(sink_log)), "stored").empty(); }, 120s))
      << read_file(d.path(sink_log));
  const auto paused = run(d.store_script, {"pause", d.store.address()});
  ASSERT_EQ(paused.exit_code, 0) << paused.out;
  lines_at_pause = progress_series(read_file(d.path(sink_log)), "lag").size();
  d.sim = d.start_sim(cars);
  ASSERT_TRUE(eventually(
      [&] {
        const auto log = read_file(d.path(sink_log));
        return log.find("store unreachable") != std::string::npos ||
               log.find("bulk write to telemetry failed") != std::string::npos;
      },
      180s))
      << read_file(d.path(sink_log));
  std::this_thread::sleep_for(length);  // the outage's length, not an assertion
  EXPECT_TRUE(alive(d.sink)) << "the sink exited while the store was down\n" << read_file(d.path(sink_log));
  const auto resumed = run(d.store_script, {"resume", d.store.address()});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.out;
}

/// The store's counts after the run of `cars` (wait_for_everything): every (car, seq) once, a twin per car.
inline void expect_run_counts(const store::HistoryStats& stats, int64_t cars) {
  EXPECT_EQ(stats.rows, cars * kSinkRunSeconds);
  EXPECT_EQ(stats.distinct, cars * kSinkRunSeconds);
  EXPECT_EQ(stats.cars, cars);
  EXPECT_EQ(stats.twins, cars);
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

/// Every one of the `cars` twins in `check` equals its car's last stored event, `last_of_car(twin)` (null
/// when the car has none); reports the first five that differ.
inline void expect_twins_are_last_events(
    store::TwinStore& check, int64_t cars,
    const std::function<const store::TelemetryRow*(const core::Twin&)>& last_of_car) {
  store::TwinQuery all;
  all.limit = cars + 1;
  const auto twins = check.list_twins(all);
  ASSERT_EQ(static_cast<int64_t>(twins.size()), cars);
  int differ = 0;
  for (const auto& t : twins) {
    const auto verdict = is_last_event(t, last_of_car(t));
    if (!verdict && ++differ <= 5) ADD_FAILURE() << verdict.message();
  }
  EXPECT_EQ(differ, 0) << "twins that differ from their car's last event";
}

}  // namespace fleettwin::testing
