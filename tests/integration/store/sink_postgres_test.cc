// Kafka -> sink -> PostgreSQL in distributed mode: sim, process, twin and sink as separate fleettwin
// processes on a real Kafka broker, the sink writing to a real PostgreSQL (scripts/services/postgres) through
// `--postgres`.
//  - KilledSinkResumes: the sink is killed with SIGKILL mid-run (mid-batch: it writes a batch a transaction
//    at a time and commits its offsets after) and started again; the new one replays what the killed one
//    wrote after its last offset commit.
//  - DatabaseDown: the server is stopped (an immediate shutdown, as a crash) for 10 s mid-run and started
//    again on the same port and data; the sink must ride it out.
// Both then check with SQL that `telemetry` holds every (car, seq) exactly once, and through PostgresStore
// that every twin equals the last event of its car. CMakeLists.txt registers each test as its own ctest
// entry.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <thread>

#include "store/postgres/pg_conn.h"
#include "store/postgres/postgres_store.h"
#include "support/process.h"
#include "support/sink_cluster.h"

using namespace std::chrono_literals;
using namespace fleettwin;
using namespace fleettwin::testing;

namespace {

const std::string kPostgres = std::string(FLEETTWIN_SOURCE_DIR) + "/scripts/services/postgres";
constexpr int64_t kSeconds = kSinkRunSeconds;

/// Kafka, PostgreSQL, a schema registry and the process and twin roles; the sink writes to the server's
/// database through --postgres. A short connect timeout: during an outage a write fails (and is retried) at
/// once instead of waiting for the kernel.
class Distributed : public SinkCluster {
 public:
  explicit Distributed(const std::string& name) : SinkCluster(name, "postgres") {
    uri = store.address() + "?connect_timeout=2";
    sink_store_args = {"--postgres", uri};
  }
  std::string uri;
};

/// Every (car, seq) 1..kSeconds exactly once, and every twin equal to its car's last stored event.
void expect_exact_store(const std::string& uri, store::PostgresStore& check, int64_t cars,
                        const store::HistoryStats& stats) {
  EXPECT_EQ(stats.rows, cars * kSeconds);
  EXPECT_EQ(stats.distinct, cars * kSeconds);
  EXPECT_EQ(stats.cars, cars);
  EXPECT_EQ(stats.twins, cars);
  store::PgConnection sql(uri);
  const store::PgResult twice =
      sql.exec("SELECT car, seq, count(*) FROM telemetry GROUP BY car, seq HAVING count(*) > 1 LIMIT 5");
  for (int i = 0; i < twice.rows(); ++i) {
    ADD_FAILURE() << twice.str(i, 0) << ":" << twice.i64(i, 1) << " is stored " << twice.i64(i, 2)
                  << " times";
  }
  const store::PgResult gaps = sql.exec(
      "SELECT car, count(DISTINCT seq), min(seq), max(seq) FROM telemetry GROUP BY car"
      " HAVING count(DISTINCT seq) <> $1 OR min(seq) <> 1 OR max(seq) <> $1 LIMIT 5",
      store::PgParams().add(kSeconds));
  for (int i = 0; i < gaps.rows(); ++i) {
    ADD_FAILURE() << gaps.str(i, 0) << ": " << gaps.i64(i, 1) << " seqs stored, from " << gaps.i64(i, 2)
                  << " to " << gaps.i64(i, 3) << " (want 1.." << kSeconds << ")";
  }
  store::TwinQuery all;
  all.limit = cars + 1;
  const auto twins = check.list_twins(all);
  ASSERT_EQ(static_cast<int64_t>(twins.size()), cars);
  int differ = 0;
  for (const auto& t : twins) {
    const auto rows = check.history(t.id, 0, INT64_MAX);
    const auto verdict = is_last_event(t, rows.empty() ? nullptr : &rows.back());
    if (!verdict && ++differ <= 5) ADD_FAILURE() << verdict.message();
  }
  EXPECT_EQ(differ, 0) << "twins that differ from their car's last event";
}

TEST(SinkPostgres, KilledSinkResumesAndStoresEveryCarSeqExactlyOnce) {
  constexpr int64_t kCars = 500;
  Distributed d("sink_pg_kill");
  kill_sink_mid_run(d, kCars);
  if (HasFatalFailure()) return;
  ASSERT_TRUE(d.sim_finished()) << read_file(d.path("sim.log"));
  store::PostgresStore check(d.uri);
  store::HistoryStats stats;
  wait_for_everything(d, check, kCars, stats, 300s, 1s, 1s);
  d.stop_roles();
  expect_exact_store(d.uri, check, kCars, stats);
}

TEST(SinkPostgres, DatabaseDownForTenSecondsLosesAndDuplicatesNothing) {
  constexpr int64_t kCars = 200;
  Distributed d("sink_pg_outage");
  d.sink = d.start_sink("sink.log");
  d.sim = d.start_sim(kCars);
  ASSERT_TRUE(
      eventually([&] { return last_of(d.path("sink.log"), "stored") >= kCars * kSeconds / 10; }, 180s))
      << read_file(d.path("sink.log"));
  const auto paused = run(kPostgres, {"pause", d.store.address()});
  ASSERT_EQ(paused.exit_code, 0) << paused.out;
  std::this_thread::sleep_for(10s);  // the scenario's length, not an assertion
  EXPECT_TRUE(alive(d.sink)) << "the sink exited while the database was down\n"
                             << read_file(d.path("sink.log"));
  const auto resumed = run(kPostgres, {"resume", d.store.address()});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.out;

  ASSERT_TRUE(d.sim_finished()) << read_file(d.path("sim.log"));
  store::PostgresStore check(d.uri);
  store::HistoryStats stats;
  wait_for_everything(d, check, kCars, stats, 300s, 1s, 1s);
  EXPECT_TRUE(alive(d.sink)) << read_file(d.path("sink.log"));
  const auto sink_log = read_file(d.path("sink.log"));
  EXPECT_NE(sink_log.find("store unreachable"), std::string::npos) << sink_log;
  EXPECT_NE(sink_log.find("store reachable again"), std::string::npos) << sink_log;
  d.stop_roles();  // the sink still exits 0: it never stopped
  expect_exact_store(d.uri, check, kCars, stats);
}

}  // namespace
