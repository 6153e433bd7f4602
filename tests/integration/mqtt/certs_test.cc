// Device identity by certificate against real mosquitto brokers: `fleettwin sim credentials --certs` writes a
// fleet CA and a certificate per car (mqtt::write_certificates); a broker started with that directory
// (scripts/services/mosquitto start --auth DIR, or `up --mqtt --credentials DIR`'s LocalBrokers) requires a
// client certificate from the fleet CA, takes the user name from its CN and confines each car to its own
// topics; the bridge's identity is one no car can hold. A broker that cannot start fails the run.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "app/mqtt_front.h"
#include "codec/json.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "core/topics.h"
#include "log/memory/memory_log.h"
#include "mqtt/certificates.h"
#include "mqtt/credentials.h"
#include "mqtt/mosquitto_client.h"
#include "sim/feed/mqtt_fleet.h"
#include "sim/fleet.h"
#include "stages/bridge/bridge.h"
#include "support/broker_address.h"
#include "support/log_records.h"
#include "support/service_environment.h"
#include "support/temp_dir.h"

using namespace fleettwin;
using fleettwin::testing::address_of;
using namespace std::chrono_literals;
namespace t = core::topics;

namespace {

const std::string kAcl = std::string(FLEETTWIN_SOURCE_DIR) + "/deploy/mosquitto/acl";

sim::FleetConfig fleet_ids(std::size_t cars) {
  sim::FleetConfig ids;
  ids.cars = cars;
  ids.id_prefix = "crt-";
  return ids;
}

mqtt::CertificateRequest request(std::size_t cars, std::function<std::string(std::size_t)> car_id) {
  mqtt::CertificateRequest r;
  r.cars = cars;
  r.car_id = std::move(car_id);
  r.acl_template = kAcl;
  r.threads = 2;
  return r;
}

void write_fleet(const std::filesystem::path& dir, std::size_t cars) {
  const auto ids = fleet_ids(cars);
  mqtt::write_certificates(dir.string(), request(cars, [ids](std::size_t i) { return sim::car_id(ids, i); }));
}

mqtt::TlsOptions ca_only(const mqtt::Credentials& creds) {
  mqtt::TlsOptions o;
  o.ca_file = mqtt::CertificatePaths{creds.dir}.ca_crt().string();
  return o;
}

/// A device on libmosquitto with the given TLS identity (none: no certificate) and user name.
std::unique_ptr<mqtt::MosquittoClient> device(const mqtt::BrokerAddress& a, const std::string& client_id,
                                              const mqtt::TlsOptions& tls,
                                              std::optional<std::string> username = std::nullopt) {
  mqtt::MosquittoOptions o;
  o.host = a.host;
  o.port = a.port;
  o.client_id = client_id;
  o.username = std::move(username);
  o.tls = tls;
  return std::make_unique<mqtt::MosquittoClient>(o);
}

/// Messages a device received, from libmosquitto's thread.
struct Inbox {
  std::mutex mu;
  std::vector<std::string> topics;
  mqtt::MosquittoClient::MessageCallback callback() {
    return [this](std::string_view topic, std::string_view) {
      std::lock_guard lock(mu);
      topics.emplace_back(topic);
    };
  }
  std::size_t size() {
    std::lock_guard lock(mu);
    return topics.size();
  }
};

/// One certificate fleet of 3 cars and one broker requiring its certificates, for the whole suite.
struct CertFixture : ::testing::Test {
  static void SetUpTestSuite() {
    dir_ = std::make_unique<fleettwin::testing::TempDir>("certs");
    write_fleet(dir_->path(), 3);
    broker_ = std::make_unique<fleettwin::testing::Service>(FLEETTWIN_SOURCE_DIR, "mosquitto",
                                                            "--auth '" + dir_->path().string() + "'");
  }
  static void TearDownTestSuite() {
    broker_.reset();
    dir_.reset();
  }
  static inline std::unique_ptr<fleettwin::testing::TempDir> dir_;
  static inline std::unique_ptr<fleettwin::testing::Service> broker_;

  mqtt::Credentials creds = mqtt::Credentials::load(dir_->path().string());
  mqtt::BrokerAddress addr = address_of(broker_->address());
  log::MemoryLog log{log::TopicConfig{}};
  core::Metrics metrics;
  core::WallClock clock;

  void SetUp() override {
    for (const char* topic : {t::kTelemetryRaw, t::kCommands, t::kCommandAcks}) log.create_topic(topic, {});
  }
  /// The bridge as `fleettwin bridge --credentials DIR` configures it (app::bridge_options).
  stages::BridgeOptions bridge_options(const std::string& group) {
    config::Config c;
    c.set(config::keys::mqtt_credentials, dir_->path().string(), "test");
    auto o = app::bridge_options(c, {addr});
    // Each test its own group and client ids: an earlier test's persistent session (same client id) would
    // keep its subscriptions and get a copy of every message.
    o.share_group += "-" + group;
    o.client_id += "-" + group;
    return o;
  }
  std::vector<std::string> raw_keys(std::size_t expect, std::chrono::milliseconds budget) {
    auto consumer = log.consumer("check");
    consumer->subscribe({t::kTelemetryRaw});
    std::vector<std::string> keys;
    for (const auto& r : fleettwin::testing::drain(*consumer, expect, budget)) keys.push_back(r.key);
    return keys;
  }
};

TEST(Certificates, NoCarIdCanBeTheBridgesIdentity) {
  EXPECT_EQ(mqtt::car_id_problem("car-00001"), "");
  EXPECT_NE(mqtt::car_id_problem(mqtt::kBridgeUser), "");
  EXPECT_NE(mqtt::car_id_problem(std::string(mqtt::kBridgeUser) + "-0"), "");
  EXPECT_NE(mqtt::car_id_problem("a/b"), "");  // would escape cars/ and an ACL pattern
  EXPECT_NE(mqtt::car_id_problem("+"), "");
  const fleettwin::testing::TempDir tmp("certs-bad");
  EXPECT_THROW(
      mqtt::write_certificates(tmp.path().string(),
                               request(1, [](std::size_t) { return std::string(mqtt::kBridgeUser); })),
      std::runtime_error);
}

// A simulated car presents its own certificate (no user name, no password); the bridge, with its own,
// forwards what the cars publish into the log keyed by the car id.
TEST_F(CertFixture, CarsWithTheirCertificatesPublishAndTheBridgeForwards) {
  stages::Bridge bridge(bridge_options("certs-all"), log, metrics, clock);
  bridge.start();
  ASSERT_EQ(bridge.connected(), 1) << bridge.error();
  sim::MqttFleetOptions o;
  o.fleet = fleet_ids(3);
  o.fleet.interval_ms = 1000;
  o.fleet.duration_ms = 3000;
  o.fleet.start_ms = core::wall_clock_ms();
  o.fleet.failure_rate = 0;
  o.brokers = {addr};
  o.credentials = creds;
  std::atomic<bool> stop{false};
  sim::MqttFleetStats last;
  sim::run_mqtt_fleet(o, stop, [&](const sim::MqttFleetStats& s) { last = s; });
  EXPECT_EQ(last.published, 9);
  EXPECT_EQ(last.pending, 0);
  const auto keys = raw_keys(9, 20s);
  EXPECT_EQ(keys.size(), 9u);
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()),
            (std::set<std::string>{"crt-00000", "crt-00001", "crt-00002"}));
  bridge.request_stop();
  bridge.join();
}

// No certificate, plain TCP, or a certificate from another CA (even one whose CN is the bridge's): refused.
TEST_F(CertFixture, ClientsWithoutAFleetCertificateAreRefused) {
  EXPECT_THROW(device(addr, "no-cert", ca_only(creds), "crt-00001")->connect(3s), std::runtime_error);
  EXPECT_THROW(device(addr, "no-tls", {}, "crt-00001")->connect(3s), std::runtime_error);
  const fleettwin::testing::TempDir other("certs-other");
  write_fleet(other.path(), 1);
  const auto forged = mqtt::Credentials::load(other.path().string()).bridge_tls(ca_only(creds));
  EXPECT_THROW(device(addr, "forged-bridge", forged)->connect(3s), std::runtime_error);
  // The real car certificate connects: the refusals above are about identity, not the setup.
  EXPECT_NO_THROW(device(addr, "crt-00001", creds.car_tls("crt-00001", {}))->connect(5s));
}

// A car's certificate is its identity whatever user name it claims: it cannot publish to another car's
// topics, read other cars' telemetry (directly or through the bridge's shared subscription), or pose as the
// bridge.
TEST_F(CertFixture, ACarCertificateIsConfinedToItsOwnTopics) {
  stages::Bridge bridge(bridge_options("certs-acl"), log, metrics, clock);
  bridge.start();
  ASSERT_EQ(bridge.connected(), 1) << bridge.error();
  auto attacker = device(addr, "crt-00001", creds.car_tls("crt-00001", {}), std::string(mqtt::kBridgeUser));
  Inbox stolen;
  // mosquitto's ACL file does not check subscriptions, only deliveries: a car that joined the bridge's share
  // group would take its turn at the bridge's messages and drop them. It cannot guess the group's name.
  for (const char* filter :
       {"$share/fleettwin/fleet/+/telemetry", "$share/fleettwin-certs-acl/fleet/+/telemetry",
        "$share/fleettwin-bridge/fleet/+/telemetry", "fleet/+/telemetry", "fleet/crt-00002/commands"})
    attacker->subscribe(filter, 1, stolen.callback());
  attacker->connect();
  auto victim = device(addr, "crt-00002", creds.car_tls("crt-00002", {}));
  Inbox commands;
  victim->subscribe("fleet/crt-00002/commands", 1, commands.callback());
  victim->connect();
  std::this_thread::sleep_for(500ms);  // SUBSCRIBE is asynchronous in libmosquitto

  attacker->publish("fleet/crt-00002/telemetry", R"({"spoofed": true})", 1);
  attacker->publish("fleet/crt-00002/commands", R"({"_id": "forged"})", 1);
  attacker->publish("fleet/crt-00001/telemetry", R"({"own": true})", 1);
  victim->publish("fleet/crt-00002/telemetry", R"({"victim": true})", 1);
  ASSERT_TRUE(attacker->wait_published(10s));
  ASSERT_TRUE(victim->wait_published(10s));

  // The platform's command reaches the victim under the bridge's certificate; the forged one does not.
  core::Command command;
  command.id = "certs-cmd";
  command.car = "crt-00002";
  command.name = "schedule_service";
  command.params_json = "{}";
  command.created = core::wall_clock_ms();
  auto producer = log.producer();
  producer->send(fleettwin::testing::rec(t::kCommands, command.car, codec::command_to_json(command)));
  producer->flush(5s);
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (commands.size() == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  std::this_thread::sleep_for(300ms);  // a forged command, had it been let through, would be here by now
  ASSERT_EQ(commands.size(), 1u) << "the platform's command, and only it";

  const auto keys = raw_keys(3, 5s);
  EXPECT_EQ(keys.size(), 2u) << "the spoofed telemetry must not reach the log";
  EXPECT_EQ(std::multiset<std::string>(keys.begin(), keys.end()),
            (std::multiset<std::string>{"crt-00001", "crt-00002"}));
  EXPECT_EQ(stolen.size(), 0u) << "a car reads neither other cars' telemetry nor their commands";
  bridge.request_stop();
  bridge.join();
}

// The bridge's client ids carry a tag only the holder of its key can compute: a car that connects under the
// predictable one (`fleettwin-bridge-0`) does not take over the bridge's session.
TEST_F(CertFixture, ACarCannotTakeOverTheBridgesSession) {
  const auto options = bridge_options("certs-takeover");
  EXPECT_NE(options.client_id, "fleettwin-bridge-certs-takeover");
  EXPECT_NE(options.share_group, "fleettwin-certs-takeover");
  EXPECT_EQ(options.client_id.rfind("fleettwin-bridge-", 0), 0u);
  stages::Bridge bridge(options, log, metrics, clock);
  bridge.start();
  ASSERT_EQ(bridge.connected(), 1) << bridge.error();
  auto car = device(addr, "fleettwin-bridge-0", creds.car_tls("crt-00000", {}));
  car->connect();
  auto own = device(addr, "crt-00002", creds.car_tls("crt-00002", {}));
  own->connect();
  own->publish("fleet/crt-00002/telemetry", R"({"after": true})", 1);
  ASSERT_TRUE(own->wait_published(10s));
  EXPECT_EQ(raw_keys(1, 10s).size(), 1u) << "the bridge still has its session";
  EXPECT_EQ(bridge.connected(), 1);
  bridge.request_stop();
  bridge.join();
}

// `up --mqtt --credentials DIR` starts its brokers with the credentials' authentication: an anonymous client
// is refused, a car with its certificate (or, with password credentials, its password) connects.
TEST(LocalBrokers, UpWithCredentialsRefusesAnonymousClients) {
  const fleettwin::testing::TempDir tmp("certs-up");
  write_fleet(tmp.path() / "certs", 2);
  const auto certs = mqtt::Credentials::load((tmp.path() / "certs").string());
  {
    app::LocalBrokers brokers(1, (tmp.path() / "brokers-certs").string(), 262144, certs);
    const auto a = brokers.addresses().at(0);
    EXPECT_THROW(device(a, "anon", {})->connect(3s), std::runtime_error);
    EXPECT_NO_THROW(device(a, "crt-00001", certs.car_tls("crt-00001", {}))->connect(5s));
  }
  const auto ids = fleet_ids(2);
  mqtt::write_credentials((tmp.path() / "passwords").string(), 2,
                          [&](std::size_t i) { return sim::car_id(ids, i); }, kAcl);
  const auto passwords = mqtt::Credentials::load((tmp.path() / "passwords").string());
  app::LocalBrokers brokers(1, (tmp.path() / "brokers-passwords").string(), 262144, passwords);
  const auto a = brokers.addresses().at(0);
  EXPECT_THROW(device(a, "anon", {})->connect(3s), std::runtime_error);
  mqtt::MosquittoOptions o;
  o.host = a.host;
  o.port = a.port;
  o.client_id = "crt-00001";
  o.username = "crt-00001";
  o.password = passwords.car_password("crt-00001");
  EXPECT_NO_THROW(mqtt::MosquittoClient(o).connect(5s));
}

}  // namespace
