// `fleettwin bench sink --postgres` end to end on a real Kafka broker, a real PostgreSQL server and Kafka
// Connect with Debezium's JDBC sink connector (scripts/services/{kafka,postgres,kafka-connect}):
// fleet.telemetry and fleet.twins filled by the sim, process and twin roles (3,000 records of 20 cars), one
// run of each side. Both sides must have stored every record exactly once (rows and distinct (car, seq) of
// each side's database, read with psql), and fleettwin every twin. Speed is not asserted: that is the
// benchmark's job.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "support/process.h"
#include "support/roles.h"

using namespace std::chrono_literals;
using namespace fleettwin::testing;

namespace {

constexpr int kCars = 20;
constexpr int kSeconds = 150;  // simulated seconds at 1 s: 3,000 records
constexpr int kRecords = kCars * kSeconds;

/// The last "| <label> N" of a role's progress lines, or -1.
long long last_of(const std::string& log_path, const std::string& label) {
  const std::string log = read_file(log_path);
  const std::regex line("\\| " + label + " ([0-9,]+)");
  long long last = -1;
  for (std::sregex_iterator it(log.begin(), log.end(), line), end; it != end; ++it) {
    std::string digits = (*it)[1];
    std::erase(digits, ',');
    last = std::stoll(digits);
  }
  return last;
}

/// The database names of one side in the bench's JSON ("fleettwin_databases": ["a", "b"]).
std::vector<std::string> databases(const std::string& json, const std::string& side) {
  std::smatch m;
  if (!std::regex_search(json, m, std::regex("\"" + side + "_databases\": \\[([^\\]]*)\\]"))) return {};
  std::vector<std::string> out;
  const std::string list = m[1];
  const std::regex name("\"([a-z0-9_]+)\"");
  for (std::sregex_iterator it(list.begin(), list.end(), name), end; it != end; ++it) out.push_back((*it)[1]);
  return out;
}

/// `sql`'s answer (psql -At: unaligned, tuples only), in database `db` of the server at `uri`.
std::string query(const std::string& uri, const std::string& db, const std::string& sql) {
  const std::string base = uri.substr(0, uri.rfind('/'));
  auto r = run("psql", {base + "/" + db, "-v", "ON_ERROR_STOP=1", "-Atc", sql});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
  return r.out;
}

TEST(BenchSinkPostgres, BothSidesStoreEveryRecordExactlyOnce) {
  Service kafka(FLEETTWIN_SOURCE_DIR, "kafka");
  Service postgres(FLEETTWIN_SOURCE_DIR, "postgres");
  TempDir dir("bench_sink_postgres");
  const auto registry = start_registry(kBin, dir);
  auto role = [&](const std::string& name, const std::vector<std::string>& extra = {}) {
    return spawn(kBin, role_args(name, kafka.address(), registry.url, extra), dir.file(name + ".log"));
  };
  const pid_t process = role("process");
  const pid_t twin = role("twin");
  const pid_t sim = role("sim", {"--cars", std::to_string(kCars), "--interval", "1s", "--duration",
                                 std::to_string(kSeconds) + "s", "--fast", "--data-dir", dir.file("sim")});
  int status = 0;
  waitpid(sim, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_file(dir.file("sim.log"));
  ASSERT_TRUE(eventually(
      [&] {
        return last_of(dir.file("process.log"), "processed") == kRecords &&
               last_of(dir.file("process.log"), "lag") == 0 && last_of(dir.file("twin.log"), "lag") == 0;
      },
      120s))
      << read_file(dir.file("process.log")) << read_file(dir.file("twin.log"));
  std::this_thread::sleep_for(3s);  // the twin stage's last flush of fleet.twins
  expect_clean_stops(dir, {{process, "process.log"}, {twin, "twin.log"}});

  const std::string json = dir.file("bench.json");
  const auto bench =
      run(kBin, {"bench", "sink", "--kafka", kafka.address(), "--schema-registry", registry.url, "--postgres",
                 postgres.address(), "--runs", "1", "--seconds", "300", "--json", json});
  EXPECT_EQ(stop(registry.pid), 0) << read_file(dir.file("registry.log"));
  ASSERT_EQ(bench.exit_code, 0) << bench.out;
  const std::string report = read_file(json);
  const auto ft = databases(report, "fleettwin"), kc = databases(report, "connector");
  ASSERT_EQ(ft.size(), 1u) << report;
  ASSERT_EQ(kc.size(), 1u) << report;
  const std::string exactly_once = std::to_string(kRecords) + "|" + std::to_string(kRecords);
  const std::string counts = "SELECT count(*), count(DISTINCT (car, seq)) FROM telemetry";
  EXPECT_EQ(query(postgres.address(), ft[0], counts), exactly_once) << bench.out;
  EXPECT_EQ(query(postgres.address(), kc[0], counts), exactly_once) << bench.out;
  EXPECT_EQ(query(postgres.address(), ft[0], "SELECT count(DISTINCT car) FROM telemetry"),
            std::to_string(kCars));
  EXPECT_EQ(query(postgres.address(), kc[0], "SELECT count(DISTINCT car) FROM telemetry"),
            std::to_string(kCars));
  // "with twins": fleettwin's sink wrote every car's twin from fleet.twins, at its last seq.
  EXPECT_EQ(query(postgres.address(), ft[0], "SELECT count(*), min(seq), max(seq) FROM twins"),
            std::to_string(kCars) + "|" + std::to_string(kSeconds) + "|" + std::to_string(kSeconds));
  EXPECT_NE(bench.out.find("ratio"), std::string::npos) << bench.out;
}

}  // namespace
