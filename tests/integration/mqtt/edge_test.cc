// An edge site for real cars (issue 18, items 1 and 2): `fleettwin up --mqtt ADDR --no-sim` in its own
// process, cars in another (`fleettwin sim --mqtt`, QoS 1) that keep publishing through a real mosquitto. The
// edge is killed with SIGKILL at random moments (once right after its restart, while the backlog the broker
// held comes in) and restarted on the same data dir each time. A PUBACK from the edge means the message is on
// its disk (the inbox, docs/architecture.md), so after the cars stop and the edge drains, the store holds
// every (car, seq) the cars published exactly once. With mqtt.durable_ack=false (the bridge acknowledging
// once the in-memory log has a message, as before the inbox) the same run loses messages.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <thread>

#include "store/sqlite/sqlite_store.h"
#include "support/process.h"
#include "support/temp_dir.h"

using namespace std::chrono_literals;
using namespace fleettwin;
using namespace fleettwin::testing;

namespace {

constexpr int kCars = 200;
constexpr int kIntervalMs = 100;
constexpr int kSeconds = 12;
constexpr int64_t kPerCar = kSeconds * 1000 / kIntervalMs;
constexpr int64_t kPublished = kCars * kPerCar;

int64_t stored_distinct(const std::string& data_dir) {
  store::SqliteStore s(store::SqliteStore::path_in(data_dir));
  return s.history_stats().distinct;
}

/// The edge started and its bridge subscribed: the progress line starts once Bridge::start returned.
bool edge_ready(const std::string& log) { return read_file(log).find("msg/s") != std::string::npos; }

}  // namespace

TEST(EdgeSite, KilledAtRandomMomentsStoresEveryAcknowledgedMessageOnce) {
  // The deployed broker's queue for an absent session (deploy/mosquitto), not the test default of 10,000:
  // the edge's session must hold what the cars send while it restarts.
  ::setenv("FLEETTWIN_MOSQUITTO_EXTRA_CONFIG", "max_queued_messages 1000000", 1);
  Service broker(FLEETTWIN_SOURCE_DIR, "mosquitto");
  ::unsetenv("FLEETTWIN_MOSQUITTO_EXTRA_CONFIG");
  const TempDir dir("edge-kill");
  const std::string data = dir.file("data");
  const std::vector<std::string> edge_args{
      "up",     "--mqtt", broker.address(),    "--no-sim",   "--data-dir", data,
      "--http", "",       "--registry-listen", "127.0.0.1:0"};
  int run = 0;
  auto start_edge = [&] {
    const auto log = dir.file("edge-" + std::to_string(++run) + ".log");
    const pid_t pid = spawn(kBin, edge_args, log);
    EXPECT_TRUE(eventually([&] { return edge_ready(log); }, 60s)) << read_file(log);
    return pid;
  };
  pid_t edge = start_edge();
  const pid_t cars = spawn(kBin,
                           {"sim", "--mqtt", broker.address(), "--cars", std::to_string(kCars), "--interval",
                            std::to_string(kIntervalMs) + "ms", "--duration", std::to_string(kSeconds) + "s",
                            "--qos", "1", "--failure-rate", "0"},
                           dir.file("cars.log"));
  const auto seed = static_cast<unsigned>(std::random_device{}());
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> pause_ms(300, 2500);
  SCOPED_TRACE("kill moments seed " + std::to_string(seed));
  for (int kill = 0; kill < 3; ++kill) {
    // The second kill comes right after a restart: the backlog the broker kept arrives as one burst.
    std::this_thread::sleep_for(std::chrono::milliseconds(kill == 1 ? 200 : pause_ms(rng)));
    ASSERT_EQ(::kill(edge, SIGKILL), 0);
    ::waitpid(edge, nullptr, 0);
    edge = start_edge();
  }
  EXPECT_EQ(stop(cars, 0), 0) << read_file(dir.file("cars.log"));  // waits: the cars end after --duration
  const auto cars_log = read_file(dir.file("cars.log"));
  ASSERT_NE(cars_log.find("published " + std::to_string(kPublished)), std::string::npos) << cars_log;
  ASSERT_NE(cars_log.find("acks pending 0"), std::string::npos) << cars_log;

  EXPECT_TRUE(eventually([&] { return stored_distinct(data) >= kPublished; }, 60s, 1000ms))
      << "stored " << stored_distinct(data) << " of " << kPublished;
  EXPECT_EQ(stop(edge), 0) << read_file(dir.file("edge-" + std::to_string(run) + ".log"));

  store::SqliteStore s(store::SqliteStore::path_in(data));
  const auto stats = s.history_stats();
  EXPECT_EQ(stats.rows, kPublished);
  EXPECT_EQ(stats.distinct, kPublished);
  const auto max_seq = s.max_seq_per_car();
  EXPECT_EQ(max_seq.size(), static_cast<std::size_t>(kCars));
  // Seqs run 1..kPerCar per car: kCars x kPerCar distinct pairs, none above kPerCar, is every pair once.
  for (const auto& [car, seq] : max_seq) EXPECT_EQ(seq, kPerCar) << car;
}
