// The bridge (stages::Bridge) between real mosquitto brokers and the log, with simulated cars on their own
// MQTT connections (sim::run_mqtt_fleet): every QoS 1 message a car published reaches fleet.telemetry.raw
// keyed by car id with its MQTT topic and receive time, commands reach the car and its acknowledgement comes
// back on fleet.command-acks. Two brokers started through scripts/services/mosquitto; one that does not start
// fails.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <thread>

#include <poll.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>

#include "codec/json.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "core/topics.h"
#include "log/memory/memory_log.h"
#include "mqtt/client.h"
#include "mqtt/credentials.h"
#include "mqtt/mosquitto_client.h"
#include "mqtt/pool.h"
#include "sim/feed/mqtt_fleet.h"
#include "sim/fleet.h"
#include "stages/bridge/bridge.h"
#include "support/broker_address.h"
#include "support/log_records.h"
#include "support/process.h"
#include "support/temp_dir.h"

using namespace fleettwin;
using fleettwin::testing::address_of;
using namespace std::chrono_literals;
namespace t = core::topics;

namespace {

int64_t now_ms() { return core::WallClock().now_ms(); }

struct Fixture : ::testing::Test {
  static void SetUpTestSuite() {
    for (int i = 0; i < 2; ++i)
      brokers_.push_back(std::make_unique<fleettwin::testing::Service>(FLEETTWIN_SOURCE_DIR, "mosquitto"));
  }
  static void TearDownTestSuite() { brokers_.clear(); }
  static std::vector<mqtt::BrokerAddress> addresses() {
    std::vector<mqtt::BrokerAddress> out;
    for (auto& b : brokers_) out.push_back(address_of(b->address()));
    return out;
  }
  static inline std::vector<std::unique_ptr<fleettwin::testing::Service>> brokers_;

  log::MemoryLog log{log::TopicConfig{}};
  core::Metrics metrics;
  core::WallClock clock;
  void SetUp() override {
    for (const char* topic : {t::kTelemetryRaw, t::kCommands, t::kCommandAcks}) log.create_topic(topic, {});
  }
  stages::BridgeOptions bridge_options(const std::string& id) {
    stages::BridgeOptions o;
    o.brokers = addresses();
    o.client_id = id;
    o.share_group = id;  // each test its own group: no session of an earlier test shares the messages
    return o;
  }
  sim::MqttFleetOptions fleet_options(std::size_t cars, int64_t duration_ms, const std::string& prefix) {
    sim::MqttFleetOptions o;
    o.fleet.cars = cars;
    o.fleet.interval_ms = 1000;
    o.fleet.duration_ms = duration_ms;
    o.fleet.start_ms = now_ms();
    o.fleet.failure_rate = 0;
    o.fleet.id_prefix = prefix;
    o.brokers = addresses();
    return o;
  }
};

TEST_F(Fixture, EveryQos1MessageReachesTheLogWithItsTopicAndReceiveTime) {
  stages::Bridge bridge(bridge_options("bridge-all"), log, metrics, clock);
  bridge.start();
  auto options = fleet_options(300, 4000, "all-");
  std::atomic<bool> stop{false};
  sim::MqttFleetStats last;
  sim::run_mqtt_fleet(options, stop, [&](const sim::MqttFleetStats& s) { last = s; });
  EXPECT_TRUE(last.done);
  EXPECT_EQ(last.published, 300 * 4);
  EXPECT_EQ(last.pending, 0);
  EXPECT_EQ(last.dropped, 0);

  auto consumer = log.consumer("check");
  consumer->subscribe({t::kTelemetryRaw});
  auto records = fleettwin::testing::drain(*consumer, 1200, 30s);
  std::set<std::pair<std::string, int64_t>> seen;
  codec::TelemetryDecoder decoder;
  for (const auto& r : records) {
    core::Telemetry tel;
    codec::DecodeError error;
    ASSERT_TRUE(decoder.decode(r.value, tel, error))
        << error.detail;  // the payload exactly as the car sent it
    EXPECT_EQ(r.key, tel.car);
    std::map<std::string, std::string> h;
    for (const auto& x : r.headers) h[x.key] = x.value;
    EXPECT_EQ(h[t::kHeaderMqttTopic], "fleet/" + tel.car + "/telemetry");
    EXPECT_GE(std::stoll(h[t::kHeaderReceivedMs]), tel.ts);
    seen.insert({tel.car, tel.seq});
  }
  EXPECT_EQ(seen.size(), 1200u) << "records " << records.size();
  bridge.request_stop();
  bridge.join();
  EXPECT_EQ(bridge.error(), "");
}

TEST_F(Fixture, Mqtt311CarsAndBridgeLoseNothingEither) {
  auto bridge_opts = bridge_options("bridge-311");
  bridge_opts.version = mqtt::Version::kV311;  // no receive maximum: the broker's in-flight window bounds it
  stages::Bridge bridge(bridge_opts, log, metrics, clock);
  bridge.start();
  auto options = fleet_options(100, 3000, "v311-");
  options.version = mqtt::Version::kV311;
  std::atomic<bool> stop{false};
  sim::MqttFleetStats last;
  sim::run_mqtt_fleet(options, stop, [&](const sim::MqttFleetStats& s) { last = s; });
  EXPECT_EQ(last.published, 300);
  EXPECT_EQ(last.pending, 0);
  auto raw = log.consumer("raw-311");
  raw->subscribe({t::kTelemetryRaw});
  std::set<std::string> seen;
  for (const auto& r : fleettwin::testing::drain(*raw, 300, 20s)) seen.insert(r.value);
  EXPECT_EQ(seen.size(), 300u);
  bridge.request_stop();
  bridge.join();
}

TEST_F(Fixture, BridgeCopiesInOneShareGroupSplitTheMessages) {
  auto a_opts = bridge_options("bridge-copy-a");
  auto b_opts = bridge_options("bridge-copy-b");
  b_opts.share_group = a_opts.share_group;  // same group, different client ids: two copies
  stages::Bridge a(a_opts, log, metrics, clock);
  core::Metrics metrics_b;  // the copies' counters apart
  stages::Bridge b(b_opts, log, metrics_b, clock);
  a.start();
  b.start();
  auto options = fleet_options(200, 4000, "copy-");
  std::atomic<bool> stop{false};
  sim::MqttFleetStats last;
  sim::run_mqtt_fleet(options, stop, [&](const sim::MqttFleetStats& s) { last = s; });
  EXPECT_EQ(last.published, 800);
  auto raw = log.consumer("raw-copies");
  raw->subscribe({t::kTelemetryRaw});
  std::set<std::string> seen;
  for (const auto& r : fleettwin::testing::drain(*raw, 800, 20s)) seen.insert(r.value);
  EXPECT_EQ(seen.size(), 800u);
  EXPECT_EQ(a.forwarded() + b.forwarded(), 800);  // each message through one copy only
  EXPECT_GT(a.forwarded(), 100);
  EXPECT_GT(b.forwarded(), 100);
  a.request_stop();
  b.request_stop();
  a.join();
  b.join();
}

// The pool's promises when the broker goes away: every client reconnects (with backoff) once it is back, and
// the QoS 1 messages published meanwhile were kept and are acknowledged after the reconnect.
TEST(Pool, ReconnectsAfterABrokerRestartAndDeliversWhatItKept) {
  // The broker comes from the service script (a reserved port below the ephemeral range, started once it
  // listens); `pause` kills it with SIGKILL and `resume` starts it again on the same port.
  const std::string script = std::string(FLEETTWIN_SOURCE_DIR) + "/scripts/services/mosquitto";
  fleettwin::testing::Service broker(FLEETTWIN_SOURCE_DIR, "mosquitto");
  const int port = address_of(broker.address()).port;
  mqtt::Pool pool(mqtt::PoolOptions{.backoff_min = 100ms, .backoff_max = 1000ms});
  for (int i = 0; i < 3; ++i) {
    mqtt::ClientOptions o;
    o.port = static_cast<std::uint16_t>(port);
    o.connect.client_id = "restart-" + std::to_string(i);
    pool.add(o);
  }
  auto run_until = [&](const std::function<bool()>& done, std::chrono::seconds budget) {
    const auto deadline = std::chrono::steady_clock::now() + budget;
    while (!done() && std::chrono::steady_clock::now() < deadline) pool.run_once(20ms);
    return done();
  };
  ASSERT_TRUE(run_until([&] { return pool.stats().connected == 3; }, 20s))
      << "broker at " << broker.address();
  for (mqtt::Pool::Index i = 0; i < 3; ++i) ASSERT_TRUE(pool.publish(i, "fleet/x/telemetry", "before", 1));
  // Nobody subscribes here: the broker acknowledges with "no matching subscribers" (counted as unrouted).
  ASSERT_TRUE(run_until([&] { return pool.stats().unrouted == 3; }, 10s));

  const auto paused = fleettwin::testing::run(script, {"pause", broker.address()});
  ASSERT_EQ(paused.exit_code, 0) << paused.out;
  EXPECT_NE(fleettwin::testing::run(script, {"status", broker.address()}).exit_code, 0)
      << "paused yet running";
  ASSERT_TRUE(run_until([&] { return pool.stats().connected == 0; }, 10s));
  for (mqtt::Pool::Index i = 0; i < 3; ++i)
    for (int k = 0; k < 4; ++k) ASSERT_TRUE(pool.publish(i, "fleet/x/telemetry", "while away", 1));
  EXPECT_EQ(pool.stats().outgoing, 12u);  // kept, not lost
  run_until([] { return false; }, 1s);    // a few failed reconnect attempts
  const auto resumed = fleettwin::testing::run(script, {"resume", broker.address()});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.out;
  EXPECT_TRUE(run_until([&] { return pool.stats().connected == 3 && pool.stats().outgoing == 0; }, 30s))
      << "connected " << pool.stats().connected << ", outgoing " << pool.stats().outgoing;
  const auto st = pool.stats();
  EXPECT_EQ(st.reconnects, 3u);
  EXPECT_EQ(st.unrouted, 15u);
  EXPECT_EQ(st.pubacks, 0u);
  EXPECT_GE(st.failures, 3u);
  pool.disconnect_all();
}

log::OutRecord command_record(const std::string& id, const std::string& car, const std::string& name,
                              const std::string& params, int64_t expires) {
  core::Command c;
  c.id = id;
  c.car = car;
  c.name = name;
  c.params_json = params;
  c.created = now_ms();
  c.expires = expires;
  return fleettwin::testing::rec(t::kCommands, car, codec::command_to_json(c));
}

// Collects acks from fleet.command-acks (keyed by command id) until `ids` all came or the budget ends.
struct Acks {
  log::Consumer& consumer;
  std::map<std::string, core::CommandAck> got;
  std::optional<core::CommandAck> await(const std::string& id, std::chrono::milliseconds budget) {
    const auto deadline = std::chrono::steady_clock::now() + budget;
    while (!got.count(id) && std::chrono::steady_clock::now() < deadline) {
      for (const auto& r : consumer.poll(100, 100ms)) {
        core::CommandAck a;
        if (!codec::command_ack_from_json(r.value, a, nullptr)) continue;
        EXPECT_EQ(r.key, a.car);
        got[a.id] = a;
      }
    }
    if (auto it = got.find(id); it != got.end()) return it->second;
    return std::nullopt;
  }
};

TEST_F(Fixture, ACommandReachesItsCarWhichObeysAndAcknowledges) {
  stages::Bridge bridge(bridge_options("bridge-cmd"), log, metrics, clock);
  bridge.start();
  auto acks = log.consumer("acks");
  acks->subscribe({t::kCommandAcks});
  auto options = fleet_options(4, 8000, "cmd-");
  std::atomic<bool> stop{false};
  std::atomic<int64_t> connected{0};
  std::thread cars([&] {
    sim::run_mqtt_fleet(options, stop, [&](const sim::MqttFleetStats& s) { connected = s.connected; });
  });
  while (connected.load() < 4) std::this_thread::sleep_for(50ms);
  const int64_t sent_at = now_ms();
  auto producer = log.producer();
  producer->send(command_record("cmd-1", "cmd-00001", "set_speed_limit", R"({"kmh": 30})", now_ms() + 60000));
  producer->send(command_record("cmd-2", "cmd-00002", "update_firmware", R"({"version": 4711})", 0));
  producer->send(command_record("cmd-3", "cmd-00003", "reboot_now", "{}", 0));  // not a command cars know
  producer->flush(5s);
  Acks collected{*acks, {}};
  auto a1 = collected.await("cmd-1", 20s);
  auto a2 = collected.await("cmd-2", 20s);
  auto a3 = collected.await("cmd-3", 20s);
  cars.join();  // the fleet's 8 s run on with the new settings
  ASSERT_TRUE(a1 && a2 && a3);
  EXPECT_EQ(a1->status, "acked");
  EXPECT_EQ(a1->car, "cmd-00001");
  EXPECT_EQ(a1->reported.at("speed_limit_kmh"), "30");
  EXPECT_EQ(a2->status, "acked");
  EXPECT_EQ(a2->reported.at("firmware_version"), "4711");
  EXPECT_EQ(a3->status, "failed");
  EXPECT_NE(a3->reason.find("reboot_now"), std::string::npos);

  // The cars apply what they acknowledged: speed capped at 30 km/h, firmware 4711, from a message after the
  // ack.
  auto raw = log.consumer("raw-cmd");
  raw->subscribe({t::kTelemetryRaw});
  codec::TelemetryDecoder decoder;
  int limited = 0, updated = 0;
  for (const auto& r : fleettwin::testing::drain(*raw, 32, 10s)) {
    core::Telemetry tel;
    codec::DecodeError e;
    ASSERT_TRUE(decoder.decode(r.value, tel, e));
    if (tel.ts < sent_at + 2000) continue;
    if (tel.car == "cmd-00001") {
      EXPECT_LE(tel.values[core::kSpeed], 30 / 3.6 + 1e-9);
      ++limited;
    }
    if (tel.car == "cmd-00002") {
      EXPECT_EQ(tel.values[core::kControlUnitFirmware], 4711);
      ++updated;
    }
  }
  EXPECT_GT(limited, 0);
  EXPECT_GT(updated, 0);
  bridge.request_stop();
  bridge.join();
}

TEST_F(Fixture, ACommandForAnOfflineCarWaitsInItsSessionUnlessItExpiresFirst) {
  stages::Bridge bridge(bridge_options("bridge-offline"), log, metrics, clock);
  bridge.start();
  auto acks = log.consumer("acks-offline");
  acks->subscribe({t::kCommandAcks});
  std::atomic<bool> stop{false};
  // The cars connect once (their sessions and subscriptions stay on the broker), then go away.
  sim::run_mqtt_fleet(fleet_options(3, 1000, "off-"), stop, {});
  auto producer = log.producer();
  producer->send(command_record("off-1", "off-00001", "set_speed_limit", R"({"kmh": 50})", now_ms() + 60000));
  producer->send(command_record("off-2", "off-00002", "set_speed_limit", R"({"kmh": 60})", now_ms() + 1500));
  producer->flush(5s);
  std::this_thread::sleep_for(3s);  // off-2's expiry passes while its car is away
  std::thread cars([&] { sim::run_mqtt_fleet(fleet_options(3, 4000, "off-"), stop, {}); });
  Acks collected{*acks, {}};
  auto a1 = collected.await("off-1", 20s);
  auto a2 = collected.await("off-2", 3s);
  cars.join();
  ASSERT_TRUE(a1);
  EXPECT_EQ(a1->status, "acked");
  EXPECT_EQ(a1->reported.at("speed_limit_kmh"), "50");
  // The broker dropped the expired command (MQTT 5 message expiry): the car never saw it. Its expired status
  // comes from the twin stage (tests/unit/stages).
  EXPECT_FALSE(a2.has_value());
  bridge.request_stop();
  bridge.join();
}

// Each car is its own MQTT user: the broker's ACL (deploy/mosquitto/acl) lets it write only its own telemetry
// and acks and read only its own commands; the bridge account does the rest.
TEST_F(Fixture, TheAclKeepsEachCarToItsOwnTopics) {
  const fleettwin::testing::TempDir tmp("acl");
  const auto& dir = tmp.path();
  sim::FleetConfig ids;
  ids.cars = 3;
  ids.id_prefix = "acl-";
  mqtt::write_credentials(
      dir.string(), 3, [&](std::size_t i) { return sim::car_id(ids, i); },
      std::string(FLEETTWIN_SOURCE_DIR) + "/deploy/mosquitto/acl");
  const auto creds = mqtt::Credentials::load(dir.string());
  fleettwin::testing::Service broker(FLEETTWIN_SOURCE_DIR, "mosquitto", "--auth '" + dir.string() + "'");
  const auto addr = address_of(broker.address());

  auto bridge_opts = bridge_options("bridge-acl");
  bridge_opts.brokers = {addr};
  bridge_opts.username = mqtt::kBridgeUser;
  bridge_opts.password = creds.bridge_password;
  stages::Bridge bridge(bridge_opts, log, metrics, clock);
  bridge.start();
  ASSERT_EQ(bridge.connected(), 1);

  auto car = [&](const std::string& id, const std::string& password) {
    mqtt::MosquittoOptions o;
    o.host = addr.host;
    o.port = addr.port;
    o.client_id = id;
    o.username = id;
    o.password = password;
    return std::make_unique<mqtt::MosquittoClient>(o);
  };
  // A wrong password is refused.
  EXPECT_THROW(car("acl-00001", "not-the-password")->connect(), std::runtime_error);

  auto attacker = car("acl-00001", creds.car_password("acl-00001"));
  auto victim = car("acl-00002", creds.car_password("acl-00002"));
  std::mutex mu;
  std::vector<std::string> attacker_got, victim_got;
  attacker->subscribe("fleet/acl-00002/commands", 1, [&](std::string_view, std::string_view p) {
    std::lock_guard lock(mu);
    attacker_got.emplace_back(p);
  });
  victim->subscribe("fleet/acl-00002/commands", 1, [&](std::string_view, std::string_view p) {
    std::lock_guard lock(mu);
    victim_got.emplace_back(p);
  });
  attacker->connect();
  victim->connect();
  std::this_thread::sleep_for(500ms);  // SUBSCRIBE is asynchronous in libmosquitto

  attacker->publish("fleet/acl-00002/telemetry", R"({"spoofed": true})", 1);  // another car's telemetry
  attacker->publish("fleet/acl-00002/commands", R"({"_id": "forged"})", 1);   // a command to another car
  attacker->publish("fleet/acl-00001/telemetry", R"({"own": true})", 1);      // its own: allowed
  ASSERT_TRUE(attacker->wait_published(10s));
  auto producer = log.producer();
  producer->send(command_record("acl-cmd", "acl-00002", "schedule_service", "{}", 0));
  producer->flush(5s);

  // The platform's command reaches the victim, and only the victim.
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < deadline) {
    std::lock_guard lock(mu);
    if (!victim_got.empty()) break;
  }
  auto raw = log.consumer("raw-acl");
  raw->subscribe({t::kTelemetryRaw});
  const auto records = fleettwin::testing::drain(*raw, 2, 3s);
  ASSERT_EQ(records.size(), 1u) << "only the car's own telemetry gets through";
  EXPECT_EQ(records[0].key, "acl-00001");
  EXPECT_EQ(records[0].value, R"({"own": true})");
  std::lock_guard lock(mu);
  ASSERT_EQ(victim_got.size(), 1u) << "the forged command must not arrive, the platform's must";
  EXPECT_NE(victim_got[0].find("acl-cmd"), std::string::npos);
  EXPECT_TRUE(attacker_got.empty()) << "a car cannot read another car's commands";
  bridge.request_stop();
  bridge.join();
}

// TLS on the cars' and the bridge's connections (our client on OpenSSL): the broker's certificate is checked
// against the CA, and a client that does not trust it does not connect.
TEST_F(Fixture, CarsAndBridgeConnectOverTlsAndCheckTheBrokersCertificate) {
  const fleettwin::testing::TempDir tmp("tls");
  const auto& dir = tmp.path();
  const std::string d = dir.string();
  const auto sh = [](const std::string& cmd) {
    const auto r = fleettwin::testing::run("/bin/sh", {"-c", cmd + " 2>&1"});
    EXPECT_EQ(r.exit_code, 0) << cmd << "\n" << r.out;
  };
  // A CA, and a broker certificate for 127.0.0.1 signed by it; a second CA the broker has nothing to do with.
  sh("cd " + d +
     " && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=test-ca -keyout ca.key -out ca.crt");
  sh("cd " + d +
     " && openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr");
  sh("cd " + d +
     " && printf 'subjectAltName=IP:127.0.0.1' > san.ext && openssl x509 -req -in server.csr -CA ca.crt "
     "-CAkey ca.key -CAcreateserial -days 1 -extfile san.ext -out server.crt");
  sh("cd " + d +
     " && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=other-ca -keyout other.key "
     "-out other.crt");
  fleettwin::testing::Service broker(FLEETTWIN_SOURCE_DIR, "mosquitto",
                                     "--tls " + fleettwin::testing::quote(d));
  const mqtt::BrokerAddress tls_addr = address_of(broker.address());

  auto bridge_opts = bridge_options("bridge-tls");
  bridge_opts.brokers = {tls_addr};
  bridge_opts.tls.ca_file = d + "/ca.crt";
  stages::Bridge bridge(bridge_opts, log, metrics, clock);
  bridge.start();
  ASSERT_EQ(bridge.connected(), 1);
  auto options = fleet_options(20, 3000, "tls-");
  options.brokers = {tls_addr};
  options.tls.ca_file = d + "/ca.crt";
  std::atomic<bool> stop{false};
  sim::MqttFleetStats last;
  sim::run_mqtt_fleet(options, stop, [&](const sim::MqttFleetStats& s) { last = s; });
  EXPECT_EQ(last.published, 60);
  EXPECT_EQ(last.pending, 0);
  auto raw = log.consumer("raw-tls");
  raw->subscribe({t::kTelemetryRaw});
  EXPECT_EQ(fleettwin::testing::drain(*raw, 60, 20s).size(), 60u);

  // A client that trusts another CA refuses the broker.
  mqtt::ClientOptions o;
  o.host = tls_addr.host;
  o.port = tls_addr.port;
  o.connect.client_id = "tls-stranger";
  o.tls.ca_file = d + "/other.crt";
  mqtt::Client stranger(o, {});
  ASSERT_TRUE(stranger.start());
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (stranger.state() != mqtt::Client::State::kFailed && !stranger.ready() &&
         std::chrono::steady_clock::now() < deadline) {
    pollfd p{stranger.fd(), static_cast<short>(POLLIN | (stranger.wants_write() ? POLLOUT : 0)), 0};
    ::poll(&p, 1, 50);
    if (p.revents & (POLLOUT | POLLERR | POLLHUP)) stranger.on_writable();
    if (p.revents & (POLLIN | POLLERR | POLLHUP)) stranger.on_readable();
  }
  EXPECT_EQ(stranger.state(), mqtt::Client::State::kFailed);
  EXPECT_NE(stranger.error().find("TLS handshake"), std::string::npos) << stranger.error();
  bridge.request_stop();
  bridge.join();
}

}  // namespace
