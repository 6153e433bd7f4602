#pragma once

// Sans-IO MQTT 3.1.1 / 5 codec for the subscriber side the bridge needs. libmosquitto cannot be
// used for the bridge's input: its packet handler sends the PUBACK of a QoS 1 PUBLISH itself, around the
// on_message callback (lib/handle_publish.c calls send__puback in the same handling step), so a bridge that
// acknowledges only after Kafka has the record cannot hold the ack back. This codec lets us send it when
// told.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace fleettwin::mqtt {

/// Protocol level byte of CONNECT.
enum class Version : std::uint8_t { kV311 = 4, kV5 = 5 };

enum class PacketType : std::uint8_t {
  kConnect = 1,
  kConnack = 2,
  kPublish = 3,
  kPuback = 4,
  kSubscribe = 8,
  kSuback = 9,
  kPingreq = 12,
  kPingresp = 13,
  kDisconnect = 14,
};

/// What CONNECT says. Plain value; any thread.
struct ConnectOptions {
  Version version = Version::kV5;
  std::string client_id;
  /// false + a session expiry (v5) or false alone (3.1.1) keeps the session and its unacked messages across
  /// reconnects, which is what makes not-yet-acked messages come back after a crash.
  bool clean_start = false;
  std::uint16_t keepalive_s = 30;
  std::optional<std::string> username;
  std::optional<std::string> password;
  /// v5 only: Session Expiry Interval property (0 = session ends with the connection; 0xFFFFFFFF = never).
  std::uint32_t session_expiry_s = 3600;
  /// v5 only: Receive Maximum property, the broker's in-flight QoS 1 window for us (0 = leave the default).
  std::uint16_t receive_maximum = 0;
  /// v5 only: Maximum Packet Size property, the largest packet we accept (0 = no limit announced). A broker
  /// does not send us larger ones (MQTT 5 §3.1.2.11.4: it drops them instead).
  std::uint32_t maximum_packet_size = 0;
};

struct Subscription {
  std::string filter;  ///< may be `$share/group/filter`
  std::uint8_t qos = 1;
};

struct Connack {
  bool session_present = false;
  std::uint8_t reason_code = 0;  ///< 3.1.1 return code or v5 reason code; 0 = accepted
  // v5 properties we act on; absent in 3.1.1.
  std::optional<std::uint16_t> server_keepalive_s;
  std::optional<std::uint16_t> receive_maximum;
  std::optional<std::uint32_t> maximum_packet_size;
  std::optional<std::string> assigned_client_id;
};

struct Publish {
  std::string topic;
  std::string payload;
  std::uint8_t qos = 0;
  bool dup = false;
  bool retain = false;
  std::uint16_t packet_id = 0;  ///< 0 for QoS 0
  /// Set by the Decoder for a PUBLISH over its packet limit: the packet's remaining length. `payload` then
  /// holds only the first bytes (up to Decoder::kOversizePrefix) and the rest was skipped unbuffered.
  std::size_t oversize = 0;
};

struct Puback {
  std::uint16_t packet_id = 0;
  std::uint8_t reason_code = 0;
};

struct Suback {
  std::uint16_t packet_id = 0;
  std::vector<std::uint8_t> reason_codes;  ///< granted QoS (0..2) or a failure code (>= 0x80)
};

struct Pingresp {};

struct Disconnect {
  std::uint8_t reason_code = 0;  ///< v5 server-sent DISCONNECT reason
};

/// A packet the broker can send to a subscriber.
using Packet = std::variant<Connack, Publish, Puback, Suback, Pingresp, Disconnect>;

/// Builds client-to-broker packets as bytes. Stateless; any thread.
class Encoder {
 public:
  static std::string connect(const ConnectOptions& o);
  static std::string subscribe(Version v, std::uint16_t packet_id, const std::vector<Subscription>& subs);
  static std::string puback(Version v, std::uint16_t packet_id, std::uint8_t reason_code = 0);
  static std::string pingreq();
  static std::string disconnect(Version v, std::uint8_t reason_code = 0);
  /// PUBLISH (no properties); for tests and fakes playing the broker.
  static std::string publish(Version v, const Publish& p);
  /// Appends the remaining-length varint; false if n > 268435455 (the protocol maximum).
  static bool put_varint(std::string& out, std::uint32_t n);
};

/// Splits a byte stream from the broker into packets. Owned by the one thread that reads the socket.
class Decoder {
 public:
  enum class Status : std::uint8_t { kPacket, kNeedMore, kError };

  /// Payload bytes of an oversized PUBLISH kept for its owner (what the DLQ shows of it).
  static constexpr std::size_t kOversizePrefix = 1024;

  /// `max_packet_size` bounds a packet's remaining length. A larger PUBLISH is not an error: it is returned
  /// with Publish::oversize set, its topic, packet id and first payload bytes, and the rest of it is dropped
  /// as it arrives, so the buffer never holds more than the limit plus one read (a car's oversized message
  /// must not cost the bridge its connection, or the broker resends it for ever). Larger packets of other
  /// types are errors.
  explicit Decoder(Version v, std::size_t max_packet_size = 1 << 20) : _version(v), _max(max_packet_size) {}

  void feed(std::string_view bytes);
  /// Next complete packet into `out`. After `error` the stream is unusable (error() says why).
  Status next(Packet& out);
  const std::string& error() const { return _error; }
  /// Bytes held for packets not complete yet.
  std::size_t buffered() const { return _buf.size() - _pos; }
  void reset() {
    _buf.clear();
    _pos = 0;
    _skip = 0;
    _error.clear();
  }

  /// Decodes one packet body (fixed header already split off). Empty string on success, else the reason.
  static std::string decode(Version v, std::uint8_t first_byte, std::string_view body, Packet& out);
  /// The start of an oversized PUBLISH (`prefix`: the first bytes of a body of `length` bytes) into `out`.
  static std::string decode_oversize(Version v, std::uint8_t first_byte, std::string_view prefix,
                                     std::size_t length, Publish& out);

 private:
  Status next_oversize(std::uint8_t first, std::size_t header, std::uint32_t len, Packet& out);
  void consume(std::size_t n);

  Version _version;
  std::size_t _max;
  std::string _buf;
  std::size_t _pos = 0;   // consumed prefix of _buf, compacted lazily so feeding stays amortized O(n)
  std::size_t _skip = 0;  // bytes of an oversized PUBLISH still to drop as they arrive
  std::string _error;
};

}  // namespace fleettwin::mqtt
