// Two edge sites (`fleettwin up --uplink`, each with its own simulated cars) replicate to one central Kafka
// read by central twin and sink roles with --sites. The central broker is frozen for a while (an outage: the
// edges spool), one edge is killed with SIGKILL during the outage and restarted, the broker is brought back,
// and the central sink is killed and restarted. Then every (car, seq) is stored exactly once at each edge and
// at the centre, and every central twin equals its car's last event, with its site.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "codec/json.h"
#include "core/clock.h"
#include "core/topics.h"
#include "log/kafka/kafka_log.h"
#include "store/sqlite/sqlite_store.h"
#include "support/process.h"
#include "support/roles.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace fleettwin;
using namespace fleettwin::testing;

namespace {

constexpr int64_t kCars = 10;     // per site
constexpr int64_t kSeconds = 45;  // simulated (real) time at 1 s: seqs 1..45 per car

/// The pid of the broker scripts/services/kafka started at `address` (its state dir,
/// scripts/services/lib.sh).
pid_t broker_pid(const std::string& address) {
  std::string root;
  if (const char* s = std::getenv("FLEETTWIN_SERVICES_STATE"))
    root = s;
  else
    root = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + "/fleettwin-services-" +
           std::to_string(getuid());
  const auto port = address.substr(address.rfind(':') + 1);
  return static_cast<pid_t>(std::stol(read_file(root + "/kafka/" + port + "/pid")));
}

store::HistoryStats stats_of(const std::string& db) { return store::SqliteStore(db).history_stats(); }

}  // namespace

TEST(Uplink, TwoSitesReachCentralExactlyOnceThroughAnOutageAndKills) {
  Service kafka(FLEETTWIN_SOURCE_DIR, "kafka");
  const TempDir dir("uplink");
  const auto registry = start_registry(kBin, dir);
  auto central_role = [&](const std::string& name, const std::string& log,
                          std::vector<std::string> extra = {}) {
    extra.push_back("--sites");
    return spawn(kBin, role_args(name, kafka.address(), registry.url, extra), dir.file(log));
  };
  const pid_t twin = central_role("twin", "twin.log");
  pid_t sink = central_role("sink", "sink.log", {"--data-dir", dir.file("central")});
  auto edge = [&](const std::string& site, const std::string& log) {
    return spawn(kBin,
                 {"up",
                  "--cars",
                  std::to_string(kCars),
                  "--interval",
                  "1s",
                  "--duration",
                  std::to_string(kSeconds) + "s",
                  "--id-prefix",
                  site + "-",
                  "--data-dir",
                  dir.file(site),
                  "--http",
                  "",
                  "--registry-listen",
                  "127.0.0.1:0",
                  "--uplink",
                  kafka.address(),
                  "--site",
                  site,
                  "--uplink-registry",
                  registry.url},
                 dir.file(log));
  };
  pid_t edge_a = edge("depot-a", "depot-a.log");
  const pid_t edge_b = edge("depot-b", "depot-b.log");
  const std::string central_db = dir.file("central") + "/fleettwin.db";

  // Both sites reach central.
  ASSERT_TRUE(eventually([&] { return stats_of(central_db).cars == 2 * kCars; }, 60s))
      << read_file(dir.file("depot-a.log")) << read_file(dir.file("sink.log"));

  // A command created centrally (as the central API does: onto central fleet.commands) for a car of site B.
  {
    core::Command c;
    c.id = "central-cmd-1";
    c.car = "depot-b-00003";
    c.name = "set_speed_limit";
    c.params_json = R"({"kmh":80})";
    c.created = core::wall_clock_ms();
    c.expires = c.created + 600'000;
    log::KafkaLog central({{"bootstrap.servers", kafka.address()}});
    auto producer = central.producer();
    producer->send(log::OutRecord{core::topics::kCommands, c.car, codec::command_to_json(c)});
    ASSERT_EQ(producer->flush(30s), 0);
  }

  // The outage: the broker stops answering; the edges spool. Edge A is killed meanwhile and restarted.
  const pid_t broker = broker_pid(kafka.address());
  ASSERT_EQ(kill(broker, SIGSTOP), 0);
  std::this_thread::sleep_for(8s);
  EXPECT_EQ(stop(edge_a, SIGKILL), -SIGKILL);
  edge_a = edge("depot-a", "depot-a2.log");
  std::this_thread::sleep_for(5s);
  // Back: killed and started again on its port with its data (a crash and a restart).
  const auto restarted =
      run(std::string(FLEETTWIN_SOURCE_DIR) + "/scripts/services/kafka", {"restart", kafka.address()});
  ASSERT_EQ(restarted.exit_code, 0) << restarted.out;

  // A central role killed and restarted: its group replays what it had not committed.
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(stop(sink, SIGKILL), -SIGKILL);
  sink = central_role("sink", "sink2.log", {"--data-dir", dir.file("central")});

  // The edges end with their simulation, having handed central their spool.
  for (const auto& [pid, log] : {std::pair{edge_a, "depot-a2.log"}, std::pair{edge_b, "depot-b.log"}}) {
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_file(dir.file(log));
  }
  for (const std::string site : {"depot-a", "depot-b"}) {
    const auto s = stats_of(dir.file(site) + "/fleettwin.db");
    EXPECT_EQ(s.rows, kCars * kSeconds) << site;
    EXPECT_EQ(s.distinct, kCars * kSeconds) << site;
  }

  // The central command came down to site B only (its sink stored it from the site's fleet.commands).
  EXPECT_TRUE(
      store::SqliteStore(dir.file("depot-b") + "/fleettwin.db").get_command("central-cmd-1").has_value());
  EXPECT_FALSE(
      store::SqliteStore(dir.file("depot-a") + "/fleettwin.db").get_command("central-cmd-1").has_value());

  constexpr int64_t kAll = 2 * kCars * kSeconds;
  store::HistoryStats central;
  EXPECT_TRUE(eventually(
      [&] {
        central = stats_of(central_db);
        return central.distinct >= kAll && central.twins == 2 * kCars;
      },
      60s))
      << "central stored " << central.distinct << " of " << kAll << "\n"
      << read_file(dir.file("sink2.log")) << read_file(dir.file("depot-a2.log"));
  store::SqliteStore check(central_db);
  EXPECT_TRUE(eventually(
      [&] {
        for (const auto& t : check.list_twins({.limit = 100}))
          if (t.reported.seq != kSeconds) return false;
        return true;
      },
      30s));
  for (const auto& t : check.list_twins({.limit = 100})) {
    EXPECT_EQ(t.reported.seq, kSeconds) << t.id;
    EXPECT_EQ(t.site, t.id.substr(0, t.id.rfind('-'))) << t.id;
  }
  expect_clean_stops(dir, {{twin, "twin.log"}, {sink, "sink2.log"}, {registry.pid, "registry.log"}});
  central = check.history_stats();
  EXPECT_EQ(central.rows, kAll);  // every (car, seq) of both sites exactly once
  EXPECT_EQ(central.distinct, kAll);
  EXPECT_EQ(central.cars, 2 * kCars);
}
