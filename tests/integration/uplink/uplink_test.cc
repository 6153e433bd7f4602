// Issue 18's test of edge sites and the central cluster. Two edge sites, each its own mosquitto, an edge
// process for real cars (`up --mqtt ADDR --no-sim --uplink ...`) and its cars in a separate `fleettwin sim
// --mqtt` process, replicate to one central Kafka read by central twin and sink roles with --sites. The
// central broker is stopped for a while (an outage: the edges spool) and restarted; one edge is killed with
// SIGKILL during the outage and restarted; the central sink is killed and restarted. Commands are created
// centrally before and during the outage. A car drives from site A to site B (its own MQTT client). Then
// every (car, seq) is stored exactly once at the edges and at the centre, every central twin equals its car's
// last event with its site, and the commands are answered (the answer reaches the central twin) or expired.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "codec/json.h"
#include "core/clock.h"
#include "core/topics.h"
#include "edge_sites.h"
#include "log/kafka/kafka_log.h"

using namespace std::chrono_literals;
using namespace fleettwin;
using namespace fleettwin::testing;

namespace {

constexpr int kCars = 8;      // per site
constexpr int kSeconds = 60;  // the cars publish seqs 1..60, one a second: beyond the outage
constexpr int64_t kPerSite = int64_t{kCars} * kSeconds;
constexpr int kMoverSeqs = 10;  // the moving car: seqs 1..5 at site A, 6..10 at site B
const std::string kMover = "mover-1";

/// A command as the central API creates it (api/commands: onto central fleet.commands), expiring after
/// `ttl_ms`.
core::Command command(const std::string& id, const std::string& car, int kmh, int64_t ttl_ms) {
  core::Command c;
  c.id = id;
  c.car = car;
  c.name = "set_speed_limit";
  c.params_json = R"({"kmh":)" + std::to_string(kmh) + "}";
  c.created = core::wall_clock_ms();
  c.expires = c.created + ttl_ms;
  return c;
}

void send(log::Producer& producer, const core::Command& c) {
  producer.send(log::OutRecord{core::topics::kCommands, c.car, codec::command_to_json(c)});
}

std::string status_of(const std::string& db, const std::string& id) {
  const auto c = store::SqliteStore(db).get_command(id);
  return c ? c->status : "none";
}

}  // namespace

TEST(Uplink, TwoSitesOfRealCarsReachCentralExactlyOnceThroughAnOutageAndKills) {
  Service kafka(FLEETTWIN_SOURCE_DIR, "kafka");
  const TempDir dir("uplink");
  const auto registry = start_registry(kBin, dir);
  auto central_role = [&](const std::string& name, const std::string& log,
                          std::vector<std::string> extra = {}) {
    extra.push_back("--sites");
    return spawn(kBin, role_args(name, kafka.address(), registry.url, extra), dir.file(log));
  };
  pid_t twin = central_role("twin", "twin.log");
  std::string twin_log = "twin.log";
  int twin_restarts = 0;
  pid_t sink = central_role("sink", "sink.log", {"--data-dir", dir.file("central")});
  const std::string central_db = store::SqliteStore::path_in(dir.file("central"));

  EdgeSite a(dir, "depot-a", kafka.address(), registry.url);
  EdgeSite b(dir, "depot-b", kafka.address(), registry.url);
  a.start_edge();
  b.start_edge();
  a.start_cars(kCars, 1000, kSeconds);
  b.start_cars(kCars, 1000, kSeconds);

  // A central role whose offset commit timed out while the broker was away exits (`pipeline failed`), as a
  // crash would, and its orchestrator starts it again (deploy/k8s: restartPolicy Always); so does the test.
  // Its group replays what it had not committed.
  auto keep_twin_up = [&] {
    int status = 0;
    if (waitpid(twin, &status, WNOHANG) != twin) return;
    twin_log = "twin" + std::to_string(++twin_restarts + 1) + ".log";
    twin = central_role("twin", twin_log);
  };

  // Both sites reach central; the moving car starts at site A.
  ASSERT_TRUE(eventually([&] { return stats_of(central_db).cars == 2 * kCars; }, 60s))
      << a.last_log() << read_file(dir.file("sink.log"));
  for (int seq = 1; seq <= kMoverSeqs / 2; ++seq) a.publish(kMover, seq);

  // Before the outage: a command for a car of site B, answered.
  log::KafkaLog central({{"bootstrap.servers", kafka.address()}});
  auto producer = central.producer();
  const auto before = command("before-outage", "depot-b-00003", 80, 600'000);
  send(*producer, before);
  ASSERT_EQ(producer->flush(30s), 0);

  // The outage: the broker stops answering; the edges spool and keep working.
  ASSERT_EQ(kill(broker_pid(kafka.address()), SIGSTOP), 0);
  // Created during the outage (they reach central's log when it is back): one with time to spare; one for a
  // car of site A, whose edge is killed meanwhile, whose expiry passes before the site is reachable again.
  const auto during = command("during-outage", "depot-b-00002", 70, 600'000);
  const auto expiring = command("expires-in-outage", "depot-a-00005", 60, 2'000);
  send(*producer, during);
  send(*producer, expiring);
  // The car drives to site B: it disconnects from A's broker and goes on at B's, its seq continuing.
  for (int seq = kMoverSeqs / 2 + 1; seq <= kMoverSeqs; ++seq) b.publish(kMover, seq);
  std::this_thread::sleep_for(5s);
  a.kill_edge();
  a.start_edge();
  std::this_thread::sleep_for(3s);
  // Back: killed and started again on its port with its data (a crash and a restart).
  const auto restarted =
      run(std::string(FLEETTWIN_SOURCE_DIR) + "/scripts/services/kafka", {"restart", kafka.address()});
  ASSERT_EQ(restarted.exit_code, 0) << restarted.out;
  ASSERT_EQ(producer->flush(60s), 0);

  // A central role killed and restarted: its group replays what it had not committed.
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(stop(sink, SIGKILL), -SIGKILL);
  sink = central_role("sink", "sink2.log", {"--data-dir", dir.file("central")});

  // The cars end; each site stored every (car, seq) its cars sent, once.
  a.expect_cars_done(kPerSite);
  b.expect_cars_done(kPerSite);
  for (EdgeSite* site : {&a, &b}) {
    ASSERT_TRUE(eventually([&] { return stats_of(site->db()).distinct >= kPerSite + kMoverSeqs / 2; }, 60s))
        << site->site() << " stored " << stats_of(site->db()).distinct << "\n"
        << site->last_log();
    const auto s = stats_of(site->db());
    EXPECT_EQ(s.rows, kPerSite + kMoverSeqs / 2) << site->site();
    EXPECT_EQ(s.distinct, kPerSite + kMoverSeqs / 2) << site->site();
  }

  // Central: every (car, seq) of both sites, and every central twin at its car's last event with its site.
  constexpr int64_t kAll = 2 * kPerSite + kMoverSeqs;
  store::HistoryStats central_stats;
  EXPECT_TRUE(eventually(
      [&] {
        central_stats = stats_of(central_db);
        return central_stats.distinct >= kAll;
      },
      90s))
      << "central stored " << central_stats.distinct << " of " << kAll << "\n"
      << read_file(dir.file("sink2.log")) << a.last_log();
  store::SqliteStore check(central_db);
  EXPECT_TRUE(eventually(
      [&] {
        keep_twin_up();
        const auto twins = check.list_twins({.limit = 100});
        if (twins.size() != 2 * kCars + 1) return false;
        for (const auto& t : twins)
          if (t.reported.seq != (t.id == kMover ? kMoverSeqs : kSeconds)) return false;
        return true;
      },
      60s));
  for (const auto& t : check.list_twins({.limit = 100})) {
    if (t.id == kMover) {
      // One twin and one history for the car that moved: its newest event came from site B.
      EXPECT_EQ(t.reported.seq, kMoverSeqs);
      EXPECT_EQ(t.site, "depot-b");
      EXPECT_EQ(check.history(kMover, 0, INT64_MAX, 100).size(), static_cast<std::size_t>(kMoverSeqs));
      continue;
    }
    EXPECT_EQ(t.reported.seq, kSeconds) << t.id;
    EXPECT_EQ(t.site, t.id.substr(0, t.id.rfind('-'))) << t.id;
  }

  // Commands: the two with time to spare reached their cars, wherever they are, and the answers came back to
  // the central twin; the one that expired during the outage ended expired, at the site and at the centre.
  EXPECT_TRUE(eventually(
      [&] {
        keep_twin_up();
        return status_of(central_db, before.id) == "acked" && status_of(central_db, during.id) == "acked" &&
               status_of(central_db, expiring.id) == "expired";
      },
      60s))
      << status_of(central_db, before.id) << " " << status_of(central_db, during.id) << " "
      << status_of(central_db, expiring.id);
  EXPECT_TRUE(eventually(
      [&] {
        const auto b3 = check.get_twin(before.car), b2 = check.get_twin(during.car);
        return b3 && b2 && b3->reported_settings.contains("speed_limit_kmh") &&
               b3->reported_settings.at("speed_limit_kmh") == "80" &&
               b2->reported_settings.contains("speed_limit_kmh") &&
               b2->reported_settings.at("speed_limit_kmh") == "70";
      },
      60s));
  EXPECT_EQ(status_of(b.db(), before.id), "acked");
  EXPECT_EQ(status_of(b.db(), during.id), "acked");
  // At the site it is expired by the edge itself once the downlink brings it, which may come after central
  // declared it expired.
  EXPECT_TRUE(eventually([&] { return status_of(a.db(), expiring.id) == "expired"; }, 60s))
      << status_of(a.db(), expiring.id);
  EXPECT_EQ(status_of(a.db(), before.id), "none");  // a command goes to the site of its car only
  const auto a5 = check.get_twin(expiring.car);
  ASSERT_TRUE(a5.has_value());
  EXPECT_FALSE(a5->reported_settings.contains("speed_limit_kmh"));

  a.stop_edge();
  b.stop_edge();
  if (twin_restarts > 0) std::fprintf(stderr, "central twin role restarted %d time(s)\n", twin_restarts);
  expect_clean_stops(dir, {{twin, twin_log}, {sink, "sink2.log"}, {registry.pid, "registry.log"}});
  central_stats = check.history_stats();
  EXPECT_EQ(central_stats.rows, kAll);  // every (car, seq) of both sites exactly once
  EXPECT_EQ(central_stats.distinct, kAll);
  EXPECT_EQ(central_stats.cars, 2 * kCars + 1);
}
