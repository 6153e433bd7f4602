// What one car sends cannot stall the others (issue 17, items 3 and 6), against real mosquitto brokers
// started through scripts/services/mosquitto: a message over the front door's size limit is refused by the
// broker or sent to the DLQ as too_large and acknowledged; a message the log refuses for good goes to the DLQ
// as log_refused and is not redelivered for ever; a car over its rate has the excess sent to the DLQ; a
// delivery report that arrives after its flush timed out acknowledges nothing. The log behind the bridge is
// the memory log, wrapped where a test needs it to refuse records or report late (a test double of the log;
// the bridge and the brokers are the real ones).
#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/metrics.h"
#include "core/topics.h"
#include "log/memory/memory_log.h"
#include "mqtt/mosquitto_client.h"
#include "stages/bridge/bridge.h"
#include "stages/dead_letters.h"
#include "support/broker_address.h"
#include "support/log_records.h"
#include "support/process.h"

using namespace fleettwin;
using fleettwin::testing::address_of;
using namespace std::chrono_literals;
namespace t = core::topics;

namespace {

bool contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

/// What the scripted log shared between the producers it makes: which one-off misbehaviours have happened.
struct Script {
  bool late_used = false;
  bool failed_once = false;
};

/// A producer of the memory log that misbehaves as a broker-side log can, scripted by the value of a record
/// for fleet.telemetry.raw:
///  - "refuse": refused for good (DeliveryError::permanent), never written, as Kafka refuses a record over
///  its
///    message.max.bytes;
///  - the first "late": written, but its report is held back past the flush that waited for it, and delivered
///    only when the first "fail-once" record is sent, i.e. while another message has taken its place;
///  - the first "fail-once": not written, and its report does not come before the flush gives up (never).
class ScriptedProducer final : public log::Producer {
 public:
  ScriptedProducer(std::unique_ptr<log::Producer> inner, Script& script)
      : _inner(std::move(inner)), _script(script) {}

  void send(log::OutRecord r, DeliveryCallback cb) override {
    if (r.topic != t::kTelemetryRaw) return _inner->send(std::move(r), std::move(cb));  // e.g. the DLQ
    if (contains(r.value, "refuse")) return refuse(std::move(r), std::move(cb));
    if (contains(r.value, "fail-once") && !_script.failed_once) {
      _script.failed_once = true;
      for (auto& report : std::exchange(_held, {})) report();  // the late report arrives now
      // Not written, and its own report is still on its way when the flush gives up on it.
      _held.emplace_back([cb = std::move(cb), r = std::move(r)] {
        const log::DeliveryError e("message timed out");
        if (cb) cb(r, -1, &e);
      });
      return;
    }
    if (contains(r.value, "late") && !_script.late_used) {
      _script.late_used = true;
      _inner->send(std::move(r),
                   [this, cb](const log::OutRecord& out, int64_t offset, const log::DeliveryError*) {
                     _held.emplace_back([cb, out, offset] { cb(out, offset, nullptr); });
                   });
      return;
    }
    _inner->send(std::move(r), std::move(cb));
  }

  int64_t flush(std::chrono::milliseconds timeout) override {
    int64_t failed = _inner->flush(timeout) + static_cast<int64_t>(_held.size());
    for (auto& report : std::exchange(_failures, {})) {
      report();
      ++failed;
    }
    return failed;
  }

 private:
  void refuse(log::OutRecord r, DeliveryCallback cb) {
    _failures.emplace_back([cb = std::move(cb), r = std::move(r)] {
      const log::DeliveryError e("record too large for the log", true);
      if (cb) cb(r, -1, &e);
    });
  }

  std::unique_ptr<log::Producer> _inner;
  Script& _script;
  std::vector<std::function<void()>> _held;      // reports delivered late
  std::vector<std::function<void()>> _failures;  // failure reports, delivered at the next flush
};

/// The memory log with ScriptedProducer producers.
class ScriptedLog final : public log::Log {
 public:
  explicit ScriptedLog(log::Log& inner) : _inner(inner) {}
  void create_topic(const std::string& name, const log::TopicConfig& c) override {
    _inner.create_topic(name, c);
  }
  std::unique_ptr<log::Producer> producer() override {
    return std::make_unique<ScriptedProducer>(_inner.producer(), _script);
  }
  std::unique_ptr<log::Consumer> consumer(const std::string& group) override {
    return _inner.consumer(group);
  }
  std::vector<int64_t> end_offsets(const std::string& topic) override { return _inner.end_offsets(topic); }
  std::vector<int64_t> committed_offsets(const std::string& group, const std::string& topic) override {
    return _inner.committed_offsets(group, topic);
  }
  bool durable() const override { return false; }

 private:
  log::Log& _inner;
  Script _script;  // only the bridge's input thread sends the scripted records
};

struct Fixture : ::testing::Test {
  static void SetUpTestSuite() {
    // One broker as every script-started broker is (message_size_limit = the bridge's default limit) and one
    // with no limit, as a broker nobody configured for the front door.
    limited_ = std::make_unique<fleettwin::testing::Service>(FLEETTWIN_SOURCE_DIR, "mosquitto");
    ::setenv("FLEETTWIN_MOSQUITTO_MESSAGE_SIZE_LIMIT", "0", 1);
    unlimited_ = std::make_unique<fleettwin::testing::Service>(FLEETTWIN_SOURCE_DIR, "mosquitto");
    ::unsetenv("FLEETTWIN_MOSQUITTO_MESSAGE_SIZE_LIMIT");
  }
  static void TearDownTestSuite() {
    limited_.reset();
    unlimited_.reset();
  }
  static inline std::unique_ptr<fleettwin::testing::Service> limited_, unlimited_;

  log::MemoryLog memory{log::TopicConfig{}};
  core::Metrics metrics;
  core::WallClock clock;
  std::vector<std::unique_ptr<mqtt::MosquittoClient>> cars;
  int groups = 0;

  void SetUp() override {
    for (const std::string& topic :
         {std::string(t::kTelemetryRaw), std::string(t::kTelemetryDlq), std::string(t::kCommands),
          std::string(t::kCommandAcks), stages::dlq_of(t::kCommandAcks)})
      memory.create_topic(topic, {});
  }
  stages::BridgeOptions bridge_options(const std::string& id, const fleettwin::testing::Service& broker) {
    stages::BridgeOptions o;
    o.brokers = {address_of(broker.address())};
    o.client_id = id;
    o.share_group = id;
    o.deliver_commands = false;
    return o;
  }
  mqtt::MosquittoClient& car(const std::string& id, const fleettwin::testing::Service& broker,
                             bool v5 = true) {
    mqtt::MosquittoOptions o;
    const auto a = address_of(broker.address());
    o.host = a.host;
    o.port = a.port;
    o.client_id = id;
    o.v5 = v5;
    cars.push_back(std::make_unique<mqtt::MosquittoClient>(o));
    cars.back()->connect();
    return *cars.back();
  }
  static std::string topic_of(const std::string& car) { return "fleet/" + car + "/telemetry"; }
  /// Up to `expect` records of `topic` (from the start), waiting at most `budget`.
  std::vector<log::Record> records(const std::string& topic, std::size_t expect,
                                   std::chrono::milliseconds budget) {
    auto c = memory.consumer("check-" + std::to_string(++groups));
    c->subscribe({topic});
    return fleettwin::testing::drain(*c, expect, budget);
  }
  /// Publishes `n` small messages from each of three other cars and checks they all reach the log: nothing
  /// stalls behind what came before.
  void others_flow(const fleettwin::testing::Service& broker, const std::string& prefix) {
    std::size_t before = records(t::kTelemetryRaw, 100000, 1s).size();
    for (int c = 0; c < 3; ++c) {
      auto& other = car(prefix + std::to_string(c), broker);
      for (int i = 0; i < 5; ++i)
        other.publish(topic_of(prefix + std::to_string(c)), R"({"seq":)" + std::to_string(i) + "}", 1);
      ASSERT_TRUE(other.wait_published(10s));
    }
    EXPECT_EQ(records(t::kTelemetryRaw, before + 15, 20s).size(), before + 15)
        << "the other cars' messages stall";
  }
  /// Stops `bridge` and starts it again on the same sessions: a message it had not acknowledged would come
  /// back now. Nothing may.
  void restart_redelivers_nothing(stages::Bridge& bridge, const stages::BridgeOptions& options,
                                  log::Log& log) {
    bridge.request_stop();
    bridge.join();
    EXPECT_EQ(bridge.error(), "");
    const auto raw = records(t::kTelemetryRaw, 100000, 1s).size();
    const auto dlq = records(t::kTelemetryDlq, 100000, 1s).size();
    stages::Bridge again(options, log, metrics, clock);
    again.start();
    EXPECT_EQ(records(t::kTelemetryRaw, raw + 1, 2s).size(), raw) << "redelivered: it was never acknowledged";
    EXPECT_EQ(records(t::kTelemetryDlq, dlq + 1, 1s).size(), dlq) << "redelivered: it was never acknowledged";
    again.request_stop();
    again.join();
    EXPECT_EQ(again.error(), "");
  }
  int64_t counter(const std::string& name_with_labels) { return metrics.value(name_with_labels); }
  static std::map<std::string, std::string> headers(const log::Record& r) {
    std::map<std::string, std::string> h;
    for (const auto& x : r.headers) h[x.key] = x.value;
    return h;
  }
};

// The brokers fleettwin starts refuse a payload over mqtt.max_message_bytes: it never reaches the bridge,
// whose connection stays up (before, a 2 MiB message broke the bridge's 1 MiB packet limit on every
// redelivery).
TEST_F(Fixture, TheBrokerRefusesAnOversizedMessageAndTheOthersFlow) {
  stages::Bridge bridge(bridge_options("limits-broker", *limited_), memory, metrics, clock);
  bridge.start();
  auto& big = car("big-00001", *limited_);
  big.publish(topic_of("big-00001"), std::string(2 << 20, 'x'), 1);
  EXPECT_TRUE(big.wait_published(10s)) << "the broker answers the publish (PUBACK 0x95 on MQTT 5)";
  others_flow(*limited_, "calm-a-");
  EXPECT_TRUE(records(t::kTelemetryDlq, 1, 1s).empty());
  EXPECT_EQ(counter("fleettwin_bridge_log_failures_total"), 0);
  bridge.request_stop();
  bridge.join();
  EXPECT_EQ(bridge.error(), "");
}

// A broker with no limit and a 3.1.1 bridge (no Maximum Packet Size to announce): the oversized message
// arrives, is read without buffering it, goes to the DLQ as too_large with its first KiB and is acknowledged.
TEST_F(Fixture, AnOversizedMessageThatArrivesGoesToTheDlqAndIsAcknowledged) {
  auto options = bridge_options("limits-311", *unlimited_);
  options.version = mqtt::Version::kV311;
  stages::Bridge bridge(options, memory, metrics, clock);
  bridge.start();
  auto& big = car("big-00002", *unlimited_, false);
  std::string payload(2 << 20, 'x');
  payload.replace(0, 9, R"({"big":1})");
  big.publish(topic_of("big-00002"), payload, 1);
  EXPECT_TRUE(big.wait_published(10s));
  const auto dlq = records(t::kTelemetryDlq, 1, 20s);
  ASSERT_EQ(dlq.size(), 1u);
  auto h = headers(dlq[0]);
  EXPECT_EQ(h[t::kHeaderErrorReason], "too_large");
  EXPECT_EQ(h[t::kHeaderErrorStage], "bridge");
  EXPECT_EQ(h["source"], topic_of("big-00002"));
  EXPECT_EQ(dlq[0].key, "big-00002");
  EXPECT_EQ(dlq[0].value, payload.substr(0, 1024));
  others_flow(*unlimited_, "calm-b-");
  EXPECT_EQ(counter("fleettwin_bridge_log_failures_total"), 0);
  restart_redelivers_nothing(bridge, options, memory);
}

// An MQTT 5 bridge announces its Maximum Packet Size; a payload just over the limit still fits in a packet
// the bridge takes, and goes to the DLQ whole... truncated to its first KiB, like any too_large message.
TEST_F(Fixture, APayloadJustOverTheLimitGoesToTheDlqOnMqtt5) {
  auto options = bridge_options("limits-v5", *unlimited_);
  options.limits.max_message_bytes = 64 * 1024;
  stages::Bridge bridge(options, memory, metrics, clock);
  bridge.start();
  auto& over = car("over-00001", *unlimited_);
  over.publish(topic_of("over-00001"), std::string(64 * 1024 + 100, 'y'), 1);
  // Far over the announced packet size: the broker does not send it to the bridge at all.
  over.publish(topic_of("over-00001"), std::string(1 << 20, 'z'), 1);
  EXPECT_TRUE(over.wait_published(10s));
  const auto dlq = records(t::kTelemetryDlq, 2, 4s);
  ASSERT_GE(dlq.size(), 1u);
  EXPECT_EQ(headers(dlq[0])[t::kHeaderErrorReason], "too_large");
  EXPECT_EQ(dlq[0].value, std::string(1024, 'y'));
  for (const auto& r : dlq) EXPECT_EQ(headers(r)[t::kHeaderErrorReason], "too_large");
  others_flow(*unlimited_, "calm-c-");
  EXPECT_EQ(counter("fleettwin_bridge_log_failures_total"), 0);
  bridge.request_stop();
  bridge.join();
  EXPECT_EQ(bridge.error(), "");
}

// A record the log refuses for good (Kafka: over message.max.bytes, invalid) goes to the DLQ as log_refused
// and is acknowledged, once; before, the bridge dropped its connection and the broker redelivered it for
// ever.
TEST_F(Fixture, AMessageTheLogRefusesForGoodGoesToTheDlqOnce) {
  ScriptedLog log(memory);
  const auto options = bridge_options("limits-refused", *limited_);
  stages::Bridge bridge(options, log, metrics, clock);
  bridge.start();
  auto& bad = car("bad-00001", *limited_);
  bad.publish(topic_of("bad-00001"), R"({"refuse":true})", 1);
  EXPECT_TRUE(bad.wait_published(10s));
  const auto dlq = records(t::kTelemetryDlq, 1, 10s);
  ASSERT_EQ(dlq.size(), 1u);
  auto h = headers(dlq[0]);
  EXPECT_EQ(h[t::kHeaderErrorReason], "log_refused");
  EXPECT_EQ(h[t::kHeaderErrorDetail], "record too large for the log");
  EXPECT_EQ(h[t::kHeaderMqttTopic], topic_of("bad-00001"));
  EXPECT_EQ(dlq[0].value, R"({"refuse":true})");
  others_flow(*limited_, "calm-d-");
  EXPECT_EQ(counter("fleettwin_bridge_log_failures_total"), 0);
  restart_redelivers_nothing(bridge, options, log);
  EXPECT_EQ(records(t::kTelemetryDlq, 2, 1s).size(), 1u);
}

// A car over mqtt.rate_limit: the burst and then the rate get through, the rest goes to the DLQ as
// rate_limited (acknowledged, counted per reason), and other cars are not limited by it.
TEST_F(Fixture, ACarOverItsRateHasTheExcessSentToTheDlq) {
  auto options = bridge_options("limits-rate", *limited_);
  options.limits.rate = {.per_second = 1, .burst = 5, .max_cars = 1000};
  stages::Bridge bridge(options, memory, metrics, clock);
  bridge.start();
  auto& noisy = car("noisy-00001", *limited_);
  for (int i = 0; i < 40; ++i)
    noisy.publish(topic_of("noisy-00001"), R"({"i":)" + std::to_string(i) + "}", 1);
  EXPECT_TRUE(noisy.wait_published(10s));
  others_flow(*limited_, "calm-e-");  // 5 messages each: within their burst
  const auto raw = records(t::kTelemetryRaw, 100, 2s);
  const auto dlq = records(t::kTelemetryDlq, 40, 2s);
  std::size_t noisy_raw = 0;
  for (const auto& r : raw) noisy_raw += r.key == "noisy-00001" ? 1 : 0;
  EXPECT_GE(noisy_raw, 5u);
  EXPECT_LE(noisy_raw, 10u);  // the burst plus what 1/s refilled while the 40 came in
  EXPECT_EQ(raw.size(), noisy_raw + 15) << "the other cars are not limited";
  EXPECT_EQ(noisy_raw + dlq.size(), 40u);
  for (const auto& r : dlq) {
    EXPECT_EQ(r.key, "noisy-00001");
    EXPECT_EQ(headers(r)[t::kHeaderErrorReason], "rate_limited");
  }
  EXPECT_EQ(counter(R"(fleettwin_dlq_reason_total{stage="bridge",reason="rate_limited"})"),
            static_cast<int64_t>(dlq.size()));
  restart_redelivers_nothing(bridge, options, memory);
}

// Issue 17 item 6: a delivery report that arrives after the flush that waited for it timed out must not mark
// the message that has since taken its place in the batch as written. Here the "late" message is written but
// reported late: its connection is dropped, the broker redelivers it and the copy is written. The late report
// then arrives just as "fail-once" (another car) has its place, and that write times out unreported. Keyed by
// position, the bridge took the late report for "fail-once" and acknowledged a message that is not in the
// log: lost. Keyed by message, it drops the connection and the redelivered copy is written.
TEST_F(Fixture, ALateDeliveryReportAcknowledgesNoOtherMessage) {
  ScriptedLog log(memory);
  auto options = bridge_options("limits-late", *limited_);
  options.flush_timeout = 200ms;
  stages::Bridge bridge(options, log, metrics, clock);
  bridge.start();
  auto& a = car("late-00001", *limited_);
  a.publish(topic_of("late-00001"), R"({"late":1})", 1);
  ASSERT_TRUE(a.wait_published(20s));
  // The first write of it and the redelivered copy.
  ASSERT_EQ(records(t::kTelemetryRaw, 2, 10s).size(), 2u);
  EXPECT_GE(counter("fleettwin_bridge_log_failures_total"), 1);
  auto& b = car("fail-00001", *limited_);
  b.publish(topic_of("fail-00001"), R"({"fail-once":1})", 1);
  ASSERT_TRUE(b.wait_published(20s));
  std::size_t copies = 0;
  for (const auto& r : records(t::kTelemetryRaw, 3, 10s)) copies += r.key == "fail-00001" ? 1 : 0;
  EXPECT_EQ(copies, 1u) << "acknowledged without being in the log";
  EXPECT_GE(counter("fleettwin_bridge_log_failures_total"), 2);
  bridge.request_stop();
  bridge.join();
  EXPECT_EQ(bridge.error(), "");
}

}  // namespace
