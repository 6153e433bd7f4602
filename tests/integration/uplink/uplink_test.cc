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

/// A command as the central API creates it (api/settings.cc: onto central fleet.commands, its id naming the
/// car, so that an answer a central sink reads before the command is kept), expiring after `ttl_ms`.
core::Command command(const std::string& tag, const std::string& car, int kmh, int64_t ttl_ms) {
  core::Command c;
  c.car = car;
  c.name = "set_speed_limit";
  c.created = core::wall_clock_ms();
  c.id = car + ":" + c.name + ":" + std::to_string(c.created) + ":" + tag;
  c.params_json = R"({"kmh":)" + std::to_string(kmh) + "}";
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

/// The scenario's processes and what its steps share: central Kafka with twin and sink roles (--sites), the
/// two edge sites, and the commands created centrally. Each step is a named part of the one test; a step's
/// fatal failure ends the test (ASSERT_NO_FATAL_FAILURE in the body). Test main thread.
class UplinkScenario : public ::testing::Test {
 protected:
  UplinkScenario()
      : _registry(start_registry(kBin, _dir)),
        _central_db(store::SqliteStore::path_in(_dir.file("central"))),
        _a(_dir, "depot-a", _kafka.address(), _registry.url),
        _b(_dir, "depot-b", _kafka.address(), _registry.url),
        _central({{"bootstrap.servers", _kafka.address()}}),
        _producer(_central.producer()) {}

  pid_t central_role(const std::string& name, const std::string& log, std::vector<std::string> extra = {}) {
    extra.push_back("--sites");
    return spawn(kBin, role_args(name, _kafka.address(), _registry.url, extra), _dir.file(log));
  }

  /// Central roles, both edges and their cars; both sites reach central; the moving car starts at site A.
  void start() {
    _twin = central_role("twin", "twin.log");
    _sink = central_role("sink", "sink.log", {"--data-dir", _dir.file("central")});
    _a.start_edge();
    _b.start_edge();
    _a.start_cars(kCars, 1000, kSeconds);
    _b.start_cars(kCars, 1000, kSeconds);
    ASSERT_TRUE(eventually([&] { return stats_of(_central_db).cars == 2 * kCars; }, 60s))
        << _a.last_log() << read_file(_dir.file("sink.log"));
    for (int seq = 1; seq <= kMoverSeqs / 2; ++seq) _a.publish(kMover, seq);
  }

  /// Before the outage: a command for a car of site B, to be answered.
  void command_before_outage() {
    _before = command("before-outage", "depot-b-00003", 80, 600'000);
    send(*_producer, _before);
    ASSERT_EQ(_producer->flush(30s), 0);
  }

  /// The outage: the broker stops answering; the edges spool and keep working. Commands are created
  /// meanwhile (they reach central's log when it is back); the moving car drives to site B; site A's edge is
  /// SIGKILLed and restarted; then central's broker is killed and started again on its data.
  void outage_with_an_edge_killed() {
    ASSERT_EQ(kill(broker_pid(_kafka.address()), SIGSTOP), 0);
    // Two with time to spare, for a car of site B and for a car of site A, whose edge is killed and restarted
    // meanwhile; one for a car of site A whose expiry passes before the site is reachable again.
    _during = command("during-outage", "depot-b-00002", 70, 600'000);
    _during_a = command("during-outage-a", "depot-a-00002", 90, 600'000);
    _expiring = command("expires-in-outage", "depot-a-00005", 60, 2'000);
    for (const auto* c : {&_during, &_during_a, &_expiring}) send(*_producer, *c);
    // The car disconnects from A's broker and goes on at B's, its seq continuing.
    for (int seq = kMoverSeqs / 2 + 1; seq <= kMoverSeqs; ++seq) _b.publish(kMover, seq);
    std::this_thread::sleep_for(5s);
    _a.kill_edge();
    _a.start_edge();
    std::this_thread::sleep_for(3s);
    const auto restarted =
        run(std::string(FLEETTWIN_SOURCE_DIR) + "/scripts/services/kafka", {"restart", _kafka.address()});
    ASSERT_EQ(restarted.exit_code, 0) << restarted.out;
    ASSERT_EQ(_producer->flush(60s), 0);
  }

  /// A central role killed and restarted: its group replays what it had not committed.
  void kill_the_central_sink() {
    std::this_thread::sleep_for(3s);
    EXPECT_EQ(stop(_sink, SIGKILL), -SIGKILL);
    _sink = central_role("sink", "sink2.log", {"--data-dir", _dir.file("central")});
  }

  /// The cars end; each site stored every (car, seq) its cars sent, once.
  void expect_each_site_stored_once() {
    _a.expect_cars_done(kPerSite);
    _b.expect_cars_done(kPerSite);
    for (EdgeSite* site : {&_a, &_b}) {
      ASSERT_TRUE(eventually([&] { return stats_of(site->db()).distinct >= kPerSite + kMoverSeqs / 2; }, 60s))
          << site->site() << " stored " << stats_of(site->db()).distinct << "\n"
          << site->last_log();
      const auto s = stats_of(site->db());
      EXPECT_EQ(s.rows, kPerSite + kMoverSeqs / 2) << site->site();
      EXPECT_EQ(s.distinct, kPerSite + kMoverSeqs / 2) << site->site();
    }
  }

  /// Central: every (car, seq) of both sites, and every central twin at its car's last event with its site;
  /// one twin and one history for the car that moved, its newest event from site B.
  void expect_central_history_and_twins() {
    store::HistoryStats central_stats;
    EXPECT_TRUE(eventually(
        [&] {
          central_stats = stats_of(_central_db);
          return central_stats.distinct >= kAll;
        },
        90s))
        << "central stored " << central_stats.distinct << " of " << kAll << "\n"
        << read_file(_dir.file("sink2.log")) << _a.last_log();
    store::SqliteStore check(_central_db);
    EXPECT_TRUE(eventually(
        [&] {
          const auto twins = check.list_twins({.limit = 100});
          if (twins.size() != 2 * kCars + 1) return false;
          for (const auto& t : twins)
            if (t.reported.seq != (t.id == kMover ? kMoverSeqs : kSeconds)) return false;
          return true;
        },
        60s));
    for (const auto& t : check.list_twins({.limit = 100})) {
      if (t.id == kMover) {
        EXPECT_EQ(t.reported.seq, kMoverSeqs);
        EXPECT_EQ(t.site, "depot-b");
        EXPECT_EQ(check.history(kMover, 0, INT64_MAX, 100).size(), static_cast<std::size_t>(kMoverSeqs));
        continue;
      }
      EXPECT_EQ(t.reported.seq, kSeconds) << t.id;
      EXPECT_EQ(t.site, t.id.substr(0, t.id.rfind('-'))) << t.id;
    }
  }

  /// The commands with time to spare reached their cars, wherever they are (site A's after its edge was
  /// killed and restarted during the outage), and the answers came back to the central twin; the one that
  /// expired during the outage ended expired, at the site and at the centre, and was never applied.
  void expect_commands_answered_or_expired() {
    const auto statuses = [&] {
      std::string s;
      for (const auto* c : {&_before, &_during, &_during_a, &_expiring})
        s += c->id + "=" + status_of(_central_db, c->id) + " ";
      return s;
    };
    EXPECT_TRUE(eventually(
        [&] {
          return status_of(_central_db, _before.id) == "acked" &&
                 status_of(_central_db, _during.id) == "acked" &&
                 status_of(_central_db, _during_a.id) == "acked" &&
                 status_of(_central_db, _expiring.id) == "expired";
        },
        60s))
        << statuses() << "\n"
        << _a.metrics() << read_file(_dir.file("depot-a-cars.log"));
    store::SqliteStore check(_central_db);
    EXPECT_TRUE(eventually(
        [&] {
          return reported_speed_limit(check, _before.car) == "80" &&
                 reported_speed_limit(check, _during.car) == "70" &&
                 reported_speed_limit(check, _during_a.car) == "90";
        },
        60s));
    EXPECT_EQ(status_of(_b.db(), _before.id), "acked");
    EXPECT_EQ(status_of(_b.db(), _during.id), "acked");
    EXPECT_EQ(status_of(_a.db(), _during_a.id), "acked");
    // At the site it is expired by the edge itself once the downlink brings it, which may come after central
    // declared it expired.
    EXPECT_TRUE(eventually([&] { return status_of(_a.db(), _expiring.id) == "expired"; }, 60s))
        << status_of(_a.db(), _expiring.id);
    EXPECT_EQ(status_of(_a.db(), _before.id), "none");  // a command goes to the site of its car only
    EXPECT_EQ(reported_speed_limit(check, _expiring.car), "none");
  }

  /// Everything stops cleanly; the central roles never exited on their own (a commit that timed out while
  /// the broker was away is retried, not fatal); central holds every (car, seq) of both sites exactly once.
  void stop_and_expect_exactly_once() {
    _a.stop_edge();
    _b.stop_edge();
    int status = 0;
    EXPECT_EQ(waitpid(_twin, &status, WNOHANG), 0) << read_file(_dir.file("twin.log"));
    expect_clean_stops(_dir, {{_twin, "twin.log"}, {_sink, "sink2.log"}, {_registry.pid, "registry.log"}});
    const auto central_stats = stats_of(_central_db);
    EXPECT_EQ(central_stats.rows, kAll);
    EXPECT_EQ(central_stats.distinct, kAll);
    EXPECT_EQ(central_stats.cars, 2 * kCars + 1);
  }

 private:
  static std::string reported_speed_limit(store::SqliteStore& check, const std::string& car) {
    const auto t = check.get_twin(car);
    if (!t || !t->reported_settings.contains("speed_limit_kmh")) return "none";
    return t->reported_settings.at("speed_limit_kmh");
  }

  static constexpr int64_t kAll = 2 * kPerSite + kMoverSeqs;
  Service _kafka{FLEETTWIN_SOURCE_DIR, "kafka"};
  const TempDir _dir{"uplink"};
  RegistryProcess _registry;
  std::string _central_db;
  EdgeSite _a, _b;
  log::KafkaLog _central;
  std::unique_ptr<log::Producer> _producer;
  pid_t _twin = -1, _sink = -1;
  core::Command _before, _during, _during_a, _expiring;
};

}  // namespace

TEST_F(UplinkScenario, TwoSitesOfRealCarsReachCentralExactlyOnceThroughAnOutageAndKills) {
  ASSERT_NO_FATAL_FAILURE(start());
  ASSERT_NO_FATAL_FAILURE(command_before_outage());
  ASSERT_NO_FATAL_FAILURE(outage_with_an_edge_killed());
  kill_the_central_sink();
  ASSERT_NO_FATAL_FAILURE(expect_each_site_stored_once());
  expect_central_history_and_twins();
  expect_commands_answered_or_expired();
  stop_and_expect_exactly_once();
}
