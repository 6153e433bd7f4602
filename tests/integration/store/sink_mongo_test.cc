// Kafka -> sink -> FerretDB in distributed mode (issue 5): sim, process, twin and sink as separate fleettwin
// processes on a real Kafka broker, the sink writing to a real FerretDB through `--mongo`.
// FerretDB is stopped for 20 s mid-run and started again on the same port and data; the sink must ride it
// out, and the store then hold every (car, seq) exactly once with every twin equal to the last event of its
// car (checked through MongoStore).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <regex>
#include <thread>

#include "store/mongo/mongo_store.h"
#include "support/process.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace fleettwin;
using fleettwin::testing::eventually;
using fleettwin::testing::read_file;
using fleettwin::testing::run;
using fleettwin::testing::spawn;
using fleettwin::testing::stop;

namespace {

const std::string kBin = FLEETTWIN_BIN;
const std::string kFerretdb = std::string(FLEETTWIN_SOURCE_DIR) + "/scripts/services/ferretdb";
constexpr int64_t kSeconds = 300;  // 5 simulated minutes at 1 s

bool alive(pid_t pid) { return waitpid(pid, nullptr, WNOHANG) == 0; }

/// Kafka, FerretDB, a schema registry and the process and twin roles, plus helpers to start the others.
/// One per test: each test has its own topics and database.
class Distributed {
 public:
  explicit Distributed(const std::string& name)
      : kafka(FLEETTWIN_SOURCE_DIR, "kafka"),
        ferretdb(FLEETTWIN_SOURCE_DIR, "ferretdb"),
        dir(fs::temp_directory_path() / ("fleettwin-" + name + "-" + std::to_string(::getpid()))) {
    // A short server selection: a write during an outage fails (and is retried) every 2 s instead of 30 s.
    uri = ferretdb.address();
    if (uri.back() != '/') uri += '/';
    uri += name + "?serverSelectionTimeoutMS=2000";
    fs::remove_all(dir);
    fs::create_directories(dir);
    registry = spawn(kBin, {"registry", "--listen", "127.0.0.1:0", "--data-dir", path("registry")},
                     path("registry.log"));
    if (!eventually(
            [&] {
              const auto log = read_file(path("registry.log"));
              const auto at = log.find("http://");
              if (at == std::string::npos) return false;
              url = log.substr(at, log.find('\n', at) - at);
              return true;
            },
            30s)) {
      throw std::runtime_error("the schema registry did not start:\n" + read_file(path("registry.log")));
    }
    process = role("process", "process.log");
    twin = role("twin", "twin.log");
  }
  ~Distributed() {
    for (pid_t p : {sink, sim, process, twin, registry})
      if (p > 0 && alive(p)) stop(p, SIGKILL);
  }

  std::string path(const std::string& name) const { return (dir / name).string(); }
  pid_t role(const std::string& name, const std::string& log, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{name, "--kafka",     kafka.address(),          "--schema-registry",
                                  url,  "--kafka-set", "session.timeout.ms=6000"};
    args.insert(args.end(), extra.begin(), extra.end());
    return spawn(kBin, args, path(log));
  }
  pid_t start_sink(const std::string& log) {
    return role("sink", log, {"--mongo", uri, "--data-dir", path("sink")});
  }
  pid_t start_sim(int cars) {
    return role("sim", "sim.log",
                {"--cars", std::to_string(cars), "--interval", "1s", "--duration",
                 std::to_string(kSeconds) + "s", "--fast", "--data-dir", path("sim")});
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

  fleettwin::testing::Service kafka;
  fleettwin::testing::Service ferretdb;
  fs::path dir;
  std::string uri;
  std::string url;
  pid_t registry = -1, process = -1, twin = -1, sink = -1, sim = -1;
};

/// The numbers after `label` in a role's progress lines ("... | stored N | lag L"), in order.
std::vector<int64_t> progress_series(const std::string& log, const std::string& label) {
  std::vector<int64_t> out;
  const std::regex line("\\| " + label + " ([0-9,]+)");
  for (std::sregex_iterator it(log.begin(), log.end(), line), end; it != end; ++it) {
    std::string digits = (*it)[1];
    std::erase(digits, ',');
    out.push_back(std::stoll(digits));
  }
  return out;
}

int64_t last_of(const std::string& log_path, const std::string& label) {
  const auto s = progress_series(read_file(log_path), label);
  return s.empty() ? -1 : s.back();
}

/// Polls `pred` every `every` up to `limit`. For store queries: FerretDB runs $group in memory, and polling
/// it several times a second would slow the sink under test.
template <typename Pred>
bool every_while(std::chrono::seconds every, std::chrono::seconds limit, Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    try {
      if (pred()) return true;
    } catch (const std::exception&) {
    }
    if (std::chrono::steady_clock::now() + every > deadline) return false;
    std::this_thread::sleep_for(every);
  }
}

/// Waits until every role has consumed everything (progress lines: lag 0), then until the store holds all
/// `cars * kSeconds` rows and every twin has reached its car's last seq.
void wait_for_everything(Distributed& d, store::MongoStore& check, int64_t cars) {
  ASSERT_TRUE(eventually(
      [&] {
        return last_of(d.path("process.log"), "lag") == 0 && last_of(d.path("twin.log"), "lag") == 0 &&
               last_of(d.path("sink.log"), "lag") == 0;
      },
      300s))
      << read_file(d.path("sink.log"));
  const int64_t expected = cars * kSeconds;
  store::HistoryStats stats;
  store::TwinQuery lagging;
  lagging.limit = 1;
  lagging.filter = store::parse_filter("reported.seq != " + std::to_string(kSeconds));
  // Twins arrive up to a twin flush interval after the last event.
  ASSERT_TRUE(every_while(5s, 90s,
                          [&] {
                            stats = check.history_stats();
                            return stats.rows >= expected && stats.twins >= cars &&
                                   check.list_twins(lagging).empty();
                          }))
      << "stored " << stats.rows << " of " << expected << " rows, " << stats.twins << " twins\n"
      << read_file(d.path("sink.log"));
}

/// Every (car, seq) exactly once, and every twin equal to its car's last stored event.
void expect_exact_store(store::MongoStore& check, int64_t cars) {
  const auto stats = check.history_stats();
  EXPECT_EQ(stats.rows, cars * kSeconds);  // _id {car}:{seq}: a replayed pair is never stored twice
  EXPECT_EQ(stats.distinct, cars * kSeconds);
  EXPECT_EQ(stats.cars, cars);
  EXPECT_EQ(stats.twins, cars);
  std::map<std::string, int64_t> max_seq;
  for (const auto& [car, seq] : check.max_seq_per_car()) max_seq[car] = seq;
  ASSERT_EQ(static_cast<int64_t>(max_seq.size()), cars);
  store::TwinQuery all;
  all.limit = cars + 1;
  const auto twins = check.list_twins(all);
  ASSERT_EQ(static_cast<int64_t>(twins.size()), cars);
  // Every twin is at its car's last seq (above); for a sample of cars, it equals that stored event in full
  // (one history query per car is slow on FerretDB, which scans without the secondary index).
  for (size_t i = 0; i < twins.size(); i += std::max<size_t>(1, twins.size() / 7)) {
    const auto& t = twins[i];
    const auto last = check.history(t.id, t.reported.ts, t.reported.ts + 1);
    ASSERT_EQ(last.size(), 1u) << t.id;
    EXPECT_EQ(last[0].t.seq, t.reported.seq) << t.id;
    EXPECT_EQ(last[0].t.values, t.reported.values) << t.id;
    EXPECT_EQ(last[0].t.lat, t.reported.lat) << t.id;
    EXPECT_EQ(last[0].t.lon, t.reported.lon) << t.id;
  }
  // One car's whole history, in order and without gaps.
  const auto history = check.history("car-00000", 0, INT64_MAX);
  ASSERT_EQ(static_cast<int64_t>(history.size()), kSeconds);
  for (int64_t i = 0; i < kSeconds; ++i) EXPECT_EQ(history[static_cast<size_t>(i)].t.seq, i + 1);
}

}  // namespace

TEST(SinkMongo, DatabaseDownForTwentySecondsLosesAndDuplicatesNothing) {
  constexpr int64_t kCars = 300;
  Distributed d("sink_outage");
  d.sink = d.start_sink("sink.log");
  d.sim = d.start_sim(kCars);
  ASSERT_TRUE(
      eventually([&] { return last_of(d.path("sink.log"), "stored") >= kCars * kSeconds / 10; }, 180s))
      << read_file(d.path("sink.log"));
  const auto lags_before = progress_series(read_file(d.path("sink.log")), "lag");

  // The outage: the server process stops, the port and data dir stay; 20 s later it runs again there.
  const auto paused = run(kFerretdb, {"pause", d.ferretdb.address()});
  ASSERT_EQ(paused.exit_code, 0) << paused.out;
  std::this_thread::sleep_for(20s);  // the scenario's length, not an assertion
  EXPECT_TRUE(alive(d.sink)) << "the sink exited while the database was down\n"
                             << read_file(d.path("sink.log"));
  const auto resumed = run(kFerretdb, {"resume", d.ferretdb.address()});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.out;

  store::MongoStore check(d.uri);
  ASSERT_TRUE(d.sim_finished()) << read_file(d.path("sim.log"));
  wait_for_everything(d, check, kCars);
  // The lag drains to 0 once the store is back (progress lines, once a second).
  ASSERT_TRUE(eventually(
      [&] {
        const auto lags = progress_series(read_file(d.path("sink.log")), "lag");
        return !lags.empty() && lags.back() == 0;
      },
      60s))
      << read_file(d.path("sink.log"));
  // With --fast the whole run is in the log before the outage, so the lag cannot rise; it must not fall while
  // the store is away (nothing stored), then drain to 0.
  const auto lags = progress_series(read_file(d.path("sink.log")), "lag");
  ASSERT_FALSE(lags_before.empty());
  const size_t outage = lags_before.size();  // progress lines come once a second: 3 s and 15 s into it
  ASSERT_LT(outage + 15, lags.size());
  EXPECT_GE(lags[outage + 15], lags[outage + 3]) << read_file(d.path("sink.log"));
  EXPECT_GT(lags[outage + 15], 0);
  EXPECT_TRUE(alive(d.sink)) << read_file(d.path("sink.log"));
  // The failed writes were retried (by the store's own backoff, then the sink's), and said so.
  const auto sink_log = read_file(d.path("sink.log"));
  EXPECT_TRUE(sink_log.find("store unreachable") != std::string::npos ||
              sink_log.find("bulk write to telemetry failed") != std::string::npos)
      << sink_log;
  d.stop_roles();  // the sink still exits 0: it never stopped
  expect_exact_store(check, kCars);
  if (!HasFailure()) {
    check.drop_database();
    fs::remove_all(d.dir);
  }
}
