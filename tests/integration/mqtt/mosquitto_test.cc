// mqtt::Client against a real mosquitto broker, for MQTT 3.1.1 and 5: what the bridge relies on is that a
// QoS 1 message it has not acked comes back after a reconnect on a persistent session, and one it has acked
// does not. The broker is started here through scripts/services/mosquitto and stopped at the end; a broker
// that cannot start fails the run (DESIGN.md §6: integration tests never silently skip).
#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "mqtt/client.h"
#include "support/service_environment.h"

using namespace fleettwin::mqtt;
using namespace std::chrono_literals;

namespace {

/// One broker for the whole binary: host:port.
const std::string& g_address = fleettwin::testing::service_for_all_tests(FLEETTWIN_SOURCE_DIR, "mosquitto");

std::uint16_t broker_port() {
  return static_cast<std::uint16_t>(std::stoi(g_address.substr(g_address.rfind(':') + 1)));
}

struct Message {
  std::string topic;
  std::string payload;
  std::uint8_t qos;
  std::uint16_t packet_id;
};

/// Drives one Client the way the bridge's loop will: poll its fd, dispatch, tick. Test thread only.
struct Driver {
  Client sub;
  std::vector<Message> got;

  explicit Driver(ClientOptions o)
      : sub(std::move(o), [this](std::string_view t, std::string_view p, std::uint8_t q, std::uint16_t id) {
          got.push_back({std::string(t), std::string(p), q, id});
        }) {}

  // Runs the loop until done() or the budget ends; false on timeout or a failed connection.
  bool pump_until(const std::function<bool()>& done, std::chrono::milliseconds budget = 10s) {
    const auto deadline = Client::Clock::now() + budget;
    while (!done()) {
      if (sub.state() == Client::State::kFailed || Client::Clock::now() >= deadline) return false;
      if (!step(50)) return false;
    }
    return true;
  }
  // One turn of the loop: poll up to `ms`, dispatch, tick. False when there is no connection.
  bool step(int ms) {
    pollfd p{sub.fd(), static_cast<short>(POLLIN | (sub.wants_write() ? POLLOUT : 0)), 0};
    if (p.fd < 0) return false;
    ::poll(&p, 1, ms);
    const auto now = Client::Clock::now();
    if (p.revents & (POLLOUT | POLLERR | POLLHUP)) sub.on_writable(now);
    if (p.revents & (POLLIN | POLLERR | POLLHUP)) sub.on_readable(now);
    sub.tick(now);
    return true;
  }
  bool connect() {
    got.clear();
    return sub.start() && pump_until([&] { return sub.ready(); });
  }
  bool receive(std::size_t n, std::chrono::milliseconds budget = 10s) {
    return pump_until([&] { return got.size() >= n; }, budget);
  }
};

std::string version_name(Version v) { return v == Version::kV5 ? "mqttv5" : "mqttv311"; }

void publish(Version v, const std::string& topic, const std::string& payload) {
  const std::string cmd = "mosquitto_pub -h 127.0.0.1 -p " + std::to_string(broker_port()) + " -V " +
                          version_name(v) + " -q 1 -t '" + topic + "' -m '" + payload + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "`" << cmd << "` failed (Debian package mosquitto-clients)";
}

class MqttSubscriber : public ::testing::TestWithParam<Version> {
 protected:
  // A fresh client id and topic per test and version: the broker outlives the tests and keeps sessions.
  ClientOptions options(const std::string& name, bool persistent) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    const std::string suffix = version_name(GetParam());
    ClientOptions o;
    o.host = "127.0.0.1";
    o.port = broker_port();
    o.connect.version = GetParam();
    o.connect.client_id = "fleettwin-" + name + "-" + suffix;
    o.connect.clean_start = !persistent;
    o.connect.session_expiry_s = persistent ? 300 : 0;
    o.connect.receive_maximum = 10;
    o.connect.keepalive_s = 30;
    _topic_root = std::string("t/") + info->name() + "/" + suffix;
    for (char& c : _topic_root) {
      if (c == '#' || c == '+') c = '_';
    }
    o.subscriptions = {{"$share/fleettwin/" + _topic_root + "/+/telemetry", 1}};
    return o;
  }
  std::string topic(const std::string& car) const { return _topic_root + "/" + car + "/telemetry"; }

 private:
  std::string _topic_root;
};

TEST_P(MqttSubscriber, SharedSubscriptionReceivesQos1) {
  Driver c(options("shared", false));
  ASSERT_TRUE(c.connect()) << c.sub.error();
  EXPECT_EQ(c.sub.suback().reason_codes, (std::vector<std::uint8_t>{1}));
  publish(GetParam(), topic("car-1"), "{\"seq\":1}");
  ASSERT_TRUE(c.receive(1)) << c.sub.error();
  EXPECT_EQ(c.got[0].topic, topic("car-1"));
  EXPECT_EQ(c.got[0].payload, "{\"seq\":1}");
  EXPECT_EQ(c.got[0].qos, 1);
  EXPECT_NE(c.got[0].packet_id, 0);
  EXPECT_EQ(c.sub.pending_acks(), 1u);
  EXPECT_TRUE(c.sub.ack(c.got[0].packet_id));
  EXPECT_FALSE(c.sub.ack(c.got[0].packet_id)) << "a second ack of the same id must be refused";
  EXPECT_EQ(c.sub.pending_acks(), 0u);
  c.sub.disconnect();
}

// The property the bridge needs: a message not acked before the connection dies comes back.
TEST_P(MqttSubscriber, UnackedMessageIsRedeliveredAfterReconnect) {
  auto o = options("unacked", true);
  {
    Driver c(o);
    ASSERT_TRUE(c.connect()) << c.sub.error();
    publish(GetParam(), topic("car-2"), "hold-me");
    ASSERT_TRUE(c.receive(1)) << c.sub.error();
    EXPECT_EQ(c.got[0].payload, "hold-me");
    c.sub.close();  // as a crash: no PUBACK, no DISCONNECT
  }
  Driver c(o);
  ASSERT_TRUE(c.sub.start()) << c.sub.error();
  ASSERT_TRUE(c.receive(1)) << "not redelivered: " << c.sub.error();
  EXPECT_TRUE(c.sub.connack().session_present);
  EXPECT_EQ(c.got[0].payload, "hold-me");
  EXPECT_EQ(c.got[0].topic, topic("car-2"));
  ASSERT_TRUE(c.sub.ack(c.got[0].packet_id));
  ASSERT_TRUE(c.pump_until([&] { return c.sub.ready(); })) << c.sub.error();
  c.sub.disconnect();
}

TEST_P(MqttSubscriber, UnackedMessageIsRedeliveredAfterCleanDisconnect) {
  auto o = options("unacked-disc", true);
  {
    Driver c(o);
    ASSERT_TRUE(c.connect()) << c.sub.error();
    publish(GetParam(), topic("car-3"), "hold-me-too");
    ASSERT_TRUE(c.receive(1)) << c.sub.error();
    c.sub.disconnect();  // DISCONNECT keeps a persistent session (v5: session expiry > 0)
  }
  Driver c(o);
  ASSERT_TRUE(c.sub.start()) << c.sub.error();
  ASSERT_TRUE(c.receive(1)) << "not redelivered: " << c.sub.error();
  EXPECT_EQ(c.got[0].payload, "hold-me-too");
  c.sub.ack(c.got[0].packet_id);
  c.sub.disconnect();
}

TEST_P(MqttSubscriber, AckedMessageIsNotRedelivered) {
  auto o = options("acked", true);
  {
    Driver c(o);
    ASSERT_TRUE(c.connect()) << c.sub.error();
    publish(GetParam(), topic("car-4"), "done");
    ASSERT_TRUE(c.receive(1)) << c.sub.error();
    ASSERT_TRUE(c.sub.ack(c.got[0].packet_id));
    c.sub.disconnect();  // the PUBACK precedes DISCONNECT on the same stream, so the broker has it
  }
  Driver c(o);
  ASSERT_TRUE(c.connect()) << c.sub.error();
  EXPECT_TRUE(c.sub.connack().session_present);
  // A marker published now proves delivery works; anything before it would be a redelivery.
  publish(GetParam(), topic("car-4"), "marker");
  ASSERT_TRUE(c.receive(1)) << c.sub.error();
  EXPECT_EQ(c.got[0].payload, "marker");
  c.pump_until([] { return false; }, 300ms);
  EXPECT_EQ(c.got.size(), 1u);
  c.sub.ack(c.got[0].packet_id);
  c.sub.disconnect();
}

TEST_P(MqttSubscriber, KeepalivePingIsAnswered) {
  auto o = options("ping", false);
  o.connect.keepalive_s = 1;
  Driver c(o);
  ASSERT_TRUE(c.connect()) << c.sub.error();
  c.pump_until([&] { return c.sub.pongs_received() >= 2; }, 5s);
  EXPECT_GE(c.sub.pings_sent(), 2u);
  EXPECT_GE(c.sub.pongs_received(), 2u) << c.sub.error();
  EXPECT_TRUE(c.sub.ready()) << c.sub.error();
  c.sub.disconnect();
}

TEST_P(MqttSubscriber, RefusedConnectionIsAnError) {
  auto o = options("refused", false);
  o.port = 1;  // nothing listens on port 1 on loopback
  Driver c(o);
  EXPECT_FALSE(c.connect());
  EXPECT_EQ(c.sub.state(), Client::State::kFailed);
  EXPECT_NE(c.sub.error().find("connect"), std::string::npos) << c.sub.error();
}

// MQTT 5: a message nobody was subscribed to comes back as PUBACK 0x10; a publisher with resend_unrouted
// keeps it and sends it again until a subscriber gets it (a restarted broker before the bridges subscribe
// again).
TEST(MqttPublisher, UnroutedMessageIsSentAgainUntilASubscriberGetsIt) {
  const std::string topic = "t/unrouted/car-1/telemetry";
  ClientOptions po;
  po.host = "127.0.0.1";
  po.port = broker_port();
  po.connect.version = Version::kV5;
  po.connect.client_id = "fleettwin-unrouted-publisher";
  po.connect.keepalive_s = 30;
  po.resend_unrouted = 200ms;
  std::vector<std::uint8_t> reasons;
  Driver pub(po);
  pub.sub.on_puback([&](std::uint16_t, std::uint8_t reason) { reasons.push_back(reason); });
  ASSERT_TRUE(pub.connect()) << pub.sub.error();
  ASSERT_TRUE(pub.sub.publish(topic, "{\"seq\":1}", 1));
  ASSERT_TRUE(pub.pump_until([&] { return reasons.size() >= 2; })) << "no PUBACK, or not sent again";
  EXPECT_EQ(reasons[0], 0x10);
  EXPECT_EQ(pub.sub.outgoing(), 1u) << "an unrouted message is kept";

  ClientOptions so = po;
  so.connect.client_id = "fleettwin-unrouted-subscriber";
  so.resend_unrouted = 0ms;
  so.subscriptions = {{"$share/fleettwin/t/unrouted/+/telemetry", 1}};
  Driver sub(so);
  ASSERT_TRUE(sub.connect()) << sub.sub.error();
  // Both loops turn until the subscriber has the message and the publisher's copy is acknowledged as routed.
  ASSERT_TRUE(sub.pump_until([&] {
    pub.step(10);
    return !sub.got.empty() && pub.sub.outgoing() == 0;
  })) << sub.sub.error();
  EXPECT_EQ(sub.got[0].payload, "{\"seq\":1}");
  EXPECT_EQ(reasons.back(), 0) << "the last PUBACK is a routed one";
  sub.sub.disconnect();
  pub.sub.disconnect();
}

INSTANTIATE_TEST_SUITE_P(Versions, MqttSubscriber, ::testing::Values(Version::kV311, Version::kV5),
                         [](const auto& info) { return version_name(info.param); });

}  // namespace
