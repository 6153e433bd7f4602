// Kafka -> sink -> FerretDB in distributed mode: sim, process, twin and sink as separate fleettwin
// processes on a real Kafka broker, the sink writing to a real FerretDB through `--mongo`.
//  - KilledSinkResumes: the sink is killed with SIGKILL mid-run and started again; the new one resumes from
//    the last committed offsets, so it replays what the killed one wrote after its last commit.
//  - DatabaseDown: FerretDB is stopped for 20 s mid-run and started again on the same port and data; the sink
//    must ride it out.
// Both then check through MongoStore that `telemetry` holds every (car, seq) exactly once and that every twin
// equals the last event of its car. CMakeLists.txt registers each test as its own ctest entry.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>

#include "core/signals.h"
#include "store/mongo/mongo_store.h"
#include "support/process.h"
#include "support/roles.h"
#include "support/sink_cluster.h"

using namespace std::chrono_literals;
using namespace fleettwin;
using namespace fleettwin::testing;

namespace {

constexpr int64_t kSeconds = kSinkRunSeconds;  // 5 simulated minutes at 1 s

/// Every (car, seq) exactly once, and every twin equal to its car's last stored event. `stats` are the
/// store's counts (wait_for_everything). One pass over the telemetry: on FerretDB every query of it is a scan
/// (tens of seconds for 300,000 rows), so per-car history queries would take hours.
void expect_exact_store(store::MongoStore& check, int64_t cars, const store::HistoryStats& stats) {
  expect_run_counts(stats, cars);
  /// Per car: how often each seq 1..kSeconds is stored, and its last event.
  struct Stored {
    std::vector<int> times = std::vector<int>(kSeconds + 1, 0);
    store::TelemetryRow last;
  };
  std::map<std::string, Stored> by_car;
  int64_t rows = 0;
  int64_t out_of_range = 0;
  check.scan_telemetry([&](const store::TelemetryRow& r) {
    ++rows;
    Stored& c = by_car[r.t.car];
    if (r.t.seq < 1 || r.t.seq > kSeconds) {
      ++out_of_range;
      return;
    }
    ++c.times[static_cast<size_t>(r.t.seq)];
    if (r.t.seq > c.last.t.seq) c.last = r;
  });
  EXPECT_EQ(rows, cars * kSeconds);
  EXPECT_EQ(out_of_range, 0) << "rows with a seq the simulator never sent";
  ASSERT_EQ(static_cast<int64_t>(by_car.size()), cars);
  int64_t missing = 0;
  int64_t duplicated = 0;
  for (const auto& [car, c] : by_car) {
    for (int64_t seq = 1; seq <= kSeconds; ++seq) {
      const int n = c.times[static_cast<size_t>(seq)];
      if (n == 0 && ++missing <= 5) ADD_FAILURE() << car << ":" << seq << " is not stored";
      if (n > 1 && ++duplicated <= 5) ADD_FAILURE() << car << ":" << seq << " is stored " << n << " times";
    }
  }
  EXPECT_EQ(missing, 0) << "(car, seq) pairs not stored";
  EXPECT_EQ(duplicated, 0) << "(car, seq) pairs stored more than once";
  expect_twins_are_last_events(check, cars, [&](const core::Twin& t) -> const store::TelemetryRow* {
    const auto it = by_car.find(t.id);
    return it == by_car.end() ? nullptr : &it->second.last;
  });
}

/// Kafka, FerretDB, a schema registry and the process and twin roles (SinkCluster), the sink writing to
/// the database `name` through --mongo. One per test: each test has its own topics and database.
class Distributed : public SinkCluster {
 public:
  explicit Distributed(const std::string& name) : SinkCluster(name, "ferretdb") {
    // A short server selection: a write during an outage fails (and is retried) every 2 s instead of 30 s.
    uri = store.address();
    if (uri.back() != '/') uri += '/';
    uri += name + "?serverSelectionTimeoutMS=2000";
    sink_store_args = {"--mongo", uri};
  }
  /// The end of the run (finish_run, `between` its own checks), then expect_exact_store; the database is
  /// dropped when all is well. On FerretDB a count reads the whole telemetry collection (tens of seconds for
  /// 300,000 rows): polled every few seconds, and only once the twins, a small collection, are current.
  void finish_and_expect_exact(
      int64_t cars, std::chrono::seconds drain, const std::function<void()>& between = [] {}) {
    store::MongoStore check(uri);
    store::HistoryStats stats;
    finish_run(*this, check, cars, stats, {drain, 2s, 5s}, between);
    if (::testing::Test::HasFatalFailure()) return;
    expect_exact_store(check, cars, stats);
    if (!::testing::Test::HasFailure()) check.drop_database();
  }
  std::string uri;
};

}  // namespace

TEST(SinkMongo, StoreAppliesNewerTwinsOfHundredsOfExistingCarsInOneBatch) {
  Service ferretdb(FLEETTWIN_SOURCE_DIR, "ferretdb");
  std::string uri = ferretdb.address();
  if (uri.back() != '/') uri += '/';
  uri += "store_batch?serverSelectionTimeoutMS=2000&socketTimeoutMS=20000";
  store::MongoStore s(uri);
  constexpr int64_t kCars = 250;
  auto batch_at = [&](int64_t seq) {
    store::WriteBatch b;
    for (int64_t c = 0; c < kCars; ++c) {
      core::Twin& t = b.twins.emplace_back();
      t.id = "car-" + std::to_string(c);
      t.version = seq;
      t.has_reported = true;
      t.reported.car = t.id;
      t.reported.seq = seq;
      t.reported.ts = 1'700'000'000'000 + seq * 1000;
      t.reported.lat = 48.1;
      t.reported.lon = 11.5;
    }
    return b;
  };
  EXPECT_EQ(s.write(batch_at(1)).twins_applied, kCars);  // inserts
  EXPECT_EQ(s.write(batch_at(2)).twins_applied, kCars);  // replaces of existing twins: the deadlock
  const auto stale = s.write(batch_at(1));               // a replay of the older batch changes nothing
  EXPECT_EQ(stale.twins_applied, 0);
  EXPECT_EQ(stale.twins_stale, kCars);
  store::TwinQuery all;
  all.limit = kCars + 1;
  const auto twins = s.list_twins(all);
  ASSERT_EQ(static_cast<int64_t>(twins.size()), kCars);
  for (const auto& t : twins) EXPECT_EQ(t.reported.seq, 2) << t.id;
  s.drop_database();
}

TEST(SinkMongo, KilledSinkResumesAndStoresEveryCarSeqExactlyOnce) {
  // 400 cars, 120,000 rows: the kill lands mid-run all the same, and on FerretDB, whose counts and twin
  // writes scan whole collections, 1,000 cars took 6 to 8 minutes of CI.
  constexpr int64_t kCars = 400;
  Distributed d("sink_kill");
  // The restarted sink makes progress at once: it stores rows within a minute. (On FerretDB a restarted
  // sink once stalled there, its start-up count overlapping its own writes, and later hung the server with
  // a batch of twins for every car; see run_pipeline and docs/operations.md.)
  ASSERT_NO_FATAL_FAILURE(kill_sink_mid_run(d, kCars));
  d.finish_and_expect_exact(kCars, 420s);
}

TEST(SinkMongo, DatabaseDownForTwentySecondsLosesAndDuplicatesNothing) {
  constexpr int64_t kCars = 300;
  Distributed d("sink_outage");
  // The outage: the server process stops before the simulator starts (the port and data dir stay), and runs
  // again there 20 s after the sink said it could not write.
  size_t outage = 0;  // the sink's progress lines when the server stopped (once a second)
  ASSERT_NO_FATAL_FAILURE(store_outage_from_start(d, kCars, "sink.log", 20s, outage));

  d.finish_and_expect_exact(kCars, 300s, [&] {
    // The lag drains to 0 once the store is back (progress lines, once a second).
    ASSERT_TRUE(eventually(
        [&] {
          const auto lags = progress_series(read_file(d.path("sink.log")), "lag");
          return !lags.empty() && lags.back() == 0;
        },
        60s))
        << read_file(d.path("sink.log"));
    // The lag must not fall while the store is away (nothing stored; the simulator only adds), shows the
    // backlog the outage left, then drains to 0. Progress lines come once a second: 3 s and 15 s into the
    // outage. (The sink measures its lag between batches, so a sink stuck on its first batch may go on
    // saying 0 until the store is back.)
    const auto lags = progress_series(read_file(d.path("sink.log")), "lag");
    ASSERT_LT(outage + 15, lags.size());
    EXPECT_GE(lags[outage + 15], lags[outage + 3]) << read_file(d.path("sink.log"));
    EXPECT_GT(*std::max_element(lags.begin() + static_cast<std::ptrdiff_t>(outage), lags.end()), 0)
        << read_file(d.path("sink.log"));
    EXPECT_TRUE(alive(d.sink)) << read_file(d.path("sink.log"));
    // The failed writes were retried (by the store's own backoff, then the sink's), and said so.
    const auto sink_log = read_file(d.path("sink.log"));
    EXPECT_TRUE(sink_log.find("store unreachable") != std::string::npos ||
                sink_log.find("bulk write to telemetry failed") != std::string::npos)
        << sink_log;
  });  // then the sink still exits 0: it never stopped
}
