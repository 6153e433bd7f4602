#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "mqtt/codec.h"

namespace fleettwin::mqtt {

struct SubscriberOptions {
  std::string host = "127.0.0.1";  ///< numeric IPv4/IPv6 address or a resolvable name (resolved blocking)
  std::uint16_t port = 1883;
  ConnectOptions connect;
  std::vector<Subscription> subscriptions;
  std::size_t max_packet_size = 1 << 20;  ///< larger packets from the broker are a protocol error
  std::size_t max_write_buffer = 4 << 20;
};

/// (topic, payload, qos, packet_id); packet_id is 0 for QoS 0. The views die when the callback returns.
using MessageCallback = std::function<void(std::string_view topic, std::string_view payload, std::uint8_t qos,
                                           std::uint16_t packet_id)>;

/// An MQTT subscriber over one non-blocking TCP socket that acknowledges a QoS 1 message only when its owner
/// calls ack(), so the bridge can hold PUBACKs until the log has the records (DESIGN.md §5). No threads: the
/// one thread that owns it polls fd() and calls on_readable()/on_writable()/tick(); callbacks run inside
/// those calls on that thread. One connection per object; reconnecting means start() again.
class Subscriber {
 public:
  using Clock = std::chrono::steady_clock;
  enum class State { idle, connecting, awaiting_connack, subscribing, ready, closed, failed };

  Subscriber(SubscriberOptions options, MessageCallback on_message);
  ~Subscriber();
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  /// Begins the TCP connect (non-blocking) and queues CONNECT. False (and state failed) on immediate error.
  bool start(Clock::time_point now = Clock::now());
  /// The socket to poll; -1 when not connected.
  int fd() const { return _fd; }
  /// Poll for POLLOUT too while this is true (connect in progress or bytes queued).
  bool wants_write() const { return _fd >= 0 && (_state == State::connecting || _out_pos < _out.size()); }

  void on_readable(Clock::time_point now = Clock::now());
  void on_writable(Clock::time_point now = Clock::now());
  /// Keepalive: sends PINGREQ when idle for the keepalive interval, fails the connection when the broker
  /// stays silent for 1.5 intervals after one. Call at least every keepalive/2.
  void tick(Clock::time_point now = Clock::now());

  /// Queues the PUBACK for a QoS 1 message delivered on this connection. False if the id is not pending
  /// (already acked, QoS 0, or from an earlier connection: the broker redelivers those with new ids).
  bool ack(std::uint16_t packet_id);
  /// Queues DISCONNECT, flushes what the socket takes now, closes. The broker keeps a persistent session.
  void disconnect();
  /// Closes without DISCONNECT, as a crash would.
  void close();

  State state() const { return _state; }
  bool ready() const { return _state == State::ready; }
  const std::string& error() const { return _error; }
  const Connack& connack() const { return _connack; }
  const Suback& suback() const { return _suback; }
  std::size_t pending_acks() const { return _unacked.size(); }
  std::uint64_t pings_sent() const { return _pings_sent; }
  std::uint64_t pongs_received() const { return _pongs_received; }

 private:
  void fail(std::string why);
  void queue(const std::string& bytes);
  void flush();
  void handle(Packet& p, Clock::time_point now);
  std::chrono::seconds keepalive() const;

  SubscriberOptions _options;
  MessageCallback _on_message;
  Decoder _decoder;
  int _fd = -1;
  State _state = State::idle;
  std::string _error;
  std::string _out;
  std::size_t _out_pos = 0;
  Connack _connack;
  Suback _suback;
  std::uint16_t _subscribe_id = 1;
  std::unordered_set<std::uint16_t> _unacked;
  Clock::time_point _last_sent{};
  Clock::time_point _last_received{};
  bool _ping_outstanding = false;
  std::uint64_t _pings_sent = 0;
  std::uint64_t _pongs_received = 0;
};

}  // namespace fleettwin::mqtt
