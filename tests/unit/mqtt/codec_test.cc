// The MQTT codec on byte level: encodings checked against the spec's layouts, decoding in arbitrary chunks,
// and malformed input, which must be an error and never a read past the buffer (the ASan build checks that).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "mqtt/codec.h"

using namespace fleettwin::mqtt;

namespace {

std::string bytes(std::initializer_list<int> v) {
  std::string s;
  for (int b : v) s.push_back(static_cast<char>(b));
  return s;
}

Decoder::Status decode_all(Decoder& d, const std::string& in, std::vector<Packet>& out) {
  d.feed(in);
  Packet p;
  for (;;) {
    auto st = d.next(p);
    if (st != Decoder::Status::kPacket) return st;
    out.push_back(p);
  }
}

std::string decode_error(Version v, const std::string& in) {
  Decoder d(v, 1024);
  std::vector<Packet> out;
  auto st = decode_all(d, in, out);
  if (st != Decoder::Status::kError) return "no error (status " + std::to_string(static_cast<int>(st)) + ")";
  return d.error();
}

}  // namespace

TEST(MqttCodec, VarintBoundaries) {
  const std::vector<std::pair<std::uint32_t, std::string>> cases = {
      {0, bytes({0x00})},
      {127, bytes({0x7f})},
      {128, bytes({0x80, 0x01})},
      {16383, bytes({0xff, 0x7f})},
      {16384, bytes({0x80, 0x80, 0x01})},
      {2097151, bytes({0xff, 0xff, 0x7f})},
      {2097152, bytes({0x80, 0x80, 0x80, 0x01})},
      {268435455, bytes({0xff, 0xff, 0xff, 0x7f})},
  };
  for (const auto& [n, want] : cases) {
    std::string out;
    ASSERT_TRUE(Encoder::put_varint(out, n));
    EXPECT_EQ(out, want) << n;
  }
  std::string out;
  EXPECT_FALSE(Encoder::put_varint(out, 268435456));
}

TEST(MqttCodec, Connect311) {
  ConnectOptions o;
  o.version = Version::kV311;
  o.client_id = "br";
  o.clean_start = false;
  o.keepalive_s = 60;
  o.username = "u";
  o.password = "pw";
  EXPECT_EQ(Encoder::connect(o), bytes({0x10, 21, 0,   4,   'M', 'Q', 'T', 'T', 4, 0xC0, 0,  60,
                                        0,    2,  'b', 'r', 0,   1,   'u', 0,   2, 'p',  'w'}));
  o.clean_start = true;
  o.username.reset();
  o.password.reset();
  EXPECT_EQ(Encoder::connect(o), bytes({0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 2, 'b', 'r'}));
}

TEST(MqttCodec, Connect5WithSessionExpiryAndReceiveMaximum) {
  ConnectOptions o;
  o.version = Version::kV5;
  o.client_id = "c";
  o.keepalive_s = 10;
  o.session_expiry_s = 3600;
  o.receive_maximum = 100;
  // props: 0x11 u32 3600, 0x21 u16 100 -> 8 bytes
  EXPECT_EQ(Encoder::connect(o), bytes({0x10, 22,   0, 4, 'M',  'Q',  'T',  'T', 5,   0x00, 0, 10,
                                        8,    0x11, 0, 0, 0x0e, 0x10, 0x21, 0,   100, 0,    1, 'c'}));
}

TEST(MqttCodec, Connect5AnnouncesMaximumPacketSize) {
  ConnectOptions o;
  o.version = Version::kV5;
  o.client_id = "c";
  o.keepalive_s = 10;
  o.session_expiry_s = 0;
  o.maximum_packet_size = 266240;  // 0x00041000
  // props: 0x27 u32 -> 5 bytes
  EXPECT_EQ(Encoder::connect(o), bytes({0x10, 19, 0,    4,    'M',  'Q',  'T',  'T', 5, 0x00, 0,
                                        10,   5,  0x27, 0x00, 0x04, 0x10, 0x00, 0,   1, 'c'}));
  o.receive_maximum = 100;
  o.session_expiry_s = 3600;
  // all three, in a fixed order: session expiry, receive maximum, maximum packet size (5 + 3 + 5 bytes)
  EXPECT_EQ(Encoder::connect(o),
            bytes({0x10, 27,   0,    4,    'M', 'Q', 'T',  'T',  5,    0x00, 0,    10, 13, 0x11, 0,
                   0,    0x0e, 0x10, 0x21, 0,   100, 0x27, 0x00, 0x04, 0x10, 0x00, 0,  1,  'c'}));
  // 3.1.1 has no properties: nothing is announced.
  o.version = Version::kV311;
  EXPECT_EQ(Encoder::connect(o), bytes({0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x00, 0, 10, 0, 1, 'c'}));
}

// A PUBLISH over the decoder's limit is handed out with its topic, packet id and first bytes, while the rest
// is dropped as it arrives: the buffer never holds more than the limit plus the chunk being fed, and the
// packets after it decode normally.
TEST(MqttCodec, OversizedPublishIsSkippedUnbuffered) {
  for (auto v : {Version::kV311, Version::kV5}) {
    constexpr std::size_t kLimit = 4096;
    Publish big;
    big.topic = "fleet/car-9/telemetry";
    big.payload = std::string(3 * 1024 * 1024, 'x');
    big.payload.replace(0, 5, "start");
    big.qos = 1;
    big.packet_id = 77;
    Publish next{"fleet/car-2/telemetry", "{}", 1, false, false, 78};
    const auto wire = Encoder::publish(v, big) + Encoder::publish(v, next);
    Decoder d(v, kLimit);
    std::vector<Packet> out;
    std::size_t most = 0;
    for (std::size_t at = 0; at < wire.size(); at += 1000) {  // chunks that straddle every boundary
      ASSERT_NE(decode_all(d, wire.substr(at, 1000), out), Decoder::Status::kError) << d.error();
      most = std::max(most, d.buffered());
    }
    EXPECT_LE(most, kLimit + 5 + 1000);
    ASSERT_EQ(out.size(), 2u);
    const auto& a = std::get<Publish>(out[0]);
    EXPECT_EQ(a.topic, big.topic);
    EXPECT_EQ(a.packet_id, 77);
    EXPECT_EQ(a.qos, 1);
    EXPECT_EQ(a.oversize, wire.size() - Encoder::publish(v, next).size() - 5);  // its remaining length
    EXPECT_EQ(a.payload.size(), Decoder::kOversizePrefix);
    EXPECT_EQ(a.payload.substr(0, 5), "start");
    const auto& b = std::get<Publish>(out[1]);
    EXPECT_EQ(b.topic, next.topic);
    EXPECT_EQ(b.payload, "{}");
    EXPECT_EQ(b.oversize, 0u);
  }
  // Its topic must fit the limit, or there is nothing to route it by.
  Decoder d(Version::kV311, 16);
  std::vector<Packet> out;
  Publish p{std::string(100, 't'), std::string(100, 'x'), 0, false, false, 0};
  EXPECT_EQ(decode_all(d, Encoder::publish(Version::kV311, p), out), Decoder::Status::kError);
  EXPECT_NE(d.error().find("topic"), std::string::npos) << d.error();
}

TEST(MqttCodec, SubscribeSharedAndPubackPingDisconnect) {
  const std::vector<Subscription> subs = {{"$share/g/a/#", 1}};
  EXPECT_EQ(Encoder::subscribe(Version::kV311, 7, subs),
            bytes({0x82, 17, 0, 7, 0, 12, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', 'a', '/', '#', 1}));
  EXPECT_EQ(Encoder::subscribe(Version::kV5, 7, subs),
            bytes({0x82, 18, 0, 7, 0, 0, 12, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', 'a', '/', '#', 1}));
  EXPECT_EQ(Encoder::puback(Version::kV311, 0x1234), bytes({0x40, 2, 0x12, 0x34}));
  EXPECT_EQ(Encoder::puback(Version::kV5, 0x1234), bytes({0x40, 2, 0x12, 0x34}));
  EXPECT_EQ(Encoder::puback(Version::kV5, 0x1234, 0x80), bytes({0x40, 3, 0x12, 0x34, 0x80}));
  EXPECT_EQ(Encoder::pingreq(), bytes({0xC0, 0}));
  EXPECT_EQ(Encoder::disconnect(Version::kV311), bytes({0xE0, 0}));
  EXPECT_EQ(Encoder::disconnect(Version::kV5, 0x04), bytes({0xE0, 1, 0x04}));
}

TEST(MqttCodec, PublishRoundTripBothVersionsByteByByte) {
  for (auto v : {Version::kV311, Version::kV5}) {
    Publish p;
    p.topic = "fleet/car-1/telemetry";
    p.payload = std::string("{\"a\":1}\0x", 9);  // payloads are bytes, NULs included
    p.qos = 1;
    p.dup = true;
    p.packet_id = 42;
    const auto wire = Encoder::publish(v, p) + Encoder::publish(v, Publish{"t", "", 0, false, true, 0});
    Decoder d(v);
    std::vector<Packet> out;
    for (char c : wire) {  // one byte at a time: every split point must be handled
      ASSERT_NE(decode_all(d, std::string(1, c), out), Decoder::Status::kError) << d.error();
    }
    ASSERT_EQ(out.size(), 2u);
    const auto& a = std::get<Publish>(out[0]);
    EXPECT_EQ(a.topic, p.topic);
    EXPECT_EQ(a.payload, p.payload);
    EXPECT_EQ(a.qos, 1);
    EXPECT_TRUE(a.dup);
    EXPECT_EQ(a.packet_id, 42);
    const auto& b = std::get<Publish>(out[1]);
    EXPECT_EQ(b.topic, "t");
    EXPECT_TRUE(b.payload.empty());
    EXPECT_EQ(b.qos, 0);
    EXPECT_TRUE(b.retain);
    EXPECT_EQ(b.packet_id, 0);
  }
}

TEST(MqttCodec, Publish5PropertiesAreSkipped) {
  // topic "t", id 5, props: payload format (0x01 1), message expiry (0x02 u32), content type (0x03 "js"),
  // user property (0x26 "k" "v"), subscription id (0x0B varint 200) = 2+5+5+7+3 = 22 bytes
  const auto wire = bytes({0x32, 30, 0,   1,   't',  0, 5, 22,  0x01, 1, 0x02, 0,    0,    0,    9,   0x03,
                           0,    2,  'j', 's', 0x26, 0, 1, 'k', 0,    1, 'v',  0x0B, 0xC8, 0x01, 'h', 'i'});
  Decoder d(Version::kV5);
  std::vector<Packet> out;
  ASSERT_EQ(decode_all(d, wire, out), Decoder::Status::kNeedMore) << d.error();
  ASSERT_EQ(out.size(), 1u);
  const auto& p = std::get<Publish>(out[0]);
  EXPECT_EQ(p.topic, "t");
  EXPECT_EQ(p.packet_id, 5);
  EXPECT_EQ(p.payload, "hi");
}

TEST(MqttCodec, ConnackSubackPingresp) {
  Decoder d311(Version::kV311);
  std::vector<Packet> out;
  ASSERT_EQ(decode_all(d311, bytes({0x20, 2, 1, 0, 0x90, 4, 0, 1, 1, 0x80, 0xD0, 0}), out),
            Decoder::Status::kNeedMore);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_TRUE(std::get<Connack>(out[0]).session_present);
  EXPECT_EQ(std::get<Suback>(out[1]).reason_codes, (std::vector<std::uint8_t>{1, 0x80}));
  EXPECT_TRUE(std::holds_alternative<Pingresp>(out[2]));

  // v5 CONNACK with server keepalive 5, receive maximum 10, assigned client id "x"
  Decoder d5(Version::kV5);
  out.clear();
  ASSERT_EQ(decode_all(d5, bytes({0x20, 13, 0, 0, 10, 0x13, 0, 5, 0x21, 0, 10, 0x12, 0, 1, 'x'}), out),
            Decoder::Status::kNeedMore)
      << d5.error();
  const auto& c = std::get<Connack>(out.at(0));
  EXPECT_FALSE(c.session_present);
  EXPECT_EQ(c.server_keepalive_s, 5);
  EXPECT_EQ(c.receive_maximum, 10);
  EXPECT_EQ(c.assigned_client_id, "x");
}

TEST(MqttCodec, MalformedInputIsAnError) {
  EXPECT_NE(decode_error(Version::kV311, bytes({0x30, 0xff, 0xff, 0xff, 0xff, 0x01})), "no error (status 1)");
  // Over the limit: an error for every packet type but PUBLISH
  // (MqttCodec.OversizedPublishIsSkippedUnbuffered).
  EXPECT_NE(decode_error(Version::kV311, bytes({0x90, 0x80, 0x80, 0x80, 0x01})).find("exceeds"),
            std::string::npos);
  EXPECT_NE(decode_error(Version::kV311, bytes({0x32, 3, 0, 9, 't'})).find("topic"), std::string::npos);
  EXPECT_NE(decode_error(Version::kV311, bytes({0x32, 3, 0, 1, 't'})).find("packet id"), std::string::npos);
  EXPECT_NE(decode_error(Version::kV311, bytes({0x32, 5, 0, 1, 't', 0, 0})).find("id 0"), std::string::npos);
  EXPECT_NE(decode_error(Version::kV311, bytes({0x36, 5, 0, 1, 't', 0, 1})).find("QoS 3"), std::string::npos);
  EXPECT_NE(decode_error(Version::kV311, bytes({0x38, 3, 0, 1, 't'})).find("DUP"), std::string::npos);
  EXPECT_NE(decode_error(Version::kV311, bytes({0x20, 1, 0})).find("short"), std::string::npos);
  EXPECT_NE(decode_error(Version::kV311, bytes({0x20, 2, 2, 0})).find("reserved"), std::string::npos);
  EXPECT_NE(decode_error(Version::kV311, bytes({0x90, 2, 0, 1})).find("reason"), std::string::npos);
  EXPECT_NE(decode_error(Version::kV311, bytes({0xD0, 1, 0})).find("PINGRESP"), std::string::npos);
  EXPECT_NE(decode_error(Version::kV311, bytes({0x10, 0})).find("unexpected"), std::string::npos);
  EXPECT_NE(decode_error(Version::kV311, bytes({0x00, 0})).find("unexpected"), std::string::npos);
  EXPECT_NE(decode_error(Version::kV311, bytes({0xE0, 0})).find("3.1.1"), std::string::npos);
  // v5 properties: length beyond the packet, unknown id, truncated value, bad varint
  EXPECT_NE(decode_error(Version::kV5, bytes({0x30, 4, 0, 1, 't', 9})).find("property length"),
            std::string::npos);
  EXPECT_NE(decode_error(Version::kV5, bytes({0x30, 6, 0, 1, 't', 2, 0x7f, 0})).find("unknown property"),
            std::string::npos);
  EXPECT_NE(decode_error(Version::kV5, bytes({0x30, 6, 0, 1, 't', 2, 0x02, 0})).find("truncated property"),
            std::string::npos);
  EXPECT_NE(decode_error(Version::kV5, bytes({0x30, 6, 0, 1, 't', 2, 0x0B, 0x80})).find("truncated property"),
            std::string::npos);
  EXPECT_NE(decode_error(Version::kV5, bytes({0x30, 4, 0, 1, 't', 0x80})).find("property length"),
            std::string::npos);
  EXPECT_NE(decode_error(Version::kV5, bytes({0x30, 4, 0, 0, 0, 'x'})).find("empty topic"),
            std::string::npos);
  EXPECT_NE(decode_error(Version::kV5, bytes({0x20, 4, 0, 0, 5, 0x13})).find("CONNACK"), std::string::npos);
}

TEST(MqttCodec, ErrorIsSticky) {
  Decoder d(Version::kV311);
  std::vector<Packet> out;
  ASSERT_EQ(decode_all(d, bytes({0xD0, 1, 0}), out), Decoder::Status::kError);
  EXPECT_EQ(decode_all(d, bytes({0xD0, 0}), out), Decoder::Status::kError);
  EXPECT_TRUE(out.empty());
}

// Every truncation and every single-byte corruption of valid packets decodes to a packet, need_more or an
// error; under ASan this proves the bounds checks, not just the outcomes above.
TEST(MqttCodec, TruncationsAndCorruptionsNeverCrash) {
  for (auto v : {Version::kV311, Version::kV5}) {
    const std::string valid =
        Encoder::publish(v, Publish{"fleet/c/telemetry", "payload", 1, false, false, 9}) +
        bytes({0x20, 13, 0, 0, 10, 0x13, 0, 5, 0x21, 0, 10, 0x12, 0, 1, 'x'}) + bytes({0x90, 3, 0, 1, 1});
    for (std::size_t n = 0; n <= valid.size(); ++n) {
      Decoder d(v, 4096);
      std::vector<Packet> out;
      decode_all(d, valid.substr(0, n), out);
    }
    for (std::size_t i = 0; i < valid.size(); ++i) {
      for (int b : {0x00, 0x01, 0x7f, 0x80, 0xff}) {
        auto bad = valid;
        bad[i] = static_cast<char>(b);
        Decoder d(v, 4096);
        std::vector<Packet> out;
        decode_all(d, bad, out);
      }
    }
  }
}
