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
#include <functional>
#include <thread>

#include "store/postgres/pg_conn.h"
#include "store/postgres/postgres_store.h"
#include "support/process.h"
#include "support/sink_cluster.h"

using namespace std::chrono_literals;
using namespace fleettwin;
using namespace fleettwin::testing;

namespace {

constexpr int64_t kSeconds = kSinkRunSeconds;

/// Every (car, seq) 1..kSeconds exactly once, and every twin equal to its car's last stored event.
void expect_exact_store(const std::string& uri, store::PostgresStore& check, int64_t cars,
                        const store::HistoryStats& stats) {
  expect_run_counts(stats, cars);
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
  std::vector<store::TelemetryRow> rows;
  expect_twins_are_last_events(check, cars, [&](const core::Twin& t) {
    rows = check.history(t.id, 0, INT64_MAX);
    return rows.empty() ? nullptr : &rows.back();
  });
}

/// Kafka, PostgreSQL, a schema registry and the process and twin roles; the sink writes to the server's
/// database through --postgres. A short connect timeout: during an outage a write fails (and is retried) at
/// once instead of waiting for the kernel.
class Distributed : public SinkCluster {
 public:
  explicit Distributed(const std::string& name) : SinkCluster(name, "postgres") {
    uri = store.address() + "?connect_timeout=2";
    sink_store_args = {"--postgres", uri};
  }
  /// The end of the run (finish_run, `between` its own checks), then expect_exact_store.
  void finish_and_expect_exact(
      int64_t cars, const std::function<void()>& between = [] {}) {
    store::PostgresStore check(uri);
    store::HistoryStats stats;
    finish_run(*this, check, cars, stats, {300s, 1s, 1s}, between);
    if (::testing::Test::HasFatalFailure()) return;
    expect_exact_store(uri, check, cars, stats);
  }
  std::string uri;
};

}  // namespace

TEST(SinkPostgres, KilledSinkResumesAndStoresEveryCarSeqExactlyOnce) {
  constexpr int64_t kCars = 500;
  Distributed d("sink_pg_kill");
  ASSERT_NO_FATAL_FAILURE(kill_sink_mid_run(d, kCars));
  d.finish_and_expect_exact(kCars);
}

TEST(SinkPostgres, DatabaseDownForTenSecondsLosesAndDuplicatesNothing) {
  constexpr int64_t kCars = 200;
  Distributed d("sink_pg_outage");
  size_t lines_at_pause = 0;
  ASSERT_NO_FATAL_FAILURE(store_outage_from_start(d, kCars, "sink.log", 10s, lines_at_pause));

  d.finish_and_expect_exact(kCars, [&] {
    EXPECT_TRUE(alive(d.sink)) << read_file(d.path("sink.log"));
    const auto sink_log = read_file(d.path("sink.log"));
    EXPECT_NE(sink_log.find("store unreachable"), std::string::npos) << sink_log;
    EXPECT_NE(sink_log.find("store reachable again"), std::string::npos) << sink_log;
  });  // then the sink still exits 0: it never stopped
}
