// The MQTT front door as separate processes on real services: 2,000 cars (`fleettwin sim --mqtt`, QoS 1) over
// two mosquitto shards, `fleettwin bridge` into a real Kafka broker. The bridge is killed with SIGKILL
// mid-run and started again with the same client id: its persistent sessions hold what it had not
// acknowledged, so every (car, seq) the cars sent is in fleet.telemetry.raw at least once and none is
// missing. Then malformed payloads from a connected car go through `fleettwin up --mqtt` into the DLQ while
// the run goes on.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <thread>

#include "codec/json.h"
#include "core/topics.h"
#include "log/kafka/kafka_log.h"
#include "support/process.h"
#include "support/temp_dir.h"

using namespace std::chrono_literals;
using namespace fleettwin;
using namespace fleettwin::testing;

TEST(BridgeProcess, KilledMidRunAndRestartedLosesNothing) {
  Service kafka(FLEETTWIN_SOURCE_DIR, "kafka");
  Service brokers(FLEETTWIN_SOURCE_DIR, "mosquitto", "--shards 2");
  const TempDir dir("bridge-kill");
  const std::vector<std::string> bridge_args{"bridge",        "--mqtt",      brokers.address(), "--kafka",
                                             kafka.address(), "--client-id", "kill-test"};
  pid_t bridge = spawn(kBin, bridge_args, dir.file("bridge-1.log"));
  ASSERT_TRUE(eventually(
      [&] { return read_file(dir.file("bridge-1.log")).find("connections 2") != std::string::npos; }, 60s))
      << read_file(dir.file("bridge-1.log"));

  constexpr int kCars = 2000, kSeconds = 20;
  const pid_t sim =
      spawn(kBin,
            {"sim", "--mqtt", brokers.address(), "--cars", std::to_string(kCars), "--interval", "1s",
             "--duration", std::to_string(kSeconds) + "s", "--qos", "1", "--failure-rate", "0"},
            dir.file("sim.log"));
  std::this_thread::sleep_for(7s);
  ASSERT_EQ(::kill(bridge, SIGKILL), 0);
  ::waitpid(bridge, nullptr, 0);
  std::this_thread::sleep_for(2s);  // the cars go on publishing; the brokers keep the bridge's share
  bridge = spawn(kBin, bridge_args, dir.file("bridge-2.log"));
  EXPECT_EQ(stop(sim, 0), 0) << read_file(dir.file("sim.log"));  // waits: the sim ends after its duration
  const auto sim_log = read_file(dir.file("sim.log"));
  EXPECT_NE(sim_log.find("published " + std::to_string(kCars * kSeconds)), std::string::npos) << sim_log;
  EXPECT_NE(sim_log.find("acks pending 0"), std::string::npos) << sim_log;

  // Every (car, seq) is in fleet.telemetry.raw at least once.
  log::KafkaLog log({{"bootstrap.servers", kafka.address()}});
  auto consumer = log.consumer("check-" + std::to_string(::getpid()));
  consumer->subscribe({core::topics::kTelemetryRaw});
  std::set<std::pair<std::string, int64_t>> seen;
  int64_t records = 0;
  codec::TelemetryDecoder decoder;
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (seen.size() < static_cast<std::size_t>(kCars * kSeconds) &&
         std::chrono::steady_clock::now() < deadline) {
    for (const auto& r : consumer->poll(5000, 500ms)) {
      core::Telemetry t;
      codec::DecodeError e;
      ASSERT_TRUE(decoder.decode(r.value, t, e)) << e.detail;
      ASSERT_EQ(r.key, t.car);
      seen.insert({t.car, t.seq});
      ++records;
    }
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kCars * kSeconds)) << "records read " << records;
  for (int64_t seq = 1; seq <= kSeconds; ++seq) EXPECT_TRUE(seen.count({"car-00000", seq})) << seq;
  consumer->close();
  EXPECT_EQ(stop(bridge), 0) << read_file(dir.file("bridge-2.log"));
}

TEST(UpMqtt, MalformedPayloadsFromACarEndInTheDlqAndTheRunGoesOn) {
  Service broker(FLEETTWIN_SOURCE_DIR, "mosquitto");
  const TempDir dir("up-mqtt-dlq");
  const pid_t up = spawn(kBin,
                         {"up", "--mqtt", broker.address(), "--cars", "50", "--interval", "1s", "--duration",
                          "12s", "--data-dir", dir.file("data"), "--http", "", "--registry-listen",
                          "127.0.0.1:0", "--summary-json", dir.file("summary.json")},
                         dir.file("up.log"));
  ASSERT_TRUE(
      eventually([&] { return read_file(dir.file("up.log")).find("published") != std::string::npos; }, 60s))
      << read_file(dir.file("up.log"));
  const std::string port = broker.address().substr(broker.address().rfind(':') + 1);
  for (const char* payload : {"{not json", R"({"car":"car-00007","ts":1,"seq":"one"})", "[]"}) {
    const auto r = run("/bin/sh", {"-c", "mosquitto_pub -p " + port +
                                             " -q 1 -t fleet/car-00007/telemetry -m '" + payload + "'"});
    EXPECT_EQ(r.exit_code, 0) << r.out;
  }
  EXPECT_EQ(stop(up, 0), 0) << read_file(dir.file("up.log"));
  const auto summary = read_file(dir.file("summary.json"));
  EXPECT_NE(summary.find("\"dlq\":3"), std::string::npos) << summary;
  EXPECT_NE(summary.find("\"lost\":0"), std::string::npos) << summary;
  EXPECT_NE(summary.find("\"published\":600"), std::string::npos) << summary;
}
